"""Port link monitor: netlink RTNLGRP_LINK events -> Datapath.set_port_link.

Who uses it: datapath/daemon.py, inside its asyncio loop.  The kernel tells
us about every link change (carrier lost, admin down, interface deleted or
moved to another network namespace); we call on_change(ofport, up) at once
so fast-failover groups and flooding see the new state, and read the
initial state of every port when starting.

A port's link is up when the interface is administratively up and has a
carrier (IFF_UP and IFF_LOWER_UP).  When an interface leaves our network
namespace (a TAP handed to a container, say) we can no longer see it: the
port is then assumed up, since the frames still flow through our fd.

LinkTracker is the decision logic without any I/O (unit-testable);
LinkMonitor feeds it from pyroute2's AsyncIPRoute.
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("vdp.linkmon")

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


def link_is_up(flags):
    return bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP)


class LinkTracker:
    """Which ofport each watched interface is, and its last known state."""

    def __init__(self):
        self.ports = {}        # ofport -> {"ifindex", "name", "up", "tracked"}

    def watch(self, ofport, ifindex, name):
        self.ports[ofport] = {"ifindex": ifindex or 0, "name": name, "up": None, "tracked": True}

    def _find(self, index, name):
        for ofport, p in self.ports.items():
            if not p["tracked"]:
                continue
            if p["ifindex"] and p["ifindex"] == index:
                return ofport, p
            if not p["ifindex"] and name and p["name"] == name:
                p["ifindex"] = index          # learn it
                return ofport, p
        return None, None

    def update(self, event, index, name, flags, moved=False, initial=False):
        """One RTM_NEWLINK/RTM_DELLINK -> [(ofport, up, why)] for changes
        (every watched port on the initial dump)."""
        ofport, p = self._find(index, name)
        if p is None:
            return []
        if event == "RTM_DELLINK":
            if moved:
                p["tracked"] = False
                up, why = True, "moved to another network namespace (assumed up)"
            else:
                up, why = False, "interface deleted"
        else:
            up = link_is_up(flags)
            if name and name != p["name"]:
                log.info("port %d: interface %s renamed to %s", ofport, p["name"], name)
                p["name"] = name
            why = "up" if up else ("no carrier" if flags & IFF_UP else "admin down")
        if p["up"] == up and not initial:
            return []
        p["up"] = up
        return [(ofport, up, why)]


def _msg_fields(msg):
    get = msg.get_attr
    moved = get("IFLA_NEW_NETNSID") is not None or get("IFLA_NEW_IFINDEX") is not None
    return msg.get("event"), msg.get("index"), get("IFLA_IFNAME"), msg.get("flags", 0), moved


class LinkMonitor:
    """Watches ports' links through netlink and reports changes."""

    def __init__(self, on_change):
        self.on_change = on_change       # (ofport, up: bool, why: str) -> None
        self.tracker = LinkTracker()
        self._ipr = None
        self._task = None

    def watch(self, ofport, ifindex, name):
        self.tracker.watch(ofport, ifindex, name)

    def _report(self, changes):
        for ofport, up, why in changes:
            try:
                self.on_change(ofport, up, why)
            except Exception:
                log.exception("link change callback failed for port %d", ofport)

    async def start(self):
        """Subscribes, then reads the current state of every port."""
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink.rtnl import RTMGRP_LINK
        self._ipr = AsyncIPRoute()
        # Bind first, so no change between the dump and the subscription is lost.
        await self._ipr.bind(groups=RTMGRP_LINK)
        async for msg in await self._ipr.get_links():
            event, index, name, flags, moved = _msg_fields(msg)
            self._report(self.tracker.update("RTM_NEWLINK", index, name, flags, initial=True))
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        while True:
            try:
                async for msg in self._ipr.get():
                    event, index, name, flags, moved = _msg_fields(msg)
                    if event in ("RTM_NEWLINK", "RTM_DELLINK"):
                        self._report(self.tracker.update(event, index, name, flags, moved))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("link monitor: reading netlink failed; retrying")
                await asyncio.sleep(1.0)

    async def close(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._ipr is not None:
            try:
                self._ipr.close()
            except Exception:
                pass
            self._ipr = None


# ---- synchronous helpers for the daemon's setup/teardown (outside the loop)

def set_admin_up(ifname):
    """Sets an interface administratively up; returns True if it was down."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            raise OSError(f"no interface {ifname}")
        link = ipr.get_links(idx[0])[0]
        if link["flags"] & IFF_UP:
            return False
        ipr.link("set", index=idx[0], state="up")
        return True


def delete_link(ifname):
    """Deletes an interface of our namespace; False if it is not there."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            return False
        ipr.link("del", index=idx[0])
        return True
