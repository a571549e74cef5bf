/* emc.h - exact-match cache: full flow key -> composed action program.
 *
 * Called by pipeline.c on every packet before the classifier: a hit returns
 * the program a previous miss composed across the whole pipeline for exactly
 * this key.  Entries carry the datapath generation they were built under; a
 * lookup with a newer generation treats them as misses, so any flow/group/
 * meter/port change invalidates the whole cache at once without touching it.
 *
 * Generations only grow (dp->generation); an entry from an older generation
 * is stale.  4-way set-associative: the hash picks a set of 4 entries;
 * insertion replaces the same key, else an empty or stale way, else the
 * oldest one.
 * The cache owns the programs stored in it (malloc'd vdp_prog) and frees them
 * on replacement, vdp_emc_clear() and vdp_emc_free().
 *
 * No locking inside: the engine thread is the only user while it holds
 * dp->lock; vdp_emc_lookup() does not write to the cache.
 */
#ifndef VDP_EMC_H
#define VDP_EMC_H

#include <stdint.h>
#include "vdp_types.h"

typedef struct vdp_emc vdp_emc;

/* A cache of n_entries entries (rounded up to a power of two, at least 4),
 * NULL when out of memory. */
vdp_emc *vdp_emc_new(uint32_t n_entries);

/* Frees the cache and every program it holds. */
void vdp_emc_free(vdp_emc *emc);

/* The program cached for `key` (whose vdp_key_hash is `hash`) under
 * `generation`, or NULL on a miss or when the entry is from another
 * generation.  The program stays owned by the cache: use it before the next
 * insert/clear. */
vdp_prog *vdp_emc_lookup(vdp_emc *emc, const vdp_key *key, uint32_t hash, uint64_t generation);

/* Caches prog (malloc'd; the cache takes ownership) for key/hash under
 * generation.  Frees the program of the entry it replaces. */
void vdp_emc_insert(vdp_emc *emc, const vdp_key *key, uint32_t hash, uint64_t generation,
                    vdp_prog *prog);

/* Frees every cached program and empties the cache. */
void vdp_emc_clear(vdp_emc *emc);

/* Number of entries (after rounding) and number holding a program. */
uint32_t vdp_emc_capacity(const vdp_emc *emc);
uint32_t vdp_emc_used(const vdp_emc *emc);

#endif
