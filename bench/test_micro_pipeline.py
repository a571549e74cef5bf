"""Micro benchmarks of the OpenFlow pipeline (ext/pipeline.c) through the
facade, no engine, no syscalls: DummyPorts only.

- cache hit: one flow, a DummyPort replaying one frame; a C loop of rx
  burst -> parse -> exact-match cache -> program -> tx (sink) -> flush
  (ext._fastpath.bench_dummy).  ns/packet.
- miss: every frame a new key (addresses and ports randomised in C), so
  each one runs the classifier over 1k/10k/100k rules in 16 masks plus a
  table-miss flow, composes its program and caches it
  (ext._fastpath.bench_miss).  ns/packet.
- flow_add rate: 100k Datapath.flow_add calls (CPU seconds, flows/s).
- memory per installed rule: glibc heap delta (mallinfo2) / n for 100k
  flows, and the facade's Python-side bytes per flow (tracemalloc).

Times are the calling thread's CPU time (this 2-core machine is shared), so
they are a floor for wall time.  Figures go in benchmark.extra_info.

    PYTHONPATH=/tmp/vdp-pipe/lib:$PWD python -m pytest bench/test_micro_pipeline.py \\
        -q --benchmark-only -s
"""
import random
import statistics
import time
import tracemalloc

import pytest

from datapath.fastpath import Datapath, DummyPort
from datapath.model import ApplyActions, FlowSpec, Match, Output
from ext import _fastpath as fp

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

FRAME = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
              IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000) /
              (b"x" * 18))                  # 60 bytes + FCS on the wire = 64


def _record(benchmark, name, unit, values):
    lo, med = min(values), statistics.median(values)
    benchmark.extra_info[name + "_min"] = round(lo, 3)
    benchmark.extra_info[name + "_median"] = round(med, 3)
    print(f"\n{benchmark.name}: {name} min {lo:.3f} {unit}, median {med:.3f} {unit}")
    return lo


def _dp_two_ports():
    dp = Datapath(4)
    a, b = DummyPort("ba"), DummyPort("bb")
    b.set_sink(True)
    dp.attach_port(1, a)
    dp.attach_port(2, b)
    return dp, a, b


def test_cache_hit_dummy_path(benchmark):
    dp, a, b = _dp_two_ports()
    dp.flow_add(FlowSpec(match=Match().set("in_port", 1),
                         instructions=(ApplyActions((Output(2),)),)))
    n = 2_000_000
    res = []

    def run():
        a.set_replay(FRAME, n)
        ns, total = fp.bench_dummy(dp, n)
        assert total == n
        res.append(ns)
    benchmark.pedantic(run, rounds=5, iterations=1)
    _record(benchmark, "hit_ns_per_pkt", "ns", res)
    st = dp.stats()
    assert st["hits"] >= 5 * n - 1 and b.tx_count == 5 * n


def _masks16():
    """16 masks: ipv4_src prefix x ipv4_dst prefix (8/16/24/32)."""
    return [(s, d) for s in (8, 16, 24, 32) for d in (8, 16, 24, 32)]


def _pfx(n):
    return ((1 << n) - 1) << (32 - n)


def _install(dp, n_rules, seed=1):
    rnd = random.Random(seed)
    masks = _masks16()
    specs = []
    for i in range(n_rules):
        s, d = masks[i % len(masks)]
        m = Match().set("eth_type", 0x800)
        m.set("ipv4_src", rnd.getrandbits(32) & _pfx(s), _pfx(s))
        m.set("ipv4_dst", rnd.getrandbits(32) & _pfx(d), _pfx(d))
        specs.append(FlowSpec(priority=1000 + (i % 16), match=m,
                              instructions=(ApplyActions((Output(2),)),)))
    for sp in specs:
        dp.flow_add(sp)
    dp.flow_add(FlowSpec(priority=0, instructions=(ApplyActions((Output(2),)),)))


@pytest.mark.parametrize("n_rules", [1_000, 10_000, 100_000])
def test_miss_full_pipeline(benchmark, n_rules):
    dp, a, b = _dp_two_ports()
    _install(dp, n_rules)
    res = []
    benchmark.pedantic(lambda: res.append(fp.bench_miss(dp, FRAME, 200_000, 1, len(res) + 1)),
                       rounds=3, iterations=1)
    _record(benchmark, "miss_ns_per_pkt", "ns", res)
    benchmark.extra_info["n_rules"] = n_rules
    benchmark.extra_info["n_masks"] = 16
    st = dp.stats()
    assert st["misses"] >= 600_000 and b.tx_count >= 600_000


def _specs(n):
    out = []
    for i in range(n):
        m = Match().set("eth_type", 0x800).set("ipv4_dst", 0x0a000000 + i).set("in_port", 1 + i % 4)
        out.append(FlowSpec(priority=100, match=m, instructions=(ApplyActions((Output(2),)),)))
    return out


def test_flow_add_rate(benchmark):
    n = 100_000
    specs = _specs(n)
    res = []

    def run():
        dp = Datapath()
        t0 = time.thread_time()
        for s in specs:
            dp.flow_add(s)
        res.append(time.thread_time() - t0)
        assert dp.flow_count() == n
    benchmark.pedantic(run, rounds=3, iterations=1)
    lo = _record(benchmark, "flow_add_100k_cpu_s", "s", res)
    benchmark.extra_info["flows_per_s"] = round(n / lo)


def test_memory_per_rule(benchmark):
    n = 100_000
    specs = _specs(n)
    res = {}

    def run():
        dp = Datapath()
        h0 = fp.dp_heap_in_use()
        for s in specs:
            dp.flow_add(s)
        h1 = fp.dp_heap_in_use()
        res["heap_per_rule"] = (h1 - h0) / n       # C entries + facade dict tables
        dp2 = Datapath()
        tracemalloc.start()
        s0 = tracemalloc.take_snapshot()
        for s in specs:
            dp2.flow_add(s)
        s1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        res["python_per_rule"] = sum(d.size_diff for d in s1.compare_to(s0, "filename")) / n
        assert dp.flow_count() == dp2.flow_count() == n
    benchmark.pedantic(run, rounds=1, iterations=1)
    for k, v in res.items():
        benchmark.extra_info[k + "_bytes"] = round(v, 1)
        print(f"\n{benchmark.name}: {k} {v:.1f} B")
