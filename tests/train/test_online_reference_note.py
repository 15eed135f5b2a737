"""What an online run says about its reference policy: loaded for the rollouts when the KL term needs it
(with the coefficient that asked for it), and never the offline note that no reference was loaded."""

from __future__ import annotations

import pytest

from tests.train._online import setup_trainer

JUDGE = "online.judge={name: reward_function, function: 'tests.train._online:first_id_parity'}"


@pytest.mark.parametrize("coef", [0.0, 0.04])
def test_online_setup_names_the_reference_it_loads(tmp_path, capfd, coef):
    overrides = [
        JUDGE,
        f"online.kl={{coef: {coef}}}",
        "online.sampling.n=2",
        "online.sampling.max_new_tokens=2",
    ]
    setup_trainer(tmp_path, overrides)  # builds the context and starts the rollout source
    err = capfd.readouterr().err
    assert "no objective uses a reference policy" not in err
    if coef > 0:
        assert "reference policy loaded for the rollouts (KL coefficient 0.04)" in err
    else:
        assert "no reference policy: the rollouts carry no KL term" in err
