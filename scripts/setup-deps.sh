#!/bin/bash
# Installs everything vdp needs on a Debian 12 machine, as root:
#   - Debian packages (Open vSwitch, Mininet, keepalived, trafgen, iperf3,
#     tshark, ...) for the integration tests, demo and benchmarks;
#   - the Python packages pinned in requirements.txt;
#   - starts Open vSwitch (userspace; bench and later tests use it).
# Idempotent and fast when everything is already there: apt and pip run only
# when something is missing.  Called by `make deps` (and so by make test,
# make demo, make bench).  PYTHON selects the interpreter (default python3).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

APT_PKGS=(
    openvswitch-switch mininet keepalived netsniff-ng iproute2 ethtool
    tshark iperf3 iputils-ping tcpdump procps psmisc kmod
    gcc make libc6-dev
)

log() { echo "setup-deps: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (installs packages, starts Open vSwitch)" >&2
    exit 1
fi

# --- Debian packages ----------------------------------------------------
# Python headers: needed to compile the Cython extension.  A pyenv or other
# non-Debian Python ships its own; Debian's python3 needs python3-dev.
pyinc=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [ ! -f "$pyinc/Python.h" ]; then
    APT_PKGS+=(python3-dev)
fi

missing=()
for p in "${APT_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    # tshark asks whether non-root users may capture; answer it up front.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null
else
    log "Debian packages: all present"
fi
if [ ! -f "$pyinc/Python.h" ]; then
    log "no Python.h in $pyinc: cannot build the extension with $PYTHON" >&2
    exit 1
fi

# --- Python packages ----------------------------------------------------
# Compare the pins with what is installed; run pip only on a mismatch.
if "$PYTHON" - requirements.txt <<'EOF'
import re, sys
from importlib import metadata
bad = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = metadata.version(name.strip())
    except metadata.PackageNotFoundError:
        have = None
    if want and have != want.strip():
        bad.append(f"{name.strip()} (have {have}, want {want.strip()})")
if bad:
    print("setup-deps: Python packages to install: " + ", ".join(bad))
    sys.exit(1)
EOF
then
    log "Python packages: all pinned versions present"
else
    "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore -r requirements.txt
fi

# --- kernel facilities --------------------------------------------------
if [ ! -e /dev/net/tun ]; then
    modprobe tun 2>/dev/null || true
    if [ ! -e /dev/net/tun ]; then
        mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun
    fi
fi

# --- Open vSwitch (userspace datapath; no kernel module here) -----------
ovsctl=/usr/share/openvswitch/scripts/ovs-ctl
if "$ovsctl" status >/dev/null 2>&1; then
    log "Open vSwitch: running"
else
    log "starting Open vSwitch"
    # Without the openvswitch kernel module ovs-ctl warns about it; the
    # userspace (netdev) datapath works regardless.
    "$ovsctl" start --system-id=random --no-monitor >/dev/null
    "$ovsctl" status >/dev/null || { log "Open vSwitch did not start" >&2; exit 1; }
fi
log "done"
