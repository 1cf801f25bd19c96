"""The verified-accuracy-against-eps curve of an --eps-sweep (matplotlib, an optional extra: `verifier[plot]`)."""
from __future__ import annotations

import importlib.util
from typing import Any

from verifier.errors import InputError

_LABELS = {"ibp": "verified after IBP", "crown": "verified after CROWN", "alpha": "verified after α-CROWN",
           "bab": "verified after BaB"}


def require_matplotlib() -> None:
    """Fail before any work when --plot cannot be honoured."""
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("--plot needs matplotlib, an optional extra: pip install 'verifier[plot]' "
                         "(or pip install matplotlib)")


def plot_curve(doc: dict[str, Any], path: str) -> None:
    """Clean, PGD and verified accuracy (after each bound stage) against eps; the format follows the suffix."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = doc["runs"]
    eps = [r["eps"] for r in runs]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(eps, [100 * r["clean_accuracy"] for r in runs], "k--", lw=1, label="clean")
    if "pgd" in doc["cascade"]:
        ax.plot(eps, [100 * r["attack_accuracy"] for r in runs], "r:", lw=1.5, label="PGD (upper bound)")
    for stage in doc["cascade"]:
        if stage != "pgd":
            ax.plot(eps, [100 * r["verified_after"][stage] for r in runs], marker="o", ms=3, label=_LABELS[stage])
    ax.set_xlabel("eps (L∞, input units)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{doc['model']} – {runs[0]['n'] if runs else 0} samples", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except (OSError, ValueError) as e:
        raise InputError(f"--plot {path}: cannot write the figure ({e})") from None
    finally:
        plt.close(fig)
