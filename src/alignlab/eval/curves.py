"""Over-optimisation curves: best-of-n from a pool of samples, its KL, and Gao et al.'s fitted forms.

Best-of-n (Nakano et al. 2021; Stiennon et al. 2020; Gao et al. 2022, arXiv 2210.10760): draw n
samples, keep the one the proxy reward ranks first. From M ≥ n samples of one prompt, sorted by proxy
reward ascending (r_(1) ≤ … ≤ r_(M)), the expected value of any quantity g of the kept sample is the
unbiased order-statistics estimate

    E[g(BoN_n)] = Σ_{i=1}^{M} g_(i) · C(i − 1, n − 1) / C(M, n)

(the i-th smallest is the maximum of a random n-subset with that probability). KL of the BoN policy
to the sampler: KL_bon(n) = log n − (n − 1)/n. Gao et al.'s forms with d = √KL: R_bon(d) = d(α − βd),
R_RL(d) = d(α − β log d), fitted by least squares on gold reward relative to the initial policy.

checked: formulas from Gao et al. 2022 (Eq. 1–2, the BoN KL of Stiennon et al.) as given in METHODS.md
"best_of_n" and "overopt_curves" (unverified in code there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from alignlab.eval.overopt import fit_form


def kl_best_of_n(n: int) -> float:
    """KL(π_bon ‖ π) = log n − (n − 1)/n."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return math.log(n) - (n - 1) / n


def best_of_n_weights(m: int, n: int) -> np.ndarray:
    """P(the i-th smallest of m is the max of a random n-subset), i = 1..m: C(i−1, n−1)/C(m, n)."""
    if not 1 <= n <= m:
        raise ValueError(f"best-of-n needs 1 <= n <= m samples, got n={n}, m={m}")
    total = math.comb(m, n)
    return np.array([math.comb(i - 1, n - 1) / total for i in range(1, m + 1)])


def best_of_n_expectation(proxy: Sequence[float], value: Sequence[float], n: int) -> float:
    """E[value of the sample with the highest proxy among n] from one prompt's m samples (ties: stable)."""
    proxy_arr, value_arr = np.asarray(proxy, dtype=float), np.asarray(value, dtype=float)
    order = np.argsort(proxy_arr, kind="stable")
    return float(best_of_n_weights(len(order), n) @ value_arr[order])


def best_of_n_curve(proxy: np.ndarray, gold: np.ndarray, ns: Sequence[int]) -> dict[str, list[float]]:
    """Mean over prompts of the BoN gold and proxy reward for each n; ``proxy``/``gold`` are [prompts, m]."""
    proxy, gold = np.asarray(proxy, dtype=float), np.asarray(gold, dtype=float)
    if proxy.shape != gold.shape or proxy.ndim != 2:
        raise ValueError(
            f"proxy and gold must both be [prompts, samples]; got {proxy.shape} and {gold.shape}"
        )
    out: dict[str, list[float]] = {"n": [], "kl": [], "gold": [], "proxy": []}
    for n in ns:
        out["n"].append(int(n))
        out["kl"].append(kl_best_of_n(int(n)))
        out["gold"].append(float(np.mean([best_of_n_expectation(p, g, n) for p, g in zip(proxy, gold)])))
        out["proxy"].append(float(np.mean([best_of_n_expectation(p, p, n) for p in proxy])))
    return out


def best_of_n_standard_error(proxy: np.ndarray, gold: np.ndarray, n: int) -> float:
    """Standard error of ``best_of_n_curve``'s gold value at ``n``: sd/√P (ddof 1) of the P prompts'
    estimates, the prompts being independent draws (each estimate's own sampling noise is inside the sd)."""
    per_prompt = [best_of_n_expectation(p, g, n) for p, g in zip(np.asarray(proxy), np.asarray(gold))]
    return float(np.std(per_prompt, ddof=1) / math.sqrt(len(per_prompt))) if len(per_prompt) > 1 else math.nan


def fit_bon(d: Sequence[float], gain: Sequence[float]) -> tuple[float, float]:
    """Least-squares (α, β) of gain = d(α − βd); the registered ``overopt_curves`` fit (with SEs) underneath."""
    fit = fit_form(np.asarray(d, dtype=float), np.asarray(gain, dtype=float), "bon")
    return fit["alpha"], fit["beta"]


def fit_rl(d: Sequence[float], gain: Sequence[float]) -> tuple[float, float]:
    """Least-squares (α, β) of gain = d(α − β log d) (points with d = 0 are dropped); see ``fit_bon``."""
    fit = fit_form(np.asarray(d, dtype=float), np.asarray(gain, dtype=float), "rl")
    return fit["alpha"], fit["beta"]


def bon_peak(alpha: float, beta: float) -> float:
    """d* = α/(2β), where R_bon peaks (inf when β ≤ 0: no peak)."""
    return alpha / (2 * beta) if beta > 0 else float("inf")
