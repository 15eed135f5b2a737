"""`alignlab train --resume CHECKPOINT` continues from a given checkpoint (bare `--resume` still means the
latest in --out), checked on the installed console script: exit codes, the weights of an uninterrupted run,
and a one-line error for a path that holds no checkpoint."""

import subprocess
import sys
from pathlib import Path

import pytest

from alignlab.cli.root import _resume_value
from tests.train._runs import REPO, max_weight_difference

ALIGNLAB = str(Path(sys.executable).with_name("alignlab"))
SETTINGS = [
    "--set", "train.steps=6", "--set", "train.batch_size=4", "--set", "train.learning_rate=1e-3",
    "--set", "train.save_every=2", "--set", "train.keep_checkpoints=3", "--set", "train.progress=false",
    "--set", "data.limit=40", "--set", "objectives.0.name=sft",
]  # fmt: skip


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ALIGNLAB, "train", *args], capture_output=True, text=True, cwd=REPO, timeout=600)


def _said(text: str, stderr: str) -> bool:
    """Whether stderr says ``text`` (rich wraps long lines, even inside a path: compare without spaces)."""
    return "".join(text.split()) in "".join(stderr.split())


@pytest.mark.slow
def test_resume_from_a_named_checkpoint_reaches_the_uninterrupted_weights(tmp_path):
    straight = _train(*SETTINGS, "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    step2 = tmp_path / "straight" / "checkpoints" / "step-2"
    assert step2.is_dir()

    resumed = _train(*SETTINGS, "--out", str(tmp_path / "from2"), "--resume", str(step2))
    assert resumed.returncode == 0, resumed.stderr
    assert _said(f"resumed from {step2} (step 2)", resumed.stderr)
    assert max_weight_difference(tmp_path / "straight" / "model", tmp_path / "from2" / "model") < 1e-6

    missing = _train(*SETTINGS, "--out", str(tmp_path / "x"), f"--resume={tmp_path / 'nowhere'}")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert _said(f"--resume {tmp_path / 'nowhere'}: no such folder", missing.stderr)
    empty = _train(*SETTINGS, "--out", str(tmp_path / "y"), "--resume", str(tmp_path / "straight" / "model"))
    assert empty.returncode == 1 and _said("neither a checkpoint", empty.stderr)


def test_which_argument_resume_takes(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("name: x\n")
    folder = tmp_path / "checkpoints" / "step-4"
    folder.mkdir(parents=True)
    assert _resume_value("--resume", str(folder)) == (str(folder), True)  # a folder: the checkpoint
    assert _resume_value("--resume", str(config)) == (None, False)  # a config file stays the config
    assert _resume_value("--resume", str(tmp_path / "new.yaml")) == (None, False)  # (a missing one too)
    assert _resume_value("--resume", "--out") == (None, False)
    assert _resume_value("--resume", None) == (None, False)
    assert _resume_value("--resume", "runs/gone/checkpoints/step-2") == ("runs/gone/checkpoints/step-2", True)
    assert _resume_value(f"--resume={config}", "--out") == (str(config), False)  # = always names one
