"""Writes the PyTorch 2.x fixtures of this directory (see TestTorch2Fixtures).

usage: python make_fixtures.py OUTDIR [GODIR]

With GODIR, also reports in OUTDIR/report.json what PyTorch and the
safetensors library read from GODIR/go.pt and GODIR/go.safetensors, files
written by srmlab's tests.
"""
import argparse, json, sys
import torch
import torch.nn as nn

try:
    import safetensors.torch as st
except ImportError:
    st = None

out = sys.argv[1]
torch.manual_seed(0)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 4)
        self.register_buffer('scale64', torch.arange(3, dtype=torch.float64) / 3)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def describe(t):
    return {'shape': list(t.shape), 'dtype': str(t.dtype), 'values': t.flatten().tolist()}


m = Tiny()
opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
for _ in range(3):
    opt.zero_grad()
    m(torch.randn(4, 2, 5, 5)).square().sum().backward()
    opt.step()
sd = m.state_dict()
torch.save(sd, out + '/sd.pt')
torch.save({'epoch': 3, 'arch': 'tiny', 'state_dict': nn.DataParallel(m).state_dict(),
            'optimizer': opt.state_dict(), 'args': argparse.Namespace(lr=0.1)}, out + '/ckpt.pt')
torch.save(m.state_dict(keep_vars=True), out + '/params.pt')
base = torch.arange(24, dtype=torch.float32) / 8
strided = {'t': base[:12].reshape(3, 4).t(), 'e': base[:3].expand(2, 3),
           'v': base[2:20:3], 'p': base.reshape(2, 3, 4).permute(2, 0, 1)[1:, :, 1:]}
torch.save(strided, out + '/strided.pt')
expect = {'torch': torch.__version__, 'order': list(sd.keys()),
          'sd': {k: describe(v) for k, v in sd.items()},
          'strided': {k: describe(v) for k, v in strided.items()}}
if st is not None:
    st.save_file(dict(sd), out + '/ref.safetensors', metadata={'from': 'safetensors'})
json.dump(expect, open(out + '/expect.json', 'w'), indent=0)

if len(sys.argv) > 2:
    go = sys.argv[2]
    report = {'torch': torch.__version__, 'safetensors': st is not None,
              'go_torch': {k: describe(v) for k, v in torch.load(go + '/go.pt').items()}}
    if st is not None:
        m2 = Tiny()
        m2.load_state_dict(st.load_file(go + '/go.safetensors'))
        report['go_safetensors'] = {k: describe(v) for k, v in m2.state_dict().items()}
    json.dump(report, open(out + '/report.json', 'w'))
print('ok', torch.__version__, 'safetensors' if st else 'no safetensors')
