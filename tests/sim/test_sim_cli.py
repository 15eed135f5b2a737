"""`alignlab sim` commands through the real CLI entry point."""

import json

from typer.testing import CliRunner

from alignlab.cli.sim import app
from alignlab.data.io import read_records

runner = CliRunner()


def test_generate_every_kind(tmp_path):
    for kind in ("pairs", "rankings", "thumbs", "ratings"):
        out = tmp_path / kind
        result = runner.invoke(
            app,
            [
                "generate",
                "--out",
                str(out),
                "--kind",
                kind,
                "--set",
                "world.num_train=20",
                "--set",
                "world.num_heldout=5",
                "--set",
                "annotators.flip_rate=0.25",
            ],
        )
        assert result.exit_code == 0, result.output
        records = read_records(out / f"{kind}_train.jsonl")
        assert records
        demos = read_records(out / "demonstrations_train.jsonl")
        assert len(demos) == 20 and len(read_records(out / "prompts_heldout.jsonl")) == 5
        meta = json.loads((out / "world.json").read_text())
        assert meta["annotators"]["flip_rate"] == 0.25
        if kind == "thumbs":
            assert all(r.labels is not None for r in records)
        if kind == "ratings":
            assert all(set(r.scores[0]) == {"correct", "polite", "safe", "concise"} for r in records)


def test_generate_bad_kind_and_bad_key(tmp_path):
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--kind", "essays"])
    assert result.exit_code != 0 and "pairs" in result.output
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--set", "world.nope=1"])
    assert result.exit_code != 0 and "nope" in result.output


def test_optima_prints_cyclic_nash():
    result = runner.invoke(app, ["optima", "--world", "cyclic", "--tau", "0.5"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "regularised nash" in result.output and "0.3333" in result.output


def test_reproduce_json_single_claim():
    result = runner.invoke(app, ["reproduce", "--json", "--only", "gpm_cycles"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["name"] == "gpm_cycles" and rows[0]["passed"] is True
