"""Bad input caught before the work (issue 16): a file that is not a TFLite model is refused
before any device is touched, and `--db` on something that is not a results database says
so with exit 2 instead of an internal error; readers never create a database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mobilize.cli import main
from mobilize.errors import ExitCode
from mobilize.results.store import NotAResultsDatabaseError, open_store, save_run
from tests.device_bench.conftest import make_record

# Nothing listens here: had bench touched a device, it would exit 3, not 2.
NO_DEVICE = ["--serial", "127.0.0.1:9", "--auth-timeout", "1"]


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, " ".join(capsys.readouterr().err.split())


def _junk(kind: str, folder: Path, tiny: Path) -> Path:
    path = folder / f"{kind}.tflite"
    good = tiny.read_bytes()
    content = {
        "text": b"this is not a flatbuffer" * 40,
        "empty": b"",
        "zip": b"PK\x03\x04" + bytes(60),
        "cut_off": good[: len(good) // 2],  # the right header, half the model
        "header_only": good[:8] + bytes(200),
    }[kind]
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("kind,expected", [
    ("text", "is not a TFLite model: its FlatBuffer file identifier"),
    ("empty", "is not a TFLite model: it is empty"),
    ("zip", "it is a zip archive"),
    ("cut_off", "LiteRT cannot parse it"),
    ("header_only", "LiteRT cannot parse it"),
])
def test_bench_refuses_a_file_that_is_not_tflite(kind: str, expected: str, tmp_path: Path,
                                                 tiny_tflite: Path, capsys) -> None:
    model = _junk(kind, tmp_path, tiny_tflite)
    code, err = run(capsys, "bench", str(model), *NO_DEVICE, "--db", str(tmp_path / "r.db"))
    assert code == ExitCode.BAD_INPUT, err
    assert expected in err
    assert not (tmp_path / "r.db").exists()


def test_bench_accepts_the_real_model_up_to_the_device(tmp_path: Path, tiny_tflite: Path,
                                                       capsys) -> None:
    code, err = run(capsys, "bench", str(tiny_tflite), *NO_DEVICE, "--db",
                    str(tmp_path / "r.db"))
    assert code == ExitCode.DEVICE_ERROR, err  # past the model check: the device is absent


def test_an_export_folder_file_nothing_vouches_for_is_checked(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model_int8.tflite").write_bytes(b"garbage" * 20)
    (folder / "metadata.json").write_text(json.dumps({"artifacts": [
        {"target": "tflite-int8", "file": "model_int8.tflite"}]}))  # no sha256
    code, err = run(capsys, "bench", str(folder), *NO_DEVICE, "--db", str(tmp_path / "r.db"))
    assert code == ExitCode.BAD_INPUT and "is not a TFLite model" in err


# ------------------------------------------------------------------ --db


@pytest.fixture
def text_db(tmp_path: Path) -> Path:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 20)
    return path


@pytest.fixture
def foreign_db(tmp_path: Path) -> Path:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO customers (name) VALUES ('Ada')")
    return path


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.mark.parametrize("action", [["list"], ["show", "1"], ["compare", "1", "2"]])
def test_results_on_a_text_file(action: list[str], text_db: Path, capsys) -> None:
    before = text_db.read_bytes()
    code, err = run(capsys, "results", "--db", str(text_db), *action)
    assert code == ExitCode.BAD_INPUT, err
    assert f"{text_db} is not a results database" in err
    assert text_db.read_bytes() == before


@pytest.mark.parametrize("action", [["list"], ["show", "1"]])
def test_results_on_an_sqlite_database_without_our_tables(action: list[str], foreign_db: Path,
                                                          capsys) -> None:
    code, err = run(capsys, "results", "--db", str(foreign_db), *action)
    assert code == ExitCode.BAD_INPUT, err
    assert "not a mobilize results database" in err and "customers" in err
    assert _tables(foreign_db) == {"customers"}  # none of ours written into it


def test_writers_refuse_a_foreign_database_too(foreign_db: Path, text_db: Path) -> None:
    for path in (foreign_db, text_db):
        with pytest.raises(NotAResultsDatabaseError) as raised, open_store(path):
            pass
        assert raised.value.exit_code == ExitCode.BAD_INPUT
    assert _tables(foreign_db) == {"customers"}


def test_results_list_in_a_missing_folder_creates_nothing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "missing" / "dir" / "x.db"
    code, err = run(capsys, "results", "--db", str(db), "list")
    assert code == ExitCode.BAD_INPUT, err
    assert f"there is no results database at {db}" in err
    code, err = run(capsys, "results", "--db", str(db), "show", "42")
    assert code == ExitCode.BAD_INPUT
    assert "no stored run '42'" in err and "no results database" in err
    assert not (tmp_path / "missing").exists()


def test_an_empty_file_is_no_database_for_readers_but_fine_for_writers(tmp_path: Path,
                                                                       capsys) -> None:
    db = tmp_path / "new.db"
    db.touch()
    code, err = run(capsys, "results", "--db", str(db), "list")
    assert code == ExitCode.BAD_INPUT and "empty SQLite database" in err
    with open_store(db) as connection:  # what bench does: the tables are made
        save_run(connection, make_record("r1", [1.0, 2.0]))
    code, err = run(capsys, "results", "--db", str(db), "list")
    assert code == 0, err


def test_writers_create_the_folder(tmp_path: Path) -> None:
    db = tmp_path / "new" / "folder" / "results.db"
    with open_store(db) as connection:
        save_run(connection, make_record("r1", [1.0, 2.0]))
    assert {"runs", "samples"} <= _tables(db)


def test_a_baseline_from_a_text_file_fails_before_the_device(text_db: Path, tiny_tflite: Path,
                                                             capsys) -> None:
    code, err = run(capsys, "bench", str(tiny_tflite), *NO_DEVICE, "--db", str(text_db),
                    "--baseline", "1")
    assert code == ExitCode.BAD_INPUT, err
    assert "is not a results database" in err


def test_a_baseline_from_a_missing_database(tmp_path: Path, tiny_tflite: Path, capsys) -> None:
    db = tmp_path / "nowhere" / "r.db"
    code, err = run(capsys, "bench", str(tiny_tflite), *NO_DEVICE, "--db", str(db),
                    "--baseline", "3")
    assert code == ExitCode.BAD_INPUT, err
    assert "no results database" in err and not db.parent.exists()
