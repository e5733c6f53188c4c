"""Attack tests: each finding of the security review performed for real against a container.

`RUNTIME=/usr/sbin/runc make test` (or `pytest tests/security` with RUNTIME set) runs the same
attacks against another runc-compatible binary, so the suite is known to be able to fail: runc
1.1.5 resists most of them, and today's pyoci must too. The attacker's helpers are small static
C programs built here with gcc (`static_program`), or busybox scripts.

Never write to the real interpreter or any system file: where a test needs a victim, it makes
a copy.

Each test module imports the fixtures it uses from here (`from attack import pyoci_bin,
static_program  # noqa: F401`): a second `conftest.py` would shadow the top-level one, which
other test modules import by that name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def runtime_path() -> str:
    """$RUNTIME (any runc-compatible binary), else pyoci ($PYOCI, or the venv's launcher, as
    the top-level conftest; not imported from it: both modules are named `conftest`)."""
    pyoci = os.environ.get("PYOCI") or str(Path(sys.executable).parent / "pyoci")
    return os.environ.get("RUNTIME") or pyoci


def runtime_is_pyoci() -> bool:
    return "RUNTIME" not in os.environ


@pytest.fixture(scope="session")
def pyoci_bin() -> str:
    """Overrides the top-level fixture: the runner drives $RUNTIME when it is set."""
    path = runtime_path()
    if not os.access(path, os.X_OK):
        pytest.skip(f"runtime binary not found at {path}")
    return path


@pytest.fixture(scope="session")
def static_program(tmp_path_factory):
    """`static_program(c_source) -> Path`: a static binary built with gcc (cached by source)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the attacker's static programs")
    out_dir = tmp_path_factory.mktemp("attacker-bin")

    def build(source: str, name: str = "prog", flags: tuple[str, ...] = ("-static",)) -> Path:
        """`flags` replace `-static` (e.g. a freestanding static-pie)."""
        key = source if flags == ("-static",) else "\0".join((source, *flags))
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        binary = out_dir / f"{name}-{digest}"
        if not binary.exists():
            src = out_dir / f"{name}-{digest}.c"
            src.write_text(source)
            result = subprocess.run(
                ["gcc", *flags, "-O2", "-o", str(binary), str(src)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                pytest.fail(f"gcc failed on {name}:\n{result.stderr}")
        return binary

    return build


# --- helpers of the exe-overwrite, /proc and cwd attacks -------------------------------------
def host_executable(binary: str) -> Path:
    """The host file the kernel runs for `binary`: the interpreter of a `#!` launcher (pyoci's
    .venv/bin/pyoci), else the binary itself; symlinks resolved."""
    with open(binary, "rb") as f:
        first = f.readline()
    if first.startswith(b"#!"):
        return Path(first[2:].split()[0].decode()).resolve()
    return Path(binary).resolve()


def victim_launcher(launcher: str, directory: Path) -> tuple[Path, Path]:
    """(launcher, interpreter): a private copy of `launcher`'s interpreter in `directory` and a
    launcher script running pyoci with it (`#!COPY -IS`, the same sys.path lines). An attack
    that reaches "the host interpreter" reaches this copy, never the real one."""
    lines = Path(launcher).read_text().splitlines(keepends=True)
    if not lines or not lines[0].startswith("#!"):
        pytest.skip(f"{launcher} is not a #! launcher: no interpreter to copy")
    directory.mkdir(parents=True, exist_ok=True)
    interpreter = directory / host_executable(launcher).name
    shutil.copy2(host_executable(launcher), interpreter)
    victim = directory / "pyoci-victim"
    victim.write_text(f"#!{interpreter} -IS\n" + "".join(lines[1:]))
    victim.chmod(0o755)
    return victim, interpreter


def call_with_fds(
    runner, *args: str, pass_fds: tuple[int, ...] = (), timeout: float = 30
) -> subprocess.CompletedProcess:
    """`runner(*args)` (the conftest's Pyoci) from a caller holding `pass_fds` open, as a shell
    or a shim that leaked them would; stdout/stderr through files, like the runner."""
    return runner(*args, timeout=timeout, pass_fds=tuple(pass_fds))
