"""VRRP for vdp: the I/O-free core of the `vrrp` controller app.

- `controller.vrrp.packet`: VRRP advertisement encode/decode (version 3 per
  RFC 5798 for IPv4 and IPv6, version 2 per RFC 3768 for IPv4), whole
  advertisement frames, gratuitous ARP / unsolicited Neighbor Advertisement,
  and ARP / Neighbor Solicitation answers for the virtual addresses.
- `controller.vrrp.logic`: the RFC 5798 state machine per virtual router
  (`VirtualRouter`) and a per-segment dispatcher (`RouterSet`). Both take
  frames and `now` and return `Actions` (frames to send, state transitions,
  flow changes for the adapter); neither does any I/O nor reads a clock.

The os-ken adapter (controller/vrrp/app.py, written separately) owns the
sockets, the clock and the OpenFlow programming; see logic.py's header for
the contract it builds on.
"""
from controller.vrrp.logic import (  # noqa: F401
    Actions, FlowChange, RouterSet, Transition, VirtualRouter,
    BACKUP, INITIALIZE, MASTER,
)
from controller.vrrp.packet import Advert, NotVrrp, VrrpError  # noqa: F401
