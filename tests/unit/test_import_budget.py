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
# ... nor `os` (~1 ms: its environ mapping loads _collections_abc) or `__future__` (a file to
# find and load): `posix` is what os re-exports (issue 19, goal 3: within 1 ms of the floor).
NO_OS = ("state", "start", "kill", "delete")

PROBE = """
import sys
sys.path[0:0] = {paths!r}
from pyoci.entry import main
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
    if argv[0] in NO_OS:
        assert not (loaded & {"os", "__future__"}), f"{argv[0]} imported os or __future__"


def test_help_still_uses_click(tmp_path: Path) -> None:
    assert "click" in _modules(["--help"], tmp_path)


def test_python_m_pyoci_loads_the_entry_once(tmp_path: Path) -> None:
    """`python -m pyoci` runs __main__ as `__main__`; nothing imports `pyoci.__main__` (the
    old cycle with pyoci.cli loaded it a second time under its own name)."""
    probe = (
        "import runpy, sys; sys.argv = ['pyoci', '--version']\n"
        "try:\n    runpy.run_module('pyoci', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
    )
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); "
    out = subprocess.run(
        [sys.executable, "-I", "-c", code + "import posix; posix._exit = lambda c: None\n" + probe
         + "print('loaded', 'pyoci.__main__' in sys.modules)"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert "pyoci version" in out.stdout, out.stderr
    assert "loaded False" in out.stdout, out.stdout


def test_the_parsers_make_no_cycle() -> None:
    """pyoci.entry (fast parser) hands malformed argv to pyoci.cli (click); cli never imports
    entry back: both reach the handlers through pyoci.commands.run_handler."""
    for name, other in (("cli", "entry"), ("commands", "entry"), ("commands", "cli")):
        tree = ast.parse((REPO / "pyoci" / f"{name}.py").read_text())
        imported = {
            alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        for mod in imported:
            assert f"pyoci.{other}" not in mod and "__main__" not in mod, (name, mod)
