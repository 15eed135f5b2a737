"""Text embeddings from a frozen encoder: mean-pooled last hidden states (BCO's UDM classifier input)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class TextEncoder:
    """A frozen encoder (a hub id, a local folder, ``builtin:NAME`` or ``tiny:ARCH``), loaded once; :meth:`embed` gives the
    mean of the last hidden states over each text's tokens."""

    def __init__(self, encoder: str, batch_size: int = 32, max_length: int = 512):
        from alignlab.models.loading import ModelSettings, load_causal_lm, load_tokenizer, resolve_builtin
        from alignlab.models.parts import body_and_head

        settings = resolve_builtin(ModelSettings(path=encoder))  # builtin:NAME -> its prepared folder
        self.name, self.batch_size, self.max_length = encoder, batch_size, max_length
        self.tokenizer = load_tokenizer(settings)
        if encoder.startswith("tiny:"):
            self.model, _ = body_and_head(load_causal_lm(settings, for_training=False))
        else:
            from transformers import AutoModel

            self.model = AutoModel.from_pretrained(settings.path)
        self.model.eval()

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> Tensor:
        device = next(self.model.parameters()).device
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            hidden = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])[0]
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, 0)


def embed_texts(texts: Sequence[str], encoder: str) -> Tensor:
    return TextEncoder(encoder).embed(texts)
