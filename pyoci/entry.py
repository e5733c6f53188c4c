"""Entry point: parse argv from the command table without click, run the command.

Help requests and malformed command lines are handed to the click CLI (`pyoci.cli`), built
from the same table, so users get click's help and usage messages while tools that call pyoci
hundreds of times pay only for what their command does.

No `from __future__ import annotations` and no `os` here, nor in any module `state`, `start`,
`kill` or `delete` load: `__future__` is a file to find and load (~0.2 ms) and `os` builds its
environ mapping on `_collections_abc` (~1 ms), against a budget of 1 ms above the
interpreter's own start. `posix` is what `os` re-exports, built in.
"""

import posix
import sys

from pyoci.commands import COMMANDS_BY_NAME, GLOBAL_OPTS, Cmd, Opt, run_handler


class UsageError(Exception):
    """argv does not fit the table: click will explain."""


def _match(opts: tuple[Opt, ...], token: str) -> tuple[Opt, str | None] | None:
    name, eq, value = token.partition("=")
    for opt in opts:
        if name in opt.names:
            return opt, (value if eq else None)
    return None


def _take(opt: Opt, inline: str | None, argv: list[str], i: int, out: dict) -> int:
    """Store one option's value; return the index of the next token."""
    if opt.kind == "flag":
        if inline is not None:
            lowered = inline.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise UsageError(opt.names[0])
            out[opt.dest] = lowered in ("true", "1")
        else:
            out[opt.dest] = True
        return i
    if inline is None:
        if i >= len(argv):
            raise UsageError(opt.names[0])
        inline = argv[i]
        i += 1
    if opt.kind == "int":
        try:
            out[opt.dest] = int(inline)
        except ValueError:
            raise UsageError(opt.names[0]) from None
    elif opt.kind == "choice" and inline not in opt.choices:
        raise UsageError(opt.names[0])
    elif opt.kind == "multi":
        out.setdefault(opt.dest, []).append(inline)
    else:
        out[opt.dest] = inline
    return i


def parse(argv: list[str]) -> tuple[dict, Cmd, dict, list[str]]:
    """(globals, command, options, positional args), or UsageError."""
    g = {opt.dest: opt.default for opt in GLOBAL_OPTS}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        token = argv[i]
        if token in ("-h", "--help", "-v", "--version"):
            raise UsageError(token)
        found = _match(GLOBAL_OPTS, token)
        if found is None:
            raise UsageError(token)
        i = _take(found[0], found[1], argv, i + 1, g)
    if i >= len(argv) or argv[i] not in COMMANDS_BY_NAME:
        raise UsageError("command")
    cmd = COMMANDS_BY_NAME[argv[i]]
    o = {opt.dest: (list(opt.default) if opt.kind == "multi" else opt.default) for opt in cmd.opts}
    args: list[str] = []
    i += 1
    required = sum(1 for _, req in cmd.args if req)
    while i < len(argv):
        token = argv[i]
        if cmd.rest and len(args) >= required and args:
            # The command line, verbatim: a `--` here is its first word, as for runc.
            args.extend(argv[i:])
            break
        if token == "--":
            args.extend(argv[i + 1 :])
            break
        if token in ("-h", "--help"):
            raise UsageError(token)
        if token.startswith("-") and token != "-":
            found = _match(cmd.opts, token)
            if found is None:
                raise UsageError(token)
            i = _take(found[0], found[1], argv, i + 1, o)
            continue
        args.append(token)
        i += 1
    if len(args) < required or (not cmd.rest and len(args) > len(cmd.args)):
        raise UsageError("arguments")
    return g, cmd, o, args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        g, cmd, o, args = parse(argv)
    except UsageError:
        from pyoci.cli import main as click_main

        return click_main(argv)
    return run_handler(g, cmd, o, args)


def entry() -> None:
    """Console-script entry: flush stdio, exit with the command's code.

    Through os._exit: the interpreter's teardown (freeing every module and object, ~1.5 ms)
    buys nothing for a process that starts no thread, registers no atexit handler and closes
    its files as it goes. Output that cannot be written is an error, except a closed pipe.

    The collector is off: a command lives for milliseconds and makes few reference cycles,
    its passes during the imports cost ~0.5 ms, and in forked children they would dirty shared
    pages. Processes that stay (the --init PID 1, a foreground `run`, `events`) turn it back
    on. (Here, not at import: a program importing pyoci.entry keeps its collector.)"""
    import gc

    gc.disable()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            pass
        except OSError as err:
            if stream is sys.stdout:
                posix.write(2, f"pyoci: writing the output: {err.strerror}\n".encode())
            code = code or 1
    posix._exit(code)
