"""pyoci.entry.parse on its own: what it hands to click (UsageError) and the option forms it
takes itself. test_argv_parsers.py checks that it agrees with click on real tools' command
lines; here: the refusals, the spellings (`--x=v`, `--flag=false`, `--`, `-`), defaults that
must not leak between calls, and a property over argvs generated from the command table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.commands import COMMANDS, COMMANDS_BY_NAME, GLOBAL_OPTS
from pyoci.entry import UsageError, parse

SETTINGS = settings(database=None, deadline=None, max_examples=150)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--root"],  # a value is missing
        ["--root", "/r"],  # no command
        ["--bogus", "state", "c1"],
        ["nope", "c1"],
        ["state"],  # the id is required
        ["state", "a", "b"],
        ["kill", "c1", "9", "extra"],
        ["-h"],
        ["--help"],
        ["-v"],
        ["--version"],
        ["state", "--help", "c1"],
        ["create", "-h"],
        ["--debug=maybe", "state", "c1"],
        ["--log-format", "xml", "state", "c1"],
        ["--log-format=yaml", "state", "c1"],
        ["create", "--preserve-fds", "x", "c1"],
        ["create", "--preserve-fds=1.5", "c1"],
        ["create", "--bogus", "c1"],
        ["create", "c1", "--pid-file"],
        ["state", "--root", "/r", "c1"],  # a global option after the command is not one
        ["list", "--format", "yaml"],
        ["list", "extra"],
    ],
)
def test_what_goes_to_click(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(argv)


def test_globals_and_their_defaults() -> None:
    g, cmd, o, args = parse(["state", "c1"])
    assert g == {"root": None, "log": None, "log_format": "text", "debug": False,
                 "systemd_cgroup": False, "rootless": "auto", "criu": None}  # fmt: skip
    assert cmd.name == "state" and o == {} and args == ["c1"]


@pytest.mark.parametrize(
    "token, value", [("--debug", True), ("--debug=true", True), ("--debug=1", True),
                     ("--debug=TRUE", True), ("--debug=false", False), ("--debug=0", False)],
)  # fmt: skip
def test_flag_spellings(token: str, value: bool) -> None:
    assert parse([token, "state", "c1"])[0]["debug"] is value


def test_equals_forms_keep_everything_after_the_first_equals() -> None:
    g, _, o, _ = parse(["--root=/a=b", "--log=", "run", "--bundle=x=y", "c1"])
    assert g["root"] == "/a=b" and g["log"] == "" and o["bundle"] == "x=y"


def test_a_value_may_look_like_an_option() -> None:
    _, _, o, _ = parse(["create", "--pid-file", "--bundle", "c1"])
    assert o["pid_file"] == "--bundle" and o["bundle"] == "."


def test_ints_and_negative_ints() -> None:
    _, _, o, _ = parse(["update", "--pids-limit", "-1", "--cpu-quota=50000", "c1"])
    assert o["pids_limit"] == -1 and o["cpu_quota"] == 50000


def test_dash_is_a_positional_and_double_dash_ends_options() -> None:
    assert parse(["update", "-r", "-", "c1"])[2]["resources"] == "-"
    assert parse(["delete", "--", "--force"])[3] == ["--force"]
    assert parse(["delete", "--", "--force"])[2]["force"] is False
    assert parse(["kill", "--", "c1", "-9"])[3] == ["c1", "-9"]


def test_options_may_follow_positionals() -> None:
    _, _, o, args = parse(["delete", "c1", "-f"])
    assert o["force"] is True and args == ["c1"]
    _, _, o, args = parse(["kill", "c1", "--all", "KILL"])
    assert o["all"] is True and args == ["c1", "KILL"]


def test_rest_commands_take_everything_after_the_id_verbatim() -> None:
    _, _, o, args = parse(["ps", "-f", "json", "c1", "-ef", "--forest"])
    assert o["format"] == "json" and args == ["c1", "-ef", "--forest"]
    _, _, o, args = parse(["exec", "--tty", "-e", "A=1", "--env=B=2", "c1", "sh", "-c", "x"])
    assert o["tty"] is True and o["env"] == ["A=1", "B=2"] and args == ["c1", "sh", "-c", "x"]


def test_multi_defaults_do_not_leak_between_calls() -> None:
    _, _, first, _ = parse(["exec", "-e", "A=1", "c1", "sh"])
    _, _, second, _ = parse(["exec", "c1", "sh"])
    assert first["env"] == ["A=1"] and second["env"] == []
    second["env"].append("X=1")
    assert parse(["exec", "c1", "sh"])[2]["env"] == []


def test_aliases_store_in_one_place() -> None:
    for spelling in ("--cpu-share", "--cpu-shares"):
        assert parse(["update", spelling, "512", "c1"])[2]["cpu_share"] == 512
    for spelling in ("-b", "--bundle"):
        assert parse(["create", spelling, "/b", "c1"])[2]["bundle"] == "/b"


# --- a property over the table ------------------------------------------------------------------
_SAFE = st.text(alphabet="abcxyz0123456789/._=:", min_size=1, max_size=8)
_ID = st.text(alphabet="abcdef0123456789", min_size=1, max_size=8)
PLAIN = [c for c in COMMANDS if not c.rest]


def _value(opt):
    if opt.kind == "flag":
        return st.just(True)
    if opt.kind == "int":
        return st.integers(-(2**31), 2**31)
    if opt.kind == "choice":
        return st.sampled_from(opt.choices)
    return _SAFE


@st.composite
def _rendered(draw, opts):
    """(tokens, expected {dest: value}) for a random subset of `opts`, random spellings."""
    chosen = draw(st.lists(st.sampled_from(opts), unique_by=lambda o: o.dest)) if opts else []
    tokens: list[list[str]] = []
    expected: dict = {}
    for opt in chosen:
        values = (
            [draw(_value(opt))]
            if opt.kind != "multi"
            else draw(st.lists(_SAFE, min_size=1, max_size=3))
        )
        for value in values:
            name = draw(st.sampled_from(opt.names))
            if opt.kind == "flag":
                tokens.append([name] if draw(st.booleans()) else [f"{name}=true"])
            elif name.startswith("--") and draw(st.booleans()):
                tokens.append([f"{name}={value}"])
            else:
                tokens.append([name, str(value)])
        expected[opt.dest] = values if opt.kind == "multi" else values[0]
    return tokens, expected


@st.composite
def _argv(draw):
    cmd = draw(st.sampled_from(PLAIN))
    g_tokens, g_expected = draw(_rendered(list(GLOBAL_OPTS)))
    o_tokens, o_expected = draw(_rendered(list(cmd.opts)))
    n_args = draw(st.integers(sum(1 for _, req in cmd.args if req), len(cmd.args)))
    args = [draw(_ID) for _ in range(n_args)]
    # Options and positionals in any order after the command (each option's tokens together).
    pieces = [*o_tokens, *[[a] for a in args]]
    order = draw(st.permutations(range(len(pieces))))
    rest = [t for i in order for t in pieces[i]]
    positional_order = [pieces[i][0] for i in order if len(pieces[i]) == 1 and i >= len(o_tokens)]
    argv = [t for ts in g_tokens for t in ts] + [cmd.name] + rest
    return argv, cmd, g_expected, o_expected, positional_order


@SETTINGS
@given(_argv())
def test_any_argv_built_from_the_table_parses_back(case) -> None:
    argv, cmd, g_expected, o_expected, args = case
    g, got_cmd, o, got_args = parse(argv)
    assert got_cmd is cmd
    assert got_args == args
    for dest, value in g_expected.items():
        assert g[dest] == value, (argv, dest)
    for dest, value in o_expected.items():
        assert o[dest] == value, (argv, dest)
    untouched = {opt.dest: opt.default for opt in cmd.opts if opt.dest not in o_expected}
    assert {d: o[d] for d in untouched} == untouched


def test_every_command_of_the_table_is_reachable() -> None:
    for name, cmd in COMMANDS_BY_NAME.items():
        needed = ["c1"] * sum(1 for _, req in cmd.args if req)
        assert parse([name, *needed])[1] is cmd
