"""One unseen family through litert-torch's own int8 path: PyTorch -> PT2E -> .tflite.

    .venv-litert/bin/python benchmarks/litert_torch_convert.py FAMILY SIZE OUT.tflite \
        CALIB.npy [CALIB.npy ...] [--weights STATE_DICT.pt]

Runs inside .venv-litert (benchmarks/litert_torch_env.sh), never in the main .venv: it
imports only torch, numpy, litert_torch and tests/exporter/unseen_families.py (loaded by
path; that module is pure torch). benchmarks/unseen_suite.py calls it to measure
litert-torch beside our int8 and onnx2tf's.

The family is built as the suite builds it (`FAMILIES[name].build(size)`, seeded inside, and
with --weights the suite's trained state_dict loaded into it), so the weights are the same;
the last stdout line is JSON with their digest, which the suite checks against its own
model's. Quantization is litert-torch's PT2E full-integer recipe:
per-channel symmetric int8 weights, static int8 activations (histogram observers),
calibrated on the given arrays, one (N, 3, H, W) float32 .npy per model input in the
family's input range. When litert-torch cannot convert the family, the last stderr line is
FAILURE_PREFIX + the error's first line and the exit code is CONVERSION_FAILED: a failure
to convert is a result the suite reports.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

FAMILIES_FILE = Path(__file__).resolve().parent.parent / "tests/exporter/unseen_families.py"
FAILURE_PREFIX = "litert-torch failed: "
CONVERSION_FAILED = 3  # argparse's usage errors exit 2
THREADS = 2


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer, by name: equal digests, equal weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def failure_reason(returncode: int, stderr: str) -> str:
    """What the suite reports for a converter run that did not write its file: the
    converter's own failure line, else the last line it printed (a crash, a usage error)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(FAILURE_PREFIX):
            return line[len(FAILURE_PREFIX):]
    return f"exit {returncode}: {lines[-1]}" if lines else f"exit {returncode}, no message"


def _unseen_families() -> ModuleType:
    """tests/exporter/unseen_families.py by path: importing the tests package is not needed
    and this venv has no mobilize."""
    spec = importlib.util.spec_from_file_location("unseen_families", FAMILIES_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def quantize_and_convert(model: torch.nn.Module, calib: list[np.ndarray], out: Path) -> None:
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e  # litert-torch's own PT2E backend

    sample = tuple(torch.from_numpy(array[:1]) for array in calib)
    exported = torch.export.export(model, sample).module()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for index in range(len(calib[0])):
            prepared(*(torch.from_numpy(array[index:index + 1]) for array in calib))
    quantized = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    edge = litert_torch.convert(quantized, sample,
                                quant_config=QuantConfig(pt2e_quantizer=quantizer))
    edge.export(str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("size", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("calib", type=Path, nargs="+", help="one .npy per model input")
    parser.add_argument("--weights", type=Path,
                        help="a state_dict for the family (default: its seeded init)")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    family = _unseen_families().FAMILIES[args.family]
    if len(args.calib) != len(family.input_names):
        parser.error(f"{args.family} takes {len(family.input_names)} inputs "
                     f"{family.input_names}, got {len(args.calib)} .npy")
    model = family.build(args.size)
    if args.weights is not None:
        model.load_state_dict(torch.load(args.weights, weights_only=True))
    calib = [np.load(path).astype(np.float32) for path in args.calib]
    start = time.perf_counter()
    try:
        quantize_and_convert(model, calib, args.out)
    except Exception as error:  # any failure to convert is the result
        print(FAILURE_PREFIX + _first_line(error), file=sys.stderr)
        return CONVERSION_FAILED
    print(json.dumps({"weights_sha256": weights_digest(model),
                      "convert_s": round(time.perf_counter() - start, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
