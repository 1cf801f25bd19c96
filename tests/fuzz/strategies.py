"""Hypothesis generators of hostile inputs: VNN-LIB text (1.0 and 2.0) and ONNX files.

Each generator mixes mostly-valid inputs with one thing wrong (the cases that get past the first checks and
reach deep code) with plain garbage. The bundled toy network (3 inputs, 3 outputs) and its specs are the base:
a mutated copy of a spec that works is the likeliest way to reach the bounds and the search.
"""
from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "models" / "toy_mlp.onnx"
TOY_SPEC = (ROOT / "specs" / "toy_robust.vnnlib").read_text()
TOY_SPEC_SAT = (ROOT / "specs" / "toy_falsifiable.vnnlib").read_text()
TOY_QUERY = (ROOT / "specs" / "toy_robust.v2.vnnlib").read_text()

# ------------------------------------------------------------------------------------------------- numbers

HOSTILE_NUMBERS = [
    "0", "-0", "-0.0", "1e39", "-1e39", "3.4028235e38", "3.4028236e38", "1e308", "1e309", "-1e400", "1e-400",
    "5e-324", "1e-46", "nan", "NaN", "inf", "-inf", "+inf", "Infinity", "0x1p3", "1_000", "1e", ".", "-", "+",
    "1.", ".5", "00001", "1e+", "1e-0", "9" * 400, "0." + "0" * 400 + "1", "1/3", "(- 1)", "(/ 1 0)",
    "(* 1e300 1e300)", "(- 1e308 -1e308)", "#x10", "#b101", "1.0e1000000", "٣", "１",
]


def numbers() -> st.SearchStrategy[str]:
    """Numerals, most of them odd: out of float32 or float64 range, denormal, nan/inf spellings, bad syntax."""
    finite = st.floats(allow_nan=False, allow_infinity=False).map(repr)
    return st.one_of(st.sampled_from(HOSTILE_NUMBERS), finite, st.integers().map(str))


# ------------------------------------------------------------------------------------------------- VNN-LIB

TOKENS = ["(", ")", "(", ")", "declare-const", "assert", "and", "or", "not", "<=", ">=", "<", ">", "=", "+", "-",
          "*", "/", "Real", "Int", "X_0", "X_1", "X_2", "X_3", "Y_0", "Y_1", "Y_2", "Y_9", "X_-1", "X_01", "ite",
          "declare-fun", "check-sat", "vnnlib-version", "<2.0>", "declare-network", "declare-input", "X", "Y",
          "X[0,0]", "Y[0,1]", "[1,3]", "real", "float32", ";", "\n", "\"", "|", "\\", "\x00"]


def random_tokens() -> st.SearchStrategy[str]:
    atoms = st.one_of(st.sampled_from(TOKENS), numbers(), st.text(max_size=8))
    return st.lists(atoms, max_size=60).map(" ".join)


def deep_nesting() -> st.SearchStrategy[str]:
    """Nested `and`/`or`/`+`/`-` thousands deep, balanced or not: recursion limits and DNF blow-ups."""
    def build(op: str, depth: int, close: bool, base: str) -> str:
        head = TOY_SPEC.split("(assert (or")[0]
        inner = f"({op} " * depth + "(<= Y_0 Y_1)" + (")" * depth if close else "")
        if op in ("+", "-"):
            inner = "(<= " + f"({op} " * depth + "Y_0" + (")" * depth if close else "") + " Y_1)"
        return head + f"(assert {inner})" + base

    return st.builds(build, st.sampled_from(["and", "or", "+", "-"]), st.integers(1, 5000), st.booleans(),
                     st.sampled_from(["", "\n", ")", "(assert (<= Y_0 0))"]))


def long_line() -> st.SearchStrategy[str]:
    """A line of about a megabyte: a comment, a symbol, a numeral, or a long flat conjunction."""
    head = TOY_SPEC.split("(assert (or")[0]
    kinds = st.sampled_from([
        head + "; " + "x" * 1_000_000 + "\n(assert (<= Y_0 Y_1))",
        head + "(assert (<= Y_0 " + "1" * 1_000_000 + "))",
        head + "(assert (<= Y_0 0." + "0" * 1_000_000 + "1))",
        head + "(assert (<= " + "Z" * 1_000_000 + " 0))",
        head + "(assert (and " + "(<= Y_0 Y_1) " * 70_000 + "))",
        head + "(assert (or " + "(<= Y_0 Y_1) " * 70_000 + "))",
        TOY_SPEC + "(" * 500_000,
        TOY_SPEC + ")" * 500_000,
    ])
    return kinds


def mutated(base: str) -> st.SearchStrategy[str]:
    """`base` with a few edits: a span deleted, duplicated or replaced; a number, token or unicode inserted."""
    def apply(text: str, edits: list[tuple[int, int, int, str]]) -> str:
        for kind, a, b, insert in edits:
            n = len(text) + 1
            i, j = sorted((a % n, b % n))
            if kind == 0:
                text = text[:i] + text[j:]
            elif kind == 1:
                text = text[:j] + text[i:j] + text[j:]
            else:
                text = text[:i] + insert + text[i:]
        return text

    insert = st.one_of(numbers(), st.sampled_from(TOKENS), st.text(max_size=12),
                       st.sampled_from(["(declare-const X_3 Real)", "(declare-const Y_3 Real)",
                                        "(declare-const X_0 Real)", "(assert (<= X_0 1e39))", "\ufeff", "\u00a0",
                                        "X_\u0661", "é", "\U0001F600", "\r", "\t", "\x0b"]))
    edit = st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 10**6), insert)
    return st.lists(edit, min_size=1, max_size=4).map(lambda edits: apply(base, edits))


def mismatched_declarations() -> st.SearchStrategy[str]:
    """Syntactically fine specs whose variables do not match the 3-input, 3-output network."""
    def build(n_in: int, n_out: int, bound: str) -> str:
        lines = [f"(declare-const X_{i} Real)" for i in range(n_in)]
        lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
        lines += [f"(assert (>= X_{i} -{bound}))\n(assert (<= X_{i} {bound}))" for i in range(n_in)]
        if n_out > 1:
            lines.append(f"(assert (<= Y_0 Y_{n_out - 1}))")
        return "\n".join(lines) + "\n"

    return st.builds(build, st.integers(1, 12), st.integers(1, 12), st.sampled_from(["1", "0.5", "1e-30", "1e30"]))


def vnnlib_texts() -> st.SearchStrategy[str]:
    """Hostile VNN-LIB 1.0 text, for the toy network."""
    return st.one_of(mutated(TOY_SPEC), mutated(TOY_SPEC_SAT), random_tokens(), deep_nesting(),
                     mismatched_declarations(), long_line())


def vnnlib2_texts() -> st.SearchStrategy[str]:
    """Hostile VNN-LIB 2.0 queries (network named `toy`)."""
    shapes = st.sampled_from(["[1,3]", "[3]", "[1,4]", "[]", "[0]", "[1,-3]", "[a,3]", "[1,3,", "[99999999999999999999]"])
    types = st.sampled_from(["real", "float32", "float64", "float16", "int8", "bool", "Real"])

    def header(in_shape: str, out_shape: str, in_type: str, out_type: str) -> str:
        return TOY_QUERY.replace("X real [1,3]", f"X {in_type} {in_shape}").replace(
            "Y real [1,3]", f"Y {out_type} {out_shape}")

    return st.one_of(mutated(TOY_QUERY), st.builds(header, shapes, shapes, types, types),
                     random_tokens().map(lambda t: "(vnnlib-version <2.0>)\n" + t))


def spec_bytes() -> st.SearchStrategy[bytes]:
    """Text as bytes, sometimes not UTF-8 at all (a binary file given as a spec)."""
    return st.one_of(vnnlib_texts().map(lambda t: t.encode("utf-8", "surrogatepass")),
                     st.binary(max_size=2000), st.just(b""), st.just(b"\xff\xfe(\x00"))


# ------------------------------------------------------------------------------------------------- ONNX


def _toy_bytes() -> bytes:
    return TOY.read_bytes()


def truncated_onnx() -> st.SearchStrategy[bytes]:
    data = _toy_bytes()
    return st.integers(0, len(data) - 1).map(lambda k: data[:k])


def bit_flipped_onnx() -> st.SearchStrategy[bytes]:
    data = _toy_bytes()

    def flip(edits: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for at, value in edits:
            out[at % len(out)] = value
        return bytes(out)

    return st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(flip)


ELEM_TYPES = {"float": 1, "uint8": 2, "int8": 3, "int32": 6, "int64": 7, "string": 8, "bool": 9, "float16": 10,
              "double": 11, "bfloat16": 16}


@st.composite
def broken_graphs(draw: st.DrawFn) -> bytes:
    """A small MLP built with onnx.helper (not checked), with one or more defects: dangling edges, missing
    initializers, wrong dtypes, zero-size or symbolic dims, cycles, unknown ops, odd opsets, empty graphs."""
    import numpy as np
    from onnx import helper, numpy_helper

    n_in = draw(st.sampled_from([3, 3, 3, 1, 0]))
    hidden = draw(st.sampled_from([4, 4, 0, 1]))
    defects = draw(st.sets(st.sampled_from([
        "dangling", "missing_init", "input_dtype", "init_dtype", "zero_dim", "symbolic_dim", "cycle", "unknown_op",
        "opset", "no_output", "dup_output", "scalar_input", "nan_weights", "huge_weights", "no_nodes",
        "two_inputs", "rank3", "bad_attr", "wrong_shape_init", "output_dtype"]), min_size=1, max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    W0 = rng.normal(size=(hidden, n_in)).astype(np.float32)
    W1 = rng.normal(size=(3, hidden)).astype(np.float32)
    if "nan_weights" in defects:
        W0.flat[: max(1, W0.size // 2)] = np.nan
    if "huge_weights" in defects:
        with np.errstate(over="ignore"):
            W1 *= np.float32(3e38)  # some overflow to inf on purpose
    if "wrong_shape_init" in defects:
        W1 = rng.normal(size=(5, 7)).astype(np.float32)
    init_dtype = draw(st.sampled_from(["int32", "int64", "double", "float16"])) if "init_dtype" in defects else None
    inits = [numpy_helper.from_array(W0 if init_dtype is None else W0.astype(init_dtype), "W0"),
             numpy_helper.from_array(W1, "W1"),
             numpy_helper.from_array(np.zeros(hidden, np.float32), "b0")]
    if "missing_init" in defects:
        inits.pop(draw(st.integers(0, len(inits) - 1)))
    first_in = "ghost" if "dangling" in defects else "input"
    relu_in = "y" if "cycle" in defects else "z0"
    op = draw(st.sampled_from(["Frobnicate", "Softmax", "Cos", "LSTM", "Loop"])) if "unknown_op" in defects else "Relu"
    attrs = {"transB": 1}
    if "bad_attr" in defects:
        attrs = {"transB": 7, "alpha": float("nan")}
    nodes = [helper.make_node("Gemm", [first_in, "W0", "b0"], ["z0"], **attrs),
             helper.make_node(op, [relu_in], ["h0"]),
             helper.make_node("Gemm", ["h0", "W1"], ["y"], transB=1)]
    if "no_nodes" in defects:
        nodes = []
    if "dup_output" in defects:
        nodes.append(helper.make_node("Relu", ["h0"], ["y"]))
    in_dims: list = [1, n_in]
    if "zero_dim" in defects:
        in_dims = [1, 0]
    if "symbolic_dim" in defects:
        in_dims = [draw(st.sampled_from(["N", "batch", ""])), draw(st.sampled_from([n_in, "d"]))]
    if "scalar_input" in defects:
        in_dims = []
    if "rank3" in defects:
        in_dims = [1, 1, n_in]
    in_type = ELEM_TYPES[draw(st.sampled_from(sorted(ELEM_TYPES)))] if "input_dtype" in defects else 1
    out_type = ELEM_TYPES[draw(st.sampled_from(sorted(ELEM_TYPES)))] if "output_dtype" in defects else 1
    inputs = [helper.make_tensor_value_info("input", in_type, in_dims)]
    if "two_inputs" in defects:
        inputs.append(helper.make_tensor_value_info("extra", 1, [1, 2]))
    outputs = [] if "no_output" in defects else [helper.make_tensor_value_info("y", out_type, [1, 3])]
    graph = helper.make_graph(nodes, "fuzz", inputs, outputs, initializer=inits)
    opset = draw(st.sampled_from([1, 6, 13, 19, 99])) if "opset" in defects else 13
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


@st.composite
def odd_op_graphs(draw: st.DrawFn) -> bytes:
    """input [1, 3] (or [1, 1, 3, 3] for image ops) -> one op with odd attributes or constants -> Flatten -> Gemm
    to 3 outputs: supported ops at the edge of what they allow (or past it)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weird = st.sampled_from([0.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), 3.0])
    op = draw(st.sampled_from(["Conv", "MaxPool", "AveragePool", "Reshape", "Flatten", "Transpose", "Squeeze",
                               "Unsqueeze", "Concat", "Pad", "Clip", "Div", "Mul", "BatchNormalization",
                               "LeakyRelu", "Gemm", "MatMul", "Sigmoid", "Tanh", "Identity", "Dropout"]))
    image = op in ("Conv", "MaxPool", "AveragePool", "BatchNormalization", "Pad")
    shape = [1, 1, 3, 3] if image else [1, 3]
    inits, extra, attrs = [], [], {}
    if op == "Conv":
        k = draw(st.integers(1, 5))
        inits.append(numpy_helper.from_array(np.full((2, 1, k, k), draw(weird), np.float32), "cw"))
        extra = ["cw"]
        attrs = {"strides": [draw(st.integers(1, 4))] * 2, "pads": [draw(st.integers(0, 3))] * 4,
                 "dilations": [draw(st.integers(1, 3))] * 2, "group": draw(st.sampled_from([1, 2]))}
    elif op in ("MaxPool", "AveragePool"):
        attrs = {"kernel_shape": [draw(st.integers(1, 5))] * 2, "strides": [draw(st.integers(1, 3))] * 2,
                 "pads": draw(st.lists(st.integers(0, 2), min_size=4, max_size=4)),
                 "ceil_mode": draw(st.integers(0, 1))}
        if op == "MaxPool":
            attrs["dilations"] = [draw(st.integers(1, 2))] * 2
    elif op == "Reshape":
        target = draw(st.lists(st.integers(-2, 9), min_size=0, max_size=4))
        inits.append(numpy_helper.from_array(np.array(target, np.int64), "shape"))
        extra = ["shape"]
    elif op in ("Flatten", "Concat"):
        attrs = {"axis": draw(st.integers(-5, 5))}
        extra = ["input"] if op == "Concat" else []
    elif op == "Transpose":
        attrs = {"perm": draw(st.permutations([0, 1])) if draw(st.booleans()) else [2, 0]}
    elif op in ("Squeeze", "Unsqueeze"):
        inits.append(numpy_helper.from_array(np.array([draw(st.integers(-4, 4))], np.int64), "axes"))
        extra = ["axes"]
    elif op == "Pad":
        pads = draw(st.lists(st.integers(-2, 3), min_size=8, max_size=8))
        inits.append(numpy_helper.from_array(np.array(pads, np.int64), "pads"))
        extra = ["pads"]
        attrs = {"mode": draw(st.sampled_from(["constant", "reflect", "edge"]))}
    elif op == "Clip":
        lo, hi = draw(weird), draw(weird)
        inits += [numpy_helper.from_array(np.array(lo, np.float32), "lo"),
                  numpy_helper.from_array(np.array(hi, np.float32), "hi")]
        extra = ["lo", "hi"]
    elif op in ("Div", "Mul"):
        inits.append(numpy_helper.from_array(np.full(draw(st.sampled_from([(3,), (1, 3), (2, 3), ()])), draw(weird),
                                                     np.float32), "k"))
        extra = ["k"]
    elif op == "BatchNormalization":
        for name in ("scale", "bias", "mean", "var"):
            inits.append(numpy_helper.from_array(np.full((1,), draw(weird), np.float32), name))
        extra = ["scale", "bias", "mean", "var"]
        attrs = {"epsilon": draw(st.sampled_from([1e-5, 0.0, -1.0]))}
    elif op == "LeakyRelu":
        attrs = {"alpha": draw(weird)}
    elif op in ("Gemm", "MatMul"):
        inits.append(numpy_helper.from_array(np.full(draw(st.sampled_from([(3, 3), (3, 4), (4, 3), (3,)])),
                                                     draw(weird), np.float32), "w"))
        extra = ["w"]
        if op == "Gemm":
            attrs = {"transA": draw(st.integers(0, 1)), "transB": draw(st.integers(0, 1)), "alpha": draw(weird)}
    nodes = [helper.make_node(op, ["input", *extra], ["h"], **attrs),
             helper.make_node("Flatten", ["h"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
    n_flat = draw(st.sampled_from([3, 9, 18, 6]))
    inits.append(numpy_helper.from_array(np.ones((3, n_flat), np.float32), "W"))
    graph = helper.make_graph(nodes, "odd", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", draw(st.sampled_from([11, 13, 17])))])
    model.ir_version = 8
    return model.SerializeToString()


def onnx_bytes() -> st.SearchStrategy[bytes]:
    """Hostile ONNX files: random bytes, truncated and bit-flipped copies of a good one, broken graphs, supported
    ops with odd attributes."""
    return st.one_of(st.binary(max_size=512), st.just(b""), truncated_onnx(), bit_flipped_onnx(), broken_graphs(),
                     odd_op_graphs(), odd_op_graphs())


# ------------------------------------------------------------------------------------------------- instances.csv


def instances_csv() -> st.SearchStrategy[bytes]:
    """Hostile `run` instance lists next to toy.onnx / toy.vnnlib: odd timeouts, missing or extra columns,
    paths that escape the folder or do not exist, quotes, a BOM, non-UTF-8 bytes."""
    paths = st.sampled_from(["toy.onnx", "toy.vnnlib", "missing.onnx", "../toy.onnx", "/", ".", "", " toy.onnx",
                             "toy.onnx\x00", "\"toy.onnx\"", "sub/../toy.vnnlib", "é.vnnlib", "toy.vnnlib.gz"])
    timeouts = st.one_of(st.sampled_from(["1", "0", "-1", "nan", "inf", "1e999", "1e-300", "", "x", "2,5", "1_0"]),
                         numbers())
    row = st.one_of(st.tuples(paths, paths, timeouts).map(",".join),
                    st.lists(st.one_of(paths, timeouts), max_size=6).map(",".join),
                    st.text(max_size=40))
    text = st.lists(row, max_size=6).map("\n".join)
    prefix = st.sampled_from(["", "\ufeff", "onnx,vnnlib,timeout\n", "# comment\n"])
    return st.one_of(st.builds(lambda p, t: (p + t).encode("utf-8", "surrogatepass"), prefix, text),
                     st.binary(max_size=200))
