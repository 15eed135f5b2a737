"""Online methods in `sim compare`: beside an offline one, on the same world, within the same judge budget."""

import json

from alignlab.recipes.compare import run_compare
from alignlab.recipes.online_league import online_budget
from alignlab.recipes.settings import OnlineLeague


def test_online_budget_spends_at_most_the_judge_calls():
    league = OnlineLeague(prompts_per_rollout=8, n=4, epochs_per_rollout=2)
    assert online_budget(64, league, greedy_baseline=False) == (2, 4)  # 64 calls = 2 rollouts of 8 x 4
    assert online_budget(64, league, greedy_baseline=True) == (1, 2)  # ReMax also judges a greedy answer
    assert online_budget(10, league, greedy_baseline=False) == (1, 2)  # at least one rollout


def test_compare_ranks_online_methods_beside_offline_ones(tmp_path):
    settings = {
        "world": {"num_train": 64, "num_heldout": 12},
        "sft": {"steps": 4, "batch_size": 16},
        "budget": {"steps": 3, "batch_size": 16},
        "online": {"prompts_per_rollout": 8, "n": 4, "max_new_tokens": 6, "epochs_per_rollout": 1},
    }
    run_compare(tmp_path, "dpo,grpo,remax", settings=settings)
    rows = {r["objective"]: r for r in json.loads((tmp_path / "league.json").read_text())}
    for name in ("dpo", "grpo", "remax"):
        assert rows[name]["error"] == "", rows[name]["error"]
        assert rows[name]["kl"] == rows[name]["kl"]  # the same KL measure, finite for every method
    assert rows["dpo"]["judge_calls"] == 64  # one annotated pair per training prompt
    assert rows["grpo"]["judge_calls"] == 64  # 2 rollouts x 8 prompts x 4 samples
    assert rows["remax"]["judge_calls"] == 64  # 4 rollouts x 8 prompts x (1 sample + 1 greedy)
