/*  cachesim.c — the measurement that chose the read cache's eviction policy.

    It runs the store itself (actors/cachestore.c, included with
    TIERS_CACHESTORE_BENCH so that the same table, records and byte
    accounting can evict by LRU as well as by SIEVE) through cache-aside
    traces: a lookup, and on a miss a fill under the lease it handed out.
    100,000 documents of 200-1,000 bytes; caches of 1%, 5% and 10% of what
    they all take in the store; keys drawn from Zipf(0.99) and Zipf(0.8),
    and a scan trace: Zipf(0.99) with, every 50,000 requests, a scan of
    20,000 keys read once and never again (its hit ratio counts the Zipf
    requests only). Then the speed: lookups per second over the whole trace
    (misses fill), and of hits alone (every document held).

    make bench-cache, or bench/cachesim [REQUESTS] (default 2,000,000 per
    trace). doc/cache.md has a run's table and what was kept.
*/
#define TIERS_CACHESTORE_BENCH
#include "actors/cachestore.c"
#include <math.h>
#include <stdio.h>

#define DOCUMENTS   100000
#define WARMUP      200000          //  requests before the hit ratio counts
#define SCAN_EVERY  50000
#define SCAN_LENGTH 20000

typedef struct {
    char key [24];
    size_t size;
} document_t;

static document_t s_documents [DOCUMENTS];
static char s_body [1000];

static uint64_t
s_random (uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ULL;
    return s_mix (*state);
}

//  A trace of `requests` document numbers, Zipf(alpha) over the documents
//  with the ranks given to them in a random order.
static uint32_t *
s_zipf_trace (size_t requests, double alpha, uint64_t seed)
{
    double *cdf = (double *) malloc (DOCUMENTS * sizeof (double));
    uint32_t *rank_to_id = (uint32_t *) malloc (DOCUMENTS * sizeof (uint32_t));
    uint32_t *trace = (uint32_t *) malloc (requests * sizeof (uint32_t));
    assert (cdf && rank_to_id && trace);
    double sum = 0;
    for (int i = 0; i < DOCUMENTS; i++) {
        sum += 1.0 / pow (i + 1, alpha);
        cdf [i] = sum;
        rank_to_id [i] = (uint32_t) i;
    }
    uint64_t state = seed;
    for (int i = DOCUMENTS - 1; i > 0; i--) {
        int j = (int) (s_random (&state) % (uint64_t) (i + 1));
        uint32_t swap = rank_to_id [i];
        rank_to_id [i] = rank_to_id [j];
        rank_to_id [j] = swap;
    }
    for (size_t r = 0; r < requests; r++) {
        double u = (double) (s_random (&state) >> 11) / 9007199254740992.0 * sum;
        size_t low = 0, high = DOCUMENTS - 1;
        while (low < high) {
            size_t middle = (low + high) / 2;
            if (cdf [middle] < u)
                low = middle + 1;
            else
                high = middle;
        }
        trace [r] = rank_to_id [low];
    }
    free (cdf);
    free (rank_to_id);
    return trace;
}

static double
s_seconds (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static tiers_cachestore_t *
s_store (size_t cap)
{
    tiers_cachestore_config_t config = {
        .cap_bytes = cap, .ttl_ms = 0, .negative_ttl_ms = 1000, .lease_ms = 10000
    };
    tiers_cachestore_t *store = tiers_cachestore_new (&config);
    assert (store);
    return store;
}

//  One cache-aside request; returns true on a hit.
static bool
s_request (tiers_cachestore_t *store, const char *key, size_t size, int64_t now)
{
    tiers_cache_entry_t entry;
    uint64_t lease;
    tiers_cache_lookup_t found = tiers_cachestore_get (store, key, now, &entry, &lease);
    if (found == TIERS_CACHE_MISS)
        tiers_cachestore_fill (store, key, lease, s_body, size, "t1", 1, now);
    return found == TIERS_CACHE_HIT;
}

typedef struct {
    double hit_ratio;
    double lookups_per_second;
    uint64_t evictions;
} result_t;

//  Runs the trace on a fresh store of `cap` bytes; `scans` interleaves the
//  one-time scans.
static result_t
s_run (const uint32_t *trace, size_t requests, size_t cap, bool lru, bool scans)
{
    s_lru = lru;
    tiers_cachestore_t *store = s_store (cap);
    uint64_t hits = 0, counted = 0, scanned = 0;
    double start = s_seconds ();
    for (size_t r = 0; r < requests; r++) {
        int64_t now = (int64_t) (r / 1000);
        if (scans && r % SCAN_EVERY == SCAN_EVERY - 1) {
            for (int i = 0; i < SCAN_LENGTH; i++) {
                char key [32];
                snprintf (key, sizeof key, "scan/%llu", (unsigned long long) scanned++);
                s_request (store, key, 200 + scanned % 801, now);
            }
        }
        const document_t *document = &s_documents [trace [r]];
        bool hit = s_request (store, document->key, document->size, now);
        if (r >= WARMUP) {
            counted++;
            hits += hit;
        }
    }
    double elapsed = s_seconds () - start;
    tiers_cachestore_stats_t stats;
    tiers_cachestore_stats (store, &stats);
    assert (stats.bytes <= stats.cap);
    tiers_cachestore_destroy (&store);
    result_t result = {
        .hit_ratio = (double) hits / (double) counted,
        .lookups_per_second = (double) (requests + (scans ? scanned : 0)) / elapsed,
        .evictions = stats.evictions
    };
    return result;
}

//  Lookups per second when every lookup hits (all documents held).
static double
s_hits_per_second (const uint32_t *trace, size_t requests, size_t cap, bool lru)
{
    s_lru = lru;
    tiers_cachestore_t *store = s_store (cap);
    for (int i = 0; i < DOCUMENTS; i++)
        s_request (store, s_documents [i].key, s_documents [i].size, 0);
    tiers_cachestore_stats_t stats;
    tiers_cachestore_stats (store, &stats);
    assert (stats.entries == DOCUMENTS && stats.evictions == 0);
    double best = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t hits = 0;
        double start = s_seconds ();
        for (size_t r = 0; r < requests; r++) {
            tiers_cache_entry_t entry;
            uint64_t lease;
            hits += tiers_cachestore_get (store, s_documents [trace [r]].key, 1, &entry, &lease)
                 == TIERS_CACHE_HIT;
        }
        double rate = (double) requests / (s_seconds () - start);
        assert (hits == requests);
        if (rate > best)
            best = rate;
    }
    tiers_cachestore_destroy (&store);
    return best;
}

int
main (int argc, char *argv [])
{
    size_t requests = argc > 1 ? (size_t) strtoull (argv [1], NULL, 10) : 2000000;
    if (requests <= WARMUP) {
        fprintf (stderr, "usage: cachesim [REQUESTS > %d]\n", WARMUP);
        return 1;
    }
    uint64_t state = 42;
    size_t data = 0;
    for (int i = 0; i < DOCUMENTS; i++) {
        snprintf (s_documents [i].key, sizeof s_documents [i].key, "docs/%d", i);
        s_documents [i].size = 200 + (size_t) (s_random (&state) % 801);
        data += s_record_charge (strlen (s_documents [i].key), 2, s_documents [i].size);
    }
    memset (s_body, 'b', sizeof s_body);
    size_t fixed = s_charge (sizeof (tiers_cachestore_t));
    printf ("# %d documents of 200-1000 bytes: %zu bytes as the store counts them\n",
            DOCUMENTS, data);
    printf ("# %zu requests per trace, hit ratio after the first %d\n\n", requests, WARMUP);
    printf ("| trace | cache | LRU hit | SIEVE hit | LRU lookups/s | SIEVE lookups/s |\n");
    printf ("|---|---|---|---|---|---|\n");

    struct {
        const char *name;
        double alpha;
        bool scans;
    } traces [] = {
        { "Zipf 0.99", 0.99, false },
        { "Zipf 0.8", 0.8, false },
        { "Zipf 0.99 + scans", 0.99, true }
    };
    double percents [] = { 1, 5, 10 };
    uint32_t *trace99 = NULL;
    for (size_t t = 0; t < sizeof traces / sizeof traces [0]; t++) {
        uint32_t *trace = s_zipf_trace (requests, traces [t].alpha, 7);
        for (size_t p = 0; p < sizeof percents / sizeof percents [0]; p++) {
            size_t cap = fixed + (size_t) ((double) data * percents [p] / 100);
            result_t lru = s_run (trace, requests, cap, true, traces [t].scans);
            result_t sieve = s_run (trace, requests, cap, false, traces [t].scans);
            printf ("| %s | %g%% | %.4f | %.4f | %.2fM | %.2fM |\n", traces [t].name,
                    percents [p], lru.hit_ratio, sieve.hit_ratio,
                    lru.lookups_per_second / 1e6, sieve.lookups_per_second / 1e6);
            fflush (stdout);
        }
        if (traces [t].alpha == 0.99 && !trace99)
            trace99 = trace;
        else
            free (trace);
    }
    //  All held: the table grows to 256K slots; give it room.
    size_t all = fixed + data + s_slots_charge (256 * 1024) + 4096;
    double lru_hits = s_hits_per_second (trace99, requests, all, true);
    double sieve_hits = s_hits_per_second (trace99, requests, all, false);
    printf ("\nhits only (Zipf 0.99, every document held, best of 3): "
            "LRU %.2fM lookups/s (%.0f ns), SIEVE %.2fM lookups/s (%.0f ns)\n",
            lru_hits / 1e6, 1e9 / lru_hits, sieve_hits / 1e6, 1e9 / sieve_hits);
    free (trace99);
    return 0;
}
