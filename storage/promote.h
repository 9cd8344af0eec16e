/*  promote.h — `tiers promote`: a replica becomes the primary of its shard
    (storage/promote.c, doc/replication.md).
*/
#ifndef TIERS_PROMOTE_H
#define TIERS_PROMOTE_H

#include <stdbool.h>
#include <stdio.h>
#include "map.h"

//  Promotes the replica `name` of `map` (its keys already set, --keys).
//  Says what it finds and does on `out`, problems on stderr. Returns the
//  exit code: 0 done (or it was the primary already), 1 not done, 2 usage.
int tiers_promote_run (tiers_map_t *map, const char *name, bool force, FILE *out);

#endif
