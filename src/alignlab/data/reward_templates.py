"""The texts reward and preference models read, shared by the objective that trains a model on them and
the judge that scores with it, so both lay a (prompt, completion) out the same way.

``render_context`` writes a prompt (text or chat messages) as plain text; ``PAIR_PM_TEMPLATE`` is the
comparison prompt of pairwise preference models; the context templates hold a second response that a
completion attends to but that is not scored (seq2seq RM, POLAR, PIT).
"""

from __future__ import annotations

from alignlab.data.records import Prompt

# The comparison prompt of pairwise preference models (objective and judge `pair_pm`).
PAIR_PM_TEMPLATE = (
    "[CONTEXT] {prompt}\n[RESPONSE A] {a}\n[RESPONSE B] {b}\nWhich response is better? Answer A or B:"
)
# Context prefixes (placed between the prompt and the scored completion) and the papers they come from.
SEQ2SEQ_TEMPLATE = "\n[RESPONSE TO IMPROVE] {rejected}\n[IMPROVED RESPONSE]"
POLAR_TEMPLATE = "\n[REFERENCE] {reference}\n[CANDIDATE]"
PIT_TEMPLATE = "\n[REFERENCE RESPONSE] {reference}\n[IMPROVED RESPONSE]"
SEQ2SEQ_PAPER = "Zhou et al. 2024 'Sequence to Sequence Reward Modeling: Improving RLHF by Language Feedback' (arXiv 2409.00162)"
POLAR_PAPER = (
    "Dou et al. 2025 POLAR 'Pre-Trained Policy Discriminators are General Reward Models' (arXiv 2507.05197)"
)
PIT_PAPER = "Wang et al. 2023 PIT 'Enable Language Models to Implicitly Learn Self-Improvement From Data' (arXiv 2310.00898)"


def render_context(prompt: Prompt) -> str:
    """A prompt as plain text: chat messages become 'role: content' lines."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)
