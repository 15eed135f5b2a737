"""The scoring engine: model + Batch -> Scores.

One forward pass of the model body over the batch's layout (packed groups with a block mask, or
separate rows), then log-probs only at the positions that predict completion tokens, computed in
chunks through the LM head with the log-softmax recomputed in backward, so no [tokens, vocab] tensor
is kept (unless all of a call's fit in ``KEEP_LOGITS_BYTES``, 32 MiB). Everything an objective may need (see ``scoring.scores.NEEDS``) is computed on request.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from alignlab.data.batching import Batch
from alignlab.models.parts import body_and_head, is_reward_model, unwrap
from alignlab.scoring import flex, token_statistics
from alignlab.scoring.hidden_states import hidden_states, pooled_hidden_states
from alignlab.scoring.reference_view import without_tokens
from alignlab.scoring.scores import Scores
from alignlab.scoring.token_statistics import TokenStatistic


@dataclass
class Reference:
    """The reference policy: a frozen model, or the policy itself with its LoRA adapters switched off.
    ``hidden_ids``: prompt tokens the reference does not see (Quark's reward tags; ``reference_view.py``)."""

    model: Any
    adapters_off: bool = False
    hidden_ids: tuple[int, ...] = ()

    def context(self) -> Any:
        if self.adapters_off:
            return self.model.disable_adapter()
        return nullcontext()

    def view(self, batch: Batch) -> Batch:
        """The batch as the reference sees it: the same positions, its hidden tokens left out."""
        return without_tokens(batch, self.hidden_ids) if self.hidden_ids else batch


def _final_logit_transform(model: Any, temperature: float = 1.0) -> Callable[[Tensor], Tensor]:
    config = unwrap(model).config
    softcap = getattr(config, "final_logit_softcapping", None)
    scale = getattr(config, "logit_scale", None)

    def transform(logits: Tensor) -> Tensor:
        if scale is not None:
            logits = logits * scale
        if softcap:
            logits = softcap * torch.tanh(logits / softcap)
        if temperature != 1.0:
            logits = logits / temperature
        return logits

    return transform


ATTENTIONS = ("auto", "sdpa", "segment", "branch", "flex")
# what ``auto`` may resolve to on CPU in eager mode (``Engine(auto_cpu_attention=...)``)
AUTO_CPU_ATTENTIONS = ("segment", "branch")

# Below this many bytes of float32 log-probs (positions × vocabulary, summed over the chunks of one call,
# the reference's counted too) the chunks are not checkpointed: keeping them costs a few [M, V] tensors of
# at most this size, and saves recomputing the LM head and the statistics in backward (3% of a GRPO update
# of the bench's 2048-token model on CPU). The same operations run either way, so the same numbers come out.
KEEP_LOGITS_BYTES = 32 * 2**20


def _takes_extra_kwargs(module: Any) -> bool:
    import inspect

    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class Engine:
    """Compute Scores for a batch. ``layout``: ``auto`` (packed if the model takes a block mask),
    ``packed`` or ``separate``; ``logits_chunk_size``: completion positions per LM-head chunk;
    ``attention`` (packed layout): ``sdpa`` (dense block mask), ``segment`` (the dense mask, SDPA run per
    packed segment: no work between segments), ``branch`` (only the visible pairs: prompt and branch blocks,
    ``scoring/branch_attention.py``; ``segment`` for a batch where that would not halve the pairs),
    ``flex`` (FlexAttention BlockMask, CUDA for training) or ``auto`` (``auto_cpu_attention`` on CPU in eager
    mode — ``segment`` by default, ``branch`` for online training, see ``train/setup.py`` — else ``sdpa``
    until GPU measurements say otherwise);
    ``compile``: ``torch.compile`` the model body; ``temperature``: log-probs of softmax(z / T), the
    distribution a sampler at temperature T draws from (``generation/filters.py``), for the policy and the
    reference alike (TRL's GRPO and verl score both at the sampling temperature)."""

    def __init__(
        self,
        layout: str = "auto",
        logits_chunk_size: int = 1024,
        attention: str = "auto",
        compile: bool = False,
        temperature: float = 1.0,
        auto_cpu_attention: str = "segment",
    ):
        if layout not in ("auto", "packed", "separate"):
            raise ValueError(f"engine.layout must be auto, packed or separate, got '{layout}'")
        if attention not in ATTENTIONS:
            raise ValueError(f"engine.attention must be one of {', '.join(ATTENTIONS)}, got '{attention}'")
        if auto_cpu_attention not in AUTO_CPU_ATTENTIONS:
            raise ValueError(
                f"auto_cpu_attention must be one of {', '.join(AUTO_CPU_ATTENTIONS)}, got '{auto_cpu_attention}'"
            )
        self.auto_cpu_attention = auto_cpu_attention
        self.layout = layout
        self.logits_chunk_size = logits_chunk_size
        self.attention = attention
        self.compile = compile
        if not temperature > 0:
            raise ValueError(f"engine temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def _attention_for(self, model: Any) -> str:
        device = next(unwrap(model).parameters()).device
        if self.attention == "auto":
            # Per-segment SDPA skips the work between packed groups; its Python loop over segments would
            # cost kernel launches on a GPU and graph breaks under torch.compile. The spans travel as a
            # keyword argument, which the body must pass on (transformers' models take **kwargs).
            body = unwrap(model).backbone if is_reward_model(model) else body_and_head(model)[0]
            takes_spans = _takes_extra_kwargs(body)
            eager_cpu = device.type == "cpu" and not self.compile and takes_spans
            return self.auto_cpu_attention if eager_cpu else "sdpa"
        if self.attention == "flex" and torch.is_grad_enabled():
            ok, why = flex.flex_supported(device)
            if not ok:
                raise ValueError(f"engine.attention 'flex': {why}; use attention 'sdpa' here")
        return self.attention

    def choose_layout(self, model: Any) -> str:
        if self.layout != "auto":
            return self.layout
        return "packed" if packed_supported(model) else "separate"

    def __call__(
        self,
        model: Any,
        batch: Batch,
        needs: frozenset[str] | set[str] = frozenset(),
        reference: Reference | None = None,
        cached_reference: Scores | None = None,
    ) -> Scores:
        needs = frozenset(needs)
        if is_reward_model(model):
            return self._reward_model_scores(model, batch, needs)
        hidden = hidden_states(model, batch, self._attention_for(model), self.compile)
        _, head = body_and_head(model)
        transform = _final_logit_transform(model, self.temperature)
        statistics = token_statistics.requested(needs)
        ref_hidden = ref_head = None
        if any(stat.needs_reference for stat in statistics):
            if reference is None:
                first = next(stat.name for stat in statistics if stat.needs_reference)
                raise ValueError(f"{first} needs a reference model")
            with torch.no_grad(), reference.context():
                ref_hidden = hidden_states(
                    reference.model, reference.view(batch), self._attention_for(reference.model), self.compile
                )
                ref_head = body_and_head(reference.model)[1]
        token = self._token_stats(
            hidden,
            batch.pred_rows,
            batch.pred_cols,
            batch.targets,
            head,
            transform,
            statistics,
            ref_hidden,
            ref_head,
            token_statistics.without_gradient(needs),
        )
        scores = self._assemble(batch, token, needs)
        if needs & {"token_hidden", "token_values"}:  # the state before each completion token
            h = hidden[batch.pred_rows, batch.pred_cols]
            width = int(batch.lengths.max()) if batch.num_completions else 0
            index = (batch.token_completion.to(h.device), batch.token_position.to(h.device))
            if "token_hidden" in needs:
                padded = h.new_zeros(batch.num_completions, width, h.shape[-1])
                scores.extra["token_hidden"] = padded.index_put(index, h)
            if "token_values" in needs:  # a critic's V(s_t): the value head the policy carries (PPO)
                value_head = getattr(unwrap(model), "value_head", None)
                if value_head is None:
                    raise ValueError("the objective needs per-token values but the policy has no value_head")
                values = value_head(h).float()
                scores.extra["token_values"] = values.new_zeros(batch.num_completions, width).index_put(
                    index, values
                )
        if "hidden" in needs or "rewards" in needs:
            scores.hidden = hidden[batch.last_rows, batch.last_cols]
        if "rewards" in needs:
            reward_head = getattr(unwrap(model), "reward_head", None) or getattr(model, "reward_head", None)
            if reward_head is None:
                raise ValueError("the objective needs reward-head outputs but the model has no reward_head")
            scores.rewards = reward_head(scores.hidden).float().squeeze(-1)
        if "prompt_logps" in needs and batch.prompt_targets.numel():
            prompt = self._token_stats(
                hidden, batch.prompt_pred_rows, batch.prompt_pred_cols, batch.prompt_targets, head, transform
            )["token_logps"]
            num_groups = int(batch.prompt_lengths.shape[0])
            per_group = torch.zeros(num_groups, dtype=prompt.dtype, device=prompt.device)
            per_group = per_group.index_add(0, batch.prompt_token_group, prompt)
            group_of = batch.feedback.group_index
            scores.prompt_logps = per_group[group_of]
            scores.prompt_lengths = batch.prompt_lengths[group_of].to(prompt.dtype)
        if "reference" in needs:
            ref = (
                cached_reference
                if cached_reference is not None
                else self.reference_scores(reference, batch, needs)
            )
            scores.ref_logps = ref.logps.to(scores.logps.device)
            if ref.token_logps is not None:
                scores.ref_token_logps = ref.token_logps.to(scores.logps.device)
        return scores

    def _reward_model_scores(self, model: Any, batch: Batch, needs: frozenset[str]) -> Scores:
        """A reward model (models/reward.py) has no LM head: only pooled states and reward-head outputs."""
        unsupported = needs - {"rewards", "hidden"}
        if unsupported:
            raise ValueError(
                f"a reward model computes only rewards/hidden, but the objective needs {sorted(unsupported)}; "
                "use a causal LM (model.kind: causal_lm) for log-prob objectives"
            )
        base = unwrap(model)
        hidden = pooled_hidden_states(model, batch, self._attention_for(model))
        n = batch.num_completions
        scores = Scores(
            logps=hidden.new_zeros(n, dtype=torch.float32), lengths=batch.lengths.to(hidden.device).float()
        )
        scores.hidden = hidden
        scores.rewards = base(hidden)
        return scores

    @torch.no_grad()
    def reference_scores(self, reference: Reference | None, batch: Batch, needs: frozenset[str]) -> Scores:
        if reference is None:
            raise ValueError("the objective needs reference log-probs but no reference model is loaded")
        ref_needs = frozenset({"token_logps"} & needs)
        with reference.context():
            return self(reference.model, reference.view(batch), ref_needs)

    def _token_stats(
        self,
        hidden: Tensor,
        rows: Tensor,
        cols: Tensor,
        targets: Tensor,
        head: Any,
        transform: Callable[[Tensor], Tensor],
        statistics: tuple[TokenStatistic, ...] = token_statistics.requested(frozenset()),
        ref_hidden: Tensor | None = None,
        ref_head: Any = None,
        logged_only: frozenset[str] = frozenset(),
    ) -> dict[str, Tensor]:
        """``{statistic name: [M]}`` at the positions ``(rows, cols)`` predicting ``targets``, computed
        chunk by chunk (``logits_chunk_size`` positions) with the log-softmax recomputed in backward (kept
        instead when all of them fit in ``KEEP_LOGITS_BYTES``).
        ``logged_only``: statistics computed without gradients, after the others, so the checkpoint's
        recomputation in backward (which stops once the saved tensors are rebuilt) skips them."""
        h = hidden[rows, cols]
        ref_h = ref_hidden[rows, cols] if ref_hidden is not None else None
        order = sorted(range(len(statistics)), key=lambda i: statistics[i].name in logged_only)

        def chunk_fn(h_chunk: Tensor, t_chunk: Tensor, ref_chunk: Tensor | None) -> tuple[Tensor, ...]:
            logp = transform(head(h_chunk)).float().log_softmax(-1)
            ref_logp = None
            if ref_chunk is not None:
                ref_logp = transform(ref_head(ref_chunk)).float().log_softmax(-1)
            out: list[Tensor | None] = [None] * len(statistics)
            for i in order:
                stat = statistics[i]
                if stat.name in logged_only:
                    with torch.no_grad():
                        out[i] = stat.compute(logp.detach(), t_chunk, ref_logp)
                else:
                    out[i] = stat.compute(logp, t_chunk, ref_logp)
            return tuple(out)  # type: ignore[arg-type]

        checkpointed = (
            torch.is_grad_enabled() and h.requires_grad and not _small_logits(h, head, ref_h, ref_head)
        )
        pieces: list[tuple[Tensor, ...]] = []
        for start in range(0, h.shape[0], self.logits_chunk_size):
            sl = slice(start, start + self.logits_chunk_size)
            args = (h[sl], targets[sl], ref_h[sl] if ref_h is not None else None)
            if checkpointed:
                pieces.append(checkpoint(chunk_fn, *args, use_reentrant=False))
            else:
                pieces.append(chunk_fn(*args))
        if not pieces:
            return {stat.name: h.new_zeros(0, dtype=torch.float32) for stat in statistics}
        return {stat.name: torch.cat([p[i] for p in pieces]) for i, stat in enumerate(statistics)}

    def _assemble(self, batch: Batch, token: dict[str, Tensor], needs: frozenset[str]) -> Scores:
        n = batch.num_completions
        tok_logps = token["token_logps"]
        device = tok_logps.device
        logps = torch.zeros(n, dtype=tok_logps.dtype, device=device).index_add(
            0, batch.token_completion, tok_logps
        )
        scores = Scores(logps=logps, lengths=batch.lengths.to(device=device, dtype=tok_logps.dtype))
        if needs & (set(token_statistics.TOKEN_STATISTICS) | set(token_statistics.WITHOUT_GRADIENT)):
            width = int(batch.lengths.max()) if n else 0
            index = (batch.token_completion, batch.token_position)

            def padded(values: Tensor) -> Tensor:
                return torch.zeros(n, width, dtype=values.dtype, device=device).index_put(index, values)

            scores.token_mask = padded(torch.ones_like(tok_logps))
            for name, values in token.items():
                setattr(scores, name, padded(values))
        return scores


def _vocab_size(head: Any) -> int | None:
    weight = getattr(head, "weight", None)
    return int(weight.shape[0]) if isinstance(weight, Tensor) and weight.dim() == 2 else None


def _small_logits(h: Tensor, head: Any, ref_h: Tensor | None, ref_head: Any) -> bool:
    """Whether the float32 log-probs of all ``h``'s positions (and the reference's) fit in
    ``KEEP_LOGITS_BYTES``; a head whose output width is unknown counts as large."""
    vocab = _vocab_size(head)
    if vocab is None:
        return False
    if ref_h is not None:
        ref_vocab = _vocab_size(ref_head)
        if ref_vocab is None:
            return False
        vocab += ref_vocab
    return h.shape[0] * vocab * 4 <= KEEP_LOGITS_BYTES


def packed_supported(model: Any) -> bool:
    """Whether ``model`` gives the same log-probs with the packed block mask as scored row by row.

    Checked once per model on a tiny probe batch; models whose attention ignores a custom 4D mask
    (or rejects it) fall back to the separate layout.
    """
    cached = getattr(model, "_alignlab_packed_ok", None)
    if cached is not None:
        return cached
    if is_reward_model(model) and not unwrap(model).supports_packed():
        return False  # encoders (bidirectional) and mean/CLS pooling need one row per completion
    from alignlab.data.batching import make_batch
    from alignlab.data.records import Record
    from alignlab.data.tokenize import TokenizedGroup

    vocab = unwrap(model).config.vocab_size
    gen = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(3, vocab, (n,), generator=gen).tolist()  # noqa: E731
    groups = [
        TokenizedGroup(ids(5), [ids(3), ids(4)], [[], []], ["", ""], 0),
        TokenizedGroup(ids(3), [ids(2)], [[]], [""], 1),
    ]
    records = [Record("p", ["a", "b"], ranking=[0, 1]), Record("q", ["c"])]
    engine = Engine(layout="packed")
    ok = False
    try:
        with torch.no_grad():
            device = next(unwrap(model).parameters()).device
            what = "rewards" if is_reward_model(model) else "logps"
            needs = frozenset({"rewards"}) if what == "rewards" else frozenset()
            packed = getattr(engine(model, make_batch(records, groups, "packed").to(device), needs), what)
            separate = getattr(engine(model, make_batch(records, groups, "separate").to(device), needs), what)
        dtype = next(unwrap(model).parameters()).dtype
        tol = 1e-3 if dtype == torch.float32 else 5e-2
        ok = bool(torch.allclose(packed.float(), separate.float(), atol=tol * 10, rtol=tol))
    except Exception:  # a model that rejects the mask falls back; the engine says which layout it uses
        ok = False
    try:
        model._alignlab_packed_ok = ok
    except AttributeError:
        pass
    return ok
