"""Post-training quantization of the shipped MNIST MLP baseline at 8, 4 and 2 bits.

Run: .venv/bin/python examples/ptq_mnist.py   (a few seconds on a laptop CPU)
"""

import torch
from safetensors.torch import load_file

from lowbit import QuantizerConfig, QuantSpec, account, ptq
from lowbit.data import BatchLoader, eval_augment, load_split
from lowbit.models import create_model

train, test = load_split("mnist", "train", limit=2048), load_split("mnist", "test")
aug = eval_augment("mnist")  # normalisation only
calib = BatchLoader(train, 256, augment=aug, prefetch=False)
test_loader = BatchLoader(test, 1000, augment=aug, prefetch=False)

model = create_model("mlp")
model.load_state_dict(load_file("baselines/mlp-mnist.safetensors"))


@torch.no_grad()
def top1(m: torch.nn.Module) -> float:
    m.eval()
    hits = sum(int((m(x).argmax(1) == y).sum()) for x, y in test_loader)
    return 100.0 * hits / len(test)


print(f"float: {top1(model):.2f}%")
for bits in (8, 4, 2):
    spec = QuantSpec(weight=QuantizerConfig(kind="uniform", bits=bits, granularity="channel"),
                     act=QuantizerConfig(kind="uniform", bits=bits, observer="percentile"))
    qmodel = ptq(model, spec, calib, batches=8)  # prepare a copy + calibrate on 8 batches
    cost = account(qmodel, example_input=torch.zeros(1, 1, 28, 28))
    print(f"W{bits}A{bits}: {top1(qmodel):.2f}%  packed {cost.size_bytes_packed / 1024:.1f} KB "
          f"({cost.compression:.1f}x smaller than float32)")
