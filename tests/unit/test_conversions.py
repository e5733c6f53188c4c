"""pyoci.linux.resources without a cgroup filesystem: the v1 → v2 conversions (shares → weight,
blkio weight → io.weight, swap, cpu.max), the realtime budget arithmetic, device rule checks,
and `apply` writing into tmp directories that stand in for a container's cgroups (the files
exist beforehand, as the kernel's do; a write never creates one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.errors import PyociError
from pyoci.linux import resources
from pyoci.linux.cgroups import Manager
from pyoci.linux.resources import (
    _rt_least_runtime,
    _rt_ratio,
    blkio_weight_to_io_weight,
    shares_to_weight,
)
from pyoci.spec import Device

SETTINGS = settings(database=None, deadline=None, max_examples=150)


# --- shares → weight ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shares, weight", [(0, 0), (2, 1), (1024, 39), (512, 20), (262144, 10000), (131073, 5000)]
)
def test_shares_to_weight_points(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


@SETTINGS
@given(a=st.integers(2, 262144), b=st.integers(2, 262144))
def test_shares_to_weight_is_monotonic_onto_the_weight_range(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert 1 <= shares_to_weight(lo) <= shares_to_weight(hi) <= 10000


@SETTINGS
@given(st.integers(2, 262144))
def test_shares_to_weight_is_runcs_linear_map(shares: int) -> None:
    # runc: 1 + (shares-2)*9999/262142 in unsigned integer arithmetic (no negatives here).
    exact = 1 + (shares - 2) * 9999 / 262142
    assert shares_to_weight(shares) == int(exact) or abs(shares_to_weight(shares) - exact) < 1


@pytest.mark.parametrize("shares", [1, 300000, 10**6])
def test_any_positive_shares_give_a_valid_weight(shares: int) -> None:
    assert 1 <= shares_to_weight(shares) <= 10000


@pytest.mark.parametrize("weight, io", [(0, 0), (10, 1), (1000, 10000), (500, 4950), (100, 910)])
def test_blkio_weight_to_io_weight_points(weight: int, io: int) -> None:
    assert blkio_weight_to_io_weight(weight) == io


@SETTINGS
@given(a=st.integers(10, 1000), b=st.integers(10, 1000))
def test_blkio_weight_to_io_weight_is_monotonic_onto_the_range(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert 1 <= blkio_weight_to_io_weight(lo) <= blkio_weight_to_io_weight(hi) <= 10000


# --- realtime budget arithmetic ------------------------------------------------------------------
def test_rt_ratio_special_cases() -> None:
    assert _rt_ratio(-1, 1_000_000) == 1 << 20  # RUNTIME_INF: the whole period
    assert _rt_ratio(500, 0) == 0
    assert _rt_ratio(950_000, 1_000_000) == (950_000 << 20) // 1_000_000
    assert _rt_ratio(1_000_000, 1_000_000) == 1 << 20


@SETTINGS
@given(share=st.integers(0, 1 << 21), period=st.integers(1, 10**7))
def test_rt_least_runtime_is_the_least_runtime_reaching_the_share(share: int, period: int):
    runtime = _rt_least_runtime(share, period)
    assert _rt_ratio(runtime, period) >= share
    assert runtime == 0 or _rt_ratio(runtime - 1, period) < share


# --- device rules ------------------------------------------------------------------------------
def test_config_device_rules_allow_what_linux_devices_creates() -> None:
    devices = [
        Device({"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}, "d0"),
        Device({"path": "/dev/u", "type": "u", "major": 1, "minor": 2}, "d1"),
        Device({"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0}, "d2"),
        Device({"path": "/dev/fifo", "type": "p"}, "d3"),
    ]
    assert resources.config_device_rules(devices) == [
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 2, "access": "rwm"},
        {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "rwm"},
    ]


@pytest.mark.parametrize(
    "rules, message",
    [
        ({}, "f: must be an array"),
        ([1], "f[0]: must be an object"),
        ([{"type": "x"}], "f[0].type: must be a, b or c, not 'x'"),
        ([{"type": "c", "major": "1"}], "f[0].major: must be a device number or -1, not '1'"),
        ([{"type": "c", "minor": True}], "f[0].minor: must be a device number or -1, not True"),
        ([{"type": "c", "major": 2**32}],
         "f[0].major: must be a device number or -1, not 4294967296"),
        ([{"type": "c", "major": -2}], "f[0].major: must be a device number or -1, not -2"),
        ([{}, {"access": "rwx"}], "f[1].access: must be letters of rwm, not 'rwx'"),
    ],
)  # fmt: skip
def test_device_rule_refusals(rules, message: str) -> None:
    with pytest.raises(PyociError) as caught:
        resources._check_device_rules(rules, "f")
    assert caught.value.msg == message


def test_device_rules_accept_wildcards() -> None:
    resources._check_device_rules(
        [{"type": "a"}, {"type": "c", "major": -1, "minor": None, "access": "m"}, {}], "f"
    )


# --- apply, against fake cgroup directories ----------------------------------------------------
V2_FILES = ("cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle", "memory.max", "memory.low",
            "memory.swap.max", "memory.high", "pids.max", "io.weight", "io.max",
            "hugetlb.2MB.max", "cpuset.cpus", "cpuset.mems")  # fmt: skip
V1_FILES = {
    "cpu": ("cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"),
    "memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness",
               "memory.soft_limit_in_bytes"),
    "devices": ("devices.allow", "devices.deny"),
    "pids": ("pids.max",),
}  # fmt: skip


class Recorder:
    """The writes `apply` made, in order, as (field, file name, value)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[tuple[str, str, str]] = []
        self.warnings: list[str] = []
        original = resources.Writer.write

        def write(writer, field, directory, name, value):
            original(writer, field, directory, name, value)
            self.writes.append((field, name, str(value)))

        monkeypatch.setattr(resources.Writer, "write", write)

    def files(self) -> dict[str, str]:
        return {name: value for _, name, value in self.writes}


@pytest.fixture
def v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A cgroup2-only container directory offering every controller; returns (manager, rec)."""
    d = tmp_path / "c"
    d.mkdir()
    (d / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    for name in V2_FILES:
        (d / name).write_text("")
    return Manager({}, str(d), "/c"), Recorder(monkeypatch)


@pytest.fixture
def v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    dirs = {}
    for controller, names in V1_FILES.items():
        d = tmp_path / controller / "c"
        d.mkdir(parents=True)
        for name in names:
            (d / name).write_text("")
        dirs[controller] = str(d)
    (tmp_path / "memory" / "c" / "memory.limit_in_bytes").write_text("1000\n")
    return Manager(dirs, None, "/c"), Recorder(monkeypatch)


def apply(manager: Manager, rec: Recorder, res: dict) -> None:
    resources.apply(manager, res, warn=rec.warnings.append)


def test_v2_cpu_shares_become_a_weight(v2) -> None:
    m, rec = v2
    apply(m, rec, {"cpu": {"shares": 1024}})
    assert rec.writes == [("linux.resources.cpu.shares", "cpu.weight", "39")]
    assert Path(m.v2_dir, "cpu.weight").read_text() == "39"


@pytest.mark.parametrize(
    "cpu, expected",
    [
        ({"quota": 50000, "period": 100000}, "50000 100000"),
        ({"quota": -1, "period": 20000}, "max 20000"),
        ({"quota": 30000}, "30000 100000"),
        ({"period": 20000}, "max 20000"),
        ({"quota": 0, "period": 20000}, "max 20000"),
    ],
)
def test_v2_cpu_max_from_quota_and_period(v2, cpu: dict, expected: str) -> None:
    m, rec = v2
    apply(m, rec, {"cpu": cpu})
    assert rec.files() == {"cpu.max": expected}


@pytest.mark.parametrize(
    "memory, expected",
    [
        ({"limit": 1000, "swap": 3000}, {"memory.max": "1000", "memory.swap.max": "2000"}),
        ({"limit": 1000, "swap": 500}, {"memory.max": "1000", "memory.swap.max": "0"}),
        ({"limit": 1000, "swap": -1}, {"memory.max": "1000", "memory.swap.max": "max"}),
        ({"limit": -1}, {"memory.max": "max"}),
        ({"reservation": 700}, {"memory.low": "700"}),
        ({"reservation": -1}, {"memory.low": "max"}),
    ],
)
def test_v2_memory_swap_is_swap_alone(v2, memory: dict, expected: dict) -> None:
    m, rec = v2
    apply(m, rec, {"memory": memory})
    assert rec.files() == expected


@pytest.mark.parametrize("limit, expected", [(0, "0"), (50, "50"), (-1, "max"), (None, "max")])
def test_pids_limit(v2, limit, expected: str) -> None:
    m, rec = v2
    apply(m, rec, {"pids": {"limit": limit}})
    assert rec.files() == {"pids.max": expected}


def test_pids_limit_waits_for_the_init_while_creating(v2) -> None:
    m, rec = v2
    m.creating = True
    apply(m, rec, {"pids": {"limit": 0}})
    assert rec.writes == []
    assert m.deferred == [("linux.resources.pids.limit", m.v2_dir, "pids.max", 0)]
    resources.apply_deferred(m)
    assert rec.files() == {"pids.max": "0"} and m.deferred == [] and not m.creating


def test_v2_block_io_weight(v2) -> None:
    m, rec = v2
    apply(m, rec, {"blockIO": {"weight": 500}})
    assert rec.writes == [("linux.resources.blockIO.weight", "io.weight", "default 4950")]


def test_v2_block_io_throttles(v2) -> None:
    m, rec = v2
    blkio = {
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 7}],
    }
    apply(m, rec, {"blockIO": blkio})
    assert rec.writes == [
        ("linux.resources.blockIO.throttleReadBpsDevice[0]", "io.max", "8:0 rbps=1024"),
        ("linux.resources.blockIO.throttleWriteIOPSDevice[0]", "io.max", "8:16 wiops=7"),
    ]


def test_v2_hugepages_cpuset_and_unified(v2) -> None:
    m, rec = v2
    apply(m, rec, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                   "cpu": {"cpus": "0-1", "mems": "0"},
                   "unified": {"memory.high": "123"}})  # fmt: skip
    assert rec.files() == {"hugetlb.2MB.max": "4194304", "cpuset.cpus": "0-1",
                           "cpuset.mems": "0", "memory.high": "123"}  # fmt: skip


@pytest.mark.parametrize("key", ["../escape", "a/b", ".hidden"])
def test_unified_keys_must_be_file_names(v2, key: str) -> None:
    m, rec = v2
    with pytest.raises(PyociError) as caught:
        apply(m, rec, {"unified": {key: "1"}})
    assert caught.value.msg == f"linux.resources.unified.{key}: not a cgroup file name"


def test_unified_needs_cgroup2(v1) -> None:
    m, rec = v1
    with pytest.raises(PyociError) as caught:
        apply(m, rec, {"unified": {"memory.high": "1"}})
    assert (
        caught.value.msg
        == "linux.resources.unified.memory.high: this host has no cgroup2 hierarchy"
    )


def test_a_controller_the_host_lacks_is_an_error_naming_the_field(v2) -> None:
    m, rec = v2
    Path(m.v2_dir, "cgroup.controllers").write_text("memory\n")
    with pytest.raises(PyociError) as caught:
        apply(m, rec, {"cpu": {"shares": 1024}})
    assert caught.value.msg == (
        "linux.resources.cpu.shares: the cpu cgroup controller is not available on this host"
    )


def test_a_write_the_kernel_refuses_names_field_value_and_file(v2) -> None:
    m, rec = v2
    Path(m.v2_dir, "memory.max").unlink()  # ENOENT stands in for the kernel's EINVAL
    with pytest.raises(PyociError) as caught:
        apply(m, rec, {"memory": {"limit": 5}})
    assert caught.value.msg == (
        f"linux.resources.memory.limit: writing 5 to {m.v2_dir}/memory.max: "
        "no such file or directory"
    )


def test_what_cgroup2_cannot_enforce_is_a_warning(v2) -> None:
    m, rec = v2
    apply(m, rec, {"memory": {"swappiness": 10, "kernel": 1, "kernelTCP": 1},
                   "network": {"classID": 5}, "rdma": {"mlx": {}}})  # fmt: skip
    assert rec.writes == []
    assert rec.warnings == [
        "linux.resources.memory.swappiness: the memory controller is not available: ignored",
        "linux.resources.memory.kernel: kernel memory limits are deprecated and ignored",
        "linux.resources.memory.kernelTCP: kernel memory limits are deprecated and ignored",
        "linux.resources.network.classID: the net_cls controller is not available: ignored",
        "linux.resources.rdma: the rdma controller is not supported: ignored",
    ]


def test_v1_shares_and_quota_are_written_as_given(v1) -> None:
    m, rec = v1
    apply(m, rec, {"cpu": {"shares": 1024, "quota": 50000, "period": 100000}})
    assert rec.writes == [
        ("linux.resources.cpu.shares", "cpu.shares", "1024"),
        ("linux.resources.cpu.period", "cpu.cfs_period_us", "100000"),
        ("linux.resources.cpu.quota", "cpu.cfs_quota_us", "50000"),
    ]


def test_v1_swap_goes_first_when_raising_the_limit(v1) -> None:
    m, rec = v1  # memory.limit_in_bytes is 1000 now
    apply(m, rec, {"memory": {"limit": 5000, "swap": 8000}})
    assert [name for _, name, _ in rec.writes] == [
        "memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]  # fmt: skip


def test_v1_limit_goes_first_when_lowering_it(v1) -> None:
    m, rec = v1
    apply(m, rec, {"memory": {"limit": 500, "swap": 800}})
    assert [(name, value) for _, name, value in rec.writes] == [
        ("memory.limit_in_bytes", "500"), ("memory.memsw.limit_in_bytes", "800")]  # fmt: skip


def test_v1_devices_deny_all_then_rules_then_defaults(v1) -> None:
    m, rec = v1
    apply(m, rec, {"devices": [{"allow": True, "type": "c", "major": 10, "minor": -1,
                                "access": "rw"},
                               {"allow": False, "type": "a"}]})  # fmt: skip
    lines = [(field, name, value) for field, name, value in rec.writes]
    assert lines[0] == ("linux.resources.devices", "devices.deny", "a")
    assert lines[1] == ("linux.resources.devices[0]", "devices.allow", "c 10:* rw")
    assert lines[2] == ("linux.resources.devices[1]", "devices.deny", "a")
    defaults = lines[3:]
    assert len(defaults) == len(resources.DEFAULT_ALLOWED)
    assert {f for f, _, _ in defaults} == {"linux.resources.devices (default device)"}
    assert ("devices.allow", "c 1:3 rwm") in [(n, v) for _, n, v in defaults]
    assert ("devices.allow", "c 136:* rwm") in [(n, v) for _, n, v in defaults]
    assert ("devices.allow", "b *:* m") in [(n, v) for _, n, v in defaults]


def test_no_devices_key_writes_no_device_rules(v1) -> None:
    m, rec = v1
    apply(m, rec, {})
    assert rec.writes == []
