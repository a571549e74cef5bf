"""datapath.lacp: the 802.1AX machines of a bond, driven with warped time.

Bonds are wired back to back through fake links (Net/Wire below) that
deliver each returned frame to the other end's rx() at the same `now`; a
wire can be cut silently in one direction, tampered with, or taken down.
Every step checks two invariants on every bond: a member distributes only
in COLLECTING_DISTRIBUTING with its partner in sync, and no member sends
more than 3 LACPDUs in any 1 s.
"""
import json
import random

import pytest

from datapath import lacp as L
from datapath import lacpdu as P

MAC = {n: f"02:00:00:00:00:{i:02x}" for i, n in enumerate("ABCDE", start=0xa)}


class Wire:
    def __init__(self, net, a, am, b, bm):
        self.net, self.ends = net, ((a, am), (b, bm))
        self.up = False
        self.blocked = set()          # names of bonds whose frames are silently dropped
        self.tamper = {}              # sender name -> fn(frame) -> frame
        self.last_rx = {}             # receiver (name, member) -> time of last delivery

    def peer(self, bond, member):
        (a, am), (b, bm) = self.ends
        return (b, bm) if (a, am) == (bond, member) else (a, am)

    def set_up(self, up):
        self.up = up
        for bond, m in set(self.ends):
            self.net.send(bond, bond.link(m, up, self.net.now))


class Net:
    def __init__(self):
        self.now = 0.0
        self.bonds = []
        self.wire_of = {}             # (bond name, member) -> Wire
        self.tx = {}                  # (bond name, member) -> [times an LACPDU was sent]
        self.tx_checked = {}          # how far check() has looked in each list
        self.frames = []              # (time, sender name, member, frame)

    def bond(self, name, members=(1, 2), **kw):
        b = L.Bond(name, MAC[name], **kw)
        for m in members:
            b.add_member(m)
        self.bonds.append(b)
        return b

    def wire(self, a, am, b, bm, up=True):
        w = Wire(self, a, am, b, bm)
        self.wire_of[(a.name, am)] = w
        self.wire_of[(b.name, bm)] = w
        if up:
            w.set_up(True)
        return w

    def send(self, bond, frames):
        queue = [(bond, m, f) for m, f in frames]
        n = 0
        while queue:
            n += 1
            assert n < 10000, "frames ping-pong forever"
            src, m, f = queue.pop(0)
            self.frames.append((self.now, src.name, m, f))
            if f[14] == P.SUBTYPE_LACP:
                self.tx.setdefault((src.name, m), []).append(self.now)
            w = self.wire_of.get((src.name, m))
            if w is None or not w.up or src.name in w.blocked:
                continue
            if src.name in w.tamper:
                f = w.tamper[src.name](f)
            dst, dm = w.peer(src, m)
            w.last_rx[(dst.name, dm)] = self.now
            for m2, f2 in dst.rx(dm, f, self.now):
                queue.append((dst, m2, f2))

    def run(self, until, step=0.1, until_true=None):
        """Advance to `until` (absolute), ticking every `step`; stop early when until_true()."""
        while self.now < until - 1e-9:
            self.now = until if self.now + step >= until else round(self.now + step, 6)
            for b in self.bonds:
                self.send(b, b.tick(self.now))
            self.check()
            if until_true is not None and until_true():
                return True
        return False

    def check(self):
        for b in self.bonds:
            dist = b.distributing_members()
            st = {m["member"]: m for m in b.status()["members"]}
            if b.lacp_enabled and not b.fallback_active:
                for h in dist:
                    s = st[h]
                    assert s["mux"] == L.COLLECTING_DISTRIBUTING and s["link_up"]
                    assert s["partner"]["state"] & P.SYNC, f"{b.name}/{h} distributes without partner sync"
                    assert s["actor"]["state"] & (P.SYNC | P.COLLECTING | P.DISTRIBUTING) == \
                        P.SYNC | P.COLLECTING | P.DISTRIBUTING
        for key, times in self.tx.items():
            for i in range(max(3, self.tx_checked.get(key, 0)), len(times)):
                assert times[i] - times[i - 3] >= L.FAST_PERIODIC_TIME - 1e-9, \
                    f"{key}: 4 LACPDUs within 1 s: {times[i - 3:i + 1]}"
            self.tx_checked[key] = len(times)

    def lacpdus(self, sender, member=None, since=0.0):
        return [(t, P.decode(f[14:])) for t, s, m, f in self.frames
                if s == sender and (member is None or m == member) and t >= since and f[14] == 1]


def pair(n=2, a_kw=None, b_kw=None):
    net = Net()
    A = net.bond("A", range(1, n + 1), **(a_kw or {}))
    B = net.bond("B", range(1, n + 1), **(b_kw or {}))
    wires = [net.wire(A, i, B, i) for i in range(1, n + 1)]
    return net, A, B, wires


def member(bond, h):
    return next(m for m in bond.status()["members"] if m["member"] == h)


# ------------------------------------------------------------------ negotiation
def test_active_active_aggregates_after_wait_while():
    net, A, B, _ = pair(3)
    net.run(1.9)
    assert A.distributing_members() == [] and B.distributing_members() == []   # wait_while: 2 s
    assert member(A, 1)["mux"] == L.WAITING
    net.run(3.0)
    for bond, other in ((A, B), (B, A)):
        assert bond.distributing_members() == [1, 2, 3]
        assert bond.negotiated
        s = bond.status()
        assert s["partner"] == {"system_priority": 65534, "system": MAC[other.name], "key": 1}
        for m in s["members"]:
            assert m["receive"] == L.RX_CURRENT and m["selected"] == L.SELECTED
            assert set(m["actor"]["state_names"]) == {"activity", "timeout", "aggregation", "synchronized",
                                                      "collecting", "distributing"}
            assert m["partner"]["system"] == MAC[other.name] and m["partner"]["port"] == m["port_id"]
            assert m["actor_churn"] == m["partner_churn"] == L.NO_CHURN
    ev = "\n".join(A.events())
    assert "mux WAITING -> ATTACHED" in ev and "mux ATTACHED -> COLLECTING_DISTRIBUTING" in ev
    assert "distributing: 1, 2, 3" in ev


@pytest.mark.parametrize("passive", ["A", "B"])
def test_active_passive_aggregates(passive):
    kw = {"mode": "passive"}
    net, A, B, _ = pair(2, a_kw=kw if passive == "A" else None, b_kw=kw if passive == "B" else None)
    net.run(4.0)
    assert A.distributing_members() == [1, 2] and B.distributing_members() == [1, 2]
    p = A if passive == "A" else B
    assert not member(p, 1)["actor"]["state"] & P.ACTIVITY
    assert member(p, 1)["periodic"] == L.FAST_PERIODIC       # partner is active: periodic runs


def test_passive_passive_never_aggregates():
    net, A, B, _ = pair(2, a_kw={"mode": "passive"}, b_kw={"mode": "passive"})
    net.run(300.0, step=0.5)
    assert net.frames == []                                   # not a single LACPDU
    for b in (A, B):
        assert b.distributing_members() == [] and not b.negotiated
        for m in b.status()["members"]:
            assert m["receive"] == L.RX_DEFAULTED and m["periodic"] == L.NO_PERIODIC
            assert m["mux"] == L.DETACHED
            assert "defaulted" in m["actor"]["state_names"]


def test_wait_while_is_two_seconds_from_selection():
    net, A, B, _ = pair(1)
    net.run(0.1)
    assert member(A, 1)["mux"] == L.WAITING
    assert A.next_deadline() is not None and A.next_deadline() <= 2.0 + 1e-9
    net.run(1.95, step=0.05)
    assert member(A, 1)["mux"] == L.WAITING
    net.run(2.1, step=0.05)
    assert A.distributing_members() == [1]


# ------------------------------------------------------------------ timeouts
def _detect_silence(rate, step, horizon):
    net, A, B, wires = pair(2, a_kw={"rate": rate}, b_kw={"rate": rate})
    net.run(100.0 if rate == "slow" else 10.0, step=step)
    assert A.distributing_members() == [1, 2]
    t_cut = net.now
    wires[0].blocked.add("B")                 # B keeps its link up but says nothing to A on link 1
    tl = wires[0].last_rx[("A", 1)]           # the last LACPDU A heard on link 1
    gone = net.run(t_cut + horizon, step=step, until_true=lambda: 1 not in A.distributing_members())
    assert gone
    return net, A, tl


def test_fast_timeout_detects_silent_partner_within_3s():
    net, A, tl = _detect_silence("fast", 0.05, 5.0)
    assert tl + 3.0 - 1e-6 <= net.now <= tl + 3.0 + 0.05 + 1e-6     # current_while = Short_Timeout_Time
    assert member(A, 1)["receive"] == L.RX_EXPIRED
    assert "expired" in member(A, 1)["actor"]["state_names"]
    assert A.distributing_members() == [2]                          # the other member never stopped
    net.run(net.now + 3.1, step=0.05)
    assert member(A, 1)["receive"] == L.RX_DEFAULTED


def test_slow_timeout_detects_silent_partner_within_90s():
    net, A, tl = _detect_silence("slow", 0.5, 120.0)
    assert tl + 90.0 - 1e-6 <= net.now <= tl + 90.0 + 0.5 + 1e-6    # Long_Timeout_Time
    assert member(A, 1)["receive"] == L.RX_EXPIRED
    assert A.distributing_members() == [2]


def test_periodic_rate_follows_partner_timeout_bit():
    # A asks for fast (short timeout), B for slow: B must send every 1 s, A every 30 s.
    net, A, B, _ = pair(1, a_kw={"rate": "fast"}, b_kw={"rate": "slow"})
    net.run(200.0, step=0.25)
    assert A.distributing_members() == [1] and B.distributing_members() == [1]
    a_times = [t for t, _ in net.lacpdus("A", since=100.0)]
    b_times = [t for t, _ in net.lacpdus("B", since=100.0)]
    a_gaps = {round(y - x, 2) for x, y in zip(a_times, a_times[1:])}
    b_gaps = {round(y - x, 2) for x, y in zip(b_times, b_times[1:])}
    assert a_gaps == {30.0} and b_gaps == {1.0}
    assert member(A, 1)["periodic"] == L.SLOW_PERIODIC and member(B, 1)["periodic"] == L.FAST_PERIODIC


# ------------------------------------------------------------------ synchronization
def test_collecting_distributing_only_when_partner_in_sync():
    def strip_sync(f):
        b = bytearray(f)
        b[14 + 18] &= ~P.SYNC & 0xff             # actor state octet in B's LACPDUs
        return bytes(b)
    net, A, B, wires = pair(2)
    for w in wires:
        w.tamper["B"] = strip_sync
    net.run(30.0)
    assert A.distributing_members() == []
    for m in A.status()["members"]:
        assert m["mux"] == L.ATTACHED and not m["partner"]["state"] & P.SYNC
        assert m["actor"]["state"] & P.SYNC          # A itself is attached and says so
    for w in wires:
        del w.tamper["B"]
    net.run(32.0)
    assert A.distributing_members() == [1, 2]


def test_partner_key_change_moves_member_out():
    net, A, B, wires = pair(2)
    net.run(5.0)
    assert A.distributing_members() == [1, 2]

    def key99(f):
        b = bytearray(f)
        b[14 + 12:14 + 14] = (99).to_bytes(2, "big")  # actor key in B's LACPDUs on link 2
        return bytes(b)
    wires[1].tamper["B"] = key99
    always_1 = []
    net.run(15.0, until_true=lambda: always_1.append(1 in A.distributing_members()) and False)
    assert all(always_1)                          # member 1 never stopped
    assert A.distributing_members() == [1]
    m2 = member(A, 2)
    assert m2["selected"] == L.UNSELECTED and m2["mux"] == L.DETACHED and m2["partner"]["key"] == 99
    assert B.distributing_members() == [1]        # B sees A's member 2 out of sync
    del wires[1].tamper["B"]
    net.run(20.0)
    assert A.distributing_members() == [1, 2] and B.distributing_members() == [1, 2]


def test_whole_partner_key_change_reaggregates_with_new_key():
    net, A, B, _ = pair(2)
    net.run(5.0)
    net.send(B, B.configure(net.now, key=7))
    net.run(6.0)
    assert member(A, 1)["partner"]["key"] == 7
    net.run(12.0)
    assert A.distributing_members() == [1, 2] and B.distributing_members() == [1, 2]
    assert A.status()["partner"]["key"] == 7


def test_member_with_different_partner_system_not_aggregated():
    net = Net()
    A = net.bond("A", (1, 2, 3))
    B = net.bond("B", (1, 2))
    C = net.bond("C", (1,))
    net.wire(A, 1, B, 1)
    net.wire(A, 2, B, 2)
    net.wire(A, 3, C, 1)
    net.run(10.0)
    assert A.distributing_members() == [1, 2]
    assert A.status()["partner"]["system"] == MAC["B"]
    m3 = member(A, 3)
    assert m3["receive"] == L.RX_CURRENT and m3["partner"]["system"] == MAC["C"]
    assert m3["selected"] == L.UNSELECTED and not m3["actor"]["state"] & P.SYNC
    assert C.distributing_members() == []          # A never says it is in sync on that link
    assert member(C, 1)["mux"] == L.ATTACHED


def test_larger_partner_group_takes_over_the_aggregator():
    net = Net()
    A = net.bond("A", (1, 2, 3))
    B = net.bond("B", (1, 2))
    C = net.bond("C", (1,))
    net.wire(A, 3, C, 1)                            # C is there first
    w1 = net.wire(A, 1, B, 1, up=False)
    w2 = net.wire(A, 2, B, 2, up=False)
    net.run(5.0)
    assert A.distributing_members() == [3] and C.distributing_members() == [1]
    w1.set_up(True)
    w2.set_up(True)
    net.run(12.0)
    assert A.distributing_members() == [1, 2] and C.distributing_members() == []
    assert "aggregator: partner 65534," + MAC["B"] in "\n".join(A.events())


def test_individual_partner_links_do_not_aggregate_together():
    def individual(f):
        b = bytearray(f)
        b[14 + 18] &= ~P.AGGREGATION & 0xff
        return bytes(b)
    net, A, B, wires = pair(2)
    for w in wires:
        w.tamper["B"] = individual
    net.run(10.0)
    assert len(A.distributing_members()) == 1      # one aggregator, an Individual link is alone in it


# ------------------------------------------------------------------ loopback, churn
def test_looped_back_member_detected():
    net = Net()
    A = net.bond("A", (1, 2, 3))
    B = net.bond("B", (1,))
    net.wire(A, 1, A, 2)                            # two members of the same bond cabled together
    net.wire(A, 3, B, 1)
    net.run(10.0)
    assert A.distributing_members() == [3] and B.distributing_members() == [1]
    for h in (1, 2):
        m = member(A, h)
        assert m["looped"] and m["selected"] == L.UNSELECTED and not m["distributing"]
        assert m["counters"]["loopback"] > 0
    assert A.counters()["loopback"] > 0
    assert "loopback detected" in "\n".join(A.events())


def test_member_looped_to_itself_detected():
    net = Net()
    A = net.bond("A", (1,), fallback=True)
    net.wire(A, 1, A, 1)                            # a port hearing its own LACPDUs
    net.run(20.0)
    assert member(A, 1)["looped"]
    assert A.distributing_members() == [] and not A.negotiated
    assert not A.fallback_active                    # a looped member is not a fallback candidate


def test_churn_detected_after_60s():
    net = Net()
    A = net.bond("A", (1, 2, 3))
    B = net.bond("B", (1, 2))
    C = net.bond("C", (1,))
    net.wire(A, 1, B, 1)
    net.wire(A, 2, B, 2)
    net.wire(A, 3, C, 1)
    net.run(59.0, step=0.5)
    assert member(A, 3)["actor_churn"] == L.CHURN_MONITOR
    net.run(61.0, step=0.5)
    assert member(A, 3)["actor_churn"] == L.CHURN          # A never gets in sync on link 3
    assert member(A, 3)["partner_churn"] == L.NO_CHURN     # C is attached, so it says it is in sync
    assert member(C, 1)["partner_churn"] == L.CHURN        # C hears A out of sync for 60 s
    assert member(C, 1)["actor_churn"] == L.NO_CHURN       # C itself is attached (in sync)
    assert member(A, 1)["actor_churn"] == member(A, 1)["partner_churn"] == L.NO_CHURN
    assert "actor churn detected" in "\n".join(A.events())
    assert "partner churn detected" in "\n".join(C.events())


def test_churn_clears_when_sync_returns():
    net, A, B, wires = pair(1)
    wires[0].tamper["B"] = lambda f: f[:14 + 18] + bytes([f[14 + 18] & ~P.SYNC & 0xff]) + f[14 + 19:]
    net.run(70.0, step=0.5)
    assert member(A, 1)["partner_churn"] == L.CHURN
    del wires[0].tamper["B"]
    net.run(72.0)
    assert member(A, 1)["partner_churn"] == L.NO_CHURN
    assert "partner churn cleared" in "\n".join(A.events())


# ------------------------------------------------------------------ bad input
def _bad_frames(src):
    good = P.encode(P.Lacpdu(P.PortInfo(1, P.mac_bytes(MAC["B"]), 1, 1, 1, 0x3d), P.PortInfo()))
    tlv = bytearray(good)
    tlv[3] = 19
    ver = bytearray(good)
    ver[1] = 2
    return {
        "truncated": P.frame(src, good[:60]),
        "subtype": P.frame(src, b"\x03" + good[1:]),          # OAM
        "version": P.frame(src, bytes(ver)),
        "tlv": P.frame(src, bytes(tlv)),
        "frame": src + src + b"\x08\x00" + good,              # not slow protocols
    }


def test_malformed_pdus_counted_never_crash():
    net, A, B, _ = pair(2)
    net.run(5.0)
    assert A.distributing_members() == [1, 2]
    A.events()
    src = P.mac_bytes(MAC["B"])
    for kind, f in _bad_frames(src).items():
        for _ in range(10):
            assert A.rx(1, f, net.now) == []
    rng = random.Random(4)
    for _ in range(5000):                                     # random junk, random members
        n = rng.randrange(0, 140)
        junk = bytes(rng.getrandbits(8) for _ in range(n))
        if rng.random() < 0.5 and n > 14:
            junk = P.SLOW_PROTOCOLS_MAC + src + b"\x88\x09" + junk[14:]
        A.rx(rng.choice((1, 2)), junk, net.now)
    c = A.counters()
    for kind in P.ERROR_KINDS:
        assert c["errors"][kind] >= 10
    assert c["rx_errors"] == sum(c["errors"].values())
    assert member(A, 1)["errors"]["tlv"] >= 10
    ev = A.events()
    assert any("bad slow protocols frame (version)" in e for e in ev)
    assert len([e for e in ev if "bad slow protocols frame" in e]) <= 2 * len(P.ERROR_KINDS)   # rate limited
    net.run(10.0)
    assert A.distributing_members() == [1, 2]                # aggregation untouched


def test_lacpdus_on_a_down_link_are_ignored():
    net, A, B, wires = pair(1)
    net.run(5.0)
    wires[0].set_up(False)
    assert A.distributing_members() == [] and B.distributing_members() == []
    f = P.frame(MAC["B"], P.encode(P.Lacpdu(B.actor_info(1), A.actor_info(1))))
    ignored = A.counters()["rx_ignored"]
    assert A.rx(1, f, net.now) == []
    assert A.counters()["rx_ignored"] == ignored + 1
    assert member(A, 1)["receive"] == L.RX_PORT_DISABLED


# ------------------------------------------------------------------ markers
def test_marker_information_answered_with_response():
    net, A, B, _ = pair(1)
    info = P.MarkerPdu(P.MARKER_INFO, 9, P.mac_bytes(MAC["B"]), 12345)
    out = A.rx(1, P.frame(MAC["B"], P.encode(info)), net.now)
    assert len(out) == 1
    h, f = out[0]
    assert h == 1
    src, payload = P.unframe(f)
    assert src == P.mac_bytes(MAC["A"]) and f[:6] == P.SLOW_PROTOCOLS_MAC
    assert P.decode(payload) == P.MarkerPdu(P.MARKER_RESPONSE, 9, P.mac_bytes(MAC["B"]), 12345)
    assert A.counters()["markers_rx"] == 1 and A.counters()["marker_responses_tx"] == 1


def test_marker_roundtrip_between_bonds_and_rate_limit():
    net, A, B, _ = pair(2)
    net.run(5.0)
    xid, frames = A.send_marker(2, net.now)
    assert not A.marker_answered(2, xid)
    net.send(A, frames)
    assert A.marker_answered(2, xid)
    assert B.counters()["marker_responses_tx"] == 1 and A.counters()["marker_responses_rx"] == 1
    info = P.frame(MAC["B"], P.encode(P.MarkerPdu(P.MARKER_INFO, 1, P.mac_bytes(MAC["B"]), 1)))
    answered = sum(len(A.rx(1, info, net.now)) for _ in range(20))
    assert answered == L.MARKER_RESPONSE_LIMIT
    assert A.counters()["marker_responses_dropped"] == 20 - L.MARKER_RESPONSE_LIMIT


# ------------------------------------------------------------------ transmit machine
def test_at_most_three_lacpdus_per_second():
    A = L.Bond("A", MAC["A"])
    A.add_member(1)
    sent = []
    sent += [(0.0, f) for _, f in A.link(1, True, 0.0)]
    # a partner whose view of us flips every 20 ms: every PDU asks for a new one (update_NTT)
    for i in range(50):
        t = 0.5 + i * 0.02
        me = A.actor_info(1)
        echo = P.PortInfo(me.system_priority, me.system, me.key, me.port_priority + (i % 2), me.port, me.state)
        pdu = P.Lacpdu(P.PortInfo(1, P.mac_bytes(MAC["B"]), 1, 1, 1, 0x3d), echo)
        sent += [(t, f) for _, f in A.rx(1, P.frame(MAC["B"], P.encode(pdu)), t)]
    t = 1.5
    while t < 5:
        t += 0.01
        sent += [(t, f) for _, f in A.tick(t)]
    times = [t for t, _ in sent]
    assert len(times) >= 6
    for i in range(3, len(times)):
        assert times[i] - times[i - 3] >= 1.0 - 1e-9
    assert not A.members[1].ntt                     # the pending NTT did go out once allowed


def test_next_deadline_drives_the_machines():
    """Ticking only at next_deadline() reaches the same aggregation."""
    net, A, B, _ = pair(2)
    steps = 0
    while net.now < 10.0:
        nd = [d for d in (A.next_deadline(), B.next_deadline()) if d is not None]
        assert nd, "active bonds always have a timer"
        net.now = max(net.now, min(nd))
        for b in (A, B):
            net.send(b, b.tick(net.now))
        net.check()
        steps += 1
        assert steps < 200
    assert A.distributing_members() == [1, 2] and B.distributing_members() == [1, 2]


# ------------------------------------------------------------------ link changes, fallback, modes
def test_link_down_stops_distributing_at_once_and_comes_back():
    net, A, B, wires = pair(2)
    net.run(5.0)
    gen = A.generation
    wires[0].set_up(False)                           # no time passes
    assert A.distributing_members() == [2] and B.distributing_members() == [2]
    assert A.generation == gen + 1
    assert member(A, 1)["receive"] == L.RX_PORT_DISABLED and member(A, 1)["mux"] == L.DETACHED
    wires[0].set_up(True)
    net.run(net.now + 1.0)
    assert A.distributing_members() == [2]           # waiting again
    net.run(net.now + 3.0)
    assert A.distributing_members() == [1, 2]


def test_fallback_active_backup_when_no_partner():
    net = Net()
    A = net.bond("A", (1, 2), fallback=True)
    A.set_member(2, 0.0, port_priority=100)          # the preferred member
    for m in (1, 2):
        net.send(A, A.link(m, True, 0.0))            # cabled to a switch that ignores LACP
    net.run(2.9)
    assert A.distributing_members() == [] and not A.fallback_active
    net.run(3.2)
    assert A.fallback_active and A.distributing_members() == [2]
    assert A.status()["fallback_member"] == 2
    net.send(A, A.link(2, False, net.now))
    assert A.distributing_members() == [1]
    net.send(A, A.link(2, True, net.now))
    assert A.distributing_members() == [1]           # sticky while its link stays up
    net.run(net.now + 1.0)
    assert member(A, 2)["receive"] == L.RX_EXPIRED and A.distributing_members() == [1]
    net.run(net.now + 5.0)                           # the flapped member's 3 s EXPIRED did not end it
    assert A.fallback_active and A.distributing_members() == [1]
    # a partner appears: fallback ends, LACP aggregates
    B = net.bond("B", (1, 2))
    net.wire(A, 1, B, 1)
    net.wire(A, 2, B, 2)
    net.run(net.now + 0.5)
    assert not A.fallback_active
    net.run(net.now + 4.0)
    assert A.distributing_members() == [1, 2]
    ev = "\n".join(A.events())
    assert "fallback active-backup on 2" in ev and "fallback active-backup ended" in ev


def test_no_fallback_means_no_traffic_without_partner():
    net = Net()
    A = net.bond("A", (1, 2))
    for m in (1, 2):
        net.send(A, A.link(m, True, 0.0))
    net.run(20.0)
    assert A.distributing_members() == [] and not A.fallback_active


def test_mode_off_is_a_static_aggregation():
    net, A, B, wires = pair(2, a_kw={"mode": "off"})
    net.run(10.0)
    assert A.distributing_members() == [1, 2]
    assert net.lacpdus("A") == []
    assert A.counters()["rx_ignored"] > 0            # B's LACPDUs are not ours to answer
    assert member(A, 1)["receive"] == L.RX_LACP_DISABLED
    assert B.distributing_members() == []            # B (active) finds no partner
    wires[1].set_up(False)
    assert A.distributing_members() == [1]


def test_configure_at_run_time():
    net, A, B, _ = pair(2)
    net.run(5.0)
    net.send(A, A.configure(net.now, rate="slow", mode="passive"))
    net.run(6.0)
    last = net.lacpdus("A")[-1][1]
    assert not last.actor.state & (P.TIMEOUT | P.ACTIVITY)
    assert member(B, 1)["periodic"] == L.SLOW_PERIODIC     # A now asks for slow
    assert A.distributing_members() == [1, 2]              # no flap for activity/timeout bits
    net.send(A, A.configure(net.now, mode="off"))
    assert A.distributing_members() == [1, 2] and not A.lacp_enabled
    net.send(A, A.configure(net.now, mode="active"))
    net.run(net.now + 5.0)
    assert A.distributing_members() == [1, 2] and member(A, 1)["mux"] == L.COLLECTING_DISTRIBUTING


def test_port_moved_resets_the_old_member():
    net, A, B, wires = pair(2)
    net.run(5.0)
    wires[0].set_up(False)                       # A/1 keeps B/1 as its (old) partner while down
    assert member(A, 1)["partner"]["port"] == 1
    f = P.frame(MAC["B"], P.encode(P.Lacpdu(B.actor_info(1), P.PortInfo())))
    net.send(A, A.rx(2, f, net.now))             # B's port 1 now heard on A/2: it moved
    assert member(A, 1)["partner"]["system"] == "00:00:00:00:00:00"
    assert member(A, 1)["receive"] == L.RX_PORT_DISABLED


def test_remove_member():
    net, A, B, _ = pair(2)
    net.run(5.0)
    net.send(A, A.remove_member(2, net.now))
    assert A.distributing_members() == [1]
    with pytest.raises(L.LacpError):
        A.link(2, True, net.now)


def test_status_is_json_and_complete():
    net, A, B, _ = pair(2)
    net.run(5.0)
    s = json.loads(json.dumps(A.status()))
    assert s["name"] == "A" and s["mode"] == "active" and s["rate"] == "fast"
    assert s["system"] == MAC["A"] and s["key"] == 1 and s["negotiated"]
    assert s["distributing"] == [1, 2]
    assert s["counters"]["lacpdus_rx"] > 0 and s["counters"]["lacpdus_tx"] > 0
    m = s["members"][0]
    for k in ("port_id", "port_priority", "link_up", "receive", "mux", "periodic", "selected",
              "actor", "partner", "counters", "errors", "collecting", "distributing"):
        assert k in m
    assert m["actor"]["port"] == 1 and m["partner"]["system"] == MAC["B"]


def test_bad_configuration_refused():
    for kw in ({"mode": "on"}, {"rate": "medium"}, {"key": 70000}, {"system_priority": -1}):
        with pytest.raises(L.LacpError):
            L.Bond("x", MAC["A"], **kw)
    for mac in ("01:00:00:00:00:01", "00:00:00:00:00:00", "nonsense"):
        with pytest.raises(L.LacpError):
            L.Bond("x", mac)
    b = L.Bond("x", MAC["A"])
    b.add_member("eth0", port_id=5)
    with pytest.raises(L.LacpError):
        b.add_member("eth0")
    with pytest.raises(L.LacpError):
        b.add_member("eth1", port_id=5)
    with pytest.raises(L.LacpError):
        b.add_member("eth1", port_id=0)
    with pytest.raises(L.LacpError):
        b.rx("nope", b"", 0.0)
    b.add_member("eth1")
    assert b.actor_info("eth1").port == 1


def test_time_never_runs_backwards():
    net, A, B, _ = pair(1)
    net.run(5.0)
    before = A.status()
    assert A.tick(1.0) == []                         # treated as 5.0: nothing is due
    assert A.status() == before
    assert A.next_deadline() > 5.0


@pytest.mark.parametrize("seed", range(8))
def test_chaos_then_converges(seed):
    """Random link flaps, one-way losses, corrupted frames and key/mode changes never break
    the invariants; once the chaos stops, both bonds aggregate every member again."""
    rng = random.Random(seed)
    net, A, B, wires = pair(3, a_kw={"rate": rng.choice(["fast", "slow"])})

    def corrupt(f):
        b = bytearray(f)
        b[rng.randrange(14, len(b))] = rng.getrandbits(8)
        return bytes(b)
    t = 0.0
    for _ in range(150):
        t += rng.uniform(0.05, 3.0)
        net.run(t, step=0.25)
        w = rng.choice(wires)
        r = rng.random()
        if r < 0.3:
            w.set_up(not w.up)
        elif r < 0.5:
            w.blocked ^= {rng.choice("AB")}
        elif r < 0.65:
            w.tamper = {} if w.tamper else {rng.choice("AB"): corrupt}
        elif r < 0.75:
            net.send(B, B.configure(net.now, key=rng.choice([1, 2])))
        elif r < 0.85:
            net.send(A, A.configure(net.now, mode=rng.choice(["active", "passive"])))
        else:
            xid, frames = A.send_marker(rng.choice([1, 2, 3]), net.now)
            net.send(A, frames)
    for w in wires:
        w.blocked.clear()
        w.tamper.clear()
        if not w.up:
            w.set_up(True)
    net.send(A, A.configure(net.now, mode="active"))
    net.run(net.now + 100.0, step=0.5)
    assert A.distributing_members() == [1, 2, 3] and B.distributing_members() == [1, 2, 3]
