"""Entropy (KL-divergence) calibration thresholds, vectorised: onnxruntime's search, fast.

onnxruntime's HistogramCollector.get_entropy_threshold tries every symmetric window of the
histogram (num_bins/2 - num_quantized_bins/2 + 1 candidates), one at a time in Python loops:
about 2 s per tensor at 2048 bins. `entropy_threshold` evaluates all candidate windows of one
histogram at once with numpy, from prefix sums (see `kl_divergences`), with onnxruntime's
definitions: the outliers folded into the window's end bins, the merge into
num_quantized_bins levels (the remainder joins the last level), the expansion back with an
integer (truncated) mean over the non-empty bins, eps smoothing, scipy's normalised relative
entropy. Windows whose divergence ties with the minimum (within float rounding) are recomputed
with onnxruntime's own float32 arithmetic, so the window picked is onnxruntime's.
`entropy_ranges` runs tensors in a process pool.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor

from trtmake.heavy import lazy_import
np = lazy_import("numpy")

Histogram = tuple["np.ndarray", "np.ndarray", float, float]  # counts, edges, min, max
Progress = Callable[[int, int], None]

_EPS = 0.0001  # onnxruntime's smooth_distribution default
_TIE_RTOL, _TIE_ATOL = 1e-5, 1e-9  # divergences this close to the minimum are recomputed exactly
_POOL_MIN_TENSORS = 16  # fewer tensors are searched in this process (not worth the workers)
_TAYLOR_TERMS = 6  # e^k / h^(k-1) terms of (h - e) log(h - e); e < 1 <= h, error < e^8 / 56


def entropy_threshold(hist: np.ndarray, edges: np.ndarray, lo: float, hi: float,
                      num_quantized_bins: int) -> tuple[float, float]:
    """The (low, high) range onnxruntime's entropy calibrator picks for this histogram."""
    hist = np.asarray(hist, np.int64)
    edges = np.asarray(edges)
    zero = hist.size // 2
    radii = np.arange(num_quantized_bins // 2, zero + 1)  # onnxruntime's i: a window's half width
    if radii.size == 0:
        raise ValueError(f"{hist.size} histogram bins cannot hold {num_quantized_bins} quantized bins")
    starts = zero - radii
    ends = np.minimum(zero + radii + 1, hist.size)
    kl = kl_divergences(hist, starts, ends, num_quantized_bins)
    # near-ties are decided by onnxruntime's own float32 arithmetic, window by window, so that
    # the first of equal minima (np.argmin) is the one onnxruntime picks
    floor = float(kl.min())
    near = np.flatnonzero(kl <= floor + _TIE_RTOL * abs(floor) + _TIE_ATOL)
    if near.size > 1:
        exact = [window_kl(hist, int(starts[i]), int(ends[i]), num_quantized_bins) for i in near]
        best = int(near[int(np.argmin(exact))])
    else:
        best = int(np.argmin(kl))
    dtype = edges.dtype
    low, high = edges[starts[best]], edges[ends[best]]
    low = np.asarray(lo, dtype) if low < np.asarray(lo, dtype) else low
    high = np.asarray(hi, dtype) if high > np.asarray(hi, dtype) else high
    return float(low), float(high)


def kl_divergences(hist: np.ndarray, starts: np.ndarray, ends: np.ndarray, levels: int) -> np.ndarray:
    """KL(p || q) of each candidate window [start, end) of `hist`, as onnxruntime defines them.

    p is the window with every count outside it folded into its end bins; q merges the window's
    own counts into `levels` bins of m = len // levels source bins (the rest joins the last
    level), then spreads each level back over its m bins as the integer mean over the bins where
    p is non-zero (bins past levels * m stay 0). Both are smoothed (zeros become eps, non-zeros
    give up eps * zeros / non-zeros) and normalised. q is constant per level, so
    KL = A / P - log P - B / P + log Q with A = sum ps log ps, B = sum ps log qs: B needs sums
    per level only (prefix sums), and A's smoothing shift e is tiny (< 1) against every non-zero
    count (>= 1), so sum (h - e) log(h - e) over a window is its Taylor series in e over prefix
    sums of h log h, log h and 1 / h^k. Every term is O(windows x levels), not O(windows x bins).
    """
    eps = _EPS
    h = hist.astype(np.float64)
    nz = hist != 0
    safe = np.where(nz, h, 1.0)

    def prefix(values: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(values)])

    cum_h = np.concatenate([[0], np.cumsum(hist)])  # exact integer counts
    cum_nz = np.concatenate([[0], np.cumsum(nz)])
    # Taylor terms of phi(h - e), phi(x) = x log x: phi(h) - e (1 + log h) + sum_k e^k / (k (k-1) h^(k-1))
    log_h = np.where(nz, np.log(safe), 0.0)
    cum_phi = prefix(np.where(nz, h * log_h, 0.0))
    cum_dphi = prefix(np.where(nz, 1.0 + log_h, 0.0))
    cum_inv = [prefix(np.where(nz, safe ** -(k - 1), 0.0)) for k in range(2, _TAYLOR_TERMS + 2)]

    starts = starts.astype(np.int64)
    ends = ends.astype(np.int64)
    size = ends - starts
    total = cum_h[-1]
    first = hist[starts] + cum_h[starts]  # p's first bin: its count plus every count below
    last = hist[ends - 1] + (total - cum_h[ends])  # p's last bin: plus every count above
    single = size == 1
    first = np.where(single, first + (total - cum_h[ends]), first)
    inner_lo, inner_hi = starts + 1, np.maximum(ends - 1, starts + 1)  # bins between the two ends

    # p: non-zeros, its smoothing shift e_p, its normaliser P and A = sum ps log ps
    nnz_p = (cum_nz[inner_hi] - cum_nz[inner_lo]) + (first != 0) + ((last != 0) & ~single)
    zeros_p = size - nnz_p
    ok_p = nnz_p > 0
    e_p = eps * zeros_p / np.where(ok_p, nnz_p, 1)
    a = cum_phi[inner_hi] - cum_phi[inner_lo] - e_p * (cum_dphi[inner_hi] - cum_dphi[inner_lo])
    for k, cum in enumerate(cum_inv, start=2):
        a += e_p ** k / (k * (k - 1)) * (cum[inner_hi] - cum[inner_lo])
    a += _phi(first - e_p, first != 0) + np.where(single, 0.0, _phi(last - e_p, last != 0))
    a += zeros_p * eps * np.log(eps)
    big_p = total - e_p * nnz_p + eps * zeros_p

    # q, per level: the window's own counts summed (m source bins each; the rest joins the last
    # level), divided by the level's non-zero bins of p (integer mean; 0 where there are none)
    m = size // levels
    rows = np.arange(len(starts))
    bounds = starts[:, None] + np.arange(levels + 1)[None, :] * m[:, None]
    sums = np.diff(cum_h[bounds], axis=1)
    covered = levels * m
    remainder = cum_h[ends] - cum_h[starts + covered]
    sums[:, -1] += remainder
    # non-zeros of p per level: of the histogram, corrected at the window's two end bins
    norms = np.diff(cum_nz[bounds], axis=1)
    norms[:, 0] += (first != 0).astype(np.int64) - nz[starts]
    last_level = np.minimum((size - 1) // np.maximum(m, 1), levels - 1)
    end_in_levels = (size - 1) < covered
    fix_last = ((last != 0).astype(np.int64) - nz[ends - 1]) * (end_in_levels & ~single)
    norms[rows, last_level] += fix_last
    means = np.where(norms != 0, sums // np.maximum(norms, 1), 0)
    tail = size - covered  # bins past the last level: 0 in q
    zeros_q = m * np.count_nonzero(means == 0, axis=1) + tail
    nnz_q = size - zeros_q
    ok_q = nnz_q > 0
    e_q = eps * zeros_q / np.where(ok_q, nnz_q, 1)
    c = np.where(means != 0, means - e_q[:, None], eps)  # qs, constant over each level
    big_q = m * c.sum(axis=1) + tail * eps

    # B = sum ps log qs: per level, the level's mass of ps times log of its qs
    p_sums = sums.astype(np.float64)
    p_sums[:, -1] -= remainder  # the remainder bins are not in the level
    p_sums[:, 0] += cum_h[starts] + np.where(single, total - cum_h[ends], 0)  # outliers below
    above = np.where(single, 0, total - cum_h[ends])
    p_sums[rows, last_level] += above * end_in_levels
    p_sums += (eps * m)[:, None] - (e_p + eps)[:, None] * norms  # ps: -e_p at non-zeros, eps at zeros
    end_in_tail = ~end_in_levels & ~single
    tail_nnz = cum_nz[ends] - cum_nz[starts + covered] + end_in_tail * ((last != 0).astype(np.int64) - nz[ends - 1])
    tail_mass = (cum_h[ends] - cum_h[starts + covered]) + np.where(~end_in_levels, above, 0)
    s_tail = tail_mass - e_p * tail_nnz + eps * (tail - tail_nnz)
    b = np.einsum("ij,ij->i", p_sums, np.log(c)) + s_tail * np.log(eps)

    with np.errstate(divide="ignore", invalid="ignore"):
        kl = a / big_p - np.log(big_p) - b / big_p + np.log(big_q)
    kl[~(ok_p & ok_q)] = np.inf
    return kl


def window_kl(hist: np.ndarray, start: int, end: int, levels: int) -> float:
    """One window's divergence computed exactly as onnxruntime does (integer merges, its
    smooth_distribution, scipy's entropy, stored as float32): the tie-breaker."""
    from scipy.stats import entropy

    sliced = hist[start:end].copy()
    p = sliced.copy()
    p[0] += hist[:start].sum()
    p[-1] += hist[end:].sum()
    nonzero = (p != 0).astype(np.int64)
    m = sliced.size // levels
    covered = levels * m
    sums = sliced[:covered].reshape(levels, m).sum(axis=1) if m else np.zeros(levels, np.int64)
    sums[-1] += sliced[covered:].sum()
    q = np.zeros(p.size, np.int64)
    if m:
        norms = nonzero[:covered].reshape(levels, m).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.where(norms != 0, sums / np.where(norms != 0, norms, 1), 0)
        q[:covered] = np.repeat(means, m).astype(np.int64)
    ps, qs = _smooth_distribution(p), _smooth_distribution(q)
    if ps is None or qs is None:
        return float("inf")
    return float(np.float32(entropy(ps, qs)))


def _smooth_distribution(p: np.ndarray) -> np.ndarray | None:
    """onnxruntime.quantization.calibrate.smooth_distribution, its float32 arithmetic as is."""
    is_zeros = (p == 0).astype(np.float32)
    is_nonzeros = (p != 0).astype(np.float32)
    n_zeros = is_zeros.sum()
    n_nonzeros = p.size - n_zeros
    if not n_nonzeros:
        return None
    eps1 = _EPS * float(n_zeros) / float(n_nonzeros)
    hist = p.astype(np.float32)
    hist += _EPS * is_zeros + (-eps1) * is_nonzeros
    return hist


def _phi(x: np.ndarray, where: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(where, x * np.log(np.where(where, x, 1.0)), 0.0)


def _one(item: tuple[str, Histogram, int]) -> tuple[str, tuple[float, float]]:
    name, (hist, edges, lo, hi), levels = item
    return name, entropy_threshold(hist, edges, lo, hi, levels)


def _context() -> multiprocessing.context.BaseContext:
    """Workers are forked where the platform can (they start in milliseconds, and the search
    imports nothing and touches no lock the caller's threads may hold), spawned elsewhere."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def default_workers() -> int:
    """Processes for the search: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def entropy_ranges(histograms: Mapping[str, Histogram], num_quantized_bins: int, *,
                   workers: int | None = None, on_progress: Progress | None = None) -> dict[str, tuple[float, float]]:
    """Each tensor's entropy range; tensors are searched in `workers` processes (default: the
    cores), and `on_progress(done, total)` is called as each tensor finishes."""
    names = sorted(histograms)
    total = len(names)
    workers = default_workers() if workers is None else workers
    items = [(name, histograms[name], num_quantized_bins) for name in names]
    out: dict[str, tuple[float, float]] = {}
    import scipy.stats  # noqa: F401  (the tie-breaker's: imported once here, workers inherit it)

    if workers <= 1 or total < _POOL_MIN_TENSORS:
        results = map(_one, items)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=min(workers, total), mp_context=_context())
        results = pool.map(_one, items, chunksize=1)
    try:
        for done, (name, rng) in enumerate(results, 1):
            out[name] = rng
            if on_progress is not None:
                on_progress(done, total)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return {name: out[name] for name in names}
