/*  slot.h — which hash slot a document key falls in.

    The key space of every collection is cut into `slots` hash slots (the
    cluster's `slots` setting, 1024 by default); each shard owns ranges of
    them (its `slots` setting). A key's slot is FNV-1a 64-bit over the
    collection name, one 0x1f byte (ASCII unit separator, so that ("ab","c")
    and ("a","bc") differ), and the id, modulo the slot count. The APIs use
    it to pick the owning shard; the shard itself trusts them for now and
    does not re-check ownership.

    Ranges of slots are written "0-511,768-1023" (a lone "5" is 5-5);
    tiers_slots_each is their one reader, for the map loader and the APIs
    alike.
*/
#ifndef TIERS_SLOT_H
#define TIERS_SLOT_H

#include <stddef.h>
#include <stdint.h>

//  0 .. slots-1. `slots` must be > 0 (a program error otherwise).
uint32_t tiers_slot_of (const char *collection, const char *id, uint32_t slots);

//  Reads slot ranges "a-b,c,d-e": they must ascend, not overlap, and lie
//  below `slots`. Only when the whole text is good, calls fn (low, high,
//  arg) for each range in order (fn may be NULL to only check), and stops
//  at the first non-zero value fn returns. Returns 0; -1 for bad text
//  (NULL included), and then, if why is not NULL, *why is a malloc'ed
//  reason for the caller to free ("ranges must ascend and not overlap");
//  or else the value that stopped fn, with *why NULL.
typedef int (tiers_slots_fn) (long long low, long long high, void *arg);
int tiers_slots_each (const char *ranges, long long slots, tiers_slots_fn *fn,
                      void *arg, char **why);

//  The slot table of a map's shards: `count` shards (the map's shard
//  entries in map order), shard i owning the ranges `ranges [i]` (NULL:
//  every slot, a map of one shard). Returns a malloc'ed table of `slots`
//  entries, table [slot] = the index of the shard that owns it (the
//  loader checked that the ranges cover every slot exactly once; a later
//  claim wins), or NULL when out of memory. Every tier that routes by key
//  (the APIs, the caches' followers) reads its table from here.
uint16_t *tiers_slot_owners (const char *const *ranges, size_t count, uint32_t slots);

#endif
