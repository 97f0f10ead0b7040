"""Recipes: validation of fields, types, names and --set overrides; bundled recipes load."""

import json

import pytest

from lowbit.errors import ConfigError
from lowbit.train.recipe import (Recipe, bundled_recipes_dir, load_recipe, recipe_from_dict,
                                 resolve_recipe_path)

from train_helpers import tiny_recipe


def test_tiny_recipe_builds_frozen_dataclasses():
    r = recipe_from_dict(tiny_recipe())
    assert isinstance(r, Recipe) and r.phases[1].quantize_acts is True
    assert r.quant.weight.bits == 4 and r.quant.weight.granularity == "channel"
    with pytest.raises(Exception):
        r.seed = 1  # frozen


@pytest.mark.parametrize("override, message", [
    ("optim.lr=fast", "optim.lr: expected a number, got 'fast'"),
    ("optim.lrr=0.1", "did you mean 'lr'"),
    ("phases.0.epochs=-1", "epochs must be >= 0"),
    ("phases.1.quant_lr=-0.1", "phase 'both' quant_lr must be >= 0"),
    ("phases.1.label_smoothing=1.0", "phase 'both' label_smoothing must be in [0, 1), got 1.0"),
    ("phases.5.epochs=1", "no list item 5"),
    ("quant.weight.bits=17", "bits must be in 1..16, got 17"),
    ("phases.1.weight_bits=0", "phase 'both' weight_bits must be in 1..16, got 0"),  # one rule
    ("quant.weight.kind=lsqq", "unknown quantizer kind 'lsqq'"),
    ("quant.act.estimator=stee", "did you mean 'ste'"),
    ("optim.name=adagrad", "optim.name must be one of"),
    ("data.batch_size=-1", "data.batch_size must be > 0"),
    ("phases.0.quantize_acts=maybe", "expected true or false"),
    ("noequals", "--set expects key=value"),
    # silently accepted before: these reversed gradients, made learning rates negative, or
    # crashed deep inside torch
    ("optim.momentum=-1", "optim.momentum must be in [0, 1), got -1.0"),
    ("optim.grad_clip=-1", "optim.grad_clip (the largest gradient norm; null for none) must be > 0"),
    ("phases.0.schedule.gamma=0", "schedule.gamma (the step decay factor) must be > 0"),
    ("phases.0.schedule.gamma=-0.5", "schedule.gamma (the step decay factor) must be > 0"),
    ("phases.0.schedule.final_lr_ratio=-1", "schedule.final_lr_ratio must be >= 0"),
    ("phases.0.schedule.milestones=[0.9,0.2]", "milestones are increasing fractions"),
    ("seed=-1", "seed must be in 0..4294967295, got -1"),
    ("seed=99999999999999999999", "seed must be in 0..4294967295"),
    ("model.num_classes=0", "model.num_classes must be > 0, got 0"),
    ("model.in_channels=0", "model.in_channels must be > 0, got 0"),
])
def test_bad_values_are_named_by_path(override, message):
    with pytest.raises(ConfigError, match=None) as exc:
        recipe_from_dict(tiny_recipe(), [override])
    assert message in str(exc.value)


@pytest.mark.parametrize("overrides, message", [
    (["quant.weight.kind=learned_range", "quant.weight.bits_min=1", "quant.weight.bits=2"],
     "learned_range needs bits_min >= 2 for signed values"),
    (["quant.weight.kind=nested", "quant.weight.bits=1"], "nested bits (the clip width) must be >= 2"),
])
def test_one_bit_grids_without_levels_are_refused(overrides, message):
    """learned_range at bits_min=1 divided by zero; nested at 1 bit reported NaN as bad data."""
    with pytest.raises(ConfigError) as exc:
        recipe_from_dict(tiny_recipe(), overrides)
    assert message in str(exc.value)


def test_a_binary_recipe_file_is_a_clear_error(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="not a recipe \\(binary data"):
        load_recipe(str(path))


def test_set_overrides_apply_and_validate():
    r = recipe_from_dict(tiny_recipe(), ["optim.lr=0.3", "phases.1.weight_bits=2", "seed=9"])
    assert r.optim.lr == 0.3 and r.phases[1].weight_bits == 2 and r.seed == 9


def test_set_one_past_the_end_of_a_list_appends():
    # phases has 2 items: phases.2 adds a third, phases.3 is still an error (no gaps)
    r = recipe_from_dict(tiny_recipe(), ["phases.2={name: more, epochs: 1}"])
    assert [p.name for p in r.phases] == ["weights", "both", "more"]
    for sets in (["methods=[]", "methods.0={name: distill}"], ["methods.0={name: distill}"]):
        assert [m.name for m in recipe_from_dict(tiny_recipe(), sets).methods] == ["distill"]
    with pytest.raises(ConfigError, match="no list item 3"):
        recipe_from_dict(tiny_recipe(), ["phases.3={name: gap, epochs: 1}"])


def test_unknown_top_level_field_lists_valid_ones():
    data = tiny_recipe()
    data["optimiser"] = {}
    with pytest.raises(ConfigError, match="unknown field 'optimiser'.*did you mean 'optim'"):
        recipe_from_dict(data)


def test_phase_method_reference_must_exist():
    data = tiny_recipe()
    data["phases"][0]["methods"] = {"budget": {"beta": 0}}
    with pytest.raises(ConfigError, match="refers to method 'budget'"):
        recipe_from_dict(data)


def test_unknown_method_lists_registered():
    data = tiny_recipe()
    data["methods"] = [{"name": "magic"}]
    with pytest.raises(ConfigError, match="unknown method 'magic'"):
        recipe_from_dict(data)


def test_missing_recipe_lists_bundled():
    with pytest.raises(ConfigError, match="bundled: .*mlp-mnist"):
        resolve_recipe_path("no-such-recipe")


BUNDLED = sorted(bundled_recipes_dir().rglob("*.yaml"))
ID = lambda p: str(p.relative_to(bundled_recipes_dir()).with_suffix(""))  # noqa: E731


@pytest.mark.parametrize("path", BUNDLED, ids=ID)
def test_every_bundled_recipe_validates(path):
    r = load_recipe(str(path))
    assert r.name == ID(path).replace("/", "-"), "a bundled recipe's name is its file name (folder-file)"
    assert r.description, "bundled recipes describe themselves (lowbit recipes lists it)"


@pytest.mark.parametrize("path", BUNDLED, ids=ID)
def test_bundled_recipes_start_from_shipped_baselines(path):
    """A recipe's model.init is a committed baseline with its JSON record (recipe, top-1), so a
    fresh clone can run it and the results table can say what it fine-tuned from."""
    init = load_recipe(str(path)).model.init
    if init is None:
        return
    repo = bundled_recipes_dir().parent
    weights = repo / init
    assert init.startswith("baselines/") and weights.is_file(), f"{path.stem}: {init} is not shipped"
    record = json.loads(weights.with_suffix(".json").read_text())
    assert 0 < record["top1"] <= 100 and (repo / record["recipe"]).is_file()


@pytest.mark.parametrize("name", ["resnet20-cifar10-progressive", "lowbitwidth/resnet20-w2-pq-ts",
                                  "lowbitwidth/resnet20-w4-pq-ts-guided-float-ends"])
def test_progressive_phases_keep_the_input_at_8_bits(name):
    """Every phase re-bits the layers that follow the default (8 -> 4 -> 2) while the network
    input, held at 8 bits by an override, stays there; ** keeps its float first/last weights."""
    from lowbit.models import create_model
    from lowbit.nn import set_quant_state, weight_quantizers
    from lowbit.train.build import quantize_model

    r = load_recipe(name)
    model = quantize_model(r, create_model(r.model.name))
    target = r.quant.weight.bits
    float_ends = name.endswith("float-ends")
    for p in r.phases:
        set_quant_state(model, weights=p.quantize_weights, acts=p.quantize_acts,
                        weight_bits=p.weight_bits, act_bits=p.act_bits)
        assert model.conv1.input_quantizer.bits == 8
        assert (model.conv1.weight_quantizer is None) == (model.fc.weight_quantizer is None) == float_ends
    target = r.phases[-1].weight_bits or target
    assert {w.bits for _, _, w in weight_quantizers(model)} == {target}
    assert model.fc.input_quantizer.bits == model.layer3[0].conv1.input_quantizer.bits == target


def test_a_removed_option_still_loads_from_older_run_folders():
    """Recipes saved by older versions name every quantizer field, fill_anchor included: its
    one kept value loads; the removed one is a clear error."""
    spec = tiny_recipe(quant=True)
    spec["quant"]["weight"]["fill_anchor"] = "step"
    assert recipe_from_dict(spec).quant.weight.kind == "lsq"
    spec["quant"]["weight"]["fill_anchor"] = "range"
    with pytest.raises(ConfigError, match="quant.weight.fill_anchor: this option was removed; only 'step'"):
        recipe_from_dict(spec)
