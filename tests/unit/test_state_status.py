"""pyoci.state without root: ids, the state root, state.json's shape, the lock, and the status
derivation (gone → stopped; exec.fifo → created; frozen → paused; else running), driven by a
real sleeping child of this test standing in for a container's init and tmp files standing in
for exec.fifo and the freezer."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci import OCI_VERSION, state
from pyoci.errors import PyociError
from pyoci.state import ContainerState, check_id, proc_start_time

SETTINGS = settings(database=None, deadline=None, max_examples=150)


def error_of(func, *args) -> PyociError:
    with pytest.raises(PyociError) as caught:
        func(*args)
    return caught.value


# --- ids ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cid", ["a", "c1", "A-b_c+d.e", "0", "x" * 255, "a..b", "-x", "+"])
def test_valid_ids(cid: str) -> None:
    assert check_id(cid) == cid


@pytest.mark.parametrize("cid", ["", ".", "..", ".hidden", "a/b", "../x", "a b", "é", "a\n",
                                 "a:b", "a*"])  # fmt: skip
def test_invalid_ids(cid: str) -> None:
    assert error_of(check_id, cid).msg == (
        f"container id {cid!r}: invalid (use letters, digits and _+-. , not starting with .)"
    )


def test_too_long_id() -> None:
    assert error_of(check_id, "x" * 256).msg == (
        f"container id {'x' * 256!r}: too long (256 characters; at most 255, "
        "as it names a directory in --root)"
    )


@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300))
def test_an_id_is_accepted_exactly_when_it_is_a_safe_file_name(cid: str) -> None:
    safe = re.fullmatch(r"[A-Za-z0-9_+-][A-Za-z0-9_+.-]{0,254}", cid) is not None
    try:
        check_id(cid)
    except PyociError:
        assert not safe
    else:
        assert safe and "/" not in cid and cid not in (".", "..")


# --- the state root ----------------------------------------------------------------------------
def test_default_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state.posix, "geteuid", lambda: 0)
    assert state.default_root() == "/run/pyoci"
    monkeypatch.setattr(state.posix, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert state.default_root() == "/run/user/1000/pyoci"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert "XDG_RUNTIME_DIR is unset" in error_of(state.default_root).msg


def test_make_root_makes_every_missing_parent_0700(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    old = os.umask(0)
    try:
        state.make_root(str(tmp_path / "a" / "b" / "root"))
    finally:
        os.umask(old)
    for d in ("a", "a/b", "a/b/root"):
        assert (tmp_path / d).stat().st_mode & 0o777 == 0o700, d
    assert tmp_path.stat().st_mode & 0o777 == 0o755  # an existing parent is not touched
    state.make_root(str(tmp_path / "a" / "b" / "root"))  # again: nothing to do


def test_make_root_through_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert error_of(state.make_root, str(tmp_path / "file" / "root")).msg == (
        f"--root: {tmp_path}/file: not a directory"
    )


# --- processes ---------------------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def uptime_ticks() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * CLK_TCK


@pytest.fixture
def sleeper(tmp_path: Path):
    """Start a sleeping child (a stand-in init); kill and reap it at teardown. `start(name)`
    runs it under an executable file name of our choosing (it becomes /proc/PID/stat's comm)."""
    children: list[subprocess.Popen] = []

    def start(name: str = "sleep") -> subprocess.Popen:
        exe = tmp_path / name
        if not exe.exists():
            os.symlink(shutil.which("sleep"), exe)
        child = subprocess.Popen([str(exe), "60"])
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()


def wait_zombie(pid: int) -> None:
    for _ in range(500):
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return
        time.sleep(0.01)
    raise AssertionError(f"{pid} never became a zombie")


def test_proc_start_time_is_field_22_even_with_a_hostile_comm(sleeper) -> None:
    before = uptime_ticks()
    child = sleeper(") R 1 2 (x")  # a naive split would take the wrong field
    start = proc_start_time(child.pid)
    assert isinstance(start, int)
    assert before - CLK_TCK <= start <= uptime_ticks() + CLK_TCK
    assert proc_start_time(child.pid) == start  # stable: it names this process


def test_proc_start_time_of_a_gone_or_dead_process(sleeper) -> None:
    child = sleeper()
    child.kill()
    wait_zombie(child.pid)
    assert proc_start_time(child.pid) is None  # a zombie: the container has stopped
    child.wait()
    assert proc_start_time(child.pid) is None
    assert proc_start_time(2**22 + 7) is None  # above pid_max


# --- status ------------------------------------------------------------------------------------
@pytest.fixture
def container(tmp_path: Path, sleeper):
    """A state dir for id `c1` whose init is a sleeping child."""
    root = tmp_path / "root"
    (root / "c1").mkdir(parents=True)
    child = sleeper()
    data = {"id": "c1", "pid": child.pid, "pidStartTime": proc_start_time(child.pid),
            "bundle": "/b", "rootfs": "/b/rootfs", "created": "2024-01-01T00:00:00.0Z",
            "annotations": {}}  # fmt: skip
    st = ContainerState(str(root), data)
    st.save()
    st.child = child
    return st


def test_running(container: ContainerState) -> None:
    assert container.status() == "running"
    assert container.init_alive()


@pytest.fixture
def waiting(container: ContainerState, sleeper) -> ContainerState:
    """`container` whose init is named as a created one waiting on exec.fifo."""
    child = sleeper(state.WAITING_INIT_COMM.decode())
    container.data["pid"] = child.pid
    container.data["pidStartTime"] = proc_start_time(child.pid)
    return container


def test_created_while_exec_fifo_exists(waiting: ContainerState) -> None:
    os.mkfifo(waiting.fifo_path)
    assert waiting.status() == "created"
    os.unlink(waiting.fifo_path)
    assert waiting.status() == "running"


def test_running_once_the_init_went_on_though_the_fifo_is_left(container) -> None:
    """F3: a start killed after the init took exec.fifo's byte leaves the fifo (and its start
    mark); the init runs the program (its name is not the waiting init's): running. Without
    the mark no start ever opened the fifo: created, whatever the init is called yet (it is
    named only once it waits)."""
    os.mkfifo(container.fifo_path)
    assert container.status() == "created"
    (Path(container.dir) / state.START_MARK).write_bytes(b"")
    assert container.status() == "running"


def test_created_while_a_start_opens_the_fifo(waiting) -> None:
    """The mark is there but the init (named as one waiting) has not gone on: created."""
    os.mkfifo(waiting.fifo_path)
    (Path(waiting.dir) / state.START_MARK).write_bytes(b"")
    assert waiting.status() == "created"


# --- a create not finished (or abandoned: its creator died) -------------------------------------
def creating_state(root: Path) -> ContainerState:
    (root / "c1").mkdir(parents=True)
    st = ContainerState(str(root), state.incomplete("c1"))
    st.save()
    return st


def test_creating_while_its_creator_holds_the_lock(tmp_path: Path) -> None:
    st = creating_state(tmp_path)
    assert st.status() == "stopped"  # no lock file: nobody holds it
    lock = state.Lock(st.dir)
    try:
        assert state.lock_held(st.dir)
        assert st.status() == "creating" and not st.abandoned()
        assert st.oci_state()["status"] == "creating" and st.oci_state()["pid"] == 0
        st.locked = True  # the caller is the one holding it (a delete): the creator is gone
        assert st.status() == "stopped" and st.abandoned()
    finally:
        lock.release()
    st.locked = False
    assert not state.lock_held(st.dir)
    assert st.status() == "stopped" and st.abandoned()


def test_a_dir_without_state_json_loads_as_a_create(tmp_path: Path) -> None:
    """F6: what a create killed before its first write, or a delete killed after its last
    unlink, leaves: `state` can tell it, `delete` can remove it; `list` leaves it out."""
    (tmp_path / "c1").mkdir()
    st = state.load(str(tmp_path), "c1")
    assert st.creating and st.status() == "stopped"
    assert st.oci_state()["pid"] == 0
    assert state.list_ids(str(tmp_path)) == []


@pytest.mark.parametrize(
    "content, status",
    [("FROZEN\n", "paused"), ("FREEZING", "paused"), ("1\n", "paused"), ("THAWED\n", "running"),
     ("0\n", "running"), (None, "running")],
)  # fmt: skip
def test_paused_by_the_freezer_file(container, tmp_path: Path, content, status) -> None:
    freezer = tmp_path / "freezer.state"
    if content is not None:
        freezer.write_text(content)
    container.data["freezerPath"] = str(freezer)
    assert container.status() == status


def test_created_is_said_before_paused(waiting, tmp_path: Path) -> None:
    container = waiting
    (tmp_path / "freezer").write_text("FROZEN")
    container.data["freezerPath"] = str(tmp_path / "freezer")
    os.mkfifo(container.fifo_path)
    assert container.status() == "created"


def test_stopped_when_the_pid_was_reused(container: ContainerState) -> None:
    os.mkfifo(container.fifo_path)
    container.data["pidStartTime"] += 1  # another process now has this pid
    assert container.status() == "stopped"
    assert container.oci_state()["pid"] == 0


@pytest.mark.parametrize("pid", [0, -1])
def test_stopped_without_a_pid(container: ContainerState, pid: int) -> None:
    container.data["pid"] = pid
    assert container.status() == "stopped"


def test_stopped_once_the_init_is_a_zombie_or_gone(container: ContainerState) -> None:
    container.child.kill()
    wait_zombie(container.pid)
    assert container.status() == "stopped"
    container.child.wait()
    assert container.status() == "stopped"


@pytest.mark.parametrize("recorded", ["null", "absent"])
def test_a_dead_init_without_a_recorded_start_time_is_stopped(container, recorded) -> None:
    if recorded == "null":
        container.data["pidStartTime"] = None
    else:
        del container.data["pidStartTime"]
    container.save()
    container.child.kill()
    container.child.wait()
    loaded = state.load(container.root, "c1")  # accepted as a valid state file
    assert loaded.status() == "stopped"


def test_oci_state(container: ContainerState) -> None:
    out = container.oci_state()
    assert out == {"ociVersion": OCI_VERSION, "id": "c1", "pid": container.pid,
                   "status": "running", "bundle": "/b", "rootfs": "/b/rootfs",
                   "created": "2024-01-01T00:00:00.0Z", "owner": ""}  # fmt: skip
    container.data["annotations"] = {"k": "v"}
    assert container.oci_state()["annotations"] == {"k": "v"}


# --- state.json --------------------------------------------------------------------------------
def test_save_then_load_round_trips_and_leaves_no_temp_file(container: ContainerState) -> None:
    container.data["extra"] = [1, "two"]
    container.save()
    assert sorted(os.listdir(container.dir)) == ["state.json"]
    assert (Path(container.dir) / "state.json").stat().st_mode & 0o777 == 0o600
    again = state.load(container.root, "c1")
    assert again.data == container.data and again.dir == container.dir


def test_load_an_unknown_id(tmp_path: Path) -> None:
    assert error_of(state.load, str(tmp_path), "nope").msg == 'container "nope" does not exist'
    assert "invalid" in error_of(state.load, str(tmp_path), "../etc").msg


GOOD = {"id": "c1", "pid": 5, "bundle": "/b", "rootfs": "/r", "created": "t"}


@pytest.mark.parametrize(
    "document, problem",
    [
        ("[]", "not a JSON object"),
        (json.dumps({**GOOD, "id": "c2"}), "its id is 'c2'"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "pid"}), "pid missing or not int"),
        (json.dumps({**GOOD, "pid": True}), "pid missing or not int"),
        (json.dumps({**GOOD, "pid": "5"}), "pid missing or not int"),
        (json.dumps({**GOOD, "bundle": None}), "bundle missing or not str"),
        (json.dumps({**GOOD, "created": 3}), "created missing or not str"),
        (json.dumps({**GOOD, "pidStartTime": "9"}), "pidStartTime not int"),
    ],
)
def test_load_refuses_a_corrupt_state_in_one_line(tmp_path: Path, document, problem) -> None:
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "state.json").write_text(document)
    err = error_of(state.load, str(tmp_path), "c1")
    assert err.msg == f'container "c1": corrupt state file {tmp_path}/c1/state.json: {problem}'
    assert isinstance(err, state.CorruptState)  # what delete --force still removes (F5)


def test_load_refuses_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "state.json").write_text('{"id": ')
    assert error_of(state.load, str(tmp_path), "c1").msg.startswith(
        f'container "c1": corrupt state file {tmp_path}/c1/state.json: '
    )


def test_list_ids(tmp_path: Path) -> None:
    assert state.list_ids(str(tmp_path / "missing")) == []
    for cid in ("b", "a", "c"):
        (tmp_path / cid).mkdir()
    for cid in ("b", "a"):
        (tmp_path / cid / "state.json").write_text("{}")
    (tmp_path / ".seccomp-cache").mkdir()
    assert state.list_ids(str(tmp_path)) == ["a", "b"]


# --- the lock ----------------------------------------------------------------------------------
def test_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    lock = state.Lock(str(tmp_path))
    other = os.open(tmp_path / "lock", os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.release()
        lock.release()  # twice is harmless
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)


def test_lock_notices_the_container_was_deleted_while_waiting(tmp_path, monkeypatch) -> None:
    real_flock = fcntl.flock

    def flock_after_a_delete_and_recreate(fd: int, op: int) -> None:
        real_flock(fd, op)
        os.unlink(tmp_path / "lock")  # the holder deleted the container...
        (tmp_path / "lock").write_text("")  # ...and a new create made the same id again

    monkeypatch.setattr(fcntl, "flock", flock_after_a_delete_and_recreate)
    with pytest.raises(FileNotFoundError) as caught:
        state.Lock(str(tmp_path))
    assert caught.value.errno == errno.ENOENT


def test_lock_existing(tmp_path: Path) -> None:
    assert error_of(state.lock_existing, str(tmp_path), "c1").msg == (
        'container "c1" does not exist'
    )
    (tmp_path / "c1").mkdir()  # no state.json: an abandoned create's (a live one holds it)
    lock = state.lock_existing(str(tmp_path), "c1")
    assert lock.fd >= 0
    lock.release()
    assert lock.fd == -1


def test_the_state_dir_goes_with_state_json_last(container, monkeypatch) -> None:
    d = Path(container.dir)
    for name in ("lock", "exec.fifo", "start"):
        (d / name).write_text("")
    order = []
    real_unlink = os.unlink
    monkeypatch.setattr(
        state.posix, "unlink", lambda p: (order.append(Path(p).name), real_unlink(p))
    )
    state.remove_state_dir(str(d))
    assert order[-1] == "state.json" and len(order) == 4
    assert not d.exists()
