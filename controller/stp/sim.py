"""An in-process network of spanning tree bridges, for tests and benchmarks.

Who uses this: tests/unit/test_stp.py; bench code may use it to measure
protocol convergence without a datapath.  Bridges are `logic.Bridge`
objects joined by point-to-point links that deliver every transmitted frame
to the peer port at once; time is simulated (`run(until)` jumps from timer
event to timer event), so minutes of protocol time take milliseconds.  The
network plays the adapter: it keeps the last `PortChange` seen per port
(`view`), records flush requests and events, and counts frames.
"""
from __future__ import annotations

from collections import deque

from . import bpdu as B
from .common import FORWARDING


class Network:
    def __init__(self):
        self.now = 0.0
        self.bridges = {}                 # name -> Bridge
        self.links = {}                   # (name, port) -> (name, port)
        self.view = {}                    # (name, port) -> PortChange (the adapter's view)
        self.flushes = []                 # (time, name, [ports])
        self.events = []                  # (time, name, text)
        self.sent = []                    # (time, name, port, Bpdu)
        self.ageing = {}                  # name -> last ageing value announced
        self.drop = set()                 # (name, port): frames sent here are lost
        self._q = deque()

    # ------------------------------------------------------------------ topology
    def add(self, name, bridge):
        self.bridges[name] = bridge
        self._apply(name, bridge.tick(self.now))
        return bridge

    def link(self, a, pa, b, pb, up=True):
        self.links[(a, pa)] = (b, pb)
        self.links[(b, pb)] = (a, pa)
        if up:
            self.set_link(a, pa, True)

    def set_link(self, a, pa, up):
        """Both ends of the link at (a, pa) go up or down now."""
        ends = [(a, pa)]
        if (a, pa) in self.links:
            ends.append(self.links[(a, pa)])
        for name, no in ends:
            self._apply(name, self.bridges[name].port_link(no, up, self.now))
        self._drain()

    def port_up(self, name, no, up=True):
        """One port with no peer (a host port) goes up or down."""
        self._apply(name, self.bridges[name].port_link(no, up, self.now))
        self._drain()

    def inject(self, name, no, frame):
        """A frame arrives on (name, no) from outside (a host, a test)."""
        self._apply(name, self.bridges[name].rx_bpdu(no, frame, self.now))
        self._drain()

    def call(self, name, method, *args):
        """Call a Bridge management method (now is appended) and deliver."""
        acts = getattr(self.bridges[name], method)(*args, self.now)
        self._apply(name, acts)
        self._drain()
        return acts

    # ------------------------------------------------------------------ time
    def run(self, until, max_step=None):
        """Advance simulated time to `until`, firing timers in order."""
        while True:
            wake = [w for w in (br.next_wakeup() for br in self.bridges.values()) if w is not None]
            t = min(wake) if wake else until
            if max_step is not None:
                t = min(t, self.now + max_step)
            if t > until:
                break
            t = max(t, self.now)
            self.now = t
            for name, br in self.bridges.items():
                w = br.next_wakeup()
                if w is not None and w <= t:
                    self._apply(name, br.tick(t))
            self._drain()
            if t >= until:
                break
        self.now = until
        for name, br in self.bridges.items():
            self._apply(name, br.tick(until))
        self._drain()

    def run_for(self, seconds, max_step=None):
        self.run(self.now + seconds, max_step)

    # ------------------------------------------------------------------ plumbing
    def _apply(self, name, acts):
        for no, pc in acts.ports.items():
            self.view[(name, no)] = pc
        if acts.flush:
            self.flushes.append((self.now, name, list(acts.flush)))
        if acts.ageing is not None:
            self.ageing[name] = acts.ageing
        for e in acts.events:
            self.events.append((self.now, name, e))
        for no, frame in acts.tx:
            self.sent.append((self.now, name, no, B.decode_frame(frame)))
            peer = self.links.get((name, no))
            if peer is not None and (name, no) not in self.drop:
                self._q.append((peer, frame))

    def _drain(self, limit=100000):
        n = 0
        while self._q:
            (name, no), frame = self._q.popleft()
            br = self.bridges[name]
            if not br.ports[no].link_up:
                continue
            self._apply(name, br.rx_bpdu(no, frame, self.now))
            n += 1
            if n > limit:
                raise RuntimeError("BPDU storm: frames keep coming")

    # ------------------------------------------------------------------ checks
    def state(self, name, no):
        return self.bridges[name].port_state(no)

    def role(self, name, no):
        return self.bridges[name].port_role(no)

    def blocked_links(self):
        """Links that carry no data: one end or both not forwarding."""
        out = []
        seen = set()
        for (a, pa), (b, pb) in self.links.items():
            if (b, pb, a, pa) in seen:
                continue
            seen.add((a, pa, b, pb))
            if self.state(a, pa) != FORWARDING or self.state(b, pb) != FORWARDING:
                out.append(((a, pa), (b, pb)))
        return out

    def active_topology_is_tree(self):
        """True when the forwarding links form a spanning tree over the
        bridges that are connected at all (no loop, nobody cut off)."""
        parent = {n: n for n in self.bridges}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        blocked = {frozenset(l) for l in self.blocked_links()}
        seen = set()
        for (a, pa), (b, pb) in self.links.items():
            key = frozenset(((a, pa), (b, pb)))
            if key in seen:
                continue
            seen.add(key)
            up = self.bridges[a].ports[pa].link_up and self.bridges[b].ports[pb].link_up
            if not up or key in blocked:
                continue
            ra, rb = find(a), find(b)
            if ra == rb:
                return False            # a loop
            parent[ra] = rb
        # connectivity: bridges joined by live links must share a component
        live = {n: n for n in self.bridges}

        def lfind(x):
            while live[x] != x:
                live[x] = live[live[x]]
                x = live[x]
            return x
        for (a, pa), (b, pb) in self.links.items():
            if self.bridges[a].ports[pa].link_up and self.bridges[b].ports[pb].link_up:
                live[lfind(a)] = lfind(b)
        return all((lfind(x) == lfind(y)) == (find(x) == find(y))
                   for x in self.bridges for y in self.bridges)
