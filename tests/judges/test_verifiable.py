"""The verifiable-answer judge and the built-in checkable prompt sets: answers checked by hand."""

from types import SimpleNamespace

import pytest

from alignlab.data.prompts import PromptSetError, load_prompts
from alignlab.judges.verifiable import VerifiableAnswerJudge, extract


def batch(completions, answers):
    return SimpleNamespace(completions=completions, columns={"answer": answers})


def test_first_last_and_all_numbers():
    assert extract("The sum is 12, not 13.", "first_number") == "12"
    assert extract("3 + 4 = 7", "last_number") == "7"
    assert extract("sorted: 1, 3, 9", "numbers") == "1 3 9"
    assert extract("no digits", "first_number") is None
    assert extract("-5.0 apples", "first_number") == "-5"


def test_rewards_compare_with_the_answer_column():
    judge = VerifiableAnswerJudge("first_number", format_reward=0.1)
    got = judge.score_batch(batch(["7", "It is 8", "seven", " 7 apples"], ["7", "7", "7", "7"]))
    assert got.tolist() == pytest.approx([1.0, 0.1, 0.0, 1.0])
    sort = VerifiableAnswerJudge("numbers")
    assert sort.score_batch(batch(["1 3 9", "1, 3, 9", "9 3 1"], ["1 3 9"] * 3)).tolist() == [1.0, 1.0, 0.0]


def test_missing_answer_column_is_a_clear_error():
    judge = VerifiableAnswerJudge()
    with pytest.raises(ValueError, match="no 'answer' column"):
        judge.score_batch(SimpleNamespace(completions=["1"], columns={"solution": ["1"]}))


def test_builtin_prompt_sets_carry_checkable_answers():
    for row in load_prompts("builtin:arithmetic@50/3"):
        a, b = (int(x) for x in row.prompt.split("What is ")[1].split("?")[0].split(" + "))
        assert row.columns["answer"] == str(a + b) and 0 <= a <= 9 and 0 <= b <= 9
    for row in load_prompts("builtin:arithmetic2@50"):
        a, op, b = row.prompt.split("What is ")[1].split("?")[0].split(" ")
        assert int(row.columns["answer"]) == (int(a) + int(b) if op == "+" else int(a) - int(b))
    for row in load_prompts("builtin:sorting@50"):
        numbers = [int(x) for x in row.prompt.split(": ")[1].split()]
        assert row.columns["answer"] == " ".join(map(str, sorted(numbers)))
    chat = load_prompts("builtin:arithmetic-chat@2")
    assert chat[0].prompt[0]["role"] == "user" and "What is" in chat[0].prompt[0]["content"]
    assert load_prompts("builtin:sorting@5/1")[0].prompt != load_prompts("builtin:sorting@5/2")[0].prompt


def test_prompt_sources_errors_name_the_fix(tmp_path):
    with pytest.raises(PromptSetError, match="choose from builtin:arithmetic"):
        load_prompts("builtin:arithmetc")
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "ok", "answer": "1"}\n{"question": "no prompt"}\n')
    with pytest.raises(PromptSetError, match=r"p.jsonl:2: expected an object with a 'prompt' field"):
        load_prompts(str(bad))
    good = tmp_path / "q.jsonl"
    good.write_text('{"prompt": "2+2?", "answer": "4"}\n')
    assert load_prompts(str(good))[0].columns == {"answer": "4"}


def test_prompt_sources_are_registered_and_the_sim_world_is_one():
    from alignlab.data.prompts import prompt_source, prompt_sources
    from alignlab.sim.worlds import TextWorld, WorldConfig

    assert {"builtin:", "sim:text-world"} <= {s.prefix for s in prompt_sources()}
    world = TextWorld(WorldConfig(seed=2))
    rows = load_prompts("sim:text-world-heldout/2")
    assert [r.prompt for r in rows] == [t.prompt for t in world.tasks("heldout")]
    assert rows[0].columns["answer"] == world.tasks("heldout")[0].answer
    assert len(load_prompts("sim:text-world", limit=3)) == 3

    @prompt_source("test-squares:", "squares of 0..N-1")
    def squares(spec):
        return [{"prompt": f"{i} squared?", "answer": str(i * i)} for i in range(int(spec))]

    assert [r.columns["answer"] for r in load_prompts("test-squares:3")] == ["0", "1", "4"]
    with pytest.raises(PromptSetError, match="split must be train or heldout"):
        load_prompts("sim:text-world-dev")
