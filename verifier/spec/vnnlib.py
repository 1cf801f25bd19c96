"""VNN-LIB 1.0 front end: text -> `Spec` (VNN-COMP dialect; the file states a *violation*).

Pipeline: one regex tokenizes the whole text into S-expressions (tokens keep their character offset, turned into
line:col only when an error is reported, so the common path pays nothing for it); declarations are checked; every
assert is turned into disjunctive normal form (DNF) over linear atoms; atoms over one input are box bounds, atoms
over outputs only are rows of C·y + d <= 0. Asserts whose DNF is a single term (the usual `(assert (<= X_0 0.5))`)
are merged into one shared base term, so a 3072-input spec costs one pass; only genuinely disjunctive asserts
enter the cross product. DNF terms are grouped by input box into `Property` objects, in order of appearance.
"""
from __future__ import annotations

import itertools
import math
import os
import re
from typing import Iterable, NamedTuple, Optional, Sequence, Union

import numpy as np

from verifier.errors import SpecError
from verifier.spec.spec import Clause, Property, Spec

__all__ = ["MAX_DNF_TERMS", "MAX_NESTING", "load_spec", "parse_vnnlib", "parse_vnnlib_text", "read_spec_text"]

MAX_DNF_TERMS = 100_000  # refuse specs whose DNF would be larger: they would not be verifiable anyway
MAX_NESTING = 100  # parentheses deeper than this are refused: the formula walk recurses (real specs nest < 10)

_TOKEN_RE = re.compile(r";[^\n]*|([()]|[^\s();]+)")  # comment (captures "") | paren | symbol or number
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_VAR_RE = re.compile(r"([XY])_(0|[1-9]\d*)")
_IGNORED_COMMANDS = frozenset({"set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"})
_COMPARISONS = frozenset({"<=", "<", ">=", ">", "="})
_ARITHMETIC = frozenset({"+", "-", "*", "/"})
# Networks run in float32: an input bound or output coefficient beyond its range would become inf (or nan)
# on the way in, and the model would be blamed for what is the spec's error.
FLOAT32_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------------------------------------------- source & tree


class _Source:
    """The text, its name and its tokens; maps a token index to the `FILE:LINE:COL:` of an error message.

    Tokens are found with one C-level `findall` (comments come back as empty strings, so indices stay aligned
    with `finditer`); character offsets, lines and columns are computed only when an error is reported.
    `token_re` is a class attribute so that the 2.0 front end (vnnlib2) can tokenize `X[0,3]` as one symbol.
    """

    token_re = _TOKEN_RE

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.tokens: list[str] = self.token_re.findall(text)
        self.end = len(self.tokens)  # a pseudo token index meaning "end of file"

    def line_col(self, at: int) -> tuple[int, int]:
        """1-based line and column of token number `at` (or of the end of the text for `self.end`)."""
        pos = len(self.text)
        for i, m in enumerate(self.token_re.finditer(self.text)):
            if i == at:
                pos = m.start()
                break
        line_start = self.text.rfind("\n", 0, pos) + 1
        return self.text.count("\n", 0, pos) + 1, pos - line_start + 1

    def error(self, at: int, what: str) -> SpecError:
        line, col = self.line_col(at)
        return SpecError(f"{self.name}:{line}:{col}: {what}")


class _Atom:
    """A symbol or number token; `pos` is its token index, for error messages."""

    __slots__ = ("text", "pos")

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos


class _List:
    """A parenthesized S-expression; `pos` is the token index of its '('."""

    __slots__ = ("items", "pos")

    def __init__(self, pos: int) -> None:
        self.items: list[_Node] = []
        self.pos = pos


_Node = Union[_Atom, _List]


def _read_sexprs(src: _Source) -> list[_List]:
    """Build the top-level S-expressions from the token list (a stack, no recursion)."""
    top: list[_List] = []
    stack: list[_List] = []
    for at, tok in enumerate(src.tokens):
        if tok == "(":
            if len(stack) == MAX_NESTING:
                raise src.error(at, f"parentheses nested deeper than {MAX_NESTING} levels")
            stack.append(_List(at))
        elif tok == ")":
            if not stack:
                raise src.error(at, "unbalanced parentheses: ')' without matching '('")
            node = stack.pop()
            (stack[-1].items if stack else top).append(node)
        elif tok:  # "" is a comment
            if not stack:
                raise src.error(at, f"unexpected token {tok!r} outside parentheses")
            stack[-1].items.append(_Atom(tok, at))
    if stack:
        raise src.error(stack[0].pos, "unbalanced parentheses: '(' is never closed")
    return top


# --------------------------------------------------------------------------------------------------- atoms


class _Var:
    """A declared variable; hashed by identity so linear forms can key on it cheaply."""

    __slots__ = ("name", "kind", "index", "pos")

    def __init__(self, name: str, kind: str, index: int, pos: int) -> None:
        self.name = name
        self.kind = kind  # "X" (input) or "Y" (output)
        self.index = index
        self.pos = pos


class _Bound(NamedTuple):
    """x[index] <= value (is_upper) or x[index] >= value; < or > when strict."""

    index: int
    is_upper: bool
    value: float
    pos: int
    strict: bool = False


class _Row(NamedTuple):
    """sum(c * y[j] for j, c in coeffs) + const <= 0 (< 0 when strict), with coeffs sorted by j."""

    coeffs: tuple[tuple[int, float], ...]
    const: float
    pos: int
    strict: bool = False

    @property
    def key(self) -> tuple[tuple[tuple[int, float], ...], float, bool]:
        return self.coeffs, self.const, self.strict


_Constraint = Union[_Bound, _Row]
_Term = tuple[_Constraint, ...]  # a conjunction
_Linear = tuple[dict[_Var, float], float]  # (coefficients, constant)


def _parse_number(text: str) -> float | None:
    """The value of a numeral in any decimal/scientific syntax (inf on overflow), None if `text` is not one.

    A regex first, because `float` would also accept "inf", "nan" and "1_000", which are not VNN-LIB numerals.
    """
    if not _NUMBER_RE.fullmatch(text):
        return None
    return float(text)


# --------------------------------------------------------------------------------------------------- interpreter


class _Interpreter:
    """Walks the top-level commands, collecting declarations and the DNF of the asserts."""

    def __init__(self, src: _Source) -> None:
        self.src = src
        self.vars: dict[str, _Var] = {}
        self.base: list[_Constraint] = []  # conjunction shared by every DNF term
        self.disjunctive: list[list[_Term]] = []  # asserts whose DNF has several terms

    # ---- commands

    def run(self, commands: Iterable[_List]) -> None:
        for cmd in commands:
            name = self._head(cmd, "a command name")
            if name.text == "declare-const":
                self._declare(cmd, sort_at=2)
            elif name.text == "declare-fun":
                self._declare_fun(cmd)
            elif name.text == "assert":
                self._assert(cmd)
            elif name.text not in _IGNORED_COMMANDS:
                raise self.src.error(name.pos, f"unknown command {name.text!r}")

    def _head(self, node: _List, what: str) -> _Atom:
        """The operator of `node`, which must be a symbol."""
        if not node.items or not isinstance(node.items[0], _Atom):
            raise self.src.error(node.pos, f"expected {what} after '('")
        return node.items[0]

    def _declare_fun(self, cmd: _List) -> None:
        """`(declare-fun X_0 () Real)` is the old spelling of `(declare-const X_0 Real)`."""
        if len(cmd.items) != 4 or not isinstance(cmd.items[2], _List) or cmd.items[2].items:
            raise self.src.error(cmd.pos, "declare-fun must be (declare-fun NAME () Real)")
        self._declare(cmd, sort_at=3)

    def _declare(self, cmd: _List, sort_at: int) -> None:
        if len(cmd.items) != sort_at + 1:
            raise self.src.error(cmd.pos, "declare-const must be (declare-const NAME Real)")
        name, sort = cmd.items[1], cmd.items[sort_at]
        if not isinstance(name, _Atom):
            raise self.src.error(name.pos, "expected a variable name")
        if not isinstance(sort, _Atom) or sort.text != "Real":
            shown = sort.text if isinstance(sort, _Atom) else "(...)"
            raise self.src.error(sort.pos, f"unsupported sort {shown!r} for {name.text}: only Real is supported")
        m = _VAR_RE.fullmatch(name.text)
        if not m:
            what = f"unsupported variable name {name.text!r}: expected X_i (input) or Y_j (output)"
            raise self.src.error(name.pos, what)
        if name.text in self.vars:
            line, col = self.src.line_col(self.vars[name.text].pos)
            raise self.src.error(name.pos, f"duplicate declaration of {name.text} (first declared at {line}:{col})")
        self.vars[name.text] = _Var(name.text, m.group(1), int(m.group(2)), name.pos)

    def _assert(self, cmd: _List) -> None:
        if len(cmd.items) != 2:
            raise self.src.error(cmd.pos, "assert takes exactly one formula")
        terms = self._dnf(cmd.items[1])
        if len(terms) == 1:
            self.base.extend(terms[0])
        else:
            self.disjunctive.append(terms)

    # ---- formulas

    def _dnf(self, node: _Node) -> list[_Term]:
        """The formula at `node` as a list of conjunctions (their disjunction)."""
        if isinstance(node, _Atom):
            raise self.src.error(node.pos, f"expected a formula, found {node.text!r}")
        op = self._head(node, "an operator")
        args = node.items[1:]
        if op.text == "and":
            return self._conjoin([self._dnf(a) for a in args], node.pos)
        if op.text == "or":
            if not args:
                raise self.src.error(op.pos, "'or' needs at least one operand")
            terms = [t for a in args for t in self._dnf(a)]
            self._check_size(len(terms), node.pos)
            return terms
        if op.text in _COMPARISONS:
            bound = self._plain_bound(node, op, args)
            return [(bound,)] if bound is not None else [tuple(self._compare(node, op, args))]
        if op.text in _ARITHMETIC:
            raise self.src.error(op.pos, f"expected a formula, found arithmetic term {op.text!r}")
        raise self.src.error(op.pos, f"unknown operator {op.text!r}")

    def _conjoin(self, parts: Sequence[list[_Term]], pos: int) -> list[_Term]:
        """Cross product of DNFs: the DNF of their conjunction."""
        self._check_size(math.prod(len(p) for p in parts), pos)
        return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(*parts)]

    def _check_size(self, n_terms: int, pos: int) -> None:
        if n_terms > MAX_DNF_TERMS:
            what = f"formula too large: its disjunctive normal form has {n_terms} terms (limit {MAX_DNF_TERMS})"
            raise self.src.error(pos, what)

    def _plain_bound(self, node: _List, op: _Atom, args: list[_Node]) -> _Bound | None:
        """Fast path for the overwhelmingly common `(<= X_i number)`; None (use the general path) otherwise."""
        if len(args) != 2 or op.text == "=" or not isinstance(args[0], _Atom) or not isinstance(args[1], _Atom):
            return None
        var = self.vars.get(args[0].text)
        value = _parse_number(args[1].text)
        if var is None or var.kind != "X" or value is None or not math.isfinite(value):
            return None
        self._check_float32(value, args[1].pos, f"bound {args[1].text} on {var.name}")
        return _Bound(var.index, op.text in ("<=", "<"), value, node.pos, op.text in ("<", ">"))

    def _check_float32(self, value: float, pos: int, what: str) -> None:
        """Refuse a finite number the float32 network cannot take (see FLOAT32_MAX)."""
        if not abs(value) <= FLOAT32_MAX:
            raise self.src.error(pos, f"{what} is beyond float32's range (±{FLOAT32_MAX:.7g})")

    def _compare(self, node: _List, op: _Atom, args: list[_Node]) -> list[_Constraint]:
        """`(<= a b c)` is a <= b and b <= c (SMT-LIB chaining). Strict comparisons bound as non-strict ones
        (a superset: sound for proofs); on outputs they stay strict for the counterexample check."""
        if len(args) < 2:
            raise self.src.error(op.pos, f"{op.text!r} needs at least two operands")
        terms = [self._linear(a) for a in args]
        strict = op.text in ("<", ">")
        out: list[_Constraint] = []
        for lo, hi in itertools.pairwise(terms):
            if op.text in ("<=", "<", "="):
                out.append(self._classify(_difference(lo, hi), node.pos, strict))
            if op.text in (">=", ">", "="):
                out.append(self._classify(_difference(hi, lo), node.pos, strict))
        return out

    def _classify(self, lin: _Linear, pos: int, strict: bool = False) -> _Constraint:
        """Turn `lin <= 0` into an input bound or an output row; anything else is unsupported."""
        coeffs = {v: c for v, c in lin[0].items() if c != 0.0}
        if not coeffs:
            raise self.src.error(pos, "comparison without variables is not supported")
        kinds = {v.kind for v in coeffs}
        if len(kinds) == 2:
            raise self.src.error(pos, "constraint mixing inputs (X) and outputs (Y) is not supported")
        if "Y" in kinds:
            for v, c in coeffs.items():
                self._check_float32(c, pos, f"coefficient {c!r} of {v.name}")
            self._check_float32(lin[1], pos, f"constant {lin[1]!r}")
            return _Row(tuple(sorted((v.index, c) for v, c in coeffs.items())), lin[1], pos, strict)
        if len(coeffs) > 1:
            names = ", ".join(v.name for v in coeffs)
            what = f"linear constraint over several inputs ({names}) is not supported: only bounds on single inputs"
            raise self.src.error(pos, what)
        ((var, c),) = coeffs.items()
        value = -lin[1] / c
        self._check_float32(value, pos, f"bound {value!r} on {var.name}")
        return _Bound(var.index, c > 0, value, pos, strict)

    # ---- arithmetic

    def _linear(self, node: _Node) -> _Linear:
        """The linear term at `node` as (coefficients, constant)."""
        if isinstance(node, _Atom):
            return self._leaf(node)
        op = self._head(node, "an operator")
        terms = [self._linear(a) for a in node.items[1:]]
        if not terms:
            raise self.src.error(op.pos, f"{op.text!r} needs at least one operand")
        if op.text == "+":
            return _sum(terms)
        if op.text == "-":
            return _scale(terms[0], -1.0) if len(terms) == 1 else _difference(terms[0], _sum(terms[1:]))
        if op.text == "*":
            return self._product(op, terms)
        if op.text == "/":
            return self._quotient(op, terms)
        if op.text in _COMPARISONS or op.text in ("and", "or"):
            raise self.src.error(op.pos, f"expected an arithmetic term, found {op.text!r}")
        raise self.src.error(op.pos, f"unknown operator {op.text!r}")

    def _leaf(self, atom: _Atom) -> _Linear:
        var = self.vars.get(atom.text)
        if var is not None:
            return {var: 1.0}, 0.0
        value = _parse_number(atom.text)
        if value is not None:
            if not math.isfinite(value):
                raise self.src.error(atom.pos, f"number {atom.text} is out of range")
            return {}, value
        if _VAR_RE.fullmatch(atom.text):
            raise self.src.error(atom.pos, f"undeclared variable {atom.text}")
        raise self.src.error(atom.pos, f"unknown symbol {atom.text!r}")

    def _product(self, op: _Atom, terms: list[_Linear]) -> _Linear:
        """Products are linear only if at most one factor has variables."""
        variable = [t for t in terms if t[0]]
        if len(variable) > 1:
            raise self.src.error(op.pos, "nonlinear term (product of variables) is not supported")
        factor = math.prod(t[1] for t in terms if not t[0])
        return _scale(variable[0], factor) if variable else ({}, factor)

    def _quotient(self, op: _Atom, terms: list[_Linear]) -> _Linear:
        """Division only by nonzero constants."""
        if len(terms) < 2 or any(t[0] for t in terms[1:]):
            raise self.src.error(op.pos, "'/' must divide by nonzero constants (nonlinear term otherwise)")
        divisor = math.prod(t[1] for t in terms[1:])
        if divisor == 0.0:
            raise self.src.error(op.pos, "division by zero")
        return _scale(terms[0], 1.0 / divisor)


def _sum(terms: Iterable[_Linear]) -> _Linear:
    coeffs: dict[_Var, float] = {}
    const = 0.0
    for t_coeffs, t_const in terms:
        for v, c in t_coeffs.items():
            coeffs[v] = coeffs.get(v, 0.0) + c
        const += t_const
    return coeffs, const


def _scale(term: _Linear, factor: float) -> _Linear:
    return {v: c * factor for v, c in term[0].items()}, term[1] * factor


def _difference(a: _Linear, b: _Linear) -> _Linear:
    return _sum((a, _scale(b, -1.0)))


# --------------------------------------------------------------------------------------------------- assembly


# (value, strict) per input: dense (the base box) or sparse (a term's refinements)
_Intervals = Union[list[tuple[float, bool]], dict[int, tuple[float, bool]]]


class _Boxes:
    """Input boxes: the base box (from the shared conjunction) refined per DNF term, deduplicated by content.

    Each end is (value, strict): the box is closed for the bounds (a superset: proofs stay sound), and a
    strict end is kept so that a counterexample lying on it is not reported."""

    def __init__(self, src: _Source, n_inputs: int, base: Iterable[_Bound]) -> None:
        self.src = src
        self.lower: list[tuple[float, bool]] = [(-math.inf, False)] * n_inputs
        self.upper: list[tuple[float, bool]] = [(math.inf, False)] * n_inputs
        for b in base:
            self._tighten(self.lower, self.upper, b)

    def _tighten(self, lower: _Intervals, upper: _Intervals, b: _Bound) -> None:
        i = b.index
        if b.is_upper:  # the smaller value, strict first among equal ones
            upper[i] = min(upper[i], (b.value, b.strict), key=lambda e: (e[0], not e[1]))
        else:
            lower[i] = max(lower[i], (b.value, b.strict), key=lambda e: (e[0], e[1]))
        if lower[i][0] > upper[i][0]:
            what = f"empty input box: X_{i} has lower bound {lower[i][0]!r} > upper bound {upper[i][0]!r}"
            raise self.src.error(b.pos, what)

    def key(self, bounds: Sequence[_Bound]) -> tuple[tuple[int, tuple[float, bool], tuple[float, bool]], ...]:
        """A canonical key for base ∩ bounds: the inputs whose interval differs from the base box."""
        if not bounds:
            return ()
        lower = {b.index: self.lower[b.index] for b in bounds}
        upper = {b.index: self.upper[b.index] for b in bounds}
        for b in bounds:
            self._tighten(lower, upper, b)
        return tuple(
            (i, lower[i], upper[i]) for i in sorted(lower) if (lower[i], upper[i]) != (self.lower[i], self.upper[i])
        )

    def arrays(self, key: tuple) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        """lower, upper, and the masks of their strict ends (None where there is none)."""
        lower, upper = list(self.lower), list(self.upper)
        for i, lo, hi in key:
            lower[i], upper[i] = lo, hi
        open_lower = np.array([e[1] for e in lower], dtype=bool)
        open_upper = np.array([e[1] for e in upper], dtype=bool)
        return (np.array([e[0] for e in lower], dtype=np.float64), np.array([e[0] for e in upper], dtype=np.float64),
                open_lower if open_lower.any() else None, open_upper if open_upper.any() else None)


def _clause(rows: Sequence[tuple[tuple[tuple[int, float], ...], float, bool]], n_outputs: int) -> Clause:
    C = np.zeros((len(rows), n_outputs), dtype=np.float64)
    d = np.zeros(len(rows), dtype=np.float64)
    strict = np.zeros(len(rows), dtype=bool)
    for r, (coeffs, const, is_strict) in enumerate(rows):
        for j, c in coeffs:
            C[r, j] = c
        d[r] = const
        strict[r] = is_strict
    return Clause(C, d, strict if strict.any() else None)


def _count(src: _Source, variables: Iterable[_Var], kind: str, what: str) -> int:
    """Number of `kind` variables, which must be exactly kind_0 .. kind_{n-1}."""
    declared = sorted((v for v in variables if v.kind == kind), key=lambda v: v.index)
    if not declared:
        raise src.error(src.end, f"missing declarations: no {what} variables ({kind}_0, {kind}_1, ...) declared")
    for expected, var in enumerate(declared):
        if var.index != expected:
            problem = f"{var.name} declared but {kind}_{expected} is not"
            raise src.error(var.pos, f"{what} variables must be {kind}_0..{kind}_{{n-1}}: {problem}")
    return len(declared)


def _check_complete(src: _Source, vars_by_index: list[_Var], lower: np.ndarray, upper: np.ndarray, where: str) -> None:
    """Every input needs a finite interval, or the box cannot be verified."""
    for bounds, side in ((lower, "lower"), (upper, "upper")):
        missing = np.flatnonzero(~np.isfinite(bounds))
        if missing.size:
            var = vars_by_index[int(missing[0])]
            raise src.error(var.pos, f"input {var.name} has no finite {side} bound{where}")


def _assemble(src: _Source, interp: _Interpreter) -> Spec:
    """Cross the disjunctive asserts, group the terms by input box, build the Spec."""
    n_inputs = _count(src, interp.vars.values(), "X", "input")
    n_outputs = _count(src, interp.vars.values(), "Y", "output")
    boxes = _Boxes(src, n_inputs, (c for c in interp.base if isinstance(c, _Bound)))
    base_rows = [c.key for c in interp.base if isinstance(c, _Row)]
    n_terms = math.prod(len(t) for t in interp.disjunctive)
    if n_terms > MAX_DNF_TERMS:
        what = f"spec too large: the conjunction of its asserts has {n_terms} DNF terms (limit {MAX_DNF_TERMS})"
        raise src.error(src.end, what)

    groups: dict[tuple, dict[tuple, None]] = {}  # box key -> clause keys, both in order of appearance
    for combo in itertools.product(*interp.disjunctive):
        atoms = list(itertools.chain.from_iterable(combo))
        box = boxes.key([a for a in atoms if isinstance(a, _Bound)])
        rows = tuple(dict.fromkeys(base_rows + [a.key for a in atoms if isinstance(a, _Row)]))
        groups.setdefault(box, {})[rows] = None

    inputs = sorted((v for v in interp.vars.values() if v.kind == "X"), key=lambda v: v.index)
    properties = []
    for k, (box, clause_keys) in enumerate(groups.items()):
        lower, upper, open_lower, open_upper = boxes.arrays(box)
        _check_complete(src, inputs, lower, upper, f" in input box {k + 1} of {len(groups)}" if len(groups) > 1 else "")
        properties.append(Property(lower, upper, tuple(_clause(rows, n_outputs) for rows in clause_keys),
                                   open_lower, open_upper))
    return Spec(n_inputs, n_outputs, tuple(properties), src.name)


# --------------------------------------------------------------------------------------------------- public API


def parse_vnnlib_text(text: str, source: str = "<string>") -> Spec:
    """Parse VNN-LIB text; `source` names it in error messages (`source:line:col: ...`).

    A text that opens with `(vnnlib-version <2.x>)` is a VNN-LIB 2.0 query and goes to `vnnlib2`.
    """
    from verifier.spec import vnnlib2  # here, not at the top: vnnlib2 builds on this module

    if vnnlib2.declares_version(text):
        query = vnnlib2.parse_query_text(text, source)
        if not query.simple:
            raise SpecError(f"{source}:1:1: this query has several networks, inputs, outputs or hidden tensors, or "
                            "constraints over several inputs: give it as `verify QUERY --network NAME=NET.onnx ...`")
        return query.spec
    src = _Source(source, text)
    interp = _Interpreter(src)
    interp.run(_read_sexprs(src))
    return _assemble(src, interp)


def read_spec_text(path: str | os.PathLike[str]) -> str:
    """The text of a spec file; unreadable files raise SpecError too, so the CLI reports one line."""
    import gzip
    import zlib

    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
        if data.startswith(b"\x1f\x8b"):  # a .vnnlib.gz
            data = gzip.decompress(data)
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it
    except OSError as e:
        if isinstance(e, gzip.BadGzipFile) or not e.strerror:
            raise SpecError(f"{name}: cannot read compressed spec: {e}") from None
        raise SpecError(f"{name}: cannot read spec: {e.strerror or e}") from e
    except (EOFError, zlib.error) as e:
        raise SpecError(f"{name}: cannot read compressed spec: {e}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{name}: not a text file (byte {e.start} is not UTF-8)") from e


def parse_vnnlib(path: str | os.PathLike[str]) -> Spec:
    """Parse a .vnnlib file (VNN-LIB 1.0, or 2.0 when it opens with `vnnlib-version`)."""
    return parse_vnnlib_text(read_spec_text(path), os.fspath(path))


def load_spec(path_or_spec: Spec | str | os.PathLike[str]) -> Spec:
    """Accept either an already parsed Spec (returned unchanged) or a path to parse."""
    if isinstance(path_or_spec, Spec):
        return path_or_spec
    return parse_vnnlib(path_or_spec)
