"""The Python API: `verify(model, spec, **options) -> Result`, and `compute_bounds` for the `bounds` command.

Flow per spec: load → (per property) quick PGD attack, replayed on onnxruntime → IBP → CROWN →
alpha-CROWN → branch and bound (input split for few inputs, ReLU split otherwise) on what is still open.
What none of them decides in time is `timeout` or `unknown`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Callable

import numpy as np

from verifier.config import VerifyOptions
from verifier.errors import InputError, VerifierError
from verifier.progress import SILENT, ProgressFn, Reporter
from verifier.result import (
    ERROR, EXIT_BAD_INPUT, EXIT_INTERNAL, SAT, TIMEOUT, UNKNOWN, UNSAT, Counterexample, PropertyOutcome, Result,
)


class _Deadline:
    def __init__(self, timeout: float, start: float) -> None:
        self.at = start + timeout

    def passed(self) -> bool:
        return time.monotonic() > self.at


@dataclass(frozen=True)
class Problem:
    """A loaded model and spec, checked against each other, with the graph on the chosen device."""

    model: Any  # verifier.model.loader.Model
    spec: Any  # verifier.spec.spec.Spec
    graph: Any  # verifier.model.graph.Graph on `device` in `dtype`
    device: Any
    dtype: Any

    @cached_property
    def runner(self) -> Any:
        """onnxruntime on the original file: the reference every counterexample is replayed on."""
        from verifier.attack.replay import OrtRunner

        return OrtRunner(str(self.model.path), tuple(self.model.onnx_input_shape))


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: torch sees no CUDA device")
    return name


def load_problem(model: Any, spec: Any, options: VerifyOptions) -> Problem:
    """Parse/load both inputs, check they fit together and that our graph matches onnxruntime in the box."""
    import torch

    from verifier.model.check import verify_equivalence
    from verifier.model.loader import Model, load_model
    from verifier.spec.spec import Spec
    from verifier.spec.vnnlib import parse_vnnlib

    spec_obj = spec if isinstance(spec, Spec) else parse_vnnlib(spec)
    model_obj = model if isinstance(model, Model) else load_model(model, check=False, cache=options.cache)
    graph = model_obj.graph
    if spec_obj.n_inputs != graph.n_inputs or spec_obj.n_outputs != graph.n_outputs:
        raise InputError(
            f"{spec_obj.source or 'spec'} declares {spec_obj.n_inputs} inputs / {spec_obj.n_outputs} outputs but "
            f"{model_obj.path} has {graph.n_inputs} / {graph.n_outputs}"
        )
    if options.check_model:
        first = spec_obj.properties[0]
        verify_equivalence(model_obj, lower=first.lower, upper=first.upper, seed=options.seed)
    device = resolve_device(options.device)
    dtype = getattr(torch, options.dtype)
    return Problem(model_obj, spec_obj, graph.to(device, dtype), device, dtype)


def _tensors(prop: Any, problem: Problem):  # type: ignore[no-untyped-def]
    import torch

    kw = {"device": problem.device, "dtype": problem.dtype}
    lower, upper = torch.as_tensor(prop.lower, **kw), torch.as_tensor(prop.upper, **kw)
    clauses = [(torch.as_tensor(c.C, **kw), torch.as_tensor(c.d, **kw)) for c in prop.clauses]
    return lower, upper, clauses


def replay(problem: Problem, index: int, clause_index: int, x: Any) -> Counterexample | None:
    """The counterexample, if x (snapped to float32 inside the box) meets the clause on onnxruntime."""
    from verifier.attack.replay import snap_into_box

    prop = problem.spec.properties[index]
    x32 = snap_into_box(x.detach().cpu().double().numpy().reshape(-1), prop.lower, prop.upper)
    if not prop.contains(x32):
        return None  # no float32 point there (box narrower than float32 spacing), or on a strict end
    y = problem.runner(x32)
    if not prop.clauses[clause_index].holds(y):
        return None
    return Counterexample(tuple(float(v) for v in x32), tuple(float(v) for v in y), index, clause_index)


def find_counterexample(problem: Problem, index: int, options: VerifyOptions, deadline: _Deadline,
                        attack: Any = None) -> Counterexample | None:
    """PGD on property `index` (with `attack`, default `options.attack`); the first candidate that
    replays on onnxruntime is returned."""
    from verifier.attack.pgd import pgd_attack

    lower, upper, clauses = _tensors(problem.spec.properties[index], problem)
    attack = replace(attack or options.attack, seed=options.seed + index)
    for cand in pgd_attack(problem.graph, lower, upper, clauses, attack, deadline=deadline.at):
        if cand.objective > 1e-4:  # nowhere near a violation: not worth a replay
            continue
        cex = replay(problem, index, cand.clause_index, cand.x)
        if cex is not None:
            return cex
    return None


@dataclass(frozen=True)
class ObjectiveBounds:
    """Bounds on every row of C·y + d (rows of all clauses stacked) and on the raw outputs."""

    lb: np.ndarray
    ub: np.ndarray
    method: str  # which method gave the final lb (ibp, crown)
    row_clause: np.ndarray  # clause index of each row


def bound_property(problem: Problem, index: int, method: str, deadline: _Deadline,
                   skip: tuple[str, ...] = ()) -> ObjectiveBounds:
    """Bounds of every row C·y + d of property `index` (all clauses' rows stacked)."""
    prop = problem.spec.properties[index]
    lower, upper, _ = _tensors(prop, problem)
    n_out = problem.graph.n_outputs
    C = np.concatenate([c.C for c in prop.clauses]) if prop.clauses else np.zeros((0, n_out))
    d = np.concatenate([c.d for c in prop.clauses]) if prop.clauses else np.zeros(0)
    row_clause = np.concatenate([np.full(len(c.d), j) for j, c in enumerate(prop.clauses)]).astype(int) \
        if prop.clauses else np.zeros(0, int)
    lb, ub, used = bound_rows(problem, lower, upper, C, d, method, deadline, row_clause, len(prop.clauses), skip)
    return ObjectiveBounds(lb + d, ub + d, used, row_clause)


# The bound stages each method runs, cheapest first; `auto` stops at the first that proves everything.
METHOD_STAGES = {"ibp": ("ibp",), "crown": ("ibp", "crown"), "alpha": ("ibp", "crown", "alpha"),
                 "auto": ("ibp", "crown", "alpha")}


def bound_rows(problem: Problem, lower: Any, upper: Any, C: np.ndarray, d: np.ndarray, method: str,
               deadline: _Deadline, row_clause: np.ndarray | None = None, n_clauses: int = 0,
               skip: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """Lower/upper bounds of C·y over the box by IBP, then CROWN, then alpha-CROWN, as `method` asks.

    Per row the best bound of the stages run is kept (all are sound). `auto` stops as soon as the
    margin is positive. Returns (lb, ub, the stage whose bound decided or was asked for).
    """
    import torch

    from verifier.bounds.alpha import alpha_crown
    from verifier.bounds.crown import crown
    from verifier.bounds.ibp import ibp_objective

    Ct = torch.as_tensor(C, device=problem.device, dtype=problem.dtype)[None]
    grouping = row_clause if row_clause is not None else np.arange(len(d))
    groups = n_clauses if row_clause is not None else len(d)
    lb, ub = np.full(len(d), -np.inf), np.full(len(d), np.inf)
    used = "ibp"
    for stage in METHOD_STAGES[method]:
        if stage in skip and method == "auto":
            continue
        if deadline.passed() or (method == "auto" and stage != "ibp" and _margin(lb + d, grouping, groups) > 0):
            break
        with torch.no_grad():
            if stage == "ibp":
                slb, sub = ibp_objective(problem.graph, lower[None], upper[None], Ct)
            elif stage == "crown":
                res = crown(problem.graph, lower[None], upper[None], Ct)
                slb, sub = res.lb, res.ub
        if stage == "alpha":
            slb = alpha_crown(problem.graph, lower[None], upper[None], Ct, deadline=deadline.at).lb
            sub = torch.full_like(slb, float("inf"))
        slb, sub = slb[0].detach().cpu().double().numpy(), sub[0].detach().cpu().double().numpy()
        if _margin(np.maximum(lb, slb) + d, grouping, groups) > _margin(lb + d, grouping, groups) or stage == method:
            used = stage
        lb, ub = np.maximum(lb, slb), np.minimum(ub, sub)
    return lb, ub, used


def _judged(problem: Problem, index: int, bounds: ObjectiveBounds, semantics: str) -> ObjectiveBounds:
    """The bounds with every row lower bound that does not prove (`margin_check.proves`: above the float32
    error bound under float32 semantics, and clear of the bound's rounding) lowered to at most 0, so that
    the stage proves a clause only by rows that prove; those left go to branch and bound."""
    import torch

    from verifier.bounds.margin_check import proves, row_allowance

    from verifier.bounds.crown import intermediate_bounds

    prop = problem.spec.properties[index]
    if not prop.clauses or not bool(np.any(bounds.lb > 0)):
        return bounds  # nothing that would prove: nothing to judge
    lower, upper, _ = _tensors(prop, problem)
    C = torch.as_tensor(np.concatenate([c.C for c in prop.clauses]), device=problem.device, dtype=problem.dtype)
    with torch.no_grad():
        known = intermediate_bounds(problem.graph, lower[None], upper[None])
    allow = row_allowance(problem.graph, lower, upper, C, semantics, known)
    lb = torch.as_tensor(bounds.lb, device=problem.device).to(problem.dtype)  # exact: computed in that dtype
    ok = proves(lb, allow)[0].cpu().numpy()
    return replace(bounds, lb=np.where(ok, bounds.lb, np.minimum(bounds.lb, 0.0)))


def _margin(row_lb: np.ndarray, row_clause: np.ndarray, n_clauses: int) -> float:
    """min over clauses of max over its rows of the lower bound: > 0 proves no clause can hold."""
    if n_clauses == 0:
        return -np.inf
    per_clause = [row_lb[row_clause == j].max() if np.any(row_clause == j) else -np.inf for j in range(n_clauses)]
    return float(min(per_clause))


def make_options(**options: Any) -> VerifyOptions:
    """VerifyOptions from keywords, with a clear error for a misspelt one."""
    from dataclasses import fields

    known = {f.name for f in fields(VerifyOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return VerifyOptions(**options)


def compute_bounds(model: Any, spec: Any, **options: Any) -> list[dict[str, Any]]:
    """Bounds of every spec objective row (C·y + d) and of every output, per property (the `bounds` command)."""
    opts = make_options(**options)
    deadline = _Deadline(opts.timeout, time.monotonic())
    problem = load_problem(model, spec, opts)
    out = []
    for i in range(len(problem.spec.properties)):
        rows = bound_property(problem, i, opts.method, deadline)
        lower, upper, _ = _tensors(problem.spec.properties[i], problem)
        eye = np.eye(problem.graph.n_outputs)
        out_lb, out_ub, _ = bound_rows(problem, lower, upper, eye, np.zeros(len(eye)), opts.method, deadline)
        out.append({
            "property": i,
            "objective_lower": rows.lb.tolist(), "objective_upper": rows.ub.tolist(),
            "objective_clause": rows.row_clause.tolist(),
            "output_lower": out_lb.tolist(), "output_upper": out_ub.tolist(),
            "method": rows.method,
        })
    return out


def verify(model: Any, spec: Any, progress: ProgressFn | None = None, **options: Any) -> Result:
    """Verify `spec` on `model`; both may be paths or loaded objects. Never raises for bad input: see Result.

    `progress`, if given, is called with a `verifier.progress.Progress` at each stage and, during branch
    and bound, every 0.2 s at most (domains bounded and open, worst open bound)."""
    start = time.monotonic()
    times: dict[str, float] = {}
    names = (str(getattr(model, "path", model)), str(getattr(spec, "source", spec)))
    semantics = "real"  # what the result claims (options may fail to parse)
    try:
        opts = options.pop("options", None) or make_options(**options)
        semantics = opts.semantics
        deadline = _Deadline(opts.timeout, start)
        report = Reporter(progress, start, opts.timeout)
        report("load")
        problem = load_problem(model, spec, opts)
        times["load"] = time.monotonic() - start
        proofs: dict[tuple[int, int], Any] | None = {} if opts.certificate else None
        result = _solve(problem, opts, deadline, times, report, proofs)
        if opts.certificate:
            t = time.monotonic()
            result = replace(result, certificate=_certificate(problem, opts, result, proofs or {}))
            times["certificate"] = time.monotonic() - t
    except VerifierError as err:
        code = EXIT_BAD_INPUT if isinstance(err, InputError) else EXIT_INTERNAL
        result = Result(ERROR, message=str(err), exit_code_override=code)
    except (MemoryError, RuntimeError) as err:  # torch.OutOfMemoryError is a RuntimeError
        if not isinstance(err, MemoryError) and type(err).__name__ != "OutOfMemoryError":
            raise
        result = Result(UNKNOWN, message=f"out of memory ({type(err).__name__}): this model's bounds need more "
                                         "memory than the device has; try --preset fast, or --device cpu")
    times["total"] = time.monotonic() - start
    return replace(result, times=times, model=names[0], spec=names[1], semantics=semantics)


# Stages in the order they run; an unsat verdict names the strongest stage any property needed.
STAGE_ORDER = ("ibp", "crown", "alpha", "bab")


def _certificate(problem: Problem, opts: VerifyOptions, result: Result,
                 proofs: dict[tuple[int, int], Any]) -> dict[str, Any]:
    """Write (and check, if asked) the certificate of an unsat; the result's "certificate" object."""
    from verifier import __version__
    from verifier.certificate.writer import no_certificate, write_and_check

    if result.verdict != UNSAT:
        return no_certificate(f"no certificate for a {result.verdict} verdict", opts.certificate)
    spec = problem.spec
    missing = [(i, j) for i, p in enumerate(spec.properties) for j in range(len(p.clauses)) if (i, j) not in proofs]
    if missing:
        return no_certificate(f"{len(missing)} clause(s) have no recorded proof", opts.certificate)
    if not spec.source:
        return no_certificate("the spec was not read from a file", opts.certificate)
    widths = tuple(int(np.prod(n.shape)) for n in problem.graph.nodes if n.op == "relu")
    from verifier.certificate.intermediate import intermediate_slopes
    from verifier.certificate.writer import ReluTreeProof

    reads = _checker_reads(str(problem.model.path))
    if reads:
        proofs = _carry_stage_slopes(problem, proofs)
    intermediate = {}  # the relu-split properties' slopes for the checker's pre-activation bounds
    relu_props = sorted({i for (i, _), proof in proofs.items() if isinstance(proof, ReluTreeProof)})
    if relu_props and reads:
        for i in relu_props:
            lower, upper, _ = _tensors(spec.properties[i], problem)
            intermediate[i] = intermediate_slopes(problem.graph, lower, upper)
    return write_and_check(str(opts.certificate), str(problem.model.path), spec.source, proofs, widths,
                           __version__, opts.check_certificate, spec, intermediate)


def _carry_stage_slopes(problem: Problem, proofs: dict[tuple[int, int], Any], seconds: float = 30.0,
                        ) -> dict[tuple[int, int], Any]:
    """Clauses the alpha-CROWN stage closed carry no slopes (the stage keeps them): each is proved
    again by the ReLU-split search with a recorder (its root domain, alpha optimised there, usually
    closes at once), whose one-leaf tree carries the slopes; where that fails the stage proof stays."""
    from verifier.bab.relu_split import ReluSplitConfig, RootBounds, relu_split_bab
    from verifier.certificate.writer import ReluTreeProof, StageProof

    out = dict(proofs)
    config = ReluSplitConfig()
    roots: dict[int, Any] = {}
    for (i, j), proof in sorted(proofs.items()):
        if not (isinstance(proof, StageProof) and proof.method == "alpha"):
            continue
        lower, upper, clauses = _tensors(problem.spec.properties[i], problem)
        deadline = time.monotonic() + seconds
        if i not in roots:
            roots[i] = RootBounds(problem.graph, lower, upper, deadline, config)
        recorder = _relu_recorder()
        res = relu_split_bab(problem.graph, lower, upper, *clauses[j], deadline, lambda x: False, config,
                             root=roots[i], recorder=recorder)
        if res.verdict == UNSAT:
            out[(i, j)] = ReluTreeProof(recorder)
    return out


def _checker_reads(model_path: str) -> bool:
    """Whether the independent checker reads the model (else its certificate cannot be checked anyway)."""
    from verifier.certificate.network import UnsupportedModel, load_chain

    try:
        load_chain(model_path)
    except UnsupportedModel:
        return False
    return True


def _solve(problem: Problem, opts: VerifyOptions, deadline: _Deadline, times: dict[str, float],
           report: Reporter = SILENT, proofs: dict[tuple[int, int], Any] | None = None) -> Result:
    n = len(problem.spec.properties)
    t = time.monotonic()
    report("attack")
    for i in range(n):
        if deadline.passed():
            break
        cex = find_counterexample(problem, i, opts, deadline)
        if cex is not None:
            times["attack"] = time.monotonic() - t
            return Result(SAT, method="pgd", counterexample=cex, margin=None,
                          properties=(PropertyOutcome(i, SAT, "pgd", None),))
    times["attack"] = time.monotonic() - t
    t = time.monotonic()
    report("bounds")
    outcomes, open_clauses = [], {}
    for i in range(n):
        if deadline.passed():
            break
        # Input splitting re-bounds every box anyway: alpha-CROWN's iterations at the root buy little there.
        skip = ("alpha",) if _bab_mode(problem, opts) == "input" else ()
        bounds = _judged(problem, i, bound_property(problem, i, opts.method, deadline, skip), opts.semantics)
        n_clauses = len(problem.spec.properties[i].clauses)
        margin = _margin(bounds.lb, bounds.row_clause, n_clauses)
        proven = margin > 0
        outcomes.append(PropertyOutcome(i, UNSAT if proven else UNKNOWN, bounds.method if proven else None, margin))
        open_clauses[i] = [j for j in range(n_clauses) if _margin(bounds.lb[bounds.row_clause == j],
                                                                  bounds.row_clause[bounds.row_clause == j], 1) <= 0]
        if proofs is not None:
            from verifier.certificate.writer import StageProof

            for j in set(range(n_clauses)) - set(open_clauses[i] if not proven else []):
                proofs[(i, j)] = StageProof(bounds.method, int((bounds.row_clause == j).sum()))
    times["bounds"] = time.monotonic() - t
    if len(outcomes) < n:
        return _finish(TIMEOUT, outcomes, "timeout before every property was bounded")
    mode = _bab_mode(problem, opts)
    # Input splitting samples the open region for counterexamples as it goes, which in a few dims finds
    # what attacks would; ReLU splitting does not, so the strong attacks come first there.
    if mode == "relu" and opts.strong_attacks and any(o.verdict == UNKNOWN for o in outcomes):
        t = time.monotonic()
        report("strong attack")
        result = _strong_attack(problem, opts, outcomes, deadline)
        times["attack"] += time.monotonic() - t
        if result is not None:
            return result
    bab: dict[str, int] = {}  # what branch and bound did: domains bounded, open ones left
    if mode != "none" and any(o.verdict == UNKNOWN for o in outcomes):
        t, attacked = time.monotonic(), times["attack"]
        if mode == "input":
            def attack(current: list[PropertyOutcome]) -> Result | None:
                report("strong attack")
                began = time.monotonic()
                try:
                    return _strong_attack(problem, opts, current, deadline)
                finally:
                    times["attack"] += time.monotonic() - began

            interlude = attack if opts.strong_attacks and problem.graph.n_inputs >= opts.strong_attack_min_inputs \
                else None
            outcomes, result = _branch_and_bound(problem, outcomes, open_clauses, deadline, report, opts.seed,
                                                 bab, proofs, opts.semantics, interlude, opts.strong_attack_after)
        else:
            outcomes, result = _relu_split(problem, outcomes, open_clauses, deadline, opts.seed, report, bab, proofs,
                                           opts.semantics, opts.memory_share)
        times["bab"] = time.monotonic() - t - (times["attack"] - attacked)  # the interlude's attacks: under attack
        if result is not None:
            return result
    if all(o.verdict == UNSAT for o in outcomes):
        result = _finish(UNSAT, outcomes)
    elif any(o.verdict == TIMEOUT for o in outcomes):
        result = _finish(TIMEOUT, outcomes, "timeout during branch and bound")
    else:
        result = _finish(UNKNOWN, outcomes, "no bound proves the property and no attack found a counterexample")
    return replace(result, bab=bab or None)


def _strong_attack(problem: Problem, opts: VerifyOptions, outcomes: list[PropertyOutcome],
                   deadline: _Deadline) -> Result | None:
    """The larger attacks on the properties still open, in turn, within `strong_attack_share` of the time
    left: branch and bound proves far better than it searches, and a sat instance it cannot prove costs it
    the whole timeout, where a long descent or many starts find most such points in seconds."""
    budget = _Deadline(opts.strong_attack_share * max(0.0, deadline.at - time.monotonic()), time.monotonic())
    for attack in opts.strong_attacks:
        for i, outcome in enumerate(outcomes):
            if outcome.verdict != UNKNOWN or budget.passed():
                continue
            cex = find_counterexample(problem, i, opts, budget, attack)
            if cex is not None:
                return _sat(outcomes, i, "pgd", cex)[1]
    return None


def _sat(outcomes: list[PropertyOutcome], index: int, method: str, cex: Counterexample,
         ) -> tuple[list[PropertyOutcome], Result]:
    """The outcomes with property `index` falsified by `method`, and the sat result carrying `cex`."""
    updated = list(outcomes)
    updated[index] = PropertyOutcome(index, SAT, method, None)
    return updated, Result(SAT, method=method, counterexample=cex, properties=tuple(updated))


def _finish(verdict: str, outcomes: list[PropertyOutcome], message: str = "") -> Result:
    margin = min((o.margin for o in outcomes if o.margin is not None), default=None)
    method = None
    if verdict == UNSAT:
        method = max((o.method for o in outcomes), key=lambda m: STAGE_ORDER.index(m or "ibp"))
    return Result(verdict, method=method, margin=margin, properties=tuple(outcomes), message=message)


def _bab_mode(problem: Problem, opts: VerifyOptions) -> str:
    """auto: input split for low-dimensional inputs, ReLU split otherwise."""
    if opts.bab == "auto":
        return "input" if problem.graph.n_inputs <= opts.input_split_max_dims else "relu"
    return opts.bab


def _accepting(problem: Problem, index: int, clause_index: int, found: list[Counterexample]) -> Any:
    """The BaB callback: replay x on onnxruntime; a real counterexample is appended to `found`."""
    def accept(x: Any) -> bool:
        cex = replay(problem, index, clause_index, x)
        if cex is not None:
            found.append(cex)
        return cex is not None

    return accept


def _branch_and_bound(problem: Problem, outcomes: list[PropertyOutcome], open_clauses: dict[int, list[int]],
                      deadline: _Deadline, report: Reporter = SILENT, seed: int = 0,
                      stats: dict[str, int] | None = None, proofs: dict[tuple[int, int], Any] | None = None,
                      semantics: str = "real",
                      interlude: Callable[[list[PropertyOutcome]], Result | None] | None = None,
                      interlude_after: float = 1.0) -> tuple[list[PropertyOutcome], Result | None]:
    """Input-split BaB on every open (box, clause) root, sharing the time round-robin in doubling
    slices, so that a root with a counterexample is not starved by a hard unsat root before it.
    `interlude` (the strong attacks), when given, runs once after `interlude_after` seconds of it, on the
    properties not yet proved; a result it returns (sat) ends the run.
    Unsat needs every root; the first replayed counterexample ends the run. An undecided property's
    margin is the best bound the search reached (per open root, the best member's worst open box);
    `stats` gets the boxes bounded and those left open. With `proofs`, every search records its split
    tree, and each unsat root's winning tree goes there (certificates)."""
    from verifier.bab.input_split import InputSplitConfig, InputSplitSearch
    from verifier.bab.portfolio import TimeShares

    # A GPU wants far bigger batches than a 2-core CPU to be busy; memory is no concern for few inputs.
    gpu = str(problem.device).startswith("cuda")
    base = InputSplitConfig(batch_size=16384 if gpu else 2048, seed=seed, semantics=semantics)
    # A portfolio per root, sharing its time; the first to decide wins. Which dims to split is
    # instance-dependent (on ACAS Xu, weight 1.0 proves 1_4 prop_1 in 677 boxes where 0.3 times out,
    # and 0.3 proves 2_7 prop_1 in 2k boxes where 1.0 needs 14k); and on steep networks CROWN's
    # intermediate bounds stay loose on tiny boxes, where alpha-CROWN per layer, 20-60x dearer per
    # box, proves them (4_7 prop_1: unsat in 819 boxes, 13 s, where CROWN's search times out).
    # The weight-0.3 member optimises the objective's slopes on the boxes CROWN leaves open
    # (alpha-CROWN, 5 steps, once 4096 boxes are bounded) and splits along the optimised bounds'
    # coefficients: 3_3 and 4_2 prop_2 (thin margins near ties of three outputs) are unsat in 25-30 s
    # alone, where CROWN stalls with 2% of the volume open. The others do not: on prop_1's steep nets
    # the optimised coefficients hide the dims that loosen the bound (2_8, 2_9, 4_9 prop_1 stay open,
    # where weight 1.0 on CROWN's proves them in 6-13 s), and the slower batches would sample the open
    # region for counterexamples 3-4x more slowly (reach_prob_density robot_0/10/11: sat in 12 s
    # without, 30-50 s with it in every member).
    configs = [replace(base, width_weight=0.3), replace(base, width_weight=1.0, objective_alpha=0)]
    configs.append(replace(base, intermediate="alpha", objective_alpha=0, batch_size=2048 if gpu else 256,
                           seed=seed + 1))

    roots: dict[tuple[int, int], list[Any]] = {}
    found: list[Counterexample] = []
    for i, outcome in enumerate(outcomes):
        if outcome.verdict != UNKNOWN:
            continue
        lower, upper, clauses = _tensors(problem.spec.properties[i], problem)
        for j in open_clauses[i]:
            accept = _accepting(problem, i, j, found)
            roots[(i, j)] = [InputSplitSearch(problem.graph, lower, upper, *clauses[j], accept, c,
                                              recorder=_recorder() if proofs is not None else None) for c in configs]
    done: dict[tuple[int, int], Any] = {}

    def tick() -> None:
        if not report.due("input split"):
            return
        searching = [searches for key, searches in roots.items() if key not in done]
        report("input split", domains=sum(s.domains for ss in roots.values() for s in ss),
               open=sum(s.open_boxes for ss in searching for s in ss),
               worst_bound=min((max(s.bound for s in ss) for ss in searching), default=None),
               roots_done=len(done), roots=len(roots))

    # Each round gives every open root time_slice per member, split among its members by TimeShares
    # (more to the one closing the root fastest).
    # The alpha-per-layer member, far dearer per box, starts with a small share (its wins are rare,
    # on roots that outlast the warmup: the others' stall then hands it the time).
    prior = tuple(0.25 if c.intermediate == "alpha" else 1.0 for c in configs)
    shares = {key: TimeShares(len(searches), prior=prior) for key, searches in roots.items()}
    time_slice = 0.25
    started = time.monotonic()
    while len(done) < len(roots) and not deadline.passed():
        if interlude is not None and time.monotonic() - started >= interlude_after:
            proved = {i for i, _ in roots if all((i, j) in done for j in open_clauses[i])}
            result = interlude([replace(o, verdict=UNSAT) if o.index in proved else o for o in outcomes])
            interlude = None
            if result is not None:
                return outcomes, result
        for key, searches in roots.items():
            round_shares = shares[key].shares()
            for member, search in enumerate(searches):
                if key in done or deadline.passed():
                    break
                began = time.monotonic()
                res = search.run(min(began + time_slice * len(searches) * round_shares[member], deadline.at),
                                 tick if report.active else None, deadline.at)
                shares[key].record(member, search.open_volume, time.monotonic() - began)
                if res is None:
                    continue
                if res.verdict == SAT:
                    return _sat(outcomes, key[0], "bab", found[0])
                done[key] = res
                if proofs is not None and res.verdict == UNSAT:
                    from verifier.certificate.writer import TreeProof

                    proofs[key] = TreeProof(search.rec, search.rows_mix.numpy())
        time_slice = min(2 * time_slice, 2.0)  # rounds short enough for the shares to follow progress
    updated = list(outcomes)
    def reached(s: Any) -> float:  # its open boxes' bound; boxes too small to split left the frontier unproved
        return s.bound if not s.stuck else min(s.bound, s.worst)

    best = {key: max(searches, key=reached) for key, searches in roots.items() if key not in done}
    for i in {i for i, _ in roots}:
        mine = [done.get((i, j)) for j in open_clauses[i]]
        if all(r is not None and r.verdict == UNSAT for r in mine):
            updated[i] = PropertyOutcome(i, UNSAT, "bab", min(r.margin for r in mine))
        else:
            verdict = UNKNOWN if all(r is not None for r in mine) else TIMEOUT
            bounds = [r.margin for r in mine if r is not None and r.verdict != UNSAT]
            bounds += [reached(best[(i, j)]) for j in open_clauses[i] if (i, j) in best]
            finite = [b for b in bounds if math.isfinite(b)]  # +inf: a frontier empty between two steps
            updated[i] = PropertyOutcome(i, verdict, None, min(finite) if finite else outcomes[i].margin)
    if stats is not None:
        stats.update(domains=sum(s.domains for ss in roots.values() for s in ss),
                     open=sum(s.open_boxes for s in best.values()))
    return updated, None


def _recorder() -> Any:
    from verifier.certificate.recorder import SplitRecorder

    return SplitRecorder()


def _relu_recorder() -> Any:
    from verifier.certificate.relu_recorder import ReluSplitRecorder

    return ReluSplitRecorder()


def _relu_split(problem: Problem, outcomes: list[PropertyOutcome], open_clauses: dict[int, list[int]],
                deadline: _Deadline, seed: int = 0, report: Reporter = SILENT, stats: dict[str, int] | None = None,
                proofs: dict[tuple[int, int], Any] | None = None, semantics: str = "real",
                memory_share: float = 1.0) -> tuple[list[PropertyOutcome], Result | None]:
    """ReLU-split BaB (alpha/beta-CROWN) on every open (box, clause) root in turn; unsat needs all. An
    undecided property's margin is the search's worst open bound once every open clause was searched
    (the root bound otherwise); `stats` gets the domains bounded. With `proofs`, each search records its
    proved domains, and each unsat root's go there (certificates)."""
    from verifier.bab.relu_split import ReluSplitConfig, RootBounds, relu_split_bab

    # A GPU needs thousands of domains a batch to be busy; that many is a ceiling there, which the search
    # lowers to what fits in the device's free memory at the bytes per domain it measures (see _BatchSizer;
    # on a Linux host the same from the peak resident set). On a CPU 1024 rather than 256 bounds 9-14% more
    # domains in 60 s on mnist_fc 256x4/256x6, but decided the same instances in the same time with the same
    # domains (256x4 prop_3 / prop_11 eps 0.05), so 256: less memory for nothing lost.
    gpu = str(problem.device).startswith("cuda")
    config = ReluSplitConfig(seed=seed, semantics=semantics, batch_size=4096 if gpu else 256,
                             memory_share=memory_share)
    updated = list(outcomes)
    n_roots = sum(len(open_clauses[i]) for i, o in enumerate(outcomes) if o.verdict == UNKNOWN)
    before = {"domains": 0, "roots_done": 0}  # totals of the roots already searched

    def tick(domains: int, open_: int, worst: float) -> None:
        report("relu split", domains=before["domains"] + domains, open=open_, worst_bound=worst,
               roots_done=before["roots_done"], roots=n_roots)

    for i, outcome in enumerate(outcomes):
        if outcome.verdict != UNKNOWN:
            continue
        lower, upper, clauses = _tensors(problem.spec.properties[i], problem)
        root = RootBounds(problem.graph, lower, upper, deadline.at, config)  # shared by the box's clauses
        results = []
        for j in open_clauses[i]:
            found: list[Counterexample] = []
            recorder = _relu_recorder() if proofs is not None else None
            res = relu_split_bab(problem.graph, lower, upper, *clauses[j], deadline.at,
                                 _accepting(problem, i, j, found), config, root=root,
                                 tick=tick if report.active else None, recorder=recorder)
            if recorder is not None and proofs is not None and res.verdict == UNSAT:
                from verifier.certificate.writer import ReluTreeProof

                proofs[(i, j)] = ReluTreeProof(recorder)
            before["domains"] += res.domains
            before["roots_done"] += 1
            if res.verdict == SAT:
                return _sat(updated, i, "bab", found[0])
            results.append(res)
            if res.verdict != UNSAT:
                break
        if len(results) == len(open_clauses[i]) and all(r.verdict == UNSAT for r in results):
            updated[i] = PropertyOutcome(i, UNSAT, "bab", min(r.margin for r in results))
        else:
            verdict = TIMEOUT if deadline.passed() else UNKNOWN
            searched = len(results) == len(open_clauses[i])
            bounds = [r.margin for r in results] + ([] if searched else [outcome.margin])
            finite = [b for b in bounds if math.isfinite(b)]  # -inf: a search that bounded nothing
            updated[i] = PropertyOutcome(i, verdict, None, min(finite) if finite else outcome.margin)
            break
    if stats is not None:
        stats.update(domains=before["domains"])
    return updated, None
