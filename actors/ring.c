/*  ring.c — rendezvous hashing of keys over the caches (see ring.h).

    A member's score for a key is mix (hash (key) ^ hash (name)): the key is
    hashed once per lookup, the names once when added, so an owner costs
    one pass over the key and one mix per member. FNV-1a alone mixes its
    high bits poorly; the finalizer (fmix64) makes every input bit move
    every output bit, which is what an even spread over few members needs.
*/
#include "ring.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET  0xcbf29ce484222325ULL
#define FNV_PRIME   0x100000001b3ULL

typedef struct {
    char *name;
    uint64_t hash;              //  of the name, mixed
    int64_t down_until;         //  down while now < this
} member_t;

struct _tiers_ring_t {
    member_t *members;
    size_t count;
};

static uint64_t
s_mix (uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t
tiers_ring_hash (const void *data, size_t size, uint64_t seed)
{
    const unsigned char *bytes = (const unsigned char *) data;
    uint64_t h = FNV_OFFSET ^ seed;
    for (size_t i = 0; i < size; i++) {
        h ^= bytes [i];
        h *= FNV_PRIME;
    }
    return s_mix (h);
}

tiers_ring_t *
tiers_ring_new (void)
{
    tiers_ring_t *self = (tiers_ring_t *) calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
tiers_ring_destroy (tiers_ring_t **self_p)
{
    assert (self_p);
    tiers_ring_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->members [i].name);
    free (self->members);
    free (self);
    *self_p = NULL;
}

size_t
tiers_ring_add (tiers_ring_t *self, const char *name)
{
    assert (self && name);
    self->members = (member_t *) realloc (self->members,
                                          (self->count + 1) * sizeof (member_t));
    assert (self->members);
    member_t *member = &self->members [self->count];
    member->name = strdup (name);
    assert (member->name);
    //  A different seed from the keys' so that a member named like a key
    //  does not score zero on it.
    member->hash = s_mix (tiers_ring_hash (name, strlen (name), 0x9e3779b97f4a7c15ULL));
    member->down_until = 0;
    return self->count++;
}

size_t
tiers_ring_count (const tiers_ring_t *self)
{
    assert (self);
    return self->count;
}

const char *
tiers_ring_name (const tiers_ring_t *self, size_t member)
{
    assert (self && member < self->count);
    return self->members [member].name;
}

int
tiers_ring_owner (const tiers_ring_t *self, const void *key, size_t size, int64_t now)
{
    assert (self);
    uint64_t hash = tiers_ring_hash (key, size, 0);
    int best = -1;
    uint64_t best_score = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (now < self->members [i].down_until)
            continue;
        uint64_t score = s_mix (hash ^ self->members [i].hash);
        if (best < 0 || score > best_score) {
            best = (int) i;
            best_score = score;
        }
    }
    return best;
}

void
tiers_ring_set_down (tiers_ring_t *self, size_t member, int64_t until)
{
    assert (self && member < self->count);
    self->members [member].down_until = until;
}

bool
tiers_ring_down (const tiers_ring_t *self, size_t member, int64_t now)
{
    assert (self && member < self->count);
    return now < self->members [member].down_until;
}
