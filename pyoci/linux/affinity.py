"""process.execCPUAffinity: on which CPUs an `exec`'d process runs (config.md, Linux process).

config.md: the setting "is not applicable to the container's init process"; it is for the
processes `exec` starts (runc and crun do the same), from `exec --process FILE` or from
config.json's `process`, which `exec` starts from.

* `initial`: the CPUs the runtime's process runs on "before the transition to container's
  cgroup". pyoci's exec is born into the cgroup2 directory by clone3 from the parent, so the
  parent sets it on itself before that fork (and may restore its own mask after).
* `final`: the CPUs the process runs on after it joined the cgroups (joining a cpuset resets
  the affinity to the cpuset's CPUs), set right before its exec, before any seccomp filter
  (a filter may deny sched_setaffinity). Absent or "": left as the kernel made it.

os.sched_setaffinity is the syscall itself: no ctypes, so this module costs nothing.
"""

from __future__ import annotations

import os

from pyoci import rules
from pyoci.errors import PyociError

FIELD = "process.execCPUAffinity"


class AffinityPlan:
    """The two CPU sets (None: leave the affinity alone), with their config text."""

    __slots__ = ("initial", "final", "initial_text", "final_text")

    def __init__(self, initial: list[int] | None, final: list[int] | None, texts: dict) -> None:
        self.initial = initial
        self.final = final
        self.initial_text = texts.get("initial") or ""
        self.final_text = texts.get("final") or ""


def plan_exec_cpu_affinity(raw: object) -> AffinityPlan | None:
    """process.execCPUAffinity (raw JSON, None when absent) → a plan, None when there is
    nothing to do, or PyociError naming `process.execCPUAffinity.<initial|final>`."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PyociError(f"{FIELD}: must be an object")
    for key in ("initial", "final"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise PyociError(f"{FIELD}.{key}: must be a string")
    for path, reason in rules.cpu_affinity_problems({"execCPUAffinity": raw}, ("process",)):
        raise PyociError(f"{rules.dotted(path)}: {reason}")
    sets: dict[str, list[int] | None] = {}
    for key in ("initial", "final"):
        text = raw.get(key)
        parsed = rules.parse_id_list(text, "CPU", rules.MAX_CPU) if text else []
        assert isinstance(parsed, list)  # the rules above reported a bad list
        sets[key] = parsed or None
    if sets["initial"] is None and sets["final"] is None:
        return None
    return AffinityPlan(sets["initial"], sets["final"], raw)


def apply_initial_affinity(plan: AffinityPlan | None) -> set[int] | None:
    """Pin the calling process (the runtime's, before it forks into the container's cgroups)
    to `initial`. Returns the mask it had, for restore_affinity, or None if nothing changed."""
    if plan is None or plan.initial is None:
        return None
    previous = os.sched_getaffinity(0)
    _set(plan.initial, f"{FIELD}.initial", plan.initial_text)
    return previous


def restore_affinity(previous: set[int] | None) -> None:
    """Give the runtime's process back the mask apply_initial_affinity returned."""
    if previous is not None:
        try:
            os.sched_setaffinity(0, previous)
        except OSError:
            pass  # only the runtime's own placement: nothing of the container's depends on it


def apply_final_affinity(plan: AffinityPlan | None) -> None:
    """Pin the calling process (in the container's cgroups, about to exec) to `final`."""
    if plan is not None and plan.final is not None:
        _set(plan.final, f"{FIELD}.final", plan.final_text)


def _set(cpus: list[int], field: str, text: str) -> None:
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as err:
        reason = err.strerror.lower() if err.strerror else str(err)
        if err.errno == 22:  # EINVAL: no CPU of the list is online and allowed
            allowed = _cpu_list(os.sched_getaffinity(0))
            reason = f"none of these CPUs is usable here (allowed: {allowed})"
        raise PyociError(f"{field}: `{text}`: {reason}", err.errno) from None


def _cpu_list(cpus: set[int]) -> str:
    """{0, 1, 2, 5} → "0-2,5"."""
    out: list[str] = []
    for cpu in sorted(cpus):
        if out and out[-1].split("-")[-1] == str(cpu - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{cpu}"
        else:
            out.append(str(cpu))
    return ",".join(out)
