"""TRL's trainers and loss types in alignlab's terms: the objective each stands for, and how
``loss_type``/``beta``/... become alignlab objectives with their parameters.

tests/cli/test_trl_map.py reads TRL 1.16's config classes and trainer sources and fails when a trainer or a
loss type here is unknown to TRL, or one of TRL's is missing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alignlab.cli.trl_arguments import TrlArgumentError


@dataclass(frozen=True)
class Trainer:
    """A TRL trainer: its config class (``module:Class``), the alignlab objective its default loss is,
    and a note (what differs, or why there is no equivalent)."""

    config: str
    objective: str | None
    note: str = ""
    loss_types: Mapping[str, str | None] = field(default_factory=dict)  # TRL loss_type -> alignlab
    params: Mapping[str, str] = field(default_factory=dict)  # TRL config field -> objective parameter


_ONLINE = "online training (an `online:` section: prompts, sampler, judge; docs/online.md)"
NO_EQUIVALENT = "no alignlab equivalent yet"

TRAINERS: dict[str, Trainer] = {
    "sft": Trainer(
        "trl:SFTConfig",
        "sft",
        "completion-only loss by default, as TRL's `completion_only_loss`",
        {"nll": "sft", "chunked_nll": "sft", "dft": None},
    ),
    "dpo": Trainer(
        "trl:DPOConfig",
        "dpo",
        "several loss types (TRL's `loss_type` list with `loss_weights`) become several weighted objectives",
        {
            "sigmoid": "dpo",
            "hinge": "hinge",
            "ipo": "ipo",
            "exo_pair": "exo",
            "nca_pair": "nca",
            "robust": "rdpo",
            "bco_pair": "bco_pair",
            "sppo_hard": "sppo_hard",
            "aot": "aot",
            "aot_unpaired": "aot_unpaired",
            "apo_zero": "apo_zero",
            "apo_down": "apo_down",
            "discopop": "discopop",
            "sft": "sft",
            "sigmoid_norm": "dpo_norm",
        },
        {"beta": "beta", "discopop_tau": "tau"},
    ),
    "kto": Trainer(
        "trl:KTOConfig",
        "kto",
        "",
        {"kto": "kto", "apo_zero_unpaired": "apo_zero_unpaired"},
        {"beta": "beta", "desirable_weight": "desirable_weight", "undesirable_weight": "undesirable_weight"},
    ),
    "kto-experimental": Trainer(
        "trl.experimental.kto:KTOConfig",
        "kto",
        "TRL's KTOConfig under its old import path (the same loss types)",
        {"kto": "kto", "apo_zero_unpaired": "apo_zero_unpaired"},
        {"beta": "beta", "desirable_weight": "desirable_weight", "undesirable_weight": "undesirable_weight"},
    ),
    "reward": Trainer(
        "trl:RewardConfig",
        "bt",
        "`center_rewards_coefficient` is bt's `center_coef`; a `margin` column is read by bt_margin",
        params={"center_rewards_coefficient": "center_coef"},
    ),
    "orpo": Trainer(
        "trl.experimental.orpo:ORPOConfig",
        "orpo",
        "TRL's `beta` is the odds-ratio weight λ",
        params={"beta": "beta"},
    ),
    "cpo": Trainer(
        "trl.experimental.cpo:CPOConfig",
        "cpo",
        "SimPO through CPO (`loss_type: simpo`) is alignlab's simpo, `cpo_alpha` its `sft_weight`, "
        "`simpo_gamma / beta` its `gamma_beta_ratio`",
        {"sigmoid": "cpo", "simpo": "simpo", "hinge": None, "ipo": None, "alphapo": None, "kto_pair": None},
        {"beta": "beta", "cpo_alpha": "cpo_alpha", "label_smoothing": "label_smoothing"},
    ),
    "grpo": Trainer(
        "trl:GRPOConfig",
        "grpo",
        _ONLINE + "; alignlab's grpo normalises by the tokens of the whole global batch (DAPO's form)",
        {
            "grpo": "grpo",
            "dapo": "grpo",
            "bnpo": "grpo",
            "dr_grpo": "dr_grpo",
            "cispo": None,
            "sapo": None,
            "luspo": None,
            "vespo": None,
        },
    ),
    "rloo": Trainer("trl:RLOOConfig", "rloo", _ONLINE),
    "online_dpo": Trainer(
        "trl.experimental.online_dpo:OnlineDPOConfig",
        None,
        NO_EQUIVALENT + " (offline DPO on pairs you sample and label: `alignlab train`)",
        {"sigmoid": None, "ipo": None},
    ),
    "tpo": Trainer(
        "trl.experimental.tpo:TPOConfig",
        "tpo_triple",
        "",
        {"sigmoid": "tpo_triple", "hinge": None, "ipo": None, "tpo-l": None},
    ),
    "distillation": Trainer("trl:DistillationConfig", None, NO_EQUIVALENT + " (knowledge distillation)"),
    "distillation-experimental": Trainer(
        "trl.experimental.distillation:DistillationConfig", None, NO_EQUIVALENT + " (knowledge distillation)"
    ),
    "gkd": Trainer(
        "trl.experimental.gkd:GKDConfig",
        None,
        NO_EQUIVALENT + " (generalised knowledge distillation)",
        {"nll": None, "chunked_nll": None, "dft": None},
    ),
    "gold": Trainer(
        "trl.experimental.gold:GOLDConfig",
        None,
        NO_EQUIVALENT + " (cross-tokenizer distillation)",
        {"nll": None, "chunked_nll": None, "dft": None},
    ),
    "a2po": Trainer("trl.experimental.a2po:A2POConfig", None, NO_EQUIVALENT),
    "gmpo": Trainer(
        "trl.experimental.gmpo:GMPOConfig",
        None,
        NO_EQUIVALENT + " (geometric-mean policy optimisation)",
        dict.fromkeys(("grpo", "dapo", "bnpo", "dr_grpo", "cispo", "sapo", "luspo", "vespo")),
    ),
    "sdft": Trainer("trl.experimental.sdft:SDFTConfig", None, NO_EQUIVALENT),
    "sdpo": Trainer(
        "trl.experimental.sdpo:SDPOConfig",
        None,
        NO_EQUIVALENT,
        {"grpo": None, "dapo": None, "bnpo": None, "dr_grpo": None},
    ),
    "iw_opd": Trainer("trl.experimental.iw_opd:IWOPDConfig", None, NO_EQUIVALENT),
    "async_grpo": Trainer("trl.experimental.async_grpo:AsyncGRPOConfig", "grpo", _ONLINE + " (synchronous)"),
    "async_distillation": Trainer(
        "trl.experimental.async_distillation:AsyncDistillationConfig", None, NO_EQUIVALENT
    ),
    "server_distillation": Trainer(
        "trl.experimental.server_distillation:ServerDistillationConfig", None, NO_EQUIVALENT
    ),
}

# Objective parameters that TRL's loss types read from a shared field (DPO's label_smoothing is cDPO's
# ε for sigmoid, EXO's ε, robust DPO's ε).
CPO_BETA = 0.1  # CPOConfig's default beta (trl/experimental/cpo/cpo_config.py, TRL 1.16)

LABEL_SMOOTHING_AS: dict[str, str] = {
    "dpo": "cdpo",
    "exo": "exo",
    "rdpo": "rdpo",
    "cpo": "cpo",
    "simpo": "simpo",
}


def objectives_for(trainer: str, args: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The alignlab objectives a TRL ``trainer`` with ``loss_type``/``beta``/... stands for."""
    spec = TRAINERS[trainer]
    if spec.objective is None:
        raise TrlArgumentError(f"TRL's {trainer} trainer: {spec.note}")
    raw_types = args.get("loss_type")
    if raw_types is None or raw_types == "":
        types = [next(iter(spec.loss_types), None)] if spec.loss_types else [None]
    elif isinstance(raw_types, list):
        types = [str(t) for t in raw_types]
    else:
        types = [t.strip().strip("[]'\" ") for t in str(raw_types).split(",") if t.strip().strip("[]'\" ")]
    weights = args.get("loss_weights")
    if isinstance(weights, str):
        weights = [float(w.strip().strip("[]")) for w in weights.split(",") if w.strip().strip("[]")]
    objectives = []
    for i, loss_type in enumerate(types):
        if loss_type is None:
            name = spec.objective
        elif loss_type not in spec.loss_types:
            known = ", ".join(spec.loss_types)
            raise TrlArgumentError(f"TRL {trainer} loss_type {loss_type!r} is not one of TRL's: {known}")
        else:
            name = spec.loss_types[loss_type]
            if name is None:
                raise TrlArgumentError(f"TRL {trainer} loss_type {loss_type!r}: {NO_EQUIVALENT}")
        entry: dict[str, Any] = {"name": name}
        accepted = objective_params(name)
        for trl_name, param in spec.params.items():
            if trl_name in args and _param_for(name, param) in accepted:
                entry[_param_for(name, param)] = float(args[trl_name])
        smoothing = float(args.get("label_smoothing", 0) or 0)
        if smoothing and name in LABEL_SMOOTHING_AS:
            entry["name"] = LABEL_SMOOTHING_AS[name]
            entry["epsilon" if entry["name"] in ("cdpo", "exo", "rdpo") else "label_smoothing"] = smoothing
        if trainer == "cpo" and name == "simpo":  # TRL's CPO takes SimPO's γ absolute, β·(Δ − γ/β)
            entry["beta"] = float(args.get("beta", CPO_BETA))
            if "simpo_gamma" in args:
                entry["gamma_beta_ratio"] = float(args["simpo_gamma"]) / entry["beta"]
            if "cpo_alpha" in args:  # TRL adds cpo_alpha·NLL(chosen) to every CPO loss type
                entry["sft_weight"] = float(args["cpo_alpha"])
        if weights:
            entry["weight"] = float(weights[i])
        objectives.append(entry)
    return objectives


def objective_params(name: str) -> set[str]:
    """The parameters alignlab's objective ``name`` takes (from the registry)."""
    from alignlab.objectives import get

    return set(get(name).describe()["params"])


def _param_for(objective: str, param: str) -> str:
    return "tau" if objective == "ipo" and param == "beta" else param  # TRL's IPO beta is τ
