"""The Android app's plain-Java measuring core, compiled and tested here with the JDK.

No Android SDK exists on these machines, so only android_app/core (no Android imports) is
compiled: its JUnit 4 tests run with Debian's junit4, a Java run with a fake interpreter is
checked against the result schema and mobilize.results.stats, and the Java contract constants are
compared with app_contract.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from mobilize.bench import app_contract
from mobilize.results.stats import summarize

pytestmark = pytest.mark.java

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "android_app/core"
CONTRACT_JAVA = CORE / "src/main/java/dev/mobilize/bench/core/BenchContract.java"
JUNIT = Path("/usr/share/java/junit4.jar")
HAMCREST_CANDIDATES = (
    Path("/usr/share/java/hamcrest-core.jar"),
    Path("/usr/share/java/hamcrest.jar"),
)
# One per @Test in android_app/core/src/test: a test class that silently stops running
# shows up as a lower count.
EXPECTED_JUNIT_TESTS = 40
COMPILE_TIMEOUT_S = 180
ANDROID_IMPORT = r"^import (android|androidx|org\.tensorflow|com\.google)\."
RUN_TIMEOUT_S = 120


def _classpath() -> str:
    hamcrest = next((jar for jar in HAMCREST_CANDIDATES if jar.is_file()), None)
    if not JUNIT.is_file() or hamcrest is None:
        pytest.fail(
            "junit4 and hamcrest jars are missing under /usr/share/java: run "
            "`make system-deps` (scripts/install_system_deps.sh installs junit4)"
        )
    return f"{JUNIT}:{hamcrest}"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """The core and its tests compiled for Java 8 (what Android's minSdk 24 toolchain takes)."""
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("javac/java not installed: run `make system-deps` (openjdk-17-jdk-headless)")
    out = tmp_path_factory.mktemp("java-classes")
    sources = sorted(str(path) for path in CORE.glob("src/**/*.java"))
    completed = subprocess.run(
        [
            "javac",
            "--release",
            "8",
            "-Xlint:all",
            "-Xlint:-options",
            "-Werror",
            "-encoding",
            "UTF-8",
            "-cp",
            _classpath(),
            "-d",
            str(out),
            *sources,
        ],
        capture_output=True,
        text=True,
        timeout=COMPILE_TIMEOUT_S,
    )
    assert completed.returncode == 0, completed.stderr
    return out


def _test_classes() -> list[str]:
    root = CORE / "src/test/java"
    return sorted(
        ".".join(path.relative_to(root).with_suffix("").parts) for path in root.rglob("*Test.java")
    )


def test_core_has_no_android_imports():
    offenders = [
        str(path.relative_to(REPO))
        for path in CORE.glob("src/main/**/*.java")
        if re.search(
            r"^import (android|androidx|org\.tensorflow|com\.google)\.", path.read_text(), re.M
        )
    ]
    assert offenders == []


def test_junit_suite_passes(compiled):
    classes = _test_classes()
    assert len(classes) >= 7
    completed = subprocess.run(
        ["java", "-cp", f"{compiled}:{_classpath()}", "org.junit.runner.JUnitCore", *classes],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]
    match = re.search(r"^OK \((\d+) tests?\)", completed.stdout, re.M)
    assert match, completed.stdout[-2000:]
    assert int(match.group(1)) == EXPECTED_JUNIT_TESTS


def test_java_result_matches_schema_and_python_stats(compiled, tmp_path):
    model = tmp_path / "model with spaces.tflite"
    model.write_bytes(b"TFL3" + bytes(60))
    # first inference, 2 warm-ups, then the timed runs, in microseconds
    durations = [9000, 3100, 2900, 1210, 1187, 1301, 1250, 1199, 1420, 1205, 1188, 2310, 1240]
    warmups = 2
    completed = subprocess.run(
        [
            "java",
            "-cp",
            f"{compiled}:{_classpath()}",
            "dev.mobilize.bench.core.CrossCheckMain",
            str(tmp_path / "files"),
            str(model),
            "cross-1",
            str(warmups),
            *map(str, durations),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert completed.returncode == 0, completed.stderr
    written = tmp_path / "files/results/cross-1.json"
    assert completed.stdout.strip() == f"run_id=cross-1 status=ok result={written}"
    result = json.loads(written.read_text())
    schema = json.loads(app_contract.RESULT_SCHEMA_PATH.read_text())
    jsonschema.validate(result, schema)

    samples = durations[1 + warmups :]
    assert result["runner"] == "android_app"
    assert result["config"] == {
        "delegate": "gpu",
        "threads": 4,
        "warmup_runs": warmups,
        "num_runs": len(samples),
        "gpu_precision": "fp32",
    }
    latency = result["latency"]
    assert latency["samples"] == samples
    assert latency["warmup"] == durations[1 : 1 + warmups]
    assert latency["first_inference"] == durations[0]
    assert latency["init"] == 2000.0
    expected = summarize(samples)
    assert expected is not None
    assert latency["stats"]["count"] == expected["count"]
    for key in ("min", "max", "mean", "std", "p50", "p90", "p99"):
        assert latency["stats"][key] == pytest.approx(expected[key], rel=1e-12, abs=1e-9), key
    assert result["model"]["size_bytes"] == 64
    assert result["model"]["path"] == str(model)
    assert result["model"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()


def test_java_npy_output_reads_in_numpy(compiled, tmp_path):
    """The quality gate's .npy files: Java writes what numpy reads, and reads what it writes."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    values = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1) - 1.5
    np.save(inputs / "img.npy", values)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    source = tmp_path / "QualityMain.java"
    source.write_text(
        "package dev.mobilize.bench.core;\n"
        "import java.util.HashMap; import java.util.Map;\n"
        "public final class QualityMain { public static void main(String[] a) {\n"
        "  FakeTicker t = new FakeTicker();\n"
        "  Map<String, Object> e = new HashMap<>();\n"
        '  e.put("run_id", "q"); e.put("model_path", a[0]); e.put("num_runs", 1);\n'
        '  e.put("quality_inputs_dir", a[1]); e.put("quality_outputs_dir", a[2]);\n'
        "  BenchmarkRunner.Outcome o = new BenchmarkRunner(new FakeInterpreter(t),"
        " TestPlatform.create(t)).run(e);\n"
        "  System.out.println(o.logLine(null)); } }\n"
    )
    classes = tmp_path / "classes"
    cp = f"{compiled}:{_classpath()}"
    subprocess.run(
        ["javac", "--release", "8", "-Xlint:-options", "-cp", cp, "-d", str(classes), str(source)],
        check=True,
        timeout=COMPILE_TIMEOUT_S,
    )
    completed = subprocess.run(
        [
            "java",
            "-cp",
            f"{classes}:{cp}",
            "dev.mobilize.bench.core.QualityMain",
            str(model),
            str(inputs),
            str(outputs),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert completed.stdout.strip() == "run_id=q status=ok", completed.stdout + completed.stderr
    written = np.load(outputs / "img.npy")
    assert written.dtype == np.float32 and written.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(written, values * 2)  # the fake model doubles its input


def _java_constants() -> dict[str, object]:
    text = CONTRACT_JAVA.read_text()
    constants: dict[str, object] = {}
    for name, value in re.findall(r'static final String (\w+) = "([^"]*)";', text):
        constants[name] = value
    for name, value in re.findall(r"static final int (\w+) = (\d+);", text):
        constants[name] = int(value)
    for name, body in re.findall(r"static final String\[\] (\w+) = \{([^}]*)\};", text):
        names = re.findall(r'"([^"]*)"|\b(EXTRA_\w+)\b', body)
        constants[name] = tuple(
            literal if literal else constants[reference] for literal, reference in names
        )
    return constants


def test_contract_is_spelled_the_same_in_java_and_python():
    java = _java_constants()
    python_names = [
        "PACKAGE",
        "ACTIVITY",
        "APP_VERSION_CODE",
        "APP_VERSION_NAME",
        "LOG_TAG",
        "RESULTS_SUBDIR",
        "RESULT_SCHEMA_VERSION",
        "STRING_EXTRAS",
        "INT_EXTRAS",
        "DELEGATES",
        "GPU_PRECISIONS",
    ]
    python_names += [name for name in vars(app_contract) if name.startswith("EXTRA_")]
    for name in python_names:
        assert name in java, f"BenchContract.java lacks {name}"
        assert java[name] == getattr(app_contract, name), name
    # every status the core can write is one the schema allows
    statuses = re.findall(
        r'\w+\("(\w+)"\)', (CORE / "src/main/java/dev/mobilize/bench/core/Status.java").read_text()
    )
    assert sorted(statuses) == sorted((app_contract.STATUS_OK, *app_contract.FAILURE_STATUSES))


def test_manifest_and_gradle_follow_the_contract():
    manifest = (REPO / "android_app/app/src/main/AndroidManifest.xml").read_text()
    gradle = (REPO / "android_app/app/build.gradle").read_text()
    assert f'android:name="{app_contract.ACTIVITY}"' in manifest
    assert 'android:exported="true"' in manifest
    assert "android.intent.category.LAUNCHER" not in manifest  # headless: no launcher icon
    assert f"namespace '{app_contract.PACKAGE}'" in gradle
    assert f"applicationId '{app_contract.PACKAGE}'" in gradle
    assert f"versionCode {app_contract.APP_VERSION_CODE}" in gradle
    assert f"versionName '{app_contract.APP_VERSION_NAME}'" in gradle
    assert "minSdk 24" in gradle
