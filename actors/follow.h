/*  follow.h — following the shards' commit streams for invalidations.

    A cache (the cache actor, a gateway's edge cache) must hear of every
    committed write to a key it may hold. It follows the commit stream of
    each shard (storage/stream.h) as a KEYS follower: it holds no copy of
    the data, so it never takes a snapshot; the primary sends it, for each
    change, the keys the change wrote and their versions (doc/protocol.md,
    "Keys followers"), not the changeset. This module is that follower:
    one DEALER to each shard's `stream` port, in the owner's reactor.

    What the owner learns, per shard of the map (the follower's shard
    index: the map's shard entries in map order, the same slot table as
    the APIs):
        on_key      a committed write of COLLECTION/ID at a version (a
                    delete too): invalidate it
        on_reset    the follower could not tell what changed (it started,
                    its position left the primary's log, the primary
                    restarted as another incarnation, a gap): drop
                    everything held of that shard
    and it may ask whether a shard is LIVE (its stream was heard from
    within `silent_ms`, had delivered everything the primary said it had
    within `silent_ms` — a follower the primary feeds slower than it
    commits falls behind its heartbeats — and is not fenced): entries of a
    shard that is not live must not be served, for an invalidation may be
    missing or late.

    A shard stream's states:
        DOWN        no answer to `follow` yet (asked again every second)
                                    --follow 200--> LIVE (on_reset first
                                      when the answer says `reset`)
        LIVE        changes applied in order; position = the last change's
                    sequence         --silence, fenced--> STALE
                                     --gap, 409, incarnation--> DOWN (on_reset)
        STALE       heard nothing for silent_ms, or the copy says it was
                    fenced           --heard again, not fenced--> LIVE
                                     (a heartbeat; its position is kept:
                                      a gap after it is caught by `previous`)
    Invariant: every change between the position at the last on_reset and
    `position` was given to on_key, in order (a change's `previous` is the
    position, or the stream is followed again from scratch).
*/
#ifndef TIERS_FOLLOW_H
#define TIERS_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kind.h"
#include "reactor.h"

typedef struct _tiers_follow_t tiers_follow_t;

typedef void (tiers_follow_key_fn) (void *arg, size_t shard, const char *key,
                                    int64_t version);
typedef void (tiers_follow_reset_fn) (void *arg, size_t shard);

typedef struct {
    const char *name;               //  the follower's name (the primary logs it)
    const tiers_map_t *map;
    const tiers_entry_t *entry;     //  the owner: its link `link` reaches
    const char *link;               //  the shards' `stream` ports ("streams")
    int64_t silent_ms;              //  a stream silent this long is STALE (> 0)
    tiers_follow_key_fn *on_key;
    tiers_follow_reset_fn *on_reset;
    void *arg;                      //  of both
} tiers_follow_config_t;

//  NULL + *why (malloc'ed) when a socket cannot be made. A shard of the map
//  that binds no stream port is never live.
tiers_follow_t *tiers_follow_new (const tiers_follow_config_t *config, char **why);
//  After the owner's reactor stopped running (it may be destroyed first).
void tiers_follow_destroy (tiers_follow_t **self_p);
//  Its sockets and its timer into the owner's reactor.
void tiers_follow_attach (tiers_follow_t *self, tiers_reactor_t *reactor);

//  The map's shards: how many, the one that owns a key's slot, a name.
size_t tiers_follow_shard_count (tiers_follow_t *self);
size_t tiers_follow_shard_of (tiers_follow_t *self, const char *collection,
                              const char *id);
const char *tiers_follow_shard_name (tiers_follow_t *self, size_t shard);
//  The shard of a cache key "COLLECTION/ID"; the shard count (no shard)
//  for a key that is not one.
size_t tiers_follow_shard_of_key (tiers_follow_t *self, const char *key);
//  For tiers_cachestore_flush (a tiers_cachestore_match_fn): is the key
//  one of the shard's? A key that names no shard is dropped too.
typedef struct {
    tiers_follow_t *follow;
    size_t shard;
} tiers_follow_match_t;
bool tiers_follow_match (const char *key, void *match);

//  LIVE now (monotonic clock)?
bool tiers_follow_live (tiers_follow_t *self, size_t shard);
//  Every invalidation up to this sequence of the shard's incarnation
//  (*incarnation, when not NULL) was given to on_key: a cached entry of
//  the shard is at least as new as any write up to it. -1 when DOWN.
int64_t tiers_follow_position (tiers_follow_t *self, size_t shard,
                               const char **incarnation);

//  The keys body of a change from `previous` to `sequence`: lines
//  "COLLECTION/ID VERSION\n", names by runtime/names.h, each version in
//  (previous, sequence]. Checks all of it; calls fn (when not NULL) for
//  each key in order. Returns the number of keys, or -1 with *why when
//  the body is malformed (fn may have been called for lines before the
//  bad one: check with fn NULL first). The follower's one decoder of
//  network bytes beyond the wire codec (t/fuzz/keys_fuzz.c).
typedef void (tiers_follow_each_fn) (void *arg, const char *key, int64_t version);
long tiers_follow_keys_parse (const char *body, size_t size, int64_t previous,
                              int64_t sequence, tiers_follow_each_fn *fn, void *arg,
                              const char **why);

//  The follower's state as JSON members for a STATUS ("streams":[...]).
//  Caller frees.
char *tiers_follow_status (tiers_follow_t *self);

#endif
