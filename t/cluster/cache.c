/*  cache.c — the cache tier (actors/cache.c) and the read-api's
    cache-aside (actors/read_api.c), with real shards, real caches and a
    real read-api in this process.

    Two caches of different shapes: c0 (1 MB, no TTL, a long lease_wait so
    that the lease test is not a race against the machine's load) and c1
    (64 kB, ttl 1 s); both take a shard's stream for stale only after 10 s
    of silence, and the read-api waits 2 s for a cache's answer (a late
    answer would mark the cache down for a second and move its keys: not
    what these tests are about). The read-api hashes keys over them
    (actors/ring.h); the test uses the same ring to pick keys each cache
    owns. Requests go through the balancer as a DEALER (as the gateway
    sends them); the caches are also asked directly, on their own port,
    for their STATUS and for what a broken or hostile client would send.
    Storage reads are counted by the shards' own metric
    (tiers_shard_reads_total), which this process shares.
*/
#include "../tap.h"
#include "harness.h"
#include "service.h"
#include "node.h"
#include "map.h"
#include "log.h"
#include "metrics.h"
#include "slot.h"
#include "sock.h"
#include "actors/ring.h"
#include <jansson.h>

#define COLLECTION      "docs"
#define LEASE_GETS      1000
#define C1_MEMORY       65536

static tiers_ring_t *s_ring;
static char s_incarnation [2][40];      //  of s0, s1 (from the writes' tags)

//  --------------------------------------------------------------------------
//  Keys

static size_t
s_shard (const char *id)
{
    return tiers_slot_of (COLLECTION, id, 1024) < 512 ? 0 : 1;
}

static int
s_owner (const char *id)
{
    char key [300];
    snprintf (key, sizeof key, "%s/%s", COLLECTION, id);
    return tiers_ring_owner (s_ring, key, strlen (key), 0);
}

//  The first id PREFIX-N that cache `cache` owns (and shard `shard` holds,
//  unless -1), from N = *from on; *from moves past it.
static const char *
s_pick (int cache, int shard, const char *prefix, int *from)
{
    static char ids [16][64];
    static int turn;
    char *id = ids [turn++ % 16];
    for (int n = *from; ; n++) {
        snprintf (id, 64, "%s-%d", prefix, n);
        if (s_owner (id) == cache && (shard < 0 || (int) s_shard (id) == shard)) {
            *from = n + 1;
            return id;
        }
    }
}

//  --------------------------------------------------------------------------
//  Through the balancer

static tiers_wire_t *
s_api (zsock_t *client, const char *pool, const char *method, const char *id,
       const char *body, ...)
{
    tiers_wire_t *request = h_request (pool, body, 5000);
    tiers_wire_set_header (request, "method", method, strlen (method));
    tiers_wire_set_header (request, "collection", COLLECTION, strlen (COLLECTION));
    tiers_wire_set_header (request, "id", id, strlen (id));
    va_list args;
    va_start (args, body);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (request, key, value, strlen (value));
    }
    va_end (args);
    tiers_wire_t *reply = tiers_call (client, request, 6000);
    tiers_wire_destroy (&request);
    return reply;
}

//  A PUT of {"n":N} (padded to `pad` bytes); the token of the write into
//  `token` (size 128) when not NULL. Returns the status.
static int
s_put (zsock_t *client, const char *id, int n, size_t pad, char *token)
{
    char *padding = (char *) malloc (pad + 1);
    memset (padding, 'x', pad);
    padding [pad] = 0;
    char *body = zsys_sprintf ("{\"n\":%d,\"pad\":\"%s\"}", n, padding);
    free (padding);
    tiers_wire_t *reply = s_api (client, "write", "PUT", id, body, NULL);
    free (body);
    int status = reply ? reply->status : -1;
    const char *text = reply ? tiers_wire_header (reply, "token") : NULL;
    if (token)
        snprintf (token, 128, "%s", text ? text : "");
    //  The incarnation of its shard, from the tag: "\"INC.VERSION\"".
    const char *etag = reply ? tiers_wire_header (reply, "etag") : NULL;
    const char *dot = etag ? strchr (etag, '.') : NULL;
    if (dot && dot - etag - 1 < 40) {
        size_t shard = s_shard (id);
        memcpy (s_incarnation [shard], etag + 1, (size_t) (dot - etag - 1));
        s_incarnation [shard][dot - etag - 1] = 0;
    }
    tiers_wire_destroy (&reply);
    return status;
}

//  The sequence of a token "s0=INC.SEQ".
static long long
s_token_sequence (const char *token)
{
    const char *dot = strrchr (token, '.');
    return dot ? atoll (dot + 1) : -1;
}

//  A GET; its n (-404 for a 404, -status otherwise); *etag (size 80) if
//  not NULL.
static int
s_get_n (zsock_t *client, const char *id, const char *token, char *etag)
{
    tiers_wire_t *reply = token ? s_api (client, "read", "GET", id, NULL, "token", token, NULL)
                                : s_api (client, "read", "GET", id, NULL, NULL);
    int n = reply ? -reply->status : -1;
    if (reply && reply->status == 200) {
        json_t *doc = json_loadb ((const char *) reply->body, reply->body_size, 0, NULL);
        n = json_is_integer (json_object_get (doc, "n"))
          ? (int) json_integer_value (json_object_get (doc, "n")) : -2;
        json_decref (doc);
    }
    if (etag) {
        const char *value = reply ? tiers_wire_header (reply, "etag") : NULL;
        snprintf (etag, 80, "%s", value ? value : "");
    }
    tiers_wire_destroy (&reply);
    return n;
}

//  --------------------------------------------------------------------------
//  The caches directly

static int s_seq;

static json_t *
s_status (zsock_t *cache)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
    char rid [32];
    snprintf (rid, sizeof rid, "st%d", ++s_seq);
    tiers_wire_set_rid (request, rid);
    tiers_wire_t *reply = tiers_call (cache, request, 3000);
    tiers_wire_destroy (&request);
    json_t *status = reply && reply->status == 200
        ? json_loadb ((const char *) reply->body, reply->body_size, 0, NULL) : NULL;
    tiers_wire_destroy (&reply);
    return status;
}

static long long
s_stat (zsock_t *cache, const char *name)
{
    json_t *status = s_status (cache);
    json_t *value = json_object_get (status, name);
    long long number = json_is_integer (value) ? (long long) json_integer_value (value) : -1;
    json_decref (status);
    return number;
}

//  The cache's position for a shard (-1 when not live).
static long long
s_position (zsock_t *cache, const char *shard)
{
    json_t *status = s_status (cache);
    long long position = -1;
    size_t index;
    json_t *stream;
    json_array_foreach (json_object_get (status, "streams"), index, stream) {
        const char *name = json_string_value (json_object_get (stream, "shard"));
        const char *state = json_string_value (json_object_get (stream, "state"));
        if (name && streq (name, shard) && state && streq (state, "live"))
            position = (long long) json_integer_value (json_object_get (stream, "position"));
    }
    json_decref (status);
    return position;
}

//  Until the cache has seen the write of `token` (its invalidation).
static bool
s_wait_seen (zsock_t *cache, const char *token)
{
    char shard [8];
    snprintf (shard, sizeof shard, "%.2s", token);
    long long sequence = s_token_sequence (token);
    int64_t until = zclock_mono () + 10000;
    while (zclock_mono () < until) {
        if (s_position (cache, shard) >= sequence)
            return true;
        zclock_sleep (10);
    }
    return false;
}

//  Until the stat reaches at least `value` (fills are sent after the
//  answer: they land a moment later).
static long long
s_wait_stat (zsock_t *cache, const char *name, long long value)
{
    long long now = -1;
    int64_t until = zclock_mono () + 5000;
    while (true) {
        now = s_stat (cache, name);
        if (now >= value || zclock_mono () >= until)
            break;
        zclock_sleep (10);
    }
    return now;
}

//  A request on a cache's own port: op and header pairs, NULL-terminated.
static tiers_wire_t *
s_cache_call (zsock_t *cache, const char *op, const void *body, size_t size, ...)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
    char rid [32];
    snprintf (rid, sizeof rid, "c%d", ++s_seq);
    tiers_wire_set_rid (request, rid);
    if (op)
        tiers_wire_set_header (request, "op", op, strlen (op));
    va_list args;
    va_start (args, size);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (request, key, value, strlen (value));
    }
    va_end (args);
    if (body)
        tiers_wire_set_body (request, body, size);
    tiers_wire_t *reply = tiers_call (cache, request, 3000);
    tiers_wire_destroy (&request);
    return reply;
}

//  A get on the cache's port that must be a 202: its lease into `lease`
//  (size 32). Returns the status.
static int
s_lease (zsock_t *cache, const char *id, char *lease)
{
    tiers_wire_t *reply = s_cache_call (cache, "get", NULL, 0, "collection", COLLECTION,
                                        "id", id, NULL);
    int status = reply ? reply->status : -1;
    const char *value = reply ? tiers_wire_header (reply, "lease") : NULL;
    snprintf (lease, 32, "%s", value ? value : "");
    tiers_wire_destroy (&reply);
    return status;
}

//  The read-api's gets that asked a cache and went to storage without its
//  answer (a cache marked down for a second: its keys move to the other).
static uint64_t
s_fallbacks (void)
{
    static const char *reasons [] = {
        "reason=\"timeout\"", "reason=\"unreachable\"", "reason=\"error\""
    };
    uint64_t count = 0;
    for (int i = 0; i < 3; i++)
        count += tiers_counter_value (tiers_metrics_counter (
            "tiers_api_cache_fallbacks_total", reasons [i], "x"));
    return count;
}

//  Until every fill the read-api sent has reached its cache (stored or
//  refused), so that a count of fills starts from rest. Up to 5 s.
static void
s_fills_settle (zsock_t *c0, zsock_t *c1)
{
    tiers_counter_t *sent = tiers_metrics_counter ("tiers_api_cache_fills_total", NULL, "x");
    int64_t until = zclock_mono () + 5000;
    long long landed = -1, want = -1;
    while (zclock_mono () < until) {
        want = (long long) tiers_counter_value (sent);
        landed = s_stat (c0, "fills") + s_stat (c0, "fills_refused")
               + s_stat (c1, "fills") + s_stat (c1, "fills_refused");
        if (landed >= want)
            return;
        zclock_sleep (20);
    }
    diag ("fills: %lld of the read-api's %lld reached the caches", landed, want);
}

static uint64_t
s_storage_reads (void)
{
    uint64_t reads = 0;
    for (int i = 0; i < 2; i++) {
        char labels [32];
        snprintf (labels, sizeof labels, "shard=\"s%d\"", i);
        reads += tiers_counter_value (tiers_metrics_counter ("tiers_shard_reads_total",
                                                             labels, "x"));
    }
    return reads;
}

//  --------------------------------------------------------------------------
//  Scenarios

static void
s_hit_miss_fill (zsock_t *client, zsock_t *c0)
{
    int from = 0;
    const char *id = s_pick (0, -1, "hit", &from);
    char token [128];
    is_int (s_put (client, id, 1, 16, token), 201, "hit: PUT %s (owned by c0)", id);
    ok (s_wait_seen (c0, token), "hit: c0 has seen the write (%s)", token);
    long long misses = s_stat (c0, "misses"), hits = s_stat (c0, "hits");
    long long fills = s_stat (c0, "fills");
    uint64_t reads = s_storage_reads ();
    char etag [80], again [80];
    is_int (s_get_n (client, id, NULL, etag), 1, "hit: the first GET answers the document");
    is_int (s_stat (c0, "misses"), misses + 1, "hit: ... a miss of c0");
    is_int (s_wait_stat (c0, "fills", fills + 1), fills + 1, "hit: ... which the read-api "
            "filled");
    is_int (s_get_n (client, id, NULL, again), 1, "hit: the second GET answers it too");
    is (again, etag, "hit: ... with the same ETag (%s)", etag);
    is_int (s_stat (c0, "hits"), hits + 1, "hit: ... a hit of c0");
    tiers_wire_t *reply = s_api (client, "read", "GET", id, NULL, "if-none-match", etag, NULL);
    is_int (reply ? reply->status : -1, 304, "hit: If-None-Match of its ETag: 304 from "
            "the cache");
    tiers_wire_destroy (&reply);
    reply = s_api (client, "read", "GET", id, NULL, "if-match", "\"0.0\"", NULL);
    is_int (reply ? reply->status : -1, 412, "hit: If-Match of another ETag: 412");
    tiers_wire_destroy (&reply);
    reply = s_api (client, "read", "HEAD", id, NULL, NULL);
    ok (reply && reply->status == 200 && tiers_wire_header (reply, "etag")
        && streq (tiers_wire_header (reply, "etag"), etag), "hit: HEAD: 200 with the ETag");
    tiers_wire_destroy (&reply);
    is_int (s_stat (c0, "hits"), hits + 4, "hit: all four from c0");
    is_int ((long long) (s_storage_reads () - reads), 1, "hit: one storage read in all");
    reply = s_api (client, "read", "GET", id, NULL, "consistency", "strong", NULL);
    is_int (reply ? reply->status : -1, 200, "hit: a strong GET answers");
    tiers_wire_destroy (&reply);
    is_int ((long long) (s_storage_reads () - reads), 2, "hit: ... from storage (the "
            "primary), not the cache");
}

static void
s_invalidate (zsock_t *client, zsock_t *c0)
{
    int from = 0;
    const char *id = s_pick (0, -1, "inval", &from);
    char token [128];
    s_put (client, id, 1, 16, token);
    s_wait_seen (c0, token);
    long long fills = s_stat (c0, "fills");
    s_get_n (client, id, NULL, NULL);
    s_wait_stat (c0, "fills", fills + 1);
    long long hits = s_stat (c0, "hits");
    is_int (s_get_n (client, id, NULL, NULL), 1, "invalidate: v1 from the cache");
    is_int (s_stat (c0, "hits"), hits + 1, "invalidate: ... a hit");
    long long invalidations = s_stat (c0, "invalidations");
    is_int (s_put (client, id, 2, 16, NULL), 200, "invalidate: PUT v2");
    int64_t start = zclock_mono ();
    int n = 0;
    while (zclock_mono () - start < 10000 && (n = s_get_n (client, id, NULL, NULL)) != 2)
        zclock_sleep (5);
    ok (n == 2, "invalidate: an eventual GET sees v2 within 10 s (%lld ms)",
        (long long) (zclock_mono () - start));
    int old = 0;
    for (int i = 0; i < 30; i++)
        if (s_get_n (client, id, NULL, NULL) != 2)
            old++;
    is_int (old, 0, "invalidate: 30 more GETs: v2 every time, never v1 again");
    ok (s_stat (c0, "invalidations") > invalidations, "invalidate: c0 counted the "
        "invalidation");
}

static void
s_negative (zsock_t *client, zsock_t *c0)
{
    int from = 0;
    const char *id = s_pick (0, -1, "neg", &from);
    long long fills = s_stat (c0, "fills");
    is_int (s_get_n (client, id, NULL, NULL), -404, "negative: GET of %s: 404", id);
    is_int (s_wait_stat (c0, "fills", fills + 1), fills + 1, "negative: ... filled as a "
            "negative entry");
    long long hits = s_stat (c0, "hits");
    uint64_t reads = s_storage_reads ();
    is_int (s_get_n (client, id, NULL, NULL), -404, "negative: GET again: 404");
    is_int (s_stat (c0, "hits"), hits + 1, "negative: ... from the cache");
    is_int ((long long) (s_storage_reads () - reads), 0, "negative: ... no storage read");
    char token [128];
    is_int (s_put (client, id, 1, 16, token), 201, "negative: PUT creates it");
    is_int (s_get_n (client, id, token, NULL), 1, "negative: a GET with the write's "
            "token sees it at once");
    int64_t start = zclock_mono ();
    int n = 0;
    while (zclock_mono () - start < 10000 && (n = s_get_n (client, id, NULL, NULL)) != 1)
        zclock_sleep (5);
    is_int (n, 1, "negative: an eventual GET sees it within 10 s (%lld ms)",
            (long long) (zclock_mono () - start));
    int absent = 0;
    for (int i = 0; i < 20; i++)
        if (s_get_n (client, id, NULL, NULL) != 1)
            absent++;
    is_int (absent, 0, "negative: then never the 404 again (20 GETs)");
}

//  One key through fill, a hit within its life and a miss past it. A
//  round whose GETs the cache did not see as hits or misses (it bypassed
//  them: its stream was not live for a moment on a loaded machine; or the
//  read-api took it for down and sent its keys elsewhere), or whose first
//  read came too late to be within the ttl (700 ms after the GET that
//  filled it: the entry is younger than that), is played again with
//  another key, up to 3.
static bool
s_ttl_round (zsock_t *client, zsock_t *c1, const char *id, bool negative, int round)
{
    int want = negative ? -404 : 1;
    long long fills = s_stat (c1, "fills"), bypass = s_stat (c1, "bypass");
    uint64_t fallbacks = s_fallbacks ();
    int64_t filled_after = zclock_mono ();
    s_get_n (client, id, NULL, NULL);
    if (s_wait_stat (c1, "fills", fills + 1) < fills + 1) {
        diag ("ttl round %d: %s was not filled (bypassed %lld): again", round, id,
              s_stat (c1, "bypass") - bypass);
        return false;
    }
    long long hits = s_stat (c1, "hits"), misses = s_stat (c1, "misses");
    bypass = s_stat (c1, "bypass");
    int first = s_get_n (client, id, NULL, NULL);
    int64_t first_age = zclock_mono () - filled_after;     //  the entry's age, at most
    long long hit = s_stat (c1, "hits") - hits;
    zclock_sleep (1300);
    int second = s_get_n (client, id, NULL, NULL);
    long long miss = s_stat (c1, "misses") - misses;
    if ((hit != 1 || miss != 1) && s_stat (c1, "bypass") > bypass) {
        diag ("ttl round %d: %s was bypassed: again", round, id);
        return false;
    }
    if ((hit != 1 || miss != 1) && s_fallbacks () > fallbacks) {
        diag ("ttl round %d: the read-api went around a cache (%llu times): again", round,
              (unsigned long long) (s_fallbacks () - fallbacks));
        return false;
    }
    if (hit != 1 && first_age > 700) {
        diag ("ttl round %d: %s read %lld ms after its fill began: again", round, id,
              (long long) first_age);
        return false;
    }
    const char *what = negative ? "a cached 404" : "a GET within the ttl";
    is_int (first, want, "ttl: %s", what);
    is_int (hit, 1, "ttl: ... is a hit");
    is_int (second, want, "ttl: %s", negative ? "past negative_ttl (1 s)"
                                              : "a GET past the ttl (1 s)");
    is_int (miss, 1, "ttl: ... is a miss again");
    return true;
}

static void
s_ttl (zsock_t *client, zsock_t *c1)
{
    int from = 0;
    bool done = false;
    for (int round = 1; round <= 3 && !done; round++) {
        const char *id = s_pick (1, -1, "ttl", &from);
        char token [128];
        s_put (client, id, 1, 16, token);
        if (round == 1)
            ok (s_wait_seen (c1, token), "ttl: c1 has seen the write of %s", id);
        else
            s_wait_seen (c1, token);
        done = s_ttl_round (client, c1, id, false, round);
    }
    ok (done, "ttl: a round of the document's was played");
    ok (s_stat (c1, "expirations") >= 1, "ttl: c1 counted the expiration");
    done = false;
    for (int round = 1; round <= 3 && !done; round++)
        done = s_ttl_round (client, c1, s_pick (1, -1, "ttl-none", &from), true, round);
    ok (done, "ttl: a round of the 404's was played");
}

static void
s_eviction (zsock_t *client, zsock_t *c1)
{
    int from = 0, wrong = 0, over = 0;
    long long cap = s_stat (c1, "cap");
    is_int (cap, C1_MEMORY, "eviction: c1's cap is its memory (%d)", C1_MEMORY);
    long long evictions = s_stat (c1, "evictions");
    char token [128] = "";
    enum { COUNT = 60 };
    char ids [COUNT][64];
    for (int i = 0; i < COUNT; i++) {
        snprintf (ids [i], sizeof ids [i], "%s", s_pick (1, -1, "evict", &from));
        s_put (client, ids [i], i, 2000, token);
    }
    s_wait_seen (c1, token);
    long long most = 0;
    for (int i = 0; i < COUNT; i++) {
        if (s_get_n (client, ids [i], NULL, NULL) != i)
            wrong++;
        //  After each fill (it lands a moment after the answer).
        for (int poll = 0; poll < 3; poll++) {
            long long bytes = s_stat (c1, "bytes");
            if (bytes > most)
                most = bytes;
            if (bytes > cap || bytes < 0)
                over++;
        }
    }
    is_int (wrong, 0, "eviction: %d GETs of 2 kB documents answer each", COUNT);
    is_int (over, 0, "eviction: bytes used never above the cap (at most %lld of %lld)",
            most, cap);
    ok (s_stat (c1, "evictions") > evictions, "eviction: c1 evicted (%lld)",
        s_stat (c1, "evictions") - evictions);
    long long entries = s_stat (c1, "entries");
    ok (entries > 0 && entries < COUNT, "eviction: c1 holds %lld entries, not all %d",
        entries, COUNT);
    //  And what was evicted is read again (a miss, filled), correctly.
    wrong = 0;
    for (int i = 0; i < COUNT; i++)
        if (s_get_n (client, ids [i], NULL, NULL) != i)
            wrong++;
    is_int (wrong, 0, "eviction: a second round answers every document again");
}

static void
s_tokens (zsock_t *client, zsock_t *c0)
{
    int from = 0;
    const char *id = s_pick (0, -1, "token", &from);
    char token [128];
    int older = 0, fresh = 0;
    long long bypass = s_stat (c0, "bypass");
    long long hits = s_stat (c0, "hits");
    for (int i = 1; i <= 100; i++) {
        s_put (client, id, i, 16, token);
        int n = s_get_n (client, id, token, NULL);
        if (n < i)
            older++;
        //  An eventual read, so that the cache holds version i when the
        //  next write comes.
        if (s_get_n (client, id, NULL, NULL) == i)
            fresh++;
    }
    is_int (older, 0, "tokens: 100 writes, each read back with its token: never an "
            "older version");
    //  The cache's own check, asked directly: a token ahead of what it has
    //  seen, or of another incarnation, is a bypass; one it has seen is not.
    size_t shard = s_shard (id);
    char name [4], ahead [32], seen [32];
    snprintf (name, sizeof name, "s%zu", shard);
    long long position = s_position (c0, name);
    snprintf (ahead, sizeof ahead, "%lld", position + 1000);
    snprintf (seen, sizeof seen, "%lld", position);
    tiers_wire_t *reply = s_cache_call (c0, "get", NULL, 0, "collection", COLLECTION,
                                        "id", id, "min-sequence", ahead,
                                        "incarnation", s_incarnation [shard], NULL);
    is_int (reply ? reply->status : -1, 409, "tokens: a get with a token ahead of the "
            "cache's position: 409");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "get", NULL, 0, "collection", COLLECTION, "id", id,
                          "min-sequence", "1", "incarnation", "0123456789ab", NULL);
    is_int (reply ? reply->status : -1, 409, "tokens: ... of another incarnation: 409");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "get", NULL, 0, "collection", COLLECTION, "id", id,
                          "min-sequence", seen, "incarnation", s_incarnation [shard], NULL);
    is_int (reply ? reply->status : -1, 200, "tokens: ... at its position: served (200)");
    tiers_wire_destroy (&reply);
    diag ("tokens: %d eventual reads saw the last write; c0 bypassed %lld gets, hit %lld",
          fresh, s_stat (c0, "bypass") - bypass, s_stat (c0, "hits") - hits);
}

static void
s_bad_input (zsock_t *client, zsock_t *c0, zsock_t *c1, const char *c0_endpoint)
{
    s_fills_settle (c0, c1);            //  the last reads' fills, before the counts
    long long refused = s_stat (c0, "refused");
    long long fills_refused = s_stat (c0, "fills_refused");
    int from = 0;
    char lease [32], token [128];

    //  Not a tiers message at all.
    zsock_t *raw = tiers_sock_connect (ZMQ_DEALER, c0_endpoint, NULL);
    zstr_send (raw, "garbage");
    zsock_set_rcvtimeo (raw, 3000);
    zframe_t *frame = zframe_recv (raw);
    tiers_wire_t *reply = frame ? tiers_wire_decode (zframe_data (frame), zframe_size (frame),
                                                     NULL) : NULL;
    is_int (reply ? reply->status : -1, 400, "bad input: a frame that is no message: 400");
    tiers_wire_destroy (&reply);
    zframe_destroy (&frame);
    //  A frame longer than any message: the socket drops the peer.
    size_t size = TIERS_WIRE_MAX_MESSAGE + 1024;
    frame = zframe_new (NULL, size);
    memset (zframe_data (frame), 'T', size);
    zframe_send (&frame, raw, 0);
    zsock_destroy (&raw);

    reply = s_cache_call (c0, "bogus", NULL, 0, NULL);
    is_int (reply ? reply->status : -1, 400, "bad input: an unknown op: 400");
    ok (reply && tiers_wire_header (reply, "error"), "bad input: ... saying why");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, NULL, NULL, 0, "collection", COLLECTION, NULL);
    is_int (reply ? reply->status : -1, 400, "bad input: no op: 400");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "get", NULL, 0, "collection", COLLECTION, NULL);
    is_int (reply ? reply->status : -1, 400, "bad input: a get without an id: 400");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "get", NULL, 0, "collection", COLLECTION, "id", "..", NULL);
    is_int (reply ? reply->status : -1, 400, "bad input: a get of the id '..': 400");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "get", NULL, 0, "collection", COLLECTION, "id", "x",
                          "min-sequence", "7", NULL);
    is_int (reply ? reply->status : -1, 400, "bad input: min-sequence without incarnation: "
            "400");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "fill", "{}", 2, "collection", COLLECTION, "id", "x",
                          "version", "3", "tag", "abc.3", NULL);
    is_int (reply ? reply->status : -1, 400, "bad input: a fill without a lease: 400");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "fill", "{}", 2, "collection", COLLECTION, "id", "x",
                          "lease", "5", "version", "3", "negative", "1", NULL);
    is_int (reply ? reply->status : -1, 400, "bad input: a negative fill with a body: 400");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "fill", "{}", 2, "collection", COLLECTION, "id", "x",
                          "lease", "5", "version", "3", "tag", "abc.4", NULL);
    is_int (reply ? reply->status : -1, 400, "bad input: a tag that says another version: "
            "400");
    tiers_wire_destroy (&reply);
    is_int (s_stat (c0, "refused"), refused + 9, "bad input: c0 counted the nine refusals");

    //  Fills the store refuses: 409 (or 413), counted apart.
    const char *id = s_pick (0, 0, "bad", &from);
    s_put (client, id, 1, 16, token);
    s_wait_seen (c0, token);
    char tag [80], version [32];
    snprintf (tag, sizeof tag, "%s.3", s_incarnation [0]);
    reply = s_cache_call (c0, "fill", "{\"n\":9}", 7, "collection", COLLECTION, "id", id,
                          "lease", "12345", "version", "3", "tag", tag, NULL);
    is_int (reply ? reply->status : -1, 409, "bad input: a fill with a lease the key does "
            "not have: 409");
    tiers_wire_destroy (&reply);

    id = s_pick (0, 0, "bad", &from);
    s_put (client, id, 1, 16, token);
    s_wait_seen (c0, token);
    is_int (s_lease (c0, id, lease), 202, "bad input: a get of %s: a lease", id);
    s_put (client, id, 2, 16, token);
    s_wait_seen (c0, token);
    snprintf (version, sizeof version, "%lld", s_token_sequence (token));
    snprintf (tag, sizeof tag, "%s.%s", s_incarnation [0], version);
    reply = s_cache_call (c0, "fill", "{\"n\":2}", 7, "collection", COLLECTION, "id", id,
                          "lease", lease, "version", version, "tag", tag, NULL);
    is_int (reply ? reply->status : -1, 409, "bad input: a fill with a lease a write "
            "voided: 409");
    tiers_wire_destroy (&reply);

    id = s_pick (0, 0, "bad", &from);
    s_put (client, id, 1, 16, token);
    s_wait_seen (c0, token);
    is_int (s_lease (c0, id, lease), 202, "bad input: a get of %s: a lease", id);
    snprintf (version, sizeof version, "%lld", s_token_sequence (token) - 1);
    snprintf (tag, sizeof tag, "%s.%s", s_incarnation [0], version);
    reply = s_cache_call (c0, "fill", "{\"n\":0}", 7, "collection", COLLECTION, "id", id,
                          "lease", lease, "version", version, "tag", tag, NULL);
    is_int (reply ? reply->status : -1, 409, "bad input: a fill older than the write "
            "the cache saw (stale): 409");
    tiers_wire_destroy (&reply);

    id = s_pick (0, 0, "bad", &from);
    is_int (s_lease (c0, id, lease), 202, "bad input: a get of %s: a lease", id);
    reply = s_cache_call (c0, "fill", "{\"n\":0}", 7, "collection", COLLECTION, "id", id,
                          "lease", lease, "version", "5", "tag", "0123456789ab.5", NULL);
    is_int (reply ? reply->status : -1, 409, "bad input: a fill of another incarnation: "
            "409");
    tiers_wire_destroy (&reply);
    //  ... which gave the lease back: the next get takes a new one at once.
    char again [32];
    is_int (s_lease (c0, id, again), 202, "release: a refused fill of another incarnation "
            "gave the lease back (the next get is a miss, not parked)");
    ok (strcmp (again, lease) != 0, "release: ... with a new lease");
    reply = s_cache_call (c0, "release", NULL, 0, "collection", COLLECTION, "id", id,
                          "lease", again, NULL);
    is_int (reply ? reply->status : -1, 204, "release: the holder gives its lease back: 204");
    tiers_wire_destroy (&reply);
    reply = s_cache_call (c0, "release", NULL, 0, "collection", COLLECTION, "id", id,
                          "lease", again, NULL);
    is_int (reply ? reply->status : -1, 409, "release: the same lease again: 409");
    tiers_wire_destroy (&reply);
    is_int (s_lease (c0, id, again), 202, "release: ... and the next get is a miss with "
            "a lease");
    reply = s_cache_call (c0, "release", NULL, 0, "collection", COLLECTION, "id", id,
                          "lease", "x1", NULL);
    is_int (reply ? reply->status : -1, 400, "release: a bad lease: 400");
    tiers_wire_destroy (&reply);
    refused++;

    id = s_pick (0, 0, "bad", &from);
    is_int (s_lease (c0, id, lease), 202, "bad input: a get of %s: a lease", id);
    size = 2 << 20;
    char *big = (char *) malloc (size);
    memset (big, ' ', size);
    snprintf (tag, sizeof tag, "%s.5", s_incarnation [0]);
    reply = s_cache_call (c0, "fill", big, size, "collection", COLLECTION, "id", id,
                          "lease", lease, "version", "5", "tag", tag, NULL);
    free (big);
    is_int (reply ? reply->status : -1, 413, "bad input: a fill larger than the cache's "
            "memory: 413");
    tiers_wire_destroy (&reply);
    is_int (s_stat (c0, "fills_refused"), fills_refused + 5, "bad input: c0 counted the "
            "five refused fills");
    is_int (s_stat (c0, "refused"), refused + 9, "bad input: ... and still only those refusals "
            "(the long frame never reached it: the socket dropped it)");

    //  And it serves: a document through the read-api, twice, the second a hit.
    id = s_pick (0, -1, "after", &from);
    s_put (client, id, 7, 16, token);
    s_wait_seen (c0, token);
    long long fills = s_stat (c0, "fills");
    s_get_n (client, id, NULL, NULL);
    s_wait_stat (c0, "fills", fills + 1);
    long long hits = s_stat (c0, "hits");
    is_int (s_get_n (client, id, NULL, NULL), 7, "bad input: after all that c0 serves");
    is_int (s_stat (c0, "hits"), hits + 1, "bad input: ... from its memory");
}

static void
s_lease_herd (zsock_t *client, zsock_t *c0)
{
    int from = 0;
    const char *id = s_pick (0, -1, "herd", &from);
    char token [128];
    s_put (client, id, 42, 100, token);
    ok (s_wait_seen (c0, token), "lease: %s written; cold in c0", id);
    uint64_t reads = s_storage_reads ();
    long long waits = s_stat (c0, "lease_waits");
    static tiers_wire_t *replies [LEASE_GETS];
    for (int i = 0; i < LEASE_GETS; i++) {
        tiers_wire_t *request = h_request ("read", NULL, 20000);
        tiers_wire_set_header (request, "method", "GET", 3);
        tiers_wire_set_header (request, "collection", COLLECTION, strlen (COLLECTION));
        tiers_wire_set_header (request, "id", id, strlen (id));
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    int got = h_collect (client, replies, LEASE_GETS, 30000);
    int good = 0;
    for (int i = 0; i < got; i++) {
        if (replies [i]->status == 200 && strstr ((char *) replies [i]->body, "\"n\":42"))
            good++;
        tiers_wire_destroy (&replies [i]);
    }
    is_int (good, LEASE_GETS, "lease: %d concurrent GETs of one cold key all answer the "
            "document", LEASE_GETS);
    uint64_t storage = s_storage_reads () - reads;
    ok (storage >= 1 && storage <= 5, "lease: ... with %llu storage read%s (at most 5)",
        (unsigned long long) storage, storage == 1 ? "" : "s");
    diag ("lease: %lld gets waited for the lease holder's fill",
          s_stat (c0, "lease_waits") - waits);
}

//  --------------------------------------------------------------------------

int
main (void)
{
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    s_ring = tiers_ring_new ();
    tiers_ring_add (s_ring, "c0");
    tiers_ring_add (s_ring, "c1");
    const char *dir = h_tmpdir ();
    char c0 [64], c1 [64];
    snprintf (c0, sizeof c0, "tcp://127.0.0.1:%d", h_free_port ());
    snprintf (c1, sizeof c1, "tcp://127.0.0.1:%d", h_free_port ());
    char *text = zsys_sprintf (
        "cluster\n"
        "    name = cache-test\n"
        "    data = %s/data\n"
        "    log = warn\n"
        "    security = none\n"
        "node = box\n"
        "    balancer\n"
        "        bind = inproc://cache-balancer\n"
        "        queue = 5000\n"
        "    read-api\n"
        "        capacity = 2000\n"
        "        cache_timeout = 2s\n"
        "    write-api\n"
        "    cache = c0\n"
        "        bind = %s\n"
        "        memory = 1m\n"
        "        lease_wait = 1s\n"
        "        silent = 10s\n"
        "    cache = c1\n"
        "        bind = %s\n"
        "        memory = %d\n"
        "        ttl = 1s\n"
        "        negative_ttl = 1s\n"
        "        silent = 10s\n"
        "    shard = s0\n"
        "        bind = inproc://cache-s0\n"
        "        bind.stream = inproc://cache-s0-stream\n"
        "        slots = 0-511\n"
        "    shard = s1\n"
        "        bind = inproc://cache-s1\n"
        "        bind.stream = inproc://cache-s1-stream\n"
        "        slots = 512-1023\n", dir, c0, c1, C1_MEMORY);
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "cache.map", &errors);
    ok (map != NULL, "a map with two caches loads");
    if (!map)
        diag ("%s", errors);
    free (errors);
    tiers_node_t *node = map ? tiers_node_new (map, NULL) : NULL;
    bool started = node && tiers_node_start (node) == 0;
    ok (started, "its node starts: shards, balancer, APIs, caches");
    if (node && !started)
        diag ("%s", tiers_node_error (node));
    if (started) {
        zsock_t *client = zsock_new_dealer ("inproc://cache-balancer");
        zsock_t *cache0 = tiers_sock_connect (ZMQ_DEALER, c0, NULL);
        zsock_t *cache1 = tiers_sock_connect (ZMQ_DEALER, c1, NULL);
        ok (h_wait_workers (client, "read", 1, 10000) == 0, "the read pool joined");
        ok (h_wait_workers (client, "write", 1, 10000) == 0, "the write pool joined");
        bool live = false;
        for (int i = 0; i < 500 && !live; i++) {
            live = s_position (cache0, "s0") >= 0 && s_position (cache0, "s1") >= 0
                && s_position (cache1, "s0") >= 0 && s_position (cache1, "s1") >= 0;
            if (!live)
                zclock_sleep (20);
        }
        ok (live, "both caches follow both shards' streams (live)");
        s_hit_miss_fill (client, cache0);
        s_invalidate (client, cache0);
        s_negative (client, cache0);
        s_ttl (client, cache1);
        s_eviction (client, cache1);
        s_tokens (client, cache0);
        s_bad_input (client, cache0, cache1, c0);
        s_lease_herd (client, cache0);
        zsock_destroy (&cache0);
        zsock_destroy (&cache1);
        zsock_destroy (&client);
    }
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);
    tiers_ring_destroy (&s_ring);
    free (text);
    return done_testing ();
}
