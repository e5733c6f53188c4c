"""What a container process reaches of the runtime through /proc.

(a) During `exec`, the runtime's process that enters the container (pyoci's stage 2: the host's
Python interpreter until its execve) sits in the container's pid namespace. A scanner running
as the container's process sweeps /proc/[0-9]*/exe and /proc/*/fd/* without pause while the
test runs 30 `exec`s from a caller that holds a host directory open (a secret file inside). It
counts handles on the runtime's host executable (through a writable mount: a read-only one
cannot be written) and fds >= 3 of a runtime process whose link it could read, and tries to
read the secret through every /proc/PID/fd/N/secret.txt. All must be zero.

(b) PID 1 while the container waits in `created` (and, with `--init`, for the container's
whole life) is the runtime's own process. A scanner exec'd with CAP_SYS_PTRACE lists
/proc/1/fd, walks `/proc/1/fd/N/../../..` to the host's root and looks for a marker file that
exists only on the host, and checks /proc/1/exe for the runtime's host executable.

The scanner is a static C program (`static_program`) copied into a private rootfs; it writes
its report into /report, a bind mount of a test directory.
"""

# ruff: noqa: F811 (the fixtures imported from attack are test parameters)
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from attack import (  # noqa: F401
    call_with_fds,
    host_executable,
    pyoci_bin,
    runtime_is_pyoci,
    static_program,
)

SCANNER_C = r"""
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static dev_t hdev;
static ino_t hino;
static FILE *out;

/* 2: the runtime's host executable through a writable mount, 1: through a read-only one. */
static int host_exe(const char *path)
{
    struct stat st;
    struct statvfs sv;
    if (stat(path, &st) != 0 || st.st_dev != hdev || st.st_ino != hino) return 0;
    return statvfs(path, &sv) == 0 && (sv.f_flag & ST_RDONLY) ? 1 : 2;
}

static void text(const char *path, char *buf, size_t size, int link)
{
    ssize_t n = -1;
    if (link) {
        n = readlink(path, buf, size - 1);
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) { n = read(fd, buf, size - 1); close(fd); }
    }
    if (n < 0) n = 0;
    buf[n] = 0;
    for (char *p = buf; *p; p++) if (*p == '\n' || *p == ' ') *p = '_';
}

/* A pyoci or runc process: by name, or by its executable. */
static int runtime(const char *comm, const char *exe, int exe_hit)
{
    return exe_hit || !strncmp(comm, "pyoci", 5) || !strncmp(comm, "runc", 4) ||
           strstr(exe, "python") || strstr(exe, "pyoci") || strstr(exe, "runc");
}

#define MAXSEEN 8192
static long seen[MAXSEEN];
static int nseen;
static int once(long key)
{
    for (int i = 0; i < nseen; i++) if (seen[i] == key) return 0;
    if (nseen < MAXSEEN) seen[nseen++] = key;
    return 1;
}

/* sweep REPORT TOKEN DEV INO STOPFILE SECRETNAME */
static int sweep(char **argv)
{
    const char *token = argv[2], *stop = argv[5], *secret = argv[6];
    int self = getpid(), sweeps = 0, pids = 0, exe_hits = 0, fd_hits = 0, rt_fds = 0, reads = 0;
    char stolen[256] = "-";
    time_t start = time(NULL);
    fprintf(out, "SCAN-READY token=%s\n", token);
    fflush(out);
    while (access(stop, F_OK) != 0 && time(NULL) - start < 30) {
        sweeps++;
        DIR *proc = opendir("/proc");
        struct dirent *e;
        while (proc && (e = readdir(proc))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self) continue;
            if (once(-(long)pid)) pids++;
            char path[4096], comm[64], exe[256];
            snprintf(path, sizeof path, "/proc/%d/comm", pid);
            text(path, comm, sizeof comm, 0);
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            text(path, exe, sizeof exe, 1);
            int hit = host_exe(path);
            if (hit == 2 && once(((long)pid << 20) | 0xfffff)) {
                exe_hits++;
                fprintf(out, "HIT exe pid=%d comm=%s exe=%s\n", pid, comm, exe);
            }
            int rt = runtime(comm, exe, hit);
            snprintf(path, sizeof path, "/proc/%d/fd", pid);
            DIR *fds = opendir(path);
            struct dirent *f;
            while (fds && (f = readdir(fds))) {
                if (f->d_name[0] == '.') continue;
                int fd = atoi(f->d_name);
                char fdpath[4096], target[256];
                snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/%d", pid, fd);
                text(fdpath, target, sizeof target, 1);
                long key = ((long)pid << 20) | fd;
                /* Listing the numbers is allowed on any root process; reading a link
                   needs ptrace access (a dumpable process, or CAP_SYS_PTRACE). */
                if (rt && fd >= 3 && target[0] && once(key)) {
                    rt_fds++;
                    fprintf(out, "HIT runtime-fd pid=%d comm=%s exe=%s fd=%d -> %s\n", pid,
                            comm, exe, fd, target);
                }
                if (host_exe(fdpath) == 2 && once(key | (1L << 50))) {
                    fd_hits++;
                    fprintf(out, "HIT exe-fd pid=%d comm=%s fd=%d -> %s\n", pid, comm, fd, target);
                }
                snprintf(path, sizeof path, "%s/%s", fdpath, secret);
                int s = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (s >= 0) {
                    ssize_t n = read(s, stolen, sizeof stolen - 1);
                    stolen[n > 0 ? n : 0] = 0;
                    close(s);
                    reads++;
                    if (once(key | (2L << 50)))
                        fprintf(out, "HIT secret pid=%d comm=%s fd=%d -> %s\n", pid, comm, fd,
                                target);
                }
            }
            if (fds) closedir(fds);
        }
        if (proc) closedir(proc);
        fflush(out);
    }
    fprintf(out, "SCAN token=%s sweeps=%d pids=%d exe_hits=%d fd_hits=%d runtime_fds=%d "
            "secret_reads=%d secret=%s\n", token, sweeps, pids, exe_hits, fd_hits, rt_fds,
            reads, stolen);
    return 0;
}

/* pid1 REPORT TOKEN DEV INO MARKER(absolute host path) */
static int pid1(char **argv)
{
    const char *token = argv[2], *marker = argv[5];
    int fds = 0, escapes = 0, listed = 0, err = 0;
    char exe[256], dotdots[3 * 64 + 1] = "";
    for (int i = 0; i < 64; i++) strcat(dotdots, "../");
    DIR *d = opendir("/proc/1/fd");
    if (d) listed = 1; else err = errno;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char fdpath[64], target[256], path[4096];
        struct stat st;
        snprintf(fdpath, sizeof fdpath, "/proc/1/fd/%s", e->d_name);
        text(fdpath, target, sizeof target, 1);
        int dir = stat(fdpath, &st) == 0 && S_ISDIR(st.st_mode);
        snprintf(path, sizeof path, "%s/%s%s", fdpath, dotdots, marker + 1);
        int escaped = access(path, F_OK) == 0;
        fds++;
        escapes += escaped;
        fprintf(out, "FD %s -> %s dir=%d escape=%d\n", e->d_name, target, dir, escaped);
    }
    if (d) closedir(d);
    text("/proc/1/exe", exe, sizeof exe, 1);
    int hit = host_exe("/proc/1/exe");
    fprintf(out, "PID1 token=%s listed=%d errno=%d fds=%d escapes=%d exe_host=%d exe=%s\n",
            token, listed, err, fds, escapes, hit, exe[0] ? exe : "-");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) return 2;
    hdev = strtoull(argv[3], NULL, 10);
    hino = strtoull(argv[4], NULL, 10);
    out = fopen(argv[1], "a");
    if (!out) { perror(argv[1]); return 3; }
    setvbuf(out, NULL, _IOLBF, 0);
    return !strcmp(argv[0] + strlen(argv[0]) - 5, "sweep") ? sweep(argv) : pid1(argv);
}
"""
EXECS = 30


def scanner_bundle(bundle, static_program, tmp_path: Path, args, **kw):
    """A private rootfs with the scanner as /sweep and /pid1, and /report (a test directory)."""
    report = tmp_path / "report"
    report.mkdir()

    def add_report_mount(config: dict) -> None:
        config["mounts"].append(
            {"destination": "/report", "type": "bind", "source": str(report), "options": ["rbind"]}
        )

    b = bundle(args, private=True, patch=add_report_mount, **kw)
    scanner = static_program(SCANNER_C, "proc-scanner")
    for name in ("sweep", "pid1"):
        shutil.copy(scanner, b.rootfs / name)
    (b.rootfs / "report").mkdir()
    return b, report


def report_file(report: Path, name: str) -> Path:
    path = report / name
    path.touch()
    path.chmod(0o666)  # the container's root has no CAP_DAC_OVERRIDE
    return path


def host_exe_id(pyoci_bin: str) -> tuple[Path, str, str]:
    exe = host_executable(pyoci_bin)
    st = os.stat(exe)
    return exe, str(st.st_dev), str(st.st_ino)


def fields(line: str) -> dict[str, str]:
    return dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)


def wait_line(path: Path, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"the scanner never wrote {prefix!r}:\n{path.read_text()}")
        time.sleep(0.02)


def test_exec_process_unreachable_from_container(
    pyoci, pyoci_bin, bundle, static_program, new_id, tmp_path
):
    exe, dev, ino = host_exe_id(pyoci_bin)
    token, secret = uuid.uuid4().hex, uuid.uuid4().hex
    hostdir = tmp_path / "caller-dir"
    hostdir.mkdir()
    (hostdir / "secret.txt").write_text(secret)
    b, report = scanner_bundle(
        bundle,
        static_program,
        tmp_path,
        ["/sweep", "/report/scan.txt", token, dev, ino, "/report/stop", "secret.txt"],
    )
    scan = report_file(report, "scan.txt")
    cid = new_id("reach")
    pyoci.create_ok(b, cid)
    assert pyoci("start", cid).returncode == 0
    wait_line(scan, f"SCAN-READY token={token}", 10)
    dirfd = os.open(hostdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(EXECS):
            result = call_with_fds(pyoci, "exec", cid, "/bin/true", pass_fds=(dirfd,))
            assert result.returncode == 0, result.stderr
    finally:
        os.close(dirfd)
        (report / "stop").touch()
    summary = fields(wait_line(scan, f"SCAN token={token}", 10))
    pyoci("delete", "--force", cid)
    hits = [line for line in scan.read_text().splitlines() if line.startswith("HIT")]
    hits = "\n".join([str(summary), *hits[:20], "..." if len(hits) > 20 else ""])
    assert int(summary["sweeps"]) > 0 and int(summary["pids"]) > 0, (
        f"the scanner saw no process of the {EXECS} execs: {summary}"
    )
    assert summary["secret_reads"] == "0" and secret not in scan.read_text(), (
        f"the container read the exec caller's secret through /proc/PID/fd/N/secret.txt "
        f"(a host directory the caller held, carried into the container's pid namespace):\n"
        f"{hits}"
    )
    assert summary["exe_hits"] == "0" and summary["fd_hits"] == "0", (
        f"the container got handles on the runtime's host executable {exe} (writable mount) "
        f"through /proc/PID/exe or /proc/PID/fd:\n{hits}"
    )
    assert summary["runtime_fds"] == "0", (
        f"the container read the fds of the runtime's process in its pid namespace:\n{hits}"
    )


def check_pid1(pyoci, cid: str, report: Path, token: str, marker: Path, exe: Path, argv) -> None:
    scan = report_file(report, "pid1.txt")
    result = pyoci("exec", "--cap", "CAP_SYS_PTRACE", cid, *argv)
    assert result.returncode == 0, result.stderr
    line = wait_line(scan, f"PID1 token={token}", 5)
    summary = fields(line)
    text = scan.read_text()
    assert summary["listed"] == "1", f"the scanner could not list /proc/1/fd: {line}"
    assert summary["escapes"] == "0", (
        f"from /proc/1/fd/N/../.. the container reached the host's {marker}:\n{text}"
    )
    assert summary["exe_host"] != "2", (
        f"/proc/1/exe is the runtime's host executable {exe} on a writable mount:\n{text}"
    )


def test_created_init_unreachable(pyoci, pyoci_bin, bundle, static_program, new_id, tmp_path):
    """The init waiting on exec.fifo holds no host directory and is not the host executable."""
    exe, dev, ino = host_exe_id(pyoci_bin)
    token = uuid.uuid4().hex
    marker = tmp_path / f"host-only-{token}"
    marker.write_text("host")
    b, report = scanner_bundle(bundle, static_program, tmp_path, ["sleep", "30"])
    cid = new_id("created")
    pyoci.create_ok(b, cid)
    assert pyoci.state(cid)["status"] == "created"
    argv = ["/pid1", "/report/pid1.txt", token, dev, ino, str(marker)]
    check_pid1(pyoci, cid, report, token, marker, exe, argv)
    pyoci("delete", "--force", cid)


def test_init_pid1_unreachable(pyoci, pyoci_bin, bundle, static_program, new_id, tmp_path):
    """`--init`: PID 1 is the runtime's for the container's life; the same checks."""
    if not runtime_is_pyoci():
        pytest.skip("runc has no --init (PID 1 is the user's process)")
    exe, dev, ino = host_exe_id(pyoci_bin)
    token = uuid.uuid4().hex
    marker = tmp_path / f"host-only-{token}"
    marker.write_text("host")
    b, report = scanner_bundle(bundle, static_program, tmp_path, ["sleep", "30"])
    cid = new_id("init")
    pyoci.create_ok(b, cid, "--init")
    assert pyoci("start", cid).returncode == 0
    argv = ["/pid1", "/report/pid1.txt", token, dev, ino, str(marker)]
    check_pid1(pyoci, cid, report, token, marker, exe, argv)
    pyoci("delete", "--force", cid)
