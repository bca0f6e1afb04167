"""The terminal tables as a person sees them: rendered at 80 and 100 columns, identifiers
(model names, serials, run ids) whole, latencies in fixed-point milliseconds."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from mobilize.report.results_tables import stored_runs_table
from mobilize.report.table_layout import format_ms
from mobilize.report.tables import (
    DeviceRow,
    compare_models,
    comparison_lines,
    devices_table,
    runs_table,
)
from mobilize.results.stats import summarize
from mobilize.results.store import StoredRun

LONG_SERIAL = "192.168.100.200:37123"
USB_SERIAL = "R5CT12345ABCDEF"
MODELS = ("style_student:tflite-fp32", "style_student:tflite-int8", "fast_style:tflite-int16x8")
# Longer than 80 columns leave room for next to seven figures: folds there, whole at 100.
LONG_MODEL = "style_student_256:tflite-int16x8"
RUN_IDS = ("20261123T070002-1a2b3c4d", "20261123T070003-5e6f7a8b", "20261123T070004-9c0d1e2f")


def record(model: str, run_id: str, serial: str = LONG_SERIAL, p50_us: float = 14_000.0,
           **delegate: Any) -> dict[str, Any]:
    samples = list(p50_us + np.random.default_rng(len(model)).normal(0.0, p50_us / 50, 30))
    return {
        "serial": serial,
        "model_name": model,
        "result": {
            "run_id": run_id,
            "status": "ok",
            "latency": {"init": 152_300.0, "first_inference": 20_000.0, "samples": samples,
                        "stats": summarize(samples)},
            "memory": {"peak_rss": 123_456.0, "pss": 100_000.0},
            "delegate": {"requested": "cpu", "applied": True, "name": "xnnpack",
                         "nodes_delegated": 12, "nodes_total": 12, "partitions": 1,
                         "fallback_ops": [], **delegate},
            "thermal": {"before": "none", "after": "light"},
            "device": {"model": "Pixel 7"},
        },
    }


def three_runs(serial: str = LONG_SERIAL) -> list[dict[str, Any]]:
    p50s = (14_000.0, 9_100.0, 1_140_040.0)
    runs = [record(m, r, serial, p50) for m, r, p50 in zip(MODELS, RUN_IDS, p50s, strict=True)]
    runs[1]["result"]["status"] = "model_load_failed"
    runs[2]["result"]["delegate"] = {"requested": "gpu", "applied": False, "name": "xnnpack"}
    return runs


def render(renderable: Any, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable, crop=False)  # as mobilize.console prints tables
    return console.export_text()


def assert_whole(text: str, width: int, identifiers: tuple[str, ...]) -> None:
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for identifier in identifiers:
        assert identifier in text, f"{identifier} is cut at {width} columns:\n{text}"


@pytest.mark.parametrize("width", [80, 100])
def test_compact_bench_table_keeps_names_and_serial_whole(width: int) -> None:
    runs = three_runs()
    text = render(runs_table(runs), width)
    assert_whole(text, width, (*MODELS, LONG_SERIAL))
    for header in ("model", "p50", "p90", "init", "RSS MB", "status"):
        assert header in text
    slow_p50 = runs[2]["result"]["latency"]["stats"]["p50"]
    assert format_ms(slow_p50) in text and "152.30" in text and "120.6" in text
    assert "e+0" not in text


def test_a_long_model_name_is_whole_at_100_and_folds_at_80() -> None:
    runs = three_runs()
    runs[2]["model_name"] = LONG_MODEL
    assert_whole(render(runs_table(runs), 100), 100, (*MODELS[:2], LONG_MODEL))
    narrow = render(runs_table(runs), 80)
    assert "…" not in narrow and max(len(line) for line in narrow.splitlines()) <= 80
    assert "16x8" in narrow  # folded onto the next line, not cut


def test_compact_bench_table_says_a_gpu_request_ran_on_the_cpu() -> None:
    text = render(runs_table(three_runs()), 120)
    assert "gpu → cpu not applied" in text
    assert "cpu → xnnpack" in text


def test_a_run_that_failed_ran_on_nothing() -> None:
    runs = three_runs()
    runs[1]["result"]["delegate"] = {"requested": "cpu", "applied": False, "name": None}
    text = render(runs_table(runs), 120)
    assert "cpu → -" in text and "cpu → cpu" not in text


@pytest.mark.parametrize("width", [80, 100])
def test_several_devices_get_a_table_each_with_the_serial_in_its_title(width: int) -> None:
    runs = three_runs(LONG_SERIAL) + three_runs(USB_SERIAL)
    text = render(runs_table(runs), width)
    assert_whole(text, width, (*MODELS, LONG_SERIAL, USB_SERIAL))
    assert text.count("Benchmark results on") == 2


@pytest.mark.parametrize("width", [80, 100, 220])
def test_wide_bench_table_has_every_figure_whole(width: int) -> None:
    # Too wide for the console, it is drawn at its own width (for a pager or a log) rather
    # than squeezed to a few characters a column.
    text = render(runs_table(three_runs(), wide=True), width)
    assert "…" not in text
    for identifier in (*MODELS, *RUN_IDS, LONG_SERIAL, "1140.", "12/12"):
        assert identifier in text
    for header in ("first ms", "min ms", "mean ms", "p99 ms", "std ms", "PSS MB", "thermal"):
        assert header in text


def stored(index: int, serial: str = LONG_SERIAL) -> StoredRun:
    result = record(MODELS[index], RUN_IDS[index], serial)["result"]
    return StoredRun(
        id=index + 1, run_id=RUN_IDS[index], created_at="2026-11-23T07:00:02+00:00",
        status="ok", serial=serial, device_model="Mobilize Emulated Phone",
        model_name=MODELS[index], model_sha256="ab" * 32, target=None, runner="app",
        delegate="gpu" if index == 2 else "cpu", delegate_applied=index != 2, threads=4,
        p50_us=14_000.0, mean_us=14_100.0, init_us=152_300.0, pss_kb=None,
        result=copy.deepcopy(result), harness={}, samples=(),
    )


@pytest.mark.parametrize("width", [80, 100])
def test_results_list_keeps_run_ids_and_names_whole(width: int) -> None:
    runs = [stored(0), stored(1), stored(2, USB_SERIAL)]
    text = render(stored_runs_table(runs), width)
    assert_whole(text, width, (*MODELS, *RUN_IDS, LONG_SERIAL, USB_SERIAL))
    assert "14.00" in text


def test_results_list_wide_has_time_target_and_memory() -> None:
    text = render(stored_runs_table([stored(0)], wide=True), 220)
    assert_whole(text, 220, (MODELS[0], RUN_IDS[0], LONG_SERIAL))
    assert "2026-11-23T07:00:02+00:00" in text and "peak RSS MB" in text


@pytest.mark.parametrize("width", [80, 100])
def test_devices_table_keeps_the_serial_whole(width: int) -> None:
    rows = [
        DeviceRow(LONG_SERIAL, "Mobilize Emulated Phone", "emu64a", "Tensor G2",
                  "arm64-v8a,armeabi-v7a", "14", 34, "Adreno (TM) 740", 31.5, "none",
                  "0.1.0 (1)", app_outdated=True),
        DeviceRow(USB_SERIAL, *[None] * 10, error="unauthorized (see `adb devices`)"),
    ]
    text = render(devices_table(rows), width)
    assert_whole(text, width, (LONG_SERIAL, USB_SERIAL))
    assert "outdated" in text and "31.5 °C" in text


def test_latencies_are_fixed_point_milliseconds() -> None:
    assert format_ms(1_140_040.0) == "1140.04"
    assert format_ms(14_000.0) == "14.00"
    assert format_ms(142.0) == "0.142"  # under 1 ms: one more decimal, still no exponent
    assert format_ms(None) == "-"
    assert "e" not in format_ms(123_456_789.0)


def test_html_report_latencies_have_no_exponent() -> None:
    from mobilize.report.html import _ms

    assert _ms(1140.04) == "1140.04" and _ms(None) == "-"


def test_models_benched_together_are_compared_with_an_interval() -> None:
    runs = [record(MODELS[0], "a", p50_us=10_000.0), record(MODELS[1], "b", p50_us=8_000.0)]
    runs += [record(MODELS[0], "c", p50_us=10_000.0), record(MODELS[1], "d", p50_us=8_000.0)]
    (comparison,) = compare_models(runs)
    assert (comparison.baseline, comparison.candidate) == (MODELS[0], MODELS[1])
    assert comparison.low <= comparison.ratio <= comparison.high < 1.0
    assert comparison.verdict() == "faster"
    (line,) = comparison_lines([comparison])
    assert line.startswith(f"{MODELS[1]} vs {MODELS[0]}: median 8.")
    assert "95% CI" in line and "faster" in line and LONG_SERIAL not in line
    assert comparison.to_json()["ci95"] == [comparison.low, comparison.high]


def test_one_model_or_failed_runs_give_no_comparison() -> None:
    assert compare_models([record(MODELS[0], "a"), record(MODELS[0], "b")]) == []
    failed = record(MODELS[1], "c")
    failed["result"]["status"] = "model_load_failed"
    assert compare_models([record(MODELS[0], "a"), failed]) == []


def test_comparisons_name_the_device_when_there_are_several() -> None:
    runs = [record(MODELS[0], "a"), record(MODELS[1], "b"),
            record(MODELS[0], "c", USB_SERIAL), record(MODELS[1], "d", USB_SERIAL)]
    lines = comparison_lines(compare_models(runs))
    assert len(lines) == 2 and f"on {LONG_SERIAL}" in lines[0] and f"on {USB_SERIAL}" in lines[1]


def test_markup_in_a_model_name_is_printed_as_is() -> None:
    text = render(runs_table([record("net [v2].tflite", "x")]), 100)
    assert "net [v2].tflite" in text
