"""openat2(RESOLVE_IN_ROOT) under a concurrent rename: the kernel answers EAGAIN when a rename
or a mount anywhere on the host raced a `..` step of the walk. Containers are created side by
side (CRI, podman pods, the churn suite), so pyoci's one wrapper (`sysbind.openat2`) walks
again instead of failing the create. Found as a flaky `test_paths` under parallel test runs."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from pyoci.linux import sysbind
from pyoci.linux import syscalls as sc

# `..` steps are where the kernel checks the rename/mount sequence counts.
DOTDOT_PATH = "a/b/c/../../../a/b/c/../../../f"
ROUNDS = 20_000


def _rename_forever(directory: str, stop) -> None:
    """Renames in a directory of their own: nothing the walk looks at, only the global
    rename sequence count moves."""
    names = [os.path.join(directory, "r0"), os.path.join(directory, "r1")]
    open(names[0], "w").close()
    i = 0
    while not stop.is_set():
        os.rename(names[i % 2], names[(i + 1) % 2])
        i += 1


@pytest.fixture
def renaming(tmp_path):
    """A root with a/b/c and f, and a process renaming files elsewhere meanwhile."""
    (tmp_path / "root" / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "root" / "f").touch()
    (tmp_path / "churn").mkdir()
    stop = multiprocessing.Event()
    proc = multiprocessing.Process(target=_rename_forever, args=(str(tmp_path / "churn"), stop))
    proc.start()
    root = os.open(tmp_path / "root", os.O_PATH | os.O_DIRECTORY)
    try:
        yield root
    finally:
        os.close(root)
        stop.set()
        proc.join(10)


def _raw_eagains(root: int) -> int:
    """How often one bare openat2 (no retry) fails with EAGAIN: the race is really there."""
    saved = sysbind._OPENAT2_TRIES
    sysbind._OPENAT2_TRIES = 1
    failures = 0
    try:
        for _ in range(ROUNDS):
            try:
                os.close(sysbind.openat2(root, DOTDOT_PATH, os.O_PATH, sc.RESOLVE_IN_ROOT))
            except BlockingIOError:
                failures += 1
    finally:
        sysbind._OPENAT2_TRIES = saved
    return failures


def test_a_concurrent_rename_never_fails_a_walk_in_the_root(renaming):
    raw = _raw_eagains(renaming)
    if raw == 0:
        pytest.skip(f"no EAGAIN in {ROUNDS} bare openat2 calls: the race did not happen here")
    for _ in range(ROUNDS):
        fd = sysbind.openat2(renaming, DOTDOT_PATH, os.O_PATH, sc.RESOLVE_IN_ROOT)
        assert os.readlink(f"/proc/self/fd/{fd}").endswith("/root/f")
        os.close(fd)
