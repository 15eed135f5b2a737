"""Batches as objectives see them: pairs, lists or single completions, gathered from flat Scores.

The engine scores a flat set of N completions; ``Feedback.group_index`` says which record each one
belongs to. An objective declares the feedback it consumes and receives one of:

- :class:`PairBatch` (``pairs``, ``rewards``): every (chosen, rejected) pair of a record whose ranks
  differ; a K = 2 ranking is one pair, a K-way ranking gives all K(K-1)/2 ordered pairs, ties none.
- :class:`ListBatch` (``ranking``, ``scores``, ``critique``): records padded to ``[G, K]``.
- :class:`PointBatch` (``labels``, ``demonstrations``): one row per completion.

Completions with a non-empty role (``Record.roles``, e.g. KTO's mismatched "kl" completion)
are not scored as feedback; they arrive in ``aux[role]`` aligned with the rows, shape ``[B, M]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from alignlab.data.feedback import Feedback
from alignlab.scoring.scores import Scores


class FeedbackMismatch(ValueError):
    """The objective needs a kind of feedback the data does not carry."""


@dataclass
class PairBatch:
    chosen: Scores  # [P]
    rejected: Scores  # [P]
    weight: Tensor  # [P]
    margin: Tensor | None = None  # [P] given margin, or rating gap when ratings are present
    rating_names: list[str] = field(default_factory=list)  # names of the columns of Scores.ratings
    aux: dict[str, Scores] = field(default_factory=dict)  # role -> [P, M]
    aux_mask: dict[str, Tensor] = field(default_factory=dict)
    group_index: Tensor | None = None  # [P] record of each pair (None: one pair per record, in order)

    @property
    def size(self) -> int:
        return int(self.chosen.logps.shape[0])


@dataclass
class ListBatch:
    items: Scores  # [G, K]
    ranks: Tensor  # [G, K] lower is better; +inf on padding
    mask: Tensor  # [G, K] bool, True on real completions
    weight: Tensor  # [G]
    rating_names: list[str] = field(default_factory=list)
    aux: dict[str, Scores] = field(default_factory=dict)
    aux_mask: dict[str, Tensor] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])


@dataclass
class PointBatch:
    items: Scores  # [N]
    weight: Tensor  # [N]
    labels: Tensor | None = None  # [N] 1.0 good, 0.0 bad
    group_index: Tensor | None = None  # [N] record of each row
    rating_names: list[str] = field(default_factory=list)
    aux: dict[str, Scores] = field(default_factory=dict)  # role -> [N, M]
    aux_mask: dict[str, Tensor] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.items.logps.shape[0])


HINTS = {
    "pairs": "set `data.convert` to ratings_to_pairs (for scores) or use pairwise/ranked data",
    "ranking": "set `data.convert` to ratings_to_ranking (for scores), or use ranked data",
    "labels": "set `data.convert: pairs_to_labels` (pairs or rankings) or ratings_to_labels",
    "scores": "use data with named ratings (`scores` per completion)",
}


def _need(value: Tensor | None, kind: str, have: str) -> Tensor:
    if value is None or torch.isnan(value).all():
        raise FeedbackMismatch(f"this objective needs {kind}; your data has {have}: {HINTS.get(kind, '')}")
    return value


def _describe(feedback: Feedback) -> str:
    kinds = [
        name
        for name, value in (
            ("rankings", feedback.ranks),
            ("labels", feedback.labels),
            ("ratings", feedback.ratings),
        )
        if value is not None and not torch.isnan(value).all()
    ]
    return ", ".join(kinds) or "no feedback (demonstrations)"


def _groups(feedback: Feedback) -> list[list[int]]:
    """Indices of the scored completions of each group, in order."""
    main = feedback.role_mask("").tolist()
    out: list[list[int]] = [[] for _ in range(feedback.num_groups)]
    for i, g in enumerate(feedback.group_index.tolist()):
        if main[i]:
            out[g].append(i)
    return out


def _aux(
    scores: Scores, feedback: Feedback, row_groups: list[int]
) -> tuple[dict[str, Scores], dict[str, Tensor]]:
    roles = sorted({r for r in feedback.roles if r})
    aux, masks = {}, {}
    groups = feedback.group_index.tolist()
    for role in roles:
        per_group: dict[int, list[int]] = {}
        for i, r in enumerate(feedback.roles):
            if r == role:
                per_group.setdefault(groups[i], []).append(i)
        width = max((len(v) for v in per_group.values()), default=1)
        index = torch.zeros(len(row_groups), width, dtype=torch.long)
        mask = torch.zeros(len(row_groups), width, dtype=torch.bool)
        for row, g in enumerate(row_groups):
            members = per_group.get(g, [])
            index[row, : len(members)] = torch.tensor(members, dtype=torch.long)
            mask[row, : len(members)] = True
        aux[role], masks[role] = scores.index(index), mask
    return aux, masks


def pair_view(scores: Scores, feedback: Feedback) -> PairBatch:
    ranks = _need(feedback.ranks, "pairs", _describe(feedback))
    chosen, rejected, row_groups = [], [], []
    rank_list = ranks.tolist()
    for g, members in enumerate(_groups(feedback)):
        for a in members:
            for b in members:
                if rank_list[a] < rank_list[b]:
                    chosen.append(a)
                    rejected.append(b)
                    row_groups.append(g)
    if not chosen:
        raise FeedbackMismatch("no pair in this batch has a strict preference (all ties or K = 1)")
    c, r, gidx = (torch.tensor(x, dtype=torch.long) for x in (chosen, rejected, row_groups))
    margin = None
    if feedback.margins is not None:
        margin = feedback.margins[gidx]
    elif (
        feedback.ratings is not None
        and feedback.ratings.shape[-1] == 1
        and not torch.isnan(feedback.ratings).any()
    ):
        margin = (feedback.ratings[c, 0] - feedback.ratings[r, 0]).to(scores.logps.dtype)
    aux, aux_mask = _aux(scores, feedback, row_groups)
    return PairBatch(
        scores.index(c),
        scores.index(r),
        feedback.weight[gidx],
        margin,
        list(feedback.rating_names),
        aux,
        aux_mask,
        gidx,
    )


def list_view(scores: Scores, feedback: Feedback, kind: str = "ranking") -> ListBatch:
    if kind == "ranking":
        ranks_flat = _need(feedback.ranks, "ranking", _describe(feedback))
    elif kind == "scores":
        ratings = _need(feedback.ratings, "scores", _describe(feedback))
        # Higher rating is better: rank by the first (or only) named rating, descending.
        ranks_flat = -ratings[:, 0]
    else:
        ranks_flat = feedback.ranks if feedback.ranks is not None else torch.zeros(feedback.num_completions)
    groups = _groups(feedback)
    width = max(len(m) for m in groups)
    index = torch.zeros(len(groups), width, dtype=torch.long)
    mask = torch.zeros(len(groups), width, dtype=torch.bool)
    for g, members in enumerate(groups):
        index[g, : len(members)] = torch.tensor(members, dtype=torch.long)
        mask[g, : len(members)] = True
    ranks = torch.where(
        mask, ranks_flat[index].float(), torch.full_like(index, float("inf"), dtype=torch.float)
    )
    aux, aux_mask = _aux(scores, feedback, list(range(len(groups))))
    return ListBatch(
        scores.index(index), ranks, mask, feedback.weight, list(feedback.rating_names), aux, aux_mask
    )


def point_view(scores: Scores, feedback: Feedback, kind: str = "labels") -> PointBatch:
    groups = _groups(feedback)
    labels = None
    if kind == "labels":
        labels_flat = _need(feedback.labels, "labels", _describe(feedback))
        rows = [i for members in groups for i in members]
        labels = labels_flat[torch.tensor(rows, dtype=torch.long)].float()
    else:  # demonstrations: the best of a ranking, the good of labels, or every completion
        rows = []
        for members in groups:
            if feedback.ranks is not None and not torch.isnan(feedback.ranks[members]).any():
                best = min(feedback.ranks[m].item() for m in members)
                rows += [m for m in members if feedback.ranks[m].item() == best]
            elif feedback.labels is not None and not torch.isnan(feedback.labels[members]).any():
                rows += [m for m in members if feedback.labels[m].item() > 0.5]
            else:
                rows += members
    index = torch.tensor(rows, dtype=torch.long)
    row_groups = feedback.group_index[index]
    aux, aux_mask = _aux(scores, feedback, row_groups.tolist())
    return PointBatch(
        scores.index(index),
        feedback.weight[row_groups],
        labels,
        row_groups,
        list(feedback.rating_names),
        aux,
        aux_mask,
    )


@dataclass
class RolloutBatch:
    """Completions sampled during online training (``feedback="rollouts"``): the current policy's Scores
    aligned with the tensors the rollout source stored when it sampled them (``Feedback.rollout``: the
    sampling policy's per-token log-probs ``old_logps``, the reference's ``ref_logps``, ``advantages``,
    ``returns``, ``old_values``, and ``length_norm``, the constant L_max of ``seq_mean_token_sum_norm``)."""

    items: Scores  # [N] the current policy's scores: token_logps [N, T] with gradient, token_mask
    rollout: dict[str, Tensor]  # [N] or [N, T] tensors stored when the rollout was sampled
    group_index: Tensor  # [N] the prompt each completion answers
    weight: Tensor  # [N] per-completion weight (the record's)

    @property
    def size(self) -> int:
        return int(self.items.logps.shape[0])

    @property
    def mask(self) -> Tensor:
        return self.items.token_mask

    def get(self, name: str) -> Tensor:
        if name == "old_logps" and name not in self.rollout:
            # the rollout source leaves them out when each rollout is trained on once, at the weights
            # that sampled it (online.epochs_per_rollout × minibatches = 1): then π_old = π_θ and the
            # sampling policy's log-probs are the current ones, detached (TRL's old = logps.detach())
            return self.items.token_logps.detach()
        if name not in self.rollout:
            raise ValueError(
                f"the rollout has no '{name}' tensor (it has {sorted(self.rollout)}); an online objective "
                "must run on rollouts from `online:` (alignlab train with an online section)"
            )
        return self.rollout[name]


def rollout_view(scores: Scores, feedback: Feedback) -> RolloutBatch:
    if not feedback.rollout:
        raise FeedbackMismatch(
            "this objective learns from rollouts sampled during training: add an `online:` section "
            "(prompts, sampling, judge) to the run config; see docs/online.md"
        )
    weight = feedback.weight[feedback.group_index].to(scores.logps.dtype)
    return RolloutBatch(scores, feedback.rollout, feedback.group_index, weight)


def example_groups(batch: PairBatch | ListBatch | PointBatch | RolloutBatch) -> Tensor:
    """The batch group (record) of each example of a view, in the view's order."""
    groups = getattr(batch, "group_index", None)
    if isinstance(batch, ListBatch) or groups is None:
        return torch.arange(batch.size)
    return groups.long().cpu()


def build_view(
    kind: str, scores: Scores, feedback: Feedback
) -> PairBatch | ListBatch | PointBatch | RolloutBatch:
    """The batch an objective consuming ``kind`` receives; ratings and span weights ride along in Scores."""
    dtype = scores.logps.dtype
    if feedback.ratings is not None:
        scores = scores.with_(ratings=feedback.ratings.to(dtype))
    if feedback.token_weights is not None:
        scores = scores.with_(token_weights=feedback.token_weights.to(dtype))
    if feedback.extras:  # Record.extras, one value per completion
        extras = {name: values.to(dtype) for name, values in feedback.extras.items()}
        scores = scores.with_(extra={**scores.extra, **extras})
    if kind in ("pairs", "rewards"):
        return pair_view(scores, feedback)
    if kind in ("ranking", "scores", "critique"):
        return list_view(scores, feedback, kind)
    if kind in ("labels", "demonstrations"):
        return point_view(scores, feedback, kind)
    if kind == "rollouts":
        return rollout_view(scores, feedback)
    raise ValueError(f"unknown feedback kind '{kind}'")
