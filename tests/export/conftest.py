"""Fixtures for the export tests: eager fake-quant kernels, CIFAR-10 subsets, calibrated ResNet-20s."""

from __future__ import annotations

import os

import pytest
import torch

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.ops import set_fast_kernels


@pytest.fixture(scope="session", autouse=True)
def _eager_kernels():
    """Compiling the fused kernel costs more than these small tests run (results are identical)."""
    set_fast_kernels(False)
    yield
    set_fast_kernels(None)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Never write decoded datasets to the user's ~/.cache/lowbit."""
    old = os.environ.get("LOWBIT_CACHE")
    os.environ["LOWBIT_CACHE"] = str(tmp_path_factory.mktemp("lowbit-cache"))
    yield
    if old is None:
        os.environ.pop("LOWBIT_CACHE", None)
    else:
        os.environ["LOWBIT_CACHE"] = old


def _batch(split: str, n: int):
    from lowbit.data import BatchLoader, eval_augment, load_split
    from lowbit.errors import DataError

    try:
        images = load_split("cifar10", split, limit=n)
    except DataError as exc:
        pytest.skip(f"CIFAR-10 not available: {exc}")
    loader = BatchLoader(images, n, augment=eval_augment("cifar10"), prefetch=False)
    return next(iter(loader))  # x (n, 3, 32, 32) normalised, y (n,)


@pytest.fixture(scope="session")
def cifar_test():
    """The first 1000 CIFAR-10 test images (x, y)."""
    return _batch("test", 1000)


@pytest.fixture(scope="session")
def cifar_train():
    """The first 512 CIFAR-10 training images (x, y): BN statistics and calibration."""
    return _batch("train", 512)


def _resnet20(bits: int, x_train: torch.Tensor) -> torch.nn.Module:
    from lowbit.models import create_model

    torch.manual_seed(bits)
    model = create_model("resnet20", zero_init_residual=False)
    for m in model.modules():  # BN statistics of real images (a random-init but sane network)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        for chunk in x_train.split(128):
            model(chunk)
    spec = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=bits, granularity="channel"),
                     act=QuantizerConfig(kind="lsq", bits=bits))
    qmodel = prepare(model.eval(), spec)
    calibrate(qmodel, [x_train[:256]])
    return qmodel.eval()


def _with_reference(bits: int, cifar_train, cifar_test):
    model = _resnet20(bits, cifar_train[0])
    with torch.no_grad():
        ref = torch.cat([model(c) for c in cifar_test[0].split(500)])
    return model, ref  # (prepared model, its fake-quant logits on cifar_test (1000, 10))


@pytest.fixture(scope="session")
def resnet20_w8a8(cifar_train, cifar_test):
    """ResNet-20, LSQ W8A8 per-channel, calibrated on real images; with its test logits."""
    return _with_reference(8, cifar_train, cifar_test)


@pytest.fixture(scope="session")
def resnet20_w4a4(cifar_train, cifar_test):
    """ResNet-20, LSQ W4A4 per-channel, calibrated on real images; with its test logits."""
    return _with_reference(4, cifar_train, cifar_test)


@pytest.fixture(scope="session")
def trained_resnet20(cifar_train):
    """``make(bits)``: the shipped ResNet-20 baseline quantized with int32 biases (below)."""
    return lambda bits: _trained_resnet20(bits, cifar_train[0])


def _trained_resnet20(bits: int, x_train: torch.Tensor) -> torch.nn.Module:
    """The shipped float ResNet-20 baseline, BN folded first, LSQ WbAb per-channel with biases
    on the int32 accumulator grid (QuantSpec.int_bias): the model integer runtimes compute."""
    from pathlib import Path

    from lowbit import fold_batchnorm
    from lowbit.models import create_model
    from lowbit.models.weights import load_float_weights

    baseline = Path(__file__).resolve().parents[2] / "baselines" / "resnet20-cifar10.safetensors"
    model = create_model("resnet20")
    load_float_weights(model, str(baseline))
    fold_batchnorm(model.eval(), x_train[:1], inplace=True)
    spec = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=bits, granularity="channel"),
                     act=QuantizerConfig(kind="lsq", bits=bits), int_bias=True)
    qmodel = prepare(model, spec)
    calibrate(qmodel, [x_train[:256]])
    return qmodel.eval()
