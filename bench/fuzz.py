"""`python -m bench fuzz --n N [--seed S]`: random updates from random people to the real bot; counts
unhandled errors, replies over Telegram's limits and changes nobody had the right to make (bench/fuzzer.py)."""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path

from bench.fuzzer import dump, fuzz, load

RESULTS = Path(__file__).resolve().parent / "results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=3000, help="steps (updates and clock moves)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    parser.add_argument("--replay", type=Path, default=None, help="run the steps saved by a failed run instead")


def run(args: argparse.Namespace) -> list[str]:
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    steps = load(args.replay.read_text(encoding="utf-8")) if args.replay else None
    report = asyncio.run(fuzz(args.n, seed, steps=steps))
    line = report.line()
    print(line, flush=True)
    if report.replays_refused == 0:
        print("  no replayed button was refused: the rights check saw nothing to refuse (too few steps?)")
    if not report.ok:
        RESULTS.mkdir(exist_ok=True)
        saved = RESULTS / f"fuzz-steps-seed{seed}.json"
        saved.write_text(dump(report.trace[: report.findings[0].step + 1]), encoding="utf-8")
        print("\n".join(report.details()), flush=True)
        print(f"  the steps up to the first finding: {saved} (python -m bench fuzz --replay {saved})", flush=True)
    return [line]
