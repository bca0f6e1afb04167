"""Write the model cards (models/README.md) from the committed weights:
`python -m mobilize.models.card`.

Every figure is measured here on CPU: parameters, weight file size, MACs at 256x256 (forward
hooks on Conv2d/ConvTranspose2d/Linear), and mean PSNR/SSIM against each model's ground truth
on the held-out photos (models/data.py), in PyTorch fp32 and, for the int8 columns, from the
model exported by the exporter to tflite-int8 and run in the TFLite interpreter (scored by
the same code on the same photos, so the two columns compare).
"""

from __future__ import annotations

import importlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from mobilize.contract.files import atomic_write_bytes
from mobilize.contract.specs import InputSpec
from mobilize.contract.tflite_runner import NchwRunner, TfliteRunner
from mobilize.errors import ConversionError, MobilizeError
from mobilize.exporter.config import ExportConfig, Target
from mobilize.exporter.pipeline import run_export
from mobilize.models import fast_style, metrics, prune
from mobilize.models.qat import qat_name
from mobilize.models.train import MODULES, ModelName
from mobilize.models.weights import load_pretrained, read_manifest, record_path, weight_path

CARD = Path(__file__).resolve().parent / "README.md"
TASK_TEXT = {
    "cartoon": "photo -> cartoon (models/stylize.py: cartoon)",
    "sketch": "photo -> pencil sketch (stylize.sketch)",
    "super_resolution_x3": "x3 super-resolution of bicubic-downscaled photos",
    "color_transfer": "content + style -> colour transfer (stylize.color_transfer)",
}
BASELINE_TEXT = {
    "cartoon": "unchanged photo", "sketch": "unchanged photo",
    "super_resolution_x3": "bicubic x3", "color_transfer": "unchanged content",
}


@dataclass(frozen=True)
class Int8Figures:
    """The exported tflite-int8 file: its size and its held-out quality (None: export failed)."""

    size_bytes: int | None
    quality: metrics.Quality | None
    error: str = ""


@dataclass(frozen=True)
class CardRow:
    name: str
    task: str
    parameters: int
    size_bytes: int
    macs: int
    quality: metrics.Quality
    baseline: metrics.Quality
    sha256: str
    record: dict[str, object]
    int8: Int8Figures | None = None  # None: not exported (the unfine-tuned pruned net)


def _inputs_at(module: object, size: int) -> tuple[torch.Tensor, ...]:
    shapes = [spec.shape for spec in module.INPUTS]  # type: ignore[attr-defined]
    if module.TASK == "super_resolution_x3":  # type: ignore[attr-defined]
        return tuple(torch.rand(s[0], s[1], size // 3, size // 3) for s in shapes)
    return tuple(torch.rand(s[0], s[1], size, size) for s in shapes)


def measure_model(name: str, module: ModuleType, model: torch.nn.Module, weights_name: str,
                  record: dict[str, object] | None = None) -> CardRow:
    """Figures for `model` (architecture from `module`, file size/hash of `weights_name`)."""
    return CardRow(
        name=name, task=module.TASK, parameters=metrics.count_parameters(model),
        size_bytes=weight_path(weights_name).stat().st_size,
        macs=metrics.count_macs(model, *_inputs_at(module, 256)),
        quality=metrics.heldout_quality(model, module.TASK, module.OUTPUT_RANGE.low),
        baseline=metrics.baseline_quality(module.TASK), sha256=read_manifest()[weights_name],
        record=record or {})


def measure(name: str, module_name: str | None = None) -> CardRow:
    """Figures for weights `name` (the architecture of `module_name`, default the same)."""
    module = importlib.import_module(f"mobilize.models.{module_name or name}")
    model = load_pretrained(name, module.build(pretrained=False))
    record_file = record_path(name)
    record = json.loads(record_file.read_text()) if record_file.exists() else {}
    return measure_model(name, module, model, name, record)


class TfliteModel(nn.Module):
    """An exported .tflite behind PyTorch's call (NCHW float tensors in and out), so that
    metrics.heldout_quality scores it with exactly the code and photos of the fp32 column.
    The exporter's own helpers (de)quantize the int8 I/O and move NCHW <-> NHWC."""

    def __init__(self, content: bytes, inputs: Sequence[InputSpec],
                 output_nchw: Sequence[int]) -> None:
        super().__init__()
        self.input_names = [spec.name for spec in inputs]
        output_name = next(iter(TfliteRunner(content).output_details))
        self.output_name = output_name
        self.runner = NchwRunner(content, {spec.name: spec.shape for spec in inputs},
                                 {output_name: output_nchw})
        if self.runner.odd_layouts():
            raise ConversionError(
                "the .tflite's tensor shapes match PyTorch's neither as they are nor "
                "channels-last, so its output cannot be scored",
                hint="export the model with static NCHW inputs (its INPUTS)")

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        feeds = {name: tensor.numpy() for name, tensor in zip(self.input_names, tensors,
                                                              strict=True)}
        return torch.from_numpy(self.runner(feeds)[self.output_name].copy())


def int8_quality(content: bytes, module: ModuleType, model: nn.Module) -> metrics.Quality:
    """Held-out PSNR/SSIM of an exported .tflite of `model` against the model's ground truth."""
    with torch.no_grad():
        output = model.eval()(*(torch.zeros(spec.shape) for spec in module.INPUTS))
    tflite = TfliteModel(content, module.INPUTS, tuple(output.shape))
    return metrics.heldout_quality(tflite, module.TASK, module.OUTPUT_RANGE.low)


def measure_int8(name: str, module: ModuleType, model: nn.Module,
                 model_ref: str | None = None, weights: Path | None = None) -> Int8Figures:
    """Export `model_ref` (default models.`name`:build), with `weights` if given, to
    tflite-int8 (the exporter's defaults, the module's INPUTS) into a temporary folder and
    score the file; an export failure is reported, not raised."""
    specs = module.INPUTS
    with tempfile.TemporaryDirectory(prefix=f"card-int8-{name}-") as work:
        try:
            # INPUTS given explicitly: a factory outside the model's module (prune's) has none
            result = run_export(ExportConfig(
                model_ref=model_ref or f"mobilize.models.{name}:build", out_dir=Path(work),
                targets=(Target.INT8,), weights=weights,
                input_shapes=tuple(s.shape for s in specs),
                input_ranges=tuple(s.value_range for s in specs),
                input_names=tuple(s.name for s in specs), output_range=module.OUTPUT_RANGE))
        except MobilizeError as error:
            return Int8Figures(None, None, error.message)
        target = result.targets[0]
        if not target.ok or not target.file:
            return Int8Figures(None, None, target.error or "no file written")
        content = (result.out_dir / target.file).read_bytes()
    return Int8Figures(len(content), int8_quality(content, module, model))


def _int8_cells(int8: Int8Figures | None) -> str:
    if int8 is None or int8.quality is None or int8.size_bytes is None:
        reason = "not measured" if int8 is None else f"export failed: {int8.error}"
        return f"{reason.replace('|', '/')[:80]} | - "
    return (f"{int8.quality.psnr:.2f} / {int8.quality.ssim:.3f} | "
            f"{int8.size_bytes / 1024:.0f} KB")


def _row(row: CardRow) -> str:
    trained = f"{row.record.get('steps', '?')} steps, {row.record.get('device', '?')}"
    return (f"| {row.name} | {TASK_TEXT[row.task]} | {row.parameters:,} | "
            f"{row.size_bytes / 1024:.0f} KB | {row.macs / 1e6:,.0f} M | "
            f"{row.quality.psnr:.2f} / {row.quality.ssim:.3f} | "
            f"{row.baseline.psnr:.2f} / {row.baseline.ssim:.3f} ({BASELINE_TEXT[row.task]}) | "
            f"{_int8_cells(row.int8)} | {trained} |")


def _int8_quality_cell(int8: Int8Figures | None) -> str:
    if int8 is None:
        return "-"
    if int8.quality is None:
        return f"export failed: {int8.error.replace('|', '/')[:60]}"
    return f"{int8.quality.psnr:.2f} / {int8.quality.ssim:.3f}"


@dataclass(frozen=True)
class QatPair:
    """A committed model and its quantization-aware fine-tuned weights (<name>_qat)."""

    base: CardRow
    qat: CardRow


def _drop(row: CardRow) -> str:
    """fp32 minus int8 PSNR: what quantization costs (QAT's aim is to shrink it)."""
    if row.int8 is None or row.int8.quality is None:
        return "-"
    return f"{row.quality.psnr - row.int8.quality.psnr:.2f}"


def _control_cells(record: dict[str, object]) -> str:
    """The control run's figures as its record keeps them (its weights are not committed)."""
    control = record.get("control")
    if not isinstance(control, dict) or control.get("int8_psnr") is None:
        return "- | - | -"
    fp32, int8 = float(control["heldout_psnr"]), float(control["int8_psnr"])
    return (f"{fp32:.2f} / {float(control['heldout_ssim']):.3f} | "
            f"{int8:.2f} / {float(control['int8_ssim']):.3f} | {fp32 - int8:.2f}")


def _qat_row(pair: QatPair) -> str:
    base, qat = pair.base, pair.qat
    run = (f"{qat.record.get('steps', '?')} steps, {qat.record.get('seconds', '?')} s, "
           f"{qat.record.get('device', '?')}")
    return (f"| {base.name} | {base.quality.psnr:.2f} / {base.quality.ssim:.3f} | "
            f"{_int8_quality_cell(base.int8)} | {_drop(base)} | "
            f"{_control_cells(qat.record)} | {qat.quality.psnr:.2f} / "
            f"{qat.quality.ssim:.3f} | {_int8_quality_cell(qat.int8)} | {_drop(qat)} | "
            f"{run} |")


def render(rows: list[CardRow], compression: list[tuple[str, CardRow]],
           qat: Sequence[QatPair] = ()) -> str:
    header = (
        "| model | task (ground truth) | parameters | fp32 file | MACs @256x256 | "
        "PSNR dB / SSIM, PyTorch fp32 | baseline PSNR / SSIM | PSNR dB / SSIM, tflite-int8 | "
        "int8 file | trained |\n"
        "|---|---|---|---|---|---|---|---|---|---|")
    lines = [_GENERATED, "", "# Model cards", "", _INTRO, "", header]
    lines += [_row(row) for row in rows]
    lines += ["", _NOTES, "", "## Weights (sha256)", "",
              "| file | sha256 |", "|---|---|"]
    extra = [row for label, row in compression if "no fine-tuning" not in label
             and row.name not in {r.name for r in rows}]
    lines += [f"| weights/{r.name}.pt | `{r.sha256}` |"
              for r in rows + extra + [pair.qat for pair in qat]]
    if compression:
        lines += ["", "## Compression: fast_style -> pruned, and -> style_student", "",
                  "| step | parameters | fp32 file | MACs @256 | held-out PSNR / SSIM, "
                  "PyTorch fp32 | held-out PSNR / SSIM, tflite-int8 |",
                  "|---|---|---|---|---|---|"]
        for label, row in compression:
            lines.append(f"| {label} | {row.parameters:,} | {row.size_bytes / 1024:.0f} KB | "
                         f"{row.macs / 1e6:,.0f} M | {row.quality.psnr:.2f} / "
                         f"{row.quality.ssim:.3f} | {_int8_quality_cell(row.int8)} |")
        lines += ["", _COMPRESSION]
    if qat:
        lines += ["", "## Quantization-aware fine-tuning", "",
                  "| model | trained: fp32 | trained: int8 | drop dB | control: fp32 | "
                  "control: int8 | drop dB | QAT: fp32 | QAT: int8 | drop dB | QAT run |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_qat_row(pair) for pair in qat]
        lines += ["", _QAT]
    return "\n".join(lines) + "\n"


_GENERATED = ("<!-- written by `python -m mobilize.models.card`; edit models/card.py, "
              "not this file -->")
_INTRO = """\
Small image generators with weights trained in this project
(`python -m mobilize.models.train NAME`).
Quality is the mean over the held-out photos of models/data.py (`chelsea`, `rocket`,
`gravel`, `coins`, never trained on), 256x256 squares (ESPCN: 258x258 from 86x86), against
each model's computable ground truth (models/stylize.py). Outputs in [-1, 1] are mapped to
[0, 1] before scoring. The baseline column says what doing nothing scores against the same
target, so a model's figure can be read against it."""
_NOTES = """\
Notes
- tflite-int8: `python -m mobilize.models.card` exports each model with the exporter's defaults
  (`mobilize export models.NAME:build`: tflite-int8, int8 I/O, the model's INPUTS, 256x256;
  ESPCN 86x86 in) into a temporary folder, runs the exported .tflite in the TFLite interpreter
  on the same held-out photos and scores it against the same ground truth with the same code
  as the PyTorch fp32 column, so the two compare. int8 file: the size of that .tflite.
- The exporter calibrates on training photos only (mobilize/photos.py). Before that split,
  its calibration photos included `rocket`, one of the held-out photos scored here, and
  fast_style's int8 read 24.42 dB / 0.799; the same weights and exporter calibrated as
  now give 23.51 / 0.775 (measured side by side, 2026-12-02).
- MACs count Conv2d, ConvTranspose2d and Linear only (norms, activations, resizes excluded).
- fast_style keeps InstanceNorm inside its residual branches only: with InstanceNorm after
  every conv (Johnson's layout) it reached 20.22 dB / 0.701, because per-image normalization
  erases the colour levels that the cartoon grade and posterization act on.
- adain is trained on random crop pairs; its ground truth is Reinhard-style transfer of
  per-channel mean/std in YCbCr (an honest, exact target; not a learned artistic style).
- Figures from the weights trained on an H100 with torch 2.11; retraining on CPU with the same
  seed gives different (not bit-identical) weights."""
_COMPRESSION = """\
Distillation: output L1 to the teacher plus feature MSE at the encoder and residual-body
outputs through 1x1 adapters (48 -> 64 channels, dropped after training), on top of L1 to
the ground truth (models/train.py: Distiller). Both students: same seed, 2500 steps, data.
Pruning (models/prune.py): in each of the five residual branches the 24 of 64 inner channels
with the largest (first-conv filter L1 norm x |InstanceNorm gamma|) are kept, the rest cut
with the second conv's matching inputs; then 1500 fine-tuning steps (lr 5e-4, GPU) to the
cartoon target. The int8 column exports each step's weights like the main table (the
pruned net through `mobilize.models.prune:build_pruned`, the plain student with `--weights`); the
unfine-tuned pruned net is an intermediate and is not exported. Against PyTorch fp32 rather
than the ground truth, the int8 figures are in docs/benchmarks.md ("int8 on the trained
models")."""
_QAT = """\
`python -m mobilize.models.qat NAME --steps N` (models/qat.py) starts from the committed weights,
inserts torch's fake quantization (torch.ao.quantization.FakeQuantize, straight-through gradients)
where the exporter's full-integer int8 rounds: every conv weight per output channel,
symmetric on [-127, 127] (the grid the exporter gets after folding BatchNorm); the int8
inputs; each conv/norm/activation output that TFLite keeps as a tensor (not before a folded
BatchNorm or a fused ReLU), Tanh at TFLite's fixed 1/128 scale, each residual sum; ranges
from moving-average min/max observers calibrated on 8 training batches, frozen for the last
fifth of the steps. BatchNorm keeps its inference statistics throughout. Loss:
models/train.py's L1 to the ground truth on its training crops (96x96, batch 16;
style_student also L1 to its teacher's output), Adam at lr 1e-4 with cosine decay, on CPU
(1 thread, a shared 2-core machine: the seconds include waiting). The fake quantization is
then stripped and the weights (on the int8 grid) saved as plain float `<name>_qat`; the
int8 column exports them with the exporter's post-training int8 exactly like the trained
weights (`mobilize export models.NAME:build --weights models/weights/NAME_qat.pt`), which
chooses its own activation ranges: QAT's observer ranges are not carried over.

Reading the table: PSNR dB / SSIM on the held-out photos, PyTorch fp32 and the exported
tflite-int8; drop = fp32 minus int8 PSNR, what QAT aims to shrink. The extra fine-tuning
steps move the figures by themselves, with or without fake quantization, so compare QAT
with the control: `python -m mobilize.models.qat NAME --steps N --control OUT.pt`, the
same seed, batches, loss and schedule without fake quantization, its weights not committed
and its figures kept in weights/NAME_qat.json when it ran (the other columns are measured
by this card run). Where post-training int8 is already within about 0.1 dB of fp32 there
is little for QAT to win. fast_style got worse in int8: the exporter's `--debug-quant`
ranks the steps of its decomposed InstanceNorm (MEAN of the squared deviations, RSQRT, the
normalizing MUL) among the worst int8 errors, and this QAT does not round inside
InstanceNorm; the fine-tuning moved the weights to where those steps lose more (measured
once: the two worst MEANs went from 2.0 and 1.4 to 4.0 and 3.0 int8 steps of RMS error).
A fake-quantized step-by-step InstanceNorm with the batch-wide observer ranges was tried
and was far harsher than the real file (21.7 dB against 24.4 dB for the trained weights),
so it is not used. Not modelled either: AdaIN's statistics."""


def compression_rows(teacher: CardRow) -> list[tuple[str, CardRow]]:
    """Teacher, pruned before/after fine-tuning, separable students without/with distillation;
    int8 figures for every step but the unfine-tuned pruned net."""
    manifest = read_manifest()
    rows = [("teacher (fast_style)", teacher)]
    if prune.NAME in manifest:
        unfinetuned = prune.prune(fast_style.build(pretrained=True))
        rows.append((f"channel-pruned to {prune.INNER}/64 in residual branches, no fine-tuning",
                     measure_model(prune.NAME, fast_style, unfinetuned, prune.NAME)))
        model = prune.build_pruned()
        pruned = measure_model(prune.NAME, fast_style, model, prune.NAME)
        pruned = replace(pruned, int8=measure_int8(prune.NAME, fast_style, model,
                                                   model_ref="mobilize.models.prune:build_pruned"))
        rows.append(("channel-pruned + fine-tuned (fast_style_pruned)", pruned))
    if "style_student_plain" in manifest:
        rows.append(("separable BN student, ground truth alone (style_student_plain)",
                     with_int8(measure("style_student_plain", "style_student"),
                               "style_student")))
    return rows


def with_int8(row: CardRow, module_name: str | None = None) -> CardRow:
    """`row` with the int8 figures of its weights exported through models.`module_name`:build
    (default: the row's own name; other weights of that architecture go in with --weights)."""
    architecture = module_name or row.name
    module = importlib.import_module(f"mobilize.models.{architecture}")
    model = load_pretrained(row.name, module.build(pretrained=False))
    weights = weight_path(row.name) if row.name != architecture else None
    return replace(row, int8=measure_int8(row.name, module, model,
                                          model_ref=f"mobilize.models.{architecture}:build",
                                          weights=weights))


def qat_pairs(rows: Sequence[CardRow]) -> list[QatPair]:
    """Each committed model beside its `<name>_qat` weights, where those exist."""
    manifest = read_manifest()
    return [QatPair(row, with_int8(measure(qat_name(row.name), row.name), row.name))
            for row in rows if qat_name(row.name) in manifest]


def write_card(path: Path = CARD) -> str:
    rows = [with_int8(measure(name.value)) for name in ModelName if name in MODULES]
    teacher = next(row for row in rows if row.name == "fast_style")
    compression = compression_rows(teacher)
    compression.append(("separable BN student + distillation (style_student)",
                        next(row for row in rows if row.name == "style_student")))
    text = render(rows, compression, qat_pairs(rows))
    atomic_write_bytes(path, text.encode())
    return text


if __name__ == "__main__":
    print(write_card())
