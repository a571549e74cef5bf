"""The VRRP state machine (controller/vrrp/logic.py) on a simulated segment.

Warped time: the simulator jumps from one deadline to the next and delivers
every frame a router sends to every other router on the segment at the
same instant, so all timings below are exact (no sleeping, no clock).
"""
import ipaddress
import struct

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from controller.vrrp import packet as pk
from controller.vrrp.logic import BACKUP, INITIALIZE, MASTER, RouterSet, VirtualRouter

VIP = "10.0.0.254"


class Segment:
    """Routers (each in its own RouterSet, as the adapter would have them)
    on one broadcast segment."""

    def __init__(self):
        self.nodes = {}           # name -> RouterSet
        self.now = 0.0
        self.transitions = []     # (name, Transition)
        self.sent = []            # (time, name, frame)
        self.flows = []           # (name, FlowChange)
        self.cut = set()          # names whose link is down (send/receive nothing)

    def add(self, name, *args, **kw):
        rs = RouterSet()
        r = rs.add(VirtualRouter(*args, **kw))
        self.nodes[name] = rs
        return r

    def r(self, name, vrid=None, family=None):
        rs = self.nodes[name]
        if vrid is None:
            return next(iter(rs.routers.values()))
        return rs.get(vrid, family)

    def apply(self, name, acts):
        self.transitions += [(name, t) for t in acts.transitions]
        self.flows += [(name, f) for f in acts.flows]
        if name in self.cut:
            return
        for f in acts.frames:
            self.sent.append((self.now, name, f))
            for other, rs in list(self.nodes.items()):
                if other != name and other not in self.cut:
                    self.apply(other, rs.rx_frame(f, self.now))

    def start(self, name, at=None):
        self.run_until(self.now if at is None else at)
        self.apply(name, self.nodes[name].start(self.now))

    def call(self, name, fn):
        """Run fn(router, now) on a node now and deliver what it returns."""
        self.apply(name, fn(self.r(name), self.now))

    def run_until(self, t):
        while True:
            ds = [(rs.next_deadline(), n) for n, rs in self.nodes.items()
                  if rs.next_deadline() is not None]
            if not ds or min(ds)[0] > t:
                break
            self.now = max(self.now, min(ds)[0])
            # every timer due at this instant fires before any frame is
            # delivered: simultaneous expiries really are simultaneous
            due = [(n, rs.tick(self.now)) for n, rs in list(self.nodes.items())
                   if rs.next_deadline() is not None and rs.next_deadline() <= self.now]
            for n, acts in due:
                self.apply(n, acts)
        self.now = max(self.now, t)

    def states(self):
        return {n: self.r(n).state for n in self.nodes}

    def masters(self):
        return sorted(n for n, s in self.states().items() if s == MASTER)

    def became(self, name, state):
        return [t.at for n, t in self.transitions if n == name and t.new == state]

    def adverts(self, name, after=-1.0):
        out = []
        for t, n, f in self.sent:
            if n == name and t > after:
                try:
                    out.append((t, pk.decode_frame(f)))
                except (pk.NotVrrp, pk.VrrpError):
                    pass
        return out


def v3(prio, ip, **kw):
    kw.setdefault("interval", 1.0)
    return (kw.pop("vrid", 1), 3, 4, prio, kw.pop("vips", [VIP]), ip), kw


def add3(seg, name, prio, ip, **kw):
    args, kw = v3(prio, ip, **kw)
    return seg.add(name, *args, **kw)


def mdi_v3(prio, interval_s):
    us = round(interval_s * 1e6)
    return (3 * us + ((256 - prio) * us) // 256) / 1e6


def mdi_v2(prio, interval_s):
    return (3 * interval_s * 1_000_000 + ((256 - prio) * 1_000_000) // 256) / 1e6


# ----------------------------------------------------------------- election

def test_two_routers_elect_the_higher_priority():
    seg = Segment()
    add3(seg, "a", 100, "10.0.0.1")
    add3(seg, "b", 200, "10.0.0.2")
    seg.start("a")
    seg.start("b")
    assert seg.states() == {"a": BACKUP, "b": BACKUP}
    seg.run_until(30)
    assert seg.masters() == ["b"]
    # b took over at its own master down interval; a never did
    assert seg.became("b", MASTER) == [mdi_v3(200, 1.0)] == [3.21875]
    assert seg.became("a", MASTER) == []
    a = seg.r("a").status()
    assert a["master"] == "10.0.0.2" and a["master_priority"] == 200
    assert seg.r("b").status()["master"] == "10.0.0.2"
    # the master advertises every interval
    times = [t for t, _ in seg.adverts("b")]
    assert times[:3] == [3.21875, 4.21875, 5.21875]


def test_three_routers_elect_the_highest():
    seg = Segment()
    for n, p, ip in (("a", 50, "10.0.0.1"), ("b", 150, "10.0.0.2"), ("c", 120, "10.0.0.3")):
        add3(seg, n, p, ip)
        seg.start(n)
    seg.run_until(20)
    assert seg.masters() == ["b"]
    assert seg.states() == {"a": BACKUP, "b": MASTER, "c": BACKUP}
    assert sum(len(seg.became(n, MASTER)) for n in "ac") == 0


def test_higher_priority_started_later_preempts():
    seg = Segment()
    add3(seg, "a", 100, "10.0.0.1")
    add3(seg, "b", 200, "10.0.0.2")
    seg.start("a")
    seg.run_until(10)
    assert seg.masters() == ["a"]
    seg.start("b", at=10.5)
    seg.run_until(30)
    assert seg.masters() == ["b"]
    # b discards a's lower adverts, so its master down timer (from its start) expires
    assert seg.became("b", MASTER) == [10.5 + mdi_v3(200, 1.0)]
    assert seg.became("a", BACKUP)[-1] == 10.5 + mdi_v3(200, 1.0)
    assert seg.r("b").counters["rx_lower_priority_discarded"] >= 3


def test_owner_always_wins_and_preempts_at_once():
    seg = Segment()
    add3(seg, "b", 254, "10.0.0.2", preempt=False)
    add3(seg, "o", 255, VIP, preempt=False)     # address owner; preempt flag does not matter
    seg.start("b")
    seg.run_until(10)
    assert seg.masters() == ["b"]
    seg.start("o", at=12.25)
    # the owner goes straight to Master at startup (RFC 5798 6.4.1)
    assert seg.became("o", MASTER) == [12.25]
    assert seg.masters() == ["o"]
    assert seg.became("b", BACKUP)[-1] == 12.25
    seg.run_until(40)
    assert seg.masters() == ["o"]
    st = seg.r("o").status()
    assert st["owner"] and st["effective_priority"] == 255
    # the owner's flows accept traffic for the VIP even without accept mode
    inst = [f for n, f in seg.flows if n == "o" and f.op == "install"]
    assert inst and inst[0].accept


def test_preempt_off_keeps_the_current_master():
    seg = Segment()
    add3(seg, "a", 100, "10.0.0.1")
    add3(seg, "b", 200, "10.0.0.2", preempt=False)
    seg.start("a")
    seg.run_until(10)
    seg.start("b")
    seg.run_until(60)
    assert seg.masters() == ["a"]
    assert seg.became("b", MASTER) == []
    assert seg.r("b").status()["master"] == "10.0.0.1"
    # but when the master goes away, b takes over
    seg.cut.add("a")
    last = seg.adverts("a")[-1][0]
    seg.run_until(70)
    assert seg.became("b", MASTER) == [last + mdi_v3(200, 1.0)]


def test_preempt_delay_is_honoured():
    seg = Segment()
    add3(seg, "a", 100, "10.0.0.1")
    add3(seg, "b", 200, "10.0.0.2", preempt_delay=5)
    seg.start("a")
    seg.run_until(10)
    seg.start("b", at=10.5)
    seg.run_until(40)
    assert seg.masters() == ["b"]
    a_adverts = [t for t, a in seg.adverts("a") if t > 10.5]
    first = a_adverts[0]                       # the first lower advert b saw: delay starts
    honoured = [t for t in a_adverts if t < first + 5]
    (took_over,) = seg.became("b", MASTER)
    assert took_over >= first + 5
    # b kept restarting its master down timer until the delay ran out
    assert took_over == honoured[-1] + mdi_v3(200, 1.0)
    # without the delay it would have been 10.5 + MDI
    assert took_over > 10.5 + mdi_v3(200, 1.0)


# ------------------------------------------------------------------ timing

def test_master_down_interval_exact_v3_centiseconds():
    for interval, prio in ((1.0, 100), (0.1, 200), (0.37, 1), (40.95, 254)):
        seg = Segment()
        add3(seg, "a", prio, "10.0.0.1", interval=interval)
        seg.start("a", at=2.0)
        r = seg.r("a")
        expect = 2.0 + mdi_v3(prio, interval)
        assert r.next_deadline() == expect
        assert r.skew_time == ((256 - prio) * round(interval * 1e6) // 256) / 1e6
        seg.run_until(expect - 1e-6)
        assert r.state == BACKUP
        seg.run_until(expect)
        assert r.state == MASTER and seg.became("a", MASTER) == [expect]
    assert mdi_v3(100, 1.0) == 3.609375


def test_master_down_interval_exact_v2_seconds():
    # v2: Skew_Time = (256 - Priority) / 256 s, independent of the interval
    seg = Segment()
    seg.add("a", 1, 2, 4, 100, [VIP], "10.0.0.1", 2.0)
    seg.start("a", at=1.0)
    r = seg.r("a")
    assert r.skew_time == 0.609375 and r.master_down_interval == 6.609375 == mdi_v2(100, 2)
    seg.run_until(7.609374)
    assert r.state == BACKUP
    seg.run_until(7.609375)
    assert r.state == MASTER
    with pytest.raises(ValueError):
        VirtualRouter(1, 2, 4, 100, [VIP], "10.0.0.1", 0.5)     # v2 intervals are whole seconds
    with pytest.raises(ValueError):
        VirtualRouter(1, 3, 4, 100, [VIP], "10.0.0.1", 0.005)   # v3: centiseconds


def test_master_failure_takeover_exact():
    seg = Segment()
    add3(seg, "a", 200, "10.0.0.1", interval=0.1)
    add3(seg, "b", 100, "10.0.0.2", interval=0.1)
    seg.start("a")
    seg.start("b")
    seg.run_until(5)
    assert seg.masters() == ["a"]
    seg.cut.add("a")                     # a dies silently
    last = seg.adverts("a")[-1][0]
    seg.run_until(10)
    assert seg.became("b", MASTER) == [last + mdi_v3(100, 0.1)]


def test_v3_backup_learns_the_masters_interval():
    seg = Segment()
    add3(seg, "a", 200, "10.0.0.1", interval=0.5)
    add3(seg, "b", 100, "10.0.0.2", interval=2.0)
    seg.start("a")
    seg.start("b")
    seg.run_until(10)
    b = seg.r("b")
    assert b.state == BACKUP
    assert b.status()["master_interval"] == 0.5 and b.status()["interval"] == 2.0
    assert b.master_down_interval == mdi_v3(100, 0.5)
    seg.cut.add("a")
    last = seg.adverts("a")[-1][0]
    seg.run_until(20)
    assert seg.became("b", MASTER) == [last + mdi_v3(100, 0.5)]
    # as Master it advertises its own interval
    assert {a.interval for _, a in seg.adverts("b")} == {200}


def test_v2_interval_mismatch_is_discarded_not_learned():
    seg = Segment()
    seg.add("a", 1, 2, 4, 200, [VIP], "10.0.0.1", 1.0)
    seg.add("b", 1, 2, 4, 100, [VIP], "10.0.0.2", 2.0)
    seg.start("a")
    seg.run_until(5)
    seg.start("b")
    seg.run_until(30)
    b = seg.r("b")
    assert b.counters["rx_err_interval"] > 0
    assert b.status()["master_interval"] == 2.0
    # b never accepted a's adverts, so both end up Master (RFC 3768: misconfiguration)
    assert seg.became("b", MASTER)


# ------------------------------------------------------- shutdown / priority 0

def test_priority_zero_shutdown_backup_takes_over_after_skew():
    seg = Segment()
    add3(seg, "a", 200, "10.0.0.1")
    add3(seg, "b", 100, "10.0.0.2")
    add3(seg, "c", 150, "10.0.0.3")
    for n in "abc":
        seg.start(n)
    seg.run_until(10)
    assert seg.masters() == ["a"]
    seg.run_until(10.3)
    seg.call("a", lambda r, now: r.shutdown(now))
    assert seg.r("a").state == INITIALIZE
    zero = [a for t, a in seg.adverts("a") if t == 10.3]
    assert [a.priority for a in zero] == [0]
    assert seg.r("a").counters["tx_priority_zero"] == 1
    # removing the flows is part of leaving Master
    assert [f.op for n, f in seg.flows if n == "a"] == ["install", "remove"]
    seg.run_until(20)
    # the highest backup takes over after its skew time exactly
    assert seg.became("c", MASTER) == [10.3 + (106 * 1_000_000 // 256) / 1e6]
    assert seg.became("b", MASTER) == []
    assert seg.r("b").counters["rx_priority_zero"] == 1
    # a starts again: Backup, and preempts c later (higher priority)
    seg.start("a")
    seg.run_until(40)
    assert seg.masters() == ["a"]


def test_master_answers_priority_zero_with_an_advert():
    seg = Segment()
    a = add3(seg, "a", 200, "10.0.0.1")
    seg.start("a")
    seg.run_until(5)
    before = a.counters["tx_adverts"]
    frame = pk.advert_frame(pk.Advert(3, 1, 0, 100, (ipaddress.ip_address(VIP),)), "10.0.0.7")
    acts = seg.nodes["a"].rx_frame(frame, 5.5)
    assert len(acts.frames) == 1 and pk.decode_frame(acts.frames[0]).priority == 200
    assert a.counters["tx_adverts"] == before + 1
    assert a.next_deadline() == 6.5


# --------------------------------------------------------------------- ties

def test_equal_priority_tie_broken_by_larger_primary_address():
    seg = Segment()
    add3(seg, "a", 100, "10.0.0.1")
    add3(seg, "b", 100, "10.0.0.2")
    seg.start("a")
    seg.start("b")
    seg.run_until(20)
    # both expire together, both become Master, the smaller address yields
    assert seg.masters() == ["b"]
    assert seg.became("a", BACKUP)[-1] == mdi_v3(100, 1.0)
    assert "equal priority" in [t for n, t in seg.transitions if n == "a"][-1].reason


def test_equal_priority_backup_does_not_preempt():
    seg = Segment()
    add3(seg, "a", 100, "10.0.0.1")
    add3(seg, "b", 100, "10.0.0.2")
    seg.start("a")
    seg.run_until(10)
    seg.start("b")
    seg.run_until(30)
    assert seg.masters() == ["a"]


def test_ipv6_tie_break_compares_128_bit_addresses():
    seg = Segment()
    seg.add("a", 1, 3, 6, 100, ["fe80::100"], "fe80::ff:1")
    seg.add("b", 1, 3, 6, 100, ["fe80::100"], "fe80::2")
    seg.start("a")
    seg.start("b")
    seg.run_until(10)
    assert seg.masters() == ["a"]


# ----------------------------------------------------------------- tracking

def test_tracking_lowers_priority_and_fails_over_and_back():
    seg = Segment()
    add3(seg, "a", 200, "10.0.0.1", tracks={"uplink": 150})
    add3(seg, "b", 100, "10.0.0.2")
    seg.start("a")
    seg.start("b")
    seg.run_until(10)
    assert seg.masters() == ["a"]
    seg.run_until(10.5)
    seg.call("a", lambda r, now: r.track("uplink", False, now))
    a = seg.r("a")
    assert a.effective_priority == 50 and a.status()["priority"] == 200
    # the lowered priority is advertised at once; b discards it and takes over
    assert [x.priority for t, x in seg.adverts("a") if t == 10.5] == [50]
    seg.run_until(20)
    assert seg.masters() == ["b"]
    # from the last advert b honoured (priority 200, before the drop)
    last_200 = max(t for t, x in seg.adverts("a") if x.priority == 200)
    assert last_200 < 10.5
    assert seg.became("b", MASTER) == [last_200 + mdi_v3(100, 1.0)]
    # uplink back: a preempts again
    seg.call("a", lambda r, now: r.track("uplink", True, now))
    assert a.effective_priority == 200
    seg.run_until(40)
    assert seg.masters() == ["a"]
    with pytest.raises(KeyError):
        a.track("nosuch", False, 41)


def test_tracking_weight_zero_takes_the_router_out_of_service():
    seg = Segment()
    add3(seg, "a", 200, "10.0.0.1", tracks={"port:1": 0})
    add3(seg, "b", 100, "10.0.0.2")
    seg.start("a")
    seg.start("b")
    seg.run_until(10)
    seg.call("a", lambda r, now: r.track("port:1", False, now))
    assert seg.r("a").state == INITIALIZE and seg.r("a").status()["fault"] == ["port:1"]
    assert seg.r("a").counters["tx_priority_zero"] == 1
    seg.run_until(11)
    assert seg.masters() == ["b"]
    seg.call("a", lambda r, now: r.track("port:1", True, now))
    assert seg.r("a").state == BACKUP
    seg.run_until(30)
    assert seg.masters() == ["a"]
    # started while the tracked object is down: stays in Initialize
    r = VirtualRouter(2, 3, 4, 100, [VIP], "10.0.0.1", tracks={"x": 0})
    r.add_track("x", 0, up=False)
    assert not r.start(0.0) and r.state == INITIALIZE
    assert r.track("x", True, 1.0).transitions[0].new == BACKUP


def test_tracking_the_owner():
    seg = Segment()
    add3(seg, "o", 255, VIP, tracks={"uplink": 100})
    add3(seg, "b", 200, "10.0.0.2")
    seg.start("o")
    seg.start("b")
    seg.run_until(10)
    assert seg.masters() == ["o"]
    seg.call("o", lambda r, now: r.track("uplink", False, now))
    o = seg.r("o")
    assert o.effective_priority == 155 and not o.is_owner
    seg.run_until(20)
    assert seg.masters() == ["b"]
    # restored to 255 it is the owner again and takes over at once
    seg.call("o", lambda r, now: r.track("uplink", True, now))
    assert seg.masters() == ["o"] and seg.became("o", MASTER)[-1] == 20
    assert seg.r("b").state == BACKUP


# --------------------------------------------------------------- IPv6 / v2

def test_v3_ipv6_election_na_and_nd():
    seg = Segment()
    vips = ["fe80::100", "2001:db8::100"]
    seg.add("a", 9, 3, 6, 100, vips, "fe80::1", 0.5)
    seg.add("b", 9, 3, 6, 120, vips, "fe80::2", 0.5)
    seg.start("a")
    seg.start("b")
    seg.run_until(10)
    assert seg.masters() == ["b"]
    t = seg.became("b", MASTER)[0]
    assert t == mdi_v3(120, 0.5)
    at_t = [Ether(f) for tt, n, f in seg.sent if n == "b" and tt == t]
    nas = [e for e in at_t if ICMPv6ND_NA in e]
    assert sorted(e[ICMPv6ND_NA].tgt for e in nas) == sorted(vips)
    assert all(e.src == "00:00:5e:00:02:09" and e[ICMPv6ND_NA].O for e in nas)
    assert any(IPv6 in e and e[IPv6].dst == "ff02::12" for e in at_t)
    group, gmac = pk.solicited_node("2001:db8::100")
    ns = bytes(Ether(src="02:00:00:00:00:0a", dst=pk.mac_str(gmac))
               / IPv6(src="2001:db8::5", dst=str(group), hlim=255)
               / ICMPv6ND_NS(tgt="2001:db8::100") / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:0a"))
    assert not seg.nodes["a"].rx_frame(ns, 11).frames       # Backup stays silent
    (rep,) = seg.nodes["b"].rx_frame(ns, 11).frames
    assert Ether(rep)[ICMPv6ND_NA].tgt == "2001:db8::100" and Ether(rep).src == "00:00:5e:00:02:09"
    assert seg.r("b").counters["tx_na_reply"] == 1


def test_v2_with_password_auth():
    seg = Segment()
    seg.add("a", 5, 2, 4, 200, [VIP], "10.0.0.1", 1, auth_type=1, password="s3cret")
    seg.add("b", 5, 2, 4, 100, [VIP], "10.0.0.2", 1, auth_type=1, password="s3cret")
    seg.add("x", 5, 2, 4, 150, [VIP], "10.0.0.3", 1, auth_type=1, password="wrong")
    seg.add("y", 5, 2, 4, 120, [VIP], "10.0.0.4", 1)
    for n in "aby":
        seg.start(n)
    seg.run_until(10)
    assert seg.r("a").state == MASTER and seg.r("b").state == BACKUP
    adv = seg.adverts("a")[0][1]
    assert (adv.version, adv.auth_type, adv.auth_data) == (2, 1, b"s3cret\0\0")
    assert seg.r("y").counters["rx_err_auth_type"] > 0
    seg.start("x")
    seg.run_until(20)
    assert seg.r("x").counters["rx_err_auth"] > 0
    assert seg.r("b").counters["rx_err_auth"] > 0 and seg.r("a").counters["rx_err_auth"] > 0
    assert seg.r("b").state == BACKUP


# ------------------------------------------------- gratuitous ARP and flows

def test_gratuitous_arp_and_flows_on_becoming_master():
    seg = Segment()
    vips = ["10.0.0.254", "10.0.1.254"]
    seg.add("a", 7, 3, 4, 100, vips, "10.0.0.1", accept=True, vlan=None)
    seg.start("a")
    seg.run_until(5)
    t = seg.became("a", MASTER)[0]
    frames = [Ether(f) for tt, n, f in seg.sent if n == "a" and tt == t]
    arps = [e for e in frames if ARP in e]
    assert sorted(e[ARP].psrc for e in arps) == vips
    assert all(e.dst == "ff:ff:ff:ff:ff:ff" and e[ARP].hwsrc == "00:00:5e:00:01:07"
               and e[ARP].pdst == e[ARP].psrc for e in arps)
    assert seg.r("a").counters["tx_garp"] == 2
    ((_, f),) = seg.flows
    assert (f.op, f.vrid, f.family, f.vmac, f.vips, f.accept) == (
        "install", 7, 4, "00:00:5e:00:01:07", tuple(vips), True)
    # only on the transition: the periodic adverts come alone
    later = [Ether(f) for tt, n, f in seg.sent if n == "a" and tt > t]
    assert later and not any(ARP in e for e in later)
    # ARP for the VIP is answered by the Master only
    req = bytes(Ether(src="02:00:00:00:00:0a", dst="ff:ff:ff:ff:ff:ff")
                / ARP(op=1, hwsrc="02:00:00:00:00:0a", psrc="10.0.0.5", pdst="10.0.1.254"))
    (rep,) = seg.nodes["a"].rx_frame(req, 6).frames
    assert Ether(rep)[ARP].op == 2 and Ether(rep)[ARP].hwsrc == "00:00:5e:00:01:07"
    seg.call("a", lambda r, now: r.shutdown(now))
    assert not seg.nodes["a"].rx_frame(req, 7).frames
    assert [x.op for _, x in seg.flows] == ["install", "remove"]


# --------------------------------------------------------- malformed adverts

V = ipaddress.ip_address(VIP)


def backup_router(**kw):
    rs = RouterSet()
    args, kw = v3(100, "10.0.0.2", **kw)
    r = rs.add(VirtualRouter(*args, **kw))
    rs.start(0.0)
    return rs, r


def good(**kw):
    a = dict(version=3, vrid=1, priority=200, interval=100, addrs=(V,))
    a.update(kw)
    return pk.Advert(**a)


def frame(adv=None, src="10.0.0.1", **kw):
    return pk.advert_frame(adv or good(), src, **kw)


def _count_lies():
    """A consistent IP packet whose VRRP message claims 2 addresses, has 1."""
    msg = bytearray(pk.encode(good(), "10.0.0.1"))
    msg[3] = 2
    struct.pack_into("!H", msg, 6, 0)
    struct.pack_into("!H", msg, 6, pk.l4_checksum(112, "10.0.0.1", pk.V4_GROUP, msg))
    return (pk.V4_GROUP_MAC + pk.vmac(1) + b"\x08\x00"
            + pk.ipv4_header("10.0.0.1", pk.V4_GROUP, 112, len(msg), 255) + bytes(msg))


MALFORMED = [
    ("ttl", lambda: frame(ttl=64)),
    ("version", lambda: frame(good(version=2, interval=1))),
    ("checksum", lambda: frame(checksum=0xBEEF)),
    ("type", lambda: frame(good(type=3))),
    ("length", lambda: frame()[:-2]),
    ("length", lambda: _count_lies()),
    ("vrid", lambda: frame(good(vrid=2))),
    ("addr_count_zero", lambda: frame(good(addrs=()))),
    ("addr_list", lambda: frame(good(addrs=(ipaddress.ip_address("10.0.0.253"),)))),
    ("addr_list", lambda: frame(good(addrs=(V, ipaddress.ip_address("10.0.0.253"))))),
    ("interval", lambda: frame(good(interval=0))),
    ("own", lambda: frame(src="10.0.0.2")),
    ("ip_header", lambda: frame()[:24] + bytes([frame()[24] ^ 1]) + frame()[25:]),
]


@pytest.mark.parametrize("reason,make", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_advert_counted_and_dropped(reason, make):
    rs, r = backup_router()
    rs.rx_frame(frame(), 1.0)                  # a valid advert from the master
    deadline = r.next_deadline()
    assert deadline == 1.0 + mdi_v3(100, 1.0) and r.master_ip == ipaddress.ip_address("10.0.0.1")
    before = {**r.counters, **{"set_" + k: v for k, v in rs.counters.items()}}
    acts = rs.rx_frame(make(), 2.0)
    assert not acts
    # dropped: the master down timer was not restarted
    assert r.next_deadline() == deadline and r.counters["rx_adverts"] == 1
    after = {**r.counters, **{"set_" + k: v for k, v in rs.counters.items()}}
    changed = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    key = ("set_" if reason in ("vrid",) else "") + "rx_err_" + reason
    assert changed == {key: 1, "set_rx_frames": 1}


def test_malformed_v2_rules():
    def v2r(**kw):
        rs = RouterSet()
        r = rs.add(VirtualRouter(1, 2, 4, 100, [VIP], "10.0.0.2", 1, **kw))
        rs.start(0.0)
        return rs, r
    ok = pk.Advert(2, 1, 200, 1, (V,), auth_type=1, auth_data=pk.password_bytes("pw"))
    cases = [
        ("auth_type", ok.__class__(2, 1, 200, 1, (V,))),
        ("auth", pk.Advert(2, 1, 200, 1, (V,), auth_type=1, auth_data=pk.password_bytes("px"))),
        ("interval", pk.Advert(2, 1, 200, 2, (V,), auth_type=1, auth_data=pk.password_bytes("pw"))),
        ("version", good()),
    ]
    for reason, adv in cases:
        rs, r = v2r(auth_type=1, password="pw")
        rs.rx_frame(pk.advert_frame(ok, "10.0.0.1"), 1.0)
        assert r.counters["rx_adverts"] == 1
        deadline = r.next_deadline()
        rs.rx_frame(pk.advert_frame(adv, "10.0.0.1"), 2.0)
        assert r.counters["rx_err_" + reason] == 1, reason
        assert r.counters["rx_adverts"] == 1 and r.next_deadline() == deadline
    # auth data is ignored for auth type 0
    rs, r = v2r()
    rs.rx_frame(pk.advert_frame(pk.Advert(2, 1, 200, 1, (V,), auth_data=b"garbage!"), "10.0.0.1"), 1)
    assert r.counters["rx_adverts"] == 1


def test_address_mismatch_from_owner_is_logged_but_used():
    rs, r = backup_router()
    other = (ipaddress.ip_address("10.0.0.253"),)
    rs.rx_frame(frame(good(priority=255, addrs=other)), 1.0)
    assert r.counters["rx_addr_list_mismatch_owner"] == 1 and r.counters["rx_err_addr_list"] == 0
    assert r.counters["rx_adverts"] == 1 and r.next_deadline() == 1.0 + mdi_v3(100, 1.0)


def test_owner_ignore_adverts_option():
    rs = RouterSet()
    r = rs.add(VirtualRouter(1, 3, 4, 255, [VIP], VIP, owner_ignore_adverts=True))
    rs.start(0.0)
    assert r.state == MASTER
    rs.rx_frame(frame(good(priority=255), src="10.0.0.200"), 1.0)
    assert r.counters["rx_err_owner"] == 1 and r.state == MASTER
    # by default (RFC 9568 erratum 8298) two owners still elect one
    rs2 = RouterSet()
    r2 = rs2.add(VirtualRouter(1, 3, 4, 255, [VIP], VIP))
    rs2.start(0.0)
    acts = rs2.rx_frame(frame(good(priority=255), src="10.0.0.255"), 1.0)
    assert r2.state == BACKUP and acts.flows[0].op == "remove"


def test_decode_errors_without_a_router_go_to_the_set():
    rs, r = backup_router()
    bad = bytearray(frame(good(vrid=42)))
    bad[24] ^= 1                             # IPv4 header checksum, VRID nobody here has
    rs.rx_frame(bytes(bad), 1.0)
    assert rs.counters["rx_err_ip_header"] == 1 and r.counters["rx_err_ip_header"] == 0
    rs.rx_frame(frame(good(vrid=42)), 1.0)
    assert rs.counters["rx_err_vrid"] == 1
    bad = bytearray(frame())
    bad[24] ^= 1                             # the same for our VRID: charged to the router
    rs.rx_frame(bytes(bad), 1.0)
    assert rs.counters["rx_err_ip_header"] == 1 and r.counters["rx_err_ip_header"] == 1
    rs.rx_frame(b"\x00" * 10, 1.0)
    assert rs.counters["rx_not_vrrp"] == 1
    tagged = frame(vlan=5)
    rs.rx_frame(tagged, 1.0)
    assert rs.counters["rx_other_vlan"] == 1 and r.counters["rx_adverts"] == 0


def test_v3_checksum_as_v2_interop():
    seg = Segment()
    add3(seg, "a", 200, "10.0.0.1", v3_checksum_as_v2=True)
    add3(seg, "b", 100, "10.0.0.2")
    seg.start("a")
    seg.start("b")
    seg.run_until(10)
    assert seg.masters() == ["a"]
    assert seg.r("b").counters["rx_v3_checksum_as_v2"] > 0


# ------------------------------------------------------------- API / status

def test_status_dict():
    seg = Segment()
    add3(seg, "a", 100, "10.0.0.1", tracks={"t": 10})
    add3(seg, "b", 200, "10.0.0.2")
    seg.start("a")
    seg.start("b")
    seg.run_until(10)
    s = seg.r("a").status()
    for k, v in {"state": BACKUP, "priority": 100, "effective_priority": 100, "master": "10.0.0.2",
                 "master_priority": 200, "master_interval": 1.0, "transitions": 1, "vrid": 1,
                 "version": 3, "family": 4, "vmac": "00:00:5e:00:01:01", "vips": [VIP],
                 "tracks": {"t": {"weight": 10, "up": True}}, "fault": []}.items():
        assert s[k] == v, k
    assert s["counters"]["rx_adverts"] >= 6 and s["counters"]["rx_err_checksum"] == 0
    assert s["last_transition"]["to"] == BACKUP
    sb = seg.r("b").status()
    assert sb["state"] == MASTER and sb["transitions"] == 2 and sb["master"] == "10.0.0.2"
    assert seg.nodes["b"].status()["routers"][0]["state"] == MASTER
    import json
    json.dumps(seg.nodes["a"].status())


def test_config_validation():
    bad = [
        dict(vrid=0), dict(vrid=256), dict(version=4), dict(priority=0), dict(priority=256),
        dict(vips=[]), dict(vips=["2001:db8::1"]), dict(primary_ip="fe80::1"),
        dict(version=2, family=6, vips=["fe80::1"], primary_ip="fe80::2"),
        dict(version=3, auth_type=1, password="x"), dict(version=2, auth_type=1),
        dict(version=2, auth_type=2, password="x"), dict(preempt_delay=-1),
        dict(version=2, password="123456789", auth_type=1),
    ]
    base = dict(vrid=1, version=3, family=4, priority=100, vips=[VIP], primary_ip="10.0.0.1",
                interval=1)
    for b in bad:
        with pytest.raises(ValueError):
            VirtualRouter(**{**base, **b})
    rs = RouterSet()
    rs.add(VirtualRouter(**base))
    rs.add(VirtualRouter(**{**base, "family": 6, "vips": ["fe80::1"], "primary_ip": "fe80::2"}))
    with pytest.raises(ValueError):
        rs.add(VirtualRouter(**base))
    with pytest.raises(ValueError):
        rs.add(VirtualRouter(**{**base, "vrid": 2, "vlan": 4}))


def test_start_and_shutdown_are_idempotent_and_remove_works():
    rs = RouterSet()
    r = rs.add(VirtualRouter(1, 3, 4, 255, [VIP], VIP))
    assert rs.start(0.0).transitions and not rs.start(0.1)
    acts = rs.remove(1, 4, 1.0)
    assert acts.flows[0].op == "remove" and pk.decode_frame(acts.frames[0]).priority == 0
    assert not r.shutdown(2.0) and rs.next_deadline() is None


def test_owner_in_backup_preempts_even_with_preempt_off():
    # two routers configured as owner (a misconfiguration): the larger address
    # wins; when its priority drops, the other owner preempts despite preempt=False
    seg = Segment()
    add3(seg, "o1", 255, "10.0.0.1", preempt=False)
    add3(seg, "o2", 255, "10.0.0.2", tracks={"up": 100})
    seg.start("o1")
    seg.start("o2")
    assert seg.masters() == ["o2"] and seg.r("o1").state == BACKUP
    seg.run_until(5)
    seg.call("o2", lambda r, now: r.track("up", False, now))
    seg.run_until(15)
    assert seg.masters() == ["o1"]
    last_255 = max(t for t, x in seg.adverts("o2") if x.priority == 255)
    assert seg.became("o1", MASTER) == [0.0, last_255 + mdi_v3(255, 1.0)]
    assert seg.r("o1").counters["rx_lower_priority_discarded"] > 0
