"""Fixed log-spaced latency buckets: 20 per decade from 0.1 s to 10^6 s (each 12 % wide).

Bucket k holds latencies in (10^((k-1)/20), 10^(k/20)] seconds. Fixed edges make histograms
summable across minutes and plants, and a percentile read from a sum lands within one bucket
of the exact value.
"""

import math

STEPS_PER_DECADE = 20


LOWEST = -20  # 0.1 s and below


HIGHEST = 120  # 10^6 s and above


def bucket(seconds):
    if seconds <= 10 ** (LOWEST / STEPS_PER_DECADE):
        return LOWEST
    k = math.ceil(STEPS_PER_DECADE * math.log10(seconds) - 1e-9)
    return min(max(k, LOWEST), HIGHEST)


def upper_edge(k):
    return 10 ** (int(k) / STEPS_PER_DECADE)


def add(histogram, seconds, count=1):
    key = str(bucket(seconds))
    histogram[key] = histogram.get(key, 0) + count


def merge(histograms):
    total = {}
    for histogram in histograms:
        add_all(total, histogram)
    return total


def add_all(total, histogram):
    """Add the counts of `histogram` into `total` (in place)."""
    for key, count in histogram.items():
        total[key] = total.get(key, 0) + count


def percentile(histogram, q):
    """The q-quantile (0 < q ≤ 1) in seconds, as the upper edge of its bucket; None if empty."""
    count = sum(histogram.values())
    if not count:
        return None
    rank = max(1, math.ceil(q * count))
    seen = 0
    for key in sorted(histogram, key=int):
        seen += histogram[key]
        if seen >= rank:
            return upper_edge(key)
    return upper_edge(max(histogram, key=int))


def percentiles(histogram):
    return {f"p{int(q * 100)}": percentile(histogram, q) for q in (0.5, 0.9, 0.95, 0.99)}
