"""How often `bench --baseline` cries wolf, and whether it catches a real slowdown, on the
emulated device (issue 16's measurement; it moved here from the suite because it times a
shared machine, and a timed test fails whenever another job starts beside it).

    python benchmarks/regression_gate.py [--gates 10] [--max-regression 10%] [--runs 100]

A baseline of 3 runs of a 64x64 conv net, then --gates single-run gates of the very same
file (each stored, so later gates know more repeats), then a file with one more conv layer
(~+25 % compute) benched 5 times in one gate. 1 thread: on 2 shared cores 4 threads swing run
medians by 30 % and more. Prints each gate's line and a summary; exit 0 when the identical
file never failed and the slower one was caught.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mobilize.cli import main as mobilize  # noqa: E402
from mobilize.emulator.testing import running_emulator  # noqa: E402
from tests.device_bench.conv_models import conv_model, gate_bench_args  # noqa: E402

EXIT_REGRESSION = 5


def gate_line(err: str) -> str:
    return next((line.strip() for line in err.splitlines() if "baseline run(s)" in line),
                err.strip().splitlines()[-1] if err.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gates", type=int, default=10)
    parser.add_argument("--max-regression", default="10%")
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        base, slower = tmp / "base.tflite", tmp / "slower.tflite"
        conv_model(base, 3)
        conv_model(slower, 4)
        with running_emulator(tmp / "device", accept_new_keys=True) as emu:
            def bench(model: Path, *extra: str) -> tuple[int, str]:
                err = io.StringIO()
                with contextlib.redirect_stderr(err):
                    code = mobilize(gate_bench_args(model, emu.serial, tmp, args.runs,
                                                    *extra))
                return code, err.getvalue()

            assert bench(base, "--repeat", "3")[0] == 0
            gate = ("--baseline", "1", "--max-regression", args.max_regression)
            gates = []
            for _ in range(args.gates):
                gates.append(bench(base, *gate))
                print("identical:", gates[-1][0], gate_line(gates[-1][1]), flush=True)
            code, err = bench(slower, *gate, "--repeat", "5")
            print("slower (+25 % compute): exit", code, gate_line(err), flush=True)
    false_alarms = sum(gate_code != 0 for gate_code, _ in gates)
    print(f"identical file: {false_alarms} of {len(gates)} gates failed; slower file "
          f"{'caught' if code == EXIT_REGRESSION else 'NOT caught'} "
          f"({time.perf_counter() - start:.0f} s)")
    return 0 if not false_alarms and code == EXIT_REGRESSION else 1


if __name__ == "__main__":
    raise SystemExit(main())
