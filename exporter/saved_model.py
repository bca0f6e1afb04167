"""Stage 4: ONNX -> float TensorFlow SavedModel with onnx2tf, offline.

onnx2tf transposes 4-D image tensors to NHWC. When every input looks like an image it loads
`calibration_image_sample_data_20x128x128x3_float32.npy` from the current directory and
downloads it when missing; we run it in a private working directory where that file already
lies, made from scikit-image's bundled photographs, so nothing is ever fetched.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilize.errors import ConversionError
from mobilize.exporter.calibration import ONNX2TF_SAMPLE_FILE, onnx2tf_sample_images
from mobilize.exporter.config import DEFAULT_ONNX_PASSES
from mobilize.exporter.onnx_export import OnnxArtifact, node_op_type
from mobilize.exporter.tflite_order import TensorOrder

SIGNATURE = "serving_default"


@dataclass(frozen=True)
class SavedModelArtifact:
    path: Path
    input_shapes: dict[str, tuple[int, ...]]  # as TensorFlow sees them (NHWC for images)
    output_shapes: dict[str, tuple[int, ...]]
    # forward()'s order (the ONNX graph's); the signature's own is alphabetical
    order: TensorOrder | None = None


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def onnx_to_saved_model(onnx: OnnxArtifact, out_dir: Path) -> SavedModelArtifact:
    import onnx2tf

    onnx_path = onnx.path.resolve()
    out_dir = out_dir.resolve()
    log = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="mobilize-onnx2tf-") as work:
        np.save(Path(work) / ONNX2TF_SAMPLE_FILE, onnx2tf_sample_images())
        try:
            with _working_directory(Path(work)), contextlib.redirect_stdout(log):
                onnx2tf.convert(
                    input_onnx_file_path=str(onnx_path),
                    output_folder_path=str(out_dir),
                    not_use_onnxsim=True,  # the clean-up stage already simplified the graph
                    copy_onnx_input_output_names_to_tflite=True,
                    non_verbose=True,
                )
        except Exception as error:
            raise _conversion_error(error, log.getvalue(), onnx_path) from error
    for stray in out_dir.glob("*.tflite"):  # onnx2tf's own float files; we convert ourselves
        stray.unlink()
    if not (out_dir / "saved_model.pb").is_file():
        raise ConversionError(
            "onnx2tf wrote no SavedModel",
            hint="run with --debug; the ONNX file beside the output can be opened in Netron",
        )
    return _describe(out_dir, TensorOrder(onnx.input_names, onnx.output_names))


def _describe(path: Path, order: TensorOrder | None = None) -> SavedModelArtifact:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures[SIGNATURE]
    _, inputs = signature.structured_input_signature
    outputs = signature.structured_outputs
    return SavedModelArtifact(
        path=path,
        input_shapes={k: tuple(int(d) for d in v.shape) for k, v in inputs.items()},
        output_shapes={k: tuple(int(d) for d in v.shape) for k, v in outputs.items()},
        order=order,
    )


def _conversion_error(error: Exception, log: str, onnx_path: Path) -> ConversionError:
    clean_log = re.sub(r"\x1b\[[0-9;]*m", "", log)
    match = re.search(r"onnx_op_name:\s*(\S+)", clean_log)
    node = match.group(1) if match else None
    op_type = node_op_type(onnx_path, node) if node else None
    where = f" at {op_type} node {node!r}" if node else ""
    return ConversionError(
        f"onnx2tf cannot convert the graph{where}: {type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else ''}",
        hint=(f"try other ONNX rewrites before onnx2tf (--onnx-passes "
              f"{','.join(DEFAULT_ONNX_PASSES)} is the default), another --opset, or replace "
              f"the {op_type or 'failing'} layer in the model with standard Conv/ReLU/Add ops; "
              "--debug shows onnx2tf's trace"),
    )

