"""The cached reference log-probs belong to their own records whatever the reference pass's chunks.

With ``train.micro_batch_tokens`` set, the reference pass runs in token-budget chunks that come longest
first; the table used to be filled in that order, so records were trained against other records' reference
log-probs. Checked against each record scored alone by a plain forward pass of the model (no engine), and by
DPO's closed form at the first step: the policy is the reference, so every margin is 0 and the loss is ln 2."""

from __future__ import annotations

import math

import pytest

from alignlab.config import load_config
from alignlab.train.step import train_step
from alignlab.train.trainer import Trainer
from tests.train._online import manual_token_logps


@pytest.mark.parametrize("cut", ["train.micro_batch_tokens=64", "train.micro_batch_size=3"])
def test_reference_table_rows_are_their_records_and_the_first_dpo_step_is_ln2(tmp_path, cut):
    trainer = Trainer(
        load_config(None, [f"out={tmp_path / 'run'}", "train.progress=false", "data.train=builtin:pairs",
                           "data.limit=24", "train.batch_size=8", "objectives.0.name=dpo",
                           f"reference.cache_dir={tmp_path / 'cache'}", cut])
    )  # fmt: skip
    trainer._setup()
    groups = trainer.train_data.groups
    lengths = {g.num_tokens for g in groups}
    assert len(lengths) > 1  # records of different lengths, so longest-first chunks are out of order
    table = trainer.context.reference_cache["train"]
    assert table is not None
    model = trainer.context.unwrapped_policy()  # no step taken: the policy is the reference
    for index, group in enumerate(groups):
        assert all(not x for x in group.context_ids)
        by_hand = [
            float(manual_token_logps(model, group.prompt_ids, c).double().sum()) for c in group.completion_ids
        ]
        cached = table.logps[table.group_offsets[index] : table.group_offsets[index + 1]].tolist()
        assert cached == pytest.approx(by_hand, abs=1e-4), index

    metrics = train_step(trainer.context, trainer.source.next(), 1, lambda: "none")
    assert metrics["loss"] == pytest.approx(math.log(2), abs=1e-6)
