"""pyoci.container.parse_signal: `kill`'s signal argument as runc accepts it (KILL, SIGKILL, kill,
9, RTMIN+3, SIGRTMAX-1). The oracle for names and realtime bounds is Python's own signal
module, which reads the host's <signal.h>."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.container import SIGNALS, parse_signal
from pyoci.errors import PyociError

SETTINGS = settings(database=None, deadline=None, max_examples=100)

# Every classic signal Python knows on this host, by its name without SIG.
HOST_SIGNALS = {
    s.name[3:]: s.value for s in signal.Signals if s.name not in ("SIGRTMIN", "SIGRTMAX")
}
RTMIN, RTMAX = int(signal.SIGRTMIN), int(signal.SIGRTMAX)


def refused(value: str) -> PyociError:
    with pytest.raises(PyociError) as caught:
        parse_signal(value)
    return caught.value


@pytest.mark.parametrize("name", sorted(HOST_SIGNALS))
def test_every_host_signal_name_has_its_host_number(name: str) -> None:
    assert parse_signal(name) == HOST_SIGNALS[name]
    assert parse_signal("SIG" + name) == HOST_SIGNALS[name]


def test_the_table_knows_every_host_signal_and_the_aliases() -> None:
    assert set(HOST_SIGNALS) <= set(SIGNALS)
    assert parse_signal("IOT") == signal.SIGABRT
    assert parse_signal("POLL") == signal.SIGIO


@SETTINGS
@given(
    name=st.sampled_from(sorted(SIGNALS)),
    prefix=st.sampled_from(["", "SIG", "sig", "Sig"]),
    flips=st.lists(st.booleans(), min_size=16, max_size=16),
    pad=st.tuples(st.sampled_from(["", " ", "\t", "  \n"]), st.sampled_from(["", " ", "\n"])),
)
def test_names_ignore_case_prefix_and_surrounding_space(name, prefix, flips, pad) -> None:
    spelled = "".join(
        c.lower() if f else c for c, f in zip(name, flips + [False] * 16, strict=False)
    )
    assert parse_signal(f"{pad[0]}{prefix}{spelled}{pad[1]}") == SIGNALS[name]


@pytest.mark.parametrize("number", [1, 9, 15, 31, 34, 64])
def test_numbers_in_range_are_themselves(number: int) -> None:
    assert parse_signal(str(number)) == number
    assert parse_signal(f" {number} ") == number


def test_leading_zeros_are_a_number() -> None:
    assert parse_signal("009") == 9


@pytest.mark.parametrize("value", ["0", "65", "100", "-1", "-9", "+9", "9.0", "0x9"])
def test_numbers_out_of_range_or_malformed_are_refused(value: str) -> None:
    assert refused(value).msg == f"kill: invalid signal {value!r}"


def test_an_int_is_passed_through() -> None:
    # The programmatic path (kill with a default of SIGTERM as an int): no range check.
    assert parse_signal(15) == 15


@pytest.mark.parametrize("value", ["", " ", "SIG", "SIGSIGKILL", "KILLL", "SIG KILL", "K ILL",
                                   "SIGRT", "RTMID", "RTMIN+", "RTMIN+x", "RTMAX-"])  # fmt: skip
def test_unknown_names_are_refused_naming_the_value(value: str) -> None:
    err = refused(value)
    assert err.msg == f"kill: invalid signal {value!r}" and err.errno == 0


def test_rtmin_and_rtmax_alone() -> None:
    assert parse_signal("RTMIN") == RTMIN
    assert parse_signal("SIGRTMAX") == RTMAX
    assert parse_signal("rtmin+0") == RTMIN


@SETTINGS
@given(offset=st.integers(0, RTMAX - RTMIN), prefix=st.sampled_from(["", "SIG", "sig"]))
def test_realtime_offsets_inside_the_range(offset: int, prefix: str) -> None:
    assert parse_signal(f"{prefix}RTMIN+{offset}") == RTMIN + offset
    assert parse_signal(f"{prefix}rtmax-{offset}") == RTMAX - offset


@SETTINGS
@given(offset=st.integers(1, 200))
def test_realtime_offsets_outside_the_range_are_refused(offset: int) -> None:
    for value in (f"RTMIN-{offset}", f"RTMAX+{offset}", f"RTMIN+{RTMAX - RTMIN + offset}"):
        assert refused(value).msg == f"kill: invalid signal {value!r}"


@SETTINGS
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12))
def test_any_ascii_text_is_a_signal_number_or_a_pyoci_error(text: str) -> None:
    """Never another exception (the CLI would print `internal error`); never 0 or > 64."""
    try:
        number = parse_signal(text)
    except PyociError as err:
        assert err.msg == f"kill: invalid signal {text!r}"
    else:
        assert 1 <= number <= 64


@pytest.mark.parametrize("value", ["²", "¹⁵", "③"])
def test_non_decimal_digits_are_an_invalid_signal_not_a_crash(value: str) -> None:
    assert refused(value).msg == f"kill: invalid signal {value!r}"
