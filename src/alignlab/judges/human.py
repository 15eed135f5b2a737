"""``HumanJudge``: people as a judge of pairs, through the feedback app's judge queue.

It gives preferences only, P(a ≻ b), so it serves ``alignlab eval policies`` and ``alignlab data label
--mode pairs``; online training needs a score per completion and refuses it (train/online_setup.py).

    judge = HumanJudge("http://127.0.0.1:8000", token)   # a judge token: `alignlab app judge-token`
    judge.prefer_many(prompts, a, b)                    # the Judge protocol: queue, wait, P(a ≻ b) [N]
    ids = [judge.enqueue(prompt, a, b) for prompt, a, b in pairs]
    answers = judge.wait(ids, timeout=3600)             # {id: P(a > b)} once every vote is in

P(a > b) is the mean over the project's ``per_task`` annotators of 1 (a preferred), 0 (b preferred) or 1/2
(a tie, or both bad). ``poll`` returns None for pairs that still wait for votes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from alignlab.data.records import Prompt
from alignlab.judges.base import Judge, check_lengths
from alignlab.judges.registry import JudgeConfigError, register_judge

if TYPE_CHECKING:
    import httpx


class HumanJudgeError(RuntimeError):
    """The feedback app refused a request or the votes did not come in time; the message says which."""


@register_judge(
    "human",
    paper="people through the feedback app's judge queue (docs/app.md); the human loop of Ouyang et al. 2022",
    kind="preferences",
)
class HumanJudge(Judge):
    """People comparing two completions: ``prefer_many`` queues the pairs and waits for their votes.

    Config: ``{name: human, url: http://127.0.0.1:8000}``; the judge token is read from the environment
    variable ``token_env`` (default ``ALIGNLAB_JUDGE_TOKEN``) so that it never sits in a config file.
    ``wait_timeout`` seconds after queueing, pairs still without votes are an error (``on_timeout: error``)
    or NaN (``on_timeout: nan``, for a trainer that drops them).
    """

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        url: str
        token_env: str = "ALIGNLAB_JUDGE_TOKEN"
        request_timeout: float = Field(30.0, gt=0)
        wait_timeout: float = Field(3600.0, gt=0)
        poll_every: float = Field(2.0, gt=0)
        on_timeout: Literal["error", "nan"] = "error"

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
        wait_timeout: float = 3600.0,
        poll_every: float = 2.0,
        on_timeout: str = "error",
    ):
        if on_timeout not in ("error", "nan"):
            raise ValueError(f"on_timeout must be 'error' or 'nan', got '{on_timeout}'")
        if client is None:
            try:
                import httpx  # the app extra: the judge registry must load without it
            except ImportError:
                raise HumanJudgeError(
                    "the human judge talks to the feedback app over HTTP: pip install 'alignlab[app]'"
                ) from None
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, trust_env=False)
        self._headers = {"Authorization": f"Bearer {token}"}
        self.wait_timeout, self.poll_every, self.on_timeout = wait_timeout, poll_every, on_timeout

    @classmethod
    def from_settings(cls, settings: Settings, where: str, context: dict[str, Any]) -> HumanJudge:
        token = os.environ.get(settings.token_env)
        if not token:
            raise JudgeConfigError(
                f"{where}.token_env: the environment variable {settings.token_env} holds no judge token; "
                "create one with `alignlab app judge-token PROJECT` and export it"
            )
        return cls(
            settings.url,
            token,
            timeout=settings.request_timeout,
            wait_timeout=settings.wait_timeout,
            poll_every=settings.poll_every,
            on_timeout=settings.on_timeout,
        )

    def prefer_many(self, prompts: Sequence[Prompt], a: Sequence[str], b: Sequence[str]) -> Tensor:
        """P(a_i ≻ b_i) from the annotators' votes, [N]; blocks until every pair is answered (or time out)."""
        check_lengths(prompts, a, b)
        if not len(prompts):
            return torch.zeros(0, dtype=torch.float64)
        ids = self.enqueue_many(list(zip(prompts, a, b)))
        answers = self.wait(ids, timeout=self.wait_timeout, every=self.poll_every)
        missing = [i for i in ids if answers.get(i) is None]
        if missing and self.on_timeout == "error":
            raise HumanJudgeError(
                f"{len(missing)} of {len(ids)} pairs got no votes within {self.wait_timeout:g} s "
                "(raise wait_timeout, or set on_timeout: nan to drop them)"
            )
        return torch.tensor(
            [math.nan if answers.get(i) is None else float(answers[i]) for i in ids], dtype=torch.float64
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, path, headers=self._headers, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            raise HumanJudgeError(f"{method} {path} -> {response.status_code}: {detail}")
        return response.json()

    def enqueue(self, prompt: Prompt, a: str, b: str, id: str | None = None) -> int:
        """Queue one pair for the annotators; returns its id (shown to annotators in random order)."""
        return self.enqueue_many([(prompt, a, b)], ids=[id] if id else None)[0]

    def enqueue_many(
        self, pairs: Sequence[tuple[Prompt, str, str]], ids: Sequence[str] | None = None
    ) -> list[int]:
        body = [
            {"prompt": p, "a": a, "b": b, **({"id": ids[i]} if ids else {})}
            for i, (p, a, b) in enumerate(pairs)
        ]
        return self._call("POST", "/api/judge/pairs", json={"pairs": body})["ids"]

    def poll(self, ids: Sequence[int]) -> dict[int, float | None]:
        """P(a > b) per id, or None while the pair still waits for votes."""
        if not ids:
            return {}
        answers = self._call("GET", "/api/judge/answers", params={"ids": ",".join(str(i) for i in ids)})[
            "answers"
        ]
        return {int(k): v for k, v in answers.items()}

    def wait(
        self, ids: Sequence[int], timeout: float = 3600.0, every: float = 2.0
    ) -> dict[int, float | None]:
        """Poll until every id has an answer or ``timeout`` seconds pass (then unanswered ones stay None)."""
        deadline = time.monotonic() + timeout
        while True:
            answers = self.poll(ids)
            if all(v is not None for v in answers.values()) or time.monotonic() >= deadline:
                return answers
            time.sleep(every)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HumanJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
