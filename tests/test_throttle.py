"""The delivery throttle's arithmetic (pure: times are passed in)."""

from __future__ import annotations

import itertools

from schedules.delivery import Limits, Throttle


def send_all(throttle: Throttle, count: int, latency: float, start: float = 0.0) -> list[float]:
    """Send `count` messages as fast as the throttle allows, each answered `latency` later."""
    now, starts = start, []
    for i in range(count):
        now += throttle.wait_time(now)
        send = throttle.claim(1000 + i, now)
        send.done = now + latency
        starts.append(now)
    return starts


def test_pacing_stays_just_under_the_limit() -> None:
    throttle = Throttle(Limits(per_second=30))
    starts = send_all(throttle, 300, latency=0.001)
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert 0.95 * 30 <= rate < 30


def test_no_second_holds_more_than_the_limit_even_with_slow_answers() -> None:
    throttle = Throttle(Limits(per_second=30))
    starts = send_all(throttle, 200, latency=0.2)
    # Telegram may receive each request any time before its answer: the 31st send only starts
    # once the first was answered a full second ago.
    assert all(b - (a + 0.2) >= 1.0 for a, b in zip(starts, starts[30:], strict=False))


def test_an_unanswered_send_holds_the_window() -> None:
    throttle = Throttle(Limits(per_second=2))
    first = throttle.claim(1, 0.0)
    throttle.claim(2, throttle.wait_time(0.0))
    assert 0 < throttle.wait_time(5.0) < 0.01  # poll again soon: the first is still in flight
    first.done = 5.0
    assert throttle.wait_time(5.0) == 1.0 + Limits().window_slack


def test_a_private_chat_waits_its_interval() -> None:
    throttle = Throttle(Limits())
    throttle.claim(42, 10.0)
    assert throttle.ready_at(42) == 10.0 + 1.0 * 1.1
    assert 42 in throttle.busy_chats(10.5)
    assert 42 not in throttle.busy_chats(11.2)


def test_a_group_gets_twenty_a_minute() -> None:
    throttle = Throttle(Limits(group_per_minute=20))
    for i in range(20):
        throttle.claim(-100, float(i)).done = float(i)
    assert throttle.ready_at(-100) == 0.0 + 60.0 + 0.5  # the first of the twenty must leave the window
    assert -100 in throttle.busy_chats(30.0)
    assert -100 not in throttle.busy_chats(61.0)


def test_pauses() -> None:
    throttle = Throttle(Limits())
    throttle.pause_all(3.0, now=100.0)
    assert throttle.wait_time(100.0) == 3.0
    throttle.pause_chat(7, 5.0, now=100.0)
    assert throttle.ready_at(7) == 105.0


def test_direct_replies_push_the_outbox_back_by_at_most_a_second() -> None:
    throttle = Throttle(Limits(per_second=1000))
    for _ in range(200):
        throttle.claim(5, 50.0, direct=True).done = 50.0
    assert 0 < throttle.wait_time(50.0) <= 1.0 + throttle.interval


def test_pacing_gaps_are_even() -> None:
    throttle = Throttle(Limits(per_second=30))
    starts = send_all(throttle, 20, latency=0.0)
    assert {round(b - a, 6) for a, b in itertools.pairwise(starts)} == {round(1 / (30 * 0.995), 6)}
