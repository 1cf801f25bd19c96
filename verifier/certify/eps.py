"""Parsing of the radius-like arguments: `2/255`, sweeps `0:8/255:9`, shards `1/4`, value lists.

Pure Python (no numpy, no torch) so the command can check its arguments before anything heavy loads.
"""
from __future__ import annotations

from fractions import Fraction

from verifier.errors import InputError


def parse_number(text: str, what: str = "value") -> float:
    """A float from `0.03`, `2/255`, `1e-3` or `8 / 255`; InputError naming `what` otherwise."""
    raw = text.strip()
    try:
        if "/" in raw:
            num, den = (part.strip() for part in raw.split("/", 1))
            value = Fraction(num) / Fraction(den)
        else:
            value = Fraction(raw)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"{what}: cannot read {text!r} as a number (e.g. 0.03 or 2/255)") from None
    return float(value)


def parse_eps(text: str) -> float:
    """A radius: a finite number >= 0."""
    eps = parse_number(text, "--eps")
    if eps < 0:
        raise InputError(f"--eps must be >= 0, got {text!r}")
    return eps


def parse_sweep(text: str) -> list[float]:
    """`START:STOP:COUNT` -> COUNT evenly spaced radii from START to STOP, both included."""
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(f"--eps-sweep: expected START:STOP:COUNT (e.g. 0:8/255:9), got {text!r}")
    start, stop = parse_number(parts[0], "--eps-sweep start"), parse_number(parts[1], "--eps-sweep stop")
    try:
        count = int(parts[2])
    except ValueError:
        raise InputError(f"--eps-sweep: COUNT must be an integer, got {parts[2]!r}") from None
    if count < 1:
        raise InputError(f"--eps-sweep: COUNT must be at least 1, got {count}")
    if start < 0 or stop < start:
        raise InputError(f"--eps-sweep: need 0 <= START <= STOP, got {text!r}")
    if count == 1:
        return [start]
    return [start + (stop - start) * i / (count - 1) for i in range(count)]


def parse_shard(text: str) -> tuple[int, int]:
    """`I/K` -> (I, K) with 0 <= I < K: this run takes every K-th selected sample, starting at the I-th."""
    try:
        i_text, k_text = text.split("/")
        i, k = int(i_text), int(k_text)
    except ValueError:
        raise InputError(f"--shard: expected I/K with integers, e.g. 0/4, got {text!r}") from None
    if k < 1 or not 0 <= i < k:
        raise InputError(f"--shard: need 0 <= I < K, got {text!r}")
    return i, k


NORM_NAMES = {"linf": "linf", "inf": "linf", "l_inf": "linf", "l2": "l2", "2": "l2", "l1": "l1", "1": "l1"}


def parse_norm(text: str) -> str:
    """The norm of the ball: linf, l2 or l1 (also inf, l_inf, 2, 1)."""
    key = text.strip().lower()
    if key not in NORM_NAMES:
        raise InputError(f"--norm {text}: choose linf, l2 or l1")
    return NORM_NAMES[key]


def parse_values(text: str, what: str) -> tuple[float, ...]:
    """A comma- or space-separated list of numbers (fractions allowed), e.g. `0.4914,0.4822,0.4465`."""
    items = [t for t in text.replace(",", " ").split() if t]
    if not items:
        raise InputError(f"{what}: expected one or more numbers, got {text!r}")
    return tuple(parse_number(t, what) for t in items)
