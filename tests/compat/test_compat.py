"""Differential tests on configs nobody here wrote: every config of the corpus (compat_corpus:
`runc spec`, `crun spec`, and what podman, docker and ctr generate for common command lines,
captured at test time) runs under runc and under pyoci on the same busybox rootfs, and what the
container's process sees must be the same: exit code, capability sets, NoNewPrivs and seccomp
mode, uid/gid/groups, env, every mount with its flags and the mode of its mount point,
hostname, process group and session, rlimits, umask, cwd, oom_score_adj and open fds — and
pyoci leaves nothing behind.

A difference is either INTENDED (the spec sentence that makes pyoci right and runc wrong; the
test asserts the difference is exactly that one) or UNRESOLVED (reported to be fixed or
justified: xfail(strict=True), raising KnownDifference only when nothing but the listed lines
differ, so any other difference is a plain failure, and an entry no longer seen fails with
"no longer seen: remove it"). README.md has both tables.

Needs root, runc, pyoci and the busybox rootfs; each client's cases skip when it is missing.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from compat_corpus import CASES, RUNC, SLOW_CLIENTS, Case, Corpus
from compat_probe import FIELDS, Run, execute, make_rootfs, new_run, prepare
from conftest import require_root_and_rootfs

pytestmark = [pytest.mark.compat, pytest.mark.root]


class KnownDifference(Exception):
    """Only the lines of UNRESOLVED entries differ (the expected failure of an xfail)."""


@dataclass(frozen=True)
class Difference:
    """Lines only runc shows and lines only pyoci shows in one field group (each pattern is a
    regular expression that must match at least one such line, and together they must cover
    them all), or `refused`: pyoci refuses the config with a message matching it (all fields).
    `cases`: fnmatch patterns on Case.id; a pattern starting with "!" excludes."""

    title: str
    fields: tuple[str, ...]
    cases: tuple[str, ...]
    runc: tuple[str, ...] = ()
    pyoci: tuple[str, ...] = ()
    refused: str = ""
    why: str = ""

    def applies(self, case: Case, field: str) -> bool:
        if field not in self.fields:
            return False
        take = [p for p in self.cases if not p.startswith("!")]
        drop = [p[1:] for p in self.cases if p.startswith("!")]
        return any(fnmatch.fnmatch(case.id, p) for p in take) and not any(
            fnmatch.fnmatch(case.id, p) for p in drop
        )


# Which cases have what (see README.md, "The corpus"): masked paths in every unprivileged
# config; a `cgroup` mount (ro unless privileged) in all but ctr's.
UNPRIVILEGED = ("runc-spec", "runc-spec-rootless", "crun-spec", "podman-*", "docker-*", "ctr-*",
                "!*-privileged")  # fmt: skip
CGROUP_RO = ("runc-spec", "runc-spec-rootless", "crun-spec", "podman-*", "docker-*",
             "!*-privileged")  # fmt: skip
CGROUP_ANY = ("runc-spec", "runc-spec-rootless", "crun-spec", "podman-*", "docker-*")
ALL_BUT_LEFTOVERS = tuple(f for f in FIELDS if f != "leftovers")
MASKED_DIRS = r"(/proc/acpi|/proc/asound|/proc/scsi|/sys/firmware|/sys/dev/block|/sys/fs/selinux)"


def _per_field(title: str, cases: tuple[str, ...], why: str, **by_field) -> list[Difference]:
    """One Difference per field group: by_field maps mounts=/modes= to (runc, pyoci) lists."""
    names = {"mounts": "mounts", "modes": "mount-modes"}
    return [
        Difference(title, (names[key],), cases, tuple(runc), tuple(pyoci), why=why)
        for key, (runc, pyoci) in by_field.items()
    ]


INTENDED: list[Difference] = [
    Difference(
        "a cgroup mount with `ro` is read-only at /sys/fs/cgroup too (cgroup v1 view)",
        ("mounts",),
        CGROUP_RO,
        runc=(
            r"/sys/fs/cgroup root=/ rw,nosuid,nodev,noexec,relatime private tmpfs tmpfs "
            r"rw,mode=755",
        ),
        pyoci=(
            r"/sys/fs/cgroup root=/ ro,nosuid,nodev,noexec,relatime private tmpfs tmpfs "
            r"ro,mode=755",
        ),
        why='config.md, Mounts: `options` (array of strings, OPTIONAL) "Mount options of the '
        'filesystem to be used. Linux: supported options are listed in the mount(8) man page"; '
        'mount(8): `ro` "Mount the filesystem read-only." The config\'s /sys/fs/cgroup mount '
        "says `ro`; runc 1.1.5 leaves the tmpfs it mounts there writable (only the controller "
        "binds below it are read-only).",
    ),
    Difference(
        "masked files: the /dev/null bind is read-only (runc's is read-write)",
        ("mounts",),
        UNPRIVILEGED,
        runc=(
            r"/proc/(keys|timer_list|kcore|latency_stats|timer_stats|sched_debug) root=/null "
            r"rw,\S+ private \S+ \S+ \S+",
        ),
        pyoci=(
            r"/proc/(keys|timer_list|kcore|latency_stats|timer_stats|sched_debug) root=/null "
            r"ro,\S+ private \S+ \S+ \S+",
        ),
        why='config-linux.md, Masked Paths: "maskedPaths ... will mask over the provided paths '
        'inside the container so that they cannot be read"; nothing asks for a writable mask, '
        "and a writable one is what runc CVE-2025-31133/52881 turned into a host write. pyoci "
        "binds a verified /dev/null and remounts it read-only (README, Security).",
    ),
    *_per_field(
        "hybrid host: pyoci also mounts the cgroup2 hierarchy at /sys/fs/cgroup/unified",
        CGROUP_ANY,
        mounts=(
            [],
            [
                r"/sys/fs/cgroup/unified root=/<cgroup> (ro|rw),nosuid,nodev,noexec,"
                r"relatime private cgroup2 cgroup2 rw"
            ],
        ),
        modes=([], [r"/sys/fs/cgroup/unified 755 0:0 directory"]),
        why='config-linux.md, Unified: `linux.resources.unified` sets cgroup v2 files "in the '
        "container's cgroup\"; on a hybrid host they are only visible to the container through "
        "the cgroup2 mount at /sys/fs/cgroup/unified, which the host has and pyoci binds (the "
        "container's own directory). runc 1.1.5 binds the v1 controllers only.",
    ),
]

UNRESOLVED: list[Difference] = []


# Each captured config once (the clients' cases marked slow, as in _params).
EACH_CASE = [
    pytest.param(c, marks=[pytest.mark.clients] if c.client in SLOW_CLIENTS else [], id=c.id)
    for c in CASES
]


def _params() -> Iterator:
    for case in CASES:
        for field in FIELDS:
            marks = [pytest.mark.clients] if case.client in SLOW_CLIENTS else []
            open_ones = sorted({d.title for d in UNRESOLVED if d.applies(case, field)})
            if open_ones:
                reason = "unresolved: " + "; ".join(open_ones)
                marks.append(pytest.mark.xfail(strict=True, raises=KnownDifference, reason=reason))
            yield pytest.param(case, field, marks=marks, id=f"{case.id}-{field}")


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    require_root_and_rootfs()
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"runc not found at {RUNC}: the reference runtime")
    made = Corpus(tmp_path_factory.mktemp("corpus"))
    try:
        yield made
    finally:
        problems = made.close()
    assert not problems, "left behind by the clients:\n  " + "\n  ".join(problems)


class Lab:
    """Runs each case once under runc and once under pyoci; caches both runs."""

    def __init__(self, corpus: Corpus, top: Path, pyoci: str) -> None:
        self.corpus = corpus
        self.top = top
        self.rootfs = make_rootfs(top / "rootfs")
        self.binaries = {"runc": RUNC, "pyoci": pyoci}
        self.runs: dict[Case, dict[str, Run]] = {}

    def pair(self, case: Case) -> dict[str, Run]:
        if case not in self.runs:
            captured = self.corpus.get(case)
            runs = {}
            for runtime, binary in self.binaries.items():
                run = new_run(runtime, self.top / case.id / runtime)
                marker = uuid.uuid4().hex
                bundle = prepare(
                    captured.config, captured.sources, captured.private, run, marker, self.rootfs
                )
                execute(binary, bundle, run, marker)
                runs[runtime] = run
            self.runs[case] = runs
        return self.runs[case]


@pytest.fixture(scope="session")
def lab(corpus: Corpus, pyoci_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab(corpus, tmp_path_factory.mktemp("compat"), pyoci_bin)


# --- the tests -----------------------------------------------------------------------------------
def _explain(case: Case, lab: Lab, runs: dict[str, Run]) -> str:
    captured = lab.corpus.get(case)
    lines = [f"config from: {' '.join(captured.command)} (client exit {captured.client_exit})"]
    for name, run in runs.items():
        lines.append(f"{name}: exit {run.exit}, report {run.workdir / 'report.json'}")
        if run.stderr.strip():
            lines.append(f"  stderr: {run.stderr.strip()[-1500:]}")
    if runs["runc"].changes:
        lines.append("changed to run here: " + "; ".join(runs["runc"].changes))
    return "\n".join(lines)


def _consume(lines: list[str], patterns: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(lines no pattern matches, patterns that matched no line)."""
    unseen = [p for p in patterns if not any(re.fullmatch(p, line) for line in lines)]
    rest = [line for line in lines if not any(re.fullmatch(p, line) for p in patterns)]
    return rest, unseen


def _diff(runc: list[str], pyoci: list[str]) -> str:
    return "\n".join(difflib.unified_diff(runc, pyoci, "runc", "pyoci", lineterm="", n=1))


@pytest.mark.parametrize(("case", "field"), list(_params()))
def test_same_as_runc(lab: Lab, case: Case, field: str) -> None:
    runs = lab.pair(case)
    runc_run, pyoci_run = runs["runc"], runs["pyoci"]
    runc, pyoci = runc_run.fields()[field], pyoci_run.fields()[field]
    if field == "leftovers":  # nothing of pyoci's may remain, whatever runc leaves
        assert not pyoci, f"pyoci left behind: {pyoci}\n" + _explain(case, lab, runs)
        return
    if not runc_run.completed:
        # runc refuses the config (crun spec --rootless leaves the id mappings to crun): pyoci
        # must refuse it too, and there is nothing else to compare.
        if field != "exit":
            pytest.skip(f"runc does not run this config: {runc_run.stderr.strip()[-300:]}")
        assert runc_run.exit != 0, _explain(case, lab, runs)
        assert pyoci_run.exit != 0 and not pyoci_run.completed, (
            "runc refuses this config but pyoci ran it\n" + _explain(case, lab, runs)
        )
        return

    unresolved = [d for d in UNRESOLVED if d.applies(case, field)]
    for d in unresolved:
        if d.refused:
            if not pyoci_run.completed and re.search(d.refused, pyoci_run.stderr):
                raise KnownDifference(f"{d.title}: {pyoci_run.stderr.strip()}")
            raise AssertionError(
                f"no longer seen: {d.title!r} — remove it from UNRESOLVED and README.md\n"
                + _explain(case, lab, runs)
            )
    runc_only = [line for line in runc if line not in pyoci]
    pyoci_only = [line for line in pyoci if line not in runc]
    problems = []
    for table, entries in (("INTENDED", INTENDED), ("UNRESOLVED", unresolved)):
        for d in entries:
            if not d.applies(case, field) or d.refused:
                continue
            runc_only, runc_unseen = _consume(runc_only, d.runc)
            pyoci_only, pyoci_unseen = _consume(pyoci_only, d.pyoci)
            if runc_unseen or pyoci_unseen:
                problems.append(
                    f"{table} entry {d.title!r} no longer (fully) seen: runc {runc_unseen},"
                    f" pyoci {pyoci_unseen}: fix the entry or remove it (and its README row)"
                )
    if runc_only or pyoci_only:
        problems.insert(0, f"{field} differs for {case.id}:\n{_diff(runc_only, pyoci_only)}")
    assert not problems, "\n".join(problems) + "\n" + _explain(case, lab, runs)
    if unresolved:
        raise KnownDifference("; ".join(sorted({d.title for d in unresolved})))


@pytest.mark.parametrize("case", EACH_CASE)
def test_config_is_the_clients(lab: Lab, case: Case) -> None:
    """The corpus is what the tool wrote: a client's config runs our `true` (so it is the
    config of our command line), a spec tool's runs `sh`; and the probe proves it ran by a
    token no config contains."""
    captured = lab.corpus.get(case)
    expected = ["sh"] if case.client in ("runc", "crun") else ["true"]
    assert captured.config["process"]["args"] == expected, captured.command
    runs = lab.pair(case)
    for run in runs.values():
        assert run.token not in str(captured.config)
        if run.completed:
            assert run.stdout.count(run.token) == 2, run.stdout[:500]


@pytest.mark.parametrize("case", EACH_CASE)
def test_validate_agrees_with_runc_on_the_clients_config(lab: Lab, case: Case) -> None:
    """`pyoci validate` on the config a tool wrote (as run here, the bundle pyoci ran): it
    finds nothing wrong with what runc runs, and something wrong with what runc refuses. A
    validator that flags the configs podman, docker, containerd or `runc spec` write is one
    nobody can use; one that passes what runc refuses misses a real error."""
    from pyoci.validate import validate_bundle

    runs = lab.pair(case)
    problems = validate_bundle(runs["pyoci"].workdir / "bundle")
    if runs["runc"].completed:
        assert problems == [], f"{case.id}: runc runs it, validate says {problems}"
    else:
        assert problems, f"{case.id}: runc refuses it ({runs['runc'].stderr.strip()[-200:]})"
