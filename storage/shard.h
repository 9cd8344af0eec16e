/*  shard.h — the shard tier: SQLite primary for a range of hash slots.

    A shard is an actor (see storage/shard.c for its design); the rest of
    tiers reaches it only through messages (doc/protocol.md, "read-api /
    write-api -> shard") and starts it through its kind descriptor.
*/
#ifndef TIERS_SHARD_H
#define TIERS_SHARD_H

#include "kind.h"

extern const tiers_kind_t tiers_shard_kind;

#endif
