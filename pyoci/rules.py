"""Cross-field rules of config.json, shared by `create` and `pyoci validate`.

Each rule is a pure function of the raw config document that returns problems as
`(path, reason)`, the path a tuple of keys and indexes (`("linux", "sysctl", "vm.swappiness")`).
`spec.py` raises the first one on `create` (cheaply, no jsonschema), `validate.py` lists them
all: one definition, so the two can never disagree again about what a runtime accepts. Where
the spec is silent these follow runc, whose behaviour users' configs were written for.

Warnings (what the spec says a runtime MUST log and SHOULD NOT fail on) are separate:
`ambient_warnings`.
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
    return {e.get("type") for e in entries if isinstance(e, dict)}


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


RULES = (sysctl_problems, hostname_problems)


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


def dotted(path: tuple[str | int, ...]) -> str:
    """`("mounts", 3, "destination")` → `mounts[3].destination`, as `create` names fields."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
