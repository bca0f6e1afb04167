"""Logcat, parsed once: lines in every format phones print (threadtime, brief, Android
Studio's), excerpts for error messages, and native or Java crashes tied to a package."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_STAMP = r"(?:\d{4}-)?\d\d-\d\d \d\d:\d\d:\d\d\.\d+"
_MESSAGE = r" ?(?P<msg>.*)$"
_LOG_FORMATS = (
    # threadtime: "07-25 11:36:25.158 12240 12240 F libc    : msg"
    re.compile(rf"^{_STAMP}\s+(?P<pid>\d+)\s+\d+ (?P<prio>[VDIWEFAS]) (?P<tag>.*?)\s*:{_MESSAGE}"),
    # Android Studio: "2020-09-24 15:32:44.894 13915-14110/com.x.y A/libc: msg"
    re.compile(rf"^{_STAMP} (?P<pid>\d+)-\d+/\S+ (?P<prio>[VDIWEFAS])/(?P<tag>[^:]*?):{_MESSAGE}"),
    # brief and time: "F/libc    (17544): msg", "I/DEBUG   (  220):"
    re.compile(
        rf"^(?:{_STAMP} )?(?P<prio>[VDIWEFAS])/(?P<tag>.*?)\s*\(\s*(?P<pid>\d+)\):{_MESSAGE}"
    ),
)


@dataclass(frozen=True)
class LogLine:
    """One logcat line in any of brief, time, threadtime, Android Studio or raw form."""

    priority: str | None
    tag: str | None
    pid: int | None
    message: str


@dataclass(frozen=True)
class CrashReport:
    """A crash found in logcat: a Java one (FATAL EXCEPTION) or a native one."""

    kind: str  # "java" or "native"
    process: str | None  # the package: ">>> pkg <<<", "Process: pkg", or its "Start proc" line
    pid: int | None
    signal: str | None = None  # SIGSEGV, SIGABRT, ...
    fault_addr: str | None = None
    detail: str | None = None  # the exception line, "Abort message: ..." or "Cause: ..."
    short_name: str | None = None  # the kernel's name from "Fatal signal": last 15 characters


def parse_logcat_line(line: str) -> LogLine:
    """A logcat line's priority, tag, pid and message; a raw line is all message."""
    line = line.rstrip("\r\n")
    for pattern in _LOG_FORMATS:
        match = pattern.match(line)
        if match:
            return LogLine(match["prio"], match["tag"], int(match["pid"]), match["msg"])
    return LogLine(None, None, None, line)


_CRASH_TAGS = ("AndroidRuntime", "libc", "DEBUG", "crash_dump32", "crash_dump64", "tombstoned")
_CRASH_MARKERS = ("FATAL EXCEPTION", "Fatal signal", ">>> ", "has died", "*** *** ***")


def logcat_excerpt(text: str, needles: tuple[str, ...], max_lines: int = 40) -> str:
    """The logcat lines that matter for a crash: those naming the app, its tag or a fatal error."""
    lines = []
    for line in text.splitlines():
        tag = parse_logcat_line(line).tag or ""
        if tag.rsplit("/", 1)[-1] in _CRASH_TAGS or any(
            needle in line for needle in (*needles, *_CRASH_MARKERS)
        ):
            lines.append(line)
    return "\n".join(lines[-max_lines:])


_FATAL_SIGNAL = re.compile(
    r"Fatal signal \d+ \((?P<signal>\w+)\)(?:, code -?\d+(?: \(\w+\))?)?"
    r"(?:,? (?:fault addr|at) (?P<addr>0x[0-9a-fA-F]+))?.*?(?:in tid|thread) (?P<tid>\d+) "
    r"\((?P<thread>[^)]*)\)(?:, pid (?P<pid>\d+) \((?P<name>[^)]*)\))?"
)
_TOMBSTONE_PID = re.compile(r"^pid: (?P<pid>\d+), tid: \d+, name: .*?>>> (?P<process>.+?) <<<")
_TOMBSTONE_SIGNAL = re.compile(r"^signal \d+ \((?P<signal>\w+)\).*?fault addr (?P<addr>\S+)")
_START_PROC = re.compile(
    r"Start proc (?:(?P<pid>\d+):(?P<name>[^/\s]+)/|(?P<name2>\S+) for .*?pid=(?P<pid2>\d+))"
)
_JAVA_PROCESS = re.compile(r"^Process: (?P<process>[^,\s]+), PID: (?P<pid>\d+)")


class _Crashes:
    """find_crashes' state: the crashes so far, one per pid (a signal line and its block)."""

    def __init__(self) -> None:
        self.found: list[CrashReport] = []
        self.native_by_pid: dict[int, int] = {}
        self.started: dict[int, str] = {}  # pid -> package, from ActivityManager's Start proc
        self.java: int | None = None  # index of the FATAL EXCEPTION being read
        self.block: int | None = None  # index of the tombstone block being read

    def native(self, pid: int | None, **figures: str | None) -> int:
        at = self.native_by_pid.get(pid) if pid is not None else None
        if at is None:
            at = len(self.found)
            self.found.append(CrashReport("native", self.started.get(pid or -1), pid))
            if pid is not None:
                self.native_by_pid[pid] = at
        self.update(at, **figures)
        return at

    def update(self, at: int, **figures: str | None) -> None:
        old = self.found[at]
        kept = {key: value for key, value in figures.items() if getattr(old, key) is None}
        self.found[at] = replace(old, **kept)

    def read(self, entry: LogLine) -> None:
        message = entry.message.strip()
        if (start := _START_PROC.search(message)) is not None:
            self.started[int(start["pid"] or start["pid2"])] = start["name"] or start["name2"]
        if message.startswith("FATAL EXCEPTION"):
            self.java = len(self.found)
            process = self.started.get(entry.pid) if entry.pid is not None else None
            self.found.append(CrashReport("java", process, entry.pid))
        elif self.java is not None and entry.tag in (None, "AndroidRuntime"):
            if (process := _JAVA_PROCESS.match(message)) is not None:
                self.found[self.java] = replace(
                    self.found[self.java], process=process["process"], pid=int(process["pid"])
                )
            elif re.match(r"[\w.$]+: ", message):
                self.update(self.java, detail=message)
        if (signal := _FATAL_SIGNAL.search(message)) is not None:
            pid = int(signal["pid"]) if signal["pid"] else entry.pid
            main_thread = pid is not None and pid == int(signal["tid"])
            name = signal["name"] or (signal["thread"] if main_thread else None)
            self.native(pid, signal=signal["signal"], fault_addr=signal["addr"], short_name=name)
        elif (tomb := _TOMBSTONE_PID.match(message)) is not None:
            self.block = self.native(int(tomb["pid"]), process=tomb["process"])
        elif self.block is not None and (tomb_signal := _TOMBSTONE_SIGNAL.match(message)):
            self.update(self.block, signal=tomb_signal["signal"], fault_addr=tomb_signal["addr"])
        elif self.block is not None and message.startswith(("Abort message:", "Cause:")):
            self.update(self.block, detail=message)


def find_crashes(text: str) -> list[CrashReport]:
    """Every crash in a logcat dump: FATAL EXCEPTION blocks, "Fatal signal" lines, and the
    tombstone blocks of debuggerd / crash_dump (">>> pkg <<<", "signal 11 (SIGSEGV)"), also
    when the "Fatal signal" line is missing. A signal line and its block are one crash.
    """
    crashes = _Crashes()
    for line in text.splitlines():
        crashes.read(parse_logcat_line(line))
    return crashes.found


def detect_crash(text: str, package: str) -> CrashReport | None:
    """The crash of `package` (or of one of its `pkg:service` processes) in a logcat dump.

    A "Fatal signal" line without its tombstone block names only the pid and the name the
    kernel keeps (the last 15 characters of the package): that counts when it ends `package`.
    """
    for crash in find_crashes(text):
        process, name = crash.process, crash.short_name
        if process is not None:
            if process == package or process.startswith(package + ":"):
                return crash
        elif name and (name == package or (len(name) >= 15 and package.endswith(name))):
            return crash
    return None
