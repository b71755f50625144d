"""`python -m bench report` at a tiny scale (no timing): the county is generated, the bulletin
built, and the line printed in the issue's format."""

from __future__ import annotations

import argparse
import re

from bench import report


def test_bench_report_tiny(capsys: object) -> None:
    lines = report.run(argparse.Namespace(scale=0.002, out=None))
    assert len(lines) == 1
    found = re.fullmatch(r"report: (\d+) orgs, (\d+) tickets -> bulletin in [\d.]+ s, peak RSS \d+ MB", lines[0])
    assert found is not None, lines[0]
    # The county, its 15 townships and two branches; 2,000 problems.
    assert (int(found.group(1)), int(found.group(2))) == (18, 2000)
