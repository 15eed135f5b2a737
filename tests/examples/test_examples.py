"""Every example config validates, names data a user can get (a Hub file, data alignlab generates or
ships: never a path outside the repository) and says what it demonstrates; the DPO example trains on the
real HH-RLHF sample (the examples name the Hub file it was taken from)."""

from pathlib import Path

import pytest

from alignlab.config import load_config
from alignlab.objectives import get
from alignlab.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
HH = REPO.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"


def test_there_is_an_example_per_core_method():
    names = {p.stem for p in EXAMPLES}
    assert {"sft", "dpo", "ipo", "kto", "simpo", "orpo", "cpo", "lipo_lambda", "rrhf", "pro"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates(path):
    config = load_config(path)
    for entry in config.objectives:
        get(entry["name"] if isinstance(entry, dict) else entry)


@pytest.mark.skipif(not HH.exists(), reason="../shared/data is not beside this checkout")
@pytest.mark.parametrize("name", ["dpo", "kto", "lipo_lambda"])
def test_example_trains_on_the_hh_sample(name, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(
        REPO / "examples" / f"{name}.yaml",
        [f"out={tmp_path / name}", f"data.train={HH}", "train.steps=3", "data.limit=40", "train.progress=false",
         "train.eval_every=0", f"reference.cache_dir={tmp_path / 'cache'}"],
    )  # fmt: skip
    result = train(config)
    assert result.steps == 3 and result.eval_after is not None
    assert (tmp_path / name / "model" / "config.json").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_names_data_a_user_can_get_and_says_what_it_shows(path):
    text = path.read_text(encoding="utf-8")
    assert "../" not in text and "shared/data" not in text  # a user has no ../shared
    config = load_config(path)
    source = config.data.train if config.online is None else config.online.prompts
    assert source.startswith(("hf://datasets/", "builtin:", "sim:")) or (REPO / source).exists(), source
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header and "alignlab train examples/" in text
    if config.model.path.startswith("tiny:"):
        # tiny-model examples say they only exercise the mechanics, or that they learn and which test measures it
        assert "SMOKE RUN" in text or ("LEARNS" in text and "tests/" in text)
