/* vdp_types.h - the shared C vocabulary of the fast path: packets, ports,
 * compiled action ops and programs, and the entry points each module offers.
 *
 * Module map (each .c owns one job; all are linked into ext._fastpath):
 *   flowkey.c     field table (vdp_fields), key helpers, key hashing
 *   parse.c       frame -> vdp_key + header offsets (vdp_parse)
 *   classifier.c  tuple-space classifier: one hash table per mask
 *   emc.c         exact-match cache: key -> composed program
 *   pipeline.c    tables, flow entries, instructions, miss translation,
 *                 counters, timeouts, vdp_dp_process (per packet), upcalls
 *   actions.c     packet rewriting ops + checksums (vdp_exec, which runs a
 *                 program, lives in pipeline.c)
 *   group.c       group table and bucket execution (all/select/indirect/ff)
 *   meter.c       meter table, token buckets, band selection
 *   idmap.c       id -> pointer map behind the group and meter tables
 *   normal.c      the NORMAL action: VLAN-aware MAC learning switch
 *   port_afpacket.c, port_tap.c, port_dummy.c  port providers
 *   port_bond.c   a bond: one OpenFlow port over member ports, hash -> bucket -> member
 *   engine.c      the burst loop over ports (runs with the GIL released)
 * None of these includes Python.h; ext/_fastpath.pyx is the only Cython
 * facade and datapath/fastpath.py the only Python caller.
 */
#ifndef VDP_TYPES_H
#define VDP_TYPES_H

#include <stdint.h>
#include <stddef.h>
#include "vdp_key.h"

/* ---------------------------------------------------------------- limits */
#define VDP_BURST        64        /* frames per rx burst */
#define VDP_MAX_PORTS    1024      /* OpenFlow port numbers 1..VDP_MAX_PORTS-1 */
#define VDP_MAX_TABLES   254
#define VDP_HEADROOM     64        /* bytes kept free before a rewritten frame */
#define VDP_MAX_FRAME    65600     /* largest frame handled (GSO-sized frames) */

/* OpenFlow reserved port numbers (ofp_port_no). */
#define VDP_OFPP_MAX        0xffffff00u
#define VDP_OFPP_IN_PORT    0xfffffff8u
#define VDP_OFPP_TABLE      0xfffffff9u
#define VDP_OFPP_NORMAL     0xfffffffau
#define VDP_OFPP_FLOOD      0xfffffffbu
#define VDP_OFPP_ALL        0xfffffffcu
#define VDP_OFPP_CONTROLLER 0xfffffffdu
#define VDP_OFPP_LOCAL      0xfffffffeu
#define VDP_OFPP_ANY        0xffffffffu

/* OpenFlow port config bits (ofp_port_config). */
#define VDP_OFPPC_PORT_DOWN    (1u << 0)
#define VDP_OFPPC_NO_RECV      (1u << 2)
#define VDP_OFPPC_NO_FWD       (1u << 5)
#define VDP_OFPPC_NO_PACKET_IN (1u << 6)

/* Packet-in reasons (ofp_packet_in_reason). */
#define VDP_OFPR_NO_MATCH    0
#define VDP_OFPR_ACTION      1
#define VDP_OFPR_INVALID_TTL 2

/* ---------------------------------------------------------------- packet */
/* One frame being processed.  `data` points either into a port's RX ring
 * (read-only until first rewrite) or into `buf`, a private buffer with
 * VDP_HEADROOM bytes in front so pushes need no memmove.  Offsets are from
 * `data`; VDP_NOOFF means the header is absent.  The parser fills them and
 * every op that inserts or removes bytes keeps them right. */
#define VDP_NOOFF 0xffff
typedef struct vdp_pkt {
    uint8_t  *data;
    uint32_t  len;
    uint32_t  in_port;       /* OpenFlow port number the frame arrived on */
    uint8_t  *buf;           /* private copy (NULL while data is in the ring) */
    uint32_t  bufsize;
    uint16_t  vlan_off;      /* outermost 802.1Q/802.1ad TPID */
    uint16_t  pbb_off;       /* 0x88e7 ethertype position of the I-TAG */
    uint16_t  mpls_off;      /* first MPLS label stack entry */
    uint16_t  l3_off;        /* IPv4/IPv6/ARP header */
    uint16_t  l4_off;        /* TCP/UDP/SCTP/ICMP header */
    uint16_t  nd_sll_off;    /* ICMPv6 ND source link-layer address option data */
    uint16_t  nd_tll_off;    /* ICMPv6 ND target link-layer address option data */
    uint16_t  ethtype_off;   /* the ethertype field that key.eth_type came from */
    uint8_t   n_vlan;        /* VLAN tags present (0..2 parsed) */
    uint8_t   csum_partial;  /* L4 checksum not yet complete (veth/TAP offload):
                              * the checksum field holds the pseudo-header sum */
    uint8_t   gso_type;      /* VIRTIO_NET_HDR_GSO_* of a GSO super-frame, 0 = none */
    uint16_t  gso_size;      /* segment payload size when gso_type != 0 */
    uint16_t  csum_start;    /* where the partial checksum starts (from data) */
    uint16_t  csum_offset;   /* checksum field offset from csum_start */
    uint8_t   malformed;     /* parser found a truncated/invalid header */
    uint8_t   rewritten;     /* data lives in buf */
} vdp_pkt;

/* ---------------------------------------------------------------- ports */
typedef struct vdp_port vdp_port;
typedef struct vdp_port_ops {
    /* Fill up to max frames; pkts[i].data/len/csum_partial set, data valid
     * until release(). Returns count (0 = nothing), -1 on a fatal error. */
    int  (*rx_burst)(vdp_port *p, vdp_pkt *pkts, int max);
    void (*rx_release)(vdp_port *p);
    /* Queue one frame for transmission (copied from pkt->data/len; the port
     * also honours csum_partial/gso_* of pkt). 0 ok, -1 dropped. */
    int  (*tx)(vdp_port *p, const vdp_pkt *pkt);
    void (*tx_flush)(vdp_port *p);
    void (*close)(vdp_port *p);
} vdp_port_ops;

typedef struct vdp_port_stats {
    uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes;
    uint64_t rx_dropped, tx_dropped, rx_errors, tx_errors;
    uint64_t rx_malformed;   /* counted and dropped by the parser */
} vdp_port_stats;

struct vdp_port {
    uint32_t ofport;
    int      fd;
    int      ifindex;
    uint32_t mtu;
    uint32_t config;         /* VDP_OFPPC_* set by PORT_MOD / STP */
    uint8_t  link_up;        /* from netlink; 0 = OFPPS_LINK_DOWN */
    uint8_t  hw_addr[6];
    vdp_port_stats stats;
    const vdp_port_ops *ops;
    void    *impl;
};

/* ---------------------------------------------------------------- ops */
enum vdp_op_type {
    VDP_OP_OUTPUT = 1,      /* arg = port (may be reserved), arg16 = max_len for CONTROLLER */
    VDP_OP_CONTROLLER,      /* arg = reason, arg16 = max_len, aux = table_id, val.u64 = metadata, ptr = flow (cookie) */
    VDP_OP_SET_FIELD,       /* field, val in key storage format (host order ints, bytes as stored) */
    VDP_OP_PUSH_VLAN,       /* arg16 = ethertype (0x8100/0x88a8) */
    VDP_OP_POP_VLAN,
    VDP_OP_PUSH_MPLS,       /* arg16 = ethertype (0x8847/0x8848) */
    VDP_OP_POP_MPLS,        /* arg16 = ethertype of the payload */
    VDP_OP_PUSH_PBB,        /* arg16 = ethertype (0x88e7) */
    VDP_OP_POP_PBB,
    VDP_OP_SET_MPLS_TTL,    /* arg = ttl */
    VDP_OP_DEC_MPLS_TTL,
    VDP_OP_SET_NW_TTL,      /* arg = ttl */
    VDP_OP_DEC_NW_TTL,
    VDP_OP_COPY_TTL_OUT,
    VDP_OP_COPY_TTL_IN,
    VDP_OP_SET_QUEUE,       /* arg = queue id (recorded, no queues yet) */
    VDP_OP_GROUP,           /* arg = group id, ptr = vdp_group* */
    VDP_OP_METER,           /* arg = meter id, ptr = vdp_meter* */
    VDP_OP_COUNT_FLOW,      /* ptr = vdp_flow*: packet/byte counters, table lookup+matched */
    VDP_OP_COUNT_MISS,      /* aux = table id: lookup counted, no match */
    VDP_OP_DROP             /* end of program: explicit drop (counted) */
};

typedef struct vdp_op {
    uint8_t  type;
    uint8_t  field;          /* VDP_F_* for SET_FIELD */
    uint8_t  aux;            /* table id for CONTROLLER / COUNT_MISS */
    uint8_t  pad;
    uint16_t arg16;
    uint16_t pad2;
    uint32_t arg;
    uint32_t pad3;
    union { uint8_t bytes[16]; uint64_t u64; uint32_t u32; uint16_t u16; uint8_t u8; } val;
    void    *ptr;
} vdp_op;                    /* 40 bytes */

/* A compiled action list: a flow's apply-actions, a bucket, or the composed
 * program of a whole pipeline traversal held by the cache. */
typedef struct vdp_prog {
    uint32_t n;
    uint32_t flags;          /* VDP_PROG_* */
    vdp_op   ops[];
} vdp_prog;
#define VDP_PROG_NOCACHE 1u   /* result depends on more than the key (reparse after pop) */

#endif
