"""Groups (ext/group.c) through GroupTester: the weighted select table,
the symmetric select hash, liveness rebuilds and fast-failover choice."""
import random

import pytest

pytest.importorskip("ext._fastpath")
from ext import _fastpath as fp  # noqa: E402

from datapath.model import (  # noqa: E402
    OFPGT_ALL, OFPGT_FF, OFPGT_INDIRECT, OFPGT_SELECT, OFPP_ANY, Bucket, GroupSpec, Output,
    SetField)

SLOTS = 256


def select_group(weights, watch=None, gid=1):
    watch = watch or [OFPP_ANY] * len(weights)
    return GroupSpec(gid, OFPGT_SELECT, tuple(
        Bucket(actions=(Output(10 + i),), weight=w, watch_port=p)
        for i, (w, p) in enumerate(zip(weights, watch))))


def key4(src, dst, sport, dport, proto=6, smac=0x020000000001, dmac=0x020000000002):
    l4 = {6: "tcp", 17: "udp", 132: "sctp"}[proto]
    return {"eth_src": smac, "eth_dst": dmac, "eth_type": 0x0800, "ip_proto": proto,
            "ipv4_src": src, "ipv4_dst": dst, f"{l4}_src": sport, f"{l4}_dst": dport}


def reverse(k):
    r = dict(k)
    for a, b in (("eth_src", "eth_dst"), ("ipv4_src", "ipv4_dst"), ("ipv6_src", "ipv6_dst"),
                 ("arp_spa", "arp_tpa"), ("tcp_src", "tcp_dst"), ("udp_src", "udp_dst"),
                 ("sctp_src", "sctp_dst")):
        if a in k:
            r[a], r[b] = k[b], k[a]
    return r


# ---------------------------------------------------------------- table
@pytest.mark.parametrize("weights", [(1, 1), (1, 2), (1, 1, 1), (5, 3, 2), (100, 1), (7,), (1,) * 10,
                                     (65535, 1, 300)])
def test_weights_apportion_slots(weights):
    g = fp.GroupTester(select_group(weights))
    counts = g.counts()
    assert sum(counts) == SLOTS
    total = sum(weights)
    for w, c in zip(weights, counts):
        exact = SLOTS * w / total
        assert abs(c - exact) < 1, (weights, counts)      # largest remainder: floor or ceil


def test_weight_zero_bucket_gets_nothing():
    g = fp.GroupTester(select_group((0, 5, 0)))
    assert g.counts() == [0, SLOTS, 0]


def test_all_zero_weights_spread_equally():
    g = fp.GroupTester(select_group((0, 0)))
    assert g.counts() == [128, 128]


def test_bucket_programs_compiled():
    spec = GroupSpec(3, OFPGT_ALL, (Bucket(actions=(SetField("vlan_vid", 0x1005), Output(1))),
                                    Bucket(actions=(Output(2),)), Bucket(actions=())))
    assert fp.GroupTester(spec).prog_lengths() == [2, 1, 0]


def test_bad_specs_rejected():
    with pytest.raises(ValueError):
        fp.GroupTester(GroupSpec(1, 9, ()))
    with pytest.raises(ValueError):
        fp.GroupTester(GroupSpec(1, OFPGT_INDIRECT, (Bucket(), Bucket())))
    with pytest.raises(ValueError):
        fp.GroupTester(GroupSpec(1, OFPGT_ALL, (Bucket(actions=(SetField("metadata", 1),)),)))


# ---------------------------------------------------------------- hashing
def random_keys(rng, n):
    keys = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            k = key4(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16))
        elif kind == 1:
            k = key4(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                     proto=17)
        elif kind == 2:
            k = {"eth_src": rng.getrandbits(48), "eth_dst": rng.getrandbits(48), "eth_type": 0x86dd,
                 "ip_proto": 132, "ipv6_src": rng.getrandbits(128), "ipv6_dst": rng.getrandbits(128),
                 "sctp_src": rng.getrandbits(16), "sctp_dst": rng.getrandbits(16)}
        else:
            k = {"eth_src": rng.getrandbits(48), "eth_dst": rng.getrandbits(48), "eth_type": 0x0806,
                 "arp_spa": rng.getrandbits(32), "arp_tpa": rng.getrandbits(32)}
        keys.append(k)
    return keys


def test_hash_symmetric():
    g = fp.GroupTester(select_group((1, 1, 1)))
    rng = random.Random(1)
    for k in random_keys(rng, 2000):
        assert g.hash(k) == g.hash(reverse(k))
        assert g.select(k) == g.select(reverse(k))


def test_hash_depends_on_each_layer():
    g = fp.GroupTester(select_group((1, 1)))
    k = key4(0x0a000001, 0x0a000002, 1000, 80)
    h = g.hash(k)
    for field, value in (("ipv4_src", 0x0a000003), ("tcp_dst", 81), ("eth_src", 0x020000000009),
                         ("ip_proto", 17)):
        k2 = dict(k)
        k2[field] = value
        assert g.hash(k2) != h, field


def spread(g, keys):
    counts = [0] * len(g.counts())
    for k in keys:
        counts[g.select(k)] += 1
    return counts


def test_spread_over_five_tuples():
    rng = random.Random(2)
    keys = [key4(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16))
            for _ in range(8000)]
    c = spread(fp.GroupTester(select_group((1, 1))), keys)
    assert all(abs(x - 4000) < 300 for x in c), c
    c = spread(fp.GroupTester(select_group((1, 2))), keys)
    assert abs(c[0] - 8000 / 3) < 300 and abs(c[1] - 16000 / 3) < 300, c
    c = spread(fp.GroupTester(select_group((1,) * 8)), keys)
    assert all(abs(x - 1000) < 200 for x in c), c


def test_spread_over_macs_with_fixed_ips():
    # os-ken 01_SELECT_Ether: random MACs, one IP pair -> still spreads
    rng = random.Random(3)
    keys = [key4(0xc0a80a0a, 0xc0a81414, 11111, 2222, smac=rng.getrandbits(48), dmac=rng.getrandbits(48))
            for _ in range(4000)]
    c = spread(fp.GroupTester(select_group((1, 1))), keys)
    assert all(abs(x - 2000) < 250 for x in c), c


def test_spread_over_arp_addresses():
    # os-ken 01_SELECT_IP with ARP: random spa/tpa, fixed MACs
    rng = random.Random(4)
    keys = [{"eth_src": 1, "eth_dst": 2, "eth_type": 0x0806, "arp_spa": rng.getrandbits(32),
             "arp_tpa": rng.getrandbits(32)} for _ in range(4000)]
    c = spread(fp.GroupTester(select_group((1, 1))), keys)
    assert all(abs(x - 2000) < 250 for x in c), c


# ---------------------------------------------------------------- liveness
def test_dead_bucket_moves_only_its_slots():
    g = fp.GroupTester(select_group((1, 1, 1), watch=(1, 2, 3)))
    before = g.table()
    g.set_live({1, 3})
    after = g.table()
    moved = [i for i in range(SLOTS) if before[i] != after[i]]
    assert moved and all(before[i] == 1 for i in moved)       # only bucket 1's slots moved
    assert all(after[i] != 1 for i in range(SLOTS))
    assert sorted(g.counts()) == [0, 128, 128]
    g.set_live({1, 2, 3})
    assert g.table() == before                                # recovery restores the table


def test_dead_bucket_keeps_flows_of_others():
    rng = random.Random(5)
    keys = random_keys(rng, 3000)
    g = fp.GroupTester(select_group((2, 1, 1), watch=(1, 2, 3)))
    before = [g.select(k) for k in keys]
    g.set_live({2, 3})
    after = [g.select(k) for k in keys]
    assert all(a == b for a, b in zip(before, after) if a != 0)
    assert 0 not in after
    counts = g.counts()
    assert counts[0] == 0 and abs(counts[1] - counts[2]) <= 1


def test_weighted_rebuild_keeps_live_shares():
    g = fp.GroupTester(select_group((3, 2, 1), watch=(1, 2, 3)))
    g.set_live({2, 3})
    c = g.counts()
    assert c[0] == 0 and sum(c) == SLOTS
    assert abs(c[1] - SLOTS * 2 / 3) < 1.5 and abs(c[2] - SLOTS / 3) < 1.5


def test_no_live_bucket():
    g = fp.GroupTester(select_group((1, 1), watch=(1, 2)), live_ports=set())
    assert g.table() == [] and g.select(key4(1, 2, 3, 4)) == -1
    g.set_live({2})
    assert g.counts() == [0, SLOTS] and g.select(key4(1, 2, 3, 4)) == 1


# ---------------------------------------------------------------- fast failover
def ff_group():
    return GroupSpec(7, OFPGT_FF, (
        Bucket(actions=(Output(1),), watch_port=1),
        Bucket(actions=(Output(2),), watch_port=2, watch_group=20),
        Bucket(actions=(Output(3),), watch_group=30)))


def test_ff_watch_port():
    g = fp.GroupTester(ff_group())
    assert g.ff({1, 2}) == 0
    assert g.ff({2}) == 1
    assert g.ff(set()) == 2          # watches only a group, which counts as live here


def test_ff_watch_group():
    g = fp.GroupTester(ff_group())
    assert g.ff({2}, live_groups={20, 30}) == 1
    assert g.ff({2}, live_groups={30}) == 2           # port live but its group dead
    assert g.ff({1}, live_groups=set()) == 0
    assert g.ff(set(), live_groups=set()) == -1


# ---------------------------------------------------------------- table
def test_group_table_add_modify_remove():
    t = fp.GroupTableTester()
    rng = random.Random(6)
    ids = rng.sample(range(1, 1 << 32), 500) + [0, 0xfffffffe]
    for gid in ids:
        assert t.add(GroupSpec(gid, OFPGT_ALL, (Bucket(actions=(Output(1),)),)))
    assert not t.add(GroupSpec(ids[0], OFPGT_ALL, ()))          # duplicate id
    assert t.ids() == sorted(ids)
    gid = ids[3]
    addr = t.address(gid)
    t.count_packet(gid, 0, 100)
    assert t.modify(select_group((1, 3), gid=gid))
    assert t.address(gid) == addr                                # same struct: ops stay valid
    d = t.describe(gid)
    assert (d["type"], d["weights"]) == (OFPGT_SELECT, [1, 3])
    assert d["stats"]["packet_count"] == 1 and d["stats"]["bucket_stats"] == [
        {"packet_count": 0, "byte_count": 0}] * 2                # bucket counters restart
    assert not t.modify(select_group((1,), gid=12345678))
    for gid in ids[:250]:
        assert t.remove(gid)
    assert not t.remove(ids[0])
    assert t.ids() == sorted(ids[250:]) and t.address(ids[0]) == 0
