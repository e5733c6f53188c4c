"""CVE-2019-5736 class: the container gets a handle on the runtime's host executable.

Until it execs the user's program, a container-side pyoci process is the host's Python
interpreter. If such a process execs a container file starting `#!/proc/self/exe`, the kernel
runs *the host interpreter* again, with the dynamic loader named by its PT_INTERP, resolved in
the container: the attacker's `/lib64/ld-linux-x86-64.so.2`. That loader then opens
/proc/self/exe, which is the host interpreter; in the original exploit it keeps the fd until
the runtime exits and rewrites the host binary.

Here the loader (freestanding static-pie: glibc's static start-up would trust AT_PHDR, which
is the victim's when the program is an interpreter) only opens /proc/self/exe read-only,
fstat()s and fstatfs()s it, and tries an open for writing (no O_TRUNC, closed at once: it
never writes). It reports one line into /report (a bind mount of a test directory).

The victim is never the real interpreter: pyoci runs from a launcher on a *copy* of it
(`victim_launcher`), so "the host interpreter" is that copy. Under $RUNTIME (runc) the victim
is the runtime binary itself; runc 1.1.5 execs from a read-only bind mount of it, so a handle
on the same inode through a read-only mount is not a write handle (reopening it for writing
gives EROFS once the victim stops running).

A positive control runs first in the same container: `/ctl`, a copy of the host's dynamically
linked `true`, is loaded by the same attacker loader, which proves the loader, the report
mount and the token work. The attack then either reports a handle, which must not be the
victim through a writable mount (nor opened for writing), or never reaches the loader because
the runtime's last executable before the user's program has no PT_INTERP (a static helper).
"""

# ruff: noqa: F811 (the fixtures imported from attack are test parameters)
from __future__ import annotations

import copy
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from attack import (  # noqa: F401
    host_executable,
    pyoci_bin,
    runtime_is_pyoci,
    static_program,
    victim_launcher,
)
from conftest import Bundle, Pyoci

LOADER_C = r"""
/* The attacker's "dynamic loader" (PT_INTERP of whatever binary execs in the container):
   no libc, raw syscalls, position independent, so it runs whatever the main program is. */
typedef unsigned long u64;
static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
#define SYS_write 1
#define SYS_close 3
#define SYS_fstat 5
#define SYS_fstatfs 138
#define SYS_exit_group 231
#define SYS_openat 257
#define AT_FDCWD (-100)
#define O_WRONLY 01
#define O_APPEND 02000
#define O_CLOEXEC 02000000
#define ST_RDONLY 1
struct kstat { u64 dev, ino, nlink; unsigned mode, uid, gid, pad0; u64 rdev; long size, blksize,
               blocks; u64 rest[9]; };
struct kstatfs { long type, bsize, blocks, bfree, bavail, files, ffree; int fsid[2];
                 long namelen, frsize, flags, spare[4]; };
static char *put(char *p, const char *s) { while (*s) *p++ = *s++; return p; }
static char *num(char *p, long v)
{
    char tmp[24];
    int i = 0;
    u64 u = v < 0 ? -(u64)v : (u64)v;
    if (v < 0) *p++ = '-';
    do { tmp[i++] = '0' + u % 10; u /= 10; } while (u);
    while (i) *p++ = tmp[--i];
    return p;
}
static int starts(const char *s, const char *pre)
{
    while (*pre) if (*s++ != *pre++) return 0;
    return 1;
}
void entry(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1), **envp = argv + argc + 1;
    const char *token = "-";
    for (char **e = envp; *e; e++)
        if (starts(*e, "ATTACK_TOKEN=")) token = *e + 13;
    struct kstat st;
    struct kstatfs sf;
    long dev = 0, ino = 0, rdonly = -1;
    long fd = sys3(SYS_openat, AT_FDCWD, (long)"/proc/self/exe", O_CLOEXEC);
    long rerr = fd < 0 ? -fd : 0;
    if (fd >= 0 && sys3(SYS_fstat, fd, (long)&st, 0) == 0) { dev = st.dev; ino = st.ino; }
    if (fd >= 0 && sys3(SYS_fstatfs, fd, (long)&sf, 0) == 0) rdonly = (sf.flags & ST_RDONLY) != 0;
    /* Opened only to learn whether it could be: no O_TRUNC, closed at once, never written. */
    long wfd = sys3(SYS_openat, AT_FDCWD, (long)"/proc/self/exe", O_WRONLY | O_CLOEXEC);
    long werr = wfd < 0 ? -wfd : 0;
    if (wfd >= 0) sys3(SYS_close, wfd, 0, 0);
    char line[512], *p = line;
    p = put(p, "EXE-REPORT token="); p = put(p, token);
    p = put(p, " argv0="); p = put(p, argc > 0 ? argv[0] : "-");
    p = put(p, " rfd="); p = num(p, fd < 0 ? -1 : fd); p = put(p, " rerrno="); p = num(p, rerr);
    p = put(p, " dev="); p = num(p, dev); p = put(p, " ino="); p = num(p, ino);
    p = put(p, " rdonly="); p = num(p, rdonly);
    p = put(p, " wfd="); p = num(p, wfd < 0 ? -1 : wfd); p = put(p, " werrno="); p = num(p, werr);
    p = put(p, "\n");
    sys3(SYS_write, 1, (long)line, p - line);
    long out = sys3(SYS_openat, AT_FDCWD, (long)"/report/exe.txt", O_WRONLY | O_APPEND | O_CLOEXEC);
    if (out >= 0) sys3(SYS_write, out, (long)line, p - line);
    sys3(SYS_exit_group, 0, 0, 0);
}
__asm__(".globl _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n"
        " call entry\n hlt\n");
"""
LOADER_FLAGS = (
    "-static-pie",
    "-nostdlib",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-stack-protector",
    "-fno-tree-loop-distribute-patterns",
)
ATTACK_ARGV0 = "/proc/self/exe"  # the kernel's argv[0] for a `#!/proc/self/exe` script
CONTROL = "/ctl"


@pytest.fixture
def victim(pyoci, pyoci_bin, tmp_path) -> tuple[Pyoci, Path]:
    """(runner, victim file): pyoci through a launcher on a private interpreter copy, or
    $RUNTIME itself."""
    if not runtime_is_pyoci():
        return pyoci, host_executable(pyoci_bin)
    launcher, interpreter = victim_launcher(pyoci_bin, tmp_path / "victim")
    return Pyoci(str(launcher), pyoci.root, pyoci.workdir, pyoci.marker), interpreter


def attack_bundle(bundle, static_program, tmp_path: Path, token: str, args) -> tuple:
    """A private rootfs with the attacker's loader, `/evil`, the control `/ctl`, and /report."""
    if shutil.which("true") is None or not Path("/lib64/ld-linux-x86-64.so.2").exists():
        pytest.skip("needs the host's dynamically linked `true` for the control")
    report = tmp_path / "report"
    report.mkdir()
    (report / "exe.txt").touch()
    (report / "exe.txt").chmod(0o666)  # the container's root has no CAP_DAC_OVERRIDE

    def add_report_mount(config: dict) -> None:
        config["mounts"].append(
            {"destination": "/report", "type": "bind", "source": str(report), "options": ["rbind"]}
        )

    b = bundle(args, private=True, env=[f"ATTACK_TOKEN={token}"], patch=add_report_mount)
    loader = static_program(LOADER_C, "evil-loader", LOADER_FLAGS)
    (b.rootfs / "lib64").mkdir()
    shutil.copy(loader, b.rootfs / "lib64" / "ld-linux-x86-64.so.2")
    evil = b.rootfs / "evil"
    evil.write_text("#!/proc/self/exe\n")
    evil.chmod(0o755)
    shutil.copy(shutil.which("true"), b.rootfs / CONTROL.lstrip("/"))
    (b.rootfs / "report").mkdir()
    return b, report / "exe.txt"


def sibling(b: Bundle, args: list[str]) -> Bundle:
    """Another bundle on the same rootfs, running `args`."""
    path = b.path.with_name(b.path.name + "-" + uuid.uuid4().hex[:6])
    path.mkdir()
    config = copy.deepcopy(b.config)
    config["root"]["path"] = str(b.rootfs)
    config["process"]["args"] = args
    return Bundle(path, config, b.rootfs).write()


def reports(path: Path, token: str, argv0: str) -> list[dict]:
    """The loader's lines in the report file (and on stdout, `parse_reports`) for `argv0`."""
    try:
        return parse_reports(path.read_text(), token, argv0)
    except FileNotFoundError:
        return []


def parse_reports(text: str, token: str, argv0: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
        ours = fields.get("token") == token and fields.get("argv0") == argv0
        if line.startswith("EXE-REPORT ") and ours:
            found.append({"line": line, **fields})
    return found


def wait_reports(path: Path, token: str, argv0: str, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = reports(path, token, argv0)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def assert_no_victim_handle(found: list[dict], victim: Path, context: str) -> None:
    vst = os.stat(victim)
    for r in found:
        same = (int(r["dev"]), int(r["ino"])) == (vst.st_dev, vst.st_ino)
        assert not (same and r["rdonly"] != "1"), (
            f"{context}: the container's loader opened /proc/self/exe and got the victim "
            f"{victim} itself (dev {vst.st_dev} ino {vst.st_ino}) on a writable mount: once "
            f"the runtime exits it can reopen it for writing and replace the host "
            f"executable (CVE-2019-5736)\n  {r['line']}"
        )
        assert int(r["wfd"]) < 0, (
            f"{context}: the container opened its /proc/self/exe for writing\n  {r['line']}"
        )


def check(found: list[dict], control: list[dict], victim: Path, context: str, result) -> None:
    assert control, (
        f"{context}: the control {CONTROL} never reported: the attacker's loader did not run "
        f"(rc {result.returncode}):\n{result.stdout}{result.stderr}"
    )
    # Either the loader ran under the runtime's last executable and got a harmless handle, or
    # that executable has no PT_INTERP and the attacker's code never ran (nothing obtained).
    assert_no_victim_handle(found, victim, context)


def test_run_entrypoint_script_reexecs_runtime(victim, bundle, static_program, new_id, tmp_path):
    """`run` of a bundle whose entrypoint is `#!/proc/self/exe`: the init's exe must not be
    handed to the container's loader."""
    runner, victim_exe = victim
    token = uuid.uuid4().hex
    b, report = attack_bundle(bundle, static_program, tmp_path, token, ["/evil"])

    result = runner.run(sibling(b, [CONTROL]), new_id("ctl"))
    assert result.returncode == 0, result.stderr
    control = reports(report, token, CONTROL)

    result = runner.run(b, new_id("evil"))
    found = reports(report, token, ATTACK_ARGV0) + parse_reports(result.stdout, token, ATTACK_ARGV0)
    check(found, control, victim_exe, "run /evil", result)


def test_exec_script_reexecs_runtime(victim, bundle, static_program, new_id, tmp_path):
    """`exec -d ID /evil` into a running container: the same, through exec's process."""
    runner, victim_exe = victim
    token = uuid.uuid4().hex
    b, report = attack_bundle(bundle, static_program, tmp_path, token, ["sleep", "30"])
    cid = new_id("exe")
    runner.create_ok(b, cid)
    assert runner("start", cid).returncode == 0
    try:
        result = runner("exec", "-d", cid, CONTROL)
        assert result.returncode == 0, result.stderr
        control = wait_reports(report, token, CONTROL, 5)

        result = runner("exec", "-d", cid, "/evil")
        found = wait_reports(report, token, ATTACK_ARGV0, 2)
        check(found, control, victim_exe, f"exec -d {cid} /evil", result)
    finally:
        runner("delete", "--force", cid)
