"""The quickstart's gold-reward bars carry their standard errors as drawn error bars."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from alignlab.eval import plots


def test_error_bars_span_plus_minus_one_standard_error(tmp_path, monkeypatch):
    drawn = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (drawn.append(fig), save(fig, *a, **k))[1])
    gold, errors = {"SFT": 1.0, "DPO": 1.4}, {"SFT": 0.05, "DPO": 0.1}
    attributes = {"SFT": {"correct": 0.2}, "DPO": {"correct": 0.3}}
    plots.method_bars(tmp_path / "bars.png", gold, attributes, errors)
    left = drawn[0].axes[0]
    container = next(c for c in left.containers if type(c).__name__ == "ErrorbarContainer")
    segments = container.lines[2][0].get_segments()  # one vertical segment per bar: (x, y − e) → (x, y + e)
    spans = [(seg[0][1], seg[1][1]) for seg in segments]
    assert np.allclose(spans, [(0.95, 1.05), (1.3, 1.5)])
    assert (tmp_path / "bars.png").stat().st_size > 1000
