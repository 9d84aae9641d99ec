"""`sparsenets data list | install NAME... | verify [NAME...]`.

The main CLI registers this with `add_parser(subparsers)` and dispatches to `run(args)`;
`python -m sparsenets.data.cli ...` runs it standalone.
"""

from __future__ import annotations

import argparse
import sys

from sparsenets.data.registry import REGISTRY, available, check, install
from sparsenets.data.sources import cache_dir
from sparsenets.errors import SparsenetsError


def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub = p.add_subparsers(dest="data_command", required=True)
    sub.add_parser("list", help="list datasets and whether they are installed")
    ins = sub.add_parser("install", help="download, check and unpack datasets ('all' for every one)")
    ins.add_argument("names", nargs="+", metavar="NAME")
    ver = sub.add_parser(
        "verify", help="check installed files against pinned sha256 (default: installed ones)"
    )
    ver.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(func=run)
    return p


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `data` subcommand on an existing argparse subparsers object; returns its parser."""
    return _configure(subparsers.add_parser("data", help="list, install and verify datasets"))


def run(args: argparse.Namespace) -> int:
    """Execute a parsed `data` command; 0 on success, 1 when verify finds problems."""
    if args.data_command == "list":
        print(f"cache: {cache_dir()}")
        infos = available()
        width = max(len(i.name) for i in infos)
        for info in infos:
            mark = "installed" if info.installed else "missing"
            print(f"{info.name:<{width}} {mark:<10} {info.description}")
        return 0
    if args.data_command == "install":
        install(args.names)
        return 0
    names = args.names or [i.name for i in available() if i.installed and REGISTRY[i.name].sources]
    names = list(REGISTRY) if "all" in names else names
    bad = 0
    for name in names:
        issues = check(name)
        bad += bool(issues)
        print(f"{name}: {'ok' if not issues else '; '.join(issues)}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point; a `SparsenetsError` prints one line to stderr and returns 2."""
    args = _configure(argparse.ArgumentParser(prog="sparsenets data")).parse_args(argv)
    try:
        return run(args)
    except SparsenetsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
