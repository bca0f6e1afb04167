"""The HTML report of a sweep at a real sweep's scale (fifteen series, 256 px previews), made
from hand-made records: size, scaling plots, styles, one ratio, grouped reasons, provenance,
the extra figures and the per-op table. No device, no browser (test_browser.py renders it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mobilize
from mobilize.bench.benchmark_model_profile import parse_op_profile
from mobilize.contract.metadata import write_metadata
from mobilize.report import plots, provenance
from mobilize.report.html import ReportInput, render
from tests.report.synthetic import FALLBACK, sweep_records

MAX_REPORT_BYTES = 1_500_000
CAPTURES = Path(__file__).parents[1] / "device_bench" / "captured" / "real"


def _section(text: str, title: str) -> str:
    start = text.index(f"<h2>{title}")
    end = text.find("<h2>", start + 4)
    return text[start:end if end > 0 else None]


@pytest.fixture(scope="module")
def sweep_report() -> str:
    records, recommendation = sweep_records()
    origin = provenance.build(records, settings={"rounds (--repeat)": 2})
    return render(ReportInput("mobilize sweep: fast_style on Pixel 7", tuple(records),
                              recommendation, origin))


def test_a_fifteen_series_sweep_stays_under_one_and_a_half_megabytes(sweep_report) -> None:
    assert len(sweep_report.encode()) <= MAX_REPORT_BYTES
    # every preview is still there (2 x (input, PyTorch) + 15 x 2 x (output, difference)),
    # re-encoded at the 128 px it is shown at
    assert sweep_report.count("data:image/png;base64,") == 4 + 15 * 2 * 2
    assert "<script" not in sweep_report  # no JavaScript


def test_plots_scale_to_the_page_instead_of_a_fixed_width(sweep_report) -> None:
    heads = re.findall(r"<svg\b[^>]*>", sweep_report)
    assert len(heads) == 3
    for head in heads:
        assert 'width="100%"' in head and "max-width:" in head and "viewBox" in head
        assert not re.search(r'\sheight="', head) and "pt\"" not in head


def test_a_tenfold_spread_gets_a_log_axis_and_a_narrow_one_does_not() -> None:
    assert plots.wants_log_axis([21.0, 40.0, 840.0])  # int16x8 is 40x int8
    assert not plots.wants_log_axis([21.0, 40.0, 55.0])
    records, _ = sweep_records()
    assert "log scale" in (plots.latency_plot(records) or "")
    narrow = [r for r in records if r["target"] != "tflite-int16x8"]
    assert "log scale" not in (plots.latency_plot(narrow) or "")


def test_fifteen_series_get_fifteen_distinct_colour_and_marker_pairs() -> None:
    labels = [f"v{i} / cpu" for i in range(15)]
    pairs = {(s.colour, s.marker) for s in plots.styles(labels).values()}
    assert len(pairs) == 15
    assert len({s.marker for s in plots.styles(labels).values()}) > 1


def test_one_ratio_definition_in_the_table_and_the_bullets(sweep_report) -> None:
    assert "x fastest" not in sweep_report
    assert "x the winner&#x27;s median" in _section(sweep_report, "Latency")
    bullets = _section(sweep_report, "Recommendation")
    assert re.search(r"1\.04x the winner&#x27;s median", bullets)  # fp32 on cpu
    assert re.search(r"fp32 / cpu.*?1\.04x</td>", _section(sweep_report, "Latency"))


def test_repeated_fallback_reasons_are_said_once(sweep_report) -> None:
    bullets = _section(sweep_report, "Recommendation")
    for message in FALLBACK.values():
        assert bullets.count(message) == 1
    assert bullets.count("<li>") == 5 + 2  # one per CPU run, one per delegate that fell back
    assert bullets.index("fp16 on cpu</b>: winner") < bullets.index("slower")  # winner first


def test_latency_delegate_and_quality_figures_are_in_the_tables(sweep_report) -> None:
    latency = _section(sweep_report, "Latency")
    for header in ("p99 ms", "std ms", "first inference ms", "init ms"):
        assert f"<th>{header}</th>" in latency
    assert "1580.04" in latency and not re.search(r"\d\.\d+e[+-]\d", sweep_report)
    figures = _section(sweep_report, "Delegate, memory")
    for header in ("nodes on delegate", "partitions", "ops left to the CPU", "worst PSNR dB",
                   "pooled PSNR dB"):
        assert f"<th>{header}</th>" in figures
    assert "0 of 64" in figures and "60 of 64" in figures and "(+2 more)" in figures


def test_provenance_says_when_and_by_what(sweep_report) -> None:
    assert f"by mobilize {mobilize.__version__}" in sweep_report
    table = _section(sweep_report, "Provenance")
    assert "timed runs / warm-ups" in table and "rounds (--repeat)" in table
    commit = provenance.git_commit()
    if commit is not None:  # a checkout: its commit is named
        assert commit.split()[0] in sweep_report


def test_provenance_reads_the_exports_metadata(tmp_path) -> None:
    write_metadata(tmp_path, {
        "created_utc": "2026-11-30T10:00:00+00:00",
        "source_model": {"ref": "models/fast_style.py:build", "kind": "factory",
                         "weights": "weights/fast_style.pt"},
        "calibration": {"source": "image: photos/", "count": 64},
        "verification_source": {"source": "image: photos/ (held out)", "count": 4},
        "onnx": {"rewrites": ["constants_to_initializers", "decompose_instance_norm"]},
        "artifacts": [{"target": "tflite-int8", "file": "model_int8.tflite",
                       "int8_ranges": {"mode": "quantile", "chosen": "q99.99"}}],
        "min_psnr_db": 35.0, "tool_versions": {"tensorflow": "2.21.0", "onnx2tf": "1.28.8"},
    })
    records, _ = sweep_records()
    records = [{**r, "model_path": str(tmp_path / "model_int8.tflite")} for r in records]
    origin = provenance.build(records)
    rows = dict(origin.export)
    assert rows["source model"] == "models/fast_style.py:build (factory, weights " \
        "weights/fast_style.pt)"
    assert rows["calibration"] == "64 samples: image: photos/"
    assert rows["ONNX rewrites"] == "constants_to_initializers, decompose_instance_norm"
    assert rows["int8 ranges"] == "int8: quantile q99.99"
    assert rows["export's --min-psnr"] == "35 dB (worst image)"
    text = render(ReportInput("t", tuple(records), provenance=origin))
    assert "decompose_instance_norm" in _section(text, "Provenance")


def test_per_op_time_is_shown_when_the_runs_were_profiled() -> None:
    records, _ = sweep_records()
    text = CAPTURES / "benchmark_model_op_profiling__meta-tflite-riscv-qemu-sci-notation.txt"
    profile = parse_op_profile(text.read_text().partition("# ---\n")[2])
    assert profile is not None and profile.regular_runs is not None
    profiled = [{**r, "result": {**r["result"], "op_profile": profile.as_dict()}}
                if r["target"] == "tflite-int8" and r["result"]["config"]["delegate"] == "cpu"
                else r for r in records]
    html_text = render(ReportInput("t", tuple(profiled)))
    ops = _section(html_text, "Time per op type")
    assert ops.count("<table>") == 1 and "int8 / cpu" in ops
    rows = re.findall(r"<tr><td>(\w+)</td><td class=\"num\">(\d+)</td>"
                      r"<td class=\"num\">([\d.]+)</td><td class=\"num\">([\d.]+)</td>", ops)
    assert rows[0] == ("CONV_2D", "15", "2651.853", "89.9")  # the top op type first
    assert [row[0] for row in rows] == ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D",
                                        "SOFTMAX", "SQUEEZE"]
    assert "Time per op type" not in render(ReportInput("t", tuple(records)))
