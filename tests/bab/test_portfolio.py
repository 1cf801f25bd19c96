"""TimeShares: equal shares until there is evidence, then more time to the member closing its root fastest."""
import math

import pytest

from verifier.bab.portfolio import TimeShares


def _run(shares: TimeShares, member: int, volumes: list[float], seconds: float = 1.0) -> None:
    for v in volumes:
        shares.record(member, v, seconds)


def test_equal_shares_during_warmup() -> None:
    s = TimeShares(3, warmup=3.0)
    _run(s, 0, [0.1])
    _run(s, 1, [0.9])
    assert s.shares() == pytest.approx([1 / 3] * 3)


def test_prior_shares_during_warmup() -> None:
    s = TimeShares(3, warmup=3.0, prior=(1.0, 1.0, 0.5))
    _run(s, 2, [0.1])
    assert s.shares() == pytest.approx([0.4, 0.4, 0.2])
    with pytest.raises(ValueError):
        TimeShares(3, prior=(1.0, 1.0))


def test_a_member_far_behind_gets_less_than_its_speed_alone_would_give() -> None:
    """ACAS Xu 3_3 prop_2 after 10 own seconds: the leader at log V -4.2 falling 0.14/s, another at -1.0
    falling 0.08/s (a third of the time by speed alone), the third stalled near -1.7."""
    s = TimeShares(3, floor=0.1, warmup=0.0)
    for t in range(1, 11):
        s.record(0, math.exp(-4.2 + 0.14 * (10 - t)), 1.0)
        s.record(1, math.exp(-1.66 + 0.001 * (10 - t)), 1.0)
        s.record(2, math.exp(-0.97 + 0.08 * (10 - t)), 1.0)
    by_speed = 0.1 + 0.7 * s.speed(2) / sum(s.speed(k) for k in range(3))
    shares = s.shares()
    assert shares[2] < by_speed - 0.1
    assert shares[0] > 0.6 and min(shares) >= 0.1 - 1e-12 and sum(shares) == pytest.approx(1.0)


def test_equal_shares_without_progress() -> None:
    s = TimeShares(2, warmup=0.0)
    _run(s, 0, [1.0, 1.0, 1.0])
    _run(s, 1, [1.0, 1.0, 1.0])
    assert s.shares() == pytest.approx([0.5, 0.5])


def test_faster_member_gets_more_and_floors_hold() -> None:
    s = TimeShares(3, floor=0.1, warmup=1.0)
    _run(s, 0, [0.5, 0.25, 0.125, 0.0625])  # halves every second
    _run(s, 1, [0.9, 0.84, 0.84, 0.84])  # stalls
    _run(s, 2, [0.99, 0.98, 0.97, 0.96])
    shares = s.shares()
    assert sum(shares) == pytest.approx(1.0)
    assert shares[0] > 0.7 and min(shares) >= 0.1 - 1e-12
    assert shares[1] == pytest.approx(0.1)  # no fall of log V in the second half


def test_speed_is_judged_on_the_latest_time_only() -> None:
    """An early burst (one member proves half the volume at once, then stalls) does not outweigh steady progress."""
    s = TimeShares(2, warmup=0.0)
    _run(s, 0, [0.1, 0.1, 0.1, 0.1])
    _run(s, 1, [0.8, 0.6, 0.45, 0.34])
    assert s.speed(0) == 0.0
    assert s.speed(1) > 0.2
    assert s.shares()[1] > s.shares()[0]


def test_a_finished_member_takes_all_but_the_floors() -> None:
    s = TimeShares(3, floor=0.1, warmup=0.0)
    _run(s, 0, [0.5])
    _run(s, 1, [0.0])
    assert math.isinf(s.speed(1))
    assert s.shares() == pytest.approx([0.1, 0.8, 0.1])


def test_floor_never_exceeds_an_equal_share() -> None:
    s = TimeShares(20, floor=0.1, warmup=0.0)
    _run(s, 3, [0.5, 0.25])
    shares = s.shares()
    assert sum(shares) == pytest.approx(1.0) and min(shares) >= 0.05 - 1e-12
