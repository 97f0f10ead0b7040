"""Deterministic, shardable mini-batches from an in-memory :class:`ImageSet`.

Everything random is derived from ``(seed, epoch)``: the epoch permutation from
``(seed, epoch)`` (shared by all ranks, so their shards are disjoint) and the augmentation of
batch ``i`` on rank ``r`` from ``(seed, epoch, r, i)``. Two loaders built alike therefore
yield bit-identical batches, with or without the prefetch thread.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional, Tuple

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .augment import Augment, apply_augment
from .imageset import ImageSet
from .prefetch import Prefetcher

Batch = Tuple[torch.Tensor, torch.Tensor]  # x float32 (B, C, H, W), y int64 (B,)

_PERMUTATION, _AUGMENT = 0, 1  # stream tags for seed derivation


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that depends on every key (via numpy's SeedSequence hashing).

    >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(1, 0)
    True
    """
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"BatchLoader {name} must be an int >= {low}, got {value!r}")


class BatchLoader:
    """Iterate ``(x, y)`` batches of an :class:`ImageSet`, augmenting on the fly.

    ``augment=None`` normalises with the set's mean/std only. With ``world_size > 1`` this rank
    sees a disjoint strided slice of the epoch's permutation, padded by wrap-around so that
    every rank has ``num_samples`` samples (as ``DistributedSampler`` does). Call
    :meth:`set_epoch` before each epoch to get a new order.

    >>> from lowbit.data import train_augment
    >>> aug = train_augment("cifar10")
    >>> loader = BatchLoader(train_set, 128, augment=aug, shuffle=True)  # doctest: +SKIP
    >>> for epoch in range(10):  # doctest: +SKIP
    ...     loader.set_epoch(epoch)
    ...     for x, y in loader: ...
    """

    def __init__(self, imageset: ImageSet, batch_size: int, *, augment: Optional[Augment] = None,
                 shuffle: bool = False, seed: int = 0, drop_last: bool = False, rank: int = 0,
                 world_size: int = 1, channels_last: bool = False, prefetch: bool = True):
        _check_int("batch_size", batch_size, 1)
        _check_int("seed", seed, 0)
        _check_int("world_size", world_size, 1)
        _check_int("rank", rank, 0)
        if rank >= world_size:
            raise ConfigError(f"BatchLoader rank {rank} must be < world_size {world_size}")
        if augment is None:
            augment = Augment(mean=imageset.mean, std=imageset.std)
        if not isinstance(augment, Augment):
            raise ConfigError(f"augment must be an Augment or None, got {type(augment).__name__}")
        self.imageset, self.batch_size, self.augment = imageset, batch_size, augment
        self.shuffle, self.seed, self.drop_last = bool(shuffle), seed, bool(drop_last)
        self.rank, self.world_size = rank, world_size
        self.channels_last, self.prefetch = bool(channels_last), bool(prefetch)
        self.epoch = 0
        self._check_sizes()

    def _check_sizes(self) -> None:
        if len(self.imageset) == 0:
            raise DataError(f"{self.imageset.name}: the dataset is empty")
        if len(self) == 0:
            raise DataError(f"{self.imageset.name}: {self.num_samples} samples per rank make no "
                            f"full batch of {self.batch_size} with drop_last=True; lower the "
                            "batch size or set drop_last=False")
        channels = len(self.augment.mean)
        if channels not in (1, self.imageset.images.shape[1]):
            raise ConfigError(f"augment has {channels} mean/std values but "
                              f"{self.imageset.name} has {self.imageset.images.shape[1]} channels")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration produces.

        >>> loader.set_epoch(3)  # doctest: +SKIP
        """
        _check_int("epoch", epoch, 0)
        self.epoch = epoch

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch (before ``drop_last``)."""
        return math.ceil(len(self.imageset) / self.world_size)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def epoch_indices(self, epoch: Optional[int] = None) -> torch.Tensor:
        """This rank's sample indices for ``epoch`` (default: the current one): (num_samples,).

        >>> loader.epoch_indices(0)[:4]  # doctest: +SKIP
        tensor([3, 17, 0, 42])
        """
        epoch = self.epoch if epoch is None else epoch
        count = len(self.imageset)
        if self.shuffle:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch, _PERMUTATION))
            order = torch.randperm(count, generator=gen)  # (N,)
        else:
            order = torch.arange(count)
        total = self.num_samples * self.world_size
        if total > count:  # wrap around so every rank gets num_samples
            order = order.repeat(math.ceil(total / count))[:total]
        return order[self.rank:total:self.world_size]

    def _make_batch(self, index: torch.Tensor, epoch: int, step: int) -> Batch:
        images = self.imageset.images.index_select(0, index)  # (B, C, H, W) uint8
        labels = self.imageset.labels.index_select(0, index)  # (B,)
        gen = None
        if self.augment.is_random:
            key = derive_seed(self.seed, epoch, self.rank, step, _AUGMENT)
            gen = torch.Generator().manual_seed(key)
        x = apply_augment(images, self.augment, gen)  # (B, C, h, w) float32
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels

    def _batches(self, epoch: int) -> Iterator[Batch]:
        indices = self.epoch_indices(epoch)
        for step in range(len(self)):
            yield self._make_batch(indices[step * self.batch_size:(step + 1) * self.batch_size],
                                   epoch, step)

    def __iter__(self) -> Iterator[Batch]:
        batches = self._batches(self.epoch)
        if not self.prefetch:
            yield from batches
            return
        prefetcher = Prefetcher(batches, depth=2)
        try:
            yield from prefetcher
        finally:
            prefetcher.close()

    def __repr__(self) -> str:
        return (f"BatchLoader({self.imageset.name}/{self.imageset.split}, batch_size="
                f"{self.batch_size}, batches={len(self)}, shuffle={self.shuffle}, "
                f"rank={self.rank}/{self.world_size})")
