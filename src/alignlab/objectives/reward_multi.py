"""Reward-model objectives beyond one scalar per pair: multi-objective regression (ArmoRM stage 1),
multi-dataset weighting (MORE), the pairwise preference model (PairPM) and the autoregressive RM (GenARM).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from alignlab.data.records import Record
from alignlab.data.reward_templates import PAIR_PM_TEMPLATE, render_context
from alignlab.objectives.registry import objective
from alignlab.objectives.reward import bt_loss, reward_metrics, scalar_rewards
from alignlab.objectives.state import StepStatistics
from alignlab.objectives.views import ListBatch, PairBatch

# ----------------------------------------------------------------------------- ArmoRM stage 1


@objective(
    "armorm",
    family="reward_model",
    feedback="scores",
    needs=("rewards",),
    paper="Wang et al. 2024 ArmoRM 'Interpretable Preferences via Multi-Objective Reward Modeling and MoE' "
    "(arXiv 2406.12845)",
)
def armorm(batch: ListBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """Multi-objective absolute-rating regression: L = mean over present (k, j) of (r_j(x, y_k) − s_kj)².

    One head output per named rating (model.num_attributes = number of ratings, in the data's sorted
    rating-name order); missing ratings (NaN) are left out. With weight decay α this is ArmoRM stage 1's
    ridge regression trained end to end; the paper's exact recipe (closed-form ridge on a frozen body,
    then the gating network of stage 2) is :func:`alignlab.judges.armorm.fit_ridge` / ``fit_gating``.
    Checked: RLHFlow/RLHF-Reward-Modeling armo-rm/stage-1_train.py (Ridge per objective, no intercept,
    fit only where the rating is present).
    """
    r, s = batch.items.rewards, batch.items.ratings
    if r is None or s is None:
        raise ValueError("armorm: needs reward-head outputs and named ratings (records with `scores`)")
    if r.dim() == 2:
        r = r[..., None]
    if r.shape[-1] != s.shape[-1]:
        raise ValueError(
            f"armorm: the model has {r.shape[-1]} outputs but the data has {s.shape[-1]} ratings "
            f"({batch.rating_names}); set model.num_attributes: {s.shape[-1]}"
        )
    present = batch.mask[..., None] & ~torch.isnan(s)
    err = torch.where(present, (r - torch.nan_to_num(s)) ** 2, torch.zeros_like(r))
    per_group = err.sum((1, 2)) / present.sum((1, 2)).clamp(min=1)
    with torch.no_grad():
        per_rating = err.sum((0, 1)) / present.sum((0, 1)).clamp(min=1)
        metrics = {f"mse/{name}": per_rating[i] for i, name in enumerate(batch.rating_names)}
    return per_group, metrics


# ----------------------------------------------------------------------------- MORE

MORE_TASK = "__more_task"


def more_tag_tasks(records: list[Record], task_field: str = "source") -> list[Record]:
    """Tag every record with the index of its dataset (``record.source`` or ``meta[task_field]``).

    The index rides to the objective as the only rating (``__more_task``) of each completion: MORE
    learns from the rankings, so any other ratings are dropped here.
    """
    names = sorted({str(_task_of(r, task_field)) for r in records})
    index = {name: i for i, name in enumerate(names)}
    out = []
    for r in records:
        task = float(index[str(_task_of(r, task_field))])
        out.append(dataclasses.replace(r, scores=[{MORE_TASK: task} for _ in r.completions]))
    return out


def _task_of(record: Record, field: str) -> Any:
    if field == "source":
        return record.source
    return record.meta.get(field)


def min_norm_weights(grads: Tensor, iterations: int = 2000) -> Tensor:
    """λ on the simplex minimising ‖Σ_m λ_m g_m‖² (the MGDA min-norm point).

    Exact for up to 10 tasks: every support set S is tried, solving the KKT system
    [G_S 1; 1ᵀ 0][λ; μ] = [0; 1] (G the Gram matrix), and the feasible (λ ≥ 0) solution of least norm is
    kept. More tasks fall back to Frank–Wolfe with exact line search, as the checked code does
    (dunzeng/MORE min_norm_solvers.py MinNormSolver.find_min_norm_element_FW).
    """
    m = grads.shape[0]
    if m == 1:
        return grads.new_ones(1)
    gram = (grads @ grads.T).double()
    if m <= 10:
        best, best_value = None, math.inf
        for mask in range(1, 2**m):
            support = [i for i in range(m) if mask >> i & 1]
            k = len(support)
            system = torch.zeros(k + 1, k + 1, dtype=torch.float64)
            system[:k, :k] = gram[support][:, support]
            system[:k, k] = 1.0
            system[k, :k] = 1.0
            rhs = torch.zeros(k + 1, dtype=torch.float64)
            rhs[k] = 1.0
            solution = torch.linalg.lstsq(system, rhs[:, None]).solution[:, 0]
            lam_s = solution[:k]
            if (lam_s < -1e-12).any() or abs(float(lam_s.sum()) - 1.0) > 1e-8:
                continue
            lam = torch.zeros(m, dtype=torch.float64)
            lam[support] = lam_s.clamp(min=0)
            value = float(lam @ gram @ lam)
            if value < best_value - 1e-15:
                best, best_value = lam, value
        if best is not None:
            return best.to(grads.dtype)
    lam = torch.full((m,), 1.0 / m, dtype=torch.float64)
    for _ in range(iterations):
        t = int(torch.argmin(gram @ lam))
        v_v, v_t, t_t = lam @ gram @ lam, (gram[t] * lam).sum(), gram[t, t]
        denom = v_v - 2 * v_t + t_t
        if denom <= 1e-15:
            break
        gamma = float(((v_v - v_t) / denom).clamp(0.0, 1.0))
        lam = (1 - gamma) * lam
        lam[t] += gamma
    return lam.to(grads.dtype)


def _more_tasks(batch: PairBatch) -> Tensor:
    if batch.chosen.ratings is None:
        raise ValueError(
            "more: the records were not tagged with their dataset (its prepare hook did not run)"
        )
    return batch.chosen.ratings[..., 0].long()  # the only rating: the dataset index


def _check_normalize(normalize: str) -> None:
    if normalize not in ("none", "l2", "loss"):
        raise ValueError(f"more: normalize must be none, l2 or loss, got '{normalize}'")


def _more_rows(batch: PairBatch) -> Tensor:
    """Per pair: [task, −σ(−Δ)·(h_w − h_l) (the BT loss's gradient w.r.t. the head's weight), BT loss]."""
    rw, rl = scalar_rewards(batch, "more")
    tasks = _more_tasks(batch)
    hw, hl = batch.chosen.hidden, batch.rejected.hidden
    if hw is None or hl is None:
        raise ValueError("more: needs the pooled hidden states (needs 'hidden')")
    coef = -torch.sigmoid(-(rw - rl)).double()
    grads = coef[:, None] * (hw.double() - hl.double())
    return torch.cat([tasks.double()[:, None], grads, bt_loss(rw, rl).double()[:, None]], 1)


def _more_fold(state: dict[str, Any], rows: Tensor, alpha: float = 1.0, normalize: str = "none") -> None:
    """The step's per-task gradients (means over the task's pairs of the whole step), their EMA, and the
    min-norm λ: ``state["task_weights"][t] = T·λ_t`` for the T tasks of the step."""
    _check_normalize(normalize)
    tasks = rows[:, 0].long()
    present = sorted(set(tasks.tolist()))
    grads, losses = [], []
    for t in present:
        sel = tasks == t
        g = rows[sel, 1:-1].mean(0)
        key = f"grad_{t}"
        g = g if key not in state else (1 - alpha) * state[key].to(g) + alpha * g
        state[key] = g.clone()
        grads.append(g)
        losses.append(float(rows[sel, -1].mean()))
    if normalize == "l2":
        grads = [g / (g.norm() if g.norm() > 0 else 1.0) for g in grads]
    elif normalize == "loss":
        shifted = [1.0 + x for x in losses]
        total = sum(shifted)
        grads = [g / (x / total) for g, x in zip(grads, shifted)]
    lam = min_norm_weights(torch.stack(grads)) if len(present) > 1 else torch.ones(1, dtype=torch.float64)
    state["lambda"] = {str(t): float(lam[i]) for i, t in enumerate(present)}
    state["task_weights"] = {str(t): float(lam[i]) * len(present) for i, t in enumerate(present)}


@objective(
    "more",
    family="reward_model",
    feedback="rewards",
    needs=("rewards", "hidden"),
    prepare=more_tag_tasks,
    paper="Zeng et al. 2023 MORE 'On Diversified Preferences of Large Language Model Alignment' (arXiv 2312.07401)",
    step_statistics=StepStatistics(_more_rows, _more_fold, per_example=True),
)
def more(
    batch: PairBatch, state: dict, alpha: float = 1.0, normalize: str = "none"
) -> tuple[Tensor, dict[str, Tensor]]:
    """MORE: per-pair loss T·λ_{task}·(−log σ(r_w − r_l)), λ the min-norm point of the tasks' head gradients.

    Pairs are grouped by dataset (``record.source`` or ``meta[task_field]``). For each of the T datasets
    in the step's global batch (every micro-batch and process: per-example ``step_statistics``, so λ
    does not depend on how the step is cut), g_m = ∂/∂w of its mean BT loss w.r.t. the reward head's
    weight, computed on detached pooled states: g_m = mean over its pairs of −σ(−Δ)·(h_w − h_l); kept as
    an EMA ḡ_m ← (1−α)·ḡ_m + α·g_m (α = 1: no memory), optionally normalised (``l2``: ḡ/‖ḡ‖; ``loss``:
    ḡ/((1+L_m)/Σ(1+L))). λ = argmin_{λ∈simplex} ‖Σ λ_m ḡ_m‖² (exact for ≤ 10 tasks, else Frank–Wolfe),
    folded once per step before its loss. With one dataset λ = 1 and MORE = ``bt``. Evaluation moves
    nothing: it weights pairs with the last training step's T·λ (1 for a task that step did not see).
    Checked: dunzeng/MORE trainer.py (compute_lambda_noresampling, more_ranking_loss) and utils.py
    (gradient_normalizer); defaults alpha = 1, normalize = none from arguments.py.
    """
    rw, rl = scalar_rewards(batch, "more")
    tasks = _more_tasks(batch)
    _check_normalize(normalize)
    per_pair = bt_loss(rw, rl)
    weights = state.get("task_weights", {})
    pair_weight = torch.tensor([weights.get(str(t), 1.0) for t in tasks.tolist()], dtype=per_pair.dtype)
    metrics = reward_metrics(rw, rl)
    for t, value in state.get("lambda", {}).items():
        metrics[f"more/lambda_{t}"] = torch.tensor(value)
    return pair_weight.to(per_pair.device) * per_pair, metrics


# ----------------------------------------------------------------------------- PairPM


def pair_pm_records(records: list[Record], template: str = PAIR_PM_TEMPLATE) -> list[Record]:
    """Each pair (x, y_w, y_l) → two comparison records, in both orders, whose completions are the labels
    "A" and "B" ranked by which position holds y_w (the order swap removes position bias in training)."""
    out: list[Record] = []
    for r in records:
        if r.ranking is None or len(r.completions) != 2 or r.ranking[0] == r.ranking[1]:
            continue
        w, lose = (0, 1) if r.ranking[0] < r.ranking[1] else (1, 0)
        context = render_context(r.prompt)
        for first, second, label in ((w, lose, 0), (lose, w, 1)):
            text = template.format(prompt=context, a=r.completions[first], b=r.completions[second])
            ranking = [0, 1] if label == 0 else [1, 0]
            out.append(Record(text, ["A", "B"], ranking=ranking, weight=r.weight, source=r.source, meta={}))
    return out


@objective(
    "pair_pm",
    family="reward_model",
    feedback="pairs",
    needs=(),
    prepare=pair_pm_records,
    paper="Dong et al. 2024 'RLHF Workflow' (arXiv 2405.07863); Munos et al. 2023 NLHF (arXiv 2312.00886)",
)
def pair_pm(batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
    """Pairwise preference model trained as a classifier: L = −log softmax(z_A, z_B)[label] = −log σ(ℓ_w − ℓ_l).

    The prepare hook turns each pair into comparison prompts (x, A, B) in both orders whose two
    completions are the labels "A" and "B"; ℓ = the causal LM's log-prob of the label completion (with
    the end-of-turn token the tokenizer adds, a constant-per-label factor the model learns). Inference
    (:class:`alignlab.judges.pair_pm.PairPMJudge`) averages P(A) over both orders.
    Checked: RLHFlow/RLHF-Reward-Modeling pair-pm/README.md (logits of "A"/"B", softmax, swap order).
    """
    lw, ll = batch.chosen.logps, batch.rejected.logps
    z = lw - ll
    with torch.no_grad():
        metrics = {"pair_pm/accuracy": (z > 0).float().mean(), "pair_pm/p_correct": torch.sigmoid(z).mean()}
    return -F.logsigmoid(z), metrics


# ----------------------------------------------------------------------------- GenARM


@objective(
    "genarm",
    family="reward_model",
    feedback="pairs",
    needs=(),
    paper="Xu et al. 2024 GenARM 'Reward Guided Generation with Autoregressive Reward Model' (arXiv 2410.08193)",
)
def genarm(batch: PairBatch, beta_r: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Autoregressive RM: r(x, y) = Σ_t log π_r(y_t | x, y_<t); L = −log σ(β_r·(log π_r(y_w|x) − log π_r(y_l|x))).

    The reward is a causal LM's own sequence log-prob, so it decomposes exactly into per-token rewards
    (used at decoding time: π(y_t|·) ∝ π_base(y_t|·)·π_r(y_t|·)^{1/β}). The loss equals DPO's with a
    uniform reference and β = β_r.
    Checked against the METHODS block (paper recall; no official code read).
    """
    z = beta_r * (batch.chosen.logps - batch.rejected.logps)
    with torch.no_grad():
        metrics = {"rewards/accuracies": (z > 0).float().mean(), "rewards/margins": z.mean()}
    return -F.logsigmoid(z), metrics
