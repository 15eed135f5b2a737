"""``alignlab rm eval`` and ``alignlab judges`` run as subprocesses, checked against hand computations.

The expected rewards come from plain forward passes of the saved model's backbone (one unpadded row per
completion) and the head weights in numpy; accuracy, per-subset accuracy and ECE are then computed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from alignlab.data.io import write_records
from alignlab.data.records import pair
from alignlab.models.reward import RewardModel
from alignlab.models.tiny import tiny_tokenizer

TOK = tiny_tokenizer()


PAIRS = [  # (subset, prompt, chosen, rejected)
    ("math", "add two and three", "five", "six"),
    ("math", "count to three", "one two three", "one two"),
    ("math", "what is one plus one", "two", "three four"),
    ("chat", "say hello", "hello", "goodbye to you"),
    ("chat", "be polite", "please and thank you", "no"),
]
HH = [  # (human turn, chosen reply, rejected reply)
    ("hi there", "hello friend", "go away"),
    ("tell a short story", "once there was a cat", "no"),
]
JUDGES = {
    "reward_model",
    "rm_ensemble",
    "rm_preference_strength",
    "implicit_reward",
    "flr",
    "salmon_principle_rm",
    "rule",
    "gpm",
    "pair_pm",
    "armorm",
    "dpa_directional_rm",
    "ctrl_reward_calibration",
    "seq2seq_rm",
    "polar",
    "pit_gap_reward",
    "maxmin_mixture_rm",
    "fine_grained_rm",
    "bleu_reward",
    "bleuberi",
    "rm_ensemble_conservative",
    "verifiable_answer",
    "r3_relevance_reward",
    "selfref_feedback_strength",
    "reward_function",
    "rlaif",
    "token_reward_function",
    "simulated",
    "human",
}


def _reward(model: RewardModel, prompt_ids: list[int], completion: str) -> float:
    ids = prompt_ids + TOK(completion, add_special_tokens=False)["input_ids"] + [TOK.eos_token_id]
    with torch.no_grad():
        h = model.backbone(input_ids=torch.tensor([ids])).last_hidden_state[0, -1].double().numpy()
    w, b = model.reward_head.weight.detach().double().numpy(), model.reward_head.bias.detach().double()
    return float(h @ w[0] + b[0])


def _numpy_ece(p: np.ndarray, n_bins: int = 10) -> float:
    preds, outcomes = np.concatenate([p, 1 - p]), np.concatenate([np.ones_like(p), np.zeros_like(p)])
    index = np.minimum(np.floor(preds * n_bins).astype(int), n_bins - 1)
    return sum(
        (index == b).sum() / len(preds) * abs(outcomes[index == b].mean() - preds[index == b].mean())
        for b in range(n_bins)
        if (index == b).any()
    )


def _cli(*args: str, cwd) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two run at once on a small shared machine
    return subprocess.Popen(
        [sys.executable, "-m", "alignlab", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _done(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("rm-cli")
    model = RewardModel.from_base("tiny:llama", seed=4)
    with torch.no_grad():  # a head that spreads the rewards so that pairs are ranked both ways
        model.reward_head.weight.mul_(20.0)
    model.save_pretrained(root / "rm" / "model")
    TOK.save_pretrained(root / "rm" / "model")
    records = [pair(p, w, lose, meta={"subset": s}) for s, p, w, lose in PAIRS]
    write_records(records, root / "pairs.jsonl")
    hh = [
        {"chosen": f"\n\nHuman: {h}\n\nAssistant: {w}", "rejected": f"\n\nHuman: {h}\n\nAssistant: {lose}"}
        for h, w, lose in HH
    ]
    (root / "hh.jsonl").write_text("".join(json.dumps(row) + "\n" for row in hh))
    (root / "sections.json").write_text("{chat: [math]}")  # not JSON: keys need quotes
    (root / "broken.jsonl").write_text((root / "pairs.jsonl").read_text() + "{not json\n")
    # Both subprocesses start together: each spends most of its time importing torch.
    procs = {
        "eval": _cli(
            "rm",
            "eval",
            "--model",
            str(root / "rm"),
            "--data",
            str(root / "pairs.jsonl"),
            "--json",
            "--plot",
            str(root / "plot.png"),
            cwd=root,
        ),  # fmt: skip
        "judges": _cli("judges", "--json", cwd=root),
    }
    return root, model, {name: _done(p) for name, p in procs.items()}


def test_rm_eval_json_equals_hand_computation(setup):
    root, model, runs = setup
    rc, out, err = runs["eval"]
    assert rc == 0, err
    result = json.loads(out)  # exactly one JSON object on stdout
    cw = np.array([_reward(model, TOK(p)["input_ids"], w) for _, p, w, _ in PAIRS])
    cl = np.array([_reward(model, TOK(p)["input_ids"], lose) for _, p, _, lose in PAIRS])
    correct = (cw > cl).astype(float)
    assert 0 < correct.sum() < len(PAIRS)  # the model is right on some pairs and wrong on others
    subsets = np.array([s for s, *_ in PAIRS])
    assert result["n"] == len(PAIRS)
    assert result["accuracy"] == pytest.approx(correct.mean())
    assert result["subset_accuracy"] == pytest.approx(
        {s: correct[subsets == s].mean() for s in ("math", "chat")}
    )
    assert result["subsets"]["math"]["n"] == 3 and result["subsets"]["chat"]["n"] == 2
    assert result["ece"] == pytest.approx(_numpy_ece(1 / (1 + np.exp(-(cw - cl)))), abs=1e-5)
    assert result["reward_distribution"]["chosen"]["mean"] == pytest.approx(cw.mean(), abs=1e-4)
    assert result["reward_distribution"]["rejected"]["max"] == pytest.approx(cl.max(), abs=1e-4)
    assert (root / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rm_eval_reads_hh_transcripts(setup, capsys):
    from alignlab.cli import main  # in process, through the entry point `python -m alignlab` calls

    root, model, _ = setup
    main(["rm", "eval", "--model", str(root / "rm"), "--data", str(root / "hh.jsonl")]
         + ["--format", "hh-rlhf", "--json"])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == len(HH)
    correct, margins = [], []
    for human, w, lose in HH:
        # The shared transcript becomes a one-turn chat prompt, rendered with the tokenizer's template.
        text = TOK.apply_chat_template(
            [{"role": "user", "content": human}], add_generation_prompt=True, tokenize=False
        )
        ids = TOK(text, add_special_tokens=False)["input_ids"]
        d = _reward(model, ids, w) - _reward(model, ids, lose)
        correct.append(float(d > 0))
        margins.append(d)
    assert result["accuracy"] == pytest.approx(np.mean(correct))
    assert result["reward_distribution"]["margin"]["mean"] == pytest.approx(np.mean(margins), abs=1e-4)
    assert set(result["subset_accuracy"]) == {"hh-rlhf"}


@pytest.mark.parametrize(
    "model, data, message",
    [
        ("rm", "no-such-file.jsonl", "no-such-file.jsonl: no such file or folder"),
        ("rm", "broken.jsonl", "broken.jsonl:6: invalid JSON"),
        ("nothing", "pairs.jsonl", "holds no reward model"),
        ("rm", "pairs.jsonl --sections sections.json", "--sections sections.json is not JSON"),
    ],
)
def test_bad_input_gives_a_clear_message_and_exit_1(setup, capsys, monkeypatch, model, data, message):
    # In process, through the same entry point `python -m alignlab` calls (saves a torch import each).
    from alignlab.cli import main

    root = setup[0]
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit) as exit_info:
        main(["rm", "eval", "--model", str(root / model), "--data", *data.split(), "--json"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 1
    assert "Traceback" not in err and "Traceback" not in out
    assert message in " ".join(err.split())  # rich may wrap the line
    assert out.strip() == ""


def test_judges_json_lists_the_registry(setup):
    rc, out, err = setup[2]["judges"]
    assert rc == 0, err
    listed = json.loads(out)
    assert {j["name"] for j in listed} == JUDGES
    kinds = {j["name"]: j["kind"] for j in listed}
    assert kinds["gpm"] == kinds["pair_pm"] == "preferences" and kinds["reward_model"] == "scores"
    assert all(j["paper"] and j["summary"] and j["class"].startswith("alignlab.judges.") for j in listed)


def test_eval_judge_takes_any_judge_spec(setup, capsys):
    from alignlab.cli import main

    root = setup[0]
    spec = "{name: rule, function: alignlab.judges.rules:shorter_is_better}"
    main(["eval", "judge", "--judge", spec, "--data", str(root / "pairs.jsonl"), "--json"])
    result = json.loads(capsys.readouterr().out)
    lengths = [(len(w), len(lose)) for _, _, w, lose in PAIRS]
    correct = [1.0 if a < b else 0.5 if a == b else 0.0 for a, b in lengths]
    assert result["judge"] == spec and result["n"] == len(PAIRS)
    assert result["accuracy"] == pytest.approx(np.mean(correct))
    by_length = result["metrics"]["accuracy_by_length"]["estimates"]
    assert by_length["shorter_rule"]["value"] == pytest.approx(np.mean(correct))
    assert by_length["balanced"]["value"] == pytest.approx(0.5)  # a length-only judge, length-controlled


@pytest.mark.parametrize("args, word", [(["--model", "rm", "--judge", "rule"], "both"), ([], "neither")])
def test_eval_judge_needs_exactly_one_judge(setup, capsys, monkeypatch, args, word):
    from alignlab.cli import main

    root = setup[0]
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "judge", *args, "--data", "pairs.jsonl"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert f"--model RUN (a trained reward model) or --judge SPEC (any judge), not {word}" in err
