"""CreateOptions and ExecOptions: built once from the parsed flags (by either parser: the fast
one and click give the same objects), frozen, and what the library takes instead of a CLI
dict; an exec's options shape the process it runs (pyoci.execute.build_process)."""

from __future__ import annotations

import pytest

import pyoci.entry as entry
from pyoci import actions, cli
from pyoci.container import Container
from pyoci.execute import build_process
from pyoci.options import CreateOptions, ExecOptions


def _via_click(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple:
    seen: list[tuple] = []

    def record(g: dict, cmd, o: dict, args: list[str]) -> int:
        seen.append((g, o))
        return 0

    monkeypatch.setattr(cli, "run_handler", record)
    assert cli.main(argv) == 0
    return seen[0]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["create", "--bundle", "/b", "c1"], CreateOptions(bundle="/b")),
        (["--systemd-cgroup", "run", "-d", "--bundle", "/b", "--pid-file", "/p", "--init",
          "--preserve-fds", "2", "--no-pivot", "--net", "bridge", "c1"],
         CreateOptions(bundle="/b", pid_file="/p", no_pivot=True, preserve_fds=2,
                       use_init=True, systemd_cgroup=True, net="bridge")),
        (["create", "--console-socket", "/s", "c1"], CreateOptions(console_socket="/s")),
    ],
)  # fmt: skip
def test_create_options_from_either_parser(argv, expected, monkeypatch) -> None:
    g, _, o, _ = entry.parse(argv)
    assert actions.create_options(g, o) == expected
    g, o = _via_click(argv, monkeypatch)
    assert actions.create_options(g, o) == expected


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["exec", "c1", "sh"], ExecOptions()),
        (["exec", "-d", "--pid-file", "/p", "--process", "/f", "c1"],
         ExecOptions(process_file="/f", detach=True, pid_file="/p")),
        (["exec", "-t", "--console-socket", "/s", "--cwd", "/w", "-e", "A=1", "-e", "B=2",
          "-u", "1:2", "-c", "CAP_NET_ADMIN", "--no-new-privs", "--preserve-fds", "1",
          "--cgroup", "cpu:sub", "c1", "sh"],
         ExecOptions(tty=True, console_socket="/s", cwd="/w", env=["A=1", "B=2"], user="1:2",
                     caps=["CAP_NET_ADMIN"], no_new_privs=True, preserve_fds=1,
                     cgroup=["cpu:sub"])),
    ],
)  # fmt: skip
def test_exec_options_from_either_parser(argv, expected, monkeypatch) -> None:
    _, _, o, _ = entry.parse(argv)
    assert actions.exec_options(o) == expected
    _, o = _via_click(argv, monkeypatch)
    assert actions.exec_options(o) == expected


def test_options_are_frozen_and_replace_copies() -> None:
    options = CreateOptions(bundle="/b", preserve_fds=1)
    with pytest.raises(AttributeError, match="frozen"):
        options.preserve_fds = 3  # type: ignore[misc]
    more = options.replace(preserve_fds=3)
    assert (options.preserve_fds, more.preserve_fds, more.bundle) == (1, 3, "/b")
    assert more != options and more == CreateOptions(bundle="/b", preserve_fds=3)
    assert hash(more) == hash(CreateOptions(bundle="/b", preserve_fds=3))
    assert "preserve_fds=3" in repr(more)
    with pytest.raises(TypeError):
        CreateOptions(bundel="/b")  # type: ignore[call-arg]
    # Lists given for the repeatable flags are kept as tuples: nothing shared stays mutable.
    env = ["A=1"]
    exec_options = ExecOptions(env=env)
    env.append("B=2")
    assert exec_options.env == ("A=1",)


def test_the_library_takes_options_or_their_fields_not_both(tmp_path) -> None:
    with pytest.raises(TypeError, match="not both"):
        Container.create(str(tmp_path), "c1", CreateOptions(), bundle="/b")


BASE = {"cwd": "/", "args": ["sh"], "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_CHOWN"]}}  # fmt: skip


def test_exec_options_shape_the_process() -> None:
    options = ExecOptions(tty=True, cwd="/w", env=["A=1"], user="5:6",
                          caps=["CAP_NET_ADMIN"], no_new_privs=True)  # fmt: skip
    proc = build_process(BASE, ["ls", "-l"], options)
    assert proc.args == ["ls", "-l"] and proc.terminal and proc.cwd == "/w"
    assert proc.env == ["PATH=/bin", "A=1"]
    assert (proc.user.uid, proc.user.gid) == (5, 6)
    assert sorted(proc.capabilities["bounding"]) == [0, 12]  # CAP_CHOWN kept, CAP_NET_ADMIN
    assert proc.no_new_privileges
    assert BASE["capabilities"] == {"bounding": ["CAP_CHOWN"]}  # the container's, untouched


def test_exec_options_user_by_name_is_looked_up_in_the_container() -> None:
    proc = build_process(BASE, ["id"], ExecOptions(user="nobody:nogroup"))
    assert proc.user.username == "nobody:nogroup"
