"""`vdp run`: the switch daemon.

Who uses it: datapath/cli.py (main_run -> run(cfg)).  What it does, in order:

  setup (synchronous; refuses to start, touching nothing, if another vdp
  owns the ctl socket or one of the ports):
    ctl socket liveness check + lock, one flock per port
    (/run/vdp/port-IFNAME.lock), the Datapath, the ports (AfPacketPort for
    interfaces, TapPort for tap:NAME, created when missing), numbered as the
    config says (1, 2, 3...), meters, groups, standalone mode
    (fail_mode=standalone: with no controller connected, which is always the
    case until the OpenFlow agent exists, table-0 misses go to NORMAL and
    the switch learns like an OVS bridge: Datapath.fail_standalone),
    the configured flows, then the engine thread.
  serve (asyncio loop): the ctl socket, the bond controllers (LACPDUs in
    and out, timers, rebalancing; member link changes come from the link
    monitor; a bond's own link state goes through the same path as a
    port's, so PORT_STATUS tells controllers when it goes up or down),
    the netlink link monitor, the
    OpenFlow agent and its channels (datapath/ofp/agent.py, channel.py:
    --controller connections, --listen listeners, TLS files from
    --ssl-key/--ssl-cert/--ssl-ca).  Fail mode with no controller
    connected: secure = misses dropped; standalone = NORMAL, and how depends
    on the config (Datapath.fail_standalone_mode, set by the agent, which
    learns from us how many --controller targets there are): with none
    configured, table-0 misses go to NORMAL and installed flows still win;
    with some configured but none connected (OVS fail-open), every frame
    goes to NORMAL so flows a lost controller left cannot black-hole it),
    upcall draining (PACKET_IN to the connections; counted and dropped with
    none), flow expiry every second (FLOW_REMOVED), SIGTERM/SIGINT -> stop.
  teardown: engine stopped, ports detached and closed (rings unmapped), the
    TAPs we created removed, ctl socket and lock files removed.  Exit 0.

Logs go to stderr through `logging` (one line per event).
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import hashlib
import logging
import os
import signal
import socket
import sys
import time

from . import ctl as ctlmod
from . import flowsyntax as fs
from . import model as M
from .config import Config, default_run_dir, format_dpid

log = logging.getLogger("vdp")

EXPIRE_INTERVAL = 1.0        # seconds between idle/hard timeout sweeps
UPCALL_POLL = 0.1            # fallback upcall polling when there is no upcall fd
UPCALL_BATCH = 256           # upcalls per drain step (the ring holds 1024)


class DaemonError(Exception):
    """The daemon cannot start or run; the message is for the user."""


class Locked(Exception):
    def __init__(self, path, pid):
        super().__init__(path)
        self.path, self.pid = path, pid


class LockFile:
    """An flock()ed file holding our pid; removed on release.

    The lock is taken on the file that is at `path` right now (checked by
    inode after locking), so removing it at release cannot let two daemons
    both believe they hold it."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def acquire(self):
        d = os.path.dirname(self.path) or "."
        os.makedirs(d, mode=0o755, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                finally:
                    os.close(fd)
                raise Locked(self.path, pid) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:                      # removed/replaced under us: retry
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.fd = fd
            return self

    def release(self):
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def _ifindex(name):
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def derive_dpid(ports, name):
    """Like OVS: the lowest port MAC address; a hash of the name without ports."""
    macs = []
    for p in ports:
        hw = bytes(getattr(p, "hw_addr", b"") or b"")
        if len(hw) == 6 and any(hw):
            macs.append(int.from_bytes(hw, "big"))
    if macs:
        return min(macs)
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:6], "big") & ~(1 << 40)


class Daemon:
    """One `vdp run`.  fastpath: the facade module (tests pass a fake);
    netlink=False skips everything that needs rtnetlink (admin up, link
    monitor, TAP removal) for tests without real interfaces."""

    def __init__(self, cfg: Config, fastpath=None, netlink=True):
        self.cfg = cfg
        self.fp = fastpath
        self.netlink = netlink
        self.dp = None
        self.state = None
        self.locks = []
        self.ports = {}              # ofport -> Port
        self.created_taps = []       # names
        self.engine_running = False
        self.ctl_server = None
        self.linkmon = None
        self._stop = None
        # --- OpenFlow (ofagent helper): the agent and its connections
        self.agent = None
        self.channels = None
        # --- bonds: name -> BondController; link monitor keys of members
        self.bonds = {}
        self._member_keys = {}       # negative key -> (BondController, member index)

    # ---------------------------------------------------------------- setup
    def setup(self):
        cfg = self.cfg
        try:
            ctlmod.check_ctl_free(cfg.ctl)
        except ctlmod.CtlError as e:
            raise DaemonError(str(e)) from None
        except OSError as e:
            raise DaemonError(f"control socket {cfg.ctl}: {e.strerror or e}") from None
        self._lock(cfg.ctl + ".lock", lambda pid: (
            f"control socket {cfg.ctl} belongs to another running vdp (pid {pid})"))
        run_dir = default_run_dir()
        for pc in cfg.interfaces():
            self._lock(os.path.join(run_dir, f"port-{pc.name}.lock"), lambda pid, n=pc.name: (
                f"port {n} is already used by another vdp (pid {pid}); refusing to start"))
        if self.netlink:
            # every interface must exist before anything is opened
            for port in cfg.ports:
                for pc in port.interfaces():
                    if pc.type == "afpacket" and _ifindex(pc.name) == 0:
                        if port.type == "bond":
                            raise DaemonError(f"bond {port.name}: member {pc.name}: no such "
                                              "interface")
                        raise DaemonError(f"port {pc.name}: cannot open: no such interface")

        if self.fp is None:
            try:
                from . import fastpath
            except ImportError as e:
                raise DaemonError(f"the fast path is not available ({e}); build it with "
                                  "scripts/devbuild.sh NAME or pip install -e .") from None
            self.fp = fastpath
        fp = self.fp
        self.dp = fp.Datapath(n_tables=254)

        for pc in cfg.ports:
            port = self._open_bond(pc) if pc.type == "bond" else self._open_port(pc)
            try:
                self.dp.attach_port(pc.ofport, port)
            except Exception as e:
                port.close()
                raise DaemonError(f"port {pc.name}: cannot attach as port {pc.ofport}: {e}") from None
            self.ports[pc.ofport] = port
            if pc.type == "bond":
                b = pc.bond
                log.info("port %d: %s (bond of %s; %s, lacp %s%s)", pc.ofport, pc.name,
                         ", ".join(str(m) for m in pc.members), b.mode, b.lacp,
                         f" {b.lacp_time}" if b.lacp != "off" else "")
            else:
                log.info("port %d: %s (%s)", pc.ofport, pc.name, pc.type)

        dpid = cfg.dpid if cfg.dpid is not None else derive_dpid(self.ports.values(), cfg.name)
        self.state = ctlmod.SwitchState(
            name=cfg.name, dpid=dpid, fail_mode=cfg.fail_mode,
            n_tables=int(getattr(self.dp, "n_tables", 254)),
            controllers=[str(c) for c in cfg.controllers], listen=[str(x) for x in cfg.listen])

        self.state.bonds = self.bonds
        for pc in cfg.bonds():
            self._start_bond(pc)

        self._install()
        self.dp.start()
        self.engine_running = True

    def _lock(self, path, message):
        lk = LockFile(path)
        try:
            lk.acquire()
        except Locked as e:
            raise DaemonError(message(e.pid)) from None
        except OSError as e:
            hint = " (run as root, or set VDP_RUN_DIR)" if e.errno in (errno.EACCES,
                                                                      errno.EROFS) else ""
            raise DaemonError(f"cannot lock {path}: {e.strerror or e}{hint}") from None
        self.locks.append(lk)

    def _open_port(self, pc):
        fp = self.fp
        try:
            if pc.type == "tap":
                exists = _ifindex(pc.name) != 0
                port = fp.TapPort(pc.name, create=not exists)
                if not exists:
                    self.created_taps.append(pc.name)
                    log.info("created TAP %s", pc.name)
            else:
                port = fp.AfPacketPort(pc.name)
        except OSError as e:
            why = e.strerror or str(e)
            if e.errno in (errno.ENODEV, errno.ENXIO, errno.ENOENT) and pc.type != "tap":
                why = "no such interface"
            raise DaemonError(f"port {pc.name}: cannot open: {why}") from None
        except Exception as e:
            raise DaemonError(f"port {pc.name}: cannot open: {e}") from None
        if self.netlink:
            try:
                from .linkmon import set_admin_up
                if set_admin_up(pc.name):
                    log.info("port %s: set administratively up", pc.name)
            except Exception as e:
                log.warning("port %s: cannot set it up: %s", pc.name, e)
        return port

    def _open_bond(self, pc):
        """The BondPort of bond pc over its members (opened like ports)."""
        fp = self.fp
        if getattr(fp, "BondPort", None) is None:
            raise DaemonError(f"bond {pc.name}: this fast path has no bonds")
        from .bond import HASH_OF
        members = []
        try:
            for m in pc.members:
                try:
                    members.append(self._open_port(m))
                except DaemonError as e:
                    raise DaemonError(f"bond {pc.name}: member {e}") from None
            try:
                return fp.BondPort(pc.name, members, mode=HASH_OF[pc.bond.mode])
            except (ValueError, TypeError) as e:
                raise DaemonError(f"bond {pc.name}: {e}") from None
        except BaseException:
            for m in members:
                try:
                    m.close()
                except Exception:
                    pass
            raise

    def _start_bond(self, pc):
        from .bond import BondController, BondError
        port = self.ports[pc.ofport]
        flush = getattr(self.dp, "flush", None)
        try:
            ctrl = BondController(pc.bond, port, ofport=pc.ofport, dp=self.dp,
                                  on_link=lambda up, why, n=pc.ofport: self._link_changed(n, up, why),
                                  flush=flush, now=time.monotonic())
        except BondError as e:
            raise DaemonError(str(e)) from None
        self.bonds[pc.name] = ctrl
        # the link monitor reports members under negative keys (never an
        # OpenFlow port number); _link_changed hands those to the bond
        for i in range(ctrl.n):
            self._member_keys[-(len(self._member_keys) + 1)] = (ctrl, i)

    def _install(self):
        cfg, dp = self.cfg, self.dp
        for i, m in enumerate(cfg.meters):
            try:
                dp.meter_add(m)
            except Exception as e:
                raise DaemonError(f"meters[{i}] ({fs.format_meter(m)}): "
                                  f"{ctlmod._dp_error(e)}") from None
        for i, g in enumerate(cfg.groups):
            try:
                dp.group_add(g)
            except Exception as e:
                raise DaemonError(f"groups[{i}] ({fs.format_group(g)}): "
                                  f"{ctlmod._dp_error(e)}") from None
        if cfg.fail_mode == "standalone":
            # No controller is connected yet: table-0 misses go to NORMAL
            # (the agent turns this off while a controller is connected).
            dp.fail_standalone = True
        for i, spec in enumerate(cfg.flows):
            try:
                dp.flow_add(spec)
            except Exception as e:
                raise DaemonError(f"flows[{i}] ({cfg.flow_texts[i]}): "
                                  f"{ctlmod._dp_error(e)}") from None
        if cfg.flows or cfg.groups or cfg.meters:
            log.info("installed %d flow(s), %d group(s), %d meter(s)",
                     len(cfg.flows), len(cfg.groups), len(cfg.meters))

    # ---------------------------------------------------------------- serve
    async def serve(self):
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (RuntimeError, ValueError):
                pass                # not the main thread (tests): stop() ends serve()

        self.ctl_server = ctlmod.CtlServer(self.cfg.ctl, ctlmod.Commands(self.dp, self.state))
        try:
            await self.ctl_server.start()
        except ctlmod.CtlError as e:
            raise DaemonError(str(e)) from None
        except OSError as e:
            raise DaemonError(f"control socket {self.cfg.ctl}: {e.strerror or e}") from None

        for ctrl in self.bonds.values():
            ctrl.attach(loop)
        if self.netlink:
            await self._start_linkmon()
        if self.linkmon is None:
            for ctrl in self.bonds.values():      # no netlink: members assumed up
                for i in range(ctrl.n):
                    ctrl.link_event(i, True, "assumed up")

        # --- OpenFlow (ofagent helper) -------------------------------------
        await self._start_openflow()
        # --- end OpenFlow ---------------------------------------------------

        tasks = [loop.create_task(self._expire_loop())]
        fd = None
        try:
            fd = self.dp.upcall_fd()
        except (AttributeError, NotImplementedError, OSError):
            fd = None
        if isinstance(fd, int) and fd >= 0:
            loop.add_reader(fd, self._drain_upcalls)
        else:
            fd = None
            tasks.append(loop.create_task(self._upcall_poll_loop()))

        log.info("%s running: dpid %s, fail_mode %s, ports %s, ctl %s", self.state.name,
                 format_dpid(self.state.dpid), self.state.fail_mode,
                 " ".join(f"{n}({p.name})" for n, p in sorted(self.ports.items())) or "none",
                 self.cfg.ctl)
        try:
            await self._stop.wait()
        finally:
            if fd is not None:
                loop.remove_reader(fd)
            for t in tasks:
                t.cancel()
            for t in tasks:
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass
            if self.channels is not None:          # OpenFlow (ofagent helper)
                await self.channels.close()
                self.channels = None
            if self.linkmon is not None:
                await self.linkmon.close()
            for ctrl in self.bonds.values():
                ctrl.detach()
            await self.ctl_server.close()

    def _on_signal(self, sig):
        log.info("%s: stopping", signal.Signals(sig).name)
        self._stop.set()

    def stop(self):
        """Asks serve() to return (from the loop's thread)."""
        if self._stop is not None:
            self._stop.set()

    async def _start_linkmon(self):
        from .linkmon import LinkMonitor
        self.linkmon = LinkMonitor(self._link_changed)
        bond_ports = {c.ofport for c in self.bonds.values()}
        for n, p in self.ports.items():
            if n in bond_ports:
                continue                 # its link is its members' business
            self.linkmon.watch(n, getattr(p, "ifindex", 0) or _ifindex(p.name), p.name)
        # bond members, under their negative keys (see _start_bond)
        for key, (ctrl, i) in self._member_keys.items():
            m = ctrl.port.members[i]
            self.linkmon.watch(key, getattr(m, "ifindex", 0) or _ifindex(m.name), m.name)
        try:
            await self.linkmon.start()
        except Exception as e:
            log.warning("link monitor unavailable (%s): ports are assumed up", e)
            await self.linkmon.close()
            self.linkmon = None

    # --- OpenFlow (ofagent helper) ---------------------------------------
    async def _start_openflow(self):
        """The agent always exists (fail mode, expiry, upcalls go through
        it); channels only when controllers or listeners are configured."""
        from .ofp.agent import Agent
        from .ofp.channel import ChannelError, Channels
        cfg = self.cfg
        self.agent = Agent(self.dp, dpid=self.state.dpid, name=cfg.name,
                           fail_mode=cfg.fail_mode)
        self.state.agent = self.agent          # `vdp ctl show`: controller_connected
        # Fail-open (standalone with active controllers configured, none
        # connected yet) overrides the flow tables; the agent needs to know.
        self.agent.controllers_configured = len(cfg.controllers)
        self.agent._update_fail_mode()
        if not (cfg.controllers or cfg.listen):
            return
        self.channels = Channels(self.agent, cfg.controllers, cfg.listen, tls=cfg.tls())
        try:
            await self.channels.start()
        except ChannelError as e:
            self.channels = None
            if self.linkmon is not None:
                await self.linkmon.close()
                self.linkmon = None
            await self.ctl_server.close()
            raise DaemonError(str(e)) from None
    # --- end OpenFlow -----------------------------------------------------

    def _link_changed(self, ofport, up, why):
        if ofport < 0:                         # a bond member (see _start_linkmon)
            ctrl, i = self._member_keys[ofport]
            ctrl.link_event(i, up, why)
            return
        self.dp.set_port_link(ofport, up)
        if self.agent is not None:             # PORT_STATUS (ofagent helper)
            self.agent.port_changed(ofport)
        old = self.state.link_up.get(ofport)
        self.state.link_up[ofport] = up
        if old != up:
            name = self.ports[ofport].name if ofport in self.ports else "?"
            log.info("port %d (%s): link %s%s", ofport, name, "up" if up else "down",
                     "" if why == "up" else f" ({why})")

    def _drain_upcalls(self):
        # Batches of up to UPCALL_BATCH as plain tuples when the Datapath
        # has upcall_tuples() (one PACKET_IN write per connection per batch).
        fast = getattr(self.dp, "upcall_tuples", None)
        agent = self.agent
        try:
            while True:
                ups = fast(UPCALL_BATCH) if fast is not None else self.dp.upcalls(UPCALL_BATCH)
                if not ups:
                    break
                # PACKET_IN to the OpenFlow connections (ofagent helper)
                if agent is not None and (agent.handle_upcall_tuples(ups) if fast is not None
                                          else agent.handle_upcalls(ups)):
                    if len(ups) < UPCALL_BATCH:
                        break
                    continue
                if self.state.upcalls_dropped == 0:
                    log.info("packet-in dropped: no controller connected (counted in `show`)")
                self.state.upcalls_dropped += len(ups)
                if len(ups) < UPCALL_BATCH:
                    break
        except Exception:
            log.exception("draining upcalls failed")

    async def _upcall_poll_loop(self):
        while True:
            self._drain_upcalls()
            await asyncio.sleep(UPCALL_POLL)

    async def _expire_loop(self):
        while True:
            await asyncio.sleep(EXPIRE_INTERVAL)
            try:
                # FLOW_REMOVED goes out through the agent (ofagent helper)
                removed = (self.agent.expire(time.monotonic()) if self.agent is not None
                           else self.dp.expire(time.monotonic()))
            except Exception:
                log.exception("flow expiry failed")
                continue
            for stats, reason in removed or ():
                log.debug("flow expired (%s): %s", reason, fs.format_flow(stats).strip())

    # ------------------------------------------------------------- teardown
    def teardown(self):
        """Releases everything setup() took; safe after a partial setup."""
        for ctrl in self.bonds.values():
            ctrl.detach()
        if self.engine_running:
            try:
                self.dp.stop()
            except Exception:
                log.exception("stopping the engine failed")
            self.engine_running = False
        for n, port in sorted(self.ports.items()):
            try:
                self.dp.detach_port(n)
            except Exception as e:
                log.debug("detach port %d: %s", n, e)
            try:
                port.close()
            except Exception:
                log.exception("closing port %d failed", n)
        self.ports.clear()
        if self.created_taps and self.netlink:
            from .linkmon import delete_link
            for name in self.created_taps:
                try:
                    if delete_link(name):
                        log.info("removed TAP %s", name)
                except Exception as e:
                    log.warning("cannot remove TAP %s: %s", name, e)
        self.created_taps.clear()
        if self.ctl_server is not None:
            self.ctl_server.unlink()
        for lk in reversed(self.locks):
            try:
                lk.release()
            except OSError as e:
                log.warning("releasing %s: %s", lk.path, e)
        self.locks.clear()


class _Terminate(BaseException):
    """SIGTERM/SIGINT before the event loop runs."""


def _early_signal(signum, frame):
    raise _Terminate(signum)


def setup_logging(verbose=0):
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def run(cfg: Config, verbose=0, fastpath=None, netlink=True):
    """Runs the daemon until SIGTERM/SIGINT; returns the exit status."""
    setup_logging(verbose)
    old = {s: signal.signal(s, _early_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    # Flows added through ovs-ofctl syntax or the Python API keep their
    # Match object alive (ext holds a reference; flows from OpenFlow keep
    # only their OXM bytes), so with 100k such flows each full collection
    # walks 100k+ objects, and by default one runs each time the long-lived
    # objects grew by 25%: again and again while flows are installed.  Young
    # collections still find reference cycles; full ones wait for 1000
    # generation-1 passes.  (bench/ofp_rates.py: 1.3-2x flow-mods/s.)
    gc.set_threshold(700, 10, 1000)
    d = Daemon(cfg, fastpath=fastpath, netlink=netlink)
    rc = 0
    try:
        try:
            d.setup()
            asyncio.run(d.serve())
        except _Terminate:
            log.info("stopped during startup")
        except DaemonError as e:
            log.error("%s", e)
            rc = 1
        except Exception:
            log.exception("vdp failed")
            rc = 1
        finally:
            # A second signal must not cut the cleanup short.
            for s in old:
                signal.signal(s, signal.SIG_IGN)
            d.teardown()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if rc == 0:
        log.info("stopped")
    return rc
