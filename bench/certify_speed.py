"""Throughput of each `certify` stage: samples per second when the stage runs on every sample.

    python bench/certify_speed.py models/digits_cnn_ibp.onnx models/digits_test.npz --eps 0.5 --norm l2 \
        --clip 0 1 [--n 360] [--batch 128] [--device cpu|cuda] [--threads 1] [--stages pgd,ibp,crown,alpha]

Unlike the cascade (where each stage only sees the samples the earlier ones left open), every stage here
bounds or attacks all N samples, in batches of --batch, so the figures compare stages and devices directly.
Prints, per stage, seconds and samples/s (and for bound stages the fraction of samples proved).
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--eps", type=float, required=True)
    ap.add_argument("--norm", default="linf", choices=["linf", "l2", "l1"])
    ap.add_argument("--clip", type=float, nargs=2)
    ap.add_argument("--n", type=int, default=360)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stages", default="pgd,ibp,crown,alpha")
    args = ap.parse_args()

    import numpy as np
    import torch

    from verifier.bounds.ball import LpBall, norm_p
    from verifier.certify.attack import MarginAttack, margin_pgd
    from verifier.certify.data import load_dataset
    from verifier.certify.network import eps_box, load_network, margin_matrix
    from verifier.certify.stages import bound_rows

    torch.set_num_threads(args.threads)
    data = load_dataset(args.data)
    x, y = data.x.reshape(len(data), -1)[: args.n], data.y[: args.n]
    net = load_network(args.model, None, args.device)
    p = norm_p(args.norm)
    clip = tuple(args.clip) if args.clip else None

    def sync() -> None:
        if net.device.startswith("cuda"):
            torch.cuda.synchronize()

    def batches():
        for s in range(0, len(x), args.batch):
            xs, ys = x[s:s + args.batch], y[s:s + args.batch]
            lower, upper, _, _ = eps_box(xs, args.eps, clip, net.dtype, net.device)
            ball = None if np.isinf(p) else LpBall.around(xs, args.eps, p, net.dtype, net.device)
            yield xs, lower, upper, ball, margin_matrix(ys, net.n_outputs, net.dtype, net.device)

    # Warm-up: kernels, lazy imports (torch._dynamo for the optimiser) and the first batch's allocations.
    for xs, lower, upper, ball, C in batches():
        bound_rows("alpha", net.graph, lower[:2], upper[:2], C[:2], ball=None if ball is None else ball.take(
            torch.arange(2, device=lower.device)))
        break
    print(f"{args.model}: {len(x)} samples, {args.norm} eps {args.eps:g}, clip {clip}, batch {args.batch}, "
          f"device {net.device}, {args.threads} thread(s)")
    t = time.monotonic()
    net.logits(x)
    sync()
    rows = [("clean", time.monotonic() - t, None)]
    for stage in args.stages.split(","):
        proved, t = 0, time.monotonic()
        for xs, lower, upper, ball, C in batches():
            if stage == "pgd":
                _, found = margin_pgd(net.graph, lower, upper, C, MarginAttack(), ball)
                proved += int((found <= 0).sum())
            else:
                lb = bound_rows(stage, net.graph, lower, upper, C, ball=ball)
                proved += int((lb.amin(1) > 0).sum())
        sync()
        rows.append((stage, time.monotonic() - t, proved / len(x)))
    print(f"{'stage':8s} {'seconds':>8s} {'samples/s':>10s}  result")
    for stage, secs, frac in rows:
        what = "" if frac is None else f"{100 * frac:5.1f}% " + ("attacked" if stage == "pgd" else "proved")
        print(f"{stage:8s} {secs:8.3f} {len(x) / max(secs, 1e-9):10.1f}  {what}")


if __name__ == "__main__":
    main()
