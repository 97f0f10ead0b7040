"""PTQ on a network trained here on real MNIST (``shared/data/mnist``): 8-bit PTQ keeps the
float accuracy, 2-bit PTQ loses clearly. Takes a few seconds (2 epochs of 20k images)."""

import pytest
import torch
import torch.nn.functional as F

from lowbit import QuantizerConfig, QuantSpec, account, ptq
from lowbit.errors import DataError
from lowbit.models import create_model


@pytest.fixture(scope="module")
def mnist():
    from lowbit.data import BatchLoader, eval_augment, load_split

    try:
        train = load_split("mnist", "train", limit=20_000)
        test = load_split("mnist", "test")
    except DataError as exc:
        pytest.skip(f"MNIST not available: {exc}")
    aug = eval_augment("mnist")  # normalisation only
    return {
        "train": BatchLoader(train, 128, augment=aug, shuffle=True, seed=0, prefetch=False),
        "calib": BatchLoader(train, 256, augment=aug, shuffle=True, seed=1, prefetch=False),
        "test": BatchLoader(test, 1000, augment=aug, prefetch=False),
    }


@pytest.fixture(scope="module")
def float_model(mnist):
    torch.manual_seed(0)
    model = create_model("mlp")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = mnist["train"]
    for epoch in range(2):
        loader.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return 100.0 * correct / total


def spec(bits: int) -> QuantSpec:
    """Per-channel weights, percentile (99.99th) activations, both at ``bits``."""
    return QuantSpec(weight=QuantizerConfig(kind="uniform", bits=bits, granularity="channel"),
                     act=QuantizerConfig(kind="uniform", bits=bits, observer="percentile"))


def test_ptq_8bit_keeps_and_2bit_loses_accuracy(mnist, float_model):
    base = accuracy(float_model, mnist["test"])
    assert base > 93.0, f"the float MLP trained badly ({base:.2f}%)"
    q8 = ptq(float_model, spec(8), mnist["calib"], batches=4)
    q2 = ptq(float_model, spec(2), mnist["calib"], batches=4)
    acc8, acc2 = accuracy(q8, mnist["test"]), accuracy(q2, mnist["test"])
    print(f"MNIST MLP: float {base:.2f}%, W8A8 PTQ {acc8:.2f}%, W2A2 PTQ {acc2:.2f}%")
    assert abs(acc8 - base) <= 1.0
    assert base - acc2 >= 5.0
    # and the 8-bit model is ~4x smaller than float (scales and float biases on top)
    cost = account(q8, torch.zeros(1, 1, 28, 28))
    assert cost.weight_bits_total == 8 * (784 * 256 + 256 * 10)
    assert 3.5 < cost.compression < 4.0
