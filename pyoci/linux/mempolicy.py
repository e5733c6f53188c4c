"""linux.memoryPolicy: the container's NUMA memory policy, through set_mempolicy(2).

Planned in the parent, in pure Python (no ctypes there: the parent of `create` never loads
it): the config's rules (pyoci.rules.memory_policy_problems, shared with `validate`) are checked,
and mode | flags becomes one int, the node list a nodemask of native unsigned longs. Applied
with one raw syscall by the process that goes on to exec the user's program (the init, and
`exec`'s last stage): the policy belongs to the thread, is inherited by fork and kept across
execve (set_mempolicy(2)), so every process of the container starts with it. Applied before
any seccomp filter (docker's default profile denies set_mempolicy) and needs no privilege.

The kernel still decides what depends on the host: nodes that have no memory, or that the
cpuset does not allow, are EINVAL; the error then names the host's memory nodes.
"""

from __future__ import annotations

import sys

from pyoci import rules
from pyoci.errors import PyociError
from pyoci.linux.syscalls import SYSCALL_NR

_LONG_BITS = 64 if sys.maxsize > 2**32 else 32
FIELD = "linux.memoryPolicy"


class MemoryPolicyPlan:
    """set_mempolicy(2)'s three arguments, and what to say if the kernel refuses them."""

    __slots__ = ("mode", "nodemask", "maxnode", "description", "host_nodes")

    def __init__(self, mode: int, nodemask: bytes, maxnode: int, description: str) -> None:
        self.mode = mode  # the MPOL_* mode, or-ed with the MPOL_F_* flags
        self.nodemask = nodemask  # unsigned longs, native byte order; b"" for no nodes
        self.maxnode = maxnode  # bits in nodemask + 1 (the kernel reads maxnode - 1 bits)
        self.description = description
        self.host_nodes = _host_memory_nodes()  # read now: the init cannot, after the pivot


def nodemask(nodes: list[int]) -> tuple[bytes, int]:
    """Node numbers → (the unsigned long array, maxnode) set_mempolicy(2) expects."""
    if not nodes:
        return b"", 0
    words = [0] * (max(nodes) // _LONG_BITS + 1)
    for node in nodes:
        words[node // _LONG_BITS] |= 1 << (node % _LONG_BITS)
    raw = b"".join(w.to_bytes(_LONG_BITS // 8, sys.byteorder) for w in words)
    return raw, len(words) * _LONG_BITS + 1


def plan_memory_policy(raw: object) -> MemoryPolicyPlan | None:
    """linux.memoryPolicy (the raw JSON value, None when absent) → a plan, or PyociError
    naming `linux.memoryPolicy.<field>` (the same rules `pyoci validate` applies)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PyociError(f"{FIELD}: must be an object")
    for key, kind in (("mode", str), ("nodes", str), ("flags", list)):
        if raw.get(key) is not None and not isinstance(raw[key], kind):
            what = "a string" if kind is str else "an array"
            raise PyociError(f"{FIELD}.{key}: must be {what}")
    for path, reason in rules.memory_policy_problems({"linux": {"memoryPolicy": raw}}):
        raise PyociError(f"{rules.dotted(path)}: {reason}")
    mode_name = raw["mode"]
    flags = raw.get("flags") or []
    mode = rules.MPOL_MODES[mode_name]
    for flag in flags:
        mode |= rules.MPOL_FLAGS[flag]
    nodes_text = raw.get("nodes") or ""
    nodes = rules.parse_id_list(nodes_text, "node", rules.MAX_NODE)
    assert isinstance(nodes, list)  # the rules above reported a bad list
    mask, maxnode = nodemask(nodes)
    description = mode_name + (f" nodes {nodes_text}" if nodes else "")
    if flags:
        description += " " + "|".join(flags)
    return MemoryPolicyPlan(mode, mask, maxnode, description)


def apply_memory_policy(plan: MemoryPolicyPlan | None) -> None:
    """set_mempolicy(2) for the calling thread. Call it once sysbind is loaded (stage 1 loads
    it on the host), so nothing is imported here."""
    if plan is None:
        return
    from pyoci.linux import sysbind

    try:
        sysbind.set_mempolicy(plan.mode, plan.nodemask, plan.maxnode)
    except OSError as err:
        reason = err.strerror.lower() if err.strerror else str(err)
        if err.errno == 38 and "set_mempolicy" in SYSCALL_NR:  # ENOSYS from the kernel
            reason = "this kernel has no NUMA support (CONFIG_NUMA)"
        elif err.errno == 22 and plan.host_nodes is not None:  # EINVAL: the host's nodes
            reason += f" (this host's memory nodes: {plan.host_nodes or 'none'})"
        raise PyociError(
            f"{FIELD}: set_mempolicy {plan.description}: {reason}", err.errno
        ) from None


def _host_memory_nodes() -> str | None:
    """The host's NUMA nodes with memory (`0-1`), for error messages; None if unknown."""
    try:
        with open("/sys/devices/system/node/has_memory") as f:
            return f.read().strip()
    except OSError:
        return None
