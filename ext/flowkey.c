/* flowkey.c - the flow key's field table and key hashing.
 *
 * vdp_fields[] tells every user of the key (parse.pxi conversions, the
 * classifier's mask building, set-field compilation) where an OXM field lives
 * in struct vdp_key and how wide it is.  Names and widths follow
 * datapath/model.py FIELDS exactly (tests compare the two).
 *
 * vdp_key_hash() hashes a whole key for the exact-match cache and
 * vdp_key_hash_words() hashes key&mask over a subtable's significant words for
 * the classifier.  Both run once or more per packet, so they are a handful of
 * independent 64x64->128-bit multiplies (two key words each) summed and
 * passed through one more multiply; see mum() below.
 * Called by pipeline.c/emc.c/classifier.c and the Cython hooks.
 */
#include "vdp_parse.h"

#define FI(fname, member, nb, mk, st, bytes) \
    { fname, (uint16_t)offsetof(vdp_key, member), \
      (uint8_t)sizeof(((vdp_key *)0)->member), nb, mk, st, bytes }

const vdp_field_info vdp_fields[VDP_F_COUNT] = {
    [VDP_F_IN_PORT]        = FI("in_port",        in_port,     32, 0, 0, 0),
    [VDP_F_IN_PHY_PORT]    = FI("in_phy_port",    in_phy_port, 32, 0, 0, 0),
    [VDP_F_METADATA]       = FI("metadata",       metadata,    64, 1, 0, 0),
    [VDP_F_ETH_DST]        = FI("eth_dst",        eth_dst,     48, 1, 1, 1),
    [VDP_F_ETH_SRC]        = FI("eth_src",        eth_src,     48, 1, 1, 1),
    [VDP_F_ETH_TYPE]       = FI("eth_type",       eth_type,    16, 0, 1, 0),
    [VDP_F_VLAN_VID]       = FI("vlan_vid",       vlan_vid,    13, 1, 1, 0),
    [VDP_F_VLAN_PCP]       = FI("vlan_pcp",       vlan_pcp,     3, 0, 1, 0),
    [VDP_F_IP_DSCP]        = FI("ip_dscp",        ip_dscp,      6, 0, 1, 0),
    [VDP_F_IP_ECN]         = FI("ip_ecn",         ip_ecn,       2, 0, 1, 0),
    [VDP_F_IP_PROTO]       = FI("ip_proto",       ip_proto,     8, 0, 1, 0),
    [VDP_F_IPV4_SRC]       = FI("ipv4_src",       nw_src,      32, 1, 1, 0),
    [VDP_F_IPV4_DST]       = FI("ipv4_dst",       nw_dst,      32, 1, 1, 0),
    [VDP_F_TCP_SRC]        = FI("tcp_src",        tp_src,      16, 0, 1, 0),
    [VDP_F_TCP_DST]        = FI("tcp_dst",        tp_dst,      16, 0, 1, 0),
    [VDP_F_UDP_SRC]        = FI("udp_src",        tp_src,      16, 0, 1, 0),
    [VDP_F_UDP_DST]        = FI("udp_dst",        tp_dst,      16, 0, 1, 0),
    [VDP_F_SCTP_SRC]       = FI("sctp_src",       tp_src,      16, 0, 1, 0),
    [VDP_F_SCTP_DST]       = FI("sctp_dst",       tp_dst,      16, 0, 1, 0),
    [VDP_F_ICMPV4_TYPE]    = FI("icmpv4_type",    icmp_type,    8, 0, 1, 0),
    [VDP_F_ICMPV4_CODE]    = FI("icmpv4_code",    icmp_code,    8, 0, 1, 0),
    [VDP_F_ARP_OP]         = FI("arp_op",         arp_op,      16, 0, 1, 0),
    [VDP_F_ARP_SPA]        = FI("arp_spa",        nw_src,      32, 1, 1, 0),
    [VDP_F_ARP_TPA]        = FI("arp_tpa",        nw_dst,      32, 1, 1, 0),
    [VDP_F_ARP_SHA]        = FI("arp_sha",        arp_sha,     48, 1, 1, 1),
    [VDP_F_ARP_THA]        = FI("arp_tha",        arp_tha,     48, 1, 1, 1),
    [VDP_F_IPV6_SRC]       = FI("ipv6_src",       ipv6_src,   128, 1, 1, 1),
    [VDP_F_IPV6_DST]       = FI("ipv6_dst",       ipv6_dst,   128, 1, 1, 1),
    [VDP_F_IPV6_FLABEL]    = FI("ipv6_flabel",    ipv6_flabel, 20, 1, 1, 0),
    [VDP_F_ICMPV6_TYPE]    = FI("icmpv6_type",    icmp_type,    8, 0, 1, 0),
    [VDP_F_ICMPV6_CODE]    = FI("icmpv6_code",    icmp_code,    8, 0, 1, 0),
    [VDP_F_IPV6_ND_TARGET] = FI("ipv6_nd_target", nd_target,  128, 0, 1, 1),
    [VDP_F_IPV6_ND_SLL]    = FI("ipv6_nd_sll",    arp_sha,     48, 0, 1, 1),
    [VDP_F_IPV6_ND_TLL]    = FI("ipv6_nd_tll",    arp_tha,     48, 0, 1, 1),
    [VDP_F_MPLS_LABEL]     = FI("mpls_label",     mpls_label,  20, 0, 1, 0),
    [VDP_F_MPLS_TC]        = FI("mpls_tc",        mpls_tc,      3, 0, 1, 0),
    [VDP_F_MPLS_BOS]       = FI("mpls_bos",       mpls_bos,     1, 0, 1, 0),
    [VDP_F_PBB_ISID]       = FI("pbb_isid",       pbb_isid,    24, 1, 1, 0),
    [VDP_F_TUNNEL_ID]      = FI("tunnel_id",      tunnel_id,   64, 1, 1, 0),
    [VDP_F_IPV6_EXTHDR]    = FI("ipv6_exthdr",    ipv6_exthdr,  9, 1, 0, 0),
};

_Static_assert(sizeof(vdp_key) == VDP_KEY_WORDS * 8, "vdp_key must be 19 words");
_Static_assert(offsetof(vdp_key, ipv6_exthdr) == 10 * 8 + 2, "vdp_key layout moved");
_Static_assert(offsetof(vdp_key, nd_target) == 17 * 8, "vdp_key layout moved");

/* Per-word secrets (arbitrary 64-bit constants with mixed bit patterns):
 * xoring a word with its own secret makes the hash depend on
 * which word a value sits in, and keeps all-zero words from multiplying
 * to zero. */
static const uint64_t S[VDP_KEY_WORDS + 1] = {
    0xe220a8397b1dcdafULL, 0x6e789e6aa1b965f4ULL, 0x06c45d188009454fULL,
    0xf88bb8a8724c81ecULL, 0x1b39896a51a8749bULL, 0x53cb9f0c747ea2eaULL,
    0x8b7ea0c2b6d6c8a5ULL, 0x3d3f1dbd2ab8b1d5ULL, 0xa4ab0f0e1c3c5f27ULL,
    0xc9e4ce92a3d1b15dULL, 0x5be4e3a6a1c45cd9ULL, 0x1f0c9a1c3e9f3e7bULL,
    0x96f36b0a9f6c1a43ULL, 0x2b8d6e5a0e53c6b1ULL, 0xd0f4c2f5b5bd79e3ULL,
    0x71a1f0c6d8e2a94dULL, 0x4fc2d1b0e6a3a58bULL, 0xe5b7d0a9c1f28c17ULL,
    0x38c5a1d2f4e6b963ULL, 0x9a3e8f1c5b7d2e41ULL,
};
#define K1 0x9e3779b97f4a7c15ULL

/* 64x64->128 multiply folded to 64 bits (low ^ high): each input bit
 * spreads over most output bits, in both directions, with one multiply.
 * Combining two words per multiply halves the work; all products are
 * independent, so the key hash costs about one multiply latency plus a short
 * add tree.  (A word equal to its secret zeroes its product's partner: with
 * these constants no header value is likely to hit that.) */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
    /* 32-bit targets: two 32x32 products mixed with a rotate. */
    uint64_t lo = (a & 0xffffffffu) * (b >> 32), hi = (a >> 32) * (b & 0xffffffffu);
    return (lo ^ ((hi << 29) | (hi >> 35))) * K1 ^ a ^ b;
#endif
}

static inline uint32_t finish(uint64_t h, uint64_t seed)
{
    h = mum(h ^ K1, seed ^ S[VDP_KEY_WORDS]);
    return (uint32_t)(h ^ (h >> 32));
}

uint32_t vdp_key_hash(const vdp_key *k, uint32_t basis)
{
    const uint64_t *w = k->w;
    uint64_t seed = basis;
    uint64_t h;

    h  = mum(w[0] ^ S[0], w[1] ^ S[1]) + mum(w[2] ^ S[2], w[3] ^ S[3]);
    h += mum(w[4] ^ S[4], w[5] ^ S[5]) + mum(w[6] ^ S[6], w[7] ^ S[7]);
    h += mum(w[8] ^ S[8], w[9] ^ S[9]) + mum(w[10] ^ S[10], w[11] ^ S[11]);
    h += mum(w[12] ^ S[12], w[13] ^ S[13]) + mum(w[14] ^ S[14], w[15] ^ S[15]);
    h += mum(w[16] ^ S[16], w[17] ^ S[17]) + mum(w[18] ^ S[18], seed ^ K1);
    return finish(h, seed);
}

uint32_t vdp_key_hash_words(const vdp_key *k, const vdp_key *mask,
                            const uint8_t *words, int nwords, uint32_t basis)
{
    uint64_t seed = basis;
    uint64_t h = (uint64_t)nwords;
    int i = 0;

    for (; i + 1 < nwords; i += 2) {
        unsigned a = words[i], b = words[i + 1];

        h += mum((k->w[a] & mask->w[a]) ^ S[a], (k->w[b] & mask->w[b]) ^ S[b]);
    }
    if (i < nwords) {
        unsigned a = words[i];

        h += mum((k->w[a] & mask->w[a]) ^ S[a], seed ^ K1);
    }
    return finish(h, seed);
}
