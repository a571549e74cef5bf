/* emc.c - exact-match cache (see emc.h).
 *
 * Layout: a 32-bit hash array (4 hashes of a set share 16 bytes, so the hit
 * path scans one cache line) and a parallel array of 192-byte, 64-byte
 * aligned entries read only when a hash matches.  The hit path is: 4 hash
 * compares, one generation compare, one 19-word key compare.
 */
#include <stdlib.h>
#include <string.h>
#include "emc.h"

#define EMC_WAYS 4

typedef struct vdp_emc_entry {
    uint64_t  generation;
    vdp_prog *prog;          /* NULL = empty way */
    vdp_key   key;
    uint32_t  stamp;         /* insertion clock, for oldest-first replacement */
} __attribute__((aligned(64))) vdp_emc_entry;

struct vdp_emc {
    uint32_t       set_mask;  /* n_sets - 1 */
    uint32_t       clock;
    uint32_t      *hashes;    /* [n_sets * EMC_WAYS] */
    vdp_emc_entry *e;         /* [n_sets * EMC_WAYS] */
};

static inline int key_equal(const vdp_key *a, const vdp_key *b)
{
    uint64_t diff = 0;
    for (int i = 0; i < VDP_KEY_WORDS; i++)
        diff |= a->w[i] ^ b->w[i];
    return diff == 0;
}

vdp_emc *vdp_emc_new(uint32_t n_entries)
{
    uint32_t n = EMC_WAYS;
    while (n < n_entries && n < (1u << 30))
        n <<= 1;
    vdp_emc *emc = calloc(1, sizeof *emc);
    if (!emc)
        return NULL;
    emc->hashes = aligned_alloc(64, ((size_t)n * sizeof(uint32_t) + 63) & ~(size_t)63);
    emc->e = aligned_alloc(64, (size_t)n * sizeof(vdp_emc_entry));
    if (!emc->hashes || !emc->e) {
        free(emc->hashes);
        free(emc->e);
        free(emc);
        return NULL;
    }
    memset(emc->hashes, 0, (size_t)n * sizeof(uint32_t));
    memset(emc->e, 0, (size_t)n * sizeof(vdp_emc_entry));
    emc->set_mask = n / EMC_WAYS - 1;
    return emc;
}

void vdp_emc_clear(vdp_emc *emc)
{
    uint32_t n = (emc->set_mask + 1) * EMC_WAYS;
    for (uint32_t i = 0; i < n; i++) {
        free(emc->e[i].prog);
        emc->e[i].prog = NULL;
        emc->hashes[i] = 0;
    }
}

void vdp_emc_free(vdp_emc *emc)
{
    if (!emc)
        return;
    vdp_emc_clear(emc);
    free(emc->hashes);
    free(emc->e);
    free(emc);
}

vdp_prog *vdp_emc_lookup(vdp_emc *emc, const vdp_key *key, uint32_t hash, uint64_t generation)
{
    uint32_t base = (hash & emc->set_mask) * EMC_WAYS;
    const uint32_t *hs = &emc->hashes[base];
    for (int w = 0; w < EMC_WAYS; w++) {
        if (hs[w] != hash)
            continue;
        const vdp_emc_entry *e = &emc->e[base + w];
        if (e->generation == generation && e->prog && key_equal(&e->key, key))
            return e->prog;
    }
    return NULL;
}

void vdp_emc_insert(vdp_emc *emc, const vdp_key *key, uint32_t hash, uint64_t generation,
                    vdp_prog *prog)
{
    uint32_t base = (hash & emc->set_mask) * EMC_WAYS;
    vdp_emc_entry *set = &emc->e[base];
    int victim = -1;

    /* Same key (any generation): replace in place. */
    for (int w = 0; w < EMC_WAYS; w++) {
        if (emc->hashes[base + w] == hash && set[w].prog && key_equal(&set[w].key, key)) {
            victim = w;
            break;
        }
    }
    /* Else an empty or stale (older generation) way, else the oldest. */
    if (victim < 0) {
        uint32_t oldest_age = 0;
        for (int w = 0; w < EMC_WAYS; w++) {
            if (!set[w].prog || set[w].generation < generation) {
                victim = w;
                break;
            }
            uint32_t age = emc->clock - set[w].stamp;   /* wrap-safe */
            if (victim < 0 || age > oldest_age) {
                victim = w;
                oldest_age = age;
            }
        }
    }

    vdp_emc_entry *e = &set[victim];
    if (e->prog != prog)
        free(e->prog);
    e->prog = prog;
    e->generation = generation;
    e->key = *key;
    e->stamp = emc->clock++;
    emc->hashes[base + victim] = hash;
}

uint32_t vdp_emc_capacity(const vdp_emc *emc)
{
    return (emc->set_mask + 1) * EMC_WAYS;
}

uint32_t vdp_emc_used(const vdp_emc *emc)
{
    uint32_t n = vdp_emc_capacity(emc), used = 0;
    for (uint32_t i = 0; i < n; i++)
        used += emc->e[i].prog != NULL;
    return used;
}
