"""Rich tables for devices, benchmark runs and comparisons (presentation only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from device_bench.store import StoredRun


@dataclass(frozen=True)
class DeviceRow:
    serial: str
    model: str | None
    board: str | None
    soc: str | None
    abi: str | None
    android: str | None
    sdk: int | None
    gpu: str | None
    battery_c: float | None
    thermal: str | None
    app: str | None  # "0.1.0 (1)" or None when not installed
    error: str | None = None


def devices_table(rows: Sequence[DeviceRow]) -> Table:
    table = Table(title="Android devices")
    for column in (
        "serial",
        "model",
        "board / SoC",
        "ABI",
        "Android",
        "GPU renderer",
        "battery",
        "thermal",
        "bench app",
    ):
        table.add_column(column)
    for row in rows:
        if row.error:
            table.add_row(row.serial, f"[red]{row.error}[/]", *[""] * 7)
            continue
        table.add_row(
            row.serial,
            _text(row.model),
            f"{_text(row.board)} / {_text(row.soc)}",
            _text(row.abi),
            f"{_text(row.android)} (SDK {_text(row.sdk)})",
            _text(row.gpu),
            "-" if row.battery_c is None else f"{row.battery_c:.1f} °C",
            _text(row.thermal),
            row.app or "[yellow]not installed[/]",
        )
    return table


def runs_table(records: Sequence[dict[str, Any]], title: str = "Benchmark results") -> Table:
    """One line per run record (from the runner): latency in ms, memory in MB."""
    table = Table(title=title)
    for column in (
        "device",
        "model",
        "delegate",
        "status",
        "init ms",
        "first ms",
        "min ms",
        "p50 ms",
        "mean ms",
        "p90 ms",
        "p99 ms",
        "std ms",
        "peak RSS MB",
        "PSS MB",
        "thermal",
        "run id",
    ):
        table.add_column(column, justify="right" if column.endswith(("ms", "MB")) else "left")
    for record in records:
        result = record["result"]
        latency = result.get("latency") or {}
        stats = latency.get("stats") or {}
        memory = result.get("memory") or {}
        delegate_text = _delegate_text(result["delegate"])
        status = result["status"]
        thermal = result["thermal"]
        table.add_row(
            record["serial"],
            record["model_name"],
            delegate_text,
            "[green]ok[/]" if status == "ok" else f"[red]{status}[/]",
            _ms(latency.get("init")),
            _ms(latency.get("first_inference")),
            _ms(stats.get("min")),
            _ms(stats.get("p50")),
            _ms(stats.get("mean")),
            _ms(stats.get("p90")),
            _ms(stats.get("p99")),
            _ms(stats.get("std")),
            _mb(memory.get("peak_rss")),
            _mb(memory.get("pss")),
            f"{thermal.get('before')} → {thermal.get('after')}",
            result["run_id"],
        )
    return table


def _delegate_text(delegate: dict[str, Any]) -> str:
    """`gpu→xnnpack, not applied` / `cpu→xnnpack 12/12 nodes, 1 part.`: asked, then what ran."""
    text = f"{delegate['requested']}→{delegate.get('name') or '-'}"
    if not delegate.get("applied"):
        text += ", [yellow]not applied[/]"
    elif delegate.get("nodes_total"):
        text += (
            f" {delegate.get('nodes_delegated')}/{delegate['nodes_total']} nodes, "
            f"{delegate.get('partitions')} part."
        )
    if delegate.get("fallback_ops"):
        text += f", CPU fallback: {', '.join(delegate['fallback_ops'][:3])}"
    return text


def stored_runs_table(runs: Sequence[StoredRun]) -> Table:
    table = Table(title="Stored runs")
    for column in (
        "#",
        "when",
        "device",
        "model",
        "delegate",
        "status",
        "p50 ms",
        "mean ms",
        "PSS MB",
        "run id",
    ):
        table.add_column(column, justify="right" if column.endswith(("ms", "MB", "#")) else "left")
    for run in runs:
        table.add_row(
            str(run.id),
            run.created_at,
            f"{run.serial} ({_text(run.device_model)})",
            run.model_name,
            run.delegate + ("" if run.delegate_applied else " (not applied)"),
            run.status,
            _ms(run.p50_us),
            _ms(run.mean_us),
            _mb(run.pss_kb),
            run.run_id,
        )
    return table


@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    baseline: float
    candidate: float
    ratio: float
    low: float
    high: float


def comparison_table(rows: Sequence[ComparisonRow], title: str) -> Table:
    table = Table(title=title)
    for column in ("metric", "baseline ms", "candidate ms", "ratio", "95% CI"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in rows:
        colour = "red" if row.low > 1.0 else "green" if row.high < 1.0 else "white"
        table.add_row(
            row.metric,
            _ms(row.baseline),
            _ms(row.candidate),
            f"[{colour}]{row.ratio:.3f}×[/]",
            f"{row.low:.3f} – {row.high:.3f}",
        )
    return table


def _ms(value_us: float | None) -> str:
    return "-" if value_us is None else f"{value_us / 1000.0:.2f}"


def _mb(value_kb: float | None) -> str:
    return "-" if value_kb is None else f"{value_kb / 1024.0:.1f}"


def _text(value: object) -> str:
    return "-" if value is None else str(value)
