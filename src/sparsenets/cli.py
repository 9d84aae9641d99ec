"""The `sparsenets` command: `run`, `report`, `data`. It only parses and dispatches."""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
import tempfile
import typing
from pathlib import Path

from sparsenets.errors import ConfigError, SparsenetsError

SEED_MAX = 2**31 - 1  # seeds + offsets must stay valid numpy / torch seeds
RUNNER_FIRST = {"run.json", ".lock"}  # what the runner writes before the run function starts
# OS failures a user can fix (full disk, read-only or forbidden place): one line, exit 2, never a traceback
USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def check_out_dir(path: str, flag: str) -> Path:
    """A folder argument that can be created and written: not empty, not a file, not below a file, and
    writable (probed by creating and removing a temporary folder in its nearest existing ancestor, since
    permission bits say nothing for root and nothing for /proc).

    Raises:
        ConfigError: one line naming the flag and what is wrong; nothing is left on disk.
    """
    if not path.strip():
        raise ConfigError(f"{flag} is empty; name a folder (e.g. {flag} runs/my-run)")
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{flag} {path} is an existing file, not a folder; choose another {flag}")
    existing = target
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ConfigError(f"{flag} {path}: {existing} is a file, so no folder can be made below it")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sparsenets-probe-", dir=existing))
    except OSError as e:
        raise ConfigError(f"{flag} {path}: cannot write in {existing} ({e.strerror}); choose another") from e
    return target


def _new_top(path: Path) -> Path | None:
    """The topmost folder of `path` that does not exist yet (what a run into `path` creates), or None."""
    top = None
    while not path.exists() and path != path.parent:
        top, path = path, path.parent
    return top


def _remove_debris(top: Path | None) -> None:
    """Remove `top`, made by this command, if it holds only folders and what the runner writes first."""
    if top is not None and top.is_dir() and all(p.is_dir() or p.name in RUNNER_FIRST for p in top.rglob("*")):
        shutil.rmtree(top)


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    exp = runs.get(args.name)  # unknown names fail before any process group starts
    if not 0 <= args.seed <= SEED_MAX:
        raise ConfigError(f"--seed must be in [0, {SEED_MAX}], got {args.seed}")
    config = runs.make_config(exp, args.quick, args.set, args.preset)  # the one validation path
    if exp.check is not None:
        exp.check(config)
    if args.out is not None:
        check_out_dir(args.out, "--out")
    else:
        check_out_dir(args.root, "--root")
    from sparsenets.runs.identity import config_hash

    run_dir = (
        Path(args.out)
        if args.out is not None
        else Path(args.root) / f"{args.name}-{config_hash(args.name, config, args.seed)}"
    )
    top = _new_top(
        run_dir
    )  # the folder this command would create, removed again if the run rejects its config
    info = init_distributed()
    try:
        run_dir, result = runs.execute(
            args.name,
            quick=args.quick,
            out=args.out,
            seed=args.seed,
            sets=args.set,
            root=args.root,
            preset=args.preset,
        )
    except ConfigError:
        # a config the run itself rejects (e.g. a batch larger than the data) leaves no folder behind
        if info.is_main:
            _remove_debris(top)
        raise
    if info.is_main:
        shown = {k: v for k, v in result["metrics"].items() if isinstance(v, int | float)}
        print(
            f"{args.name}: {run_dir} ({result['seconds']:.1f} s) "
            + " ".join(f"{k}={v:.4g}" for k, v in shown.items())
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    from sparsenets.report import write_report

    check_out_dir(args.out, "--out")
    md, html = write_report([Path(d) for d in args.dirs], Path(args.out))
    print(f"report: {md} and {html}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `sparsenets` command."""
    parser = _Parser(prog="sparsenets", description=__doc__)
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
        print(f"sparsenets: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in USER_OS_ERRORS:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"sparsenets: error: {e.strerror}{where}; free space or choose another --out", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sparsenets: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
