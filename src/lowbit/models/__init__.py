"""Model zoo for lowbit: the networks of the learned low-bit quantization experiments.

Build models by name; each carries ``model.lowbit_spec`` so exported files can rebuild it.

>>> from lowbit.models import create_model, list_models
>>> model = create_model("mobilenet_v2", width_mult=0.35)  # CIFAR-10 defaults: 10 classes, 32 px
>>> model.lowbit_spec["input_size"], sorted(m["name"] for m in list_models())[:3]
(32, ['cnn', 'efficientnet_lite0', 'mlp'])

Layer conventions the quantization code relies on (see :mod:`lowbit.models.layers`): activation
*modules* (``nn.ReLU`` / ``nn.ReLU6``), residual additions through :class:`Add`, and bias-free
convs that feed their BatchNorm directly.
"""

from . import cnn, efficientnet, mlp, mobilenet, resnet  # noqa: F401  (register the models)
from .factory import MODELS, create_model, list_models, model_spec
from .layers import Add

__all__ = ["MODELS", "Add", "create_model", "list_models", "model_spec"]
