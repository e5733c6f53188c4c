"""--preserve-fds and systemd socket activation (LISTEN_FDS): exactly the passed fds reach
the container process, nothing else of the runtime's."""

from __future__ import annotations

import os
import subprocess


def _pipe_with(text: bytes) -> int:
    r, w = os.pipe()
    os.write(w, text)
    os.close(w)
    return r


def _run_with_fds(pyoci, b, cid, fds: dict[int, bytes], extra_env=None, *flags):
    """Run pyoci with fds 3.. holding pipes with the given bytes. A shell moves the pipes to
    3, 4 (pytest's own fds must stay untouched); their original numbers stay open too, and
    must not reach the container either."""
    pipes = {target: _pipe_with(text) for target, text in fds.items()}
    moves = " ".join(f"{target}<&{fd}" for target, fd in pipes.items())
    try:
        env = dict(os.environ, **(extra_env or {}))
        return subprocess.run(
            ["bash", "-c", f'exec {moves}; exec "$@"', "bash",
             *pyoci.argv(("run", *flags, "--bundle", str(b.path), cid))],
            pass_fds=tuple(pipes.values()),
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip
    finally:
        for fd in pipes.values():
            os.close(fd)


SCRIPT = (
    "echo $LISTEN_FDS $LISTEN_PID; for fd in 3 4; do cat <&$fd 2>/dev/null; done; ls /proc/self/fd"
)


def test_preserve_fds_passes_exactly_n(pyoci, bundle, new_id):
    b = bundle(SCRIPT)
    result = _run_with_fds(pyoci, b, new_id(), {3: b"three\n", 4: b"four\n"}, None,
                           "--preserve-fds", "1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0].strip() == ""  # no LISTEN_FDS
    assert "three" in lines and "four" not in lines
    fds = [int(x) for x in lines if x.isdigit()]
    # 0-2, 3, and the fd `ls` opens for /proc/self/fd itself
    assert fds == [0, 1, 2, 3, 4] or fds == [0, 1, 2, 3]
    pyoci.assert_nothing_left()


def test_listen_fds_are_passed_with_env(pyoci, bundle, new_id):
    b = bundle(SCRIPT)
    result = _run_with_fds(pyoci, b, new_id(), {3: b"socket\n", 4: b"extra\n"},
                           {"LISTEN_FDS": "1"}, "--preserve-fds", "1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "1 1"
    assert "socket" in lines and "extra" in lines
    pyoci.assert_nothing_left()


def test_without_flags_no_fd_beyond_stdio(pyoci, bundle, new_id):
    b = bundle("ls /proc/self/fd | wc -l")
    result = _run_with_fds(pyoci, b, new_id(), {3: b"x\n"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"  # 0, 1, 2 and ls's own directory fd
