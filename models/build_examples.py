#!/usr/bin/env python3
"""Build the small bundled example network and its specs (deterministic; rerun to regenerate).

    python models/build_examples.py

toy_mlp.onnx: 3 inputs -> Sub/Div normalisation -> Gemm 16 -> Relu -> Gemm 16 -> Relu -> Gemm 3, opset 13.
specs/toy_robust.vnnlib: a small box around a point where class 0 wins; the violation "class 0 is not
the top class" is impossible there (unsat). specs/toy_falsifiable.vnnlib: a large box where another class
wins somewhere (sat). The script checks both facts by sampling on onnxruntime before writing the spec.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
MEAN = np.array([0.5, -0.2, 0.1], dtype=np.float32)
STD = np.array([2.0, 1.5, 0.5], dtype=np.float32)


def build_model(seed: int = 7) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    sizes = [3, 16, 16, 3]
    inits = [numpy_helper.from_array(MEAN, "mean"), numpy_helper.from_array(STD, "std")]
    nodes = [helper.make_node("Sub", ["input", "mean"], ["centred"], name="normalise_sub"),
             helper.make_node("Div", ["centred", "std"], ["h0"], name="normalise_div")]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n_out)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "output" if i == len(sizes) - 2 else f"z{i}"
        nodes.append(helper.make_node("Gemm", [f"h{i}", f"W{i}", f"b{i}"], [out], name=f"fc{i}", transB=1))
        if out != "output":
            nodes.append(helper.make_node("Relu", [out], [f"h{i + 1}"], name=f"relu{i}"))
    graph = helper.make_graph(
        nodes, "toy_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="verifier-examples")
    onnx.checker.check_model(model)
    return model


def not_top_class_spec(lower: np.ndarray, upper: np.ndarray, label: int, n_out: int, comment: str) -> str:
    """VNN-LIB stating the violation 'some other output is >= output[label]' over the box."""
    lines = [f"; {comment}", ""]
    lines += [f"(declare-const X_{i} Real)" for i in range(len(lower))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)] + [""]
    for i, (lo, hi) in enumerate(zip(lower.tolist(), upper.tolist())):
        lines += [f"(assert (>= X_{i} {lo!r}))", f"(assert (<= X_{i} {hi!r}))"]
    others = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label)
    lines += ["", f"(assert (or {others}))", ""]
    return "\n".join(lines)


def sample_top_classes(model: onnx.ModelProto, lower: np.ndarray, upper: np.ndarray, n: int = 4000) -> set[int]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    xs = lower + rng.random((n, len(lower))) * (upper - lower)
    tops = {int(np.argmax(sess.run(None, {"input": x[None].astype(np.float32)})[0])) for x in xs}
    return tops


def main() -> None:
    model = build_model()
    onnx.save(model, ROOT / "models" / "toy_mlp.onnx")
    centre = np.array([0.3, -0.4, 0.2])
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    label = int(np.argmax(sess.run(None, {"input": centre[None].astype(np.float32)})[0]))
    small, large = 0.02, 1.5
    assert sample_top_classes(model, centre - small, centre + small) == {label}
    assert len(sample_top_classes(model, centre - large, centre + large)) > 1
    (ROOT / "specs" / "toy_robust.vnnlib").write_text(not_top_class_spec(
        centre - small, centre + small, label, 3, f"toy_mlp: class {label} stays on top within +-{small} (unsat)"))
    (ROOT / "specs" / "toy_falsifiable.vnnlib").write_text(not_top_class_spec(
        centre - large, centre + large, label, 3, f"toy_mlp: class {label} on top within +-{large}: false (sat)"))
    print(f"wrote models/toy_mlp.onnx and specs/toy_*.vnnlib (label {label})")


if __name__ == "__main__":
    main()
