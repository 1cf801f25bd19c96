"""The independent checker: re-proves every leaf of a certificate in rigorous float64 arithmetic.

It imports no torch and none of the verifier's bound code: the model is read by `network` (its own
ONNX walk), the bounds are computed by `rigorous` (its own IBP and CROWN back-substitution with
outward rounding). The spec is read with the verifier's VNN-LIB parser (numpy only; it computes no
bounds). Per (property, clause) root it rebuilds the leaf boxes from the split tree (which covers
the property's box by construction), and proves each leaf, batched: IBP; else CROWN with the slopes
the certificate gives (or CROWN's own); a leaf is proved when the best row, or a nonnegative
weighting of the rows (found by the checker's own mirror ascent), has a positive rigorous lower
bound on the whole leaf. ReLU-split roots (sign decisions on relu inputs) are checked by
`relu_check`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from verifier.certificate.format import (
    KINDS, LAYER_ALPHA, Certificate, ReluRootProof, RootProof, read_certificate, sha256_file,
)
from verifier.certificate.network import Affine, Chain, Divide, Layer, Relu, load_chain
from verifier.certificate.rigorous import (
    ForwardBounds, LinearBound, affine_interval, divide_interval, relu_interval,
)

FORWARD_MAX_INPUTS = 32  # forward linear bounds too (their cost grows with the inputs)

CHUNK = 1024  # leaves bounded together


@dataclass(frozen=True)
class CheckOutcome:
    valid: bool
    message: str  # "valid", or "invalid: leaf N, reason" / "invalid: reason"
    leaves: int
    seconds: float


class Invalid(Exception):
    """The certificate does not prove the spec (exit 1); the message says where and why."""


def check_certificate(model: str, spec: str, certificate: str, chunk: int = CHUNK) -> CheckOutcome:
    """Check `certificate` against the files; bad input (unreadable or unsupported files) raises
    UnsupportedModel / CertificateFileError / SpecError, everything else is an outcome."""
    from verifier.spec.vnnlib import parse_vnnlib

    start = time.monotonic()
    cert = read_certificate(certificate)
    chain = load_chain(model)
    parsed = parse_vnnlib(spec)
    try:
        check_proof(chain, parsed, cert, sha256_file(model), sha256_file(spec), chunk)
    except Invalid as err:
        return CheckOutcome(False, f"invalid: {err}", cert.leaves, time.monotonic() - start)
    return CheckOutcome(True, "valid", cert.leaves, time.monotonic() - start)


def check_proof(chain: Chain, spec, cert: Certificate, model_sha: str, spec_sha: str,  # type: ignore[no-untyped-def]
                chunk: int = CHUNK) -> None:
    """Raise Invalid unless `cert` proves every clause of every property of `spec` on `chain`."""
    if cert.model_sha256 != model_sha:
        raise Invalid(f"the certificate is for another model (sha256 {cert.model_sha256[:12]}…, "
                      f"this file {model_sha[:12]}…)")
    if cert.spec_sha256 != spec_sha:
        raise Invalid(f"the certificate is for another spec (sha256 {cert.spec_sha256[:12]}…, this file {spec_sha[:12]}…)")
    if spec.n_inputs != chain.n_inputs or spec.n_outputs != chain.n_outputs:
        raise Invalid(f"the spec has {spec.n_inputs} inputs / {spec.n_outputs} outputs, the model "
                      f"{chain.n_inputs} / {chain.n_outputs}")
    by_key = {(r.property, r.clause): (i, r) for i, r in reversed(list(enumerate(cert.roots)))}
    offsets = np.cumsum([0] + [r.leaves for r in cert.roots])
    priors: dict[int, object] = {}
    for p, prop in enumerate(spec.properties):
        if not prop.clauses:
            raise Invalid(f"property {p} has a clause that always holds: it cannot be unsat")
        for c, clause in enumerate(prop.clauses):
            if (p, c) not in by_key:
                raise Invalid(f"property {p}, clause {c}: no proof in the certificate")
            i, root = by_key[(p, c)]
            if isinstance(root, ReluRootProof):
                from verifier.certificate.relu_check import check_relu_root, root_prior

                if p not in priors:
                    priors[p] = root_prior(chain, prop.lower, prop.upper, cert.intermediate.get(p, ()), p)
                check_relu_root(chain, prop.lower, prop.upper, clause.C, clause.d, root, int(offsets[i]),
                                prior=priors[p])
                continue
            check_root(chain, prop.lower, prop.upper, clause.C, clause.d, root, int(offsets[i]), chunk)


def check_root(chain: Chain, lower: np.ndarray, upper: np.ndarray, C: np.ndarray, d: np.ndarray,
               root: RootProof, first_leaf: int, chunk: int = CHUNK) -> None:
    """Raise Invalid unless every leaf of `root` is proved (leaves numbered from first_leaf)."""
    where = f"property {root.property}, clause {root.clause}"
    mix = root.mix
    if mix.ndim != 2 or mix.shape[1] != C.shape[0] or not np.all(np.isfinite(mix)) or np.any(mix < 0) \
            or np.any(mix.sum(1) <= 0):
        raise Invalid(f"{where}: the row weights must be a nonnegative ({C.shape[0]}-column) matrix with no zero row")
    lo, hi = leaf_boxes(root, np.asarray(lower, np.float64), np.asarray(upper, np.float64), where)
    if root.kind.shape[0] != lo.shape[0]:
        raise Invalid(f"{where}: {root.kind.shape[0]} leaf kinds for {lo.shape[0]} leaves")
    alphas = _alpha_table(chain, root, lo.shape[0], where)
    objective = (Affine(np.asarray(C, np.float64), np.asarray(d, np.float64)), Affine(mix, np.zeros(mix.shape[0])))
    for begin in range(0, lo.shape[0], chunk):
        end = min(begin + chunk, lo.shape[0])
        taken = None if alphas is None else [a[begin:end] for a in alphas[1]]
        has = None if alphas is None else alphas[0][begin:end]
        margin = leaf_margins(chain, objective, lo[begin:end], hi[begin:end], taken, has)
        bad = np.nonzero(~(margin > 0))[0]
        if bad.size:
            j = int(bad[0])
            kind = int(root.kind[begin + j])
            why = " (closed by the verifier with intermediate bounds optimised per layer, whose slopes the " \
                  "certificate does not carry)" if kind == LAYER_ALPHA else \
                f" (closed by the verifier by {KINDS[kind] if kind < len(KINDS) else kind})"
            raise Invalid(f"leaf {first_leaf + begin + j} ({where}, leaf {begin + j} of the root): best bound "
                          f"{margin[j]:.3g} <= 0, not proved{why}")


def leaf_boxes(root: RootProof, lower: np.ndarray, upper: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The leaves' boxes (in node order), from the breadth-first split tree; Invalid if malformed."""
    dim, point = root.dim, root.point
    N, n = dim.shape[0], lower.shape[0]
    internal = dim >= 0
    if N == 0 or point.shape[0] != N or N != 2 * int(internal.sum()) + 1:
        raise Invalid(f"{where}: the split tree is malformed ({N} nodes, {int(internal.sum())} splits)")
    if np.any(dim >= n) or np.any(dim < -1) or not np.all(np.isfinite(point[internal])):
        raise Invalid(f"{where}: the split tree has a split dimension or point out of range")
    rank = np.cumsum(internal) - 1
    left = np.where(internal, 2 * rank + 1, -1)
    nodes = np.arange(N)
    if np.any(left[internal] <= nodes[internal]):
        raise Invalid(f"{where}: the split tree is not in breadth-first order")
    lo = np.empty((N, n))
    hi = np.empty((N, n))
    lo[0], hi[0] = lower, upper
    wave = np.array([0])
    while wave.size:
        split = wave[internal[wave]]
        if not split.size:
            break
        k, p = dim[split], point[split]
        if np.any(p < lo[split, k]) or np.any(p > hi[split, k]):
            bad = split[(p < lo[split, k]) | (p > hi[split, k])][0]
            raise Invalid(f"{where}: node {bad} splits at a point outside its box")
        a, b = left[split], left[split] + 1
        lo[a], hi[a] = lo[split], hi[split]
        lo[b], hi[b] = lo[split], hi[split]
        hi[a, k], lo[b, k] = p, p
        wave = np.concatenate([a, b])
    leaves = ~internal
    return lo[leaves], hi[leaves]


def _alpha_table(chain: Chain, root: RootProof, n_leaves: int, where: str,
                 ) -> Optional[tuple[np.ndarray, list[np.ndarray]]]:
    """Per leaf: whether it has slopes, and the slopes (leaves, rows, width) per relu layer (NaN where none)."""
    if not root.alpha_leaf.size:
        return None
    widths = chain.relu_widths
    rows = root.mix.shape[0]
    idx = root.alpha_leaf
    if len(root.alphas) != len(widths) or np.any(idx < 0) or np.any(idx >= n_leaves) or \
            any(a.shape != (idx.size, rows, w) for a, w in zip(root.alphas, widths)) or \
            not all(np.all(np.isfinite(a)) for a in root.alphas):
        raise Invalid(f"{where}: the relu slopes do not fit the model's relu layers {widths} and {rows} rows")
    has = np.zeros(n_leaves, bool)
    has[idx] = True
    table = []
    for a, w in zip(root.alphas, widths):
        full = np.zeros((n_leaves, rows, w))
        full[idx] = a
        table.append(full)
    return has, table


def leaf_margins(chain: Chain, objective: tuple[Affine, Affine], lo: np.ndarray, hi: np.ndarray,
                 alphas: Optional[list[np.ndarray]] = None, has_alpha: Optional[np.ndarray] = None) -> np.ndarray:
    """Per leaf box, a rigorous lower bound of the best nonnegative weighting of the objective rows
    (> 0 proves the leaf): IBP first; where it leaves a leaf open, CROWN on intermediate bounds
    computed as the verifier does (CROWN's adaptive slopes), with the given slopes too; where that
    fails, again on intermediate bounds that also try other slopes."""
    layers: tuple[Layer, ...] = chain.layers + objective
    margin = _ibp(layers, lo, hi)[-1][0].max(1)
    for intermediate in (("adaptive",), SLOPES):
        open_ = np.nonzero(~(margin > 0))[0]
        if not open_.size:
            break
        tight = _crown_intermediate(layers, lo[open_], hi[open_], intermediate)
        has = None if has_alpha is None else has_alpha[open_]
        given = None if alphas is None else [a[open_] for a in alphas]
        margin[open_] = np.maximum(margin[open_], _objective_margin(layers, tight, lo[open_], hi[open_], given, has))
    return margin


def _objective_margin(layers: tuple[Layer, ...], tight: list[tuple[np.ndarray, np.ndarray]], lo: np.ndarray,
                      hi: np.ndarray, alphas: Optional[list[np.ndarray]], has_alpha: Optional[np.ndarray]) -> np.ndarray:
    """The best rigorous lower bound of the objective's rows, or of a weighting of them, on each box."""
    rows = layers[-1].W.shape[0]  # type: ignore[union-attr]
    every = np.arange(lo.shape[0])
    lin, row_lb = None, None
    candidates = []  # (linear bounds, the boxes they cover): each weighted on its own too
    for strategy in SLOPES:
        cand = _backward(layers, tight, len(layers), np.eye(rows), _slopes(layers, tight, len(layers), strategy))
        candidates.append((LinearBound(cand.coef.copy(), cand.const.copy(), cand.slack.copy()), every))
        lin, row_lb = _keep_better(lin, row_lb, cand, cand.box_minimum(lo, hi), every)
    if alphas is not None and has_alpha is not None and has_alpha.any():
        pick = np.nonzero(has_alpha)[0]
        part = [(b[0][pick], b[1][pick]) for b in tight]
        lin_a = _backward(layers, part, len(layers), np.eye(rows), [a[pick] for a in alphas])
        candidates.append((LinearBound(lin_a.coef.copy(), lin_a.const.copy(), lin_a.slack.copy()), pick))
        lin, row_lb = _keep_better(lin, row_lb, lin_a, lin_a.box_minimum(lo[pick], hi[pick]), pick)
    assert lin is not None and row_lb is not None
    best = row_lb.max(1)
    if rows > 1:
        # A weighting of one set of linear bounds: the rows' best ones per row need not combine best,
        # so each candidate set is weighted too (CROWN's own, as the verifier did, among them).
        for cand, at in [(lin, every)] + candidates:
            still = ~(best[at] > 0)
            if not still.any():
                continue
            s, boxes = np.nonzero(still)[0], at[still]
            part = LinearBound(cand.coef[s], cand.const[s], cand.slack[s])
            weights = dual_weights(part, lo[boxes], hi[boxes])
            magnitude = np.maximum(np.abs(lo[boxes]), np.abs(hi[boxes]))
            value = part.combined(weights, magnitude).box_minimum(lo[boxes], hi[boxes])[:, 0]
            best[boxes] = np.maximum(best[boxes], value)
    for cand, at in [(lin, every)] + candidates:  # last: no point of the box meets every row's bound
        still = ~(best[at] > 0)
        if still.any():
            s, boxes = np.nonzero(still)[0], at[still]
            empty = clip_empty(LinearBound(cand.coef[s], cand.const[s], cand.slack[s]), lo[boxes], hi[boxes])
            best[boxes[empty]] = np.inf  # proved, with no bound value to report
    return best


def clip_empty(lin: LinearBound, lo: np.ndarray, hi: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Per box, True if no x in it has every row's linear lower bound <= 0 (so no x meets the clause).

    Row j needs a_j . x + c_j - s_j <= 0, so a_ji x_i <= -(c_j - s_j + sum_{k != i} min_box a_jk x_k):
    every row and dim bounds x_i from one side; the box shrinks to those bounds (rounded outward) a
    few times, each time re-minimising over the smaller box; it is empty once some dim's bounds cross.
    (The verifier's clipping, redone rigorously.)"""
    from verifier.certificate.rigorous import U, down, up

    lo, hi = lo.copy(), hi.copy()
    coef = lin.coef
    empty = np.zeros(lo.shape[0], bool)
    for _ in range(rounds):
        rowmin = lin.box_minimum(lo, hi)  # (B, R) rigorous lower bound of c - s + sum_k m_k
        m = np.minimum(coef * lo[:, None, :], coef * hi[:, None, :])  # (B, R, n)
        rest = down(rowmin[..., None] - m, 2 * U * (np.abs(m) + np.abs(rowmin[..., None])))  # <= sum_{k != i}
        with np.errstate(divide="ignore", invalid="ignore"):
            q_up, q_dn = up(-rest / coef, 2 * U * np.abs(rest / coef)), down(-rest / coef, 2 * U * np.abs(rest / coef))
        ok = np.isfinite(q_up) & np.isfinite(q_dn)
        new_hi = np.where((coef > 0) & ok, q_up, np.inf).min(1)
        new_lo = np.where((coef < 0) & ok, q_dn, -np.inf).max(1)
        lo, hi = np.maximum(lo, new_lo), np.minimum(hi, new_hi)
        crossed = (lo > hi).any(1)
        empty |= crossed
        if crossed.all():
            break
        lo[crossed], hi[crossed] = 0.0, 0.0  # finished; keep the arithmetic tame
    return empty


def _keep_better(lin: Optional[LinearBound], row_lb: Optional[np.ndarray], cand: LinearBound, cand_lb: np.ndarray,
                 at: np.ndarray) -> tuple[LinearBound, np.ndarray]:
    """Per (box, row), the linear bound with the larger lower bound: `cand` covers the boxes `at`."""
    if lin is None or row_lb is None:
        return cand, cand_lb
    better = cand_lb > row_lb[at]
    for name in ("coef", "const", "slack"):
        mine, theirs = getattr(lin, name), getattr(cand, name)
        sel = better.reshape(better.shape + (1,) * (mine.ndim - 2))
        mine[at] = np.where(sel, theirs, mine[at])
    row_lb[at] = np.maximum(row_lb[at], cand_lb)
    return lin, row_lb


def _ibp(layers: tuple[Layer, ...], lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rigorous interval bounds of every value: bounds[j] is the input of layers[j] (bounds[-1] the last output)."""
    bounds = [(lo, hi)]
    for layer in layers:
        bounds.append(_interval(layer, *bounds[-1]))
    return bounds


def _interval(layer: Layer, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(layer, Affine):
        return affine_interval(layer.W, layer.b, lo, hi)
    if isinstance(layer, Divide):
        return divide_interval(layer.c, lo, hi)
    return relu_interval(lo, hi)


def _crown_intermediate(layers: tuple[Layer, ...], lo: np.ndarray, hi: np.ndarray,
                        strategies: tuple[str, ...] = ("adaptive",), signs: Optional[list[np.ndarray]] = None,
                        prior: Optional[list[Optional[tuple[np.ndarray, np.ndarray]]]] = None,
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interval bounds of every value: IBP, intersected with forward linear bounds (few inputs) and,
    on relu inputs, with CROWN's (CROWN's own slopes). All three are sound, so is their intersection.

    With `signs` (per relu layer (B, width): +1 z >= 0, -1 z <= 0, 0 free), the bounds hold for the
    points of each box that meet its decisions: each relu input's bounds are clipped at 0 by its
    decisions before anything later uses them (then lower > upper somewhere: no such point). `prior`
    (per relu layer, None or bounds (1 or B, width) that hold on the whole box) is intersected in too."""
    bounds = [(lo, hi)]
    seen_relu = False
    relu_index = 0
    xmag = np.maximum(np.abs(lo), np.abs(hi))
    forward = ForwardBounds.identity(lo.shape[0], lo.shape[1]) if lo.shape[1] <= FORWARD_MAX_INPUTS else None
    for t, layer in enumerate(layers):
        l, h = bounds[t]
        if isinstance(layer, Relu):
            if seen_relu:  # before the first relu, interval bounds of an affine chain are CROWN's anyway
                # CROWN on the neurons some box still has unstable (the others' relaxations are exact)
                cols = np.nonzero(((l < 0) & (h > 0)).any(0))[0]
                eye = np.eye(layer.width)[cols]
                for strategy in strategies if cols.size else ():
                    lin = _backward(layers, bounds, t, np.vstack([eye, -eye]), _slopes(layers, bounds, t, strategy))
                    both = lin.box_minimum(lo, hi)
                    # Only where the box itself has the neuron unstable, as when bounding the box alone: a
                    # leaf's bound must not depend on which other leaves share its batch (tighter bounds
                    # on a neuron stable anyway can still loosen the objective's bound, see SLOPES).
                    own = (l[:, cols] < 0) & (h[:, cols] > 0)
                    l, h = l.copy(), h.copy()
                    l[:, cols] = np.where(own, np.maximum(l[:, cols], both[:, :cols.size]), l[:, cols])
                    h[:, cols] = np.where(own, np.minimum(h[:, cols], -both[:, cols.size:]), h[:, cols])
                    bounds[t] = (l, h)
            if prior is not None and prior[relu_index] is not None:
                pl, ph = prior[relu_index]  # type: ignore[misc]
                l, h = np.maximum(l, pl), np.minimum(h, ph)
                bounds[t] = (l, h)
            if signs is not None:
                s = signs[relu_index]
                l, h = np.where(s > 0, np.maximum(l, 0.0), l), np.where(s < 0, np.minimum(h, 0.0), h)
                bounds[t] = (l, h)
            relu_index += 1
            seen_relu = True
        nxt = _interval(layer, l, h)
        if forward is not None:
            if isinstance(layer, Affine):
                forward = forward.affine(layer.W, layer.b, xmag)
            elif isinstance(layer, Divide):
                forward = forward.divide(layer.c, xmag, np.maximum(np.abs(l), np.abs(h)))
            else:
                forward = forward.relu(l, h, xmag)
            fl, fh = forward.interval(lo, hi)
            nxt = (np.maximum(nxt[0], fl), np.minimum(nxt[1], fh))
        bounds.append(nxt)
    return bounds


# Lower slopes of relus tried for every bound (each gives a sound bound; the best is kept): CROWN's
# adaptive choice alone is not monotone in the intermediate bounds, so tighter bounds than the
# verifier's can still give a looser objective bound; a few fixed alternatives make up for it.
SLOPES = ("adaptive", "zero", "upper")


def _slopes(layers: tuple[Layer, ...], bounds: list[tuple[np.ndarray, np.ndarray]], at: int,
            strategy: str) -> Optional[list[np.ndarray]]:
    """Per relu layer before `at`, lower slopes (B, 1, n) by `strategy` (None: CROWN's adaptive)."""
    if strategy == "adaptive":
        return None
    out = []
    for j, layer in enumerate(layers[:at]):
        if isinstance(layer, Relu):
            l, h = bounds[j]
            a = np.zeros_like(l) if strategy == "zero" else np.clip(h / np.where(h > l, h - l, 1.0), 0.0, 1.0)
            out.append(a[:, None, :])
    return out


def _backward(layers: tuple[Layer, ...], bounds: list[tuple[np.ndarray, np.ndarray]], at: int, rows: np.ndarray,
              alphas: Optional[list[np.ndarray]]) -> LinearBound:
    """Linear lower bounds of rows . value[at] in terms of the input, back through layers[:at]."""
    return _back_through(layers, bounds, at, LinearBound.rows(bounds[0][0].shape[0], rows), alphas)


def _back_through(layers: tuple[Layer, ...], bounds: list[tuple[np.ndarray, np.ndarray]], at: int,
                  lin: LinearBound, alphas: Optional[list[np.ndarray]],
                  betas: Optional[list[np.ndarray]] = None) -> LinearBound:
    """`lin` (a linear bound of value[at]) carried back through layers[:at] to the input, with the relu slopes
    `alphas` (None: CROWN's adaptive) and, for ReLU-split leaves, signed multipliers `betas` subtracted from each
    relu's coefficients (rounding is monotone there: no error term needed, see relu_check)."""
    relu_index = sum(isinstance(layer, Relu) for layer in layers[:at])
    for j in range(at - 1, -1, -1):
        layer = layers[j]
        l, h = bounds[j]
        if isinstance(layer, Affine):
            lin = lin.through_affine(layer.W, layer.b, np.maximum(np.abs(l), np.abs(h)))
        elif isinstance(layer, Divide):
            lin = lin.through_divide(layer.c, np.maximum(np.abs(l), np.abs(h)))
        else:
            relu_index -= 1
            lin = lin.through_relu(l, h, None if alphas is None else alphas[relu_index])
            if betas is not None:
                lin = LinearBound(lin.coef - betas[relu_index][:, None, :], lin.const, lin.slack)
    return lin


def dual_weights(lin: LinearBound, lo: np.ndarray, hi: np.ndarray, steps: int = 100) -> np.ndarray:
    """Nonnegative row weights (B, R) that make the weighted rows' lower bound large: mirror ascent on
    the concave dual function (any weights are sound; these are only a good guess)."""
    coef, const = lin.coef, lin.const - lin.slack
    B, R, _ = coef.shape
    lam = np.full((B, R), 1.0 / R)
    best, best_val = lam.copy(), np.full(B, -np.inf)
    for step in range(steps):
        a = np.einsum("br,brn->bn", lam, coef)
        val = (lam * const).sum(1) + np.minimum(a * lo, a * hi).sum(1)
        improved = val > best_val
        best[improved], best_val[improved] = lam[improved], val[improved]
        x = np.where(a > 0, lo, hi)
        grad = const + np.einsum("brn,bn->br", coef, x)
        grad = grad / np.maximum(np.abs(grad).max(1, keepdims=True), 1e-12)
        lam = lam * np.exp(2.0 / np.sqrt(1.0 + step) * grad)
        lam = lam / lam.sum(1, keepdims=True)
    return best
