/*  read_api.c — the Read API tier: document reads over the shards.

    A worker of the balancer's "read" pool (the skeleton, the call table and
    the shard links are actors/api_core.c). It serves two requests:

        GET/HEAD /v1/C/ID   one document, from the shard that owns its slot;
                            If-Match (412 when it fails) and If-None-Match
                            (304 when it holds) are checked against the
                            tag the shard answers with
        GET/HEAD /v1/C      a list: one page asked of every shard at once,
                            merged in id order and cut to `limit`; `next`
                            is the last id given when any shard has more

    Any other method is the write pool's: 405. A list call is in SHARD until
    every shard has answered (`waiting` counts down); one failed shard fails
    the whole list, with the worst status.

    Which copy of a shard a read goes to (for a get, and for each shard's
    page of a list, each on its own; doc/http.md, "Read your writes"):

        Tiers-Consistency: strong       the primary
        a Tiers-Token entry for it      a replica in the rotation, with
                                        min-sequence and incarnation: it
                                        answers once it has that write
        otherwise (eventual)            a replica in the rotation, with
                                        eventual: 1
        no replica in the rotation      the primary

    A read sent to a replica is a PART waiting on it, until its bound
    (tiers_api_replica_bound: replica_timeout, plus the replica's read_wait
    when it waits for a token). A 409 (behind, another incarnation, out of
    the rotation), any answer other than 200 (or a get's 404), or no
    answer by the bound sends the same read to the primary, once; the
    primary's answer is final. An answer from a copy the part no longer
    waits for is dropped.

    Cache-aside (doc/cache.md): with caches in the map (the link
    `caches`), a get that is not strong asks first the cache that owns its
    key (actors/ring.h: rendezvous hashing over the caches, skipping one
    marked down), with the session's token entry for the key's shard when
    there is one, and waits for it up to `cache_timeout` plus that cache's
    `lease_wait` (within half of what is left of the deadline):

        200 / 404   a hit: answered as the shard's answer would be (ETag,
                    If-Match, If-None-Match, HEAD)
        202         a miss, with a lease: the read goes to storage as
                    above, with min-sequence the cache's `position` (of its
                    incarnation: never below the token, which the cache
                    checked), and the final answer fills the cache
        409         bypass: the read goes to storage as above, no fill
        no answer in time, an answer that cannot be used, a send that
                    failed: the cache is marked down for CACHE_DOWN_MS
                    (its keys go to the next cache) and the read goes to
                    storage; no error reaches the client
                    (tiers_api_cache_fallbacks_total{reason})

    A lease is filled only with what the cache can keep true: a document
    whose tag names the lease's incarnation, or a 404 whose copy says the
    sequence it read at (`sequence`, of the lease's incarnation, at least
    the position). Anything else is not filled; the lease lapses. A
    cache's answer for a call no longer waiting on it is dropped; so are
    the caches' answers to fills. A part's states:

        CACHE   --(200, 404)--> DONE
        CACHE   --(202)--> REPLICA or PRIMARY, holding the lease
        CACHE   --(409, error, bound, send failed)--> REPLICA or PRIMARY
        REPLICA --(usable answer)--> DONE
        REPLICA --(409, error, bound, send failed)--> PRIMARY
        PRIMARY --(any answer)--> DONE
*/
#include "api_core.h"
#include "map.h"
#include "sock.h"
#include "service.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "ring.h"
#include <jansson.h>
#include <inttypes.h>
#include <errno.h>

#define LIST_DEFAULT    100
#define LIST_MAX        1000
#define CACHE_TIMEOUT_MS    20      //  default `cache_timeout`
#define CACHE_DOWN_MS       1000    //  a cache that failed a read is skipped this long
#define LEASE_WAIT_MS       50      //  a cache's `lease_wait` when its entry has none
#define INCARNATION_MAX     32
#define FILL_RID            "~fill" //  never a call's rid (NAME-N)

//  One shard's share of a read.
typedef struct {
    int replica;                            //  the copy asked: a replica, or
                                            //  -1 for the primary
    int64_t bound;                          //  CACHE, REPLICA: wall ms to give up
    bool done;
    const tiers_token_entry_t *token;       //  the session's entry, or NULL
    bool in_cache;                          //  CACHE: waiting on cache `cache`
    size_t cache;
    uint64_t lease;                         //  a lease of cache `cache`, or 0
    int64_t position;                       //  the lease's: storage at least this
    char incarnation [INCARNATION_MAX + 1]; //  of the position
} part_t;

//  Why a get did not use the cache it asked.
typedef enum {
    CACHE_FALLBACK_TIMEOUT,                 //  no answer within the bound
    CACHE_FALLBACK_UNREACHABLE,             //  the get could not be sent
    CACHE_FALLBACK_ERROR,                   //  an answer that cannot be used
    CACHE_FALLBACK_REASONS
} cache_fallback_t;

//  What the cache answered a get (tiers_api_cache_answers_total).
typedef enum {
    CACHE_HIT, CACHE_MISS, CACHE_BYPASS, CACHE_ANSWERS
} cache_answer_t;

typedef struct _read_side_t read_side_t;

//  A cache of the map: its socket, its name and its lease_wait.
typedef struct {
    read_side_t *side;
    size_t index;
    const tiers_entry_t *entry;
    zsock_t *sock;
    int64_t lease_wait;
} cache_link_t;

//  The instance's own (the core's side pointer): the caches and their ring.
struct _read_side_t {
    tiers_api_core_t *core;
    cache_link_t *caches;
    size_t cache_count;
    tiers_ring_t *ring;
    int64_t cache_timeout;
    tiers_counter_t *fallbacks [CACHE_FALLBACK_REASONS];
    tiers_counter_t *answers [CACHE_ANSWERS];
    tiers_counter_t *fills;                 //  fills sent
    const tiers_api_hooks_t *hooks;         //  this side's (its calls')
};

typedef struct {
    tiers_api_call_t base;                  //  first: the core's part
    bool list;                              //  a list, else one document
    bool strong;                            //  Tiers-Consistency: strong
    tiers_token_t *token;                   //  the session's; its entries
                                            //  point into the request
    tiers_api_tags_t if_match;
    tiers_api_tags_t if_none;
    size_t shard;                           //  one document: its shard
    part_t one;                             //  one document: its part
    part_t *parts;                          //  list: one per shard
    int waiting;                            //  list: answers still due
    int limit;
    json_t *items;                          //  list: gathered items
    bool more;                              //  list: some shard had more
    int failed;                             //  list: worst shard status
} read_call_t;

static void
s_call_free (tiers_api_call_t *base)
{
    read_call_t *call = (read_call_t *) base;
    json_decref (call->items);
    free (call->parts);
    free (call->token);
}

//  --------------------------------------------------------------------------
//  Choosing a copy

static part_t *
s_part (read_call_t *call, size_t shard)
{
    return call->list ? &call->parts [shard] : shard == call->shard ? &call->one : NULL;
}

//  The request for one shard's share of the read, to whichever copy.
static tiers_wire_t *
s_request (tiers_api_core_t *core, read_call_t *call, size_t shard)
{
    tiers_wire_t *request = call->base.request;
    tiers_wire_t *message = tiers_api_shard_request (core, &call->base, shard,
                                                     call->list ? "list" : "get");
    if (call->list) {
        const char *after = tiers_wire_header (request, "after");
        if (after && *after)
            tiers_wire_set_header (message, "after", after, strlen (after));
        //  One more than asked tells whether this shard has more (at the
        //  largest page the shard's own cursor has to tell it).
        tiers_wire_set_headerf (message, "limit", "%d",
                                call->limit < LIST_MAX ? call->limit + 1 : LIST_MAX);
    }
    else {
        const char *id = tiers_wire_header (request, "id");
        tiers_wire_set_header (message, "id", id, strlen (id));
    }
    return message;
}

//  The earliest bound of the parts waiting on a replica: the call's wake.
static void
s_set_wake (read_call_t *call, tiers_api_core_t *core)
{
    call->base.wake_at = 0;
    size_t count = call->list ? tiers_api_shard_count (core) : 1;
    for (size_t i = 0; i < count; i++) {
        part_t *part = call->list ? &call->parts [i] : &call->one;
        if (!part->done && (part->replica >= 0 || part->in_cache)
        &&  (!call->base.wake_at || part->bound < call->base.wake_at))
            call->base.wake_at = part->bound;
    }
}

//  Sends one shard's share to the primary. Returns 0, or -1 when it
//  could not be sent (counted as a shard error).
static int
s_ask_primary (tiers_api_core_t *core, read_call_t *call, size_t shard, part_t *part)
{
    part->replica = -1;
    tiers_wire_t *message = s_request (core, call, shard);
    tiers_api_copy_t primary = { shard, -1 };
    if (tiers_api_copy_send (core, &primary, &message)) {
        tiers_api_shard_error (core);
        return -1;
    }
    return 0;
}

//  Sends one shard's share to the copy the rules above choose. Returns 0,
//  or -1 when not even the primary could be asked.
static int
s_ask (tiers_api_core_t *core, read_call_t *call, size_t shard, part_t *part)
{
    int replica = call->strong ? -1 : tiers_api_replica_pick (core, shard);
    if (replica < 0)
        return s_ask_primary (core, call, shard, part);
    tiers_wire_t *message = s_request (core, call, shard);
    //  A lease's position is at least the token's when the cache checked
    //  it; a lease handed on to a parked get may not be (the cache's
    //  position can move back at a follow again): the larger one counts.
    bool token_same = part->token && part->lease
                   && part->token->incarnation_size == strlen (part->incarnation)
                   && memcmp (part->token->incarnation, part->incarnation,
                              part->token->incarnation_size) == 0;
    if (part->lease && (!part->token || token_same)) {
        int64_t at = token_same && part->token->sequence > part->position
                   ? part->token->sequence : part->position;
        tiers_wire_set_headerf (message, "min-sequence", "%" PRId64, at);
        tiers_wire_set_header (message, "incarnation", part->incarnation,
                               strlen (part->incarnation));
    }
    else
    if (part->token) {
        tiers_wire_set_headerf (message, "min-sequence", "%" PRId64, part->token->sequence);
        tiers_wire_set_header (message, "incarnation", part->token->incarnation,
                               part->token->incarnation_size);
    }
    else
        tiers_wire_set_header (message, "eventual", "1", 1);
    part->bound = tiers_api_replica_bound (core, &call->base, replica,
                                           part->token || part->lease);
    //  The replica stops waiting for the token's sequence when we do.
    message->deadline = part->bound;
    tiers_api_copy_t copy = { shard, replica };
    if (tiers_api_copy_send (core, &copy, &message)) {
        tiers_api_read_fallback (core, TIERS_API_FALLBACK_UNREACHABLE);
        return s_ask_primary (core, call, shard, part);
    }
    part->replica = replica;
    s_set_wake (call, core);
    return 0;
}

//  --------------------------------------------------------------------------
//  The caches

static void
s_cache_fallback (read_side_t *side, cache_link_t *link, cache_fallback_t reason)
{
    tiers_counter_add (side->fallbacks [reason], 1);
    if (reason == CACHE_FALLBACK_TIMEOUT || reason == CACHE_FALLBACK_UNREACHABLE) {
        if (!tiers_ring_down (side->ring, link->index, zclock_mono ()))
            tiers_info ("cache %s %s: its keys go to the next cache for %d ms",
                        link->entry->name, reason == CACHE_FALLBACK_TIMEOUT
                        ? "did not answer in time" : "cannot be reached", CACHE_DOWN_MS);
        tiers_ring_set_down (side->ring, link->index, zclock_mono () + CACHE_DOWN_MS);
    }
}

//  CACHE: a get of one document to the cache that owns its key. Returns
//  0 when the part waits on it, -1 when the read goes to storage (no
//  cache up, the send failed).
static int
s_ask_cache (tiers_api_core_t *core, read_call_t *call, part_t *part)
{
    read_side_t *side = (read_side_t *) tiers_api_side (core);
    if (!side || !side->cache_count)
        return -1;
    //  A replica was promoted: the caches follow the old primary's stream,
    //  which may not know yet that it was fenced (doc/cache.md).
    if (tiers_api_primary_moved (core, call->shard))
        return -1;
    tiers_wire_t *request = call->base.request;
    const char *collection = tiers_wire_header (request, "collection");
    const char *id = tiers_wire_header (request, "id");
    char key [TIERS_COLLECTION_MAX + 1 + TIERS_DOC_ID_MAX + 1];
    int size = snprintf (key, sizeof key, "%s/%s", collection, id);
    int owner = tiers_ring_owner (side->ring, key, (size_t) size, zclock_mono ());
    if (owner < 0)
        return -1;
    cache_link_t *link = &side->caches [owner];
    tiers_wire_t *message = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (message, call->base.rid);
    tiers_wire_set_service (message, link->entry->name);
    message->trace = request->trace;
    tiers_wire_set_header (message, "op", "get", 3);
    tiers_wire_set_header (message, "collection", collection, strlen (collection));
    tiers_wire_set_header (message, "id", id, strlen (id));
    if (part->token) {
        tiers_wire_set_headerf (message, "min-sequence", "%" PRId64, part->token->sequence);
        tiers_wire_set_header (message, "incarnation", part->token->incarnation,
                               part->token->incarnation_size);
    }
    //  The cache may park the get for its lease_wait: that is no failure.
    int64_t now = tiers_wire_now ();
    int64_t bound = side->cache_timeout + link->lease_wait;
    int64_t deadline = request->deadline;
    if (deadline && (deadline - now) / 2 < bound)
        bound = (deadline - now) / 2;
    part->bound = now + (bound > 1 ? bound : 1);
    //  The cache answers a parked get (409) before we give up on it.
    message->deadline = part->bound - side->cache_timeout > now
                      ? part->bound - side->cache_timeout : now + 1;
    int rc = tiers_wire_send (message, zsock_resolve (link->sock), NULL);
    tiers_wire_destroy (&message);
    if (rc) {
        s_cache_fallback (side, link, CACHE_FALLBACK_UNREACHABLE);
        return -1;
    }
    part->in_cache = true;
    part->cache = link->index;
    part->replica = -1;
    s_set_wake (call, core);
    return 0;
}

//  A 202's lease into the part; -1 when the answer is not one.
static int
s_lease_take (part_t *part, const tiers_wire_t *answer)
{
    long long position = 0;
    const char *lease_text = tiers_wire_header (answer, "lease");
    const char *position_text = tiers_wire_header (answer, "position");
    const char *incarnation = tiers_wire_header (answer, "incarnation");
    const char *rest = NULL;
    //  A lease is any 64-bit number but 0: more than a long long holds.
    size_t length = lease_text ? strlen (lease_text) : 0;
    errno = 0;
    uint64_t lease = length && length <= 20 && strspn (lease_text, "0123456789") == length
                   ? strtoull (lease_text, NULL, 10) : 0;
    if (!lease || errno
    ||  !position_text || tiers_parse_unsigned (position_text, &position, &rest) || *rest
    ||  !incarnation || !*incarnation || strlen (incarnation) > INCARNATION_MAX)
        return -1;
    part->lease = lease;
    part->position = position;
    snprintf (part->incarnation, sizeof part->incarnation, "%s", incarnation);
    return 0;
}

//  The final answer of a part that holds a lease fills its cache, when it
//  is something the cache can keep true (the head of this file). The
//  cache's answer to the fill is dropped (its rid is no call's).
static void
s_fill (tiers_api_core_t *core, read_call_t *call, part_t *part, const tiers_wire_t *answer)
{
    read_side_t *side = (read_side_t *) tiers_api_side (core);
    uint64_t lease = part->lease;
    part->lease = 0;
    if (!lease || !side || part->cache >= side->cache_count)
        return;
    long long version = -1;
    const char *rest = NULL;
    const char *tag = NULL;
    bool fillable = false;
    if (answer->status == 200) {
        tag = tiers_wire_header (answer, "tag");
        const char *dot = tag ? strrchr (tag, '.') : NULL;
        size_t length = strlen (part->incarnation);
        fillable = dot && (size_t) (dot - tag) == length
                && !memcmp (tag, part->incarnation, length)
                && !tiers_parse_unsigned (dot + 1, &version, &rest) && !*rest;
    }
    else
    if (answer->status == 404) {
        const char *sequence = tiers_wire_header (answer, "sequence");
        const char *of = tiers_wire_header (answer, "incarnation");
        fillable = sequence && of && streq (of, part->incarnation)
                && !tiers_parse_unsigned (sequence, &version, &rest) && !*rest
                && version >= part->position;
    }
    cache_link_t *link = &side->caches [part->cache];
    tiers_wire_t *request = call->base.request;
    const char *collection = tiers_wire_header (request, "collection");
    const char *id = tiers_wire_header (request, "id");
    tiers_wire_t *message = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (message, FILL_RID);
    tiers_wire_set_service (message, link->entry->name);
    //  Nothing to fill with: the lease goes back, so that the key's next
    //  reader takes it now rather than after the cache's `lease`.
    tiers_wire_set_header (message, "op", fillable ? "fill" : "release",
                           fillable ? 4 : 7);
    tiers_wire_set_header (message, "collection", collection, strlen (collection));
    tiers_wire_set_header (message, "id", id, strlen (id));
    tiers_wire_set_headerf (message, "lease", "%" PRIu64, lease);
    if (!fillable) {
        tiers_wire_send (message, zsock_resolve (link->sock), NULL);
        tiers_wire_destroy (&message);
        return;
    }
    tiers_wire_set_headerf (message, "version", "%lld", version);
    if (tag) {
        tiers_wire_set_header (message, "tag", tag, strlen (tag));
        tiers_wire_set_body (message, answer->body, answer->body_size);
    }
    else {
        tiers_wire_set_header (message, "negative", "1", 1);
        tiers_wire_set_header (message, "incarnation", part->incarnation,
                               strlen (part->incarnation));
    }
    if (tiers_wire_send (message, zsock_resolve (link->sock), NULL) == 0)
        tiers_counter_add (side->fills, 1);
    tiers_wire_destroy (&message);
}

static void s_finish_get (tiers_api_core_t *core, read_call_t *call, tiers_wire_t *answer);

//  The cache's answer to a get. Returns true when the call was answered.
static bool
s_cache_answer (tiers_api_core_t *core, read_call_t *call, cache_link_t *link,
                tiers_wire_t *answer)
{
    part_t *part = &call->one;
    if (call->list || !part->in_cache || part->cache != link->index)
        return false;                   //  no longer waiting on it
    read_side_t *side = link->side;
    part->in_cache = false;
    s_set_wake (call, core);
    if (answer->status == 200 || answer->status == 404) {
        tiers_counter_add (side->answers [CACHE_HIT], 1);
        s_finish_get (core, call, answer);
        return true;
    }
    if (answer->status == 202 && s_lease_take (part, answer) == 0)
        tiers_counter_add (side->answers [CACHE_MISS], 1);
    else
    if (answer->status == 409)
        tiers_counter_add (side->answers [CACHE_BYPASS], 1);
    else {
        tiers_debug ("cache %s answered %d to a get: read storage", link->entry->name,
                     answer->status);
        s_cache_fallback (side, link, CACHE_FALLBACK_ERROR);
    }
    if (s_ask (core, call, call->shard, part)) {
        tiers_api_problem (core, &call->base, 503, "the shard is not reachable");
        return true;
    }
    return false;
}

//  Takes one answer from a cache without waiting; false when none was there.
static bool
s_on_cache (void *arg)
{
    cache_link_t *link = (cache_link_t *) arg;
    tiers_api_core_t *core = link->side->core;
    tiers_wire_t *answer = NULL;
    const char *error = NULL;
    if (tiers_wire_try_recv (zsock_resolve (link->sock), NULL, &answer, &error))
        return false;
    if (!answer) {
        tiers_warn ("malformed answer from cache %s: %s", link->entry->name,
                    error ? error : "?");
        return true;
    }
    tiers_api_call_t *call = tiers_api_call_find (core, answer->rid);
    if (call && !call->probe && call->hooks == link->side->hooks
    &&  s_cache_answer (core, (read_call_t *) call, link, answer))
        tiers_api_call_done (core, call);
    tiers_wire_destroy (&answer);
    return true;
}

//  --------------------------------------------------------------------------
//  A request from the balancer

static int
s_start_get (tiers_api_core_t *core, read_call_t *call)
{
    tiers_wire_t *request = call->base.request;
    const char *why = NULL;
    char detail [96];
    if (tiers_api_tags_parse (tiers_wire_header (request, "if-match"), false,
                              &call->if_match, &why)
    ||  tiers_api_tags_parse (tiers_wire_header (request, "if-none-match"), true,
                              &call->if_none, &why)) {
        snprintf (detail, sizeof detail, "%s %s",
                  why && call->if_none.present ? "If-None-Match" : "If-Match", why);
        tiers_api_problem (core, &call->base, 400, detail);
        return -1;
    }
    const char *collection = tiers_wire_header (request, "collection");
    const char *id = tiers_wire_header (request, "id");
    call->shard = tiers_api_shard_of (core, collection, id);
    call->one.token = tiers_token_find (call->token, tiers_api_shard_name (core, call->shard));
    //  A strong read is the primary's alone; any other asks a cache first.
    if (!call->strong && s_ask_cache (core, call, &call->one) == 0)
        return 0;
    if (s_ask (core, call, call->shard, &call->one)) {
        tiers_api_problem (core, &call->base, 503, "the shard is not reachable");
        return -1;
    }
    return 0;
}

static int
s_start_list (tiers_api_core_t *core, read_call_t *call)
{
    tiers_wire_t *request = call->base.request;
    call->list = true;
    call->limit = LIST_DEFAULT;
    const char *limit = tiers_wire_header (request, "limit");
    long long n;
    if (limit && (tiers_parse_int (limit, &n) || n < 1 || n > LIST_MAX)) {
        tiers_api_problem (core, &call->base, 400, "limit must be an integer from 1 to 1000");
        return -1;
    }
    if (limit)
        call->limit = (int) n;
    const char *after = tiers_wire_header (request, "after");
    if (after && *after && !tiers_api_name_ok (after, true)) {
        tiers_api_problem (core, &call->base, 400, "after must be a document id");
        return -1;
    }
    call->items = json_array ();
    size_t shards = tiers_api_shard_count (core);
    call->parts = (part_t *) calloc (shards, sizeof (part_t));
    assert (call->parts);
    for (size_t i = 0; i < shards; i++) {
        call->parts [i].token = tiers_token_find (call->token, tiers_api_shard_name (core, i));
        if (s_ask (core, call, i, &call->parts [i]) == 0)
            call->waiting++;
    }
    if (call->waiting < (int) shards) {
        tiers_api_problem (core, &call->base, 503, "a shard is not reachable");
        return -1;
    }
    return 0;
}

static int
s_start (tiers_api_core_t *core, tiers_api_call_t *base)
{
    read_call_t *call = (read_call_t *) base;
    const char *method = tiers_wire_header (base->request, "method");
    method = method ? method : "";
    if (!streq (method, "GET") && !streq (method, "HEAD")) {
        tiers_api_problem (core, base, 405, TIERS_API_WRONG_METHOD);
        return -1;
    }
    call->token = (tiers_token_t *) malloc (sizeof (tiers_token_t));
    assert (call->token);
    if (tiers_api_session (core, base, call->token, &call->strong))
        return -1;
    if (tiers_wire_header (base->request, "id"))
        return s_start_get (core, call);
    else
        return s_start_list (core, call);
}

//  --------------------------------------------------------------------------
//  A shard's answer

static int
s_by_id (const void *a, const void *b)
{
    const char *left = json_string_value (json_object_get (*(json_t * const *) a, "id"));
    const char *right = json_string_value (json_object_get (*(json_t * const *) b, "id"));
    return strcmp (left ? left : "", right ? right : "");
}

static void
s_finish_list (tiers_api_core_t *core, read_call_t *call)
{
    if (call->failed) {
        tiers_api_problem (core, &call->base, call->failed, "a shard could not list");
        return;
    }
    //  Merge in id order; ids are compared as bytes, as SQLite orders them.
    size_t count = json_array_size (call->items);
    json_t **sorted = (json_t **) malloc ((count ? count : 1) * sizeof (json_t *));
    for (size_t i = 0; i < count; i++)
        sorted [i] = json_array_get (call->items, i);
    qsort (sorted, count, sizeof (json_t *), s_by_id);
    size_t take = count < (size_t) call->limit ? count : (size_t) call->limit;
    json_t *items = json_array ();
    for (size_t i = 0; i < take; i++)
        json_array_append (items, sorted [i]);
    bool more = count > take || call->more;
    json_t *next = more && take ? json_object_get (sorted [take - 1], "id") : NULL;
    json_t *body = json_pack ("{s:o, s:O}", "items", items, "next",
                              next ? next : json_null ());
    free (sorted);
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    tiers_wire_t *reply = tiers_wire_reply_to (call->base.request, 200);
    tiers_wire_set_body (reply, text, strlen (text));
    free (text);
    tiers_api_reply (core, &call->base, reply);
    tiers_wire_destroy (&reply);
}

static void
s_list_part (read_call_t *call, part_t *part, tiers_wire_t *answer)
{
    part->done = true;
    call->waiting--;
    if (answer->status != 200) {
        call->failed = answer->status >= 500 ? answer->status : 502;
        return;
    }
    json_error_t error;
    json_t *page = json_loadb ((const char *) answer->body, answer->body_size,
                               JSON_ALLOW_NUL, &error);
    json_t *items = page ? json_object_get (page, "items") : NULL;
    if (!json_is_array (items)) {
        call->failed = 502;
        json_decref (page);
        return;
    }
    size_t index;
    json_t *item;
    json_array_foreach (items, index, item) {
        if (!json_is_string (json_object_get (item, "id"))) {
            call->failed = 502;
            break;
        }
        json_array_append (call->items, item);
    }
    //  The shard was asked for limit + 1: a full page means it has more.
    if (json_array_size (items) > (size_t) call->limit) {
        call->more = true;
        json_array_remove (call->items, json_array_size (call->items) - 1);
    }
    else
    if (call->limit == LIST_MAX && json_is_string (json_object_get (page, "next")))
        call->more = true;
    json_decref (page);
}

//  A part given up on its replica goes to the primary (PRIMARY). Returns
//  true when that was the last hope of the call and it was answered (a
//  get whose primary is not reachable, a list whose last part was this).
static bool
s_fall_back (tiers_api_core_t *core, read_call_t *call, size_t shard, part_t *part,
             tiers_api_fallback_t reason)
{
    tiers_api_read_fallback (core, reason);
    bool sent = s_ask_primary (core, call, shard, part) == 0;
    s_set_wake (call, core);
    if (sent)
        return false;
    if (!call->list) {
        tiers_api_problem (core, &call->base, 503, "the shard is not reachable");
        return true;
    }
    part->done = true;
    call->failed = 503;
    if (--call->waiting > 0)
        return false;
    s_finish_list (core, call);
    return true;
}

//  Returns true when the call is done.
static bool
s_answer (tiers_api_core_t *core, tiers_api_call_t *base, const tiers_api_copy_t *from,
          tiers_wire_t *answer)
{
    read_call_t *call = (read_call_t *) base;
    part_t *part = s_part (call, from->shard);
    if (!part || part->done || part->in_cache || part->replica != from->replica)
        return false;                   //  from a copy it no longer waits for
    if (from->replica >= 0) {
        //  Used as a shard's would be: a page, a document, or its absence.
        bool usable = answer->status == 200 || (!call->list && answer->status == 404);
        if (!usable)
            return s_fall_back (core, call, from->shard, part, answer->status == 409
                                ? TIERS_API_FALLBACK_REFUSED : TIERS_API_FALLBACK_ERROR);
        part->replica = -1;             //  no longer waiting on it
        s_set_wake (call, core);
    }
    tiers_api_read_served (core, from);
    if (call->list) {
        //  SHARD: a call leaves the table with its last answer.
        assert (call->waiting > 0);
        s_list_part (call, part, answer);
        if (call->waiting > 0)
            return false;
        s_finish_list (core, call);
        return true;
    }
    s_fill (core, call, part, answer);
    s_finish_get (core, call, answer);
    return true;
}

//  One document's final answer, a copy's or a cache's hit: the reply.
static void
s_finish_get (tiers_api_core_t *core, read_call_t *call, tiers_wire_t *answer)
{
    tiers_api_call_t *base = &call->base;
    if (answer->status >= 400) {
        tiers_api_shard_problem (core, base, answer,
                                 "the document's version does not match If-Match");
        return;
    }
    const char *tag = tiers_wire_header (answer, "tag");
    tiers_wire_t *reply = tiers_wire_reply_to (base->request, answer->status);
    tiers_api_etag (reply, tag);
    if (call->if_match.present && !tiers_api_tags_match (&call->if_match, tag)) {
        tiers_wire_destroy (&reply);
        tiers_api_problem (core, base, 412, "the document's version does not match If-Match");
        return;
    }
    //  HEAD gets the body too: MHD sends its length and drops it.
    if (call->if_none.present && tiers_api_tags_match (&call->if_none, tag))
        reply->status = 304;
    else
        tiers_wire_move_body (reply, answer);
    tiers_api_reply (core, base, reply);
    tiers_wire_destroy (&reply);
}

//  The call's wake_at came: every part still waiting on a replica past its
//  bound goes to the primary. Returns true when the call was answered.
static bool
s_wake (tiers_api_core_t *core, tiers_api_call_t *base)
{
    read_call_t *call = (read_call_t *) base;
    int64_t now = tiers_wire_now ();
    part_t *one = &call->one;
    if (!call->list && one->in_cache) {
        //  CACHE past its bound: the cache is down for a while; storage.
        if (one->bound <= now) {
            read_side_t *side = (read_side_t *) tiers_api_side (core);
            one->in_cache = false;
            s_cache_fallback (side, &side->caches [one->cache], CACHE_FALLBACK_TIMEOUT);
            if (s_ask (core, call, call->shard, one)) {
                tiers_api_problem (core, base, 503, "the shard is not reachable");
                return true;
            }
        }
        s_set_wake (call, core);
        return false;
    }
    size_t count = call->list ? tiers_api_shard_count (core) : 1;
    for (size_t i = 0; i < count; i++) {
        size_t shard = call->list ? i : call->shard;
        part_t *part = s_part (call, shard);
        if (!part->done && part->replica >= 0 && part->bound <= now
        &&  s_fall_back (core, call, shard, part, TIERS_API_FALLBACK_TIMEOUT))
            return true;
    }
    s_set_wake (call, core);
    return false;
}

//  --------------------------------------------------------------------------
//  The kind

static int s_attach (tiers_api_core_t *core, const tiers_actor_args_t *args,
                     tiers_reactor_t *reactor, char **why);
static void s_detach (tiers_api_core_t *core);

static const tiers_api_hooks_t s_hooks = {
    .api = "read",
    .call_size = sizeof (read_call_t),
    .start = s_start,
    .answer = s_answer,
    .wake = s_wake,
    .call_free = s_call_free,
    .replicas = true,
    .attach = s_attach,
    .detach = s_detach
};

//  The caches of the map: a DEALER each, their ring, the metrics.
static int
s_attach (tiers_api_core_t *core, const tiers_actor_args_t *args, tiers_reactor_t *reactor,
          char **why)
{
    read_side_t *side = (read_side_t *) zmalloc (sizeof *side);
    assert (side);
    side->core = core;
    side->hooks = &s_hooks;
    tiers_api_set_side (core, side);
    side->cache_timeout = tiers_entry_int (args->entry, "cache_timeout", CACHE_TIMEOUT_MS);
    side->ring = tiers_ring_new ();
    const tiers_target_t *targets;
    size_t count = tiers_entry_targets (args->entry, "caches", &targets);
    side->caches = (cache_link_t *) calloc (count + 1, sizeof (cache_link_t));
    assert (side->caches);
    for (size_t i = 0; i < count; i++) {
        cache_link_t *link = &side->caches [i];
        link->side = side;
        link->index = i;
        link->entry = targets [i].entry;
        link->lease_wait = tiers_entry_int (link->entry, "lease_wait", LEASE_WAIT_MS);
        link->sock = tiers_link_connect (args->entry, "caches", i, why);
        if (!link->sock)
            return -1;
        side->cache_count++;
        tiers_ring_add (side->ring, link->entry->name);
        tiers_reactor_reader (reactor, link->sock, 0, s_on_cache, link);
    }
    if (!side->cache_count)
        return 0;
    static const char *reasons [CACHE_FALLBACK_REASONS] = {
        "reason=\"timeout\"", "reason=\"unreachable\"", "reason=\"error\""
    };
    for (int i = 0; i < CACHE_FALLBACK_REASONS; i++)
        side->fallbacks [i] = tiers_metrics_counter ("tiers_api_cache_fallbacks_total",
            reasons [i], "Gets of the read-api that asked a cache and went to storage "
            "without its answer (the cache is skipped for a second after a timeout)");
    static const char *answers [CACHE_ANSWERS] = {
        "answer=\"hit\"", "answer=\"miss\"", "answer=\"bypass\""
    };
    for (int i = 0; i < CACHE_ANSWERS; i++)
        side->answers [i] = tiers_metrics_counter ("tiers_api_cache_answers_total",
            answers [i], "What the caches answered the read-api's gets: a hit, a miss "
            "with a lease (storage read, then a fill), a bypass (storage read)");
    side->fills = tiers_metrics_counter ("tiers_api_cache_fills_total", NULL,
        "Fills the read-api sent to the caches with a lease");
    return 0;
}

static void
s_detach (tiers_api_core_t *core)
{
    read_side_t *side = (read_side_t *) tiers_api_side (core);
    if (!side)
        return;
    for (size_t i = 0; i < side->cache_count; i++)
        zsock_destroy (&side->caches [i].sock);
    free (side->caches);
    tiers_ring_destroy (&side->ring);
    free (side);
    tiers_api_set_side (core, NULL);
}

//  The core's keys; how long a read waits for a replica before it asks
//  the primary (tiers_api_replica_bound), and for a cache before it reads
//  storage (plus the cache's lease_wait).
static const tiers_key_t s_keys [] = {
    TIERS_API_KEYS,
    { "replica_timeout", TIERS_KEY_MS, false, 1, 60000, NULL },
    { "cache_timeout",   TIERS_KEY_MS, false, 1, 60000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

//  The core's links, and every cache of the map (none is fine).
static const tiers_link_t s_links [] = {
    TIERS_API_LINKS,
    { "caches", "cache", "requests", ZMQ_DEALER, true, true, NULL },
    { NULL, NULL, NULL, 0, false, false, NULL }
};

static void
s_read_api_actor (zsock_t *pipe, void *args)
{
    tiers_api_run (pipe, args, &s_hooks);
}

const tiers_kind_t tiers_read_api_kind = {
    .name = "read-api",
    .pool = "read",
    .summary = "serves document reads: routes by slot to a shard's primary or its "
               "replicas, merges lists",
    .rank = TIERS_RANK_SERVICE, .run = s_read_api_actor, .keys = s_keys,
    .links = s_links, .multi = true, .listener = NULL
};
