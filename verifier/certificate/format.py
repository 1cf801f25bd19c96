"""The certificate file: `verifier.certificate/1`, one compressed numpy archive (.npz).

Contents (no pickled objects; `numpy.load(path, allow_pickle=False)` reads it):
- `header`: a JSON string: {"format": "verifier.certificate/1", "model_sha256", "spec_sha256",
  "semantics": "real", "verifier": version, "relu_widths": [...], "roots": [{"property", "clause",
  "leaves", "nodes"}, ...]}. One root per (property, clause) of the spec: every clause of every
  property needs one for the certificate to prove `unsat`.
- per root i, arrays named `r{i}_...`:
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
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "verifier.certificate/1"
KINDS = ("ibp", "crown", "alpha", "clip", "layer-alpha")
IBP, CROWN, ALPHA, CLIP, LAYER_ALPHA = range(5)


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
class Certificate:
    model_sha256: str
    spec_sha256: str
    roots: tuple[RootProof, ...]
    relu_widths: tuple[int, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

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
                         "nodes": int(r.dim.shape[0])} for r in cert.roots]}
    arrays: dict[str, np.ndarray] = {"header": np.array(json.dumps(header))}
    for i, r in enumerate(cert.roots):
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


def read_certificate(path: str) -> Certificate:
    """Read a certificate; CertificateFileError names what is wrong with the file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise CertificateFileError(f"{path}: not a readable certificate ({type(err).__name__}: {err})") from None
    try:
        header = json.loads(str(arrays["header"]))
        if header.get("format") != FORMAT:
            raise CertificateFileError(f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
        roots = []
        for i, meta in enumerate(header["roots"]):
            n_alpha = len(header["relu_widths"]) if f"r{i}_alpha_leaf" in arrays else 0
            roots.append(RootProof(
                int(meta["property"]), int(meta["clause"]), arrays[f"r{i}_dim"].astype(np.int64),
                arrays[f"r{i}_point"].astype(np.float64), arrays[f"r{i}_kind"].astype(np.int64),
                arrays[f"r{i}_mix"].astype(np.float64),
                arrays.get(f"r{i}_alpha_leaf", np.zeros(0, np.int32)).astype(np.int64),
                tuple(arrays[f"r{i}_alpha{j}"].astype(np.float64) for j in range(n_alpha))))
        info = {k: v for k, v in header.items() if k not in ("roots", "model_sha256", "spec_sha256", "relu_widths")}
        return Certificate(str(header["model_sha256"]), str(header["spec_sha256"]), tuple(roots),
                           tuple(int(w) for w in header["relu_widths"]), info)
    except CertificateFileError:
        raise
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
        raise CertificateFileError(f"{path}: malformed certificate ({type(err).__name__}: {err})") from None
