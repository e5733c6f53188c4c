"""JSON through CPython's `_json` C module directly, without importing `json`.

Why: `import json` pulls in `re` and `enum` (~5 ms), paid by every `state`, `start`, `kill`
and `create`, for a runtime whose whole budget is about runc's 25 ms. The C scanner and string
encoder are the ones `json` itself uses, so results are identical; on malformed input the C
scanner raises `json.JSONDecodeError` — but only when `json.decoder` is already imported (3.11's
raise_errmsg looks it up in sys.modules, else fails with SystemError), so on that error path
we import `json` and parse again: callers always get the standard error with line and column.
"""

import _json

_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_WHITESPACE = " \t\n\r"


class _ScannerContext:
    """The attributes `_json.make_scanner` reads (json.JSONDecoder's defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict = {}


_scan_once = _json.make_scanner(_ScannerContext())
_encode_str = _json.encode_basestring_ascii


def _fail(text: str, msg: str, pos: int) -> None:
    from json import JSONDecodeError

    raise JSONDecodeError(msg, text, pos)


def loads(data: str | bytes) -> object:
    """json.loads for one document (bytes are UTF-8; a BOM is an error, as in json)."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    if text.startswith("\ufeff"):
        _fail(text, "Unexpected UTF-8 BOM (decode using utf-8-sig)", 0)
    start = 0
    while start < len(text) and text[start] in _WHITESPACE:
        start += 1
    try:
        value, end = _scan_once(text, start)
    except StopIteration as stop:
        _fail(text, "Expecting value", stop.value)
    except SystemError:
        import json  # malformed input: let json build the JSONDecodeError

        return json.loads(text)
    except ValueError as err:
        if type(err) is not ValueError:  # JSONDecodeError, once `json` is loaded
            raise
        raise long_integer_error(text) from None  # int()'s digit limit
    while end < len(text) and text[end] in _WHITESPACE:
        end += 1
    if end != len(text):
        _fail(text, "Extra data", end)
    return value


def long_integer_error(text: str) -> ValueError:
    """The JSONDecodeError for a document whose integer is longer than int() converts
    (sys.get_int_max_str_digits: 4,300 digits), at that integer: Python's own ValueError says
    neither where nor that it is JSON's. Only on that error's path: `re` is loaded here."""
    import re
    import sys
    from json import JSONDecodeError

    limit = sys.get_int_max_str_digits()
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|-?[0-9]+', text):
        digits = len(match.group().lstrip("-"))
        if match.group()[0] != '"' and digits > limit:
            msg = f"an integer of {digits} digits (at most {limit})"
            return JSONDecodeError(msg, text, match.start())
    return JSONDecodeError("a number Python cannot convert", text, 0)


def dumps(value: object, indent: int | None = None) -> str:
    """json.dumps for the types pyoci writes (dict with str keys, list, str, int, float,
    bool, None); `indent` pretty-prints like json.dumps(indent=N)."""
    parts: list[str] = []
    _encode(value, parts, indent, 0)
    return "".join(parts)


def _encode(value: object, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(float.__repr__(value))
    elif isinstance(value, dict | list | tuple):
        items = value.items() if isinstance(value, dict) else value
        opener, closer = ("{", "}") if isinstance(value, dict) else ("[", "]")
        if not value:
            out.append(opener + closer)
            return
        inner = "" if indent is None else "\n" + " " * (indent * (level + 1))
        sep = "," if indent is None else "," + inner
        out.append(opener + inner)
        for i, item in enumerate(items):
            if i:
                out.append(sep)
            if isinstance(value, dict):
                key, item = item
                if not isinstance(key, str):
                    raise TypeError(f"keys must be str, not {type(key).__name__}")
                out.append(_encode_str(key) + (": " if indent is not None else ":"))
            _encode(item, out, indent, level + 1)
        out.append(("" if indent is None else "\n" + " " * (indent * level)) + closer)
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
