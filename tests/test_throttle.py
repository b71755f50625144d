"""The delivery throttle's arithmetic (pure: times are passed in)."""

from __future__ import annotations

from schedules.delivery import Limits, Throttle


def test_global_slots_are_evenly_spaced_just_under_the_limit() -> None:
    throttle = Throttle(Limits(per_second=30))
    slots = [throttle.take_slot(0.0) for _ in range(60)]
    gaps = {round(b - a, 6) for a, b in zip(slots, slots[1:], strict=False)}
    assert gaps == {round(1 / (30 * 0.985), 6)}
    assert all(slots[i + 30] - slots[i] > 1.0 for i in range(30))  # never 31 in one second


def test_a_private_chat_waits_its_interval() -> None:
    throttle = Throttle(Limits())
    throttle.note_send(42, 10.0)
    assert throttle.ready_at(42) == 10.0 + 1.0 * 1.1
    assert 42 in throttle.busy_chats(10.5)
    assert 42 not in throttle.busy_chats(11.2)


def test_a_group_gets_twenty_a_minute() -> None:
    throttle = Throttle(Limits(group_per_minute=20))
    for i in range(20):
        throttle.note_send(-100, float(i))
    assert throttle.ready_at(-100) == 0.0 + 60.0 + 0.5  # the first of the twenty must leave the window
    assert -100 in throttle.busy_chats(30.0)
    assert -100 not in throttle.busy_chats(61.0)


def test_pauses() -> None:
    throttle = Throttle(Limits())
    throttle.pause_all(3.0, now=100.0)
    assert throttle.take_slot(100.0) == 103.0
    throttle.pause_chat(7, 5.0, now=100.0)
    assert throttle.ready_at(7) == 105.0


def test_direct_replies_push_the_outbox_back_by_at_most_a_second() -> None:
    throttle = Throttle(Limits(per_second=30))
    for _ in range(200):
        throttle.note_direct(5, 50.0)
    assert 50.0 < throttle.take_slot(50.0) <= 51.0 + throttle.interval
