"""End to end: `verify --certificate` on generated nets and ACAS Xu writes a certificate that the
independent checker finds valid; corrupted certificates are found invalid, naming what is wrong."""
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
from verifier.certificate.format import read_certificate, write_certificate

ROOT = Path(__file__).resolve().parents[2]


def _float32(net: Net) -> Net:
    """The net as its ONNX file stores it (float32 weights), in float64."""
    return Net(tuple((W.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64))
                     for W, b in net.layers))


def _instance(tmp: Path, seed: int, margin: float = 0.02) -> tuple[str, str]:
    """A 2-input net and a spec `y0 >= t0 and y1 >= t1` that no input meets, by `margin` exactly
    (oracle), so that branch and bound is needed to prove it."""
    rng = np.random.default_rng(seed)
    net = _float32(random_net(rng, 2, [10, 10], 2))
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    C, d = -np.eye(2), np.zeros(2)
    m, _ = exact_min(net, lo, hi, C, d)
    t = margin - m  # max_i (t_i - y_i) >= margin everywhere
    onnx_path = write_onnx(net, tmp / f"net{seed}.onnx")
    spec = write_vnnlib(tmp / f"spec{seed}.vnnlib", lo, hi, 2,
                        [f"(assert (>= Y_0 {t!r}))", f"(assert (>= Y_1 {t!r}))"])
    return str(onnx_path), str(spec)


@pytest.fixture(scope="module")
def proved(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    tmp = tmp_path_factory.mktemp("cert")
    for seed in range(20):
        model, spec = _instance(tmp, seed)
        cert = str(tmp / f"cert{seed}.npz")
        result = verify(model, spec, bab="input", timeout=60, certificate=cert, check_certificate=True)
        if result.verdict == "unsat" and read_certificate(cert).leaves > 4:
            assert result.certificate is not None and result.certificate["checked"] and result.certificate["valid"]
            return model, spec, cert
    pytest.fail("no generated instance needed branch and bound")


def test_generated_certificate_is_valid(proved: tuple[str, str, str]) -> None:
    outcome = check_certificate(*proved)
    assert outcome.valid and outcome.message == "valid"


def _corrupt(cert_path: str, out: Path, **changes) -> str:  # type: ignore[no-untyped-def]
    cert = read_certificate(cert_path)
    root = dataclasses.replace(cert.roots[0], **{k: v for k, v in changes.items() if k != "roots"})
    roots = changes.get("roots", (root,) + cert.roots[1:])
    write_certificate(str(out), dataclasses.replace(cert, roots=roots))
    return str(out)


def test_collapsed_tree_names_the_leaf(proved: tuple[str, str, str], tmp_path: Path) -> None:
    """The root box alone (every split dropped) is too big to prove: leaf 0."""
    model, spec, cert = proved
    bad = _corrupt(cert, tmp_path / "c.npz", dim=np.array([-1]), point=np.zeros(1), kind=np.array([1]),
                   alpha_leaf=np.zeros(0, np.int64), alphas=())
    outcome = check_certificate(model, spec, bad)
    assert not outcome.valid and outcome.message.startswith("invalid: leaf 0 ")


def test_removed_leaf_is_invalid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert = proved
    root = read_certificate(cert).roots[0]
    bad = _corrupt(cert, tmp_path / "c.npz", dim=root.dim[:-1], point=root.point[:-1], kind=root.kind[:-1])
    outcome = check_certificate(model, spec, bad)
    assert not outcome.valid and "split tree is malformed" in outcome.message


def test_split_outside_its_box_is_invalid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert = proved
    root = read_certificate(cert).roots[0]
    point = root.point.copy()
    point[0] = 5.0  # beyond the spec's box [-1, 1]
    outcome = check_certificate(model, spec, _corrupt(cert, tmp_path / "c.npz", point=point))
    assert not outcome.valid and "node 0 splits at a point outside its box" in outcome.message


def test_negative_row_weights_are_invalid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert = proved
    mix = read_certificate(cert).roots[0].mix.copy()
    mix[-1, 0] = -1.0
    outcome = check_certificate(model, spec, _corrupt(cert, tmp_path / "c.npz", mix=mix))
    assert not outcome.valid and "nonnegative" in outcome.message


def test_missing_clause_is_invalid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert = proved
    outcome = check_certificate(model, spec, _corrupt(cert, tmp_path / "c.npz", roots=()))
    assert not outcome.valid and "property 0, clause 0: no proof" in outcome.message


def test_another_model_is_invalid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert = proved
    other, _ = _instance(tmp_path, 999)
    outcome = check_certificate(other, spec, cert)
    assert not outcome.valid and "another model" in outcome.message


def test_bad_slopes_table_is_invalid(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert = proved
    root = read_certificate(cert).roots[0]
    alphas = tuple(np.zeros((1, root.mix.shape[0], 10)) for _ in range(2))
    bad = _corrupt(cert, tmp_path / "c.npz", alpha_leaf=np.array([root.leaves + 5]), alphas=alphas)
    outcome = check_certificate(model, spec, bad)
    assert not outcome.valid and "relu slopes" in outcome.message


def test_acasxu_certificate_is_valid(tmp_path: Path) -> None:
    cert = str(tmp_path / "acas.npz")
    result = verify(str(ROOT / "models/acasxu_1_1.onnx"), str(ROOT / "specs/acasxu_prop_1.vnnlib"), timeout=120,
                    certificate=cert)
    assert result.verdict == "unsat"
    assert result.certificate is not None and result.certificate["path"] == cert and not result.certificate["checked"]
    assert result.certificate["leaves"] == read_certificate(cert).leaves
    assert check_certificate(str(ROOT / "models/acasxu_1_1.onnx"), str(ROOT / "specs/acasxu_prop_1.vnnlib"), cert).valid
    assert result.to_json()["certificate"]["leaves"] > 0


def test_checker_imports_no_torch_and_cli_exit_codes(proved: tuple[str, str, str], tmp_path: Path) -> None:
    model, spec, cert = proved
    code = ("import sys\nfrom verifier.certificate.checker import check_certificate\n"
            f"o = check_certificate({model!r}, {spec!r}, {cert!r})\n"
            "assert o.valid, o.message\nassert 'torch' not in sys.modules, 'torch imported'\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    cli = [sys.executable, str(ROOT / "cli.py"), "check-cert"]
    ok = subprocess.run(cli + [model, spec, cert], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout.strip()) == (0, "valid")
    other, _ = _instance(tmp_path, 999)
    bad = subprocess.run(cli + [other, spec, cert], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout.startswith("invalid: ")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    err = subprocess.run(cli + [model, spec, str(junk)], capture_output=True, text=True)
    assert err.returncode == 3 and err.stderr.startswith("error: ") and len(err.stderr.strip().splitlines()) == 1


def test_layer_alpha_leaves_are_split_until_checkable(proved: tuple[str, str, str], tmp_path: Path) -> None:
    """A root closed at once with layer-wise alpha (slopes not carried) becomes a checkable tree."""
    from verifier.certificate.format import LAYER_ALPHA
    from verifier.certificate.recorder import SplitRecorder
    from verifier.certificate.writer import TreeProof, build_certificate
    from verifier.spec.vnnlib import parse_vnnlib

    model, spec_path, _ = proved
    spec = parse_vnnlib(spec_path)
    rec = SplitRecorder()
    rec.proved(np.array([0]), np.array([LAYER_ALPHA]))
    mix = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    cert = build_certificate(model, spec_path, {(0, 0): TreeProof(rec, mix)}, (10, 10), "test", spec)
    assert cert.leaves > 1
    out = tmp_path / "refined.npz"
    write_certificate(str(out), cert)
    assert check_certificate(model, spec_path, str(out)).valid
