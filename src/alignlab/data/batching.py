"""Lay tokenised groups out for the engine.

``packed`` layout: each group is one segment ``[prompt, ctx_1, c_1, ctx_2, c_2, ...]`` and several
segments share a row up to a token budget. Each token carries a segment id and a branch id (0 for the
prompt, i for completion i); a token may attend to an earlier token of its segment that is in the
prompt or in its own branch. Positions restart after the prompt for every completion, so each
completion sees exactly what it would see alone, and the prompt is computed once.

``separate`` layout: every (prompt, ctx_i, c_i) is its own right-padded row with an ordinary causal
mask: the naive computation, and the fallback for models that cannot take a custom mask.

Both layouts give the same index structures: for every scored completion token, the (row, column)
whose logits predict it and its target id; for every completion, the position of its last token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from alignlab.data.feedback import Feedback
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup

Layout = Literal["packed", "separate"]


@dataclass
class Batch:
    input_ids: Tensor  # [R, L]
    position_ids: Tensor  # [R, L]
    segment_ids: Tensor  # [R, L] group within row; -1 on padding
    branch_ids: Tensor  # [R, L] 0 prompt, i completion i (1-based)
    layout: str
    pred_rows: Tensor  # [M] where the logits predicting each scored token are
    pred_cols: Tensor  # [M]
    targets: Tensor  # [M] the scored token ids
    token_completion: Tensor  # [M] flat completion index of each scored token
    token_position: Tensor  # [M] index of the token within its completion
    lengths: Tensor  # [N] scored tokens per completion
    last_rows: Tensor  # [N] position of each completion's last token (for pooled hidden states)
    last_cols: Tensor  # [N]
    prompt_pred_rows: Tensor  # [Mp] prompt-token predictions (prompt_logps), one prompt per group
    prompt_pred_cols: Tensor
    prompt_targets: Tensor
    prompt_token_group: Tensor  # [Mp]
    prompt_lengths: Tensor  # [G] predicted prompt tokens per group
    feedback: Feedback
    record_indices: list[int]  # [G] index of each group's record in the dataset

    @property
    def num_completions(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens the model computes."""
        return int((self.segment_ids >= 0).sum())

    def attention_mask_4d(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """Additive mask [R, 1, L, L]: 0 where a query may attend to a key, a large negative elsewhere."""
        seg, branch = self.segment_ids, self.branch_ids
        length = seg.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=seg.device).tril()
        same_segment = (seg[:, :, None] == seg[:, None, :]) & (seg[:, None, :] >= 0)
        visible_branch = (branch[:, None, :] == 0) | (branch[:, :, None] == branch[:, None, :])
        allowed = same_segment & visible_branch & causal
        # Padding queries attend to themselves so no row is empty (their outputs are never read).
        allowed = allowed | torch.eye(length, dtype=torch.bool, device=seg.device)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=seg.device)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[:, None]

    def segment_spans(self) -> list[tuple[int, int, int]]:
        """``(row, start, end)`` of every packed segment: tokens outside a segment never see inside it,
        so attention can be computed segment by segment (``scoring/flex.py``)."""
        seg = self.segment_ids.cpu()
        spans = []
        for r in range(seg.shape[0]):
            row = seg[r]
            cuts = (torch.nonzero(row[1:] != row[:-1]).flatten() + 1).tolist()
            for start, end in zip([0, *cuts], [*cuts, row.shape[0]]):
                if int(row[start]) >= 0:
                    spans.append((r, start, end))
        return spans

    def padding_mask_2d(self) -> Tensor:
        return (self.segment_ids >= 0).long()

    def to(self, device: torch.device | str) -> Batch:
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        fb = self.feedback
        fields = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in fb.__dict__.items()}
        fields["extras"] = {k: v.to(device) for k, v in fb.extras.items()}
        fields["rollout"] = {k: v.to(device) for k, v in fb.rollout.items()}
        moved["feedback"] = Feedback(**fields)
        return Batch(**moved)


def feedback_tensors(records: list[Record], groups: list[TokenizedGroup], max_tokens: int) -> Feedback:
    """The feedback of ``groups`` (tokenised from ``records``) aligned with their flat completions."""
    group_index, ranks, labels, rows_ratings, roles, weights, margins = [], [], [], [], [], [], []
    names = sorted({name for g in groups for s in (records[g.record_index].scores or []) for name in s})
    has = {"ranks": False, "labels": False, "margins": False}
    extra_names = sorted({name for g in groups for name in records[g.record_index].extras})
    extras: dict[str, list[float]] = {name: [] for name in extra_names}
    token_weights = []
    for gi, group in enumerate(groups):
        record = records[group.record_index]
        weights.append(float(record.weight))
        margin = record.meta.get("margin")
        margins.append(float(margin) if margin is not None else math.nan)
        has["margins"] |= margin is not None
        for ci in range(len(group.completion_ids)):
            for name in extra_names:
                value = record.extras.get(name, math.nan)
                extras[name].append(float(value[ci] if isinstance(value, list) else value))
            group_index.append(gi)
            roles.append(group.roles[ci] if ci < len(group.roles) else "")
            ranks.append(float(record.ranking[ci]) if record.ranking is not None else math.nan)
            labels.append(float(record.labels[ci]) if record.labels is not None else math.nan)
            has["ranks"] |= record.ranking is not None
            has["labels"] |= record.labels is not None
            rating = (record.scores or [{}] * record.k)[ci]
            rows_ratings.append([float(rating.get(n, math.nan)) for n in names])
            token_weights.append(group.token_weights[ci] if group.token_weights is not None else None)
    tw = None
    if any(w is not None for w in token_weights):
        tw = torch.zeros(len(token_weights), max_tokens)
        for i, w in enumerate(token_weights):
            if w is not None:
                w = w[:max_tokens]
                tw[i, : len(w)] = torch.tensor(w, dtype=torch.float)
    return Feedback(
        rollout=_rollout_tensors(groups, max_tokens),
        group_index=torch.tensor(group_index, dtype=torch.long),
        weight=torch.tensor(weights, dtype=torch.float),
        ranks=torch.tensor(ranks) if has["ranks"] else None,
        labels=torch.tensor(labels) if has["labels"] else None,
        ratings=torch.tensor(rows_ratings, dtype=torch.float) if names else None,
        rating_names=names,
        margins=torch.tensor(margins) if has["margins"] else None,
        token_weights=tw,
        roles=roles if any(roles) else [],
        extras={name: torch.tensor(values, dtype=torch.float) for name, values in extras.items()},
    )


def _rollout_tensors(groups: list[TokenizedGroup], max_tokens: int) -> dict[str, Tensor]:
    """The groups' rollout tensors stacked over completions: [N] as is, [N, T] cut or zero-padded to the
    batch's longest completion (the width of the engine's per-token Scores)."""
    if not groups or groups[0].rollout is None:
        return {}
    out: dict[str, Tensor] = {}
    for name in groups[0].rollout:
        parts = []
        for g in groups:
            value = g.rollout[name]
            if value.dim() == 2:
                value = value[:, :max_tokens]
                value = torch.nn.functional.pad(value, (0, max_tokens - value.shape[1]))
            parts.append(value)
        out[name] = torch.cat(parts)
    return out


def _pack_rows(groups: list[TokenizedGroup], tokens_per_row: int) -> list[list[int]]:
    """First-fit-decreasing packing of group indices into rows of at most ``tokens_per_row`` tokens."""
    order = sorted(range(len(groups)), key=lambda i: -groups[i].num_tokens)
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        need = groups[i].num_tokens
        for r, free in enumerate(room):
            if need <= free:
                rows[r].append(i)
                room[r] -= need
                break
        else:
            rows.append([i])
            room.append(max(tokens_per_row, need) - need)
    for row in rows:
        row.sort()
    return rows


def layout_tokens(groups: list[TokenizedGroup], layout: Layout) -> int:
    """Positions the model computes for ``groups`` laid out together: every token once in ``packed``;
    one row per completion, padded to the widest, in ``separate``."""
    if layout == "packed":
        return sum(g.num_tokens for g in groups)
    widths = [
        len(g.prompt_ids) + len(c) + len(x) for g in groups for c, x in zip(g.completion_ids, g.context_ids)
    ]
    return len(widths) * max(widths, default=0)


def split_by_tokens(
    groups: list[TokenizedGroup], ids: list[int], budget: int, layout: Layout
) -> list[list[int]]:
    """Micro-batches of ``ids`` that each lay out in at most ``budget`` positions (a group larger than the
    budget goes alone). Longest groups first, so groups of similar length share a micro-batch (less padding
    in ``separate``); each micro-batch keeps its ids in the order given."""
    position = {i: n for n, i in enumerate(ids)}
    order = sorted(ids, key=lambda i: (-groups[i].num_tokens_unshared, position[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and layout_tokens([groups[j] for j in current + [i]], layout) > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return [sorted(b, key=position.__getitem__) for b in batches]


def make_batch(
    records: list[Record],
    groups: list[TokenizedGroup],
    layout: Layout = "packed",
    tokens_per_row: int = 2048,
    pad_id: int = 0,
) -> Batch:
    """Lay ``groups`` out in ``layout``; completions are numbered group by group, in order."""
    # Flat completion index of (group, completion).
    offsets, n = [], 0
    for g in groups:
        offsets.append(n)
        n += len(g.completion_ids)
    segments: list[list[tuple[int, int | None]]]  # rows of (group, completion or None for whole group)
    if layout == "packed":
        segments = [[(g, None) for g in row] for row in _pack_rows(groups, tokens_per_row)]
    elif layout == "separate":
        segments = [[(g, c)] for g, group in enumerate(groups) for c in range(len(group.completion_ids))]
    else:
        raise ValueError(f"layout must be 'packed' or 'separate', got '{layout}'")

    rows_ids, rows_pos, rows_seg, rows_branch = [], [], [], []
    pred = {"rows": [], "cols": [], "targets": [], "completion": [], "position": []}
    prompt_pred = {"rows": [], "cols": [], "targets": [], "group": []}
    prompt_lengths = [0] * len(groups)
    prompt_done = [False] * len(groups)
    lengths = [0] * n
    last = [(0, 0)] * n
    for r, row in enumerate(segments):
        ids, pos, seg, branch = [], [], [], []
        for s, (g, only) in enumerate(row):
            group = groups[g]
            start = len(ids)
            ids += group.prompt_ids
            pos += list(range(len(group.prompt_ids)))
            seg += [s] * len(group.prompt_ids)
            branch += [0] * len(group.prompt_ids)
            if not prompt_done[g]:
                prompt_done[g] = True
                for t in range(1, len(group.prompt_ids)):
                    prompt_pred["rows"].append(r)
                    prompt_pred["cols"].append(start + t - 1)
                    prompt_pred["targets"].append(group.prompt_ids[t])
                    prompt_pred["group"].append(g)
                prompt_lengths[g] = max(len(group.prompt_ids) - 1, 0)
            prompt_end = len(ids) - 1  # the last prompt token predicts every completion's first token
            completions = range(len(group.completion_ids)) if only is None else [only]
            for c in completions:
                context, tokens = group.context_ids[c], group.completion_ids[c]
                previous = prompt_end
                p = len(group.prompt_ids)
                for t, token in enumerate(context + tokens):
                    col = len(ids)
                    ids.append(token)
                    pos.append(p + t)
                    seg.append(s)
                    branch.append(c + 1)
                    if t >= len(context):
                        pred["rows"].append(r)
                        pred["cols"].append(previous)
                        pred["targets"].append(token)
                        pred["completion"].append(offsets[g] + c)
                        pred["position"].append(t - len(context))
                    previous = col
                lengths[offsets[g] + c] = len(tokens)
                last[offsets[g] + c] = (r, previous)
        rows_ids.append(ids)
        rows_pos.append(pos)
        rows_seg.append(seg)
        rows_branch.append(branch)

    width = max(len(x) for x in rows_ids)

    def pad(rows: list[list[int]], value: int) -> Tensor:
        return torch.tensor([x + [value] * (width - len(x)) for x in rows], dtype=torch.long)

    max_tokens = max(lengths) if lengths else 0
    as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return Batch(
        input_ids=pad(rows_ids, pad_id),
        position_ids=pad(rows_pos, 0),
        segment_ids=pad(rows_seg, -1),
        branch_ids=pad(rows_branch, 0),
        layout=layout,
        pred_rows=as_long(pred["rows"]),
        pred_cols=as_long(pred["cols"]),
        targets=as_long(pred["targets"]),
        token_completion=as_long(pred["completion"]),
        token_position=as_long(pred["position"]),
        lengths=as_long(lengths),
        last_rows=as_long([x[0] for x in last]),
        last_cols=as_long([x[1] for x in last]),
        prompt_pred_rows=as_long(prompt_pred["rows"]),
        prompt_pred_cols=as_long(prompt_pred["cols"]),
        prompt_targets=as_long(prompt_pred["targets"]),
        prompt_token_group=as_long(prompt_pred["group"]),
        prompt_lengths=as_long(prompt_lengths),
        feedback=feedback_tensors(records, groups, max_tokens),
        record_indices=[g.record_index for g in groups],
    )
