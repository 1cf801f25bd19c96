"""Certificates of ReLU-split proofs: `verify --bab relu --certificate` on generated nets (several
clauses of several rows) writes a certificate the independent checker finds valid; corrupted ones
are invalid, naming the leaf; and the checker's leaf bounds are true lower bounds on sampled points
that meet the leaf's decisions."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.bab.nets import Net, exact_min, random_net, write_onnx, write_vnnlib
from verifier.api import verify
from verifier.certificate.checker import check_certificate
from verifier.certificate.format import (
    RELU_BETA, RELU_CROWN, Certificate, ReluRootProof, read_certificate, write_certificate,
)
from verifier.certificate.network import Affine, load_chain
from verifier.certificate.relu_check import leaf_batches, leaf_margins, leaf_paths, root_prior
from verifier.certificate.relu_recorder import ReluLeaf, ReluSplitRecorder

ROOT = Path(__file__).resolve().parents[2]


def _float32(net: Net) -> Net:
    return Net(tuple((W.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64))
                     for W, b in net.layers))


def _instance(tmp: Path, seed: int, margin: float = 0.01) -> tuple[str, str]:
    """A 2-input net with 3 outputs and a spec of two clauses of two rows each (`y0 >= t and y1 >= t`
    or `y1 >= s and y2 >= s`) that no input meets, by `margin` exactly (oracle)."""
    rng = np.random.default_rng(seed)
    net = _float32(random_net(rng, 2, [10, 10], 3))
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    clauses = []
    for a, b in ((0, 1), (1, 2)):
        C = np.zeros((2, 3))
        C[0, a], C[1, b] = -1.0, -1.0
        m, _ = exact_min(net, lo, hi, C, np.zeros(2))
        t = margin - m
        clauses.append(f"(and (>= Y_{a} {t!r}) (>= Y_{b} {t!r}))")
    model = write_onnx(net, tmp / f"net{seed}.onnx")
    spec = write_vnnlib(tmp / f"spec{seed}.vnnlib", lo, hi, 3, ["(assert (or " + " ".join(clauses) + "))"])
    return str(model), str(spec)


def _usable(cert: Certificate) -> bool:
    """Both clauses by ReLU splitting, one with a few leaves, and a leaf with decisions carrying beta."""
    relu = [r for r in cert.roots if isinstance(r, ReluRootProof)]
    if len(relu) != 2 or max(r.leaves for r in relu) < 4:
        return False
    for r in relu:
        paths = leaf_paths(r, [10, 10], "")
        if any(r.kind[i] == RELU_BETA and paths[i] for i in range(r.leaves)):
            return True
    return False


@pytest.fixture(scope="module")
def proved(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    tmp = tmp_path_factory.mktemp("relucert")
    for seed in range(12):
        model, spec = _instance(tmp, seed)
        cert = str(tmp / f"cert{seed}.npz")
        result = verify(model, spec, bab="relu", timeout=60, certificate=cert, check_certificate=True)
        if result.verdict == "unsat" and result.certificate and result.certificate.get("path") \
                and _usable(read_certificate(cert)):
            assert result.certificate["checked"] and result.certificate["valid"], result.certificate
            return model, spec, cert
    pytest.fail("no generated instance needed ReLU splitting with multipliers")


def test_relu_certificate_is_valid(proved: tuple[str, str, str]) -> None:
    model, spec, cert = proved
    outcome = check_certificate(model, spec, cert)
    assert outcome.valid and outcome.message == "valid"
    parsed = read_certificate(cert)
    assert parsed.info["format"] == "verifier.certificate/2"
    for root in parsed.roots:
        assert isinstance(root, ReluRootProof) and root.weights.shape == (root.leaves, 2)
        assert root.alpha_leaf.size == int((root.kind == RELU_BETA).sum())  # slopes only where needed


def test_relu_checker_imports_no_torch(proved: tuple[str, str, str]) -> None:
    model, spec, cert = proved
    code = ("import sys\nfrom verifier.certificate.checker import check_certificate\n"
            f"o = check_certificate({model!r}, {spec!r}, {cert!r})\n"
            "assert o.valid, o.message\nassert 'torch' not in sys.modules, 'torch imported'\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def _carrying_leaf(cert: Certificate) -> tuple[int, int, int]:
    """(root index, leaf index in the root, leaf number in the certificate) of a leaf with decisions
    that carries slopes and multipliers."""
    first = 0
    for r_i, root in enumerate(cert.roots):
        assert isinstance(root, ReluRootProof)
        paths = leaf_paths(root, [10, 10], "")
        for i in range(root.leaves):
            if root.kind[i] == RELU_BETA and paths[i]:
                return r_i, i, first + i
        first += root.leaves
    raise AssertionError("no carrying leaf")


def _with_root(cert_path: str, out: Path, r_i: int, root: ReluRootProof) -> str:
    cert = read_certificate(cert_path)
    roots = cert.roots[:r_i] + (root,) + cert.roots[r_i + 1:]
    write_certificate(str(out), dataclasses.replace(cert, roots=roots))
    return str(out)


def test_changed_multiplier_names_the_leaf(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert_path = proved
    cert = read_certificate(cert_path)
    r_i, i, number = _carrying_leaf(cert)
    root = cert.roots[r_i]
    assert isinstance(root, ReluRootProof)
    paths = leaf_paths(root, [10, 10], "")
    k = int(np.nonzero(root.alpha_leaf == i)[0][0])
    start = sum(len(paths[j]) for j in root.alpha_leaf[:k])
    beta = root.beta.copy()
    beta[start:start + len(paths[i])] = 1e3  # nonnegative, so sound, but far from proving
    bad = _with_root(cert_path, tmp_path / "beta.npz", r_i, dataclasses.replace(root, beta=beta))
    outcome = check_certificate(model, spec, bad)
    assert not outcome.valid and outcome.message.startswith(f"invalid: leaf {number} ")
    beta[start] = -0.5
    bad = _with_root(cert_path, tmp_path / "neg.npz", r_i, dataclasses.replace(root, beta=beta))
    outcome = check_certificate(model, spec, bad)
    assert outcome.message.startswith(f"invalid: leaf {number} ") and "beta" in outcome.message


def test_slope_outside_unit_interval_names_the_leaf(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert_path = proved
    cert = read_certificate(cert_path)
    r_i, i, number = _carrying_leaf(cert)
    root = cert.roots[r_i]
    assert isinstance(root, ReluRootProof)
    alphas = tuple(a.copy() for a in root.alphas)
    alphas[0][int(np.nonzero(root.alpha_leaf == i)[0][0]), 3] = 1.5
    bad = _with_root(cert_path, tmp_path / "alpha.npz", r_i, dataclasses.replace(root, alphas=alphas))
    outcome = check_certificate(model, spec, bad)
    assert not outcome.valid and outcome.message.startswith(f"invalid: leaf {number} ") and "[0, 1]" in outcome.message


def _rebuild(root: ReluRootProof, leaves: list[tuple[list[tuple[int, int, int]], int, np.ndarray, tuple, dict]],
             ) -> ReluRootProof:
    """A root from leaves (path, kind, weights, slopes, multiplier per (layer, neuron)), the tree rebuilt."""
    rec = ReluSplitRecorder()
    rec.leaves = [ReluLeaf(tuple(path), w, False, a, np.zeros(len(path), np.float32)) for path, _, w, a, _ in leaves]
    layer, neuron, order = rec.tree()
    ordered = [leaves[i] for i in order]
    kind = np.array([k for _, k, _, _, _ in ordered])
    carry = np.nonzero(kind == RELU_BETA)[0]
    new_paths = leaf_paths(ReluRootProof(0, 0, layer, neuron, kind, np.zeros((0, 0))), [10, 10], "")
    alphas = tuple(np.array([ordered[i][3][j] for i in carry]) for j in range(2))
    beta = np.concatenate([[ordered[i][4][(j, c)] for j, c, _ in new_paths[i]] for i in carry] + [np.zeros(0)])
    return dataclasses.replace(root, layer=layer, neuron=neuron, kind=kind,
                               weights=np.array([w for _, _, w, _, _ in ordered]), alpha_leaf=carry,
                               alphas=alphas, beta=beta)


def _leaves(root: ReluRootProof) -> list[tuple[list[tuple[int, int, int]], int, np.ndarray, tuple, dict]]:
    paths = leaf_paths(root, [10, 10], "")
    out, pos = [], 0
    for i, path in enumerate(paths):
        alphas, betas = (np.zeros(10), np.zeros(10)), {}
        if root.kind[i] == RELU_BETA:
            k = int(np.nonzero(root.alpha_leaf == i)[0][0])
            alphas = tuple(a[k] for a in root.alphas)
            betas = {(j, c): float(b) for (j, c, _), b in zip(path, root.beta[pos:pos + len(path)])}
            pos += len(path)
        out.append((path, int(root.kind[i]), root.weights[i], alphas, betas))
    return out


def test_rebuilt_tree_stays_valid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    """The leaves alone determine a valid tree (what the writer relies on)."""
    model, spec, cert_path = proved
    cert = read_certificate(cert_path)
    r_i = max(range(len(cert.roots)), key=lambda r: cert.roots[r].leaves)
    root = cert.roots[r_i]
    assert isinstance(root, ReluRootProof)
    good = _with_root(cert_path, tmp_path / "same.npz", r_i, _rebuild(root, _leaves(root)))
    assert check_certificate(model, spec, good).valid


def test_removed_leaf_names_the_leaf(proved: tuple[str, str, str], tmp_path: Path) -> None:
    """A leaf removed (its sibling takes its parent's place, the split dropped): that leaf is not proved."""
    model, spec, cert_path = proved
    cert = read_certificate(cert_path)
    first = 0
    for r_i, root in enumerate(cert.roots):
        assert isinstance(root, ReluRootProof)
        leaves = _leaves(root)
        for i in range(len(leaves) - 1):
            a, b = leaves[i][0], leaves[i + 1][0]
            if a and a[:-1] == b[:-1] and a[-1][:2] == b[-1][:2]:  # siblings
                path, _, w, _, _ = leaves[i]
                merged = (path[:-1], RELU_CROWN, w, (np.zeros(10), np.zeros(10)), {})
                new = _rebuild(root, leaves[:i] + [merged] + leaves[i + 2:])
                bad = _with_root(cert_path, tmp_path / "removed.npz", r_i, new)
                outcome = check_certificate(model, spec, bad)
                at = next(k for k, p in enumerate(leaf_paths(new, [10, 10], "")) if p == path[:-1])
                assert not outcome.valid and outcome.message.startswith(f"invalid: leaf {first + at} ")
                return
        first += root.leaves
    pytest.fail("no sibling leaves")


def test_truncated_tree_and_other_model_are_invalid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert_path = proved
    cert = read_certificate(cert_path)
    root = cert.roots[0]
    assert isinstance(root, ReluRootProof)
    bad = _with_root(cert_path, tmp_path / "cut.npz", 0,
                     dataclasses.replace(root, layer=root.layer[:-1], neuron=root.neuron[:-1]))
    assert "split tree is malformed" in check_certificate(model, spec, bad).message
    other, _ = _instance(tmp_path, 99)
    outcome = check_certificate(other, spec, cert_path)
    assert not outcome.valid and "another model" in outcome.message


def test_bad_preactivation_slopes_are_invalid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert_path = proved
    cert = read_certificate(cert_path)
    (t, rows, tables), = cert.intermediate[0]
    bad_tables = (tables[0] * 0 - 0.25,)
    out = tmp_path / "pre.npz"
    write_certificate(str(out), dataclasses.replace(cert, intermediate={0: ((t, rows, bad_tables),)}))
    outcome = check_certificate(model, spec, str(out))
    assert not outcome.valid and "outside [0, 1]" in outcome.message


# --- soundness of the checker's leaf bounds, on sampled points ----------------------------------

def _net_case(seed: int, tmp: Path) -> tuple[Net, object, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    net = _float32(random_net(rng, 3, [8, 8], 3))
    chain = load_chain(str(write_onnx(net, tmp / f"p{seed}.onnx")))
    centre = rng.uniform(-1, 1, 3)
    radius = rng.uniform(0.2, 1.0, 3)
    C, d = rng.normal(size=(2, 3)), rng.normal(size=2)
    return net, chain, centre - radius, centre + radius, C, d


def _preacts(net: Net, x: np.ndarray) -> list[np.ndarray]:
    out, a = [], x
    for W, b in net.layers[:-1]:
        z = a @ W.T + b
        out.append(z)
        a = np.maximum(z, 0.0)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_leaf_bound_is_a_lower_bound(seed: int, tmp_path: Path) -> None:
    """Random decisions (taken from a point of the box, so the leaf is not empty), random slopes in [0, 1],
    multipliers >= 0 and row weights >= 0, random pre-activation slopes for the box: every sampled point
    meeting the decisions has weights @ (C y + d) >= the checker's bound, and pre-activations within
    the box's bounds."""
    rng = np.random.default_rng(1000 + seed)
    net, chain, lo, hi, C, d = _net_case(seed, tmp_path)
    widths = chain.relu_widths
    x0 = rng.uniform(lo, hi)
    z0 = _preacts(net, x0[None])
    picks = [(int(rng.integers(2)), int(rng.integers(8))) for _ in range(int(rng.integers(1, 4)))]
    signs = [np.zeros((1, w), np.int8) for w in widths]
    for j, c in picks:
        signs[j][0, c] = 1 if z0[j][0, c] >= 0 else -1
    slopes = ((1, np.arange(8), (rng.uniform(0, 1, (16, 8)),)),)
    prior = root_prior(chain, lo, hi, slopes, 0)
    layers = chain.layers + (Affine(C, d),)
    w = rng.uniform(0, 1, (1, 2))
    alphas = [rng.uniform(0, 1, (1, wd)) for wd in widths]
    betas = [rng.exponential(0.5, (1, wd)) * s for s, wd in zip(signs, widths)]
    bound = float(leaf_margins(layers, lo[None], hi[None], signs, w, alphas, betas, np.array([True]), prior)[0])
    plain = float(leaf_margins(layers, lo[None], hi[None], signs, w, None, None, np.array([False]), prior)[0])
    assert not np.isnan(bound) and not np.isnan(plain)
    x = np.concatenate([rng.uniform(lo, hi, (20000, 3)), np.clip(x0 + rng.normal(0, 0.05, (5000, 3)), lo, hi), x0[None]])
    z = _preacts(net, x)
    assert prior is not None and prior[0] is None and prior[1] is not None
    l, h = prior[1]
    assert np.all(z[1] >= l[0]) and np.all(z[1] <= h[0])
    meets = np.ones(x.shape[0], bool)
    for j, c in picks:
        meets &= signs[j][0, c] * z[j][:, c] >= 0
    assert meets[-1] and np.isfinite(bound)  # x0 meets them: the leaf is not empty
    value = (net(x[meets]) @ C.T + d) @ w[0]
    assert np.all(value >= bound - 1e-9), (value.min(), bound)


@pytest.mark.parametrize("seed", range(6))
def test_inherited_bounds_hold_on_each_leaf(seed: int, tmp_path: Path) -> None:
    """On a random sign-split tree, the bounds each leaf inherits (its parent's, intersected down the
    path) hold for every sampled point meeting the leaf's decisions; every sample meets some leaf's."""
    rng = np.random.default_rng(2000 + seed)
    net, chain, lo, hi, C, d = _net_case(seed, tmp_path)
    rec = ReluSplitRecorder()
    paths: list[list[tuple[int, int, int]]] = [[]]
    for _ in range(6):  # split random leaves on random unsplit neurons
        i = int(rng.integers(len(paths)))
        used = {(j, c) for j, c, _ in paths[i]}
        j, c = int(rng.integers(2)), int(rng.integers(8))
        if (j, c) in used:
            continue
        paths[i:i + 1] = [paths[i] + [(j, c, 1)], paths[i] + [(j, c, -1)]]
    rec.leaves = [ReluLeaf(tuple(p), np.ones(2), False, (), np.zeros(len(p))) for p in paths]
    layer, neuron, _ = rec.tree()
    root = ReluRootProof(0, 0, layer, neuron, np.full(len(paths), RELU_CROWN), np.ones((len(paths), 2)))
    tree_paths = leaf_paths(root, chain.relu_widths, "")
    x = rng.uniform(lo, hi, (20000, 3))
    z = _preacts(net, x)
    covered = np.zeros(x.shape[0], bool)
    seen = 0
    for at, signs, inherited in leaf_batches(chain.layers + (Affine(C, d),), root, chain.relu_widths, lo, hi, None, 3):
        for r, leaf in enumerate(at):
            meets = np.ones(x.shape[0], bool)
            for j, c, s in tree_paths[leaf]:
                assert signs[j][r, c] == s
                meets &= s * z[j][:, c] >= 0
            covered |= meets
            seen += 1
            for j, b in enumerate(inherited):
                if b is None:
                    continue
                l, h = b[0][r if b[0].shape[0] > 1 else 0], b[1][r if b[1].shape[0] > 1 else 0]
                assert np.all(z[j][meets] >= l) and np.all(z[j][meets] <= h)
    assert seen == len(paths) and covered.all()
