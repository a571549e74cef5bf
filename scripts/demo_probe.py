#!/usr/bin/env python3
"""UDP echo probe of the vdp demo (started by scripts/demo_common.py Probe,
inside the hosts' network namespaces).

    demo_probe.py echo PORT
    demo_probe.py probe DST PORT PERIOD OUT LIVE

echo: sends every datagram back to where it came from.
probe: sends (seq, send time) to DST:PORT every PERIOD seconds and records
(seq, send time, arrival time) of every echo (CLOCK_MONOTONIC, the same in
every namespace); about every 50 ms it rewrites LIVE with the arrival
times of the last second (the demo polls it), and on SIGTERM it writes
{"sent": N, "echoes": [...]} to OUT and exits.
"""
import json
import os
import select
import signal
import socket
import struct
import sys
import time


def echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("ready", flush=True)
    while True:
        data, addr = s.recvfrom(2048)
        try:
            s.sendto(data, addr)
        except OSError:
            pass


def probe(dst, port, period, out, live):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    got = []
    seq = 0
    nxt = time.monotonic()
    next_live = nxt
    print("ready", flush=True)
    while not stop:
        now = time.monotonic()
        if now >= nxt:
            try:
                s.sendto(struct.pack("!Qd", seq, now), (dst, port))
            except OSError:
                pass            # e.g. no route or ARP answer yet: keep probing
            seq += 1
            nxt += period
            if nxt < now:
                nxt = now + period
        if now >= next_live:
            tmp = live + ".tmp"
            with open(tmp, "w") as f:
                f.write(" ".join(f"{e[2]:.6f}" for e in got if e[2] > now - 1.0))
            os.replace(tmp, live)
            next_live = now + 0.05
        try:
            r, _, _ = select.select([s], [], [], max(0.0, min(nxt, next_live) - time.monotonic()))
        except InterruptedError:
            continue
        if r:
            try:
                while True:
                    data = s.recv(64)
                    if len(data) >= 16:
                        q, ts = struct.unpack_from("!Qd", data)
                        got.append((q, ts, time.monotonic()))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass            # ICMP errors reported on the socket
    with open(out, "w") as f:
        json.dump({"sent": seq, "echoes": got}, f)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "echo":
        echo(int(sys.argv[2]))
    elif len(sys.argv) == 7 and sys.argv[1] == "probe":
        probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        sys.exit(__doc__)
