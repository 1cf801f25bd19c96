"""Loading a labelled data set: `.npz` (arrays x and y), `.pt` (a dict with x and y, or a pair), or two `.npy`
files (inputs, then labels). Every problem is one InputError naming the file and what is wrong."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from verifier.errors import InputError

FORMATS = ".npz (arrays x and y), .pt (dict with x and y, or an (x, y) pair), or X.npy with --labels Y.npy"


@dataclass(frozen=True)
class Dataset:
    """Inputs x (N, *sample_shape) as float64 and integer labels y (N,)."""

    x: np.ndarray
    y: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.y)


def load_dataset(path: str | os.PathLike, labels: Optional[str | os.PathLike] = None) -> Dataset:
    """Read a data set in one of FORMATS and check its shapes and values."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    suffix = path.suffix.lower()
    if labels is not None and suffix != ".npy":
        raise InputError(f"--labels goes with an .npy file of inputs, not {path.name}")
    if suffix == ".npz":
        x, y = _from_npz(path)
    elif suffix == ".pt":
        x, y = _from_pt(path)
    elif suffix == ".npy":
        if labels is None:
            raise InputError(f"{path}: an .npy file holds only the inputs; give the labels with --labels Y.npy")
        x, y = _npy(path), _npy(Path(labels))
    else:
        raise InputError(f"{path}: unknown data format {suffix or '(no suffix)'}; expected {FORMATS}")
    return _checked(x, y, str(path) if labels is None else f"{path} + {labels}")


def _npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError(f"{path}: not a readable .npy array ({e})") from None


def _from_npz(path: Path) -> tuple[Any, Any]:
    """x and y of a zip of .npy arrays; anything else (an .npy, random bytes, pickled objects) is one clear line,
    not numpy's advice on unpickling."""
    import zipfile

    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise InputError(f"{path}: an .npy array, not an .npz archive: save x and y with numpy.savez")
    if magic[:4] != b"PK\x03\x04":
        raise InputError(f"{path}: not an .npz archive (no zip header): save x and y with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise InputError(f"{path}: no array named {' or '.join(missing)} "
                                 f"(found: {', '.join(archive.files) or 'none'})")
            return archive["x"], archive["y"]
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        reason = "an array holds Python objects (pickled), which are not loaded" if "pickle" in str(e) \
            else " ".join(str(e).split())
        raise InputError(f"{path}: not a readable .npz archive ({reason})") from None


def _from_pt(path: Path) -> tuple[Any, Any]:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise InputError(f"{path}: not a readable torch file ({type(e).__name__}: {str(e).splitlines()[0]})") \
            from None
    if isinstance(obj, dict) and "x" in obj and "y" in obj:
        return obj["x"], obj["y"]
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        return obj[0], obj[1]
    raise InputError(f"{path}: expected a dict with keys 'x' and 'y' or an (x, y) pair, got {type(obj).__name__}")


def from_arrays(x: Any, y: Any, source: str = "arrays") -> Dataset:
    """A data set from in-memory inputs x (N, ...) and labels y (N,) (numpy arrays or torch tensors),
    checked as a file's would be."""
    return _checked(x, y, source)


def _as_array(v: Any, what: str, source: str) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    try:
        arr = np.asarray(v)
    except Exception:
        raise InputError(f"{source}: {what} is not an array") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{source}: {what} must be numeric, got dtype {arr.dtype}")
    return arr


def _checked(x: Any, y: Any, source: str) -> Dataset:
    x, y = _as_array(x, "x", source), _as_array(y, "y", source)
    if x.ndim < 2:
        raise InputError(f"{source}: x must have shape (N, ...) with one sample per row, got {x.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{source}: y must hold one integer label per sample, shape (N,), got {y.shape}")
    if len(x) != len(y):
        raise InputError(f"{source}: x has {len(x)} samples but y has {len(y)} labels")
    if len(y) == 0:
        raise InputError(f"{source}: the data set is empty")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise InputError(f"{source}: x has non-finite values (first at sample {int(np.argmax(bad))})")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(np.asarray(y, dtype=np.float64) % 1 != 0):
            raise InputError(f"{source}: y must hold integer class labels, got non-integer values")
    y = y.astype(np.int64)
    if np.any(y < 0):
        raise InputError(f"{source}: y has negative labels (first at sample {int(np.argmax(y < 0))})")
    return Dataset(x, y, source)


def check_fits(data: Dataset, n_inputs: int, n_outputs: int, model: str,
               input_shape: Optional[tuple[int, ...]] = None) -> Optional[str]:
    """The samples must have the model's number of inputs and the labels must name one of its outputs.

    Samples shaped otherwise than the model's input but with as many values (x (N, 8, 8) for an input of 64)
    are accepted, flattened row-major as the model's own Flatten would: the returned note says so (not for
    flat samples, (N, 64) for an input of 1x8x8: the usual form)."""
    if n_outputs < 2:
        raise InputError(f"{model} has {n_outputs} output; a classifier needs one per class (at least 2)")
    per_sample = int(np.prod(data.x.shape[1:]))
    if per_sample != n_inputs:
        raise InputError(f"{data.source}: samples have {per_sample} values (shape {data.x.shape[1:]}) but "
                         f"{model} takes {n_inputs} inputs")
    if int(data.y.max()) >= n_outputs:
        bad = int(np.argmax(data.y >= n_outputs))
        raise InputError(f"{data.source}: label {int(data.y[bad])} at sample {bad} but {model} has only "
                         f"{n_outputs} outputs")
    sample_shape = tuple(data.x.shape[1:])
    # flat samples are the usual form (as VNN-LIB's X_i): only a differently shaped tensor gets the note
    if input_shape is not None and len(sample_shape) > 1 and sample_shape != tuple(input_shape):
        return (f"note: {data.source}: samples of shape {sample_shape} are read row-major as the model's input "
                f"of shape {tuple(input_shape)}")
    return None
