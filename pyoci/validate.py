"""Check a bundle against the runtime spec and report every problem at once.

Why this exists next to `spec.py`: `spec.py` parses config.json on every `create`, stops at the
first error and must stay cheap, so it never imports jsonschema (~120 ms). `pyoci validate` and
the tests want the opposite: the whole list, so one run fixes a config. This module has two
layers:

1. `specs/config-schema.json` (shapes, types, integer ranges, enumerations), run by jsonschema,
   which is imported inside `validate_bundle` only.
2. `validate_config`: the rules a schema cannot say, because they need the file system or look
   across fields (root.path is a directory, namespace paths exist and have the right type,
   mappings need a user namespace, duplicated namespaces and rlimits, ...). It imports nothing
   heavy, so the runtime may call it too.

Every problem is one string, `<json.path>: <reason>`, with the path written as in the config
(`mounts[3].destination`, `linux.sysctl["net.ipv4.ip_forward"]`) or `(root)` for the document.
User values are quoted in backticks. When the schema already reported a path, the rules stay
quiet about it: a field of the wrong shape would only produce noise further on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pyoci import jsonfast, rules, shapes
from pyoci import spec as _spec
from pyoci.errors import PyociError, one_line

__all__ = ["validate_bundle", "validate_config", "SPECS_DIR"]

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
CONFIG_SCHEMA = SPECS_DIR / "config-schema.json"

# (path parts, reason); formatted only at the end, so paths can be compared for de-duplication.
Problem = tuple[tuple[str | int, ...], str]

# One source for the names the runtime accepts: spec.py's tables (cheap to import).
CAPABILITIES = frozenset(_spec.CAPABILITIES)
CAP_SETS = _spec.CAP_SETS
RLIMITS = frozenset(_spec.RLIMITS)
HOOK_NAMES = _spec.HOOK_NAMES
# The spec's four values plus the recursive forms runc and crun accept (the schema says the same).
ROOTFS_PROPAGATIONS = _spec.ROOTFS_PROPAGATIONS

# readlink() of an open namespace file gives `<name>:[<inode>]`; name → the spec's type.
PROC_NS_TYPES = {proc: ns_type for ns_type, proc in _spec.NS_PROC_NAME.items()}

# Only these seccomp actions carry an errno (config-linux.md: any other MUST fail).
ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

_NS_LINK = re.compile(r"([a-z_]+):\[[0-9]+\]\Z")


# --- public API --------------------------------------------------------------------------------
def validate_bundle(bundle: str | os.PathLike[str]) -> list[str]:
    """Return every problem of the bundle's config.json as `<json.path>: <reason>`; [] if valid.

    Reading or parsing failures end the check (nothing else can be said about the file); all
    other problems, from the schema and from the rules, are collected.
    """
    bundle = Path(bundle)
    config, problem = _load_config(bundle)
    if problem is not None:
        return [problem]

    import jsonschema  # here, not at the top: the runtime's hot commands must never pay for it

    try:
        schema_problems = list(_schema_problems(config, jsonschema))
    except RecursionError:
        return ["config.json: nested too deeply"]
    reported = {path for path, _ in schema_problems}
    rule_problems = _rule_problems(config, bundle) if isinstance(config, dict) else []
    problems = schema_problems + [p for p in rule_problems if p[0] not in reported]
    # dict.fromkeys: jsonschema raises one `required` error per missing property, and each
    # is described with all of them; keep the first of identical problems, in order.
    return [_format(problem) for problem in dict.fromkeys(problems)]


def validate_config(config: dict, bundle: Path) -> list[str]:
    """Check the rules the schema cannot express; `bundle` anchors a relative root.path.

    Safe on configs that fail the schema: a field of the wrong type is skipped, not reported
    (the schema does that), so this can also run alone, without jsonschema.
    """
    return [_format(problem) for problem in _rule_problems(config, Path(bundle))]


# --- reading -----------------------------------------------------------------------------------
def _load_config(bundle: Path) -> tuple[Any, str | None]:
    """Parse bundle/config.json; on failure return the one problem that explains why."""
    try:
        data = _spec.read_config(str(bundle / "config.json"), str(bundle))
    except PyociError as err:
        return None, err.msg
    try:
        return jsonfast.loads(data), None  # create's parser: a BOM or UTF-16 is refused alike
    except RecursionError:
        return None, "config.json: nested too deeply"
    except json.JSONDecodeError as err:
        return None, f"config.json: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
    except UnicodeDecodeError as err:
        return None, f"config.json: invalid JSON: not UTF-8 text ({err.reason})"
    except ValueError:  # an integer longer than int() takes (sys.get_int_max_str_digits)
        err = jsonfast.long_integer_error(data.decode("utf-8", "replace"))
        return None, f"config.json: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"


def _format(problem: Problem) -> str:
    path, reason = problem
    return f"{_format_path(path)}: {one_line(reason)}"


def _format_path(parts: Iterable[str | int]) -> str:
    """`("mounts", 3, "destination")` → `mounts[3].destination`; a key that would not read
    back is quoted: `annotations[""]` (pyoci.rules.dotted)."""
    return rules.dotted(tuple(parts)) or "(root)"  # one spelling with `create`'s


# --- schema layer ------------------------------------------------------------------------------
def _schema_problems(config: Any, jsonschema: Any) -> Iterator[Problem]:
    """Run the schema and turn each jsonschema error into path-precise problems."""
    schema = json.loads(CONFIG_SCHEMA.read_text(encoding="utf-8"))
    base = jsonschema.validators.validator_for(schema)
    # JSON Schema counts 1.0 as an integer; runtimes do not (Go's decoder refuses it for an
    # int field, and so does create): validate says what create would.
    strict = base.TYPE_CHECKER.redefine("integer", lambda _checker, value: _is_int(value))
    validator = jsonschema.validators.extend(base, type_checker=strict)(schema)
    errors = sorted(validator.iter_errors(config), key=_error_order)
    for error in errors:
        yield from _describe(error)


def _error_order(error: Any) -> tuple:
    """Sort by path (indexes numerically), then message, so output is stable between runs."""
    path = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in error.absolute_path)
    return path, error.message


def _describe(error: Any) -> Iterator[Problem]:
    """One jsonschema error → problems; `required` gives one per missing property."""
    path = tuple(error.absolute_path)
    if error.validator == "required":
        for name in error.validator_value:
            if isinstance(error.instance, dict) and name not in error.instance:
                yield path + (name,), "is required"
        return
    if "propertyNames" in error.schema_path:
        # The instance is a key of the object at `path`, not a value: name the key itself.
        yield path + (error.instance,), f"invalid key: {_reason(error)}"
        return
    yield path, _reason(error)


_ARTICLES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _reason(error: Any) -> str:
    """Say what is wrong in the project's words, falling back to jsonschema's message."""
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "type":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        return f"must be {' or '.join(_ARTICLES[t] for t in wanted)}, not {shapes.kind_of(value)}"
    if kind == "enum":
        return f"must be one of {', '.join(map(str, expected))}, not {_quote(value)}"
    if kind == "pattern":
        # A schema node may name what its pattern means: ociVersion's SemVer regex is unreadable.
        title = error.schema.get("title")
        wanted = f"be {title}" if title else f"match `{expected}`"
        return f"must {wanted}, not {_quote(value)}"
    if kind in ("minimum", "maximum"):
        sign = ">=" if kind == "minimum" else "<="
        return f"must be {sign} {expected}, not {value}"
    if kind in ("minItems", "minLength") and expected == 1:
        return "must not be empty"
    return error.message


def _quote(value: Any) -> str:
    return f"`{value}`" if isinstance(value, str) else shapes.kind_of(value)


# --- rule layer --------------------------------------------------------------------------------
def _obj(value: Any) -> dict:
    """The value if it is an object, else {}: wrong types are the schema's to report."""
    return value if isinstance(value, dict) else {}


def _arr(value: Any) -> list:
    return value if isinstance(value, list) else []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _relative(value: Any) -> bool:
    """True for a string that is not an absolute path (non-strings are the schema's)."""
    return isinstance(value, str) and not value.startswith("/")


class _Context:
    """What several rules need: the bundle, the linux object, the first namespace of each type."""

    def __init__(self, config: dict, bundle: Path) -> None:
        self.bundle = bundle
        self.linux = _obj(config.get("linux"))
        self.namespaces: dict[str, tuple[int, dict]] = {}
        for index, entry in enumerate(_arr(self.linux.get("namespaces"))):
            ns_type = _obj(entry).get("type")
            if isinstance(ns_type, str):
                self.namespaces.setdefault(ns_type, (index, entry))

    def joined(self, ns_type: str) -> int | None:
        """Index of the `ns_type` entry if it joins an existing namespace by path."""
        index, entry = self.namespaces.get(ns_type, (None, {}))
        return index if isinstance(entry.get("path"), str) else None


def _rule_problems(config: dict, bundle: Path) -> list[Problem]:
    ctx = _Context(config, bundle)
    problems: list[Problem] = []
    for rule in _RULES:
        problems.extend(rule(config, ctx))
    return problems


def _check_root(config: dict, ctx: _Context) -> Iterator[Problem]:
    """root.path: "A directory MUST exist at the path", relative paths from the bundle."""
    path = _obj(config.get("root")).get("path")
    if not isinstance(path, str) or not path:
        return
    full = ctx.bundle / path
    if not full.exists():
        yield ("root", "path"), f"directory `{full}` does not exist"
    elif not full.is_dir():
        yield ("root", "path"), f"`{full}` is not a directory"


def _check_process(config: dict, ctx: _Context) -> Iterator[Problem]:
    """args needs at least one entry on Linux (execvp's file); cwd MUST be absolute."""
    process = config.get("process")
    if not isinstance(process, dict):
        return
    if "args" not in process:
        yield ("process", "args"), "is required"
    elif process["args"] == []:
        yield ("process", "args"), "must not be empty"
    if _relative(process.get("cwd")):
        yield ("process", "cwd"), "must be an absolute path"


def _check_rlimits(config: dict, ctx: _Context) -> Iterator[Problem]:
    """Types must map to a kernel resource, MUST NOT repeat, and soft <= hard (setrlimit(2))."""
    seen: dict[str, int] = {}
    for index, entry in enumerate(_arr(_obj(config.get("process")).get("rlimits"))):
        entry = _obj(entry)
        path = ("process", "rlimits", index)
        rtype, soft, hard = entry.get("type"), entry.get("soft"), entry.get("hard")
        if isinstance(rtype, str):
            if rtype not in RLIMITS:
                yield path + ("type",), f"unknown rlimit `{rtype}`"
            if rtype in seen:
                yield path + ("type",), f"duplicated (also at process.rlimits[{seen[rtype]}])"
            seen.setdefault(rtype, index)
        if _is_int(soft) and _is_int(hard) and soft > hard:
            yield path + ("soft",), f"must be <= hard, not {soft} > {hard}"


def _check_capabilities(config: dict, ctx: _Context) -> Iterator[Problem]:
    """Every name must be one this kernel knows: a typo would silently drop a capability.

    config.md (1.2) has the runtime only warn about capabilities it cannot grant; this is the
    linter, so it reports unknown names outright.
    """
    capabilities = _obj(_obj(config.get("process")).get("capabilities"))
    for cap_set in CAP_SETS:
        for index, name in enumerate(_arr(capabilities.get(cap_set))):
            if isinstance(name, str) and name not in CAPABILITIES:
                yield ("process", "capabilities", cap_set, index), f"unknown capability `{name}`"


def _check_mounts(config: dict, ctx: _Context) -> Iterator[Problem]:
    """Idmapped mounts need both mappings, or a user namespace. (A relative destination is
    valid: config.md says it MUST be read relative to "/", deprecated; `create` does so.)"""
    for index, mount in enumerate(_arr(config.get("mounts"))):
        mount = _obj(mount)
        path = ("mounts", index)
        # config.md: uidMappings "MUST be specified along with gidMappings", and vice versa.
        for given, missing in (("uidMappings", "gidMappings"), ("gidMappings", "uidMappings")):
            if given in mount and missing not in mount:
                yield path + (missing,), f"is required when {given} is set"
        options = [o for o in _arr(mount.get("options")) if o in ("idmap", "ridmap")]
        mapped = "uidMappings" in mount or "gidMappings" in mount
        if options and not mapped and "user" not in ctx.namespaces:
            yield (
                path + ("options",),
                f"`{options[0]}` needs uidMappings and gidMappings or a user namespace",
            )


def _check_namespaces(config: dict, ctx: _Context) -> Iterator[Problem]:
    """No duplicated type; a path MUST be absolute and name a namespace of that type."""
    first: dict[str, int] = {}
    for index, entry in enumerate(_arr(ctx.linux.get("namespaces"))):
        entry = _obj(entry)
        path = ("linux", "namespaces", index)
        ns_type, ns_path = entry.get("type"), entry.get("path")
        if isinstance(ns_type, str):
            if ns_type in first:
                yield path + ("type",), f"duplicated (also at linux.namespaces[{first[ns_type]}])"
            first.setdefault(ns_type, index)
        if isinstance(ns_path, str) and ns_path:
            problem = _namespace_path_problem(ns_path, ns_type)
            if problem:
                yield path + ("path",), problem


def _namespace_path_problem(ns_path: str, ns_type: Any) -> str | None:
    if not ns_path.startswith("/"):
        return "must be an absolute path"
    if not os.path.exists(ns_path):
        return f"`{ns_path}` does not exist"
    actual = _namespace_type(ns_path)
    if actual == "":
        return f"`{ns_path}` is not a namespace file"
    if actual is not None and isinstance(ns_type, str) and actual != ns_type:
        return f"`{ns_path}` is a {actual} namespace, not {ns_type}"
    return None


def _namespace_type(ns_path: str) -> str | None:
    """The spec type of the namespace at ns_path, "" if it is no namespace, None if unknown.

    An open nsfs file reads back through /proc/self/fd as `net:[4026531840]`, also when it is
    bind-mounted (`/run/netns/x`); this needs no ioctl and no privilege beyond opening it.
    Opening another user's /proc/PID/ns/* fails (ptrace check): then we cannot tell, and say
    nothing rather than guess.
    """
    try:
        fd = os.open(ns_path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    finally:
        os.close(fd)
    match = _NS_LINK.match(link)
    return PROC_NS_TYPES.get(match.group(1), "") if match else ""


def _check_id_mappings(config: dict, ctx: _Context) -> Iterator[Problem]:
    """Mappings are written for a user namespace pyoci creates: none without one, none when
    joining an existing one (its mappings are fixed already), and both for a new one (runc
    refuses it without them too: `crun spec --rootless` leaves them to crun)."""
    new_user_ns = "user" in ctx.namespaces and ctx.joined("user") is None
    for key in ("uidMappings", "gidMappings"):
        if not _arr(ctx.linux.get(key)):
            if new_user_ns:
                where = f"linux.namespaces[{ctx.namespaces['user'][0]}]"
                yield ("linux", key), f"is required for a new user namespace ({where})"
            continue
        joined = ctx.joined("user")
        if "user" not in ctx.namespaces:
            yield ("linux", key), "requires a user namespace in linux.namespaces"
        elif joined is not None:
            yield (
                ("linux", key),
                f"must not be set when joining a user namespace (linux.namespaces[{joined}].path)",
            )


def _check_time_offsets(config: dict, ctx: _Context) -> Iterator[Problem]:
    """Offsets can only be written into a new time namespace before it is entered."""
    if not _obj(ctx.linux.get("timeOffsets")):
        return
    joined = ctx.joined("time")
    if "time" not in ctx.namespaces:
        yield ("linux", "timeOffsets"), "requires a time namespace in linux.namespaces"
    elif joined is not None:
        yield (
            ("linux", "timeOffsets"),
            f"must not be set when joining a time namespace (linux.namespaces[{joined}].path)",
        )


def _check_devices(config: dict, ctx: _Context) -> Iterator[Problem]:
    """Paths absolute; major and minor are REQUIRED unless the type is `p` (a FIFO).

    Not checked: that the path is under /dev. config-linux.md says it "MAY be anywhere in the
    container filesystem, notably outside of /dev" (runtime-spec PR #1148).
    """
    for index, device in enumerate(_arr(ctx.linux.get("devices"))):
        device = _obj(device)
        path = ("linux", "devices", index)
        if _relative(device.get("path")):
            yield path + ("path",), "must be an absolute path"
        dev_type = device.get("type")
        if dev_type in ("c", "b", "u"):
            for number in ("major", "minor"):
                if number not in device:
                    yield path + (number,), f"is required for type `{dev_type}`"


def _check_sysctl(config: dict, ctx: _Context) -> Iterator[Problem]:
    """pyoci.rules: a sysctl must be namespaced and have its namespace (as `create` says)."""
    yield from rules.sysctl_problems(config)


def _check_hostname(config: dict, ctx: _Context) -> Iterator[Problem]:
    """pyoci.rules: hostname/domainname need a uts namespace, and no kernel.* twin."""
    yield from rules.hostname_problems(config)


def _check_memory_policy(config: dict, ctx: _Context) -> Iterator[Problem]:
    """pyoci.rules: the mode's nodes (none, some, or either), known flags that go together."""
    yield from rules.memory_policy_problems(config)


def _check_process_rules(config: dict, ctx: _Context) -> Iterator[Problem]:
    """pyoci.rules: execCPUAffinity lists; AppArmor/SELinux labels this host cannot apply."""
    yield from rules.config_process_problems(config)


def _check_mount_label(config: dict, ctx: _Context) -> Iterator[Problem]:
    """pyoci.rules: linux.mountLabel needs SELinux (and pyoci does not apply it)."""
    yield from rules.mount_label_problems(config)


def _check_path_lists(config: dict, ctx: _Context) -> Iterator[Problem]:
    """maskedPaths and readonlyPaths MUST be absolute paths in the container."""
    for field in ("maskedPaths", "readonlyPaths"):
        for index, value in enumerate(_arr(ctx.linux.get(field))):
            if _relative(value):
                yield ("linux", field, index), "must be an absolute path"


def _check_hooks(config: dict, ctx: _Context) -> Iterator[Problem]:
    """Hook paths MUST be absolute (config.md extends execv's path)."""
    hooks = _obj(config.get("hooks"))
    for name in HOOK_NAMES:
        for index, hook in enumerate(_arr(hooks.get(name))):
            if _relative(_obj(hook).get("path")):
                yield ("hooks", name, index, "path"), "must be an absolute path"


def _check_rootfs_propagation(config: dict, ctx: _Context) -> Iterator[Problem]:
    """Repeats the schema's enumeration so `validate_config` alone catches a typo too."""
    value = ctx.linux.get("rootfsPropagation")
    if isinstance(value, str) and value not in ROOTFS_PROPAGATIONS:
        choices = ", ".join(ROOTFS_PROPAGATIONS)
        yield ("linux", "rootfsPropagation"), f"must be one of {choices}, not `{value}`"


def _check_seccomp(config: dict, ctx: _Context) -> Iterator[Problem]:
    """An errno only goes with ERRNO or TRACE actions (MUST fail otherwise); listenerMetadata
    MUST NOT be set without listenerPath."""
    seccomp = ctx.linux.get("seccomp")
    if not isinstance(seccomp, dict):
        return
    base = ("linux", "seccomp")
    if "defaultErrnoRet" in seccomp:
        problem = _errno_problem(seccomp.get("defaultAction"))
        if problem:
            yield base + ("defaultErrnoRet",), problem
    if "listenerMetadata" in seccomp and "listenerPath" not in seccomp:
        yield base + ("listenerMetadata",), "requires linux.seccomp.listenerPath"
    for index, rule in enumerate(_arr(seccomp.get("syscalls"))):
        rule = _obj(rule)
        if "errnoRet" in rule:
            problem = _errno_problem(rule.get("action"))
            if problem:
                yield base + ("syscalls", index, "errnoRet"), problem


def _errno_problem(action: Any) -> str | None:
    if not isinstance(action, str) or action in ERRNO_ACTIONS:
        return None
    return f"only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not `{action}`"


def _check_resources(config: dict, ctx: _Context) -> Iterator[Problem]:
    """The cross-field MUSTs of the cgroup resources."""
    resources = _obj(ctx.linux.get("resources"))
    base = ("linux", "resources")
    cpu = _obj(resources.get("cpu"))
    quota, burst = cpu.get("quota"), cpu.get("burst")
    if _is_int(quota) and _is_int(burst) and quota > 0 and burst > quota:
        yield base + ("cpu", "burst"), f"must be <= quota, not {burst} > {quota}"
    for index, entry in enumerate(_arr(_obj(resources.get("blockIO")).get("weightDevice"))):
        if isinstance(entry, dict) and "weight" not in entry and "leafWeight" not in entry:
            path = base + ("blockIO", "weightDevice", index)
            yield path, "needs weight or leafWeight"
    for device, limits in _obj(resources.get("rdma")).items():
        if isinstance(limits, dict) and "hcaHandles" not in limits and "hcaObjects" not in limits:
            yield base + ("rdma", device), "needs hcaHandles or hcaObjects"


_RULES = (
    _check_root,
    _check_process,
    _check_rlimits,
    _check_capabilities,
    _check_mounts,
    _check_hooks,
    _check_hostname,
    _check_namespaces,
    _check_id_mappings,
    _check_time_offsets,
    _check_devices,
    _check_sysctl,
    _check_path_lists,
    _check_rootfs_propagation,
    _check_seccomp,
    _check_resources,
    _check_memory_policy,
    _check_process_rules,
    _check_mount_label,
)
