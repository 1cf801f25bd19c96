#!/usr/bin/env python3
"""Log verified accuracy once per epoch while training, with `verifier.certify_module` (no ONNX file needed).

    pip install 'verifier[examples]'        # scikit-learn, for its bundled 8x8 digits data
    python models/train_with_certify.py [--epochs 10] [--eps 0.03] [--norm linf|l2|l1] [--n 120]

Trains the digits CNN of `train_digits.py` with IBP certified training (its eps ramped over the first half
of the epochs) and, after every epoch, certifies the first N test samples at EPS with a quick cascade (PGD,
IBP, CROWN): one line per epoch with the clean, PGD and verified accuracy and the seconds it took.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_digits as td  # noqa: E402 - the sibling script: data split, CNN, IBP training

import verifier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--eps", type=float, default=0.03, help="certified radius (training ramps to 0.06 L-inf)")
    ap.add_argument("--norm", default="linf", choices=["linf", "l2", "l1"])
    ap.add_argument("--n", type=int, default=120, help="test samples certified per epoch")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x_train, x_test, y_train, y_test = td.load_split()
    clock = [time.monotonic()]

    def log(epoch: int, cnn: nn.Sequential) -> None:
        trained = time.monotonic() - clock[0]
        doc = verifier.certify_module(cnn, x_test[: args.n], y_test[: args.n], args.eps, norm=args.norm,
                                      cascade="pgd,ibp,crown", clip=(0, 1), timeout=5.0)
        run = doc["runs"][0]
        print(f"epoch {epoch + 1:2d}: train {trained:4.1f} s | {args.norm} eps {args.eps:g}: clean "
              f"{100 * run['clean_accuracy']:5.1f}%  PGD {100 * run['attack_accuracy']:5.1f}%  verified "
              f"{100 * run['verified_accuracy']:5.1f}%  (certify {doc['wall_time']:.1f} s)", flush=True)
        clock[0] = time.monotonic()

    td.train_cnn(x_train, y_train, certified=True, epochs=args.epochs, on_epoch=log)


if __name__ == "__main__":
    main()
