"""Drive vdp's fast path without the daemon, for bench/pps.py --vdp-mode facade.

    python bench/vdp_facade.py --rules RULES.json --port IF1 --port IF2 [--port IF3]

Builds a datapath.fastpath.Datapath, attaches one AfPacketPort per --port
(OpenFlow ports 1, 2, 3 in order), installs the group and flows listed in
RULES.json (written by pps.py, see rules_json() there), starts the engine
thread and prints "ready".  SIGTERM/SIGINT stop it; it then prints one JSON
line {"port_stats": ...} so the harness can report the datapath's own drops.
pps.py runs it pinned to the switch core, like `vdp run`.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading


def build(rules):
    from datapath import model as m

    flows = []
    for r in rules["flows"]:
        match = m.Match()
        for field, value, mask in r["match"]:
            match.set(field, value, mask)
        acts = []
        for kind, arg in r["actions"]:
            acts.append(m.Output(arg) if kind == "output" else m.Group(arg))
        flows.append(m.FlowSpec(priority=r["priority"], match=match,
                                instructions=(m.ApplyActions(tuple(acts)),)))
    groups = []
    for g in rules.get("groups", []):
        buckets = tuple(m.Bucket(actions=(m.Output(p),), weight=1) for p in g["outputs"])
        groups.append(m.GroupSpec(g["group_id"], m.OFPGT_SELECT, buckets))
    return flows, groups


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", required=True)
    ap.add_argument("--port", action="append", required=True)
    args = ap.parse_args(argv)

    from datapath.fastpath import AfPacketPort, Datapath

    with open(args.rules) as f:
        flows, groups = build(json.load(f))
    dp = Datapath()
    for i, name in enumerate(args.port, 1):
        dp.attach_port(i, AfPacketPort(name))
    for g in groups:
        dp.group_add(g)
    for spec in flows:
        dp.flow_add(spec)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    dp.start()
    print("ready", flush=True)
    while not done.wait(0.5):
        pass
    dp.stop()
    print(json.dumps({"port_stats": {str(k): v for k, v in dp.port_stats().items()}}),
          flush=True)
    for port in dp.ports().values():
        port.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
