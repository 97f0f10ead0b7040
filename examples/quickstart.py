"""The README's quickstart: quantize a model of your own to 4 bits, train it, export it.

Run: .venv/bin/python examples/quickstart.py   (seconds; writes net.lowbit and net.onnx here)

The model and the data below are stand-ins: replace ``MyNet`` by your own ``nn.Module`` (with its
trained float weights loaded) and ``loader`` by your data loader. The block between the two
``README`` markers is the README's quickstart, line for line (tests/test_docs.py checks it).
"""

import torch
import torch.nn.functional as F
from torch import nn


class MyNet(nn.Module):
    """Any nn.Module with Conv/Linear layers; batch norms are folded at export."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).mean((2, 3)))


torch.manual_seed(0)
model = MyNet()
loader = [(torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))) for _ in range(8)]

# README quickstart begins
import torch
import torch.nn.functional as F
import lowbit
from lowbit.export import IntegerExecutor, export_onnx, load_packed, save_packed

spec = lowbit.QuantSpec(weight=lowbit.QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
                        act=lowbit.QuantizerConfig(kind="lsq", bits=4))
qmodel = lowbit.prepare(model, spec)          # a copy of your model with 4-bit fake quantizers
lowbit.calibrate(qmodel, loader, batches=8)   # initial scales from a few batches: this is PTQ
opt = torch.optim.Adam(qmodel.parameters(), lr=1e-4)
for x, y in loader:                           # QAT (optional): train it like any module
    opt.zero_grad(); F.cross_entropy(qmodel(x), y).backward(); opt.step()
x = next(iter(loader))[0][:1]                 # one example input
print(lowbit.account(qmodel, x, fold_bn=True).size_bytes_packed, "bytes packed")
save_packed(qmodel, "net.lowbit", example_input=x)                     # bit-packed file
logits = IntegerExecutor(load_packed("net.lowbit"), model=MyNet())(x)  # integer arithmetic
export_onnx(qmodel, "net.onnx", example_input=x)                       # QDQ ONNX
# README quickstart ends

# The packed file holds exactly the accounted bytes (plus its header), and the integer executor
# computes what the fake-quantized model computes.
info = save_packed(qmodel, "net.lowbit", example_input=x)
assert info.payload_bytes == lowbit.account(qmodel, x, fold_bn=True).size_bytes_packed
diff = (logits - qmodel.eval()(x)).abs().max().item()
print(f"packed file {info.file_bytes} bytes; integer executor vs fake-quant model: max |diff| {diff:.1e}")
