"""Code outside lowbit.quantizers asks a quantizer what it can do (class attributes on the
base) instead of testing for its class: adding a quantizer kind touches lowbit.quantizers only."""

import re
from pathlib import Path

import pytest

import lowbit
from lowbit.quantizers import QUANTIZERS, QuantizerConfig, make_quantizer

SRC = Path(lowbit.__file__).parent
CONCRETE = [cls.__name__ for _, cls in QUANTIZERS.items()]


def test_no_module_outside_quantizers_names_a_concrete_quantizer_class():
    pattern = re.compile(r"\b(" + "|".join(CONCRETE) + r")\b")
    found = [f"{p.relative_to(SRC)}: {m.group(0)}" for p in SRC.rglob("*.py")
             if "quantizers" not in p.relative_to(SRC).parts[:1]
             for m in [pattern.search(p.read_text(encoding="utf-8"))] if m]
    assert not found, found


@pytest.mark.parametrize("kind, calibrated, can_learn_bits, affine_grid, rounding", [
    ("uniform", True, False, True, "round"), ("lsq", True, False, True, "round"),
    ("pow2", True, False, True, "round"), ("learned_range", True, True, False, "round"),
    ("nested", True, False, False, "floor"), ("dorefa", False, False, False, "round"),
    ("log2", True, False, False, "round")])
def test_capabilities_of_each_kind(kind, calibrated, can_learn_bits, affine_grid, rounding):
    q = make_quantizer(QuantizerConfig(kind=kind, bits=4), "weight", (4, 3))
    assert (q.calibrated, q.can_learn_bits, q.affine_grid, q.rounding) == \
        (calibrated, can_learn_bits, affine_grid, rounding)


def test_floor_rounding_comes_from_the_config_too():
    assert make_quantizer(QuantizerConfig(kind="uniform", bits=4, rounding="floor")).rounding == "floor"


def test_learned_range_min_bits_follows_bits_min():
    q = make_quantizer(QuantizerConfig(kind="learned_range", bits=4, bits_min=3), "weight", (4, 3))
    assert q.min_bits() == 3
