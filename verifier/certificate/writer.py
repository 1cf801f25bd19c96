"""Assemble and write the certificate of an `unsat` (`verify --certificate FILE`), optionally check it.

Per (property, clause) root: the split tree of the input-split search that proved it, or, for a
clause the bounds closed before any branching, a tree of one leaf (the property's box) with the
stage that closed it.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from verifier.certificate.format import (
    ALPHA, CROWN, IBP, RELU_BETA, RELU_CROWN, RELU_EMPTY, Certificate, ReluRootProof, RootProof, sha256_file,
    write_certificate,
)


@dataclass(frozen=True)
class TreeProof:
    """A root proved by input splitting: the search's recorder and its rows' weights (r, k)."""

    recorder: Any  # verifier.certificate.recorder.SplitRecorder
    mix: np.ndarray


@dataclass(frozen=True)
class ReluTreeProof:
    """A root proved by ReLU splitting: the search's recorder (its proved domains)."""

    recorder: Any  # verifier.certificate.relu_recorder.ReluSplitRecorder


@dataclass(frozen=True)
class StageProof:
    """A root closed by the bounds on the whole box: ibp / crown / alpha."""

    method: str
    rows: int


def refine_uncheckable(proof: TreeProof, model_path: str, lower: np.ndarray, upper: np.ndarray, C: np.ndarray,
                       d: np.ndarray, seconds: float = 60.0, max_rounds: int = 12) -> int:
    """Split the leaves closed with intermediate bounds optimised per layer (slopes the format does not
    carry) or by clipping, until the checker's own bounds prove them, halving the widest dim (relative
    to the root box) per round, within `seconds`; the splits go into the recorder. Returns the leaves
    still unproved.

    Only the layer-alpha member of the portfolio closes boxes that way, often the root box at once
    (ACAS Xu 5_8 prop_3); clipping cuts off slabs, thin in one dim and as wide as their parent in the
    others, proved by the parent's linear bounds, which the checker's bounds on the slab itself do not
    always match (reach_prob_density gcas). A few more splits make the proof checkable."""
    from verifier.certificate.checker import leaf_boxes, leaf_margins
    from verifier.certificate.format import CLIP, CROWN, LAYER_ALPHA
    from verifier.certificate.network import Affine, load_chain

    rec = proof.recorder
    _, _, kind, _, _ = rec.tree()
    todo = rec.leaf_ids()[np.isin(kind, (LAYER_ALPHA, CLIP))]
    if not todo.size:
        return 0
    chain = load_chain(model_path)
    objective = (Affine(np.asarray(C, np.float64), np.asarray(d, np.float64)),
                 Affine(np.asarray(proof.mix, np.float64), np.zeros(proof.mix.shape[0])))
    width = np.maximum(upper - lower, 1e-300)
    kind_of = np.full(rec.count, 255, np.int64)
    kind_of[rec.leaf_ids()] = kind
    deadline = time.monotonic() + seconds
    for _ in range(max_rounds + 1):
        dim, point, kind, _, _ = rec.tree()
        lo, hi = leaf_boxes(RootProof(0, 0, dim, point, kind, proof.mix), lower, upper, "")
        position = {int(i): j for j, i in enumerate(rec.leaf_ids())}
        rows = np.array([position[int(i)] for i in todo], dtype=np.int64)
        margin = np.concatenate([leaf_margins(chain, objective, lo[rows[k:k + 1024]], hi[rows[k:k + 1024]])
                                 for k in range(0, rows.size, 1024)])
        proved = margin > 0
        rec.proved(todo[proved], np.full(int(proved.sum()), CROWN))
        todo, rows = todo[~proved], rows[~proved]
        if not todo.size or time.monotonic() > deadline:
            break
        split_dim = ((hi[rows] - lo[rows]) / width).argmax(1)
        mid = (lo[rows, split_dim] + hi[rows, split_dim]) / 2
        left, right = rec.split(todo, split_dim, mid)
        children = np.concatenate([np.asarray(left), np.asarray(right)])
        halves = np.concatenate([kind_of[todo]] * 2)  # the halves of a closed box are closed the same way
        rec.proved(children, halves)
        kind_of = _extend(kind_of, children, halves)
        todo = children
    return int(todo.size)


def _extend(table: np.ndarray, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.concatenate([table, np.full(max(0, int(ids.max()) + 1 - table.size), 255, np.int64)])
    out[ids] = values
    return out


def relu_root(p: int, c: int, proof: ReluTreeProof, model_path: str, spec: Any = None,
              prune: bool = True, slopes: tuple = ()) -> ReluRootProof:  # type: ignore[type-arg]
    """The ReLU-split root of a search's proved domains. With `spec` and `prune`, the leaves that the
    checker's own plain CROWN proves drop their slopes and multipliers (kind relu-crown)."""
    rec = proof.recorder
    layer, neuron, order = rec.tree()
    leaves = [rec.leaves[i] for i in order]
    kind = np.array([RELU_EMPTY if leaf.empty else RELU_BETA for leaf in leaves], np.int64)
    weights = np.array([leaf.weights for leaf in leaves], np.float64)
    if prune and spec is not None:
        kind = _prune(model_path, spec, p, c, layer, neuron, kind, weights, slopes)
    carry = np.nonzero(kind == RELU_BETA)[0]
    n_layers = len(leaves[0].alphas)
    alphas = tuple(np.array([leaves[i].alphas[j] for i in carry], np.float32).reshape(carry.size, -1)
                   for j in range(n_layers)) if carry.size else ()
    beta = np.concatenate([_path_betas(leaves[i], path) for i, path in zip(carry, _paths(layer, neuron, carry))]) \
        if carry.size else np.zeros(0, np.float32)
    return ReluRootProof(p, c, layer, neuron, kind, weights, carry.astype(np.int64), alphas, beta)


def _paths(layer: np.ndarray, neuron: np.ndarray, leaves: np.ndarray) -> list[list[tuple[int, int, int]]]:
    """The decisions of the given leaves (node-order indices), root first (the order `beta` is stored in)."""
    from verifier.certificate.relu_check import leaf_paths

    widths = [int(neuron.max()) + 1] * (int(layer.max()) + 1) if layer.size and layer.max() >= 0 else []
    paths = leaf_paths(ReluRootProof(0, 0, layer, neuron, np.zeros(0), np.zeros((0, 0))), widths, "")
    return [paths[i] for i in leaves]


def _path_betas(leaf: Any, path: list[tuple[int, int, int]]) -> np.ndarray:
    """The leaf's multipliers (recorded per decision) in its path's order."""
    of = {(j, c): b for (j, c, _), b in zip(leaf.decisions, leaf.betas)}
    return np.array([of[(j, c)] for j, c, _ in path], np.float32)


def _prune(model_path: str, spec: Any, p: int, c: int, layer: np.ndarray, neuron: np.ndarray, kind: np.ndarray,
           weights: np.ndarray, slopes: tuple = ()) -> np.ndarray:  # type: ignore[type-arg]
    """Kinds with relu-crown where the checker's own bounds (no slopes, no multipliers) prove the leaf."""
    from verifier.certificate.checker import Invalid
    from verifier.certificate.network import Affine, UnsupportedModel, load_chain
    from verifier.certificate.relu_check import leaf_batches, leaf_margins, root_prior

    try:
        chain = load_chain(model_path)
    except UnsupportedModel:
        return kind
    prop = spec.properties[p]
    root = ReluRootProof(p, c, layer, neuron, kind, weights)
    layers = chain.layers + (Affine(np.asarray(prop.clauses[c].C, np.float64), np.asarray(prop.clauses[c].d, np.float64)),)
    lo, hi = np.asarray(prop.lower, np.float64), np.asarray(prop.upper, np.float64)
    out = kind.copy()
    try:
        prior = root_prior(chain, lo, hi, slopes, p)
        for at, signs, inherited in leaf_batches(layers, root, chain.relu_widths, lo, hi, prior):
            margin = leaf_margins(layers, np.tile(lo, (at.size, 1)), np.tile(hi, (at.size, 1)), signs, weights[at],
                                  None, None, np.zeros(at.size, bool), inherited)
            out[at[(margin > 0) & (kind[at] == RELU_BETA)]] = RELU_CROWN
    except Invalid:
        return kind
    return out


def build_certificate(model_path: str, spec_path: str, proofs: dict[tuple[int, int], Any],
                      relu_widths: tuple[int, ...], version: str, spec: Any = None, prune: bool = True,
                      intermediate: Optional[dict[int, Any]] = None) -> Certificate:
    roots = []
    for (p, c), proof in sorted(proofs.items()):
        if isinstance(proof, ReluTreeProof):
            roots.append(relu_root(p, c, proof, model_path, spec, prune, (intermediate or {}).get(p, ())))
        elif isinstance(proof, TreeProof):
            if spec is not None:
                from verifier.certificate.network import UnsupportedModel

                prop = spec.properties[p]
                try:
                    refine_uncheckable(proof, model_path, np.asarray(prop.lower, np.float64),
                                       np.asarray(prop.upper, np.float64), prop.clauses[c].C, prop.clauses[c].d)
                except UnsupportedModel:  # the checker cannot read the model: nothing to make checkable
                    pass
            dim, point, kind, alpha_leaf, alphas = proof.recorder.tree(len(relu_widths))
            roots.append(RootProof(p, c, dim, point, kind, np.asarray(proof.mix, np.float64), alpha_leaf, tuple(alphas)))
        else:
            code = {"ibp": IBP, "crown": CROWN}.get(proof.method, ALPHA)
            roots.append(RootProof(p, c, np.array([-1]), np.zeros(1), np.array([code]), np.eye(proof.rows)))
    return Certificate(sha256_file(model_path), sha256_file(spec_path), tuple(roots), relu_widths,
                       {"verifier": version}, dict(intermediate or {}))


def write_and_check(path: str, model_path: str, spec_path: str, proofs: dict[tuple[int, int], Any],
                    relu_widths: tuple[int, ...], version: str, check: bool, spec: Any = None,
                    intermediate: Optional[dict[int, Any]] = None) -> dict[str, Any]:
    """Write the certificate; the result JSON's "certificate" object (checked by the independent
    checker when `check`). With `spec`, leaves closed by layer-wise alpha are split until checkable."""
    start = time.monotonic()
    cert = build_certificate(model_path, spec_path, proofs, relu_widths, version, spec, intermediate=intermediate)
    write_certificate(path, cert)
    report: dict[str, Any] = {"path": path, "leaves": cert.leaves, "bytes": os.path.getsize(path),
                              "write_seconds": round(time.monotonic() - start, 4), "checked": False}
    if check:
        from verifier.certificate.checker import check_certificate
        from verifier.certificate.network import UnsupportedModel

        try:
            outcome = check_certificate(model_path, spec_path, path)
        except UnsupportedModel as err:  # the verifier reads more ops than the checker
            report.update(checked=False, valid=None, check_message=f"not checked: {err}")
            return report
        report.update(checked=True, valid=outcome.valid, check_message=outcome.message,
                      check_seconds=round(outcome.seconds, 4))
    return report


def no_certificate(reason: str, path: Optional[str]) -> dict[str, Any]:
    return {"path": None, "leaves": 0, "checked": False, "message": reason, "requested": path}
