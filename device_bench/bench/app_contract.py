"""What the harness, the Android app and the emulated device agree on.

The Java side mirrors these constants in android_app (BenchContract.java); a test checks
that both sides spell them the same way.
"""

from __future__ import annotations

import enum
from pathlib import Path

PACKAGE = "dev.mobilize.bench"
ACTIVITY = ".BenchmarkActivity"
COMPONENT = f"{PACKAGE}/{ACTIVITY}"
APP_VERSION_CODE = 1
APP_VERSION_NAME = "0.1.0"
LOG_TAG = "MobilizeBench"

# Where the harness pushes models and reads results on the device.
REMOTE_WORK_DIR = "/data/local/tmp/mobilize"
# The app writes its result into its own files folder; the harness reads it with run-as.
APP_FILES_DIR = f"/data/data/{PACKAGE}/files"
RESULTS_SUBDIR = "results"


def result_relative_path(run_id: str) -> str:
    """Path of a run's result JSON relative to the app's data folder (for `run-as`)."""
    return f"files/{RESULTS_SUBDIR}/{run_id}.json"


# Intent extras, passed with `am start -W -S -n COMPONENT --es/--ei NAME VALUE`.
EXTRA_MODEL_PATH = "model_path"  # string: absolute device path of the .tflite
EXTRA_DELEGATE = "delegate"  # string: cpu | gpu | nnapi
EXTRA_THREADS = "threads"  # int
EXTRA_WARMUP_RUNS = "warmup_runs"  # int
EXTRA_NUM_RUNS = "num_runs"  # int
EXTRA_GPU_PRECISION = "gpu_precision"  # string: fp16 | fp32
EXTRA_RUN_ID = "run_id"  # string: names the result file
EXTRA_QUALITY_INPUTS = "quality_inputs_dir"  # string, optional: folder of .npy inputs
EXTRA_QUALITY_OUTPUTS = "quality_outputs_dir"  # string, optional: where outputs go

STRING_EXTRAS = (
    EXTRA_MODEL_PATH,
    EXTRA_DELEGATE,
    EXTRA_GPU_PRECISION,
    EXTRA_RUN_ID,
    EXTRA_QUALITY_INPUTS,
    EXTRA_QUALITY_OUTPUTS,
)
INT_EXTRAS = (EXTRA_THREADS, EXTRA_WARMUP_RUNS, EXTRA_NUM_RUNS)

DELEGATES = ("cpu", "gpu", "nnapi")
GPU_PRECISIONS = ("fp16", "fp32")

RESULT_SCHEMA_VERSION = 1
RESULT_SCHEMA_PATH = Path(__file__).with_name("bench_result.schema.json")

# Statuses a result can carry. "ok" is the only success.
STATUS_OK = "ok"
FAILURE_STATUSES = (
    "invalid_arguments",
    "model_not_found",
    "model_load_failed",
    "delegate_failed",
    "inference_failed",
    "out_of_memory",
)


class ThermalStatus(enum.IntEnum):
    """PowerManager.THERMAL_STATUS_* levels, as `dumpsys thermalservice` prints them.

    The phone (real or emulated), the app and the harness all speak these levels; the
    result schema spells them with `label` (none, light, ...).
    """

    NONE = 0
    LIGHT = 1
    MODERATE = 2
    SEVERE = 3
    CRITICAL = 4
    EMERGENCY = 5
    SHUTDOWN = 6

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str | None) -> ThermalStatus | None:
        if label is None:
            return None
        try:
            return cls[label.upper()]
        except KeyError:
            return None
