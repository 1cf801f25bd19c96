"""Normalisation inside the verified graph, eps-boxes (clip, outward rounding) and margin matrices."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.certify.conftest import mlp_onnx, ort_logits
from verifier.bounds.crown import crown
from verifier.bounds.ibp import ibp_objective
from verifier.certify.network import Normalisation, eps_box, load_network, margin_matrix
from verifier.errors import InputError

MEAN, STD = (0.3, 0.6), (0.2, 0.5)  # per channel of a (2, 2, 2) image


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    return mlp_onnx(tmp_path_factory.mktemp("img") / "img.onnx", (8, 6, 3), seed=3, input_shape=(2, 2, 2))


def _normalise(x: np.ndarray) -> np.ndarray:
    img = x.reshape(-1, 2, 2, 2)
    mean, std = np.array(MEAN)[:, None, None], np.array(STD)[:, None, None]
    return ((img - mean) / std).reshape(len(x), -1)


def test_graph_takes_raw_pixels(image_model):
    net = load_network(str(image_model), Normalisation(MEAN, STD), "cpu", dtype=torch.float64)
    assert net.graph.nodes[1].op == "scale_shift" and net.graph.input_name == "certify_raw_input"
    x = np.random.default_rng(0).uniform(0, 1, size=(5, 8))
    expected = ort_logits(image_model, _normalise(x), (2, 2, 2))
    np.testing.assert_allclose(net.logits(x), expected, atol=1e-5)
    np.testing.assert_allclose(net.runner(x[0]), expected[0], atol=1e-5)  # the replay normalises too


def test_bounds_sound_over_the_raw_pixel_box(image_model):
    """Points of the raw box (corners, random), run through the normalisation and onnxruntime, stay
    inside the IBP and CROWN bounds of every margin computed on the normalised graph."""
    net = load_network(str(image_model), Normalisation(MEAN, STD), "cpu", dtype=torch.float64)
    rng = np.random.default_rng(1)
    centres = rng.uniform(0, 1, size=(4, 8))
    labels = net.logits(centres).argmax(1)
    lower, upper, lo64, hi64 = eps_box(centres, 0.08, (0.0, 1.0), torch.float64, "cpu")
    C = margin_matrix(labels, 3, torch.float64, "cpu")
    ibp_lb, ibp_ub = ibp_objective(net.graph, lower, upper, C)
    res = crown(net.graph, lower, upper, C)
    for b in range(len(centres)):
        corners = np.where(rng.integers(0, 2, size=(64, 8)).astype(bool), hi64[b], lo64[b])
        points = np.vstack([corners, lo64[b] + rng.random((64, 8)) * (hi64[b] - lo64[b])])
        y = ort_logits(image_model, _normalise(points), (2, 2, 2))
        margins = y @ C[b].numpy().T
        for lb, ub in ((ibp_lb[b], ibp_ub[b]), (res.lb[b], res.ub[b])):
            assert np.all(margins >= lb.numpy() - 1e-5) and np.all(margins <= ub.numpy() + 1e-5)


def test_mean_std_shapes(image_model):
    for mean in ((0.5,), MEAN, tuple(np.linspace(0, 1, 8))):
        load_network(str(image_model), Normalisation(mean, (1.0,) * len(mean)), "cpu")
    with pytest.raises(InputError, match="--mean has 3 values.*1, 2 \\(one per channel\\) or 8"):
        load_network(str(image_model), Normalisation((0.1, 0.2, 0.3), (1.0, 1.0, 1.0)), "cpu")
    with pytest.raises(InputError, match="standard deviation of 0"):
        Normalisation((0.1,), (0.0,))


def test_eps_box_clips_and_rounds_outwards():
    x = np.array([[0.0, 0.5, 1.0, 0.1]])
    lower, upper, lo64, hi64 = eps_box(x, 0.2, (0.0, 1.0), torch.float32, "cpu")
    np.testing.assert_allclose(lo64, [[0.0, 0.3, 0.8, 0.0]])
    np.testing.assert_allclose(hi64, [[0.2, 0.7, 1.0, 0.3]])
    # float32 of 0.3 / 0.7 rounds; the bounded box still contains the float64 one
    assert np.all(lower.double().numpy() <= lo64) and np.all(upper.double().numpy() >= hi64)
    lower, upper, lo64, hi64 = eps_box(np.array([[1.5]]), 0.1, (0.0, 1.0), torch.float32, "cpu")
    assert lo64[0, 0] == hi64[0, 0] == 1.0  # a sample outside the range: the box is the nearest edge
    _, _, lo64, hi64 = eps_box(np.array([[1.5]]), 0.1, None, torch.float32, "cpu")
    np.testing.assert_allclose([lo64[0, 0], hi64[0, 0]], [1.4, 1.6])


def test_margin_matrix_rows():
    C = margin_matrix([2, 0], 3, torch.float64, "cpu")
    assert C.shape == (2, 2, 3)
    assert C[0].tolist() == [[-1, 0, 1], [0, -1, 1]] and C[1].tolist() == [[1, -1, 0], [1, 0, -1]]
