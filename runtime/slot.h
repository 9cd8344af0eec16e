/*  slot.h — which hash slot a document key falls in.

    The key space of every collection is cut into `slots` hash slots (the
    cluster's `slots` setting, 1024 by default); each shard owns ranges of
    them (its `slots` setting). A key's slot is FNV-1a 64-bit over the
    collection name, one 0x1f byte (ASCII unit separator, so that ("ab","c")
    and ("a","bc") differ), and the id, modulo the slot count. The APIs use
    it to pick the owning shard; the shard itself trusts them for now and
    does not re-check ownership.
*/
#ifndef TIERS_SLOT_H
#define TIERS_SLOT_H

#include <stdint.h>

//  0 .. slots-1. `slots` must be > 0 (a program error otherwise).
uint32_t tiers_slot_of (const char *collection, const char *id, uint32_t slots);

#endif
