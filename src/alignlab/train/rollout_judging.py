"""Step 4 of a rollout refresh: have the judge score the sampled completions, and stop the run with a clear
message when it cannot (it raises, or returns NaN/inf, or the wrong shape).

The judge receives everything the trainer knows (``JudgeBatch``): the prompts, the completion texts, their
token ids exactly as sampled, the prompt rows' other columns (e.g. a ground-truth ``answer``) repeated
for each completion, and the step. Judges that read only text see only text.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from alignlab.data.prompts import PromptRow
from alignlab.generation.types import Rollout


class RolloutStopped(RuntimeError):
    """The judge failed on a rollout; the message names the prompt and the last checkpoint."""


def judge_batch(rows: list[PromptRow], rollouts: list[Rollout], n: int, step: int) -> Any:
    """The ``JudgeBatch`` of ``rollouts`` (``n`` per prompt row, in order)."""
    from alignlab.judges.base import JudgeBatch

    prompts = [rows[i // n].prompt for i in range(len(rollouts))]
    names = sorted({name for row in rows for name in row.columns})
    columns = {name: [rows[i // n].columns.get(name) for i in range(len(rollouts))] for name in names}
    return JudgeBatch(
        prompts=prompts,
        completions=[r.text for r in rollouts],
        completion_ids=[list(r.completion_ids) for r in rollouts],
        columns=columns,
        step=step,
    )


def judge_rewards(
    judge: Any,
    rows: list[PromptRow],
    rollouts: list[Rollout],
    n: int,
    step: int,
    last_checkpoint: Any,
    where: str = "online.judge",
) -> Tensor:
    """One finite scalar reward per rollout, or :class:`RolloutStopped` naming the prompt at fault."""
    name = getattr(judge, "name", type(judge).__name__)
    after = f"last checkpoint: {last_checkpoint or 'none (no checkpoint yet)'}"
    batch = judge_batch(rows, rollouts, n, step)
    try:
        rewards = judge.score_batch(batch)
    except Exception as err:  # noqa: BLE001 - any judge failure is reported with the prompt at fault
        culprit = _first_failing(judge, rows, rollouts, n, step)
        raise RolloutStopped(
            f"{where}: judge '{name}' failed at step {step}{culprit}: {type(err).__name__}: {err}. "
            f"Training stopped; {after}. Fix the judge (or its inputs) and resume with --resume."
        ) from err
    rewards = torch.as_tensor(rewards, dtype=torch.float32).detach().cpu()
    if rewards.dim() == 2 and rewards.shape[-1] == 1:
        rewards = rewards[:, 0]
    if rewards.shape != (len(rollouts),):
        raise RolloutStopped(
            f"{where}: judge '{name}' returned shape {tuple(rewards.shape)} for {len(rollouts)} completions; "
            "an online objective needs one scalar reward per completion (for a multi-attribute judge, "
            f"choose a weighting or a gate). {after}."
        )
    bad = (~torch.isfinite(rewards)).nonzero().flatten().tolist()
    if bad:
        i = bad[0]
        raise RolloutStopped(
            f"{where}: judge '{name}' returned {float(rewards[i])} at step {step} for prompt "
            f"{_show(rows[i // n].prompt)} and completion {rollouts[i].text[:80]!r} ({len(bad)} of "
            f"{len(rollouts)} rewards are not finite). Training stopped; {after}. Make the judge return finite "
            "numbers and resume with --resume."
        )
    return rewards


def _first_failing(judge: Any, rows: list[PromptRow], rollouts: list[Rollout], n: int, step: int) -> str:
    """' on prompt ...' for the first prompt whose completions alone make the judge raise, else ''."""
    for g, row in enumerate(rows):
        try:
            judge.score_batch(judge_batch([row], rollouts[g * n : (g + 1) * n], n, step))
        except Exception:  # noqa: BLE001
            return f" on prompt {_show(row.prompt)}"
    return ""


def _show(prompt: Any) -> str:
    text = prompt if isinstance(prompt, str) else " / ".join(m.get("content", "") for m in prompt)
    return repr(text[:80])


def rate_records(records: list[Any], rewards: Tensor, n: int) -> None:
    """Offline objectives on rollouts (``RolloutPlan.records == "ratings"``): each record's completions get
    the judge's rewards as their ``scores`` (``{"reward": r}``) and a ranking by reward, best first, ties in
    sample order, so a pairwise objective sees every pair of a group (a tie is a pair with a zero reward gap)."""
    for g, record in enumerate(records):
        mine = [float(r) for r in rewards[g * n : (g + 1) * n]]
        order = sorted(range(n), key=lambda j: -mine[j])  # stable: ties keep sample order
        record.ranking = [order.index(j) for j in range(n)]
        record.scores = [{"reward": r} for r in mine]
