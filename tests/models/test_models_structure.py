"""Layer conventions the quantization code relies on.

* every residual addition is an ``Add`` module (counted per architecture);
* every Conv2d feeds a BatchNorm2d directly and is bias-free;
* activations and additions are modules, never functional calls (checked with torch.fx);
* every leaf module runs exactly once per forward (no shared activation instances).
"""

import operator

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from lowbit.models import MODELS, Add, create_model

CONV_BN_MODELS = ["cnn", "resnet8", "resnet20", "resnet18", "mobilenet_v1", "mobilenet_v2",
                  "efficientnet_lite0"]


def run(model):
    spec = model.lowbit_spec
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, spec["in_channels"], spec["input_size"], spec["input_size"]))


def count_adds(model):
    return sum(isinstance(m, Add) for m in model.modules())


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        # one per basic block
        ("resnet8", {}, 3),
        ("resnet20", {}, 9),
        ("resnet56", {}, 27),
        ("resnet18", {}, 8),
        # stride-1 blocks with equal in/out channels: the repeats after the first block of
        # each stage: 0 + 1 + 2 + 3 + 2 + 2 + 0 (stages 16, 24, 32, 64, 96, 160, 320)
        ("mobilenet_v2", {"input_size": 224}, 10),
        ("mobilenet_v2", {"input_size": 32}, 10),
        # stages of 1, 2, 2, 3, 3, 4, 1 blocks: 0 + 1 + 1 + 2 + 2 + 3 + 0
        ("efficientnet_lite0", {"input_size": 224}, 9),
        ("efficientnet_lite0", {"input_size": 32}, 9),
        ("mobilenet_v1", {}, 0),
        ("cnn", {}, 0),
        ("mlp", {}, 0),
    ],
)
def test_add_module_count(name, kwargs, expected):
    model = create_model(name, **kwargs)
    assert count_adds(model) == expected
    calls = []
    for m in model.modules():
        if isinstance(m, Add):
            m.register_forward_hook(lambda mod, inp, out: calls.append(mod))
    if kwargs.get("input_size", 32) <= 32:
        run(model)
        assert len(calls) == expected


def test_mobilenet_v2_narrow_cifar_gains_a_residual():
    """At alpha 0.35 the 16- and 24-channel stages both round to 8 channels; on CIFAR the first
    24-stage block runs at stride 1, so it becomes residual too (11 adds)."""
    assert count_adds(create_model("mobilenet_v2", width_mult=0.35)) == 11
    assert count_adds(create_model("mobilenet_v2", width_mult=0.35, input_size=128)) == 10


def leaf_events(model):
    """Run the model and return [(module, input tuple, output)] in execution order."""
    events, handles = [], []
    for m in model.modules():
        if not list(m.children()):
            handles.append(m.register_forward_hook(
                lambda mod, inp, out: events.append((mod, inp, out))))
    run(model)
    for h in handles:
        h.remove()
    return events


@pytest.mark.parametrize("name", CONV_BN_MODELS)
def test_every_conv_feeds_its_batchnorm(name):
    events = leaf_events(create_model(name))
    convs = [i for i, (m, _, _) in enumerate(events) if isinstance(m, nn.Conv2d)]
    assert convs
    for i in convs:
        conv, _, out = events[i]
        assert conv.bias is None
        nxt, inp, _ = events[i + 1]
        assert isinstance(nxt, nn.BatchNorm2d), f"conv #{i} is followed by {nxt}"
        assert inp[0] is out, f"BN after conv #{i} does not consume the conv output"
        assert nxt.num_features == conv.out_channels


@pytest.mark.parametrize("name", sorted(MODELS.names()))
def test_every_leaf_runs_once(name):
    model = create_model(name)
    events = leaf_events(model)
    ran = [id(m) for m, _, _ in events]
    assert len(ran) == len(set(ran)), "a module instance is reused"
    leaves = {id(m) for m in model.modules() if not list(m.children())}
    assert set(ran) == leaves, "some leaf modules never run"


class _AddIsLeaf(torch.fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return isinstance(m, Add) or super().is_leaf_module(m, qualname)


FUNCTIONAL = {operator.add, operator.iadd, torch.add, torch.relu, torch.relu_, F.relu, F.relu6,
              F.hardtanh, torch.clamp}
METHODS = {"add", "add_", "relu", "relu_", "clamp", "clamp_"}


@pytest.mark.parametrize("name", sorted(MODELS.names()))
def test_no_functional_adds_or_activations(name):
    graph = _AddIsLeaf().trace(create_model(name))
    for node in graph.nodes:
        if node.op == "call_function":
            assert node.target not in FUNCTIONAL, f"functional {node.target} in {name}"
        if node.op == "call_method":
            assert node.target not in METHODS, f"method .{node.target}() in {name}"


@pytest.mark.parametrize("name", sorted(MODELS.names()))
def test_activations_are_not_inplace(name):
    for m in create_model(name).modules():
        assert not getattr(m, "inplace", False), f"{m} is in-place"


def test_resnet18_keys_follow_torchvision():
    keys = set(create_model("resnet18", num_classes=1000, input_size=224).state_dict())
    for key in ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
                "layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight",
                "layer4.1.bn2.bias", "fc.weight", "fc.bias"]:
        assert key in keys


def test_mobilenet_v2_keys_follow_torchvision():
    keys = set(create_model("mobilenet_v2", num_classes=1000, input_size=224).state_dict())
    for key in ["features.0.0.weight", "features.0.1.weight", "features.1.conv.0.0.weight",
                "features.1.conv.1.weight", "features.1.conv.2.weight",
                "features.2.conv.0.0.weight", "features.2.conv.2.weight",
                "features.2.conv.3.running_var", "features.18.0.weight",
                "classifier.1.weight"]:
        assert key in keys


def test_add_is_the_class_the_quantizer_looks_for():
    """lowbit.nn finds residual adds with isinstance(m, lowbit.nn.layers.Add)."""
    from lowbit.nn.layers import Add as NnAdd

    assert Add is NnAdd
