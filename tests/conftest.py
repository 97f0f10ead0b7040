"""Session-wide defaults for the test suite (keep this file minimal).

* ``LOWBIT_COMPILE=0``: quantizers use the eager kernels, so no test pays for ``torch.compile``
  unless it asks for it (the kernel test calls ``lowbit.ops.set_fast_kernels(True)`` and resets
  it). An explicit ``LOWBIT_COMPILE`` in the environment is respected.
* One intra-op thread (``LOWBIT_TEST_THREADS`` to change): the test tensors are tiny, and on a
  busy machine OpenMP's spinning worker threads made them up to 100x slower.
"""

import os

import torch

os.environ.setdefault("LOWBIT_COMPILE", "0")
torch.set_num_threads(int(os.environ.get("LOWBIT_TEST_THREADS", "1")))
