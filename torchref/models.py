"""PyTorch twins of srmlab's models: the reference srmlab is checked against.

The recalibration modules follow the official SRM code (github
hyunjaelee410/style-based-recalibration-module, models/recalibration_modules.py
and models/resnet.py, commit f6221c7) line for line where it exists, and the
choices of srmlab's srm package where the official code has none (CIFAR
ResNets, GE extents derived from the feature size, SE's bottleneck floor).
State_dict keys equal srmlab's nn.Var names, so a state_dict saved here loads
into srmlab with weights.Load and back.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SRMLayer(nn.Module):
    """SRM as in the official code: mean and std (unbiased variance + 1e-5)
    pooling, channel-wise fully connected `cfc` (C, 2) initialised to zero, then
    BatchNorm2d over z of shape (N, C, 1, 1), so its statistics run over the
    batch only, and sigmoid gates."""

    def __init__(self, channel):
        super().__init__()
        self.cfc = nn.Parameter(torch.zeros(channel, 2))
        self.bn = nn.BatchNorm2d(channel)
        self.activation = nn.Sigmoid()
        # The official training loop excludes these from weight decay.
        self.cfc.srm_param = True
        self.bn.weight.srm_param = True
        self.bn.bias.srm_param = True

    def _style_pooling(self, x, eps=1e-5):
        n, c, _, _ = x.size()
        channel_mean = x.view(n, c, -1).mean(dim=2, keepdim=True)
        channel_var = x.view(n, c, -1).var(dim=2, keepdim=True) + eps
        channel_std = channel_var.sqrt()
        return torch.cat((channel_mean, channel_std), dim=2)

    def _style_integration(self, t):
        z = t * self.cfc[None, :, :]  # N x C x 2
        z = torch.sum(z, dim=2)[:, :, None, None]  # N x C x 1 x 1
        z_hat = self.bn(z)
        return self.activation(z_hat)

    def forward(self, x):
        t = self._style_pooling(x)
        g = self._style_integration(t)
        return x * g


class SELayer(nn.Module):
    """Squeeze-and-Excitation as the SRM paper compares it; the bottleneck
    keeps at least one unit, as srmlab does (C // 16 is 1 for CIFAR's 16
    channels)."""

    def __init__(self, channel, reduction=16):
        super().__init__()
        hidden = max(1, channel // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channel),
        )
        self.activation = nn.Sigmoid()

    def forward(self, x):
        n, c, _, _ = x.size()
        y = self.avg_pool(x).view(n, c)
        y = self.activation(self.fc(y)).view(n, c, 1, 1)
        return x * y


class GELayer(nn.Module):
    """GE-θ as in the SRM paper's comparison: a depthwise convolution with bias
    whose kernel covers the whole feature map (the official code hard-codes
    56/28/14/7 for 224-px inputs; here the extent is the actual feature size),
    BatchNorm over the (N, C, 1, 1) result, sigmoid gates."""

    def __init__(self, channel, extent):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channel, channel, kernel_size=extent, groups=channel, bias=True),
            nn.BatchNorm2d(channel),
        )
        self.activation = nn.Sigmoid()

    def forward(self, x):
        return x * self.activation(self.conv(x))


def recalibration(kind, channel, size):
    """The module of a residual block with `channel` channels on size x size
    feature maps, or None for a plain ResNet."""
    if kind == "":
        return None
    if kind == "srm":
        return SRMLayer(channel)
    if kind == "se":
        return SELayer(channel)
    if kind == "ge":
        return GELayer(channel, size)
    raise ValueError("unknown recalibration module %r" % kind)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock with the module `rclb` after bn2, before the
    shortcut addition and the final ReLU (official placement)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample, kind, size):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.rclb = recalibration(kind, planes, size)

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.rclb is not None:
            out = self.rclb(out)
        if self.downsample is not None:
            residual = self.downsample(x)
        return self.relu(out + residual)


class ShortcutA(nn.Module):
    """He et al.'s parameter-free CIFAR shortcut: subsample with the stride,
    then zero channels after the identity ones (fb.resnet.torch's layout,
    which srmlab follows; the akamaster port pads both sides)."""

    def __init__(self, stride, extra):
        super().__init__()
        self.stride = stride
        self.extra = extra

    def forward(self, x):
        s = self.stride
        return F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, 0, self.extra))


def conv_init(model):
    """The official initialisation: convolutions normal(0, sqrt(2/(k*k*out))),
    BatchNorm weight 1 and bias 0; Linear layers keep PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.data.normal_(0, (2.0 / n) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()


class ResNet(nn.Module):
    """torchvision's ResNet with BasicBlocks (ResNet-18/34) for `size`-px
    inputs; `size` fixes the GE kernels."""

    def __init__(self, layers, kind="", num_classes=1000, size=224):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        size = (size - 1) // 2 + 1  # conv1
        size = (size - 1) // 2 + 1  # maxpool
        for i, (planes, count) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            size = (size - 1) // stride + 1
            setattr(self, "layer%d" % (i + 1), self._make_layer(planes, count, stride, kind, size))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        conv_init(self)

    def _make_layer(self, planes, blocks, stride, kind, size):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, kind, size)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(planes, planes, 1, None, kind, size))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet (depth 6n+2): a 3x3 convolution to 16
    channels, three stages of n BasicBlocks with 16/32/64 channels and option A
    shortcuts, global average pooling, fc; keys conv1, bn1, layer1..3, fc."""

    def __init__(self, depth, kind="", num_classes=10, size=32):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError("CIFAR ResNet depth %d is not 6n+2" % depth)
        n = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        for i, planes in enumerate((16, 32, 64)):
            stride = 1 if i == 0 else 2
            size = (size - 1) // stride + 1
            setattr(self, "layer%d" % (i + 1), self._make_layer(planes, n, stride, kind, size))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        conv_init(self)

    def _make_layer(self, planes, blocks, stride, kind, size):
        layers = []
        for _ in range(blocks):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = ShortcutA(stride, planes - self.inplanes)
            layers.append(BasicBlock(self.inplanes, planes, stride, downsample, kind, size))
            self.inplanes, stride = planes, 1
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


IMAGENET = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


def build(name, num_classes, size):
    """The model srmlab's srm.NewModel builds for `name` ("resnet18",
    "srm-resnet20", ...), for the kinds and depths this file knows."""
    kind, _, depth = name.rpartition("resnet")
    kind = kind.rstrip("-")
    depth = int(depth)
    if depth in IMAGENET:
        return ResNet(IMAGENET[depth], kind, num_classes, size)
    return CifarResNet(depth, kind, num_classes, size)
