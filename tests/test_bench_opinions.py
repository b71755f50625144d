"""The plumbing of `python -m bench opinions` at a small size: the planted analysis recovers its
groups, and in the vote loop every tap through the fake Bot API is answered by the next statement
and stored once. No timing is asserted (the machine is shared; the figures are the benchmark's)."""

from __future__ import annotations

from bench.opinions import analysis_run, line, loop_run


async def test_a_small_run_answers_every_tap_and_stores_every_vote() -> None:
    analysis = analysis_run(300, 40, 0.4)
    assert analysis.groups == 3 and analysis.ari >= 0.9
    loop = await loop_run(12, statements=8, per_person=4, think=(0.0, 0.05))
    assert loop.voters == 12 and loop.unanswered == 0 and loop.votes == 12 * 4
    assert loop.stored == 12 * 4
    text = line(analysis, loop)
    assert text.startswith("opinions: 300 participants x 40 statements -> groups=3 ari=") and "vote p99=" in text
