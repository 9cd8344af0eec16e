/*  slot.c — FNV-1a 64-bit key hashing into slots (see slot.h).

    FNV-1a because it is tiny, has no seed (every process of every node
    must agree forever: a slot is a storage address) and mixes short ASCII
    keys well enough once reduced modulo a slot count.
*/
#include "slot.h"
#include <assert.h>

#define FNV_OFFSET  0xcbf29ce484222325ULL
#define FNV_PRIME   0x100000001b3ULL

static uint64_t
s_fnv1a (uint64_t hash, const char *text)
{
    for (const unsigned char *at = (const unsigned char *) text; *at; at++) {
        hash ^= *at;
        hash *= FNV_PRIME;
    }
    return hash;
}

uint32_t
tiers_slot_of (const char *collection, const char *id, uint32_t slots)
{
    assert (collection && id);
    assert (slots > 0);
    uint64_t hash = s_fnv1a (FNV_OFFSET, collection);
    hash ^= 0x1f;
    hash *= FNV_PRIME;
    hash = s_fnv1a (hash, id);
    return (uint32_t) (hash % slots);
}
