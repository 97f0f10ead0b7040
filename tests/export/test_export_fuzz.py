"""Fuzz the packed loader: mutated files load or raise FormatError/ConfigError, nothing else.

The mutations (bit flips, truncation, trailing bytes, header bytes, header length, and manifest
edits re-signed with a valid checksum) come from :mod:`lowbit.export.fuzz`; with
``verify=False`` the checksum is skipped so every mutation reaches the structural checks.
``benchmarks/fuzz_packed.py`` runs >= 10,000 of them with a per-file time limit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.errors import FormatError
from lowbit.export import exportable
from lowbit.export.fuzz import KINDS, check, mutate
from lowbit.export.packed import from_packed_bytes, to_packed_bytes
from lowbit.models import create_model

X = torch.randn(2, 3, 8, 8)


@pytest.fixture(scope="module")
def blob() -> bytes:
    torch.manual_seed(0)
    model = create_model("cnn", widths=[4, 4, 8], hidden=8, input_size=8)
    spec = QuantSpec(weight=QuantizerConfig(kind="learned_range", bits=3, granularity="channel"),
                     act=QuantizerConfig(kind="uniform", bits=5, symmetric=False),
                     bias=QuantizerConfig(kind="uniform", bits=8))
    model = prepare(model, spec)
    calibrate(model, [X])
    return to_packed_bytes(exportable(model.eval(), fold_bn=False))[0]


def test_unmutated_file_loads(blob):
    assert check(blob, True, X) == "ok"


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(KINDS), verify=st.booleans())
def test_mutated_files_fail_cleanly(blob, seed, kind, verify):
    _, bad = mutate(blob, np.random.default_rng(seed), kinds=(kind,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = check(bad, verify, X)  # raises on anything but the documented errors
    if verify and kind != "manifest" and bad != blob:
        assert outcome != "ok"  # the checksum catches every change outside the manifest path


def test_checksum_catches_a_single_payload_bit(blob):
    bad = bytearray(blob)
    bad[-1] ^= 1
    with pytest.raises(FormatError, match="checksum"):
        from_packed_bytes(bytes(bad))
