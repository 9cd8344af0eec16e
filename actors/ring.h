/*  ring.h — which cache owns a key: rendezvous hashing over named members.

    Several cache entries of a map form one ring. Each key goes to the
    member with the highest score hash (member, key) — rendezvous, or
    highest-random-weight, hashing (Thaler and Ravishankar, 1996). A key's
    owner changes only when its owner leaves or when a new member scores
    higher on it: adding a member to n moves about 1/(n+1) of the keys (to
    the new one), taking one out moves only the keys it owned, each to its
    own next highest. No virtual nodes: every member weighs the same, and
    the spread is as even as the hash.

    A member may be marked DOWN until a time (a cache that did not answer):
    while it is, its keys go to their next highest member, and come back
    when it is up again. The ring belongs to one thread; nothing locks.
*/
#ifndef TIERS_RING_H
#define TIERS_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _tiers_ring_t tiers_ring_t;

tiers_ring_t *tiers_ring_new (void);
void tiers_ring_destroy (tiers_ring_t **self_p);

//  Adds a member by name (a cache entry's map name); returns its index,
//  0 for the first, in the order added.
size_t tiers_ring_add (tiers_ring_t *self, const char *name);
size_t tiers_ring_count (const tiers_ring_t *self);
const char *tiers_ring_name (const tiers_ring_t *self, size_t member);

//  The member scoring highest on the key among those not down at `now`
//  (any clock, the one down marks use); -1 when every member is down or
//  there is none.
int tiers_ring_owner (const tiers_ring_t *self, const void *key, size_t size,
                      int64_t now);
//  The member is down until `until` (on the same clock).
void tiers_ring_set_down (tiers_ring_t *self, size_t member, int64_t until);
bool tiers_ring_down (const tiers_ring_t *self, size_t member, int64_t now);

//  The hash behind the scores: 64-bit FNV-1a of the bytes from `seed`,
//  finished with a strong mix (murmur3's fmix64). Exposed for tests.
uint64_t tiers_ring_hash (const void *data, size_t size, uint64_t seed);

#endif
