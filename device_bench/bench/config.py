"""What a benchmark run is asked to do: the run's settings (the app's intent extras) and the
harness's own (timeouts, retries, cool-down, which runner)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from mobilize.device.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]  # device_bench/bench/ -> the repository
# Where `./gradlew assembleRelease` / `assembleDebug` leave the APK.
DEFAULT_APK_PATHS = (
    REPO_ROOT / "android_app/app/build/outputs/apk/release/app-release.apk",
    REPO_ROOT / "android_app/app/build/outputs/apk/release/app-release-unsigned.apk",
    REPO_ROOT / "android_app/app/build/outputs/apk/debug/app-debug.apk",
)


class Delegate(enum.Enum):
    CPU = "cpu"
    GPU = "gpu"
    NNAPI = "nnapi"


class GpuPrecision(enum.Enum):
    FP16 = "fp16"
    FP32 = "fp32"


class RunnerKind(enum.Enum):
    APP = "app"
    BENCHMARK_MODEL = "benchmark-model"


@dataclass(frozen=True)
class BenchConfig:
    delegate: Delegate = Delegate.CPU
    threads: int = 4
    warmup_runs: int = 5
    num_runs: int = 50
    gpu_precision: GpuPrecision = GpuPrecision.FP16

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise UsageError(f"--threads must be at least 1, not {self.threads}")
        if self.num_runs < 1:
            raise UsageError(f"--runs must be at least 1, not {self.num_runs}")
        if self.warmup_runs < 0:
            raise UsageError(f"--warmup must be 0 or more, not {self.warmup_runs}")

    def as_schema_dict(self) -> dict[str, object]:
        return {
            "delegate": self.delegate.value,
            "threads": self.threads,
            "warmup_runs": self.warmup_runs,
            "num_runs": self.num_runs,
            "gpu_precision": self.gpu_precision.value,
        }


@dataclass(frozen=True)
class HarnessOptions:
    runner: RunnerKind = RunnerKind.APP
    binary: Path | None = None
    apk: Path | None = None
    push_timeout_s: float = 300.0
    result_timeout_s: float = 600.0
    retries: int = 0
    cooldown_timeout_s: float = 300.0
    max_battery_temp_c: float = 40.0
    cooldown_poll_s: float = 5.0
    # Polls start fast (short runs end in well under a second) and back off to one a
    # second, so long runs are not disturbed by a `run-as cat` every few milliseconds.
    result_poll_s: float = 0.05
    result_poll_max_s: float = 1.0
    cv_warning: float = 0.10
    apk_search_paths: tuple[Path, ...] = field(default=DEFAULT_APK_PATHS)

    def __post_init__(self) -> None:
        if self.runner is RunnerKind.BENCHMARK_MODEL and (
            self.binary is None or not self.binary.is_file()
        ):
            raise UsageError(
                "--runner benchmark-model needs --binary PATH to Google's benchmark_model"
                + (f" ({self.binary} is not a file)" if self.binary else ""),
                hint="download the prebuilt benchmark_model for the phone's ABI (TensorFlow "
                "Lite performance docs) and pass its path, or use the bundled app (--runner app)",
            )
        if self.retries < 0:
            raise UsageError(f"--retries must be 0 or more, not {self.retries}")
