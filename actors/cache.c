/*  cache.c — the cache tier: documents in memory in front of the shards.

    The ElastiCache / memcached tier of the ladder, as the read-api uses it
    (cache-aside, doc/cache.md): the read-api asks the cache that owns a
    key (actors/ring.h) first; on a miss the cache hands it a LEASE, the
    read-api reads storage and fills the cache with it. The cache never
    reads storage itself and holds no copy of a shard: what it holds is
    kept true by the shards' commit streams, which it follows as a KEYS
    follower (actors/follow.h): every committed write invalidates its key
    here (actors/cachestore.h keeps the entries, the leases and the cap).

    One actor, one thread, one reactor: the `requests` ROUTER (the wire
    protocol below and in doc/protocol.md, "The cache"), the follower's
    sockets and timer, and the pass hook that wakes the parked gets.

        get   collection, id [, min-sequence + incarnation]
              200 hit (tag, version, the body) | 404 negative hit (version)
              202 miss: lease, position, incarnation — read storage with at
                  least that sequence, then fill
              409 bypass (error says why): read storage, do not fill
        fill  collection, id, lease, version, tag + body | negative: 1
              (+ incarnation): 204 stored, 409 refused, 413 too large
        STATUS  the counts, the cap, and the follower's streams (JSON)
        anything else  400 with `error`, counted; nothing changes

    What a get meets, for its key (the store's key states, plus PARKED):

        shard not LIVE in the follower          409: an invalidation may
                                                be missing, so nothing of
                                                the shard is served or
                                                leased
        min-sequence above the position (or     409: the cache cannot
        another incarnation)                    prove it is that new
        CACHED                                  200 / 404 (a hit)
        ABSENT                                  202 (a miss: the lease)
        LEASED (another holds the lease)        PARKED, up to lease_wait

    A parked get ends in exactly one of: the fill arrives (answered as a
    hit); the key's lease ends without a fill (a refused fill: the oldest
    parked get is handed the next lease, 202, the others wait on for its
    fill); the key is invalidated or its shard reset (409: a read of
    storage must start after the write); its wait is over (409). So every
    get is answered once, and none waits longer than lease_wait.

    Invariants: nothing is served of a shard that is not LIVE; a get with a
    token is served only when the follower's position proves the entry at
    least as new as the token; every parked get is in `parked` under its
    key and counted in parked_count.
*/
#include "map.h"
#include "node.h"
#include "wire.h"
#include "reactor.h"
#include "sock.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "actors/cachestore.h"
#include "actors/follow.h"
#include <jansson.h>
#include <inttypes.h>
#include <errno.h>

#define MEMORY_DEFAULT      (64LL << 20)
#define NEGATIVE_TTL_MS     1000
#define LEASE_MS            2000
#define LEASE_WAIT_MS       50
#define SILENT_MS           1000
#define PARKED_MAX          100000      //  gets parked at once, at most
#define KEY_MAX             (TIERS_COLLECTION_MAX + 1 + TIERS_DOC_ID_MAX)
#define TAG_MAX             64
#define INCARNATION_MAX     32

//  A get waiting for the fill of another's lease.
typedef struct {
    zmsg_t *route;
    tiers_wire_t *request;
    int64_t until;                  //  monotonic ms: 409 then
} parked_t;

typedef struct {
    char name [96];
    zsock_t *router;
    tiers_reactor_t *reactor;
    tiers_cachestore_t *store;
    tiers_follow_t *follow;
    int64_t lease_wait;
    zhashx_t *parked;               //  key -> zlistx_t of parked_t, oldest first
    size_t parked_count;
    int64_t next_wake;              //  monotonic ms of the earliest `until` (0: none)
    tiers_cachestore_stats_t shown; //  what the metrics show of the store
    tiers_counter_t *hits, *misses, *lease_waits, *bypass, *refused;
    tiers_counter_t *fills, *fills_refused;
    tiers_counter_t *invalidations, *evictions, *expirations;
    tiers_gauge_t *bytes, *cap, *entries;
} cache_t;

//  --------------------------------------------------------------------------
//  Answers

static void
s_send (cache_t *self, tiers_wire_t **reply_p, zmsg_t *route)
{
    if (tiers_wire_send (*reply_p, zsock_resolve (self->router), route))
        tiers_debug ("answer %s: the caller is gone", (*reply_p)->rid);
    tiers_wire_destroy (reply_p);
}

//  An answer to `request` (NULL: a bare REPLY) with status and `error`.
static tiers_wire_t *
s_answer (const tiers_wire_t *request, const char *op, int status, const char *error)
{
    tiers_wire_t *reply;
    if (request)
        reply = tiers_wire_reply_to (request, status);
    else {
        reply = tiers_wire_new (TIERS_WIRE_REPLY);
        reply->status = (uint16_t) status;
    }
    if (op)
        tiers_wire_set_header (reply, "op", op, strlen (op));
    if (error)
        tiers_wire_set_header (reply, "error", error, strlen (error));
    return reply;
}

//  Bad input: 400, counted; nothing changed.
static void
s_refuse (cache_t *self, const tiers_wire_t *request, zmsg_t *route, const char *error)
{
    tiers_counter_add (self->refused, 1);
    const char *op = request ? tiers_wire_header (request, "op") : NULL;
    bool named = op && (streq (op, "get") || streq (op, "fill") || streq (op, "release"));
    tiers_wire_t *reply = s_answer (request, named ? op : NULL, 400, error);
    s_send (self, &reply, route);
}

static void
s_bypass (cache_t *self, const tiers_wire_t *request, zmsg_t *route, const char *error)
{
    tiers_counter_add (self->bypass, 1);
    tiers_wire_t *reply = s_answer (request, "get", 409, error);
    s_send (self, &reply, route);
}

static void
s_hit (cache_t *self, const tiers_wire_t *request, zmsg_t *route,
       const tiers_cache_entry_t *entry)
{
    tiers_counter_add (self->hits, 1);
    tiers_wire_t *reply = s_answer (request, "get", entry->negative ? 404 : 200, NULL);
    tiers_wire_set_headerf (reply, "version", "%" PRId64, entry->version);
    if (!entry->negative) {
        tiers_wire_set_header (reply, "tag", entry->tag, strlen (entry->tag));
        tiers_wire_set_body (reply, entry->value, entry->size);
    }
    s_send (self, &reply, route);
}

//  202: the lease is the caller's; it reads storage at least at `position`.
static void
s_miss (cache_t *self, const tiers_wire_t *request, zmsg_t *route, uint64_t lease,
        int64_t position, const char *incarnation)
{
    tiers_counter_add (self->misses, 1);
    tiers_wire_t *reply = s_answer (request, "get", 202, NULL);
    tiers_wire_set_headerf (reply, "lease", "%" PRIu64, lease);
    tiers_wire_set_headerf (reply, "position", "%" PRId64, position);
    tiers_wire_set_header (reply, "incarnation", incarnation, strlen (incarnation));
    s_send (self, &reply, route);
}

//  --------------------------------------------------------------------------
//  Keys and their shards

//  "COLLECTION/ID" into `key` (KEY_MAX + 1 bytes): names never hold '/'.
static void
s_key (char *key, const char *collection, const char *id)
{
    snprintf (key, KEY_MAX + 1, "%s/%s", collection, id);
}

//  The follower's position of the key's shard, with its incarnation; -1
//  when it has none.
static int64_t
s_position (cache_t *self, size_t shard, const char **incarnation)
{
    *incarnation = NULL;
    int64_t position = tiers_follow_position (self->follow, shard, incarnation);
    if (position < 0 || !*incarnation || !**incarnation)
        return -1;
    return position;
}

//  --------------------------------------------------------------------------
//  Parked gets

static void
s_parked_destroy (parked_t **parked_p)
{
    parked_t *parked = *parked_p;
    if (parked) {
        zmsg_destroy (&parked->route);
        tiers_wire_destroy (&parked->request);
        free (parked);
        *parked_p = NULL;
    }
}

static void
s_parked_free (void **item)
{
    s_parked_destroy ((parked_t **) item);
}

static void
s_list_free (void **item)
{
    zlistx_destroy ((zlistx_t **) item);
}

static void
s_park (cache_t *self, const char *key, tiers_wire_t **request_p, zmsg_t **route_p,
        int64_t until)
{
    zlistx_t *gets = (zlistx_t *) zhashx_lookup (self->parked, key);
    if (!gets) {
        gets = zlistx_new ();
        zlistx_set_destructor (gets, s_parked_free);
        zhashx_insert (self->parked, key, gets);
    }
    parked_t *parked = (parked_t *) zmalloc (sizeof *parked);
    assert (parked);
    parked->request = *request_p;
    parked->route = *route_p;
    parked->until = until;
    *request_p = NULL;
    *route_p = NULL;
    zlistx_add_end (gets, parked);
    self->parked_count++;
    if (!self->next_wake || until < self->next_wake)
        self->next_wake = until;
    tiers_counter_add (self->lease_waits, 1);
}

//  Every parked get of the key: 409 (`error`), and the key leaves `parked`.
static void
s_unpark_all (cache_t *self, const char *key, const char *error)
{
    zlistx_t *gets = (zlistx_t *) zhashx_lookup (self->parked, key);
    if (!gets)
        return;
    for (parked_t *parked = (parked_t *) zlistx_first (gets); parked;
         parked = (parked_t *) zlistx_next (gets))
        s_bypass (self, parked->request, parked->route, error);
    self->parked_count -= zlistx_size (gets);
    zhashx_delete (self->parked, key);
}

//  After a fill of the key: what the store holds now decides for its
//  parked gets. An entry: all are hits. No entry and no live lease (the
//  fill was refused and its lease ended): the oldest takes the next lease,
//  the others wait on for its fill. Another's live lease: they wait on.
static void
s_unpark_filled (cache_t *self, const char *key, size_t shard)
{
    zlistx_t *gets = (zlistx_t *) zhashx_lookup (self->parked, key);
    if (!gets)
        return;
    tiers_cache_entry_t entry;
    uint64_t lease = 0;
    switch (tiers_cachestore_get (self->store, key, zclock_mono (), &entry, &lease)) {
        case TIERS_CACHE_HIT:
            for (parked_t *parked = (parked_t *) zlistx_first (gets); parked;
                 parked = (parked_t *) zlistx_next (gets))
                s_hit (self, parked->request, parked->route, &entry);
            self->parked_count -= zlistx_size (gets);
            zhashx_delete (self->parked, key);
            break;
        case TIERS_CACHE_MISS: {
            const char *incarnation;
            int64_t position = s_position (self, shard, &incarnation);
            parked_t *oldest = (parked_t *) zlistx_detach (gets, NULL);
            self->parked_count--;
            if (position < 0 || !tiers_follow_live (self->follow, shard))
                s_bypass (self, oldest->request, oldest->route,
                          "the shard's stream is not live here: read storage");
            else
                s_miss (self, oldest->request, oldest->route, lease, position, incarnation);
            s_parked_destroy (&oldest);
            if (zlistx_size (gets) == 0)
                zhashx_delete (self->parked, key);
            break;
        }
        case TIERS_CACHE_LEASED:
            break;
    }
}

//  The parked gets whose wait is over: 409. Called when next_wake came.
static void
s_wake (cache_t *self, int64_t now)
{
    self->next_wake = 0;
    zlistx_t *keys = zhashx_keys (self->parked);
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys)) {
        zlistx_t *gets = (zlistx_t *) zhashx_lookup (self->parked, key);
        parked_t *parked = (parked_t *) zlistx_first (gets);
        while (parked) {
            void *handle = zlistx_cursor (gets);
            parked_t *next = (parked_t *) zlistx_next (gets);
            if (parked->until <= now) {
                s_bypass (self, parked->request, parked->route,
                          "the lease's fill did not come within lease_wait");
                zlistx_delete (gets, handle);
                self->parked_count--;
            }
            else
            if (!self->next_wake || parked->until < self->next_wake)
                self->next_wake = parked->until;
            parked = next;
        }
        if (zlistx_size (gets) == 0)
            zhashx_delete (self->parked, key);
    }
    zlistx_destroy (&keys);
}

//  --------------------------------------------------------------------------
//  The commit streams

static void
s_on_key (void *arg, size_t shard, const char *key, int64_t version)
{
    (void) shard;
    cache_t *self = (cache_t *) arg;
    tiers_cachestore_time (self->store, zclock_mono ());
    tiers_cachestore_invalidate (self->store, key, version);
    s_unpark_all (self, key, "the key was written while the get waited");
}

static void
s_on_reset (void *arg, size_t shard)
{
    cache_t *self = (cache_t *) arg;
    tiers_follow_match_t match = { self->follow, shard };
    tiers_cachestore_stats_t before, after;
    tiers_cachestore_stats (self->store, &before);
    tiers_cachestore_flush (self->store, tiers_follow_match, &match);
    tiers_cachestore_stats (self->store, &after);
    if (before.entries > after.entries)
        tiers_info ("dropped the %zu entries of shard %s: its stream was reset",
                    before.entries - after.entries,
                    tiers_follow_shard_name (self->follow, shard));
    zlistx_t *keys = zhashx_keys (self->parked);
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys))
        if (tiers_follow_match (key, &match))
            s_unpark_all (self, key, "the shard's stream was reset while the get waited");
    zlistx_destroy (&keys);
}

//  --------------------------------------------------------------------------
//  Requests

//  A decimal that fits in 64 bits (a lease may use all of them), whole:
//  0 or -1.
static int
s_decimal (const char *text, uint64_t *value)
{
    size_t length = text ? strlen (text) : 0;
    if (length == 0 || length > 20 || strspn (text, "0123456789") != length)
        return -1;
    errno = 0;
    *value = strtoull (text, NULL, 10);
    return errno ? -1 : 0;
}

//  A tag or incarnation: 1..max printable ASCII, no space, no quote.
static bool
s_token_ok (const char *text, size_t max)
{
    size_t length = text ? strlen (text) : 0;
    if (length == 0 || length > max)
        return false;
    for (size_t i = 0; i < length; i++)
        if (text [i] <= 0x20 || text [i] >= 0x7f || text [i] == '"')
            return false;
    return true;
}

//  The collection and id of a request, checked by the API's rules: the
//  key, or NULL with *why.
static bool
s_request_key (const tiers_wire_t *msg, char *key, const char **why)
{
    bool bad = false;
    const char *collection = tiers_wire_text (msg, "collection", &bad);
    const char *id = tiers_wire_text (msg, "id", &bad);
    if (bad || !collection || !tiers_collection_ok (collection, strlen (collection))) {
        *why = "bad collection: " TIERS_COLLECTION_RULE;
        return false;
    }
    if (!id || !tiers_doc_id_ok (id, strlen (id))) {
        *why = "bad id: " TIERS_DOC_ID_RULE;
        return false;
    }
    s_key (key, collection, id);
    return true;
}

static void
s_get (cache_t *self, tiers_wire_t **msg_p, zmsg_t **route_p)
{
    tiers_wire_t *msg = *msg_p;
    char key [KEY_MAX + 1];
    const char *why = NULL;
    if (!s_request_key (msg, key, &why)) {
        s_refuse (self, msg, *route_p, why);
        return;
    }
    bool bad = false;
    const char *min_text = tiers_wire_text (msg, "min-sequence", &bad);
    const char *wanted = tiers_wire_text (msg, "incarnation", &bad);
    uint64_t min_sequence = 0;
    if (bad || (min_text && (s_decimal (min_text, &min_sequence) || min_sequence > INT64_MAX))
    ||  (min_text && !s_token_ok (wanted, INCARNATION_MAX))) {
        s_refuse (self, msg, *route_p, "bad min-sequence or incarnation: a decimal "
                  "sequence with the incarnation it is of");
        return;
    }
    size_t shard = tiers_follow_shard_of_key (self->follow, key);
    if (!tiers_follow_live (self->follow, shard)) {
        s_bypass (self, msg, *route_p, "the shard's stream is not live here: read storage");
        return;
    }
    const char *incarnation;
    int64_t position = s_position (self, shard, &incarnation);
    if (position < 0) {
        s_bypass (self, msg, *route_p, "the shard's stream is not followed now");
        return;
    }
    if (min_text && (!streq (wanted, incarnation) || position < (int64_t) min_sequence)) {
        s_bypass (self, msg, *route_p, "the cache is behind the token: read storage");
        return;
    }
    int64_t now = zclock_mono ();
    tiers_cache_entry_t entry;
    uint64_t lease = 0;
    switch (tiers_cachestore_get (self->store, key, now, &entry, &lease)) {
        case TIERS_CACHE_HIT:
            s_hit (self, msg, *route_p, &entry);
            break;
        case TIERS_CACHE_MISS:
            s_miss (self, msg, *route_p, lease, position, incarnation);
            break;
        case TIERS_CACHE_LEASED: {
            //  Within the caller's deadline, and within lease_wait.
            int64_t wait = self->lease_wait;
            if (msg->deadline && msg->deadline - tiers_wire_now () < wait)
                wait = msg->deadline - tiers_wire_now ();
            if (wait <= 0 || self->parked_count >= PARKED_MAX)
                s_bypass (self, msg, *route_p, "another read holds the key's lease");
            else
                s_park (self, key, msg_p, route_p, now + wait);
            break;
        }
    }
}

//  The key and the lease of a fill or a release; false when either is bad
//  (refused: 400, counted).
static bool
s_key_and_lease (cache_t *self, tiers_wire_t *msg, zmsg_t *route, char *key,
                 uint64_t *lease)
{
    const char *why = NULL;
    if (!s_request_key (msg, key, &why)) {
        s_refuse (self, msg, route, why);
        return false;
    }
    bool bad = false;
    const char *lease_text = tiers_wire_text (msg, "lease", &bad);
    *lease = 0;
    if (bad || s_decimal (lease_text, lease) || *lease == 0) {
        s_refuse (self, msg, route, "bad lease: the decimal a 202 gave");
        return false;
    }
    return true;
}

static void
s_fill (cache_t *self, tiers_wire_t *msg, zmsg_t *route)
{
    char key [KEY_MAX + 1];
    uint64_t lease = 0, version = 0;
    if (!s_key_and_lease (self, msg, route, key, &lease))
        return;
    bool bad = false;
    const char *version_text = tiers_wire_text (msg, "version", &bad);
    const char *tag = tiers_wire_text (msg, "tag", &bad);
    const char *negative = tiers_wire_text (msg, "negative", &bad);
    const char *of = tiers_wire_text (msg, "incarnation", &bad);
    if (bad) {
        s_refuse (self, msg, route, "a fill's header holds a NUL byte");
        return;
    }
    if (s_decimal (version_text, &version) || version > INT64_MAX) {
        s_refuse (self, msg, route, "bad version: a decimal sequence");
        return;
    }
    bool absent = negative && streq (negative, "1");
    if ((negative && !absent) || (absent == (tag != NULL))
    ||  (absent && msg->body_size) || (tag && !s_token_ok (tag, TAG_MAX))
    ||  (of && !s_token_ok (of, INCARNATION_MAX))) {
        s_refuse (self, msg, route, "a fill is a tag (1 to 64 printable characters) and "
                  "the document, or negative: 1 and no body");
        return;
    }
    //  A tag INCARNATION.VERSION names the incarnation it is of, and must
    //  say the version the fill says.
    char incarnation [INCARNATION_MAX + 1] = "";
    const char *dot = tag ? strrchr (tag, '.') : NULL;
    if (dot) {
        uint64_t tagged = 0;
        if (s_decimal (dot + 1, &tagged) || tagged != version
        ||  (size_t) (dot - tag) > INCARNATION_MAX) {
            s_refuse (self, msg, route, "the tag's version is not the fill's version");
            return;
        }
        memcpy (incarnation, tag, (size_t) (dot - tag));
        incarnation [dot - tag] = 0;
    }
    else
    if (of)
        snprintf (incarnation, sizeof incarnation, "%s", of);
    //  A fill of another incarnation than the stream's is older than what
    //  the cache follows (a reset voids the leases anyway).
    size_t shard = tiers_follow_shard_of_key (self->follow, key);
    const char *following;
    tiers_fill_t result;
    if (*incarnation && s_position (self, shard, &following) >= 0
    &&  !streq (incarnation, following)) {
        result = TIERS_FILL_STALE;
        tiers_cachestore_release (self->store, key, lease, zclock_mono ());
    }
    else
        result = tiers_cachestore_fill (self->store, key, lease,
                                        absent ? NULL : msg->body, msg->body_size,
                                        absent ? "" : tag, (int64_t) version, zclock_mono ());
    int status = 204;
    const char *error = NULL;
    switch (result) {
        case TIERS_FILL_STORED:
            break;
        case TIERS_FILL_NO_LEASE:
            status = 409;
            error = "no-lease: the key has no live lease, or another one";
            break;
        case TIERS_FILL_STALE:
            status = 409;
            error = "stale: older than a write the cache has seen";
            break;
        case TIERS_FILL_TOO_LARGE:
            status = 413;
            error = "too large for the cache's memory";
            break;
    }
    tiers_counter_add (status == 204 ? self->fills : self->fills_refused, 1);
    tiers_wire_t *reply = s_answer (msg, "fill", status, error);
    s_send (self, &reply, route);
    s_unpark_filled (self, key, shard);
}

//  op=release: the lease holder read nothing it can fill with; the next
//  parked get (if any) takes a new lease at once.
static void
s_release (cache_t *self, tiers_wire_t *msg, zmsg_t *route)
{
    char key [KEY_MAX + 1];
    uint64_t lease = 0;
    if (!s_key_and_lease (self, msg, route, key, &lease))
        return;
    bool released = tiers_cachestore_release (self->store, key, lease, zclock_mono ());
    tiers_wire_t *reply = s_answer (msg, "release", released ? 204 : 409,
                                    released ? NULL : "no-lease: the key has no such live lease");
    s_send (self, &reply, route);
    if (released)
        s_unpark_filled (self, key, tiers_follow_shard_of_key (self->follow, key));
}

static char *s_status_text (cache_t *self);

static bool
s_on_request (void *arg)
{
    cache_t *self = (cache_t *) arg;
    zmsg_t *route = NULL;
    tiers_wire_t *msg = NULL;
    const char *error = NULL;
    if (tiers_wire_try_recv (zsock_resolve (self->router), &route, &msg, &error))
        return false;
    if (!msg) {
        if (route) {
            char why [128];
            snprintf (why, sizeof why, "malformed message: %s", error ? error : "?");
            s_refuse (self, NULL, route, why);
        }
        else
            tiers_counter_add (self->refused, 1);
    }
    else
    if (msg->kind == TIERS_WIRE_STATUS) {
        tiers_wire_t *reply = tiers_wire_reply_to (msg, 200);
        char *text = s_status_text (self);
        tiers_wire_set_body (reply, text, strlen (text));
        free (text);
        s_send (self, &reply, route);
    }
    else
    if (msg->kind != TIERS_WIRE_REQUEST)
        s_refuse (self, msg, route, "a cache takes requests (get, fill) and STATUS");
    else {
        bool bad = false;
        const char *op = tiers_wire_text (msg, "op", &bad);
        if (op && streq (op, "get"))
            s_get (self, &msg, &route);
        else
        if (op && streq (op, "fill"))
            s_fill (self, msg, route);
        else
        if (op && streq (op, "release"))
            s_release (self, msg, route);
        else
            s_refuse (self, msg, route, "unknown op (get, fill, release)");
    }
    tiers_wire_destroy (&msg);
    zmsg_destroy (&route);
    return true;
}

//  --------------------------------------------------------------------------
//  Metrics and STATUS

//  The store's counts into the metrics (as deltas), the gauges set.
static void
s_metrics (cache_t *self)
{
    tiers_cachestore_stats_t now;
    tiers_cachestore_stats (self->store, &now);
    tiers_counter_add (self->invalidations, now.invalidations - self->shown.invalidations);
    tiers_counter_add (self->evictions, now.evictions - self->shown.evictions);
    tiers_counter_add (self->expirations, now.expirations - self->shown.expirations);
    tiers_gauge_set (self->bytes, (int64_t) now.bytes);
    tiers_gauge_set (self->entries, (int64_t) now.entries);
    tiers_gauge_set (self->cap, (int64_t) now.cap);
    self->shown = now;
}

static char *
s_status_text (cache_t *self)
{
    s_metrics (self);
    tiers_cachestore_stats_t *stats = &self->shown;
    json_t *status = json_pack ("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                                " s:I, s:I, s:I, s:I, s:I}",
        "cache", self->name,
        "cap", (json_int_t) stats->cap,
        "bytes", (json_int_t) stats->bytes,
        "entries", (json_int_t) stats->entries,
        "hits", (json_int_t) tiers_counter_value (self->hits),
        "misses", (json_int_t) tiers_counter_value (self->misses),
        "lease_waits", (json_int_t) tiers_counter_value (self->lease_waits),
        "bypass", (json_int_t) tiers_counter_value (self->bypass),
        "fills", (json_int_t) tiers_counter_value (self->fills),
        "fills_refused", (json_int_t) tiers_counter_value (self->fills_refused),
        "refused", (json_int_t) tiers_counter_value (self->refused),
        "invalidations", (json_int_t) stats->invalidations,
        "evictions", (json_int_t) stats->evictions,
        "expirations", (json_int_t) stats->expirations,
        "parked", (json_int_t) self->parked_count,
        "lease_wait", (json_int_t) self->lease_wait);
    //  The follower says its streams as members of an object.
    char *streams = tiers_follow_status (self->follow);
    char *text = streams ? zsys_sprintf ("{%s}", streams) : NULL;
    json_t *members = text ? json_loads (text, 0, NULL) : NULL;
    if (json_is_object (members))
        json_object_update (status, members);
    json_decref (members);
    free (text);
    free (streams);
    char *dump = json_dumps (status, JSON_COMPACT);
    json_decref (status);
    assert (dump);
    return dump;
}

//  After each pass: the parked gets whose time came, and the metrics.
static int
s_on_pass (void *arg)
{
    cache_t *self = (cache_t *) arg;
    int64_t now = zclock_mono ();
    if (self->next_wake && now >= self->next_wake)
        s_wake (self, now);
    s_metrics (self);
    if (!self->next_wake)
        return -1;
    return self->next_wake > now ? (int) (self->next_wake - now) : 0;
}

//  --------------------------------------------------------------------------
//  The actor

static void
s_cache_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    const tiers_entry_t *entry = args->entry;
    tiers_log_set_actor (args->name);
    cache_t self_, *self = &self_;
    memset (self, 0, sizeof *self);
    snprintf (self->name, sizeof self->name, "%s", args->name);
    self->lease_wait = tiers_entry_int (entry, "lease_wait", LEASE_WAIT_MS);
    self->parked = zhashx_new ();
    zhashx_set_destructor (self->parked, s_list_free);

    char labels [160], value [112];
    snprintf (labels, sizeof labels, "cache=\"%s\"",
              tiers_metrics_label_value (value, sizeof value, args->name));
    self->hits = tiers_metrics_counter ("tiers_cache_hits_total", labels,
        "Gets a cache answered from an entry (a document or a negative one), at "
        "once or after waiting for another's fill");
    self->misses = tiers_metrics_counter ("tiers_cache_misses_total", labels,
        "Gets a cache answered with a lease (202): the caller reads storage and fills");
    self->lease_waits = tiers_metrics_counter ("tiers_cache_lease_waits_total", labels,
        "Gets that waited for the fill of another's lease");
    self->bypass = tiers_metrics_counter ("tiers_cache_bypass_total", labels,
        "Gets answered 409: read storage and do not fill (stream not live, behind "
        "a token, the wait for a fill over)");
    self->refused = tiers_metrics_counter ("tiers_cache_refused_total", labels,
        "Messages a cache refused as malformed (400)");
    self->fills = tiers_metrics_counter ("tiers_cache_fills_total", labels,
        "Fills a cache stored");
    self->fills_refused = tiers_metrics_counter ("tiers_cache_fills_refused_total", labels,
        "Fills a cache refused: no lease, a voided lease, stale, too large");
    self->invalidations = tiers_metrics_counter ("tiers_cache_invalidations_total", labels,
        "Committed writes that removed an entry or voided a lease of a cache");
    self->evictions = tiers_metrics_counter ("tiers_cache_evictions_total", labels,
        "Entries a cache evicted to stay within its memory");
    self->expirations = tiers_metrics_counter ("tiers_cache_expirations_total", labels,
        "Entries a cache dropped at their TTL");
    self->bytes = tiers_metrics_gauge ("tiers_cache_bytes", labels,
        "Bytes a cache holds: keys, values and overhead");
    self->cap = tiers_metrics_gauge ("tiers_cache_cap_bytes", labels,
        "The most bytes a cache may hold (its memory)");
    self->entries = tiers_metrics_gauge ("tiers_cache_entries", labels,
        "Entries a cache holds");

    tiers_cachestore_config_t config = {
        .cap_bytes = (size_t) tiers_entry_int (entry, "memory", MEMORY_DEFAULT),
        .ttl_ms = tiers_entry_int (entry, "ttl", 0),
        .negative_ttl_ms = tiers_entry_int (entry, "negative_ttl", NEGATIVE_TTL_MS),
        .lease_ms = tiers_entry_int (entry, "lease", LEASE_MS)
    };
    self->store = tiers_cachestore_new (&config);
    char *why = NULL;
    if (!self->store) {
        tiers_actor_failed (pipe, "cannot make its store (memory %zu bytes)",
                            config.cap_bytes);
        goto done;
    }
    self->router = tiers_port_bind (entry, "requests", &why);
    if (!self->router) {
        tiers_actor_failed (pipe, "%s", why ? why : "cannot bind its requests port");
        free (why);
        goto done;
    }
    tiers_follow_config_t follow = {
        .name = args->name, .map = args->map, .entry = entry, .link = "streams",
        .silent_ms = tiers_entry_int (entry, "silent", SILENT_MS),
        .on_key = s_on_key, .on_reset = s_on_reset, .arg = self
    };
    self->follow = tiers_follow_new (&follow, &why);
    if (!self->follow) {
        tiers_actor_failed (pipe, "cannot follow the commit streams: %s", why ? why : "?");
        free (why);
        goto done;
    }
    s_metrics (self);
    tiers_actor_ready (pipe);

    self->reactor = tiers_reactor_new (pipe);
    tiers_reactor_reader (self->reactor, self->router, 0, s_on_request, self);
    tiers_follow_attach (self->follow, self->reactor);
    tiers_reactor_set_pass (self->reactor, s_on_pass, self);
    tiers_reactor_run (self->reactor);
    tiers_reactor_destroy (&self->reactor);
done:
    //  Whoever waits hears the cache is going: 409, read storage.
    {
        zlistx_t *keys = zhashx_keys (self->parked);
        for (const char *key = (const char *) zlistx_first (keys); key;
             key = (const char *) zlistx_next (keys))
            s_unpark_all (self, key, "the cache is stopping");
        zlistx_destroy (&keys);
    }
    zhashx_destroy (&self->parked);
    tiers_follow_destroy (&self->follow);
    zsock_destroy (&self->router);
    tiers_cachestore_destroy (&self->store);
}

static const tiers_key_t s_keys [] = {
    { "memory",       TIERS_KEY_BYTES, false, TIERS_CACHESTORE_CAP_MIN, 0, NULL },
    { "ttl",          TIERS_KEY_MS,    false, 0, 30LL * 86400000, NULL },
    { "negative_ttl", TIERS_KEY_MS,    false, 1, 86400000, NULL },
    { "lease",        TIERS_KEY_MS,    false, 1, 3600000, NULL },
    { "lease_wait",   TIERS_KEY_MS,    false, 0, 60000, NULL },
    { "silent",       TIERS_KEY_MS,    false, 10, 600000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static const tiers_port_t s_ports [] = {
    { "requests", ZMQ_ROUTER, "get and fill of documents (leases), STATUS "
                              "(doc/protocol.md, \"The cache\")", true },
    { NULL, 0, NULL, false }
};

//  The follower's sockets: one to every shard's commit stream.
static const tiers_link_t s_links [] = {
    { "streams", "shard", "stream", ZMQ_DEALER, true, true, NULL },
    { NULL, NULL, NULL, 0, false, false, NULL }
};

const tiers_kind_t tiers_cache_kind = {
    .name = "cache",
    .summary = "holds documents in memory under a cap for the read-api (cache-aside "
               "with leases), invalidated from the shards' commit streams",
    .rank = TIERS_RANK_SERVICE, .run = s_cache_actor, .keys = s_keys,
    .ports = s_ports, .links = s_links, .multi = false, .listener = NULL
};
