/* csum.h - Internet checksums (RFC 1071 / RFC 1624) and CRC32c (SCTP).
 *
 * Called by actions.c (every rewrite keeps the IPv4 header, TCP, UDP,
 * ICMPv4, ICMPv6 and SCTP checksums right), by the meter remark path, and by
 * whoever must finish an offloaded checksum before a frame leaves or goes to
 * the controller (vdp_csum_complete: pipeline.c, port providers).
 *
 * Conventions: 16-bit checksum values are the big-endian field read as a
 * host integer (rd16 of the two bytes).  A "sum" is a ones-complement sum not
 * yet complemented; a "checksum" is the complemented value stored in a
 * header.  All sums are over big-endian 16-bit words starting at an even
 * position of the covered region (odd trailing byte padded with zero).
 */
#ifndef VDP_CSUM_H
#define VDP_CSUM_H

#include <stdint.h>
#include <stddef.h>
#include "vdp_types.h"

/* Big-endian loads/stores (frames are not aligned). */
static inline uint16_t vdp_be16_get(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void vdp_be16_put(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline uint32_t vdp_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void vdp_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Add `len` bytes to a running sum; returns the new sum (fold it with
 * vdp_csum_fold).  Any length; data need not be aligned in memory. */
uint32_t vdp_csum_add(uint32_t sum, const void *data, size_t len);

/* Fold a 32-bit running sum to 16 bits (end-around carry), not complemented. */
static inline uint16_t vdp_csum_fold(uint32_t sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* Complemented checksum of a buffer (what an IPv4 header or ICMPv4 stores). */
static inline uint16_t vdp_csum(const void *data, size_t len)
{
    return (uint16_t)~vdp_csum_fold(vdp_csum_add(0, data, len));
}

/* RFC 1624 eqn. 3 incremental update of a stored checksum `hc` for one
 * 16-bit word changing old -> new: HC' = ~(~HC + ~m + m'). */
static inline uint16_t vdp_csum_update16(uint16_t hc, uint16_t old, uint16_t new_)
{
    uint32_t s = (uint32_t)(uint16_t)~hc + (uint16_t)~old + new_;
    return (uint16_t)~vdp_csum_fold(s);
}

/* Same for a 32-bit field (two words, big-endian value in host order). */
static inline uint16_t vdp_csum_update32(uint16_t hc, uint32_t old, uint32_t new_)
{
    uint32_t s = (uint32_t)(uint16_t)~hc
               + (uint16_t)~(old >> 16) + (uint16_t)~(old & 0xffff)
               + (new_ >> 16) + (new_ & 0xffff);
    return (uint16_t)~vdp_csum_fold(s);
}

/* Same for `n` bytes (n even, e.g. 6 for a MAC, 16 for an IPv6 address)
 * starting at an even position of the covered region. */
uint16_t vdp_csum_update_bytes(uint16_t hc, const uint8_t *old, const uint8_t *new_, size_t n);

/* 128-bit field (IPv6 address): the 16-byte case of the above. */
static inline uint16_t vdp_csum_update128(uint16_t hc, const uint8_t old[16], const uint8_t new_[16])
{
    return vdp_csum_update_bytes(hc, old, new_, 16);
}

/* Updates for a field that holds an UNcomplemented sum (the pseudo-header
 * sum that a CHECKSUM_PARTIAL frame carries in its L4 checksum field). */
static inline uint16_t vdp_psum_update_bytes(uint16_t psum, const uint8_t *old, const uint8_t *new_, size_t n)
{
    return (uint16_t)~vdp_csum_update_bytes((uint16_t)~psum, old, new_, n);
}

/* IPv4 header checksum of the header at `ip` (ihl from the header; the
 * checksum field is treated as zero).  Returns the value to store. */
uint16_t vdp_ipv4_header_csum(const uint8_t *ip);

/* Pseudo-header sums (uncomplemented, unfolded) for TCP/UDP/ICMPv6.
 * src/dst point at the addresses in the IP header; l4_len is the L4 length. */
uint32_t vdp_pseudo_sum4(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len);
uint32_t vdp_pseudo_sum6(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len);

/* Full L4 checksum (complemented, ready to store) over l4[0..l4_len) with
 * the checksum field at l4 + csum_off taken as zero.  UDP callers map a
 * result of 0 to 0xffff themselves (vdp_l4_csum4/6 below do). */
uint16_t vdp_l4_csum(uint32_t pseudo_sum, const uint8_t *l4, uint32_t l4_len, uint32_t csum_off);

/* Convenience: complete TCP/UDP/ICMPv6 checksum for an IPv4 or IPv6 header
 * at `ip` and L4 at `l4` of l4_len bytes (UDP 0 -> 0xffff).  ICMPv4 has no
 * pseudo header: use vdp_icmp4_csum. */
uint16_t vdp_l4_csum4(const uint8_t *ip, uint8_t proto, const uint8_t *l4, uint32_t l4_len);
uint16_t vdp_l4_csum6(const uint8_t *ip6, uint8_t proto, const uint8_t *l4, uint32_t l4_len);
uint16_t vdp_icmp4_csum(const uint8_t *icmp, uint32_t len);

/* CRC32c (Castagnoli), the SCTP checksum.  vdp_crc32c_update continues a raw
 * (non-inverted) register; vdp_crc32c is the finished value (init ~0, final
 * xor ~0).  Uses SSE4.2 crc32 when the CPU has it, slicing-by-8 otherwise. */
uint32_t vdp_crc32c_update(uint32_t crc, const void *data, size_t len);
static inline uint32_t vdp_crc32c(const void *data, size_t len)
{
    return ~vdp_crc32c_update(0xffffffffu, data, len);
}

/* Tests: 0 forces the portable slicing-by-8 path, 1 restores auto. */
void vdp_crc32c_use_hw(int on);

/* Recompute the SCTP checksum of the SCTP packet sctp[0..len) in place
 * (checksum field at offset 8, stored little-endian as RFC 4960 App. B /
 * Linux do). */
void vdp_sctp_set_csum(uint8_t *sctp, uint32_t len);

/* Complete a partial L4 checksum (pkt->csum_partial): the checksum field
 * holds the folded pseudo-header sum; the finished checksum is the
 * complement of the sum over [csum_start, end of L4 data).  Where:
 * csum_start/csum_offset when csum_start != 0, else l4_off and the offset
 * for the L4 protocol (TCP 16, UDP 6, ICMPv6 2, SCTP: CRC32c at 8).  End of
 * data = end of the IP datagram when the IP header is known, else pkt->len.
 * UDP 0 -> 0xffff.  Writes IN PLACE into pkt->data: the caller must own the
 * bytes (rewritten frame, or a ring frame nothing else will read as
 * partial).  Clears csum_partial/csum_start/csum_offset.
 * Returns 0 (also when nothing was partial), -1 when it cannot (GSO frame:
 * segment first; L4 location unknown or out of the frame) - the frame is
 * then left untouched. */
int vdp_csum_complete(vdp_pkt *pkt);

/* Same computation written into `frame`, a copy of pkt->data (same layout,
 * pkt->len bytes) - for tx paths that copy the frame anyway.  Does not
 * modify pkt. */
int vdp_csum_complete_buf(const vdp_pkt *pkt, uint8_t *frame);

/* The L3 protocol of a parsed frame: the ethertype at ethtype_off when it
 * is IPv4/IPv6/ARP and l3_off is known, else 0. */
uint16_t vdp_pkt_l3_type(const vdp_pkt *pkt);

/* The L4 protocol of an IPv4/IPv6 frame whose L4 header is at l4_off (the
 * last next-header of an IPv6 extension chain), or -1.  When proto_off is
 * not NULL it receives the offset (from data) of the byte holding it. */
int vdp_pkt_l4_proto(const vdp_pkt *pkt, uint32_t *proto_off);

/* Same, plus flags: VDP_L4F_FRAG when the datagram is a fragment (IPv4
 * MF/offset, IPv6 fragment header: the L4 checksum covers bytes that are
 * not here), VDP_L4F_RTHDR when an IPv6 routing header with segments left
 * is present (the pseudo-header then uses the final destination, not the
 * IPv6 destination field).  A non-first IPv4 fragment has no L4: -1. */
#define VDP_L4F_FRAG  1u
#define VDP_L4F_RTHDR 2u
int vdp_pkt_l4_info(const vdp_pkt *pkt, uint32_t *proto_off, uint32_t *flags);

/* End of the L4 data (offset from data): the IP datagram's end when the IP
 * header is known (Ethernet padding excluded), else pkt->len. */
uint32_t vdp_pkt_l4_end(const vdp_pkt *pkt);

/* Offset of the checksum field inside an L4 header, -1 if none. */
int vdp_l4_csum_offset(int proto);

/* Where the L4 checksum of a partial frame lives: *start = first covered
 * byte, *field = offset of the checksum field (both from data), *proto = L4
 * protocol (0 if unknown).  Returns 0 or -1 when it cannot be located. */
int vdp_csum_partial_loc(const vdp_pkt *pkt, uint32_t *start, uint32_t *field, uint8_t *proto);

#endif
