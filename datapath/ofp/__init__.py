"""The switch side of OpenFlow 1.3 (wire version 0x04), written for vdp.

    from datapath import ofp
    framer = ofp.Framer()
    framer.feed(sock.recv(65536))
    for raw in framer:
        try:
            msg = ofp.decode(raw)          # FlowMod, PacketOut, MultipartRequest, ...
        except ofp.OFPError as e:
            sock.send(e.encode())          # OFPT_ERROR with the request's xid and bytes
            continue
        ...
        sock.send(ofp.encode(ofp.BarrierReply(msg.xid)))

Modules (each with one job):
  consts     the specification's numbers
  codec      OFPError, bounded reads, Framer
  oxm        ofp_match/OXM <-> model.Match, check_prerequisites()
  actions    actions, instructions, buckets, meter bands <-> model
  multipart  multipart request/reply bodies, table features, ofp_port, queues
  messages   one dataclass per message, decode(), encode(),
             encode_multipart_reply()
"""
from . import consts
from .actions import ExperimenterAction, ExperimenterBand, ExperimenterInstruction
from .codec import Framer, OFPError
from .messages import (BarrierReply, BarrierRequest, EchoReply, EchoRequest, ErrorMsg,
                       Experimenter, FeaturesReply, FeaturesRequest, FlowMod, FlowRemoved,
                       GetAsyncReply, GetAsyncRequest, GetConfigReply, GetConfigRequest,
                       GroupMod, Hello, MeterMod, MultipartReply, MultipartRequest, PacketIn,
                       PacketOut, PortMod, PortStatus, QueueGetConfigReply,
                       QueueGetConfigRequest, RoleReply, RoleRequest, SetAsync, SetConfig,
                       TableMod, decode, encode, encode_multipart_reply, negotiate_version)
from .multipart import (AggregateStats, Desc, ExperimenterMultipart, FlowStatsRequest,
                        GroupFeatures, GroupStats, GroupStatsRequest, MeterFeatures, MeterStats,
                        MeterStatsRequest, OxmId, PacketQueue, PortDesc, PortStats,
                        PortStatsRequest, QueueExperimenter, QueueMaxRate, QueueMinRate,
                        QueueStats, QueueStatsRequest, RawId, TableFeatures, TableStats,
                        TFActions, TFExperimenter, TFInstructions, TFNextTables, TFOxm)
from .oxm import OxmExp, check_prerequisites, opaque_fields

__all__ = [n for n in dir() if not n.startswith("_")]
