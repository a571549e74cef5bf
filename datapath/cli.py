"""The `vdp` command: `vdp run` (the daemon) and `vdp ctl` (talk to it).

    vdp run [--config FILE] [--name BR] [--dpid ID] --port IF [--port tap:NAME ...]
            [--bond NAME=IF1,IF2[,...] ...] [--bond-mode MODE] [--lacp active|passive|off]
            [--lacp-time fast|slow] [--lacp-system-priority N] [--lacp-system-id MAC]
            [--lacp-key N] [--lacp-port-priority N] [--[no-]lacp-fallback]
            [--bond-rebalance-interval S]
            [--controller tcp:IP:PORT] [--listen ptcp:PORT[:IP]]
            [--ssl-key FILE --ssl-cert FILE --ssl-ca FILE]
            [--fail-mode standalone|secure] [--ctl PATH] [-v]
    vdp ctl [--ctl PATH] [--json] [--strict] CMD [ARG...]
    vdp controller [l2|stp|vrrp|MODULE ...] [--config FILE] [--ofp-tcp-listen-port P]
                   [--ofp-listen-host H] [os-ken options]
    vdp controller status stp|vrrp [--socket PATH] [--json]

Exit status: 0 ok; 1 the command failed (daemon refused, ctl error: message
on stderr); 2 bad usage (a bad flag or value, a bad config file).
docs/cli.md documents every command.  Installed as the `vdp` console script
(setup.py) and runnable as `python -m datapath.cli`.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import config as C
from . import ctl

CTL_COMMANDS = list(ctl.COMMANDS)


def _typed(fn, what):
    """An argparse type from a config parser (ValueError -> usage error)."""
    def conv(text):
        try:
            fn(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return text
    conv.__name__ = what
    return conv


class _InOrder(argparse.Action):
    """--port and --bond: kept in one list (args.ifaces) in the order given,
    since ports and bonds are numbered together."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(values)
        setattr(namespace, self.dest, items)
        ifaces = list(getattr(namespace, "ifaces", None) or [])
        ifaces.append((self.dest, values))
        namespace.ifaces = ifaces


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def run_parser():
    p = _Parser(prog="vdp run", description="Run the vdp switch daemon in the foreground.")
    p.add_argument("--config", metavar="FILE", help="TOML configuration (flags override it)")
    p.add_argument("--name", metavar="BR", type=_typed(C.check_name, "name"),
                   help=f"switch name (default {C.DEFAULT_NAME})")
    p.add_argument("--dpid", metavar="ID", type=_typed(C.parse_dpid, "dpid"),
                   help="datapath id: decimal, 0x-hex or 16 hex digits")
    p.add_argument("--port", metavar="IF|tap:NAME", action=_InOrder,
                   type=_typed(C.parse_port_arg, "port"),
                   help="a port (repeat; ports and bonds are numbered 1, 2, 3 in order)")
    p.add_argument("--bond", metavar="NAME=IF1,IF2[,...]", action=_InOrder,
                   type=_typed(C.parse_bond_arg, "bond"),
                   help="a bond: ONE port over these interfaces (repeat)")
    p.add_argument("--bond-mode", metavar="MODE",
                   help="active-backup (default), balance-l2, balance-l3, balance-l4 "
                        "(= balance-tcp) or balance-slb; for every bond")
    p.add_argument("--lacp", choices=("active", "passive", "off"),
                   help="LACP on the bonds (default off: static)")
    p.add_argument("--lacp-time", choices=("fast", "slow"),
                   help="LACPDU rate we ask of the partner: fast 1 s, slow 30 s (default)")
    p.add_argument("--lacp-system-priority", metavar="N", type=int,
                   help="LACP system priority (default 65534)")
    p.add_argument("--lacp-system-id", metavar="MAC",
                   help="LACP system id (default: the bond's first member's MAC)")
    p.add_argument("--lacp-key", metavar="N", type=int,
                   help="LACP aggregation key (default: the bond's OpenFlow port number)")
    p.add_argument("--lacp-port-priority", metavar="N", type=int,
                   help="LACP port priority of the members (default 32768)")
    p.add_argument("--lacp-fallback", action=argparse.BooleanOptionalAction, default=None,
                   help="with LACP, run active-backup when no partner answers")
    p.add_argument("--bond-rebalance-interval", metavar="S", type=float,
                   help="seconds between load rebalancing of balance-* bonds (default 10; "
                        "0 = never)")
    p.add_argument("--controller", metavar="tcp:IP:PORT", action="append",
                   type=_typed(C.parse_controller, "controller"), help="OpenFlow controller")
    p.add_argument("--listen", metavar="ptcp:PORT[:IP]", action="append",
                   type=_typed(C.parse_listen, "listen"), help="passive OpenFlow listener")
    p.add_argument("--ssl-key", metavar="FILE",
                   help="TLS private key (PEM) for ssl:/pssl: (like ovs --private-key)")
    p.add_argument("--ssl-cert", metavar="FILE",
                   help="TLS certificate (PEM) for ssl:/pssl: (like ovs --certificate)")
    p.add_argument("--ssl-ca", metavar="FILE",
                   help="CA certificate(s) (PEM) that peers' certificates must chain to "
                        "(like ovs --ca-cert)")
    p.add_argument("--fail-mode", choices=C.FAIL_MODES,
                   help=f"without a controller: standalone = learning switch (default), "
                        "secure = only installed flows")
    p.add_argument("--ctl", metavar="PATH", help="control socket (default /run/vdp/BR.ctl)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    p.set_defaults(ifaces=None)
    return p


def ctl_parser():
    p = _Parser(prog="vdp ctl", description="Inspect and program a running vdp.",
                epilog="commands: " + ", ".join(CTL_COMMANDS))
    p.add_argument("--ctl", metavar="PATH", help="control socket (default "
                   f"{C.default_ctl_path(C.DEFAULT_NAME)})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--strict", action="store_true", help="del-flows: exact match and priority")
    p.add_argument("--timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("cmd", metavar="CMD", choices=CTL_COMMANDS,
                   help="one of: " + ", ".join(CTL_COMMANDS))
    p.add_argument("words", metavar="ARG", nargs="*", help="FLOW, FILE, GROUP...")
    return p


TOP_USAGE = """usage: vdp run [--config FILE] [--name BR] [--dpid ID] --port IF [--port tap:NAME ...]
               [--bond NAME=IF1,IF2[,...]] [--bond-mode MODE] [--lacp active|passive|off]
               [--lacp-time fast|slow] [--lacp-...]
               [--controller tcp:IP:PORT] [--listen ptcp:PORT[:IP]]
               [--ssl-key FILE --ssl-cert FILE --ssl-ca FILE]
               [--fail-mode standalone|secure] [--ctl PATH]
       vdp ctl [--ctl PATH] [--json] CMD [ARG...]
       vdp controller [l2|stp|vrrp ...] [--config FILE] [--ofp-tcp-listen-port P] [--ofp-listen-host H]
       vdp controller status stp|vrrp [--socket PATH] [--json]
"""

# `vdp controller` app names -> os-ken app modules (controller/).  Anything
# else containing a dot is taken as a module path (another os-ken app).
CONTROLLER_APPS = {"l2": "controller.l2.app", "stp": "controller.stp.app",
                   "vrrp": "controller.vrrp.app"}


def build_config(args):
    """The Config for `vdp run` args (file + flags).  Raises ConfigError."""
    ports = None
    if args.ifaces:
        ports = [C.parse_bond_arg(v) if kind == "bond" else v for kind, v in args.ifaces]
    overrides = {
        "name": args.name, "dpid": args.dpid, "fail_mode": args.fail_mode, "ctl": args.ctl,
        "controllers": args.controller, "listen": args.listen, "ports": ports,
        "ssl_key": args.ssl_key, "ssl_cert": args.ssl_cert, "ssl_ca": args.ssl_ca,
        "bond_mode": args.bond_mode, "lacp": args.lacp, "lacp_time": args.lacp_time,
        "lacp_system_priority": args.lacp_system_priority,
        "lacp_system_id": args.lacp_system_id, "lacp_key": args.lacp_key,
        "lacp_port_priority": args.lacp_port_priority, "lacp_fallback": args.lacp_fallback,
        "bond_rebalance_interval": args.bond_rebalance_interval,
    }
    return C.load_config(args.config, overrides)


def main_run(argv):
    p = run_parser()
    args = p.parse_args(argv)
    try:
        cfg = build_config(args)
    except C.ConfigError as e:
        p.print_usage(sys.stderr)
        print(f"vdp run: error: {e}", file=sys.stderr)
        return 2
    if not cfg.ports:
        p.print_usage(sys.stderr)
        print("vdp run: error: no ports: give --port IF or --bond NAME=IF1,IF2 (or ports in "
              "--config)", file=sys.stderr)
        return 2
    from . import daemon            # imports the fast path: only when running
    return daemon.run(cfg, verbose=args.verbose)


def main_ctl(argv, stdout=None, stderr=None):
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    p = ctl_parser()
    args = p.parse_intermixed_args(argv)
    path = args.ctl or C.default_ctl_path(C.DEFAULT_NAME)
    try:
        req_args = ctl.client_args(args.cmd, args.words, strict=args.strict)
    except ctl.CtlUsageError as e:
        p.print_usage(stderr)
        print(f"vdp ctl: error: {e}", file=stderr)
        return 2
    except ctl.CtlError as e:
        print(f"vdp ctl: {e}", file=stderr)
        return 1
    try:
        result = ctl.request(path, args.cmd, req_args, as_json=args.json, timeout=args.timeout)
    except ctl.CtlError as e:
        print(f"vdp ctl: {e}", file=stderr)
        return 1
    stdout.write(ctl.format_result(result, args.json))
    stdout.flush()
    return 0


def controller_argv(argv):
    """The command line `vdp controller ARGS` runs, as a list (argv[0] is
    this Python).  The controller side runs in its own process: the datapath
    never imports controller/, which talks to switches only over OpenFlow.
    Raises ValueError naming a bad app or status target."""
    py = [sys.executable, "-m"]
    if argv and argv[0] in ("status", "show"):
        if len(argv) < 2 or argv[1] not in ("stp", "vrrp"):
            raise ValueError("status needs an app: stp or vrrp")
        return py + [CONTROLLER_APPS[argv[1]], "status"] + argv[2:]
    apps, i = [], 0
    while i < len(argv) and not argv[i].startswith("-"):
        name = argv[i]
        if name in CONTROLLER_APPS:
            apps.append(CONTROLLER_APPS[name])
        elif "." in name:
            apps.append(name)
        else:
            raise ValueError(f"unknown app {name!r} (expected l2, stp, vrrp or a module path)")
        i += 1
    return py + ["controller.launcher"] + (apps or [CONTROLLER_APPS["l2"]]) + argv[i:]


def main_controller(argv):
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(__doc__.split("Exit status")[0])
        return 0
    try:
        cmd = controller_argv(argv)
    except ValueError as e:
        print(f"vdp controller: error: {e}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        out = sys.stdout if argv else sys.stderr
        out.write(TOP_USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "run":
        return main_run(rest)
    if cmd == "ctl":
        return main_ctl(rest)
    if cmd == "controller":
        return main_controller(rest)
    sys.stderr.write(TOP_USAGE)
    print(f"vdp: error: unknown command {cmd!r} (expected run, ctl or controller)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
