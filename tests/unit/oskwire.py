"""os-ken as the reference for OpenFlow 1.3 bytes in unit tests: encode a
message os-ken builds, parse what vdp sends.  Imported by the codec, agent,
reassembly and packet-out tests (pytest puts tests/unit on sys.path)."""
import struct

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser


class StubDatapath:
    """What os-ken's msg.serialize() and parsers need of a datapath."""
    ofproto = ofp
    ofproto_parser = parser
    id = 1


DP = StubDatapath()


def osk_bytes(msg, xid):
    """msg (built with DP) serialized by os-ken with this xid."""
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


def osk_parse(raw):
    """os-ken's parse of one whole message (its msg_parser raises on bad
    input instead of logging); the header length must be the whole of raw."""
    version, msg_type, msg_len, xid = struct.unpack_from("!BBHI", raw)
    assert msg_len == len(raw)
    return parser.msg_parser(DP, version, msg_type, msg_len, xid, raw)
