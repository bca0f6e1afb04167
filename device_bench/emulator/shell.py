"""The device shell: a small interpreter of a fixed set of commands, never the host's sh.

It quotes as a POSIX shell does ('single', "double" with $ expansion, backslashes), runs
lists joined by `;`, `&&`, `||` and newlines, pipelines with `|`, redirections (`>`, `>>`,
`<`, `2>`, `2>&1`), expands `$?` and simple variables, and answers with toybox/mksh exit
codes: 127 and "inaccessible or not found" for an unknown command. Commands write to sinks,
so `cat` of a large file streams instead of being held in memory.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from mobilize.emulator.sandbox import Access, DeviceFileError, Identity

if TYPE_CHECKING:
    from mobilize.emulator.device import EmulatedDevice

SHELL_NAME = "/system/bin/sh"
EXIT_SYNTAX = 2
EXIT_NOT_FOUND = 127


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class NullSink:
    def write(self, data: bytes) -> None:
        pass


class BufferSink:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, data: bytes) -> None:
        self.buffer.write(data)

    def getvalue(self) -> bytes:
        return self.buffer.getvalue()


class ShellSyntaxError(Exception):
    pass


class _RedirectError(Exception):
    """A redirection that could not be set up; the text is what mksh prints after its name."""


# --- parsing ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Variable:
    name: str


WordPart = str | Variable


@dataclass(frozen=True)
class Word:
    parts: tuple[WordPart, ...]

    def expand(self, variables: Callable[[str], str]) -> str:
        return "".join(p if isinstance(p, str) else variables(p.name) for p in self.parts)


@dataclass(frozen=True)
class Operator:
    text: str


@dataclass(frozen=True)
class Redirect:
    fd: int
    mode: str  # ">", ">>", "<", ">&"
    target: Word


@dataclass
class SimpleCommand:
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


_OPERATORS = ("&&", "||", ">>", ">&", ";", "|", "&", ">", "<", "\n")


def tokenize(line: str) -> list[Word | Operator]:
    tokens: list[Word | Operator] = []
    parts: list[WordPart] = []
    literal: list[str] = []
    in_word = False
    quoted = False
    i = 0

    def flush_literal() -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()

    def end_word() -> None:
        nonlocal in_word, quoted
        flush_literal()
        if in_word:
            tokens.append(Word(tuple(parts)))
        parts.clear()
        in_word = False
        quoted = False

    def read_variable(start: int) -> tuple[Variable | None, int]:
        if start >= len(line):
            return None, start
        char = line[start]
        if char in "?#$!0123456789":
            return Variable(char), start + 1
        if char == "{":
            end = line.find("}", start)
            if end < 0:
                raise ShellSyntaxError("bad substitution")
            return Variable(line[start + 1 : end]), end + 1
        end = start
        while end < len(line) and (line[end].isalnum() or line[end] == "_"):
            end += 1
        if end == start:
            return None, start
        return Variable(line[start:end]), end

    def expand_dollar(start: int) -> int:
        """`$NAME` or `${NAME}` at start: a Variable part; a lone `$` stays literal."""
        variable, after = read_variable(start + 1)
        if variable is None:
            literal.append("$")
            return start + 1
        flush_literal()
        parts.append(variable)
        return after

    while i < len(line):
        char = line[i]
        if char in " \t":
            end_word()
            i += 1
            continue
        if char == "#" and not in_word:
            while i < len(line) and line[i] != "\n":
                i += 1
            continue
        operator = next((op for op in _OPERATORS if line.startswith(op, i)), None)
        if operator is not None:
            # "2>" and "2>&1": a bare digit word right before a redirection names the fd.
            if (
                operator in (">", ">>", ">&", "<")
                and in_word
                and not quoted
                and parts == []
                and literal
                and "".join(literal).isdigit()
            ):
                fd = "".join(literal)
                literal.clear()
                in_word = False
                tokens.append(Operator(fd + operator))
            else:
                end_word()
                tokens.append(Operator(operator))
            i += len(operator)
            continue
        in_word = True
        if char == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated quoted string")
            literal.append(line[i + 1 : end])
            quoted = True
            i = end + 1
        elif char == '"':
            quoted = True
            i += 1
            while True:
                if i >= len(line):
                    raise ShellSyntaxError("unterminated quoted string")
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < len(line) and line[i + 1] in '$`"\\\n':
                    literal.append(line[i + 1])
                    i += 2
                elif c == "$":
                    i = expand_dollar(i)
                else:
                    literal.append(c)
                    i += 1
        elif char == "\\":
            if i + 1 < len(line):
                literal.append(line[i + 1])
            i += 2
            quoted = True
        elif char == "$":
            i = expand_dollar(i)
        elif char == "`":
            raise ShellSyntaxError("command substitution is not supported")
        else:
            literal.append(char)
            i += 1
    end_word()
    return tokens


@dataclass
class Pipeline:
    commands: list[SimpleCommand]


@dataclass
class ListItem:
    connector: str  # ";" (always run), "&&", "||" — how it joins the item before it
    pipeline: Pipeline


def parse(line: str) -> list[ListItem]:
    tokens = tokenize(line)
    items: list[ListItem] = []
    connector = ";"
    commands: list[SimpleCommand] = []
    current = SimpleCommand()
    index = 0

    def finish_pipeline(next_connector: str) -> None:
        nonlocal current, commands, connector
        if current.words or current.redirects:
            commands.append(current)
        elif commands:
            raise ShellSyntaxError("syntax error: unexpected end after '|'")
        if commands:
            items.append(ListItem(connector, Pipeline(commands)))
        elif next_connector in ("&&", "||"):
            raise ShellSyntaxError(f"syntax error: unexpected '{next_connector}'")
        commands = []
        current = SimpleCommand()
        connector = next_connector

    while index < len(tokens):
        token = tokens[index]
        if isinstance(token, Word):
            current.words.append(token)
        elif token.text in (";", "\n", "&"):
            finish_pipeline(";")
        elif token.text in ("&&", "||"):
            finish_pipeline(token.text)
        elif token.text == "|":
            if not current.words:
                raise ShellSyntaxError("syntax error: unexpected '|'")
            commands.append(current)
            current = SimpleCommand()
        else:
            text = token.text
            fd_text = text.rstrip("<>&")
            mode = text[len(fd_text) :]
            fd = int(fd_text) if fd_text else (0 if mode == "<" else 1)
            index += 1
            if index >= len(tokens) or not isinstance(tokens[index], Word):
                raise ShellSyntaxError(f"syntax error: '{text}' unexpected")
            target = tokens[index]
            assert isinstance(target, Word)
            current.redirects.append(Redirect(fd, mode, target))
        index += 1
    finish_pipeline(";")
    return items


# --- running ---------------------------------------------------------------------------
@dataclass
class Invocation:
    args: list[str]
    stdin: bytes
    stdout: Sink
    stderr: Sink
    session: ShellSession

    @property
    def name(self) -> str:
        return self.args[0]

    def out(self, text: str) -> None:
        self.stdout.write(text.encode("utf-8", "surrogateescape"))

    def err(self, text: str) -> None:
        self.stderr.write(text.encode("utf-8", "surrogateescape"))

    def fail(self, text: str, code: int = 1) -> int:
        self.err(f"{self.name}: {text}\n")
        return code

    def file_error(self, error: OSError, path: str) -> int:
        return self.fail(f"{path}: {error.strerror or error}")


CommandFunction = Callable[[Invocation], int]


class ShellSession:
    """One shell: identity (user and working folder), variables and the last status."""

    def __init__(self, device: EmulatedDevice, identity: Identity | None = None) -> None:
        self.device = device
        self.identity = identity or Identity()
        self.last_status = 0
        self.variables: dict[str, str] = {"HOME": "/", "PATH": "/system/bin", "USER": "shell"}

    def variable(self, name: str) -> str:
        if name == "?":
            return str(self.last_status)
        if name == "$":
            return "4242"
        if name == "#":
            return "0"
        return self.variables.get(name, "")

    def run(self, line: str, stdout: Sink, stderr: Sink, stdin: bytes = b"") -> int:
        try:
            items = parse(line)
        except ShellSyntaxError as error:
            stderr.write(f"{SHELL_NAME}: {error}\n".encode())
            self.last_status = EXIT_SYNTAX
            return EXIT_SYNTAX
        for item in items:
            if item.connector == "&&" and self.last_status != 0:
                continue
            if item.connector == "||" and self.last_status == 0:
                continue
            self.last_status = self._run_pipeline(item.pipeline, stdout, stderr, stdin)
            if self.variables.get("__exit__") is not None:
                break
        return self.last_status

    def _run_pipeline(self, pipeline: Pipeline, stdout: Sink, stderr: Sink, stdin: bytes) -> int:
        data = stdin
        status = 0
        for position, command in enumerate(pipeline.commands):
            last = position == len(pipeline.commands) - 1
            sink: Sink = stdout if last else BufferSink()
            status = self._run_simple(command, data, sink, stderr)
            if not last:
                assert isinstance(sink, BufferSink)
                data = sink.getvalue()
        return status

    def _run_simple(self, command: SimpleCommand, stdin: bytes, stdout: Sink, stderr: Sink) -> int:
        args = [word.expand(self.variable) for word in command.words]
        opened = []
        try:
            try:
                stdin, stdout, stderr = self._apply_redirects(
                    command.redirects, stdin, stdout, stderr, opened
                )
            except _RedirectError as error:
                stderr.write(f"{SHELL_NAME}: {error}\n".encode())
                return 1
            if not args:
                return 0
            function = self.device.commands.get(args[0])
            if function is None:
                stderr.write(f"{SHELL_NAME}: {args[0]}: inaccessible or not found\n".encode())
                return EXIT_NOT_FOUND
            invocation = Invocation(args, stdin, stdout, stderr, self)
            try:
                return function(invocation)
            except DeviceFileError as error:
                return invocation.file_error(error, error.device_path)
        finally:
            for handle in opened:
                handle.close()

    def _apply_redirects(self, redirects, stdin, stdout, stderr, opened):
        for redirect in redirects:
            target = redirect.target.expand(self.variable)
            if redirect.mode == ">&":
                chosen = stdout if target == "1" else stderr if target == "2" else None
                if chosen is None:
                    raise _RedirectError(f"{target}: bad file descriptor")
                if redirect.fd == 2:
                    stderr = chosen
                else:
                    stdout = chosen
                continue
            if target == "/dev/null":
                if redirect.mode == "<":
                    stdin = b""
                elif redirect.fd == 2:
                    stderr = NullSink()
                else:
                    stdout = NullSink()
                continue
            reading = redirect.mode == "<"
            access = Access.READ if reading else Access.WRITE
            try:
                host = self.device.sandbox.host_path(target, self.identity, access)
                if reading:
                    stdin = host.read_bytes()
                    continue
                handle = open(host, "ab" if redirect.mode == ">>" else "wb")  # noqa: SIM115
            except OSError as error:
                # mksh's words: "can't create FILE: Permission denied".
                verb = "open" if reading else "create"
                raise _RedirectError(f"can't {verb} {target}: {error.strerror}") from error
            opened.append(handle)
            if redirect.fd == 2:
                stderr = handle
            else:
                stdout = handle
        return stdin, stdout, stderr
