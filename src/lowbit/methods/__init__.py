"""Training methods: each a config plus loss terms and step hooks (see :class:`Method`).

=============  ===================================================================
qgt            quantization-guided training regularizer (the QGT paper)
budget         learned mixed precision under a memory budget (Schaefer et al.)
distill        knowledge distillation from the float model (soft-label or penalty)
guided         joint training with a full-precision twin (Zhuang et al.: Towards Effective
               Low-bitwidth Convolutional Neural Networks)
inverse_scale  penalty on small learned scales (Chinbat's thesis, 3.2.1; :mod:`.penalties`)
bin_count      constraint on the bins a slice uses (Chinbat's thesis, 3.2.2)
deviation      distance between quantized and original values (Chinbat's thesis, 3.2.3)
swa            stochastic weight averaging of end-of-epoch weights (float and fixed-bit QAT)
=============  ===================================================================
"""

from .average import SWA, SWAConfig
from .base import METHODS, Companion, Method, TrainContext
from .budget import Budget, BudgetConfig
from .distill import Distill, DistillConfig
from .guided import Guided, GuidedConfig
from .penalties import (BinCount, BinCountConfig, Deviation, DeviationConfig, InverseScale,
                        InverseScaleConfig)
from .qgt import QGT, QGTConfig

__all__ = ["METHODS", "Companion", "Method", "TrainContext", "QGT", "QGTConfig", "Budget", "BudgetConfig", "Distill",
           "DistillConfig", "Guided", "GuidedConfig", "SWA", "SWAConfig", "InverseScale", "InverseScaleConfig",
           "BinCount", "BinCountConfig", "Deviation", "DeviationConfig"]
