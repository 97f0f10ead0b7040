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


class _HalfStepLSQ(QUANTIZERS.get("lsq")):
    """A user's quantizer kind: LSQ that refuses odd bit-widths (its own config check)."""

    @classmethod
    def check_config(cls, config):
        if config.bits % 2:
            raise lowbit.errors.ConfigError(f"half_step_lsq needs an even bits, got {config.bits}")


@pytest.fixture
def user_kind():
    QUANTIZERS.register("half_step_lsq")(_HalfStepLSQ)
    yield "half_step_lsq"
    QUANTIZERS.unregister("half_step_lsq")


def test_a_kind_a_user_registers_is_configured_and_checked_by_its_own_class(user_kind):
    """Registering the class is all it takes: the config accepts the kind, runs the class's own
    check, and make_quantizer builds it."""
    q = make_quantizer(QuantizerConfig(kind=user_kind, bits=4), "weight", (4, 3))
    assert isinstance(q, _HalfStepLSQ) and q.bits == 4
    with pytest.raises(lowbit.errors.ConfigError, match="even bits, got 3"):
        QuantizerConfig(kind=user_kind, bits=3)


def test_an_unregistered_kind_is_refused_again():
    with pytest.raises(lowbit.errors.ConfigError, match="unknown quantizer kind 'half_step_lsq'"):
        QuantizerConfig(kind="half_step_lsq", bits=4)


@pytest.mark.parametrize("field, value, kind, readers", [
    ("threshold", 0.1, "lsq", "nested"), ("scale_grad", "ste", "uniform", "nested"),
    ("bits_min", 3, "nested", "learned_range"), ("fill_levels", True, "dorefa", "learned_range")])
def test_a_field_only_other_kinds_read_is_refused(field, value, kind, readers):
    """Setting a field the kind ignores would silently do nothing: one line naming who reads it."""
    bits = None if kind == "nested" else 4
    with pytest.raises(lowbit.errors.ConfigError,
                       match=f"{field} applies to quantizer kind {readers} only; kind '{kind}' does not read it"):
        QuantizerConfig(kind=kind, bits=bits, **{field: value})
    QuantizerConfig(kind=readers, bits=4 if readers != "nested" else None, **{field: value})  # its own kind


def test_changing_kind_drops_the_old_kinds_own_fields():
    base = QuantizerConfig(kind="learned_range", bits=4, bits_min=3, fill_levels=True, estimator="ewgs")
    moved = base.replace(kind="uniform", bits=8)
    assert (moved.bits_min, moved.fill_levels) == (2, False)  # defaults again
    assert moved.estimator == "ewgs" and moved.bits == 8  # what every kind reads carries over
    assert QuantizerConfig(kind="nested", bits=None, threshold=0.2).replace(kind="lsq", bits=4).threshold == 1e-3


def test_an_override_may_change_the_kind_of_a_specialised_base():
    from torch import nn

    spec = lowbit.QuantSpec(weight=QuantizerConfig(kind="nested", bits=None, threshold=0.05),
                            act=None, overrides=[{"pattern": "@last", "weight": {"kind": "uniform", "bits": 8}}])
    q = lowbit.prepare(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), spec)
    assert q[0].weight_quantizer.config.threshold == 0.05
    assert q[2].weight_quantizer.config.kind == "uniform" and q[2].weight_quantizer.config.threshold == 1e-3
