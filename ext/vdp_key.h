/* vdp_key.h - the C flow key: every OpenFlow 1.3 basic OXM field of a frame.
 *
 * Filled by the parser (parse.c), matched by the classifier (classifier.c)
 * under a per-subtable mask, rewritten by set-field (actions.c).  The key is
 * an array of 64-bit words so masking, hashing and comparing are word loops.
 *
 * Presence: word 0 holds one bit per OXM field (VDP_F_*) that the frame
 * actually carries.  A rule matching a field sets that field's bit in both its
 * mask and its value, so a rule on tcp_dst can only match frames that have a
 * TCP header: this is how OpenFlow prerequisites are enforced at lookup time.
 * IN_PORT, METADATA, TUNNEL_ID and VLAN_VID are always present (VLAN_VID holds
 * OFPVID_PRESENT|vid for a tagged frame and 0 = OFPVID_NONE otherwise, which is
 * exactly the OXM matching semantics).
 *
 * Fields that can never be present together share storage (as in OVS):
 * tp_src/tp_dst serve TCP, UDP and SCTP; icmp_type/code serve ICMPv4 and
 * ICMPv6; nw_src/nw_dst serve IPv4 addresses and ARP SPA/TPA; arp_sha/arp_tha
 * serve ARP SHA/THA and ND SLL/TLL.  Their presence bits stay distinct.
 * All multi-byte integers are stored in HOST byte order; MAC and IPv6
 * addresses are stored as bytes in network order.
 */
#ifndef VDP_KEY_H
#define VDP_KEY_H

#include <stdint.h>
#include <stddef.h>

/* OXM basic field ids (OpenFlow 1.3.5, enum oxm_ofb_match_fields). */
enum vdp_field {
    VDP_F_IN_PORT = 0, VDP_F_IN_PHY_PORT = 1, VDP_F_METADATA = 2,
    VDP_F_ETH_DST = 3, VDP_F_ETH_SRC = 4, VDP_F_ETH_TYPE = 5,
    VDP_F_VLAN_VID = 6, VDP_F_VLAN_PCP = 7, VDP_F_IP_DSCP = 8,
    VDP_F_IP_ECN = 9, VDP_F_IP_PROTO = 10, VDP_F_IPV4_SRC = 11,
    VDP_F_IPV4_DST = 12, VDP_F_TCP_SRC = 13, VDP_F_TCP_DST = 14,
    VDP_F_UDP_SRC = 15, VDP_F_UDP_DST = 16, VDP_F_SCTP_SRC = 17,
    VDP_F_SCTP_DST = 18, VDP_F_ICMPV4_TYPE = 19, VDP_F_ICMPV4_CODE = 20,
    VDP_F_ARP_OP = 21, VDP_F_ARP_SPA = 22, VDP_F_ARP_TPA = 23,
    VDP_F_ARP_SHA = 24, VDP_F_ARP_THA = 25, VDP_F_IPV6_SRC = 26,
    VDP_F_IPV6_DST = 27, VDP_F_IPV6_FLABEL = 28, VDP_F_ICMPV6_TYPE = 29,
    VDP_F_ICMPV6_CODE = 30, VDP_F_IPV6_ND_TARGET = 31,
    VDP_F_IPV6_ND_SLL = 32, VDP_F_IPV6_ND_TLL = 33, VDP_F_MPLS_LABEL = 34,
    VDP_F_MPLS_TC = 35, VDP_F_MPLS_BOS = 36, VDP_F_PBB_ISID = 37,
    VDP_F_TUNNEL_ID = 38, VDP_F_IPV6_EXTHDR = 39,
    VDP_F_COUNT = 40
};

#define VDP_BIT(f) (1ULL << (f))

/* OFPVID_PRESENT: set in vlan_vid when the frame has an 802.1Q tag. */
#define VDP_VID_PRESENT 0x1000

/* ipv6_exthdr pseudo-field flags (OpenFlow 1.3 ofp_ipv6exthdr_flags). */
#define VDP_IEH_NONEXT 0x0001
#define VDP_IEH_ESP    0x0002
#define VDP_IEH_AUTH   0x0004
#define VDP_IEH_DEST   0x0008
#define VDP_IEH_FRAG   0x0010
#define VDP_IEH_ROUTER 0x0020
#define VDP_IEH_HOP    0x0040
#define VDP_IEH_UNREP  0x0080
#define VDP_IEH_UNSEQ  0x0100

#define VDP_KEY_WORDS 19

typedef struct vdp_key {
    union {
        uint64_t w[VDP_KEY_WORDS];
        struct {
            uint64_t present;          /* w0: VDP_BIT(field) per field present */
            uint64_t metadata;         /* w1 */
            uint64_t tunnel_id;        /* w2 */
            uint32_t in_port;          /* w3 */
            uint32_t in_phy_port;
            uint8_t  eth_dst[6];       /* w4 */
            uint16_t eth_type;         /* innermost type after VLAN tags (MPLS/PBB types as seen) */
            uint8_t  eth_src[6];       /* w5 */
            uint16_t vlan_vid;         /* VDP_VID_PRESENT | vid, or 0 */
            uint32_t nw_src;           /* w6: IPv4 src / ARP SPA */
            uint32_t nw_dst;           /*     IPv4 dst / ARP TPA */
            uint16_t tp_src;           /* w7: TCP/UDP/SCTP ports */
            uint16_t tp_dst;
            uint32_t ipv6_flabel;      /*     20 bits */
            uint8_t  vlan_pcp;         /* w8 */
            uint8_t  ip_dscp;          /*     6 bits */
            uint8_t  ip_ecn;           /*     2 bits */
            uint8_t  ip_proto;
            uint8_t  icmp_type;        /*     ICMPv4 or ICMPv6 */
            uint8_t  icmp_code;
            uint16_t arp_op;
            uint32_t mpls_label;       /* w9: 20 bits, outermost label */
            uint32_t pbb_isid;         /*     24 bits */
            uint8_t  mpls_tc;          /* w10: 3 bits */
            uint8_t  mpls_bos;         /*      1 bit */
            uint16_t ipv6_exthdr;      /*      VDP_IEH_* */
            uint32_t pad10;            /*      always zero */
            uint8_t  arp_sha[6];       /* w11: ARP SHA / ND SLL */
            uint16_t pad11;
            uint8_t  arp_tha[6];       /* w12: ARP THA / ND TLL */
            uint16_t pad12;
            uint8_t  ipv6_src[16];     /* w13-14 */
            uint8_t  ipv6_dst[16];     /* w15-16 */
            uint8_t  nd_target[16];    /* w17-18 */
        };
    };
} vdp_key;

/* Where each field lives in the key: byte offset, size in bytes, and how many
 * low bits of that storage are meaningful (for fields narrower than their
 * storage, e.g. vlan_vid 13, ipv6_flabel 20).  Defined in flowkey.c. */
typedef struct vdp_field_info {
    const char *name;      /* OXM-style name: "eth_dst", "tcp_src", ... */
    uint16_t offset;
    uint8_t  size;         /* bytes of storage in the key */
    uint8_t  nbits;        /* OXM width in bits */
    uint8_t  maskable;     /* OF1.3 allows a mask */
    uint8_t  settable;     /* OF1.3 allows set-field */
    uint8_t  is_bytes;     /* stored as network-order bytes (MAC, IPv6) */
} vdp_field_info;

extern const vdp_field_info vdp_fields[VDP_F_COUNT];

/* Presence bits that are always set for every frame. */
#define VDP_ALWAYS_PRESENT (VDP_BIT(VDP_F_IN_PORT) | VDP_BIT(VDP_F_IN_PHY_PORT) | \
    VDP_BIT(VDP_F_METADATA) | VDP_BIT(VDP_F_TUNNEL_ID) | VDP_BIT(VDP_F_VLAN_VID) | \
    VDP_BIT(VDP_F_ETH_DST) | VDP_BIT(VDP_F_ETH_SRC) | VDP_BIT(VDP_F_ETH_TYPE))

#endif
