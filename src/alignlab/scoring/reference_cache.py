"""Reference log-probs computed once per (data, model, tokenisation) and kept on disk.

The key hashes three fingerprints: the tokenised data (every token id of every group, which covers the
data and the tokenizer's effect on it), the reference model (config, parameter names, shapes, dtypes
and a sample of every tensor's values), and the tokenisation settings. Any change gives a new key, so
a stale cache is never read. Files are safetensors, written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from alignlab.data.tokenize import TokenizedGroup
from alignlab.models.parts import unwrap
from alignlab.scoring.scores import Scores


def data_fingerprint(groups: list[TokenizedGroup]) -> str:
    h = hashlib.sha256()
    for g in groups:
        h.update(json.dumps([g.prompt_ids, g.completion_ids, g.context_ids]).encode())
    return h.hexdigest()[:16]


def model_fingerprint(model: Any, adapters_off: bool = False) -> str:
    base = unwrap(model)
    h = hashlib.sha256(base.config.to_json_string(use_diff=False).encode())
    for name, param in base.named_parameters():
        if adapters_off and "lora_" in name:
            continue
        flat = param.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 4096)][:4096].float().cpu()
        h.update(f"{name}:{tuple(param.shape)}:{param.dtype}".encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class ReferenceLogps:
    """Reference log-probs of every completion of a dataset, looked up by group."""

    logps: Tensor  # [N_all] in dataset order, group by group
    group_offsets: Tensor  # [G_all + 1]
    token_logps: Tensor | None = None  # [total tokens]
    token_offsets: Tensor | None = None  # [N_all + 1]

    def for_groups(self, group_ids: Iterable[int]) -> Scores:
        index = torch.cat([torch.arange(self.group_offsets[g], self.group_offsets[g + 1]) for g in group_ids])
        logps = self.logps[index]
        scores = Scores(logps=logps, lengths=torch.ones_like(logps))
        if self.token_logps is not None and self.token_offsets is not None:
            pieces = [
                self.token_logps[self.token_offsets[i] : self.token_offsets[i + 1]] for i in index.tolist()
            ]
            width = max((len(p) for p in pieces), default=0)
            padded = torch.zeros(len(pieces), width, dtype=self.logps.dtype)
            for row, piece in enumerate(pieces):
                padded[row, : len(piece)] = piece
            scores.token_logps = padded
            scores.lengths = torch.tensor([len(p) for p in pieces], dtype=self.logps.dtype)
        return scores

    def save(self, path: Path, about: dict[str, str] | None = None) -> None:
        """Write atomically; ``about`` (what made it: model, data, run) goes into the file's metadata, for
        ``alignlab cache list``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"logps": self.logps.contiguous(), "group_offsets": self.group_offsets.contiguous()}
        if self.token_logps is not None:
            tensors["token_logps"] = self.token_logps.contiguous()
            tensors["token_offsets"] = self.token_offsets.contiguous()
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in (about or {}).items()})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ReferenceLogps:
        t = load_file(str(path))
        os.utime(path)  # the modification time is the last use, which `alignlab cache prune` goes by
        return cls(t["logps"], t["group_offsets"], t.get("token_logps"), t.get("token_offsets"))


# Bumped when tables written before were wrong: v2, tables computed with ``train.micro_batch_tokens`` set held
# each group's log-probs in the token-budget chunks' longest-first order, not the data's (fixed 2026-12-05).
CACHE_VERSION = "v2"


def cache_key(data_fp: str, model_fp: str, tokenization_fp: str, with_tokens: bool) -> str:
    raw = f"{CACHE_VERSION}|{data_fp}|{model_fp}|{tokenization_fp}|tokens={with_tokens}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def assemble(per_group: list[Scores], with_tokens: bool) -> ReferenceLogps:
    """Concatenate per-group reference Scores (in dataset order) into one lookup table."""
    logps = torch.cat([s.logps.float().cpu() for s in per_group]) if per_group else torch.zeros(0)
    sizes = torch.tensor([0] + [len(s.logps) for s in per_group])
    out = ReferenceLogps(logps=logps, group_offsets=sizes.cumsum(0))
    if with_tokens:
        pieces = []
        for s in per_group:
            for row, length in zip(s.token_logps.float().cpu(), s.lengths.long().tolist()):
                pieces.append(row[:length])
        out.token_logps = torch.cat(pieces) if pieces else torch.zeros(0)
        out.token_offsets = torch.tensor([0] + [len(p) for p in pieces]).cumsum(0)
    return out
