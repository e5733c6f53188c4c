"""Per-process settings with no stdlib binding: personality, I/O priority, scheduler.

Each is parsed in the parent into plain integers (so a bad value names its JSON field before
any fork) and applied by the init with one syscall.
"""

from __future__ import annotations

import ctypes
import os

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc

_MACHINE = os.uname().machine
NR_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}.get(_MACHINE, 251)
NR_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}.get(_MACHINE, 314)

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}


class SchedAttr(ctypes.Structure):
    """struct sched_attr (linux/sched/types.h), without the util clamp fields."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
    ]


def _int(obj: dict, key: str, field: str, lo: int, hi: int, default: int = 0) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PyociError(f"{field}.{key}: must be an integer in [{lo}, {hi}]")
    return value


def plan_personality(raw: dict | None) -> int | None:
    """linux.personality → the personality(2) value."""
    if not raw:
        return None
    domain = raw.get("domain")
    if domain not in PERSONALITY_DOMAINS:
        raise PyociError(f"linux.personality.domain: unknown domain {domain!r} (LINUX or LINUX32)")
    if raw.get("flags"):
        raise PyociError("linux.personality.flags: no personality flags are supported")
    return PERSONALITY_DOMAINS[domain]


def plan_io_priority(raw: dict | None) -> int | None:
    """process.ioPriority → the ioprio value ((class << 13) | level)."""
    if not raw:
        return None
    cls = raw.get("class")
    if cls not in IOPRIO_CLASSES:
        raise PyociError(f"process.ioPriority.class: unknown class {cls!r}")
    return (IOPRIO_CLASSES[cls] << 13) | _int(raw, "priority", "process.ioPriority", 0, 7)


def plan_scheduler(raw: dict | None) -> SchedAttr | None:
    """process.scheduler → a struct sched_attr."""
    if not raw:
        return None
    field = "process.scheduler"
    policy = raw.get("policy")
    if policy not in SCHED_POLICIES:
        raise PyociError(f"{field}.policy: unknown policy {policy!r}")
    flags = 0
    for i, name in enumerate(raw.get("flags") or []):
        if name not in SCHED_FLAGS:
            raise PyociError(f"{field}.flags[{i}]: unknown flag {name!r}")
        flags |= SCHED_FLAGS[name]
    return SchedAttr(
        ctypes.sizeof(SchedAttr),
        SCHED_POLICIES[policy],
        flags,
        _int(raw, "nice", field, -20, 19),
        _int(raw, "priority", field, 0, 99),
        _int(raw, "runtime", field, 0, 2**64 - 1),
        _int(raw, "deadline", field, 0, 2**64 - 1),
        _int(raw, "period", field, 0, 2**64 - 1),
    )


def set_personality(value: int) -> None:
    libc = sc._libc
    if libc.personality(ctypes.c_ulong(value)) == -1:
        raise PyociError("linux.personality: personality(2) failed", ctypes.get_errno())


def set_io_priority(value: int) -> None:
    try:
        sc._syscall(NR_IOPRIO_SET, ctypes.c_int(1), ctypes.c_int(0), ctypes.c_int(value))
    except OSError as err:
        raise PyociError(f"process.ioPriority: {err.strerror.lower()}", err.errno) from None


def set_scheduler(attr: SchedAttr) -> None:
    try:
        sc._syscall(NR_SCHED_SETATTR, ctypes.c_int(0), ctypes.byref(attr), ctypes.c_uint(0))
    except OSError as err:
        raise PyociError(f"process.scheduler: {err.strerror.lower()}", err.errno) from None
