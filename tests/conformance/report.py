"""The conformance report: a pytest plugin (`-p tests.conformance.report`) and a command line tool.

As a plugin (what `make conformance` loads) it reads each test's clause from the first
paragraph of its docstring, `<doc>.md § <section> (<level>): "<quote>"`, records the outcome
(passed; failed, with what was observed; skipped, with the reason), prints the table at the
end of the session and writes the JSON given by `--conformance-json`.

As a tool it prints the same table again from JSON reports, or, with `--markdown`, one table
with a column per runtime (the README's):

    python tests/conformance/report.py build/conformance-pyoci.json [...] [--markdown]

A clause counts once per test; a section's row is the part of `<section>` before " / "
("Operations / Create" is counted under "Operations").
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

CLAUSE = re.compile(
    r"^(?P<doc>[\w.-]+\.md) § (?P<section>.+?) \((?P<level>[A-Z /]+)\): (?P<quote>.*)$"
)
DOC_ORDER = ("runtime.md", "config.md", "config-linux.md")
HERE = Path(__file__).resolve().parent


# --- clauses from docstrings ---------------------------------------------------------------------
def parse_clause(doc: str | None) -> dict | None:
    """The first paragraph of a test docstring -> {doc, section, level, quote}, or None."""
    if not doc:
        return None
    first = " ".join(doc.strip().split("\n\n")[0].split())
    m = CLAUSE.match(first)
    return m.groupdict() if m else None


def group_of(section: str) -> str:
    return section.split(" / ")[0]


# --- the pytest plugin ---------------------------------------------------------------------------
def pytest_addoption(parser) -> None:
    parser.addoption(
        "--conformance-json",
        default=None,
        metavar="PATH",
        help="write the conformance report (tests/conformance) as JSON to PATH",
    )


class _Recorder:
    def __init__(self) -> None:
        self.meta: dict[str, dict] = {}
        self.results: dict[str, dict] = {}
        self.started = time.monotonic()


_REC = _Recorder()


def pytest_collection_modifyitems(session, config, items) -> None:
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        clause = parse_clause(getattr(getattr(item, "obj", None), "__doc__", None))
        if clause is None:
            clause = {"doc": "?", "section": "?", "level": "?", "quote": item.name}
        _REC.meta[item.nodeid] = {"test": item.name, **clause}


def _message(report) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "")
    first = text.split("\nassert ")[0].strip()
    for prefix in ("AssertionError: ", "Failed: "):
        first = first.removeprefix(prefix)
    return " ".join(first.split())[:600]


def pytest_runtest_logreport(report) -> None:
    if report.nodeid not in _REC.meta:
        return
    entry = _REC.results.setdefault(report.nodeid, {"outcome": "passed"})
    for key, value in report.user_properties:
        if key == "clause_level":
            entry["level"] = value
        elif key == "clause_quote":
            entry["quote"] = value
    if entry["outcome"] == "failed":
        return
    if report.failed:
        entry["outcome"] = "failed"
        entry["observed"] = (f"[{report.when}] " if report.when != "call" else "") + _message(
            report
        )
    elif report.skipped and entry["outcome"] != "failed":
        entry["outcome"] = "skipped"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        entry["reason"] = reason.removeprefix("Skipped: ")


def build_report(config) -> dict:
    runtime = getattr(config, "oci_conformance_runtime", None) or {}
    clauses = []
    for nodeid, meta in _REC.meta.items():
        result = _REC.results.get(nodeid)
        if result is None:
            continue  # deselected or not run
        clauses.append({"id": nodeid, **meta, **result})
    return {
        "spec": "runtime-spec 1.3.0",
        "runtime": runtime,
        "host": {
            "kernel": platform.release(),
            "machine": platform.machine(),
            "cgroups": _cgroup_layout(),
        },
        "seconds": round(time.monotonic() - _REC.started, 1),
        "sections": summarize(clauses),
        "clauses": clauses,
    }


def _cgroup_layout() -> str:
    fstypes = {}
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                fstypes[parts[1]] = parts[2]
    except OSError:
        return "unknown"
    if fstypes.get("/sys/fs/cgroup") == "cgroup2":
        return "unified (v2)"
    if fstypes.get("/sys/fs/cgroup/unified") == "cgroup2":
        return "hybrid (v1 controllers + cgroup2)"
    return "legacy (v1)"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _REC.results:
        return
    report = build_report(config)
    terminalreporter.write_line("")
    for line in render_table(report).splitlines():
        terminalreporter.write_line(line)
    path = config.getoption("--conformance-json")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=2) + "\n")
        terminalreporter.write_line(f"conformance report written to {path}")


# --- summaries and tables ------------------------------------------------------------------------
def _order(doc: str) -> int:
    return DOC_ORDER.index(doc) if doc in DOC_ORDER else len(DOC_ORDER)


def summarize(clauses: list[dict]) -> list[dict]:
    rows: dict[tuple[str, str], dict] = {}
    for c in clauses:
        key = (c["doc"], group_of(c["section"]))
        row = rows.setdefault(
            key,
            {
                "doc": key[0],
                "section": key[1],
                "clauses": 0,
                "passed": 0,
                "failed": 0,
                "skipped": 0,
            },
        )
        row["clauses"] += 1
        row[c["outcome"]] += 1
    return [rows[k] for k in sorted(rows, key=lambda k: _order(k[0]))]


def _totals(sections: list[dict]) -> dict:
    return {k: sum(r[k] for r in sections) for k in ("clauses", "passed", "failed", "skipped")}


def render_table(report: dict) -> str:
    rt = report.get("runtime", {})
    head = f"OCI runtime conformance ({report.get('spec', '')}): {rt.get('name', '?')}"
    if rt.get("version"):
        head += f" — {rt['version']}"
    lines = [head]
    if rt.get("path"):
        host = report["host"]
        lines.append(f"binary: {rt['path']}; host: {host['kernel']}, cgroups {host['cgroups']}")
    for note in rt.get("notes", []):
        lines.append(f"note: {note}")
    widths = (16, 28, 8, 7, 7, 8)
    header = ("document", "section", "clauses", "passed", "failed", "skipped")
    fmt = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i < 2 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    lines += ["", fmt(header), fmt(["-" * w for w in widths])]
    for r in report["sections"]:
        lines.append(
            fmt([r["doc"], r["section"], r["clauses"], r["passed"], r["failed"], r["skipped"]])
        )
    t = _totals(report["sections"])
    lines += [
        fmt(["-" * w for w in widths]),
        fmt(["total", "", t["clauses"], t["passed"], t["failed"], t["skipped"]]),
    ]
    failed = [c for c in report["clauses"] if c["outcome"] == "failed"]
    if failed:
        lines += ["", f"failed clauses ({len(failed)}):"]
        for c in failed:
            lines.append(f"- {c['doc']} § {c['section']} ({c['level']}): {c['quote']}")
            lines.append(f"    observed: {c.get('observed', '')}")
    skipped = [c for c in report["clauses"] if c["outcome"] == "skipped"]
    if skipped:
        lines += ["", f"skipped clauses ({len(skipped)}):"]
        for c in skipped:
            lines.append(f"- {c['doc']} § {c['section']}: {c.get('reason', '')}")
    lines.append(f"\n({report.get('seconds', '?')} s)")
    return "\n".join(lines)


def render_markdown(reports: list[dict]) -> str:
    """One table, a column per runtime: `passed / failed / skipped` of the section's clauses."""
    names = [r["runtime"].get("name", "?") for r in reports]
    keys: list[tuple[str, str]] = []
    cells: dict[tuple[str, str, int], dict] = {}
    for i, report in enumerate(reports):
        for row in report["sections"]:
            key = (row["doc"], row["section"])
            if key not in keys:
                keys.append(key)
            cells[(*key, i)] = row
    keys.sort(key=lambda k: _order(k[0]))
    lines = [
        "| document | section | clauses | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for doc, section in keys:
        counts = [cells.get((doc, section, i)) for i in range(len(reports))]
        n = max((c["clauses"] for c in counts if c), default=0)
        shown = [f"{c['passed']} / {c['failed']} / {c['skipped']}" if c else "–" for c in counts]
        lines.append(f"| {doc} | {section} | {n} | " + " | ".join(shown) + " |")
    totals = [_totals(r["sections"]) for r in reports]
    n = max(t["clauses"] for t in totals)
    lines.append(
        f"| **total** | | **{n}** | "
        + " | ".join(f"**{t['passed']} / {t['failed']} / {t['skipped']}**" for t in totals)
        + " |"
    )
    return "\n".join(lines)


def render_failures_markdown(report: dict, levels: tuple[str, ...] = ("MUST", "MUST NOT")) -> str:
    rt = report["runtime"].get("name", "?")
    rows = [c for c in report["clauses"] if c["outcome"] == "failed" and c["level"] in levels]
    out = [f"{rt} fails {len(rows)} {'/'.join(levels)} clause(s):"]
    for c in rows:
        out.append(
            f"- {c['doc']} § {c['section']}: {c['quote']} — observed: {c.get('observed', '')}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="JSON reports (--conformance-json)")
    # Exit status: 1 when a table shows a failed clause (not with --markdown, a rendering).
    parser.add_argument("--markdown", action="store_true", help="one table, a column per runtime")
    parser.add_argument(
        "--failures", action="store_true", help="with --markdown: list failed MUSTs"
    )
    args = parser.parse_args(argv)
    reports = [json.loads(p.read_text()) for p in args.reports]
    if args.markdown:
        print(render_markdown(reports))
        if args.failures:
            for r in reports:
                print()
                print(render_failures_markdown(r))
        return 0
    else:
        for r in reports:
            print(render_table(r))
            print()
    return 1 if any(c["outcome"] == "failed" for r in reports for c in r["clauses"]) else 0


if __name__ == "__main__":
    sys.exit(main())
