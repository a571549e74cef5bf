"""The NORMAL action (ext/normal.c): VLAN-aware MAC learning switch, driven
through the pipeline with dummy ports."""
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from datapath.fastpath import Datapath, DummyPort
from datapath.model import (OFPP_NORMAL, ApplyActions, FlowSpec, GotoTable, Match, Output,
                            PushVlan, SetField)

OFPPC_PORT_DOWN, OFPPC_NO_FWD = 1, 32
A, B, C, D = (f"02:00:00:00:00:0{i}" for i in range(1, 5))
BCAST = "ff:ff:ff:ff:ff:ff"


def mac(s):
    return int(s.replace(":", ""), 16)


class Sw:
    def __init__(self, n=4):
        self.dp = Datapath(4)
        self.ports = {i: DummyPort(f"n{i}") for i in range(1, n + 1)}
        for i, p in self.ports.items():
            self.dp.attach_port(i, p)
        self.dp.flow_add(FlowSpec(priority=0, instructions=(ApplyActions((Output(OFPP_NORMAL),)),)))

    def send(self, port, src, dst, vlan=None, now=None):
        f = Ether(src=src, dst=dst)
        if vlan is not None:
            f = f / Dot1Q(vlan=vlan)
        f = f / IP() / UDP() / b"payload"
        self.ports[port].inject(bytes(f))
        self.dp.run_dummy(now=now)
        return self.outports()

    def outports(self):
        return sorted(i for i, p in self.ports.items() if p.take_tx())


@pytest.fixture
def sw():
    return Sw()


def test_learn_and_forward(sw):
    assert sw.send(1, A, B) == [2, 3, 4]          # B unknown: flood, never to ingress
    assert sw.send(2, B, A) == [1]                # A learned on 1
    assert sw.send(1, A, B) == [2]                # B learned on 2
    assert sw.dp.mac_lookup(0, mac(A)) == 1 and sw.dp.mac_lookup(0, mac(B)) == 2
    assert sw.dp.mac_stats()["count"] == 2


def test_broadcast_and_multicast_flood(sw):
    sw.send(2, B, A)
    assert sw.send(1, A, BCAST) == [2, 3, 4]
    assert sw.send(1, A, "01:00:5e:00:00:01") == [2, 3, 4]
    # a multicast source is never learned
    sw.send(3, "01:00:5e:00:00:09", A)
    assert sw.dp.mac_lookup(0, mac("01:00:5e:00:00:09")) is None


def test_never_back_to_ingress(sw):
    sw.send(1, A, BCAST)
    sw.send(1, B, BCAST)                          # A and B both behind port 1
    assert sw.send(1, B, A) == []


def test_station_move(sw):
    sw.send(1, A, BCAST)
    assert sw.send(2, B, A) == [1]
    sw.send(3, A, BCAST)                          # A moved to port 3
    assert sw.dp.mac_lookup(0, mac(A)) == 3
    assert sw.send(2, B, A) == [3]


def test_vlans_are_separate(sw):
    sw.send(1, A, BCAST, vlan=10)
    assert sw.dp.mac_lookup(10, mac(A)) == 1
    assert sw.dp.mac_lookup(20, mac(A)) is None
    assert sw.send(2, B, A, vlan=20) == [1, 3, 4]  # unknown in vlan 20: flood
    assert sw.send(2, B, A, vlan=10) == [1]
    assert sw.send(2, B, A) == [1, 3, 4]           # untagged is its own vlan
    sw.ports[2].inject(bytes(Ether(src=B, dst=A) / Dot1Q(vlan=10) / IP() / UDP()))
    sw.dp.run_dummy()
    (frame,) = sw.ports[1].take_tx()
    assert Ether(frame)[Dot1Q].vlan == 10           # forwarded with its tag


def test_aging_with_warped_time(sw):
    t0 = 10_000.0
    sw.dp.normal_aging = 60
    assert sw.dp.normal_aging == 60
    sw.send(1, A, BCAST, now=t0)
    assert sw.send(2, B, A, now=t0 + 59) == [1]
    assert sw.send(2, B, A, now=t0 + 61) == [1, 3, 4]   # aged: flooded again
    sw.send(1, A, BCAST, now=t0 + 62)
    assert sw.dp.mac_lookup(0, mac(A), now=t0 + 100) == 1
    # the sweep drops what aged (A refreshed at t0+62, B at t0+61)
    assert sw.dp.mac_expire(now=t0 + 122) == 1           # B only
    assert sw.dp.mac_stats()["count"] == 1
    assert sw.dp.mac_expire(now=t0 + 200) == 1
    assert sw.dp.mac_stats()["count"] == 0


def test_table_limit_evicts_oldest():
    sw = Sw()
    sw.dp.normal_set_size(4)
    macs = [f"02:00:00:00:01:{i:02x}" for i in range(6)]
    for i, m in enumerate(macs):
        sw.send(1 + i % 4, m, BCAST, now=100.0 + i)
    st = sw.dp.mac_stats()
    assert st["count"] == 4 and st["max"] == 4 and st["evictions"] == 2
    assert sw.dp.mac_lookup(0, mac(macs[0]), now=110.0) is None
    assert sw.dp.mac_lookup(0, mac(macs[1]), now=110.0) is None
    assert [sw.dp.mac_lookup(0, mac(m), now=110.0) for m in macs[2:]] == [3, 4, 1, 2]
    # refreshing an entry protects it from the next eviction
    sw.send(3, macs[2], BCAST, now=111.0)
    sw.send(1, "02:00:00:00:02:00", BCAST, now=112.0)
    assert sw.dp.mac_lookup(0, mac(macs[2]), now=113.0) == 3
    assert sw.dp.mac_lookup(0, mac(macs[3]), now=113.0) is None


def test_flood_and_unicast_respect_port_state(sw):
    sw.send(2, B, BCAST)
    sw.dp.set_port_config(3, OFPPC_NO_FWD, OFPPC_NO_FWD)
    sw.dp.set_port_link(4, False)
    assert sw.send(1, A, C) == [2]
    sw.dp.set_port_config(2, OFPPC_PORT_DOWN, OFPPC_PORT_DOWN)
    assert sw.send(1, A, B) == []


def test_learning_needs_no_generation_bump(sw):
    sw.send(1, A, B)
    gen = sw.dp.generation
    hits = sw.dp.stats()["hits"]
    sw.send(2, B, A)            # learns B; NORMAL is evaluated at exec time
    assert sw.send(1, A, B) == [2]
    assert sw.dp.generation == gen
    assert sw.dp.stats()["hits"] > hits


def test_detach_flushes_port_entries(sw):
    sw.send(4, D, BCAST)
    assert sw.dp.mac_lookup(0, mac(D)) == 4
    sw.dp.detach_port(4)
    assert sw.dp.mac_lookup(0, mac(D)) is None


def test_normal_after_rewrite_learns_rewritten_vlan(sw):
    sw.dp.flow_delete()
    sw.dp.flow_add(FlowSpec(match=Match().set("in_port", 1), instructions=(
        ApplyActions((PushVlan(0x8100), SetField("vlan_vid", 0x1000 | 30))), GotoTable(1))))
    sw.dp.flow_add(FlowSpec(table_id=1, instructions=(ApplyActions((Output(OFPP_NORMAL),)),)))
    sw.dp.flow_add(FlowSpec(priority=0, instructions=(ApplyActions((Output(OFPP_NORMAL),)),)))
    sw.send(1, A, BCAST)
    assert sw.dp.mac_lookup(30, mac(A)) == 1
    assert sw.dp.mac_lookup(0, mac(A)) is None


def test_mac_table_dump_and_flush(sw):
    sw.send(1, A, BCAST, vlan=5)
    sw.send(2, B, BCAST)
    rows = {(v, m, p) for v, m, p, _ in sw.dp.mac_table()}
    assert rows == {(5, mac(A), 1), (0, mac(B), 2)}
    assert sw.dp.mac_learn(7, mac(C), 3) == 1
    assert sw.dp.mac_learn(7, mac(C), 4) == 2
    assert sw.dp.mac_learn(7, mac(C), 4) == 0
    assert sw.dp.mac_learn(7, mac("01:00:00:00:00:01"), 4) == -1
    sw.dp.mac_flush()
    assert sw.dp.mac_table() == []
