"""Micro benchmarks of the tuple-space classifier (ext/classifier.c) and the
exact-match cache (ext/emc.c).

Each benchmark round is one C loop in ext/classifier.pxi (GIL released); the
per-operation figure that loop measures goes into benchmark.extra_info (min
and median over the rounds) and is printed.  Loop times are the calling
thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other jobs on this 2-core
machine inflate them less than wall time; pytest-benchmark's own columns are
wall time of the whole round, setup included.

Targets (brief): miss with 100k rules over 16 masks <= 1 us; 100k inserts
< 2 s; <= 512 B per rule; EMC hit (with the key hash) <= 50 ns.

    PYTHONPATH=/tmp/vdp-cls/lib:$PWD python -m pytest bench/test_micro_classifier.py \\
        -q --benchmark-only -s
"""
import statistics

import pytest

from ext import _fastpath as fp

N_MASKS = 16


def _rounds(benchmark, fn, rounds):
    out = []
    benchmark.pedantic(lambda: out.append(fn()), rounds=rounds, iterations=1, warmup_rounds=0)
    return out


def _record(benchmark, name, unit, values):
    lo, med = min(values), statistics.median(values)
    benchmark.extra_info[name + "_min"] = round(lo, 3)
    benchmark.extra_info[name + "_median"] = round(med, 3)
    print(f"\n{benchmark.name}: {name} min {lo:.3f} {unit}, median {med:.3f} {unit}")
    return lo


@pytest.mark.parametrize("n_rules", [1_000, 10_000, 100_000])
def test_cls_miss(benchmark, n_rules):
    ns = _rounds(benchmark, lambda: fp.bench_cls_miss(n_rules, N_MASKS, 200_000, 1), 5)
    _record(benchmark, "ns_per_miss", "ns", ns)
    benchmark.extra_info["n_rules"] = n_rules
    benchmark.extra_info["n_masks"] = N_MASKS


@pytest.mark.parametrize("n_rules", [1_000, 100_000])
def test_cls_hit(benchmark, n_rules):
    ns = _rounds(benchmark, lambda: fp.bench_cls_hit(n_rules, N_MASKS, 200_000, 1), 5)
    _record(benchmark, "ns_per_hit", "ns", ns)
    benchmark.extra_info["n_rules"] = n_rules


def test_cls_insert_rate_and_memory(benchmark):
    n = 100_000
    res = _rounds(benchmark, lambda: fp.bench_cls_insert(n, N_MASKS, 1), 3)
    secs = [r[0] for r in res]
    per_rule = [r[1] for r in res]
    _record(benchmark, "insert_s", "s", secs)
    benchmark.extra_info["inserts_per_s"] = round(n / min(secs))
    _record(benchmark, "bytes_per_rule", "B", per_rule)
    rule = fp.cls_rule_size()
    benchmark.extra_info["sizeof_vdp_cls_rule"] = rule
    # bytes_per_rule counts the test's own rule allocation (the rule + an
    # 8-byte id, malloc'd one by one); the rest is the classifier's share.
    share = min(per_rule) - (rule + 8)
    benchmark.extra_info["classifier_share_bytes_per_rule"] = round(share, 1)
    print(f"{benchmark.name}: {n / min(secs):,.0f} inserts/s, rule {rule} B, "
          f"classifier share ~{share:.0f} B/rule (incl. malloc overhead)")


@pytest.mark.parametrize("n_masks", [1, 16, 256])
def test_cls_memory_by_mask_count(benchmark, n_masks):
    """Memory per rule as the number of distinct masks grows (10k rules)."""
    res = _rounds(benchmark, lambda: fp.bench_cls_insert(10_000, n_masks, 2), 3)
    _record(benchmark, "bytes_per_rule", "B", [r[1] for r in res])
    benchmark.extra_info["n_masks"] = n_masks


def test_emc_hit(benchmark):
    ns = _rounds(benchmark, lambda: fp.bench_emc_hit(2_000_000), 5)
    _record(benchmark, "ns_per_hit", "ns", ns)
