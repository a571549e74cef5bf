"""os-ken's switch test tool as the conformance runner starts it.

    python -m tests.conformance.tool [--os-ken-sctp-as-shipped] [launcher args]

Runs controller/launcher.py (APP and options as there) after mending one
bug of os-ken 4.x that no switch can pass: os_ken.lib.packet.sctp computes
the SCTP CRC32c (RFC 3309) by iterating `str(data)` over a bytearray, which
on Python 3 walks the characters of "bytearray(b'...')" instead of the
bytes.  Every SCTP header os-ken serializes with csum=0 therefore carries a
wrong checksum.  The tool builds both the packet it sends and the packet it
expects back with os-ken, so a case passes only when the expected packet is
the sent one untouched: the 16 set_field cases that rewrite sctp_src or
sctp_dst (action/25_SET_FIELD/17_SCTP_SRC, 18_SCTP_DST) expect os-ken's
wrong checksum over the new ports, while a correct switch sends the right
one (Open vSwitch and vdp agree with scapy's and Wireshark's dissectors).
On Python 2, where Ryu's published results were measured, str(bytearray)
is the bytes and the same code is right; the mend restores that behaviour
(with scapy's crc32c) and changes nothing else.

Who uses it: tests/conformance/runner.py (default; --os-ken-sctp-as-shipped
there runs the tool unmended) and tests/conformance/test_conformance_subset.py.
docs/conformance.md tells the story with both figures.
"""
import sys

AS_SHIPPED = "--os-ken-sctp-as-shipped"


def sctp_crc32c(data) -> int:
    """The CRC32c of an SCTP packet as os-ken's serializer stores it (the
    value it packs big-endian into the checksum field)."""
    from scapy.layers.sctp import crc32c
    return crc32c(bytes(data))


def mend_sctp_checksum():
    """Replaces os_ken.lib.packet.sctp.sctp._checksum with a correct one."""
    from os_ken.lib.packet import sctp
    sctp.sctp._checksum = lambda self, data: sctp_crc32c(data)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    # The launcher must pick os-ken's hub before os-ken is imported: import
    # it first, then mend (os_ken.lib.packet does not touch the hub).
    from controller import launcher
    if AS_SHIPPED in argv:
        argv.remove(AS_SHIPPED)
    else:
        mend_sctp_checksum()
    return launcher.main(argv)


if __name__ == "__main__":
    sys.exit(main())
