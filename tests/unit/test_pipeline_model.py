"""Property test: random rule sets (random masks over many fields,
priorities, several tables with goto, metadata, apply/write/clear actions)
and random packets through ext/pipeline.c must give the same outputs and
table counters as a plain-Python model of OpenFlow 1.3 matching."""
import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from datapath.fastpath import Datapath, DummyPort
from datapath.model import (FIELD_BITS, ApplyActions, ClearActions, FlowSpec, GotoTable,
                            Match, Output, WriteActions, WriteMetadata)

N_TABLES = 4
N_PORTS = 4
MACS = [0x020000000001, 0x020000000002, 0x0a00000000f1, 0x02ff00000001]
IP4S = [0x0a000001, 0x0a000102, 0xc0a80001, 0x0a0000fe]
IP6S = [int(ipaddress.IPv6Address(a)) for a in ("2001:db8::1", "2001:db8::2:1", "fe80::1")]
L4PORTS = [53, 80, 443, 1000]
VIDS = [1, 2, 100]


# ---------------------------------------------------------------- packets
@st.composite
def packets(draw):
    kind = draw(st.sampled_from(["tcp4", "udp4", "arp", "tcp6", "udp6", "l2"]))
    p = {"in_port": draw(st.integers(1, N_PORTS)),
         "eth_src": draw(st.sampled_from(MACS)), "eth_dst": draw(st.sampled_from(MACS))}
    vid = draw(st.sampled_from([None] + VIDS))
    p["vlan_vid"] = 0 if vid is None else 0x1000 | vid
    if kind in ("tcp4", "udp4"):
        p.update(eth_type=0x800, ip_proto=6 if kind == "tcp4" else 17,
                 ipv4_src=draw(st.sampled_from(IP4S)), ipv4_dst=draw(st.sampled_from(IP4S)),
                 ip_dscp=draw(st.sampled_from([0, 10, 46])))
    elif kind == "arp":
        p.update(eth_type=0x806, arp_op=draw(st.sampled_from([1, 2])),
                 arp_spa=draw(st.sampled_from(IP4S)), arp_tpa=draw(st.sampled_from(IP4S)))
    elif kind in ("tcp6", "udp6"):
        p.update(eth_type=0x86dd, ip_proto=6 if kind == "tcp6" else 17,
                 ipv6_src=draw(st.sampled_from(IP6S)), ipv6_dst=draw(st.sampled_from(IP6S)),
                 ip_dscp=0)
    else:
        p.update(eth_type=0x9000)
    if kind in ("tcp4", "tcp6"):
        p.update(tcp_src=draw(st.sampled_from(L4PORTS)), tcp_dst=draw(st.sampled_from(L4PORTS)))
    elif kind in ("udp4", "udp6"):
        p.update(udp_src=draw(st.sampled_from(L4PORTS)), udp_dst=draw(st.sampled_from(L4PORTS)))
    return p


def mac_str(v):
    return ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))


def ip4_str(v):
    return str(ipaddress.IPv4Address(v))


def build(p):
    et = p["eth_type"]
    if p["vlan_vid"]:
        f = Ether(src=mac_str(p["eth_src"]), dst=mac_str(p["eth_dst"])) / \
            Dot1Q(vlan=p["vlan_vid"] & 0xfff, type=et)
    else:
        f = Ether(src=mac_str(p["eth_src"]), dst=mac_str(p["eth_dst"]), type=et)
    if et == 0x800:
        f = f / IP(src=ip4_str(p["ipv4_src"]), dst=ip4_str(p["ipv4_dst"]), tos=p["ip_dscp"] << 2)
    elif et == 0x86dd:
        f = f / IPv6(src=str(ipaddress.IPv6Address(p["ipv6_src"])),
                     dst=str(ipaddress.IPv6Address(p["ipv6_dst"])))
    elif et == 0x806:
        f = f / ARP(op=p["arp_op"], psrc=ip4_str(p["arp_spa"]), pdst=ip4_str(p["arp_tpa"]))
    else:
        f = f / (b"\x00" * 30)
    if "tcp_src" in p:
        f = f / TCP(sport=p["tcp_src"], dport=p["tcp_dst"])
    elif "udp_src" in p:
        f = f / UDP(sport=p["udp_src"], dport=p["udp_dst"])
    return bytes(f)


# ---------------------------------------------------------------- rules
def masked(draw, name, domain):
    """(value, mask|None) for a field: exact, or a random mask."""
    bits = FIELD_BITS[name]
    v = draw(st.sampled_from(domain))
    if draw(st.booleans()) and name in ("eth_src", "eth_dst", "ipv4_src", "ipv4_dst",
                                        "arp_spa", "arp_tpa", "ipv6_src", "ipv6_dst",
                                        "metadata"):
        mask = draw(st.integers(0, (1 << bits) - 1))
        if draw(st.booleans()):                  # prefix-shaped
            n = draw(st.integers(0, bits))
            mask = ((1 << n) - 1) << (bits - n)
        return v & mask, mask
    return v, None


@st.composite
def matches(draw):
    m = {}
    if draw(st.booleans()):
        m["in_port"] = (draw(st.integers(1, N_PORTS)), None)
    for f in ("eth_src", "eth_dst"):
        if draw(st.integers(0, 3)) == 0:
            m[f] = masked(draw, f, MACS)
    vv = draw(st.integers(0, 5))
    if vv == 1:
        m["vlan_vid"] = (0, None)
    elif vv == 2:
        m["vlan_vid"] = (0x1000, 0x1000)
    elif vv == 3:
        m["vlan_vid"] = (0x1000 | draw(st.sampled_from(VIDS)), None)
    if draw(st.integers(0, 3)) == 0:
        m["metadata"] = masked(draw, "metadata", [0, 1, 0x10, 0xff00000000000011])
    cls = draw(st.sampled_from(["none", "ip4", "ip4", "arp", "ip6"]))
    if cls == "ip4":
        m["eth_type"] = (0x800, None)
        for f in ("ipv4_src", "ipv4_dst"):
            if draw(st.booleans()):
                m[f] = masked(draw, f, IP4S)
        if draw(st.booleans()):
            m["ip_dscp"] = (draw(st.sampled_from([0, 10])), None)
    elif cls == "arp":
        m["eth_type"] = (0x806, None)
        for f in ("arp_spa", "arp_tpa"):
            if draw(st.booleans()):
                m[f] = masked(draw, f, IP4S)
        if draw(st.booleans()):
            m["arp_op"] = (draw(st.sampled_from([1, 2])), None)
    elif cls == "ip6":
        m["eth_type"] = (0x86dd, None)
        for f in ("ipv6_src", "ipv6_dst"):
            if draw(st.booleans()):
                m[f] = masked(draw, f, IP6S)
    if cls in ("ip4", "ip6") and draw(st.booleans()):
        proto = draw(st.sampled_from([6, 17]))
        m["ip_proto"] = (proto, None)
        l4 = "tcp" if proto == 6 else "udp"
        for d in ("src", "dst"):
            if draw(st.booleans()):
                m[f"{l4}_{d}"] = (draw(st.sampled_from(L4PORTS)), None)
    keys = list(m)
    order = draw(st.permutations(keys))
    return {k: m[k] for k in order}


@st.composite
def instructions(draw, table):
    insns = []
    if draw(st.integers(0, 4)) == 0:
        insns.append(ApplyActions(tuple(Output(draw(st.integers(1, N_PORTS)))
                                        for _ in range(draw(st.integers(1, 2))))))
    if draw(st.integers(0, 5)) == 0:
        insns.append(ClearActions())
    if draw(st.booleans()):
        insns.append(WriteActions((Output(draw(st.integers(1, N_PORTS))),)))
    if draw(st.integers(0, 3)) == 0:
        insns.append(WriteMetadata(draw(st.sampled_from([1, 0x10, 0xff00000000000000])),
                                   draw(st.sampled_from([0xffffffffffffffff, 0xff, 0xff00000000000000]))))
    if table < N_TABLES - 1 and draw(st.booleans()):
        insns.append(GotoTable(draw(st.integers(table + 1, N_TABLES - 1))))
    return tuple(insns)


@st.composite
def rules(draw):
    out = []
    for t in range(N_TABLES):
        prios = draw(st.lists(st.integers(0, 200), max_size=8, unique=True))
        for pr in prios:
            out.append((t, pr, draw(matches()), draw(instructions(t))))
    return out


# ---------------------------------------------------------------- model
def field_matches(pkt, name, value, mask, metadata):
    pv = metadata if name == "metadata" else pkt.get(name)
    if pv is None:
        return False
    if mask is None:
        return pv == value
    return (pv & mask) == (value & mask)


def model_run(rule_list, pkt, lookups, matched):
    """Outputs (sorted port list) of one packet; updates counters."""
    tables = {}
    for t, pr, m, ins in rule_list:
        tables.setdefault(t, {})[(pr, tuple(sorted(m.items())))] = (pr, m, ins)
    md = 0
    outs = []
    action_out = None
    t = 0
    while True:
        lookups[t] += 1
        cands = [(pr, m, ins) for pr, m, ins in tables.get(t, {}).values()
                 if all(field_matches(pkt, k, v, msk, md) for k, (v, msk) in m.items())]
        if not cands:
            return sorted(p for p in outs if p != pkt["in_port"])
        matched[t] += 1
        pr, m, ins = max(cands, key=lambda c: c[0])
        goto = None
        for i in ins:
            if isinstance(i, ApplyActions):
                outs += [a.port for a in i.actions]
            elif isinstance(i, ClearActions):
                action_out = None
            elif isinstance(i, WriteActions):
                action_out = i.actions[-1].port
            elif isinstance(i, WriteMetadata):
                md = (md & ~i.mask) | (i.metadata & i.mask)
            elif isinstance(i, GotoTable):
                goto = i.table_id
        # the datapath applies instructions in OpenFlow order whatever the
        # order in the list: apply, clear, write, metadata, goto
        if goto is None:
            break
        t = goto
    if action_out is not None:
        outs.append(action_out)
    return sorted(p for p in outs if p != pkt["in_port"])


def canonical(ins):
    """Instructions in OpenFlow's execution order (the model runs them in
    list order, so give it that order)."""
    order = {ApplyActions: 0, ClearActions: 1, WriteActions: 2, WriteMetadata: 3, GotoTable: 4}
    return tuple(sorted(ins, key=lambda i: order[type(i)]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules(), st.lists(packets(), min_size=1, max_size=12))
def test_pipeline_matches_model(rule_list, pkts):
    rule_list = [(t, pr, m, canonical(ins)) for t, pr, m, ins in rule_list]
    dp = Datapath(N_TABLES)
    ports = {i: DummyPort(f"m{i}") for i in range(1, N_PORTS + 1)}
    for i, p in ports.items():
        dp.attach_port(i, p)
    for t, pr, m, ins in rule_list:
        dp.flow_add(FlowSpec(table_id=t, priority=pr, match=Match(m), instructions=ins))
    lookups = [0] * N_TABLES
    matched = [0] * N_TABLES
    for rep in range(2):                       # second pass: cache hits
        for pkt in pkts:
            expect = model_run(rule_list, pkt, lookups, matched)
            ports[pkt["in_port"]].inject(build(pkt))
            dp.run_dummy()
            got = sorted(i for i, p in ports.items() for _ in p.take_tx())
            assert got == expect, (pkt, rep)
    ts = dp.table_stats()
    assert [t["lookup_count"] for t in ts] == lookups
    assert [t["matched_count"] for t in ts] == matched
    # flows() gives each match back in the order it was given
    got = {(s.spec.table_id, s.spec.priority): list(s.spec.match.fields)
           for s in dp.flows()}
    for t, pr, m, ins in rule_list:
        assert got[(t, pr)] == list(m)
