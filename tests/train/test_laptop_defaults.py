"""Laptop defaults. train.threads: auto takes the cores idle at the start (cores − 1-minute load average, at
least one), an explicit number wins, OMP_NUM_THREADS caps auto, null leaves torch alone; durations."""

import pytest
import torch

from alignlab.config import ConfigError, load_config
from alignlab.train.threads import idle_cores, resolve_threads


@pytest.mark.parametrize(
    "cores, load, expected",
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 10.5, 1), (16, 3.2, 13), (16, 0.0, 16), (1, 0.0, 1)],
)
def test_idle_cores_by_hand(cores, load, expected):
    assert idle_cores(cores, load) == expected


def test_auto_is_capped_by_omp_num_threads_and_numbers_win(monkeypatch):
    monkeypatch.setattr("alignlab.train.threads.idle_cores", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve_threads("auto")[0] == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resolve_threads("auto")[0] == 2
    assert resolve_threads(3) == (3, "train.threads") and resolve_threads(None)[0] is None


def test_threads_config_accepts_auto_a_count_or_null_and_refuses_zero():
    assert load_config(None).train.threads == "auto"
    assert load_config(None, ["train.threads=2"]).train.threads == 2
    assert load_config(None, ["train.threads=null"]).train.threads is None
    with pytest.raises(ConfigError, match="threads"):
        load_config(None, ["train.threads=0"])


def test_the_run_uses_the_threads_it_resolved(tmp_path, monkeypatch):
    from alignlab.train.trainer import Trainer

    monkeypatch.setattr("alignlab.train.trainer.resolve_threads", lambda setting: (1, "test"))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        Trainer(load_config(None, [f"out={tmp_path / 'run'}"]))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "seconds, shown",
    [(0.84, "0.8 s"), (42.4, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min"), (59.6, "1 min 00 s")],
)
def test_durations_read_as_durations(seconds, shown):
    from alignlab.train.logger import duration

    assert duration(seconds) == shown


def test_the_run_reports_held_out_reward_accuracy_whatever_the_chunking(tmp_path):
    # The held-out metrics are each chunk's mean weighted by its records: 10 held-out pairs scored in
    # chunks of 3 (3, 3, 3, 1) give the same accuracy as one chunk of 10, and it is a share of 10 pairs.
    from alignlab.train.trainer import train

    common = [
        "data.train=builtin:pairs", "data.limit=40", "data.eval_fraction=0.25", "objectives.0.name=dpo",
        "train.steps=3", "train.batch_size=6", "train.learning_rate=1e-2", "train.progress=false",
        "train.threads=1", f"reference.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    runs = [
        train(load_config(None, [*common, f"out={tmp_path / name}", f"train.micro_batch_size={size}"]))
        for name, size in (("chunks-of-3", 3), ("chunks-of-6", 6))
    ]
    accuracies = [run.metrics["eval/rewards/accuracies"] for run in runs]
    assert accuracies[0] == pytest.approx(accuracies[1], abs=1e-6)
    assert accuracies[0] * 10 == pytest.approx(round(accuracies[0] * 10), abs=1e-6)
    assert runs[0].metrics["eval/loss"] == pytest.approx(runs[1].metrics["eval/loss"], rel=1e-5)


@pytest.mark.parametrize("mode, kept", [("keep_end", "end"), ("keep_start", "start")])
def test_truncation_counts_give_their_totals_and_say_what_was_kept(mode, kept):
    from alignlab.data.records import Record
    from alignlab.data.tokenize import Truncation, tokenize_records
    from alignlab.models.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    long = "word " * 60
    records = [
        Record(prompt=long, completions=[" yes", " no " * 40], ranking=[0, 1]),
        Record(prompt="short", completions=[" yes", " no"], ranking=[0, 1]),
        Record(prompt=long, completions=[" a", " b"], ranking=[0, 1]),
    ]  # 2 of 3 prompts too long; 1 of 6 completions too long for max_length
    _, report = tokenize_records(
        records, tokenizer, Truncation(max_length=40, max_prompt_length=20, prompt=mode)
    )
    lines = report.lines()
    assert f"2 of 3 prompts truncated (kept their {kept}; max_prompt_length)" in lines
    assert "1 of 6 completions cut at max_length" in lines
