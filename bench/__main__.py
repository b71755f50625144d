"""`python -m bench <name>`: run a benchmark, print its figures, append them to bench/results/<name>.txt.

Each benchmark is a module here with `add_arguments(parser)` and `run(args) -> list[str]`;
it drives the real Application against the fake Bot API server (bench/fakebotapi.py) on 127.0.0.1."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ["delivery", "wall", "meetings", "fuzz", "webwall", "broadcast", "votes", "report", "opinions", "scale"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="name", required=True)
    modules = {}
    for name in BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    lines = modules[args.name].run(args)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    with (RESULTS / f"{args.name}.txt").open("a", encoding="utf-8") as out:
        for line in lines:
            out.write(f"{stamp} {line}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
