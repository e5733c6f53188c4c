#!/usr/bin/python3
"""A runc wrapper for tests/compat: given to podman (`--runtime`), dockerd (`--add-runtime`) and
ctr (`--runc-binary`), it copies the bundle's config.json of every `create` (or `run`) to the
capture directory as `<container id>.json`, byte for byte, then execs runc with the same argv.

Beside it, `<container id>.sources.json` records what each absolute path the config names
(bind-mount sources, namespace paths) was at that moment: "dir", "file", "missing" or
"other". The clients remove those files with the container; the tests make same-kind stand-ins.

Capture directory: $PYOCI_COMPAT_CAPTURE_DIR, else `captured/` next to this script (the tests
copy the script into a private directory, so no environment has to cross the clients'
daemons, conmon or shims). Every call is appended to `calls.log` there. runc:
$PYOCI_COMPAT_RUNC, else /usr/sbin/runc. The wrapper never changes what runc is asked to do.
"""

import json
import os
import stat
import sys


def kind(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def capture(args: list[str], directory: str) -> None:
    command = next((a for a in args if a in ("create", "run")), None)
    if command is None:
        return
    bundle = "."
    for i, arg in enumerate(args):
        if arg in ("--bundle", "-b") and i + 1 < len(args):
            bundle = args[i + 1]
        elif arg.startswith("--bundle="):
            bundle = arg.partition("=")[2]
    cid = args[-1]
    with open(os.path.join(bundle, "config.json"), "rb") as f:
        raw = f.read()
    config = json.loads(raw)
    paths = [m.get("source", "") for m in config.get("mounts") or []]
    paths += [n.get("path", "") for n in (config.get("linux") or {}).get("namespaces") or []]
    sources = {p: kind(p) for p in paths if p.startswith("/")}
    for name, data in ((f"{cid}.sources.json", json.dumps(sources).encode()), (f"{cid}.json", raw)):
        tmp = os.path.join(directory, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(directory, name))


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    directory = os.environ.get("PYOCI_COMPAT_CAPTURE_DIR") or os.path.join(here, "captured")
    runc = os.environ.get("PYOCI_COMPAT_RUNC") or "/usr/sbin/runc"
    args = sys.argv[1:]
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "calls.log"), "a") as log:
        log.write(" ".join(args) + "\n")
    try:
        capture(args, directory)
    except Exception as e:  # never stand between the client and runc
        with open(os.path.join(directory, "errors.log"), "a") as log:
            log.write(f"{' '.join(args)}: {e!r}\n")
    os.execv(runc, [runc, *args])


if __name__ == "__main__":
    main()
