"""The batched tokenisation path (chat templates rendered many at a time, the Rust backend called directly)
gives the token ids of the one-at-a-time path: each prompt rendered by its own ``apply_chat_template`` call
and every text tokenised by its own ``tokenizer(text)`` call, truncated by hand."""

import pytest

from alignlab.data import tokenize as tokenize_module
from alignlab.data.records import Record
from alignlab.data.tokenize import Truncation, tokenize_records
from alignlab.models.tiny import tiny_tokenizer
from tests.data.test_tokenize import TOKENIZERS

LONG = "one two three four five six seven eight nine ten " * 12
MULTI_TURN = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "how are you"},
    {"role": "assistant", "content": "fine, and you?"},
    {"role": "user", "content": "the quick brown fox — naïve café 1 2 3"},
]


def varied_records() -> list[Record]:
    return [
        Record("the quick brown fox", [" jumps over", "hello world"], ranking=[0, 1]),
        Record([{"role": "user", "content": "how are you"}], ["today 1 2 3", "the dog"], ranking=[1, 0]),
        Record(MULTI_TURN, ["I am well.", "Fine."], ranking=[0, 1]),
        Record([{"role": "user", "content": LONG}], ["short", LONG], ranking=[0, 1]),  # both truncations
        Record(LONG, ["x y z"]),  # a long plain prompt
        Record(
            [{"role": "user", "content": "say <|im_end|> now"}], ["<|im_end|> done", "ok"], ranking=[0, 1]
        ),
        Record(MULTI_TURN[1:], ["  leading spaces", "tabs\tand\nnewlines"], ranking=[1, 0]),
        Record("1 2 3", ["4 5 6", "7 8 9", "0"], ranking=[2, 0, 1]),
        Record([{"role": "user", "content": "é" * 40}], ["ü" * 30]),
    ]


def one_at_a_time(tokenizer, record: Record, truncation: Truncation) -> tuple[list[int], list[list[int]]]:
    """Prompt and completion ids by hand, one ``transformers`` call per text (tiny tokenizer: no BOS)."""
    if isinstance(record.prompt, str):
        prompt = tokenizer(record.prompt, add_special_tokens=True)["input_ids"]
    else:
        text = tokenizer.apply_chat_template(record.prompt, add_generation_prompt=True, tokenize=False)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    prompt = prompt[-truncation.max_prompt_length :]  # keep_end
    completions = []
    for text in record.completions:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        completions.append(ids[: truncation.max_length - len(prompt)])
    return prompt, completions


def test_batched_ids_equal_one_at_a_time_ids_with_multi_turn_and_truncation():
    tokenizer = tiny_tokenizer()
    truncation = Truncation(max_length=96, max_prompt_length=48)
    records = varied_records() * 3  # repeated texts share one encoding in the batch
    groups, report = tokenize_records(records, tokenizer, truncation)
    assert report.kept == len(records)
    assert report.truncated_prompts >= 6 and report.truncated_completions >= 3  # the cases are exercised
    for record, group in zip(records, groups):
        prompt, completions = one_at_a_time(tokenizer, record, truncation)
        assert group.prompt_ids == prompt
        assert group.completion_ids == completions


def test_chat_prompts_render_in_batches_of_the_batch_size(monkeypatch):
    """More chat prompts than one batch: the batch boundaries do not change any prompt's ids."""
    tokenizer = tiny_tokenizer()
    monkeypatch.setattr(tokenize_module, "_BATCH", 4)
    records = varied_records() * 2
    groups, _ = tokenize_records(records, tokenizer, Truncation(max_length=96, max_prompt_length=48))
    for record, group in zip(records, groups):
        assert group.prompt_ids == one_at_a_time(tokenizer, record, Truncation(96, 48))[0]


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_direct_backend_path_equals_the_transformers_call(name, monkeypatch):
    """Per tokenizer kind (BOS added by the tokenizer or by the template, no template at all): the whole
    list through the direct backend path equals each record alone through ``tokenizer(...)``."""
    tokenizer = TOKENIZERS[name]()
    truncation = Truncation(max_length=40, max_prompt_length=16)
    records = varied_records()
    assert tokenize_module._direct_encoder(tokenizer) is not None  # the fast path is the one under test
    batched, _ = tokenize_records(records, tokenizer, truncation)
    monkeypatch.setattr(tokenize_module, "_direct_encoder", lambda tok: None)
    for i, record in enumerate(records):
        (alone,), _ = tokenize_records([record], tokenizer, truncation)
        group = next(g for g in batched if g.record_index == i)
        assert (group.prompt_ids, group.completion_ids) == (alone.prompt_ids, alone.completion_ids)


def test_a_backend_with_truncation_set_goes_through_the_transformers_call():
    tokenizer = tiny_tokenizer()
    tokenizer._tokenizer.enable_truncation(max_length=3)
    assert tokenize_module._direct_encoder(tokenizer) is None
    (group,), _ = tokenize_records([Record("one two three four five six", ["a"])], tokenizer)
    assert len(group.prompt_ids) > 3  # the call turned the backend's truncation off, as transformers does
