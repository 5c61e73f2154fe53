"""``recent_rate``: the capture and prediction rates, which fall once events stop."""
from __future__ import annotations

import pytest

from pipelines.sources import STALE_AFTER_S, recent_rate

EVERY_40_MS = [1000.0 + 0.04 * i for i in range(32)]  # 25 per second over 1.24 s (a pusher's own times)


@pytest.mark.parametrize("times, silent_s, expected", [
    ([], 50.0, 0.0),
    ([100.0], 0.0, 0.0),
    (EVERY_40_MS, 0.01, 25.0),  # flowing: the span of the events, whatever clock they are on
    (EVERY_40_MS, STALE_AFTER_S, 25.0),  # silent for just the grace period: unchanged
    (EVERY_40_MS, 3.72, 31 / 4.96),  # silent 3.72 s: the silence counts
    ([100.0, 100.0], 0.5, 0.0),  # no span
])
def test_recent_rate(times, silent_s, expected):
    assert recent_rate(times, silent_s) == pytest.approx(expected)


def test_a_silent_stream_falls_towards_zero():
    rates = [recent_rate(EVERY_40_MS, silent_s) for silent_s in (1.5, 4.0, 9.0, 99.0)]
    assert rates == sorted(rates, reverse=True) and rates[-1] < 0.5
