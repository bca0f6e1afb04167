"""An emulated phone with faults for benchmarks/faults/case.sh: SIGUSR1 clears the faults on
the same running device (so the next bench meets the state the fault left), SIGUSR2 prints
the apps running on it, SIGTERM stops it."""

import argparse
import signal
import threading
from pathlib import Path

from mobilize.emulator.faults import Faults
from mobilize.emulator.testing import start_emulator

parser = argparse.ArgumentParser()
parser.add_argument("--root", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--fault", action="append", default=[], help="as `mobilize emulator --fault`")
args = parser.parse_args()
faults = Faults()
for text in args.fault:
    faults.apply_text(text)
handle = start_emulator(Path(args.root), port=args.port, accept_new_keys=True, faults=faults,
                        notice=lambda message: print("device:", message, flush=True))
print("listening", handle.serial, "faults", faults, flush=True)


def clear(*_):
    handle.faults.clear()
    print("faults cleared", handle.faults, flush=True)


def running(*_):
    print("running apps:", [(app.package, app.pid,
                             "alive" if app.worker and app.worker.poll() is None else "dead")
                            for app in handle.device.apps.running()], flush=True)


signal.signal(signal.SIGUSR1, clear)
signal.signal(signal.SIGUSR2, running)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
try:
    stop.wait()
except KeyboardInterrupt:
    pass
handle.stop()
print("stopped", flush=True)
