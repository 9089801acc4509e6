"""The `oncorepro` command: dataset checks, synthetic data, and chapter execution with papermill."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .paths import REPO_ROOT


def _data_list(args: argparse.Namespace) -> int:
    from .data.registry import DATASETS
    from .paths import resolve_data_root

    root = resolve_data_root(args.data_root)
    print(f"data root: {root}")
    for name, info in DATASETS.items():
        state = "present" if (root / info.folder).exists() else "absent"
        print(f"  {name:20s} {state:8s} {info.title}")
    return 0


def _data_verify(args: argparse.Namespace) -> int:
    from .data.checksums import verify_checksums
    from .data.registry import DATASETS
    from .paths import resolve_data_root

    root = resolve_data_root(args.data_root)
    names = args.names or [name for name, info in DATASETS.items() if (root / info.folder).exists()]
    failed = 0
    for name in names:
        report = verify_checksums(name, root)
        print(f"{name}: {report.summary()}")
        failed += not report.passed
    return 1 if failed else 0


def _data_synth(args: argparse.Namespace) -> int:
    from .data.synthetic import write_synthetic

    for name in args.names:
        folder = write_synthetic(name, Path(args.out), n_per_class=args.per_class, size=args.size, seed=args.seed)
        print(f"{name}: written to {folder}")
    return 0


def _chapter_run(args: argparse.Namespace) -> int:
    import papermill

    notebook = Path(args.notebook)
    output = Path(args.output) if args.output else REPO_ROOT / "book" / notebook.name
    parameters: dict[str, object] = {"profile": args.profile}
    if args.stored_only:
        parameters["run_missing"] = False
    if args.data_root:
        parameters["data_root"] = args.data_root
    if args.seeds:
        parameters["seeds"] = [int(s) for s in args.seeds.split(",")]
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                               cwd=str(notebook.parent), progress_bar=False)
    print(f"executed {notebook} -> {output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oncorepro", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="datasets: list, verify checksums, write synthetic stand-ins")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    listing = data_commands.add_parser("list", help="known datasets and whether the data root holds them")
    listing.add_argument("--data-root")
    listing.set_defaults(func=_data_list)
    verify = data_commands.add_parser("verify", help="check dataset files against their SHA-256 sums")
    verify.add_argument("names", nargs="*", help="datasets (default: all)")
    verify.add_argument("--data-root")
    verify.set_defaults(func=_data_verify)
    synth = data_commands.add_parser("synth", help="write synthetic stand-ins in each dataset's real layout")
    synth.add_argument("names", nargs="+")
    synth.add_argument("--out", required=True)
    synth.add_argument("--per-class", type=int, default=12)
    synth.add_argument("--size", type=int, default=64)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_data_synth)

    chapter = commands.add_parser("chapter", help="execute a chapter notebook with papermill")
    chapter_commands = chapter.add_subparsers(dest="chapter_command", required=True)
    run = chapter_commands.add_parser("run", help="run a chapter: finished runs are reused from the results store")
    run.add_argument("notebook", help="a notebook in notebooks/")
    run.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    run.add_argument("--output", help="executed notebook (default: book/<name>)")
    run.add_argument("--data-root")
    run.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    run.add_argument("--stored-only", action="store_true",
                     help="do not train: report the stored runs and list the pending ones")
    run.set_defaults(func=_chapter_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
