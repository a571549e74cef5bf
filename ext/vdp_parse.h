/* vdp_parse.h - frame parser (parse.c) and key helpers (flowkey.c).
 * Called by pipeline.c for every received frame and by the test hooks. */
#ifndef VDP_PARSE_H
#define VDP_PARSE_H
#include "vdp_types.h"

/* Parse pkt->data[0..len) into key and the pkt header offsets.  Never reads
 * past len.  key->in_port/in_phy_port come from pkt->in_port; metadata and
 * tunnel_id are 0.  Returns 0, or -1 when the frame is malformed (shorter than
 * an Ethernet header, or a header that claims more bytes than the frame
 * has); a malformed frame still gets every field parsed up to the bad
 * header, and pkt->malformed is set.  Frames with unknown ethertypes or L4
 * protocols are NOT malformed: they simply have fewer fields present. */
int vdp_parse(vdp_pkt *pkt, vdp_key *key);

/* Re-parse from the current bytes keeping metadata/in_port (after pop_mpls,
 * pop_pbb or push/pop that change what the pipeline can see). */
int vdp_reparse(vdp_pkt *pkt, vdp_key *key);

/* Hash of the whole key (EMC), and of key & mask over the listed words. */
uint32_t vdp_key_hash(const vdp_key *k, uint32_t basis);
uint32_t vdp_key_hash_words(const vdp_key *k, const vdp_key *mask,
                            const uint8_t *words, int nwords, uint32_t basis);
#endif
