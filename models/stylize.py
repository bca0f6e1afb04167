"""The ground truths the generators learn: stylizations computable for any photograph.

- `cartoon` (fast_style, style_student, tiny_style): smooth the photo, grade its colours
  warm and saturated, posterize into a few soft tone steps, and draw dark lines where the
  smoothed luminance has strong edges. Clearly visible, far from an identity.
- `sketch` (unet): a grey pencil-sketch: pale paper tone from the luminance plus dark edge
  lines (3 equal channels).
- `color_transfer` (adain): Reinhard-style colour transfer: each channel of the content, in
  YCbCr, shifted and scaled to the mean and standard deviation of the style image's channel.

All are plain numpy/scikit-image on HxWx3 float arrays in [0, 1].
"""

from __future__ import annotations

import numpy as np
from skimage.filters import gaussian, sobel

POSTER_LEVELS = 5
# A warm grade with a saturation push (rows: output R, G, B).
GRADE = np.array([[1.20, 0.05, -0.10], [0.00, 1.05, -0.05], [-0.15, -0.05, 0.90]], np.float32)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    np.float32,
)


def _soft_posterize(x: np.ndarray, levels: int) -> np.ndarray:
    """A smooth staircase: flat near each of `levels` tones, steep between (differentiable)."""
    steps = levels - 1
    return x - np.sin(2 * np.pi * x * steps) / (2 * np.pi * steps)


def _edge_lines(luma: np.ndarray, threshold: float, gain: float) -> np.ndarray:
    return np.clip((sobel(luma) - threshold) * gain, 0.0, 1.0)


def cartoon(photo: np.ndarray) -> np.ndarray:
    smooth = gaussian(photo, sigma=1.5, channel_axis=2)
    luma = smooth @ LUMA
    graded = np.clip(smooth @ GRADE.T, 0.0, 1.0)
    grey = graded @ LUMA
    saturated = np.clip(grey[..., None] + 1.4 * (graded - grey[..., None]), 0.0, 1.0)
    poster = _soft_posterize(saturated, POSTER_LEVELS)
    lines = _edge_lines(luma, threshold=0.04, gain=12.0)
    return np.clip(poster * (1.0 - 0.9 * lines[..., None]), 0.0, 1.0).astype(np.float32)


def sketch(photo: np.ndarray) -> np.ndarray:
    luma = gaussian(photo, sigma=1.0, channel_axis=2) @ LUMA
    lines = _edge_lines(luma, threshold=0.02, gain=10.0)
    paper = 0.75 + 0.25 * luma
    grey = np.clip(paper * (1.0 - 0.95 * lines), 0.0, 1.0)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.float32)


def color_transfer(content: np.ndarray, style: np.ndarray) -> np.ndarray:
    ycc_content = content @ RGB_TO_YCBCR.T
    ycc_style = style @ RGB_TO_YCBCR.T
    mean_c, std_c = ycc_content.mean((0, 1)), ycc_content.std((0, 1)) + 1e-5
    mean_s, std_s = ycc_style.mean((0, 1)), ycc_style.std((0, 1))
    matched = (ycc_content - mean_c) / std_c * std_s + mean_s
    rgb = matched @ np.linalg.inv(RGB_TO_YCBCR).T
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)
