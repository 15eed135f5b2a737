"""Objectives: pure loss functions over Scores, registered by name.

Importing this package registers the whole catalog: every module in this folder that is not part of
the machinery (``registry.MACHINERY``) is imported, and each registers its objectives with
:func:`alignlab.objectives.registry.objective`.
"""

from __future__ import annotations

from alignlab.objectives.compose import BoundObjective, Objective
from alignlab.objectives.functional import labeled_loss, listwise_loss, pairwise_loss
from alignlab.objectives.registry import (
    ObjectiveError,
    ObjectiveSpec,
    all_specs,
    get,
    load_catalog,
    objective,
)

load_catalog()

__all__ = [
    "BoundObjective",
    "Objective",
    "ObjectiveError",
    "ObjectiveSpec",
    "all_specs",
    "get",
    "labeled_loss",
    "listwise_loss",
    "objective",
    "pairwise_loss",
]
