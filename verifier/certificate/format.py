"""The certificate file: `verifier.certificate/2`, one compressed numpy archive (.npz).

Contents (no pickled objects; `numpy.load(path, allow_pickle=False)` reads it):
- `header`: a JSON string: {"format": "verifier.certificate/2", "model_sha256", "spec_sha256",
  "semantics": "real", "verifier": version, "relu_widths": [...], "roots": [{"property", "clause",
  "leaves", "nodes", "split"}, ...]}. One root per (property, clause) of the spec: every clause of
  every property needs one for the certificate to prove `unsat`. "split" is "input" (the default,
  and the only kind of version 1, which is read too) or "relu".
- per input-split root i, arrays named `r{i}_...`:
  - `dim` (N,) int16, `point` (N,) float64: the split tree in breadth-first order. Node 0 is the
    property's input box; a node with dim >= 0 is split at x[dim] = point into two children, and
    the children of the k-th split node (in this order) are nodes 2k+1 (x[dim] <= point) and 2k+2
    (x[dim] >= point). Nodes with dim = -1 are leaves; the leaves cover the box by construction.
  - `kind` (leaves,) uint8: what closed each leaf (in node order): 0 IBP, 1 CROWN, 2 CROWN with
    optimised relu slopes (alpha), 3 clipping (the rows' linear bounds leave no point of the leaf),
    4 CROWN on intermediate bounds optimised layer by layer (alpha-CROWN per layer; those slopes are
    not carried, so the checker re-proves such a leaf only where its own CROWN suffices).
    A leaf is proved when some nonnegative combination of the rows below is positive on all of it.
  - `mix` (r, k) float64, nonnegative: the objective rows are mix @ (C y + d) for the clause's k rows
    C y + d <= 0 (the verifier bounds the rows themselves and their averages).
  - `alpha_leaf` (a,) int32: the leaves (indices into `kind`) that carry slopes, and `alpha{j}`
    (a, r, width_j) float32 for the j-th relu layer: the lower slope per objective row and neuron.
- per ReLU-split root i (version 2), arrays named `r{i}_...`; the root's region is the property's box:
  - `layer` (N,) int16, `neuron` (N,) int32: the split tree in breadth-first order. A node with
    layer >= 0 splits on the sign of the pre-activation z of relu layer `layer` (counted from the input,
    in the model's order), flat index `neuron`; the children of the k-th split node are nodes 2k+1
    (z >= 0, active) and 2k+2 (z <= 0, inactive). Nodes with layer = -1 are leaves, whose domain is the
    box's points meeting every decision on their path; every point of the box meets some leaf's.
  - `kind` (leaves,) uint8: 5 plain CROWN (the checker's own slopes, no multipliers), 6 CROWN with the
    carried slopes and multipliers (alpha/beta-CROWN), 7 empty (the decisions' clamped pre-activation
    bounds cross: no point of the box meets them).
  - `weights` (leaves, k) float64, nonnegative: per leaf, the objective weights @ (C y + d), whose
    positive lower bound on the leaf's domain proves it (a clause row, an average of rows, or a mixture).
  - `alpha_leaf` (a,) int32: the leaves (of kind 6) that carry slopes and multipliers; `alpha{j}`
    (a, width_j) float32: the lower relu slope of every neuron of the j-th relu layer (any value in
    [0, 1] is sound); `beta` float32, nonnegative: the multipliers of those leaves' decisions, leaf
    after leaf (in `alpha_leaf` order), each leaf's in its path's order from the root.
- per property p with ReLU-split roots (version 2; the header's "intermediate" lists {"property",
  "layers"}): slopes for the checker's pre-activation bounds on the property's box (as the verifier's
  alpha-CROWN per layer tightens them), shared by the property's clauses. Per relu layer t listed:
  `p{p}_rows{t}` (R,) int32, the neurons bounded, and `p{p}_slope{t}_{j}` (2R, width_j) float32 for
  each earlier relu layer j: the lower slopes of the R lower bounds, then of the R upper bounds.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "verifier.certificate/2"
READABLE = ("verifier.certificate/1", FORMAT)
KINDS = ("ibp", "crown", "alpha", "clip", "layer-alpha", "relu-crown", "relu-alpha-beta", "relu-empty")
IBP, CROWN, ALPHA, CLIP, LAYER_ALPHA, RELU_CROWN, RELU_BETA, RELU_EMPTY = range(8)


class CertificateFileError(Exception):
    """The file is not a readable certificate of this format (bad input)."""


@dataclass(frozen=True)
class RootProof:
    """The proof of one (property, clause): its split tree and per-leaf evidence."""

    property: int
    clause: int
    dim: np.ndarray
    point: np.ndarray
    kind: np.ndarray
    mix: np.ndarray
    alpha_leaf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    alphas: tuple[np.ndarray, ...] = ()

    @property
    def leaves(self) -> int:
        return int(self.kind.shape[0])


@dataclass(frozen=True)
class ReluRootProof:
    """The proof of one (property, clause) by ReLU splitting: its sign-split tree and per-leaf evidence."""

    property: int
    clause: int
    layer: np.ndarray
    neuron: np.ndarray
    kind: np.ndarray
    weights: np.ndarray
    alpha_leaf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    alphas: tuple[np.ndarray, ...] = ()
    beta: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def leaves(self) -> int:
        return int(self.kind.shape[0])


@dataclass(frozen=True)
class Certificate:
    model_sha256: str
    spec_sha256: str
    roots: tuple[RootProof | ReluRootProof, ...]
    relu_widths: tuple[int, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    # property -> ((relu layer t, rows (R,), slopes per earlier relu layer (2R, width_j)), ...)
    intermediate: dict[int, tuple[tuple[int, np.ndarray, tuple[np.ndarray, ...]], ...]] = field(default_factory=dict)

    @property
    def leaves(self) -> int:
        return sum(r.leaves for r in self.roots)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_certificate(path: str, cert: Certificate) -> None:
    """Write `cert` to `path` (whole file at once: a failed write leaves no partial certificate)."""
    import os
    import tempfile

    header = {"format": FORMAT, "model_sha256": cert.model_sha256, "spec_sha256": cert.spec_sha256,
              "semantics": "real", "relu_widths": list(cert.relu_widths), **cert.info,
              "roots": [{"property": r.property, "clause": r.clause, "leaves": r.leaves,
                         "nodes": int((r.layer if isinstance(r, ReluRootProof) else r.dim).shape[0]),
                         "split": "relu" if isinstance(r, ReluRootProof) else "input"} for r in cert.roots]}
    header["intermediate"] = [{"property": p, "layers": [t for t, _, _ in slopes]}
                              for p, slopes in sorted(cert.intermediate.items())]
    arrays: dict[str, np.ndarray] = {"header": np.array(json.dumps(header))}
    for p, slopes in cert.intermediate.items():
        for t, rows, tables in slopes:
            arrays[f"p{p}_rows{t}"] = np.asarray(rows).astype(np.int32)
            for j, table in enumerate(tables):
                arrays[f"p{p}_slope{t}_{j}"] = np.asarray(table).astype(np.float32)
    for i, r in enumerate(cert.roots):
        if isinstance(r, ReluRootProof):
            arrays.update(_relu_arrays(i, r))
            continue
        arrays[f"r{i}_dim"] = r.dim.astype(np.int16)
        arrays[f"r{i}_point"] = r.point.astype(np.float64)
        arrays[f"r{i}_kind"] = r.kind.astype(np.uint8)
        arrays[f"r{i}_mix"] = r.mix.astype(np.float64)
        if r.alpha_leaf.size:
            arrays[f"r{i}_alpha_leaf"] = r.alpha_leaf.astype(np.int32)
            for j, a in enumerate(r.alphas):
                arrays[f"r{i}_alpha{j}"] = a.astype(np.float32)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _relu_arrays(i: int, r: ReluRootProof) -> dict[str, np.ndarray]:
    out = {f"r{i}_layer": r.layer.astype(np.int16), f"r{i}_neuron": r.neuron.astype(np.int32),
           f"r{i}_kind": r.kind.astype(np.uint8), f"r{i}_weights": r.weights.astype(np.float64)}
    if r.alpha_leaf.size:
        out[f"r{i}_alpha_leaf"] = r.alpha_leaf.astype(np.int32)
        out[f"r{i}_beta"] = r.beta.astype(np.float32)
        for j, a in enumerate(r.alphas):
            out[f"r{i}_alpha{j}"] = a.astype(np.float32)
    return out


def _relu_root(i: int, meta: dict[str, Any], arrays: dict[str, np.ndarray], n_layers: int) -> ReluRootProof:
    carried = f"r{i}_alpha_leaf" in arrays
    return ReluRootProof(
        int(meta["property"]), int(meta["clause"]), arrays[f"r{i}_layer"].astype(np.int64),
        arrays[f"r{i}_neuron"].astype(np.int64), arrays[f"r{i}_kind"].astype(np.int64),
        arrays[f"r{i}_weights"].astype(np.float64),
        arrays.get(f"r{i}_alpha_leaf", np.zeros(0, np.int32)).astype(np.int64),
        tuple(arrays[f"r{i}_alpha{j}"].astype(np.float64) for j in range(n_layers if carried else 0)),
        arrays.get(f"r{i}_beta", np.zeros(0, np.float32)).astype(np.float64))


def read_certificate(path: str) -> Certificate:
    """Read a certificate; CertificateFileError names what is wrong with the file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise CertificateFileError(f"{path}: not a readable certificate ({type(err).__name__}: {err})") from None
    try:
        header = json.loads(str(arrays["header"]))
        if header.get("format") not in READABLE:
            raise CertificateFileError(f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
        roots: list[RootProof | ReluRootProof] = []
        for i, meta in enumerate(header["roots"]):
            if meta.get("split", "input") == "relu":
                roots.append(_relu_root(i, meta, arrays, len(header["relu_widths"])))
                continue
            n_alpha = len(header["relu_widths"]) if f"r{i}_alpha_leaf" in arrays else 0
            roots.append(RootProof(
                int(meta["property"]), int(meta["clause"]), arrays[f"r{i}_dim"].astype(np.int64),
                arrays[f"r{i}_point"].astype(np.float64), arrays[f"r{i}_kind"].astype(np.int64),
                arrays[f"r{i}_mix"].astype(np.float64),
                arrays.get(f"r{i}_alpha_leaf", np.zeros(0, np.int32)).astype(np.int64),
                tuple(arrays[f"r{i}_alpha{j}"].astype(np.float64) for j in range(n_alpha))))
        intermediate = {}
        for entry in header.get("intermediate", []):
            p = int(entry["property"])
            intermediate[p] = tuple(
                (int(t), arrays[f"p{p}_rows{t}"].astype(np.int64),
                 tuple(arrays[f"p{p}_slope{t}_{j}"].astype(np.float64) for j in range(int(t))))
                for t in entry["layers"])
        info = {k: v for k, v in header.items()
                if k not in ("roots", "model_sha256", "spec_sha256", "relu_widths", "intermediate")}
        return Certificate(str(header["model_sha256"]), str(header["spec_sha256"]), tuple(roots),
                           tuple(int(w) for w in header["relu_widths"]), info, intermediate)
    except CertificateFileError:
        raise
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
        raise CertificateFileError(f"{path}: malformed certificate ({type(err).__name__}: {err})") from None
