"""Human feedback collection: a small web service where a team's annotators label completions.

Layers, each in its own module:

- ``models`` (tables) and ``db`` (engines, SQLite WAL settings, alembic migrations in ``migrations/``),
  ``paths`` (the default database in the user data folder);
- ``security`` (token and password hashing), ``store/`` (projects and tasks, access, assignments,
  submissions: one module each),
  ``labels`` (checking a submitted label and mapping displayed positions back to completions);
- ``agreement`` (kappas, Krippendorff's alpha), ``stats`` (progress, per-annotator numbers, position bias),
  ``export`` (alignlab records and TRL rows, with aggregation);
- ``service`` + ``routes_*`` + ``dependencies`` (the FastAPI app, its routes and their token checks),
  ``static/`` (the pages; ``admin_stats.js`` draws the statistics), ``routes_judge`` (the judge queue that
  ``alignlab.judges.human.HumanJudge`` fills: people as a judge of pairs, for evaluation and labelling).

Its commands (``alignlab app serve|export|...``) are in ``alignlab/cli/app.py``.

See docs/app.md for how a team uses it.
"""
