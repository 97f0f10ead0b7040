"""Parameter counts: published references (ImageNet configs) and hand counts (CIFAR/MNIST).

Hand counts are written out from the layer shapes, never read off the model.
"""

import pytest

from lowbit.models import create_model


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def conv(cin, cout, k, groups=1):  # bias-free conv
    return cin // groups * cout * k * k


def bn(c):  # weight + bias
    return 2 * c


def linear(fin, fout):  # weight + bias
    return fin * fout + fout


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("resnet18", {}, 11_689_512),  # torchvision resnet18
        ("mobilenet_v1", {"width_mult": 1.0}, 4_231_976),
        ("mobilenet_v2", {"width_mult": 1.0}, 3_504_872),  # torchvision mobilenet_v2
        ("efficientnet_lite0", {}, 4_652_008),  # timm / TF efficientnet_lite0
    ],
)
def test_imagenet_reference_counts(name, kwargs, expected):
    model = create_model(name, num_classes=1000, input_size=224, **kwargs)
    assert n_params(model) == expected


def test_mlp_hand_count():
    expected = linear(1 * 28 * 28, 256) + linear(256, 10)
    assert expected == 203_530
    assert n_params(create_model("mlp")) == expected


def test_cnn_hand_count():
    expected = (
        conv(3, 32, 3) + bn(32) + conv(32, 32, 3) + bn(32)  # block 1, 32x32 -> 16x16
        + conv(32, 64, 3) + bn(64) + conv(64, 64, 3) + bn(64)  # block 2, -> 8x8
        + conv(64, 128, 3) + bn(128) + conv(128, 128, 3) + bn(128)  # block 3, -> 4x4
        + linear(128 * 4 * 4, 256) + linear(256, 10)
    )
    assert expected == 814_570
    assert n_params(create_model("cnn")) == expected


def test_resnet8_hand_count():
    expected = (
        conv(3, 16, 3) + bn(16)  # stem
        + conv(16, 16, 3) + bn(16) + conv(16, 16, 3) + bn(16)  # stack 1, identity shortcut
        + conv(16, 32, 3) + bn(32) + conv(32, 32, 3) + bn(32)  # stack 2 ...
        + conv(16, 32, 1) + bn(32)  # ... 1x1 shortcut
        + conv(32, 64, 3) + bn(64) + conv(64, 64, 3) + bn(64)  # stack 3 ...
        + conv(32, 64, 1) + bn(64)  # ... 1x1 shortcut
        + linear(64, 10)
    )
    assert expected == 78_042
    assert n_params(create_model("resnet8")) == expected


def test_resnet8_vs_keras_reference():
    """The Keras MLPerf Tiny ResNet-8 has 78,666 params in total, 78,186 trainable (480 are BN
    moving statistics). It has biases in all 9 convs (336 values) and no BN on the two shortcut
    convs; ours drops the biases and adds BN there (+192)."""
    keras_trainable = 78_666 - (16 + 16 + 16 + 32 + 32 + 64 + 64) * 2
    assert keras_trainable == 78_186
    conv_biases = 16 * 3 + 32 * 3 + 64 * 3
    shortcut_bn = bn(32) + bn(64)
    assert n_params(create_model("resnet8")) == keras_trainable - conv_biases + shortcut_bn


def _cifar_resnet_hand_count(n):
    total = conv(3, 16, 3) + bn(16)
    cin = 16
    for width in (16, 32, 64):
        for block in range(n):
            total += conv(cin, width, 3) + bn(width) + conv(width, width, 3) + bn(width)
            if cin != width:  # option B shortcut at the first block of stages 2 and 3
                total += conv(cin, width, 1) + bn(width)
            cin = width
    return total + linear(64, 10)


def test_resnet20_hand_count():
    expected = _cifar_resnet_hand_count(3)
    assert expected == 272_474  # option A (no shortcut params) would be 269,722
    assert n_params(create_model("resnet20")) == expected


@pytest.mark.parametrize("depth", [32, 44, 56])
def test_deeper_cifar_resnets(depth):
    assert n_params(create_model(f"resnet{depth}")) == _cifar_resnet_hand_count((depth - 2) // 6)


def test_resnet18_cifar_stem_count():
    # torchvision count - conv7x7 + conv3x3 stem - 1000-way fc + 10-way fc
    expected = 11_689_512 - conv(3, 64, 7) + conv(3, 64, 3) - linear(512, 1000) + linear(512, 10)
    assert n_params(create_model("resnet18")) == expected == 11_173_962
