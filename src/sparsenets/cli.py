"""The `sparsenets` command: `run`, `report`, `data`. It only parses and dispatches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sparsenets.errors import SparsenetsError


def _run(args: argparse.Namespace) -> int:
    from sparsenets import runs
    from sparsenets.train.dist import init_distributed

    if args.list:
        for name, exp in sorted(runs.discover().items()):
            print(f"{name:32s} {exp.description.strip().splitlines()[0] if exp.description else ''}")
            for preset in sorted(exp.presets):
                print(f"{'':32s}   --preset {preset}")
        return 0
    if not args.name:
        raise SparsenetsError("name an experiment: sparsenets run NAME (see `sparsenets run --list`)")
    runs.get(args.name)  # unknown names fail before any process group starts
    info = init_distributed()
    run_dir, result = runs.execute(
        args.name,
        quick=args.quick,
        out=args.out,
        seed=args.seed,
        sets=args.set,
        root=args.root,
        preset=args.preset,
    )
    if info.is_main:
        shown = {k: v for k, v in result["metrics"].items() if isinstance(v, int | float)}
        print(
            f"{args.name}: {run_dir} ({result['seconds']:.1f} s) "
            + " ".join(f"{k}={v:.4g}" for k, v in shown.items())
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    from sparsenets.report import write_report

    md, html = write_report([Path(d) for d in args.dirs], Path(args.out))
    print(f"report: {md} and {html}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `sparsenets` command."""
    parser = argparse.ArgumentParser(prog="sparsenets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run, resume or reuse an experiment")
    run.add_argument("name", nargs="?", help="experiment name (see --list)")
    run.add_argument("--list", action="store_true", help="list the experiments")
    run.add_argument("--quick", action="store_true", help="a reduced, minutes-long version")
    run.add_argument("--out", default=None, help="run folder (default: ROOT/NAME-CONFIGHASH)")
    run.add_argument("--root", default="runs", help="where default run folders go (default: runs)")
    run.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    run.add_argument(
        "--preset",
        default=None,
        help="a documented recipe of the experiment (listed by --list); --set refines it",
    )
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    run.set_defaults(func=_run)

    rep = sub.add_parser("report", help="write a Markdown + HTML report from run folders")
    rep.add_argument("dirs", nargs="+", help="run folders, or folders that contain run folders")
    rep.add_argument("--out", default="report", help="output folder (default: report)")
    rep.set_defaults(func=_report)

    try:
        from sparsenets.data import cli as data_cli
    except ImportError:  # the data layer is optional for `run` and `report`
        data_cli = None
    if data_cli is not None:
        data_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input prints one line on stderr and returns 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SparsenetsError as e:
        print(f"sparsenets: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sparsenets: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
