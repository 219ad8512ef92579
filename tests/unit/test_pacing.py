"""The send pacer: sends spaced at the account's rate, and a pause when SES throttles anyway."""

import itertools

from chalicelib.mail.pacing import SendPacer
from tests.support import VirtualTimer


def send_times(pacer: SendPacer, timer: VirtualTimer, count: int) -> list[float]:
    times = []
    for _ in range(count):
        pacer.wait()
        times.append(timer.monotonic())
    return times


def test_sends_are_spaced_evenly_so_no_second_holds_more_than_the_rate():
    timer = VirtualTimer()
    pacer = SendPacer(lambda: 14.0, timer)
    times = send_times(pacer, timer, 100)
    assert times[0] == 1000.0  # the first goes at once
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {round(1 / 14, 9)}
    for n, start in enumerate(times):
        assert sum(1 for t in times[n:] if t - start < 1.0 - 1e-9) <= 14


def test_a_pause_in_sending_is_not_made_up_for_with_a_burst():
    timer = VirtualTimer()
    pacer = SendPacer(lambda: 2.0, timer)
    send_times(pacer, timer, 1)
    timer.now += 60  # nothing to send for a minute
    first, second = send_times(pacer, timer, 2)
    assert second - first == 0.5


def test_the_rate_is_asked_each_time_so_a_new_figure_applies_at_once():
    rate = {"now": 1.0}
    timer = VirtualTimer()
    pacer = SendPacer(lambda: rate["now"], timer)
    a, b = send_times(pacer, timer, 2)
    assert b - a == 1.0
    rate["now"] = 10.0
    (c,) = send_times(pacer, timer, 1)
    (d,) = send_times(pacer, timer, 1)
    assert round(d - c, 9) == 0.1


def test_throttled_holds_every_send_back_for_one_then_two_seconds_at_most_eight():
    timer = VirtualTimer()
    pacer = SendPacer(lambda: 100.0, timer)
    (start,) = send_times(pacer, timer, 1)
    pacer.throttled(0)
    (after_one,) = send_times(pacer, timer, 1)
    assert round(after_one - start, 9) == 1.0
    pacer.throttled(1)
    (after_two,) = send_times(pacer, timer, 1)
    assert round(after_two - after_one, 9) == 2.0
    pacer.throttled(10)
    (after_long,) = send_times(pacer, timer, 1)
    assert round(after_long - after_two, 9) == 8.0


def test_a_sender_woken_late_does_not_let_the_next_one_go_at_once():
    """On a loaded machine a sleeping thread wakes late; the next send is then counted from
    when it went, so no second ever holds more than the rate (the old pacer let two go
    together after a late wake-up: 15 in one second at 14)."""

    class LateOnce(VirtualTimer):
        late = True

        def sleep(self, seconds: float) -> None:
            super().sleep(seconds + (0.5 if self.late else 0.0))
            self.late = False

    timer = LateOnce()
    pacer = SendPacer(lambda: 14.0, timer)
    times = send_times(pacer, timer, 60)
    assert min(round(b - a, 9) for a, b in itertools.pairwise(times)) >= round(1 / 14, 9)
    for n, start in enumerate(times):
        assert sum(1 for t in times[n:] if t - start < 1.0 - 1e-9) <= 14
