"""Bonds with LACP against real peers, in network namespaces (root only).

    hA (netns) -- vdp [port 1 | bond vb0 = N veth members] ==N veths== OVS netdev bond -- hB (netns)
                                                                      (lacp=active, lacp-time=fast,
                                                                       bond_mode=balance-tcp)

  - both sides negotiate: `ovs-appctl lacp/show` (parsed) says negotiated
    and every member current/attached with collecting+distributing on both
    actor and partner; `vdp ctl --json lacp/show` says the same from our
    side, with OVS's system id as partner;
  - 1,000 UDP flows each way arrive whole and spread over every member in
    both directions (vdp's member counters: tx = our hash, rx = OVS's);
  - a member's link taken down: both sides stop using it, the flows move to
    the others and arrive whole; back up: it negotiates again and carries
    our flows again;
  - a silent partner on one member (OVS's end of that veth drops all it
    sends: a pfifo qdisc with limit 0; the link stays up): with fast LACP
    our side stops using the member (its partner info expires after 3 s);
    the time is printed, not asserted (bench/bond_pps.py measures it).
  - two vdp daemons bonded to each other over 3 veth pairs.

Names: veths vdpt-bo<tag>*, OVS bridges vdptb-bo<tag> (datapath_type=netdev,
deleted after the test, even on failure); namespaces from topo.py.  Never
touches other bridges.  Traffic comes from tests/integration/bondtraffic.py
inside the host namespaces (paced: OVS's userspace datapath on this busy
2-core machine drops bursts, and loss there is not what is tested).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from topo import Host, run, wait_for

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, veths, OVS"),
    pytest.mark.skipif(shutil.which("ovs-vsctl") is None, reason="needs Open vSwitch"),
]

TRAFFIC = str(Path(__file__).resolve().parent / "bondtraffic.py")
FLOWS = 1000
DPORT = 9999
GAP_US = 10000           # pause per 32 frames: ~3 k frames/s


def ovs_running():
    return subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True).returncode == 0


# ---------------------------------------------------------------- parsing OVS

def parse_ovs_lacp(text):
    """`ovs-appctl lacp/show BOND` -> {"status": "...", "sys_id": ..., "members":
    {name: {"status": "current attached", "actor state": {...}, "partner
    state": {...}, "partner sys_id": ...}}}."""
    out = {"members": {}}
    cur = out
    for line in text.splitlines():
        m = re.match(r"member: (\S+): (.*)$", line)
        if m:
            cur = out["members"][m.group(1)] = {"status": m.group(2).strip()}
            continue
        m = re.match(r"\s+([a-z_ ]+?): (.*)$", line)
        if m:
            k, v = m.group(1).strip(), m.group(2).strip()
            cur[k] = set(v.split()) if k.endswith(" state") else v
    return out


def parse_ovs_bond(text):
    """`ovs-appctl bond/show BOND` -> {member: "enabled"|"disabled"}."""
    return dict(re.findall(r"^member (\S+): (enabled|disabled)", text, re.M))


CD = {"collecting", "distributing", "synchronized"}


# ---------------------------------------------------------------- the lab

class Lab:
    def __init__(self, topo):
        self.topo = topo
        self.tag = topo.tag
        self.bridges = []
        self.qdiscs = []
        self.hosts = {}

    def name(self, rest):
        n = f"vdpt-bo{self.tag}{rest}"
        assert len(n) <= 15, n
        return n

    def host(self, hname, ip, n):
        t = self.topo
        ns = t.add_netns(hname)
        sw, hi = t.add_veth(self.name(f"s{n}"), self.name(f"h{n}"))
        run(["ip", "link", "set", hi, "netns", ns])
        t.links.remove(hi)
        h = Host(t, hname, ns, hi, ip=ip, port=sw)
        run(["ip", "link", "set", sw, "up"])
        t._configure(h)
        t.hosts[hname] = h
        self.hosts[hname] = h
        return h

    def pair(self, k, i):
        """veth pair k/i: (end a, end b), both up in the root namespace."""
        a, b = self.topo.add_veth(self.name(f"{k}{i}a"), self.name(f"{k}{i}b"))
        for x in (a, b):
            run(["ip", "link", "set", x, "up"])
        return a, b

    def ovs_bridge(self, members, host_port, lacp="active", mode="balance-tcp"):
        br = f"vdptb-bo{self.tag}"
        bond = f"{br}b"
        self.bridges.append(br)
        run(["ovs-vsctl", "--timeout=20", "add-br", br, "--", "set", "bridge", br,
             "datapath_type=netdev"])
        run(["ovs-vsctl", "--timeout=20", "add-bond", br, bond] + list(members)
            + [f"lacp={lacp}", f"bond_mode={mode}", "other_config:lacp-time=fast"])
        run(["ovs-vsctl", "--timeout=20", "add-port", br, host_port])
        return br, bond

    def blackhole(self, ifname, on):
        """Drops everything ifname sends (the link stays up)."""
        if on:
            run(["tc", "qdisc", "add", "dev", ifname, "root", "pfifo", "limit", "0"])
            self.qdiscs.append(ifname)
        else:
            run(["tc", "qdisc", "del", "dev", ifname, "root"], check=False)
            self.qdiscs.remove(ifname)

    def cleanup(self):
        for ifname in list(self.qdiscs):
            run(["tc", "qdisc", "del", "dev", ifname, "root"], check=False)
        for br in self.bridges:
            run(["ovs-vsctl", "--timeout=20", "--if-exists", "del-br", br], check=False)

    # -- traffic
    def exchange(self, a, b, flows=FLOWS, rounds=2, both=True):
        """flows x rounds UDP frames a -> b (and b -> a); returns
        ({sport: n} received at b, the same at a)."""
        recvs = {}
        for h in ((b, a) if both else (b,)):
            p = h.popen([sys.executable, TRAFFIC, "recv", DPORT, 2.0, 120], name=f"{h.name}-recv")
            wait_for(lambda p=p: p.poll() is not None or "ready" in Path(p.vdpt_stderr).read_text(),
                     timeout=20, what="receiver ready")
            recvs[h.name] = p
        pairs = [(a, b), (b, a)] if both else [(a, b)]
        for src, dst in pairs:
            src.run([sys.executable, TRAFFIC, "send", src.ifname, src.mac, dst.mac, src.ip, dst.ip,
                     flows, rounds, 10000, DPORT, GAP_US], timeout=300)
        out = {}
        for name, p in recvs.items():
            p.wait(timeout=180)
            res = json.loads(Path(p.vdpt_stdout).read_text())
            out[name] = {int(k): v for k, v in res["per_sport"].items()}
        return out.get(b.name), out.get(a.name)

    def warm(self, a, b):
        """A few frames each way (another UDP port) so both switches learn
        the hosts' MACs."""
        for src, dst in ((a, b), (b, a)):
            src.run([sys.executable, TRAFFIC, "send", src.ifname, src.mac, dst.mac, src.ip,
                     dst.ip, 1, 3, 30000, DPORT - 1, 0])


@pytest.fixture
def lab(topo):
    if not ovs_running():
        pytest.skip("ovs-vswitchd is not running")
    lab = Lab(topo)
    try:
        yield lab
    finally:
        lab.cleanup()


def vdp_members(d):
    st = d.ctl_cmd("bond/show")[0]
    return {m["name"]: m for m in st["members"]}


def vdp_lacp(d):
    return d.ctl_cmd("lacp/show")[0]


def all_received(got, flows=FLOWS, rounds=2):
    return got is not None and len(got) == flows and all(v == rounds for v in got.values())


def delta(after, before, key):
    return {n: after[n][key] - before[n][key] for n in after}


def lacp_args(mode="balance-l4"):
    return ["--bond-mode", mode, "--lacp", "active", "--lacp-time", "fast"]


# ---------------------------------------------------------------- vdp <-> OVS

def setup_ovs(lab, n):
    hA = lab.host("hA", "10.77.0.1/24", 1)
    hB = lab.host("hB", "10.77.0.2/24", 2)
    pairs = [lab.pair("m", i) for i in range(1, n + 1)]
    ovs_ends = [a for a, _ in pairs]
    our_ends = [b for _, b in pairs]
    br, bond = lab.ovs_bridge(ovs_ends, hB.port)
    d = lab.topo.start_vdp([hA], extra=["--bond", "vb0=" + ",".join(our_ends)] + lacp_args())
    return hA, hB, ovs_ends, our_ends, bond, d


def ovs_lacp(bond):
    return parse_ovs_lacp(run(["ovs-appctl", "lacp/show", bond]).stdout)


def ovs_bond(bond):
    return parse_ovs_bond(run(["ovs-appctl", "bond/show", bond]).stdout)


def both_negotiated(d, bond, members, ours):
    o = ovs_lacp(bond)
    if "negotiated" not in o.get("status", "") or set(o["members"]) != set(members):
        return False
    for m in o["members"].values():
        if m["status"] != "current attached" or not CD <= m.get("actor state", set()) \
                or not CD <= m.get("partner state", set()):
            return False
    v = vdp_lacp(d)
    return v["status"] == "negotiated" and v["distributing"] == ours and \
        all(m["mux"] == "COLLECTING_DISTRIBUTING" for m in v["members"])


@pytest.mark.parametrize("n", [2, 3])
def test_bond_against_ovs_lacp(lab, n):
    hA, hB, ovs_ends, ours, bond, d = setup_ovs(lab, n)
    wait_for(lambda: both_negotiated(d, bond, ovs_ends, ours), timeout=30,
             what="LACP negotiated on both sides")
    o, v = ovs_lacp(bond), vdp_lacp(d)
    assert o["status"] == "active negotiated"
    assert v["partner"]["system"] == o["sys_id"]
    for m in v["members"]:
        assert CD <= set(m["actor"]["state_names"]) and CD <= set(m["partner"]["state_names"])
    for m in o["members"].values():
        assert m["partner sys_id"] == v["system"]
    st = d.ctl_cmd("bond/show")[0]
    assert st["link_up"] and all(m["enabled"] and m["collecting"] for m in st["members"])
    assert sorted(m["buckets"] for m in st["members"])[0] >= 256 // n - 1
    ports = {p["name"]: p for p in d.ctl_cmd("show")["ports"]}
    assert set(ports) == {hA.port, "vb0"} and ports["vb0"]["link_up"]

    # many flows, both directions: all arrive, every member carries some each way
    lab.warm(hA, hB)
    before = vdp_members(d)
    at_b, at_a = lab.exchange(hA, hB)
    assert all_received(at_b) and all_received(at_a)
    after = vdp_members(d)
    tx, rx = delta(after, before, "tx_packets"), delta(after, before, "rx_packets")
    floor = FLOWS * 2 // (4 * n)
    assert all(x >= floor for x in tx.values()), tx           # our hash
    assert all(x >= floor for x in rx.values()), rx           # OVS's balance-tcp
    ports = {p["name"]: p for p in d.ctl_cmd("dump-ports")}   # one port, the members' sum
    assert ports["vb0"]["tx_packets"] >= FLOWS * 2 and ports["vb0"]["rx_packets"] >= FLOWS * 2

    # a member's link goes down: its flows move to the others, none lost after
    k = n - 1
    run(["ip", "link", "set", ours[k], "down"])
    wait_for(lambda: not vdp_members(d)[ours[k]]["enabled"]
             and ovs_bond(bond).get(ovs_ends[k]) == "disabled", timeout=15,
             what="both sides stop using the member")
    st = d.ctl_cmd("bond/show")[0]
    assert [m["buckets"] for m in st["members"]][k] == 0
    before = vdp_members(d)
    at_b, at_a = lab.exchange(hA, hB)
    assert all_received(at_b) and all_received(at_a)
    after = vdp_members(d)
    tx, rx = delta(after, before, "tx_packets"), delta(after, before, "rx_packets")
    assert tx[ours[k]] == 0 and rx[ours[k]] == 0
    assert all(tx[m] > 0 for m in ours if m != ours[k])

    # back up: negotiated again, and our flows use it again
    run(["ip", "link", "set", ours[k], "up"])
    wait_for(lambda: both_negotiated(d, bond, ovs_ends, ours), timeout=30,
             what="the member negotiated again")
    before = vdp_members(d)
    at_b, at_a = lab.exchange(hA, hB)
    assert all_received(at_b) and all_received(at_a)
    tx = delta(vdp_members(d), before, "tx_packets")
    assert tx[ours[k]] >= floor, tx
    log = d.log_text()
    assert f"member {ours[k]}: link down" in log and f"member {ours[k]}: collecting+distributing -> disabled" in log


def test_silent_ovs_partner_detected_with_fast_lacp(lab):
    hA, hB, ovs_ends, ours, bond, d = setup_ovs(lab, 2)
    wait_for(lambda: both_negotiated(d, bond, ovs_ends, ours), timeout=30,
             what="LACP negotiated on both sides")
    lab.blackhole(ovs_ends[0], True)          # OVS's end of member 0 goes silent
    t0 = time.monotonic()
    wait_for(lambda: not vdp_members(d)[ours[0]]["enabled"], timeout=15, interval=0.05,
             what="the silent member disabled")
    print(f"\nsilent partner detected after {time.monotonic() - t0:.2f} s (fast LACP)")
    lm = {m["name"]: m for m in vdp_lacp(d)["members"]}
    assert lm[ours[0]]["receive"] in ("EXPIRED", "DEFAULTED")
    assert lm[ours[1]]["receive"] == "CURRENT" and lm[ours[1]]["mux"] == "COLLECTING_DISTRIBUTING"
    # traffic avoids the member on our side; OVS (it still hears us) stops once
    # our member defaults and tells it we are out of sync
    wait_for(lambda: ovs_bond(bond).get(ovs_ends[0]) == "disabled", timeout=15,
             what="OVS stops using the member")
    lab.warm(hA, hB)
    at_b, at_a = lab.exchange(hA, hB, flows=300)
    assert all_received(at_b, 300) and all_received(at_a, 300)
    # the partner speaks again: the member comes back
    lab.blackhole(ovs_ends[0], False)
    wait_for(lambda: both_negotiated(d, bond, ovs_ends, ours), timeout=30,
             what="negotiated again")


# ---------------------------------------------------------------- vdp <-> vdp

def test_two_vdp_bonded_over_three_veths(lab):
    hA = lab.host("hA", "10.78.0.1/24", 1)
    hB = lab.host("hB", "10.78.0.2/24", 2)
    pairs = [lab.pair("p", i) for i in range(1, 4)]
    a_ends = [a for a, _ in pairs]
    b_ends = [b for _, b in pairs]
    t = lab.topo
    dA = t.start_vdp([hA], name=f"vdpt{lab.tag}A",
                     extra=["--bond", "bA=" + ",".join(a_ends)] + lacp_args())
    dB = t.start_vdp([hB], name=f"vdpt{lab.tag}B",
                     extra=["--bond", "bB=" + ",".join(b_ends)] + lacp_args() + ["--lacp-key", "9"])

    def up():
        la, lb = vdp_lacp(dA), vdp_lacp(dB)
        return (la["status"] == lb["status"] == "negotiated"
                and la["distributing"] == a_ends and lb["distributing"] == b_ends)
    wait_for(up, timeout=30, what="two vdp bonds negotiated")
    la, lb = vdp_lacp(dA), vdp_lacp(dB)
    assert la["partner"] == {"system_priority": lb["system_priority"], "system": lb["system"],
                             "key": 9}
    assert lb["partner"]["system"] == la["system"] and lb["partner"]["key"] == la["key"]
    lab.warm(hA, hB)
    before_a, before_b = vdp_members(dA), vdp_members(dB)
    at_b, at_a = lab.exchange(hA, hB)
    assert all_received(at_b) and all_received(at_a)
    txa = delta(vdp_members(dA), before_a, "tx_packets")
    txb = delta(vdp_members(dB), before_b, "tx_packets")
    assert all(x >= FLOWS * 2 // 12 for x in txa.values()), txa
    assert all(x >= FLOWS * 2 // 12 for x in txb.values()), txb
    # link down on one pair (B's end): both daemons move its flows
    run(["ip", "link", "set", b_ends[1], "down"])
    wait_for(lambda: not vdp_members(dA)[a_ends[1]]["enabled"]
             and not vdp_members(dB)[b_ends[1]]["enabled"], timeout=15,
             what="both sides drop the member")
    at_b, at_a = lab.exchange(hA, hB)
    assert all_received(at_b) and all_received(at_a)
    run(["ip", "link", "set", b_ends[1], "up"])
    wait_for(up, timeout=30, what="the member back on both sides")
    before_a = vdp_members(dA)
    at_b, at_a = lab.exchange(hA, hB)
    assert all_received(at_b) and all_received(at_a)
    assert delta(vdp_members(dA), before_a, "tx_packets")[a_ends[1]] > 0
