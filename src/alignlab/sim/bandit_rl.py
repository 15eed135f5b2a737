"""Policy optimisation on tabular worlds with a finite budget of judge calls: on-policy RL from the gold
reward (sampled, with the library's advantage estimators and policy losses), DPO on a finite set of labelled
pairs, ensembles of reward models fitted to noisy labels, and the exact KL-regularised optimum of a proxy.

Everything is a table ``[prompts, completions]`` (one completion = one action), so a run takes seconds and
the only noise is the sampling the method itself does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from alignlab.data.feedback import Feedback
from alignlab.objectives.advantages import ADVANTAGES, AdvantageInputs
from alignlab.objectives.kl_estimators import kl_penalised_rewards
from alignlab.objectives.policy_losses import POLICY_LOSSES
from alignlab.sim.tabular import TabularWorld


def _sample(probs: Tensor, prompts: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """``[n, k]`` completion indices drawn from ``probs[prompts]``."""
    return torch.multinomial(probs[prompts], k, replacement=True, generator=gen)


# ------------------------------------------------------------------------------------- online RL
@dataclass
class OnlineRun:
    policy: Tensor  # [X, Y] final probabilities
    judge_calls: int
    steps: int


def online_rl(
    world: TabularWorld,
    budget: int,
    beta: float,
    group_size: int = 4,
    prompts_per_step: int | None = None,
    lr: float = 0.1,
    estimator: str = "rloo",
    seed: int = 0,
) -> OnlineRun:
    """On-policy RL from the gold reward until ``budget`` judge calls are spent.

    Each step samples ``group_size`` completions for each of ``prompts_per_step`` prompts (all prompts by
    default) from the current policy, calls the judge once per completion (the world's gold reward),
    puts the KL in the reward (R − β·(log π_old − log π_ref), the k1 estimate of one-action sequences),
    takes advantages from the registered ``estimator`` and one Adam step on the REINFORCE loss. In
    expectation this is the gradient of E_π[r] − β·KL(π‖π_ref), whose optimum is π_ref·exp(r/β)/Z.
    """
    if world.reward is None:
        raise ValueError("online_rl needs the world's gold reward")
    gen = torch.Generator().manual_seed(seed)
    logits = world.init_logits()
    opt = torch.optim.Adam([logits], lr=lr)
    per_step = prompts_per_step or world.num_prompts
    calls = steps = 0
    while calls + per_step * group_size <= budget:
        with torch.no_grad():
            logp = torch.log_softmax(logits, -1)
            prompts = torch.multinomial(world.prompt_probs, per_step, replacement=True, generator=gen)
            actions = _sample(logp.exp(), prompts, group_size, gen)
            rows = prompts[:, None].expand_as(actions)
            gold = world.reward[rows, actions]
            kl = (logp[rows, actions] - world.ref_logp[rows, actions])[..., None]
            shaped = kl_penalised_rewards(gold, kl, torch.ones_like(kl), beta, per_token=False)
            advantages = ADVANTAGES(estimator, AdvantageInputs(shaped)).advantages
        calls += actions.numel()
        current = torch.log_softmax(logits, -1)[rows, actions][..., None]
        per_token, _ = POLICY_LOSSES(
            "reinforce", current, current.detach(), advantages, torch.ones_like(current)
        )
        opt.zero_grad()
        per_token.mean().backward()
        opt.step()
        steps += 1
    return OnlineRun(torch.softmax(logits.detach(), -1), calls, steps)


# ------------------------------------------------------------------------------ offline DPO on labels
def sample_labelled_pairs(
    world: TabularWorld, budget: int, seed: int = 0, flip_rate: float = 0.0
) -> tuple[Tensor, Tensor, Tensor]:
    """``budget`` judge calls, each labelling one pair (y, y') ~ π_ref of a prompt x ~ p(x) by the world's
    preference P(y ≻ y'|x) (Bradley–Terry on the gold reward), each label flipped with ``flip_rate``.
    Returns (prompt, chosen, rejected); a pair of identical completions carries no preference and is
    dropped (its call is still spent)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.multinomial(world.prompt_probs, budget, replacement=True, generator=gen)
    pair = _sample(world.ref_probs, x, 2, gen)
    a, b = pair[:, 0], pair[:, 1]
    p_a = world.preference[x, a, b]
    p_a = (1 - flip_rate) * p_a + flip_rate * (1 - p_a)
    a_wins = torch.rand(budget, generator=gen, dtype=torch.float64) < p_a
    keep = a != b
    chosen, rejected = torch.where(a_wins, a, b), torch.where(a_wins, b, a)
    return x[keep], chosen[keep], rejected[keep]


def dpo_on_pairs(
    world: TabularWorld, pairs: tuple[Tensor, Tensor, Tensor], beta: float, steps: int = 300
) -> Tensor:
    """Minimise the registered ``dpo`` loss over the given labelled pairs (the empirical loss, each pair
    weighted 1) from π_ref; returns the policy probabilities ``[X, Y]``."""
    x, chosen, rejected = pairs
    objective = world.build_objective("dpo", {"beta": beta})
    width = world.num_completions
    index = torch.stack([x * width + chosen, x * width + rejected], dim=1).reshape(-1)
    n = int(x.shape[0])
    feedback = Feedback(
        group_index=torch.arange(n).repeat_interleave(2),
        weight=torch.ones(n, dtype=torch.float64),
        ranks=torch.tensor([0.0, 1.0], dtype=torch.float64).repeat(n),
    )

    def loss_fn(logits: Tensor) -> Tensor:
        scores = world.completion_scores(torch.log_softmax(logits, -1)).with_(ratings=None).index(index)
        return objective(scores, feedback)[0]

    return world.train(None, loss_fn=loss_fn, steps=steps)


# ------------------------------------------------------------------------- proxy reward ensembles
def fit_reward_table(
    world: TabularWorld,
    pairs: tuple[Tensor, Tensor, Tensor],
    seed: int,
    init_scale: float = 1.0,
    anchor: float = 1e-3,
    bootstrap: bool = True,
) -> Tensor:
    """A proxy reward model ``[X, Y]``: a table fitted by Bradley–Terry to (a bootstrap resample of) the
    labelled pairs from a random initialisation N(0, init_scale²), with a weak pull ``anchor``·‖θ − θ₀‖²
    toward it. Completions the labels never reach keep their random initial value, so differently
    seeded members agree where there is data and disagree off it — the reward-model ensemble of Coste
    et al. in miniature (their members differ by pretraining seed)."""
    gen = torch.Generator().manual_seed(seed)
    x, w, lose = pairs
    if bootstrap:
        pick = torch.randint(0, int(x.shape[0]), (int(x.shape[0]),), generator=gen)
        x, w, lose = x[pick], w[pick], lose[pick]
    init = init_scale * torch.randn(
        world.num_prompts, world.num_completions, generator=gen, dtype=torch.float64
    )
    table = init.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([table], max_iter=300, line_search_fn="strong_wolfe", tolerance_grad=1e-10)

    def closure() -> Tensor:
        opt.zero_grad()
        margin = table[x, w] - table[x, lose]
        loss = -torch.nn.functional.logsigmoid(margin).mean() + anchor * ((table - init) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return table.detach()


def regularised_optimum(world: TabularWorld, reward: Tensor, beta: float) -> Tensor:
    """π(y|x) ∝ π_ref(y|x)·exp(R(x,y)/β): the exact maximiser of E_π[R] − β·KL(π‖π_ref) for a proxy R."""
    return torch.softmax(world.ref_logp + reward / beta, -1)


def standardise(tables: Tensor, world: TabularWorld) -> Tensor:
    """Each member ``[M, X, Y]`` shifted and scaled to mean 0, std 1 under p(x)·π_ref(y|x), the
    distribution its labels came from (Coste et al. normalise each RM on its evaluation completions)."""
    w = (world.prompt_probs[:, None] * world.ref_probs)[None]
    mean = (tables * w).sum((1, 2), keepdim=True)
    var = (((tables - mean) ** 2) * w).sum((1, 2), keepdim=True)
    return (tables - mean) / var.sqrt()
