"""The namespace names are defined once (spec.NS_PROC_NAME: the spec's type → its /proc/PID/ns
file); every other table of them is derived from it or must name exactly the same set."""

from __future__ import annotations

from pyoci import execute, features, spec, validate
from pyoci.linux import namespaces


def test_every_namespace_table_names_the_same_namespaces() -> None:
    types = set(spec.NS_PROC_NAME)
    assert set(spec.NAMESPACE_TYPES) == types
    assert set(namespaces.CLONE_FLAG) == types
    assert set(namespaces.JOIN_ORDER) == types - {"user"}  # user is joined first, apart
    assert set(execute.NS_ORDER) == set(spec.NS_PROC_NAME.values())
    assert set(features.features()["linux"]["namespaces"]) == types


def test_proc_names_read_backwards() -> None:
    for ns_type, proc_name in spec.NS_PROC_NAME.items():
        assert validate.PROC_NS_TYPES[proc_name] == ns_type
    assert len(set(namespaces.CLONE_FLAG.values())) == len(namespaces.CLONE_FLAG)
