"""One self-contained HTML report of benchmark runs (and a sweep's recommendation).

Plots are inline SVG (plots.py) that scale to the page; images are base64 PNG data URLs,
re-encoded here at the size they are shown (PREVIEW_SIDE px, a 256-colour palette), so the
file stays small and opens anywhere, offline, without JavaScript. One ratio everywhere: a
candidate's median over the winner's median (over the fastest's in a report of stored runs,
which has no winner).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mobilize.bench.sweep import RATIO_WORDS, LossReason, Recommendation, Verdict
from mobilize.contract.files import atomic_write_bytes
from mobilize.report import plots
from mobilize.report.plots import groups, samples_ms
from mobilize.report.provenance import Provenance
from mobilize.report.table_layout import format_ms
from mobilize.results.stats import summarize

PREVIEW_SIDE = 128  # px: the size the strips show each image at
TOP_OPS = 8
FALLBACK_OPS_SHOWN = 6
# Reasons whose detail is mostly the runtime's own message: said once for all who share it.
GROUPED_REASONS = (LossReason.FELL_BACK, LossReason.FAILED_TO_LOAD, LossReason.FAILED)

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 1em;color:#222;max-width:1200px}
h1{font-size:1.6em;margin-bottom:.1em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:1.6em}.prov{color:#555;font-size:.85em;margin-top:0}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.2em .45em}
th{background:#f0f0f0}td.num{text-align:right;white-space:nowrap}
.win{background:#e8f5e9;font-weight:bold}.wide{overflow-x:auto;max-width:100%}
.box{background:#f6f8fa;border-left:4px solid #2e7d32;padding:.6em 1em;margin:.6em 0}
.note{border-left-color:#ef6c00}svg{max-width:100%}
table.strips td{border:none;padding:2px}table.strips th{font-size:.85em}
.ops{display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}
figure{margin:0;text-align:center;font-size:.75em}figure img{width:128px;height:auto;
image-rendering:pixelated;border:1px solid #ccc;display:block}
"""


@dataclass(frozen=True)
class ReportInput:
    title: str
    records: tuple[dict[str, Any], ...]  # runner records, in run order
    recommendation: Recommendation | None = None
    provenance: Provenance | None = None


def _cell(value: object, numeric: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in (css, "num" if numeric else "") if c)
    attribute = f' class="{classes}"' if classes else ""
    return f"<td{attribute}>{html.escape(str(value))}</td>"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ms(value_ms: float | None) -> str:
    """Milliseconds in fixed point, as in the terminal tables: 1580.04, never 1.58e+03."""
    return "-" if value_ms is None else format_ms(value_ms * 1000.0)


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f'<div class="wide"><table><tr>{header}</tr>{"".join(rows)}</table></div>'


def _verdicts(recommendation: Recommendation | None) -> dict[str, str]:
    if recommendation is None:
        return {}
    return {
        f"{v.candidate.variant} / {v.candidate.delegate.value}":
        "winner" if v.reason is None else v.reason.value
        for v in recommendation.verdicts
    }


def _mean_of(records: Sequence[dict[str, Any]], key: str) -> float | None:
    values = [(r["result"].get("latency") or {}).get(key) for r in records]
    present = [v for v in values if v is not None]
    return sum(present) / len(present) / 1000.0 if present else None


def latency_table(records: Sequence[dict[str, Any]], recommendation: Recommendation | None) -> str:
    by_label = groups(records)
    stats = {k: summarize(samples_ms(v)) for k, v in by_label.items()}
    winner = recommendation.winner if recommendation else None
    base = winner.p50_ms if winner is not None else None
    if winner is None:
        medians = [s["p50"] for s in stats.values() if s]
        base = min(medians) if medians else None
    verdicts = _verdicts(recommendation)
    ratio_head = f"x {RATIO_WORDS}" if recommendation is not None else "x the fastest's median"
    head = ["variant / delegate", "status", "ran on", "runs", "samples", "p50 ms", "mean ms",
            "p90 ms", "p99 ms", "std ms", "first inference ms", "init ms", ratio_head]
    rows = []
    for key, group in by_label.items():
        result, s = group[0]["result"], stats[key] or {}
        css = "win" if verdicts.get(key) == "winner" else ""
        p50 = s.get("p50")
        cells = [_cell(key, css=css), _cell(result["status"]),
                 _cell(result["delegate"].get("name") or "-"), _cell(len(group), True),
                 _cell(s.get("count", 0), True)]
        cells += [_cell(_ms(s.get(name)), True) for name in ("p50", "mean", "p90", "p99", "std")]
        cells += [_cell(_ms(_mean_of(group, "first_inference")), True),
                  _cell(_ms(_mean_of(group, "init")), True),
                  _cell(f"{p50 / base:.2f}x" if p50 and base else "-", True)]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table(head, rows)


def _db(quality: dict[str, Any], name: str) -> str:
    if not quality or name not in quality:
        return "-"  # no quality pass, or a run stored before the figure existed
    return "identical" if quality.get(name) is None else _fmt(quality[name], 1)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _ops_text(ops: Sequence[str]) -> str:
    shown = ", ".join(ops[:FALLBACK_OPS_SHOWN])
    more = len(ops) - FALLBACK_OPS_SHOWN
    return (shown + (f" (+{more} more)" if more > 0 else "")) or "-"


def quality_table(records: Sequence[dict[str, Any]], recommendation: Recommendation | None) -> str:
    verdicts = _verdicts(recommendation)
    head = ["variant / delegate", "nodes on delegate", "partitions", "ops left to the CPU",
            "peak RSS MB", "PSS MB", "file KB", "worst PSNR dB", "pooled PSNR dB", "mean SSIM",
            "max abs err"]
    if verdicts:
        head.append("verdict")
    rows = []
    for key, group in groups(records).items():
        result = group[0]["result"]
        delegate = result["delegate"]
        memory = [r["result"].get("memory") or {} for r in group]
        peaks = [m["peak_rss"] for m in memory if m.get("peak_rss") is not None]
        psses = [m["pss"] for m in memory if m.get("pss") is not None]
        quality = next((r["harness"]["quality"] for r in group if r["harness"].get("quality")),
                       {})
        done, total = delegate.get("nodes_delegated"), delegate.get("nodes_total")
        nodes = "-" if done is None or total is None else f"{done} of {total}"

        css = "win" if verdicts.get(key) == "winner" else ""
        cells = [
            _cell(key, css=css), _cell(nodes, True),
            _cell(_count(delegate.get("partitions")), True),
            _cell(_ops_text(delegate.get("fallback_ops") or [])),
            _cell(_fmt(max(peaks) / 1024.0 if peaks else None, 1), True),
            _cell(_fmt(max(psses) / 1024.0 if psses else None, 1), True),
            _cell(_fmt((result["model"].get("size_bytes") or 0) / 1024.0, 1), True),
            _cell(_db(quality, "worst_psnr_db"), True), _cell(_db(quality, "pooled_psnr_db"), True),
            _cell(_fmt(quality.get("mean_ssim"), 4) if quality else "-", True),
            _cell(_fmt(quality.get("max_abs_error"), 4) if quality else "-", True),
        ]
        if verdicts:
            cells.append(_cell(verdicts.get(key, "")))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table(head, rows)


def _op_rows(group: Sequence[dict[str, Any]]) -> list[tuple[str, int, float]]:
    """(node type, count, avg ms per run) of the timed runs' profile, averaged over runs."""
    summed: dict[str, list[float]] = {}
    profiled = 0
    for record in group:
        runs = ((record["result"].get("op_profile") or {}).get("regular_runs") or {})
        summary = runs.get("summary_by_node_type") or []
        if not summary:
            continue
        profiled += 1
        for row in summary:
            entry = summed.setdefault(row["node_type"], [0.0, 0.0])
            entry[0] = max(entry[0], float(row.get("count") or 0))
            entry[1] += float(row["avg_ms"])
    return [(name, int(count), total / profiled) for name, (count, total) in summed.items()]


def op_profile_html(records: Sequence[dict[str, Any]]) -> str | None:
    """The top node types by time of each profiled variant (`bench --profile-ops`)."""
    tables = []
    for key, group in groups(records).items():
        rows = sorted(_op_rows(group), key=lambda row: -row[2])
        if not rows:
            continue
        whole = sum(row[2] for row in rows) or 1.0
        body = [
            "<tr>" + _cell(name) + _cell(count, True) + _cell(_fmt(ms, 3), True)
            + _cell(f"{100.0 * ms / whole:.1f}", True) + "</tr>"
            for name, count, ms in rows[:TOP_OPS]
        ]
        more = len(rows) - TOP_OPS
        caption = f"{html.escape(key)}" + (f" (top {TOP_OPS} of {len(rows)})" if more > 0 else "")
        header = "".join(f"<th>{h}</th>" for h in ("node type", "nodes", "avg ms", "%"))
        tables.append(f"<table><caption>{caption}</caption><tr>{header}</tr>{''.join(body)}"
                      "</table>")
    return f'<div class="ops">{"".join(tables)}</div>' if tables else None


def device_table(records: Sequence[dict[str, Any]]) -> str:
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        info = record["harness"].get("device_info") or {
            "serial": record["serial"],
            **record["result"]["device"],
        }
        seen.setdefault(record["serial"], info)
    runtime = records[0]["result"]["runtime"] if records else {}
    tables = []
    for info in seen.values():
        fields = {**info, "runtime": f"{runtime.get('name')} {runtime.get('version') or ''}",
                  "app": runtime.get("app_version")}
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v if v is not None else '-')}"
                       "</tr>" for k, v in fields.items())
        tables.append(f"<table>{rows}</table>")
    return "".join(tables)


@lru_cache(maxsize=512)
def small_png(data: str, colours: int = 256) -> str:
    """A stored base64 preview at the size it is shown: at most PREVIEW_SIDE px, a palette of
    `colours` (the difference heatmap was computed before this, from the full outputs, and its
    one-dimensional ramp needs few)."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    except (OSError, ValueError):
        return data
    if max(image.size) > PREVIEW_SIDE:
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.quantize(colours).save(buffer, format="PNG", optimize=True)
    small = base64.b64encode(buffer.getvalue()).decode("ascii")
    return small if len(small) < len(data) else data


def _img(data: str, caption: str, colours: int = 256) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
        f'{small_png(data, colours)}">{html.escape(caption)}</figure>'
    )


def image_strips(records: Sequence[dict[str, Any]]) -> str:
    """Per held-out image: input and PyTorch's output, then one row per candidate with its
    phone output and the amplified difference heatmap."""
    with_quality = [
        (key, group[0]["harness"]["quality"])
        for key, group in groups(records).items()
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
    for key, quality in with_quality:
        cells = []
        for index in range(count):
            preview = quality["previews"][index]
            image = quality["images"][index] if index < len(quality["images"]) else {}
            psnr = image.get("psnr_db")
            psnr_text = "identical" if psnr is None else f"{psnr:.1f} dB"
            cells.append(f"<td>{_img(preview['output'], f'phone, {psnr_text}')}</td>")
            cells.append(f"<td>{_img(preview['difference'], '|difference| x10', 64)}</td>")
        rows.append(f"<tr><th>{html.escape(key)}</th>{''.join(cells)}</tr>")
    return f'<div class="wide"><table class="strips">{"".join(rows)}</table></div>'


def _bullet(names: str, reason: str, detail: str) -> str:
    return f"<li><b>{names}</b>: {html.escape(reason)} — {html.escape(detail)}</li>"


def _ran_on(members: Sequence[Verdict]) -> str:
    ran = {r["result"]["delegate"].get("name") for v in members for r in v.candidate.records}
    ran.discard(None)
    return f" (ran on {', '.join(sorted(ran))})" if ran else ""


def recommendation_html(recommendation: Recommendation) -> str:
    """The summary, then one bullet per candidate (the winner first, then the slower ones by
    their ratio), where candidates that lost for the same reason with the same runtime
    message share one bullet that says it once."""
    parts = [f'<div class="box">{html.escape(recommendation.summary())}</div>', "<ul>"]
    order = {None: 0, LossReason.SLOWER: 1, LossReason.WORSE_PICTURE: 2}
    verdicts = sorted(recommendation.verdicts, key=lambda v: (
        order.get(v.reason, 3),
        (v.candidate.p50_ms or 0.0) if v.reason is LossReason.SLOWER else 0.0))  # else run order
    shared: dict[tuple[LossReason, str], list[Verdict]] = {}
    for verdict in verdicts:
        if verdict.reason in GROUPED_REASONS and verdict.shared:
            shared.setdefault((verdict.reason, verdict.shared), []).append(verdict)
            continue
        reason = "winner" if verdict.reason is None else verdict.reason.value
        parts.append(_bullet(html.escape(verdict.candidate.label), reason, verdict.detail))
    for (reason, message), members in shared.items():
        if len(members) == 1:
            verdict = members[0]
            parts.append(_bullet(html.escape(verdict.candidate.label), reason.value,
                                 verdict.detail))
            continue
        names = ", ".join(html.escape(v.candidate.label) for v in members)
        parts.append(_bullet(names, reason.value + _ran_on(members), message))
    parts.append("</ul>")
    for note in (*recommendation.notes, *recommendation.skipped_delegates):
        parts.append(f'<div class="box note">{html.escape(note)}</div>')
    return "".join(parts)


def provenance_html(provenance: Provenance, runs: str) -> str:
    rows = [("generated", provenance.generated_utc),
            ("mobilize", provenance.mobilize_version),
            ("git commit", provenance.git_commit or "not a git checkout"),
            *provenance.export, *provenance.settings, ("run ids", runs)]
    body = "".join(f"<tr><th>{html.escape(k)}</th>{_cell(v)}</tr>" for k, v in rows)
    return f'<div class="wide"><table>{body}</table></div>'


def render(report: ReportInput) -> str:
    records = report.records
    runs = ", ".join(r["result"]["run_id"] for r in records)
    sections = [f"<h1>{html.escape(report.title)}</h1>"]
    if report.provenance is not None:
        sections.append(f'<p class="prov">{html.escape(report.provenance.line())}</p>')
    if report.recommendation is not None:
        sections += ["<h2>Recommendation</h2>", recommendation_html(report.recommendation)]
    sections += ["<h2>Latency</h2>", latency_table(records, report.recommendation),
                 "<h2>Delegate, memory, size and picture</h2>",
                 quality_table(records, report.recommendation)]
    ops = op_profile_html(records)
    if ops is not None:
        sections += ["<h2>Time per op type (benchmark_model --enable_op_profiling)</h2>", ops]
    for title, plot in (
        ("Latency distribution", plots.latency_plot(records)),
        ("Latency over the run", plots.timeline_plot(records)),
        ("Memory", plots.memory_plot(records)),
    ):
        if plot is not None:
            sections += [f"<h2>{title}</h2>", f'<div class="plot">{plot}</div>']
    sections += [
        "<h2>Pictures: input, PyTorch, each variant on the phone</h2>",
        image_strips(records),
        "<h2>Device</h2>",
        device_table(records),
    ]
    if report.provenance is not None:
        sections += ["<h2>Provenance</h2>", provenance_html(report.provenance, runs)]
    else:
        sections.append(f"<p><small>runs: {html.escape(runs)}</small></p>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def write_report(path: Path, report: ReportInput) -> Path:
    """Write the HTML atomically: never half a report."""
    atomic_write_bytes(path, render(report).encode("utf-8"))
    return path
