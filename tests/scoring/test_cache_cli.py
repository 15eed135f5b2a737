"""`alignlab cache list|prune` on a real cache: what a run wrote, last use, pruning by age and by size."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from alignlab.config import load_config
from alignlab.scoring.cache_store import parse_size
from alignlab.scoring.reference_cache import ReferenceLogps
from alignlab.train.trainer import train
from tests.train._runs import run_cli


def cache_cli(*args):
    result = run_cli(["cache", *map(str, args)])
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_shows_what_a_run_cached_and_reuse_marks_it_used(tmp_path):
    cache = tmp_path / "cache"
    dpo = [f"out={tmp_path / 'run'}", "train.progress=false", "data.train=builtin:pairs", "data.limit=16",
           "objectives.0.name=dpo", "train.steps=1", f"reference.cache_dir={cache}", "name=cached-dpo"]  # fmt: skip
    train(load_config(None, dpo))
    listed = json.loads(cache_cli("list", "--dir", cache, "--json"))
    (entry,) = listed["entries"]
    path = cache / f"{entry['key']}.safetensors"
    assert entry["bytes"] == path.stat().st_size
    assert entry["run"] == "cached-dpo" and entry["data"] == "builtin:pairs" and entry["records"] == "16"
    assert entry["model"] == "tiny:llama"
    long_ago = time.time() - 30 * 86400
    os.utime(path, (long_ago, long_ago))
    train(load_config(None, [*dpo[1:], f"out={tmp_path / 'again'}"]))  # same data and model: a cache hit
    assert path.stat().st_mtime > long_ago + 29 * 86400


def table(directory, name, floats, days_ago):
    path = directory / f"{name}.safetensors"
    ReferenceLogps(torch.zeros(floats), torch.tensor([0, floats])).save(path, {"run": name})
    when = time.time() - days_ago * 86400
    os.utime(path, (when, when))
    return path


def test_prune_by_age_then_by_size_least_recently_used_first(tmp_path):
    paths = {name: table(tmp_path, name, n, days) for name, n, days in
             [("old", 1000, 40), ("mid", 1000, 10), ("new", 1000, 1), ("newest", 1000, 0)]}  # fmt: skip
    assert "would remove 1 table(s)" in cache_cli("prune", "--dir", tmp_path, "--older-than", 30, "--dry-run")
    assert all(p.exists() for p in paths.values())
    cache_cli("prune", "--dir", tmp_path, "--older-than", 30)
    assert not paths["old"].exists() and paths["mid"].exists()
    # Room for two of the three left: the least recently used ("mid") goes.
    room = paths["new"].stat().st_size + paths["newest"].stat().st_size
    cache_cli("prune", "--dir", tmp_path, "--max-size", f"{room}B")
    assert [p.exists() for p in (paths["mid"], paths["new"], paths["newest"])] == [False, True, True]
    cache_cli("prune", "--dir", tmp_path, "--all")
    assert not list(tmp_path.glob("*.safetensors"))


def test_prune_removes_writes_of_dead_processes_only(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    abandoned = tmp_path / f"x.safetensors.tmp-{dead.stdout.strip()}"
    in_progress = tmp_path / f"y.safetensors.tmp-{os.getpid()}"
    abandoned.write_bytes(b"partial")
    in_progress.write_bytes(b"partial")
    out = cache_cli("prune", "--dir", tmp_path, "--older-than", 1)
    assert "1 abandoned temporary file" in out
    assert not abandoned.exists() and in_progress.exists()


def test_prune_without_a_rule_is_an_error_that_says_what_to_pass(tmp_path):
    result = run_cli(["cache", "prune", "--dir", str(tmp_path)])
    assert result.returncode != 0 and "--older-than" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "text, expected",
    [("500", 500), ("500B", 500), ("2kb", 2000), ("1.5 MB", 1_500_000), ("2GiB", 2 * 1024**3), ("1e3", 1000)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_parse_size_rejects_garbage():
    with pytest.raises(ValueError, match="500MB"):
        parse_size("lots")
