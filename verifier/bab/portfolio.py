"""Time shares of an input-split portfolio: more time to the member that is closing its root fastest.

Every (box, clause) root is searched by a few differently configured members (which dims to split,
which bounds); which one proves a root is instance-dependent, so all of them get time. Equal shares
waste most of it where one member clearly leads: on ACAS Xu 3_3 prop_2 the member that optimises
its objective's slopes closes the root in 26 CPU s alone, while the other two still hold 14% and 24%
of the volume open after 45 s, so a third of the time each makes the root take 56 s.

A member's progress is the open volume V of its frontier (relative to the root box): proving and
clipping boxes shrink it, splitting does not. Its speed is the rate at which log V falls per second of
its own time over the latest quarter of that time (one slice's figure is noisy: an alpha-CROWN member
proves big boxes in bursts, then stalls). Speed alone misjudges a member far behind: on 3_3 prop_2 after
10 own seconds the winner is at log V = -4.2 and falling 0.14/s, the alpha-CROWN-per-layer member at
-1.0 and falling 0.08/s, and speed gave the latter a third of the time. So a member's share follows
1 / (the own seconds it would need, at its speed, to get `lead` nats below the best member's log V now),
each at least `floor` (a member that stalls now may lead later, and its sampling of the open region
still finds counterexamples). In the first `warmup` seconds, where most roots end anyway and the figures
say little, shares follow `prior` (equal by default): a member 20-60x dearer per box that wins only on
a few steep roots gets less there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TimeShares:
    """Per root: each member's history of (own seconds, log open volume)."""

    members: int
    floor: float = 0.1
    warmup: float = 3.0
    window: float = 0.25  # the share of a member's own time (the latest) its speed is measured over
    lead: float = 2.0  # nats below the best member's log V that every member is timed to reach
    prior: tuple[float, ...] = ()  # relative weights during the warmup; equal if empty
    history: list[list[tuple[float, float]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.history = [[(0.0, 0.0)] for _ in range(self.members)]  # V = 1 at the start
        self.floor = min(self.floor, 1.0 / self.members)
        if self.prior and (len(self.prior) != self.members or min(self.prior) <= 0):
            raise ValueError(f"prior needs {self.members} positive weights, got {self.prior}")
        if not self.lead > 0:
            raise ValueError(f"lead must be positive, got {self.lead}")

    @property
    def spent(self) -> float:
        return sum(h[-1][0] for h in self.history)

    def record(self, member: int, volume: float, seconds: float) -> None:
        """The member ran another `seconds`, after which its open volume was `volume`."""
        own = self.history[member]
        log_v = math.log(volume) if volume > 0 else -math.inf
        own.append((own[-1][0] + max(seconds, 0.0), log_v))

    def speed(self, member: int) -> float:
        """The fall of log V per own second over the latest `window` of the member's time (inf once V = 0)."""
        own = self.history[member]
        now, log_now = own[-1]
        if log_now == -math.inf:
            return math.inf
        then, log_then = next((t, v) for t, v in own if t >= now * (1 - self.window))
        if now - then <= 0:
            then, log_then = own[-2] if len(own) > 1 else own[-1]
        return max(0.0, (log_then - log_now) / (now - then)) if now > then else 0.0

    def remaining(self, member: int, target: float) -> float:
        """Own seconds the member needs, at its speed, to bring log V down to `target` (inf if stalled)."""
        speed, log_now = self.speed(member), self.history[member][-1][1]
        if math.isinf(speed):
            return 0.0
        return (log_now - target) / speed if speed > 0 else math.inf

    def shares(self) -> list[float]:
        """Fractions of the next round's time, summing to 1."""
        weights = list(self.prior) if self.prior else [1.0] * self.members
        start = [w / sum(weights) for w in weights]
        speeds = [self.speed(k) for k in range(self.members)]
        if self.spent < self.warmup or sum(speeds) <= 0:
            return start
        if any(math.isinf(s) for s in speeds):
            pace = [1.0 if math.isinf(s) else 0.0 for s in speeds]
        else:
            target = min(h[-1][1] for h in self.history) - self.lead
            pace = [1.0 / self.remaining(k, target) for k in range(self.members)]
        total, rest = sum(pace), 1.0 - self.floor * self.members
        return [self.floor + rest * p / total for p in pace]
