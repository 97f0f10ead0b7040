"""Size accounting against a hand count on a toy model (every number written out).

The toy model, for one 3x6x6 input:

==========  ===========================================  ========  =======  ================
layer       module                                        weights   bias     input elements
==========  ===========================================  ========  =======  ================
conv1       Conv2d(3, 4, 3, padding=1, bias=False) + BN  4*3*3*3   -        3*6*6 = 108
                                                          = 108
conv2       depthwise Conv2d(4, 4, 3, padding=1,          4*1*3*3   4        4*6*6 = 144
            groups=4, bias=True)                          = 36
add         Add(conv2 out, conv1 out)                     -         -        144 + 144
fc          Linear(4, 5) after global average pooling     20        5        4
==========  ===========================================  ========  =======  ================

BatchNorm2d(4) holds 4 float tensors of 4 values (weight, bias, running mean, running var) = 64
bytes. Float32 size: (108 + 36 + 4 + 20 + 5 + 16) * 4 = 189 * 4 = 756 bytes.
"""

import pytest
import torch
from torch import nn

from lowbit import LayerOverride, QuantizerConfig, QuantSpec, account, calibrate, prepare
from lowbit.nn import Add
from lowbit.nn.layers import add_scalar_layer

FLOAT32_BYTES = 756
BN_BYTES = 64


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=True)
        self.add = Add()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        a = self.relu(self.bn(self.conv1(x)))
        b = self.conv2(a)
        return self.fc(self.pool(self.add(b, a)).flatten(1))


X = torch.zeros(1, 3, 6, 6)


def prepared(weight, act=QuantizerConfig(kind="lsq", bits=8), bias=None, residual=True):
    torch.manual_seed(0)
    model = prepare(Toy(), QuantSpec(weight=weight, act=act, bias=bias, residual=residual))
    calibrate(model, [torch.randn(2, 3, 6, 6)])
    return model


def by_name(cost):
    return {layer.name: layer for layer in cost.layers}


def test_float_model_costs_float32():
    cost = account(Toy(), X)
    assert [layer.name for layer in cost.layers] == ["conv1", "conv2", "add", "fc"]
    assert cost.float32_bytes == FLOAT32_BYTES
    assert cost.size_bytes_packed == FLOAT32_BYTES and cost.compression == 1.0
    assert cost.weight_bits_total == 32 * (108 + 36 + 20)
    assert cost.act_bits_total == 32 * (108 + 144 + 288 + 4)
    assert cost.other_float_bytes == BN_BYTES


def test_w4a8_per_channel_symmetric_hand_count():
    cost = account(prepared(QuantizerConfig(kind="lsq", bits=4, granularity="channel")), X)
    L = by_name(cost)
    # packed weight bits: 4 bits per weight
    assert (L["conv1"].weight_bits, L["conv2"].weight_bits, L["fc"].weight_bits) == (432, 144, 80)
    assert (L["conv1"].weight_bytes, L["conv2"].weight_bytes, L["fc"].weight_bytes) == (54, 18, 10)
    assert L["conv1"].bits == [4, 4, 4, 4] and L["fc"].bits == [4] * 5
    # overhead: one float32 scale per output channel + one float32 scale for the input quantizer
    assert L["conv1"].overhead_bytes == 4 * 4 + 4
    assert L["conv2"].overhead_bytes == 4 * 4 + 4
    assert L["fc"].overhead_bytes == 5 * 4 + 4
    assert L["add"].overhead_bytes == 2 * 4  # one scale per quantized input
    # biases stay float32 by default
    assert (L["conv1"].bias_bytes, L["conv2"].bias_bytes, L["fc"].bias_bytes) == (0, 16, 20)
    assert cost.other_float_bytes == BN_BYTES
    total = (54 + 20) + (18 + 20 + 16) + 8 + (10 + 24 + 20) + 64
    assert total == 254 and cost.size_bytes_packed == 254
    assert cost.float32_bytes == FLOAT32_BYTES
    assert cost.compression == pytest.approx(756 / 254)
    # activation feature maps at 8 bits: 108, 144, 144 + 144, 4 elements
    assert [layer.act_bits for layer in cost.layers] == [864, 1152, 2304, 32]
    assert cost.act_bits_total == 864 + 1152 + 2304 + 32 == 4352
    assert cost.act_bits_max == 2304
    assert cost.weight_bits_total == 432 + 144 + 80


def test_asymmetric_per_channel_costs_more_than_per_tensor():
    per_tensor = by_name(account(prepared(QuantizerConfig(kind="uniform", bits=4, symmetric=False)), X))
    per_channel = by_name(account(prepared(QuantizerConfig(kind="uniform", bits=4, symmetric=False,
                                                           granularity="channel")), X))
    # per tensor: one scale + one zero point (4 + 4 bytes); per channel: 4 of each for conv1
    assert per_tensor["conv1"].overhead_bytes == 4 + 4 + 4       # + the input scale
    assert per_channel["conv1"].overhead_bytes == 4 * 4 + 4 * 4 + 4
    assert per_channel["fc"].overhead_bytes == 5 * 4 + 5 * 4 + 4
    assert per_channel["conv1"].weight_bits == per_tensor["conv1"].weight_bits == 432
    sym = by_name(account(prepared(QuantizerConfig(kind="uniform", bits=4, granularity="channel")), X))
    assert sym["conv1"].overhead_bytes == 4 * 4 + 4


def test_asymmetric_activation_stores_a_zero_point():
    act = QuantizerConfig(kind="uniform", bits=8, symmetric=False)
    L = by_name(account(prepared(QuantizerConfig(kind="uniform", bits=4), act=act), X))
    assert L["conv1"].overhead_bytes == 4 + (4 + 4)  # weight scale + act scale and zero point
    assert L["add"].overhead_bytes == 2 * (4 + 4)


def test_quantized_bias_option():
    bias = QuantizerConfig(kind="uniform", bits=8)
    L = by_name(account(prepared(QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
                                 bias=bias), X))
    # 8-bit codes + one float32 scale per bias tensor
    assert L["conv2"].bias_bytes == 4 * 1 + 4
    assert L["fc"].bias_bytes == 5 * 1 + 4
    assert L["conv1"].bias_bytes == 0


def test_group_granularity():
    w = QuantizerConfig(kind="uniform", bits=4, granularity="group", group_size=9)
    spec = QuantSpec(weight=w, act=None, overrides=(LayerOverride("fc", weight={"granularity": "channel"}),))
    model = prepare(Toy(), spec)
    L = by_name(account(model, X))
    # conv1 fan-in 27 -> 3 groups per output channel: 12 scales; conv2 fan-in 9 -> 4 scales
    assert L["conv1"].overhead_bytes == 12 * 4 and L["conv2"].overhead_bytes == 4 * 4
    assert L["conv1"].weight_bits == 432
    assert L["conv1"].act_bits_each == [32]  # unquantized inputs count 32 bits
    assert L["fc"].overhead_bytes == 5 * 4


def test_fold_bn_hand_count():
    model = prepared(QuantizerConfig(kind="uniform", bits=4))  # per-tensor weights
    plain, folded = account(model, X), account(model, X, fold_bn=True)
    P, F = by_name(plain), by_name(folded)
    assert F["conv1"].folded_bn == "bn" and F["conv2"].folded_bn is None
    # BN tensors vanish, conv1 gains a float32 bias (4 values), and its single per-tensor scale
    # becomes one scale per output channel (3 more float32)
    assert folded.other_float_bytes == 0 and plain.other_float_bytes == BN_BYTES
    assert F["conv1"].bias_bytes == 16 and P["conv1"].bias_bytes == 0
    assert F["conv1"].overhead_bytes == P["conv1"].overhead_bytes + 3 * 4
    assert folded.size_bytes_packed == plain.size_bytes_packed - 64 + 16 + 12
    assert folded.float32_bytes == plain.float32_bytes == FLOAT32_BYTES
    assert folded.weight_bits_total == plain.weight_bits_total
    # per-channel weights already have one scale per channel: only the bias changes
    pc = prepared(QuantizerConfig(kind="lsq", bits=4, granularity="channel"))
    a, b = by_name(account(pc, X)), by_name(account(pc, X, fold_bn=True))
    assert b["conv1"].overhead_bytes == a["conv1"].overhead_bytes
    assert account(pc, X, fold_bn=True).size_bytes_packed == 254 - 64 + 16


def test_mixed_per_channel_bits_learned_range():
    model = prepared(QuantizerConfig(kind="learned_range", bits=4, granularity="channel"),
                     act=QuantizerConfig(kind="learned_range", bits=6))
    wq = model.conv1.weight_quantizer
    # n = q+/d = 1, 3, 7, 127 -> 2, 3, 4, 8 bits
    wq.set_step_and_range(qplus=wq.step * torch.tensor([1.0, 3.0, 7.0, 127.0]))
    L = by_name(account(model, X))
    assert L["conv1"].bits == [2, 3, 4, 8]
    # 27 weights per output channel: 27 * (2 + 3 + 4 + 8) = 459 bits -> 58 bytes in one stream
    assert L["conv1"].weight_bits == 459 and L["conv1"].weight_bytes == 58
    # 4 scales, no zero points, a uint8 bit-width per channel (they differ), the input's scale
    assert L["conv1"].overhead_bytes == 4 * 4 + 4 * 1 + 4
    # conv2 keeps 4 bits everywhere: no bit-width field
    assert L["conv2"].bits == [4] * 4 and L["conv2"].overhead_bytes == 4 * 4 + 4
    assert L["conv1"].act_bits == 108 * 6  # per-tensor activation bits


def test_unprepared_layers_and_disabled_quantizers_count_float():
    model = prepared(QuantizerConfig(kind="lsq", bits=4, granularity="channel"))
    model.fc.weight_quantizer.disable()
    model.fc.input_quantizer.disable()
    L = by_name(account(model, X))
    assert L["fc"].weight_bits == 32 * 20 and L["fc"].weight_bytes == 80
    assert L["fc"].overhead_bytes == 0 and L["fc"].act_bits == 32 * 4


def test_to_dict_and_account_is_read_only():
    model = prepared(QuantizerConfig(kind="lsq", bits=4, granularity="channel"))
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    was_training = model.training
    d = account(model, X, fold_bn=True).to_dict()
    assert d["size_bytes_packed"] == 206 and d["input_shape"] == [1, 3, 6, 6]
    assert [layer["total_bytes"] for layer in d["layers"]] == [54 + 20 + 16, 18 + 20 + 16, 8, 54]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training == was_training and isinstance(model.bn, nn.BatchNorm2d)


def test_float_modules_give_layer_advice_only_to_modules_with_a_weight_matrix():
    model = add_scalar_layer(nn.Sequential(nn.Linear(4, 3), nn.PReLU(), nn.Linear(3, 2)))
    rows = {r["name"]: r for r in account(model, torch.zeros(1, 4)).float_modules}
    assert set(rows) == {"1", "scalar_layer"}  # Linear layers are in the layer table
    for row in rows.values():
        assert "no weight matrix" in row["reason"] and "nn.Linear" not in row["reason"]
