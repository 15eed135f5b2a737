"""A reference told to hide control tokens (Quark's tags) scores each completion exactly as a plain forward
of the prompt without them; control tokens become whole new vocabulary entries with N(mean, std) rows."""

import pytest
import torch

from alignlab.data.batching import make_batch
from alignlab.data.records import Record
from alignlab.data.tokenize import TokenizedGroup
from alignlab.models.control_tokens import add_control_tokens
from alignlab.models.tiny import tiny_model
from alignlab.scoring.engine import Engine, Reference
from tests.scoring.test_engine import naive_logps

TAGS = ["<|quark_0|>", "<|quark_1|>"]


def groups_with_tags(tokenizer, tag_ids):
    """Three prompts, the first two after a tag token; two completions each."""
    enc = lambda text: tokenizer(text)["input_ids"]  # noqa: E731
    prompts = [[tag_ids[0], *enc("what is 3 + 4")], [tag_ids[1], *enc("reverse: cat dog")], enc("hello")]
    completions = [[enc(" seven"), enc(" 7 is it")], [enc(" dog cat"), enc(" no")], [enc(" hi"), enc(" yes")]]
    groups = [
        TokenizedGroup(p, c, [[], []], ["", ""], g) for g, (p, c) in enumerate(zip(prompts, completions))
    ]
    records = [Record("p", ["a", "b"], ranking=[0, 1]) for _ in groups]
    return records, groups


@pytest.mark.parametrize(("arch", "layout"), [("llama", "packed"), ("gpt2", "packed"), ("llama", "separate")])
def test_reference_scores_the_prompt_without_its_tag(arch, layout):
    policy, tokenizer = tiny_model(arch, seed=1)
    reference, _ = tiny_model(arch, seed=2)  # the original vocabulary: it has no row for the tags
    tag_ids = add_control_tokens(policy, tokenizer, TAGS, seed=0)
    records, groups = groups_with_tags(tokenizer, tag_ids)
    batch = make_batch(records, groups, layout)
    with torch.no_grad():
        hidden = Reference(reference, hidden_ids=tuple(tag_ids))
        scores = Engine(layout).reference_scores(hidden, batch, frozenset({"token_logps"}))
        i = 0
        for g in groups:
            untagged = [t for t in g.prompt_ids if t not in tag_ids]
            for c in g.completion_ids:
                want = naive_logps(reference, untagged, c).float()
                assert torch.allclose(scores.token_logps[i, : len(c)], want, atol=1e-5), (g.group_index, i)
                i += 1


def test_the_policy_sees_its_tags_and_the_kl_drops_their_columns():
    policy, tokenizer = tiny_model("llama", seed=1)
    reference, _ = tiny_model("llama", seed=2)
    tag_ids = add_control_tokens(policy, tokenizer, TAGS, seed=0)
    records, groups = groups_with_tags(tokenizer, tag_ids)
    with torch.no_grad():
        scores = Engine("packed")(
            policy, make_batch(records, groups, "packed"), {"token_kl_reverse", "token_entropy"},
            reference=Reference(reference, hidden_ids=tuple(tag_ids)),
        )  # fmt: skip
        g, c = groups[0], groups[0].completion_ids[1]
        ids = torch.tensor([g.prompt_ids + c])
        logits = policy(input_ids=ids).logits[0].double()[len(g.prompt_ids) - 1 : -1]
        ref_logits = reference(input_ids=torch.tensor([g.prompt_ids[1:] + c])).logits[0].double()
        ref_logits = ref_logits[len(g.prompt_ids) - 2 : -1]
    assert logits.shape[-1] == 514 and ref_logits.shape[-1] == 512
    full = logits.log_softmax(-1)  # entropy: over everything the policy can write, tags included
    entropy = -(full.exp() * full).sum(-1)
    kept = logits[:, :512].log_softmax(-1)  # KL: the tag columns dropped, as Quark's code does
    kl = (kept.exp() * (kept - ref_logits.log_softmax(-1))).sum(-1)
    n = len(c)
    assert torch.allclose(scores.token_entropy[1, :n].double(), entropy, atol=1e-5)
    assert torch.allclose(scores.token_kl_reverse[1, :n].double(), kl, atol=1e-5)


def test_control_tokens_are_new_whole_tokens_with_rows_like_the_others():
    model, tokenizer = tiny_model("llama", hidden=64)
    before = model.get_input_embeddings().weight.detach().clone()
    tokens = [f"<|c{k}|>" for k in range(4000)]
    ids = add_control_tokens(model, tokenizer, tokens, seed=0)
    assert ids == list(range(512, 4512)) and model.config.vocab_size == 4512
    assert tokenizer("<|c7|>what")["input_ids"][0] == 519  # one token, never split
    weight = model.get_input_embeddings().weight.detach()
    assert torch.equal(weight[:512], before)  # the old rows do not move
    new = weight[512:]
    # per dimension, the 4000 new rows have the old rows' mean and (population) std, within sampling error
    mean, std = before.mean(0), before.std(0, unbiased=False)
    assert (new.mean(0) - mean).abs().max() < 5 * std.max() / 4000**0.5
    assert ((new.std(0) / std) - 1).abs().max() < 0.1
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # still tied
    again = add_control_tokens(model, tokenizer, tokens[:3], seed=1)  # known tokens: nothing changes
    assert again == ids[:3] and torch.equal(model.get_input_embeddings().weight.detach(), weight)


def test_a_prompt_that_is_only_a_tag_is_refused():
    policy, tokenizer = tiny_model("llama")
    tag_ids = add_control_tokens(policy, tokenizer, TAGS)
    groups = [TokenizedGroup([tag_ids[0]], [[5, 6]], [[]], [""], 0)]
    batch = make_batch([Record("p", ["a"])], groups, "packed")
    with pytest.raises(ValueError, match="only a hidden control token"):
        Reference(policy, hidden_ids=tuple(tag_ids)).view(batch)
