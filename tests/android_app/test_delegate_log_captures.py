"""The Java core's DelegateLog on GPU-delegate lines from real devices.

DelegateLogRealCaptures (android_app/core/src/test) holds the captured lines; this compiles it
with DelegateLog alone and runs it with JUnit. Its name does not end in "Test", so the main
suite's count in test_java_core.py does not change. The lines it embeds are checked to be the
capture's own lines, so the Java copy cannot drift from tests/device_bench/captured/real.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.java

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "android_app/core/src"
SOURCES = (
    CORE / "main/java/dev/mobilize/bench/core/DelegateLog.java",
    CORE / "test/java/dev/mobilize/bench/core/DelegateLogRealCaptures.java",
)
CAPTURES = REPO / "tests/device_bench/captured/real"
JUNIT = Path("/usr/share/java/junit4.jar")
HAMCREST = (Path("/usr/share/java/hamcrest-core.jar"), Path("/usr/share/java/hamcrest.jar"))
TIMEOUT_S = 180


def _java_constants() -> dict[str, str]:
    """{capture file name: the text of the string constant documented with it}."""
    source = SOURCES[1].read_text()
    constants = {}
    for name, body in re.findall(
        r"/\*\* (gpu_delegate_log__\S+?\.txt)\b.*?\*/\s*static final String \w+ =(.*?);\n",
        source,
        re.S,
    ):
        pieces = re.findall(r'"((?:[^"\\]|\\.)*)"', body)
        text = "".join(pieces).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        constants[name] = text
    return constants


def test_the_java_lines_are_the_captures_own():
    constants = _java_constants()
    assert len(constants) == 5
    for name, text in constants.items():
        device_text = (CAPTURES / name).read_text().split("# ---\n", 1)[1]
        captured = device_text.splitlines()
        for line in text.splitlines():
            assert line in captured, (name, line)


def test_delegate_log_reads_real_captures(tmp_path):
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("javac/java not installed: run `make system-deps` (openjdk-17-jdk-headless)")
    hamcrest = next((jar for jar in HAMCREST if jar.is_file()), None)
    if not JUNIT.is_file() or hamcrest is None:
        pytest.fail("junit4 and hamcrest jars are missing under /usr/share/java")
    classpath = f"{JUNIT}:{hamcrest}"
    compiled = subprocess.run(
        ["javac", "--release", "8", "-Xlint:all", "-Xlint:-options", "-Werror",
         "-encoding", "UTF-8", "-cp", classpath, "-d", str(tmp_path), *map(str, SOURCES)],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    ran = subprocess.run(
        ["java", "-cp", f"{tmp_path}:{classpath}", "org.junit.runner.JUnitCore",
         "dev.mobilize.bench.core.DelegateLogRealCaptures"],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-4000:]
    assert re.search(r"^OK \(4 tests\)", ran.stdout, re.M), ran.stdout[-2000:]
