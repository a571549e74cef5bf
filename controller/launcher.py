"""Run os-ken apps in one process: the `osken-manager` that os-ken 4.x lacks.

    python -m controller.launcher APP [APP ...] [os-ken options]
    run_apps(["os_ken.tests.switch.tester"], ["--ofp-tcp-listen-port", "6653"])

APP is a Python module defining an os-ken app (a subclass of
os_ken.base.app_manager.OSKenApp), e.g. `os_ken.tests.switch.tester`.
Options are os-ken's own (--ofp-tcp-listen-port, --ofp-listen-host,
--log-file, --verbose, ...) plus any the apps register when imported
(the switch test tool: --test-switch-dir, --test-switch-target, ...).

Used by the conformance runner (tests/conformance/runner.py) and meant for
`vdp controller` too, so it knows nothing of any particular app.

Why this is more than AppManager.run_apps():
- os-ken picks its green-thread hub from OSKEN_HUB_TYPE when os_ken.lib.hub
  is first imported; the default ("native" threads) never fires
  hub.Timeout, so timeouts in apps silently hang.  We select eventlet and
  monkey-patch before anything of os-ken is imported, and pick eventlet's
  select() hub, whose timers are precise to the microsecond (the default
  epoll hub makes every hub.sleep up to 1 ms late; see below).
- Apps register command-line options at import time, so the apps are
  imported before the command line is parsed; an unknown app or option is
  reported clearly (LauncherError) instead of being skipped silently.
- SIGINT/SIGTERM end the run cleanly (apps closed, status 0), as does every
  app thread finishing; an app may end the run by signalling its own
  process, as the switch test tool does.
"""
import os
import sys

# Must precede every os_ken import (see above); an explicit choice wins.
os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")

import warnings  # noqa: E402

# os-ken needs eventlet; its deprecation notice is noise for our users.
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

import importlib  # noqa: E402
import inspect  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402

if os.environ["OSKEN_HUB_TYPE"] == "eventlet" and "EVENTLET_HUB" not in os.environ:
    # Precise green-thread timers.  eventlet's default (epoll) hub hands its
    # timeout to epoll_wait in whole milliseconds rounded up, so whenever a
    # socket is being watched -- always, in a controller -- hub.sleep(0.01)
    # lasts about 10.7 ms: a periodic green thread runs 7% slow (measured
    # here).  The select() hub takes microseconds and does not spin.  Its
    # limit, descriptors below 1024 (FD_SETSIZE), is far above what a
    # controller for a few switches uses; EVENTLET_HUB=epolls overrides.
    # Must run before os_ken.lib.hub is imported: that creates the hub.
    import eventlet.hubs  # noqa: E402
    eventlet.hubs.use_hub("selects")

from os_ken.lib import hub  # noqa: E402

if hub.HUB_TYPE == "eventlet":
    # Threads stay real threads (as osken-manager/ryu-manager did): apps
    # that use threading for blocking work keep working.
    hub.patch(thread=False)

from os_ken import cfg  # noqa: E402
from os_ken import flags  # noqa: E402,F401  (registers os-ken's global options)
from os_ken import log  # noqa: E402
from os_ken.base import app_manager  # noqa: E402
from os_ken.controller import controller  # noqa: E402,F401  (--ofp-* options)

LOG = logging.getLogger("controller.launcher")

USAGE = "usage: python -m controller.launcher APP [APP ...] [os-ken options]"

# How often the main green thread looks at the stop flag and the app threads.
POLL_S = 0.2


class LauncherError(Exception):
    """Bad command line: unknown app module, unknown or bad option."""


def find_app_class(module_name):
    """Imports module_name; returns the os-ken app class it defines.

    Raises LauncherError when the module cannot be imported or defines no
    OSKenApp subclass (AppManager.load_apps would skip such a module
    without a word)."""
    try:
        mod = importlib.import_module(module_name)
    except ImportError as e:
        raise LauncherError(f"unknown app {module_name!r}: cannot import it ({e})") from None
    classes = [c for _, c in inspect.getmembers(mod, inspect.isclass)
               if issubclass(c, app_manager.OSKenApp) and c.__module__ == mod.__name__]
    if not classes:
        raise LauncherError(f"unknown app {module_name!r}: the module defines no os-ken app "
                            f"(no subclass of os_ken.base.app_manager.OSKenApp)")
    return classes[0]


def parse_options(argv):
    """Parses os-ken options (registered by os-ken and by the apps already
    imported) into os_ken.cfg.CONF.  Raises LauncherError on a bad one."""
    try:
        # No config files: only what is on the command line counts.
        cfg.CONF(args=list(argv), project="os_ken", prog="controller.launcher",
                 default_config_files=[])
    except SystemExit as e:
        # argparse has printed its usage and the offending token already.
        raise LauncherError(f"bad option in {' '.join(argv) or '(none)'} "
                            f"(see the message above; exit status {e.code})") from None
    except cfg.RequiredOptError as e:
        raise LauncherError(str(e)) from None
    except Exception as e:          # oslo.config raises several Error types
        raise LauncherError(f"bad option: {e}") from None


def _split_args(args):
    """APP modules come first; the first argument starting with '-' begins
    the options."""
    apps = []
    for i, a in enumerate(args):
        if a.startswith("-"):
            return apps, list(args[i:])
        apps.append(a)
    return apps, []


class _Stop:
    """Set by SIGINT/SIGTERM.  The handler only records the signal: it may
    run inside eventlet's hub greenlet, where raising would wreck the hub;
    the main green thread notices within POLL_S."""

    def __init__(self):
        self.signum = None

    def __call__(self, signum, frame):
        if self.signum is None:
            LOG.info("launcher: got %s, stopping", signal.Signals(signum).name)
        self.signum = signum


def run_apps(app_modules, argv, install_signals=True):
    """Loads app_modules, parses argv (os-ken options), runs the apps until
    every app thread has finished or SIGINT/SIGTERM arrives, then closes
    them.  Returns 0.  Raises LauncherError for a bad app or option."""
    if not app_modules:
        raise LauncherError("no app given; " + USAGE)
    for name in app_modules:
        find_app_class(name)         # imports it: registers its options
    parse_options(argv)
    log.init_log()

    stop = _Stop()
    old = {}
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, stop)
    mgr = app_manager.AppManager.get_instance()
    threads = []
    try:
        mgr.load_apps(list(app_modules))
        contexts = mgr.create_contexts()
        threads = list(mgr.instantiate_apps(**contexts))
        while stop.signum is None and any(not t.dead for t in threads):
            hub.sleep(POLL_S)
    finally:
        _close(mgr, threads)
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return 0


def _close(mgr, threads):
    """Closes every app, then kills what is left of their threads.  An app
    whose close() fails (some assume they are still running) does not keep
    the others from closing."""
    for name in list(mgr.applications):
        try:
            mgr.uninstantiate(name)
        except Exception as e:
            LOG.warning("launcher: closing app %s failed: %r", name, e)
            mgr.applications.pop(name, None)
    for ctx in list(mgr.contexts.values()):
        try:
            closer = getattr(ctx, "close", None)
            if callable(closer):
                closer()
        except Exception as e:
            LOG.warning("launcher: closing context %r failed: %r", ctx, e)
    mgr.contexts.clear()
    for t in threads:
        if not t.dead:
            t.kill()


def main(args=None):
    args = sys.argv[1:] if args is None else list(args)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        print("APP: a module defining an os-ken app, e.g. os_ken.tests.switch.tester;")
        print("options: os-ken's and the apps' (after the apps are imported), e.g.")
        print("  --ofp-tcp-listen-port PORT --ofp-listen-host IP --log-file FILE --verbose")
        return 0 if args else 2
    apps, opts = _split_args(args)
    try:
        return run_apps(apps, opts)
    except LauncherError as e:
        print(f"controller.launcher: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
