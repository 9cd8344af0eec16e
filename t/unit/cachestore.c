/*  t/unit/cachestore.c — the read cache's store (actors/cachestore.c):
    hits, misses and leases, fills refused (no lease, a wrong or expired
    one, stale, too large), invalidation and its floors, negative entries,
    TTL, SIEVE eviction under the cap with a random workload that recounts
    the bytes after every call, flush, and the exact stats.

    The .c is included (as h2o's tests do) so that s_audit can walk the
    table and the queues and recount every byte the store says it holds.
*/
#include "actors/cachestore.c"
#include "t/tap.h"

#define streq(a, b) (strcmp ((a), (b)) == 0)

//  Recounts what the store holds and checks its structure: every record
//  findable by its key, the queues as long as the table says, the bytes
//  the sum of the charges and within the cap. Returns NULL or what is wrong.
static const char *
s_audit (tiers_cachestore_t *self)
{
    size_t bytes = s_charge (sizeof (tiers_cachestore_t)) + self->slots_charge;
    size_t records = 0, held = 0;
    for (size_t i = 0; i < self->capacity; i++) {
        record_t *record = self->slots [i].record;
        if (!record)
            continue;
        records++;
        held += record->held;
        bytes += record->charge;
        if (record->charge != s_record_charge (record->key_len, record->tag_len, record->size))
            return "a record's charge is not what its sizes take";
        if (s_find (self, record->data, record->key_len, record->hash) != record)
            return "a record is not found by its key";
    }
    size_t queued = 0, pending = 0;
    bool hand_seen = self->hand == NULL;
    for (record_t *r = self->entries.head; r; r = r->older) {
        queued++;
        hand_seen |= r == self->hand;
        if (!r->held)
            return "a pending record on the entries' queue";
    }
    for (record_t *r = self->pending.head; r; r = r->older) {
        pending++;
        if (r->held)
            return "an entry on the pending queue";
    }
    if (!hand_seen)
        return "the hand is not on the queue";
    if (records != self->count || queued != held || queued + pending != records)
        return "the queues and the table disagree";
    if (held != self->stats.entries)
        return "stats.entries is not the number of entries";
    if (bytes != self->bytes)
        return "the bytes counted are not the sum of the charges";
    if (self->bytes > self->cap)
        return "over the cap";
    if (self->count > self->capacity / 4 * 3)
        return "the table is fuller than 3/4";
    return NULL;
}

static tiers_cachestore_t *
s_store (size_t cap, int64_t ttl_ms, int64_t negative_ttl_ms, int64_t lease_ms)
{
    tiers_cachestore_config_t config = {
        .cap_bytes = cap, .ttl_ms = ttl_ms,
        .negative_ttl_ms = negative_ttl_ms, .lease_ms = lease_ms
    };
    tiers_cachestore_t *store = tiers_cachestore_new (&config);
    assert (store);
    return store;
}

//  A miss on `key` at `now` and a fill of it with `body` at `version`.
static tiers_fill_t
s_put (tiers_cachestore_t *store, const char *key, const char *body, int64_t version,
       int64_t now)
{
    tiers_cache_entry_t entry;
    uint64_t lease;
    if (tiers_cachestore_get (store, key, now, &entry, &lease) != TIERS_CACHE_MISS)
        return (tiers_fill_t) -1;
    char tag [32];
    snprintf (tag, sizeof tag, "t%lld", (long long) version);
    return tiers_cachestore_fill (store, key, lease, body, body ? strlen (body) : 0, tag,
                                  version, now);
}

static tiers_cache_lookup_t
s_get (tiers_cachestore_t *store, const char *key, int64_t now, uint64_t *lease)
{
    tiers_cache_entry_t entry;
    uint64_t ignored;
    return tiers_cachestore_get (store, key, now, &entry, lease ? lease : &ignored);
}

static void
s_config (void)
{
    tiers_cachestore_config_t config = {
        .cap_bytes = 1024, .ttl_ms = 0, .negative_ttl_ms = 100, .lease_ms = 100
    };
    ok (tiers_cachestore_new (&config) == NULL, "new: a cap below the minimum is refused");
    config.cap_bytes = 1 << 20;
    config.lease_ms = 0;
    ok (tiers_cachestore_new (&config) == NULL, "new: lease_ms 0 is refused");
    config.lease_ms = 100;
    config.negative_ttl_ms = 0;
    ok (tiers_cachestore_new (&config) == NULL, "new: negative_ttl_ms 0 is refused");
    config.negative_ttl_ms = 100;
    config.ttl_ms = -1;
    ok (tiers_cachestore_new (&config) == NULL, "new: a negative ttl_ms is refused");
    config.ttl_ms = 0;
    tiers_cachestore_t *store = tiers_cachestore_new (&config);
    ok (store != NULL && s_audit (store) == NULL, "new: a good config makes a store");
    tiers_cachestore_destroy (&store);
    ok (store == NULL, "destroy nulls the pointer");
    tiers_cachestore_destroy (&store);
}

static void
s_hit_miss_lease (void)
{
    tiers_cachestore_t *store = s_store (1 << 20, 0, 1000, 500);
    tiers_cache_entry_t entry;
    uint64_t lease = 7, second = 7;
    is_int (tiers_cachestore_get (store, "docs/1", 1000, &entry, &lease), TIERS_CACHE_MISS,
            "a cold key misses");
    ok (lease != 0, "the miss hands out a lease");
    is_int (tiers_cachestore_get (store, "docs/1", 1001, &entry, &second), TIERS_CACHE_LEASED,
            "a concurrent miss finds it LEASED");
    is_int ((long long) second, 0, "LEASED gives no lease");
    is_int (s_get (store, "docs/1", 1002, NULL), TIERS_CACHE_LEASED, "and a third too");
    is_int (tiers_cachestore_fill (store, "docs/1", lease, "{\"a\":1}", 7, "v3", 3, 1010),
            TIERS_FILL_STORED, "the holder fills it");
    memset (&entry, 0, sizeof entry);
    is_int (tiers_cachestore_get (store, "docs/1", 1020, &entry, &lease), TIERS_CACHE_HIT,
            "then it hits");
    ok (!entry.negative && entry.version == 3 && entry.size == 7
        && memcmp (entry.value, "{\"a\":1}", 7) == 0 && streq (entry.tag, "v3"),
        "the hit gives the body, tag and version filled");
    is_int (tiers_cachestore_fill (store, "docs/1", lease, "x", 1, "v4", 4, 1030),
            TIERS_FILL_NO_LEASE, "the lease ended with its fill: a second fill is refused");

    //  A lease given back: the next lookup misses with a new one at once.
    uint64_t held = 0, next = 0;
    is_int (s_get (store, "docs/r", 1031, &held), TIERS_CACHE_MISS, "docs/r misses");
    ok (!tiers_cachestore_release (store, "docs/r", held ^ 1, 1032),
        "release: another lease is not released");
    ok (!tiers_cachestore_release (store, "docs/nothing", held, 1032),
        "release: a key without a lease is not released");
    is_int (s_get (store, "docs/r", 1033, NULL), TIERS_CACHE_LEASED, "... it is still LEASED");
    ok (tiers_cachestore_release (store, "docs/r", held, 1034), "release: the holder's lease");
    ok (!tiers_cachestore_release (store, "docs/r", held, 1035), "release: ... only once");
    is_int (s_get (store, "docs/r", 1036, &next), TIERS_CACHE_MISS,
            "after a release the next lookup misses, with a lease");
    ok (next != 0 && next != held, "... a new one");
    is_int (tiers_cachestore_fill (store, "docs/r", held, "x", 1, "v1", 1, 1037),
            TIERS_FILL_NO_LEASE, "a fill with the released lease is refused");
    ok (tiers_cachestore_release (store, "docs/r", next, 1038), "release: the new one too");

    //  Fills without the live lease.
    is_int (tiers_cachestore_fill (store, "docs/2", 12345, "x", 1, "v1", 1, 1040),
            TIERS_FILL_NO_LEASE, "a fill of a key never looked up is refused");
    is_int (s_get (store, "docs/2", 1050, &lease), TIERS_CACHE_MISS, "docs/2 misses");
    is_int (tiers_cachestore_fill (store, "docs/2", lease ^ 1, "x", 1, "v1", 1, 1060),
            TIERS_FILL_NO_LEASE, "a fill with a wrong lease is refused");
    is_int (tiers_cachestore_fill (store, "docs/2", 0, "x", 1, "v1", 1, 1060),
            TIERS_FILL_NO_LEASE, "a fill with lease 0 is refused");
    is_int (s_get (store, "docs/2", 1070, NULL), TIERS_CACHE_LEASED,
            "a wrong fill leaves the live lease alone");
    is_int (tiers_cachestore_fill (store, "docs/2", lease, "x", 1, "v1", 1, 1550),
            TIERS_FILL_NO_LEASE, "a fill after the lease expired (lease_ms 500) is refused");
    uint64_t renewed;
    is_int (s_get (store, "docs/2", 1560, &renewed), TIERS_CACHE_MISS,
            "after the lease expired the next lookup misses again");
    ok (renewed != 0 && renewed != lease, "with a new lease");
    is_int (tiers_cachestore_fill (store, "docs/2", lease, "x", 1, "v1", 1, 1570),
            TIERS_FILL_NO_LEASE, "the old lease stays refused");
    is_int (tiers_cachestore_fill (store, "docs/2", renewed, "x", 1, "v1", 1, 1570),
            TIERS_FILL_STORED, "the new one fills");
    is_int (s_get (store, "docs/3", 1600, &lease), TIERS_CACHE_MISS, "docs/3 misses");
    is_int (s_get (store, "docs/3", 2100, &renewed), TIERS_CACHE_MISS,
            "lease_ms later docs/3 misses again, not LEASED");

    //  Leases are distinct over many keys.
    uint64_t tokens [1000];
    bool distinct = true;
    for (int i = 0; i < 1000; i++) {
        char key [32];
        snprintf (key, sizeof key, "lease/%d", i);
        s_get (store, key, 3000, &tokens [i]);
        for (int j = 0; j < i && distinct; j++)
            distinct = tokens [i] != 0 && tokens [i] != tokens [j];
    }
    ok (distinct, "1000 misses get 1000 distinct nonzero leases");
    ok (s_audit (store) == NULL, "audit: %s", s_audit (store) ? s_audit (store) : "ok");
    tiers_cachestore_destroy (&store);
}

static void
s_invalidation (void)
{
    tiers_cachestore_t *store = s_store (1 << 20, 0, 1000, 500);
    uint64_t lease;
    tiers_cache_entry_t entry;
    is_int (s_put (store, "docs/a", "five", 5, 100), TIERS_FILL_STORED, "docs/a v5 cached");
    ok (tiers_cachestore_invalidate (store, "docs/a", 6), "a write at v6 invalidates v5");
    is_int (s_get (store, "docs/a", 110, &lease), TIERS_CACHE_MISS, "docs/a is gone");
    is_int (tiers_cachestore_fill (store, "docs/a", lease, "five", 4, "t5", 5, 120),
            TIERS_FILL_STALE, "a fill of v5 (read from a lagging replica) is stale");
    is_int (s_get (store, "docs/a", 130, &lease), TIERS_CACHE_MISS,
            "the stale fill ended its lease");
    is_int (tiers_cachestore_fill (store, "docs/a", lease, "six", 3, "t6", 6, 140),
            TIERS_FILL_STORED, "a fill of v6 is stored");
    ok (!tiers_cachestore_invalidate (store, "docs/a", 4), "an older invalidation (v4) is ignored");
    ok (!tiers_cachestore_invalidate (store, "docs/a", 6), "an equal one (v6) too");
    is_int (tiers_cachestore_get (store, "docs/a", 150, &entry, &lease), TIERS_CACHE_HIT,
            "v6 is still held");
    is_int (entry.version, 6, "at version 6");
    ok (tiers_cachestore_invalidate (store, "docs/a", 7), "v7 removes it");
    is_int (s_put (store, "docs/a", "seven", 7, 160), TIERS_FILL_STORED, "v7 fills");

    //  A lease voided by a write.
    is_int (s_get (store, "docs/b", 200, &lease), TIERS_CACHE_MISS, "docs/b misses");
    ok (tiers_cachestore_invalidate (store, "docs/b", 3), "a write voids its lease");
    is_int (tiers_cachestore_fill (store, "docs/b", lease, "b", 1, "t3", 3, 210),
            TIERS_FILL_NO_LEASE, "the voided lease's fill is refused, even at the write's version");
    uint64_t again;
    is_int (s_get (store, "docs/b", 220, &again), TIERS_CACHE_MISS,
            "docs/b is ABSENT again (a miss, not LEASED)");
    is_int (tiers_cachestore_fill (store, "docs/b", again, "b", 1, "t2", 2, 230),
            TIERS_FILL_STALE, "a fill older than the write is stale under a new lease too");
    is_int (s_put (store, "docs/b", "b3", 3, 240), TIERS_FILL_STORED, "v3 fills");

    //  An invalidation of a key not held is remembered (a floor).
    ok (!tiers_cachestore_invalidate (store, "docs/c", 10),
        "invalidating a key not held removes nothing");
    is_int (s_put (store, "docs/c", "c9", 9, 300), TIERS_FILL_STALE,
            "but a later fill of an older version is stale");
    is_int (s_put (store, "docs/c", "c10", 10, 310), TIERS_FILL_STORED,
            "the invalidation's version fills");

    //  The floor lasts lease_ms, longer while a lease handed out meanwhile lasts.
    tiers_cachestore_invalidate (store, "docs/d", 20);     //  now is 310: until 810
    is_int (s_put (store, "docs/d", "d19", 19, 811), TIERS_FILL_STORED,
            "after lease_ms the floor is forgotten");
    tiers_cachestore_invalidate (store, "docs/e", 20);     //  now is 811: until 1311
    is_int (s_get (store, "docs/e", 1300, &lease), TIERS_CACHE_MISS, "docs/e misses near the floor's end");
    is_int (tiers_cachestore_fill (store, "docs/e", lease, "e", 1, "t19", 19, 1700),
            TIERS_FILL_STALE, "the lease extended the floor: its late fill is stale");

    //  An entry keeps its floor: flushed (or evicted) soon after the write,
    //  the floor stays behind.
    tiers_cachestore_invalidate (store, "docs/f", 30);     //  now is 1700
    is_int (s_put (store, "docs/f", "f30", 30, 1710), TIERS_FILL_STORED, "docs/f v30 fills");
    tiers_cachestore_flush (store, NULL, NULL);
    is_int (s_put (store, "docs/f", "f29", 29, 1720), TIERS_FILL_STALE,
            "flushed, its floor stays: a fill of v29 is stale");
    is_int (s_put (store, "docs/g", "g40", 40, 1730), TIERS_FILL_STORED, "docs/g v40 fills");
    ok (!tiers_cachestore_invalidate (store, "docs/g", 40),
        "a write at v40 (the stream behind the fill) leaves v40 held");
    tiers_cachestore_flush (store, NULL, NULL);
    is_int (s_put (store, "docs/g", "g39", 39, 1740), TIERS_FILL_STALE,
            "the entry remembered that write: once flushed, a fill of v39 is stale");
    ok (s_audit (store) == NULL, "audit: %s", s_audit (store) ? s_audit (store) : "ok");
    tiers_cachestore_destroy (&store);
}

static void
s_negative_and_ttl (void)
{
    tiers_cachestore_t *store = s_store (1 << 20, 1000, 200, 500);
    tiers_cache_entry_t entry;
    uint64_t lease;
    is_int (s_put (store, "docs/none", NULL, 7, 100), TIERS_FILL_STORED, "a negative entry is stored");
    memset (&entry, 0x55, sizeof entry);
    is_int (tiers_cachestore_get (store, "docs/none", 150, &entry, &lease), TIERS_CACHE_HIT,
            "it hits");
    ok (entry.negative && entry.value == NULL && entry.size == 0 && streq (entry.tag, "")
        && entry.version == 7, "as a negative entry at position 7, no body, tag \"\"");
    is_int (s_get (store, "docs/none", 299, NULL), TIERS_CACHE_HIT,
            "it lives until negative_ttl_ms");
    tiers_cachestore_stats_t stats;
    tiers_cachestore_stats (store, &stats);
    uint64_t expired = stats.expirations;
    is_int (s_get (store, "docs/none", 300, NULL), TIERS_CACHE_MISS, "and not a moment longer");
    tiers_cachestore_stats (store, &stats);
    is_int ((long long) (stats.expirations - expired), 1, "the expiry is counted");

    is_int (s_put (store, "docs/new", NULL, 8, 400), TIERS_FILL_STORED, "docs/new: a cached 404");
    ok (tiers_cachestore_invalidate (store, "docs/new", 9), "a create at v9 invalidates it");
    is_int (s_get (store, "docs/new", 410, &lease), TIERS_CACHE_MISS, "the 404 is gone");
    is_int (tiers_cachestore_fill (store, "docs/new", lease, NULL, 0, NULL, 8, 420),
            TIERS_FILL_STALE, "a 404 found at position 8 cannot come back");
    is_int (s_put (store, "docs/new", "made", 9, 430), TIERS_FILL_STORED, "the created v9 fills");

    is_int (s_put (store, "docs/t", "ttl", 1, 1000), TIERS_FILL_STORED, "docs/t filled at 1000");
    is_int (s_get (store, "docs/t", 1999, NULL), TIERS_CACHE_HIT, "hits at 1999 (ttl_ms 1000)");
    is_int (s_get (store, "docs/t", 2000, NULL), TIERS_CACHE_MISS, "misses at 2000");
    tiers_cachestore_stats (store, &stats);
    is_int ((long long) stats.expirations, 2, "two expirations in all");
    ok (s_audit (store) == NULL, "audit: %s", s_audit (store) ? s_audit (store) : "ok");
    tiers_cachestore_destroy (&store);

    store = s_store (1 << 20, 0, 200, 500);
    s_put (store, "docs/forever", "x", 1, 0);
    is_int (s_get (store, "docs/forever", 1000000000, NULL), TIERS_CACHE_HIT,
            "ttl_ms 0: an entry does not expire");
    tiers_cachestore_destroy (&store);
}

static void
s_too_large (void)
{
    size_t cap = 64 * 1024;
    tiers_cachestore_t *store = s_store (cap, 0, 100, 500);
    for (int i = 0; i < 20; i++) {
        char key [32];
        snprintf (key, sizeof key, "small/%d", i);
        s_put (store, key, "some small body", 1, 10);
    }
    size_t fixed = s_charge (sizeof (tiers_cachestore_t)) + s_slots_charge (SLOTS_MIN);
    size_t key_len = strlen ("big/1");
    //  The largest value that fits alone: its record and the fixed part.
    size_t size = cap - fixed - sizeof (record_t) - key_len - 1 - 2 - 1 - 32;
    while (s_record_charge (key_len, 1, size + 1) + fixed <= cap)
        size++;
    char *body = (char *) calloc (1, size + 2);
    memset (body, 'x', size + 1);
    uint64_t lease;
    s_get (store, "big/1", 20, &lease);
    is_int (tiers_cachestore_fill (store, "big/1", lease, body, size + 1, "t", 1, 20),
            TIERS_FILL_TOO_LARGE, "a value one byte over what the cap can hold is refused");
    is_int (s_get (store, "big/1", 21, &lease), TIERS_CACHE_MISS, "the refusal ended the lease");
    is_int (tiers_cachestore_fill (store, "big/1", lease, body, size, "t", 1, 22),
            TIERS_FILL_STORED, "the largest value that fits is stored");
    tiers_cachestore_stats_t stats;
    tiers_cachestore_stats (store, &stats);
    ok (stats.entries == 1 && stats.evictions == 20 && stats.bytes <= cap,
        "by evicting all 20 others (entries %zu, evictions %llu, bytes %zu of %zu)",
        stats.entries, (unsigned long long) stats.evictions, stats.bytes, cap);
    ok (s_audit (store) == NULL, "audit: %s", s_audit (store) ? s_audit (store) : "ok");
    free (body);
    tiers_cachestore_destroy (&store);
}

//  SIEVE: an entry hit since the hand passed survives; new entries never
//  hit go first.
static void
s_sieve (void)
{
    size_t one = s_record_charge (strlen ("k/00"), 2, 900);
    size_t cap = s_charge (sizeof (tiers_cachestore_t)) + s_slots_charge (16) + 10 * one;
    tiers_cachestore_t *store = s_store (cap, 0, 100, 500);
    char body [901];
    memset (body, 'b', 900);
    body [900] = 0;
    for (int i = 0; i < 10; i++) {
        char key [8];
        snprintf (key, sizeof key, "k/%02d", i);
        s_put (store, key, body, 1, 1);
    }
    tiers_cachestore_stats_t stats;
    tiers_cachestore_stats (store, &stats);
    is_int ((long long) stats.entries, 10, "ten entries fill the cap exactly");
    is_int ((long long) stats.evictions, 0, "with no eviction");
    s_get (store, "k/00", 2, NULL);
    s_get (store, "k/01", 2, NULL);
    s_put (store, "k/10", body, 1, 3);
    tiers_cachestore_stats (store, &stats);
    is_int ((long long) stats.evictions, 1, "one more evicts one");
    //  The hand passed k/00 and k/01 (clearing their bits), took k/02 and
    //  stopped at k/03. k/00 is hit again; the next victim is k/03, not
    //  k/01 (a hand that started over at the tail would take k/01).
    s_get (store, "k/00", 4, NULL);
    s_put (store, "k/11", body, 1, 5);
    tiers_cachestore_stats (store, &stats);
    is_int ((long long) stats.evictions, 2, "and one more, one more");
    ok (s_get (store, "k/00", 6, NULL) == TIERS_CACHE_HIT
        && s_get (store, "k/01", 6, NULL) == TIERS_CACHE_HIT,
        "the two visited oldest entries survive");
    ok (s_get (store, "k/04", 6, NULL) == TIERS_CACHE_HIT
        && s_get (store, "k/10", 6, NULL) == TIERS_CACHE_HIT
        && s_get (store, "k/11", 6, NULL) == TIERS_CACHE_HIT,
        "as do the younger ones and the new ones");
    ok (s_get (store, "k/02", 6, NULL) == TIERS_CACHE_MISS
        && s_get (store, "k/03", 6, NULL) == TIERS_CACHE_MISS,
        "k/02 went, then k/03: the hand goes on from where it stopped");
    ok (s_audit (store) == NULL, "audit: %s", s_audit (store) ? s_audit (store) : "ok");
    tiers_cachestore_destroy (&store);
}

static bool
s_match_prefix (const char *key, void *arg)
{
    const char *prefix = (const char *) arg;
    return strncmp (key, prefix, strlen (prefix)) == 0 && key [strlen (prefix)] == '/';
}

//  Many sizes, all the calls, the bytes recounted after every one. Misses
//  leave their leases in a list; fills take one from it (now and then one
//  voided or expired meanwhile, now and then a made-up one).
static void
s_random_workload (void)
{
    size_t cap = 128 * 1024;
    tiers_cachestore_t *store = s_store (cap, 3000, 500, 200);
    enum { KEYS = 600, OUTSTANDING = 16 };
    int64_t versions [KEYS] = { 0 };
    int64_t written_at [KEYS] = { 0 };
    int outstanding_key [OUTSTANDING];
    uint64_t outstanding_lease [OUTSTANDING];
    int outstanding = 0;
    int stale_stored = 0;
    //  CACHESTORE_SEED=N runs another workload.
    uint64_t random = getenv ("CACHESTORE_SEED") ? strtoull (getenv ("CACHESTORE_SEED"), NULL, 0)
                                                 : 0x1234567;
    const char *wrong = NULL;
    int checks = 0, hits = 0, corrupt = 0, over = 0;
    char *body = (char *) malloc (40000);
    int64_t now = 1;
    for (int op = 0; op < 30000; op++) {
        random = s_mix (random + (uint64_t) op);
        //  Keys skewed to the low ids (the square of a uniform), so some hit.
        uint64_t uniform = (random >> 8) % 1000;
        int key_id = (int) (uniform * uniform * KEYS / 1000000);
        int what = (int) (random % 100);
        now += (int64_t) ((random >> 40) % 3);
        if (what >= 50 && what < 85 && outstanding > 0) {
            int pick = (int) ((random >> 44) % (uint64_t) outstanding);
            key_id = outstanding_key [pick];
            uint64_t lease = outstanding_lease [pick];
            outstanding_key [pick] = outstanding_key [outstanding - 1];
            outstanding_lease [pick] = outstanding_lease [--outstanding];
            if ((random >> 56) % 20 == 0)
                lease = random | 1;
            char key [48];
            snprintf (key, sizeof key, "c%d/document-%d", key_id % 3, key_id);
            //  Sizes from nothing to 39,999 bytes, mostly under 4,000.
            size_t size = (random >> 20) % 100 < 90 ? (random >> 28) % 4000
                                                    : (random >> 28) % 40000;
            //  Now and then a version older than the last write (a lagging
            //  replica): refused while the write's floor surely holds.
            int64_t version = versions [key_id] - (int64_t) ((random >> 50) % 4 == 0);
            int length = snprintf (body, 40000, "%d.%lld;", key_id, (long long) version);
            if ((size_t) length > size)
                size = (size_t) length;
            memset (body + length, 'z', size - (size_t) length);
            bool negative = (random >> 60) == 0;
            tiers_fill_t filled = tiers_cachestore_fill (store, key, lease,
                                                         negative ? NULL : body, size,
                                                         "tag", version, now);
            if (filled == TIERS_FILL_STORED && version < versions [key_id]
            &&  versions [key_id] > 0 && now < written_at [key_id] + 150)
                stale_stored++;
        }
        else {
            char key [48];
            snprintf (key, sizeof key, "c%d/document-%d", key_id % 3, key_id);
            if (what < 85) {
                tiers_cache_entry_t entry;
                uint64_t lease;
                tiers_cache_lookup_t found = tiers_cachestore_get (store, key, now, &entry,
                                                                   &lease);
                if (found == TIERS_CACHE_MISS && outstanding < OUTSTANDING) {
                    outstanding_key [outstanding] = key_id;
                    outstanding_lease [outstanding++] = lease;
                }
                if (found == TIERS_CACHE_HIT && !entry.negative) {
                    hits++;
                    //  The body starts with the key's id and version: a mixed-up
                    //  entry shows.
                    const char *text = (const char *) entry.value;
                    char expect [32];
                    snprintf (expect, sizeof expect, "%d.%lld;", key_id,
                              (long long) entry.version);
                    if (entry.size < strlen (expect) || memcmp (text, expect, strlen (expect)))
                        corrupt++;
                }
            }
            else
            if (what < 99) {
                versions [key_id]++;
                written_at [key_id] = now;
                tiers_cachestore_invalidate (store, key, versions [key_id]);
            }
            else {
                char prefix [4];
                snprintf (prefix, sizeof prefix, "c%d", (int) ((random >> 30) % 3));
                if ((random >> 33) % 4 == 0)
                    tiers_cachestore_flush (store, NULL, NULL);
                else
                    tiers_cachestore_flush (store, s_match_prefix, prefix);
            }
        }
        tiers_cachestore_stats_t stats;
        tiers_cachestore_stats (store, &stats);
        if (stats.bytes > cap)
            over++;
        checks++;
        if (!wrong)
            wrong = s_audit (store);
    }
    tiers_cachestore_stats_t stats;
    tiers_cachestore_stats (store, &stats);
    diag ("random workload: %d checks, %d hits, %llu fills, %llu evictions, %llu refused, "
          "%zu entries, %zu of %zu bytes", checks, hits, (unsigned long long) stats.fills,
          (unsigned long long) stats.evictions, (unsigned long long) stats.refused,
          stats.entries, stats.bytes, cap);
    ok (over == 0 && checks == 30000, "bytes <= cap after each of %d calls", checks);
    ok (wrong == NULL, "the audit after each call: %s", wrong ? wrong : "bytes recount exactly");
    is_int (corrupt, 0, "every hit gave its own key's body");
    is_int (stale_stored, 0, "no fill older than a write within lease_ms of it was stored");
    ok (stats.evictions > 100 && stats.fills > 1000 && hits > 500,
        "the workload evicted (%llu), filled (%llu) and hit (%d)",
        (unsigned long long) stats.evictions, (unsigned long long) stats.fills, hits);
    free (body);
    tiers_cachestore_destroy (&store);
}

static void
s_flush (void)
{
    tiers_cachestore_t *store = s_store (1 << 20, 0, 100, 500);
    tiers_cachestore_stats_t empty, stats;
    tiers_cachestore_stats (store, &empty);
    for (int i = 0; i < 100; i++) {
        char key [32];
        snprintf (key, sizeof key, "%s/%d", i % 2 ? "a" : "b", i);
        s_put (store, key, "body", 1, 10);
    }
    uint64_t lease_a, lease_b;
    s_get (store, "a/pending", 20, &lease_a);
    s_get (store, "b/pending", 20, &lease_b);
    tiers_cachestore_flush (store, s_match_prefix, "a");
    tiers_cachestore_stats (store, &stats);
    is_int ((long long) stats.entries, 50, "flush of a/: 50 entries left");
    ok (s_get (store, "a/1", 30, NULL) == TIERS_CACHE_MISS
        && s_get (store, "b/0", 30, NULL) == TIERS_CACHE_HIT,
        "a/ keys miss, b/ keys hit");
    is_int (tiers_cachestore_fill (store, "a/pending", lease_a, "x", 1, "t", 1, 30),
            TIERS_FILL_NO_LEASE, "a lease of a/ is voided");
    is_int (tiers_cachestore_fill (store, "b/pending", lease_b, "x", 1, "t", 1, 30),
            TIERS_FILL_STORED, "a lease of b/ still fills");
    s_get (store, "b/other", 40, &lease_b);
    tiers_cachestore_flush (store, NULL, NULL);
    is_int (tiers_cachestore_fill (store, "b/other", lease_b, "x", 1, "t", 1, 40),
            TIERS_FILL_NO_LEASE, "flush all voids every lease");
    tiers_cachestore_stats (store, &stats);
    ok (stats.entries == 0 && stats.bytes == empty.bytes,
        "flush all: nothing held, the bytes back to an empty store's (%zu)", stats.bytes);
    is_int (s_get (store, "b/0", 50, NULL), TIERS_CACHE_MISS, "b/0 misses after it");
    ok (s_audit (store) == NULL, "audit: %s", s_audit (store) ? s_audit (store) : "ok");
    tiers_cachestore_destroy (&store);
}

static void
s_stats (void)
{
    tiers_cachestore_t *store = s_store (64 * 1024, 0, 100, 500);
    tiers_cachestore_stats_t stats;
    tiers_cachestore_stats (store, &stats);
    size_t base = s_charge (sizeof (tiers_cachestore_t)) + s_slots_charge (SLOTS_MIN);
    ok (stats.hits == 0 && stats.misses == 0 && stats.entries == 0 && stats.bytes == base
        && stats.cap == 64 * 1024, "a new store: zeros, its fixed bytes (%zu), the cap", base);
    uint64_t lease;
    s_get (store, "s/1", 1, &lease);                            //  miss
    s_get (store, "s/1", 1, NULL);                              //  leased
    tiers_cachestore_fill (store, "s/1", lease, "abc", 3, "t", 1, 1);   //  fill
    s_get (store, "s/1", 2, NULL);                              //  hit
    s_get (store, "s/1", 2, NULL);                              //  hit
    tiers_cachestore_fill (store, "s/1", lease, "abc", 3, "t", 1, 2);   //  refused
    tiers_cachestore_invalidate (store, "s/1", 1);              //  nothing (not newer)
    tiers_cachestore_invalidate (store, "s/1", 2);              //  one
    tiers_cachestore_invalidate (store, "s/2", 2);              //  nothing held
    s_get (store, "s/1", 3, &lease);                            //  miss
    tiers_cachestore_fill (store, "s/1", lease, "abc", 3, "t", 1, 3);   //  refused (stale)
    tiers_cachestore_stats (store, &stats);
    is_int ((long long) stats.hits, 2, "hits 2");
    is_int ((long long) stats.misses, 2, "misses 2");
    is_int ((long long) stats.leased, 1, "leased 1");
    is_int ((long long) stats.fills, 1, "fills 1");
    is_int ((long long) stats.refused, 2, "refused 2");
    is_int ((long long) stats.invalidations, 1, "invalidations 1");
    is_int ((long long) stats.evictions, 0, "evictions 0");
    is_int ((long long) stats.expirations, 0, "expirations 0");
    is_int ((long long) stats.entries, 0, "entries 0");
    //  s/1 and s/2 are floors now: two small records.
    is_int ((long long) stats.bytes, (long long) (base + 2 * s_record_charge (3, 0, 0)),
            "bytes: the fixed part and two floor records");
    tiers_cachestore_destroy (&store);
}

int
main (void)
{
    s_config ();
    s_hit_miss_lease ();
    s_invalidation ();
    s_negative_and_ttl ();
    s_too_large ();
    s_sieve ();
    s_random_workload ();
    s_flush ();
    s_stats ();
    return done_testing ();
}
