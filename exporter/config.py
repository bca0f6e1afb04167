"""Choices and settings of an export: enums (the CLI's choices come from them) and frozen
dataclasses checked when built."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mobilize.contract.specs import ValueRange
from mobilize.contract.tflite_runner import Layout  # noqa: F401 - part of the config's vocabulary
from mobilize.errors import UsageError

DEFAULT_OPSET = 17
DEFAULT_CALIB_SAMPLES = 32
DEFAULT_VERIFY_SAMPLES = 4
FINETUNE_DEVICES = ("cpu", "cuda")  # --finetune-device
MIN_CALIB_SAMPLES = 8  # fewer than this and int8 scales follow a handful of images
# ONNX rewrites before onnx2tf (exporter/onnx_rewrites.py). Decomposing InstanceNorm is on by
# default: same float output, and measured better int8 (Johnson 24.0 -> 28.4 dB, CycleGAN
# 20.0 -> 21.9 dB at 256x256), faster int8, and int16x8 that runs (docs/benchmarks.md).
# sqrt_as_rsqrt: AdaIN's bare SQRT has no 16x8 kernel; through RSQRT int16x8 converts and runs
# (float output unchanged; docs/benchmarks.md "int8 levers tried"). reflect_pad_as_slices:
# XNNPACK has no MIRROR_PAD and LiteRT's own kernel is slow; as SLICE/CONCATENATION the pads
# run in the delegate (tiny_style 256x256 on this CPU: ~45 -> ~4 ms int8, ~50 -> ~6 ms fp32;
# int16x8, which XNNPACK never runs, still ~9% faster: Johnson 64x64 400 -> 366 ms).
# decompose_group_norm / decompose_layer_norm: onnx2tf cannot convert torch's GroupNorm (a
# rank-3 Reshape around InstanceNormalization): AnimeGANv2 did not convert at all without.
# div_by_sqrt_as_rsqrt: AdaIN's x / std.reshape(...) kept an int8 DIV that LiteRT refuses
# when a flat channel's std rounds to the zero point (the unseen AdaIN net had no int8).
# fold_scalar_multiplications: torch's unbiased var is the mean of squares x N x 1/(N-1); in
# int8 the mean took the x N product's scale and rounded to 0 (AdaIN: its output the style
# mean alone, 6.1 dB; with this pass and the RSQRT cap of tflite_activations 16.2).
# Passes only some targets get (PASS_TARGETS below; each target converts its own graph):
# prelu_as_leaky_relu (int8): XNNPACK has no int8 PRELU and no int8 RELU, so PReLU kept or
# written with RELU cut the int8 graph at every layer (Real-ESRGAN compact: 18 partitions,
# int8 no faster than fp32); as LEAKY_RELU/MUL/ADD it is one partition, 1.3-2.2x faster, for
# 0 to -0.8 dB SNR against the PRELU kernel (docs/benchmarks.md, "Graphs per target").
# prelu_as_relu (int16x8 only): PRELU has no 16x8 kernel; float targets keep PRELU (exact,
# XNNPACK runs it). pixel_shuffle_as_depth_to_space / nearest_upsample_as_depth_to_space
# (not int16x8, which has no DEPTH_TO_SPACE kernel): one DEPTH_TO_SPACE instead of
# RESHAPE/TRANSPOSE/RESHAPE, and no RESIZE_NEAREST_NEIGHBOR, which XNNPACK lacks.
# conv_transpose_as_depth_to_space (int8): LiteRT's int8 TRANSPOSE_CONV is slow (pix2pix
# UNet-256 int8 3x slower than fp32); as CONV_2D + DEPTH_TO_SPACE (exact) it is not.
# standalone_relu_as_max_pool (int8): XNNPACK has no int8 RELU; a RELU fused into a 1x1
# MAX_POOL_2D runs in it (pix2pix's decoder: 7 RELU cut the delegated graph).
DEFAULT_ONNX_PASSES = (
    "constants_to_initializers", "fold_scalar_multiplications", "decompose_group_norm",
    "decompose_layer_norm", "decompose_instance_norm", "div_by_sqrt_as_rsqrt", "sqrt_as_rsqrt",
    "prelu_as_leaky_relu", "prelu_as_relu", "reflect_pad_as_slices",
    "pixel_shuffle_as_depth_to_space", "nearest_upsample_as_depth_to_space",
    "conv_transpose_as_depth_to_space", "standalone_relu_as_max_pool",
)


class Target(StrEnum):
    FP32 = "tflite-fp32"
    FP16 = "tflite-fp16"
    DYNAMIC = "tflite-dynamic"
    INT8 = "tflite-int8"
    INT16X8 = "tflite-int16x8"

    @property
    def needs_calibration(self) -> bool:
        return self in (Target.INT8, Target.INT16X8)

    @property
    def file_suffix(self) -> str:
        return self.value.removeprefix("tflite-")


ALL_TARGETS = tuple(Target)
_NOT_INT16X8 = frozenset(t for t in Target if t is not Target.INT16X8)
# The targets a pass is for; a pass not named here goes to every target. A target's graph is
# the pass list (--onnx-passes or the default) less the passes that are not for it.
PASS_TARGETS: dict[str, frozenset[Target]] = {
    "prelu_as_leaky_relu": frozenset({Target.INT8}),
    "prelu_as_relu": frozenset({Target.INT16X8}),
    "pixel_shuffle_as_depth_to_space": _NOT_INT16X8,
    "nearest_upsample_as_depth_to_space": _NOT_INT16X8,
    "conv_transpose_as_depth_to_space": frozenset({Target.INT8}),
    "standalone_relu_as_max_pool": frozenset({Target.INT8}),
}


def passes_for(target: Target, passes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in passes if target in PASS_TARGETS.get(name, ALL_TARGETS))


class IoType(StrEnum):
    """Input/output tensor type of the full-integer targets."""

    INT8 = "int8"
    UINT8 = "uint8"
    FLOAT = "float"


class Int8Ranges(StrEnum):
    """How tflite-int8 takes each activation's range from the calibration samples (issue 7)."""

    MINMAX = "minmax"  # the converter's own: min and max over every sample
    QUANTILE = "quantile"  # the median over samples of each sample's own min/max
    # Of min/max and the quantiles 0.35/0.5/0.75, the ranges whose int8 output is closest to
    # float on validation samples split off the calibration samples (never the held-out
    # verification set): never worse than min/max there.
    AUTO = "auto"


@dataclass(frozen=True)
class CalibSource:
    """Where the calibration (or verification) samples of one input come from.

    `path` is a folder of png/jpg images or a .npy/.npz file; None means the real
    photographs bundled with scikit-image.
    """

    input_name: str | None
    path: Path | None

    @classmethod
    def parse(cls, text: str) -> CalibSource:
        """`photos/` (every input) or `content=photos/` (one input of several)."""
        name, sep, path = text.partition("=")
        if sep and name and "/" not in name and not Path(text).exists():
            return cls(input_name=name, path=Path(path))
        return cls(input_name=None, path=Path(text))

    def describe(self) -> str:
        return str(self.path) if self.path is not None else "skimage.data photographs"


@dataclass(frozen=True)
class QuantConfig:
    """How the TFLite converter is called for one target. Extra levers (issue 7) plug in
    here: a different representative dataset size, a different I/O type."""

    target: Target
    io: IoType = IoType.INT8
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    int8_ranges: Int8Ranges = Int8Ranges.AUTO
    # Extra TFLiteConverter attributes set after ours, e.g.
    # (("_experimental_disable_per_channel", True),): a plug for quantization experiments.
    converter_flags: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        if self.target.needs_calibration and self.calib_samples < 1:
            raise UsageError(
                f"--calib-samples {self.calib_samples}: {self.target.value} needs calibration "
                "samples", hint="use --calib-samples 32 or more",
            )


@dataclass(frozen=True)
class ExportConfig:
    """Everything `mobilize export` was asked to do."""

    model_ref: str  # what to load: module:factory, path.py:factory, .pt/.pt2; or a label
    out_dir: Path
    targets: tuple[Target, ...] = (Target.INT8,)
    # Empty: taken from the model module's INPUTS (names, NCHW shapes, value ranges).
    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_ranges: tuple[ValueRange, ...] = ()
    input_names: tuple[str, ...] = ()
    output_range: ValueRange | None = None
    weights: Path | None = None
    io: IoType = IoType.INT8
    calib_sources: tuple[CalibSource, ...] = ()
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    verify_samples: int = DEFAULT_VERIFY_SAMPLES
    opset: int = DEFAULT_OPSET
    onnx_passes: tuple[str, ...] = DEFAULT_ONNX_PASSES
    # Exact pass lists for some targets, PASS_TARGETS not applied (measurements, research):
    # ((Target.INT8, ("constants_to_initializers",)),)
    target_passes: tuple[tuple[Target, tuple[str, ...]], ...] = ()
    min_psnr: float | None = None
    converter_flags: tuple[tuple[str, object], ...] = ()
    int8_ranges: Int8Ranges = Int8Ranges.AUTO
    debug_quant: bool = False  # per-layer int8 error report for tflite-int8
    # --finetune: quantization-aware fine-tuning steps before a tflite-int8 export (0: none;
    # exporter/finetune.py), on this torch device
    finetune_steps: int = 0
    finetune_device: str = "cpu"
    # An int8 file under 30 dB SNR: also measure tflite-dynamic, fp16 and int16x8 on this
    # model for the advice (exporter/int8_advice.py); --no-alternatives skips it.
    int8_alternatives: bool = True
    # An nn.Module built by the caller (mobilize.export): used instead of loading model_ref,
    # which then only names it in metadata.json. Typed loosely so config needs no torch.
    module: object | None = None

    def __post_init__(self) -> None:
        if not self.targets:
            raise UsageError("no target given", hint="e.g. --target tflite-int8 or --target all")
        if self.verify_samples < 1:
            raise UsageError("--verify-samples must be at least 1", hint="e.g. --verify-samples 4")
        if self.calib_samples < 1:
            raise UsageError("--calib-samples must be at least 1", hint="e.g. --calib-samples 32")
        if self.debug_quant and Target.INT8 not in self.targets:
            raise UsageError("--debug-quant reports the int8 error per layer of tflite-int8",
                             hint="add --target tflite-int8")
        if self.finetune_steps < 0:
            raise UsageError(f"--finetune {self.finetune_steps}: steps cannot be negative",
                             hint="e.g. --finetune 200 (0: no fine-tuning)")
        if self.finetune_device not in FINETUNE_DEVICES:
            raise UsageError(f"--finetune-device {self.finetune_device!r} is not one of "
                             f"{', '.join(FINETUNE_DEVICES)}", hint="e.g. --finetune-device cpu")
        if self.finetune_steps and self.targets != (Target.INT8,):
            others = ", ".join(t.value for t in self.targets if t is not Target.INT8)
            raise UsageError(
                f"--finetune tunes the weights for tflite-int8's rounding, and every target "
                f"of an export is converted from the same weights: {others or 'no target'} "
                "would be the fine-tuned model, not yours",
                hint="export --target tflite-int8 alone with --finetune, the other targets "
                "in a second export without it")

    def passes_for(self, target: Target) -> tuple[str, ...]:
        """The ONNX passes of this target's graph."""
        exact = dict(self.target_passes)
        return exact[target] if target in exact else passes_for(target, self.onnx_passes)

    def quant_config(self, target: Target) -> QuantConfig:
        return QuantConfig(target=target, io=self.io, calib_samples=self.calib_samples,
                           int8_ranges=self.int8_ranges, converter_flags=self.converter_flags)
