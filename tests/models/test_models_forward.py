"""Output shapes at typical input sizes, small-input stride adaptation, and gradients."""

import pytest
import torch

from lowbit.models import MODELS, create_model

CIFAR = ["cnn", "resnet8", "resnet20", "resnet18", "mobilenet_v1", "mobilenet_v2",
         "efficientnet_lite0"]
MOBILE = ["mobilenet_v1", "mobilenet_v2", "efficientnet_lite0"]


def forward(model, batch, in_channels, size):
    model.eval()
    with torch.no_grad():
        return model(torch.randn(batch, in_channels, size, size))


def test_mlp_shape():
    assert forward(create_model("mlp"), 3, 1, 28).shape == (3, 10)


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_shape(name):
    assert forward(create_model(name), 2, 3, 32).shape == (2, 10)


@pytest.mark.parametrize("name", MOBILE)
@pytest.mark.parametrize("size", [128, 160])
def test_mobile_shapes(name, size):
    kwargs = {} if name == "efficientnet_lite0" else {"width_mult": 0.5}
    model = create_model(name, input_size=size, num_classes=7, **kwargs)
    assert forward(model, 2, 3, size).shape == (2, 7)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_imagenet_forward(name):
    model = create_model(name, num_classes=1000, input_size=224)
    assert forward(model, 1, 3, 224).shape == (1, 1000)


def test_grayscale_cnn_on_mnist():
    model = create_model("cnn", in_channels=1, input_size=28)
    assert forward(model, 2, 1, 28).shape == (2, 10)


def last_feature_map(model, size):
    seen = []
    handle = model.avgpool.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    forward(model, 1, 3, size)
    handle.remove()
    return tuple(seen[0][-2:])


@pytest.mark.parametrize("name", MOBILE + ["resnet18"])
@pytest.mark.parametrize("size, side", [(16, 2), (32, 4), (64, 8), (96, 3), (128, 4)])
def test_small_input_adaptation(name, size, side):
    """<= 64 px: total stride 8; larger inputs keep the reference stride 32."""
    kwargs = {} if name in ("resnet18", "efficientnet_lite0") else {"width_mult": 0.25}
    model = create_model(name, input_size=size, **kwargs)
    assert last_feature_map(model, size) == (side, side)


def test_cifar_resnet_final_map():
    assert last_feature_map(create_model("resnet20"), 32) == (8, 8)


@pytest.mark.parametrize("name", sorted(MODELS.names()))
def test_backward_reaches_every_parameter(name):
    kwargs = {"zero_init_residual": False} if name.startswith("resnet") else {}
    model = create_model(name, **kwargs)
    spec = model.lowbit_spec
    x = torch.randn(4, spec["in_channels"], spec["input_size"], spec["input_size"])
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), torch.arange(4) % 10)
    loss.backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, pname


def test_zero_init_residual():
    on = create_model("resnet20")
    off = create_model("resnet20", zero_init_residual=False)
    assert all(not b.bn2.weight.detach().any() for b in on.layer1)
    assert all(torch.equal(b.bn2.weight, torch.ones(16)) for b in off.layer1)
    assert torch.equal(on.layer1[0].bn1.weight, torch.ones(16))
