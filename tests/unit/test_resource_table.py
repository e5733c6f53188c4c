"""pyoci.linux.resources' table (`Row`s): each conversion on its own, the table's shape, and
each row written by `Writer.put` into tmp directories standing in for v1 and cgroup2 cgroups
(the behaviour of whole `apply` calls is in test_conversions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.errors import PyociError
from pyoci.linux import resources as r
from pyoci.linux.cgroups import Manager

SETTINGS = settings(database=None, deadline=None, max_examples=150)
TABLE = (
    r.MEMORY_LIMIT,
    r.MEMORY_RESERVATION,
    r.MEMORY_SWAP,
    *r.MEMORY_OTHER,
    *r.CPU,
    *r.CPU_REALTIME,
    *r.CPU_AFTER_REALTIME,
    r.PIDS_LIMIT,
    r.BLKIO_WEIGHT,
    *r.BLKIO_THROTTLES,
    r.BLKIO_WEIGHT_DEVICE,
    *r.NETWORK,
    r.NET_PRIORITY,
    r.hugepage_row("2MB"),
)
V2_NAME = {"blkio": "io"}


# --- conversions -------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [(-1, "max"), (0, 0), (4096, 4096)])
def test_negative_is_max_on_cgroup2(value: int, expected) -> None:
    assert r._max_if_negative(value, {}) == expected


@SETTINGS
@given(swap=st.integers(-1, 2**40), limit=st.one_of(st.none(), st.integers(0, 2**40)))
def test_swap_alone_is_memsw_minus_memory(swap: int, limit: int | None) -> None:
    v2 = r._swap_alone(swap, {"limit": limit})
    if swap < 0:
        assert v2 == "max"
    else:
        assert v2 == max(swap - (limit or 0), 0)
        assert 0 <= v2 <= swap


@pytest.mark.parametrize(
    "cpu, period_value, quota_value",
    [
        ({"quota": 50000, "period": 100000}, "50000 100000", "50000 100000"),
        ({"quota": -1, "period": 20000}, "max 20000", "max 20000"),
        ({"quota": 30000}, None, "30000 100000"),  # the kernel's default period
        ({"period": 20000}, "max 20000", None),
        ({"quota": 0, "period": 20000}, "max 20000", None),
    ],
)
def test_cpu_max_carries_quota_and_period(cpu: dict, period_value, quota_value) -> None:
    if period_value is not None:
        assert r._cpu_max_of_period(cpu["period"], cpu) == period_value
    if quota_value is not None:
        assert r._cpu_max_of_quota(cpu["quota"], cpu) == quota_value


@SETTINGS
@given(st.integers(1, 10**6))
def test_shares_row_converts_through_shares_to_weight(shares: int) -> None:
    assert r._weight_of_shares(shares, {}) == r.shares_to_weight(shares)
    assert 1 <= r._weight_of_shares(shares, {}) <= 10000


def test_flags_and_device_lines() -> None:
    assert (r._flag(True, {}), r._flag(False, {}), r._flag(1, {})) == (1, 0, 1)
    dev = {"major": 8, "minor": 16, "rate": 1024, "weight": 300}
    assert r._device_rate(dev, dev) == "8:16 1024"
    assert r._device_weight(dev, dev) == "8:16 300"
    assert [row.v2_value(dev, dev) for row in r.BLKIO_THROTTLES] == [
        "8:16 rbps=1024",
        "8:16 wbps=1024",
        "8:16 riops=1024",
        "8:16 wiops=1024",
    ]
    assert r._io_weight(500, {}) == "default 4950"


# --- the table's shape -------------------------------------------------------------------------
def test_each_file_belongs_to_its_controller() -> None:
    for row in TABLE:
        v1_names = (row.v1_file,) if isinstance(row.v1_file, str) else row.v1_file
        assert all(name.startswith(row.controller + ".") for name in v1_names), row.key
        if row.v2_file:
            assert row.v2_file.startswith(V2_NAME.get(row.controller, row.controller) + ".")


def test_what_cgroup2_has_no_file_for_is_optional() -> None:
    """A v1-only value on a cgroup2 host warns (the spec lets a runtime ignore it)."""
    for row in TABLE:
        assert row.v2_file or row.optional, row.key


# --- Writer.put, row by row --------------------------------------------------------------------
class Host:
    """A container cgroup on a v1 host (one directory per controller) or a cgroup2 one."""

    def __init__(self, tmp_path: Path, version: int) -> None:
        self.writes: list[tuple[str, str, str]] = []
        self.warnings: list[str] = []
        self.tmp = tmp_path
        if version == 2:
            d = tmp_path / "c"
            d.mkdir()
            (d / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
            self.manager = Manager({}, str(d), "/c")
        else:
            dirs = {}
            for row in TABLE:
                d = tmp_path / row.controller / "c"
                d.mkdir(parents=True, exist_ok=True)
                dirs[row.controller] = str(d)
            self.manager = Manager(dirs, None, "/c")
        self.writer = r.Writer(self.manager, self.warnings.append)
        original = self.writer.write

        def write(field, directory, name, value):
            original(field, directory, name, value)
            self.writes.append((field, name, str(value)))

        self.writer.write = write

    def dir_of(self, row: r.Row) -> Path:
        if self.manager.v2_dir:
            return Path(self.manager.v2_dir)
        return Path(self.manager.dirs[row.controller])


@pytest.mark.parametrize("row", TABLE, ids=lambda row: f"{row.controller}.{row.key}")
def test_v1_writes_the_v1_file(tmp_path: Path, row: r.Row) -> None:
    host = Host(tmp_path, 1)
    name = row.v1_file if isinstance(row.v1_file, str) else row.v1_file[0]
    (host.dir_of(row) / name).write_text("")
    value = {"major": 1, "minor": 2, "rate": 3, "weight": 4}
    host.writer.put("f", row, value, value)
    assert host.writes == [("f", name, str(row.v1_value(value, value)))]


@pytest.mark.parametrize("row", [row for row in TABLE if row.v2_file], ids=lambda row: row.key)
def test_cgroup2_writes_the_converted_value(tmp_path: Path, row: r.Row) -> None:
    host = Host(tmp_path, 2)
    (host.dir_of(row) / row.v2_file).write_text("")
    value = {"major": 1, "minor": 2, "rate": 3} if row.v2_file == "io.max" else 300
    host.writer.put("f", row, value, {"limit": 100, "period": 50000})
    converted = row.v2_value(value, {"limit": 100, "period": 50000})
    assert host.writes == [("f", row.v2_file, str(converted))]


@pytest.mark.parametrize("row", [row for row in TABLE if not row.v2_file], ids=lambda r: r.key)
def test_cgroup2_ignores_what_it_cannot_take(tmp_path: Path, row: r.Row) -> None:
    host = Host(tmp_path, 2)
    host.writer.put("f", row, 1, {})
    assert host.writes == []
    if row.needs_v1:
        assert host.warnings == []  # useHierarchy: meaningless on cgroup2, not even a warning
    else:
        assert host.warnings == [f"f: the {row.label} controller is not available: ignored"]


def test_blkio_weight_falls_back_to_bfq(tmp_path: Path) -> None:
    host = Host(tmp_path, 1)
    host.writer.put("f", r.BLKIO_WEIGHT, 500, {})
    assert host.warnings == ["f: blkio.bfq.weight does not exist on this host: ignored"]
    (host.dir_of(r.BLKIO_WEIGHT) / "blkio.bfq.weight").write_text("")
    host.writer.put("f", r.BLKIO_WEIGHT, 500, {})
    assert host.writes == [("f", "blkio.bfq.weight", "500")]


def test_a_missing_controller_is_an_error_unless_optional(tmp_path: Path) -> None:
    host = Host(tmp_path, 2)
    Path(host.manager.v2_dir, "cgroup.controllers").write_text("memory\n")
    with pytest.raises(PyociError) as caught:
        host.writer.put("f", r.CPU[0], 1024, {})
    assert caught.value.msg == "f: the cpu cgroup controller is not available on this host"
    host.writer.put("f", r.BLKIO_WEIGHT, 500, {})
    assert host.warnings == ["f: the io controller is not available: ignored"]


def test_put_rows_skips_unset_and_zero_for_truthy_rows(tmp_path: Path) -> None:
    host = Host(tmp_path, 2)
    for name in ("cpu.weight", "cpu.max", "cpu.max.burst"):
        Path(host.manager.v2_dir, name).write_text("")
    host.writer.put_rows(r.CPU, {"shares": 0, "quota": 0, "burst": 0}, "cpu")
    assert host.writes == [("cpu.burst", "cpu.max.burst", "0")]  # 0 is a burst; not a quota
