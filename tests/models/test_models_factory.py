"""create_model / lowbit_spec / model_spec / list_models and their error messages."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lowbit.errors import ConfigError
from lowbit.models import MODELS, create_model, list_models, model_spec
from lowbit.models.layers import make_divisible

EXPECTED_NAMES = {"mlp", "cnn", "resnet8", "resnet20", "resnet32", "resnet44", "resnet56",
                  "resnet18", "mobilenet_v1", "mobilenet_v2", "efficientnet_lite0"}


def flatten(spec):
    return {k: v for k, v in spec.items() if k != "kwargs"} | spec["kwargs"]


def shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_registered_names():
    assert set(MODELS.names()) == EXPECTED_NAMES


CASES = [(name, {}) for name in sorted(EXPECTED_NAMES)] + [
    ("mlp", {"hidden": 64, "input_size": 16, "in_channels": 3}),
    ("cnn", {"widths": (16, 24, 40), "hidden": 100, "dropout": 0.5, "num_classes": 100}),
    ("resnet20", {"zero_init_residual": False, "num_classes": 100}),
    ("resnet18", {"input_size": 96, "in_channels": 1}),
    ("mobilenet_v1", {"width_mult": 0.5, "input_size": 128}),
    ("mobilenet_v1", {"width_mult": 0.25, "input_size": 96, "num_classes": 2}),
    ("mobilenet_v2", {"width_mult": 0.35}),
    ("mobilenet_v2", {"width_mult": 1.4, "input_size": 160}),
    ("efficientnet_lite0", {"dropout": 0.0, "input_size": 128}),
]


@pytest.mark.parametrize("name, kwargs", CASES)
def test_spec_round_trip(name, kwargs):
    model = create_model(name, **kwargs)
    spec = json.loads(json.dumps(model.lowbit_spec))  # as stored in an exported file
    assert spec == model.lowbit_spec
    assert set(spec) == {"name", "num_classes", "in_channels", "input_size", "kwargs"}
    rebuilt = create_model(**flatten(spec))
    assert shapes(rebuilt) == shapes(model)
    assert rebuilt.lowbit_spec == spec


def test_spec_records_every_argument():
    spec = create_model("mobilenet_v2", width_mult=0.35).lowbit_spec
    assert spec == {"name": "mobilenet_v2", "num_classes": 10, "in_channels": 3,
                    "input_size": 32, "kwargs": {"width_mult": 0.35, "dropout": 0.2}}
    assert create_model("cnn", widths=(8, 8, 8)).lowbit_spec["kwargs"]["widths"] == [8, 8, 8]


def test_dataset_defaults():
    assert create_model("mlp").lowbit_spec["input_size"] == 28
    assert create_model("mlp").lowbit_spec["in_channels"] == 1
    assert create_model("resnet8").lowbit_spec["input_size"] == 32
    assert create_model("resnet8").lowbit_spec["in_channels"] == 3


def test_model_spec_copies_and_unwraps():
    model = create_model("resnet8")
    spec = model_spec(model)
    spec["kwargs"]["zero_init_residual"] = False
    assert model.lowbit_spec["kwargs"]["zero_init_residual"] is True
    assert model_spec(nn.DataParallel(model)) == model.lowbit_spec


def test_model_spec_needs_create_model():
    with pytest.raises(ConfigError, match="create_model"):
        model_spec(nn.Linear(2, 2))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        create_model("resnet21")
    message = str(err.value)
    assert "unknown model 'resnet21'" in message
    assert all(name in message for name in EXPECTED_NAMES)


@pytest.mark.parametrize(
    "name, kwargs, fragment",
    [
        ("resnet20", {"width_mult": 0.5}, "unknown argument(s) 'width_mult'; valid: zero_init"),
        ("mlp", {"hiden": 5}, "valid: hidden"),
        ("efficientnet_lite0", {"width_mult": 1.0}, "unknown argument"),
        ("mobilenet_v1", {"width_mult": 0}, "width_mult must be a finite number > 0"),
        ("mobilenet_v2", {"width_mult": -0.5}, "width_mult must be a finite number > 0"),
        ("mobilenet_v2", {"width_mult": float("nan")}, "width_mult"),
        ("mobilenet_v2", {"width_mult": "1.0"}, "width_mult"),
        ("mlp", {"num_classes": 0}, "num_classes must be an integer >= 1"),
        ("mlp", {"num_classes": True}, "num_classes must be an integer"),
        ("mlp", {"num_classes": 2.5}, "num_classes must be an integer"),
        ("cnn", {"in_channels": 0}, "in_channels"),
        ("cnn", {"input_size": 7}, "input_size=7 is too small; it needs input_size >= 8"),
        ("resnet20", {"input_size": 4}, "input_size >= 8"),
        ("mobilenet_v2", {"input_size": 15}, "input_size >= 16"),
        ("efficientnet_lite0", {"input_size": 8}, "input_size >= 16"),
        ("cnn", {"widths": [32, 64]}, "widths must be a list of 3 integers"),
        ("cnn", {"widths": "abc"}, "widths must be a list of 3 integers"),
        ("cnn", {"dropout": 1.0}, "dropout must be a number in [0, 1)"),
        ("resnet8", {"zero_init_residual": "yes"}, "zero_init_residual must be true or false"),
        ("mlp", {"hidden": 0}, "hidden must be an integer >= 1"),
    ],
)
def test_bad_arguments(name, kwargs, fragment):
    with pytest.raises(ConfigError) as err:
        create_model(name, **kwargs)
    assert fragment in str(err.value)
    assert f"model {name!r}" in str(err.value)


def test_smallest_inputs_build_and_run():
    import torch

    for entry in list_models():
        model = create_model(entry["name"], input_size=entry["min_input_size"]).eval()
        x = torch.zeros(1, entry["in_channels"], entry["min_input_size"], entry["min_input_size"])
        assert model(x).shape == (1, 10)


def test_list_models():
    entries = list_models()
    assert [e["name"] for e in entries] == sorted(EXPECTED_NAMES)
    for entry in entries:
        assert entry["params"] > 0
        assert entry["description"] and "\n" not in entry["description"]
        assert set(entry) >= {"name", "description", "dataset", "num_classes", "in_channels",
                              "input_size", "min_input_size", "kwargs", "params"}
        json.dumps(entry)
    by_name = {e["name"]: e for e in entries}
    assert by_name["resnet20"]["params"] == 272_474
    assert by_name["mlp"]["params"] == 203_530
    assert by_name["mobilenet_v2"]["kwargs"] == {"width_mult": 1.0, "dropout": 0.2}
    by_name["mlp"]["kwargs"]["hidden"] = 1  # callers get copies
    assert {e["name"]: e for e in list_models()}["mlp"]["kwargs"]["hidden"] == 256


def test_list_models_counts_match_real_models():
    for entry in list_models():
        model = create_model(entry["name"])
        assert entry["params"] == sum(p.numel() for p in model.parameters())


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.01, max_value=4096), st.sampled_from([4, 8, 16]))
def test_make_divisible_properties(value, divisor):
    out = make_divisible(value, divisor)
    assert out % divisor == 0
    assert out >= divisor
    assert out >= 0.9 * value
    assert out <= max(divisor, value + divisor / 2 + divisor)


@settings(max_examples=8, deadline=None)
@given(st.sampled_from([0.25, 0.35, 0.5, 0.75, 1.0, 1.3]), st.sampled_from(["v1", "v2"]))
def test_width_mult_channels_are_multiples_of_8(width, version):
    model = create_model(f"mobilenet_{version}", width_mult=width)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            assert m.out_channels % 8 == 0
