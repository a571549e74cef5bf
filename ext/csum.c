/* csum.c - Internet checksums (full and incremental), pseudo-header sums,
 * CRC32c for SCTP, and completion of offloaded (partial) L4 checksums.
 * See csum.h for the conventions.  Used by actions.c and by the output
 * paths (pipeline.c, ports) through vdp_csum_complete. */
#include <string.h>
#include "csum.h"

#define ET_IPV4 0x0800
#define ET_IPV6 0x86dd
#define ET_ARP  0x0806

/* ------------------------------------------------------------ sums */
/* Summing native-endian 64-bit chunks gives the byte-swapped ones-complement
 * sum on a little-endian CPU (the sum commutes with byte swapping, RFC 1071
 * section 2(B)), so one swap at the end yields the big-endian-word sum. */
uint32_t vdp_csum_add(uint32_t sum, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t acc = 0;

    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        acc += v;
        acc += (acc < v);
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        acc += v;
        acc += (acc < v);
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        acc += v;
        acc += (acc < v);
        p += 2;
        len -= 2;
    }
    if (len) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t v = p[0];
#else
        uint64_t v = (uint64_t)p[0] << 8;
#endif
        acc += v;
        acc += (acc < v);
    }
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    uint16_t s16 = vdp_csum_fold((uint32_t)acc);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    s16 = __builtin_bswap16(s16);
#endif
    uint64_t r = (uint64_t)sum + s16;
    return (uint32_t)((r & 0xffffffffu) + (r >> 32));
}

uint16_t vdp_csum_update_bytes(uint16_t hc, const uint8_t *old, const uint8_t *new_, size_t n)
{
    /* ~HC + sum(~old words) + sum(new words); sum(~w) == ~sum(w) in ones'
     * complement arithmetic. */
    uint32_t s = (uint16_t)~hc;
    s += (uint16_t)~vdp_csum_fold(vdp_csum_add(0, old, n));
    s += vdp_csum_fold(vdp_csum_add(0, new_, n));
    return (uint16_t)~vdp_csum_fold(s);
}

uint16_t vdp_ipv4_header_csum(const uint8_t *ip)
{
    uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
    uint32_t s = vdp_csum_add(0, ip, 10);
    if (ihl > 12)
        s = vdp_csum_add(s, ip + 12, ihl - 12);
    return (uint16_t)~vdp_csum_fold(s);
}

uint32_t vdp_pseudo_sum4(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len)
{
    uint32_t s = vdp_csum_add(0, src, 4);
    s = vdp_csum_add(s, dst, 4);
    return s + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

uint32_t vdp_pseudo_sum6(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len)
{
    uint32_t s = vdp_csum_add(0, src, 16);
    s = vdp_csum_add(s, dst, 16);
    return s + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

uint16_t vdp_l4_csum(uint32_t pseudo_sum, const uint8_t *l4, uint32_t l4_len, uint32_t csum_off)
{
    uint32_t s = vdp_csum_fold(pseudo_sum);
    if (csum_off + 2 <= l4_len) {
        s = vdp_csum_add(s, l4, csum_off);
        s = vdp_csum_add(s, l4 + csum_off + 2, l4_len - csum_off - 2);
    } else {
        s = vdp_csum_add(s, l4, l4_len);
    }
    return (uint16_t)~vdp_csum_fold(s);
}

uint16_t vdp_l4_csum4(const uint8_t *ip, uint8_t proto, const uint8_t *l4, uint32_t l4_len)
{
    int off = vdp_l4_csum_offset(proto);
    uint16_t cs = vdp_l4_csum(vdp_pseudo_sum4(ip + 12, ip + 16, proto, l4_len), l4, l4_len,
                              off < 0 ? l4_len : (uint32_t)off);
    return (proto == 17 && cs == 0) ? 0xffff : cs;
}

uint16_t vdp_l4_csum6(const uint8_t *ip6, uint8_t proto, const uint8_t *l4, uint32_t l4_len)
{
    int off = vdp_l4_csum_offset(proto);
    uint16_t cs = vdp_l4_csum(vdp_pseudo_sum6(ip6 + 8, ip6 + 24, proto, l4_len), l4, l4_len,
                              off < 0 ? l4_len : (uint32_t)off);
    return (proto == 17 && cs == 0) ? 0xffff : cs;
}

uint16_t vdp_icmp4_csum(const uint8_t *icmp, uint32_t len)
{
    return vdp_l4_csum(0, icmp, len, 2);
}

/* ------------------------------------------------------------ CRC32c */
static uint32_t crc_tab[8][256];
#if defined(__x86_64__)
static int crc_have_hw;
#endif

__attribute__((constructor)) static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    /* slicing-by-8 (little-endian register layout; byte loads keep it
     * endian-independent) */
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                             (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
              crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
              crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^ crc_tab[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len--)
        crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
#endif

uint32_t vdp_crc32c_update(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
    if (crc_have_hw)
        return crc_hw(crc, data, len);
#endif
    return crc_sw(crc, data, len);
}

void vdp_crc32c_use_hw(int on)
{
#if defined(__x86_64__)
    crc_have_hw = on ? __builtin_cpu_supports("sse4.2") : 0;
#else
    (void)on;
#endif
}

void vdp_sctp_set_csum(uint8_t *sctp, uint32_t len)
{
    if (len < 12)
        return;
    memset(sctp + 8, 0, 4);
    uint32_t crc = vdp_crc32c(sctp, len);
    /* The CRC register is reflected: its low byte goes first on the wire. */
    sctp[8] = (uint8_t)crc;
    sctp[9] = (uint8_t)(crc >> 8);
    sctp[10] = (uint8_t)(crc >> 16);
    sctp[11] = (uint8_t)(crc >> 24);
}

/* ------------------------------------------------------------ packets */
uint16_t vdp_pkt_l3_type(const vdp_pkt *pkt)
{
    if (pkt->ethtype_off == VDP_NOOFF || pkt->l3_off == VDP_NOOFF ||
        (uint32_t)pkt->ethtype_off + 2 > pkt->len)
        return 0;
    uint16_t et = vdp_be16_get(pkt->data + pkt->ethtype_off);
    return (et == ET_IPV4 || et == ET_IPV6 || et == ET_ARP) ? et : 0;
}

static int ipv6_ext(uint8_t nh)
{
    return nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51 || nh == 135 ||
           nh == 139 || nh == 140;
}

int vdp_pkt_l4_info(const vdp_pkt *pkt, uint32_t *proto_off, uint32_t *flags)
{
    uint32_t fl = 0;
    if (flags)
        *flags = 0;
    if (pkt->l4_off == VDP_NOOFF)
        return -1;
    uint16_t t = vdp_pkt_l3_type(pkt);
    const uint8_t *d = pkt->data;
    uint32_t l3 = pkt->l3_off, l4 = pkt->l4_off;

    if (t == ET_IPV4) {
        if (l3 + 20 > pkt->len)
            return -1;
        uint16_t frag = vdp_be16_get(d + l3 + 6);
        if (frag & 0x1fff)
            return -1;              /* non-first fragment: no L4 header here */
        if (frag & 0x2000)
            fl |= VDP_L4F_FRAG;
        if (proto_off)
            *proto_off = l3 + 9;
        if (flags)
            *flags = fl;
        return d[l3 + 9];
    }
    if (t == ET_IPV6) {
        if (l3 + 40 > pkt->len)
            return -1;
        uint32_t at = l3 + 6, off = l3 + 40;
        uint8_t cur = d[at];
        while (off < l4) {
            if (!ipv6_ext(cur) || off + 8 > pkt->len)
                return -1;
            uint32_t hl = cur == 44 ? 8 : cur == 51 ? ((uint32_t)d[off + 1] + 2) * 4
                                                    : ((uint32_t)d[off + 1] + 1) * 8;
            if (cur == 44) {
                if (vdp_be16_get(d + off + 2) & 0xfff8)
                    return -1;      /* non-first fragment */
                fl |= VDP_L4F_FRAG;
            } else if (cur == 43 && d[off + 3] != 0) {
                fl |= VDP_L4F_RTHDR;
            }
            at = off;
            cur = d[off];
            off += hl;
        }
        if (off != l4)
            return -1;
        if (proto_off)
            *proto_off = at;
        if (flags)
            *flags = fl;
        return cur;
    }
    return -1;
}

int vdp_pkt_l4_proto(const vdp_pkt *pkt, uint32_t *proto_off)
{
    return vdp_pkt_l4_info(pkt, proto_off, NULL);
}

int vdp_l4_csum_offset(int proto)
{
    switch (proto) {
    case 6:   return 16;   /* TCP */
    case 17:  return 6;    /* UDP */
    case 1:   return 2;    /* ICMPv4 */
    case 58:  return 2;    /* ICMPv6 */
    case 132: return 8;    /* SCTP (CRC32c, 4 bytes) */
    default:  return -1;
    }
}

int vdp_csum_partial_loc(const vdp_pkt *pkt, uint32_t *start, uint32_t *field, uint8_t *proto)
{
    int p = vdp_pkt_l4_proto(pkt, NULL);
    uint32_t s, f;
    if (pkt->csum_start) {
        s = pkt->csum_start;
        f = s + pkt->csum_offset;
        if (p < 0 || pkt->l4_off != s)
            p = 0;
    } else {
        int off = vdp_l4_csum_offset(p);
        if (p < 0 || off < 0)
            return -1;
        s = pkt->l4_off;
        f = s + (uint32_t)off;
    }
    if (f < s || ((f - s) & 1) || f + (p == 132 ? 4 : 2) > pkt->len)
        return -1;
    *start = s;
    *field = f;
    *proto = (uint8_t)p;
    return 0;
}

/* End of the L4 data: the IP datagram's end when the IP header is known
 * (so Ethernet padding is not summed), else the frame's end. */
static uint32_t l4_end(const vdp_pkt *pkt, const uint8_t *d, uint32_t start)
{
    /* d: the frame bytes (pkt->data or a copy with the same layout) */
    uint32_t end = pkt->len;
    uint16_t t = vdp_pkt_l3_type(pkt);
    uint32_t l3 = pkt->l3_off;
    if (t == ET_IPV4 && l3 + 20 <= end && start > l3) {
        uint32_t tot = vdp_be16_get(d + l3 + 2);
        if (tot >= 20 && l3 + tot < end)
            end = l3 + tot;
    } else if (t == ET_IPV6 && l3 + 40 <= end && start > l3) {
        uint32_t plen = vdp_be16_get(d + l3 + 4);
        if (plen && l3 + 40 + plen < end)
            end = l3 + 40 + plen;
    }
    return end;
}

uint32_t vdp_pkt_l4_end(const vdp_pkt *pkt)
{
    uint32_t start = pkt->l4_off != VDP_NOOFF ? pkt->l4_off : pkt->len;
    return l4_end(pkt, pkt->data, start);
}

int vdp_csum_complete_buf(const vdp_pkt *pkt, uint8_t *frame)
{
    uint32_t start, field;
    uint8_t proto;
    if (!pkt->csum_partial)
        return 0;
    if (pkt->gso_type)
        return -1;
    if (vdp_csum_partial_loc(pkt, &start, &field, &proto) < 0)
        return -1;
    uint32_t end = l4_end(pkt, frame, start);
    if (proto == 132) {
        if (field + 4 > end || field - start != 8)
            return -1;
        vdp_sctp_set_csum(frame + start, end - start);
        return 0;
    }
    if (field + 2 > end)
        return -1;
    /* The field holds the pseudo-header sum, so summing it with the data
     * gives the full sum. */
    uint16_t cs = (uint16_t)~vdp_csum_fold(vdp_csum_add(0, frame + start, end - start));
    if (cs == 0 && (proto == 17 || (proto == 0 && field - start == 6)))
        cs = 0xffff;
    vdp_be16_put(frame + field, cs);
    return 0;
}

int vdp_csum_complete(vdp_pkt *pkt)
{
    if (!pkt->csum_partial)
        return 0;
    int r = vdp_csum_complete_buf(pkt, pkt->data);
    if (r == 0) {
        pkt->csum_partial = 0;
        pkt->csum_start = 0;
        pkt->csum_offset = 0;
    }
    return r;
}
