/*  replica.h — the replica tier: a read copy of one shard's file.

    A replica is an actor (see storage/replica.c for its design and
    doc/replication.md for its protocol); the rest of tiers reaches it only
    through messages (get, list and STATUS on its `requests` port) and
    starts it through its kind descriptor.
*/
#ifndef TIERS_REPLICA_H
#define TIERS_REPLICA_H

#include "kind.h"

extern const tiers_kind_t tiers_replica_kind;

#endif
