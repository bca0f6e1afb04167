"""The unseen suite's litert-torch column, without litert-torch: how a converter run that
made no file is reported, and that the suite and the converter build the same weights."""

from __future__ import annotations

import pytest

from benchmarks.litert_torch_convert import (
    CONVERSION_FAILED,
    FAILURE_PREFIX,
    failure_reason,
    weights_digest,
)
from benchmarks.unseen_suite import _short, table
from tests.exporter.unseen_families import FAMILIES


def test_failure_reason_is_the_converters_own_line_among_library_noise():
    stderr = ("W0000 00:00 1 some TensorFlow warning\n"
              f"{FAILURE_PREFIX}ValueError: Failed to run converter passes: ...\n"
              "I0000 00:00 2 a log line at exit\n")
    assert failure_reason(CONVERSION_FAILED, stderr) == (
        "ValueError: Failed to run converter passes: ...")


def test_failure_reason_of_a_crash_is_its_last_line_with_the_exit_code():
    stderr = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named x\n"
    assert failure_reason(1, stderr) == "exit 1: ModuleNotFoundError: No module named x"
    assert failure_reason(-9, "  \n") == "exit -9, no message"


def test_a_tool_that_made_no_file_reads_fails_in_its_cells_and_says_why_below():
    row = {"family": "espcn", "size": 128, "fp32": {"snr_db": 123.6, "ms": 4.9},
           "int8": {"snr_db": 29.94, "fully_integer": True, "size_ratio": 0.29, "ms": 1.1,
                    "latency_ratio": 0.22, "partitions": 1, "outside": {}},
           "onnx2tf": {"snr_db": 29.6, "fully_integer": True, "size_ratio": 0.29, "ms": 2.2,
                       "latency_ratio": 0.45, "partitions": 2, "outside": {"ADD": 1}},
           "litert_error": "RuntimeError: shapes | do not broadcast"}
    lines = table([row]).splitlines()
    assert lines[2] == "| espcn | 128 | 123.6 | 29.9 / 29.6 / fails | yes / yes / fails | " \
        "0.29 / 0.29 / fails |"
    assert lines[6] == ("| espcn | 4.9 | 1.1 / 2.2 / fails | 0.22 / 0.45 / fails | "
                        "1 / 2 (ADD 1) / - |")
    assert lines[-1] == r"- espcn: litert-torch fails: RuntimeError: shapes \| do not broadcast"


def test_short_drops_source_locations_and_cuts_long_lines():
    assert _short("ValueError: /x/torch/nn/conv.py:1198:0: error: failed to legalize") == (
        "ValueError: error: failed to legalize")
    long = _short("E" * 300)
    assert len(long) == 120 and long.endswith("...")


@pytest.mark.parametrize("name", ["espcn", "pix2pix_unet", "mobilenet_generator"])
def test_two_builds_of_a_family_have_one_digest(name):
    """The converter trusts FAMILIES[name].build(size) to be seeded, BatchNorm settling
    included; the suite checks the digest, this checks the check can pass."""
    family = FAMILIES[name]
    assert weights_digest(family.build(64)) == weights_digest(family.build(64))


def test_the_digest_sees_a_changed_weight():
    model = FAMILIES["espcn"].build(64)
    before = weights_digest(model)
    next(iter(model.parameters())).data[0] += 1e-3
    assert weights_digest(model) != before
