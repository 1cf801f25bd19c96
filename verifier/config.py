"""Configuration as frozen dataclasses: one object per run, passed down, never global.

Nothing here imports torch, so the command line can take its choices from this module for free.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

METHODS = ("auto", "ibp", "crown", "alpha")
DEVICES = ("auto", "cpu", "cuda")
BAB_MODES = ("auto", "input", "relu", "none")
SEMANTICS = ("real", "float32")  # what an unsat holds for (see verifier.bounds.margin_check)


@dataclass(frozen=True)
class AttackConfig:
    """PGD (verifier.attack.pgd): starts per batch, signed-gradient steps, seed of the random starts."""

    restarts: int = 32
    steps: int = 60
    seed: int = 0
    # Extra starts that descend a relaxed network first: each relu leaks with slope 1 (the net is then
    # affine) falling to 0 (the real net) over the first 30% of the steps. A violation that only a few relus
    # being active allows gives no gradient from where those relus are off; the leak lets it through
    # (a continuation method). Their points are scored on the real network. 32 of them cost ~0.08 s of CPU
    # an instance (ACAS Xu, mnist_fc 256x2) and find 16 of bench/planted.py's 30 bumps in the first attack
    # (without them: 2 of 30, the rest later or not at all).
    homotopy_restarts: int = 32


@dataclass(frozen=True)
class VerifyOptions:
    method: str = "auto"  # ibp | crown | alpha | auto (IBP, then CROWN, then alpha-CROWN while open)
    timeout: float = 300.0  # seconds for the whole call, loading included
    device: str = "auto"  # auto picks cuda when torch sees a GPU
    dtype: str = "float32"
    seed: int = 0
    check_model: bool = True  # compare our graph with onnxruntime inside the spec box first
    bab: str = "auto"  # auto | input | relu | none: branch and bound after the bounds leave a property open
    input_split_max_dims: int = 16  # auto uses input splitting up to this many inputs
    cache: bool = True  # reuse converted graphs keyed by the model's sha256
    attack: AttackConfig = field(default_factory=AttackConfig)
    # Before ReLU-split branch and bound, on properties the bounds left open: larger attacks, one after the
    # other, given at most `strong_attack_share` of the time left together (empty: skip). A long descent
    # from few starts first: on mnist_fc it finds all 18 sat instances (5 s at most; 256x6 prop_1 eps 0.05
    # only this way), on verivital all 7 in 0.5 s at most; then many short descents from random starts,
    # (on mnist_fc 256x4 prop_6/prop_8 at eps 0.05, 32 starts x 60 steps miss the counterexample, 1024 x 300
    # find it) for whatever the first misses.
    strong_attacks: tuple[AttackConfig, ...] = (
        AttackConfig(restarts=64, steps=2000, homotopy_restarts=16),
        AttackConfig(restarts=1024, steps=300, homotopy_restarts=256),
    )
    strong_attack_share: float = 0.1
    # Input split samples its open region as it goes: enough in a few dims (ACAS Xu's 5), not for a narrow
    # bump in 16 (a planted one escaped it for 30 s; the first strong attack finds it in 0.7 s). From this
    # many inputs on, the strong attacks run once input split has had `strong_attack_after` seconds
    # (ReLU split has them first): easy unsat instances (reach_prob_density gcas, 14 inputs, 0.1-0.3 s)
    # end before paying ~2 s for them.
    strong_attack_min_inputs: int = 9
    strong_attack_after: float = 1.0
    certificate: Optional[str] = None  # write an unsat certificate here (input-split and bound-stage proofs)
    check_certificate: bool = False  # and check it with the independent checker
    # real: an unsat holds for the real-valued network; float32: also for the network evaluated in IEEE
    # float32 in any summation order (proved margins must exceed a float32 error bound).
    semantics: str = "real"
    # Part of the device's free memory ReLU split may count on: 1/N when N verifications run side by side
    # on one machine (`run --jobs N` sets it), since each measures the same free memory.
    memory_share: float = 1.0

    def __post_init__(self) -> None:
        from verifier.errors import InputError

        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.device not in DEVICES:
            raise InputError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.bab not in BAB_MODES:
            raise InputError(f"unknown bab mode {self.bab!r}; choose one of {', '.join(BAB_MODES)}")
        if self.semantics not in SEMANTICS:
            raise InputError(f"unknown semantics {self.semantics!r}; choose one of {', '.join(SEMANTICS)}")
        if not 0.0 < self.memory_share <= 1.0:
            raise InputError(f"memory_share must be in (0, 1], got {self.memory_share!r}")
        if self.dtype not in ("float32", "float64"):
            raise InputError(f"unknown dtype {self.dtype!r}; choose float32 or float64")
        if not self.timeout > 0:
            raise InputError(f"timeout must be positive, got {self.timeout}")
