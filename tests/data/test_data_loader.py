"""BatchLoader: determinism, epochs, sharding, prefetching, options."""

import gc
import threading
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.data import Augment, BatchLoader, ImageSet
from lowbit.errors import ConfigError, DataError


def _set(n=50, c=3, size=8, seed=0):
    """A toy set whose label is the sample index, so batches identify their samples."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8, generator=gen)
    return ImageSet(images, torch.arange(n), [str(i) for i in range(n)], "toy",
                    (0.5,) * c, (0.25,) * c, "train")


def _epoch(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


AUG = Augment(crop_padding=2, flip=True, mean=(0.5,) * 3, std=(0.25,) * 3)


def test_batches_shapes_and_len():
    loader = BatchLoader(_set(50), 16)
    batches = _epoch(loader)
    assert len(loader) == len(batches) == 4 and loader.num_samples == 50
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (16, 3, 8, 8) and y.dtype == torch.int64
    assert torch.cat([y for _, y in batches]).tolist() == list(range(50))  # no shuffle: in order
    assert len(BatchLoader(_set(50), 16, drop_last=True)) == 3


def test_default_augment_normalises_with_set_stats():
    data = _set(4)
    x, _ = next(iter(BatchLoader(data, 4)))
    assert torch.allclose(x, (data.images.float() / 255 - 0.5) / 0.25, atol=1e-5)


@pytest.mark.parametrize("prefetch", [True, False])
def test_same_seed_and_epoch_bit_identical(prefetch):
    data = _set()
    a = BatchLoader(data, 16, augment=AUG, shuffle=True, seed=3, prefetch=True)
    b = BatchLoader(data, 16, augment=AUG, shuffle=True, seed=3, prefetch=prefetch)
    a.set_epoch(5)
    b.set_epoch(5)
    for (xa, ya), (xb, yb) in zip(_epoch(a), _epoch(b)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(_epoch(a), _epoch(a)))  # re-iterable


def test_epochs_and_seeds_differ():
    loader = BatchLoader(_set(), 50, augment=AUG, shuffle=True, seed=0)
    first = _epoch(loader)[0]
    loader.set_epoch(1)
    second = _epoch(loader)[0]
    assert not torch.equal(first[1], second[1])
    assert sorted(first[1].tolist()) == sorted(second[1].tolist()) == list(range(50))
    other = _epoch(BatchLoader(_set(), 50, augment=AUG, shuffle=True, seed=1))[0]
    assert not torch.equal(first[1], other[1])


def test_augmentation_differs_between_epochs_without_shuffle():
    loader = BatchLoader(_set(), 50, augment=AUG)
    x0 = _epoch(loader)[0][0]
    loader.set_epoch(1)
    assert not torch.equal(x0, _epoch(loader)[0][0])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), batch=st.integers(1, 9), world=st.integers(1, 4),
       seed=st.integers(0, 1000), shuffle=st.booleans())
def test_shards_are_disjoint_and_cover_the_epoch(n, batch, world, seed, shuffle):
    data = _set(n, c=1, size=2)
    single = BatchLoader(data, batch, shuffle=shuffle, seed=seed, prefetch=False)
    ranks = [BatchLoader(data, batch, shuffle=shuffle, seed=seed, rank=r, world_size=world,
                         prefetch=False) for r in range(world)]
    seen = [torch.cat([y for _, y in loader]).tolist() for loader in ranks]
    assert len({len(s) for s in seen}) == 1 and len(seen[0]) == ranks[0].num_samples
    union = Counter(i for s in seen for i in s)
    want = Counter(torch.cat([y for _, y in single]).tolist())
    order = single.epoch_indices().tolist()
    padding = Counter((order * world)[:ranks[0].num_samples * world - n])  # wrap-around
    assert union == want + padding
    if n % world == 0:
        assert union == want  # exactly the single-process epoch, as a multiset


def test_two_ranks_equal_single_process_epoch():
    data = _set(64)
    single = BatchLoader(data, 8, augment=AUG, shuffle=True, seed=9)
    single.set_epoch(2)
    ranks = []
    for r in range(2):
        loader = BatchLoader(data, 8, augment=AUG, shuffle=True, seed=9, rank=r, world_size=2)
        loader.set_epoch(2)
        ranks.append(set(torch.cat([y for _, y in loader]).tolist()))
    assert not ranks[0] & ranks[1]
    assert sorted(ranks[0] | ranks[1]) == sorted(torch.cat([y for _, y in single]).tolist())


def test_errors_in_the_prefetch_thread_propagate():
    loader = BatchLoader(_set(), 16, augment=Augment(center_crop=64, mean=(0.5,), std=(1.0,)))
    with pytest.raises(DataError, match="larger than the images"):
        _epoch(loader)


def test_early_break_stops_the_thread():
    before = threading.active_count()
    for _ in BatchLoader(_set(200), 4):
        break
    gc.collect()  # closes the abandoned generator, whose finally stops the thread
    assert threading.active_count() == before


def test_channels_last():
    x, _ = next(iter(BatchLoader(_set(), 4, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(batch_size=0), ConfigError, "batch_size"),
    (dict(rank=2, world_size=2), ConfigError, "rank 2"),
    (dict(world_size=0), ConfigError, "world_size"),
    (dict(seed=-1), ConfigError, "seed"),
    (dict(augment="flip"), ConfigError, "Augment"),
    (dict(augment=Augment(mean=(0.5, 0.5), std=(1.0, 1.0))), ConfigError, "channels"),
    (dict(batch_size=64, drop_last=True), DataError, "no full batch"),
])
def test_invalid_arguments(kwargs, err, match):
    args = dict(batch_size=8)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        BatchLoader(_set(50), args.pop("batch_size"), **args)


def test_set_epoch_validates():
    with pytest.raises(ConfigError, match="epoch"):
        BatchLoader(_set(), 8).set_epoch(-1)
