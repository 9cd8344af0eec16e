/*  cachestore.h — the memory of a read cache: documents by key, under a cap.

    One store is owned by one thread (a cache actor, or a gateway instance's
    edge cache); nothing here locks. It maps a key — a document's
    (collection, id), written "COLLECTION/ID" — to what a GET of it answers:
    the body and its tag (ETag) and version, or a NEGATIVE entry (the
    document does not exist, as of a version).

    The bytes it holds — keys, values, tags and the per-entry overhead,
    counted by what is really allocated — never exceed `cap_bytes`: a fill
    that does not fit evicts (cachestore.c says which policy, and
    doc/cache.md why), and a value larger than the cap allows is refused.

    LEASES (memcache at Facebook): a lookup that misses hands out a lease,
    a 64-bit token, unless the key already has one that is live; only the
    holder of the live lease may fill the key. An invalidation of the key
    (a committed write, from the commit stream) or a flush voids the lease,
    so a fill that raced a write is refused: the store never holds a
    version older than an invalidation it has seen. A lease lasts
    `lease_ms`; after that the next miss gets a new one.

    Key states (for one key):
        ABSENT      nothing held              --miss--> LEASED
        LEASED      a live lease, no entry    --fill with it--> CACHED
                                              --invalidate/flush/expiry--> ABSENT
        CACHED      an entry (maybe negative) --invalidate newer/flush/
                                                TTL/eviction--> ABSENT
    Invariants: bytes_used <= cap_bytes; an entry's version is >= the
    highest version any invalidation of its key carried while the store
    held the key (an invalidation removes older entries and voids leases).
*/
#ifndef TIERS_CACHESTORE_H
#define TIERS_CACHESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _tiers_cachestore_t tiers_cachestore_t;

//  The smallest cap a store takes: its own struct and slot array count too.
#define TIERS_CACHESTORE_CAP_MIN 4096

typedef struct {
    size_t cap_bytes;           //  everything held, at most (>= TIERS_CACHESTORE_CAP_MIN)
    int64_t ttl_ms;             //  an entry's life (0: until invalidated or evicted)
    int64_t negative_ttl_ms;    //  a negative entry's life (> 0)
    int64_t lease_ms;           //  how long a lease may be filled (> 0)
} tiers_cachestore_config_t;

//  What a lookup found.
typedef enum {
    TIERS_CACHE_HIT,            //  *entry is set
    TIERS_CACHE_MISS,           //  nothing held: *lease is yours, fill it
    TIERS_CACHE_LEASED          //  nothing held, another holds the lease:
                                //  wait for its fill, or read storage yourself
} tiers_cache_lookup_t;

//  A held entry, valid until the next call that changes the store.
typedef struct {
    bool negative;              //  the document does not exist (404)
    int64_t version;            //  the document's version; for a negative
                                //  entry, the position it was absent at
    const char *tag;            //  its ETag value (without quotes); "" when negative
    const void *value;          //  the body; NULL when negative
    size_t size;
} tiers_cache_entry_t;

//  What the store counts (the owner exports them as metrics).
typedef struct {
    uint64_t hits, misses, leased;  //  lookups, by what they found
    uint64_t fills;                 //  fills stored
    uint64_t refused;               //  fills refused (no/void/expired lease, stale)
    uint64_t invalidations;         //  invalidations that removed or voided something
    uint64_t evictions;             //  entries evicted to make room
    uint64_t expirations;           //  entries dropped at their TTL
    size_t entries;                 //  held now
    size_t bytes;                   //  held now (<= cap)
    size_t cap;
} tiers_cachestore_stats_t;

//  Why a fill was refused.
typedef enum {
    TIERS_FILL_STORED = 0,
    TIERS_FILL_NO_LEASE,        //  the key has no live lease, or another one
    TIERS_FILL_STALE,           //  older than an invalidation the store saw
    TIERS_FILL_TOO_LARGE        //  the entry alone would exceed the cap
} tiers_fill_t;

//  NULL when the config is out of range (a cap below the minimum, ttl_ms < 0,
//  negative_ttl_ms or lease_ms <= 0) or memory ran out.
tiers_cachestore_t *tiers_cachestore_new (const tiers_cachestore_config_t *config);
void tiers_cachestore_destroy (tiers_cachestore_t **self_p);

//  Looks `key` up at monotonic time `now_ms`. HIT: *entry. MISS: *lease is
//  a new lease (never 0). LEASED: *lease is 0.
tiers_cache_lookup_t tiers_cachestore_get (tiers_cachestore_t *self, const char *key,
                                           int64_t now_ms, tiers_cache_entry_t *entry,
                                           uint64_t *lease);

//  Fills `key` under `lease` with the document (value, tag, version), or a
//  negative entry when value is NULL (version = the position it was found
//  absent at). The lease ends either way.
tiers_fill_t tiers_cachestore_fill (tiers_cachestore_t *self, const char *key,
                                    uint64_t lease, const void *value, size_t size,
                                    const char *tag, int64_t version, int64_t now_ms);

//  The holder of `lease` gives it back without a fill (storage answered
//  nothing it can fill with): the next miss gets a new lease at once
//  instead of after lease_ms. False when the key has no such live lease.
bool tiers_cachestore_release (tiers_cachestore_t *self, const char *key, uint64_t lease,
                               int64_t now_ms);

//  The store's clock moves on to `now_ms` (monotonic): invalidations take
//  no time of their own, and a floor lasts lease_ms from the last time the
//  store was given. An owner that invalidates calls this first.
void tiers_cachestore_time (tiers_cachestore_t *self, int64_t now_ms);

//  A committed write of `key` at `version` (a delete too): an entry older
//  than it goes, a lease of the key is voided, and a later fill older than
//  `version` is refused while the store remembers it: for lease_ms from the
//  latest now_ms the store was given (an invalidation carries no time), and
//  as long as any lease handed out meanwhile lasts. Returns true when
//  something was removed or voided.
bool tiers_cachestore_invalidate (tiers_cachestore_t *self, const char *key,
                                  int64_t version);

//  Forget entries and void leases: what the stream could not tell (a gap,
//  a reset). `match` NULL: all; else only the keys it says belong (one
//  shard's).
typedef bool (tiers_cachestore_match_fn) (const char *key, void *arg);
void tiers_cachestore_flush (tiers_cachestore_t *self, tiers_cachestore_match_fn *match,
                             void *arg);

void tiers_cachestore_stats (tiers_cachestore_t *self, tiers_cachestore_stats_t *stats);

#endif
