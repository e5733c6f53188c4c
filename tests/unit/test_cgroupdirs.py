"""pyoci.linux.cgroupdirs.remove_if_empty: `delete`'s removal of a stopped container's cgroup
without the manager. On plain directories in a temp dir (rmdir behaves alike: an empty one
goes, one with anything in it stays); whatever is not the usual case must be left to the
manager (False) — a directory in use must fail before anything else of the container goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyoci.linux import cgroupdirs


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A record as Manager.to_state writes it: /pyoci made by us in two v1 hierarchies
    (cpu,cpuacct co-mounted: one directory) and cgroup2."""
    monkeypatch.setattr(cgroupdirs, "is_mount", lambda path: True)
    dirs, made = {}, []
    for hierarchy in ("pids", "cpu,cpuacct", "memory", "unified"):
        parent = tmp_path / hierarchy / "pyoci"
        (parent / "c1").mkdir(parents=True)
        made += [str(parent), str(parent / "c1")]
        for key in hierarchy.split(","):
            if hierarchy != "unified":
                dirs[key] = str(parent / "c1")
    v2 = str(tmp_path / "unified/pyoci/c1")
    return {"dirs": dirs, "v2": v2, "path": "/pyoci/c1", "made": made}


def _left(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_dir())


def test_empty_directories_and_the_parents_made_for_them_go(record, tmp_path) -> None:
    assert cgroupdirs.remove_if_empty(record) is True
    assert _left(tmp_path) == ["cpu,cpuacct", "memory", "pids", "unified"]


def test_a_parent_another_container_uses_stays(record, tmp_path) -> None:
    (tmp_path / "memory/pyoci/other").mkdir()
    assert cgroupdirs.remove_if_empty(record) is True
    assert "memory/pyoci/other" in _left(tmp_path)
    assert not (tmp_path / "memory/pyoci/c1").exists()


def test_a_cgroup_in_use_is_the_managers_and_nothing_goes_before_it(record, tmp_path) -> None:
    """The hierarchy the manager lists processes from (pids) is tried first: a cgroup that
    still holds a process (here: anything in the directory) fails at once."""
    (tmp_path / "pids/pyoci/c1/sub").mkdir()
    before = _left(tmp_path)
    assert cgroupdirs.remove_if_empty(record) is False
    assert _left(tmp_path) == before


def test_a_directory_found_existing_is_not_removed(record, tmp_path) -> None:
    record["made"].remove(str(tmp_path / "memory/pyoci/c1"))
    record["made"].remove(str(tmp_path / "memory/pyoci"))
    assert cgroupdirs.remove_if_empty(record) is True
    assert (tmp_path / "memory/pyoci/c1").is_dir()


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.pop("made"),  # written before pyoci recorded what it made
        lambda r: r.update(rtRaised=["/sys/fs/cgroup/cpu"]),  # budgets to give back
    ],
    ids=["no-made-list", "realtime-budgets"],
)
def test_records_the_manager_must_handle(record, tmp_path, change) -> None:
    change(record)
    before = _left(tmp_path)
    assert cgroupdirs.remove_if_empty(record) is False
    assert _left(tmp_path) == before


def test_a_hidden_cgroup_root_is_the_managers(record, tmp_path, monkeypatch) -> None:
    """Under `ip netns exec` /sys/fs/cgroup is no mount: the manager mounts a view first."""
    monkeypatch.setattr(cgroupdirs, "is_mount", lambda path: False)
    assert cgroupdirs.remove_if_empty(record) is False
    assert (tmp_path / "pids/pyoci/c1").is_dir()


def test_no_cgroup_is_nothing_to_do() -> None:
    assert cgroupdirs.remove_if_empty(None) is True


def test_is_mount() -> None:
    assert cgroupdirs.is_mount("/")
    assert cgroupdirs.is_mount("/proc")
    assert not cgroupdirs.is_mount("/proc/self/fd")
    assert not cgroupdirs.is_mount("/no/such/dir")
