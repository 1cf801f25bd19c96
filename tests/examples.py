"""Paths of the bundled example models and specs, as the strings a command line takes."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / "models" / "toy_mlp.onnx")
ACAS = str(ROOT / "models" / "acasxu_1_1.onnx")
ROBUST = str(ROOT / "specs" / "toy_robust.vnnlib")  # unsat on TOY
FALSIFIABLE = str(ROOT / "specs" / "toy_falsifiable.vnnlib")  # sat on TOY
ROBUST_V2 = str(ROOT / "specs" / "toy_robust.v2.vnnlib")
FALSIFIABLE_V2 = str(ROOT / "specs" / "toy_falsifiable.v2.vnnlib")
ACAS_PROP1 = str(ROOT / "specs" / "acasxu_prop_1.vnnlib")
