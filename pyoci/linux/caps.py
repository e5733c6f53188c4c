"""Credentials of the container process: bounding set, user/groups, the four other cap sets.

Order matters and is the kernel's, not ours: the bounding set can only be dropped while we
still hold CAP_SETPCAP; changing uid from 0 clears the effective and permitted sets unless
PR_SET_KEEPCAPS is on; ambient caps can only be raised once they are permitted and inheritable.
We use python-prctl's C module `_prctl` directly (one `capset` for three sets, no Python-level
name tables to build at import); python-prctl has no ambient support, so that is raw prctl.
"""

from __future__ import annotations

import os

import _prctl  # python-prctl's C extension

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc


def last_cap() -> int:
    """The highest capability number this kernel knows (40 on 5.9+)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def drop_bounding(keep: list[int], last: int) -> None:
    """Drop every capability not in `keep` from the bounding set."""
    wanted = set(keep)
    for cap in range(last + 1):
        if cap not in wanted:
            try:
                _prctl.prctl(_prctl.PR_CAPBSET_DROP, cap)
            except OSError as err:
                raise PyociError(
                    f"process.capabilities.bounding: dropping cap {cap}: {err.strerror.lower()}",
                    err.errno,
                ) from None


def switch_user(uid: int, gid: int, groups: list[int], set_groups: bool) -> None:
    """setgroups, setresgid, setresuid, keeping the permitted set across the uid change."""
    try:
        _prctl.prctl(_prctl.PR_SET_KEEPCAPS, 1)
        if set_groups:
            os.setgroups(groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        _prctl.prctl(_prctl.PR_SET_KEEPCAPS, 0)
    except OSError as err:
        raise PyociError(
            f"process.user: switching to uid {uid} gid {gid}: {err.strerror.lower()}", err.errno
        ) from None


def set_sets(caps: dict[str, list[int]], last: int) -> None:
    """Set effective, permitted and inheritable exactly, then the ambient set."""
    from pyoci.linux import sysbind

    every = range(last + 1)
    eff = set(caps.get("effective", []))
    prm = set(caps.get("permitted", []))
    inh = set(caps.get("inheritable", []))
    try:
        _prctl.set_caps(
            list(eff),
            list(prm),
            list(inh),
            [c for c in every if c not in eff],
            [c for c in every if c not in prm],
            [c for c in every if c not in inh],
        )
    except OSError as err:
        raise PyociError(
            f"process.capabilities: capset: {err.strerror.lower()}", err.errno
        ) from None
    sysbind.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in caps.get("ambient", []):
        try:
            sysbind.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, cap)
        except OSError as err:
            raise PyociError(
                f"process.capabilities.ambient: raising cap {cap} "
                f"(must also be permitted and inheritable): {err.strerror.lower()}",
                err.errno,
            ) from None


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: execve can never grant more privileges (setuid bits, file caps)."""
    _prctl.prctl(_prctl.PR_SET_NO_NEW_PRIVS, 1)
