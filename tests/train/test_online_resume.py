"""A killed online run resumes to the same weights as an uninterrupted one: killed with a live rollout half
served (its checkpoint holds the rollout), and killed inside a refresh (resumed from the rollout boundary,
the refresh redone from the same policy and sampling seed)."""

from pathlib import Path

import pytest

from tests.train._runs import kill_and_resume

SETTINGS = [
    "--set", "objectives=[{name: grpo}]", "--set", "online.prompts=builtin:arithmetic@16",
    "--set", "online.prompts_per_rollout=4", "--set", "online.sampling.n=2",
    "--set", "online.sampling.max_new_tokens=4", "--set", "online.minibatches=2",
    "--set", "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}",
    "--set", "online.log_samples_every=0", "--set", "train.steps=6", "--set", "train.learning_rate=0.01",
    "--set", "train.progress=false",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "save_every, kill_at, last", [(3, 5, "step-3"), (2, 3, "step-2")], ids=["mid-update", "mid-rollout"]
)
def test_killed_online_run_resumes_to_the_same_weights(tmp_path, save_every, kill_at, last):
    # Two steps per rollout: step-3 holds rollout 2 half served; step-2 is a rollout boundary, and the killed
    # step 3 began with the refresh of rollout 2.
    args = [*SETTINGS, "--set", f"train.save_every={save_every}"]

    def last_checkpoint_is_expected(run: Path) -> None:
        assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == last

    assert kill_and_resume(tmp_path, args, kill_at, last_checkpoint_is_expected) < 1e-6
