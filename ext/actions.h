/* actions.h - packet rewriting: the ops of a compiled program that change
 * bytes (set-field, push/pop VLAN/MPLS/PBB, TTL ops) and the meter's DSCP
 * remark.  Leaf module: pipeline.c (vdp_exec) calls vdp_apply_rewrite for
 * every rewriting op and handles outputs, groups and meters itself.
 *
 * Writability.  A frame starts in a port's RX ring (read-only by
 * convention: it may be shared by several outputs).  The first op that
 * changes bytes copies it into a caller-supplied scratch buffer, leaving
 * VDP_HEADROOM bytes in front so pushes need no memmove of the payload:
 * pass a buffer of at least pkt->len + VDP_HEADROOM bytes (VDP_MAX_FRAME +
 * VDP_HEADROOM is always enough; pushes beyond the headroom move the frame
 * inside the buffer, so a little tail room helps long push chains).  Once
 * pkt->rewritten is set the frame lives in pkt->buf and the scratch argument
 * is ignored; an op that does not apply never copies.
 *
 * Offsets.  Every op keeps every vdp_pkt offset right, so a program runs op
 * after op without re-parsing.  Ops that change what the parser would see
 * keep the offsets equal to what vdp_parse would produce on the new bytes:
 *   push_vlan/pop_vlan: shift; vlan_off/n_vlan follow the tags.
 *   push_mpls: the MPLS payload becomes opaque (l3/l4/nd/pbb offsets NOOFF),
 *     mpls_off = the new label.  set_field on L3/L4 after it does not apply.
 *   pop_mpls to a non-MPLS ethertype, pop_pbb, set_field eth_type and
 *     ip_proto: offsets are recomputed by re-parsing (vdp_parse on a scratch
 *     key; the caller's key is not touched).
 *   push_pbb: outer frame only (pbb_off = ethtype_off = 12, rest NOOFF).
 * The flow KEY is not updated: the caller re-parses when it needs one.
 *
 * Checksums.  Every byte change updates the checksums that cover it
 * (incremental RFC 1624 for the IPv4 header, TCP, UDP (0 = none stays 0),
 * ICMPv4, ICMPv6 incl. pseudo-headers; SCTP CRC32c recomputed).  On a
 * partial-checksum frame (csum_partial) an op that changes something the L4
 * checksum covers first completes it (vdp_csum_complete), except for GSO
 * frames (gso_type != 0) where the pseudo-header sum held in the checksum
 * field is adjusted instead and bytes that are summed later need nothing.
 * Pushes/pops shift csum_start.
 */
#ifndef VDP_ACTIONS_H
#define VDP_ACTIONS_H

#include <stdint.h>
#include "vdp_types.h"

/* Return values of vdp_apply_rewrite / vdp_remark_dscp. */
#define VDP_ACT_OK           0
/* The decrement would make a TTL 0 (or it already is): the frame is left
 * unchanged and must not be forwarded.  The caller sends it to the
 * controller with reason VDP_OFPR_INVALID_TTL when the switch is configured
 * so (OFPC_INVALID_TTL_TO_CONTROLLER), else drops it. */
#define VDP_ACT_INVALID_TTL  1
/* The op does not apply to this frame (pop on a frame without that header,
 * set-field of a header the frame lacks, non-rewriting op type): the frame
 * is unchanged.  OpenFlow leaves this undefined; like OVS, the caller should
 * ignore the op and go on with the program. */
#define VDP_ACT_SKIP        (-1)
/* The frame could not be made writable or grown (scratch too small): the
 * caller must drop the frame. */
#define VDP_ACT_NOROOM      (-2)

/* Copy pkt->data into buf (leaving VDP_HEADROOM bytes in front) and point
 * pkt->data/buf/bufsize there, setting pkt->rewritten.  No-op (0) when the
 * frame is already rewritten.  -1 when bufsize < len + VDP_HEADROOM. */
int vdp_pkt_make_writable(vdp_pkt *pkt, uint8_t *buf, uint32_t bufsize);

/* Apply one rewriting op (SET_FIELD, PUSH_/POP_VLAN/MPLS/PBB, SET_/DEC_
 * MPLS_TTL, SET_/DEC_NW_TTL, COPY_TTL_OUT/IN) to pkt.  scratch/scratch_size:
 * see "Writability" above.  Returns VDP_ACT_OK, VDP_ACT_INVALID_TTL,
 * VDP_ACT_SKIP or VDP_ACT_NOROOM.
 *
 * SET_FIELD: op->field = VDP_F_*, op->val in key storage format (host-order
 * integer of the field's key size, or network-order bytes for MAC/IPv6).
 * vlan_vid/vlan_pcp act on the outer tag; on an untagged frame they are a
 * no-op returning VDP_ACT_OK (OVS practice).  tunnel_id and metadata change
 * no bytes (VDP_ACT_OK).  eth_type rewrites the field at pkt->ethtype_off.
 * PUSH_VLAN: new outer tag with TPID op->arg16 (0 = 0x8100), VID/PCP
 *   copied from the existing outer tag or 0.
 * POP_VLAN: removes the outer tag.
 * PUSH_MPLS: new outermost LSE after the Ethernet header and VLAN tags,
 *   ethertype op->arg16; label/TC/TTL copied from the existing outer LSE
 *   (BoS 0), else label 0, TC 0, TTL from the IP TTL/hop limit or 0, BoS 1.
 * POP_MPLS: removes the outer LSE; op->arg16 = ethertype of what follows.
 * PUSH_PBB: OpenFlow 1.3 802.1ah: prepends B-DA, B-SA (copied from the
 *   customer MACs), ethertype op->arg16 (0 = 0x88e7), I-TAG (PCP from the
 *   outer VLAN tag or 0, I-SID from an existing I-TAG or 0).
 * POP_PBB: removes everything up to and including the outer I-TAG.
 *   The three pops pad a frame they leave shorter than 60 bytes with zeros
 *   up to 60 (the Ethernet minimum a NIC would pad to on the wire).
 * SET_MPLS_TTL / SET_NW_TTL: op->arg = ttl.  DEC_*: VDP_ACT_INVALID_TTL when
 *   the TTL is <= 1.  NW TTL = IPv4 TTL (header checksum updated) or IPv6 hop
 *   limit.
 * COPY_TTL_OUT / COPY_TTL_IN: between the outer MPLS LSE and the next LSE,
 *   or the IPv4/IPv6 header under a bottom-of-stack LSE. */
int vdp_apply_rewrite(vdp_pkt *pkt, const vdp_op *op, uint8_t *scratch, uint32_t scratch_size);

/* 1 when vdp_apply_rewrite handles this op type. */
int vdp_op_is_rewrite(uint8_t type);

/* The meter DSCP_REMARK band: raise the drop precedence of an RFC 2597
 * Assured Forwarding codepoint (AFxy, DSCP = 8x + 2y, x 1..4, y 1..3) by
 * prec_level, saturating at y = 3 (AF21 (18) + 1 -> AF22 (20), the os-ken
 * switch test suite's expectation).  Other codepoints (BE, CSx, EF, ...)
 * have no drop precedence and are left alone.  IPv4 (header checksum
 * updated) and IPv6.  Returns VDP_ACT_OK (also when unchanged),
 * VDP_ACT_SKIP for a non-IP frame, VDP_ACT_NOROOM. */
int vdp_remark_dscp(vdp_pkt *pkt, uint8_t prec_level, uint8_t *scratch, uint32_t scratch_size);

/* The DSCP that vdp_remark_dscp would write (pure function, for tests). */
uint8_t vdp_dscp_raise(uint8_t dscp, uint8_t prec_level);

/* Access to vdp_op.val (cdefs.pxi does not declare the union). */
static inline uint8_t *vdp_op_val(vdp_op *op) { return op->val.bytes; }

#endif
