"""Many-flow UDP traffic for the bond tests and benches, run inside a host's
network namespace (`ip netns exec NS python bondtraffic.py ...`).

    send IFNAME SRC_MAC DST_MAC SRC_IP DST_IP FLOWS ROUNDS [BASE_SPORT [DPORT [GAP_US]]]
        FLOWS UDP 5-tuples (source ports BASE_SPORT.. BASE_SPORT+FLOWS-1, to
        DPORT), ROUNDS frames each, round robin over the flows, written on
        an AF_PACKET socket (complete frames, UDP checksum 0 = none, so no
        checksum offload can spoil them).  Paced: a pause of GAP_US
        microseconds after every 32 frames keeps the veth backlog from
        overflowing.  Prints the number sent.
    recv DPORT IDLE_S [MAX_S]
        Counts datagrams on UDP port DPORT per source port until nothing
        came for IDLE_S seconds (after the first) or MAX_S passed; prints
        {"total": N, "per_sport": {sport: n}} as JSON.  Prints "ready" on
        stderr once bound.

Used by tests/integration/test_bond_ovs.py and bench/bond_pps.py.
"""
import json
import select
import socket
import struct
import sys
import time

MAGIC = b"vdpt-bond-flow"


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def frames(src_mac, dst_mac, src_ip, dst_ip, flows, base_sport=10000, dport=9999, size=64):
    """One complete Ethernet/IPv4/UDP frame per flow."""
    out = []
    eth = mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00"
    sip, dip = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    payload = MAGIC + bytes(max(0, size - 14 - 20 - 8 - len(MAGIC)))
    for i in range(flows):
        udp = struct.pack("!HHHH", base_sport + i, dport, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0x4000, 64, 17, 0,
                         sip, dip)
        ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
        out.append(eth + ip + udp)
    return out


def send(ifname, src_mac, dst_mac, src_ip, dst_ip, flows, rounds, base_sport=10000, dport=9999,
         gap_us=300):
    fs = frames(src_mac, dst_mac, src_ip, dst_ip, flows, base_sport, dport)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    n = 0
    for _ in range(rounds):
        for f in fs:
            while True:
                try:
                    s.send(f)
                    break
                except (BlockingIOError, OSError):
                    time.sleep(0.001)
            n += 1
            if n % 32 == 0 and gap_us:
                time.sleep(gap_us / 1e6)
    s.close()
    return n


def recv(dport, idle_s, max_s=120.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("0.0.0.0", dport))
    print("ready", file=sys.stderr, flush=True)
    per = {}
    total = 0
    start = time.monotonic()
    last = None
    while True:
        now = time.monotonic()
        if now - start > max_s or (last is not None and now - last > idle_s):
            break
        r, _, _ = select.select([s], [], [], 0.05)
        if not r:
            continue
        while True:
            try:
                data, addr = s.recvfrom(2048, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not data.startswith(MAGIC):
                continue
            per[addr[1]] = per.get(addr[1], 0) + 1
            total += 1
            last = time.monotonic()
    return {"total": total, "per_sport": per}


def main(argv):
    if argv and argv[0] == "send":
        a = argv[1:]
        extra = [int(x) for x in a[7:]]
        print(send(a[0], a[1], a[2], a[3], a[4], int(a[5]), int(a[6]), *extra))
        return 0
    if argv and argv[0] == "recv":
        print(json.dumps(recv(int(argv[1]), float(argv[2]),
                              float(argv[3]) if len(argv) > 3 else 120.0)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
