"""Training methods: each a config plus loss terms and step hooks (see :class:`Method`).

=========  ===================================================================
qgt        quantization-guided training regularizer (the QGT paper)
budget     learned mixed precision under a memory budget (Schaefer et al.)
distill    knowledge distillation from the float model (soft-label or penalty)
guided     joint training with a full-precision twin (Zhuang et al.)
penalties  nested-quantizer loss terms (Chinbat's thesis)
swa        stochastic weight averaging of end-of-epoch weights (float and fixed-bit QAT)
=========  ===================================================================
"""

from .average import SWA, SWAConfig
from .base import METHODS, Method, TrainContext
from .budget import Budget, BudgetConfig
from .distill import Distill, DistillConfig
from .qgt import QGT, QGTConfig

__all__ = ["METHODS", "Method", "TrainContext", "QGT", "QGTConfig", "Budget", "BudgetConfig", "Distill",
           "DistillConfig", "SWA", "SWAConfig"]
