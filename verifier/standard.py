"""The VNN-LIB 2.0 standard's solver command line, behind the thin click layer in `verifier.cli`.

What the standard (VNN-LIB 2.0, "Solver Command-line Interface") asks, and what this module answers:
  `--name`, `--version`           one line each (the name here, the version in cli.py);
  `supports --CAPABILITY`         one answer per line (`SUPPORTS` below);
  `verify QUERY --network NAME=NET.onnx [--timeout S]`
                                  first stdout line `sat` / `unsat` / `unknown` / `timed-out`, after `sat` the
                                  assignment (verifier.report.vnnlib_std); logs and errors on stderr only.
Element types: `real`, `float16`, `float32` and `float64` declarations are accepted, as the field runs the
standard (VNN-COMP files declare float32). Our bounds are computed for the real-valued network, so a proof is
for real semantics (the JSON result says `"semantics": "real"`); counterexamples are replayed on onnxruntime in
float32 either way. `--strict-element-types` refuses float declarations instead (analysis sound in float32 is
what such a declaration strictly asks for); `--float-as-real`, its old opposite, is kept as a no-op alias.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

from verifier.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from verifier.report.vnnlib_std import Declared
    from verifier.result import Result
    from verifier.spec.spec import Spec
    from verifier.spec.vnnlib2 import TensorDecl

NAME = "verifier"
# Opsets a model may declare: 7..18 load and match onnxruntime (tests/test_standard_cli.py loads both ends);
# older files upgrade to opset 13 on load, below 7 the upgrade or onnxruntime fails, above 18 onnx2torch lacks
# converters (e.g. Reshape-19).
MIN_OPSET, MAX_OPSET = 7, 18
FLOAT_TYPES = frozenset({"float16", "float32", "float64"})
# Integer and bool tensors (Cast, Shape, comparisons on the output): their values are exact in real arithmetic.
EXACT_TYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"})


def _operators() -> list[str]:
    """Read at call time: the op set grows as bound rules are added."""
    from verifier.model.translate import SUPPORTED_OPS

    return sorted(SUPPORTED_OPS)


# capability -> (help, answer lines). Theory names as in the standard's "Theories and Logics" chapter.
SUPPORTS: Mapping[str, tuple[str, Callable[[], list[str]]]] = {
    "onnx-opset-versions": ("Oldest and newest ONNX opset.", lambda: [str(MIN_OPSET), str(MAX_OPSET)]),
    "onnx-element-types": ("Element types accepted (proofs are for real semantics).",
                           lambda: sorted(FLOAT_TYPES | EXACT_TYPES) + ["real"]),
    "onnx-operators": ("ONNX operators, one a line.", _operators),
    "onnx-operators-unsat-proofs": ("Operators for unsat proofs: none.", lambda: []),
    "vnnlib-versions": ("Oldest and newest VNN-LIB version.", lambda: ["1.0", "2.0"]),
    "hidden-node-theories": ("NH, H: hidden-node constraints (declare-hidden).", lambda: ["NH", "H"]),
    "multiple-input-output-theories": ("SIO, MIO: several inputs and outputs.", lambda: ["SIO", "MIO"]),
    # Several networks (also equal-to / isomorphic-to ones) are verified on one merged model.
    "multiple-network-theories": ("SNET, MNET, MENET, MINET: several networks.",
                                  lambda: ["SNET", "MNET", "MENET", "MINET"]),
    # Constraints over inputs and outputs together, or over several inputs (LIN), are rows over a copy of the
    # inputs that the merged model appends to its outputs: sound proofs, counterexamples checked on them too.
    "multiple-node-comparison-theories": ("SNC, MNC: input-output comparisons.", lambda: ["SNC", "MNC"]),
    "arithmetic-complexity-theories": ("BND, OUTC, LIN: bounds, output comparisons, linear constraints.",
                                       lambda: ["BND", "OUTC", "LIN"]),
    "optimised-disjunctive-reasoning": ("false: disjunctions become DNF.", lambda: ["false"]),
    "serialise-assignments": ("false: assignments go to stdout.", lambda: ["false"]),
    "unsat-proofs": ("false: no proof output.", lambda: ["false"]),
}


def supports(capability: str) -> list[str]:
    """The answer lines for one capability (without the leading `--`)."""
    if capability not in SUPPORTS:
        raise InputError(f"unknown capability --{capability}; known: {', '.join('--' + c for c in SUPPORTS)}")
    return SUPPORTS[capability][1]()


# --------------------------------------------------------------------------------------------- arguments


def is_standard_form(first: str, second: Optional[str], networks: Sequence[str]) -> bool:
    """`verify QUERY --network ...` (True) or our `verify MODEL SPEC` (False); a mix of both is bad input."""
    if networks and second is not None:
        raise InputError(f"give either MODEL SPEC or QUERY --network NAME=NET.onnx, not both "
                         f"(got {first!r}, {second!r} and --network)")
    if not networks and second is None:
        raise InputError(f"missing SPEC: give MODEL SPEC, or QUERY --network NAME=NET.onnx (got only {first!r})")
    parse_networks(networks)  # malformed values are argument errors: report them before any heavy import
    return bool(networks)


def parse_networks(values: Sequence[str]) -> dict[str, str]:
    """`NAME=PATH` values of --network as {name: path}."""
    networks: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise InputError(f"--network {value!r}: expected NAME=NET.onnx")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise InputError(f"--network {value!r}: {name!r} is not a network name (a letter, then letters, "
                             "digits or _)")
        if name in networks:
            raise InputError(f"--network {name}= is given twice")
        networks[name] = path
    return networks


# --------------------------------------------------------------------------------------------- the query


@dataclass(frozen=True)
class _Scalar:
    """A 1.0 variable X_i / Y_j for the assignment: each is a declared scalar `Real` constant."""

    name: str
    element_type: str = "Real"
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class StandardQuery:
    """What `verify` needs from a query of either version: the spec, the model, the declarations to print."""

    spec: "Spec"
    model_path: str
    inputs: tuple["Declared", ...]  # TensorDecl (2.0) or _Scalar (1.0), in declaration order
    outputs: tuple["Declared", ...]
    declared: Optional[tuple["TensorDecl", "TensorDecl"]] = None  # 2.0: (input, output) to check the model


def load_query(path: str, network_values: Sequence[str], strict_types: bool = False,
               workdir: Optional[str] = None) -> StandardQuery:
    """Parse the query (1.0 or 2.0), match its networks with --network, and check its element types.

    A 2.0 query with several networks, inputs, outputs or hidden tensors is verified on one merged model
    (`verifier.model.merge`), written to `workdir` (which must then be given)."""
    from verifier.spec import vnnlib2
    from verifier.spec.vnnlib import parse_vnnlib_text, read_spec_text

    networks = parse_networks(network_values)
    text = read_spec_text(path)
    if not vnnlib2.declares_version(text):  # 1.0: no network names, so any single --network
        if len(networks) != 1:
            raise InputError(f"{path} is a VNN-LIB 1.0 spec (one network): give exactly one --network NAME=NET.onnx")
        spec = parse_vnnlib_text(text, path)
        inputs = tuple(_Scalar(f"X_{i}") for i in range(spec.n_inputs))
        outputs = tuple(_Scalar(f"Y_{j}") for j in range(spec.n_outputs))
        return StandardQuery(spec, next(iter(networks.values())), inputs, outputs)
    query = vnnlib2.parse_query_text(text, path)
    declared = [n.name for n in query.networks]
    unknown = sorted(set(networks) - set(declared))
    if unknown:
        raise InputError(f"--network {unknown[0]}: {path} declares no network {unknown[0]!r} "
                         f"(it declares {', '.join(repr(n) for n in declared)})")
    for net in query.networks:  # `(equal-to N)` names the same network: N's file serves, unless one is given
        if net.name not in networks and net.relation is not None and net.relation[0] == "equal-to" \
                and net.relation[1] in networks:
            networks[net.name] = networks[net.relation[1]]
    missing = [n for n in declared if n not in networks]
    if missing:
        raise InputError(f"{path} declares network {missing[0]!r}: give --network {missing[0]}=NET.onnx")
    for net in query.networks:
        for decl in net.inputs + net.outputs:
            _check_type(path, decl, strict_types)
    if query.simple:
        return StandardQuery(query.spec, networks[query.network], (query.input,), (query.output,),
                             (query.input, query.output))
    if workdir is None:
        raise InputError(f"{path}: a query with several networks or tensors needs a working directory")
    import onnx

    from verifier.model.merge import merged_model

    merged = os.path.join(workdir, "merged.onnx")
    onnx.save(merged_model(query.networks, networks, path, query.inputs_as_outputs), merged)
    inputs = tuple(d for net in query.networks for d in net.inputs)
    outputs = tuple(d for net in query.networks for d in net.outputs)
    return StandardQuery(query.spec, merged, inputs, outputs)


def _check_type(path: str, decl: "TensorDecl", strict_types: bool) -> None:
    if decl.element_type == "real" or decl.element_type in EXACT_TYPES:
        return
    if decl.element_type not in FLOAT_TYPES:
        raise InputError(f"{path}:{decl.line}: {decl.name} has element type {decl.element_type}: only real, "
                         f"{', '.join(sorted(FLOAT_TYPES | EXACT_TYPES))} are supported")
    if strict_types:
        raise InputError(f"{path}:{decl.line}: {decl.name} is declared {decl.element_type}, which asks for analysis "
                         f"sound in {decl.element_type}; this verifier's is sound for real arithmetic: declare it "
                         "real, or leave out --strict-element-types")


def check_model(query: StandardQuery, model: Any) -> None:
    """The declared tensors must match the model's input and output: shape, and element type unless `real`."""
    if query.declared is None:
        return  # 1.0: only the element counts, which verify checks
    decl_in, decl_out = query.declared
    for decl, onnx_shape, what in ((decl_in, model.onnx_input_shape, "input"),
                                   (decl_out, model.onnx_output_shape, "output")):
        if not _shape_fits(decl.shape, tuple(onnx_shape)):
            raise InputError(f"{query.spec.source}:{decl.line}: {decl.name} has shape {_dims(decl.shape)} but the "
                             f"{what} of {model.path} has shape {_dims(onnx_shape)}")
    typed = [(d, w) for d, w in ((decl_in, "input"), (decl_out, "output")) if d.element_type != "real"]
    if typed:
        from verifier.model.inspect import io_types

        onnx_types = io_types(model.path)
        for decl, what in typed:
            if onnx_types[what] != decl.element_type:
                raise InputError(f"{query.spec.source}:{decl.line}: {decl.name} is declared {decl.element_type} but "
                                 f"the {what} of {model.path} is {onnx_types[what]}")


def _shape_fits(declared: tuple[int, ...], onnx_shape: tuple[int, ...]) -> bool:
    """Equal where the model's dims are known; the model's batch dimension (1 or symbolic) may be left out."""
    if not onnx_shape:
        return True  # the file does not say
    candidates = [onnx_shape] + ([onnx_shape[1:]] if onnx_shape[0] in (1, -1) else [])
    return any(len(c) == len(declared) and all(o in (-1, d) for o, d in zip(c, declared)) for c in candidates)


def _dims(shape: Sequence[int]) -> str:
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"


# --------------------------------------------------------------------------------------------- verify


def verify_standard(query_path: str, network_values: Sequence[str], *, timeout: float, strict_types: bool = False,
                    **options: Any) -> tuple["Result", str]:
    """Run the standard `verify`: (result, stdout text); the text is empty when the result is `error`.

    The timeout covers everything from here, parsing and loading included. Whatever our code or its
    libraries print while working goes to stderr: stdout carries only the answer.
    """
    from verifier.api import verify
    from verifier.model.loader import load_model
    from verifier.report.vnnlib_std import format_answer
    from verifier.result import ERROR, TIMEOUT, Result

    start = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory(prefix="verifier-") as workdir:
        query = load_query(query_path, network_values, strict_types, workdir)
        model = load_model(query.model_path, check=False, cache=options.get("cache", True))
        check_model(query, model)
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            result = Result(TIMEOUT, message="timeout while loading", model=query.model_path, spec=query_path)
        else:
            result = verify(model, query.spec, timeout=left, **options)
    if result.verdict == ERROR:
        return result, ""
    printed = sum(math.prod(d.shape) for d in query.outputs)
    cex = result.counterexample
    if cex is not None and len(cex.y) > printed:  # the copies of the inputs a merged model appends
        result = dataclasses.replace(result, counterexample=dataclasses.replace(cex, y=cex.y[:printed]))
    return result, format_answer(result, query.inputs, query.outputs)
