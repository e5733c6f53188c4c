"""Where pyoci.linux.cgroups puts a container, without a cgroup filesystem: systemd's
`slice:prefix:name` layout, `exec --cgroup` values, placement under fake hierarchy mount points
(tmp directories stand in for /sys/fs/cgroup/*), and the bookkeeping that decides which
directories are pyoci's to remove. Whether the kernel agrees is tests/integration's job."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.errors import PyociError
from pyoci.linux import cgroups
from pyoci.linux.cgroups import Manager, expand_systemd_path, parse_sub_cgroups

SETTINGS = settings(database=None, deadline=None, max_examples=100)


def error_of(func, *args) -> str:
    with pytest.raises(PyociError) as caught:
        func(*args)
    return caught.value.msg


# --- systemd's slice:prefix:name ---------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        ("system.slice:docker:abc", "/system.slice/docker-abc.scope"),
        ("user.slice:libpod:c1", "/user.slice/libpod-c1.scope"),
        ("machine-qemu.slice:p:n", "/machine.slice/machine-qemu.slice/p-n.scope"),
        ("a-b-c.slice:p:n", "/a.slice/a-b.slice/a-b-c.slice/p-n.scope"),
        ("-.slice:p:n", "/p-n.scope"),  # the root slice
        (":p:n", "/system.slice/p-n.scope"),  # no slice: system.slice, as runc
        ("system.slice:p:", "/system.slice/p-cid.scope"),  # no name: the container id
        ("kubepods.slice:cri:pod1.slice", "/kubepods.slice/pod1.slice"),  # a slice as the unit
    ],
)
def test_expand_systemd_path(value: str, expected: str) -> None:
    assert expand_systemd_path(value, "cid") == expected


@pytest.mark.parametrize("value", ["system.slice", "a:b", "a:b:c:d", "", "/pyoci/x"])
def test_systemd_path_needs_three_fields(value: str) -> None:
    assert error_of(expand_systemd_path, value, "cid") == (
        f"linux.cgroupsPath: {value!r}: with --systemd-cgroup it must be slice:prefix:name"
    )


@pytest.mark.parametrize("slice_name", ["system", "system.scope", "a/b.slice", "/x.slice"])
def test_systemd_slice_must_be_a_slice_name(slice_name: str) -> None:
    assert error_of(expand_systemd_path, f"{slice_name}:p:n", "cid") == (
        f"linux.cgroupsPath: {slice_name!r} is not a systemd slice name"
    )


_COMPONENT = st.text(alphabet="abcxyz019_.", min_size=1, max_size=6)


@SETTINGS
@given(
    components=st.lists(_COMPONENT, min_size=1, max_size=5),
    prefix=st.text(alphabet="abcdefgh-_", min_size=1, max_size=8),
    name=st.text(alphabet="abcdef0123456789", min_size=1, max_size=16),
)
def test_every_slice_level_is_a_directory_named_by_its_whole_prefix(components, prefix, name):
    """systemd.slice(5): `a-b-c.slice` lives in `a-b.slice`, which lives in `a.slice`."""
    path = expand_systemd_path(f"{'-'.join(components)}.slice:{prefix}:{name}", "cid")
    assert path.startswith("/")
    *dirs, unit = path[1:].split("/")
    assert dirs == [f"{'-'.join(components[: k + 1])}.slice" for k in range(len(components))]
    assert unit == f"{prefix}-{name}.scope"


@pytest.mark.parametrize("slice_name", ["a--b.slice", "-a.slice", "a-.slice", ".slice"])
def test_slice_names_with_empty_components_are_refused(slice_name: str) -> None:
    assert error_of(expand_systemd_path, f"{slice_name}:p:n", "cid") == (
        f"linux.cgroupsPath: {slice_name!r} is not a systemd slice name"
    )


# --- exec --cgroup -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, expected",
    [
        (["sub"], {"": "sub"}),
        (["/a/b/"], {"": "/a/b/"}),
        (["cpu:x"], {"cpu": "x"}),
        (["cpu,cpuacct:x", "memory:y"], {"cpu": "x", "cpuacct": "x", "memory": "y"}),
        ([], {}),
    ],
)
def test_parse_sub_cgroups(values: list[str], expected: dict) -> None:
    assert parse_sub_cgroups(values) == expected


@pytest.mark.parametrize(
    "values, message",
    [
        (["a:b:c"], "--cgroup: 'a:b:c': expected [CONTROLLER[,CONTROLLER...]:]PATH"),
        (["x", "cpu:y"], "--cgroup: 'x': needs a CONTROLLER: prefix beside others"),
        ([":x"], "--cgroup: ':x': empty controller name"),
        (["cpu,:x"], "--cgroup: 'cpu,:x': empty controller name"),
        (["cpu:x", "cpu,memory:y"], "--cgroup: controller 'cpu' given more than once"),
        (["../x"], "--cgroup: '../x': must name a cgroup below the container's (no '..')"),
        (["cpu:a/../../b"], "--cgroup: 'a/../../b': must name a cgroup below the container's "
         "(no '..')"),
        (["/"], "--cgroup: '/': must name a cgroup below the container's (no '..')"),
        ([""], "--cgroup: '': must name a cgroup below the container's (no '..')"),
    ],
)  # fmt: skip
def test_parse_sub_cgroups_refusals(values: list[str], message: str) -> None:
    assert error_of(parse_sub_cgroups, values) == message


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "c.d"]), min_size=1, max_size=6))
def test_sub_cgroup_paths_never_climb(parts: list[str]) -> None:
    value = "/".join(parts)
    try:
        result = parse_sub_cgroups([value])
    except PyociError:
        assert ".." in parts or not value.strip("/")
    else:
        assert ".." not in parts and result == {"": value}


# --- placement under fake hierarchies ----------------------------------------------------------
@pytest.fixture
def hierarchies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`use(v1={controller: subdir}, v2=bool, own={key: path})`: tmp dirs as mount points."""

    def use(v1: dict[str, str] | None = None, v2: bool = True, own: dict | None = None):
        v1_points = {c: str(tmp_path / sub) for c, sub in (v1 or {}).items()}
        v2_point = str(tmp_path / "unified") if v2 else None
        for point in [*v1_points.values(), v2_point]:
            if point:
                os.makedirs(point, exist_ok=True)
        monkeypatch.setattr(cgroups, "_MOUNTS", (v1_points, v2_point))
        monkeypatch.setattr(cgroups, "_own_paths", lambda: dict(own or {"": "/"}))
        return v1_points, v2_point

    return use


def test_default_placement_is_pyoci_slash_id(hierarchies) -> None:
    _, v2 = hierarchies()
    m = Manager.for_container(None, "c1", systemd=False)
    assert (m.v2_dir, m.dirs, m.rel_path) == (f"{v2}/pyoci/c1", {}, "/pyoci/c1")


def test_systemd_placement_without_a_path(hierarchies) -> None:
    _, v2 = hierarchies()
    m = Manager.for_container(None, "c1", systemd=True)
    assert m.v2_dir == f"{v2}/system.slice/pyoci-c1.scope"
    m = Manager.for_container("user.slice:libpod:", "c1", systemd=True)
    assert m.v2_dir == f"{v2}/user.slice/libpod-c1.scope"


def test_absolute_path_is_from_each_hierarchy_root(hierarchies) -> None:
    v1, v2 = hierarchies(v1={"cpu": "cpu", "cpuacct": "cpu", "memory": "memory"})
    m = Manager.for_container("/a/b/", "c1", systemd=False)
    assert m.dirs == {"cpu": f"{v1['cpu']}/a/b", "cpuacct": f"{v1['cpu']}/a/b",
                      "memory": f"{v1['memory']}/a/b"}  # fmt: skip
    assert m.v2_dir == f"{v2}/a/b"
    assert m.v1_dirs() == sorted({f"{v1['cpu']}/a/b", f"{v1['memory']}/a/b"})
    assert m.all_dirs() == [*m.v1_dirs(), f"{v2}/a/b"]


def test_relative_path_is_below_the_runtimes_own_cgroup_in_each_hierarchy(hierarchies) -> None:
    v1, v2 = hierarchies(
        v1={"memory": "memory", "pids": "pids"},
        own={"memory": "/m/me", "": "/user.slice/me"},  # pids: no entry, so its root
    )
    m = Manager.for_container("x/y", "c1", systemd=False)
    assert m.dirs == {"memory": f"{v1['memory']}/m/me/x/y", "pids": f"{v1['pids']}/x/y"}
    assert m.v2_dir == f"{v2}/user.slice/me/x/y"
    assert m.rel_path == "x/y"


@pytest.mark.parametrize(
    "path, systemd",
    [("/a/../b", False), ("../escape", False), ("/..", False), ("system.slice:p:../../x", True)],
)
def test_dot_dot_in_the_cgroup_path_is_refused(hierarchies, path: str, systemd: bool) -> None:
    hierarchies()
    assert error_of(Manager.for_container, path, "c1", systemd) == (
        f"linux.cgroupsPath: {path!r} must not contain '..'"
    )


@SETTINGS
@given(parts=st.lists(st.sampled_from(["a", "b", "..", ".", "", "x.y"]), max_size=6))
def test_placement_stays_below_the_hierarchy_root(tmp_path_factory, parts) -> None:
    """Whatever cgroupsPath says, the directory is the mount point or below it."""
    top = str(tmp_path_factory.getbasetemp() / "unified")
    saved = cgroups._MOUNTS, cgroups._own_paths
    cgroups._MOUNTS, cgroups._own_paths = ({}, top), (lambda: {"": "/own"})
    try:
        path = "/".join(parts)
        try:
            m = Manager.for_container(path or None, "c1", systemd=False)
        except PyociError:
            assert ".." in path.split("/")
            return
        assert m.v2_dir == top or m.v2_dir.startswith(top + "/")
        assert ".." not in m.v2_dir.split("/")
    finally:
        cgroups._MOUNTS, cgroups._own_paths = saved


# --- exec into sub-cgroups ---------------------------------------------------------------------
def test_sub_cgroup_dirs_on_cgroup2(tmp_path: Path) -> None:
    (tmp_path / "c" / "sub").mkdir(parents=True)
    m = Manager({}, str(tmp_path / "c"), "/c")
    assert m.sub_cgroup_dirs({"": "/sub/"}) == ([], str(tmp_path / "c" / "sub"))
    assert m.sub_cgroup_dirs({}) == ([], str(tmp_path / "c"))
    assert error_of(m.sub_cgroup_dirs, {"": "nope"}) == (
        f"--cgroup: {tmp_path}/c/nope: no such cgroup (make it first)"
    )
    assert error_of(m.sub_cgroup_dirs, {"cpu": "sub"}) == (
        "--cgroup: unknown controller 'cpu' (v1 controllers: none: cgroup v2 takes a plain PATH)"
    )


def test_sub_cgroup_dirs_on_v1_with_co_mounted_controllers(tmp_path: Path) -> None:
    cpu, mem = tmp_path / "cpu" / "c", tmp_path / "memory" / "c"
    for d in (cpu / "s", mem / "s", cpu / "t"):
        d.mkdir(parents=True)
    m = Manager({"cpu": str(cpu), "cpuacct": str(cpu), "memory": str(mem)}, None, "/c")
    assert m.sub_cgroup_dirs({"memory": "s"}) == (sorted([str(cpu), str(mem / "s")]), None)
    assert m.sub_cgroup_dirs({"": "s"}) == (sorted([str(cpu / "s"), str(mem / "s")]), None)
    assert m.sub_cgroup_dirs({"cpu": "s", "cpuacct": "s"})[0] == sorted([str(cpu / "s"), str(mem)])
    assert error_of(m.sub_cgroup_dirs, {"cpu": "s", "cpuacct": "t"}) == (
        "--cgroup: 'cpuacct' shares its hierarchy with another controller given a different path"
    )
    assert error_of(m.sub_cgroup_dirs, {"pids": "s"}) == (
        "--cgroup: unknown controller 'pids' (v1 controllers: cpu, cpuacct, memory)"
    )


# --- state round trip and ownership ------------------------------------------------------------
def test_manager_state_round_trip() -> None:
    m = Manager({"cpu": "/h/cpu/c"}, "/h/u/c", "/c", made=["/h/u/c"])
    m.rt_raised = ["/h/cpu"]
    again = Manager.from_state({"cgroup": m.to_state()})
    assert (again.dirs, again.v2_dir, again.rel_path, again.made, again.rt_raised) == (
        m.dirs, m.v2_dir, m.rel_path, m.made, m.rt_raised)  # fmt: skip
    assert "rtRaised" not in Manager({}, None, "").to_state()


def test_manager_from_an_old_state_owns_all_its_dirs() -> None:
    old = {"cgroup": {"dirs": {"cpu": "/h/cpu/c"}, "v2": "/h/u/c", "path": "/c"}}
    assert Manager.from_state(old).made == ["/h/cpu/c", "/h/u/c"]
    assert Manager.from_state({"cgroup": None}) is None
    assert Manager.from_state({}) is None


def test_makedirs_records_only_what_it_made_outermost_first(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    made: list[str] = []
    cgroups._makedirs(str(tmp_path / "a" / "b" / "c"), made)
    assert made == [str(tmp_path / "a" / "b"), str(tmp_path / "a" / "b" / "c")]
    cgroups._makedirs(str(tmp_path / "a" / "b" / "c"), made)  # all there now: nothing new
    assert len(made) == 2


def test_destroy_removes_only_what_it_made(tmp_path: Path) -> None:
    parent, own, sibling = tmp_path / "pyoci", tmp_path / "pyoci" / "c1", tmp_path / "pyoci" / "c2"
    reused = tmp_path / "reused"
    for d in (own / "child", sibling, reused):
        d.mkdir(parents=True)
    Manager({}, str(own), "/pyoci/c1", made=[str(parent), str(own)]).destroy()
    assert not own.exists()  # its own, with what was made below it
    assert parent.exists() and sibling.exists()  # the parent still holds another container
    Manager({}, str(reused), "/reused", made=[]).destroy()
    assert reused.exists()  # found existing: someone else's


def test_destroy_refuses_a_cgroup_with_processes(tmp_path: Path) -> None:
    own = tmp_path / "c1"
    own.mkdir()
    (own / "cgroup.procs").write_text("4242\n")  # a real cgroup's rmdir fails EBUSY here
    message = error_of(Manager({}, str(own), "/c1", made=[str(own)]).destroy)
    assert message == f"removing cgroup {own}: processes [4242] are still in it"


def test_own_ancestors_stop_at_the_first_not_made_by_pyoci(hierarchies) -> None:
    _, v2 = hierarchies()
    own = f"{v2}/pyoci/a/b/c"
    m = Manager({}, own, "/pyoci/a/b/c", made=[f"{v2}/pyoci/a/b", own])
    assert m.own_ancestors(own) == [f"{v2}/pyoci/a/b"]  # pyoci/a: someone else's
    m.made.insert(0, f"{v2}/pyoci/a")
    assert m.own_ancestors(own) == [f"{v2}/pyoci/a/b", f"{v2}/pyoci/a", f"{v2}/pyoci"]
    assert m.own_ancestors("/elsewhere/x") == []


# --- reading cgroup files ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, content, frozen",
    [
        ("freezer.state", "FROZEN\n", True),
        ("freezer.state", "FREEZING\n", True),
        ("freezer.state", "THAWED\n", False),
        ("cgroup.freeze", "1\n", True),
        ("cgroup.freeze", "0\n", False),
        ("cgroup.events", "populated 1\nfrozen 1\n", True),
        ("cgroup.events", "populated 1\nfrozen 0\n", False),
    ],
)
def test_frozen_state(tmp_path: Path, name: str, content: str, frozen: bool) -> None:
    (tmp_path / name).write_text(content)
    expected = f"{tmp_path / name}: {content.splitlines()[-1]}" if frozen else None
    assert cgroups._frozen_state(str(tmp_path)) == expected


def test_no_freezer_files_is_not_frozen(tmp_path: Path) -> None:
    assert cgroups._frozen_state(str(tmp_path)) is None


def test_procs_below_walks_every_sub_cgroup(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "cgroup.procs").write_text("")
    (tmp_path / "a" / "cgroup.procs").write_text("10\n11\n")
    (tmp_path / "a" / "b" / "cgroup.procs").write_text("12\n")
    assert sorted(cgroups._procs_below(str(tmp_path))) == [10, 11, 12]
    assert len(cgroups._procs_below(str(tmp_path), first_only=True)) in (1, 2)
    assert cgroups._procs_below(str(tmp_path / "gone")) == []


def test_fill_cpuset_parents_copies_from_the_nearest_non_empty_ancestor(tmp_path: Path) -> None:
    top = tmp_path / "cpuset"
    leaf = top / "a" / "b"
    leaf.mkdir(parents=True)
    for d, cpus, mems in ((top, "0-3", "0"), (top / "a", "", ""), (leaf, "", "")):
        (d / "cpuset.cpus").write_text(cpus + "\n")
        (d / "cpuset.mems").write_text(mems + "\n")
    (top / "a" / "cpuset.mems").write_text("0\n")
    (top / "cpuset.mems").write_text("0-1\n")  # a non-empty child is not overwritten
    cgroups.fill_cpuset_parents(str(leaf))
    assert (leaf / "cpuset.cpus").read_text() == "0-3"
    assert (top / "a" / "cpuset.cpus").read_text() == "0-3"
    assert (top / "a" / "cpuset.mems").read_text() == "0\n"
    assert (leaf / "cpuset.mems").read_text() == "0"


def _own_cgroup_line() -> tuple[str, str]:
    """(key, path) of a non-root cgroup of this process, where Manager._source looks."""
    with open("/proc/self/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for wanted in ("pids", "freezer", "memory", "cpu", ""):
        for _, controllers, path in lines:
            keys = controllers.split(",") if controllers else [""]
            if wanted in keys and path != "/":
                return wanted, path
    pytest.skip("this process sits at the root of every hierarchy")


def test_holds_matches_whole_path_components(monkeypatch: pytest.MonkeyPatch) -> None:
    key, path = _own_cgroup_line()
    point = "/fake/hierarchy"
    monkeypatch.setattr(
        cgroups, "_MOUNTS", ({key: point} if key else {}, point if not key else None)
    )

    def manager(rel: str) -> Manager:
        directory = point + rel
        return Manager({key: directory}, None, rel) if key else Manager({}, directory, rel)

    assert manager(path).holds(os.getpid())
    assert manager(os.path.dirname(path)).holds(os.getpid()) or os.path.dirname(path) == "/"
    assert not manager(path + "/below").holds(os.getpid())
    assert not manager(path[:-1]).holds(os.getpid())  # /a/bc is not below /a/b
    assert not manager(path).holds(2**22 + 1)  # no such pid


def test_readmounts_line_format_is_what_mounts_parses() -> None:
    """The real host's mountinfo: every cgroup point found is an absolute path."""
    v1, v2 = cgroups._readmounts()
    for point in [*v1.values(), *([v2] if v2 else [])]:
        assert re.fullmatch(r"/\S*", point)
    assert not set(v1) & set(cgroups._NOT_CONTROLLERS)
