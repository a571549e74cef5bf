"""OpenFlow connections of `vdp run`, on the daemon's asyncio loop.

Who uses it: datapath/daemon.py builds one Channels from the config's
controllers (`--controller tcp:IP:PORT`, `ssl:IP:PORT`) and listeners
(`--listen ptcp:PORT[:IP]`, `pssl:PORT[:IP]`) and starts/closes it.  Each
connection gets an agent.Session (datapath/ofp/agent.py), which does all the
OpenFlow work; this module only moves bytes and keeps connections alive:

  ActiveChannel  connects to a controller; when the connection fails or
                 drops, retries after 1 s, 2 s, 4 s, 8 s, 8 s... (back to 1 s
                 once a connection got as far as the HELLO exchange).
  Listener       accepts connections (service connections: see agent.py).
  Channels       all of the above plus the keepalive tick (Agent.tick once a
                 second: echo requests after 5 s of silence, disconnect after
                 3 unanswered ones).

TLS (ssl:/pssl:) uses the ssl module: make_ssl_context() with our private
key and certificate and the CA that peers' certificates must chain to, all
three required as in Open vSwitch (--private-key, --certificate,
--ca-cert; here `vdp run --ssl-key --ssl-cert --ssl-ca`, checked by
datapath/config.py before we get here).  Both directions authenticate: a
controller must present a certificate signed by the CA, and so must a
client of a pssl: listener (ovs-ofctl --private-key/--certificate does).
TLS 1.2 or later.  Peer host names are not checked (switches and
controllers are addressed by IP, as in Open vSwitch).
"""
from __future__ import annotations

import asyncio
import logging
import ssl as _ssl

log = logging.getLogger("vdp.ofp")

MIN_BACKOFF = 1.0
MAX_BACKOFF = 8.0
CONNECT_TIMEOUT = 5.0
TICK_INTERVAL = 1.0


class ChannelError(Exception):
    """A channel cannot be set up (bad TLS files, listen address in use)."""


def _no_password(*_):
    # an encrypted key would make OpenSSL prompt on the terminal: refuse
    raise ChannelError("TLS setup: the private key is encrypted (give an unencrypted PEM key)")


def make_ssl_context(server, key=None, cert=None, ca=None, what="TLS"):
    """An SSLContext for our side of a TLS OpenFlow connection: our key and
    certificate, peers verified against ca.  ChannelError naming what (the
    target) if a file is missing or unusable."""
    missing = [n for n, v in (("private key (--ssl-key)", key), ("certificate (--ssl-cert)", cert),
                              ("CA certificate (--ssl-ca)", ca)) if not v]
    if missing:
        raise ChannelError(f"{what}: TLS needs a private key, a certificate and a CA "
                           f"certificate; missing: {', '.join(missing)}")
    try:
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER if server else _ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = _ssl.TLSVersion.TLSv1_2
        if not server:
            ctx.check_hostname = False
        ctx.load_cert_chain(cert, key, password=_no_password)
        ctx.load_verify_locations(ca)
        ctx.verify_mode = _ssl.CERT_REQUIRED
    except (OSError, _ssl.SSLError) as e:
        raise ChannelError(f"{what}: TLS setup: {e}") from None
    return ctx


def _peer_name(transport, prefix, service):
    """How logs name a connection: the controller target for an active
    one, tcp:PEER:PORT for one accepted on a listener."""
    peer = transport.get_extra_info("peername")
    if service and isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else peer[0]
        return f"{prefix}:{host}:{peer[1]}"
    return prefix


class _OFProtocol(asyncio.Protocol):
    """Bytes <-> one agent Session."""

    def __init__(self, agent, service, prefix):
        self.agent = agent
        self.service = service
        self.prefix = prefix
        self.session = None
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.session = self.agent.open_session(
            transport.write, transport.close,
            name=_peer_name(transport, self.prefix, self.service),
            service=self.service, backlog=transport.get_write_buffer_size)

    def data_received(self, data):
        self.session.data_received(data)

    def eof_received(self):
        return False                     # close our side too

    def connection_lost(self, exc):
        if self.session is not None:
            if exc is not None:
                log.info("openflow %s: connection lost: %s", self.session.name, exc)
            self.session.connection_lost()
        if not self.lost.done():
            self.lost.set_result(exc)

    def abort(self):
        if self.transport is not None:
            self.transport.abort()


class ActiveChannel:
    """Keeps one connection to a controller target (config.ControllerTarget)."""

    def __init__(self, agent, target, ssl_context=None, min_backoff=MIN_BACKOFF,
                 max_backoff=MAX_BACKOFF, connect_timeout=CONNECT_TIMEOUT):
        self.agent = agent
        self.target = target
        self.ssl = ssl_context
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self.protocol = None
        self.task = None
        self.attempts = 0
        self.connections = 0
        self.closing = False

    def __str__(self):
        return str(self.target)

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        loop = asyncio.get_running_loop()
        backoff = self.min_backoff
        quiet = False
        while not self.closing:
            self.attempts += 1
            try:
                kw = {"ssl": self.ssl, "server_hostname": ""} if self.ssl else {}
                # asyncio.timeout, not wait_for: before 3.12 wait_for can
                # swallow a cancel that races with the connection completing.
                async with asyncio.timeout(self.connect_timeout):
                    _, proto = await loop.create_connection(
                        lambda: _OFProtocol(self.agent, False, str(self.target)),
                        self.target.host, self.target.port, **kw)
            except (OSError, asyncio.TimeoutError, _ssl.SSLError) as e:
                (log.debug if quiet else log.info)(
                    "openflow %s: cannot connect (%s); retrying in %.0f s", self.target,
                    e or type(e).__name__, backoff)
                quiet = True
            except Exception:                   # a bug: log it, keep trying
                log.exception("openflow %s: connecting failed", self.target)
            else:
                self.connections += 1
                self.protocol = proto
                if self.closing:
                    proto.abort()
                try:
                    await proto.lost
                finally:
                    self.protocol = None
                if self.closing:
                    return
                if proto.session is not None and proto.session.rx_msgs:
                    backoff = self.min_backoff      # it worked: start over quickly
                quiet = False
                log.info("openflow %s: disconnected; reconnecting in %.0f s", self.target, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def close(self):
        self.closing = True
        if self.protocol is not None:
            self.protocol.abort()           # ends the await on proto.lost
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
            self.task = None
        if self.protocol is not None:
            self.protocol.abort()
            self.protocol = None


class Listener:
    """Accepts OpenFlow connections on a config.ListenTarget."""

    def __init__(self, agent, target, ssl_context=None):
        self.agent = agent
        self.target = target
        self.ssl = ssl_context
        self.server = None
        self.protocols = []

    def __str__(self):
        return str(self.target)

    @property
    def port(self):
        """The bound TCP port (useful with port 0)."""
        if self.server is None or not self.server.sockets:
            return None
        return self.server.sockets[0].getsockname()[1]

    def _factory(self):
        p = _OFProtocol(self.agent, True, "ssl" if self.ssl else "tcp")
        self.protocols = [q for q in self.protocols if not q.lost.done()]
        self.protocols.append(p)
        return p

    async def start(self):
        loop = asyncio.get_running_loop()
        try:
            self.server = await loop.create_server(self._factory, self.target.host,
                                                   self.target.port, ssl=self.ssl,
                                                   reuse_address=True)
        except OSError as e:
            raise ChannelError(f"cannot listen on {self.target}: {e.strerror or e}") from None
        log.info("openflow: listening on %s (port %s)", self.target, self.port)

    async def close(self):
        if self.server is not None:
            self.server.close()
        for p in self.protocols:
            p.abort()
        self.protocols = []
        if self.server is not None:
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
            except (asyncio.TimeoutError, Exception):
                pass
            self.server = None


class Channels:
    """Every OpenFlow channel of a daemon plus the keepalive tick.

    tls: None or dict(key=..., cert=..., ca=...) (file paths) for ssl:/pssl:."""

    def __init__(self, agent, controllers=(), listen=(), tls=None, tick_interval=TICK_INTERVAL,
                 min_backoff=MIN_BACKOFF, max_backoff=MAX_BACKOFF):
        self.agent = agent
        self.controllers = list(controllers)
        self.listen = list(listen)
        self.tls = tls or {}
        self.tick_interval = tick_interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.actives = []
        self.listeners = []
        self._tick_task = None

    def _ctx(self, server, what):
        return make_ssl_context(server, self.tls.get("key"), self.tls.get("cert"),
                                self.tls.get("ca"), what=what)

    async def start(self):
        try:
            for t in self.listen:
                ctx = self._ctx(True, str(t)) if t.proto == "pssl" else None
                lst = Listener(self.agent, t, ctx)
                await lst.start()
                self.listeners.append(lst)
            for t in self.controllers:
                ctx = self._ctx(False, str(t)) if t.proto == "ssl" else None
                ch = ActiveChannel(self.agent, t, ctx, self.min_backoff, self.max_backoff)
                ch.start()
                self.actives.append(ch)
        except ChannelError:
            await self.close()
            raise
        self._tick_task = asyncio.get_running_loop().create_task(self._ticker())

    async def _ticker(self):
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.agent.tick()
            except Exception:
                log.exception("openflow keepalive failed")

    async def close(self):
        if self._tick_task is not None:
            self._tick_task.cancel()
            try:
                await self._tick_task
            except (asyncio.CancelledError, Exception):
                pass
            self._tick_task = None
        for ch in self.actives:
            await ch.close()
        for lst in self.listeners:
            await lst.close()
        self.actives, self.listeners = [], []
        self.agent.close_all()
