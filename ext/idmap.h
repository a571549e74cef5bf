/* idmap.h - a map from 32-bit ids to pointers, for the control plane's id
 * tables (groups, meters).  Chained, grows by doubling, lists in id order.
 * Used by group.c and meter.c; lookups happen at flow-mod and miss-
 * translation time, never per cached packet. */
#ifndef VDP_IDMAP_H
#define VDP_IDMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct vdp_idmap_node vdp_idmap_node;
typedef struct vdp_idmap {
    vdp_idmap_node **heads;
    uint32_t mask;            /* n heads - 1 (power of two) */
    size_t   count;
} vdp_idmap;

int    vdp_idmap_init(vdp_idmap *m);                       /* 0, -1 ENOMEM */
/* Frees the map's nodes; calls free_val on each value when not NULL. */
void   vdp_idmap_destroy(vdp_idmap *m, void (*free_val)(void *));
void  *vdp_idmap_get(const vdp_idmap *m, uint32_t id);
int    vdp_idmap_put(vdp_idmap *m, uint32_t id, void *val); /* -1: id exists or ENOMEM */
void  *vdp_idmap_del(vdp_idmap *m, uint32_t id);            /* the removed value or NULL */
/* Up to max values in ascending id order; returns how many. */
size_t vdp_idmap_values(const vdp_idmap *m, void **out, size_t max);
void   vdp_idmap_foreach(const vdp_idmap *m, void (*cb)(void *val, void *ctx), void *ctx);
#endif
