"""Micro benchmarks of the bond port (ext/port_bond.c) through the facade:
DummyPorts only, no engine, no syscalls.

- hash / select / tx per packet: ext._fastpath.bond_bench runs a C loop
  over 1,024 pre-parsed frames of distinct flows (so the bucket and member
  change from frame to frame): "hash" is the flow hash alone, "select"
  hash + bucket + member flags, "tx" the bond's whole tx op (hash, choice,
  member tx into a sink DummyPort, per-bucket and per-member counters).
  ns/packet, per hash mode.
- pipeline: one flow in_port=2 -> output:1 (a bond of 2 sink DummyPorts)
  next to the same flow with output:3 (a plain sink DummyPort), a
  DummyPort replaying one frame (cache hit): rx burst, parse, cache,
  program, tx, flush in one C loop (ext._fastpath.bench_dummy).  The
  difference is what the bond adds per packet.

Times are the calling thread's CPU time (this 2-core machine is shared), so
they are a floor for wall time.  Figures go in benchmark.extra_info.

    PYTHONPATH=/tmp/vdp-NAME/lib:$PWD python -m pytest bench/test_micro_bond.py \\
        -q --benchmark-only -s
"""
import statistics

import pytest

from datapath.fastpath import BondPort, Datapath, DummyPort
from datapath.model import ApplyActions, FlowSpec, Match, Output
from ext import _fastpath as fp

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

FRAME = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
              IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000) /
              (b"x" * 18))                  # 60 bytes + FCS on the wire = 64


def _flows(n=1024):
    out = []
    for i in range(n):
        src = "02:00:00:%02x:%02x:01" % (i >> 8, i & 0xff)
        if i % 4 == 3:
            f = Ether(src=src, dst="02:00:00:00:00:02") / \
                IPv6(src="2001:db8::%x" % (i + 1), dst="2001:db8::1:2") / \
                TCP(sport=1024 + i, dport=80)
        else:
            f = Ether(src=src, dst="02:00:00:00:00:02") / \
                IP(src="10.%d.%d.1" % (i >> 8, i & 0xff), dst="10.200.0.2") / \
                UDP(sport=1024 + i, dport=5000 + i % 97)
        out.append(bytes(f / (b"x" * 18)))
    return out


FLOWS = _flows()


def _record(benchmark, name, unit, values):
    lo, med = min(values), statistics.median(values)
    benchmark.extra_info[name + "_min"] = round(lo, 3)
    benchmark.extra_info[name + "_median"] = round(med, 3)
    print(f"\n{benchmark.name}: {name} min {lo:.3f} {unit}, median {med:.3f} {unit}")
    return lo


def _bond(n=2, mode="l4"):
    ms = [DummyPort("bm%d" % i) for i in range(n)]
    for m in ms:
        m.set_sink(True)
    return BondPort("bench-bond", ms, mode=mode), ms


@pytest.mark.parametrize("what", ["hash", "select", "tx"])
@pytest.mark.parametrize("mode", ["l2", "l3", "l4", "slb"])
def test_bond_per_packet(benchmark, mode, what):
    bond, ms = _bond(2, mode)
    n = 2_000_000
    res = []
    benchmark.pedantic(lambda: res.append(fp.bond_bench(bond, FLOWS, n, what)),
                       rounds=5, iterations=1)
    _record(benchmark, what + "_ns_per_pkt", "ns", res)
    benchmark.extra_info["mode"] = mode
    if what == "tx":
        sent = [m.tx_count for m in ms]
        assert sum(sent) == 5 * n and min(sent) > n       # both members used


def _dp_bond_and_plain():
    dp = Datapath(4)
    bond, ms = _bond(2)
    src, plain = DummyPort("src"), DummyPort("plain")
    plain.set_sink(True)
    dp.attach_port(1, bond)
    dp.attach_port(2, src)
    dp.attach_port(3, plain)
    return dp, bond, ms, src, plain


@pytest.mark.parametrize("out", ["plain", "bond"])
def test_pipeline_output_bond_vs_plain(benchmark, out):
    dp, bond, ms, src, plain = _dp_bond_and_plain()
    dp.flow_add(FlowSpec(match=Match().set("in_port", 2),
                         instructions=(ApplyActions((Output(1 if out == "bond" else 3),)),)))
    n = 2_000_000
    res = []

    def run():
        src.set_replay(FRAME, n)
        ns, total = fp.bench_dummy(dp, n)
        assert total == n
        res.append(ns)
    benchmark.pedantic(run, rounds=5, iterations=1)
    _record(benchmark, "hit_ns_per_pkt", "ns", res)
    sent = sum(m.tx_count for m in ms) if out == "bond" else plain.tx_count
    assert sent == 5 * n
