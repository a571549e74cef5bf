"""`vdp run` forwarding real traffic between network namespaces.

Hosts sit on veth pairs (and one on a TAP port); the daemon is driven only
through the CLI contract: `vdp run` and `vdp ctl`.
"""
import json

from topo import ping, port_stats, vdp_ctl, wait_for, wait_port_stats

HOSTS = (("h1", "10.0.0.1/24"), ("h2", "10.0.0.2/24"), ("h3", "10.0.0.3/24"))


def three_hosts(topo, fail_mode):
    hosts = [topo.add_host(name, ip) for name, ip in HOSTS]
    d = topo.start_vdp(hosts, fail_mode=fail_mode)
    return hosts, d


def test_show_lists_ports_in_order(topo):
    hosts, d = three_hosts(topo, "secure")
    show = vdp_ctl(d.ctl, "show")
    assert show["fail_mode"] == "secure"
    assert [(p["port"], p["name"]) for p in show["ports"]] == \
        [(1, hosts[0].port), (2, hosts[1].port), (3, hosts[2].port)]
    assert all(p["link_up"] for p in show["ports"])


def test_flows_forward_between_three_hosts(topo):
    (h1, h2, h3), d = three_hosts(topo, "secure")
    # Each port floods to the two others: enough for ARP and unicast.
    for flow in ("in_port=1,actions=output:2,output:3",
                 "in_port=2,actions=output:1,output:3",
                 "in_port=3,actions=output:1,output:2"):
        vdp_ctl(d.ctl, "add-flow", flow, json=False)
    assert len(vdp_ctl(d.ctl, "dump-flows")) == 3

    assert ping(h1, h2.ip, 3) == 3
    assert ping(h1, h3.ip, 3) == 3
    assert ping(h2, h3.ip, 3) == 3
    flows = {f["match"]: f for f in vdp_ctl(d.ctl, "dump-flows")}
    assert len(flows) == 3
    assert all(f["n_packets"] > 0 for f in flows.values()), flows

    # Without port 1's flow, h1 is cut off; h2 <-> h3 still works
    # (ARP entries are cached, so only the ICMP frames need the flows).
    vdp_ctl(d.ctl, "del-flows", "in_port=1", json=False)
    assert len(vdp_ctl(d.ctl, "dump-flows")) == 2
    assert ping(h1, h2.ip, 3) == 0
    assert ping(h2, h3.ip, 3) == 3

    vdp_ctl(d.ctl, "del-flows", json=False)
    assert vdp_ctl(d.ctl, "dump-flows") == []
    assert ping(h2, h3.ip, 3) == 0
    assert ping(h3, h1.ip, 3) == 0


def test_normal_learning_standalone(topo):
    (h1, h2, h3), d = three_hosts(topo, "standalone")
    assert vdp_ctl(d.ctl, "show")["fail_mode"] == "standalone"   # no flows needed
    before = port_stats(d.ctl)
    for a, b in ((h1, h2), (h1, h3), (h2, h3)):
        assert ping(a, b.ip, 3) == 3, f"{a.name} -> {b.name}"
    after = wait_port_stats(d.ctl, lambda a: all(
        a[p]["tx_packets"] - before[p]["tx_packets"] >= 6 for p in (1, 2, 3)))
    for port in (1, 2, 3):
        # each host sent >= 6 echo requests/replies and got as many
        assert after[port]["rx_packets"] - before[port]["rx_packets"] >= 6, (port, before, after)
        assert after[port]["tx_packets"] - before[port]["tx_packets"] >= 6, (port, before, after)

    # Learned unicast goes only to its port: h2 gets all of h1's unicast,
    # h3 sees none of it ...
    cap3 = h3.sniff("icmp or udp port 9")
    cap2 = h2.sniff("udp port 9")
    assert ping(h1, h2.ip, 20, interval=0.05) > 0
    rx0 = h2.stat("rx_packets")
    h1.send_udp(h2.mac, h2.ip, range(40000, 40010))
    wait_for(lambda: h2.stat("rx_packets") - rx0 >= 10, timeout=10, what="UDP frames at h2")
    assert cap2.stop() == 10
    assert cap3.stop() == 0

    # ... while a frame to an unknown MAC is still flooded to it (which
    # also shows the capture above could have seen something).
    cap = h3.sniff("udp port 9")
    h1.send_udp("02:00:00:00:00:99", "10.0.0.99", range(41000, 41005))
    assert cap.stop() == 5


def test_secure_mode_forwards_nothing_without_flows(topo):
    (h1, h2, h3), d = three_hosts(topo, "secure")
    assert vdp_ctl(d.ctl, "dump-flows") == []
    before = port_stats(d.ctl)
    h2_rx, h3_rx = h2.stat("rx_packets"), h3.stat("rx_packets")
    assert ping(h1, h2.ip, 3) == 0
    h1.send_udp(h2.mac, h2.ip, range(40000, 40010))
    h1.send_udp("ff:ff:ff:ff:ff:ff", "10.0.0.255", range(40000, 40010))
    after = wait_port_stats(d.ctl, lambda a: a[1]["rx_packets"] - before[1]["rx_packets"] >= 20)
    # The daemon saw h1's frames (ARP requests, UDP) ...
    assert after[1]["rx_packets"] - before[1]["rx_packets"] >= 20
    # ... and sent nothing anywhere.
    for port in (2, 3):
        assert after[port]["tx_packets"] == before[port]["tx_packets"], (port, after)
    assert h2.stat("rx_packets") == h2_rx
    assert h3.stat("rx_packets") == h3_rx


def test_tap_port_host(topo):
    h1 = topo.add_host("h1", "10.0.0.1/24")
    h2 = topo.add_host("h2", "10.0.0.2/24", tap=True)
    d = topo.start_vdp([h1, h2], fail_mode="standalone")   # moves the TAP into h2
    assert h2.ifname in h2.ip_cmd("-o", "link", "show").stdout
    names = [p["name"] for p in vdp_ctl(d.ctl, "show")["ports"]]
    assert names == [h1.port, h2.tap]
    assert ping(h1, h2.ip, 3) == 3
    assert ping(h2, h1.ip, 3) == 3
    stats = port_stats(d.ctl)
    assert stats[2]["rx_packets"] >= 3 and stats[2]["tx_packets"] >= 3, stats


def test_tcp_with_offloads_on(topo):
    (h1, h2, h3), d = three_hosts(topo, "standalone")
    # veth defaults: segmentation and checksum offload on.  The daemon must
    # cope with GSO frames and partial checksums (FACTS: known trap).
    feats = h1.offloads()
    assert feats.get("tcp-segmentation-offload") and feats.get("tx-checksumming"), feats

    h2.popen(["iperf3", "-s", "-1", "-B", h2.ip], name="iperf3-server")
    h2.wait_listening(5201)
    p = h1.run(["iperf3", "-c", h2.ip, "-t", "3", "-J", "--connect-timeout", "5000"],
               check=False, timeout=60)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    result = json.loads(p.stdout)
    received = result["end"]["sum_received"]
    assert received["bytes"] > 1_000_000, received
    assert received["bits_per_second"] > 0, received
