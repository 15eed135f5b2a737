"""Multi-objective reward models: ArmoRM (ridge heads on frozen embeddings + a prompt gate) and DPA.

Stage 1 (:func:`fit_ridge`): for each rating j, ridge regression w_j = argmin Σ_i (w_jᵀ e_i − s_ij)² + α_j‖w_j‖²
over the examples where s_ij is present, no intercept, α_j picked on a validation split.
Verbosity de-correlation (:func:`verbosity_penalties`): r'_j = r_j − λ_j·r_verbosity with the smallest λ_j
on a grid making Spearman(r'_j, r_verbosity) ≤ 0.028 on a reference set.
Stage 2 (:func:`fit_gating`): g(x) = s·softmax(MLP(e(x))/T_g), R(x, y) = Σ_j g_j(x)·r'_j(x, y), trained with
BT on pairs, embeddings and W frozen.
Checked: RLHFlow/RLHF-Reward-Modeling armo-rm/stage-1_train.py (Ridge, fit_intercept=False, α grid)
and armo-rm/stage-2_train.py (GatingNetwork, find_proper_verbosity_penalties, BCEWithLogits on R_w − R_l).
As the paper describes (and unlike the checked code snapshot's loss), the gate mixes the de-biased r'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from alignlab.data.reward_templates import render_context
from alignlab.judges.base import Judge, Prompt, check_lengths
from alignlab.judges.registry import register_judge

ALPHAS = tuple(10.0**p for p in range(-4, 5))


def ridge(e: Tensor, s: Tensor, alpha: float) -> Tensor:
    """Closed-form ridge without intercept: (EᵀE + αI)⁻¹ Eᵀ s."""
    e, s = e.double(), s.double()
    gram = e.T @ e + alpha * torch.eye(e.shape[1], dtype=e.dtype)
    return torch.linalg.solve(gram, e.T @ s).float()


def fit_ridge(
    embeddings: Tensor,
    ratings: Tensor,
    alphas: Sequence[float] = ALPHAS,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[Tensor, list[float]]:
    """(W [k, H], chosen α per rating) from embeddings [N, H] and ratings [N, k] (NaN = missing)."""
    n, k = ratings.shape
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    n_val = max(1, int(n * val_fraction))
    val, train = order[:n_val], order[n_val:]
    weights, chosen = [], []
    for j in range(k):
        present = ~torch.isnan(ratings[:, j])
        tr, va = train[present[train]], val[present[val]]
        if len(tr) == 0:
            raise ValueError(f"armorm: rating {j} has no examples to fit")
        best = min(
            alphas,
            key=lambda a: (
                float(
                    ((embeddings[va] @ ridge(embeddings[tr], ratings[tr, j], a)) - ratings[va, j])
                    .pow(2)
                    .mean()
                )
                if len(va)
                else 0.0
            ),
        )
        rows = present.nonzero()[:, 0]
        weights.append(ridge(embeddings[rows], ratings[rows, j], best))
        chosen.append(best)
    return torch.stack(weights), chosen


def verbosity_penalties(
    rewards: Tensor, verbosity_index: int, threshold: float = 0.028, grid: Sequence[float] | None = None
) -> Tensor:
    """The de-correlation matrix T [k, k] (r' = T r): row j = e_j − λ_j e_verbosity, λ_j the smallest grid value
    with Spearman(r_j − λ_j r_v, r_v) ≤ threshold on ``rewards`` [N, k] (a reference set)."""
    from scipy.stats import spearmanr

    grid = list(grid) if grid is not None else [i / 100 for i in range(0, 201)]
    k = rewards.shape[1]
    transform = torch.eye(k)
    r_v = rewards[:, verbosity_index].numpy()
    for j in range(k):
        if j == verbosity_index:
            continue
        for lam in grid:
            corr = spearmanr(rewards[:, j].numpy() - lam * r_v, r_v)[0]
            if corr <= threshold:
                transform[j, verbosity_index] = -lam
                break
    return transform


class GatingNetwork(nn.Module):
    """g(x) = s·softmax(MLP(e(x)) / T_g): non-negative weights over the k objectives (sum s)."""

    def __init__(self, in_dim: int, k: int, hidden: int = 1024, layers: int = 3, temperature: float = 10.0):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*blocks, nn.Linear(dims[-1], k))
        self.temperature = temperature
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, prompt_embeddings: Tensor) -> Tensor:
        return self.scale * F.softmax(self.mlp(prompt_embeddings) / self.temperature, dim=-1)


def gated_reward(gate: Tensor, rewards: Tensor) -> Tensor:
    """R = Σ_j g_j r'_j for gate [N, k] and de-biased rewards [N, k]."""
    return (gate * rewards).sum(-1)


def fit_gating(
    prompt_emb: Tensor,
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    hidden: int = 1024,
    layers: int = 3,
    temperature: float = 10.0,
    epochs: int = 200,
    lr: float = 1e-3,
    seed: int = 0,
) -> GatingNetwork:
    """Train the gate with BT on pairs: L = −log σ(R(x, y_w) − R(x, y_l)); rewards are the frozen r' [P, k]."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = GatingNetwork(prompt_emb.shape[1], chosen_rewards.shape[1], hidden, layers, temperature)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(epochs):
        g = net(prompt_emb)
        loss = -F.logsigmoid(gated_reward(g, chosen_rewards) - gated_reward(g, rejected_rewards)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@register_judge("armorm", paper="Wang et al. 2024 ArmoRM (arXiv 2406.12845)")
class ArmoRMJudge(Judge):
    """Interpretable multi-objective RM: r' = T·W·e(x, y) per rating, mixed by a prompt gate g(x) into R."""

    def __init__(
        self,
        embedder: Any,
        weights: Tensor,
        transform: Tensor | None = None,
        gate: GatingNetwork | None = None,
        attribute_names: list[str] | None = None,
    ):
        self.embedder, self.weights, self.gate = embedder, weights, gate
        self.transform = transform if transform is not None else torch.eye(weights.shape[0])
        self.attribute_names = attribute_names

    def attributes(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        """[N, k]: the de-biased per-rating rewards r'."""
        e = self.embedder.embed(prompts, completions)
        return e @ self.weights.T @ self.transform.T

    def prompt_embeddings(self, prompts: Sequence[Prompt]) -> Tensor:
        # e(x): the pooled state of the prompt followed by an empty line (the engine needs a completion).
        return self.embedder.embed([render_context(p) for p in prompts], ["\n"] * len(prompts))

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        check_lengths(prompts, completions)
        r = self.attributes(prompts, completions)
        if self.gate is None:
            return r
        with torch.no_grad():
            return gated_reward(self.gate(self.prompt_embeddings(prompts)), r)


@register_judge(
    "dpa_directional_rm", paper="Wang et al. 2024 DPA 'Arithmetic Control of LLMs' (arXiv 2402.18571)"
)
class DirectionalJudge(Judge):
    """A multi-objective judge read along a user direction v: R_v(x, y) = vᵀ r(x, y) (v normalised to unit length)."""

    def __init__(self, multi: Judge, direction: Sequence[float], normalize: bool = True):
        v = torch.tensor(list(direction), dtype=torch.float32)
        if v.dim() != 1 or v.numel() == 0 or float(v.norm()) == 0:
            raise ValueError(f"direction must be a non-zero vector, got {list(direction)}")
        self.multi, self.direction = multi, v / v.norm() if normalize else v

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Tensor:
        r = self.multi.score(prompts, completions)
        if r.dim() != 2 or r.shape[1] != self.direction.numel():
            raise ValueError(
                f"direction has {self.direction.numel()} entries but the judge gives {tuple(r.shape)} scores; "
                "use one entry per attribute"
            )
        return r @ self.direction
