/* parse.c - frame parser: raw Ethernet frame -> vdp_key + vdp_pkt offsets.
 *
 * Called for every received frame by pipeline.c (vdp_parse), again after
 * actions that change what the pipeline sees (vdp_reparse: pop_mpls, pop_pbb,
 * push/pop vlan), and by the Cython test/bench/fuzz hooks in parse.pxi.
 *
 * Covers Ethernet, up to two 802.1Q/802.1ad tags (TPIDs 0x8100, 0x88a8,
 * 0x9100), 802.1ah PBB (I-SID only), MPLS (top label only), ARP for
 * Ethernet/IPv4, IPv4 (options, fragments), IPv6 with its extension header
 * chain (and the OpenFlow ipv6_exthdr pseudo-field), TCP, UDP, SCTP, ICMPv4,
 * ICMPv6 and Neighbour Discovery (target, SLL, TLL).
 *
 * Rules every function here keeps:
 *  - never read at or past pkt->len: every read is preceded by a length check
 *    written as "remaining < need" with remaining = limit - off, off <= limit;
 *  - a header that claims more bytes than the frame holds makes the frame
 *    malformed (return -1, pkt->malformed = 1); fields of the headers before
 *    it, and the fixed part of the bad header when that part is complete,
 *    stay in the key;
 *  - unknown ethertypes / protocols are not errors, they just stop parsing;
 *    nor is an invalid Neighbour Discovery body (it only loses its ND
 *    fields, see parse_nd).
 * The common case (untagged IPv4 + TCP/UDP) takes the first branch at each
 * step and touches the key with a handful of stores.
 */
#include <string.h>
#include "vdp_parse.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ETH_HLEN 14
#define ET_IPV4  0x0800
#define ET_ARP   0x0806
#define ET_VLAN  0x8100
#define ET_QINQ  0x88a8
#define ET_QINQ9 0x9100
#define ET_IPV6  0x86dd
#define ET_MPLS  0x8847
#define ET_MPLSM 0x8848
#define ET_PBB   0x88e7

#define PR_HOPOPTS 0
#define PR_ICMP    1
#define PR_TCP     6
#define PR_UDP     17
#define PR_ROUTING 43
#define PR_FRAG    44
#define PR_ESP     50
#define PR_AH      51
#define PR_ICMPV6  58
#define PR_NONE    59
#define PR_DSTOPTS 60
#define PR_SCTP    132

#define P_IP   (VDP_BIT(VDP_F_IP_DSCP) | VDP_BIT(VDP_F_IP_ECN) | VDP_BIT(VDP_F_IP_PROTO))
#define P_IPV4 (P_IP | VDP_BIT(VDP_F_IPV4_SRC) | VDP_BIT(VDP_F_IPV4_DST))
#define P_IPV6 (P_IP | VDP_BIT(VDP_F_IPV6_SRC) | VDP_BIT(VDP_F_IPV6_DST) | \
                VDP_BIT(VDP_F_IPV6_FLABEL) | VDP_BIT(VDP_F_IPV6_EXTHDR))
#define P_ARP  (VDP_BIT(VDP_F_ARP_OP) | VDP_BIT(VDP_F_ARP_SPA) | VDP_BIT(VDP_F_ARP_TPA) | \
                VDP_BIT(VDP_F_ARP_SHA) | VDP_BIT(VDP_F_ARP_THA))
#define P_MPLS (VDP_BIT(VDP_F_MPLS_LABEL) | VDP_BIT(VDP_F_MPLS_TC) | VDP_BIT(VDP_F_MPLS_BOS))

/* Big-endian loads; compilers turn these into a load + bswap. */
static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static inline int is_vlan_tpid(uint16_t t)
{
    return t == ET_VLAN || t == ET_QINQ || t == ET_QINQ9;
}

/* Neighbour Discovery (NS/NA): target, then the option list up to `end`.
 * Only 8-byte SLL/TLL options (Ethernet addresses) fill the key; the first
 * of each kind wins.
 * An invalid ND body - too short for the target, or an option of length 0,
 * shorter than 8 bytes or running past the end - is NOT malformed: the
 * ICMPv6 header is complete and the IP length bounds the message, the
 * message is just not usable ND (RFC 4861 has the receiving host drop it,
 * not the switch).  The frame keeps icmpv6_type/code and gets no ND field
 * at all, nothing half-parsed (OVS does the same).  A switch must forward
 * such frames: the os-ken switch test suite, for one, rewrites an echo
 * request's type to 135 and expects the result through its tester switch. */
static void parse_nd(const uint8_t *p, uint32_t off, uint32_t end,
                     vdp_pkt *pkt, vdp_key *key, uint64_t *present)
{
    uint32_t sll = 0, tll = 0;      /* option offsets; 0 = none (never valid) */

    if (unlikely(end - off < 24))
        return;
    if (unlikely(end >= VDP_NOOFF))  /* option offsets must fit 16 bits */
        end = VDP_NOOFF - 1;
    for (uint32_t o = off + 24; o < end;) {
        uint32_t olen;

        if (unlikely(end - o < 8))
            return;
        olen = (uint32_t)p[o + 1] * 8;
        if (unlikely(olen == 0 || olen > end - o))
            return;
        if (olen == 8) {
            if (p[o] == 1 && !sll)
                sll = o + 2;
            else if (p[o] == 2 && !tll)
                tll = o + 2;
        }
        o += olen;
    }
    memcpy(key->nd_target, p + off + 8, 16);
    *present |= VDP_BIT(VDP_F_IPV6_ND_TARGET);
    if (sll) {
        memcpy(key->arp_sha, p + sll, 6);
        pkt->nd_sll_off = (uint16_t)sll;
        *present |= VDP_BIT(VDP_F_IPV6_ND_SLL);
    }
    if (tll) {
        memcpy(key->arp_tha, p + tll, 6);
        pkt->nd_tll_off = (uint16_t)tll;
        *present |= VDP_BIT(VDP_F_IPV6_ND_TLL);
    }
}

/* Transport header at off, bounded by end (the IP packet's end).  v6 picks
 * ICMPv6 rather than ICMPv4 for the ICMP case. */
static inline int parse_l4(const uint8_t *p, uint32_t off, uint32_t end,
                           uint8_t proto, int v6, vdp_pkt *pkt, vdp_key *key,
                           uint64_t *present)
{
    const uint8_t *h = p + off;
    uint32_t avail = end - off;

    /* Offsets are 16-bit: a header beyond that (only in a GSO super-frame
     * with a very long extension chain) cannot be described. */
    if (unlikely(off >= VDP_NOOFF - 8))
        return -1;
    if (likely(proto == PR_TCP)) {
        uint32_t doff;

        if (unlikely(avail < 20))
            return -1;
        key->tp_src = rd16(h);
        key->tp_dst = rd16(h + 2);
        *present |= VDP_BIT(VDP_F_TCP_SRC) | VDP_BIT(VDP_F_TCP_DST);
        pkt->l4_off = (uint16_t)off;
        doff = (uint32_t)(h[12] >> 4) * 4;
        if (unlikely(doff < 20 || doff > avail))
            return -1;
        return 0;
    }
    if (likely(proto == PR_UDP)) {
        if (unlikely(avail < 8))
            return -1;
        key->tp_src = rd16(h);
        key->tp_dst = rd16(h + 2);
        *present |= VDP_BIT(VDP_F_UDP_SRC) | VDP_BIT(VDP_F_UDP_DST);
        pkt->l4_off = (uint16_t)off;
        return 0;
    }
    if (proto == PR_SCTP) {
        if (unlikely(avail < 12))
            return -1;
        key->tp_src = rd16(h);
        key->tp_dst = rd16(h + 2);
        *present |= VDP_BIT(VDP_F_SCTP_SRC) | VDP_BIT(VDP_F_SCTP_DST);
        pkt->l4_off = (uint16_t)off;
        return 0;
    }
    if (proto == PR_ICMP && !v6) {
        if (unlikely(avail < 8))
            return -1;
        key->icmp_type = h[0];
        key->icmp_code = h[1];
        *present |= VDP_BIT(VDP_F_ICMPV4_TYPE) | VDP_BIT(VDP_F_ICMPV4_CODE);
        pkt->l4_off = (uint16_t)off;
        return 0;
    }
    if (proto == PR_ICMPV6 && v6) {
        if (unlikely(avail < 8))
            return -1;
        key->icmp_type = h[0];
        key->icmp_code = h[1];
        *present |= VDP_BIT(VDP_F_ICMPV6_TYPE) | VDP_BIT(VDP_F_ICMPV6_CODE);
        pkt->l4_off = (uint16_t)off;
        if ((h[0] == 135 || h[0] == 136) && h[1] == 0)
            parse_nd(p, off, end, pkt, key, present);
        return 0;
    }
    return 0;
}

static inline int parse_ipv4(const uint8_t *p, uint32_t len, uint32_t off,
                             vdp_pkt *pkt, vdp_key *key, uint64_t *present)
{
    const uint8_t *ip = p + off;
    uint32_t ihl, tot;

    pkt->l3_off = (uint16_t)off;
    if (unlikely(len - off < 20 || (ip[0] >> 4) != 4))
        return -1;
    key->ip_dscp = ip[1] >> 2;
    key->ip_ecn = ip[1] & 3;
    key->ip_proto = ip[9];
    key->nw_src = rd32(ip + 12);
    key->nw_dst = rd32(ip + 16);
    *present |= P_IPV4;

    ihl = (uint32_t)(ip[0] & 0x0f) * 4;
    tot = rd16(ip + 2);
    if (unlikely(tot == 0))          /* TSO super-frame: length in the frame */
        tot = len - off;
    if (unlikely(ihl < 20 || tot < ihl || tot > len - off))
        return -1;
    /* Non-first fragments carry no transport header. */
    if (unlikely(rd16(ip + 6) & 0x1fff))
        return 0;
    return parse_l4(p, off + ihl, off + tot, ip[9], 0, pkt, key, present);
}

/* Preferred extension header order (RFC 2460 4.1) as ranks, for UNSEQ. */
enum { RK_HOP = 1, RK_DEST1 = 2, RK_ROUTER = 3, RK_FRAG = 4, RK_AUTH = 5,
       RK_ESP = 6, RK_DEST2 = 7 };

/* IPv6 header, its extension header chain and the transport header.
 *
 * ipv6_exthdr (OpenFlow 1.3.5, OXM_OF_IPV6_EXTHDR): one bit per kind of
 * extension header met; HOP only when hop-by-hop is the first extension
 * header; DEST for one or more destination options headers; NONEXT when a
 * next header of 59 is met; UNREP when a header kind repeats (up to two
 * destination options headers are expected: one before the routing header
 * and one for the final destination); UNSEQ when the headers break the order
 * RFC 2460 recommends: hop-by-hop, destination options, routing, fragment,
 * authentication, ESP, destination options.  A destination options header
 * takes the earlier slot when nothing past hop-by-hop preceded it, the final
 * slot otherwise.  Parsing stops at ESP (encrypted), at no-next-header and at
 * a non-first fragment; ip_proto is the next-header value where it stopped. */
static inline int parse_ipv6(const uint8_t *p, uint32_t len, uint32_t off,
                             vdp_pkt *pkt, vdp_key *key, uint64_t *present)
{
    const uint8_t *ip = p + off;
    uint32_t vtf, plen, end, o;
    uint32_t ieh = 0, seen = 0;
    int rank = 0, nhdr = 0, ndest = 0, dest2 = 0, rc = 0;
    uint8_t nxt;

    pkt->l3_off = (uint16_t)off;
    if (unlikely(len - off < 40 || (ip[0] >> 4) != 6))
        return -1;
    vtf = rd32(ip);
    key->ip_dscp = (uint8_t)(vtf >> 22) & 0x3f;
    key->ip_ecn = (uint8_t)(vtf >> 20) & 3;
    key->ipv6_flabel = vtf & 0xfffff;
    memcpy(key->ipv6_src, ip + 8, 16);
    memcpy(key->ipv6_dst, ip + 24, 16);
    *present |= P_IPV6;
    nxt = ip[6];
    o = off + 40;
    plen = rd16(ip + 4);
    if (plen == 0)                   /* jumbogram / GSO super-frame */
        end = len;
    else if (unlikely(plen > len - o)) {
        key->ip_proto = nxt;
        return -1;
    } else
        end = o + plen;

    for (;;) {
        uint32_t bit, hl;
        int pos;

        switch (nxt) {
        case PR_HOPOPTS: bit = VDP_IEH_HOP;    pos = RK_HOP;    break;
        case PR_ROUTING: bit = VDP_IEH_ROUTER; pos = RK_ROUTER; break;
        case PR_FRAG:    bit = VDP_IEH_FRAG;   pos = RK_FRAG;   break;
        case PR_AH:      bit = VDP_IEH_AUTH;   pos = RK_AUTH;   break;
        case PR_ESP:     bit = VDP_IEH_ESP;    pos = RK_ESP;    break;
        case PR_DSTOPTS:
            bit = VDP_IEH_DEST;
            pos = (ndest == 0 && rank < RK_DEST1) ? RK_DEST1 : RK_DEST2;
            break;
        case PR_NONE:
            ieh |= VDP_IEH_NONEXT;
            goto done;
        default:
            goto done;               /* upper-layer protocol */
        }

        if (nxt == PR_DSTOPTS) {
            if (ndest >= 2 || (pos == RK_DEST2 && dest2))
                ieh |= VDP_IEH_UNREP;
            ndest++;
            dest2 |= pos == RK_DEST2;
            ieh |= VDP_IEH_DEST;
        } else {
            if (seen & bit)
                ieh |= VDP_IEH_UNREP;
            seen |= bit;
            if (nxt == PR_HOPOPTS) {
                if (nhdr == 0)
                    ieh |= VDP_IEH_HOP;
                else
                    ieh |= VDP_IEH_UNSEQ;
            } else
                ieh |= bit;
        }
        if (pos < rank)
            ieh |= VDP_IEH_UNSEQ;
        if (pos > rank)
            rank = pos;
        nhdr++;

        /* Every extension header (and the ESP header) is >= 8 bytes. */
        if (unlikely(end - o < 8)) {
            rc = -1;
            goto done;
        }
        if (nxt == PR_ESP)
            goto done;
        if (nxt == PR_FRAG) {
            uint16_t fo = rd16(p + o + 2);

            nxt = p[o];
            o += 8;
            if (fo & 0xfff8) {       /* non-first fragment: payload follows */
                key->ip_proto = nxt;
                key->ipv6_exthdr = (uint16_t)ieh;
                return 0;
            }
            continue;
        }
        if (nxt == PR_AH)
            hl = ((uint32_t)p[o + 1] + 2) * 4;
        else
            hl = ((uint32_t)p[o + 1] + 1) * 8;
        if (unlikely(hl > end - o)) {
            rc = -1;
            goto done;
        }
        nxt = p[o];
        o += hl;
    }
done:
    key->ip_proto = nxt;
    key->ipv6_exthdr = (uint16_t)ieh;
    if (unlikely(rc))
        return rc;
    return parse_l4(p, o, end, nxt, 1, pkt, key, present);
}

static inline int parse_arp(const uint8_t *p, uint32_t len, uint32_t off,
                            vdp_pkt *pkt, vdp_key *key, uint64_t *present)
{
    const uint8_t *a = p + off;

    pkt->l3_off = (uint16_t)off;
    if (unlikely(len - off < 8))
        return -1;
    /* Only Ethernet/IPv4 ARP has OpenFlow fields. */
    if (rd16(a) != 1 || rd16(a + 2) != ET_IPV4 || a[4] != 6 || a[5] != 4)
        return 0;
    if (unlikely(len - off < 28))
        return -1;
    key->arp_op = rd16(a + 6);
    memcpy(key->arp_sha, a + 8, 6);
    key->nw_src = rd32(a + 14);
    memcpy(key->arp_tha, a + 18, 6);
    key->nw_dst = rd32(a + 24);
    *present |= P_ARP;
    return 0;
}

/* Zero the key with 16-byte stores: a plain memset of 152 bytes becomes
 * `rep stos` with generic tuning, whose start-up cost is most of a parse. */
typedef uint64_t u64x2 __attribute__((vector_size(16), aligned(8)));

static inline void key_zero(vdp_key *key)
{
    const u64x2 z = { 0, 0 };
    u64x2 *v = (u64x2 *)key->w;     /* 8-byte aligned: unaligned stores */

    v[0] = z; v[1] = z; v[2] = z; v[3] = z; v[4] = z;
    v[5] = z; v[6] = z; v[7] = z; v[8] = z;
    key->w[18] = 0;
}

static int parse_frame(vdp_pkt *pkt, vdp_key *key)
{
    const uint8_t *p = pkt->data;
    uint32_t len = pkt->len;
    uint64_t present = VDP_ALWAYS_PRESENT;
    uint32_t off = ETH_HLEN;
    uint16_t type;
    int rc;

    pkt->vlan_off = VDP_NOOFF;
    pkt->pbb_off = VDP_NOOFF;
    pkt->mpls_off = VDP_NOOFF;
    pkt->l3_off = VDP_NOOFF;
    pkt->l4_off = VDP_NOOFF;
    pkt->nd_sll_off = VDP_NOOFF;
    pkt->nd_tll_off = VDP_NOOFF;
    pkt->ethtype_off = VDP_NOOFF;
    pkt->n_vlan = 0;

    if (unlikely(len < ETH_HLEN)) {
        rc = -1;
        goto out;
    }
    memcpy(key->eth_dst, p, 6);
    memcpy(key->eth_src, p + 6, 6);
    type = rd16(p + 12);
    pkt->ethtype_off = 12;

    if (unlikely(is_vlan_tpid(type))) {
        pkt->vlan_off = 12;
        do {
            uint16_t tci;

            if (unlikely(len - off < 4)) {
                key->eth_type = type;
                rc = -1;
                goto out;
            }
            tci = rd16(p + off);
            if (pkt->n_vlan == 0) {
                key->vlan_vid = VDP_VID_PRESENT | (tci & 0x0fff);
                key->vlan_pcp = tci >> 13;
                present |= VDP_BIT(VDP_F_VLAN_PCP);
            }
            pkt->ethtype_off = (uint16_t)(off + 2);
            type = rd16(p + off + 2);
            off += 4;
        } while (++pkt->n_vlan < 2 && is_vlan_tpid(type));
    }
    key->eth_type = type;

    if (likely(type == ET_IPV4)) {
        rc = parse_ipv4(p, len, off, pkt, key, &present);
    } else if (type == ET_IPV6) {
        rc = parse_ipv6(p, len, off, pkt, key, &present);
    } else if (type == ET_ARP) {
        rc = parse_arp(p, len, off, pkt, key, &present);
    } else if (type == ET_MPLS || type == ET_MPLSM) {
        pkt->mpls_off = (uint16_t)off;
        rc = -1;
        if (likely(len - off >= 4)) {
            uint32_t lse = rd32(p + off);

            key->mpls_label = lse >> 12;
            key->mpls_tc = (lse >> 9) & 7;
            key->mpls_bos = (lse >> 8) & 1;
            present |= P_MPLS;
            rc = 0;
        }
    } else if (type == ET_PBB) {
        pkt->pbb_off = pkt->ethtype_off;
        rc = -1;
        if (likely(len - off >= 4)) {
            key->pbb_isid = rd32(p + off) & 0xffffff;
            present |= VDP_BIT(VDP_F_PBB_ISID);
            /* The I-TAG must be followed by the customer Ethernet header. */
            if (likely(len - off >= 4 + ETH_HLEN))
                rc = 0;
        }
    } else {
        rc = 0;                      /* other ethertypes: L2 fields only */
    }
out:
    key->present = present;
    pkt->malformed = rc != 0;
    return rc;
}

int vdp_parse(vdp_pkt *pkt, vdp_key *key)
{
    key_zero(key);
    key->in_port = pkt->in_port;
    key->in_phy_port = pkt->in_port;
    return parse_frame(pkt, key);
}

int vdp_reparse(vdp_pkt *pkt, vdp_key *key)
{
    uint64_t metadata = key->metadata;
    uint64_t tunnel_id = key->tunnel_id;
    uint64_t ports = key->w[3];      /* in_port, in_phy_port */

    key_zero(key);
    key->metadata = metadata;
    key->tunnel_id = tunnel_id;
    key->w[3] = ports;
    return parse_frame(pkt, key);
}
