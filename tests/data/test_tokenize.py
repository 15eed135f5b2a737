"""Tokenisation: the prompt is an exact prefix, BOS appears once, EOS ends each completion, truncation is counted."""

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from alignlab.data.records import Record, Span
from alignlab.data.tokenize import Truncation, tokenize_records
from alignlab.models.tiny import tiny_tokenizer

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, how are you today?",
    "1 2 3 4 5 6 7 8 9 0",
] * 5


def llama_style_tokenizer(template_has_bos: bool) -> PreTrainedTokenizerFast:
    """SentencePiece-like (Metaspace) BPE that adds <s> to every input, as Llama tokenizers do."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(
        CORPUS, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"])
    )
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.chat_template = (
        "{{ bos_token }}" if template_has_bos else ""
    ) + "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}[assistant]"
    return fast


def gpt2_style_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE with no BOS and no chat template (chat prompts fall back to 'Role: content' lines)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


TOKENIZERS = {
    "tiny-chatml": tiny_tokenizer,
    "llama-bos": lambda: llama_style_tokenizer(template_has_bos=False),
    "llama-bos-in-template": lambda: llama_style_tokenizer(template_has_bos=True),
    "gpt2-no-template": gpt2_style_tokenizer,
}
RECORDS = [
    Record("the quick brown fox", [" jumps over", "hello world"], ranking=[0, 1]),
    Record([{"role": "user", "content": "how are you"}], ["today 1 2 3", "the dog"], ranking=[1, 0]),
    Record("1 2 3", ["4 5 6"]),
]


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_prompt_is_prefix_bos_once_eos_appended(name):
    tokenizer = TOKENIZERS[name]()
    groups, report = tokenize_records(RECORDS, tokenizer)
    assert report.kept == 3
    for record, group in zip(RECORDS, groups):
        if isinstance(record.prompt, str):
            # Independent expectation: the tokenizer's own encoding of the prompt text.
            assert group.prompt_ids == tokenizer(record.prompt)["input_ids"]
        for text, ids in zip(record.completions, group.completion_ids):
            full = group.prompt_ids + ids
            assert full[: len(group.prompt_ids)] == group.prompt_ids
            assert ids[-1] == tokenizer.eos_token_id
            assert tokenizer.decode(ids[:-1]).strip() == text.strip()
            if tokenizer.bos_token_id is not None:
                assert full.count(tokenizer.bos_token_id) == 1 and full[0] == tokenizer.bos_token_id
    if name == "gpt2-no-template":
        assert report.fallback_chat_rendering == 1


def test_chat_prompt_uses_the_template():
    tokenizer = tiny_tokenizer()
    groups, _ = tokenize_records(RECORDS[1:2], tokenizer)
    text = tokenizer.decode(groups[0].prompt_ids)
    assert text == "<|im_start|>user\nhow are you<|im_end|>\n<|im_start|>assistant\n"


def test_truncation_keeps_prompt_end_cuts_completion_end_and_counts():
    tokenizer = tiny_tokenizer()
    long_prompt = "one two three four five six seven eight nine ten " * 3
    record = Record(long_prompt, ["red blue green cat dog sun moon tree fish bird"])
    full_prompt = tokenizer(long_prompt)["input_ids"]
    groups, report = tokenize_records([record], tokenizer, Truncation(max_length=20, max_prompt_length=12))
    assert groups[0].prompt_ids == full_prompt[-12:]
    assert len(groups[0].completion_ids[0]) == 8
    assert (
        groups[0].completion_ids[0]
        == tokenizer("red blue green cat dog sun moon tree fish bird", add_special_tokens=False)["input_ids"][
            :8
        ]
    )
    assert report.truncated_prompts == 1 and report.truncated_completions == 1

    dropped_groups, dropped = tokenize_records(
        [record, RECORDS[2]], tokenizer, Truncation(max_length=20, max_prompt_length=12, completion="drop")
    )
    assert len(dropped_groups) == 1 and sum(dropped.dropped.values()) == 1
    assert any("drop" in line for line in dropped.lines())


def test_identical_pair_after_truncation_is_dropped_and_reported():
    tokenizer = tiny_tokenizer()
    record = Record("hello", ["red blue green cat", "red blue green dog"], ranking=[0, 1])
    groups, report = tokenize_records([record], tokenizer, Truncation(max_length=4, max_prompt_length=2))
    assert groups == [] and list(report.dropped.values()) == [1]


def test_spans_become_token_weights():
    tokenizer = tiny_tokenizer()
    text = "red blue green"
    record = Record("p", [text], spans=[[Span(start=4, end=8, label="wrong", weight=1.0)]])
    groups, _ = tokenize_records([record], tokenizer)
    ids = groups[0].completion_ids[0]
    weights = groups[0].token_weights[0]
    marked = "".join(tokenizer.decode([t]) for t, w in zip(ids, weights) if w > 0)
    assert marked.strip() == "blue"


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_repeated_texts_and_context_prefixes_encode_like_each_alone(name):
    """Texts are tokenised once per distinct text in batches; each use must still get its own ids: a context
    prefix without EOS, the same text as a completion with it, in every record that repeats it."""
    tokenizer = TOKENIZERS[name]()
    shared = "hello world"
    records = [
        Record("the lazy dog", [shared, "1 2 3"], ranking=[0, 1]),
        Record("how are you", ["4 5 6", shared], ranking=[0, 1], context_prefixes=[shared, None]),
        Record("the quick brown fox", [shared]),
    ]
    groups, report = tokenize_records(records, tokenizer)
    assert report.kept == 3
    alone = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    eos = [tokenizer.eos_token_id]
    assert groups[0].completion_ids == [alone(shared) + eos, alone("1 2 3") + eos]
    assert groups[1].context_ids == [alone(shared), []]
    assert groups[1].completion_ids == [alone("4 5 6") + eos, alone(shared) + eos]
    assert groups[2].completion_ids == [alone(shared) + eos]
    for record, group in zip(records, groups):
        assert group.prompt_ids == tokenizer(record.prompt)["input_ids"]
