/* classifier.h - tuple-space-search classifier: the lookup structure of one
 * OpenFlow table.  Called by pipeline.c (flow-mod, flow-stats, per-packet
 * lookup on an exact-match-cache miss) and by the test/bench hooks in
 * classifier.pxi.
 *
 * Rules are grouped by mask into subtables; each subtable hashes the masked
 * value of its rules over only the key words its mask touches.  A lookup
 * masks the packet key once per subtable and probes that subtable's hash
 * table.  Subtables are kept sorted by the best rule they hold, so a lookup
 * stops as soon as no remaining subtable can beat the best match found.
 *
 * Ordering ("rank"): a rule ranks above another when its priority is higher,
 * or when priorities are equal and it was inserted earlier.  Ranks are unique,
 * so vdp_cls_lookup is deterministic: it returns the highest-priority matching
 * rule, and among equal priorities the one inserted first.
 *
 * Memory: rules are allocated by the caller (the pipeline embeds a
 * vdp_cls_rule as the FIRST member of its flow entry and casts back).  The
 * classifier itself adds, per rule, one 8-byte slot in its subtable's priority
 * heap and 24-48 bytes of hash-table slots per distinct masked value, plus one
 * subtable (~300 bytes with its smallest tables) per distinct mask.  Measured
 * (bench/test_micro_classifier.py): 100k rules over 16 masks take 250 B per
 * rule including the 184-byte rule itself and malloc overhead.
 *
 * Threading: none inside.  The pipeline serialises changes and lookups with
 * dp->lock (changes land between bursts).
 */
#ifndef VDP_CLASSIFIER_H
#define VDP_CLASSIFIER_H

#include <stdint.h>
#include "vdp_key.h"

struct vdp_cls_subtable;

/* One installed match.  Fields other than `value` and `priority` are private
 * to classifier.c; the caller sets value and priority before
 * vdp_cls_insert() and must not change them while the rule is inserted.
 * A rule that was never inserted must be zeroed (st == NULL) before it is
 * passed to vdp_cls_remove() or vdp_cls_rule_mask(). */
typedef struct vdp_cls_rule {
    vdp_key value;                  /* match value; vdp_cls_insert masks it
                                     * in place (value &= mask), so the caller
                                     * may pass it masked or not */
    struct vdp_cls_rule *next;      /* private: same masked value, lower rank */
    struct vdp_cls_subtable *st;    /* private: NULL while not inserted */
    int32_t  priority;              /* 0..65535 */
    uint32_t seq;                   /* private: insertion order (ties) */
    uint32_t hash;                  /* private: hash of value in st */
    uint32_t heap_idx;              /* private: slot in st's priority heap */
} vdp_cls_rule;                     /* 184 bytes */

typedef struct vdp_cls vdp_cls;

/* An empty classifier, NULL when out of memory. */
vdp_cls *vdp_cls_new(void);

/* Frees the classifier's own memory.  Does NOT free the rules (they belong
 * to the caller); rules still inserted are simply forgotten. */
void vdp_cls_free(vdp_cls *cls);

/* Inserts `rule` (value and priority set by the caller) under `mask`.
 * rule->value is masked in place.  The caller must not insert a rule that is
 * already inserted; inserting a second rule with the same (value, mask,
 * priority) is allowed (it ranks below the first) but OpenFlow callers should
 * use vdp_cls_find_exact() and replace instead.  Returns 0, or -1 when out of
 * memory (the classifier is then unchanged and rule is not inserted; its
 * value is masked either way). */
int vdp_cls_insert(vdp_cls *cls, vdp_cls_rule *rule, const vdp_key *mask);

/* Removes an inserted rule (no-op when rule is not inserted).
 * Never fails (after mass deletions it reallocates smaller tables; if that
 * allocation fails the big ones are kept).  The rule's memory stays the
 * caller's.  Removing the last rule of a subtable frees the subtable, so a
 * later vdp_cls_insert() of the same rule can fail with ENOMEM: use
 * vdp_cls_replace() to swap an entry for an identical one. */
void vdp_cls_remove(vdp_cls *cls, vdp_cls_rule *rule);

/* Puts `rule` in the place of the inserted rule `old` (same mask, value and
 * priority: they are copied from old; old keeps its own copy) and leaves old
 * not inserted.  The new rule also inherits old's insertion order, so ties
 * resolve as before.  Never fails, never allocates: this is how an OpenFlow
 * add that replaces an identical flow swaps entries without an ENOMEM window
 * (remove + insert can fail when old was alone in its subtable). */
void vdp_cls_replace(vdp_cls *cls, vdp_cls_rule *old, vdp_cls_rule *rule);

/* The best-ranked rule whose (key & mask) == value, or NULL. */
vdp_cls_rule *vdp_cls_lookup(const vdp_cls *cls, const vdp_key *key);

/* The rule with exactly this mask, this (value & mask) and this priority
 * (the earliest inserted if there are several), or NULL.  `value` need not be
 * masked.  This is OpenFlow's "strict" match. */
vdp_cls_rule *vdp_cls_find_exact(const vdp_cls *cls, const vdp_key *value,
                                 const vdp_key *mask, int priority);

/* The mask the rule was inserted with, NULL when it is not inserted. */
const vdp_key *vdp_cls_rule_mask(const vdp_cls_rule *rule);

/* Number of inserted rules. */
uint32_t vdp_cls_count(const vdp_cls *cls);

/* Number of subtables (distinct masks) in use. */
uint32_t vdp_cls_n_subtables(const vdp_cls *cls);

/* Calls cb(rule, arg) for every inserted rule, in no particular order;
 * stops early and returns cb's value when it is nonzero, else returns 0.
 * cb must NOT insert or remove rules.  To delete a set of rules, collect the
 * pointers in the callback (vdp_cls_count() bounds how many) and call
 * vdp_cls_remove() on each after vdp_cls_foreach() returns. */
int vdp_cls_foreach(vdp_cls *cls, int (*cb)(vdp_cls_rule *, void *), void *arg);

/* Like vdp_cls_foreach(), but visits only the rules that OpenFlow's
 * non-strict flow-mod/stats semantics select for the filter (fvalue, fmask):
 * rules whose mask covers fmask (rule_mask & fmask == fmask) and whose value
 * agrees with fvalue on fmask.  Subtables whose mask cannot cover fmask are
 * skipped whole.  fmask == all-zero visits every rule. */
int vdp_cls_foreach_loose(vdp_cls *cls, const vdp_key *fvalue, const vdp_key *fmask,
                          int (*cb)(vdp_cls_rule *, void *), void *arg);

/* Test hook: sets the next insertion sequence number, so tests can make the
 * 32-bit counter wrap (the classifier renumbers its rules when it does). */
void vdp_cls_set_next_seq(vdp_cls *cls, uint32_t seq);

#endif
