"""`InitPlan` owns the fds it opens for the children (console, namespaces, idmapped trees,
the sealed helper): a plan that fails part-way closes every one it opened, and `close()`
releases a complete plan's. Built in this process, as a program using the library would (a
leak there outlives the failed create), and counted in /proc/self/fd."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from pyoci import spec as speclib
from pyoci.errors import PyociError
from pyoci.options import CreateOptions
from pyoci.plan import InitPlan

ONE_TO_ONE = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def open_fds() -> list[int]:
    """This process's fds, without the one the listing itself used (closed by now)."""
    listed = [int(name) for name in os.listdir("/proc/self/fd")]
    return sorted(fd for fd in listed if _is_open(fd))


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def plan_for(b, tmp_path: Path, **options) -> InitPlan:
    state_dir = tmp_path / "state" / "c1"
    state_dir.mkdir(parents=True, exist_ok=True)
    spec = speclib.load(str(b.path))
    return InitPlan(spec, str(state_dir), CreateOptions(bundle=str(b.path), **options))


def idmapped(source: Path, destination: str) -> dict:
    return {
        "destination": destination,
        "type": "bind",
        "source": str(source),
        "options": ["bind", "idmap"],
        "uidMappings": ONE_TO_ONE,
        "gidMappings": ONE_TO_ONE,
    }


def terminal_uts_and_mounts(*mounts: dict):
    """A config patch: a terminal, the uts namespace joined by path, and `mounts` added: one
    fd each for the console, the namespace and every idmapped tree."""

    def patch(config: dict) -> None:
        config["process"]["terminal"] = True
        config["linux"]["namespaces"] = [
            n for n in config["linux"]["namespaces"] if n["type"] != "uts"
        ] + [{"type": "uts", "path": "/proc/self/ns/uts"}]
        config["mounts"] += list(mounts)

    return patch


@pytest.fixture
def console_socket(tmp_path: Path):
    """A listening unix socket: the plan's connect to it succeeds (and opens an fd)."""
    path = tmp_path / "console.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    yield str(path)
    server.close()


def test_a_plan_that_fails_part_way_closes_the_fds_it_opened(bundle, tmp_path, console_socket):
    """Console connected, a uts namespace path opened, one idmapped tree made: then the second
    idmapped mount's source is missing. Every fd of those steps is closed again."""
    source = tmp_path / "src"
    source.mkdir()
    patch = terminal_uts_and_mounts(
        idmapped(source, "/mnt/a"), idmapped(tmp_path / "missing", "/mnt/b")
    )
    b = bundle("true", patch=patch)
    before = open_fds()
    with pytest.raises(PyociError) as caught:
        plan_for(b, tmp_path, console_socket=console_socket)
    if "not supported" in caught.value.msg and "/mnt/a" in caught.value.msg:
        pytest.skip(f"idmapped mounts unavailable here: {caught.value.msg}")
    assert "missing" in caught.value.msg, caught.value.msg  # the step that was meant to fail
    assert open_fds() == before


def test_a_complete_plan_holds_its_fds_until_close(bundle, tmp_path, console_socket):
    """The same plan without the failing mount: it holds the fds the children need (so the
    test above counted real ones), and close() gives every one back."""
    source = tmp_path / "src"
    source.mkdir()
    b = bundle("true", patch=terminal_uts_and_mounts(idmapped(source, "/mnt/a")))
    before = open_fds()
    try:
        plan = plan_for(b, tmp_path, console_socket=console_socket)
    except PyociError as err:
        if "not supported" in err.msg:
            pytest.skip(f"idmapped mounts unavailable here: {err.msg}")
        raise
    held = set(open_fds()) - set(before)
    # console, the uts namespace, the idmapped tree, the sealed helper
    assert plan.keep_fds() == held
    assert len(held) == 4, held
    plan.close()
    plan.close()  # idempotent
    assert open_fds() == before


def test_a_refused_option_opens_nothing(bundle, tmp_path, console_socket):
    """--console-socket without process.terminal: refused before any step opens an fd."""
    b = bundle("true")
    before = open_fds()
    with pytest.raises(PyociError, match="--console-socket: process.terminal is false"):
        plan_for(b, tmp_path, console_socket=console_socket)
    assert open_fds() == before
