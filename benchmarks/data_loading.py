"""Benchmark lowbit.data: load a training split from the cache and iterate one epoch.

For CIFAR-10 train (batch 128, pad-4 crop + flip) and Imagenette train (random resized crop
to 128 px + flip from the stored 160 px), it records the cached load time, the seconds per
training epoch (median and best of ``--repeats`` epochs) and images/s, prints the JSON and
writes it to ``--out``. The first run also decodes the JPEGs into the cache.

    python -m benchmarks.data_loading --out benchmarks/results/data_loading.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from lowbit.data import BatchLoader, load_split, train_augment
from lowbit.data.presets import stored_size

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "data_loading.json"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="datasets folder (else LOWBIT_DATA...)")
    parser.add_argument("--cache-dir", default=None, help="decoded-image cache (LOWBIT_CACHE)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "imagenette"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=128, help="imagenette train size")
    parser.add_argument("--no-prefetch", action="store_true", help="disable the prefetch thread")
    parser.add_argument("--repeats", type=int, default=3,
                        help="epochs timed per dataset (median and best are reported)")
    return parser.parse_args(argv)


def bench_dataset(name: str, args: argparse.Namespace) -> Dict[str, float]:
    """Time a cached load and shuffled, augmented training epochs of ``name``."""
    image_size = args.image_size if name == "imagenette" else None
    stored = stored_size(name, image_size)
    start = time.perf_counter()
    load_split(name, "train", args.data_dir, image_size=stored, cache_dir=args.cache_dir)
    first_load = time.perf_counter() - start  # includes decoding if the cache was cold
    start = time.perf_counter()
    train = load_split(name, "train", args.data_dir, image_size=stored, cache_dir=args.cache_dir)
    cached_load = time.perf_counter() - start
    loader = BatchLoader(train, args.batch_size, augment=train_augment(name, image_size),
                         shuffle=True, seed=0, prefetch=not args.no_prefetch)
    times, seen, shape = [], 0, None
    for epoch in range(max(1, args.repeats)):
        loader.set_epoch(epoch)
        start, seen = time.perf_counter(), 0
        for x, y in loader:
            seen, shape = seen + len(y), list(x.shape[1:])
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "images": seen, "stored_px": stored, "output_shape": shape,
        "batch_size": args.batch_size, "batches": len(loader),
        "first_load_s": round(first_load, 3), "cached_load_s": round(cached_load, 3),
        "epoch_s": round(median, 3), "epoch_best_s": round(min(times), 3),
        "images_per_s": round(seen / median, 1), "epochs_timed": len(times),
    }


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    """Run the benchmark, print the JSON and write it to ``--out``."""
    args = parse_args(argv)
    result = {
        "benchmark": "data_loading",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "prefetch": not args.no_prefetch,
        "results": {name: bench_dataset(name, args) for name in args.datasets},
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
