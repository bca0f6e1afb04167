"""One self-contained HTML report of benchmark runs (and a sweep's recommendation).

Plots are drawn with matplotlib (Agg, no display) and embedded as inline SVG; images are
base64 PNG data URLs, so the file opens anywhere, offline, without JavaScript.
"""

from __future__ import annotations

import html
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

from mobilize.contract.files import atomic_write_bytes

matplotlib.use("Agg")  # no display: plots are only ever written to SVG here

from matplotlib import pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402

from mobilize.bench.sweep import Recommendation  # noqa: E402
from mobilize.report.tables import format_ms  # noqa: E402

THERMAL_COLOURS = {
    "none": "#e8f5e9",
    "light": "#fff8e1",
    "moderate": "#ffe0b2",
    "severe": "#ffcdd2",
    "critical": "#ef9a9a",
    "emergency": "#e57373",
    "shutdown": "#d32f2f",
}

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em}
th{background:#f0f0f0}td.num{text-align:right}.win{background:#e8f5e9;font-weight:bold}
.box{background:#f6f8fa;border-left:4px solid #2e7d32;padding:.6em 1em;margin:.6em 0}
.note{border-left-color:#ef6c00}.strip{display:flex;gap:6px;flex-wrap:wrap;margin:.4em 0}
table.strips td{border:none;padding:2px}
figure{margin:0;text-align:center;font-size:.75em}figure img{width:128px;height:auto;
image-rendering:pixelated;border:1px solid #ccc;display:block}
"""


@dataclass(frozen=True)
class ReportInput:
    title: str
    records: tuple[dict[str, Any], ...]  # runner records, in run order
    recommendation: Recommendation | None = None


def _label(record: dict[str, Any]) -> str:
    variant = (record.get("target") or record["model_name"]).removeprefix("tflite-")
    return f"{variant} / {record['result']['config']['delegate']}"


def _groups(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(_label(record), []).append(record)
    return groups


def _samples_ms(records: Sequence[dict[str, Any]]) -> list[float]:
    return [
        s / 1000.0
        for r in records
        for s in ((r["result"].get("latency") or {}).get("samples") or [])
    ]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: inline SVG


def latency_plot(records: Sequence[dict[str, Any]]) -> str | None:
    groups = {k: _samples_ms(v) for k, v in _groups(records).items()}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        return None
    figure, axes = plt.subplots(figsize=(max(5.0, 1.3 * len(groups)), 3.6))
    # Outliers (a phone busy elsewhere for a moment) would squash the boxes: the
    # timeline below shows every sample.
    axes.boxplot(list(groups.values()), tick_labels=list(groups), showfliers=False)
    axes.set_ylabel("latency per inference (ms)")
    axes.set_title("Latency distribution per variant and delegate")
    axes.tick_params(axis="x", rotation=30)
    axes.grid(axis="y", alpha=0.3)
    return _svg(figure)


def timeline_plot(records: Sequence[dict[str, Any]]) -> str | None:
    """Every timed sample in run order, each run's span shaded by its thermal status after."""
    if not any(_samples_ms([r]) for r in records):
        return None
    figure, axes = plt.subplots(figsize=(9.0, 3.4))
    start = 0
    seen: set[str] = set()
    colours = {label: f"C{i % 10}" for i, label in enumerate(_groups(records))}
    for record in records:
        samples = _samples_ms([record])
        if not samples:
            continue
        status = record["result"]["thermal"].get("after") or record["harness"].get("thermal_after")
        status = status or "none"
        end = start + len(samples)
        axes.axvspan(
            start,
            end,
            color=THERMAL_COLOURS.get(status, "#eeeeee"),
            lw=0,
            label=f"thermal: {status}" if status not in seen else None,
        )
        seen.add(status)
        label = _label(record)
        axes.plot(
            range(start, end),
            samples,
            lw=1,
            color=colours[label],
            label=label if label not in seen else None,
        )
        seen.add(label)
        start = end
    axes.set_yscale("log")  # a throttled or disturbed sample stays visible beside the rest
    axes.set_xlabel("timed inference, in run order")
    axes.set_ylabel("ms")
    axes.set_title("Latency over the run, shaded by thermal status")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return _svg(figure)


def memory_plot(records: Sequence[dict[str, Any]]) -> str | None:
    labels, peak, pss = [], [], []
    for label, group in _groups(records).items():
        memories = [r["result"].get("memory") or {} for r in group]
        peaks = [m["peak_rss"] for m in memories if m.get("peak_rss") is not None]
        psses = [m["pss"] for m in memories if m.get("pss") is not None]
        if not peaks and not psses:
            continue
        labels.append(label)
        peak.append(max(peaks) / 1024.0 if peaks else 0.0)
        pss.append(max(psses) / 1024.0 if psses else 0.0)
    if not labels:
        return None
    figure, axes = plt.subplots(figsize=(max(5.0, 1.3 * len(labels)), 3.2))
    positions = range(len(labels))
    axes.bar([p - 0.2 for p in positions], peak, width=0.4, label="peak RSS")
    axes.bar([p + 0.2 for p in positions], pss, width=0.4, label="PSS")
    axes.set_xticks(list(positions), labels, rotation=30)
    axes.set_ylabel("MB")
    axes.set_title("Memory of the process that ran the model")
    axes.legend(fontsize=7)
    return _svg(figure)


def _cell(value: object, numeric: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in (css, "num" if numeric else "") if c)
    attribute = f' class="{classes}"' if classes else ""
    return f"<td{attribute}>{html.escape(str(value))}</td>"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ms(value: float | None) -> str:
    """Milliseconds in fixed point, as in the terminal tables: 1140.04, never 1.14e+03."""
    return "-" if value is None else format_ms(value * 1000.0)


def figures_table(records: Sequence[dict[str, Any]], recommendation: Recommendation | None) -> str:
    groups = _groups(records)
    medians = {k: statistics.median(s) for k, v in groups.items() if (s := _samples_ms(v))}
    fastest = min(medians.values()) if medians else None
    verdicts = {}
    if recommendation is not None:
        for verdict in recommendation.verdicts:
            key = f"{verdict.candidate.variant} / {verdict.candidate.delegate.value}"
            verdicts[key] = "winner" if verdict.reason is None else verdict.reason.value
    head = [
        "variant / delegate",
        "status",
        "ran on",
        "runs",
        "p50 ms",
        "mean ms",
        "p90 ms",
        "init ms",
        "x fastest",
        "peak RSS MB",
        "file KB",
        "PSNR dB",
        "SSIM",
        "max abs err",
    ]
    if verdicts:
        head.append("verdict")
    rows = []
    for label, group in groups.items():
        first = group[0]
        result = first["result"]
        samples = _samples_ms(group)
        memory = [r["result"].get("memory") or {} for r in group]
        peaks = [m["peak_rss"] for m in memory if m.get("peak_rss") is not None]
        quality = next((r["harness"]["quality"] for r in group if r["harness"].get("quality")), {})
        p50 = medians.get(label)
        css = "win" if verdicts.get(label) == "winner" else ""
        cells = [
            _cell(label, css=css),
            _cell(result["status"]),
            _cell(result["delegate"].get("name") or "-"),
            _cell(len(group), True),
            _cell(_ms(p50), True),
            _cell(_ms(statistics.fmean(samples) if samples else None), True),
            _cell(_ms(_percentile(samples, 0.9)), True),
            _cell(
                _fmt(
                    (result.get("latency") or {}).get("init") and result["latency"]["init"] / 1000.0
                ),
                True,
            ),
            _cell(_fmt(p50 / fastest if p50 and fastest else None), True),
            _cell(_fmt(max(peaks) / 1024.0 if peaks else None, 1), True),
            _cell(_fmt((result["model"].get("size_bytes") or 0) / 1024.0, 1), True),
            _cell(_fmt(quality.get("worst_psnr_db"), 1) if quality else "-", True),
            _cell(_fmt(quality.get("mean_ssim"), 4) if quality else "-", True),
            _cell(_fmt(quality.get("max_abs_error"), 4) if quality else "-", True),
        ]
        if verdicts:
            cells.append(_cell(verdicts.get(label, "")))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _percentile(samples: Sequence[float], fraction: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def device_table(records: Sequence[dict[str, Any]]) -> str:
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        info = record["harness"].get("device_info") or {
            "serial": record["serial"],
            **record["result"]["device"],
        }
        seen.setdefault(record["serial"], info)
    rows = []
    for info in seen.values():
        runtime = records[0]["result"]["runtime"]
        fields = {
            **info,
            "runtime": f"{runtime['name']} {runtime.get('version') or ''}",
            "app": runtime.get("app_version"),
        }
        rows.append(
            "".join(
                f"<tr><th>{html.escape(str(k))}</th>{_cell(v if v is not None else '-')}</tr>"
                for k, v in fields.items()
            )
        )
    return "".join(f"<table>{row}</table>" for row in rows)


def _img(data: str, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"{html.escape(caption)}</figure>"
    )


def image_strips(records: Sequence[dict[str, Any]]) -> str:
    """Per held-out image: input and PyTorch's output, then one row per candidate with its
    phone output and the amplified difference heatmap."""
    with_quality = [
        (label, group[0]["harness"]["quality"])
        for label, group in _groups(records).items()
        if group[0]["harness"].get("quality", {}).get("previews")
    ]
    if not with_quality:
        return "<p>No quality pass in these runs (run with --check-quality or a sweep).</p>"
    count = min(len(q["previews"]) for _, q in with_quality)
    heads = with_quality[0][1]["previews"][:count]
    top = "".join(
        f"<td>{_img(p['input'], f'input {i + 1}')}</td>"
        f"<td>{_img(p['reference'], 'PyTorch fp32')}</td>"
        for i, p in enumerate(heads)
    )
    rows = [f"<tr><th>reference</th>{top}</tr>"]
    for label, quality in with_quality:
        cells = []
        for index in range(count):
            preview = quality["previews"][index]
            image = quality["images"][index] if index < len(quality["images"]) else {}
            psnr = image.get("psnr_db")
            psnr_text = "identical" if psnr is None else f"{psnr:.1f} dB"
            cells.append(f"<td>{_img(preview['output'], f'phone, {psnr_text}')}</td>")
            cells.append(f"<td>{_img(preview['difference'], '|difference| x10')}</td>")
        rows.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    return f'<table class="strips">{"".join(rows)}</table>'


def recommendation_html(recommendation: Recommendation) -> str:
    parts = [f'<div class="box">{html.escape(recommendation.summary())}</div>', "<ul>"]
    for verdict in recommendation.verdicts:
        reason = "winner" if verdict.reason is None else verdict.reason.value
        parts.append(
            f"<li><b>{html.escape(verdict.candidate.label)}</b>: "
            f"{html.escape(reason)} — {html.escape(verdict.detail)}</li>"
        )
    parts.append("</ul>")
    for note in (*recommendation.notes, *recommendation.skipped_delegates):
        parts.append(f'<div class="box note">{html.escape(note)}</div>')
    return "".join(parts)


def render(report: ReportInput) -> str:
    records = report.records
    sections = [f"<h1>{html.escape(report.title)}</h1>"]
    if report.recommendation is not None:
        sections += ["<h2>Recommendation</h2>", recommendation_html(report.recommendation)]
    sections += ["<h2>Figures</h2>", figures_table(records, report.recommendation)]
    for title, plot in (
        ("Latency", latency_plot(records)),
        ("Latency over the run", timeline_plot(records)),
        ("Memory", memory_plot(records)),
    ):
        if plot is not None:
            sections += [f"<h2>{title}</h2>", f'<div class="plot">{plot}</div>']
    sections += [
        "<h2>Pictures: input, PyTorch, each variant on the phone</h2>",
        image_strips(records),
        "<h2>Device</h2>",
        device_table(records),
    ]
    runs = ", ".join(html.escape(r["result"]["run_id"]) for r in records)
    sections.append(f"<p><small>runs: {runs}</small></p>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def write_report(path: Path, report: ReportInput) -> Path:
    """Write the HTML atomically: never half a report."""
    atomic_write_bytes(path, render(report).encode("utf-8"))
    return path
