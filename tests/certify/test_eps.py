"""Radius, sweep, shard and value-list parsing: fractions, and one clear error per bad form."""
from __future__ import annotations

import pytest

from verifier.certify.eps import parse_eps, parse_number, parse_shard, parse_sweep, parse_values
from verifier.errors import InputError


@pytest.mark.parametrize("text, value", [("0.03", 0.03), ("2/255", 2 / 255), (" 8 / 255 ", 8 / 255),
                                         ("1e-3", 1e-3), ("0", 0.0), ("3", 3.0)])
def test_numbers_and_fractions(text, value):
    assert parse_eps(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["abc", "1/0", "", "2/x", "inf", "nan", "1//2"])
def test_bad_numbers_name_the_option(text):
    with pytest.raises(InputError, match="--eps"):
        parse_eps(text)


def test_negative_eps_rejected():
    with pytest.raises(InputError, match=">= 0"):
        parse_eps("-1/255")


def test_sweep_includes_both_ends():
    values = parse_sweep("0:8/255:9")
    assert len(values) == 9 and values[0] == 0
    assert values[-1] == pytest.approx(8 / 255) and values[1] == pytest.approx(1 / 255)
    assert parse_sweep("0.1:0.1:1") == [0.1]


@pytest.mark.parametrize("text, match", [("0:1", "START:STOP:COUNT"), ("0:1:x", "COUNT must be an integer"),
                                         ("0:1:0", "at least 1"), ("0.2:0.1:3", "START <= STOP")])
def test_bad_sweeps(text, match):
    with pytest.raises(InputError, match=match):
        parse_sweep(text)


def test_shards():
    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1/0", "a/b", "1"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


def test_value_lists():
    assert parse_values("0.4914,0.4822, 0.4465", "--mean") == (0.4914, 0.4822, 0.4465)
    assert parse_values("1/2", "--std") == (0.5,)
    with pytest.raises(InputError, match="--mean"):
        parse_values(" , ", "--mean")
    assert parse_number("2/4", "x") == 0.5
