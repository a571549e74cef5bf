"""datapath.bond: the bond control plane (BondController) and its bucket
assignment, with DummyPort members and warped time.

Two switches A and B, each a Datapath with a BondPort (port 1, n DummyPort
members) and a DummyPort host (port 2), flows 1->2 and 2->1, are wired back
to back member by member (Net below moves the frames each member sent to
its peer member).  Each side has its BondController; time is warped: every
step runs the engines (poll_once), the wires, the controllers' poll() and
tick() at a chosen `now`, never sleeping.
"""
import collections
import os
import random

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from datapath import bond as B
from datapath import lacpdu as P
from datapath.fastpath import BondPort, Datapath, DummyPort
from datapath.model import ApplyActions, FlowSpec, Match, Output

N = B.N_BUCKETS


# ---------------------------------------------------------------- frames
def frame(i, rev=False, size=0, src_mac=None):
    a, b = f"10.1.{i >> 8 & 0xff}.{i & 0xff}", f"10.2.{i >> 8 & 0xff}.{i & 0xff}"
    sm, dm = src_mac or "02:00:00:00:00:01", "02:00:00:00:00:02"
    sp, dp = 1000 + i, 2000 + (i * 7) % 5000
    if rev:
        a, b, sp, dp, sm, dm = b, a, dp, sp, dm, sm
    return bytes(Ether(src=sm, dst=dm) / IP(src=a, dst=b) / UDP(sport=sp, dport=dp)
                 / Raw(b"x" * (16 + size)))


FLOWS = [frame(i) for i in range(400)]
RFLOWS = [frame(i, rev=True) for i in range(400)]


# ---------------------------------------------------------------- harness
class Side:
    def __init__(self, tag, n, **kw):
        self.tag = tag
        self.members = [DummyPort(f"{tag}m{i}") for i in range(n)]
        self.bond = BondPort(f"{tag}bond", self.members)
        self.dp = Datapath(4)
        self.host = DummyPort(f"{tag}h")
        self.dp.attach_port(1, self.bond)
        self.dp.attach_port(2, self.host)
        for a, b in ((1, 2), (2, 1)):
            self.dp.flow_add(FlowSpec(priority=10, match=Match().set("in_port", a),
                                      instructions=(ApplyActions((Output(b),)),)))
        self.links = []
        s = B.BondSettings(f"{tag}bond", [m.name for m in self.members], **kw)
        self.ctl = B.BondController(s, self.bond, ofport=1, dp=self.dp, on_link=self._on_link,
                                    flush=self.dp.flush, now=0.0)

    def _on_link(self, up, why):
        self.dp.set_port_link(1, up)
        self.links.append(up)

    def dist(self):
        return [i for i in range(len(self.members)) if self.bond.member_flags(i)[1]]

    def coll(self):
        return [i for i in range(len(self.members)) if self.bond.member_flags(i)[0]]

    def tx_per_member(self):
        return [self.bond.member_stats(i)["tx_packets"] for i in range(len(self.members))]


class Net:
    """A and B wired member i <-> member i."""

    def __init__(self, n=2, a=None, b=None, up=True):
        self.now = 0.0
        self.A = Side("a", n, **(a or {}))
        self.B = Side("b", n, **(b or {}))
        self.sides = (self.A, self.B)
        self.up = [False] * n
        self.silent = set()          # (side tag, member): LACPDUs from it are dropped
        self.delivered = collections.Counter()   # (to side, member) -> frames
        if up:
            for i in range(n):
                self.set_link(i, True)

    def set_link(self, i, up):
        self.up[i] = up
        for s in self.sides:
            s.ctl.link(i, up, self.now)
        self.pump()

    def pump(self):
        for _ in range(1000):
            moved = 0
            for s in self.sides:
                s.dp.poll_once(0)
            for i in range(len(self.up)):
                for src, dst in ((self.A, self.B), (self.B, self.A)):
                    for f in src.members[i].take_tx():
                        if not self.up[i]:
                            continue
                        if f[12:14] == b"\x88\x09" and (src.tag, i) in self.silent:
                            continue
                        dst.members[i].inject(f)
                        self.delivered[(dst.tag, i)] += 1
                        moved += 1
            for s in self.sides:
                s.ctl.poll(self.now)
            if not moved and not any(m.rx_pending for s in self.sides for m in s.members) \
                    and not any(s.host.rx_pending for s in self.sides):
                return
        raise AssertionError("frames never settle")

    def run(self, seconds, step=0.25):
        end = self.now + seconds
        while self.now < end:
            ds = [d for s in self.sides for d in (s.ctl.next_deadline(),) if d is not None]
            nxt = min([end, self.now + step] + [d for d in ds if d > self.now])
            self.now = nxt
            for s in self.sides:
                s.ctl.tick(self.now)
            self.pump()

    def send(self, frames, src=None):
        """Frames into src's host port; returns what came out of the other host."""
        src = src or self.A
        dst = self.B if src is self.A else self.A
        for f in frames:
            src.host.inject(f)
        self.pump()
        return dst.host.take_tx()


def negotiated(n=2, **kw):
    lacp = dict(lacp="active", lacp_time="fast", mode="balance-l4")
    lacp.update(kw)
    net = Net(n, a=dict(lacp), b=dict(lacp))
    net.run(5)
    return net


# ---------------------------------------------------------------- pure bucket functions
def counts(table, members):
    c = collections.Counter(table)
    return [c[m] for m in members]


def test_spread_is_even():
    for n in range(1, 17):
        t = B.spread_buckets(list(range(n)))
        c = counts(t, range(n))
        assert max(c) - min(c) <= 1 and sum(c) == N
    assert B.spread_buckets([]) == [-1] * N


def test_assign_initial_and_leave_moves_only_the_leavers_buckets():
    home = B.spread_buckets([0, 1, 2])
    t = B.assign_buckets([-1] * N, [0, 1, 2], home)
    assert t == home
    t2 = B.assign_buckets(t, [0, 2], home)
    for b in range(N):
        if t[b] != 1:
            assert t2[b] == t[b], "a bucket of a surviving member moved"
        else:
            assert t2[b] in (0, 2)
    c = counts(t2, [0, 2])
    assert abs(c[0] - c[1]) <= 1
    # the member returns: it gets exactly its old buckets back
    t3 = B.assign_buckets(t2, [0, 1, 2], home)
    assert t3 == t


def test_assign_join_moves_the_fewest_buckets():
    rnd = random.Random(7)
    for _ in range(200):
        n = rnd.randint(1, 8)
        members = list(range(n))
        up = sorted(rnd.sample(members, rnd.randint(1, n)))
        home = B.spread_buckets(members)
        load = [rnd.randint(0, 1000) for _ in range(N)]
        t = B.assign_buckets([-1] * N, up, home, load)
        assert set(t) == set(up)
        c = counts(t, up)
        assert max(c) - min(c) <= 1
        new = rnd.choice([m for m in members if m not in up] or [None])
        if new is None:
            continue
        up2 = sorted(up + [new])
        t2 = B.assign_buckets(t, up2, home, load)
        moved = sum(1 for b in range(N) if t[b] != t2[b])
        c2 = counts(t2, up2)
        assert max(c2) - min(c2) <= 1
        assert moved == c2[up2.index(new)], "only the newcomer's share moved"
        assert all(t2[b] in (t[b], new) for b in range(N))


def test_assign_random_sequences_keep_invariants():
    rnd = random.Random(1)
    members = list(range(5))
    home = B.spread_buckets(members)
    t = [-1] * N
    up = []
    for _ in range(500):
        m = rnd.choice(members)
        old_up = list(up)
        up = sorted(set(up) ^ {m})
        load = [rnd.randint(0, 100) for _ in range(N)]
        t2 = B.assign_buckets(t, up, home, load)
        if not up:
            assert t2 == [-1] * N
        else:
            assert set(t2) <= set(up) and -1 not in t2
        if len(up) < len(old_up):       # a member left: nothing else moved
            assert all(t2[b] == t[b] for b in range(N) if t[b] != m)
        t = t2


def test_rebalance_moves_load_from_heavy_to_light():
    table = B.spread_buckets([0, 1])
    load = [0] * N
    for b in range(0, N, 2):              # member 0's buckets carry everything
        load[b] = 10_000 + b
    new, moves = B.rebalance_buckets(table, [0, 1], load)
    assert moves
    l0 = sum(load[b] for b in range(N) if new[b] == 0)
    l1 = sum(load[b] for b in range(N) if new[b] == 1)
    assert abs(l0 - l1) <= max(B.REBALANCE_MIN_BYTES, min(l0, l1) >> 5) + max(load)
    assert all(f == 0 and t == 1 and table[b] == 0 for b, f, t in moves)
    # balanced already, or a gap below the threshold: nothing moves
    assert B.rebalance_buckets(new, [0, 1], load)[1] == []
    small = [100 if b % 2 == 0 else 0 for b in range(N)]
    assert B.rebalance_buckets(table, [0, 1], small)[1] == []
    # one member alone or no load: nothing to do
    assert B.rebalance_buckets(table, [0], load)[1] == []
    assert B.rebalance_buckets(table, [0, 1], [0] * N)[1] == []


def test_rebalance_never_moves_a_single_overloaded_bucket_back_and_forth():
    table = B.spread_buckets([0, 1])
    load = [0] * N
    load[0] = 10_000_000                 # one elephant: moving it just moves the gap
    new, moves = B.rebalance_buckets(table, [0, 1], load)
    assert moves == []


# ---------------------------------------------------------------- settings
@pytest.mark.parametrize("kw, msg", [
    (dict(members=[]), "no members"),
    (dict(members=["x", "x"]), "given twice"),
    (dict(mode="round-robin"), "bond mode"),
    (dict(lacp="on"), "lacp must be"),
    (dict(lacp_time="medium"), "lacp-time"),
    (dict(system_priority=70000), "system priority"),
    (dict(key=0), "key"),
    (dict(system_id="01:00:00:00:00:01"), "unicast"),
    (dict(system_id="zz"), "system id"),
    (dict(rebalance_interval=-1), "rebalance"),
    (dict(members=[B.MemberSettings("x", port_priority=-1)]), "port priority"),
    (dict(members=[B.MemberSettings("x", port_id=3), B.MemberSettings("y", port_id=3)]),
     "used twice"),
    (dict(members=[f"m{i}" for i in range(17)]), "at most 16"),
])
def test_settings_errors(kw, msg):
    args = dict(name="bond0", members=["m0", "m1"])
    args.update(kw)
    with pytest.raises(B.BondError, match=msg):
        B.BondSettings(**args).validate()


def test_settings_normalise():
    s = B.BondSettings("bond0", ["a", "b"], mode="Balance-TCP",
                       system_id="02-00-00-00-00-AA").validate()
    assert s.mode == "balance-l4" and s.system_id == "02:00:00:00:00:aa"
    assert s.members[0] == B.MemberSettings("a")
    with pytest.raises(B.BondError, match="bad bond name"):
        B.BondSettings("a very long bond name", ["a"]).validate()


# ---------------------------------------------------------------- LACP negotiation
def test_starts_down_with_nothing_distributing():
    net = Net(2, a=dict(lacp="active"), b=dict(lacp="active"), up=False)
    for s in net.sides:
        assert s.dist() == [] and s.coll() == []
        assert s.bond.buckets() == [-1] * N
        assert s.links == [False] and not s.dp.port_link(1)


@pytest.mark.parametrize("n", [2, 3])
def test_negotiate_and_distribute(n):
    net = negotiated(n)
    for s in net.sides:
        st = s.ctl.status(net.now)
        assert st["lacp_status"] == "negotiated"
        assert s.dist() == list(range(n)) and s.coll() == list(range(n))
        c = s.ctl.bucket_counts()
        assert sum(c) == N and max(c) - min(c) <= 1
        assert s.bond.buckets() == s.ctl.table
        assert s.links[-1] is True and s.dp.port_link(1)
        ls = s.ctl.lacp_status()
        assert ls["status"] == "negotiated"
        for m in ls["members"]:
            assert m["mux"] == "COLLECTING_DISTRIBUTING"
            assert {"synchronized", "collecting", "distributing"} <= set(m["partner"]["state_names"])
    # each side's partner is the other's system
    assert net.A.ctl.lacp_status()["partner"]["system"] == net.B.ctl.lacp_status()["system"]
    # traffic of many flows in both directions: nothing lost, every member carries some
    before = net.A.tx_per_member()
    out = net.send(FLOWS)
    assert sorted(out) == sorted(FLOWS)
    back = net.send(RFLOWS, src=net.B)
    assert sorted(back) == sorted(RFLOWS)
    spread = [x - y for x, y in zip(net.A.tx_per_member(), before)]
    assert all(x > len(FLOWS) // (3 * n) for x in spread), spread
    assert all(x > 0 for x in net.B.tx_per_member())


def test_lacpdus_never_reach_the_hosts_and_bad_ones_are_counted():
    net = negotiated(2)
    net.pump()
    assert net.B.host.take_tx() == [] and net.A.host.take_tx() == []
    bad = P.frame(b"\x02\x00\x00\x00\x00\x99", bytes([1, 1]) + b"\x07" * 20)   # truncated
    net.A.members[0].inject(bad)
    net.pump()
    st = net.A.ctl.status(net.now)
    assert st["lacp_counters"]["rx_errors"] == 1 and st["lacp_errors"]["truncated"] == 1
    assert net.B.host.take_tx() == [] and net.A.host.take_tx() == []
    assert net.A.dist() == [0, 1]


def test_passive_passive_never_aggregates_active_passive_does():
    net = Net(2, a=dict(lacp="passive", lacp_time="fast"), b=dict(lacp="passive", lacp_time="fast"))
    net.run(10)
    for s in net.sides:
        assert s.dist() == [] and not s.dp.port_link(1)
        assert s.ctl.status(net.now)["lacp_status"] == "configured"
    assert net.delivered == collections.Counter()
    net = Net(2, a=dict(lacp="active", lacp_time="fast", mode="balance-l4"),
              b=dict(lacp="passive", lacp_time="fast", mode="balance-l4"))
    net.run(5)
    for s in net.sides:
        assert s.dist() == [0, 1]


# ---------------------------------------------------------------- member loss and return
def test_member_link_down_moves_only_its_buckets_and_back():
    net = negotiated(3)
    a = net.A.ctl
    before = list(a.table)
    net.set_link(1, False)                       # both ends see the carrier go
    assert net.A.dist() == [0, 2] and net.B.dist() == [0, 2]
    after = net.A.bond.buckets()
    for b in range(N):
        if before[b] != 1:
            assert after[b] == before[b], "a flow of a surviving member moved"
        else:
            assert after[b] in (0, 2)
    c = a.bucket_counts()
    assert c[1] == 0 and abs(c[0] - c[2]) <= 1
    assert net.A.dp.port_link(1), "the bond stays up"
    # no loss after the failover, nothing on the lost member
    tx1 = net.A.tx_per_member()[1]
    out = net.send(FLOWS)
    assert sorted(out) == sorted(FLOWS)
    assert net.A.tx_per_member()[1] == tx1
    # the member comes back: after negotiation it takes back its own buckets
    net.set_link(1, True)
    net.run(4)
    assert net.A.dist() == [0, 1, 2]
    assert net.A.bond.buckets() == before
    tx1 = net.A.tx_per_member()[1]
    assert sorted(net.send(FLOWS)) == sorted(FLOWS)
    assert net.A.tx_per_member()[1] > tx1
    log = "\n".join(a.events)
    assert "link down" in log and "disabled" in log


def test_all_members_down_takes_the_bond_down_and_reports_it():
    net = negotiated(2)
    n_links = len(net.A.links)
    net.set_link(0, False)
    net.set_link(1, False)
    assert net.A.links[n_links:] == [False]
    assert not net.A.dp.port_link(1)
    assert net.A.bond.buckets() == [-1] * N
    tx = net.A.tx_per_member()
    assert net.send(FLOWS[:10]) == []
    assert net.A.tx_per_member() == tx
    net.set_link(0, True)
    net.run(4)
    assert net.A.links[-1] is True and net.A.dist() == [0]
    assert set(net.A.bond.buckets()) == {0}


def test_silent_partner_detected_by_fast_lacp():
    net = negotiated(2)
    net.silent.add(("b", 0))                     # B stops sending LACPDUs on member 0
    t0 = net.now
    net.run(2.5, step=0.1)
    assert 0 in net.A.dist(), "gone before 3 s of silence"
    net.run(1.0, step=0.1)
    assert net.A.dist() == [1]
    assert net.now - t0 <= 3.5
    assert set(net.A.bond.buckets()) == {1}
    # A's member 0 defaults 3 s later and detaches (out of sync): B hears it and stops too
    net.run(4.0)
    assert net.B.dist() == [1]
    assert sorted(net.send(FLOWS[:50])) == sorted(FLOWS[:50])
    net.silent.clear()
    net.run(5)
    assert net.A.dist() == [0, 1] and net.B.dist() == [0, 1]


def test_frames_on_a_non_collecting_member_are_dropped():
    net = negotiated(2)
    net.silent.add(("b", 0))
    net.run(4)
    assert net.A.coll() == [1]
    # B still distributes on member 0 for a moment in reality; force a frame there
    net.A.members[0].inject(RFLOWS[0])
    net.pump()
    assert net.A.host.take_tx() == []
    assert net.A.bond.member_stats(0)["not_collecting_dropped"] >= 1


# ---------------------------------------------------------------- static modes
def test_static_balance_follows_links():
    net = Net(3, a=dict(mode="balance-l4"), b=dict(mode="balance-l4"))
    for s in net.sides:
        assert s.dist() == [0, 1, 2] and s.coll() == [0, 1, 2]
        assert s.ctl.status(0)["lacp_status"] == "off"
    assert sorted(net.send(FLOWS)) == sorted(FLOWS)
    net.set_link(2, False)
    assert net.A.dist() == [0, 1]
    assert sorted(net.send(FLOWS)) == sorted(FLOWS)
    assert net.delivered[("b", 0)] and net.delivered[("b", 1)]


def test_active_backup_static_failover_without_preemption():
    net = Net(3, a=dict(mode="active-backup"), b=dict(mode="active-backup"))
    a = net.A
    assert a.dist() == [0] and a.coll() == [0]
    assert set(a.bond.buckets()) == {0}
    assert a.ctl.status(0)["active_member"] == "am0"
    assert sorted(net.send(FLOWS[:50])) == sorted(FLOWS[:50])
    assert a.tx_per_member()[1:] == [0, 0]
    # a frame arriving on a backup is dropped (as OVS and Linux bonding)
    a.members[1].inject(RFLOWS[0])
    net.pump()
    assert a.host.take_tx() == []
    net.set_link(0, False)
    assert a.dist() == [1] and set(a.bond.buckets()) == {1}
    assert a.ctl.counters["failovers"] == 1
    assert sorted(net.send(FLOWS[:50])) == sorted(FLOWS[:50])
    net.set_link(0, True)
    assert a.dist() == [1], "no preemption"
    net.set_link(1, False)
    assert a.dist() == [2], "the next after the failed one"
    net.set_link(2, False)
    assert a.dist() == [0]
    assert a.links == [False, True]


def test_active_backup_over_lacp_collects_on_all_transmits_on_one():
    net = negotiated(2, mode="active-backup")
    for s in net.sides:
        assert s.dist() == [0] and s.coll() == [0, 1]
        assert set(s.bond.buckets()) == {0}
    net.set_link(0, False)
    assert net.A.dist() == [1]


# ---------------------------------------------------------------- fallback
def test_fallback_to_active_backup_without_partner():
    net = Net(2, a=dict(lacp="active", lacp_time="fast", mode="balance-l4", fallback=True),
              b=dict(mode="balance-l4"))            # B speaks no LACP
    net.run(2)
    assert net.A.dist() == [], "no fallback before the partner timed out"
    net.run(3)
    a = net.A
    assert a.dist() == [0] and a.coll() == [0]
    st = a.ctl.status(net.now)
    assert st["fallback_active"] and st["lacp_status"] == "configured"
    assert a.dp.port_link(1) and set(a.bond.buckets()) == {0}
    assert sorted(net.send(FLOWS[:30])) == sorted(FLOWS[:30])
    net.set_link(0, False)
    assert a.dist() == [1]
    # without fallback: nothing distributes
    net2 = Net(2, a=dict(lacp="active", lacp_time="fast"), b=dict())
    net2.run(6)
    assert net2.A.dist() == [] and not net2.A.dp.port_link(1)


def test_fallback_ends_when_a_partner_appears():
    net = Net(2, a=dict(lacp="active", lacp_time="fast", mode="balance-l4", fallback=True),
              b=dict(lacp="active", lacp_time="fast", mode="balance-l4"))
    net.silent.add(("b", 0))
    net.silent.add(("b", 1))
    net.run(8)                      # the PDUs heard before the silence expire, then default
    assert net.A.ctl.status(net.now)["fallback_active"]
    net.silent.clear()
    net.run(5)
    assert not net.A.ctl.status(net.now)["fallback_active"]
    assert net.A.dist() == [0, 1] and net.B.dist() == [0, 1]


# ---------------------------------------------------------------- SLB rebalancing
def test_slb_rebalance_by_measured_load():
    net = Net(2, a=dict(mode="balance-slb", rebalance_interval=10),
              b=dict(mode="balance-slb", rebalance_interval=10))
    a = net.A
    # source MACs whose buckets all sit on member 0
    heavy = []
    for i in range(2000):
        f = frame(i, size=400, src_mac="02:10:%02x:%02x:00:01" % (i >> 8, i & 0xff))
        if a.ctl.table[a.bond.hash_frame(f) & 0xff] == 0:
            heavy.append(f)
        if len(heavy) == 64:
            break
    net.run(1)
    for _ in range(20):
        assert sorted(net.send(heavy)) == sorted(heavy)
    before = list(a.ctl.table)
    net.run(10)                                   # the rebalance interval passes
    assert a.ctl.counters["rebalance_moves"] > 0
    moved = [b for b in range(N) if a.ctl.table[b] != before[b]]
    assert moved and all(before[b] == 0 and a.ctl.table[b] == 1 for b in moved)
    assert a.bond.buckets() == a.ctl.table
    assert "rebalance" in "\n".join(a.ctl.events)
    tx = a.tx_per_member()
    for _ in range(20):
        assert sorted(net.send(heavy)) == sorted(heavy)
    d = [x - y for x, y in zip(a.tx_per_member(), tx)]
    assert d[1] > 0.25 * sum(d), d
    st = a.ctl.status(net.now)
    assert st["load_interval"] and sum(m["load_bytes"] for m in st["members"]) > 0


def test_no_rebalance_in_active_backup_or_when_disabled():
    net = Net(2, a=dict(mode="balance-l4", rebalance_interval=0), b=dict(mode="balance-l4"))
    assert net.A.ctl.next_rebalance is None
    net.run(30)
    assert net.A.ctl.counters["rebalances"] == 0


# ---------------------------------------------------------------- views
def test_status_shapes():
    net = negotiated(2)
    st = net.A.ctl.status(net.now)
    for k in ("name", "ofport", "mode", "hash", "lacp", "lacp_status", "link_up", "members",
              "counters", "lacp_counters", "next_rebalance_ms", "distributing"):
        assert k in st
    assert st["mode"] == "balance-l4" and st["hash"] == "l4" and st["ofport"] == 1
    m = st["members"][0]
    for k in ("name", "link_up", "enabled", "collecting", "distributing", "buckets", "load_bytes",
              "rx_packets", "tx_packets", "lacp"):
        assert k in m
    assert st["lacp_counters"]["lacpdus_rx"] > 0 and st["lacp_counters"]["lacpdus_tx"] > 0
    ls = net.A.ctl.lacp_status()
    assert ls["members"][0]["name"] == "am0" and ls["distributing"] == ["am0", "am1"]
    assert ls["key"] == 1 and ls["system"] == P.mac_str(net.A.bond.hw_addr)


def test_link_by_name_and_unknown_member():
    net = Net(2, up=False)
    net.A.ctl.link("am1", True, 0)
    assert net.A.dist() == [1]
    with pytest.raises(B.BondError, match="no member"):
        net.A.ctl.link("nope", True, 0)


def test_settings_must_match_the_port():
    ms = [DummyPort("xm0"), DummyPort("xm1")]
    bp = BondPort("x", ms)
    with pytest.raises(B.BondError, match="members configured"):
        B.BondController(B.BondSettings("x", ["xm0"]), bp)


def test_asyncio_glue_runs_lacp_by_itself():
    import asyncio

    async def main():
        loop = asyncio.get_running_loop()
        net = Net(2, a=dict(lacp="active", lacp_time="fast", mode="balance-l4"),
                  b=dict(lacp="active", lacp_time="fast", mode="balance-l4"), up=False)
        for s in net.sides:
            s.ctl._now = 0.0
            s.ctl.attach(loop)
        net.now = loop.time()
        for i in range(2):
            net.up[i] = True
            for s in net.sides:
                s.ctl.link_event(i, True)
        # the wires are ours to pump; the controllers' timers run themselves
        deadline = loop.time() + 10
        while loop.time() < deadline and not (net.A.dist() == [0, 1] and net.B.dist() == [0, 1]):
            net.now = loop.time()
            net.pump()
            await asyncio.sleep(0.05)
        for s in net.sides:
            s.ctl.detach()
        return net

    net = asyncio.run(main())
    assert net.A.dist() == [0, 1] and net.B.dist() == [0, 1]


# ---------------------------------------------------------------- the daemon's wiring
def _dummy_fastpath():
    import types

    from datapath import fastpath as F
    return types.SimpleNamespace(Datapath=F.Datapath, AfPacketPort=F.DummyPort,
                                 TapPort=lambda name, create=True: F.DummyPort(name),
                                 BondPort=F.BondPort, FlowError=F.FlowError)


def test_daemon_bond_is_one_port_with_port_status(tmp_path, monkeypatch):
    """`vdp run --port p1 --bond b0=m0,m1 --bond-mode balance-l4` over
    DummyPorts: the bond is OpenFlow port 2 (one port_desc, stats of its
    members), member links move its buckets, and its link going up/down
    sends PORT_STATUS through the agent."""
    import struct

    from os_ken.ofproto import ofproto_v1_3 as ofp
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    from datapath import daemon
    from datapath.config import load_config
    from datapath.ofp import agent as A
    from datapath import ofp as O

    monkeypatch.setenv("VDP_RUN_DIR", str(tmp_path / "run"))
    cfg = load_config(None, {"ports": ["p1", {"type": "bond", "name": "b0",
                                               "members": ["m0", "m1"]}],
                             "bond_mode": "balance-l4", "fail_mode": "secure",
                             "ctl": str(tmp_path / "d.ctl")})
    d = daemon.Daemon(cfg, fastpath=_dummy_fastpath(), netlink=False)
    try:
        d.setup()
        assert sorted(os.listdir(tmp_path / "run")) == ["port-m0.lock", "port-m1.lock",
                                                        "port-p1.lock"]
        assert [(n, p.name) for n, p in sorted(d.dp.ports().items())] == [(1, "p1"), (2, "b0")]
        ctrl = d.state.bonds["b0"]
        assert ctrl.ofport == 2 and ctrl.lacp.key == 2       # key defaults to the port number
        assert not d.dp.port_link(2), "down until a member is up"
        d.agent = A.Agent(d.dp, dpid=1, name="t", fail_mode="secure")
        wire = []
        s = d.agent.open_session(wire.append, lambda: None, name="peer")
        s.data_received(O.encode(O.Hello(1, frozenset({4}))))
        assert s.ready
        wire.clear()

        def port_status():
            out = []
            for raw in wire:
                v, t, n, x = struct.unpack_from("!BBHI", raw)
                if t == ofp.OFPT_PORT_STATUS:
                    m = parser.msg_parser(None, v, t, n, x, raw)
                    out.append((m.desc.port_no, m.desc.name.decode(), m.desc.state))
            wire.clear()
            return out

        keys = sorted(d._member_keys, reverse=True)              # -1 -> m0, -2 -> m1
        d._link_changed(keys[0], True, "up")
        assert d.dp.port_link(2)
        assert port_status() == [(2, "b0", ofp.OFPPS_LIVE)]
        assert set(d.dp.ports()[2].buckets()) == {0}
        d._link_changed(keys[1], True, "up")
        assert port_status() == []                               # still up: no news
        assert ctrl.bucket_counts() == [128, 128]
        d._link_changed(keys[0], False, "no carrier")
        assert ctrl.bucket_counts() == [0, 256] and d.dp.port_link(2)
        d._link_changed(keys[1], False, "admin down")
        assert port_status() == [(2, "b0", ofp.OFPPS_LINK_DOWN)]
        assert d.state.link_up[2] is False
        # one port_desc for the bond, none for its members
        descs = [d.agent.port_desc(n) for n in sorted(d.dp.ports())]
        assert [(x.port_no, x.name) for x in descs] == [(1, "p1"), (2, "b0")]
        # ctl sees it
        from datapath import ctl as ctlmod
        cmds = ctlmod.Commands(d.dp, d.state)
        st = cmds.execute("bond/show", {"bond": "b0"}, True)[0]
        assert st["link_up"] is False and [m["link"] for m in st["members"]] == [
            "no carrier", "admin down"]
    finally:
        d.teardown()
    assert os.listdir(tmp_path / "run") == []


def test_daemon_refuses_bonds_without_fast_path_support(tmp_path, monkeypatch):
    import types

    from datapath import daemon
    from datapath import fastpath as F
    from datapath.config import load_config
    monkeypatch.setenv("VDP_RUN_DIR", str(tmp_path / "run"))
    cfg = load_config(None, {"ports": [{"type": "bond", "name": "b0", "members": ["m0"]}],
                             "ctl": str(tmp_path / "d.ctl")})
    fp = types.SimpleNamespace(Datapath=F.Datapath, AfPacketPort=F.DummyPort)
    d = daemon.Daemon(cfg, fastpath=fp, netlink=False)
    try:
        with pytest.raises(daemon.DaemonError, match="bond b0: this fast path has no bonds"):
            d.setup()
    finally:
        d.teardown()


def test_member_looped_back_to_its_own_bond_never_aggregates():
    """Members 0 and 1 of one bond cabled to each other: LACPDUs carry our
    own system id, the members are flagged looped and nothing distributes."""
    s = Side("l", 2, lacp="active", lacp_time="fast", mode="balance-l4")
    now = 0.0
    for i in range(2):
        s.ctl.link(i, True, now)

    def pump():
        for _ in range(100):
            s.dp.poll_once(0)
            a, b = s.members[0].take_tx(), s.members[1].take_tx()
            for f in a:
                s.members[1].inject(f)
            for f in b:
                s.members[0].inject(f)
            s.ctl.poll(now)
            if not a and not b:
                return
    while now < 8:
        now += 0.25
        s.ctl.tick(now)
        pump()
    assert s.dist() == [] and not s.dp.port_link(1)
    ls = s.ctl.lacp_status()
    assert all(m["looped"] for m in ls["members"])
    assert ls["counters"]["loopback"] > 0
    assert "loopback detected" in "\n".join(s.ctl.events)
