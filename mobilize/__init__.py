"""mobilize: PyTorch image generators to TFLite files (int8 above all), verified, and
benchmarked on Android phones over ADB.

The public API is small:

    import mobilize
    result = mobilize.export(my_module, inputs=[(1, 3, 256, 256)], value_range=(-1, 1),
                             targets=["tflite-int8"], out="out/my_gen")
    runs = mobilize.bench(result.out_dir, serial="127.0.0.1:5555", runs=50)

`export()` returns an `ExportResult`, `bench()` a list of `BenchRecord`. Both raise a
`MobilizeError` (with `.message`, `.hint` and `.exit_code`) on what a user can fix. The heavy
parts (torch, TensorFlow) load only when `export()` runs, so `import mobilize` is quick.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from mobilize.api import bench, export
from mobilize.errors import ExitCode, MobilizeError

try:
    __version__ = version("mobilize")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from mobilize.bench.record import BenchRecord
    from mobilize.exporter.pipeline import ExportResult, TargetResult

__all__ = ["BenchRecord", "ExitCode", "ExportResult", "MobilizeError", "TargetResult",
           "__version__", "bench", "export"]

_LAZY = {
    "ExportResult": "mobilize.exporter.pipeline",
    "TargetResult": "mobilize.exporter.pipeline",
    "BenchRecord": "mobilize.bench.record",
}


def __getattr__(name: str) -> Any:
    # The typed results live with the parts that make them; importing them here eagerly
    # would load torch for `mobilize bench`.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mobilize' has no attribute {name!r}")
