"""Per-process settings with no stdlib binding: personality, I/O priority, scheduler.

Each is parsed in the parent into plain values (so a bad value names its JSON field before
any fork: integers, and struct sched_attr already packed) and applied by the init with one
syscall through pyoci.linux.sysbind.
"""

from __future__ import annotations

from pyoci.errors import PyociError

IOPRIO_WHO_PROCESS = 1

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


# struct sched_attr (linux/sched/types.h) without the util clamp fields: size, policy, flags,
# nice, priority, runtime, deadline, period.
SCHED_ATTR_FORMAT = "<IIQiIQQQ"
SCHED_ATTR_SIZE = 48


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


def plan_scheduler(raw: dict | None) -> bytes | None:
    """process.scheduler → a packed struct sched_attr."""
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
    import _struct  # what `struct` wraps, without its module: only configs with a scheduler

    return _struct.pack(
        SCHED_ATTR_FORMAT,
        SCHED_ATTR_SIZE,
        SCHED_POLICIES[policy],
        flags,
        _int(raw, "nice", field, -20, 19),
        _int(raw, "priority", field, 0, 99),
        _int(raw, "runtime", field, 0, 2**64 - 1),
        _int(raw, "deadline", field, 0, 2**64 - 1),
        _int(raw, "period", field, 0, 2**64 - 1),
    )


def set_personality(value: int) -> None:
    from pyoci.linux import sysbind

    try:
        sysbind.personality(value)
    except OSError as err:
        raise PyociError("linux.personality: personality(2) failed", err.errno) from None


def plan_process(raw_process: dict) -> tuple[int | None, bytes | None]:
    """process.ioPriority and process.scheduler, checked and packed in the parent: the init's
    and an exec'd process's alike."""
    return plan_io_priority(raw_process.get("ioPriority")), plan_scheduler(
        raw_process.get("scheduler")
    )


def apply_process(io_priority: int | None, scheduler: bytes | None) -> None:
    """Set them on this process, as root before the user switch (raising the scheduler's
    priority needs CAP_SYS_NICE, which the process may not keep)."""
    if io_priority is not None:
        set_io_priority(io_priority)
    if scheduler is not None:
        set_scheduler(scheduler)


def set_io_priority(value: int) -> None:
    from pyoci.linux import sysbind

    try:
        sysbind.ioprio_set(IOPRIO_WHO_PROCESS, 0, value)
    except OSError as err:
        raise PyociError(f"process.ioPriority: {err.strerror.lower()}", err.errno) from None


def set_scheduler(attr: bytes) -> None:
    from pyoci.linux import sysbind

    try:
        sysbind.sched_setattr(0, attr)
    except OSError as err:
        raise PyociError(f"process.scheduler: {err.strerror.lower()}", err.errno) from None
