"""`vdp run` features seen from outside: VLAN push/pop, select and
fast-failover groups, ctl error messages, port ownership, clean shutdown."""
import os
import subprocess

import pytest

from topo import link_exists, ping, port_stats, run, vdp_ctl, wait_for, wait_port_stats


def add_flows(d, *flows):
    for flow in flows:
        vdp_ctl(d.ctl, "add-flow", flow, json=False)


def tx_delta(before, after, port):
    return after[port]["tx_packets"] - before[port]["tx_packets"]


def port_link_up(d, port):
    for p in vdp_ctl(d.ctl, "show")["ports"]:
        if p["port"] == port:
            return p["link_up"]
    raise AssertionError(f"port {port} missing from show")


def test_vlan_push_pop(topo):
    h1 = topo.add_host("h1", "10.0.1.1/24")        # untagged
    h2 = topo.add_host("h2")                       # tagged, VLAN 100
    topo.add_vlan(h2, 100, "10.0.1.2/24")
    d = topo.start_vdp([h1, h2], fail_mode="secure")
    add_flows(d,
              "in_port=1,actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:2",
              "in_port=2,vlan_vid=4196,actions=pop_vlan,output:1")
    # h2 answers only on its VLAN interface and h1 only untagged: ping
    # works only if the tag is pushed one way and popped the other.
    assert ping(h1, "10.0.1.2", 3) == 3
    assert ping(h2, "10.0.1.1", 3) == 3
    flows = vdp_ctl(d.ctl, "dump-flows")
    assert len(flows) == 2 and all(f["n_packets"] >= 3 for f in flows), flows


def test_vlan_tag_required_by_match(topo):
    """The pop flow matches VLAN 100 only: frames on another VLAN are dropped."""
    h1 = topo.add_host("h1", "10.0.1.1/24")
    h2 = topo.add_host("h2")
    topo.add_vlan(h2, 200, "10.0.1.2/24")
    d = topo.start_vdp([h1, h2], fail_mode="secure")
    add_flows(d,
              "in_port=1,actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:2",
              "in_port=2,vlan_vid=4196,actions=pop_vlan,output:1")
    assert ping(h2, "10.0.1.1", 3) == 0


def three_hosts(topo):
    hosts = [topo.add_host(f"h{i}", f"10.0.0.{i}/24") for i in (1, 2, 3)]
    return hosts, topo.start_vdp(hosts, fail_mode="secure")


def test_select_group_spreads_udp_flows(topo):
    (h1, h2, h3), d = three_hosts(topo)
    vdp_ctl(d.ctl, "add-group", "group_id=1,type=select,bucket=output:2,bucket=output:3", json=False)
    add_flows(d, "in_port=1,actions=group:1")
    groups = vdp_ctl(d.ctl, "dump-groups")
    assert [g["group_id"] for g in groups] == [1] and groups[0]["type"] == "select", groups

    n = 200
    before = port_stats(d.ctl)
    assert h1.send_udp(h2.mac, h2.ip, range(20000, 20000 + n)) == n
    after = wait_port_stats(d.ctl, lambda a: tx_delta(before, a, 2) + tx_delta(before, a, 3) >= n)
    to2, to3 = tx_delta(before, after, 2), tx_delta(before, after, 3)
    assert to2 + to3 >= n, (to2, to3)
    # 200 distinct 5-tuples hashed over two buckets: each gets a real share.
    assert to2 >= n // 5 and to3 >= n // 5, (to2, to3)

    g = vdp_ctl(d.ctl, "dump-groups")[0]
    assert g["packet_count"] >= n, g
    assert all(b["packet_count"] >= n // 5 for b in g["bucket_stats"]), g


def test_select_group_keeps_a_flow_on_one_bucket(topo):
    (h1, h2, h3), d = three_hosts(topo)
    vdp_ctl(d.ctl, "add-group", "group_id=1,type=select,bucket=output:2,bucket=output:3", json=False)
    add_flows(d, "in_port=1,actions=group:1")
    before = port_stats(d.ctl)
    h1.send_udp(h2.mac, h2.ip, [33333] * 50)      # one 5-tuple, 50 times
    after = wait_port_stats(d.ctl, lambda a: tx_delta(before, a, 2) + tx_delta(before, a, 3) >= 50)
    assert sorted((tx_delta(before, after, 2), tx_delta(before, after, 3))) == [0, 50]


def test_fast_failover_moves_traffic_when_link_goes_down(topo):
    (h1, h2, h3), d = three_hosts(topo)
    vdp_ctl(d.ctl, "add-group",
            "group_id=2,type=fast_failover,bucket=watch_port:2,output:2,bucket=watch_port:3,output:3",
            json=False)
    add_flows(d, "in_port=1,actions=group:2")

    def burst(n=50):
        before = port_stats(d.ctl)
        rx2, rx3 = h2.stat("rx_packets"), h3.stat("rx_packets")
        h1.send_udp(h2.mac, h2.ip, range(30000, 30000 + n))
        after = wait_port_stats(d.ctl, lambda a: a[1]["rx_packets"] - before[1]["rx_packets"] >= n
                                and tx_delta(before, a, 2) + tx_delta(before, a, 3) >= n)
        return (tx_delta(before, after, 2), tx_delta(before, after, 3),
                h2.stat("rx_packets") - rx2, h3.stat("rx_packets") - rx3)

    to2, to3, rx2, rx3 = burst()
    assert to2 >= 50 and to3 == 0 and rx2 >= 50 and rx3 == 0, (to2, to3, rx2, rx3)

    run(["ip", "link", "set", h2.port, "down"])
    wait_for(lambda: not port_link_up(d, 2), timeout=10, what="vdp to see port 2 down")
    to2, to3, rx2, rx3 = burst()
    assert to3 >= 50 and rx3 >= 50 and to2 == 0, (to2, to3, rx2, rx3)

    run(["ip", "link", "set", h2.port, "up"])
    wait_for(lambda: port_link_up(d, 2), timeout=10, what="vdp to see port 2 up again")
    to2, to3, rx2, rx3 = burst()
    assert to2 >= 50 and rx2 >= 50 and to3 == 0, (to2, to3, rx2, rx3)


MALFORMED = [
    ("in_port=1,actions=outptu:2", "outptu"),
    ("in_prot=1,actions=drop", "in_prot"),
    ("ip,nw_src=10.0.0.300,actions=drop", "10.0.0.300"),
    ("in_port=1,actions=output:2,bogus_action", "bogus_action"),
]


def test_ctl_malformed_flow_names_bad_token(topo):
    h1 = topo.add_host("h1", "10.0.0.1/24")
    d = topo.start_vdp([h1], fail_mode="secure")
    for flow, bad in MALFORMED:
        p = vdp_ctl(d.ctl, "add-flow", flow, json=False, check=False)
        assert p.returncode == 1, (flow, p.returncode, p.stdout, p.stderr)
        assert bad in p.stderr, (flow, p.stderr)
    assert vdp_ctl(d.ctl, "dump-flows") == []
    assert d.alive()
    # and a good flow still goes in afterwards
    vdp_ctl(d.ctl, "add-flow", "in_port=1,actions=drop", json=False)
    assert len(vdp_ctl(d.ctl, "dump-flows")) == 1


def test_second_instance_on_same_port_refused(topo):
    h1 = topo.add_host("h1", "10.0.0.1/24")
    h2 = topo.add_host("h2", "10.0.0.2/24")
    first = topo.start_vdp([h1, h2], fail_mode="standalone")
    second = topo.spawn_vdp([h1.port], fail_mode="standalone", name=f"vdpt{topo.tag}b")
    try:
        rc = second.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("a second vdp instance kept running on a port the first one owns")
    assert rc != 0
    assert h1.port in second.log_text(), second.log_text()
    assert not os.path.exists(second.ctl)
    # The first instance is unharmed.
    assert first.alive()
    assert len(vdp_ctl(first.ctl, "show")["ports"]) == 2
    assert ping(h1, h2.ip, 3) == 3


def test_sigterm_leaves_no_tap_and_no_ctl_socket(topo):
    h1 = topo.add_host("h1", "10.0.0.1/24")
    tap = topo.ifname("t", 9)
    topo.links.append(tap)                 # removed by cleanup if vdp leaves it
    d = topo.start_vdp([h1, f"tap:{tap}"], fail_mode="standalone")
    assert link_exists(tap)
    assert os.path.exists(d.ctl)
    rc = d.stop()                          # SIGTERM, SIGKILL after 15 s
    assert rc == 0, f"exit status {rc}"
    assert not link_exists(tap)
    assert not os.path.exists(d.ctl)
    assert link_exists(h1.port)            # not vdp's to remove
