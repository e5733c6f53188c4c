"""linux.resources → cgroup files, for v1, v2 and hybrid hosts.

Each value goes where the host has its controller: a v1 hierarchy when mounted, else the
cgroup2 directory (converted the way runc converts: shares → weight, swap = memory+swap on v1,
swap alone on v2, ...). Where each value goes is one table of `Row`s (key, controller, v1
file, cgroup2 file, conversion); code remains only for what a row cannot say: the order of
the memory writes, the realtime budget, the pids limit deferred to the init, device rules.
A value that cannot be applied is an error naming the JSON field and the file; a value the
spec lets a runtime ignore and this host cannot enforce (net_cls on a host without it, a
kernel memory limit) is a warning, as runc does.
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError

MAX_V2 = "max"


def shares_to_weight(shares: int) -> int:
    """runc's conversion of cpu.shares [2, 262144] to cpu.weight [1, 10000]; shares outside
    that range are clamped first (as the v1 kernel does), so the weight is always valid."""
    if shares == 0:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """runc: blkio.weight [10, 1000] → io.weight [1, 10000]."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


# --- the table: where each linux.resources value goes -----------------------------------------
# A conversion takes (the value, its section of linux.resources) and returns what is written.
def _same(value, section: dict) -> object:
    return value


def _max_if_negative(value: int, section: dict) -> object:
    """cgroup2 spells "no limit" `max` where v1 takes -1."""
    return MAX_V2 if value < 0 else value


def _flag(value: object, section: dict) -> int:
    return int(bool(value))


def _weight_of_shares(shares: int, cpu: dict) -> int:
    return shares_to_weight(shares)


def _cpu_max_of_period(period: int, cpu: dict) -> str:
    """cpu.max holds both: the period's write carries the quota (none yet: max)."""
    quota = cpu.get("quota")
    return f"{MAX_V2 if not quota or quota < 0 else quota} {period}"


def _cpu_max_of_quota(quota: int, cpu: dict) -> str:
    return f"{MAX_V2 if quota < 0 else quota} {cpu.get('period') or 100000}"


def _swap_alone(swap: int, memory: dict) -> object:
    """v1's memsw limit is memory+swap; cgroup2's swap.max is the swap alone."""
    return MAX_V2 if swap < 0 else max(swap - (memory.get("limit") or 0), 0)


def _io_weight(weight: int, blkio: dict) -> str:
    return f"default {blkio_weight_to_io_weight(weight)}"


def _device(dev: dict) -> str:
    return f"{dev.get('major')}:{dev.get('minor')}"


def _device_rate(dev: dict, entry: dict) -> str:
    return f"{_device(dev)} {dev.get('rate', 0)}"


def _io_max(limit: str):
    """io.max takes `MAJ:MIN rbps=N` (one conversion per throttle kind)."""

    def convert(dev: dict, entry: dict) -> str:
        return f"{_device(dev)} {limit}={dev.get('rate', 0)}"

    return convert


def _device_weight(dev: dict, entry: dict) -> str:
    return f"{_device(dev)} {dev['weight']}"


class Row:
    """Where one value goes: `key` in its section, the controller, the v1 file (or candidate
    names: the first the kernel has) and the cgroup2 file (None: v1 only), with the value
    written to each. `optional`: a host that cannot take it warns instead of failing (what
    the spec lets a runtime ignore); `truthy`: 0 means unset; `needs_v1`: without a v1
    hierarchy it is skipped silently; `label`: the controller as the messages name it."""

    __slots__ = (
        "key",
        "controller",
        "v1_file",
        "v2_file",
        "v1_value",
        "v2_value",
        "optional",
        "truthy",
        "needs_v1",
        "label",
    )

    def __init__(
        self,
        key: str,
        controller: str,
        v1_file: str | tuple[str, ...],
        v2_file: str | None = None,
        v2_value=_same,
        *,
        v1_value=_same,
        optional: bool = False,
        truthy: bool = False,
        needs_v1: bool = False,
        label: str = "",
    ) -> None:
        self.key = key
        self.controller = controller
        self.v1_file = v1_file
        self.v2_file = v2_file
        self.v1_value = v1_value
        self.v2_value = v2_value
        self.optional = optional
        self.truthy = truthy
        self.needs_v1 = needs_v1
        self.label = label or controller


MEMORY_LIMIT = Row("limit", "memory", "memory.limit_in_bytes", "memory.max", _max_if_negative)
MEMORY_SWAP = Row(
    "swap", "memory", "memory.memsw.limit_in_bytes", "memory.swap.max", _swap_alone, optional=True
)
MEMORY_RESERVATION = Row(
    "reservation", "memory", "memory.soft_limit_in_bytes", "memory.low", _max_if_negative
)
MEMORY_OTHER = (
    Row("swappiness", "memory", "memory.swappiness", optional=True),
    Row(
        "disableOOMKiller",
        "memory",
        "memory.oom_control",
        v1_value=_flag,
        optional=True,
        truthy=True,
    ),
    Row(
        "useHierarchy",
        "memory",
        "memory.use_hierarchy",
        v1_value=_flag,
        optional=True,
        needs_v1=True,
    ),
)
CPU = (
    Row("shares", "cpu", "cpu.shares", "cpu.weight", _weight_of_shares, truthy=True),
    Row("period", "cpu", "cpu.cfs_period_us", "cpu.max", _cpu_max_of_period, truthy=True),
    Row("quota", "cpu", "cpu.cfs_quota_us", "cpu.max", _cpu_max_of_quota, truthy=True),
    Row("burst", "cpu", "cpu.cfs_burst_us", "cpu.max.burst", optional=True),
)
# Without RT group scheduling in a v1 cpu hierarchy (`_realtime` budgets it where there is).
CPU_REALTIME = (
    Row("realtimePeriod", "cpu", "cpu.rt_period_us", optional=True, truthy=True),
    Row("realtimeRuntime", "cpu", "cpu.rt_runtime_us", optional=True, truthy=True),
)
CPU_AFTER_REALTIME = (
    Row("idle", "cpu", "cpu.idle", "cpu.idle", optional=True),
    Row("cpus", "cpuset", "cpuset.cpus", "cpuset.cpus", truthy=True),
    Row("mems", "cpuset", "cpuset.mems", "cpuset.mems", truthy=True),
)
PIDS_LIMIT = Row("limit", "pids", "pids.max", "pids.max")
BLKIO_WEIGHT = Row(
    "weight",
    "blkio",
    ("blkio.weight", "blkio.bfq.weight"),
    "io.weight",
    _io_weight,
    optional=True,
    truthy=True,
    label="io",
)
BLKIO_THROTTLES = tuple(
    Row(
        key,
        "blkio",
        f"blkio.throttle.{v1_name}_device",
        "io.max",
        _io_max(limit),
        v1_value=_device_rate,
    )
    for key, v1_name, limit in (
        ("throttleReadBpsDevice", "read_bps", "rbps"),
        ("throttleWriteBpsDevice", "write_bps", "wbps"),
        ("throttleReadIOPSDevice", "read_iops", "riops"),
        ("throttleWriteIOPSDevice", "write_iops", "wiops"),
    )
)
BLKIO_WEIGHT_DEVICE = Row(
    "weightDevice", "blkio", "blkio.weight_device", v1_value=_device_weight, optional=True
)
NETWORK = (Row("classID", "net_cls", "net_cls.classid", optional=True),)
NET_PRIORITY = Row("priorities", "net_prio", "net_prio.ifpriomap", optional=True)


def hugepage_row(size: str) -> Row:
    """`hugepageLimits[].pageSize` names the files."""
    return Row("limit", "hugetlb", f"hugetlb.{size}.limit_in_bytes", f"hugetlb.{size}.max")


def _write_file(path: str, value: object) -> None:
    """One write(2) of the value's text. Never O_CREAT: a file the kernel does not offer is
    an error, not a new file in the cgroup directory."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


class Writer:
    """Collects (field, file, value) writes against a Manager and performs them."""

    def __init__(self, manager, warn, defer_bpf: list | None = None) -> None:
        self.m = manager
        self.warn = warn
        self.defer_bpf = defer_bpf

    def v1(self, controller: str) -> str | None:
        return self.m.dirs.get(controller)

    def v2(self, controller: str) -> str | None:
        """The cgroup2 dir if `controller` is enabled there (hybrid: hugetlb, pure v2: all)."""
        if not self.m.v2_dir or controller in self.m.dirs:
            return None
        try:
            with open(os.path.join(self.m.v2_dir, "cgroup.controllers")) as f:
                available = f.read().split()
        except OSError:
            return None
        name = {"blkio": "io"}.get(controller, controller)  # cgroup2's name for it
        return self.m.v2_dir if name in available else None

    def write(self, field: str, directory: str, name: str, value: object) -> None:
        path = os.path.join(directory, name)
        try:
            _write_file(path, value)
        except OSError as err:
            raise PyociError(
                f"{field}: writing {value!r} to {path}: {err.strerror.lower()}", err.errno
            ) from None

    def put(self, field: str, row: Row, value: object, section: dict) -> None:
        """Write `value` where the host has `row.controller`: its v1 hierarchy, else cgroup2
        (converted); neither is an error, or a warning for an `optional` row."""
        d1 = self.v1(row.controller)
        if d1:
            name = row.v1_file
            if not isinstance(name, str):  # candidates: the first this kernel has
                name = next((n for n in name if os.path.exists(os.path.join(d1, n))), name[-1])
            if row.optional and not os.path.exists(os.path.join(d1, name)):
                self.warn(f"{field}: {name} does not exist on this host: ignored")
                return
            self.write(field, d1, name, row.v1_value(value, section))
            return
        if row.needs_v1:
            return
        d2 = self.v2(row.controller)
        if d2 and row.v2_file:
            if row.optional and not os.path.exists(os.path.join(d2, row.v2_file)):
                self.warn(f"{field}: {row.v2_file} does not exist on this host: ignored")
                return
            self.write(field, d2, row.v2_file, row.v2_value(value, section))
            return
        if row.optional:
            self.warn(f"{field}: the {row.label} controller is not available: ignored")
            return
        raise PyociError(
            f"{field}: the {row.label} cgroup controller is not available on this host"
        )

    def put_rows(self, rows: tuple[Row, ...], section: dict, field: str) -> None:
        """Each row whose key the section sets (a `truthy` row: to a value other than 0)."""
        for row in rows:
            value = section.get(row.key)
            if value if row.truthy else value is not None:
                self.put(f"{field}.{row.key}", row, value, section)

    def put_each(self, row: Row, entries: list | None, field: str) -> None:
        """A list of the spec's (`hugepageLimits`, the device throttles): one write each."""
        for i, entry in enumerate(entries or []):
            self.put(f"{field}[{i}]", row, entry, entry)


def apply(
    manager,
    resources: dict,
    warn=lambda msg: None,
    prefix: str = "linux.resources",
    defer_bpf: list | None = None,
) -> None:
    """Write every resource of `resources` into the container's cgroup. With `defer_bpf`, a
    cgroup2 device program is compiled but not loaded: its code is appended, for
    `install_bpf` on the manager's cgroup2 directory (create's stage 1 does it, so that the
    parent needs no ctypes)."""
    w = Writer(manager, warn, defer_bpf)
    _memory(w, resources.get("memory") or {}, f"{prefix}.memory")
    _cpu(w, resources.get("cpu") or {}, f"{prefix}.cpu")
    pids = resources.get("pids") or {}
    if "limit" in pids:
        _pids(w, pids["limit"], f"{prefix}.pids.limit")
    _blkio(w, resources.get("blockIO") or {}, f"{prefix}.blockIO")
    for i, hp in enumerate(resources.get("hugepageLimits") or []):
        field = f"{prefix}.hugepageLimits[{i}]"
        for key in ("pageSize", "limit"):  # REQUIRED: a limit taken as 0 would forbid them all
            if hp.get(key) is None:
                raise PyociError(f"{field}.{key}: is required")
        w.put(field, hugepage_row(hp["pageSize"]), hp["limit"], hp)
    _devices(w, resources.get("devices"), f"{prefix}.devices")
    network = resources.get("network") or {}
    w.put_rows(NETWORK, network, f"{prefix}.network")
    for i, prio in enumerate(network.get("priorities") or []):
        line = f"{prio.get('name')} {prio.get('priority')}"
        w.put(f"{prefix}.network.priorities[{i}]", NET_PRIORITY, line, network)
    if resources.get("rdma"):
        warn(f"{prefix}.rdma: the rdma controller is not supported: ignored")
    for key, value in (resources.get("unified") or {}).items():
        field = f"{prefix}.unified.{key}"
        if "/" in key or key.startswith("."):
            raise PyociError(f"{field}: not a cgroup file name")
        if not manager.v2_dir:
            raise PyociError(f"{field}: this host has no cgroup2 hierarchy")
        w.write(field, manager.v2_dir, key, value)


def _pids(w: Writer, limit: int | None, field: str) -> None:
    """runtime-spec 1.3: 0 is a limit like any other (no task may fork: pids.max 0), a
    negative value (or null) is no limit. At create the value waits until the init exists
    (`Manager.deferred`): stage 1 joins the cgroup and forks the init in it, and a limit as low
    as 0 or 1 would refuse that fork; runc likewise sets limits once its init is ready."""
    value = MAX_V2 if limit is None or limit < 0 else limit
    if w.m.creating:
        d1 = w.v1("pids")
        d2 = None if d1 else w.v2("pids")
        if d1 or d2:
            w.m.deferred.append((field, d1 or d2, "pids.max", value))
            return
    w.put(field, PIDS_LIMIT, value, {})


def apply_deferred(manager) -> None:
    """Write what `apply` kept back while the container was being created (the pids limit):
    called once the init exists and before the user's program can run."""
    w = Writer(manager, lambda msg: None)
    pending, manager.deferred = manager.deferred, []
    manager.creating = False
    for field, directory, name, value in pending:
        w.write(field, directory, name, value)


def _memory(w: Writer, mem: dict, field: str) -> None:
    limit = mem.get("limit")
    swap = mem.get("swap")
    d1 = w.v1("memory")
    # v1 refuses memory > memory+swap: when raising both, swap goes first (runc's order).
    raising = (
        bool(d1)
        and limit is not None
        and (limit < 0 or limit > _current(d1, "memory.limit_in_bytes"))
    )
    swap_first = bool(d1 and swap is not None and limit is not None and (swap < 0 or raising))
    if swap_first:
        order = (MEMORY_SWAP, MEMORY_LIMIT, MEMORY_RESERVATION)
    else:
        order = (MEMORY_LIMIT, MEMORY_RESERVATION, MEMORY_SWAP)
    w.put_rows((*order, *MEMORY_OTHER), mem, field)
    for key in ("kernel", "kernelTCP"):
        if mem.get(key) is not None:
            w.warn(f"{field}.{key}: kernel memory limits are deprecated and ignored")


def _current(directory: str, name: str) -> int:
    try:
        with open(os.path.join(directory, name)) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def _cpu(w: Writer, cpu: dict, field: str) -> None:
    w.put_rows(CPU, cpu, field)
    d1 = w.v1("cpu")
    rt_period, rt_runtime = cpu.get("realtimePeriod"), cpu.get("realtimeRuntime")
    if (rt_period or rt_runtime) and d1 and os.path.exists(os.path.join(d1, "cpu.rt_runtime_us")):
        _realtime(w, d1, rt_period or None, rt_runtime or None, field)
    else:
        w.put_rows(CPU_REALTIME, cpu, field)
    w.put_rows(CPU_AFTER_REALTIME, cpu, field)


# The kernel's fixed-point share of a period (kernel/sched/core.c to_ratio, BW_SHIFT 20).
_BW_SHIFT = 20


def _rt_ratio(runtime: int, period: int) -> int:
    if runtime < 0:  # RUNTIME_INF
        return 1 << _BW_SHIFT
    return (runtime << _BW_SHIFT) // period if period else 0


def _rt_values(directory: str) -> tuple[int, int]:
    """(cpu.rt_runtime_us, cpu.rt_period_us) of a v1 cpu cgroup."""
    return _current(directory, "cpu.rt_runtime_us"), _current(directory, "cpu.rt_period_us")


def _rt_children_share(parent: str) -> int:
    """The summed share of `parent`'s child cgroups."""
    return sum(
        _rt_ratio(*_rt_values(entry.path))
        for entry in os.scandir(parent)
        if entry.is_dir(follow_symlinks=False)
    )


def _rt_least_runtime(share: int, period: int) -> int:
    """The least runtime whose share of `period` is at least `share`."""
    return -((-share * period) >> _BW_SHIFT)


def _rt_lock(directory: str) -> int:
    """An exclusive flock on the root of `directory`'s hierarchy: budgets are read, summed
    and written by concurrent creates and deletes."""
    import fcntl

    top = directory
    while os.path.exists(os.path.join(os.path.dirname(top), "cpu.rt_runtime_us")):
        top = os.path.dirname(top)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _realtime(
    w: Writer, directory: str, period: int | None, runtime: int | None, field: str
) -> None:
    """cpu.rt_period_us and cpu.rt_runtime_us, after giving the ancestors pyoci made (and its
    default parent `/pyoci`) the realtime budget they need. With RT group scheduling a
    cgroup's runtime/period may not exceed its parent's, summed over the parent's children
    (the kernel's tg_rt_schedulable); a parent pyoci made starts with 0, so without this no
    container below it could have any (nor run SCHED_FIFO/SCHED_RR). Each such ancestor's
    runtime is raised, never lowered, to the sum over its children with this container's new
    share, outermost first; an ancestor someone else made is left alone (the kernel's refusal
    then names the file). `Manager.rt_raised` remembers them, for `release_rt_budget`."""
    lock = _rt_lock(directory)
    try:
        cur_runtime, cur_period = _rt_values(directory)
        new_period = period or cur_period
        # The container's share after its period is written (old runtime) and at the end.
        new_runtime = cur_runtime if runtime is None else runtime
        need = max(_rt_ratio(cur_runtime, new_period), _rt_ratio(new_runtime, new_period))
        raises: list[tuple[str, int]] = []
        child = directory
        for parent in w.m.own_ancestors(directory):
            total = need + _rt_children_share(parent) - _rt_ratio(*_rt_values(child))
            parent_runtime, parent_period = _rt_values(parent)
            if parent_runtime < 0 or _rt_ratio(parent_runtime, parent_period) >= total:
                break  # enough already: nothing above needs to change for us
            wanted = _rt_least_runtime(total, parent_period)
            raises.append((parent, wanted))
            need, child = _rt_ratio(wanted, parent_period), parent
        for parent, wanted in reversed(raises):
            w.write(f"{field}.realtimeRuntime", parent, "cpu.rt_runtime_us", wanted)
            if parent not in w.m.rt_raised:
                w.m.rt_raised.append(parent)
        if period:
            w.write(f"{field}.realtimePeriod", directory, "cpu.rt_period_us", period)
        if runtime is not None:
            w.write(f"{field}.realtimeRuntime", directory, "cpu.rt_runtime_us", runtime)
    finally:
        os.close(lock)


def _write_quietly(path: str, value: object) -> None:
    try:
        _write_file(path, value)
    except OSError:
        pass


def release_rt_budget(manager, removing: list[str]) -> None:
    """Before the container's directories `removing` go: their realtime runtime to 0, deepest
    first (a removed cgroup still counts in its parent's sum until the kernel releases it,
    a moment later). Then each ancestor whose budget pyoci raised for the container is lowered
    back to what its remaining children need (innermost first), so the budget returns to the
    host. Best effort: a failure leaves more budget than needed, never less."""
    remaining = [d for d in manager.rt_raised if os.path.isdir(d)]
    if not remaining:
        return
    lock = _rt_lock(remaining[0])
    try:
        for directory in removing:
            for top, _, _ in sorted(os.walk(directory), key=lambda t: -t[0].count("/")):
                _write_quietly(os.path.join(top, "cpu.rt_runtime_us"), 0)
        for parent in sorted(remaining, key=lambda d: -d.count("/")):
            runtime, period = _rt_values(parent)
            wanted = _rt_least_runtime(_rt_children_share(parent), period)
            if 0 <= wanted < runtime:
                _write_quietly(os.path.join(parent, "cpu.rt_runtime_us"), wanted)
    finally:
        os.close(lock)


def _blkio(w: Writer, blkio: dict, field: str) -> None:
    w.put_rows((BLKIO_WEIGHT,), blkio, field)
    for row in BLKIO_THROTTLES:
        w.put_each(row, blkio.get(row.key), f"{field}.{row.key}")
    for i, dev in enumerate(blkio.get("weightDevice") or []):
        if dev.get("weight") is not None:
            w.put(f"{field}.weightDevice[{i}]", BLKIO_WEIGHT_DEVICE, dev, dev)


# The spec's default devices (and the pty pair) must stay usable under any device rules.
DEFAULT_ALLOWED = [
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rwm"},
    # mknod of any node (what a node may then be used for is still governed by the rules)
    {"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"},
]


def config_device_rules(devices: list) -> list[dict]:
    """Allow rules for the nodes linux.devices creates, which must stay usable whatever the
    rules (runc adds them the same way). `u` (unbuffered) is a character device to the
    kernel; a fifo (`p`) needs no rule."""
    return [
        {
            "allow": True,
            "type": "c" if d.type == "u" else d.type,
            "major": d.major,
            "minor": d.minor,
            "access": "rwm",
        }
        for d in devices
        if d.type != "p"
    ]


def _devices(w: Writer, rules: list | None, field: str) -> None:
    """Deny all, then the rules in order, then the defaults (runc's semantics): written to the
    v1 devices cgroup where the host has one, else compiled to a BPF device program for the
    cgroup2 directory (see linux/devicefilter.py)."""
    if rules is None:
        return
    _check_device_rules(rules, field)
    full = [{"allow": False, "type": "a"}, *rules, *DEFAULT_ALLOWED]
    d1 = w.v1("devices")
    if not d1:
        if w.m.v2_dir:
            from pyoci.linux import devicefilter

            code = devicefilter.program(devicefilter.emulate(full))
            if w.defer_bpf is not None:
                w.defer_bpf.append(code)
            else:
                install_bpf(w.m.v2_dir, code, field)
        elif rules:
            w.warn(f"{field}: no devices cgroup on this host: ignored")
        return
    w.write(field, d1, "devices.deny", "a")
    for i, rule in enumerate(full[1:]):
        where = f"{field}[{i}]" if i < len(rules) else f"{field} (default device)"
        kind = rule.get("type") or "a"
        major = "*" if rule.get("major") in (None, -1) else rule["major"]
        minor = "*" if rule.get("minor") in (None, -1) else rule["minor"]
        access = rule.get("access") or "rwm"
        line = f"{kind} {major}:{minor} {access}" if kind != "a" else "a"
        w.write(where, d1, "devices.allow" if rule.get("allow") else "devices.deny", line)


def _check_device_rules(rules: object, field: str) -> None:
    """What v1 would refuse with EINVAL (and the BPF compiler cannot express), named."""
    if not isinstance(rules, list):
        raise PyociError(f"{field}: must be an array")
    for i, rule in enumerate(rules):
        where = f"{field}[{i}]"
        if not isinstance(rule, dict):
            raise PyociError(f"{where}: must be an object")
        if (rule.get("type") or "a") not in ("a", "b", "c"):
            raise PyociError(f"{where}.type: must be a, b or c, not {rule['type']!r}")
        for key in ("major", "minor"):
            value = rule.get(key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or not -1 <= value < 2**32
            ):
                raise PyociError(f"{where}.{key}: must be a device number or -1, not {value!r}")
        access = rule.get("access") or "rwm"
        if not isinstance(access, str) or set(access) - set("rwm"):
            raise PyociError(f"{where}.access: must be letters of rwm, not {access!r}")


def check_intel_rdt(l3_cache: bool, mem_bw: bool) -> None:
    """`update --l3-cache-schema/--mem-bw-schema`: runc's errors where the host lacks Intel
    RDT (no resctrl, or no L3 CAT / MBA in it); where it has them, pyoci does not manage
    resctrl groups (linux.intelRdt) and says so."""
    info = "/sys/fs/resctrl/info"
    if l3_cache and not os.path.isdir(os.path.join(info, "L3")):
        raise PyociError("--l3-cache-schema: Intel RDT/CAT: l3 cache schema is not enabled")
    if mem_bw and not os.path.isdir(os.path.join(info, "MB")):
        raise PyociError("--mem-bw-schema: Intel RDT/MBA: memory bandwidth schema is not enabled")
    raise PyociError("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by pyoci")


def install_bpf(directory: str, code: bytes, field: str) -> None:
    """Load and attach a device program (pyoci.linux.devicefilter), errors named by field."""
    from pyoci.linux import devicefilter

    try:
        devicefilter.install(directory, code)
    except OSError as err:
        raise PyociError(
            f"{field}: installing the BPF device filter on {directory}: {err.strerror}", err.errno
        ) from None
