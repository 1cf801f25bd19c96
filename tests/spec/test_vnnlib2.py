"""VNN-LIB 2.0 queries: the same Spec as the 1.0 parse of the same property, every 2.0 construct, every error."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from verifier.errors import SpecError
from verifier.spec.spec import Spec
from verifier.spec.vnnlib import parse_vnnlib, parse_vnnlib_text
from verifier.spec.vnnlib2 import declares_version, parse_query, parse_query_text

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
BENCHMARKS = ROOT.parent / "shared" / "benchmarks"

# (1.0 file, input shape, output shape) of specs we can rewrite as 2.0 queries
ONE_ZERO = [(SPECS / "toy_robust.vnnlib", (1, 3), (1, 3)), (SPECS / "toy_falsifiable.vnnlib", (1, 3), (1, 3)),
            (SPECS / "acasxu_prop_1.vnnlib", (1, 1, 1, 5), (1, 5)),
            (SPECS / "acasxu_prop_2.vnnlib", (1, 1, 1, 5), (1, 5))]
ONE_ZERO += [(p, (1, 784, 1), (1, 10)) for p in sorted(BENCHMARKS.glob("mnist_fc/vnnlib/*.vnnlib"))[:2]]


def assert_same_spec(a: Spec, b: Spec) -> None:
    assert (a.n_inputs, a.n_outputs, len(a.properties)) == (b.n_inputs, b.n_outputs, len(b.properties))
    for pa, pb in zip(a.properties, b.properties):
        np.testing.assert_array_equal(pa.lower, pb.lower)
        np.testing.assert_array_equal(pa.upper, pb.upper)
        assert len(pa.clauses) == len(pb.clauses)
        for ca, cb in zip(pa.clauses, pb.clauses):
            np.testing.assert_array_equal(ca.C, cb.C)
            np.testing.assert_array_equal(ca.d, cb.d)


def to_v2(text: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...], element_type: str = "real") -> str:
    """Rewrite a 1.0 spec as a 2.0 query: declarations into one network, X_i -> X[multi-index], `=` -> `==`."""
    def element(m: re.Match) -> str:
        shape = in_shape if m.group(1) == "X" else out_shape
        index = np.unravel_index(int(m.group(2)), shape)
        return f"{m.group(1)}[{','.join(str(int(i)) for i in index)}]"

    body = re.sub(r"\(declare-(const|fun)[^\n]*\n?", "", text)
    body = re.sub(r"\b([XY])_(\d+)\b", element, body).replace("(= ", "(== ")
    dims = ",".join(map(str, in_shape)), ",".join(map(str, out_shape))
    return (f"(vnnlib-version <2.0>)\n(declare-network f\n  (declare-input X {element_type} [{dims[0]}])\n"
            f"  (declare-output Y {element_type} [{dims[1]}])\n)\n{body}")


def query(body: str, inp: str = "X real [1,2]", out: str = "Y real [1,3]", head: str = "") -> str:
    network = f"(declare-network f\n (declare-input {inp})\n (declare-output {out})\n)\n"
    return f"{head}(vnnlib-version <2.0>)\n{network}{body}"


BOX = "(assert (and (>= X[0,0] 0) (<= X[0,0] 1) (>= X[0,1] -1) (<= X[0,1] 0)))\n"


# ------------------------------------------------------------------------------------------------ equivalence


@pytest.mark.parametrize("path,in_shape,out_shape", ONE_ZERO, ids=lambda v: getattr(v, "name", None))
def test_same_spec_as_the_1_0_parse(path: Path, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
    text = path.read_text()
    assert_same_spec(parse_vnnlib_text(to_v2(text, in_shape, out_shape)), parse_vnnlib_text(text))


@pytest.mark.parametrize("name", ["toy_robust", "toy_falsifiable"])
def test_bundled_v2_examples_match_their_1_0_files(name: str) -> None:
    v2 = parse_vnnlib(SPECS / f"{name}.v2.vnnlib")  # parse_vnnlib dispatches on the version line
    assert v2.source.endswith(f"{name}.v2.vnnlib")
    assert_same_spec(v2, parse_vnnlib(SPECS / f"{name}.vnnlib"))
    q = parse_query(str(SPECS / f"{name}.v2.vnnlib"))
    assert (q.version, q.network, q.input.name, q.input.shape, q.output.shape) == ("2.0", "toy", "X", (1, 3), (1, 3))
    lines = (SPECS / f"{name}.v2.vnnlib").read_text().splitlines()
    assert "declare-input" in lines[q.input.line - 1] and "declare-output" in lines[q.output.line - 1]
    assert q.input.element_type == "real"


def test_vnnlib_org_example() -> None:
    """The example on vnnlib.org: a [2,2] input flattened row-major, a one-element output, a disjunction."""
    text = """(vnnlib-version <2.0>)
; Network declaration
(declare-network f
    (declare-input  X float32 [2,2])
    (declare-output Y float32 [1])
)
(assert (and (>= X[0,0] 0.0) (<= X[0,0] 1.0)))
(assert (and (>= X[0,1] 0.0) (<= X[0,1] 1.0)))
(assert (and (>= X[1,0] 0.5) (<= X[1,0] 1.0)))
(assert (and (>= X[1,1] 0.0) (<= X[1,1] 2.0)))
(assert (or (<= Y[0] -3.0) (>= Y[0] 0.0)))
"""
    q = parse_query_text(text)
    assert (q.input.element_type, q.input.shape, q.output.shape) == ("float32", (2, 2), (1,))
    (prop,) = q.spec.properties
    np.testing.assert_array_equal(prop.lower, [0, 0, 0.5, 0])
    np.testing.assert_array_equal(prop.upper, [1, 1, 1, 2])
    assert [(c.C.tolist(), c.d.tolist()) for c in prop.clauses] == [([[1.0]], [3.0]), ([[-1.0]], [0.0])]


# ------------------------------------------------------------------------------------------------ constructs


def test_element_syntax_variants_and_onnx_names() -> None:
    """Spaces inside and before the index, TYPE[dims] without a space, the optional ONNX name string."""
    text = query(BOX.replace("X[0,1]", "X [0, 1]") + "(assert (<= Y[0,1] Y[0,0]))",
                 inp='X float32[1, 2] "input.1"', out='Y real [1,3] "out"')
    q = parse_query_text(text)
    assert (q.input.shape, q.input.onnx_name, q.output.onnx_name) == ((1, 2), "input.1", "out")
    (prop,) = q.spec.properties
    np.testing.assert_array_equal(prop.upper, [1, 0])
    assert prop.clauses[0].C.tolist() == [[-1.0, 1.0, 0.0]]


def test_scalar_tensor_and_arithmetic() -> None:
    """A [] tensor is used without an index; + - * and unary minus build linear output rows."""
    text = query(BOX + "(assert (<= (+ (* 2.0 Y[0,1]) (- Y[0,2] Y[0,0]) (- 1.5)) 0.25))",
                 out="Y real [1,3]")
    (clause,) = parse_query_text(text).spec.properties[0].clauses
    np.testing.assert_allclose(clause.C, [[-1.0, 2.0, 1.0]])
    np.testing.assert_allclose(clause.d, [-1.75])
    scalar = query("(assert (and (>= X 0) (<= X 1)))\n(assert (>= Y 3))", inp="X real []", out="Y real []")
    spec = parse_query_text(scalar).spec
    assert (spec.n_inputs, spec.n_outputs) == (1, 1)
    assert spec.properties[0].clauses[0].C.tolist() == [[-1.0]]


def test_double_equals_on_outputs_gives_two_rows() -> None:
    (clause,) = parse_query_text(query(BOX + "(assert (== Y[0,0] Y[0,2]))")).spec.properties[0].clauses
    assert sorted(clause.C.tolist()) == [[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]]


def test_version_detection() -> None:
    assert declares_version("\ufeff; comment\n\n  ( vnnlib-version <2.0>)")
    assert declares_version("(vnnlib-version <2.1>)")
    assert not declares_version("(declare-const X_0 Real)\n; (vnnlib-version <2.0>)")
    assert not declares_version("(vnnlib-versions <2.0>)")
    spec = parse_vnnlib_text(query(BOX + "(assert (>= Y[0,0] 1))", head="; leading comment\n"))
    assert spec.n_inputs == 2
    assert parse_query_text(query(BOX + "(assert (>= Y[0,0] 1))").replace("<2.0>", "<2.3>")).version == "2.3"


def test_parse_query_refuses_a_1_0_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"toy_robust.vnnlib:1:1: not a VNN-LIB 2.0 query"):
        parse_query(str(SPECS / "toy_robust.vnnlib"))


# ------------------------------------------------------------------------------------------------ errors

ASSERT_Y = "(assert (>= Y[0,0] 1))\n"
ERRORS = [
    # (text, line, phrase)
    (query(BOX + ASSERT_Y).replace("<2.0>", "<3.0>"), 1, "VNN-LIB version 3.0 is not supported"),
    (query(BOX + ASSERT_Y).replace("<2.0>", "2.0"), 1, "expected (vnnlib-version <MAJOR.MINOR>)"),
    ("(vnnlib-version <2.0>)\n" + BOX, 2, "assert before any declare-network"),
    ("(vnnlib-version <2.0>)\n", 2, "no (declare-network ...)"),
    ("(vnnlib-version <2.0>)\n(declare-const X_0 Real)\n", 2, "declare-const is VNN-LIB 1.0"),
    (query(BOX + ASSERT_Y) + "(declare-network f (declare-input A real [1]) (declare-output B real [1]))\n", 8,
     "a second network named 'f'"),
    (query(BOX + ASSERT_Y) + "(declare-network g (equal-to h) (declare-input A real [1]) (declare-output B real [1]))"
     "\n", 8, "(equal-to NETWORK) naming a network declared before"),
    (query(BOX + ASSERT_Y).replace("(declare-output", "(declare-hidden H real [1])\n (declare-output"), 4,
     "needs the name of the ONNX tensor"),
    (query(BOX + ASSERT_Y).replace("(declare-output Y real [1,3])", ""), 2, "network 'f' declares no output"),
    (query(BOX + ASSERT_Y, inp="X floaty32 [1,2]"), 3, "unknown element type 'floaty32'"),
    (query(BOX + ASSERT_Y, inp="X real [1,0]"), 3, "dimensions must be positive"),
    (query(BOX + ASSERT_Y, inp="X real"), 3, "expected (declare-input X TYPE [dims])"),
    (query(BOX + ASSERT_Y, inp="X real [99999999999999999999]"), 3, "more than the 10000000 a query may declare"),
    (query(BOX + ASSERT_Y, inp="X real [100000,100000]"), 3, "has 10000000000 elements"),
    (query(BOX + ASSERT_Y, out="X real [1,3]"), 4, "duplicate declaration of X"),
    (query(BOX + "(assert (>= Y[0,3] 1))"), 7, "Y has shape [1,3]: Y[0,3] is not one of its elements"),
    (query(BOX + "(assert (>= Y[2] 1))"), 7, "Y[2] is not one of its elements"),
    (query(BOX + "(assert (>= Y 1))"), 7, "Y has shape [1,3]: Ywithout an index"),
    (query(BOX + "(assert (>= Z[0] 1))"), 7, "undeclared tensor Z"),
    (query(BOX + "(assert (= Y[0,0] 1))"), 7, "'=' is VNN-LIB 1.0: 2.0 writes equality as '=='"),
    (query(BOX + "(assert (!= Y[0,0] 1))"), 7, "'!=' is not supported"),
    (query(BOX + "(assert (<= X[0,0] Y[0,0]))"), 1, "give it as `verify QUERY --network"),
    (query("(assert (>= X[0,0] 0))\n" + ASSERT_Y), 3, "input X[0,1] has no finite lower bound"),
    (query(BOX + ASSERT_Y + "(check-sat)\n"), 8, "unknown command 'check-sat'"),
]


@pytest.mark.parametrize("text,line,phrase", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, phrase: str) -> None:
    path = tmp_path / "q.vnnlib"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        parse_vnnlib(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}:"), message
    assert phrase in message, message


def test_large_image_input_is_cheap_to_declare() -> None:
    """Every element of a [1,3,32,32] input becomes a variable, numbered row-major like ONNX flattening."""
    shape = (1, 3, 32, 32)
    box = "".join(f"(assert (and (>= X[0,{c},{i},{j}] {k}) (<= X[0,{c},{i},{j}] {k + 1})))\n"
                  for k, (c, i, j) in enumerate(itertools.product(range(3), range(32), range(32))))
    spec = parse_query_text(query(box + "(assert (>= Y[0,9] Y[0,0]))", inp="X real [1,3,32,32]",
                                  out="Y real [1,10]")).spec
    assert spec.n_inputs == 3 * 32 * 32
    np.testing.assert_array_equal(spec.properties[0].lower, np.arange(3072))
    assert np.prod(shape) == spec.n_inputs


def test_several_inputs_outputs_hidden_and_networks_share_one_numbering():
    """X: every input in declaration order; Y: every output and hidden tensor likewise, across networks."""
    text = """(vnnlib-version <2.0>)
(declare-network f (declare-input A real [2]) (declare-input B real [1]) (declare-hidden H real [1] "h")
                   (declare-output Y real [2]))
(declare-network g (equal-to f) (declare-input C real [1]) (declare-output Z real [1]))
(assert (and (>= A[0] 0) (<= A[0] 1) (>= A[1] 0) (<= A[1] 1) (>= B[0] 2) (<= B[0] 3) (>= C[0] 4) (<= C[0] 5)))
(assert (<= H[0] Z[0]))
"""
    q = parse_query_text(text, "q.vnnlib")
    assert not q.simple and [n.name for n in q.networks] == ["f", "g"]
    assert q.networks[1].relation == ("equal-to", "f") and q.networks[0].hidden == {"H"}
    assert [d.name for d in q.networks[0].outputs] == ["H", "Y"]
    assert q.spec.n_inputs == 4 and q.spec.n_outputs == 4
    prop = q.spec.properties[0]
    assert prop.lower.tolist() == [0, 0, 2, 4] and prop.upper.tolist() == [1, 1, 3, 5]
    (clause,) = prop.clauses
    assert clause.C.tolist() == [[1, 0, 0, -1]] and clause.d.tolist() == [0]
