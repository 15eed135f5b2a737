"""Helpers for online-training tests: a scripted sampler, reward functions, and a trainer set up in-process."""

from __future__ import annotations

from typing import Any

import torch

from alignlab.config import load_config
from alignlab.generation.types import Rollout, SamplingParams
from alignlab.train.trainer import Trainer


class ScriptedSampler:
    """Returns fixed completion ids: completion j of prompt i is ``script(i, j)`` (the EOS, when given, is
    the last id); ``finished`` is whether it ends with EOS. Log-probs are not used by the source."""

    def __init__(self, tokenizer: Any, script: Any):
        self.tokenizer, self.script = tokenizer, script
        self.calls: list[SamplingParams] = []

    def sync(self, policy: Any) -> None:
        self.policy = policy

    def sample(self, prompts: list[list[int]], params: SamplingParams) -> list[Rollout]:
        self.calls.append(params)
        eos = self.tokenizer.eos_token_id
        out = []
        for i, prompt in enumerate(prompts):
            for j in range(params.n):
                ids = list(self.script(i, j, params))[: params.max_new_tokens]
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                out.append(
                    Rollout(i, j, list(prompt), ids, [0.0] * len(ids), bool(ids and ids[-1] == eos), text)
                )
        return out


def first_id_parity(completion_ids: list[list[int]], **_: Any) -> list[float]:
    """1 when a completion's first token id is even (a reward the test can compute from the ids)."""
    return [float(ids[0] % 2 == 0) for ids in completion_ids]


def nan_for_second(completions: list[str], **_: Any) -> list[float]:
    return [float("nan") if i == 1 else 0.0 for i in range(len(completions))]


def raises_on_seven(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
    for p in prompts:
        if "+ 7?" in p or "7 +" in p:
            raise RuntimeError("the scoring service is down")
    return [0.0] * len(completions)


def setup_trainer(
    tmp_path: Any, overrides: list[str], sampler_script: Any = None, monkeypatch: Any = None
) -> Trainer:
    """A Trainer whose ``_setup`` ran (policy, engine, source), optionally with a scripted sampler."""
    if sampler_script is not None:
        import alignlab.train.online_setup as online_setup

        monkeypatch.setattr(
            online_setup,
            "build_sampler",
            lambda settings, policy, tokenizer: ScriptedSampler(tokenizer, sampler_script),
        )
    config = load_config(
        None,
        [f"out={tmp_path / 'run'}", "train.progress=false", "online.log_samples_every=0", *overrides],
        base={"objectives": [{"name": "grpo"}], "online": {}, "train": {"steps": 4}},
    )
    trainer = Trainer(config)
    trainer._setup()
    return trainer


@torch.no_grad()
def manual_token_logps(
    model: Any, prompt_ids: list[int], completion_ids: list[int], temperature: float = 1.0
) -> torch.Tensor:
    """log softmax(z/T)(c_t | prompt, c_<t) by one plain forward pass over prompt + completion (no engine)."""
    ids = torch.tensor([prompt_ids + completion_ids])
    logits = model(input_ids=ids).logits[0].float() / temperature
    start = len(prompt_ids) - 1
    logp = logits[start : start + len(completion_ids)].log_softmax(-1)
    return logp.gather(-1, torch.tensor(completion_ids)[:, None])[:, 0]


def first_id_parity_at_last_token(completion_ids: list[list[int]], **_: Any) -> list[list[float]]:
    """``first_id_parity`` written on each completion's last token, zero elsewhere (one dense segment)."""
    return [[0.0] * (len(ids) - 1) + [float(ids[0] % 2 == 0)] for ids in completion_ids]


def first_id_parity_split(completion_ids: list[list[int]], **_: Any) -> list[list[float]]:
    """Two segments: half of the parity reward on the first token, half on the last."""
    out = []
    for ids in completion_ids:
        r = float(ids[0] % 2 == 0)
        row = [0.0] * len(ids)
        row[0] += r / 2
        row[-1] += r / 2
        out.append(row)
    return out
