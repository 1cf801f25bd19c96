"""Loading each data format, and a one-line error naming the file for every kind of bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from verifier.certify.data import Dataset, check_fits, load_dataset
from verifier.errors import InputError

X = np.arange(24, dtype=np.float32).reshape(6, 2, 2) / 24
Y = np.array([0, 1, 2, 0, 1, 2])


def _same(ds):
    assert ds.x.shape == (6, 2, 2) and ds.x.dtype == np.float64
    np.testing.assert_allclose(ds.x, X)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == Y.tolist()


def test_npz(tmp_path):
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    _same(load_dataset(tmp_path / "d.npz"))


def test_pt_dict_and_pair(tmp_path):
    torch.save({"x": torch.as_tensor(X), "y": torch.as_tensor(Y)}, tmp_path / "d.pt")
    _same(load_dataset(tmp_path / "d.pt"))
    torch.save((torch.as_tensor(X), torch.as_tensor(Y)), tmp_path / "p.pt")
    _same(load_dataset(tmp_path / "p.pt"))


def test_npy_pair_and_column_labels(tmp_path):
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y[:, None].astype(np.float64))  # (N, 1) integer-valued floats are fine
    _same(load_dataset(tmp_path / "x.npy", tmp_path / "y.npy"))


def _bad(tmp_path, match, **arrays):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=match) as err:
        load_dataset(tmp_path / "bad.npz")
    assert "bad.npz" in str(err.value) and "\n" not in str(err.value)


def test_bad_npz_contents(tmp_path):
    _bad(tmp_path, "no array named y", x=X)
    _bad(tmp_path, "6 samples but y has 5", x=X, y=Y[:5])
    _bad(tmp_path, "integer class labels", x=X, y=Y + 0.5)
    _bad(tmp_path, "negative labels", x=X, y=Y - 1)
    _bad(tmp_path, "non-finite", x=np.where(X > 0.5, np.nan, X), y=Y)
    _bad(tmp_path, r"shape \(N, ...\)", x=X.reshape(-1)[:6], y=Y)
    _bad(tmp_path, "empty", x=X[:0], y=Y[:0])
    _bad(tmp_path, "one integer label per sample", x=X, y=np.zeros((6, 2)))


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_dataset(tmp_path / "missing.npz")
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(InputError, match="unknown data format .csv"):
        load_dataset(tmp_path / "d.csv")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="junk.npz: not an .npz archive"):
        load_dataset(tmp_path / "junk.npz")
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(InputError, match="junk.pt: not a readable torch file"):
        load_dataset(tmp_path / "junk.pt")
    torch.save({"inputs": torch.zeros(2)}, tmp_path / "keys.pt")
    with pytest.raises(InputError, match="keys 'x' and 'y'"):
        load_dataset(tmp_path / "keys.pt")
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(InputError, match="--labels"):
        load_dataset(tmp_path / "x.npy")
    with pytest.raises(InputError, match="no such file"):
        load_dataset(tmp_path / "x.npy", tmp_path / "nope.npy")
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    with pytest.raises(InputError, match="--labels goes with an .npy"):
        load_dataset(tmp_path / "d.npz", tmp_path / "x.npy")


def test_data_must_fit_the_model(tmp_path):
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    ds = load_dataset(tmp_path / "d.npz")
    check_fits(ds, 4, 3, "m.onnx")
    with pytest.raises(InputError, match="4 values .* m.onnx takes 5 inputs"):
        check_fits(ds, 5, 3, "m.onnx")
    with pytest.raises(InputError, match="label 2 at sample 2 .* only 2 outputs"):
        check_fits(ds, 4, 2, "m.onnx")


def test_samples_shaped_otherwise_are_read_row_major_with_a_note(tmp_path):
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    ds = load_dataset(tmp_path / "d.npz")  # samples (2, 2) for a model whose input is (4,)
    note = check_fits(ds, 4, 3, "m.onnx", (4,))
    assert note.startswith("note: ") and "(2, 2)" in note and "(4,)" in note and "\n" not in note
    flat = Dataset(np.zeros((2, 4), dtype=np.float32), np.zeros(2, dtype=np.int64), "d.npz")
    assert check_fits(flat, 4, 3, "m.onnx", (1, 2, 2)) is None  # flat samples are the usual form
    assert check_fits(ds, 4, 3, "m.onnx", (2, 2)) is None


@pytest.mark.parametrize("content, phrase", [
    (bytes(range(256)) * 4, "not an .npz archive (no zip header)"),
    (b"PK\x03\x04 and then garbage", "not a readable .npz archive (File is not a zip file)"),
    (None, "an .npy array, not an .npz archive"),
])
def test_garbage_npz_is_one_clear_line(tmp_path, content, phrase):
    path = tmp_path / "junk.npz"
    if content is None:
        with open(path, "wb") as fh:
            np.save(fh, X)
    else:
        path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_dataset(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and phrase in message and "pickle" not in message and "\n" not in message


def test_object_arrays_are_not_unpickled(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}] * 6, dtype=object), y=Y)
    with pytest.raises(InputError, match="holds Python objects"):
        load_dataset(tmp_path / "o.npz")
