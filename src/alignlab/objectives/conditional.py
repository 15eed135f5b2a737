"""Control-token- and condition-conditioned fine-tuning (METHODS.md section E): the method is the data.

csft, meet, c_rlft, leti, faft and reward_augmented_relabel turn feedback into a condition placed in
front of the response (a control token, a source tag, a reward token with the error feedback, a score
prompt) and then train an ordinary loss (NLL, or DPO for reward_augmented_relabel). The conditioning is
built by each objective's ``prepare`` hook (which declares the parameters it reads); at inference the user conditions on the
desired value (the good token, the expert tag, the top score).

Per-completion conditions go into ``Record.context_prefixes`` (attended to, not scored); per-record
conditions (a record's source, a score prompt) go into the prompt itself.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from alignlab.data.records import Record, RecordError
from alignlab.objectives.metrics import pair_reward_metrics
from alignlab.objectives.record_rewrites import is_good, prefix_prompt, score_of, single, where
from alignlab.objectives.registry import objective
from alignlab.objectives.score_tensors import nll
from alignlab.objectives.views import PairBatch, PointBatch


# -------------------------------------------------------------------------------------- csft
def csft_prepare(
    records: list[Record], good_token: str = "<|good|>", bad_token: str = "<|bad|>"
) -> list[Record]:
    """Every completion becomes its own demonstration, conditioned on ``good_token`` if it is desirable
    (best rank, or a True label) and on ``bad_token`` otherwise; the token is a context prefix, so it is
    attended to but never scored."""
    out = []
    for record in records:
        for i, text in enumerate(record.completions):
            token = good_token if is_good(record, i) else bad_token
            out.append(single(record.prompt, text, record, prefix=token))
    return out


@objective(
    "csft",
    family="sft",
    feedback="demonstrations",
    paper="Korbak et al. 2023, Pretraining LMs with Human Preferences (conditional training), arXiv 2302.08582",
    prepare=csft_prepare,
)
def csft(batch: PointBatch, normalize: str = "tokens") -> Tensor:
    """Conditional SFT: L = -(1/|y|)·log π(y | x, c), c = good_token for desirable y, bad_token otherwise.

    Built by :func:`csft_prepare` from pairs, rankings or labels; generate with ``good_token`` after the
    prompt. The control token is context (not scored): HALOs prepends it to the generation and so also
    trains log π(c|x); METHODS.md asks for it to be masked, which is what this does. With one control token
    for all data this is `sft` on prompt ⊕ token.
    Checked: ContextualAI/HALOs train/dataloader.py `ConditionalSFTDataLoader` and config/loss/csft.yaml.
    """
    return nll(batch.items, normalize, "csft")


@objective(
    "meet",
    family="sft",
    feedback="demonstrations",
    paper="Xue et al. 2023, Parameter-Efficient Tuning Helps Language Model Alignment (MEET), arXiv 2310.00819",
    prepare=csft_prepare,
)
def meet(batch: PointBatch, normalize: str = "tokens") -> Tensor:
    """MEET: the csft loss L = -(1/|y|)·log π(y | x, c) with control tokens c (good/bad), trained in two stages.

    Stage 1 optimises only the control tokens' parameters (soft prompt or LoRA) with the base model frozen;
    stage 2 fine-tunes everything with the learned control tokens. The loss is the same in both stages;
    which parameters train is the trainer's (PEFT / freezing) configuration, not the objective's.
    Unverified: abstract only.
    """
    return nll(batch.items, normalize, "meet")


# ------------------------------------------------------------------------------------ C-RLFT
def c_rlft_prepare(
    records: list[Record],
    expert_sources: str = "gpt-4,gpt4",
    expert_tag: str = "GPT4 ",
    suboptimal_tag: str = "GPT3 ",
    expert_weight: float = 1.0,
    suboptimal_weight: float = 0.1,
    default_source: str = "",
) -> list[Record]:
    """Each record's source (``Record.source``, matched case-insensitively against the comma-separated
    ``expert_sources``) picks its class: the class tag is put before the prompt and the record's weight
    is multiplied by the class reward (expert 1.0, sub-optimal 0.1 in OpenChat). ``default_source``: the
    source of records that name none (e.g. ``gpt-4`` when all of ``data.train`` is expert data, as on
    rollouts); empty: such records are refused."""
    experts = {s.strip().lower() for s in expert_sources.split(",") if s.strip()}
    out = []
    for n, record in enumerate(records):
        source = record.source if record.source is not None else (default_source or None)
        if source is None:
            raise RecordError(
                "C-RLFT needs each record's data source to pick its class",
                where(record, n),
                "set 'source' on every record (e.g. 'gpt-4' or 'gpt-3.5'), or the objective's "
                "default_source (e.g. default_source: gpt-4 when all of data.train is expert data)",
            )
        expert = source.strip().lower() in experts
        tag = expert_tag if expert else suboptimal_tag
        for text in record.completions:
            new = single(
                prefix_prompt(record.prompt, tag), text, record, c_rlft_class="expert" if expert else "other"
            )
            new.weight = record.weight * (expert_weight if expert else suboptimal_weight)
            out.append(new)
    return out


@objective(
    "c_rlft",
    family="sft",
    feedback="demonstrations",
    paper="Wang et al. 2023, OpenChat: Advancing Open-source LMs with Mixed-Quality Data (C-RLFT), arXiv 2309.11235",
    prepare=c_rlft_prepare,
)
def c_rlft(batch: PointBatch, normalize: str = "tokens") -> Tensor:
    """Conditioned-RLFT: L = Σ_i r_c(i)·ℓ_i / Σ_i r_c(i), ℓ_i = -(1/|y_i|)·Σ_t log π_θ(y_i,t | c_i ⊕ x_i, y_i,<t).

    The class c of each example is its data source (expert vs sub-optimal); :func:`c_rlft_prepare` puts
    the class tag before the prompt and sets the example weight to the coarse class reward r_c (expert 1,
    sub-optimal 0.1), which the batch reduction applies (``normalize: sum`` drops the 1/|y_i|). Generate
    with the expert tag. With one class and equal weights this is `sft`.

    On rollouts (an ``online:`` section): the expert class is ``data.train`` and the policy's own samples
    are the sub-optimal class, sampled after the expert tag and trained after the sub-optimal tag with
    weight r_c = ``suboptimal_weight``; ``online.offline_per_step`` expert groups join every rollout
    minibatch (``objectives/online_offline.py``, ``train/mixed_source.py``).

    Checked: imoneoi/openchat ``ochat/config/conversation_template.py`` (the condition is written into every
    role prefix, "GPT4 Correct User:" / "GPT4 Correct Assistant:", inference with the expert condition;
    each message's ``weight`` is its class reward, per token), ``ochat/training_deepspeed/train.py``
    (``batch_to_tensor``: each sequence's tokens weigh 1/|y|·group weight, the step's sum divided by the
    number of sequences, or by the total loss weight with ``--loss_balancing``: the Σ r_c normaliser used
    here). The paper (arXiv 2309.11235 §3: r_c = 1 for GPT-4, α = 0.1 for GPT-3.5; J = E_{D_c}[r_c·log
    π_θ(y|x,c)]) is from recall. Here the tag goes before the prompt (plain prompts) or the first message.
    """
    return nll(batch.items, normalize, "c_rlft")


# -------------------------------------------------------------------------------------- LeTI
def leti_prepare(
    records: list[Record],
    pass_token: str = "<|good|>",
    fail_token: str = "<|bad|>",
    feedback_template: str = "\n\nFeedback: {feedback}",
) -> list[Record]:
    """One record per program: the reward token (from ``labels``: True = the program passed) is put
    before the instruction, and a failed program's textual feedback (``critique``, e.g. the error trace)
    is appended after the program through ``feedback_template``, so the model learns to produce both."""
    out = []
    for n, record in enumerate(records):
        if record.labels is None:
            raise RecordError(
                "LeTI needs a pass/fail label per program",
                where(record, n),
                "set 'labels' (true = the program passed its tests)",
            )
        for i, program in enumerate(record.completions):
            passed = bool(record.labels[i])
            feedback = record.critique[i] if record.critique is not None else None
            text = program
            if not passed and feedback:
                text = program + feedback_template.format(feedback=feedback)
            token = pass_token if passed else fail_token
            out.append(single(prefix_prompt(record.prompt, token), text, record, leti_passed=passed))
    return out


@objective(
    "leti",
    family="sft",
    feedback="demonstrations",
    paper="Wang et al. 2023, LeTI: Learning to Generate from Textual Interactions, arXiv 2305.10314",
    prepare=leti_prepare,
)
def leti(batch: PointBatch, normalize: str = "tokens") -> Tensor:
    """LeTI's fine-tuning step: L = -(1/|s|)·log π(s | r ⊕ x), s = program ⊕ feedback (failed programs only).

    r is the binary reward token. The paper applies the LM objective to the whole concatenation
    r ⊕ x ⊕ program ⊕ feedback; here the instruction is prompt (unscored), the rest is scored. Generation,
    test execution and iteration belong to the online loop; mixing in pre-training data is a second
    objective (`sft` on that data). Unverified: abstract and paper recall.
    """
    return nll(batch.items, normalize, "leti")


# -------------------------------------------------------------------------------------- FAFT
def faft_prepare(
    records: list[Record],
    positive_template: str = "",
    negative_template: str = "Feedback: {critique}\nRevised answer: ",
) -> list[Record]:
    """Each completion becomes a demonstration conditioned on its feedback: desirable completions (label
    True / best rank) on ``positive_template``, the others on ``negative_template`` filled with the
    completion's ``critique`` (empty string when none), as a context prefix."""
    out = []
    for record in records:
        for i, text in enumerate(record.completions):
            critique = (record.critique[i] if record.critique is not None else None) or ""
            template = positive_template if is_good(record, i) else negative_template
            out.append(single(record.prompt, text, record, prefix=template.format(critique=critique) or None))
    return out


@objective(
    "faft",
    family="sft",
    feedback="demonstrations",
    paper="Chen et al. 2024, Can We Rely on LLM Agents to Draft Long-Horizon Plans? (FAFT), arXiv 2408.06318",
    prepare=faft_prepare,
)
def faft(batch: PointBatch, normalize: str = "tokens") -> Tensor:
    """Feedback-Aware Fine-Tuning: L = -(1/|y|)·log π(y | x, f(y)), f = the feedback text on y.

    Plans with positive and negative feedback are both used, each conditioned on its feedback
    (:func:`faft_prepare`); generate with the positive condition. With only positive feedback and an
    empty positive template this is `sft`.
    Unverified: the paper's abstract does not give the objective; this is feedback-conditioned SFT.
    """
    return nll(batch.items, normalize, "faft")


# -------------------------------------------------------------------- reward-augmented data
def reward_augmented_prepare(
    records: list[Record],
    score_key: str = "",
    score_template: str = "[Write a response that would be rated {score}]\n",
) -> list[Record]:
    """Each pair (x, y_w, y_l) with judge scores (s_w, s_l) becomes two pairs: prompt "score s_w" ⊕ x with
    y_w ≻ y_l, and prompt "score s_l" ⊕ x with y_l ≻ y_w. Scores are the named rating ``score_key``
    (or the only rating); K > 2 records are split into their best-vs-worst pair."""
    out = []
    for n, record in enumerate(records):
        if record.scores is None:
            raise RecordError(
                "reward-augmented relabelling needs a judge score per completion",
                where(record, n),
                "give each record 'scores' (e.g. [{'score': 8}, {'score': 3}])",
            )
        values = [score_of(record, i, score_key, n) for i in range(record.k)]
        w = max(range(record.k), key=lambda i: (values[i], -i))
        lose = min(range(record.k), key=lambda i: (values[i], i))
        if values[w] == values[lose]:
            continue  # a tie carries no preference under either conditioning
        for first, second in ((w, lose), (lose, w)):
            new = single(
                prefix_prompt(record.prompt, score_template.format(score=_fmt(values[first]))), "", record
            )
            new.completions = [record.completions[first], record.completions[second]]
            new.ranking = [0, 1]
            new.scores = [dict(record.scores[first]), dict(record.scores[second])]
            out.append(new)
    return out


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@objective(
    "reward_augmented_relabel",
    family="pairwise",
    feedback="pairs",
    paper="Zhang et al. 2024, Reward-Augmented Data Enhances Direct Preference Alignment of LLMs, arXiv 2410.08067",
    needs=("reference",),
    prepare=reward_augmented_prepare,
)
def reward_augmented_relabel(batch: PairBatch, beta: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """DPO on reward-conditioned pairs: L = -log σ(β·[ρ(y_a|x_s) - ρ(y_b|x_s)]), ρ = log π_θ - log π_ref.

    :func:`reward_augmented_prepare` doubles the data: conditioned on the chosen answer's score the
    chosen answer wins, conditioned on the rejected answer's score the rejected one does, so the model
    learns what each quality level looks like instead of unlearning good-but-rejected answers. Infer
    conditioned on the highest score. Unverified: abstract only (template wording is ours).
    """
    margin = batch.chosen.logratios - batch.rejected.logratios
    rw, rl = beta * batch.chosen.logratios.detach(), beta * batch.rejected.logratios.detach()
    metrics = pair_reward_metrics(rw, rl, batch.chosen.logps, batch.rejected.logps)
    return -F.logsigmoid(beta * margin), metrics
