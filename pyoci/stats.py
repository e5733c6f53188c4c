"""`pyoci events`: runc's stats and OOM events, read from the container's cgroup files.

The JSON shape is runc's (`{"type": "stats", "id", "data": {"cpu", "memory", "pids",
"hugetlb", ...}}` and `{"type": "oom", "id"}`), since tools that parse `runc events` parse it.
"""

from __future__ import annotations

import os


def _read(directory: str | None, name: str) -> str | None:
    if not directory:
        return None
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read().strip()
    except OSError:
        return None


def _int(text: str | None) -> int:
    if not text or text == "max":
        return 0 if not text else 2**64 - 1
    try:
        return int(text.split()[0])
    except ValueError:
        return 0


def _kv(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def collect(manager) -> dict:
    """The `data` object of a stats event."""
    v2 = manager.v2_dir
    cpu_dir = manager.dirs.get("cpuacct")
    data: dict = {}
    if cpu_dir:
        percpu = [int(x) for x in (_read(cpu_dir, "cpuacct.usage_percpu") or "").split()]
        ticks = _kv(_read(cpu_dir, "cpuacct.stat"))
        hz = os.sysconf("SC_CLK_TCK")
        data["cpu"] = {
            "usage": {
                "total": _int(_read(cpu_dir, "cpuacct.usage")),
                "percpu": percpu,
                "kernel": ticks.get("system", 0) * 1_000_000_000 // hz,
                "user": ticks.get("user", 0) * 1_000_000_000 // hz,
            },
            "throttling": _throttling(_kv(_read(manager.dirs.get("cpu"), "cpu.stat"))),
        }
    elif v2 and _read(v2, "cpu.stat"):
        stat = _kv(_read(v2, "cpu.stat"))
        data["cpu"] = {
            "usage": {
                "total": stat.get("usage_usec", 0) * 1000,
                "kernel": stat.get("system_usec", 0) * 1000,
                "user": stat.get("user_usec", 0) * 1000,
            },
            "throttling": _throttling(stat),
        }
    mem_dir = manager.dirs.get("memory")
    if mem_dir:
        data["memory"] = {
            "usage": _mem(mem_dir, "memory."),
            "swap": _mem(mem_dir, "memory.memsw."),
            "kernel": _mem(mem_dir, "memory.kmem."),
            "raw": _kv(_read(mem_dir, "memory.stat")),
        }
    elif v2 and _read(v2, "memory.current") is not None:
        data["memory"] = {
            "usage": {
                "usage": _int(_read(v2, "memory.current")),
                "limit": _int(_read(v2, "memory.max")),
                "max": _int(_read(v2, "memory.peak")),
            },  # fmt: skip
            "raw": _kv(_read(v2, "memory.stat")),
        }
    pids_dir = manager.dirs.get("pids") or v2
    if _read(pids_dir, "pids.current") is not None:
        limit = _read(pids_dir, "pids.max")
        data["pids"] = {"current": _int(_read(pids_dir, "pids.current")),
                        "limit": 0 if limit == "max" else _int(limit)}  # fmt: skip
    hugetlb_dir = manager.dirs.get("hugetlb") or v2
    hugetlb = {}
    for name in (
        sorted(os.listdir(hugetlb_dir)) if hugetlb_dir and os.path.isdir(hugetlb_dir) else []
    ):
        parts = name.split(".")
        if parts[0] == "hugetlb" and len(parts) == 3 and parts[2] in ("usage_in_bytes", "current"):
            size = parts[1]
            peak = _read(hugetlb_dir, f"hugetlb.{size}.max_usage_in_bytes")
            hugetlb[size] = {
                "usage": _int(_read(hugetlb_dir, name)),
                "max": _int(peak),
                "failcnt": _int(_read(hugetlb_dir, f"hugetlb.{size}.failcnt")),
            }
    if hugetlb:
        data["hugetlb"] = hugetlb
    return data


def _throttling(stat: dict[str, int]) -> dict:
    return {
        "periods": stat.get("nr_periods", 0),
        "throttled_periods": stat.get("nr_throttled", 0),
        "throttled_time": stat.get("throttled_time", stat.get("throttled_usec", 0) * 1000),
    }


def _mem(directory: str, prefix: str) -> dict:
    return {
        "limit": _int(_read(directory, prefix + "limit_in_bytes")),
        "usage": _int(_read(directory, prefix + "usage_in_bytes")),
        "max": _int(_read(directory, prefix + "max_usage_in_bytes")),
        "failcnt": _int(_read(directory, prefix + "failcnt")),
    }


def oom_count(manager) -> int:
    """OOM kills so far (v1 memory.oom_control oom_kill, v2 memory.events oom_kill)."""
    mem_dir = manager.dirs.get("memory")
    if mem_dir:
        return _kv(_read(mem_dir, "memory.oom_control")).get("oom_kill", 0)
    return _kv(_read(manager.v2_dir, "memory.events")).get("oom_kill", 0)
