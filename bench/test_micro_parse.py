"""Micro benchmark of the frame parser (ext/parse.c) and the key hash
(ext/flowkey.c): each benchmark round is one C loop (bench_parse /
bench_key_hash, GIL released) over N parses of the same frame; the ns per
parse of that loop goes into extra_info (min and median over the rounds).

    PYTHONPATH=/tmp/vdp-parse/lib:$PWD python -m pytest bench/test_micro_parse.py \
        --benchmark-columns=min,median --benchmark-sort=name
"""
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from ext import _fastpath as fp

N = 200_000          # parses per C loop (one benchmark round)


def sized(pkt, size=64):
    """pkt with a payload bringing the frame to `size` bytes (FCS excluded
    only when size < 64 would not fit the headers)."""
    need = size - len(bytes(pkt))
    return bytes(pkt / Raw(b"\0" * need)) if need > 0 else bytes(pkt)


E = Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
FRAMES = {
    "udp64": sized(E / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1024, dport=9)),
    "tcp64": sized(E / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1024, dport=80)),
    "vlan_udp64": sized(E / Dot1Q(vlan=100) / IP() / UDP(sport=1024, dport=9)),
    "ipv6_udp64": sized(E / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP()),
    "ipv6_exthdr_tcp": bytes(E / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment()
                             / TCP()),
}


def _run(benchmark, fn, raw):
    ns = []
    benchmark.pedantic(lambda: ns.append(fn(raw, N)), rounds=15, iterations=1,
                       warmup_rounds=2)
    ns.sort()
    benchmark.extra_info["frame_bytes"] = len(raw)
    benchmark.extra_info["ops_per_round"] = N
    benchmark.extra_info["ns_per_op_min"] = round(ns[0], 2)
    benchmark.extra_info["ns_per_op_median"] = round(ns[len(ns) // 2], 2)
    return ns


@pytest.mark.parametrize("name", list(FRAMES))
def test_parse(benchmark, name):
    raw = FRAMES[name]
    assert not fp.parse_frame(raw)[2]
    ns = _run(benchmark, fp.bench_parse, raw)
    benchmark.extra_info["ns_per_parse"] = round(ns[0], 2)


def test_key_hash(benchmark):
    ns = _run(benchmark, fp.bench_key_hash, FRAMES["udp64"])
    benchmark.extra_info["ns_per_hash"] = round(ns[0], 2)
