"""A prepared model saves whole with ``torch.save`` (and copies), computing the same after
loading; layers lowbit leaves in float are named once per type when preparing."""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch
from torch import nn

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.models import create_model


class MyConv(nn.Conv2d):
    """A layer subclass of the user's own (importable from this test module)."""


def _prepared():
    torch.manual_seed(0)
    model = nn.Sequential(MyConv(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    model = prepare(model, QuantSpec(weight=QuantizerConfig(bits=4, granularity="channel"),
                                     act=QuantizerConfig(bits=4)))
    calibrate(model, [torch.randn(8, 3, 8, 8)])
    return model.eval()


def _resnet8():
    model = prepare(create_model("resnet8"))
    calibrate(model, [torch.randn(4, 3, 32, 32)])
    return model.eval()


@pytest.mark.parametrize("make", [_prepared, _resnet8])
def test_torch_save_of_a_whole_prepared_model_round_trips(make):
    model = make()
    x = torch.randn(2, *((3, 8, 8) if isinstance(model, nn.Sequential) else (3, 32, 32)))
    buf = io.BytesIO()
    torch.save(model, buf)  # a PicklingError before: Quant<Cls> classes are made at run time
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert [type(m) for m in loaded.modules()] == [type(m) for m in model.modules()]
    assert torch.equal(loaded(x), model(x))
    assert torch.equal(copy.deepcopy(model)(x), model(x))


def test_the_loaded_model_keeps_training():
    model = _prepared().train()
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    loss = loaded(torch.randn(4, 3, 8, 8)).square().mean()
    loss.backward()
    grads = [p.grad for n, p in loaded.named_parameters() if "quantizer" in n]
    assert grads and all(g is not None for g in grads)


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn1, self.rnn2 = nn.LSTM(8, 8), nn.LSTM(8, 8)
        self.attn = nn.MultiheadAttention(8, 2)
        self.emb = nn.Embedding(10, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(x)


def test_layers_left_in_float_are_named_once_per_type():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        prepare(Mixed())
    from lowbit.nn.resolve import UnquantizedLayerWarning

    msgs = [str(w.message) for w in seen if issubclass(w.category, UnquantizedLayerWarning)]
    assert len(msgs) == 3, msgs
    assert any("2 LSTM layer(s)" in m and "'rnn1'" in m for m in msgs)
    assert any("MultiheadAttention" in m for m in msgs) and any("Embedding" in m for m in msgs)


def test_models_without_such_layers_prepare_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare(create_model("resnet8"))
