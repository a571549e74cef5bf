"""BondPort (ext/port_bond.c, ext/bond.pxi): one OpenFlow port over N
member ports, the member chosen per packet by a hash of the frame.

No root: DummyPorts are the members.  Most tests run a Datapath with the
bond attached as port 1 and a DummyPort as port 2, flows in_port=1 ->
output:2 and in_port=2 -> output:1, and drive it with poll_once (one engine
pass in this thread; the bond, whose members have no fd, is tried every
pass)."""
import functools
import random
import select
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Raw

from datapath.fastpath import BondPort, Datapath, DummyPort, Port
from datapath.model import (OFPP_CONTROLLER, ApplyActions, FlowSpec, Match, Output,
                            PushVlan, SetField)
from ext import _fastpath as F

SLOW_DST = "01:80:c2:00:00:02"


# ---------------------------------------------------------------- frames
def mac(i):
    return "02:%02x:%02x:%02x:%02x:%02x" % tuple((i >> s) & 0xff for s in (32, 24, 16, 8, 0))


def ip4(i):
    return "10.%d.%d.%d" % ((i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)


def ip6(i):
    return "2001:db8::%x:%x" % ((i >> 16) & 0xffff, i & 0xffff)


@functools.lru_cache(maxsize=None)
def flow(i, kind="tcp", rev=False, vlan=None, payload=b"bond"):
    """Frame i of a family of flows; rev=True: the reply direction."""
    e = dict(src=mac(2 * i + 1), dst=mac(2 * i + 2))
    a, b = (ip4(2 * i + 1), ip4(2 * i + 2)) if kind != "tcp6" and kind != "udp6" else \
        (ip6(2 * i + 1), ip6(2 * i + 2))
    sp, dp = 1024 + i % 50000, 80 + (i * 7) % 1000
    if rev:
        e = dict(src=e["dst"], dst=e["src"])
        a, b, sp, dp = b, a, dp, sp
    l2 = Ether(**e)
    if vlan is not None:
        l2 = l2 / Dot1Q(vlan=vlan)
    if kind == "tcp":
        f = l2 / IP(src=a, dst=b) / TCP(sport=sp, dport=dp)
    elif kind == "udp":
        f = l2 / IP(src=a, dst=b) / UDP(sport=sp, dport=dp)
    elif kind == "sctp":
        f = l2 / IP(src=a, dst=b) / SCTP(sport=sp, dport=dp)
    elif kind == "icmp":
        f = l2 / IP(src=a, dst=b) / ICMP()
    elif kind == "tcp6":
        f = l2 / IPv6(src=a, dst=b) / TCP(sport=sp, dport=dp)
    elif kind == "udp6":
        f = l2 / IPv6(src=a, dst=b) / IPv6ExtHdrHopByHop() / UDP(sport=sp, dport=dp)
    elif kind == "arp":
        f = l2 / ARP(psrc=a, pdst=b, hwsrc=e["src"])
    else:
        raise ValueError(kind)
    return bytes(f / Raw(payload))


def lacpdu(src="02:00:00:00:aa:01", subtype=1):
    # subtype, version, then 108 bytes of (zero) TLVs and padding: the bond
    # only looks at the Ethernet header
    return bytes(Ether(src=src, dst=SLOW_DST, type=0x8809) / Raw(bytes([subtype, 1]) + bytes(108)))


# ---------------------------------------------------------------- env
class Env:
    """Datapath: bond (port 1) <-> DummyPort p2 (port 2)."""

    def __init__(self, n=2, mode="l4", flows=True, sink_members=False):
        self.members = [DummyPort("m%d" % i) for i in range(n)]
        for m in self.members:
            m.set_sink(sink_members)
        self.bond = BondPort("bond0", self.members, mode=mode)
        self.dp = Datapath(4)
        self.p2 = DummyPort("p2")
        self.dp.attach_port(1, self.bond)
        self.dp.attach_port(2, self.p2)
        if flows:
            self.fwd(1, 2)
            self.fwd(2, 1)

    def fwd(self, a, b, prio=100, acts=None):
        self.dp.flow_add(FlowSpec(priority=prio, match=Match().set("in_port", a),
                                  instructions=(ApplyActions(tuple(acts or ()) + (Output(b),)),)))

    def run(self):
        """Engine passes until every queue is empty (a pass that only
        diverted or dropped frames returns 0 but may leave more)."""
        total = 0
        for _ in range(10000):
            n = self.dp.poll_once(0)
            total += n
            if n == 0 and not self.p2.rx_pending and \
                    not any(m.rx_pending for m in self.members):
                break
        return total

    def to_bond(self, frames):
        """Send frames from port 2 into the bond; {member idx: [frames]}."""
        for f in frames:
            self.p2.inject(f)
        self.run()
        return {i: m.take_tx() for i, m in enumerate(self.members)}


def spread(bond, frames):
    out = {}
    for f in frames:
        out.setdefault(bond.select_member(f), []).append(f)
    return out


# ---------------------------------------------------------------- construction
def test_construction_and_basics():
    a, b = DummyPort("a"), DummyPort("b")
    bond = BondPort("bond0", [a, b])
    assert isinstance(bond, Port)
    assert bond.members == [a, b] and bond.n_members == 2
    assert bond.mode == "l4"
    assert bond.fd == -1                      # dummy members have no fd
    assert bond.mtu == 1500 and bond.ifindex == 0
    assert bond.hw_addr == a.hw_addr          # first member's address
    assert bond.link_up and bond.distributing
    assert bond.buckets() == [i % 2 for i in range(256)]
    assert bond.member_flags(0) == (True, True)
    assert bond.offload_ok is False           # DummyPorts need completed checksums
    a2, b2 = DummyPort("a2"), DummyPort("b2")
    a2.offload_ok = b2.offload_ok = True
    assert BondPort("bond1", [a2, b2]).offload_ok is True
    for m in ("l2", "l3", "slb", "balance-tcp", "balance-l3"):
        bond.set_mode(m)
    assert bond.mode == "l3"


@pytest.mark.parametrize("members,exc", [
    ([], ValueError),
    (["nope"], TypeError),
    ("dup", ValueError),
    ("bond", ValueError),
    ("many", ValueError),
])
def test_construction_errors(members, exc):
    a = DummyPort("a")
    if members == "dup":
        members = [a, a]
    elif members == "bond":
        members = [BondPort("inner", [a])]
    elif members == "many":
        members = [DummyPort("m%d" % i) for i in range(17)]
    with pytest.raises(exc):
        BondPort("bond0", members)


def test_bad_arguments():
    a, b = DummyPort("a"), DummyPort("b")
    bond = BondPort("bond0", [a, b])
    with pytest.raises(ValueError):
        BondPort("x", [DummyPort("c")], mode="round-robin")
    with pytest.raises(ValueError):
        bond.set_mode("active-backup")
    with pytest.raises(IndexError):
        bond.set_member(2, True, True)
    with pytest.raises(IndexError):
        bond.member_stats(-1)
    with pytest.raises(ValueError):
        bond.set_buckets([0] * 255)
    with pytest.raises(ValueError):
        bond.set_buckets([0] * 255 + [2])
    assert bond.buckets() == [i % 2 for i in range(256)]   # refused whole
    with pytest.raises(IndexError):
        bond.send_on_member(5, lacpdu())
    with pytest.raises(ValueError):
        bond.send_on_member(0, bytes(1537))


def test_close_closes_members():
    a, b = DummyPort("a"), DummyPort("b")
    a.inject(flow(1))
    bond = BondPort("bond0", [a, b])
    bond.close()
    assert bond.closed and bond.fd == -1
    assert a.rx_pending == 0                  # DummyPort.close drops its queues
    with pytest.raises(ValueError):
        bond.buckets()
    bond.close()                              # twice is fine


# ---------------------------------------------------------------- hashing
KINDS = ["tcp", "udp", "sctp", "icmp", "tcp6", "udp6", "arp"]


@pytest.mark.parametrize("mode", ["l2", "l3", "l4"])
@pytest.mark.parametrize("kind", KINDS)
def test_hash_symmetric(mode, kind):
    for i in range(100):
        vlan = 10 + i % 3 if i % 4 == 0 else None
        assert F.bond_hash(flow(i, kind, vlan=vlan), mode) == \
            F.bond_hash(flow(i, kind, rev=True, vlan=vlan), mode), (mode, kind, i)


@pytest.mark.parametrize("mode", ["l2", "l3", "l4"])
def test_both_directions_same_member_through_datapath(mode):
    env = Env(n=3, mode=mode)
    fwd = [flow(i, k) for i in range(300) for k in ("tcp", "udp6")]
    rev = [flow(i, k, rev=True) for i in range(300) for k in ("tcp", "udp6")]
    out_f = env.to_bond(fwd)
    out_r = env.to_bond(rev)
    where = {}
    for m, frames in out_f.items():
        for f in frames:
            where[f] = m
    rev_index = {f: i for i, f in enumerate(rev)}
    for m, frames in out_r.items():
        for f in frames:
            assert where[fwd[rev_index[f]]] == m
    assert sum(len(v) for v in out_r.values()) == len(rev)


def test_hash_fields_per_mode():
    h = F.bond_hash
    base = flow(5, "tcp")
    e = Ether(base)
    e2 = e.copy()
    e2[TCP].sport += 1
    other_ports = bytes(e2)
    e3 = e.copy()
    e3[IP].src = "192.0.2.99"
    other_ip = bytes(e3)
    e4 = e.copy()
    e4.src = "02:aa:aa:aa:aa:aa"
    other_mac = bytes(e4)
    # L2: MACs (+VLAN) only
    assert h(base, "l2") == h(other_ports, "l2") == h(other_ip, "l2")
    assert h(base, "l2") != h(other_mac, "l2")
    # L3: addresses only
    assert h(base, "l3") == h(other_ports, "l3") == h(other_mac, "l3")
    assert h(base, "l3") != h(other_ip, "l3")
    # L4: addresses and ports
    assert h(base, "l4") == h(other_mac, "l4")
    assert h(base, "l4") != h(other_ports, "l4")
    assert h(base, "l4") != h(other_ip, "l4")
    # SLB: source MAC + VLAN; not the destination, not L3/L4
    e5 = e.copy()
    e5.dst = "02:bb:bb:bb:bb:bb"
    assert h(base, "slb") == h(bytes(e5), "slb") == h(other_ip, "slb") == h(other_ports, "slb")
    assert h(base, "slb") != h(other_mac, "slb")
    # VLAN id counts in L2 and SLB
    assert h(flow(5, vlan=10), "l2") != h(flow(5, vlan=11), "l2")
    assert h(flow(5, vlan=10), "slb") != h(flow(5, vlan=11), "slb")
    assert h(flow(5, vlan=10), "l2") != h(flow(5), "l2")


def test_hash_fallbacks():
    h = F.bond_hash
    # non-IP in L3/L4 hashes as L2
    for i in range(20):
        arp = flow(i, "arp")
        assert h(arp, "l3") == h(arp, "l4") == h(arp, "l2")
    # ICMP (no ports) in L4 hashes as L3
    for i in range(20):
        ic = flow(i, "icmp")
        assert h(ic, "l4") == h(ic, "l3")
    # IPv4 fragments (first and later) hash as L3 in L4 mode: every fragment
    # of a datagram leaves on the same member
    pkt = Ether(src=mac(1), dst=mac(2)) / IP(src="10.0.0.1", dst="10.0.0.2", id=7) / \
        UDP(sport=5000, dport=6000) / Raw(b"z" * 3000)
    from scapy.layers.inet import fragment
    frags = [bytes(Ether(src=mac(1), dst=mac(2)) / f) for f in fragment(pkt[IP], fragsize=1000)]
    assert len(frags) >= 3
    assert {h(f, "l4") for f in frags} == {h(frags[0], "l3")}
    whole = bytes(Ether(src=mac(1), dst=mac(2)) / IP(src="10.0.0.1", dst="10.0.0.2") /
                  UDP(sport=5000, dport=6000))
    assert h(whole, "l4") != h(whole, "l3")
    # IPv6 fragments likewise
    f6 = Ether(src=mac(1), dst=mac(2)) / IPv6(src=ip6(1), dst=ip6(2)) / \
        IPv6ExtHdrFragment(m=1, offset=0, id=9) / UDP(sport=5000, dport=6000) / Raw(b"q" * 64)
    assert h(bytes(f6), "l4") == h(bytes(f6), "l3")
    # an atomic fragment (offset 0, M=0) is a whole datagram: ports count
    a6 = Ether(src=mac(1), dst=mac(2)) / IPv6(src=ip6(1), dst=ip6(2)) / \
        IPv6ExtHdrFragment(m=0, offset=0, id=9) / UDP(sport=5000, dport=6000) / Raw(b"q" * 64)
    assert h(bytes(a6), "l4") != h(bytes(a6), "l3")
    # SCTP and UDP ports count in L4
    assert h(flow(1, "sctp"), "l4") != h(flow(1, "sctp"), "l3")


@pytest.mark.parametrize("n,lo,hi", [(2, 430, 570), (3, 270, 400)])
@pytest.mark.parametrize("mode", ["l2", "l3", "l4"])
def test_spread(n, lo, hi, mode):
    """1,000 flows over n members: each member's share within sane bounds
    (fair share +-14%; the hash is deterministic, so this is no flake)."""
    env = Env(n=n, mode=mode)
    frames = [flow(i, "tcp" if i % 2 else "udp6") for i in range(1000)]
    out = env.to_bond(frames)
    counts = [len(out[i]) for i in range(n)]
    assert sum(counts) == 1000
    assert all(lo <= c <= hi for c in counts), counts
    # and every frame left where select_member says
    for i, fr in out.items():
        for f in fr:
            assert env.bond.select_member(f) == i


def test_spread_slb_by_source_mac():
    env = Env(n=2, mode="slb")
    frames = [flow(i) for i in range(1000)]
    counts = [len(v) for v in env.to_bond(frames).values()]
    assert all(430 <= c <= 570 for c in counts), counts


def test_hash_reflects_rewrites():
    """The member is chosen from the frame as it leaves (after set-field
    and push_vlan), not as it came in."""
    env = Env(n=3, mode="l3", flows=False)
    env.fwd(2, 1, acts=[SetField("ipv4_src", 0x0a636363), PushVlan(0x8100),
                        SetField("vlan_vid", 0x1000 | 42)])
    frames = [flow(i, "udp") for i in range(300)]
    out = env.to_bond(frames)
    n_out = 0
    for i, fr in out.items():
        for f in fr:
            e = Ether(f)
            assert e[IP].src == "10.99.99.99" and e[Dot1Q].vlan == 42
            assert env.bond.select_member(f) == i
            n_out += 1
    assert n_out == 300
    # and the frames as they came in would have gone elsewhere, some of them
    by_sport = {Ether(f)[UDP].sport: f for f in frames}
    differ = [f for m, fr in out.items() for f in fr
              if env.bond.select_member(by_sport[Ether(f)[UDP].sport]) != m]
    assert differ


def test_fuzz_hash_frame_random_bytes():
    rnd = random.Random(1234)
    a = DummyPort("a")
    bond = BondPort("bond0", [a])
    for _ in range(5000):
        n = rnd.choice([0, 1, 5, 11, 12, 13, 14, 15, 17, 18, 33, 34, 54, 60, 80, 200])
        f = bytes(rnd.getrandbits(8) for _ in range(n))
        for m in ("l2", "l3", "l4", "slb"):
            v = bond.hash_frame(f, m)
            assert 0 <= v < 2 ** 32
        assert bond.select_member(f) == 0
    # truncated real frames of every kind
    for kind in KINDS:
        full = flow(3, kind, vlan=7)
        for cut in range(len(full) + 1):
            for m in ("l2", "l3", "l4", "slb"):
                bond.hash_frame(full[:cut], m)


def test_fuzz_hash_guard_page():
    """Frames end right before a PROT_NONE page and offsets are scrambled:
    a read past pkt->len would crash the process."""
    assert F.bond_fuzz_hash(1, 200_000) == F.bond_fuzz_hash(1, 200_000)
    F.bond_fuzz_hash(99, 200_000)


def test_malformed_frames_through_the_bond():
    env = Env(n=2)
    rnd = random.Random(7)
    junk = [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 120))) for _ in range(2000)]
    for j in junk[:1000]:
        env.p2.inject(j)
    for k, j in enumerate(junk[1000:]):
        env.members[k % 2].inject(j)
    env.run()
    st = env.dp.port_stats()
    assert st[1]["rx_packets"] + st[2]["rx_packets"] == 2000


# ---------------------------------------------------------------- distributing
def test_only_distributing_members_transmit():
    env = Env(n=3)
    frames = [flow(i) for i in range(600)]
    env.bond.set_member(1, True, False)
    out = env.to_bond(frames)
    assert out[1] == []
    assert len(out[0]) + len(out[2]) == 600
    c = env.bond.counters()
    assert c["fallback_tx"] > 100              # member 1's buckets, until moved
    assert c["no_member_dropped"] == 0
    # move member 1's buckets: no more fallback
    b = env.bond.buckets()
    env.bond.set_buckets([0 if v == 1 else v for v in b])
    out = env.to_bond(frames)
    assert out[1] == [] and len(out[0]) + len(out[2]) == 600
    assert env.bond.counters()["fallback_tx"] == c["fallback_tx"]
    assert env.bond.member_stats(1)["tx_packets"] == 0


def test_no_distributing_member_drops_and_counts():
    env = Env(n=2)
    for i in range(2):
        env.bond.set_member(i, True, False)
    assert not env.bond.distributing
    out = env.to_bond([flow(i) for i in range(50)])
    assert out == {0: [], 1: []}
    assert env.bond.counters()["no_member_dropped"] == 50
    st = env.dp.port_stats()[1]
    assert st["tx_dropped"] == 50 and st["tx_packets"] == 0


def test_unset_buckets_fall_back_to_distributing_members():
    env = Env(n=2)
    env.bond.set_buckets([-1] * 128 + [0] * 128)
    assert env.bond.buckets()[:2] == [-1, -1]
    out = env.to_bond([flow(i) for i in range(400)])
    assert len(out[0]) + len(out[1]) == 400
    assert env.bond.counters()["fallback_tx"] > 100


def test_moving_a_members_buckets_moves_only_its_flows():
    env = Env(n=3)
    frames = [flow(i, "tcp") for i in range(1000)]
    before = {}
    for m, fr in env.to_bond(frames).items():
        for f in fr:
            before[f] = m
    assert len(before) == 1000
    # member 1 stops distributing: its buckets go to the others, round robin
    env.bond.set_member(1, True, False)
    old = env.bond.buckets()
    k = 0
    new = []
    for v in old:
        if v == 1:
            new.append((0, 2)[k % 2])
            k += 1
        else:
            new.append(v)
    env.bond.set_buckets(new)
    assert [i for i in range(256) if old[i] != new[i]] == [i for i in range(256) if old[i] == 1]
    after = {}
    for m, fr in env.to_bond(frames).items():
        for f in fr:
            after[f] = m
    moved = [f for f in frames if before[f] != after[f]]
    assert all(before[f] == 1 for f in moved)
    assert all(after[f] == before[f] for f in frames if before[f] != 1)
    assert not any(after[f] == 1 for f in frames)
    assert len(moved) == sum(1 for f in frames if before[f] == 1) > 200
    # back: member 1 gets exactly its old buckets and flows again
    env.bond.set_member(1, True, True)
    env.bond.set_buckets(old)
    again = {}
    for m, fr in env.to_bond(frames).items():
        for f in fr:
            again[f] = m
    assert again == before


# ---------------------------------------------------------------- collecting
def test_non_collecting_member_frames_dropped_and_counted():
    env = Env(n=2)
    env.bond.set_member(1, False, True)
    for i in range(30):
        env.members[0].inject(flow(i, payload=b"from-m0"))
        env.members[1].inject(flow(i, payload=b"from-m1"))
    env.run()
    got = env.p2.take_tx()
    assert len(got) == 30 and all(f.endswith(b"from-m0") for f in got)
    assert env.bond.counters()["not_collecting_dropped"] == 30
    ms = env.bond.member_stats(1)
    assert ms["not_collecting_dropped"] == 30 and ms["rx_packets"] == 30
    assert ms["rx_dropped"] == 30 and not ms["collecting"] and ms["distributing"]
    assert env.bond.member_stats(0)["not_collecting_dropped"] == 0
    st = env.dp.port_stats()[1]
    assert st["rx_packets"] == 60 and st["rx_dropped"] == 30
    # flow counters saw only the collected frames
    total = sum(f.packet_count for f in env.dp.flows())
    assert total == 30


# ---------------------------------------------------------------- slow protocols
def test_slow_frames_diverted_never_reach_the_pipeline():
    env = Env(n=2, flows=False)
    # everything from the bond would go to port 2, and a table-miss would
    # go to the controller: neither may see a slow frame
    env.fwd(1, 2)
    env.dp.flow_add(FlowSpec(priority=0, instructions=(ApplyActions((Output(OFPP_CONTROLLER),)),)))
    fd = env.bond.slow_fd()
    assert select.select([fd], [], [], 0)[0] == []
    l1 = lacpdu("02:00:00:00:aa:01", 1)
    mk = lacpdu("02:00:00:00:aa:02", 2)
    tagged = bytes(Ether(src="02:00:00:00:aa:03", dst=SLOW_DST) / Dot1Q(vlan=5, type=0x8809) /
                   Raw(b"\x01\x01" + bytes(108)))
    oam = lacpdu("02:00:00:00:aa:04", 3)     # other subtype: the LACP code counts it
    env.members[1].inject(l1)
    env.members[0].inject(mk)
    env.bond.set_member(1, False, False)    # not collecting: LACP still gets through
    env.members[1].inject(tagged)
    env.members[0].inject(oam)
    env.run()
    assert env.p2.take_tx() == []
    assert env.dp.upcalls() == []
    assert sum(f.packet_count for f in env.dp.flows()) == 0
    assert [t["lookup_count"] for t in env.dp.table_stats()][0] == 0
    assert select.select([fd], [], [], 0)[0] == [fd]
    got = env.bond.slow_rx()
    assert sorted(got) == sorted([(1, l1), (0, mk), (1, tagged), (0, oam)])
    assert select.select([fd], [], [], 0)[0] == []
    assert env.bond.slow_rx() == []
    c = env.bond.counters()
    assert c["slow_rx"] == 4 and c["slow_dropped"] == 0 and c["not_collecting_dropped"] == 0
    assert env.bond.member_stats(1)["slow_rx"] == 2
    st = env.dp.port_stats()[1]
    assert st["rx_packets"] == 4 and st["rx_dropped"] == 0


def test_slow_ethertype_to_other_address_is_ordinary_traffic():
    env = Env(n=2)
    f = bytes(Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:00:09", type=0x8809) /
              Raw(b"\x01\x01" + bytes(108)))
    env.members[0].inject(f)
    env.run()
    assert env.p2.take_tx() == [f]
    assert env.bond.slow_rx() == []


def test_slow_ring_full_drops_and_counts_and_rearms():
    env = Env(n=1)
    frames = [lacpdu("02:00:00:00:%02x:01" % i) for i in range(80)]
    for f in frames:
        env.members[0].inject(f)
    env.run()
    c = env.bond.counters()
    assert c["slow_rx"] == 64 and c["slow_dropped"] == 16
    assert env.bond.member_stats(0)["slow_dropped"] == 16
    assert env.dp.port_stats()[1]["rx_dropped"] == 16
    fd = env.bond.slow_fd()
    first = env.bond.slow_rx(max=10)
    assert [f for _, f in first] == frames[:10]
    assert select.select([fd], [], [], 0)[0] == [fd]     # 54 left: still readable
    rest = env.bond.slow_rx(max=100)
    assert [f for _, f in rest] == frames[10:64]
    assert select.select([fd], [], [], 0)[0] == []
    # room again
    env.members[0].inject(frames[70])
    env.run()
    assert env.bond.slow_rx() == [(0, frames[70])]


def test_oversized_slow_frame_dropped_not_forwarded():
    env = Env(n=1)
    big = bytes(Ether(src="02:00:00:00:aa:01", dst=SLOW_DST, type=0x8809) / Raw(bytes(1600)))
    env.members[0].inject(big)
    env.run()
    assert env.p2.take_tx() == [] and env.bond.slow_rx() == []
    assert env.bond.counters()["slow_dropped"] == 1


# ---------------------------------------------------------------- send_on_member
def test_send_on_member():
    env = Env(n=3)
    pdu = lacpdu("02:00:00:00:bb:01")
    assert env.bond.send_on_member(2, pdu) is True
    assert env.bond.send_on_member(0, pdu + b"x") is True
    assert [m.take_tx() for m in env.members] == [[], [], []]   # queued until a flush
    env.dp.poll_once(0)
    assert [m.take_tx() for m in env.members] == [[pdu + b"x"], [], [pdu]]
    # regardless of buckets and flags
    env.bond.set_member(1, False, False)
    env.bond.set_buckets([0] * 256)
    env.bond.send_on_member(1, pdu)
    env.dp.poll_once(0)
    assert env.members[1].take_tx() == [pdu]
    c = env.bond.counters()
    assert c["slow_tx"] == 3 and c["slow_tx_dropped"] == 0
    assert env.bond.member_stats(1)["slow_tx"] == 1
    st = env.dp.port_stats()[1]
    assert st["tx_packets"] == 3


def test_send_on_member_queue_full_and_refused():
    a, b = DummyPort("a"), DummyPort("b")
    bond = BondPort("bond0", [a, b])
    ok = [bond.send_on_member(0, lacpdu()) for _ in range(40)]
    assert ok == [True] * 32 + [False] * 8
    bond.flush()                               # no engine runs this bond
    assert len(a.take_tx()) == 32
    b.set_tx_limit(0)                          # the member refuses
    assert bond.send_on_member(1, lacpdu())
    bond.flush()
    assert bond.counters()["slow_tx_dropped"] == 1
    assert bond.member_stats(1)["tx_dropped"] == 1
    assert bond.stats()["tx_dropped"] == 1     # folded into the bond's


# ---------------------------------------------------------------- stats
def test_stats_are_the_sum_of_the_members():
    env = Env(n=3)
    env.to_bond([flow(i, "udp") for i in range(500)])
    for i in range(90):
        env.members[i % 3].inject(flow(i, rev=True))
    env.members[1].inject(lacpdu())
    env.bond.send_on_member(2, lacpdu())
    env.run()
    env.bond.set_member(0, False, True)
    env.members[0].inject(flow(1000))
    env.run()
    st = env.dp.port_stats()[1]
    ms = [env.bond.member_stats(i) for i in range(3)]
    for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_dropped"):
        assert st[k] == sum(m[k] for m in ms), k
    assert st["tx_packets"] == 501 and st["rx_packets"] == 92
    assert st["rx_dropped"] == 1
    assert env.dp.port_stats()[2]["tx_packets"] == 90   # not the one from member 0
    # bond's own drop: no distributing member
    for i in range(3):
        env.bond.set_member(i, True, False)
    env.to_bond([flow(1)])
    assert env.dp.port_stats()[1]["tx_dropped"] == 1


def test_bucket_stats_and_reset():
    env = Env(n=2)
    frames = [flow(i, "udp") for i in range(700)]
    env.to_bond(frames)
    bs = env.bond.bucket_stats()
    assert len(bs) == 256
    assert sum(p for p, _ in bs) == 700
    assert sum(b for _, b in bs) == sum(len(f) for f in frames)
    for f in frames[:50]:
        assert bs[env.bond.hash_frame(f) & 255][0] >= 1
    # the per-member load is what the buckets say
    per = [0, 0]
    for k, (p, _) in enumerate(bs):
        per[env.bond.buckets()[k]] += p
    assert per == [env.bond.member_stats(0)["tx_packets"], env.bond.member_stats(1)["tx_packets"]]
    env.bond.reset_bucket_stats()
    assert env.bond.bucket_stats() == [(0, 0)] * 256
    env.to_bond(frames[:10])
    assert sum(p for p, _ in env.bond.bucket_stats()) == 10


def test_link_state_is_the_datapaths():
    env = Env(n=2)
    env.dp.set_port_link(1, False)
    assert not env.bond.link_up
    assert env.to_bond([flow(1)]) == {0: [], 1: []}
    env.dp.set_port_link(1, True)
    assert env.bond.link_up
    assert sum(len(v) for v in env.to_bond([flow(1)]).values()) == 1


def test_detach_and_close_with_traffic_queued():
    env = Env(n=2)
    env.members[0].inject(flow(1))
    env.dp.detach_port(1)
    env.run()
    env.bond.close()
    assert env.p2.take_tx() == []
