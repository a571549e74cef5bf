/* actions.c - the byte-rewriting ops of a compiled program: set-field,
 * push/pop VLAN, MPLS and PBB, TTL ops, and the meter's DSCP remark.
 * Contract (writability, offsets, checksums, return codes): actions.h.
 * Called by pipeline.c (vdp_exec) per op and by the test hooks in
 * actions.pxi; calls only csum.c and the parser (vdp_parse) to recompute
 * offsets after ops that change what the parser sees. */
#include <string.h>
#include "actions.h"
#include "csum.h"
#include "vdp_parse.h"

#define NOOFF    VDP_NOOFF
#define ET_IPV4  0x0800
#define ET_IPV6  0x86dd
#define ET_ARP   0x0806
#define ET_VLAN  0x8100
#define ET_PBB   0x88e7

#define IPP_ICMP   1
#define IPP_TCP    6
#define IPP_UDP    17
#define IPP_ICMPV6 58
#define IPP_SCTP   132

#define PBB_HDR_LEN 18      /* B-DA, B-SA, 0x88e7, I-TAG TCI */
#define ETH_MIN_LEN 60      /* shortest Ethernet frame, FCS excluded */

struct wctx {
    uint8_t *scratch;
    uint32_t size;
};

static inline uint16_t get16(const uint8_t *p) { return vdp_be16_get(p); }
static inline void put16(uint8_t *p, uint16_t v) { vdp_be16_put(p, v); }
static inline uint32_t get32(const uint8_t *p) { return vdp_be32_get(p); }
static inline void put32(uint8_t *p, uint32_t v) { vdp_be32_put(p, v); }

static int is_vlan_tpid(uint16_t t) { return t == 0x8100 || t == 0x88a8 || t == 0x9100; }
static int is_mpls_type(uint16_t t) { return t == 0x8847 || t == 0x8848; }

/* ------------------------------------------------------------ buffers */
int vdp_pkt_make_writable(vdp_pkt *pkt, uint8_t *buf, uint32_t bufsize)
{
    if (pkt->rewritten)
        return 0;
    if (!buf || bufsize < (uint64_t)pkt->len + VDP_HEADROOM)
        return -1;
    memcpy(buf + VDP_HEADROOM, pkt->data, pkt->len);
    pkt->buf = buf;
    pkt->bufsize = bufsize;
    pkt->data = buf + VDP_HEADROOM;
    pkt->rewritten = 1;
    return 0;
}

static int writable(vdp_pkt *p, struct wctx *w)
{
    return p->rewritten ? 0 : vdp_pkt_make_writable(p, w->scratch, w->size);
}
#define MAKE_WRITABLE(p, w) do { if (writable((p), (w))) return VDP_ACT_NOROOM; } while (0)

static uint16_t *off_fields(vdp_pkt *p, int i)
{
    switch (i) {
    case 0: return &p->vlan_off;
    case 1: return &p->pbb_off;
    case 2: return &p->mpls_off;
    case 3: return &p->l3_off;
    case 4: return &p->l4_off;
    case 5: return &p->nd_sll_off;
    case 6: return &p->nd_tll_off;
    default: return &p->ethtype_off;
    }
}
#define N_OFFS 8

/* Open n bytes at offset `at`: data[0..at) moves n bytes towards the front
 * (into the headroom; the frame moves inside buf first when the headroom is
 * short).  Offsets >= at shift by n.  Frame must be writable. */
static int insert_bytes(vdp_pkt *p, uint32_t at, uint32_t n)
{
    if (at > p->len)
        return -1;
    uint32_t head = (uint32_t)(p->data - p->buf);
    if (head < n) {
        uint32_t room = p->bufsize - p->len;
        if (room < n)
            return -1;
        uint32_t h = room >= n + VDP_HEADROOM ? n + VDP_HEADROOM : room;
        memmove(p->buf + h, p->data, p->len);
        p->data = p->buf + h;
    }
    memmove(p->data - n, p->data, at);
    p->data -= n;
    p->len += n;
    for (int i = 0; i < N_OFFS; i++) {
        uint16_t *o = off_fields(p, i);
        if (*o != NOOFF && *o >= at)
            *o = (uint16_t)(*o + n);
    }
    if (p->csum_start && p->csum_start >= at)
        p->csum_start = (uint16_t)(p->csum_start + n);
    return 0;
}

/* Remove bytes [at, at+n): data[0..at) moves n bytes towards the end.
 * Offsets past the hole shift back; offsets inside it become NOOFF. */
static void remove_bytes(vdp_pkt *p, uint32_t at, uint32_t n)
{
    memmove(p->data + n, p->data, at);
    p->data += n;
    p->len -= n;
    for (int i = 0; i < N_OFFS; i++) {
        uint16_t *o = off_fields(p, i);
        if (*o == NOOFF)
            continue;
        if (*o >= at + n)
            *o = (uint16_t)(*o - n);
        else if (*o >= at)
            *o = NOOFF;
    }
    if (p->csum_start) {
        if (p->csum_start >= at + n)
            p->csum_start = (uint16_t)(p->csum_start - n);
        else if (p->csum_start >= at)
            p->csum_start = p->csum_offset = 0;
    }
}

/* After a pop: a frame left shorter than the Ethernet minimum gets zero
 * padding up to it, as a NIC pads a runt before it goes on the wire (veth,
 * TAP and AF_PACKET do not, so without this a popped 60-byte frame would
 * leave as a 56-byte runt).  The IP total length / payload length keeps
 * the padding out of every later parse and checksum.  The os-ken switch
 * test suite compares popped frames byte for byte with 60-byte padded
 * models (pop_mpls of an ICMP echo, for one).  Best effort: without tail
 * room nothing is padded (pipeline scratch buffers always have it). */
static void pad_runt(vdp_pkt *p)
{
    if (p->len >= ETH_MIN_LEN)
        return;
    if (p->bufsize - (uint32_t)(p->data - p->buf) < ETH_MIN_LEN)
        return;
    memset(p->data + p->len, 0, ETH_MIN_LEN - p->len);
    p->len = ETH_MIN_LEN;
}

/* Recompute the header offsets from the bytes, as the parser sees them. */
static void refresh_offsets(vdp_pkt *p)
{
    vdp_pkt t = *p;
    vdp_key k;
    memset(&k, 0, sizeof k);
    (void)vdp_parse(&t, &k);
    p->vlan_off = t.vlan_off;
    p->pbb_off = t.pbb_off;
    p->mpls_off = t.mpls_off;
    p->l3_off = t.l3_off;
    p->l4_off = t.l4_off;
    p->nd_sll_off = t.nd_sll_off;
    p->nd_tll_off = t.nd_tll_off;
    p->ethtype_off = t.ethtype_off;
    p->n_vlan = t.n_vlan;
}

/* Before an op that hides the L4 header from the offsets (push_mpls,
 * push_pbb, set eth_type): finish a partial checksum now, or for a GSO
 * frame pin its location in csum_start/csum_offset so it survives. */
static void settle_csum(vdp_pkt *p)
{
    if (!p->csum_partial)
        return;
    if (!p->gso_type) {
        (void)vdp_csum_complete(p);
    } else if (!p->csum_start) {
        uint32_t s, f;
        uint8_t proto;
        if (vdp_csum_partial_loc(p, &s, &f, &proto) == 0) {
            p->csum_start = (uint16_t)s;
            p->csum_offset = (uint16_t)(f - s);
        }
    }
}

/* Before changing bytes the L4 checksum covers (incl. pseudo-header). */
static void pre_l4(vdp_pkt *p)
{
    if (p->csum_partial && !p->gso_type)
        (void)vdp_csum_complete(p);
}

/* ------------------------------------------------------------ checksums */
/* Fix the L4 checksum of protocol `proto` for n bytes old -> new_ (n even,
 * starting at an even position of the pseudo-header (pseudo=1) or of the L4
 * segment (pseudo=0)). */
static void l4_fix(vdp_pkt *p, int proto, const uint8_t *old, const uint8_t *new_,
                   uint32_t n, int pseudo)
{
    if (proto == IPP_SCTP || (pseudo && proto == IPP_ICMP))
        return;                     /* no pseudo-header / CRC done separately */
    int coff = vdp_l4_csum_offset(proto);
    if (coff < 0 || p->l4_off == NOOFF)
        return;
    uint32_t f;
    if (p->csum_partial) {
        /* only GSO frames get here (others were completed by pre_l4): the
         * field holds the pseudo-header sum; L4 bytes are summed later */
        if (!pseudo)
            return;
        f = p->csum_start ? (uint32_t)p->csum_start + p->csum_offset : p->l4_off + (uint32_t)coff;
        if (f + 2 > p->len)
            return;
        put16(p->data + f, vdp_psum_update_bytes(get16(p->data + f), old, new_, n));
        return;
    }
    f = p->l4_off + (uint32_t)coff;
    if (f + 2 > p->len)
        return;
    uint16_t cs = get16(p->data + f);
    if (proto == IPP_UDP && cs == 0)
        return;                     /* UDP over IPv4 without checksum */
    cs = vdp_csum_update_bytes(cs, old, new_, n);
    if (proto == IPP_UDP && cs == 0)
        cs = 0xffff;
    put16(p->data + f, cs);
}

/* Write n (<= 16) bytes at `off` inside the L4 segment and fix its checksum
 * over the smallest even-aligned window around them. */
static void l4_write(vdp_pkt *p, int proto, uint32_t off, const uint8_t *src, uint32_t n)
{
    uint32_t base = p->l4_off;
    uint32_t a = off - ((off - base) & 1);
    uint32_t e = off + n;
    if ((e - base) & 1)
        e++;
    uint8_t oldw[20], neww[20];
    uint32_t wl = e - a;
    for (uint32_t i = 0; i < wl; i++)
        oldw[i] = a + i < p->len ? p->data[a + i] : 0;
    memcpy(p->data + off, src, n);
    for (uint32_t i = 0; i < wl; i++)
        neww[i] = a + i < p->len ? p->data[a + i] : 0;
    l4_fix(p, proto, oldw, neww, wl, 0);
}

/* Recompute the SCTP CRC32c after a change (not for GSO-partial frames or
 * fragments, whose CRC cannot be computed here). */
static void sctp_refresh(vdp_pkt *p, uint32_t l4flags)
{
    if (p->csum_partial || (l4flags & VDP_L4F_FRAG))
        return;
    uint32_t end = vdp_pkt_l4_end(p);
    if (end >= (uint32_t)p->l4_off + 12)
        vdp_sctp_set_csum(p->data + p->l4_off, end - p->l4_off);
}

/* IPv4 header checksum: one 16-bit word of the header changed. */
static void ip4_fix(vdp_pkt *p, uint16_t oldw, uint16_t neww)
{
    uint8_t *cs = p->data + p->l3_off + 10;
    put16(cs, vdp_csum_update16(get16(cs), oldw, neww));
}

/* ------------------------------------------------------------ L3 fields */
static int ip_hdr_ok(const vdp_pkt *p, uint16_t t)
{
    if (t == ET_IPV4)
        return (uint32_t)p->l3_off + 20 <= p->len;
    if (t == ET_IPV6)
        return (uint32_t)p->l3_off + 40 <= p->len;
    if (t == ET_ARP)
        return (uint32_t)p->l3_off + 28 <= p->len && p->data[p->l3_off + 4] == 6 &&
               p->data[p->l3_off + 5] == 4;
    return 0;
}

/* Set DSCP (which=0) or ECN (which=1) of the IPv4/IPv6 header. */
static int set_tos(vdp_pkt *p, int which, uint8_t v, struct wctx *w)
{
    uint16_t t = vdp_pkt_l3_type(p);
    if ((t != ET_IPV4 && t != ET_IPV6) || !ip_hdr_ok(p, t))
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    uint8_t *ip = p->data + p->l3_off;
    if (t == ET_IPV4) {
        uint16_t oldw = get16(ip);
        uint8_t tos = ip[1];
        tos = which == 0 ? (uint8_t)((tos & 0x03) | ((v & 0x3f) << 2))
                         : (uint8_t)((tos & 0xfc) | (v & 0x03));
        ip[1] = tos;
        ip4_fix(p, oldw, get16(ip));
    } else {
        /* version(4) | traffic class(8) | flow label(20): DSCP is TC[7:2]
         * = low nibble of byte 0 + top 2 bits of byte 1; ECN = bits 5-4 */
        if (which == 0) {
            ip[0] = (uint8_t)((ip[0] & 0xf0) | ((v & 0x3f) >> 2));
            ip[1] = (uint8_t)((ip[1] & 0x3f) | ((v & 0x03) << 6));
        } else {
            ip[1] = (uint8_t)((ip[1] & 0xcf) | ((v & 0x03) << 4));
        }
    }
    return VDP_ACT_OK;
}

static int set_ip_proto(vdp_pkt *p, uint8_t v, struct wctx *w)
{
    uint16_t t = vdp_pkt_l3_type(p);
    if ((t != ET_IPV4 && t != ET_IPV6) || !ip_hdr_ok(p, t))
        return VDP_ACT_SKIP;
    uint32_t poff = 0;
    int proto = vdp_pkt_l4_proto(p, &poff);
    if (proto < 0) {
        /* no parsed L4: the protocol byte of the IP header itself (IPv6:
         * only when no extension header follows) */
        if (t == ET_IPV4) {
            poff = p->l3_off + 9u;
        } else {
            uint8_t nh = p->data[p->l3_off + 6];
            if (nh == 0 || nh == 43 || nh == 44 || nh == 50 || nh == 51 || nh == 60 ||
                nh == 135 || nh == 139 || nh == 140)
                return VDP_ACT_SKIP;
            poff = p->l3_off + 6u;
        }
    }
    MAKE_WRITABLE(p, w);
    pre_l4(p);
    uint8_t *d = p->data;
    uint8_t oldp = d[poff];
    if (t == ET_IPV4) {
        uint16_t oldw = get16(d + p->l3_off + 8);
        d[poff] = v;
        ip4_fix(p, oldw, get16(d + p->l3_off + 8));
    } else {
        d[poff] = v;
    }
    /* the pseudo-header carries the protocol as the word (0, proto); the
     * checksum field stays where the old protocol had it */
    if (proto >= 0) {
        uint8_t o2[2] = {0, oldp}, n2[2] = {0, v};
        l4_fix(p, proto, o2, n2, 2, 1);
    }
    /* the L4 header now means something else (or nothing the parser knows) */
    refresh_offsets(p);
    return VDP_ACT_OK;
}

static int set_ipv4_addr(vdp_pkt *p, int dst, uint32_t addr, struct wctx *w)
{
    if (vdp_pkt_l3_type(p) != ET_IPV4 || !ip_hdr_ok(p, ET_IPV4))
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    int proto = vdp_pkt_l4_proto(p, NULL);
    if (proto >= 0)
        pre_l4(p);
    uint8_t *a = p->data + p->l3_off + (dst ? 16 : 12);
    uint8_t oldb[4], newb[4];
    memcpy(oldb, a, 4);
    put32(newb, addr);
    memcpy(a, newb, 4);
    uint8_t *cs = p->data + p->l3_off + 10;
    put16(cs, vdp_csum_update_bytes(get16(cs), oldb, newb, 4));
    if (proto >= 0)
        l4_fix(p, proto, oldb, newb, 4, 1);
    return VDP_ACT_OK;
}

static int set_ipv6_addr(vdp_pkt *p, int dst, const uint8_t *addr, struct wctx *w)
{
    if (vdp_pkt_l3_type(p) != ET_IPV6 || !ip_hdr_ok(p, ET_IPV6))
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    uint32_t fl = 0;
    int proto = vdp_pkt_l4_info(p, NULL, &fl);
    if (proto >= 0)
        pre_l4(p);
    uint8_t *a = p->data + p->l3_off + (dst ? 24 : 8);
    uint8_t oldb[16];
    memcpy(oldb, a, 16);
    memcpy(a, addr, 16);
    /* with a routing header in flight the pseudo-header holds the final
     * destination, which this does not change */
    if (proto >= 0 && !(dst && (fl & VDP_L4F_RTHDR)))
        l4_fix(p, proto, oldb, addr, 16, 1);
    return VDP_ACT_OK;
}

static int set_flabel(vdp_pkt *p, uint32_t v, struct wctx *w)
{
    if (vdp_pkt_l3_type(p) != ET_IPV6 || !ip_hdr_ok(p, ET_IPV6))
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    uint8_t *ip = p->data + p->l3_off;
    v &= 0xfffff;
    ip[1] = (uint8_t)((ip[1] & 0xf0) | (v >> 16));
    ip[2] = (uint8_t)(v >> 8);
    ip[3] = (uint8_t)v;
    return VDP_ACT_OK;
}

/* ARP (Ethernet/IPv4): op at 6, sha 8, spa 14, tha 18, tpa 24. */
static int set_arp(vdp_pkt *p, uint32_t off, const uint8_t *src, uint32_t n, struct wctx *w)
{
    if (vdp_pkt_l3_type(p) != ET_ARP || !ip_hdr_ok(p, ET_ARP))
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    memcpy(p->data + p->l3_off + off, src, n);
    return VDP_ACT_OK;
}

/* ------------------------------------------------------------ L4 fields */
static int set_port(vdp_pkt *p, int want_proto, int dst, uint16_t port, struct wctx *w)
{
    uint32_t fl = 0;
    int proto = vdp_pkt_l4_info(p, NULL, &fl);
    if (proto != want_proto || (uint32_t)p->l4_off + 4 > p->len)
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    pre_l4(p);
    uint8_t b[2];
    put16(b, port);
    if (proto == IPP_SCTP) {
        memcpy(p->data + p->l4_off + (dst ? 2 : 0), b, 2);
        sctp_refresh(p, fl);
    } else {
        l4_write(p, proto, p->l4_off + (dst ? 2 : 0), b, 2);
    }
    return VDP_ACT_OK;
}

/* ICMPv4/ICMPv6 type (which=0) or code (which=1). */
static int set_icmp(vdp_pkt *p, int want_proto, int which, uint8_t v, struct wctx *w)
{
    uint16_t t = vdp_pkt_l3_type(p);
    if ((want_proto == IPP_ICMP) != (t == ET_IPV4))
        return VDP_ACT_SKIP;
    int proto = vdp_pkt_l4_proto(p, NULL);
    if (proto != want_proto || (uint32_t)p->l4_off + 4 > p->len)
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    pre_l4(p);
    l4_write(p, proto, p->l4_off + (uint32_t)which, &v, 1);
    return VDP_ACT_OK;
}

static int set_nd_target(vdp_pkt *p, const uint8_t *addr, struct wctx *w)
{
    int proto = vdp_pkt_l4_proto(p, NULL);
    /* the target must lie inside the IPv6 payload (a short NS/NA has none;
     * bytes past the payload are link padding or trailer) */
    if (proto != IPP_ICMPV6 || (uint32_t)p->l4_off + 24 > vdp_pkt_l4_end(p))
        return VDP_ACT_SKIP;
    uint8_t type = p->data[p->l4_off];
    if (type != 135 && type != 136)
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    pre_l4(p);
    l4_write(p, proto, p->l4_off + 8, addr, 16);
    return VDP_ACT_OK;
}

static int set_nd_lla(vdp_pkt *p, uint16_t off, const uint8_t *mac, struct wctx *w)
{
    int proto = vdp_pkt_l4_proto(p, NULL);
    if (proto != IPP_ICMPV6 || off == NOOFF || (uint32_t)off + 6 > p->len || off < p->l4_off)
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    pre_l4(p);
    l4_write(p, proto, off, mac, 6);
    return VDP_ACT_OK;
}

/* ------------------------------------------------------------ L2 fields */
static int set_mpls_lse(vdp_pkt *p, uint32_t mask, uint32_t bits, struct wctx *w)
{
    if (p->mpls_off == NOOFF || (uint32_t)p->mpls_off + 4 > p->len)
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    uint8_t *l = p->data + p->mpls_off;
    put32(l, (get32(l) & ~mask) | (bits & mask));
    return VDP_ACT_OK;
}

static int set_field(vdp_pkt *p, const vdp_op *op, struct wctx *w)
{
    const uint8_t *b = op->val.bytes;
    switch (op->field) {
    case VDP_F_METADATA:
    case VDP_F_TUNNEL_ID:
        return VDP_ACT_OK;          /* pipeline state, no bytes */
    case VDP_F_ETH_DST:
    case VDP_F_ETH_SRC:
        if (p->len < 14)
            return VDP_ACT_SKIP;
        MAKE_WRITABLE(p, w);
        memcpy(p->data + (op->field == VDP_F_ETH_DST ? 0 : 6), b, 6);
        return VDP_ACT_OK;
    case VDP_F_ETH_TYPE:
        if (p->ethtype_off == NOOFF || (uint32_t)p->ethtype_off + 2 > p->len)
            return VDP_ACT_SKIP;
        MAKE_WRITABLE(p, w);
        settle_csum(p);
        put16(p->data + p->ethtype_off, op->val.u16);
        refresh_offsets(p);
        return VDP_ACT_OK;
    case VDP_F_VLAN_VID:
    case VDP_F_VLAN_PCP: {
        if (p->vlan_off == NOOFF)
            return VDP_ACT_OK;      /* untagged: no-op (OVS practice) */
        if ((uint32_t)p->vlan_off + 4 > p->len)
            return VDP_ACT_SKIP;
        MAKE_WRITABLE(p, w);
        uint8_t *tci = p->data + p->vlan_off + 2;
        uint16_t v = get16(tci);
        if (op->field == VDP_F_VLAN_VID)
            v = (uint16_t)((v & 0xf000) | (op->val.u16 & 0x0fff));
        else
            v = (uint16_t)((v & 0x1fff) | ((op->val.u8 & 7) << 13));
        put16(tci, v);
        return VDP_ACT_OK;
    }
    case VDP_F_IP_DSCP:
        return set_tos(p, 0, op->val.u8, w);
    case VDP_F_IP_ECN:
        return set_tos(p, 1, op->val.u8, w);
    case VDP_F_IP_PROTO:
        return set_ip_proto(p, op->val.u8, w);
    case VDP_F_IPV4_SRC:
    case VDP_F_IPV4_DST:
        return set_ipv4_addr(p, op->field == VDP_F_IPV4_DST, op->val.u32, w);
    case VDP_F_TCP_SRC:
    case VDP_F_TCP_DST:
        return set_port(p, IPP_TCP, op->field == VDP_F_TCP_DST, op->val.u16, w);
    case VDP_F_UDP_SRC:
    case VDP_F_UDP_DST:
        return set_port(p, IPP_UDP, op->field == VDP_F_UDP_DST, op->val.u16, w);
    case VDP_F_SCTP_SRC:
    case VDP_F_SCTP_DST:
        return set_port(p, IPP_SCTP, op->field == VDP_F_SCTP_DST, op->val.u16, w);
    case VDP_F_ICMPV4_TYPE:
    case VDP_F_ICMPV4_CODE:
        return set_icmp(p, IPP_ICMP, op->field == VDP_F_ICMPV4_CODE, op->val.u8, w);
    case VDP_F_ICMPV6_TYPE:
    case VDP_F_ICMPV6_CODE:
        return set_icmp(p, IPP_ICMPV6, op->field == VDP_F_ICMPV6_CODE, op->val.u8, w);
    case VDP_F_ARP_OP: {
        uint8_t v[2];
        put16(v, op->val.u16);
        return set_arp(p, 6, v, 2, w);
    }
    case VDP_F_ARP_SPA:
    case VDP_F_ARP_TPA: {
        uint8_t v[4];
        put32(v, op->val.u32);
        return set_arp(p, op->field == VDP_F_ARP_SPA ? 14 : 24, v, 4, w);
    }
    case VDP_F_ARP_SHA:
        return set_arp(p, 8, b, 6, w);
    case VDP_F_ARP_THA:
        return set_arp(p, 18, b, 6, w);
    case VDP_F_IPV6_SRC:
    case VDP_F_IPV6_DST:
        return set_ipv6_addr(p, op->field == VDP_F_IPV6_DST, b, w);
    case VDP_F_IPV6_FLABEL:
        return set_flabel(p, op->val.u32, w);
    case VDP_F_IPV6_ND_TARGET:
        return set_nd_target(p, b, w);
    case VDP_F_IPV6_ND_SLL:
        return set_nd_lla(p, p->nd_sll_off, b, w);
    case VDP_F_IPV6_ND_TLL:
        return set_nd_lla(p, p->nd_tll_off, b, w);
    case VDP_F_MPLS_LABEL:
        return set_mpls_lse(p, 0xfffff000u, op->val.u32 << 12, w);
    case VDP_F_MPLS_TC:
        return set_mpls_lse(p, 0x00000e00u, (uint32_t)op->val.u8 << 9, w);
    case VDP_F_MPLS_BOS:
        return set_mpls_lse(p, 0x00000100u, (uint32_t)op->val.u8 << 8, w);
    case VDP_F_PBB_ISID: {
        if (p->pbb_off == NOOFF || (uint32_t)p->pbb_off + 6 > p->len)
            return VDP_ACT_SKIP;
        MAKE_WRITABLE(p, w);
        uint8_t *i = p->data + p->pbb_off + 3;
        uint32_t v = op->val.u32 & 0xffffff;
        i[0] = (uint8_t)(v >> 16);
        i[1] = (uint8_t)(v >> 8);
        i[2] = (uint8_t)v;
        return VDP_ACT_OK;
    }
    default:
        return VDP_ACT_SKIP;        /* not settable */
    }
}

/* ------------------------------------------------------------ push/pop */
static int push_vlan(vdp_pkt *p, uint16_t tpid, struct wctx *w)
{
    if (p->len < 14)
        return VDP_ACT_SKIP;
    if (!tpid)
        tpid = ET_VLAN;
    uint16_t tci = 0;
    if (p->vlan_off != NOOFF && (uint32_t)p->vlan_off + 4 <= p->len)
        tci = get16(p->data + p->vlan_off + 2) & 0xefff;   /* PCP + VID, DEI 0 */
    MAKE_WRITABLE(p, w);
    if (insert_bytes(p, 12, 4))
        return VDP_ACT_NOROOM;
    put16(p->data + 12, tpid);
    put16(p->data + 14, tci);
    p->vlan_off = 12;
    if (p->n_vlan < 255)
        p->n_vlan++;
    return VDP_ACT_OK;
}

static int pop_vlan(vdp_pkt *p, struct wctx *w)
{
    if (p->vlan_off == NOOFF || (uint32_t)p->vlan_off + 4 > p->len)
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    uint32_t at = p->vlan_off;
    remove_bytes(p, at, 4);
    if (p->n_vlan)
        p->n_vlan--;
    /* the next tag (if any) is the new outer one */
    if (p->n_vlan && at + 4 <= p->len && is_vlan_tpid(get16(p->data + at)))
        p->vlan_off = (uint16_t)at;
    else
        p->vlan_off = NOOFF;
    pad_runt(p);
    return VDP_ACT_OK;
}

static int push_mpls(vdp_pkt *p, uint16_t ethertype, struct wctx *w)
{
    if (p->ethtype_off == NOOFF || (uint32_t)p->ethtype_off + 2 > p->len)
        return VDP_ACT_SKIP;
    uint32_t at = p->ethtype_off + 2u;
    uint32_t lse;
    if (p->mpls_off == at && at + 4 <= p->len) {
        lse = get32(p->data + at) & ~0x100u;          /* copy, BoS 0 */
    } else {
        uint16_t t = vdp_pkt_l3_type(p);
        uint8_t ttl = 0;
        if (t == ET_IPV4 && ip_hdr_ok(p, t))
            ttl = p->data[p->l3_off + 8];
        else if (t == ET_IPV6 && ip_hdr_ok(p, t))
            ttl = p->data[p->l3_off + 7];
        lse = 0x100u | ttl;                            /* label 0, TC 0, BoS */
    }
    MAKE_WRITABLE(p, w);
    settle_csum(p);
    if (insert_bytes(p, at, 4))
        return VDP_ACT_NOROOM;
    put32(p->data + at, lse);
    put16(p->data + p->ethtype_off, ethertype ? ethertype : 0x8847);
    /* what follows the label stack is opaque to the parser */
    p->mpls_off = (uint16_t)at;
    p->pbb_off = p->l3_off = p->l4_off = NOOFF;
    p->nd_sll_off = p->nd_tll_off = NOOFF;
    return VDP_ACT_OK;
}

static int pop_mpls(vdp_pkt *p, uint16_t ethertype, struct wctx *w)
{
    if (p->mpls_off == NOOFF || (uint32_t)p->mpls_off + 4 > p->len ||
        p->ethtype_off == NOOFF || p->ethtype_off >= p->mpls_off)
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    uint32_t at = p->mpls_off;
    remove_bytes(p, at, 4);
    put16(p->data + p->ethtype_off, ethertype);
    if (is_mpls_type(ethertype) && at + 4 <= p->len) {
        p->mpls_off = (uint16_t)at;                    /* next label */
    } else {
        p->mpls_off = NOOFF;
        refresh_offsets(p);
    }
    pad_runt(p);
    return VDP_ACT_OK;
}

static int push_pbb(vdp_pkt *p, uint16_t ethertype, struct wctx *w)
{
    if (p->len < 14)
        return VDP_ACT_SKIP;
    uint32_t isid = 0, pcp = 0;
    if (p->pbb_off != NOOFF && (uint32_t)p->pbb_off + 6 <= p->len)
        isid = get32(p->data + p->pbb_off + 2) & 0xffffff;
    if (p->vlan_off != NOOFF && (uint32_t)p->vlan_off + 4 <= p->len)
        pcp = get16(p->data + p->vlan_off + 2) >> 13;
    MAKE_WRITABLE(p, w);
    settle_csum(p);
    if (insert_bytes(p, 0, PBB_HDR_LEN))
        return VDP_ACT_NOROOM;
    uint8_t *d = p->data;
    memcpy(d, d + PBB_HDR_LEN, 12);                    /* B-DA/B-SA = C-DA/C-SA */
    put16(d + 12, ethertype ? ethertype : ET_PBB);
    put32(d + 14, (pcp << 29) | isid);                 /* PCP, DEI 0, UCA 0, I-SID */
    p->vlan_off = NOOFF;
    p->n_vlan = 0;
    p->ethtype_off = 12;
    p->pbb_off = 12;
    p->mpls_off = p->l3_off = p->l4_off = NOOFF;
    p->nd_sll_off = p->nd_tll_off = NOOFF;
    return VDP_ACT_OK;
}

static int pop_pbb(vdp_pkt *p, struct wctx *w)
{
    if (p->pbb_off == NOOFF)
        return VDP_ACT_SKIP;
    uint32_t cut = p->pbb_off + 6u;                     /* through the I-TAG TCI */
    if (cut + 14 > p->len)
        return VDP_ACT_SKIP;
    MAKE_WRITABLE(p, w);
    remove_bytes(p, 0, cut);
    pad_runt(p);
    refresh_offsets(p);
    return VDP_ACT_OK;
}

/* ------------------------------------------------------------ TTL */
static int mpls_ttl(vdp_pkt *p, int dec, uint8_t ttl, struct wctx *w)
{
    if (p->mpls_off == NOOFF || (uint32_t)p->mpls_off + 4 > p->len)
        return VDP_ACT_SKIP;
    uint8_t *t = p->data + p->mpls_off + 3;
    if (dec) {
        if (*t <= 1)
            return VDP_ACT_INVALID_TTL;
        ttl = (uint8_t)(*t - 1);
    }
    MAKE_WRITABLE(p, w);
    p->data[p->mpls_off + 3] = ttl;
    return VDP_ACT_OK;
}

/* Set the TTL/hop limit of the IP header at `ip` (IPv4: checksum fixed). */
static void ip_set_ttl(uint8_t *ip, uint8_t ttl)
{
    if ((ip[0] >> 4) == 4) {
        uint16_t oldw = get16(ip + 8);
        ip[8] = ttl;
        put16(ip + 10, vdp_csum_update16(get16(ip + 10), oldw, get16(ip + 8)));
    } else {
        ip[7] = ttl;
    }
}

static int nw_ttl(vdp_pkt *p, int dec, uint8_t ttl, struct wctx *w)
{
    uint16_t t = vdp_pkt_l3_type(p);
    if ((t != ET_IPV4 && t != ET_IPV6) || !ip_hdr_ok(p, t))
        return VDP_ACT_SKIP;
    uint8_t cur = p->data[p->l3_off + (t == ET_IPV4 ? 8 : 7)];
    if (dec) {
        if (cur <= 1)
            return VDP_ACT_INVALID_TTL;
        ttl = (uint8_t)(cur - 1);
    }
    MAKE_WRITABLE(p, w);
    ip_set_ttl(p->data + p->l3_off, ttl);
    return VDP_ACT_OK;
}

/* The header under the outer MPLS LSE: 1 = another LSE at *off, 4/6 = an
 * IPv4/IPv6 header at *off (after a bottom-of-stack LSE), 0 = none. */
static int mpls_inner(const vdp_pkt *p, uint32_t *off)
{
    if (p->mpls_off == NOOFF || (uint32_t)p->mpls_off + 4 > p->len)
        return 0;
    uint32_t o = p->mpls_off + 4u;
    if (!(get32(p->data + p->mpls_off) & 0x100)) {
        if (o + 4 > p->len)
            return 0;
        *off = o;
        return 1;
    }
    if (o + 1 > p->len)
        return 0;
    int v = p->data[o] >> 4;
    if ((v == 4 && o + 20 <= p->len) || (v == 6 && o + 40 <= p->len)) {
        *off = o;
        return v;
    }
    return 0;
}

static int copy_ttl(vdp_pkt *p, int out, struct wctx *w)
{
    uint32_t in;
    int kind = mpls_inner(p, &in);
    if (!kind)
        return VDP_ACT_SKIP;        /* only MPLS->MPLS/IP is defined here */
    MAKE_WRITABLE(p, w);
    uint8_t *outer = p->data + p->mpls_off + 3;
    uint8_t *inner = p->data + in;
    if (out) {
        *outer = kind == 1 ? inner[3] : kind == 4 ? inner[8] : inner[7];
    } else if (kind == 1) {
        inner[3] = *outer;
    } else {
        ip_set_ttl(inner, *outer);
    }
    return VDP_ACT_OK;
}

/* ------------------------------------------------------------ entry */
int vdp_op_is_rewrite(uint8_t type)
{
    switch (type) {
    case VDP_OP_SET_FIELD: case VDP_OP_PUSH_VLAN: case VDP_OP_POP_VLAN:
    case VDP_OP_PUSH_MPLS: case VDP_OP_POP_MPLS: case VDP_OP_PUSH_PBB:
    case VDP_OP_POP_PBB: case VDP_OP_SET_MPLS_TTL: case VDP_OP_DEC_MPLS_TTL:
    case VDP_OP_SET_NW_TTL: case VDP_OP_DEC_NW_TTL: case VDP_OP_COPY_TTL_OUT:
    case VDP_OP_COPY_TTL_IN:
        return 1;
    default:
        return 0;
    }
}

int vdp_apply_rewrite(vdp_pkt *pkt, const vdp_op *op, uint8_t *scratch, uint32_t scratch_size)
{
    struct wctx w = {scratch, scratch_size};
    switch (op->type) {
    case VDP_OP_SET_FIELD:    return set_field(pkt, op, &w);
    case VDP_OP_PUSH_VLAN:    return push_vlan(pkt, op->arg16, &w);
    case VDP_OP_POP_VLAN:     return pop_vlan(pkt, &w);
    case VDP_OP_PUSH_MPLS:    return push_mpls(pkt, op->arg16, &w);
    case VDP_OP_POP_MPLS:     return pop_mpls(pkt, op->arg16, &w);
    case VDP_OP_PUSH_PBB:     return push_pbb(pkt, op->arg16, &w);
    case VDP_OP_POP_PBB:      return pop_pbb(pkt, &w);
    case VDP_OP_SET_MPLS_TTL: return mpls_ttl(pkt, 0, (uint8_t)op->arg, &w);
    case VDP_OP_DEC_MPLS_TTL: return mpls_ttl(pkt, 1, 0, &w);
    case VDP_OP_SET_NW_TTL:   return nw_ttl(pkt, 0, (uint8_t)op->arg, &w);
    case VDP_OP_DEC_NW_TTL:   return nw_ttl(pkt, 1, 0, &w);
    case VDP_OP_COPY_TTL_OUT: return copy_ttl(pkt, 1, &w);
    case VDP_OP_COPY_TTL_IN:  return copy_ttl(pkt, 0, &w);
    default:                  return VDP_ACT_SKIP;
    }
}

/* ------------------------------------------------------------ remark */
uint8_t vdp_dscp_raise(uint8_t dscp, uint8_t prec_level)
{
    uint8_t cls = (uint8_t)(dscp >> 3), dp = (uint8_t)((dscp >> 1) & 3);
    if ((dscp & 1) || cls < 1 || cls > 4 || dp == 0)
        return dscp;                /* not an AF codepoint */
    uint32_t ndp = (uint32_t)dp + prec_level;
    if (ndp > 3)
        ndp = 3;
    return (uint8_t)((cls << 3) | (ndp << 1));
}

int vdp_remark_dscp(vdp_pkt *pkt, uint8_t prec_level, uint8_t *scratch, uint32_t scratch_size)
{
    struct wctx w = {scratch, scratch_size};
    uint16_t t = vdp_pkt_l3_type(pkt);
    if ((t != ET_IPV4 && t != ET_IPV6) || !ip_hdr_ok(pkt, t))
        return VDP_ACT_SKIP;
    const uint8_t *ip = pkt->data + pkt->l3_off;
    uint8_t dscp = t == ET_IPV4 ? (uint8_t)(ip[1] >> 2)
                                : (uint8_t)(((ip[0] & 0x0f) << 2) | (ip[1] >> 6));
    uint8_t nd = vdp_dscp_raise(dscp, prec_level);
    if (nd == dscp)
        return VDP_ACT_OK;
    return set_tos(pkt, 0, nd, &w);
}
