"""VNN-LIB 2.0 front end: a 2.0 query -> the same `Spec` the 1.0 parser builds.

Syntax followed: the LBNF grammar of the VNN-LIB 2.0 standard as shipped in VNNLIB-CPP 1.0 (Dec 2025):

    (vnnlib-version <2.0>)
    (declare-network NAME (declare-input X TYPE [d1,...]) (declare-output Y TYPE [e1,...]))
    (assert BOOL)...      BOOL:  (and B...) (or B...) (<= A A) (< A A) (>= A A) (> A A) (== A A) (!= A A)
                          A:     X[i,j] | X (scalar tensor) | number | (+ A...) (- A A...) (- A) (* A...)

Supported subset (`supports` reports it): one network with one input and one output tensor, no hidden nodes,
linear constraints that are bounds on single input elements or linear in the outputs. Everything else is a
one-line `SpecError` naming FILE:LINE:COL. The tokenizer, the formula code (DNF, linear terms) and the
assembly into boxes and clauses are the 1.0 parser's: a 2.0 query only declares its variables differently
(tensor elements `X[0,3]` instead of `X_3`, flattened in row-major order, which is our X_i numbering).
Lenient where harmless: whitespace inside `X[0, 3]`, scientific numerals, `/` by constants, SMT-LIB chaining.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Iterable, Optional

from verifier.errors import SpecError
from verifier.spec.spec import Spec
from verifier.spec.vnnlib import (  # the 1.0 machinery this module reuses
    _assemble, _Atom, _Constraint, _Interpreter, _Linear, _List, _Node, _read_sexprs, _Row, _Source, _Term, _Var,
    read_spec_text,
)

__all__ = ["ELEMENT_TYPES", "Query", "TensorDecl", "declares_version", "parse_query", "parse_query_text"]

# ONNX element types by their "Set 1" names, which VNN-LIB uses, plus the standard's own `real`.
ELEMENT_TYPES = frozenset({
    "real", "float16", "float32", "float64", "bfloat16", "float8e4m3fn", "float8e5m2", "float8e4m3fnuz",
    "float8e5m2fnuz", "float4e2m1", "int4", "int8", "int16", "int32", "int64", "uint4", "uint8", "uint16",
    "uint32", "uint64", "complex64", "complex128", "bool", "string",
})

_NAME = r"[A-Za-z][A-Za-z0-9_]*"
# A 2.0 token: comment | paren | quoted ONNX name | indexed element or TYPE[shape] (spaces allowed) | any symbol.
_TOKEN2_RE = re.compile(rf';[^\n]*|([()]|"(?:[^"\\]|\\.)*"|{_NAME}\s*\[[^\[\]();"]*\]|[^\s();]+)')
_INDEXED_RE = re.compile(rf"({_NAME})\[([^\]]*)\]")
_DIMS_RE = re.compile(r"(?:|\d+(?:,\d+)*)")
_VERSION_RE = re.compile(r"<(\d+)\.(\d+)>")
_VERSION_FORM = re.compile(r"\(\s*vnnlib-version\b")
_SUPPORTED_MAJOR = 2
# Elements one declaration may have: each becomes a variable, so [99999,99999] would exhaust memory first.
MAX_ELEMENTS = 10_000_000


@dataclass(frozen=True)
class TensorDecl:
    """A declared input or output tensor, as the standard's `sat` assignment prints it."""

    name: str
    element_type: str  # as written, e.g. "float32" or "real"
    shape: tuple[int, ...]  # () for a scalar
    line: int
    onnx_name: Optional[str] = None


@dataclass(frozen=True)
class NetworkDecl:
    """One `declare-network`: its tensors in declaration order and how it relates to an earlier network."""

    name: str
    inputs: tuple[TensorDecl, ...]
    outputs: tuple[TensorDecl, ...]  # declare-output and declare-hidden, in declaration order
    hidden: frozenset[str] = frozenset()  # names of the declare-hidden tensors among `outputs`
    relation: Optional[tuple[str, str]] = None  # ("equal-to" | "isomorphic-to", earlier network's name)


@dataclass(frozen=True)
class Query:
    """A parsed 2.0 query: its declarations and the property as a `Spec`.

    The spec's inputs X are every network's inputs, flattened and concatenated in declaration order; its
    outputs Y every network's outputs and hidden tensors likewise. `network`, `input` and `output` are the
    first of each (the whole query when it is `simple`)."""

    version: str  # "2.0"
    network: str
    input: TensorDecl
    output: TensorDecl
    spec: Spec
    networks: tuple[NetworkDecl, ...] = ()
    # Constraints over several inputs, or over inputs and outputs together: the spec's Y then ends with a copy
    # of every input (Y[n_outputs + i] = X[i]), which the merged model computes, and those rows are over Y.
    inputs_as_outputs: bool = False

    @property
    def simple(self) -> bool:
        """One network with one input and one output tensor, no hidden ones, constraints of the 1.0 kinds."""
        return not self.inputs_as_outputs and len(self.networks) <= 1 and all(
            len(n.inputs) == 1 and len(n.outputs) == 1 and not n.hidden for n in self.networks)


def declares_version(text: str) -> bool:
    """True if the first form of `text` (after comments) is `(vnnlib-version ...)`: a 2.x query."""
    pos = 1 if text.startswith("\ufeff") else 0
    while True:  # a loop, not one regex: nested repetition over comments and blanks can backtrack exponentially
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith(";", pos):
            return _VERSION_FORM.match(text, pos) is not None
        end = text.find("\n", pos)
        if end < 0:
            return False
        pos = end


class _Source2(_Source):
    """The 1.0 source, tokenized so that `X[0, 3]` and `float32 [1,5]` are single symbols without spaces."""

    token_re = _TOKEN2_RE

    def __init__(self, name: str, text: str) -> None:
        super().__init__(name, text)
        self.tokens = [re.sub(r"\s+", "", t) if t.endswith("]") else t for t in self.tokens]


class _Interpreter2(_Interpreter):
    """The 1.0 interpreter with 2.0 commands: declarations come from `declare-network`, not `declare-const`."""

    def __init__(self, src: _Source) -> None:
        super().__init__(src)
        self.version = ""
        self.network: Optional[_Atom] = None  # the first network
        self.decls: dict[str, tuple[TensorDecl, str]] = {}  # tensor name -> (declaration, "X" input | "Y" output)
        self.networks: list[NetworkDecl] = []
        self.sizes = {"X": 0, "Y": 0}  # elements declared so far: the next tensor's offset
        self.inputs_as_outputs = False

    # ---- commands

    def run(self, commands: Iterable[_List]) -> None:
        commands = list(commands)
        if not commands:
            raise self.src.error(self.src.end, "empty query: expected (vnnlib-version <2.0>)")
        self._version(commands[0])
        for cmd in commands[1:]:
            name = self._head(cmd, "a command name")
            if name.text == "declare-network":
                self._network(cmd)
            elif name.text == "assert":
                if self.network is None:
                    raise self.src.error(cmd.pos, "assert before any declare-network")
                self._assert(cmd)
            elif name.text == "vnnlib-version":
                raise self.src.error(cmd.pos, "a second vnnlib-version")
            elif name.text in ("declare-const", "declare-fun"):
                raise self.src.error(name.pos, f"{name.text} is VNN-LIB 1.0: a 2.0 query declares its tensors "
                                               "inside (declare-network NAME (declare-input ...) (declare-output ...))")
            else:
                raise self.src.error(name.pos, f"unknown command {name.text!r}")
        if self.network is None:
            raise self.src.error(self.src.end, "no (declare-network ...) in the query")

    def _version(self, cmd: _List) -> None:
        head = self._head(cmd, "a command name")
        if head.text != "vnnlib-version":
            raise self.src.error(head.pos, "a 2.0 query starts with (vnnlib-version <2.0>)")
        m = _VERSION_RE.fullmatch(cmd.items[1].text) if len(cmd.items) == 2 and isinstance(cmd.items[1], _Atom) \
            else None
        if m is None:
            raise self.src.error(cmd.pos, "expected (vnnlib-version <MAJOR.MINOR>), e.g. (vnnlib-version <2.0>)")
        if int(m.group(1)) != _SUPPORTED_MAJOR:
            raise self.src.error(cmd.items[1].pos, f"VNN-LIB version {m.group(1)}.{m.group(2)} is not supported: "
                                                   "this verifier reads 1.0 (no version line) and 2.x")
        self.version = f"{m.group(1)}.{m.group(2)}"

    def _network(self, cmd: _List) -> None:
        """`(declare-network NAME [(equal-to N) | (isomorphic-to N)] (declare-input ...)... (declare-output ...)...
        (declare-hidden ...)...)`: inputs and outputs in any number (at least one each)."""
        if len(cmd.items) < 2 or not isinstance(cmd.items[1], _Atom) or not re.fullmatch(_NAME, cmd.items[1].text):
            raise self.src.error(cmd.pos, "expected (declare-network NAME (declare-input ...) (declare-output ...))")
        name = cmd.items[1]
        if any(n.name == name.text for n in self.networks):
            raise self.src.error(name.pos, f"a second network named {name.text!r}")
        if self.network is None:
            self.network = name
        relation: Optional[tuple[str, str]] = None
        inputs: list[TensorDecl] = []
        outputs: list[TensorDecl] = []
        hidden: set[str] = set()
        for part in cmd.items[2:]:
            if not isinstance(part, _List):
                raise self.src.error(part.pos, f"unexpected {part.text!r} in declare-network")
            head = self._head(part, "a declaration")
            if head.text == "declare-input":
                inputs.append(self._declare_tensor(part, "X"))
            elif head.text in ("declare-output", "declare-hidden"):
                decl = self._declare_tensor(part, "Y", hidden=head.text == "declare-hidden")
                outputs.append(decl)
                if head.text == "declare-hidden":
                    hidden.add(decl.name)
            elif head.text in ("equal-to", "isomorphic-to"):
                other = part.items[1] if len(part.items) == 2 and isinstance(part.items[1], _Atom) else None
                if other is None or not any(n.name == other.text for n in self.networks):
                    raise self.src.error(part.pos, f"expected ({head.text} NETWORK) naming a network declared before")
                if relation is not None:
                    raise self.src.error(part.pos, f"network {name.text!r} relates to a second network")
                relation = (head.text, other.text)
            else:
                raise self.src.error(head.pos, f"unknown declaration {head.text!r} in declare-network")
        for decls, what in ((inputs, "input"), (outputs, "output")):
            if not decls:
                raise self.src.error(cmd.pos, f"network {name.text!r} declares no {what}")
        self.networks.append(NetworkDecl(name.text, tuple(inputs), tuple(outputs), frozenset(hidden), relation))

    def _declare_tensor(self, decl: _List, kind: str, hidden: bool = False) -> TensorDecl:
        """`(declare-input X float32 [1,5])`: register every element X[i,j] as a variable, in row-major order."""
        head, args = decl.items[0], decl.items[1:]
        onnx_name = None
        if args and isinstance(args[-1], _Atom) and args[-1].text.startswith('"'):
            onnx_name = args[-1].text[1:-1]
            args = args[:-1]
        if not args or not all(isinstance(a, _Atom) for a in args) or not re.fullmatch(_NAME, args[0].text):
            raise self.src.error(decl.pos, f"expected ({head.text} NAME TYPE [dims])")
        name = args[0]
        typed = _INDEXED_RE.fullmatch("".join(a.text for a in args[1:]))
        if typed is None or not _DIMS_RE.fullmatch(typed.group(2)):
            raise self.src.error(decl.pos, f"expected ({head.text} {name.text} TYPE [dims]) with dims like [1,5] "
                                           "or [] for a scalar")
        element_type, dims = typed.group(1), typed.group(2)
        if element_type not in ELEMENT_TYPES:
            raise self.src.error(args[1].pos, f"unknown element type {element_type!r} for {name.text}")
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
        if any(d < 1 for d in shape):
            raise self.src.error(args[1].pos, f"{name.text}: dimensions must be positive, got [{dims}]")
        if math.prod(shape) > MAX_ELEMENTS:
            raise self.src.error(args[1].pos, f"{name.text}: [{dims}] has {math.prod(shape)} elements, more than "
                                              f"the {MAX_ELEMENTS} a query may declare")
        if name.text in self.decls:
            raise self.src.error(name.pos, f"duplicate declaration of {name.text}")
        if hidden and onnx_name is None:
            raise self.src.error(decl.pos, f"(declare-hidden {name.text} TYPE [dims] \"ONNX_NODE_OUTPUT\") needs the "
                                           "name of the ONNX tensor it is")
        line, _ = self.src.line_col(decl.pos)
        tensor = TensorDecl(name.text, element_type, shape, line, onnx_name)
        self.decls[name.text] = (tensor, kind)
        offset = self.sizes[kind]
        for flat, index in enumerate(itertools.product(*(range(d) for d in shape))):
            element = f"{name.text}[{','.join(map(str, index))}]" if shape else name.text
            self.vars[element] = _Var(element, kind, offset + flat, name.pos)
        self.sizes[kind] = offset + math.prod(shape)
        return tensor

    def _classify(self, lin: _Linear, pos: int, strict: bool = False) -> _Constraint:
        """A constraint over several inputs, or over inputs and outputs, becomes a row over Y in which input i
        is written -(i + 1) until `remap_inputs` knows where the copies of the inputs start."""
        coeffs = {v: c for v, c in lin[0].items() if c != 0.0}
        if any(v.kind == "X" for v in coeffs) and len(coeffs) > 1:
            self.inputs_as_outputs = True
            row = tuple(sorted((v.index if v.kind == "Y" else -(v.index + 1), c) for v, c in coeffs.items()))
            return _Row(row, lin[1], pos, strict)
        return super()._classify(lin, pos, strict)

    def remap_inputs(self) -> None:
        """Rows over inputs point at the copies of the inputs after the outputs; those copies are declared as
        Y variables so that the spec counts them."""
        if not self.inputs_as_outputs:
            return
        n_y = self.sizes["Y"]

        def remap(c: _Constraint) -> _Constraint:
            if not isinstance(c, _Row) or all(j >= 0 for j, _ in c.coeffs):
                return c
            return c._replace(coeffs=tuple(sorted((n_y - j - 1 if j < 0 else j, v) for j, v in c.coeffs)))

        self.base = [remap(c) for c in self.base]
        self.disjunctive = [[tuple(remap(c) for c in term) for term in terms] for terms in self.disjunctive]
        for i in range(self.sizes["X"]):
            self.vars[f"@X{i}"] = _Var(f"@X{i}", "Y", n_y + i, 0)

    # ---- formulas: 2.0 spells equality `==`; `!=` is a disjunction of strict inequalities we cannot keep strict

    def _dnf(self, node: _Node) -> list[_Term]:
        if isinstance(node, _List) and node.items and isinstance(node.items[0], _Atom):
            op = node.items[0]
            if op.text == "==":
                eq = _List(node.pos)
                eq.items = [_Atom("=", op.pos), *node.items[1:]]
                return super()._dnf(eq)
            if op.text == "=":
                raise self.src.error(op.pos, "'=' is VNN-LIB 1.0: 2.0 writes equality as '=='")
            if op.text == "!=":
                raise self.src.error(op.pos, "'!=' is not supported (strict inequalities are read as non-strict)")
        return super()._dnf(node)

    def _leaf(self, atom: _Atom) -> _Linear:
        """The 1.0 leaf, with 2.0 messages for a tensor used with the wrong indices."""
        if atom.text not in self.vars:
            m = _INDEXED_RE.fullmatch(atom.text)
            name = m.group(1) if m else atom.text
            if name in self.decls:
                decl = self.decls[name][0]
                dims = ",".join(map(str, decl.shape))
                at = f"[{m.group(2)}]" if m else "without an index"
                raise self.src.error(atom.pos, f"{name} has shape [{dims}]: {name}{at} is not one of its elements")
            if m:
                raise self.src.error(atom.pos, f"undeclared tensor {name}")
        return super()._leaf(atom)


def parse_query_text(text: str, source: str = "<string>") -> Query:
    """Parse a VNN-LIB 2.0 query; `source` names it in error messages (`source:line:col: ...`)."""
    src = _Source2(source, text)
    interp = _Interpreter2(src)
    interp.run(_read_sexprs(src))
    interp.remap_inputs()
    spec = _assemble(src, interp)
    assert interp.network is not None  # run() guarantees it
    first = interp.networks[0]
    return Query(interp.version, interp.network.text, first.inputs[0], first.outputs[0], spec,
                 tuple(interp.networks), interp.inputs_as_outputs)


def parse_query(path: str) -> Query:
    """Parse a VNN-LIB 2.0 query file (a 1.0 file is refused: it has no declarations to report)."""
    text = read_spec_text(path)
    if not declares_version(text):
        raise SpecError(f"{path}:1:1: not a VNN-LIB 2.0 query (it does not start with (vnnlib-version <2.0>))")
    return parse_query_text(text, str(path))
