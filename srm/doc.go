// Package srm holds the channel recalibration modules compared in the SRM
// paper (Lee, Kim and Nam, "SRM: A Style-based Recalibration Module for
// Convolutional Neural Networks", ICCV 2019) and the ResNets they are
// studied in.
//
// # Modules
//
// A Recalibrator computes one sigmoid gate per channel from a feature map
// and scales the map by it. NewRecalibrator builds one from a spec, the way
// timm's create_attn maps a name to an attention module:
//
//	srm    SRM as in the official code: mean and std pooling with the
//	       unbiased variance, CFC, BatchNorm, sigmoid
//	se     Squeeze-and-Excitation, reduction 16
//	ge     GE-θ: global depthwise gather with bias, BatchNorm
//	ge-    GE-θ⁻: parameter-free average gather
//	ge+    GE-θ⁺: GE-θ's gather, BN, ReLU and a 1x1 bottleneck
//
// followed by ":"-separated options: for srm a "+"-joined pooling set out
// of avg, std and max ("srm:avg+max"), "biased" (the paper's population
// variance) and "mlp" (an SE bottleneck in place of the CFC); "r<N>" sets
// the bottleneck reduction of se, ge+ and srm:mlp; "e<N>" sets a GE extent
// (window and stride N, default global). See ParseSpec.
//
// StylePool and CFC are SRM's two steps as fused differentiable
// operations; CFC, a per-channel dot product, also computes GE-θ's global
// gather.
//
// # Models
//
// NewModel builds a ResNet by name, [module "-"] "resnet" depth:
//
//	resnet50, srm-resnet50, se-resnet101, ge-resnet56, ge+-resnet50,
//	ge--resnet20 (GE-θ⁻), srm:avg+max-resnet20, srm:biased:mlp-resnet56
//
// ImageNet depths 18, 34, 50, 101, 152 follow torchvision (stride in the
// Bottleneck's 3x3, "v1.5"; Options.StrideIn1x1 gives the Caffe layout),
// CIFAR depths 20, 32, 44, 56, 110 follow He et al. (16/32/64 channels,
// option A or B shortcuts). The module sits in every residual block after
// the branch's last BatchNorm, before the shortcut addition, under the
// state_dict key "rclb" ("layer1.0.rclb.cfc"); every other name is
// torchvision's. Names lists the zoo, Model.Recalibrators reaches every
// module's gates.
//
// # Size
//
// Count and Model.MACs walk a built model's layers, never running them, and
// count the multiply-accumulates (MACs) of one image:
//
//   - convolutions: output positions × output channels × input channels
//     per group × k²; linear layers: inputs × outputs;
//   - in recalibration modules, besides their convolutions and linear
//     layers: one MAC per feature-map element for each average or max
//     pooling and for GE's gather, two for a standard deviation (its mean
//     and its squared deviations), k per channel for SRM's CFC, and one per
//     element for the gating multiply;
//   - nothing for BatchNorm, activations, the stem's max pooling, the
//     final average pooling, residual additions and upsampling.
//
// Convolutions and linear layers give the figures usually quoted for
// ResNets: ResNet-50 4.089 G with torchvision's layout and 3.858 G with the
// Caffe layout that the SRM paper's GFLOPs follow, which Count also
// reports. The module terms put the modules' cost, a few passes over each
// feature map, on the same scale.
package srm
