"""The quantizer registry, kind name -> Quantizer class.

It sits below :mod:`lowbit.quantizers.config` so that a config is validated by the class its
``kind`` names, whether lowbit or a user registered it (``QUANTIZERS.register("mine")(MyQuantizer)``:
``QuantizerConfig(kind="mine")`` then runs ``MyQuantizer.check_config``).
"""

from ..registry import Registry

QUANTIZERS = Registry("quantizer")
