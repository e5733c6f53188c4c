"""`--root` is made absolute without loading `os` when it already is (actions._root): the
shortcut must give exactly what os.path.abspath gives, for any path."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.actions import _root

PARTS = st.sampled_from(["", ".", "..", "a", "run", "pyoci", ".hidden", "x.y", "..z"])


@settings(database=None, deadline=None, max_examples=400)
@given(st.lists(PARTS, max_size=6), st.booleans(), st.booleans())
def test_root_is_abspath(parts: list[str], absolute: bool, trailing: bool) -> None:
    root = ("/" if absolute else "") + "/".join(parts) + ("/" if trailing else "")
    if not root:
        return  # no --root: the default root, not a path
    assert _root({"root": root}) == os.path.abspath(root)


def test_the_usual_roots() -> None:
    for root in ("/run/pyoci", "/run/runc", "/", "//run", "/run/./x", "/run/../x", "rel", "./r"):
        assert _root({"root": root}) == os.path.abspath(root), root
