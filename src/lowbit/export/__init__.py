"""Ship a converted model: packed lowbit files, ONNX (QDQ) and QONNX, and run it without training code.

=========================  ===================================================================
``exportable(model)``      prepared+calibrated model -> :class:`Exportable` (convert + metadata)
``save_packed``            packed safetensors file, data == accounted size (``load_packed``)
``export_onnx``            ONNX with QuantizeLinear/DequantizeLinear, runs in onnxruntime
``export_qonnx``           QONNX (``Quant`` nodes of any bit-width) for FINN / hls4ml
``IntegerExecutor``        integer reference executor (exact integer accumulation)
``FakeQuantExecutor``      fake-quant model rebuilt from the integer codes
=========================  ===================================================================

>>> import torch, tempfile, os
>>> from lowbit import calibrate, prepare
>>> from lowbit.models import create_model
>>> model = prepare(create_model("mlp", hidden=16))
>>> x = torch.randn(8, 1, 28, 28)
>>> calibrate(model, [x])
>>> path = os.path.join(tempfile.mkdtemp(), "mlp.lowbit")
>>> _ = save_packed(model, path)
>>> runner = IntegerExecutor(path)              # rebuilt from the file alone
>>> bool((runner(x).argmax(1) == model.eval()(x).argmax(1)).all())
True

See ``docs/export.md`` for the formats and guarantees.
"""

from .executor import FakeQuantExecutor, IntegerExecutor
from .onnx_export import export_onnx, export_qonnx
from .packed import PackedInfo, load_packed, save_packed
from .source import Exportable, exportable

__all__ = ["exportable", "Exportable", "save_packed", "load_packed", "PackedInfo", "export_onnx",
           "export_qonnx", "IntegerExecutor", "FakeQuantExecutor"]
