"""The record of one benchmark run, as the harness keeps it: the app's result (in the schema
of bench_result.schema.json) plus what the harness measured around it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Latency:
    """Timed runs in microseconds: the raw samples and the statistics derived from them."""

    samples_us: tuple[float, ...]
    init_us: float | None
    first_inference_us: float | None
    p50_us: float | None
    p90_us: float | None
    p99_us: float | None
    mean_us: float | None
    std_us: float | None


@dataclass(frozen=True)
class BenchRecord:
    serial: str
    created_at: str
    model_name: str
    model_path: str
    model_sha256: str
    target: str | None
    status: str  # "ok" or the failure reason the app reported
    message: str | None
    delegate_requested: str | None
    delegate_applied: bool | None
    latency: Latency
    peak_rss_kb: float | None
    pss_kb: float | None
    warnings: tuple[str, ...]
    result: dict[str, Any]  # the app's JSON, whole
    harness: dict[str, Any]  # wall time, push time, thermal, battery, device info, quality

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> BenchRecord:
        result = record["result"]
        latency = result.get("latency") or {}
        stats = latency.get("stats") or {}
        delegate = result.get("delegate") or {}
        memory = result.get("memory") or {}
        return cls(
            serial=record["serial"],
            created_at=record["created_at"],
            model_name=record["model_name"],
            model_path=record["model_path"],
            model_sha256=record["model_sha256"],
            target=record.get("target"),
            status=result.get("status", "unknown"),
            message=result.get("message"),
            delegate_requested=delegate.get("requested"),
            delegate_applied=delegate.get("applied"),
            latency=Latency(
                samples_us=tuple(latency.get("samples") or ()),
                init_us=latency.get("init"),
                first_inference_us=latency.get("first_inference"),
                p50_us=stats.get("p50"),
                p90_us=stats.get("p90"),
                p99_us=stats.get("p99"),
                mean_us=stats.get("mean"),
                std_us=stats.get("std"),
            ),
            peak_rss_kb=memory.get("peak_rss"),
            pss_kb=memory.get("pss"),
            warnings=tuple(record["harness"].get("warnings") or ()),
            result=result,
            harness=record["harness"],
        )

    def to_json(self) -> dict[str, Any]:
        """The record as the store and `--json` keep it."""
        return {"serial": self.serial, "created_at": self.created_at,
                "model_name": self.model_name, "model_path": self.model_path,
                "model_sha256": self.model_sha256, "target": self.target,
                "result": self.result, "harness": self.harness}
