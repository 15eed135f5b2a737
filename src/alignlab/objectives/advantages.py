"""Advantage estimators, one registry with ONE signature: ``estimator(inputs, *, hyper-parameters)``.

``inputs`` is an :class:`AdvantageInputs`; its tensors are laid out ``[groups, K]`` (one scalar outcome
reward per completion, K completions of each prompt) or ``[groups, K, T]`` (token rewards, with ``mask``
marking real completion tokens). The estimator returns :class:`Advantages` ``(advantages, returns)``:

- without ``mask``: shape ``[groups, K]``, one advantage per completion (each completion counts as one
  token, so "whiten over tokens" means "whiten over completions");
- with ``mask``: shape ``[groups, K, T]``, zero on padding. Outcome rewards ``[groups, K]`` given with a
  mask are placed on each completion's last real token (:func:`place_at_last_token`) wherever an
  estimator needs token rewards (``gae``, ``reinforce_pp``, ``remax``), as TRL's PPO and verl do.

Statistics (group means and stds, the whitening of ``reinforce_pp``) are taken over the whole rollout the
estimator is given: under several processes the rollout source gathers the rewards first (as TRL does),
so the advantages do not depend on the process count.

    from alignlab.objectives.advantages import ADVANTAGES, AdvantageInputs
    adv = ADVANTAGES("grpo", AdvantageInputs(rewards), scale="group").advantages
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from alignlab.objectives.rl_registry import Registry

ADVANTAGES = Registry("advantage estimator", signature=("inputs",))


class Advantages(NamedTuple):
    advantages: Tensor
    returns: Tensor


@dataclass(frozen=True)
class AdvantageInputs:
    """What an estimator reads. ``rewards``: ``[G, K]`` outcome or ``[G, K, T]`` token rewards;
    ``mask``: ``[G, K, T]`` real completion tokens (needed with token rewards); ``values``: the critic's
    ``V(s_t)`` with the shape of the advantages (``gae``); ``baseline``: ``[G]`` or ``[G, K]`` reward of a
    baseline completion, e.g. the greedy one (``remax``)."""

    rewards: Tensor
    mask: Tensor | None = None
    values: Tensor | None = None
    baseline: Tensor | None = None

    def __post_init__(self) -> None:
        r = self.rewards
        if r.dim() not in (2, 3):
            raise ValueError(
                f"advantage inputs: rewards must be [groups, K] or [groups, K, T], got {tuple(r.shape)}"
            )
        if r.dim() == 3 and self.mask is None:
            raise ValueError("advantage inputs: token rewards [groups, K, T] need a mask [groups, K, T]")
        if self.mask is not None and (self.mask.dim() != 3 or self.mask.shape[:2] != r.shape[:2]):
            raise ValueError(
                f"advantage inputs: mask must be [groups, K, T] = [{r.shape[0]}, {r.shape[1]}, T], "
                f"got {tuple(self.mask.shape)}"
            )
        if r.dim() == 3 and self.mask is not None and self.mask.shape != r.shape:
            raise ValueError(f"advantage inputs: mask {tuple(self.mask.shape)} != rewards {tuple(r.shape)}")
        want = tuple(self.mask.shape) if self.mask is not None else tuple(r.shape)
        if self.values is not None and tuple(self.values.shape) != want:
            raise ValueError(
                f"advantage inputs: values must have shape {want}, got {tuple(self.values.shape)}"
            )
        if self.baseline is not None and tuple(self.baseline.shape) not in (
            tuple(r.shape[:1]),
            tuple(r.shape[:2]),
        ):
            raise ValueError(
                f"advantage inputs: baseline must be [groups] or [groups, K] = {tuple(r.shape[:2])}, "
                f"got {tuple(self.baseline.shape)}"
            )

    @property
    def groups(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def group_size(self) -> int:
        return int(self.rewards.shape[1])

    def sequence_rewards(self) -> Tensor:
        """One reward per completion ``[G, K]``: the outcome reward, or the sum of its token rewards."""
        if self.rewards.dim() == 2:
            return self.rewards
        return (self.rewards * self.mask).sum(-1)

    def token_rewards(self) -> tuple[Tensor, Tensor]:
        """``(rewards [G, K, T], mask [G, K, T])``: without a mask, each completion is one token."""
        if self.mask is None:
            return self.rewards[..., None], torch.ones_like(self.rewards)[..., None]
        mask = self.mask.to(self.rewards.dtype)
        if self.rewards.dim() == 2:
            return place_at_last_token(self.rewards, mask), mask
        return self.rewards * mask, mask

    def per_token(self, per_completion: Tensor) -> Tensor:
        """Broadcast ``[G, K]`` advantages to ``[G, K, T]`` (zero on padding) when there is a mask."""
        if self.mask is None:
            return per_completion
        return per_completion[..., None] * self.mask.to(per_completion.dtype)

    def unshape(self, token_level: Tensor) -> Tensor:
        """Undo :meth:`token_rewards`' one-token view when there is no mask."""
        return token_level[..., 0] if self.mask is None else token_level


def place_at_last_token(rewards: Tensor, mask: Tensor) -> Tensor:
    """Token rewards ``[G, K, T]`` holding each outcome reward ``rewards[g, k]`` on the last real token of
    completion (g, k) (where TRL's PPO and verl put the reward-model score); zero elsewhere."""
    positions = torch.arange(mask.shape[-1], device=mask.device)
    last = torch.where(mask > 0, positions, -1).amax(-1, keepdim=True)  # [G, K, 1], -1 if empty
    out = torch.zeros(mask.shape, dtype=rewards.dtype, device=rewards.device)
    return out.scatter(-1, last.clamp(min=0), rewards[..., None]) * (last >= 0)


def masked_whiten(values: Tensor, mask: Tensor, std: str, epsilon: float) -> Tensor:
    """(x − mean) / sqrt(var) over the masked entries. ``std="unbiased"``: Bessel-corrected variance,
    x·rsqrt(var + ε) (verl ``masked_whiten``); ``"population"``: the biased variance, x·rsqrt(max(var, ε))
    (OpenRLHF's experience maker); ``"none"``: centre only (OpenRLHF ``no_std_norm``). Padding stays zero."""
    if std not in ("unbiased", "population", "none"):
        raise ValueError(f"std must be 'unbiased' (verl), 'population' (OpenRLHF) or 'none', got '{std}'")
    count = mask.sum()
    if count < 2 and std != "none":
        raise ValueError("whitening needs at least two real tokens in the rollout")
    mean = (values * mask).sum() / count.clamp(min=1)
    var = ((values - mean) ** 2 * mask).sum() / count.clamp(min=1)
    if std == "none":
        return (values - mean) * mask
    if std == "unbiased":
        scale = torch.rsqrt(var * count / (count - 1) + epsilon)
    else:
        scale = torch.rsqrt(var.clamp(min=epsilon))
    return (values - mean) * scale * mask


def _check_scale(scale: str) -> None:
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"grpo: scale must be 'group', 'batch' or 'none', got '{scale}'")


@ADVANTAGES.register("grpo", paper="Shao et al. 2024 (DeepSeekMath), arXiv 2402.03300")
def grpo(inputs: AdvantageInputs, *, scale: str = "group", epsilon: float = 1e-4) -> Advantages:
    """Group-normalised outcome advantage: Â_i = (R_i − mean_j R_j) / (std + ε), broadcast to every token.

    R_i is the completion's outcome reward (the sum of its token rewards when given per token). ``scale``:
    ``group`` divides by the Bessel-corrected std of the prompt's K rewards (paper), ``batch`` by the std of
    all rewards in the rollout (the mean stays per group), ``none`` does not divide (Dr. GRPO). ε = 1e-4 is
    TRL's; verl uses 1e-6. A group with equal rewards gets Â = 0; K = 1 gives Â = 0 (TRL; verl instead
    leaves R unchanged). Paper: DeepSeekMath §4.1.2 (outcome supervision). Checked against TRL 1.16
    ``GRPOTrainer._generate_and_score_completions`` (``scale_rewards``, ``nanstd``, ``+ 1e-4``) and verl
    ``core_algos.compute_grpo_outcome_advantage`` (``norm_adv_by_std_in_grpo``); TRL equality is a test.
    """
    _check_scale(scale)
    rewards = inputs.sequence_rewards()
    centred = rewards - rewards.mean(1, keepdim=True)
    if scale == "group":
        std = rewards.std(1, keepdim=True) if inputs.group_size > 1 else torch.zeros_like(rewards)
        centred = centred / (std + epsilon)
    elif scale == "batch":
        std = rewards.std() if rewards.numel() > 1 else torch.zeros((), dtype=rewards.dtype)
        centred = centred / (std + epsilon)
    advantages = inputs.per_token(centred)
    return Advantages(advantages, advantages)


@ADVANTAGES.register("dr_grpo", paper="Liu et al. 2025 (Dr. GRPO), arXiv 2503.20783")
def dr_grpo(inputs: AdvantageInputs) -> Advantages:
    """GRPO without the std division: Â_i = R_i − mean_j R_j, broadcast to every token.

    Pair it with ``seq_mean_token_sum_norm`` aggregation (Σ over tokens / (G·L_max)) for the paper's
    unbiased objective; the aggregation is its own setting. Paper §3.1 (eq. 3). Checked against TRL 1.16
    (``scale_rewards="none"``) and verl (``norm_adv_by_std_in_grpo=False``).
    """
    rewards = inputs.sequence_rewards()
    advantages = inputs.per_token(rewards - rewards.mean(1, keepdim=True))
    return Advantages(advantages, advantages)


@ADVANTAGES.register("rloo", paper="Ahmadian et al. 2024, arXiv 2402.14740; Kool et al. 2019")
def rloo(inputs: AdvantageInputs) -> Advantages:
    """Leave-one-out baseline: A_i = R_i − (1/(K−1))·Σ_{j≠i} R_j = K/(K−1)·(R_i − mean_j R_j).

    R_i already includes the sequence-level KL penalty when the method puts KL in the reward
    (R_i = r_i − β·Σ_t k1_t, see ``kl_estimators.kl_penalised_rewards``). Needs K ≥ 2. Paper §3.2.
    Checked against TRL 1.16 ``RLOOTrainer`` (``baselines = (grouped_sum − rewards)/(count − 1)``) and verl
    ``compute_rloo_outcome_advantage`` (the K/(K−1) form).
    """
    if inputs.group_size < 2:
        raise ValueError("rloo needs at least 2 completions per prompt (online.num_samples >= 2)")
    rewards = inputs.sequence_rewards()
    baseline = (rewards.sum(1, keepdim=True) - rewards) / (inputs.group_size - 1)
    advantages = inputs.per_token(rewards - baseline)
    return Advantages(advantages, advantages)


def _discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """G_t = Σ_{s≥t} γ^{s−t} r_s over real tokens, the running sum reset at padding (verl's loop)."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + gamma * running
        returns[..., t] = running
        running = running * mask[..., t]
    return returns * mask


@ADVANTAGES.register("reinforce_pp", paper="Hu 2025 (REINFORCE++), arXiv 2501.03262")
def reinforce_pp(
    inputs: AdvantageInputs, *, gamma: float = 1.0, std: str = "unbiased", epsilon: float = 1e-8
) -> Advantages:
    """REINFORCE++: discounted return of the token rewards, whitened over every real token of the rollout.

    G_t = Σ_{s≥t} γ^{s−t} r_s with r_t = −β·k_t + 1[t = T]·R (KL in the reward, shaped by the caller);
    A_t = (G_t − mean) / std over all real tokens (no critic, no group). ``std``: ``unbiased`` (verl) or
    ``population`` (OpenRLHF) — METHODS source disagreement 10 — or ``none`` (centre only, OpenRLHF's
    ``no_std_norm``). Returns are G. Paper §3. Checked against
    verl ``compute_reinforce_plus_plus_outcome_advantage`` (reverse loop, reset at padding, masked_whiten)
    and OpenRLHF ``experience_maker`` (population variance, ``rsqrt(var.clamp(min=1e-8))``).
    """
    rewards, mask = inputs.token_rewards()
    returns = _discounted_returns(rewards, mask, gamma)
    advantages = masked_whiten(returns, mask, std, epsilon)
    return Advantages(inputs.unshape(advantages), inputs.unshape(returns))


@ADVANTAGES.register("reinforce_pp_baseline", paper="Hu 2025 (REINFORCE++-baseline), arXiv 2501.03262")
def reinforce_pp_baseline(
    inputs: AdvantageInputs, *, std: str = "unbiased", epsilon: float = 1e-8
) -> Advantages:
    """REINFORCE++-baseline: A = R_i − mean_group(R), tiled over the completion's tokens, then whitened over
    every real token of the rollout (KL usually goes in the loss, k3).

    K = 1 uses baseline 0 (verl). ``std`` as in ``reinforce_pp``. Checked against verl
    ``compute_reinforce_plus_plus_baseline_outcome_advantage`` and OpenRLHF ``reinforce_baseline``.
    """
    rewards = inputs.sequence_rewards()
    centred = rewards - rewards.mean(1, keepdim=True) if inputs.group_size > 1 else rewards
    _, mask = inputs.token_rewards()
    tiled = centred[..., None] * mask
    advantages = inputs.unshape(masked_whiten(tiled, mask, std, epsilon))
    return Advantages(advantages, advantages)


@ADVANTAGES.register("remax", paper="Li et al. 2023 (ReMax), arXiv 2310.10505", needs=("baseline",))
def remax(inputs: AdvantageInputs) -> Advantages:
    """ReMax: A_t = Σ_{s≥t} r_s − r(x, ȳ), the greedy completion's reward ȳ as the baseline.

    ``inputs.baseline`` holds r(x, ȳ) per prompt ``[G]`` (or per completion ``[G, K]``); with outcome
    rewards A = R − r(x, ȳ), exactly 0 when the sample is the greedy answer. Returns are the reward-to-go.
    Paper Algorithm 1. Checked against verl ``compute_remax_outcome_advantage`` (reverse cumsum of the
    token rewards minus the baseline, broadcast over real tokens).
    """
    if inputs.baseline is None:
        raise ValueError(
            "remax needs the greedy completion's reward as inputs.baseline ([groups] or [groups, K])"
        )
    baseline = inputs.baseline
    if baseline.dim() == 1:
        baseline = baseline[:, None].expand(inputs.groups, inputs.group_size)
    rewards, mask = inputs.token_rewards()
    returns = _discounted_returns(rewards, mask, 1.0)
    advantages = returns - baseline[..., None].to(returns.dtype) * mask
    return Advantages(inputs.unshape(advantages), inputs.unshape(returns))


@ADVANTAGES.register(
    "gae", paper="Schulman et al. 2016, arXiv 1506.02438; Ouyang et al. 2022", needs=("values",)
)
def gae(
    inputs: AdvantageInputs,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    whiten: bool = True,
    std: str = "unbiased",
) -> Advantages:
    """Generalised advantage estimation with the critic's values V(s_t).

    δ_t = r_t + γ·V(s_{t+1}) − V(s_t) (V after the last real token = 0); A_t = δ_t + γλ·A_{t+1}
    (padding is skipped: the recursion carries over masked positions, verl's loop); returns
    G_t = A_t + V(s_t) (before whitening); then A is whitened over all real tokens (``whiten``, as TRL's
    PPO and verl do). γ = λ = 1 with V ≡ 0 gives the reward-to-go, λ = 0 gives δ_t: both are tests.
    Paper: GAE §3 (eq. 16); RLHF use: InstructGPT / "Secrets of RLHF". Checked against verl
    ``compute_gae_advantage_return`` (re-implemented in numpy in the test) and TRL's experimental PPO
    trainer (GAE reverse loop, ``masked_whiten``).
    """
    if inputs.values is None:
        raise ValueError("gae needs the critic's values (a value head): inputs.values")
    rewards, mask = inputs.token_rewards()
    values = inputs.values[..., None] if inputs.mask is None else inputs.values
    values = values.to(rewards.dtype)
    next_value = torch.zeros_like(rewards[..., 0])
    last = torch.zeros_like(rewards[..., 0])
    advantages = torch.zeros_like(rewards)
    for t in reversed(range(rewards.shape[-1])):
        m = mask[..., t]
        delta = rewards[..., t] + gamma * next_value - values[..., t]
        current = delta + gamma * lam * last
        next_value = values[..., t] * m + (1 - m) * next_value
        last = current * m + (1 - m) * last
        advantages[..., t] = last
    returns = (advantages + values) * mask
    advantages = masked_whiten(advantages, mask, std, 1e-8) if whiten else advantages * mask
    return Advantages(inputs.unshape(advantages), inputs.unshape(returns))
