"""jsonfast must agree with json on what pyoci reads and writes."""

from __future__ import annotations

import json

import pytest

from pyoci import jsonfast

DOCS = [
    {"a": [1, 2.5, True, False, None, 'x\u00e9\n"q"'], "b": {}, "c": [], "d": {"e": -3}},
    [],
    "plain",
    12345678901234567890,
]


@pytest.mark.parametrize("value", DOCS)
def test_roundtrip_matches_json(value: object) -> None:
    assert jsonfast.dumps(value) == json.dumps(value, separators=(",", ":"))
    assert jsonfast.dumps(value, indent=2) == json.dumps(value, indent=2)
    assert jsonfast.loads(json.dumps(value)) == value
    assert jsonfast.loads(b"  " + json.dumps(value, indent=4).encode() + b"\n") == value


@pytest.mark.parametrize(
    "text", ['{"a": 1,}', '{"a" 1}', "", "[1] x", '{"a": [1, 2}', "\ufeff{}", "nul"]
)
def test_errors_match_json(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        jsonfast.loads(text)
    assert (got.value.msg, got.value.lineno, got.value.colno) == (
        expected.value.msg,
        expected.value.lineno,
        expected.value.colno,
    )


def test_rejects_unknown_types() -> None:
    with pytest.raises(TypeError):
        jsonfast.dumps({"a": object()})
    with pytest.raises(TypeError):
        jsonfast.dumps({1: "x"})


def test_error_in_fresh_interpreter_without_json_imported() -> None:
    """The C scanner cannot build its error unless json.decoder is loaded: jsonfast must."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; from pyoci import jsonfast\n"
        "assert 'json' not in sys.modules\n"
        "try:\n    jsonfast.loads('{\"a\": 1,}')\n"
        "except ValueError as e:\n    print(type(e).__name__, e.lineno, e.colno)\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=repo, check=True
    )
    assert out.stdout.split() == ["JSONDecodeError", "1", "9"]
