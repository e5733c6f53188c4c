"""Where pyoci imports: never after it entered the container's mount namespace (a lazy import
there would read the *container's* files: design.md), and the runtime's parent process of
`run`/`create` never loads ctypes (its forked stage 1 does, still on the host).

Each import is seen by a Python audit hook installed before pyoci's first line, in a copy of
the launcher: the hook writes (pid, mount namespace, module) for every import of every
process of the operation, the forked stages included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import PURE_V2_VIEW

REPO = Path(__file__).resolve().parents[2]

LAUNCHER = """
import os, sys
sys.path[0:0] = {paths!r}
LOG = {log!r}

def hook(event, args):
    if event == "import":
        line = "%d %s %s\\n" % (os.getpid(), os.readlink("/proc/self/ns/mnt"), args[0])
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(fd, line.encode())
        os.close(fd)

sys.addaudithook(hook)
from pyoci.entry import entry
entry()
"""


def traced(
    pyoci, tmp_path: Path, *args: str, prefix: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess, list]:
    import site

    log = tmp_path / "imports.log"
    log.unlink(missing_ok=True)  # this call's imports only
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER.format(paths=[str(REPO), *site.getsitepackages()], log=str(log)))
    argv = [*prefix, sys.executable, "-I", "-S", str(script), "--root", str(pyoci.root), *args]
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False
    )
    events = [line.split(" ", 2) for line in log.read_text().splitlines()]
    return result, [(int(pid), ns, module) for pid, ns, module in events]


@pytest.mark.parametrize("view", ["host", "pure-v2"])
def test_run_imports_only_on_the_host_and_ctypes_only_in_stage_1(
    pyoci, bundle, new_id, tmp_path, view
):
    """Also on a pure cgroup-v2 host, where the device rules become a BPF program: the parent
    compiles it, stage 1 loads it."""
    prefix = PURE_V2_VIEW if view == "pure-v2" else ()
    b = bundle("true", patch=lambda c: c["linux"].update(resources={"devices": []}))
    result, events = traced(pyoci, tmp_path, "run", "--bundle", str(b.path), new_id(),
                            prefix=prefix)  # fmt: skip
    assert result.returncode == 0, result.stderr
    parent, host_ns = events[0][0], events[0][1]  # the view's own namespace is the host's here
    if not prefix:
        assert host_ns == os.readlink("/proc/self/ns/mnt")
    assert any(module == "pyoci.plan" for pid, _, module in events if pid == parent)
    after_entering = [(pid, module) for pid, ns, module in events if ns != host_ns]
    assert not after_entering, f"imports inside the container's mount namespace: {after_entering}"
    ctypes_by = {pid for pid, _, module in events if module == "ctypes"}
    assert ctypes_by, "stage 1 loads ctypes (the hook must see forked children)"
    assert parent not in ctypes_by, "the parent of `run` loaded ctypes"
    pyoci.assert_nothing_left()


def test_exec_imports_only_on_the_host(pyoci, bundle, new_id, tmp_path):
    host_ns = os.readlink("/proc/self/ns/mnt")
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    assert pyoci("start", cid).returncode == 0
    result, events = traced(pyoci, tmp_path, "exec", cid, "true")
    assert result.returncode == 0, result.stderr
    parent = events[0][0]
    assert any(module == "pyoci.execute" for pid, _, module in events if pid == parent)
    after_entering = [(pid, module) for pid, ns, module in events if ns != host_ns]
    assert not after_entering, f"imports inside the container's mount namespace: {after_entering}"
    by_children = [(pid, module) for pid, _, module in events if pid != parent]
    assert not by_children, f"exec's stages import nothing (the parent did): {by_children}"
    assert pyoci("delete", "--force", cid).returncode == 0


PROBE = """
import sys
sys.path.insert(0, {repo!r})
from pyoci.entry import main
code = main({argv!r})
print(code, sorted(m for m in ("os", "__future__", "ctypes") if m in sys.modules))
"""


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete", "delete-force"])
def test_short_commands_load_no_os(pyoci, bundle, new_id, command):
    """The short commands on a real container (cgroups on this host included) load neither
    `os` nor `__future__` (~1.2 ms of a budget of 1 ms above the interpreter's start,
    issue 19) nor ctypes: what they need is in `posix`."""
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    argv = {"state": ["state", cid], "start": ["start", cid], "kill": ["kill", cid, "KILL"],
            "delete": ["delete", cid], "delete-force": ["delete", "--force", cid]}  # fmt: skip
    argv = argv[command]
    if command == "delete":
        assert pyoci("kill", cid, "KILL").returncode == 0
        for _ in range(200):
            if json.loads(pyoci("state", cid).stdout)["status"] == "stopped":
                break
            time.sleep(0.01)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         PROBE.format(repo=str(REPO), argv=["--root", str(pyoci.root), *argv])],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert out.stdout.strip().endswith("0 []"), out.stdout + out.stderr
    pyoci("delete", "--force", cid)
