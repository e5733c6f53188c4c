"""Log lines as runc writes them, for people (`pyoci: msg` on stderr) and for tools.

With `--log FILE` every line is also appended to FILE; with `--log-format json` each line is
one JSON object `{"level","msg","time"}` and nothing else, because podman reads its oci-log as
JSON and shows the last error's `msg`. The file is created on every failure even when nothing
else was logged, so tools never say "unable to retrieve OCI runtime error".
"""

import posix
import sys
import time

from pyoci.errors import one_line

_APPEND = posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC


def _rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Logger:
    def __init__(self, path: str | None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug

    def _line(self, level: str, msg: str) -> str:
        if self.fmt == "json":
            from pyoci import jsonfast

            return jsonfast.dumps({"level": level, "msg": msg, "time": _rfc3339()}) + "\n"
        quoted = msg.replace("\\", "\\\\").replace('"', '\\"')  # logfmt, as logrus quotes
        return f'time="{_rfc3339()}" level={level} msg="{quoted}"\n'

    def check(self) -> str | None:
        """Open (create) the log file once, before the command runs: an unusable `--log` is
        an error at once, as for runc, rather than a log silently lost. The reason, or None."""
        if not self.path:
            return None
        try:
            posix.close(posix.open(self.path, _APPEND, 0o644))
        except OSError as err:
            return f"--log: {self.path}: {(err.strerror or str(err)).lower()}"
        return None

    def _write_file(self, level: str, msg: str) -> None:
        if not self.path:
            return
        try:
            fd = posix.open(self.path, _APPEND, 0o644)
        except OSError:
            return
        try:
            posix.write(fd, self._line(level, msg).encode())
        finally:
            posix.close(fd)

    def error(self, msg: str) -> None:
        """One line to stderr, and the same to the log file."""
        msg = one_line(msg)
        self._write_file("error", msg)
        try:
            sys.stderr.write(f"pyoci: {msg}\n")
            sys.stderr.flush()
        except OSError:
            pass

    def warning(self, msg: str) -> None:
        """To the log file when there is one, else stderr: a shim hands `create` the
        container's own stdio, so a warning there would land in the container's output."""
        msg = one_line(msg)
        if self.path:
            self._write_file("warning", msg)
            return
        try:
            sys.stderr.write(f"pyoci: warning: {msg}\n")
        except OSError:
            pass

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self._write_file("debug", msg)
            if not self.path:
                sys.stderr.write(f"pyoci: debug: {msg}\n")
