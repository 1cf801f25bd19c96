"""Tests of the VNN-LIB front end: every construct, every error path, DNF grouping, and the real benchmark specs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.errors import SpecError
from verifier.spec.spec import Spec
from verifier.spec.vnnlib import MAX_DNF_TERMS, load_spec, parse_vnnlib, parse_vnnlib_text

BENCHMARKS = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
BENCH_FILES = sorted(BENCHMARKS.glob("*/vnnlib/*.vnnlib")) if BENCHMARKS.is_dir() else []


# ------------------------------------------------------------------------------------------------ helpers


def declarations(n_inputs: int = 2, n_outputs: int = 3) -> str:
    xs = "".join(f"(declare-const X_{i} Real)\n" for i in range(n_inputs))
    ys = "".join(f"(declare-const Y_{j} Real)\n" for j in range(n_outputs))
    return xs + ys


def unit_box(n_inputs: int = 2) -> str:
    """Top-level asserts putting every input in [0, 1]."""
    return "".join(f"(assert (>= X_{i} 0))\n(assert (<= X_{i} 1))\n" for i in range(n_inputs))


def parse(body: str, n_inputs: int = 2, n_outputs: int = 3, box: bool = True) -> Spec:
    return parse_vnnlib_text(declarations(n_inputs, n_outputs) + (unit_box(n_inputs) if box else "") + body)


def only_clause(spec: Spec):
    (prop,) = spec.properties
    (clause,) = prop.clauses
    return clause


def rows(spec: Spec) -> list[tuple[list[float], float]]:
    """The rows of the single clause, as plain lists for readable asserts."""
    clause = only_clause(spec)
    return [(list(c), float(d)) for c, d in zip(clause.C, clause.d)]


# ------------------------------------------------------------------------------------------------ constructs


def test_box_and_output_row() -> None:
    spec = parse("(assert (<= Y_1 Y_0))")
    assert (spec.n_inputs, spec.n_outputs, spec.source) == (2, 3, "<string>")
    (prop,) = spec.properties
    np.testing.assert_array_equal(prop.lower, [0.0, 0.0])
    np.testing.assert_array_equal(prop.upper, [1.0, 1.0])
    assert rows(spec) == [([-1.0, 1.0, 0.0], 0.0)]


def test_arrays_are_float64() -> None:
    spec = parse("(assert (<= Y_1 Y_0))")
    prop = spec.properties[0]
    clause = prop.clauses[0]
    assert {a.dtype for a in (prop.lower, prop.upper, clause.C, clause.d)} == {np.dtype(np.float64)}


def test_output_vs_constant() -> None:
    assert rows(parse("(assert (>= Y_0 3.5))")) == [([-1.0, 0.0, 0.0], 3.5)]
    assert rows(parse("(assert (<= Y_2 -1))")) == [([0.0, 0.0, 1.0], 1.0)]


@pytest.mark.parametrize(
    "atoms, lower, upper",
    [
        ("(<= X_0 0.25) (>= X_0 -0.25)", -0.25, 0.25),  # variable on the left
        ("(>= 0.25 X_0) (<= -0.25 X_0)", -0.25, 0.25),  # constant on the left
        ("(< X_0 0.25) (> X_0 -0.25)", -0.25, 0.25),  # strict taken as non-strict
        ("(<= -0.25 X_0 0.25)", -0.25, 0.25),  # chained comparison
        ("(= X_0 0.5)", 0.5, 0.5),  # point interval
        ("(<= (* 2 X_0) 1) (>= (* X_0 -4) -2) (>= X_0 0)", 0.0, 0.5),  # scaled single variable
        ("(<= (+ X_0 1) 2) (>= (- X_0 1) -1)", 0.0, 1.0),  # shifted single variable
        ("(<= X_0 0.9) (<= X_0 0.7) (>= X_0 0.1) (>= X_0 0.3)", 0.3, 0.7),  # intersection
    ],
)
def test_input_bounds(atoms: str, lower: float, upper: float) -> None:
    spec = parse(f"(assert (and {atoms}))\n(assert (>= X_1 0))\n(assert (<= X_1 1))\n(assert (<= Y_0 0))", box=False)
    prop = spec.properties[0]
    assert (prop.lower[0], prop.upper[0]) == (lower, upper)


@pytest.mark.parametrize(
    "term, coeffs, const",
    [
        ("(+ Y_0 (* 2 Y_1) -1)", [1.0, 2.0, 0.0], -1.0),
        ("(- Y_0 Y_1 Y_2)", [1.0, -1.0, -1.0], 0.0),
        ("(- Y_0)", [-1.0, 0.0, 0.0], 0.0),
        ("(* Y_1 3)", [0.0, 3.0, 0.0], 0.0),
        ("(* 2 (- 3.0) Y_2)", [0.0, 0.0, -6.0], 0.0),
        ("(/ Y_0 4)", [0.25, 0.0, 0.0], 0.0),
        ("(+ Y_0 Y_0 (- Y_1 Y_1))", [2.0, 0.0, 0.0], 0.0),
        ("(+ (- 3.0) Y_1)", [0.0, 1.0, 0.0], -3.0),
    ],
)
def test_arithmetic_terms(term: str, coeffs: list[float], const: float) -> None:
    assert rows(parse(f"(assert (<= {term} 0))")) == [(coeffs, const)]


@pytest.mark.parametrize(
    "numeral, value",
    [("1", 1.0), ("-0.5", -0.5), ("1e-3", 1e-3), (".5", 0.5), ("-1.2E+02", -120.0), ("+2.", 2.0), ("(- 3.0)", -3.0),
     ("-0.0", 0.0), ("3.991125645861615", 3.991125645861615)],
)
def test_numerals(numeral: str, value: float) -> None:
    assert rows(parse(f"(assert (>= Y_0 {numeral}))")) == [([-1.0, 0.0, 0.0], value)]


def test_equality_on_outputs_gives_two_rows() -> None:
    assert rows(parse("(assert (= Y_0 Y_1))")) == [([1.0, -1.0, 0.0], 0.0), ([-1.0, 1.0, 0.0], 0.0)]


def test_comments_and_whitespace() -> None:
    text = (
        "; header comment (with parens) ) (\r\n"
        "(declare-const X_0 Real) ; trailing comment\r\n"
        "(declare-const\tY_0\n   Real)\n"
        "(assert\n\t(<= X_0 ; comment inside a formula\n 1))(assert (>= X_0 0))"
        "(assert (>= Y_0 0.5)) ; no newline at end"
    )
    spec = parse_vnnlib_text(text)
    assert (spec.n_inputs, spec.n_outputs) == (1, 1)
    assert rows(spec) == [([-1.0], 0.5)]


def test_no_output_atoms_gives_always_true_clause() -> None:
    clause = only_clause(parse(""))
    assert clause.C.shape == (0, 3) and clause.d.shape == (0,)
    assert clause.holds(np.zeros(3))


def test_ignored_commands_and_declare_fun() -> None:
    text = "(set-logic QF_LRA)\n(declare-fun X_0 () Real)\n(declare-const Y_0 Real)\n" \
           "(assert (<= X_0 1))\n(assert (>= X_0 0))\n(check-sat)\n(get-model)\n(exit)\n"
    assert parse_vnnlib_text(text).n_inputs == 1


# ------------------------------------------------------------------------------------------------ DNF

ACAS_PROP_6_LIKE = """
(assert (or
    (and (<= X_0 0.7) (>= X_0 -0.1) (<= X_1 0.5) (>= X_1 0.1))
    (and (<= X_0 0.7) (>= X_0 -0.1) (<= X_1 -0.1) (>= X_1 -0.5))
))
(assert (or
    (and (<= Y_1 Y_0))
    (and (<= Y_2 Y_0))
    (and (<= Y_3 Y_0))
    (and (<= Y_4 Y_0))
))
"""


def test_dnf_cross_product_grouped_by_box() -> None:
    spec = parse(ACAS_PROP_6_LIKE, n_outputs=5, box=False)
    assert len(spec.properties) == 2
    np.testing.assert_array_equal(spec.properties[0].lower, [-0.1, 0.1])
    np.testing.assert_array_equal(spec.properties[1].upper, [0.7, -0.1])
    for prop in spec.properties:
        assert len(prop.clauses) == 4
        for k, clause in enumerate(prop.clauses, start=1):  # order of appearance
            expected = np.zeros((1, 5))
            expected[0, k], expected[0, 0] = 1.0, -1.0
            np.testing.assert_array_equal(clause.C, expected)
            np.testing.assert_array_equal(clause.d, [0.0])


def test_top_level_bounds_then_disjunction_of_conjunctions() -> None:
    spec = parse("(assert (or (and (<= Y_2 Y_0) (<= Y_2 Y_1)) (and (>= Y_0 1))))")
    (prop,) = spec.properties
    assert [c.C.shape[0] for c in prop.clauses] == [2, 1]


def test_boxes_equal_after_intersection_share_a_property() -> None:
    body = """
    (assert (or (and (<= X_0 0.5) (<= Y_0 0))
                (and (<= X_0 0.5) (<= X_0 0.8) (<= Y_1 0))
                (and (<= X_0 0.3) (<= Y_2 0))))
    """
    spec = parse(body)
    assert [len(p.clauses) for p in spec.properties] == [2, 1]
    assert [p.upper[0] for p in spec.properties] == [0.5, 0.3]


def test_term_bound_equal_to_base_is_the_base_box() -> None:
    spec = parse("(assert (or (and (<= X_0 1) (<= Y_0 0)) (and (<= Y_1 0))))")
    assert [len(p.clauses) for p in spec.properties] == [2]


def test_identical_clauses_and_rows_deduplicated() -> None:
    spec = parse("(assert (or (and (<= Y_1 Y_0) (<= Y_1 Y_0)) (>= Y_0 Y_1) (<= Y_2 0)))")
    (prop,) = spec.properties
    assert [c.C.shape[0] for c in prop.clauses] == [1, 1]


def test_top_level_output_rows_join_every_clause() -> None:
    spec = parse("(assert (<= Y_0 0))\n(assert (or (<= Y_1 0) (<= Y_2 0)))")
    (prop,) = spec.properties
    assert [c.C[:, 0].tolist() for c in prop.clauses] == [[1.0, 0.0], [1.0, 0.0]]


def test_nested_and_or() -> None:
    body = "(assert (and (or (<= Y_0 0) (<= Y_1 0)) (or (and (<= Y_2 0) (or (>= Y_0 1) (>= Y_1 1))))))"
    (prop,) = parse(body).properties
    assert len(prop.clauses) == 4  # (a | b) & (c & (d | e)) -> ac d, ac e, bc d, bc e
    assert all(c.C.shape[0] == 3 for c in prop.clauses)


def test_clause_semantics_is_a_violation() -> None:
    """(<= Y_1 Y_0) holds where y1 <= y0: the spec describes the bad outputs."""
    clause = only_clause(parse("(assert (<= Y_1 Y_0))"))
    assert clause.holds([2.0, 1.0, 0.0]) and not clause.holds([1.0, 2.0, 0.0])


# ------------------------------------------------------------------------------------------------ errors

X0_Y0 = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
BOX_1 = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1))\n(assert (>= X_0 0))\n"


@pytest.mark.parametrize(
    "text, line, col, phrase",
    [
        (BOX_1 + "(assert (<= Y_1 0))", 5, 13, "undeclared variable Y_1"),
        (BOX_1 + "(declare-const X_0 Real)", 5, 16, "duplicate declaration of X_0 (first declared at 1:16)"),
        (BOX_1 + "(assert (<= Y_0 0)))", 5, 20, "unbalanced parentheses"),
        (BOX_1 + "(assert (<= Y_0 0)\n(assert (<= Y_0 1))", 5, 1, "never closed"),
        (BOX_1 + "(assert (not (<= Y_0 0)))", 5, 10, "unknown operator 'not'"),
        (BOX_1 + "(assert (<= (max Y_0 1) 0))", 5, 14, "unknown operator 'max'"),
        (BOX_1 + "(push 1)", 5, 2, "unknown command 'push'"),
        ("(declare-const X_0 Int)", 1, 20, "unsupported sort 'Int'"),
        ("(declare-const X_0 Real)\n(declare-const input Real)", 2, 16, "unsupported variable name 'input'"),
        ("(declare-const X_0)", 1, 1, "must be (declare-const NAME Real)"),
        ("(declare-const Y_0 Real)\n(assert (<= Y_0 0))\n", 3, 1, "missing declarations: no input variables"),
        ("(declare-const X_0 Real)\n(assert (<= X_0 0))\n(assert (>= X_0 0))", 3, 20, "no output variables"),
        ("(declare-const X_0 Real)\n(declare-const X_2 Real)\n(declare-const Y_0 Real)", 2, 16,
         "X_2 declared but X_1 is not"),
        (X0_Y0 + "(assert (<= X_0 1))", 1, 16, "X_0 has no finite lower bound"),
        (X0_Y0 + "(assert (>= X_0 1))", 1, 16, "X_0 has no finite upper bound"),
        (BOX_1 + "(assert (>= X_0 2))", 5, 9, "empty input box: X_0"),
        (BOX_1 + "(assert (<= X_0 Y_0))", 5, 9, "mixing inputs (X) and outputs (Y) is not supported"),
        ("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(assert (<= (+ X_0 X_1) 1))",
         4, 9, "several inputs (X_0, X_1) is not supported"),
        (BOX_1 + "(assert (<= (* Y_0 Y_0) 1))", 5, 14, "nonlinear term"),
        (BOX_1 + "(assert (<= (/ 1 Y_0) 1))", 5, 14, "nonlinear term"),
        (BOX_1 + "(assert (<= (/ Y_0 0) 1))", 5, 14, "division by zero"),
        (BOX_1 + "(assert (<= 1 2))", 5, 9, "comparison without variables"),
        (BOX_1 + "(assert (<= Y_0 1e999))", 5, 17, "out of range"),
        (BOX_1 + "(assert (<= Y_0 inf))", 5, 17, "unknown symbol 'inf'"),
        (X0_Y0 + "(assert (>= X_0 0))\n(assert (<= X_0 1e39))", 4, 17, "bound 1e39 on X_0 is beyond float32's range"),
        (X0_Y0 + "(assert (<= X_0 1))\n(assert (<= -3.5e38 X_0))", 4, 9, "on X_0 is beyond float32's range"),
        (BOX_1 + "(assert (<= (* 1e300 1e300) X_0))", 5, 9, "on X_0 is beyond float32's range"),
        (BOX_1 + "(assert (<= Y_0 1e39))", 5, 9, "constant -1e+39 is beyond float32's range"),
        (BOX_1 + "(assert (<= (* 1e39 Y_0) 0))", 5, 9, "coefficient 1e+39 of Y_0 is beyond float32's range"),
        (BOX_1 + "(assert (<= Y_0))", 5, 10, "needs at least two operands"),
        (BOX_1 + "(assert (<= Y_0 0) (<= Y_0 1))", 5, 1, "exactly one formula"),
        (BOX_1 + "(assert Y_0)", 5, 9, "expected a formula"),
        (BOX_1 + "(assert (+ Y_0 1))", 5, 10, "expected a formula"),
        (BOX_1 + "(assert (<= (and Y_0) 1))", 5, 14, "expected an arithmetic term"),
        (BOX_1 + "(assert (or))", 5, 10, "'or' needs at least one operand"),
        (BOX_1 + "(assert ((<= Y_0 0)))", 5, 9, "expected an operator after '('"),
        (BOX_1 + "assert", 5, 1, "outside parentheses"),
        ("(declare-const X_0 Real)\n(declare-const X_0 Real)", 2, 16, "duplicate declaration"),
    ],
)
def test_error_messages(tmp_path: Path, text: str, line: int, col: int, phrase: str) -> None:
    path = tmp_path / "bad.vnnlib"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        parse_vnnlib(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:{col}: "), message
    assert phrase in message and "\n" not in message


def test_missing_bound_names_the_box(tmp_path: Path) -> None:
    text = BOX_1.replace("(assert (>= X_0 0))\n", "") + "(assert (or (>= X_0 0) (<= Y_0 0)))"
    with pytest.raises(SpecError, match=r"X_0 has no finite lower bound in input box 2 of 2"):
        parse_vnnlib_text(text)


def test_empty_box_inside_a_disjunct() -> None:
    with pytest.raises(SpecError, match=r"<string>:5:18: empty input box"):
        parse_vnnlib_text(BOX_1 + "(assert (or (and (>= X_0 5)) (<= X_0 0.5)))")


@pytest.mark.parametrize("op", ["and", "or", "+"])
def test_deep_nesting_is_a_spec_error_not_a_recursion_error(op: str) -> None:
    depth = 5000
    formula = "(<= " + "(+ " * depth + "Y_0" + ")" * depth + " 0)" if op == "+" else \
        f"({op} " * depth + "(<= Y_0 0)" + ")" * depth
    with pytest.raises(SpecError, match=r"<string>:5:\d+: parentheses nested deeper than 100 levels"):
        parse_vnnlib_text(BOX_1 + f"(assert {formula})")


def test_dnf_blowup_in_one_formula() -> None:
    ors = " ".join("(or (<= Y_0 0) (>= Y_0 1))" for _ in range(17))
    with pytest.raises(SpecError, match=f"limit {MAX_DNF_TERMS}"):
        parse_vnnlib_text(BOX_1 + f"(assert (and {ors}))")


def test_dnf_blowup_across_asserts() -> None:
    asserts = "\n".join("(assert (or (<= Y_0 0) (>= Y_0 1)))" for _ in range(17))
    with pytest.raises(SpecError, match=f"limit {MAX_DNF_TERMS}"):
        parse_vnnlib_text(BOX_1 + asserts)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.vnnlib"
    with pytest.raises(SpecError, match="missing.vnnlib: cannot read spec"):
        parse_vnnlib(path)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.vnnlib"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="not a text file"):
        parse_vnnlib(path)


# ------------------------------------------------------------------------------------------------ API


def test_parse_file_and_load_spec(tmp_path: Path) -> None:
    path = tmp_path / "ok.vnnlib"
    path.write_text(BOX_1 + "(assert (<= Y_0 0))")
    spec = parse_vnnlib(str(path))
    assert spec.source == str(path)
    assert load_spec(spec) is spec
    assert load_spec(path).properties[0].upper[0] == 1.0


# ------------------------------------------------------------------------------------------------ properties

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=6), st.lists(finite, min_size=1, max_size=4),
       st.sampled_from(["{!r}", "{:.17e}", "{:.17E}", "{:+.17g}"]))
def test_roundtrip_of_random_specs(intervals: list[tuple[float, float]], offsets: list[float], fmt: str) -> None:
    """Bounds and constants written in any float syntax come back bit-exact, in order."""
    intervals = [(min(a, b), max(a, b)) for a, b in intervals]
    n_in, n_out = len(intervals), len(offsets) + 1
    lines = [f"(assert (>= X_{i} {fmt.format(lo)}))\n(assert (>= {fmt.format(hi)} X_{i}))"
             for i, (lo, hi) in enumerate(intervals)]
    ors = " ".join(f"(and (>= Y_{j + 1} {fmt.format(c)}))" for j, c in enumerate(offsets))
    spec = parse_vnnlib_text(declarations(n_in, n_out) + "\n".join(lines) + f"\n(assert (or {ors}))")
    (prop,) = spec.properties
    np.testing.assert_array_equal(prop.lower, [lo for lo, _ in intervals])
    np.testing.assert_array_equal(prop.upper, [hi for _, hi in intervals])
    assert [float(c.d[0]) for c in prop.clauses] == offsets
    assert [c.C[0].tolist().index(-1.0) for c in prop.clauses] == list(range(1, n_out))


@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4))
def test_cross_product_counts(sizes: list[int]) -> None:
    """Conjoining disjunctions of distinct output atoms gives the product of their sizes as clauses."""
    asserts = [
        "(assert (or " + " ".join(f"(>= Y_0 {k}.{m})" for m in range(size)) + "))" for k, size in enumerate(sizes)
    ]
    spec = parse_vnnlib_text(BOX_1 + "\n".join(asserts))
    (prop,) = spec.properties
    assert len(prop.clauses) == math.prod(sizes)
    assert all(c.C.shape == (len(sizes), 1) for c in prop.clauses)


# ------------------------------------------------------------------------------------------------ real benchmarks

needs_benchmarks = pytest.mark.skipif(not BENCH_FILES, reason=f"no benchmark specs under {BENCHMARKS}")

EXPECTED_SIZES = {  # (n_inputs, n_outputs) by benchmark folder, or by file-name prefix
    "acasxu": (5, 5), "mnist_fc": (784, 10), "eran": (784, 10), "verivital": (784, 10),
    "oval21": (3072, 10), "cifar10_resnet": (3072, 10), "gcas": (14, 14), "robot": (5, 5), "vdp": (3, 3),
}


def _expected_size(path: Path) -> tuple[int, int]:
    bench = path.parent.parent.name
    return EXPECTED_SIZES.get(bench) or EXPECTED_SIZES[path.name.split("_")[0]]


@needs_benchmarks
@pytest.mark.parametrize("path", BENCH_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_benchmark_spec_parses(path: Path) -> None:
    spec = parse_vnnlib(path)
    assert (spec.n_inputs, spec.n_outputs) == _expected_size(path)
    assert spec.properties
    for prop in spec.properties:
        assert prop.lower.shape == prop.upper.shape == (spec.n_inputs,)
        assert np.all(np.isfinite(prop.lower)) and np.all(prop.lower <= prop.upper)
        assert prop.clauses and all(c.C.shape == (c.d.shape[0], spec.n_outputs) for c in prop.clauses)


def _bench(path: str) -> Path:
    full = BENCHMARKS / path
    if not full.is_file():
        pytest.skip(f"{full} not present")
    return full


def test_acasxu_prop_6_two_boxes_four_clauses() -> None:
    spec = parse_vnnlib(_bench("acasxu/vnnlib/prop_6.vnnlib"))
    assert [len(p.clauses) for p in spec.properties] == [4, 4]
    assert (spec.properties[0].lower[1], spec.properties[1].upper[1]) == (0.11140846, -0.11140846)
    np.testing.assert_array_equal(spec.properties[1].clauses[3].C, [[-1.0, 0.0, 0.0, 0.0, 1.0]])


def test_acasxu_prop_1() -> None:
    spec = parse_vnnlib(_bench("acasxu/vnnlib/prop_1.vnnlib"))
    (prop,) = spec.properties
    np.testing.assert_array_equal(prop.lower, [0.6, -0.5, -0.5, 0.45, -0.5])
    np.testing.assert_array_equal(prop.upper, [0.679857769, 0.5, 0.5, 0.5, -0.45])
    (clause,) = prop.clauses
    np.testing.assert_array_equal(clause.C, [[-1.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(clause.d, [3.991125645861615])


def test_acasxu_prop_4_point_interval() -> None:
    (prop,) = parse_vnnlib(_bench("acasxu/vnnlib/prop_4.vnnlib")).properties
    assert prop.lower[2] == prop.upper[2] == 0.0


def test_mnist_fc_robustness_spec() -> None:
    """Label 0: a violation is any other logit >= logit 0, one clause per other class."""
    spec = parse_vnnlib(_bench("mnist_fc/vnnlib/prop_3_0.03.vnnlib"))
    assert (spec.n_inputs, spec.n_outputs) == (784, 10)
    (prop,) = spec.properties
    assert len(prop.clauses) == 9
    np.testing.assert_array_equal(prop.clauses[0].C, [[1.0, -1.0] + [0.0] * 8])
    assert np.all(prop.upper - prop.lower <= 2 * 0.03 + 1e-6)  # x ± eps, clipped to [0, 1]
