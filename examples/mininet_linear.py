#!/usr/bin/env python3
"""A Mininet network of vdp switches: N switches in a line, one host on each.

    h1    h2    h3          hN
    |     |     |           |
    s1 -- s2 -- s3 -- ... -- sN      (every sI is a `vdp run` daemon)

Run as root, from anywhere (docs/mininet.md has more):

    # with an OpenFlow 1.3 controller, e.g. examples/learning_switch.py on 6653
    python3 examples/learning_switch.py --ofp-tcp-listen-port 6653 &
    python3 examples/mininet_linear.py --controller 127.0.0.1:6653 --test pingall,iperf

    # no controller: the switches learn MACs themselves (fail mode standalone)
    python3 examples/mininet_linear.py --standalone --cli

    # the same network from Mininet's own command line
    mn --custom datapath/mininet.py --switch vdp \\
       --controller remote,ip=127.0.0.1,port=6653 --topo linear,4 --test pingall

A private build is used when PYTHONPATH names it
(PYTHONPATH=/tmp/vdp-NAME/lib:$PWD, from scripts/devbuild.sh NAME).
Exit status: 0 when every requested test passed, 1 otherwise.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datapath.mininet import VdpSwitch, vdp_iperf  # noqa: E402  (imports Mininet too)
from mininet.cli import CLI  # noqa: E402
from mininet.log import info, setLogLevel  # noqa: E402
from mininet.net import Mininet  # noqa: E402
from mininet.node import RemoteController  # noqa: E402


def build(n, controller=None, standalone=False, listen_port=None):
    """The network (not started).  controller: 'IP:PORT' or None."""
    net = Mininet(controller=None, build=False, autoSetMacs=True)
    if controller:
        ip, _, port = controller.rpartition(":")
        net.addController("c0", controller=RemoteController, ip=ip or "127.0.0.1",
                          port=int(port))
    fail_mode = "standalone" if standalone or not controller else "secure"
    prev = None
    for i in range(1, n + 1):
        # dpid i: Mininet derives it from the number in the name.
        sw = net.addSwitch("s%d" % i, cls=VdpSwitch, failMode=fail_mode,
                           listenPort=(listen_port + i - 1) if listen_port else None)
        host = net.addHost("h%d" % i)
        net.addLink(host, sw)
        if prev is not None:
            net.addLink(prev, sw)
        prev = sw
    return net


def run_tests(net, tests):
    ok = True
    for test in tests:
        if test == "pingall":
            loss = net.pingAll()
            ok &= loss == 0
        elif test == "iperf":
            server_rate, client_rate = vdp_iperf(net, [net.hosts[0], net.hosts[-1]], seconds=5)
            ok &= bool(re.match(r"[\d.]+ \w+/sec", server_rate))
        else:
            raise SystemExit("unknown test %r (pingall, iperf)" % test)
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--switches", type=int, default=4, help="switches (and hosts), default 4")
    ap.add_argument("--controller", metavar="IP:PORT",
                    help="remote OpenFlow 1.3 controller (switches in fail mode secure)")
    ap.add_argument("--standalone", action="store_true",
                    help="fail mode standalone: learn MACs while no controller is connected")
    ap.add_argument("--listen-port", type=int, metavar="PORT",
                    help="OpenFlow listener per switch on 127.0.0.1:PORT, PORT+1... "
                         "(ovs-ofctl -O OpenFlow13 dump-flows tcp:127.0.0.1:PORT)")
    ap.add_argument("--test", default="", help="comma-separated: pingall, iperf")
    ap.add_argument("--cli", action="store_true", help="open the Mininet CLI")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.switches < 1:
        ap.error("--switches must be at least 1")
    if not args.controller and not args.standalone:
        info("no --controller: the switches run in fail mode standalone\n")
    setLogLevel("debug" if args.verbose else "info")
    net = build(args.switches, args.controller, args.standalone, args.listen_port)
    ok = True
    try:
        net.start()
        if args.controller and not net.waitConnected(timeout=60):
            info("*** not every switch reached the controller\n")
            ok = False
        tests = [t for t in args.test.split(",") if t]
        ok &= run_tests(net, tests)
        if args.cli:
            CLI(net)
    finally:
        net.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
