"""Run one captured config under a runtime and report what the container's process sees.

`prepare()` turns a captured config into a bundle with as few changes as running it here needs
(each is listed in README.md): a private copy of the busybox rootfs, `process.args` replaced by
the probe, no terminal, no hooks, a fresh cgroupsPath, no namespace `path` (the client's
namespaces are gone), same-kind stand-ins for bind-mount sources the client has removed, and
no capability this host's root lacks (docker --privileged asks for all of them).
Everything else — capabilities, user, env, mounts, masked paths, seccomp, rlimits, resources —
is the client's.

The probe is busybox `sh -c`: it reads its *own* /proc files ($$, through redirections made by
the shell, so no exec changes capabilities and no ptrace check applies), prints them in
sections, and ends with a token that proves it ran to the end. `parse()` turns the output into
normalized field groups, compared line by line.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from conftest import MARKER_ENV, REPO, Pyoci

PROBE_EXIT = 0
PROBE = r"""
echo "@@begin {token}"
echo @@status
while IFS= read -r l; do
  case "$l" in Cap*|NoNewPrivs*|Seccomp*|Uid*|Gid*|Groups*|Umask*) echo "$l";; esac
done < /proc/$$/status
echo @@id; id
echo @@environ; tr '\0' '\n' < /proc/$$/environ
echo @@mountinfo; cat < /proc/$$/mountinfo
echo @@modes; set --
while read -r _ _ _ _ point _; do set -- "$@" "$point"; done < /proc/$$/mountinfo
stat -c '%n %a %u:%g %F' "$@"
echo @@dev; stat -c '%N %a %u:%g %F %t:%T' /dev/* /dev/*/* /dev/*/*/* 2>/dev/null
echo @@hostname; hostname; cat < /proc/sys/kernel/domainname
echo @@stat; cat < /proc/$$/stat
echo @@limits; cat < /proc/$$/limits
echo @@umask; umask
echo @@cwd; pwd -P
echo @@oom; cat < /proc/$$/oom_score_adj
echo @@fds; echo /proc/$$/fd/*
echo "@@end {token}"
exit {code}
"""

CAP_NAMES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]  # fmt: skip

# The field groups a user sees, in report order.
FIELDS = [
    "exit", "caps", "ids", "env", "mounts", "mount-modes", "dev", "hostname", "pgrp-session",
    "rlimits", "umask", "cwd", "oom-fds", "leftovers",
]  # fmt: skip


@dataclass
class Run:
    runtime: str  # "runc" or "pyoci"
    workdir: Path
    cid: str
    cgroup: str
    token: str
    exit: int = -1
    stdout: str = ""
    stderr: str = ""
    leftovers: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()  # what prepare() changed in the config

    @property
    def completed(self) -> bool:
        """The probe ran to its end (the token is only in the script, never in a config)."""
        return f"@@end {self.token}" in self.stdout and self.exit == PROBE_EXIT

    def fields(self) -> dict[str, list[str]]:
        return parse(self)


# --- the bundle ----------------------------------------------------------------------------------
def _bind(mount: dict) -> bool:
    options = mount.get("options") or []
    return mount.get("type") == "bind" or "bind" in options or "rbind" in options


@functools.cache
def host_bounding() -> frozenset[str]:
    """The capabilities this (root) test process may hand on: its bounding set."""
    with open("/proc/self/status") as f:
        mask = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
    return frozenset(caps(mask).split(","))


def make_rootfs(dest: Path) -> Path:
    """A fresh busybox rootfs made by the project's own tools/mkrootfs.sh (what `make
    bundles` runs): bundles/busybox/rootfs is shared with every other test, which may leave
    files (or, when a runtime misbehaves, mounts) in it."""
    subprocess.run([str(REPO / "tools" / "mkrootfs.sh"), str(dest)], check=True,
                   capture_output=True)  # fmt: skip
    return dest


def prepare(
    config: dict, sources: dict[str, str], private: list[str], run: Run, marker: str, rootfs: Path
) -> Path:
    """Write run.workdir/bundle (config.json + a copy of `rootfs`) from a captured config."""
    config = copy.deepcopy(config)
    changes = []
    bundle = run.workdir / "bundle"
    bundle.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(rootfs), str(bundle / "rootfs")], check=True)
    config.setdefault("root", {})["path"] = "rootfs"
    process = config.setdefault("process", {})
    process["args"] = ["/bin/sh", "-c", PROBE.format(token=run.token, code=PROBE_EXIT)]
    if process.pop("terminal", False):
        changes.append("process.terminal: false")
    process.pop("consoleSize", None)
    process["env"] = [*process.get("env", []), f"{MARKER_ENV}={marker}"]
    for name, caps_set in (process.get("capabilities") or {}).items():
        lacking = [c for c in caps_set if c not in host_bounding()]
        if lacking:  # docker --privileged asks for all; root here lacks CAP_SYS_RESOURCE
            process["capabilities"][name] = [c for c in caps_set if c not in lacking]
            changes.append(f"process.capabilities.{name}: without {','.join(lacking)} (not ours)")
    if config.pop("hooks", None):
        changes.append("hooks removed")
    linux = config.setdefault("linux", {})
    linux["cgroupsPath"] = f"/{run.cgroup}"
    for ns in linux.get("namespaces") or []:
        if "path" in ns:
            changes.append(f"namespace {ns['type']}: new, not {ns.pop('path')}")
    stand_ins = run.workdir / "sources"
    for i, mount in enumerate(config.get("mounts") or []):
        source = mount.get("source", "")
        if not (_bind(mount) and source.startswith("/")):
            continue
        theirs = any(source == p or source.startswith(p + "/") for p in private)
        if not theirs and os.path.exists(source):
            continue
        kind = sources.get(source, "missing")
        if kind == "missing":  # it did not exist when the client ran runc either
            kind = "dir"
        stand_ins.mkdir(exist_ok=True)
        stand_in = stand_ins / f"{i}-{Path(source).name}"
        if kind == "dir":
            stand_in.mkdir()
        else:
            stand_in.write_text("")
        mount["source"] = str(stand_in)
        changes.append(f"mount {mount['destination']}: source a {kind} stand-in")
    run.changes = tuple(changes)
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return bundle


def cgroup_dirs(name: str) -> list[Path]:
    base = Path("/sys/fs/cgroup")
    found = [base / name] if (base / name).is_dir() else []
    return found + [p for p in base.glob(f"*/{name}") if p.is_dir()]


def execute(binary: str, bundle: Path, run: Run, marker: str) -> None:
    """`BINARY --root PRIVATE run --bundle B ID` in the foreground; then leftovers."""
    runner = Pyoci(binary, run.workdir / "state", run.workdir, marker)
    result = runner("run", "--bundle", str(bundle), run.cid, timeout=60)
    run.exit, run.stdout, run.stderr = result.returncode, result.stdout, result.stderr
    problems = runner.cleanup()
    for cgroup in cgroup_dirs(run.cgroup):
        problems.append(f"cgroup {cgroup}")
        for sub in sorted(
            (p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            try:
                sub.rmdir()
            except OSError:
                pass
        try:
            cgroup.rmdir()
        except OSError:
            pass
    run.leftovers = tuple(sorted(problems))
    report = {"exit": run.exit, "stdout": run.stdout, "stderr": run.stderr,
              "changes": run.changes, "fields": run.fields()}  # fmt: skip
    (run.workdir / "report.json").write_text(json.dumps(report, indent=1))


def new_run(runtime: str, workdir: Path) -> Run:
    tag = uuid.uuid4().hex[:10]
    return Run(runtime, workdir, f"compat-{runtime}-{tag}", f"pyoci-compat-{tag}", uuid.uuid4().hex)


# --- the report ----------------------------------------------------------------------------------
def sections(stdout: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("@@"):
            current = line[2:].split()[0]
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return found


def caps(mask: str) -> str:
    value = int(mask, 16)
    names = [f"CAP_{n}" for i, n in enumerate(CAP_NAMES) if value >> i & 1]
    unknown = value >> len(CAP_NAMES)
    return ",".join(names + ([f"0x{unknown << len(CAP_NAMES):x}"] if unknown else [])) or "-"


def _mountinfo_line(line: str, run: Run) -> str:
    """mount point, root, per-mount options, propagation (ids dropped), type, source, super
    options; the run's own directory and cgroup name replaced by placeholders."""
    left, _, right = line.partition(" - ")
    fields = left.split()
    root, point, options, optional = fields[3], fields[4], fields[5], fields[6:]
    propagation = ",".join(sorted(re.sub(r"[:\d]+$", "", o) for o in optional)) or "private"
    fstype, source, superopts = (right.split() + ["", "", ""])[:3]
    text = f"{point} root={root} {options} {propagation} {fstype} {source} {superopts}"
    return text.replace(str(run.workdir), "<run>").replace(run.cgroup, "<cgroup>")


def _stat(line: str) -> list[str]:
    """pid/ppid/pgrp/session/tty/tpgid/nice/policy from /proc/PID/stat, pgrp and session said
    relative to the pid."""
    rest = line.rpartition(")")[2].split()
    pid = int(line.split()[0])
    ppid, pgrp, session, tty, tpgid = (int(x) for x in rest[1:6])
    nice, policy = rest[16], rest[38]

    def rel(value: int) -> str:
        return "pid" if value == pid else str(value)

    return [f"pid={pid}", f"ppid={ppid}", f"pgrp={rel(pgrp)}", f"session={rel(session)}",
            f"tty_nr={tty}", f"tpgid={tpgid}", f"nice={nice}", f"policy={policy}"]  # fmt: skip


def parse(run: Run) -> dict[str, list[str]]:
    s = sections(run.stdout)
    status = dict(line.split(":", 1) for line in s.get("status", []) if ":" in line)
    status = {k: v.strip() for k, v in status.items()}
    out: dict[str, list[str]] = {"exit": [f"exit={run.exit}", f"probe-ran={run.completed}"]}
    out["caps"] = [f"{k}: {caps(status[k])}" for k in ("CapInh", "CapPrm", "CapEff", "CapBnd",
                                                       "CapAmb") if k in status]  # fmt: skip
    out["caps"] += [f"{k}: {status[k]}" for k in ("NoNewPrivs", "Seccomp") if k in status]
    out["ids"] = [f"{k}: {' '.join(status[k].split())}" for k in ("Uid", "Gid", "Groups")
                  if k in status] + [f"id: {line}" for line in s.get("id", [])]  # fmt: skip
    marker = f"{MARKER_ENV}="
    out["env"] = sorted(e for e in s.get("environ", []) if e and not e.startswith(marker))
    out["mounts"] = sorted(_mountinfo_line(line, run) for line in s.get("mountinfo", []) if line)
    out["mount-modes"] = sorted(set(s.get("modes", [])))
    # /dev/fd/N are the fds of `stat` itself (pipe inodes): not the container's
    out["dev"] = sorted(d for d in s.get("dev", []) if not d.startswith("'/dev/fd/"))
    out["hostname"] = [f"hostname: {h}" for h in s.get("hostname", [])[:1]] + [
        f"domainname: {d}" for d in s.get("hostname", [])[1:2]
    ]
    out["pgrp-session"] = _stat(s["stat"][0]) if s.get("stat") else []
    out["rlimits"] = [" ".join(line.split()) for line in s.get("limits", [])]
    out["umask"] = [f"umask: {u}" for u in s.get("umask", [])] + (
        [f"Umask: {status['Umask']}"] if "Umask" in status else []
    )
    out["cwd"] = s.get("cwd", [])
    fds = " ".join(s.get("fds", [])).split()
    out["oom-fds"] = [f"oom_score_adj: {v}" for v in s.get("oom", [])] + [
        "fds: " + " ".join(sorted((f.rsplit("/", 1)[-1] for f in fds), key=lambda x: (len(x), x)))
    ]
    out["leftovers"] = list(run.leftovers)
    return out
