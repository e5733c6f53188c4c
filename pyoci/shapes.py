"""The JSON types of the parts of config.json that are applied from the raw document.

Why here and not left to the schema: `create` and `update` do not run jsonschema (`validate`
does, ~120 ms). spec.py's model types what it parses; the parts the runtime reads from the raw
document later (linux.resources, seccomp, time offsets, the scheduler, I/O priority, Intel RDT,
personality, network devices, CPU affinity) are checked here first. Without it, a pids limit
of `"12"` or a seccomp syscall name that is a number reached the code that applies them as a
Python TypeError. One table of what each field is (config-linux.md, config.md), walked once; a
wrong type is a one-line error naming the field. Ranges and meanings stay with the code that
applies them.
"""

from __future__ import annotations

from pyoci.errors import PyociError

INT, STR, BOOL = "an integer", "a string", "a boolean"
_DEVICE_NUMBERS = {"major": INT, "minor": INT}
_THROTTLE = [{**_DEVICE_NUMBERS, "rate": INT}]

# field → its kind: INT/STR/BOOL, a dict (an object with these fields), a one-item list (an
# array of that), or ("map", kind) (an object of any keys, each value of that kind).
RESOURCES: dict = {
    "devices": [{"allow": BOOL, "type": STR, "major": INT, "minor": INT, "access": STR}],
    "memory": {
        "limit": INT,
        "reservation": INT,
        "swap": INT,
        "kernel": INT,
        "kernelTCP": INT,
        "swappiness": INT,
        "disableOOMKiller": BOOL,
        "useHierarchy": BOOL,
        "checkBeforeUpdate": BOOL,
    },
    "cpu": {
        "shares": INT,
        "quota": INT,
        "burst": INT,
        "period": INT,
        "realtimeRuntime": INT,
        "realtimePeriod": INT,
        "cpus": STR,
        "mems": STR,
        "idle": INT,
    },
    "pids": {"limit": INT},
    "blockIO": {
        "weight": INT,
        "leafWeight": INT,
        "weightDevice": [{**_DEVICE_NUMBERS, "weight": INT, "leafWeight": INT}],
        "throttleReadBpsDevice": _THROTTLE,
        "throttleWriteBpsDevice": _THROTTLE,
        "throttleReadIOPSDevice": _THROTTLE,
        "throttleWriteIOPSDevice": _THROTTLE,
    },
    "hugepageLimits": [{"pageSize": STR, "limit": INT}],
    "network": {"classID": INT, "priorities": [{"name": STR, "priority": INT}]},
    "rdma": ("map", {"hcaHandles": INT, "hcaObjects": INT}),
    "unified": ("map", STR),
}


_SYSCALL = {
    "names": [STR],
    "action": STR,
    "errnoRet": INT,
    "args": [{"index": INT, "value": INT, "valueTwo": INT, "op": STR}],
}
SECCOMP = {
    "defaultAction": STR,
    "defaultErrnoRet": INT,
    "architectures": [STR],
    "flags": [STR],
    "listenerPath": STR,
    "listenerMetadata": STR,
    "syscalls": [_SYSCALL],
}
# The parts of `process` and `linux` applied from the raw document (spec.py types the rest).
PROCESS: dict = {
    "scheduler": {
        "policy": STR,
        "nice": INT,
        "priority": INT,
        "flags": [STR],
        "runtime": INT,
        "deadline": INT,
        "period": INT,
    },
    "ioPriority": {"class": STR, "priority": INT},
    "execCPUAffinity": {"initial": STR, "final": STR},
}
LINUX: dict = {
    "resources": RESOURCES,
    "seccomp": SECCOMP,
    "timeOffsets": ("map", {"secs": INT, "nanosecs": INT}),
    "intelRdt": {
        "closID": STR,
        "l3CacheSchema": STR,
        "memBwSchema": STR,
        "schemata": [STR],
        "enableMonitoring": BOOL,
        "enableCMT": BOOL,
        "enableMBM": BOOL,
    },
    "personality": {"domain": STR, "flags": [STR]},
    "netDevices": ("map", {"name": STR}),
}


def kind_of(value: object) -> str:
    """A value's JSON type in the errors' words, as `pyoci validate` names it too (an
    integer is `an integer`, a float `a number`)."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return STR
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _wanted(shape: object) -> str:
    """What a shape asks for, in the words of the errors: `an object`, `an integer`."""
    if isinstance(shape, str):
        return shape
    return "an array" if isinstance(shape, list) else "an object"


def check_process(process: dict, field: str = "process") -> None:
    """Raise PyociError naming the first value of a process object's raw-applied parts
    (PROCESS) of the wrong JSON type: config.json's and `exec --process FILE`'s. null is
    accepted for a field (an absent value), not for an entry of an array or a map; unknown
    fields are left alone (the spec's extension rule)."""
    _check(process, PROCESS, field)


def check_linux(linux: dict) -> None:
    """The same for config.json's `linux` object (LINUX)."""
    _check(linux, LINUX, "linux")


def check_resources(resources: object, field: str = "linux.resources") -> None:
    """The same for a linux.resources object alone (`update --resources FILE`)."""
    _check(resources, RESOURCES, field)


def _check(value: object, shape: object, field: str) -> None:
    if value is None:
        return
    if isinstance(shape, str):
        if kind_of(value) != shape:
            raise PyociError(f"{field}: must be {shape}, not {kind_of(value)}")
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise PyociError(f"{field}: must be an array, not {kind_of(value)}")
        for i, item in enumerate(value):
            if item is None:  # an absent field is null; an entry of a list is not optional
                raise PyociError(f"{field}[{i}]: must be {_wanted(shape[0])}, not null")
            _check(item, shape[0], f"{field}[{i}]")
    elif isinstance(shape, tuple):  # ("map", kind of each value)
        if not isinstance(value, dict):
            raise PyociError(f"{field}: must be an object, not {kind_of(value)}")
        from pyoci.rules import dotted

        for key, item in value.items():
            at = dotted((*field.split("."), key))
            if item is None:  # a key is there to say something: null says nothing
                raise PyociError(f"{at}: must be {_wanted(shape[1])}, not null")
            _check(item, shape[1], at)
    else:
        if not isinstance(value, dict):
            raise PyociError(f"{field}: must be an object, not {kind_of(value)}")
        for key, kind in shape.items():
            if key in value:
                _check(value[key], kind, f"{field}.{key}")
