"""The report's plots: matplotlib (Agg, no display) drawn to inline SVG that scales to the page.

Every series keeps one style in every plot: a colour and a marker together, so fifteen
variant/delegate pairs stay apart on a ten-colour palette. A latency axis turns logarithmic
when the variants' medians differ by more than LOG_AXIS_RATIO, so one slow variant does not
flatten the others. The timeline draws each run as at most TIMELINE_POINTS_PER_RUN points
(bin medians, with the bins' min-max band), so a long sweep stays a small file and a spike
still shows.
"""

from __future__ import annotations

import io
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: plots are only ever written to SVG here

from matplotlib import pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

LOG_AXIS_RATIO = 10.0
TIMELINE_POINTS_PER_RUN = 25
FIGURE_WIDTH_IN = 10.0  # ~960 px at 96 dpi: inside the 1,200 px page with room to spare
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
THERMAL_COLOURS = {
    "none": "#e8f5e9",
    "light": "#fff8e1",
    "moderate": "#ffe0b2",
    "severe": "#ffcdd2",
    "critical": "#ef9a9a",
    "emergency": "#e57373",
    "shutdown": "#d32f2f",
}
# Text as <text>, not glyph paths (smaller files); the same runs give the same ids.
SVG_SETTINGS = {"svg.fonttype": "none", "svg.hashsalt": "mobilize"}
_SIZE_ATTRIBUTES = re.compile(r'\s(width|height)="[^"]*"')
_PATH_DATA = re.compile(r'\sd="[^"]*"')
_LONG_DECIMAL = re.compile(r"(\d\.\d)\d+")


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str


def styles(labels: Sequence[str]) -> dict[str, Style]:
    """One colour+marker pair per label, no two alike for up to 100 labels: the marker moves
    on by one each time the colours wrap around."""
    return {
        label: Style(PALETTE[i % len(PALETTE)], MARKERS[(i + i // len(PALETTE)) % len(MARKERS)])
        for i, label in enumerate(labels)
    }


def label(record: dict[str, Any]) -> str:
    variant = (record.get("target") or record["model_name"]).removeprefix("tflite-")
    return f"{variant} / {record['result']['config']['delegate']}"


def groups(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        found.setdefault(label(record), []).append(record)
    return found


def samples_ms(records: Sequence[dict[str, Any]]) -> list[float]:
    return [
        s / 1000.0
        for r in records
        for s in ((r["result"].get("latency") or {}).get("samples") or [])
    ]


def wants_log_axis(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > LOG_AXIS_RATIO


def log_axis(axis: Any) -> None:
    """A log scale labelled in plain milliseconds at 1-2-5 steps (20, 50, 100), not 10^2."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def svg(figure: Figure) -> str:
    """Inline SVG that fills its container up to its natural width (no fixed size: a
    narrower window scales it down instead of cutting its right end off)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_SETTINGS):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    # Path coordinates to 0.1 pt (matplotlib writes six decimals): a third of the bytes.
    text = _PATH_DATA.sub(lambda m: _LONG_DECIMAL.sub(r"\1", m.group(0)), buffer.getvalue())
    text = text[text.index("<svg") :]  # drop the XML prolog and doctype: inline SVG
    head_end = text.index(">")
    head = text[:head_end]
    width = re.search(r'\swidth="([\d.]+)pt"', head)
    natural = f"max-width:{float(width.group(1)):.0f}pt;" if width else ""
    head = _SIZE_ATTRIBUTES.sub("", head)
    head += f' width="100%" style="{natural}height:auto;display:block;margin:auto"'
    return head + text[head_end:]


def _figure(rows: int) -> tuple[Figure, Any]:
    return plt.subplots(figsize=(FIGURE_WIDTH_IN, max(2.4, 0.9 + 0.32 * rows)))


def latency_plot(records: Sequence[dict[str, Any]]) -> str | None:
    """Horizontal box plots, one per variant/delegate, in the series' style."""
    data = {k: samples_ms(v) for k, v in groups(records).items()}
    data = {k: v for k, v in data.items() if v}
    if not data:
        return None
    style = styles(list(groups(records)))
    labels = list(data)[::-1]  # first run at the top
    figure, axes = _figure(len(labels))
    # Outliers (a phone busy elsewhere for a moment) would squash the boxes: the
    # timeline below shows them.
    boxes = axes.boxplot([data[k] for k in labels], tick_labels=labels, orientation="horizontal",
                         showfliers=False, patch_artist=True, widths=0.6)
    for box, key in zip(boxes["boxes"], labels, strict=True):
        box.set(facecolor=style[key].colour, alpha=0.35, edgecolor=style[key].colour)
    for median in boxes["medians"]:
        median.set(color="#222222", linewidth=1.5)
    for position, key in enumerate(labels, start=1):
        axes.plot([statistics.median(data[key])], [position], linestyle="none",
                  marker=style[key].marker, color=style[key].colour, markersize=6)
    log = wants_log_axis([statistics.median(v) for v in data.values()])
    if log:
        axes.set_xscale("log")
        log_axis(axes.xaxis)
    axes.set_xlabel("latency per inference (ms)" + (", log scale" if log else ""))
    axes.set_title("Latency per variant and delegate (box: quartiles, whiskers: 1.5 IQR)")
    axes.grid(axis="x", alpha=0.3, which="both" if log else "major")
    axes.tick_params(axis="y", labelsize=8)
    return svg(figure)


def _binned(samples: Sequence[float], start: int) -> tuple[list[float], list[float],
                                                           list[float], list[float]]:
    """Positions, medians, minima and maxima of at most TIMELINE_POINTS_PER_RUN bins."""
    size = max(1, math.ceil(len(samples) / TIMELINE_POINTS_PER_RUN))
    xs, mids, lows, highs = [], [], [], []
    for offset in range(0, len(samples), size):
        chunk = samples[offset : offset + size]
        xs.append(start + offset + (len(chunk) - 1) / 2)
        mids.append(statistics.median(chunk))
        lows.append(min(chunk))
        highs.append(max(chunk))
    return xs, mids, lows, highs


def timeline_plot(records: Sequence[dict[str, Any]]) -> str | None:
    """Every timed sample in run order (binned), each run's span shaded by its thermal status."""
    if not any(samples_ms([r]) for r in records):
        return None
    figure, axes = plt.subplots(figsize=(FIGURE_WIDTH_IN, 3.6))
    style = styles(list(groups(records)))
    start = 0
    seen: set[str] = set()
    plotted: list[float] = []
    for record in records:
        samples = samples_ms([record])
        if not samples:
            continue
        status = record["result"]["thermal"].get("after") or record["harness"].get("thermal_after")
        status = status or "none"
        end = start + len(samples)
        axes.axvspan(start, end, color=THERMAL_COLOURS.get(status, "#eeeeee"), lw=0,
                     label=f"thermal: {status}" if f"thermal: {status}" not in seen else None)
        seen.add(f"thermal: {status}")
        key = label(record)
        xs, mids, lows, highs = _binned(samples, start)
        plotted += lows + highs
        if len(samples) > len(xs):
            axes.fill_between(xs, lows, highs, color=style[key].colour, alpha=0.25, lw=0)
        axes.plot(xs, mids, lw=1, color=style[key].colour, marker=style[key].marker,
                  markersize=4, markevery=[len(xs) // 2], label=key if key not in seen else None)
        seen.add(key)
        start = end
    log = wants_log_axis(plotted)
    if log:  # a throttled or disturbed sample stays visible beside the rest
        axes.set_yscale("log")
        log_axis(axes.yaxis)
    axes.set_xlabel("timed inference, in run order")
    axes.set_ylabel("ms" + (", log scale" if log else ""))
    axes.set_title("Latency over the run (line: median per bin, band: min-max), thermal shading")
    axes.set_xlim(0, max(start, 1))
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                ncol=2 if len(seen) > 18 else 1)
    return svg(figure)


def memory_plot(records: Sequence[dict[str, Any]]) -> str | None:
    labels, peak, pss = [], [], []
    for key, group in groups(records).items():
        memories = [r["result"].get("memory") or {} for r in group]
        peaks = [m["peak_rss"] for m in memories if m.get("peak_rss") is not None]
        psses = [m["pss"] for m in memories if m.get("pss") is not None]
        if not peaks and not psses:
            continue
        labels.append(key)
        peak.append(max(peaks) / 1024.0 if peaks else 0.0)
        pss.append(max(psses) / 1024.0 if psses else 0.0)
    if not labels:
        return None
    labels, peak, pss = labels[::-1], peak[::-1], pss[::-1]  # first run at the top
    figure, axes = _figure(len(labels))
    positions = range(len(labels))
    axes.barh([p + 0.2 for p in positions], peak, height=0.4, label="peak RSS", color="#1f77b4")
    axes.barh([p - 0.2 for p in positions], pss, height=0.4, label="PSS", color="#ff7f0e")
    axes.set_yticks(list(positions), labels)
    axes.tick_params(axis="y", labelsize=8)
    axes.set_xlabel("MB")
    axes.set_title("Memory of the process that ran the model")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(axis="x", alpha=0.3)
    return svg(figure)
