"""Test-only fault injection: make pyoci fail, or die, at one named step.

`PYOCI_FAULT="<step>[:fail|:kill]"` (`fail` when no action is given) names the step; every
step pyoci can be interrupted at calls `point("<step>")` (tests/reliability lists them all
and checks each). At the named step:

- `fail` raises `PyociError("injected fault at <step>")`, which travels like any failure of
  that step: from a child of `create` as an ERROR message, from a command as its one-line
  error;
- `kill` writes `pyoci: injected fault: SIGKILL at <step>` on stderr (the evidence the tests
  look for) and SIGKILLs the process; a pid namespace's init, which cannot SIGKILL itself,
  ends with `_exit(137)` instead: to its parent the two look the same;
- `sleep` waits half a second there, then goes on (a window for the race tests).

The variable is read once per process, on the first `point()` (forked children inherit the
answer), and without it a `point()` is one comparison: no import, no system call.
"""

import posix

from pyoci.errors import PyociError  # loaded by every command already

ENV = "PYOCI_FAULT"
_ACTIONS = ("fail", "kill", "sleep")
# (step, action) once read; ("", "fail") when the variable is unset (no step is "").
_target: tuple[str, str] | None = None


def _read() -> tuple[str, str]:
    global _target
    value = posix.environ.get(ENV.encode(), b"").decode(errors="replace")
    step, sep, action = value.rpartition(":")
    if not sep or action not in _ACTIONS:
        step, action = value, "fail"
    _target = (step, action)
    return _target


def point(name: str) -> None:
    """Fail or die here if PYOCI_FAULT names this step."""
    target = _target or _read()
    if name != target[0]:
        return
    if target[1] == "kill":
        try:
            posix.write(2, f"pyoci: injected fault: SIGKILL at {name}\n".encode())
        except OSError:
            pass
        posix.kill(posix.getpid(), 9)
        posix._exit(137)  # the init of a pid namespace: SIGKILL from inside it is ignored
    if target[1] == "sleep":
        import time

        time.sleep(0.5)
        return
    raise PyociError(f"injected fault at {name}")
