/* idmap.c - id -> pointer map for the group and meter tables (see idmap.h). */
#include <stdlib.h>
#include <string.h>
#include "idmap.h"

struct vdp_idmap_node {
    uint32_t id;
    void *val;
    vdp_idmap_node *next;
};

static inline uint32_t id_hash(uint32_t id)
{
    uint64_t h = id;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

int vdp_idmap_init(vdp_idmap *m)
{
    m->mask = 63;
    m->count = 0;
    m->heads = calloc(m->mask + 1, sizeof *m->heads);
    return m->heads ? 0 : -1;
}

void vdp_idmap_destroy(vdp_idmap *m, void (*free_val)(void *))
{
    if (!m->heads)
        return;
    for (uint32_t i = 0; i <= m->mask; i++) {
        vdp_idmap_node *n = m->heads[i];
        while (n) {
            vdp_idmap_node *next = n->next;
            if (free_val)
                free_val(n->val);
            free(n);
            n = next;
        }
    }
    free(m->heads);
    m->heads = NULL;
    m->count = 0;
}

void *vdp_idmap_get(const vdp_idmap *m, uint32_t id)
{
    for (vdp_idmap_node *n = m->heads[id_hash(id) & m->mask]; n; n = n->next)
        if (n->id == id)
            return n->val;
    return NULL;
}

static void grow(vdp_idmap *m)
{
    uint32_t nmask = m->mask * 2 + 1;
    vdp_idmap_node **nh = calloc(nmask + 1, sizeof *nh);
    if (!nh)
        return;                 /* keep the old heads: longer chains, still right */
    for (uint32_t i = 0; i <= m->mask; i++) {
        vdp_idmap_node *n = m->heads[i];
        while (n) {
            vdp_idmap_node *next = n->next;
            uint32_t h = id_hash(n->id) & nmask;
            n->next = nh[h];
            nh[h] = n;
            n = next;
        }
    }
    free(m->heads);
    m->heads = nh;
    m->mask = nmask;
}

int vdp_idmap_put(vdp_idmap *m, uint32_t id, void *val)
{
    if (vdp_idmap_get(m, id))
        return -1;
    vdp_idmap_node *n = malloc(sizeof *n);
    if (!n)
        return -1;
    if (m->count >= (size_t)(m->mask + 1) * 2)
        grow(m);
    uint32_t h = id_hash(id) & m->mask;
    n->id = id;
    n->val = val;
    n->next = m->heads[h];
    m->heads[h] = n;
    m->count++;
    return 0;
}

void *vdp_idmap_del(vdp_idmap *m, uint32_t id)
{
    for (vdp_idmap_node **pp = &m->heads[id_hash(id) & m->mask]; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            vdp_idmap_node *n = *pp;
            void *val = n->val;
            *pp = n->next;
            free(n);
            m->count--;
            return val;
        }
    }
    return NULL;
}

static int cmp_node_id(const void *a, const void *b)
{
    uint32_t x = (*(vdp_idmap_node *const *)a)->id, y = (*(vdp_idmap_node *const *)b)->id;
    return x < y ? -1 : x > y;
}

size_t vdp_idmap_values(const vdp_idmap *m, void **out, size_t max)
{
    size_t n = 0;
    vdp_idmap_node **all = malloc((m->count ? m->count : 1) * sizeof *all);
    if (!all)
        return 0;
    for (uint32_t i = 0; i <= m->mask; i++)
        for (vdp_idmap_node *x = m->heads[i]; x; x = x->next)
            all[n++] = x;
    qsort(all, n, sizeof *all, cmp_node_id);
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        out[i] = all[i]->val;
    free(all);
    return n;
}

void vdp_idmap_foreach(const vdp_idmap *m, void (*cb)(void *val, void *ctx), void *ctx)
{
    for (uint32_t i = 0; i <= m->mask; i++)
        for (vdp_idmap_node *x = m->heads[i]; x; x = x->next)
            cb(x->val, ctx);
}
