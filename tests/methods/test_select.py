"""Methods choose their tensors with the override rules of recipes (glob, re:, @first/@last)."""

import pytest

from lowbit.errors import ConfigError
from lowbit.methods.qgt import QGT, QGTConfig
from lowbit.methods.select import per_name, pick
from lowbit.models import create_model

NAMES = ["fc1.weight", "fc1.bias", "fc2.weight", "fc3.weight"]
ASYM2_PC = {"kind": "uniform", "bits": 2, "symmetric": False, "granularity": "channel"}


def test_pick_keeps_the_model_order_and_takes_every_rule():
    assert pick(NAMES, ["fc3.*", "fc1.*"], "t", "tensor") == ["fc1.weight", "fc1.bias", "fc3.weight"]
    assert pick(NAMES, ["re:fc[12]\\.weight"], "t", "tensor") == ["fc1.weight", "fc2.weight"]
    assert pick(NAMES, ["@first", "@last"], "t", "tensor") == ["fc1.weight", "fc3.weight"]
    assert pick(NAMES, [], "t", "tensor") == []


def test_a_pattern_matching_nothing_is_one_line_naming_it():
    with pytest.raises(ConfigError) as exc:
        pick(NAMES, ["*.weight", "conv*"], "qgt targets", "parameter")
    assert str(exc.value).startswith("qgt targets pattern 'conv*' matches no parameter; parameters: fc1.weight")
    assert "\n" not in str(exc.value)


def test_per_name_later_patterns_win():
    assert per_name(NAMES, {"*.weight": 2, "@last": 8}, "l", "tensor") == {
        "fc1.weight": 2, "fc2.weight": 2, "fc3.weight": 8}


def test_qgt_exclude_and_layer_bits_take_the_override_rules():
    model = create_model("mlp")
    weights = [n for n, p in model.named_parameters() if n.endswith("weight")]
    qgt = QGT(QGTConfig(quantizer=ASYM2_PC, exclude=("@first",), layer_bits={"@last": 8}))
    targets = qgt.attach(model)
    assert [t.name for t in targets] == weights[1:]
    assert targets[-1].quantizer.bits == 8 and all(t.quantizer.bits == 2 for t in targets[:-1])
