/*  slot.c — FNV-1a 64-bit key hashing into slots (see slot.h).

    FNV-1a because it is tiny, has no seed (every process of every node
    must agree forever: a slot is a storage address) and mixes short ASCII
    keys well enough once reduced modulo a slot count.

    Slot ranges are read in two passes over the text: the first checks all
    of it, the second hands the ranges out, so that a caller never acts on
    the first half of a text whose second half is wrong.
*/
#include "slot.h"
#include "parse.h"
#include <czmq.h>
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

//  One pass over "a-b,c,d-e"; calls fn unless it is NULL. Returns 0, -1
//  with *why set to a reason to free, or the first non-zero value of fn.
static int
s_slots_walk (const char *ranges, long long slots, tiers_slots_fn *fn,
              void *arg, char **why)
{
    const char *cursor = ranges;
    long long previous = -1;
    while (true) {
        long long low, high;
        const char *rest;
        if (tiers_parse_unsigned (cursor, &low, &rest))
            break;
        high = low;
        if (*rest == '-' && tiers_parse_unsigned (rest + 1, &high, &rest))
            break;
        if (high < low || low <= previous) {
            *why = strdup ("ranges must ascend and not overlap");
            return -1;
        }
        if (high >= slots) {
            *why = zsys_sprintf ("slot %lld is beyond the cluster's %lld slots "
                                 "(0-%lld)", high, slots, slots - 1);
            return -1;
        }
        if (fn) {
            int rc = fn (low, high, arg);
            if (rc)
                return rc;
        }
        previous = high;
        if (*rest == 0)
            return 0;
        if (*rest != ',')
            break;
        cursor = rest + 1;
    }
    *why = strdup ("expected slot ranges like 0-511,768-1023");
    return -1;
}

int
tiers_slots_each (const char *ranges, long long slots, tiers_slots_fn *fn,
                  void *arg, char **why)
{
    char *reason = NULL;
    int rc = s_slots_walk (ranges, slots, NULL, NULL, &reason);
    if (rc == 0 && fn)
        rc = s_slots_walk (ranges, slots, fn, arg, &reason);
    if (why)
        *why = reason;
    else
        free (reason);
    return rc;
}

//  A shard's slot ranges into the owner table (tiers_slots_each callback).
typedef struct {
    uint16_t *owner;
    uint16_t index;
} slot_claim_t;

static int
s_slot_claim (long long low, long long high, void *arg)
{
    slot_claim_t *claim = (slot_claim_t *) arg;
    for (long long s = low; s <= high; s++)
        claim->owner [s] = claim->index;
    return 0;
}

uint16_t *
tiers_slot_owners (const char *const *ranges, size_t count, uint32_t slots)
{
    assert (slots > 0 && count <= UINT16_MAX);
    uint16_t *owner = (uint16_t *) calloc (slots, sizeof (uint16_t));
    for (size_t index = 0; owner && index < count; index++) {
        if (!ranges [index]) {
            for (uint32_t s = 0; s < slots; s++)
                owner [s] = (uint16_t) index;
            continue;
        }
        slot_claim_t claim = { owner, (uint16_t) index };
        tiers_slots_each (ranges [index], slots, s_slot_claim, &claim, NULL);
    }
    return owner;
}
