"""What should I ship? Every variant of an export on every delegate, and a recommendation.

Runs are interleaved (variant A/cpu, A/gpu, B/cpu, ... then again) so that a phone warming up
over the sweep does not favour whoever ran first, and every run passes the cool-down gate.
Each variant+delegate also runs the on-phone quality gate once. The recommendation is the
fastest candidate that loaded, really ran on the delegate asked for, and kept its picture
above the threshold (worst single-image PSNR, the one definition every --min-psnr uses);
every other candidate says why it lost. Speed is compared one way everywhere: a candidate's
median over the winner's median ("1.25x the winner's median").
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mobilize.bench import app_contract
from mobilize.bench.config import BenchConfig, Delegate
from mobilize.bench.model_input import ModelToBench
from mobilize.bench.quality import QualityError, check_record
from mobilize.bench.quality_reference import QualityReference
from mobilize.bench.runner import BenchSession, now_iso
from mobilize.bench.sweep_progress import RunClock, SweepProgress, eta_text
from mobilize.device import ops
from mobilize.device.errors import DeviceError
from mobilize.results.stats import coefficient_of_variation

DEFAULT_MIN_PSNR_DB = 30.0
INT8_TARGETS = ("tflite-int8",)
# Statuses that mean the model never ran: it or its delegate failed to load.
LOAD_FAILURES = ("model_load_failed", "delegate_failed", "model_not_found")

Announce = Callable[[str], None]
RATIO_WORDS = "the winner's median"  # "1.25x the winner's median": table, bullets, terminal


def ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}x {RATIO_WORDS}"


class LossReason(enum.Enum):
    FAILED_TO_LOAD = "failed to load"
    FAILED = "failed"
    FELL_BACK = "delegate fell back to CPU"
    WORSE_PICTURE = "worse picture"
    SLOWER = "slower"


@dataclass(frozen=True)
class Candidate:
    """One variant on one delegate, with its runs' figures pooled."""

    model: ModelToBench
    delegate: Delegate
    records: tuple[dict[str, Any], ...]
    error: str | None = None  # the harness could not finish it (the app crashed, ...)

    @property
    def label(self) -> str:
        return f"{self.variant} on {self.delegate.value}"

    @property
    def variant(self) -> str:
        return (self.model.target or self.model.name).removeprefix("tflite-")

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and bool(self.records)
            and all(r["result"]["status"] == app_contract.STATUS_OK for r in self.records)
        )

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        bad = [r["result"]["status"] for r in self.records if r["result"]["status"] != "ok"]
        return bad[0] if bad else "ok"

    @property
    def message(self) -> str | None:
        if self.error is not None:
            return self.error
        return next((r["result"]["message"] for r in self.records if r["result"]["message"]), None)

    @property
    def applied(self) -> bool:
        """The delegate asked for really took the graph (cpu always counts as applied)."""
        return self.delegate is Delegate.CPU or all(
            bool(r["result"]["delegate"].get("applied")) for r in self.records
        )

    @property
    def samples_us(self) -> list[float]:
        return [
            s
            for r in self.records
            for s in ((r["result"].get("latency") or {}).get("samples") or [])
        ]

    @property
    def p50_ms(self) -> float | None:
        samples = self.samples_us
        return statistics.median(samples) / 1000.0 if samples else None

    @property
    def cv(self) -> float | None:
        samples = self.samples_us
        return coefficient_of_variation(samples) if len(samples) > 1 else None

    @property
    def peak_rss_mb(self) -> float | None:
        values = [(r["result"].get("memory") or {}).get("peak_rss") for r in self.records]
        present = [v for v in values if v is not None]
        return max(present) / 1024.0 if present else None

    @property
    def pss_mb(self) -> float | None:
        values = [(r["result"].get("memory") or {}).get("pss") for r in self.records]
        present = [v for v in values if v is not None]
        return max(present) / 1024.0 if present else None

    @property
    def quality(self) -> dict[str, Any] | None:
        return next(
            (r["harness"]["quality"] for r in self.records if r["harness"].get("quality")), None
        )

    @property
    def psnr_db(self) -> float | None:
        """The worst single image's PSNR on the phone: what --min-psnr gates on."""
        quality = self.quality
        return quality["worst_psnr_db"] if quality else None

    @property
    def pooled_psnr_db(self) -> float | None:
        quality = self.quality
        return quality.get("pooled_psnr_db") if quality else None

    @property
    def size_kb(self) -> float:
        return self.model.size_bytes / 1024.0


@dataclass(frozen=True)
class Verdict:
    candidate: Candidate
    reason: LossReason | None  # None: the winner
    detail: str
    # The part of the detail several candidates share (the runtime's message of a fallback or
    # a failure): the report says it once for all of them. Empty: nothing shared.
    shared: str = ""


@dataclass(frozen=True)
class Recommendation:
    min_psnr_db: float
    winner: Candidate | None
    verdicts: tuple[Verdict, ...]
    notes: tuple[str, ...] = ()
    skipped_delegates: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.winner is None:
            return (
                f"no variant qualifies: none loaded, ran on its delegate and kept its worst "
                f"PSNR at {self.min_psnr_db:g} dB or above"
            )
        w = self.winner
        psnr = "identical to PyTorch" if w.psnr_db is None else f"worst PSNR {w.psnr_db:.1f} dB"
        return (
            f"ship {w.model.path.name} ({w.variant}) with the {w.delegate.value} delegate: "
            f"{_ms(w.p50_ms)} median, {_mb(w.peak_rss_mb)} peak RSS, {w.size_kb:.1f} KB file, "
            f"{psnr}"
        )


@dataclass
class SweepRun:
    """Everything a sweep measured: its records in run order, by candidate."""

    device: ops.DeviceInfo
    candidates: list[Candidate] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped_delegates: list[str] = field(default_factory=list)
    started_at: str = field(default_factory=now_iso)


def available_delegates(
    info: ops.DeviceInfo, wanted: Sequence[Delegate]
) -> tuple[list[Delegate], list[str]]:
    """The delegates asked for that the device can offer at all, and why the others are skipped."""
    usable, skipped = [], []
    for delegate in wanted:
        if delegate is Delegate.GPU and not info.gpu_renderer:
            skipped.append("gpu: the device reports no GPU renderer")
        elif delegate is Delegate.NNAPI and info.sdk is not None and info.sdk < 27:
            skipped.append(f"nnapi: Android SDK {info.sdk} has no NNAPI (needs 27+)")
        else:
            usable.append(delegate)
    return usable, skipped


def run_sweep(
    session: BenchSession,
    models: Sequence[ModelToBench],
    delegates: Sequence[Delegate],
    config: BenchConfig,
    reference: QualityReference | None,
    *,
    repeat: int = 1,
    announce: Announce,
    save: Callable[[dict[str, Any]], None],
    progress: SweepProgress | None = None,
) -> SweepRun:
    """Interleaved runs of every model x delegate; the quality pass once per pair."""
    info = session.prepare()
    usable, skipped = available_delegates(info, delegates)
    sweep = SweepRun(device=info, skipped_delegates=skipped)
    pairs = [(model, delegate) for model in models for delegate in usable]
    records: dict[tuple[str, Delegate], list[dict[str, Any]]] = {(m.name, d): [] for m, d in pairs}
    errors: dict[tuple[str, Delegate], str] = {}
    clock = RunClock(total=len(pairs) * repeat)
    for round_index in range(repeat):
        for model, delegate in pairs:
            key = (model.name, delegate)
            if key in errors:
                continue
            label = f"{model.name} on {delegate.value} (round {round_index + 1}/{repeat})"
            announce(
                f"[{session.serial}] [{clock.done + 1}/{clock.total}] {label}, "
                f"{eta_text(clock.eta_s)}"
            )
            if progress is not None:
                progress.run_started(clock, label)
            pair_config = BenchConfig(
                delegate, config.threads, config.warmup_runs, config.num_runs, config.gpu_precision
            )
            try:
                record = session.run(model, pair_config)
                if round_index == 0 and reference is not None:
                    record = check_record(session, model, pair_config, reference, record)
            except DeviceError as error:
                if not _survivable(error):
                    raise
                errors[key] = error.message.splitlines()[0]
                announce(f"[{session.serial}] {model.name} on {delegate.value}: {errors[key]}")
                clock.total -= repeat - 1 - round_index  # its later rounds will not run
                _finished(clock, progress)
                continue
            save(record)
            records[key].append(record)
            sweep.records.append(record)
            _finished(clock, progress)
    sweep.candidates = [
        Candidate(
            model,
            delegate,
            tuple(records[(model.name, delegate)]),
            errors.get((model.name, delegate)),
        )
        for model, delegate in pairs
    ]
    return sweep


def _finished(clock: RunClock, progress: SweepProgress | None) -> None:
    clock.finish()
    if progress is not None:
        progress.run_finished(clock)


def _survivable(error: DeviceError) -> bool:
    """An app crash on one candidate ends that candidate, not the sweep; a lost device ends all."""
    from mobilize.device.errors import AppError

    return isinstance(error, AppError)


def recommend(sweep: SweepRun, min_psnr_db: float) -> Recommendation:
    eligible = [
        c for c in sweep.candidates if _loss(c, min_psnr_db) is None and c.p50_ms is not None
    ]
    winner = min(eligible, key=lambda c: c.p50_ms or 0.0) if eligible else None
    verdicts = []
    for candidate in sweep.candidates:
        if candidate is winner:
            verdicts.append(Verdict(candidate, None, "fastest that keeps the picture"))
            continue
        loss = _loss(candidate, min_psnr_db)
        if loss is None:
            verdicts.append(Verdict(candidate, LossReason.SLOWER, _slower(candidate, winner)))
        else:
            verdicts.append(Verdict(candidate, *loss))
    return Recommendation(
        min_psnr_db=min_psnr_db,
        winner=winner,
        verdicts=tuple(verdicts),
        notes=tuple(_int8_gpu_notes(sweep.candidates)),
        skipped_delegates=tuple(sweep.skipped_delegates),
    )


def _loss(candidate: Candidate, min_psnr_db: float) -> tuple[LossReason, str, str] | None:
    """Why a candidate cannot win: the reason, the full detail, and its shared part."""
    if candidate.error is not None:
        return LossReason.FAILED, candidate.error, candidate.error
    if not candidate.ok:
        reason = (
            LossReason.FAILED_TO_LOAD if candidate.status in LOAD_FAILURES else LossReason.FAILED
        )
        shared = f"{candidate.status}: {candidate.message or 'no message'}"
        return reason, shared, shared
    if not candidate.applied:
        ran = candidate.records[0]["result"]["delegate"].get("name") or "cpu"
        message = candidate.message or "the delegate took no node"
        return (
            LossReason.FELL_BACK,
            f"asked for {candidate.delegate.value}, ran on {ran} ({_ms(candidate.p50_ms)}): "
            f"{message}",
            message,
        )
    psnr = candidate.psnr_db
    if psnr is not None and psnr < min_psnr_db:
        return LossReason.WORSE_PICTURE, f"worst PSNR {psnr:.1f} dB < {min_psnr_db:g} dB", ""
    return None


def _slower(candidate: Candidate, winner: Candidate | None) -> str:
    if winner is None or winner.p50_ms is None or candidate.p50_ms is None:
        return f"{_ms(candidate.p50_ms)} median"
    ratio = candidate.p50_ms / winner.p50_ms if winner.p50_ms else float("inf")
    return f"{_ms(candidate.p50_ms)} median, {ratio_text(ratio)} ({_ms(winner.p50_ms)})"


def _int8_gpu_notes(candidates: Sequence[Candidate]) -> list[str]:
    """The GPU delegate has no integer kernels: say so plainly whenever int8 met the GPU."""
    notes = []
    for candidate in candidates:
        if candidate.model.target not in INT8_TARGETS or candidate.delegate is not Delegate.GPU:
            continue
        float_on_gpu = [
            c
            for c in candidates
            if c.delegate is Delegate.GPU
            and c.model.target in ("tflite-fp16", "tflite-fp32")
            and c.p50_ms is not None
            and c.applied
        ]
        text = (
            f"int8 on the GPU delegate runs in float: the GPU delegate dequantizes int8 weights "
            f"and computes in fp16/fp32, so {candidate.model.path.name} gains nothing there over "
            "the fp16 file (only a smaller download)"
        )
        if not candidate.applied:
            text += "; on this device the GPU delegate did not even take it (it ran on the CPU)"
        elif float_on_gpu:
            best = min(float_on_gpu, key=lambda c: c.p50_ms or 0.0)
            text += f"; measured: {_ms(candidate.p50_ms)} vs {best.label} {_ms(best.p50_ms)}"
        notes.append(text)
    return notes


def require_winner(recommendation: Recommendation) -> Candidate:
    """The sweep's exit: a non-zero one with a clear message when nothing qualifies."""
    if recommendation.winner is not None:
        return recommendation.winner
    lines = [
        f"{v.candidate.label}: {v.reason.value if v.reason else ''}: {v.detail}"
        for v in recommendation.verdicts
    ]
    psnrs = [
        c.candidate.psnr_db for c in recommendation.verdicts if c.candidate.psnr_db is not None
    ]
    best = f" (best worst-image PSNR measured: {max(psnrs):.1f} dB)" if psnrs else ""
    raise QualityError(
        f"no variant qualifies at --min-psnr {recommendation.min_psnr_db:g} dB{best}:\n  "
        + "\n  ".join(lines),
        hint="lower --min-psnr if the picture is good enough (see the report's heatmaps), or "
        "export a more precise target (tflite-fp16, tflite-int16x8)",
    )


def _ms(value: float | None) -> str:
    """As the tables print it: two decimals, three under 1 ms (0.142, not 0.14)."""
    if value is None:
        return "-"
    return f"{value:.3f} ms" if abs(value) < 1.0 else f"{value:.2f} ms"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} MB"
