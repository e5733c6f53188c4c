"""The JSON types of linux.resources, checked before anything is written to a cgroup.

Why here and not left to the schema: `create` and `update` do not run jsonschema (`validate`
does), and the code that applies resources (pyoci.linux.resources) compares and formats the
values it is given: a pids limit of `"12"` or `[]` would reach it as a Python TypeError. One
table of what each field is (config-linux.md, "Control groups"), walked once; a wrong type is
a one-line error naming the field. Ranges and meanings stay with the code that applies them.
"""

from __future__ import annotations

from pyoci.errors import PyociError

INT, STR, BOOL = "an integer", "a string", "a boolean"
_DEVICE_NUMBERS = {"major": INT, "minor": INT}
_THROTTLE = [{**_DEVICE_NUMBERS, "rate": INT}]

# field → its kind: INT/STR/BOOL, a dict (an object with these fields), a one-item list (an
# array of that), or ("map", kind) (an object of any keys, each value of that kind).
SHAPE: dict = {
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


def _kind_of(value: object) -> str:
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


def check(resources: object, field: str = "linux.resources") -> None:
    """Raise PyociError naming the first value of `resources` of the wrong JSON type. null is
    accepted for a field (an absent value), not for an entry of an array; unknown fields are
    left alone (the spec's extension rule)."""
    _check(resources, SHAPE, field)


def _check(value: object, shape: object, field: str) -> None:
    if value is None:
        return
    if isinstance(shape, str):
        if _kind_of(value) != shape:
            raise PyociError(f"{field}: must be {shape}, not {_kind_of(value)}")
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise PyociError(f"{field}: must be an array, not {_kind_of(value)}")
        for i, item in enumerate(value):
            if item is None:  # an absent field is null; an entry of a list is not optional
                raise PyociError(f"{field}[{i}]: must be {_wanted(shape[0])}, not null")
            _check(item, shape[0], f"{field}[{i}]")
    elif isinstance(shape, tuple):  # ("map", kind of each value)
        if not isinstance(value, dict):
            raise PyociError(f"{field}: must be an object, not {_kind_of(value)}")
        from pyoci.rules import dotted

        for key, item in value.items():
            _check(item, shape[1], dotted((*field.split("."), key)))
    else:
        if not isinstance(value, dict):
            raise PyociError(f"{field}: must be an object, not {_kind_of(value)}")
        for key, kind in shape.items():
            if key in value:
                _check(value[key], kind, f"{field}.{key}")
