"""Cross-field rules of config.json, shared by `create` and `pyoci validate`.

Each rule is a pure function of the raw config document that returns problems as
`(path, reason)`, the path a tuple of keys and indexes (`("linux", "sysctl", "vm.swappiness")`).
`spec.py` raises the first one on `create` (cheaply, no jsonschema), `validate.py` lists them
all: one definition, so the two can never disagree again about what a runtime accepts. Where
the spec is silent these follow runc, whose behaviour users' configs were written for.

Warnings (what the spec says a runtime MUST log and SHOULD NOT fail on) are separate:
`ambient_warnings`.

One kind of rule also looks at the host: a security label (AppArmor profile, SELinux label or
mount label) is refused when this host's kernel cannot apply it (`host_lsms`, read only when a
label is given). `process_problems` checks one process object, so `exec --process FILE` gets
the same verdicts as config.json's `process`.
"""

from __future__ import annotations

Problem = tuple[tuple[str | int, ...], str]

# ipc_namespaces(7): without an IPC namespace of the container's own, writing these changes
# the host's. The same list as runc's validator.
IPC_SYSCTLS = frozenset(
    (
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    )
)
UTS_SYSCTLS = frozenset(("kernel.hostname", "kernel.domainname"))


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _namespace_types(config: dict) -> set[str]:
    """Types with an entry in linux.namespaces (new or joined by path)."""
    entries = _dict(config.get("linux")).get("namespaces")
    if not isinstance(entries, list):
        return set()
    return {
        e.get("type") for e in entries if isinstance(e, dict) and isinstance(e.get("type"), str)
    }


def sysctl_namespace(key: str) -> str | None:
    """The namespace a sysctl belongs to, or None when it is global (not namespaced)."""
    if key.startswith("net."):
        return "network"
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key in UTS_SYSCTLS:
        return "uts"
    return None


def sysctl_problems(config: dict) -> list[Problem]:
    """Every sysctl must be namespaced, and its namespace must have an entry in
    linux.namespaces (new, or joined by path): otherwise the write changes the host's value.
    runc refuses the same (`vm.swappiness` "is not in a separate kernel namespace")."""
    found: list[Problem] = []
    sysctl = _dict(_dict(config.get("linux")).get("sysctl"))
    if not sysctl:
        return found
    namespaces = _namespace_types(config)
    for key in sysctl:
        path = ("linux", "sysctl", key)
        if not isinstance(key, str) or "/" in key or ".." in key.split("."):
            found.append((path, "invalid sysctl name"))
            continue
        needed = sysctl_namespace(key)
        if needed is None:
            found.append((path, "not a namespaced sysctl (it would change the host's)"))
        elif needed not in namespaces:
            found.append((path, f"requires a {needed} namespace in linux.namespaces"))
    return found


def hostname_problems(config: dict) -> list[Problem]:
    """hostname/domainname need a uts namespace entry (new, or joined: then they are set in
    the joined one), and cannot be given twice through their kernel.* sysctl (runc, crun)."""
    found: list[Problem] = []
    namespaces = _namespace_types(config)
    sysctl = _dict(_dict(config.get("linux")).get("sysctl"))
    for field in ("hostname", "domainname"):
        value = config.get(field)
        if not (isinstance(value, str) and value):
            continue
        if "uts" not in namespaces:
            found.append(((field,), "requires a uts namespace in linux.namespaces"))
        if f"kernel.{field}" in sysctl:
            found.append((("linux", "sysctl", f"kernel.{field}"), f"conflicts with {field}"))
    return found


# --- id lists: "0-3,7" (cpus and memory nodes) ------------------------------------------------
# The largest ids accepted: set_mempolicy(2) takes a nodemask of at most PAGE_SIZE * 8 bits;
# no kernel is built with more than 8192 CPUs (NR_CPUS).
MAX_NODE = 4096 * 8 - 1
MAX_CPU = 8191


def parse_id_list(text: str, what: str, highest: int) -> list[int] | str:
    """`0-3,7` → [0, 1, 2, 3, 7] (sorted, unique); "" → []. A string is the reason it is not
    a list (config-linux.md: comma-separated, with dashes for ranges)."""
    ids: set[int] = set()
    if not text.strip():
        return []
    for item in text.split(","):
        low, dash, high = item.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            return f"`{text}` is not a list of {what}s such as 0-3,7 (`{item.strip()}`)"
        first, last = int(low), int(high) if dash else int(low)
        if first > last:
            return f"`{text}`: the range {first}-{last} runs backwards"
        if last > highest:
            return f"`{text}`: {what} {last} is over the highest possible, {highest}"
        ids.update(range(first, last + 1))
    return sorted(ids)


# --- linux.memoryPolicy (config-linux.md "Memory policy"; set_mempolicy(2)) ---------------------
# Names → the kernel's values (linux/mempolicy.h), in config-linux.md's order.
MPOL_MODES = {
    "MPOL_DEFAULT": 0,
    "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3,
    "MPOL_WEIGHTED_INTERLEAVE": 6,
    "MPOL_PREFERRED": 1,
    "MPOL_PREFERRED_MANY": 5,
    "MPOL_LOCAL": 4,
}
MPOL_FLAGS = {
    "MPOL_F_NUMA_BALANCING": 1 << 13,
    "MPOL_F_RELATIVE_NODES": 1 << 14,
    "MPOL_F_STATIC_NODES": 1 << 15,
}
# What set_mempolicy(2) refuses whatever the host (checked against the kernel, every mode and
# flag, by tests/unit/test_spec13.py): DEFAULT and LOCAL take no nodes, these four need some,
# PREFERRED may have none (then it is LOCAL); STATIC and RELATIVE exclude each other and need
# nodes, except under DEFAULT, which ignores them; NUMA_BALANCING only goes with BIND and (Linux
# 6.10+) PREFERRED_MANY.
MPOL_NODELESS = ("MPOL_DEFAULT", "MPOL_LOCAL")
MPOL_NEEDS_NODES = (
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED_MANY",
)
MPOL_BALANCING_MODES = ("MPOL_BIND", "MPOL_PREFERRED_MANY")


def memory_policy_problems(config: dict) -> list[Problem]:
    """linux.memoryPolicy: a known mode, a node list that mode accepts, known flags that go
    together and with it. Wrong JSON types are left to the type checks (spec.py, the schema).
    An absent `nodes` reads as "" (config-linux.md calls it REQUIRED, but "" is the only valid
    value for MPOL_DEFAULT and MPOL_LOCAL; runc accepts it absent too)."""
    policy = _dict(config.get("linux")).get("memoryPolicy")
    if not isinstance(policy, dict):
        return []
    base = ("linux", "memoryPolicy")
    found: list[Problem] = []
    mode = policy.get("mode")
    if mode is None:
        found.append((base + ("mode",), "is required"))
    elif isinstance(mode, str) and mode not in MPOL_MODES:
        found.append((base + ("mode",), f"unknown mode `{mode}` ({', '.join(MPOL_MODES)})"))
    nodes_text = policy.get("nodes", "")
    nodes: list[int] | None = None
    if isinstance(nodes_text, str):
        parsed = parse_id_list(nodes_text, "node", MAX_NODE)
        if isinstance(parsed, str):
            found.append((base + ("nodes",), parsed))
        else:
            nodes = parsed
    flags = policy.get("flags")
    names: list[str] = []
    for i, flag in enumerate(flags if isinstance(flags, list) else []):
        if isinstance(flag, str) and flag not in MPOL_FLAGS:
            reason = f"unknown flag `{flag}` ({', '.join(MPOL_FLAGS)})"
            found.append((base + ("flags", i), reason))
        elif isinstance(flag, str):
            names.append(flag)
    if mode not in MPOL_MODES:
        return found
    if nodes is not None:
        if nodes and mode in MPOL_NODELESS:
            found.append((base + ("nodes",), f"{mode} takes no nodes, not `{nodes_text}`"))
        elif not nodes and mode in MPOL_NEEDS_NODES:
            found.append((base + ("nodes",), f"{mode} needs at least one node"))
    placement = [f for f in ("MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES") if f in names]
    if len(placement) == 2:
        found.append((base + ("flags",), f"{placement[0]} and {placement[1]} exclude each other"))
    elif placement and mode != "MPOL_DEFAULT" and (mode == "MPOL_LOCAL" or nodes == []):
        found.append((base + ("flags",), f"{placement[0]} needs nodes (it says how to read them)"))
    if "MPOL_F_NUMA_BALANCING" in names and mode not in MPOL_BALANCING_MODES:
        found.append(
            (
                base + ("flags",),
                f"MPOL_F_NUMA_BALANCING only goes with {' or '.join(MPOL_BALANCING_MODES)}, "
                f"not {mode}",
            )
        )
    return found


# --- process.execCPUAffinity (config.md, Linux process) ------------------------------------------
def cpu_affinity_problems(process: dict, path: tuple[str | int, ...]) -> list[Problem]:
    """`initial` and `final` are CPU lists ("" or absent: leave the affinity alone)."""
    affinity = process.get("execCPUAffinity")
    if not isinstance(affinity, dict):
        return []
    found: list[Problem] = []
    for key in ("initial", "final"):
        text = affinity.get(key)
        if isinstance(text, str):
            parsed = parse_id_list(text, "CPU", MAX_CPU)
            if isinstance(parsed, str):
                found.append((path + ("execCPUAffinity", key), parsed))
    return found


# --- LSM labels: process.apparmorProfile, process.selinuxLabel, linux.mountLabel ------------------
LSM_NAMES = {"apparmor": "AppArmor", "selinux": "SELinux"}


def host_lsms() -> frozenset[str]:
    """The security modules active on this host: securityfs's list when it is mounted, else
    what each module exposes itself (runc's checks: AppArmor's `enabled` parameter, a mounted
    selinuxfs)."""
    found = set()
    try:
        with open("/sys/kernel/security/lsm") as f:
            found.update(f.read().strip().split(","))
    except OSError:
        pass
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            if f.read().startswith("Y"):
                found.add("apparmor")
    except OSError:
        pass
    try:
        with open("/sys/fs/selinux/enforce"):
            found.add("selinux")
    except OSError:
        pass
    return frozenset(found)


def _lsm_problem(lsm: str, value: object, lsms: frozenset[str] | None) -> str | None:
    """Why a label for `lsm` cannot be honoured, or None when there is none to honour. Never
    ignored silently: a profile or label that is not applied is confinement that is missing
    (runc fails too, also for AppArmor's "unconfined"). The host is probed only when a label
    is given."""
    if not (isinstance(value, str) and value):
        return None
    if lsms is None:
        lsms = host_lsms()
    name = LSM_NAMES[lsm]
    if lsm in lsms:
        return (
            f"{name} is enabled on this host, but pyoci does not apply {name} labels "
            f"(`{value}` would be ignored)"
        )
    return f"{name} is not enabled on this host: `{value}` cannot be applied"


def process_problems(
    process: object, path: tuple[str | int, ...] = ("process",), lsms: frozenset[str] | None = None
) -> list[Problem]:
    """The rules of one process object, config.json's or `exec --process FILE`'s:
    execCPUAffinity lists, and the AppArmor profile and SELinux label this host cannot apply.
    `lsms` (host_lsms() when None) is for tests."""
    if not isinstance(process, dict):
        return []
    found = cpu_affinity_problems(process, path)
    for key, lsm in (("apparmorProfile", "apparmor"), ("selinuxLabel", "selinux")):
        problem = _lsm_problem(lsm, process.get(key), lsms)
        if problem:
            found.append((path + (key,), problem))
    return found


def config_process_problems(config: dict, lsms: frozenset[str] | None = None) -> list[Problem]:
    """process_problems of config.json's `process`."""
    return process_problems(config.get("process"), ("process",), lsms)


def mount_label_problems(config: dict, lsms: frozenset[str] | None = None) -> list[Problem]:
    """linux.mountLabel, the SELinux context of the container's mounts."""
    problem = _lsm_problem("selinux", _dict(config.get("linux")).get("mountLabel"), lsms)
    return [(("linux", "mountLabel"), problem)] if problem else []


def seccomp_problems(config: dict) -> list[Problem]:
    """config-linux.md, Seccomp: defaultErrnoRet "is only valid with" an action that carries
    an errno; "when the action doesn't support an errno, the runtime MUST print and error and
    fail" (checked here, before a cached filter could skip libseccomp's own checks)."""
    seccomp = _dict(_dict(config.get("linux")).get("seccomp"))
    if "defaultErrnoRet" in seccomp and seccomp.get("defaultAction") not in (
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
    ):
        return [
            (
                ("linux", "seccomp", "defaultErrnoRet"),
                "only valid with defaultAction SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
            )
        ]
    return []


RULES = (
    sysctl_problems,
    seccomp_problems,
    hostname_problems,
    memory_policy_problems,
    config_process_problems,
    mount_label_problems,
)


def problems(config: dict) -> list[Problem]:
    """Every rule's problems, in order (`create` raises the first)."""
    return [problem for rule in RULES for problem in rule(config)]


def ambient_warnings(caps: dict[str, list[int]], names: tuple[str, ...]) -> list[str]:
    """Ambient capabilities the kernel cannot raise (not both permitted and inheritable): the
    spec says a capability that cannot be granted MUST be logged as a warning and the runtime
    SHOULD NOT fail (runc and crun run `runc spec`'s default, which has exactly this).
    `names[n]` is capability n's name."""
    allowed = set(caps.get("permitted", [])) & set(caps.get("inheritable", []))
    return [
        f"process.capabilities.ambient: {names[cap]} is not both permitted and inheritable: "
        "not raised"
        for cap in caps.get("ambient", [])
        if cap not in allowed
    ]


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _plain(key: str) -> bool:
    """A key that reads back unquoted: dot-separated runs of letters, digits, `_` and `-`
    (field names, sysctl names, annotation keys such as `org.pyoci.net.bridge`)."""
    return all(run and _NAME_CHARS.issuperset(run) for run in key.split("."))


def dotted(path: tuple[str | int, ...]) -> str:
    """`("mounts", 3, "destination")` → `mounts[3].destination`: how `create` and `validate`
    both name fields. A key that would not read back (empty, a space, `: `) is quoted as a
    JSON string: `annotations[""]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _plain(part):
            text += f".{part}" if text else part
        else:
            from pyoci.jsonfast import dumps  # only on an error's path

            text += f"[{dumps(part)}]"
    return text
