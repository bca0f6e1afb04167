"""Representative data: calibration samples for int8 and held-out samples for verification.

Samples are float32 NCHW arrays in each input's declared value range (what PyTorch takes);
the converter transposes them to the TFLite model's layout. Sources: a folder of png/jpg
(center-cropped to the input's aspect, resized), a .npy/.npz file, or — when none is given —
the real photographs bundled with scikit-image, cut into crops. Verification never uses a
sample that calibration used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage import color, data, transform
from skimage.util import img_as_float32

from mobilize.contract.specs import (
    InputSpec,
    ValueRange,
    from_range,  # noqa: F401 - used by verify
)
from mobilize.errors import UsageError
from mobilize.exporter.config import MIN_CALIB_SAMPLES, CalibSource
from mobilize.photos import CALIBRATION_PHOTOS, HELD_OUT_PHOTOS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".npz")
# Calibration and verification draw from disjoint sets (mobilize/photos.py, shared with the
# zoo) so that verification figures are on images neither calibration nor training saw.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


@dataclass(frozen=True)
class SampleSet:
    """Samples for every input: arrays[input_name] has shape (N, *spec.shape[1:])."""

    arrays: dict[str, np.ndarray]
    source: str
    count: int
    warnings: tuple[str, ...] = ()
    # The photograph each sample was cropped from (the bundled photos cycle through six);
    # empty when every sample is its own image (a folder, a .npy file).
    photo_of_sample: tuple[int, ...] = ()

    def sample(self, index: int) -> dict[str, np.ndarray]:
        return {name: array[index:index + 1] for name, array in self.arrays.items()}


@dataclass(frozen=True)
class RepresentativeData:
    calibration: SampleSet
    verification: SampleSet


def photo(name: str) -> np.ndarray:
    """An RGB float image in [0, 1] from skimage.data."""
    image = getattr(data, name)()
    if isinstance(image, tuple):  # stereo pairs: the left view
        image = image[0]
    image = img_as_float32(image)
    if image.ndim == 2:
        image = color.gray2rgb(image)
    return image[..., :3]


def photo_crops(names: Sequence[str], count: int, height: int, width: int,
                seed: int) -> list[np.ndarray]:
    """`count` crops (HWC in [0, 1]) of various scales and places, cycling through the photos."""
    rng = np.random.default_rng(seed)
    photos = [photo(name) for name in names]
    crops = []
    for i in range(count):
        image = photos[i % len(photos)]
        scale = 1.0 if i < len(photos) else float(rng.uniform(0.3, 0.9))
        crops.append(_crop(image, height, width, scale, rng))
    return crops


def _crop(image: np.ndarray, height: int, width: int, scale: float,
          rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    aspect = width / height
    crop_h = int(min(h, w / aspect) * scale)
    crop_w = int(crop_h * aspect)
    top = int(rng.integers(0, h - crop_h + 1)) if scale < 1.0 else (h - crop_h) // 2
    left = int(rng.integers(0, w - crop_w + 1)) if scale < 1.0 else (w - crop_w) // 2
    patch = image[top:top + crop_h, left:left + crop_w]
    return transform.resize(patch, (height, width), anti_aliasing=True).astype(np.float32)


def center_crop_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return _crop(image, height, width, 1.0, np.random.default_rng(0))


def to_input(images: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """HWC [0, 1] RGB images -> (N, C, H, W) float32 in the spec's value range."""
    if not images:
        return np.zeros((0, *spec.shape[1:]), dtype=np.float32)
    channels = spec.shape[1]
    stack = np.stack(images).astype(np.float32)
    if channels == 1:
        stack = color.rgb2gray(stack)[..., None].astype(np.float32)
    nchw = stack.transpose(0, 3, 1, 2)
    return to_range(nchw, spec.value_range)


def to_range(unit: np.ndarray, value_range: ValueRange) -> np.ndarray:
    if value_range.mean is not None and value_range.std is not None:
        mean = np.asarray(value_range.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(value_range.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return ((unit - mean) / std).astype(np.float32)
    return (value_range.low + unit * (value_range.high - value_range.low)).astype(np.float32)


def build_representative_data(
    inputs: Sequence[InputSpec],
    sources: Sequence[CalibSource],
    calib_samples: int,
    verify_samples: int,
    calibrating: bool = True,
) -> RepresentativeData:
    """Calibration and held-out samples per input; with calibrating=False (float targets
    only) the calibration set stays minimal and its size is not warned about."""
    by_input = _sources_by_input(inputs, sources)
    calibration: dict[str, np.ndarray] = {}
    verification: dict[str, np.ndarray] = {}
    warnings: list[str] = []
    descriptions = []
    verify_descriptions = []
    for index, spec in enumerate(inputs):
        source = by_input[spec.name]
        if source is None:
            calib, held_out = _photo_samples(spec, calib_samples, verify_samples, seed=index)
            descriptions.append(f"{spec.name}: skimage.data photographs "
                                f"({', '.join(CALIBRATION_PHOTOS)})")
            verify_descriptions.append(f"{spec.name}: skimage.data photographs "
                                       f"({', '.join(HELD_OUT_PHOTOS)})")
        else:
            samples = _load_source(source, spec, calib_samples + verify_samples)
            calib, held_out, note = _split(samples, spec, calib_samples, verify_samples, index)
            descriptions.append(f"{spec.name}: {source}")
            verify_descriptions.append(f"{spec.name}: {note}")
            warnings += _range_warnings(calib, spec, source)
        if calibrating and len(calib) < calib_samples:
            warnings.append(f"{spec.name}: only {len(calib)} calibration samples "
                            f"(asked for {calib_samples})")
        if calibrating and len(calib) < MIN_CALIB_SAMPLES:
            warnings.append(f"{spec.name}: {len(calib)} calibration samples is few; int8 "
                            f"scales will follow them closely (use {MIN_CALIB_SAMPLES}+)")
        calibration[spec.name] = calib
        verification[spec.name] = held_out
    calib_count = min(len(a) for a in calibration.values())
    verify_count = min(len(a) for a in verification.values())
    # the first input's photographs (a stylizer's content) tell the samples' sources apart
    photos = (tuple(i % len(CALIBRATION_PHOTOS) for i in range(calib_count))
              if inputs and by_input[inputs[0].name] is None else ())
    return RepresentativeData(
        calibration=SampleSet({k: v[:calib_count] for k, v in calibration.items()},
                              "; ".join(descriptions), calib_count, tuple(warnings), photos),
        verification=SampleSet({k: v[:verify_count] for k, v in verification.items()},
                               "; ".join(verify_descriptions), verify_count),
    )


def check_sources(inputs: Sequence[InputSpec], sources: Sequence[CalibSource],
                  calib_samples: int, verify_samples: int) -> None:
    """Raise the UsageError build_representative_data would raise for these sources, without
    its work: run before onnx2tf so that a folder or array that will be refused is refused in
    a second, not after the SavedModel stage. Same rules, cheaper reads: images are opened
    and decoded (JPEG at reduced scale) but not resized, arrays are read as they will be."""
    by_input = _sources_by_input(inputs, sources)
    limit = calib_samples + verify_samples
    for spec in inputs:
        source = by_input[spec.name]
        if source is None:
            _image_size(spec)  # photos only feed image inputs
            continue
        if source.is_dir():
            files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise UsageError(f"{source} holds no png/jpg image",
                                 hint="put calibration photos there, or give a .npy/.npz file")
            _image_size(spec)
            for file in files[:limit]:
                _probe_image(file)
            count = min(len(files), limit)
        elif source.suffix.lower() in ARRAY_SUFFIXES:
            samples = _read_arrays(source, spec)[:limit]
            if len(samples):
                _range_warnings(samples[:calib_samples], spec, source)
            count = len(samples)
        elif source.suffix.lower() in IMAGE_SUFFIXES:
            _image_size(spec)
            _probe_image(source)
            count = 1
        else:
            raise UsageError(f"cannot use {source} as calibration data",
                             hint="give a folder of png/jpg images or a .npy/.npz file")
        if count == 0:
            raise UsageError(f"no samples for input {spec.name!r}", hint="check the source")
        if not spec.is_image and count <= calib_samples:  # as _split: nothing left to verify
            raise UsageError(
                f"{spec.name!r}: every sample went to calibration, none is left to verify",
                hint="give more samples than --calib-samples, or lower --calib-samples")


def _probe_image(path: Path) -> None:
    """Decode an image as _read_image will (JPEG at 1/8 scale: the whole stream is still
    read, so a cut-off file fails here too), without the resize."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UsageError(f"cannot read image {path}: {error}",
                         hint="remove or replace the broken file") from error


def _sources_by_input(inputs: Sequence[InputSpec],
                      sources: Sequence[CalibSource]) -> dict[str, Path | None]:
    names = [spec.name for spec in inputs]
    mapping: dict[str, Path | None] = dict.fromkeys(names)
    unnamed = [s for s in sources if s.input_name is None]
    named = [s for s in sources if s.input_name is not None]
    if len(unnamed) > 1:
        raise UsageError("several --calib-dir without an input name",
                         hint="name the input of each: --calib-dir content=photos/ "
                         "--calib-dir style=styles/")
    if unnamed and len(inputs) > 1 and not named:
        raise UsageError(
            f"the model has {len(inputs)} inputs ({', '.join(names)}); say which source "
            "feeds which", hint=" ".join(f"--calib-dir {n}=FOLDER" for n in names))
    for source in named:
        if source.input_name not in mapping:
            raise UsageError(f"--calib-dir names input {source.input_name!r}, which the model "
                             "does not have", hint=f"inputs: {', '.join(names)}")
        mapping[source.input_name] = source.path
    if unnamed:
        for name in names:
            mapping[name] = mapping[name] or unnamed[0].path
    for path in mapping.values():
        if path is not None and not path.exists():
            raise UsageError(f"calibration source {path} does not exist",
                             hint="give a folder of png/jpg images or a .npy/.npz file")
    return mapping


def _photo_samples(spec: InputSpec, calib: int, verify: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    height, width = _image_size(spec)
    # A second input (the style of a stylizer) gets other crops than the first.
    calib_crops = photo_crops(CALIBRATION_PHOTOS[seed % 2:] + CALIBRATION_PHOTOS[:seed % 2],
                              calib, height, width, seed=10 + seed)
    verify_crops = photo_crops(HELD_OUT_PHOTOS[seed % 2:] + HELD_OUT_PHOTOS[:seed % 2],
                               verify, height, width, seed=100 + seed)
    return to_input(calib_crops, spec), to_input(verify_crops, spec)


def _image_size(spec: InputSpec) -> tuple[int, int]:
    if not spec.is_image:
        raise UsageError(
            f"input {spec.name!r} {spec.shape} is not an image (N x 1|3 x H x W), so photos "
            "cannot feed it", hint=f"give its samples as a .npy file: --calib-dir "
            f"{spec.name}=samples.npy")
    return spec.shape[2], spec.shape[3]


def _load_source(path: Path, spec: InputSpec, limit: int) -> np.ndarray:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"{path} holds no png/jpg image",
                             hint="put calibration photos there, or give a .npy/.npz file")
        height, width = _image_size(spec)
        return to_input([_read_image(f, height, width) for f in files[:limit]], spec)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return _read_arrays(path, spec)[:limit]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        height, width = _image_size(spec)
        return to_input([_read_image(path, height, width)], spec)
    raise UsageError(f"cannot use {path} as calibration data",
                     hint="give a folder of png/jpg images or a .npy/.npz file")


def _read_image(path: Path, height: int, width: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as error:
        raise UsageError(f"cannot read image {path}: {error}",
                         hint="remove or replace the broken file") from error
    return center_crop_resize(rgb, height, width)


def _read_arrays(path: Path, spec: InputSpec) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path}: {error}",
                         hint="save the samples with numpy.save / numpy.savez") from error
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.keys())
            arrays = [loaded[spec.name]] if spec.name in keys else [loaded[k] for k in keys]
        array = np.concatenate([a if a.ndim == len(spec.shape) else a[None] for a in arrays])
    else:
        array = loaded
    if array.ndim == len(spec.shape) - 1:
        array = array[None]
    expected = tuple(spec.shape[1:])
    if tuple(array.shape[1:]) != expected:
        nhwc = (expected[1], expected[2], expected[0]) if len(expected) == 3 else None
        hint = (" (it looks NHWC: transpose it to NCHW)" if nhwc and
                tuple(array.shape[1:]) == nhwc else "")
        raise UsageError(
            f"{path} holds samples of shape {tuple(array.shape[1:])}, input {spec.name!r} "
            f"needs {expected}{hint}",
            hint=f"save an array of shape (N, {', '.join(map(str, expected))}), NCHW, in the "
            f"input's value range {spec.value_range}")
    return array.astype(np.float32)


def _split(samples: np.ndarray, spec: InputSpec, calib: int, verify: int,
           seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Calibration first; verification from the rest, else from held-out photographs."""
    if len(samples) == 0:
        raise UsageError(f"no samples for input {spec.name!r}", hint="check the source")
    if len(samples) >= calib + verify:
        return samples[:calib], samples[calib:calib + verify], "samples of the same source " \
            "not used for calibration"
    calibration = samples[:calib]
    rest = samples[len(calibration):]
    if spec.is_image:
        _, held_out = _photo_samples(spec, 0, verify, seed)
        return calibration, held_out, f"skimage.data photographs ({', '.join(HELD_OUT_PHOTOS)})"
    if len(rest):
        return calibration, rest, "samples of the same source not used for calibration"
    raise UsageError(f"{spec.name!r}: every sample went to calibration, none is left to verify",
                     hint="give more samples than --calib-samples, or lower --calib-samples")


def _range_warnings(samples: np.ndarray, spec: InputSpec, source: Path) -> list[str]:
    low, high = spec.value_range.low, spec.value_range.high
    span = high - low
    found_low, found_high = float(samples.min()), float(samples.max())
    if found_low < low - 0.5 * span or found_high > high + 0.5 * span:
        raise UsageError(
            f"samples in {source} span {found_low:g}..{found_high:g}, far outside input "
            f"{spec.name!r}'s declared range {spec.value_range}",
            hint="convert the arrays to the declared range, or declare the range they are in "
            "with --range (e.g. --range 0,255)")
    warnings = []
    if found_low < low - 0.02 * span or found_high > high + 0.02 * span:
        warnings.append(f"{spec.name}: samples span {found_low:g}..{found_high:g}, outside the "
                        f"declared range {spec.value_range}")
    if found_high - found_low < 0.1 * span:
        warnings.append(f"{spec.name}: samples span only {found_low:g}..{found_high:g} of the "
                        f"declared range {spec.value_range}; is the range right?")
    return warnings


def onnx2tf_sample_images(count: int = 20, size: int = 128) -> np.ndarray:
    """What onnx2tf would otherwise download: NHWC float32 photos in [0, 1]."""
    crops = photo_crops(CALIBRATION_PHOTOS, count, size, size, seed=7)
    return np.stack(crops).astype(np.float32)
