"""``alignlab eval policies`` and ``alignlab eval run`` as a user runs them: outputs files with a missing prompt and
an empty output (named, counted, exit 1; skipped and noted with --on-invalid skip), a run directory without
checkpoints (one clear message), and a run whose checkpoints drift away from the initial model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alignlab.cli import main
from alignlab.models.tiny import tiny_model


def _outputs(path, rows):
    path.write_text("".join(json.dumps({"prompt": p, "output": o}) + "\n" for p, o in rows))
    return path


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prompts = [f"q{i}" for i in range(24)]
    rng = np.random.default_rng(0)
    model = [(p, "yes " * int(rng.integers(1, 20))) for p in prompts]
    base = [(p, "no " * int(rng.integers(1, 20))) for p in prompts[:22]] + [("q22", "  ")]  # q23 missing
    _outputs(tmp_path / "a.jsonl", model)
    _outputs(tmp_path / "b.jsonl", base)
    (tmp_path / "rules.py").write_text("def longer(prompt, completion):\n    return len(completion) / 10\n")
    return tmp_path, model, base


def test_policies_reports_mismatches_and_empty_outputs(files, capsys):
    root, model, base = files
    args = ["eval", "policies", "--model", "a.jsonl", "--baseline", "b.jsonl",
            "--judge", "{name: rule, function: rules.py:longer}", "--metric", "winrate"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert "1 of 24 model prompts invalid (prompt missing from the baseline outputs: record 23)" in err
    main([*args, "--on-invalid", "skip", "--json", "--out", "verdicts.jsonl"])
    out = json.loads(capsys.readouterr().out)
    notes = " ".join(out["notes"])
    assert "left out 1 of 24 model prompts" in notes and "empty baseline output: record 22" in notes
    # By hand: the judge scores len/10, P(model ≻ baseline) = σ((len_m − len_b)/10) on the 22 matched prompts.
    p = [1 / (1 + np.exp(-(len(m) - len(b)) / 10)) for (_, m), (_, b) in zip(model[:22], base[:22])]
    est = out["metrics"]["winrate"]["estimates"]["win_rate"]
    assert est["value"] == pytest.approx(100 * np.mean(p)) and est["n"] == 22
    assert est["se"] == pytest.approx(100 * np.std(p, ddof=1) / np.sqrt(22))
    assert len((root / "verdicts.jsonl").read_text().splitlines()) == 22


def test_run_without_checkpoints_is_one_clear_message(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "run", str(tmp_path / "run"), "--prompts", "builtin:arithmetic", "--gold", "x"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert "has no checkpoints (expected" in err and "step-N/" in err


def test_run_curves_over_checkpoints(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, tok = tiny_model("llama", seed=0)
    model.save_pretrained(tmp_path / "init")
    tok.save_pretrained(tmp_path / "init")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(f"model:\n  path: {tmp_path / 'init'}\n")
    gen = torch.Generator().manual_seed(1)
    for step, scale in ((10, 0.05), (20, 0.15), (30, 0.3)):
        m, _ = tiny_model("llama", seed=0)
        with torch.no_grad():
            for param in m.parameters():
                param.add_(scale * torch.randn(param.shape, generator=gen))
        m.save_pretrained(run / "checkpoints" / f"step-{step}")
        tok.save_pretrained(run / "checkpoints" / f"step-{step}")
    (tmp_path / "rules.py").write_text("def length(prompt, completion):\n    return len(completion) / 10\n")
    (tmp_path / "prompts.jsonl").write_text(
        "".join(json.dumps({"prompt": f"say {w}"}) + "\n" for w in "abcd")
    )
    main(["eval", "run", str(run), "--prompts", "prompts.jsonl", "--gold", "{name: rule, function: rules.py:length}",
          "--samples", "3", "--max-new-tokens", "8", "--json", "--report", "run.html"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    rows = out["checkpoints"]
    assert [r["step"] for r in rows] == [0, 10, 20, 30]
    assert rows[0]["kl"] == 0.0 and all(r["kl_se"] >= 0 for r in rows)
    assert rows[3]["kl"] > rows[1]["kl"]  # further from the initial weights, further in KL
    fit = out["metrics"]["overopt_curves"]["estimates"]
    assert set(fit) == {"alpha", "beta", "peak_sqrt_kl"} and all("ci95" in v for v in fit.values())
    assert "<img" in (tmp_path / "run.html").read_text()


def test_model_diagnostics_and_arena_from_the_cli(tmp_path, capsys, monkeypatch):
    from alignlab.data.io import write_records
    from alignlab.data.records import pair
    from alignlab.eval.token_metrics import response_states
    from alignlab.generation.hf import encode_sampler_prompts

    monkeypatch.chdir(tmp_path)
    for name, seed in (("base", 0), ("aligned", 1)):
        m, tok = tiny_model("llama", seed=seed)
        m.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"say {w}"}) + "\n" for w in "abc"))
    write_records(
        [pair("hello there", "fine thanks", "go away"), pair("2 + 2", "four", "five")],
        tmp_path / "pairs.jsonl",
    )
    main(["eval", "model", "--model", "aligned", "--base", "base", "--prompts", "prompts.jsonl", "--data", "pairs.jsonl",
          "--metric", "topk_overopt_indicators,token_distribution_shift,ches,likelihood_displacement",
          "--max-new-tokens", "6", "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)["metrics"]
    fractions = [
        out["token_distribution_shift"]["estimates"][k]["value"] for k in ("unshifted", "marginal", "shifted")
    ]
    assert sum(fractions) == pytest.approx(1.0)
    assert 0 < out["topk_overopt_indicators"]["estimates"]["topk_mass"]["value"] <= 1
    # CHES of pair 0 recomputed here from the model's states (sum over response positions).
    aligned, tok = tiny_model("llama", seed=1)
    p_ids = encode_sampler_prompts(tok, ["hello there"])[0]
    hc = (
        response_states(aligned, p_ids, tok("fine thanks", add_special_tokens=False)["input_ids"])[0]
        .numpy()
        .sum(0)
    )
    hr = (
        response_states(aligned, p_ids, tok("go away", add_special_tokens=False)["input_ids"])[0]
        .numpy()
        .sum(0)
    )
    assert out["ches"]["details"]["scores"][0] == pytest.approx(hc @ hr - hc @ hc, rel=1e-5)
    assert "displaced_fraction" in out["likelihood_displacement"]["estimates"]
    # Arena: three systems whose outputs have 1, 5 and 9 words; the judge prefers the longer.
    for name, words in (("short", 1), ("mid", 5), ("long", 9)):
        _outputs(tmp_path / f"{name}.jsonl", [(f"q{i}", "w " * words) for i in range(20)])
    (tmp_path / "rules.py").write_text("def longer(prompt, completion):\n    return float(len(completion))\n")
    main(["eval", "arena", "--outputs", "short=short.jsonl", "--outputs", "mid=mid.jsonl", "--outputs",
          "long=long.jsonl", "--judge", "{name: rule, function: rules.py:longer}", "--rounds", "20", "--json"])  # fmt: skip
    arena = json.loads(capsys.readouterr().out)["metrics"]["varco_arena"]
    assert arena["details"]["ranking"] == ["long", "mid", "short"]
    assert arena["details"]["matches_per_prompt"] == [2] * 20
    # Against a reference ranking in the opposite order, Spearman's ρ is −1 (ranks 3,2,1 vs 1,2,3).
    (tmp_path / "ref.json").write_text(json.dumps({"short": 3.0, "mid": 2.0, "long": 1.0}))
    main(["eval", "arena", "--outputs", "short=short.jsonl", "--outputs", "mid=mid.jsonl", "--outputs",
          "long=long.jsonl", "--judge", "{name: rule, function: rules.py:longer}", "--rounds", "20", "--json",
          "--reference", "ref.json"])  # fmt: skip
    rho = json.loads(capsys.readouterr().out)["metrics"]["varco_arena"]["estimates"]["spearman"]
    assert rho["value"] == pytest.approx(-1.0)


def test_policies_generates_with_the_sampler_and_judges(tmp_path, capsys, monkeypatch):
    from alignlab.generation import SamplingParams, build_sampler

    monkeypatch.chdir(tmp_path)
    models = {}
    for name, seed in (("a", 0), ("b", 1)):
        m, tok = tiny_model("llama", seed=seed)
        m.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
        models[name] = m
    prompts = [f"tell me {w}" for w in ("one", "two", "three", "four", "five")]
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    (tmp_path / "rules.py").write_text("def chars(prompt, completion):\n    return len(completion) / 20\n")
    main(["eval", "policies", "--model", "a", "--baseline", "b", "--prompts", "prompts.jsonl", "--metric", "winrate",
          "--judge", "{name: rule, function: rules.py:chars}", "--max-new-tokens", "6", "--out", "v.jsonl",
          "--on-invalid", "skip", "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    # The same samples drawn here through alignlab.generation (model seed 0, baseline seed 1).
    drawn = {}
    for name, seed in (("a", 0), ("b", 1)):
        params = SamplingParams(n=1, max_new_tokens=6, temperature=1.0, seed=seed)
        drawn[name] = [r.text for r in build_sampler("hf", models[name], tok).sample(prompts, params)]
    kept = [i for i in range(5) if drawn["a"][i].strip() and drawn["b"][i].strip()]
    assert [r["output"] for r in rows] == [drawn["a"][i] for i in kept]
    assert [r["baseline_output"] for r in rows] == [drawn["b"][i] for i in kept]
    p = [1 / (1 + np.exp(-(len(drawn["a"][i]) - len(drawn["b"][i])) / 20)) for i in kept]
    assert [r["verdict"] for r in rows] == pytest.approx(p)
    assert out["metrics"]["winrate"]["estimates"]["win_rate"]["value"] == pytest.approx(100 * np.mean(p))


def test_policies_with_a_missing_prompts_file_is_one_line_and_exit_1(tmp_path):
    """The installed console script, as a user runs it: a handled error, not a traceback."""
    import os
    import shutil
    import subprocess
    import sys

    exe = shutil.which("alignlab", path=os.path.dirname(sys.executable)) or "alignlab"
    missing = tmp_path / "nope.jsonl"
    proc = subprocess.run(
        [exe, "eval", "policies", "--model", "tiny:llama", "--baseline", "tiny:llama"]
        + ["--prompts", str(missing), "--judge", "length"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"--prompts: {missing}: no such prompt file" in proc.stderr


def test_policies_asks_a_judge_without_scores_in_both_orders(files, capsys):
    from alignlab.judges.rlaif import RLAIFJudge
    from alignlab.models.tiny import tiny_tokenizer

    root, model, base = files
    main(["eval", "policies", "--model", "a.jsonl", "--baseline", "b.jsonl", "--judge", "{name: rlaif, path: tiny:llama}",
          "--metric", "winrate", "--on-invalid", "skip", "--json", "--out", "verdicts.jsonl"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    rows = [json.loads(line) for line in (root / "verdicts.jsonl").read_text().splitlines()]
    # By hand: the same LM asked with the model's answer as A, then as B; p = ½ (P_AB + 1 − P_BA).
    lm, _ = tiny_model("llama", seed=0)
    judge = RLAIFJudge(lm.eval(), tiny_tokenizer())
    prompts, a, b = [m[0] for m in model[:22]], [m[1] for m in model[:22]], [x[1] for x in base[:22]]
    p_ab = judge.prefer_many(prompts, a, b).double().numpy()
    p_ba = judge.prefer_many(prompts, b, a).double().numpy()
    want = 0.5 * (p_ab + 1 - p_ba)
    assert [r["verdict"] for r in rows] == pytest.approx(want.tolist())
    assert out["metrics"]["winrate"]["estimates"]["win_rate"]["value"] == pytest.approx(100 * want.mean())
    bias = np.mean(0.5 * (p_ab + p_ba)) - 0.5
    assert f"position bias {bias:+.3f}" in " ".join(out["notes"])
