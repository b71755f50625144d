"""The delivery throttle's arithmetic (pure: times are passed in)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from schedules.delivery import Limits, Send, Throttle


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
    # Still in flight: look again soon (its answer wakes the waiter sooner; this bounds a missed one).
    assert 0 < throttle.wait_time(5.0) <= Throttle.RECHECK
    first.done = 5.0
    assert throttle.wait_time(5.0) == pytest.approx(1.0 + Limits().window_slack)


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
    assert {round(b - a, 6) for a, b in itertools.pairwise(starts)} == {round(1 / 30, 6)}


def simulate(throttle: Throttle, count: int, latency: Callable[[int], float], late: Callable[[int], float],
             direct: Callable[[int], bool] = lambda i: False) -> list[Send]:
    """Send `count` messages to as many chats as the delivery worker and the direct replies do: each
    starts `late(i)` after the throttle lets it (a busy event loop wakes late) and is answered
    `latency(i)` after it started."""
    now, sends = 0.0, []
    for i in range(count):
        now += throttle.wait_time(now, direct=direct(i)) + late(i)
        send = throttle.claim(1000 + i, now, direct=direct(i))
        send.done = now + latency(i)
        sends.append(send)
    return sends


def most_telegram_could_see_in_a_second(sends: list[Send]) -> int:
    """The most of our sends that Telegram could have received within one second, if each reached it
    at any moment between its start and its answer: a send, and those that started no later and
    were answered after the second before it started, could all have reached it in that second."""
    return max(sum(1 for other in sends if other.started <= send.started and other.done is not None
                   and other.done > send.started - 1.0) for send in sends)


def test_a_late_start_is_made_up_not_lost() -> None:
    # Each send starts 0-8 ms after its slot, as a busy event loop wakes. A gap counted from each
    # send's actual start lost that every time (26.7 a second); slots follow a schedule instead.
    throttle = Throttle(Limits(per_second=30))
    sends = simulate(throttle, 900, latency=lambda i: 0.003, late=lambda i: (i * 7 % 9) / 1000)
    rate = (len(sends) - 1) / (sends[-1].started - sends[0].started)
    assert 29.5 <= rate < 30
    assert most_telegram_could_see_in_a_second(sends) == 30


def test_slow_answers_and_direct_replies_fill_the_window_and_never_overfill_it() -> None:
    # Every seventh send is a direct reply (it skips the pacing); one answer in ten takes 0.4 s.
    throttle = Throttle(Limits(per_second=30))
    sends = simulate(throttle, 600, latency=lambda i: 0.4 if i % 10 == 3 else 0.005,
                     late=lambda i: (i * 5 % 7) / 1000, direct=lambda i: i % 7 == 0)
    assert most_telegram_could_see_in_a_second(sends) == 30


def test_a_waiting_direct_reply_takes_the_next_place_before_the_outbox() -> None:
    throttle = Throttle(Limits(per_second=30))
    sends = simulate(throttle, 30, latency=lambda i: 0.01, late=lambda i: 0.0)
    opens = sends[0].started + 0.01 + 1.0 + throttle.limits.window_slack
    assert throttle.wait_time(opens) == 0.0  # the outbox's turn, unless a person waits
    throttle.direct_waiting = 1
    assert throttle.wait_time(opens, direct=True) == 0.0
    assert throttle.wait_time(opens) > 0
    throttle.claim(7, opens, direct=True)
    throttle.direct_waiting = 0
    assert throttle.wait_time(opens) > 0  # that place is taken: the outbox waits for the next one


def test_after_an_idle_spell_the_pace_starts_afresh() -> None:
    throttle = Throttle(Limits(per_second=30))
    simulate(throttle, 10, latency=lambda i: 0.001, late=lambda i: 0.0)
    throttle.claim(1, 100.0)  # long after the schedule's next slot: no burst to make up for it
    assert throttle.wait_time(100.0) == pytest.approx(throttle.interval)


def test_after_a_pause_the_pace_resumes_without_a_burst() -> None:
    throttle = Throttle(Limits(per_second=30))
    simulate(throttle, 10, latency=lambda i: 0.001, late=lambda i: 0.0)
    throttle.pause_all(0.4, now=0.4)  # within `catch_up` of the schedule: still no making up for it
    throttle.claim(1, 0.8)
    assert throttle.wait_time(0.8) == pytest.approx(throttle.interval)
