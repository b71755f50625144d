"""`python -m bench fuzz --n N [--seed S]`: random updates from random people to the real bot; counts
unhandled errors, replies over Telegram's limits and changes nobody had the right to make (bench/fuzzer.py)."""

from __future__ import annotations

import argparse
import asyncio
import random

from bench.fuzzer import fuzz


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=3000, help="steps (updates and clock moves)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")


def run(args: argparse.Namespace) -> list[str]:
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    report = asyncio.run(fuzz(args.n, seed))
    line = report.line()
    print(line, flush=True)
    if not report.ok:
        print("\n".join(report.details()), flush=True)
    return [line]
