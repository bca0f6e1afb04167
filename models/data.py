"""The photographs every model trains on, and the ones it is judged on (never trained on).

All come with scikit-image, so nothing is downloaded. The split lives here alone: training
(also the exporter's calibration source) and held-out (evaluation only). `chelsea` and `cat`
are the same picture, so only `chelsea` is used, and it is held out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import skimage.data
from skimage.color import gray2rgb
from skimage.transform import rescale, resize

from mobilize.photos import HELD_OUT_PHOTOS as HELDOUT_PHOTOS
from mobilize.photos import TRAIN_PHOTOS

# Big photos are brought down to this longest side first: crops then hold whole objects,
# not just texture, and the precomputed pyramid stays small.
MAX_SIDE = 512
SCALES: tuple[float, ...] = (0.6, 0.8, 1.0)


@cache
def load_photo(name: str) -> np.ndarray:
    """A photo as float32 HxWx3 in [0, 1] (gray ones repeated into three channels)."""
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.asarray(image, dtype=np.float32)
    if image.max() > 1.0:
        image = image / 255.0
    if image.ndim == 2:
        image = gray2rgb(image)
    image = image[..., :3]
    longest = max(image.shape[:2])
    if longest > MAX_SIDE:
        image = rescale(image, MAX_SIDE / longest, channel_axis=2, anti_aliasing=True)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def square_view(image: np.ndarray, size: int) -> np.ndarray:
    """Shorter side resized to `size`, then the centre `size` x `size` square."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    resized = resize(image, (new_h, new_w), anti_aliasing=True).astype(np.float32)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top:top + size, left:left + size]


def heldout_images(size: int = 256) -> list[np.ndarray]:
    """Held-out photos as HxWx3 float32 squares, for evaluation only."""
    return [square_view(load_photo(name), size) for name in HELDOUT_PHOTOS]


def calibration_images(size: int = 256) -> list[np.ndarray]:
    """Training photos as squares: what an int8 exporter may calibrate on without peeking."""
    return [square_view(load_photo(name), size) for name in TRAIN_PHOTOS]


@dataclass(frozen=True)
class PairedPhoto:
    """One photo at one scale and, optionally, its precomputed target (same HxW)."""

    photo: np.ndarray
    target: np.ndarray | None


def training_pyramid(
    target_fn: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[PairedPhoto]:
    """Every training photo at each scale (the scale jitter), with its target if asked.

    Targets are computed on the whole photo before cropping, so a crop's target is the
    crop of the photo's target (the filters then see real context at the crop's edge).
    """
    pairs = []
    for name in TRAIN_PHOTOS:
        base = load_photo(name)
        for scale in SCALES:
            photo = base if scale == 1.0 else rescale(
                base, scale, channel_axis=2, anti_aliasing=True).astype(np.float32)
            target = None if target_fn is None else target_fn(photo).astype(np.float32)
            pairs.append(PairedPhoto(photo=photo, target=target))
    return pairs


def random_crops(
    pairs: list[PairedPhoto], rng: np.random.Generator, batch: int, size: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A batch of aligned random crops (NCHW float32) with random horizontal/vertical flips."""
    photos, targets = [], []
    for _ in range(batch):
        pair = pairs[rng.integers(len(pairs))]
        height, width = pair.photo.shape[:2]
        top = rng.integers(0, height - size + 1)
        left = rng.integers(0, width - size + 1)
        flip_h, flip_v = rng.random() < 0.5, rng.random() < 0.5
        crops = [pair.photo] + ([pair.target] if pair.target is not None else [])
        out = []
        for array in crops:
            crop = array[top:top + size, left:left + size]
            if flip_h:
                crop = crop[:, ::-1]
            if flip_v:
                crop = crop[::-1]
            out.append(np.ascontiguousarray(crop.transpose(2, 0, 1)))
        photos.append(out[0])
        if len(out) > 1:
            targets.append(out[1])
    return np.stack(photos), (np.stack(targets) if targets else None)
