"""errors.one_line: what every user-facing error passes through, so that a value quoted from a
config, the command line or a hook can neither split the error nor reach the terminal raw."""

from __future__ import annotations

import json

import pytest

from pyoci.errors import PyociError, one_line


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("plain words: `x`", "plain words: `x`"),
        ("a\nb", "a\\nb"),
        ("tab\there\r", "tab\\there\\r"),
        ("\x1b[2J", "\\u001b[2J"),
        ("line\u2028separator", "line\\u2028separator"),
        ("\udcff", "\\udcff"),
        ("\U000e0001", "\\U000e0001"),
        ("é ü 名", "é ü 名"),
    ],
)
def test_unprintable_characters_are_escaped(raw, shown):
    assert one_line(raw) == shown
    assert one_line(raw).isprintable()
    assert len(one_line(raw).splitlines()) == 1


def test_the_escapes_read_back_as_json_does():
    raw = "a\nb\x1b\u2028"
    assert json.loads(f'"{one_line(raw)}"') == raw


def test_every_pyoci_error_is_one_line():
    err = PyociError("hooks.prestart[0]: said\nline two", 5)
    assert err.msg == str(err) == "hooks.prestart[0]: said\\nline two"
    assert err.errno == 5
    assert err.wrap("ctx").msg == "ctx: hooks.prestart[0]: said\\nline two"
