"""The hot commands must not import what they do not use (issue 9): each import is paid on
every container operation. Checked with sys.modules in a fresh `python -I -S` interpreter,
the way the launcher starts pyoci."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Heavy or needless for lifecycle commands: click (~25 ms), jsonschema (~120 ms), pyroute2
# (~220 ms); re/enum/json (~5 ms: _json, _signal, _socket are used instead); collections
# (~2 ms, by way of collections.abc for a type annotation once).
FORBIDDEN = {
    "click",
    "jsonschema",
    "pyroute2",
    "re",
    "enum",
    "json",
    "subprocess",
    "typing",
    "collections",
}
# state, kill, start: no ctypes either (os.pidfd_open, _signal.pidfd_send_signal suffice).
NO_CTYPES = ("state", "start", "kill", "list")

PROBE = """
import sys
sys.path[0:0] = {paths!r}
from pyoci.__main__ import main
code = main({argv!r})
print(repr(sorted(sys.modules)), file=sys.stderr)
"""


def _modules(argv: list[str], tmp_path: Path) -> set[str]:
    import site

    paths = [str(REPO), *site.getsitepackages()]
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE.format(paths=paths, argv=argv)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    last = out.stderr.strip().splitlines()[-1]
    loaded = set(ast.literal_eval(last))
    return {m.split(".")[0] for m in loaded}


@pytest.mark.parametrize(
    "argv",
    [
        ["state", "nosuch"],
        ["start", "nosuch"],
        ["kill", "nosuch", "KILL"],
        ["delete", "--force", "nosuch"],
        ["list", "--format", "json"],
        ["create", "--bundle", "nobundle", "c1"],
        ["run", "--bundle", "nobundle", "c1"],
    ],
)
def test_hot_commands_import_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    loaded = _modules(["--root", str(tmp_path / "root"), *argv], tmp_path)
    assert not (loaded & FORBIDDEN), f"{argv[0]} imported {sorted(loaded & FORBIDDEN)}"
    if argv[0] in NO_CTYPES:
        assert "ctypes" not in loaded, f"{argv[0]} imported ctypes"


def test_help_still_uses_click(tmp_path: Path) -> None:
    assert "click" in _modules(["--help"], tmp_path)
