"""Fuzzing the frame parser in C: over a million random and mutated frames
through vdp_parse (ext/parse.pxi fuzz_parse), each frame ending right before
a PROT_NONE page so any read past pkt->len kills the test process.

fuzz_parse also checks, per frame, that the return value agrees with
pkt->malformed, that every header offset lies inside the frame, that the
always-present fields are present, and that vdp_reparse yields the same key.
"""
import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS,
                                ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.ipsec import AH, ESP
from scapy.layers.l2 import ARP, Dot1AD, Dot1AH, Dot1Q, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Raw

from ext import _fastpath as fp

A, B = "02:00:00:00:00:01", "02:00:00:00:00:02"


def corpus():
    e = Ether(dst=B, src=A)
    frames = [
        e / IP() / UDP(sport=1, dport=2) / Raw(b"x" * 18),
        e / IP(options=[IPOption_RR(routers=["1.1.1.1"])]) / TCP(options=[("MSS", 1460)]),
        e / IP(flags="MF") / TCP(),
        e / IP(frag=100, proto=6) / Raw(b"y" * 20),
        e / IP() / SCTP(sport=7, dport=8),
        e / IP() / ICMP(),
        e / Dot1Q(vlan=10, prio=3) / IP() / UDP(),
        e / Dot1AD(vlan=20) / Dot1Q(vlan=30) / IP() / TCP(),
        Ether(dst=B, src=A, type=0x9100) / Dot1Q(vlan=5) / IPv6() / UDP(),
        e / MPLS(label=100, s=0) / MPLS(label=200, s=1) / IP() / UDP(),
        e / Dot1AH(isid=0x1234) / Ether(dst=A, src=B) / IP() / UDP(),
        e / Dot1AD(vlan=2) / Dot1AH(isid=9) / Ether(dst=A, src=B) / IPv6() / TCP(),
        e / ARP(op=1, psrc="10.0.0.1", pdst="10.0.0.2"),
        e / IPv6() / TCP(),
        e / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting()
        / IPv6ExtHdrFragment() / AH(nh=6, payloadlen=4, icv=b"\0" * 12) / TCP(),
        e / IPv6() / IPv6ExtHdrFragment(offset=10, nh=17) / Raw(b"z" * 16),
        e / IPv6() / IPv6ExtHdrHopByHop() / ESP(spi=1, data=b"\0" * 16),
        e / IPv6(nh=59),
        e / IPv6() / SCTP(),
        e / IPv6() / ICMPv6EchoRequest(),
        e / IPv6() / ICMPv6ND_NS(tgt="fe80::1") / ICMPv6NDOptSrcLLAddr(lladdr=A),
        e / IPv6() / ICMPv6ND_NA(tgt="fe80::2") / ICMPv6NDOptDstLLAddr(lladdr=B),
    ]
    return [bytes(f) for f in frames]


def check_counts(res, n):
    assert res["total"] == n
    assert res["total"] == res["malformed"] + res["ok"]
    assert res["inconsistent"] == 0
    assert res["bad_offsets"] == 0
    assert res["bad_present"] == 0
    assert res["reparse_mismatch"] == 0


def test_corpus_frames_parse_clean():
    for raw in corpus():
        _, _, malformed = fp.parse_frame(raw)
        assert not malformed, raw.hex()


def test_fuzz_one_million_frames():
    n = 1_000_000
    res = fp.fuzz_parse(corpus(), n, 12345)
    check_counts(res, n)
    # The mix reaches both outcomes in quantity.
    assert res["malformed"] > n // 20 and res["ok"] > n // 20


def test_fuzz_random_only():
    n = 200_000
    res = fp.fuzz_parse([], n, 99)
    check_counts(res, n)
    assert res["malformed"] > 0 and res["ok"] > 0


def test_fuzz_is_deterministic_per_seed():
    c = corpus()
    assert fp.fuzz_parse(c, 20_000, 7) == fp.fuzz_parse(c, 20_000, 7)
    assert fp.fuzz_parse(c, 20_000, 7) != fp.fuzz_parse(c, 20_000, 8)


def test_fuzz_rejects_bad_corpus():
    with pytest.raises(ValueError):
        fp.fuzz_parse(["not bytes"], 10, 1)
    with pytest.raises(ValueError):
        fp.fuzz_parse([b"\0" * 5000], 10, 1)
    assert fp.fuzz_parse([], 0, 1)["total"] == 0
