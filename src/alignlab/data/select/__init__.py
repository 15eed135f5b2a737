"""Data selection (METHODS.md family L): choose the records that matter under a budget.

Each selector takes the candidate records and the numbers it needs (scores, embeddings, a target set) and
returns a :class:`~alignlab.data.select.base.Selection`: the kept records in input order, each
candidate's selection score, and what was left out by reason. Embeddings come from
:func:`~alignlab.data.select.base.hashed_embeddings` (character n-grams, no model) or any encoder
(``alignlab.models.embedding.TextEncoder``) through the CLI's ``--encoder``.
"""
