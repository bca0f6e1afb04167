"""Every benchmark run in SQLite: the result JSON, its raw samples, config, device, model hash.

One run is written in one transaction, so a crash never leaves half a run behind. The
database sits in the user's data folder unless --db says otherwise.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilize.contract.files import atomic_write_json
from mobilize.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    serial TEXT NOT NULL,
    device_model TEXT,
    model_name TEXT NOT NULL,
    model_path TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    target TEXT,
    runner TEXT NOT NULL,
    delegate TEXT NOT NULL,
    delegate_applied INTEGER,
    threads INTEGER NOT NULL,
    warmup_runs INTEGER NOT NULL,
    num_runs INTEGER NOT NULL,
    gpu_precision TEXT NOT NULL,
    p50_us REAL,
    mean_us REAL,
    init_us REAL,
    pss_kb REAL,
    peak_rss_kb REAL,
    thermal_before TEXT,
    thermal_after TEXT,
    config_json TEXT NOT NULL,
    device_json TEXT NOT NULL,
    result_json TEXT NOT NULL,
    harness_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    latency_us REAL NOT NULL,
    PRIMARY KEY (run, idx)
);
"""


@dataclass(frozen=True)
class StoredRun:
    id: int
    run_id: str
    created_at: str
    status: str
    serial: str
    device_model: str | None
    model_name: str
    model_sha256: str
    target: str | None
    runner: str
    delegate: str
    delegate_applied: bool | None
    threads: int
    p50_us: float | None
    mean_us: float | None
    init_us: float | None
    pss_kb: float | None
    result: dict[str, Any]
    harness: dict[str, Any]
    samples: tuple[float, ...]


def default_db_path() -> Path:
    """$XDG_DATA_HOME/mobilize/results.db, or ~/.local/share/mobilize/results.db."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mobilize" / "results.db"


# What a database must hold to be ours; other columns (added later) are welcome.
_REQUIRED_COLUMNS = {
    "runs": {"id", "run_id", "created_at", "status", "serial", "device_model", "model_name",
             "model_sha256", "target", "runner", "delegate", "delegate_applied", "threads",
             "p50_us", "mean_us", "init_us", "pss_kb", "result_json", "harness_json"},
    "samples": {"run", "idx", "latency_us"},
}


class NoDatabaseError(UsageError):
    """A command that only reads was pointed at a database that does not exist (exit 2)."""


class NotAResultsDatabaseError(UsageError):
    """The file is not SQLite, or an SQLite database without mobilize's tables (exit 2)."""


@contextmanager
def open_store(path: Path, *, create: bool = True) -> Iterator[sqlite3.Connection]:
    """The results database at `path`, checked to be one.

    create=True (commands that write: bench, sweep) makes the folder and the tables when they
    are missing; create=False (results list/show/compare, a baseline) never creates anything
    and raises NoDatabaseError instead. Either way a file that is not SQLite, or an SQLite
    database that holds other tables than ours, is refused with NotAResultsDatabaseError:
    writing our tables into someone else's database would be worse than stopping.
    """
    if not create and not path.is_file():
        raise NoDatabaseError(
            f"there is no results database at {path}",
            hint="`mobilize bench` and `mobilize sweep` store runs there; "
            "`mobilize results list --db FILE` reads another database")
    if create and not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # A generous busy timeout: parallel device workers write to the same file.
        connection = sqlite3.connect(path, timeout=30.0)
    except sqlite3.Error as error:
        raise NotAResultsDatabaseError(
            f"cannot open the results database {path}: {error}",
            hint="give --db a file path in a folder you can write") from error
    try:
        _check_tables(connection, path, create)
        connection.execute("PRAGMA foreign_keys = ON")
        yield connection
    finally:
        connection.close()


def _check_tables(connection: sqlite3.Connection, path: Path, create: bool) -> None:
    hint = "pass --db the results database `mobilize bench` wrote, or a new file name"
    try:
        tables = {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and create:
            connection.executescript(SCHEMA)
            return
        columns = {table: {row[1] for row in connection.execute(
            f"PRAGMA table_info({table})")} for table in _REQUIRED_COLUMNS if table in tables}
    except sqlite3.DatabaseError as error:  # "file is not a database", a corrupt file
        raise NotAResultsDatabaseError(
            f"{path} is not a results database ({error})", hint=hint) from error
    if not tables:
        raise NotAResultsDatabaseError(
            f"{path} is an empty SQLite database, not a results database: no run is stored "
            "there", hint=hint)
    missing = [f"{table} ({', '.join(sorted(need - columns.get(table, set())))})"
               if table in columns else table
               for table, need in _REQUIRED_COLUMNS.items() if need - columns.get(table, set())]
    if missing:
        found = ", ".join(sorted(tables))
        raise NotAResultsDatabaseError(
            f"{path} is an SQLite database but not a mobilize results database: it lacks "
            f"{'; '.join(missing)} (its tables: {found})", hint=hint)
    if create:
        connection.executescript(SCHEMA)  # IF NOT EXISTS: indexes or tables added later


def save_run(connection: sqlite3.Connection, record: dict[str, Any]) -> int:
    """Insert one run (a record from mobilize.bench.runner) and its samples atomically."""
    result = record["result"]
    config = result["config"]
    latency = result.get("latency") or {}
    stats = latency.get("stats") or {}
    memory = result.get("memory") or {}
    samples: Sequence[float] = latency.get("samples") or []
    with connection:  # one transaction: the run and all its samples, or nothing
        cursor = connection.execute(
            """INSERT INTO runs (run_id, created_at, status, serial, device_model, model_name,
                model_path, model_sha256, target, runner, delegate, delegate_applied, threads,
                warmup_runs, num_runs, gpu_precision, p50_us, mean_us, init_us, pss_kb,
                peak_rss_kb, thermal_before, thermal_after, config_json, device_json,
                result_json, harness_json)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (
                result["run_id"],
                record["created_at"],
                result["status"],
                record["serial"],
                result["device"].get("model"),
                record["model_name"],
                record["model_path"],
                record["model_sha256"],
                record.get("target"),
                result["runner"],
                config["delegate"],
                _bool_or_none(result["delegate"].get("applied")),
                config["threads"],
                config["warmup_runs"],
                config["num_runs"],
                config["gpu_precision"],
                stats.get("p50"),
                stats.get("mean"),
                latency.get("init"),
                memory.get("pss"),
                memory.get("peak_rss"),
                result["thermal"].get("before"),
                result["thermal"].get("after"),
                json.dumps(config, sort_keys=True),
                json.dumps(result["device"], sort_keys=True),
                json.dumps(result, sort_keys=True),
                json.dumps(record["harness"], sort_keys=True),
            ),
        )
        run_row = int(cursor.lastrowid or 0)
        connection.executemany(
            "INSERT INTO samples (run, idx, latency_us) VALUES (?, ?, ?)",
            [(run_row, index, float(value)) for index, value in enumerate(samples)],
        )
    return run_row


_COLUMNS = """id, run_id, created_at, status, serial, device_model, model_name, model_sha256,
    target, runner, delegate, delegate_applied, threads, p50_us, mean_us, init_us, pss_kb,
    result_json, harness_json"""


def list_runs(connection: sqlite3.Connection, limit: int = 50) -> list[StoredRun]:
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()
    return [_to_run(connection, row, with_samples=False) for row in rows]


def get_run(connection: sqlite3.Connection, key: str) -> StoredRun | None:
    """A run by its number (`12`) or by its run id or a unique prefix of it."""
    if key.isdigit():
        row = connection.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (int(key),)
        ).fetchone()
    else:
        rows = connection.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2",
            (key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
        ).fetchall()
        row = rows[0] if len(rows) == 1 else None
    return _to_run(connection, row, with_samples=True) if row else None


def similar_runs(connection: sqlite3.Connection, run: StoredRun,
                 limit: int = 200) -> list[StoredRun]:
    """The latest successful runs with samples on run's device, runner, delegate, threads and
    GPU precision (any model; run itself included): what the regression gate measures the
    device's run-to-run spread from."""
    precision = connection.execute("SELECT gpu_precision FROM runs WHERE id = ?",
                                   (run.id,)).fetchone()
    rows = connection.execute(
        f"""SELECT {_COLUMNS} FROM runs r WHERE serial = ? AND runner = ? AND delegate = ?
            AND threads = ? AND gpu_precision IS ? AND status = 'ok'
            AND EXISTS (SELECT 1 FROM samples s WHERE s.run = r.id)
            ORDER BY id DESC LIMIT ?""",
        (run.serial, run.runner, run.delegate, run.threads,
         precision[0] if precision else None, limit)).fetchall()
    return [_to_run(connection, row, with_samples=True) for row in rows]


def _to_run(connection: sqlite3.Connection, row: tuple, with_samples: bool) -> StoredRun:
    samples: tuple[float, ...] = ()
    if with_samples:
        samples = tuple(
            value
            for (value,) in connection.execute(
                "SELECT latency_us FROM samples WHERE run = ? ORDER BY idx", (row[0],)
            )
        )
    return StoredRun(
        id=row[0],
        run_id=row[1],
        created_at=row[2],
        status=row[3],
        serial=row[4],
        device_model=row[5],
        model_name=row[6],
        model_sha256=row[7],
        target=row[8],
        runner=row[9],
        delegate=row[10],
        delegate_applied=None if row[11] is None else bool(row[11]),
        threads=row[12],
        p50_us=row[13],
        mean_us=row[14],
        init_us=row[15],
        pss_kb=row[16],
        result=json.loads(row[17]),
        harness=json.loads(row[18]),
        samples=samples,
    )


def _bool_or_none(value: object) -> int | None:
    return None if value is None else int(bool(value))


def write_json_atomically(path: Path, payload: object) -> None:
    """Write JSON atomically: never a half-written file."""
    atomic_write_json(path, payload)
