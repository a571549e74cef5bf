"""Spanning tree for vdp's controller: 802.1D STP and 802.1w RSTP, I/O-free.

    from controller.stp import Bridge
    br = Bridge(mac, priority=32768, mode='rstp')

bpdu.py    BPDU encode/strict decode (802.3 + LLC frames)
common.py  Actions / PortChange, roles and states, OpenFlow port config bits,
           path costs
logic.py   Bridge (the facade the os-ken adapter drives) and Port
rstp.py    the 802.1D-2004 clause 17 engine (mode 'rstp')
sim.py     an in-process network of Bridges with simulated time (tests, benches)
stp.py     the 802.1D-1998 engine (mode 'stp')
"""
from .bpdu import Bpdu, BpduError, decode_frame, encode_frame
from .common import (ALTERNATE, BACKUP, BLOCKING, DESIGNATED, DISABLED, DISCARDING, FORWARDING,
                     LEARNING, LISTENING, PORT_CONFIG_MASK, ROOT, Actions, PortChange, path_cost,
                     port_config)
from .logic import Bridge, Port

__all__ = ["Bpdu", "BpduError", "decode_frame", "encode_frame", "Actions", "PortChange",
           "path_cost", "port_config", "PORT_CONFIG_MASK", "Bridge", "Port", "ROOT", "DESIGNATED",
           "ALTERNATE", "BACKUP", "DISABLED", "BLOCKING", "LISTENING", "LEARNING", "FORWARDING",
           "DISCARDING"]
