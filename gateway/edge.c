/*  edge.c — the edge cache of one gateway instance (see edge.h).

    The one idea: an entry may be served only while the edge can prove
    that no write it has not heard of is newer, and the follower is that
    proof. The follower gives every committed write of a shard to on_key
    in order, so a shard that is LIVE at position P has had every
    invalidation up to P applied to the store; an entry the store still
    holds is then at least as new as any write up to P. Hence the three
    rules of a lookup, each a reason to forward instead (`bypass`):

        not LIVE                    the shard's stream is silent, fenced,
                                    or down: an invalidation may be missing
        a token beyond P            the session asks for a write the edge
                                    has not heard of (or another
                                    incarnation): only storage can say
        strong, If-Match            the caller wants the primary's answer,
                                    or a precondition a write depends on

    and the fill rule: a MISS that got the key's lease forwards its read
    with a token entry SHARD=INCARNATION.P, so the copy that answers has
    applied at least P, and fills with the answer's version. A write the
    stream brings between the lookup and the fill voids the lease (the
    store refuses that fill), and a fill older than an invalidation the
    store saw is refused too: what the store holds is never older than
    what the follower told it.

    A request's way through the edge:

        lookup --bypass--> FORWARDED (no ticket)
        lookup --HIT--> ANSWERED here (200, 304, or the read-api's 404)
        lookup --MISS, lease--> FORWARDED with a ticket --reply--> fill
        lookup --LEASED--> FORWARDED (no ticket: another request fills)

    A write that goes through this instance invalidates its key here as
    its answer passes (the answer's token gives its version), before the
    client can ask again: the same client then reads its write from this
    instance whatever the stream's delay. Through another instance, the
    stream brings it.

    The hit path does what it must and no more: one scan of the request's
    headers, the key's shard and one lookup in the store, a copy of the
    body into the response (the entry may go before MHD has sent it).
*/
#include "edge.h"
#include "actors/cachestore.h"
#include "actors/follow.h"
#include "actors/api_core.h"
#include "map.h"
#include "names.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"

#define EDGE_DEFAULT_CAP    (32 * 1024 * 1024)      //  with streams in the map
#define EDGE_KEY_MAX        (TIERS_COLLECTION_MAX + 1 + TIERS_DOC_ID_MAX)
#define EDGE_TAG_MAX        96                      //  longer tags are not kept
#define EDGE_SYNC_MS        1000                    //  gauges and TTL counts

//  Why a read was forwarded without looking (the metric's reason label).
typedef enum {
    BYPASS_STRONG,          //  Tiers-Consistency other than eventual
    BYPASS_IF_MATCH,        //  If-Match (or an If-None-Match we cannot read)
    BYPASS_TOKEN,           //  a token entry past what the edge has heard
    BYPASS_NOT_LIVE,        //  the shard's stream is not live
    BYPASS_REASONS
} bypass_t;

static const char *s_bypass_names [BYPASS_REASONS] = {
    "strong", "if-match", "token", "not-live"
};

struct _tiers_edge_t {
    char name [96];                 //  the gateway instance
    tiers_cachestore_t *store;
    tiers_follow_t *follow;
    size_t cap;
    tiers_cachestore_stats_t seen;  //  the store's counts already exported
    //  Metrics (label gateway="NAME")
    tiers_counter_t *hits, *misses, *leased, *fills, *refused;
    tiers_counter_t *invalidations, *evictions, *expirations, *resets;
    tiers_counter_t *bypass [BYPASS_REASONS];
    tiers_gauge_t *bytes, *cap_bytes, *entries;
    //  Per shard: the newest write answered through this instance, as its
    //  token said (incarnation "" = none since the last reset). A miss
    //  reads at least there, though the stream may not have told of it yet.
    size_t shards;
    int64_t *written;
    char (*written_incarnation) [TIERS_TOKEN_INCARNATION_MAX + 1];
};

//  --------------------------------------------------------------------------
//  The store's counts as metrics: its counters move by what changed since
//  the last look (after each change of the store, and every second for
//  what time does: TTLs).

static void
s_add (tiers_counter_t *counter, uint64_t now, uint64_t before)
{
    if (now > before)
        tiers_counter_add (counter, now - before);
}

static void
s_sync (tiers_edge_t *self)
{
    tiers_cachestore_stats_t stats;
    tiers_cachestore_stats (self->store, &stats);
    s_add (self->fills, stats.fills, self->seen.fills);
    s_add (self->refused, stats.refused, self->seen.refused);
    s_add (self->invalidations, stats.invalidations, self->seen.invalidations);
    s_add (self->evictions, stats.evictions, self->seen.evictions);
    s_add (self->expirations, stats.expirations, self->seen.expirations);
    tiers_gauge_set (self->bytes, (int64_t) stats.bytes);
    tiers_gauge_set (self->entries, (int64_t) stats.entries);
    self->seen = stats;
}

static void
s_on_timer (void *arg)
{
    s_sync ((tiers_edge_t *) arg);
}

//  --------------------------------------------------------------------------
//  The follower's news

static void
s_on_key (void *arg, size_t shard, const char *key, int64_t version)
{
    (void) shard;
    tiers_edge_t *self = (tiers_edge_t *) arg;
    tiers_cachestore_time (self->store, zclock_mono ());
    if (tiers_cachestore_invalidate (self->store, key, version))
        s_sync (self);
}

static void
s_on_reset (void *arg, size_t shard)
{
    tiers_edge_t *self = (tiers_edge_t *) arg;
    tiers_follow_match_t match = { self->follow, shard };
    tiers_cachestore_flush (self->store, tiers_follow_match, &match);
    if (self->written && shard < self->shards) {
        self->written [shard] = 0;
        self->written_incarnation [shard][0] = 0;
    }
    tiers_counter_add (self->resets, 1);
    tiers_debug ("edge: shard %s reset: its keys are dropped",
                 tiers_follow_shard_name (self->follow, shard));
    s_sync (self);
}

//  --------------------------------------------------------------------------
//  Construction

static void
s_metrics (tiers_edge_t *self)
{
    char labels [160], value [120];
    tiers_metrics_label_value (value, sizeof value, self->name);
    snprintf (labels, sizeof labels, "gateway=\"%s\"", value);
    self->hits = tiers_metrics_counter ("tiers_gateway_edge_hits_total", labels,
        "Document reads answered from the gateway's edge cache");
    self->misses = tiers_metrics_counter ("tiers_gateway_edge_misses_total", labels,
        "Document reads the edge cache looked up and did not hold (forwarded)");
    self->leased = tiers_metrics_counter ("tiers_gateway_edge_leased_total", labels,
        "Misses that found another read's lease on the key: forwarded, no fill");
    self->fills = tiers_metrics_counter ("tiers_gateway_edge_fills_total", labels,
        "Answers stored in the edge cache");
    self->refused = tiers_metrics_counter ("tiers_gateway_edge_fills_refused_total", labels,
        "Fills refused: the lease was voided by a write or expired, the answer was "
        "older than an invalidation, or too large");
    self->invalidations = tiers_metrics_counter ("tiers_gateway_edge_invalidations_total",
        labels, "Committed writes from the commit streams that removed an entry or "
        "voided a lease");
    self->evictions = tiers_metrics_counter ("tiers_gateway_edge_evictions_total", labels,
        "Entries evicted to stay under edge_cache");
    self->expirations = tiers_metrics_counter ("tiers_gateway_edge_expirations_total",
        labels, "Entries dropped at their TTL (edge_ttl, edge_negative_ttl)");
    self->resets = tiers_metrics_counter ("tiers_gateway_edge_resets_total", labels,
        "Shards whose keys were all dropped: the stream could not tell what changed");
    for (int reason = 0; reason < BYPASS_REASONS; reason++) {
        char with_reason [200];
        snprintf (with_reason, sizeof with_reason, "%s,reason=\"%s\"", labels,
                  s_bypass_names [reason]);
        self->bypass [reason] = tiers_metrics_counter ("tiers_gateway_edge_bypass_total",
            with_reason, "Document reads forwarded without a lookup, by reason");
    }
    self->bytes = tiers_metrics_gauge ("tiers_gateway_edge_bytes", labels,
        "Bytes the edge cache holds (keys, values, overhead)");
    self->cap_bytes = tiers_metrics_gauge ("tiers_gateway_edge_cap_bytes", labels,
        "The edge cache's cap (edge_cache)");
    self->entries = tiers_metrics_gauge ("tiers_gateway_edge_entries", labels,
        "Entries the edge cache holds (negative ones too)");
    tiers_gauge_set (self->cap_bytes, (int64_t) self->cap);
}

tiers_edge_t *
tiers_edge_new (const tiers_actor_args_t *args, int64_t lease_ms, char **why)
{
    assert (args && why);
    *why = NULL;
    const tiers_entry_t *entry = args->entry;
    size_t streams = tiers_entry_targets (entry, "streams", NULL);
    long long cap = tiers_entry_int (entry, "edge_cache", streams ? EDGE_DEFAULT_CAP : 0);
    if (cap == 0)
        return NULL;
    if (cap < TIERS_CACHESTORE_CAP_MIN) {
        *why = zsys_sprintf ("edge_cache is %lld bytes; the least is %d (or 0: off)",
                             cap, TIERS_CACHESTORE_CAP_MIN);
        return NULL;
    }
    if (streams == 0) {
        *why = strdup ("edge_cache needs the shards' commit streams, and no shard of the "
                       "map binds a stream port (bind.stream)");
        return NULL;
    }
    tiers_edge_t *self = (tiers_edge_t *) zmalloc (sizeof *self);
    assert (self);
    snprintf (self->name, sizeof self->name, "%s", args->name);
    self->cap = (size_t) cap;
    tiers_cachestore_config_t config = {
        .cap_bytes = self->cap,
        .ttl_ms = tiers_entry_int (entry, "edge_ttl", 0),
        .negative_ttl_ms = tiers_entry_int (entry, "edge_negative_ttl", 500),
        .lease_ms = lease_ms > 0 ? lease_ms : 5000
    };
    self->store = tiers_cachestore_new (&config);
    tiers_follow_config_t follow = {
        .name = self->name,
        .map = args->map,
        .entry = entry,
        .link = "streams",
        .silent_ms = tiers_entry_int (entry, "edge_silent", 1000),
        .on_key = s_on_key,
        .on_reset = s_on_reset,
        .arg = self
    };
    self->follow = self->store ? tiers_follow_new (&follow, why) : NULL;
    if (!self->follow) {
        if (!*why)
            *why = strdup ("the edge cache's store cannot be made");
        tiers_edge_destroy (&self);
        return NULL;
    }
    self->shards = tiers_follow_shard_count (self->follow);
    self->written = (int64_t *) zmalloc ((self->shards + 1) * sizeof (int64_t));
    self->written_incarnation = zmalloc ((self->shards + 1)
                                         * sizeof self->written_incarnation [0]);
    assert (self->written && self->written_incarnation);
    s_metrics (self);
    s_sync (self);
    tiers_info ("edge cache: %lld bytes, ttl %lld ms, negative ttl %lld ms, silent %lld ms; "
                "following %zu shard stream%s", cap, (long long) config.ttl_ms,
                (long long) config.negative_ttl_ms, (long long) follow.silent_ms,
                streams, streams == 1 ? "" : "s");
    return self;
}

void
tiers_edge_destroy (tiers_edge_t **self_p)
{
    assert (self_p);
    tiers_edge_t *self = *self_p;
    if (self) {
        tiers_follow_destroy (&self->follow);
        tiers_cachestore_destroy (&self->store);
        free (self->written);
        free (self->written_incarnation);
        free (self);
        *self_p = NULL;
    }
}

void
tiers_edge_attach (tiers_edge_t *self, tiers_reactor_t *reactor)
{
    assert (self && reactor);
    tiers_follow_attach (self->follow, reactor);
    tiers_reactor_timer (reactor, EDGE_SYNC_MS, s_on_timer, self);
}

size_t
tiers_edge_cap (tiers_edge_t *self)
{
    assert (self);
    return self->cap;
}

//  --------------------------------------------------------------------------
//  A lookup

//  The request headers the edge decides on, in one pass over them. A
//  header sent on several lines is a list the read-api joins: the edge
//  leaves such a request to it (lines > 1).
typedef struct {
    const char *if_none, *token, *consistency;
    int if_none_lines, token_lines, consistency_lines;
    bool if_match;
} scan_t;

static enum MHD_Result
s_scan (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    scan_t *scan = (scan_t *) cls;
    if ((key [0] | 0x20) == 'i') {
        if (strcasecmp (key, MHD_HTTP_HEADER_IF_NONE_MATCH) == 0) {
            scan->if_none = value;
            scan->if_none_lines++;
        }
        else
        if (strcasecmp (key, MHD_HTTP_HEADER_IF_MATCH) == 0)
            scan->if_match = true;
    }
    else
    if ((key [0] | 0x20) == 't') {
        if (strcasecmp (key, "Tiers-Token") == 0) {
            scan->token = value;
            scan->token_lines++;
        }
        else
        if (strcasecmp (key, "Tiers-Consistency") == 0) {
            scan->consistency = value;
            scan->consistency_lines++;
        }
    }
    return MHD_YES;
}

static bool
s_bypass (tiers_edge_t *self, bypass_t reason)
{
    tiers_counter_add (self->bypass [reason], 1);
    return false;
}

//  May a read with this token be answered at the shard's position? Only
//  when the token names nothing of the shard past it (same incarnation).
static bool
s_token_allows (tiers_edge_t *self, const char *value, size_t shard, int64_t position,
                const char *incarnation)
{
    tiers_token_t token;
    char why [8];
    if (tiers_token_parse (value, &token, why, sizeof why))
        return false;               //  the read-api says what is wrong (400)
    const tiers_token_entry_t *entry =
        tiers_token_find (&token, tiers_follow_shard_name (self->follow, shard));
    return !entry
        || (entry->incarnation_size == strlen (incarnation)
        &&  memcmp (entry->incarnation, incarnation, entry->incarnation_size) == 0
        &&  entry->sequence <= position);
}

//  "COLLECTION/ID" into key (EDGE_KEY_MAX + 1 bytes).
static void
s_key (char *key, const char *collection, const char *id)
{
    size_t c = strlen (collection), i = strlen (id);
    assert (c <= TIERS_COLLECTION_MAX && i <= TIERS_DOC_ID_MAX);
    memcpy (key, collection, c);
    key [c] = '/';
    memcpy (key + c + 1, id, i + 1);
}

//  The answer the read-api's path gives for this entry, through the
//  face's own mapping: the same status, headers and body.
static enum MHD_Result
s_answer (tiers_http_req_t *req, const tiers_cache_entry_t *entry,
          const tiers_api_tags_t *if_none)
{
    if (entry->negative)
        return tiers_http_problem (req, 404, "no such document", NULL, NULL);
    bool not_modified = if_none->present && tiers_api_tags_match (if_none, entry->tag);
    struct MHD_Response *response = MHD_create_response_from_buffer (
        not_modified ? 0 : entry->size, (void *) entry->value, MHD_RESPMEM_MUST_COPY);
    if (response) {
        char etag [EDGE_TAG_MAX + 3];
        size_t length = strlen (entry->tag);
        etag [0] = '"';
        memcpy (etag + 1, entry->tag, length);
        etag [length + 1] = '"';
        etag [length + 2] = 0;
        if (!not_modified)
            MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                     "application/json");
        MHD_add_response_header (response, MHD_HTTP_HEADER_ETAG, etag);
    }
    return tiers_http_respond (req, not_modified ? 304 : 200, response);
}

bool
tiers_edge_lookup (tiers_edge_t *self, tiers_http_req_t *req, const char *collection,
                   const char *id, tiers_edge_ticket_t *ticket, enum MHD_Result *rc)
{
    assert (self && req && ticket && rc);
    scan_t scan = { NULL, NULL, NULL, 0, 0, 0, false };
    MHD_get_connection_values (tiers_http_connection (req), MHD_HEADER_KIND, s_scan, &scan);
    if (scan.consistency
    && (scan.consistency_lines > 1 || strcmp (scan.consistency, "eventual") != 0))
        return s_bypass (self, BYPASS_STRONG);
    tiers_api_tags_t if_none;
    const char *why = NULL;
    if (scan.if_match || scan.if_none_lines > 1
    ||  tiers_api_tags_parse (scan.if_none, true, &if_none, &why))
        return s_bypass (self, BYPASS_IF_MATCH);
    size_t shard = tiers_follow_shard_of (self->follow, collection, id);
    const char *incarnation = NULL;
    int64_t position = tiers_follow_position (self->follow, shard, &incarnation);
    if (!tiers_follow_live (self->follow, shard) || position < 0 || !incarnation
    ||  strlen (incarnation) > TIERS_TOKEN_INCARNATION_MAX)
        return s_bypass (self, BYPASS_NOT_LIVE);
    if (scan.token && (scan.token_lines > 1
    ||  !s_token_allows (self, scan.token, shard, position, incarnation)))
        return s_bypass (self, BYPASS_TOKEN);
    //  A write answered here that the stream has not told of yet: a miss
    //  reads at least at it.
    if (streq (self->written_incarnation [shard], incarnation)
    &&  self->written [shard] > position)
        position = self->written [shard];

    char key [EDGE_KEY_MAX + 1];
    s_key (key, collection, id);
    tiers_cache_entry_t entry;
    uint64_t lease = 0;
    switch (tiers_cachestore_get (self->store, key, zclock_mono (), &entry, &lease)) {
        case TIERS_CACHE_HIT:
            tiers_counter_add (self->hits, 1);
            *rc = s_answer (req, &entry, &if_none);
            return true;
        case TIERS_CACHE_MISS:
            tiers_counter_add (self->misses, 1);
            ticket->lease = lease;
            ticket->position = position;
            ticket->shard = (uint32_t) shard;
            snprintf (ticket->incarnation, sizeof ticket->incarnation, "%s", incarnation);
            return false;
        case TIERS_CACHE_LEASED:
            tiers_counter_add (self->misses, 1);
            tiers_counter_add (self->leased, 1);
            return false;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  A ticketed read

void
tiers_edge_forward (tiers_edge_t *self, tiers_edge_ticket_t *ticket, tiers_wire_t *msg)
{
    assert (self && ticket && msg);
    if (!ticket->lease)
        return;
    const char *name = tiers_follow_shard_name (self->follow, ticket->shard);
    char text [TIERS_WIRE_MAX_VALUE + 1];
    int length = snprintf (text, sizeof text, "%s=%s.%" PRId64, name, ticket->incarnation,
                           ticket->position);
    const char *client = tiers_wire_header (msg, "token");
    if (client) {
        //  The lookup checked it: it parses, and its entry for this shard
        //  (if any) is of the same incarnation and not past the position,
        //  so ours is the larger one.
        tiers_token_t token;
        char why [8];
        if (tiers_token_parse (client, &token, why, sizeof why)) {
            ticket->lease = 0;
            return;
        }
        //  A full token with no entry for this shard: one more would make
        //  it one the read-api refuses; it goes as it came, and fills nothing.
        bool has = false;
        for (size_t i = 0; i < token.count; i++)
            has |= token.entries [i].shard_size == strlen (name)
                && memcmp (token.entries [i].shard, name, strlen (name)) == 0;
        if (!has && token.count >= TIERS_TOKEN_ENTRIES) {
            ticket->lease = 0;
            return;
        }
        for (size_t i = 0; i < token.count; i++) {
            const tiers_token_entry_t *entry = &token.entries [i];
            if (entry->shard_size == strlen (name)
            &&  memcmp (entry->shard, name, entry->shard_size) == 0)
                continue;
            length += snprintf (text + length, sizeof text - (size_t) length,
                                ", %.*s=%.*s.%" PRId64, (int) entry->shard_size,
                                entry->shard, (int) entry->incarnation_size,
                                entry->incarnation, entry->sequence);
            if ((size_t) length >= sizeof text - 1) {
                ticket->lease = 0;      //  the client's token goes as it came
                return;
            }
        }
    }
    tiers_wire_set_header (msg, "token", text, (size_t) length);
}

//  A reply the face maps to nothing but its status, ETag and body (what a
//  read-api's document answer is): the edge can give it again.
static bool
s_plain (const tiers_wire_t *reply)
{
    static const char *mapped [] = { "content-type", "location", "retry-after",
                                     "idempotent-replayed", "token", NULL };
    for (int i = 0; mapped [i]; i++)
        if (tiers_wire_header (reply, mapped [i]))
            return false;
    return true;
}

//  The read-api's answer for a document that does not exist (the shard's
//  404, tiers_api_shard_problem), and not a 404 of anything else.
static bool
s_no_such_document (const tiers_wire_t *reply)
{
    const char *type = tiers_wire_header (reply, "content-type");
    return type && streq (type, "application/problem+json") && reply->body_size
        && strstr ((const char *) reply->body, "\"detail\":\"no such document\"");
}

//  The reply's ETag without its quotes, in `tag`; false when it has none
//  or one the edge does not keep.
static bool
s_reply_tag (const tiers_wire_t *reply, char tag [EDGE_TAG_MAX + 1])
{
    const char *etag = tiers_wire_header (reply, "etag");
    size_t length = etag ? strlen (etag) : 0;
    if (length < 2 || etag [0] != '"' || etag [length - 1] != '"' || length - 2 > EDGE_TAG_MAX)
        return false;
    memcpy (tag, etag + 1, length - 2);
    tag [length - 2] = 0;
    return true;
}

//  Fills the key from the answer under the lease; false when the answer
//  is none to keep (the caller gives the lease back).
static bool
s_fill (tiers_edge_t *self, const char *key, uint64_t lease, tiers_edge_ticket_t *ticket,
        const tiers_wire_t *reply, int64_t now)
{
    if (reply->status == 200 && s_plain (reply)) {
        //  ETag "INCARNATION.VERSION": the shard's tag, quoted by the read-api.
        char tag [EDGE_TAG_MAX + 1];
        const char *dot = s_reply_tag (reply, tag) ? strrchr (tag, '.') : NULL;
        long long version = -1;
        size_t incarnation = dot ? (size_t) (dot - tag) : 0;
        if (!dot || incarnation != strlen (ticket->incarnation)
        ||  memcmp (tag, ticket->incarnation, incarnation) != 0) {
            //  Not a tag of the incarnation the ticket read at: the shard
            //  changed under the read (the reset that follows drops the
            //  rest), or not a tag the edge knows how to give again.
            tiers_counter_add (self->refused, 1);
            return false;
        }
        char digits [24];
        size_t size = strlen (dot + 1);
        if (size == 0 || size >= sizeof digits) {
            tiers_counter_add (self->refused, 1);
            return false;
        }
        memcpy (digits, dot + 1, size + 1);
        if (tiers_parse_int (digits, &version) || version < 0) {
            tiers_counter_add (self->refused, 1);
            return false;
        }
        tiers_cachestore_fill (self->store, key, lease, reply->body, reply->body_size, tag,
                               (int64_t) version, now);
    }
    else
    if (reply->status == 404 && s_no_such_document (reply))
        tiers_cachestore_fill (self->store, key, lease, NULL, 0, "", ticket->position, now);
    else
        return false;       //  not an answer to keep
    return true;
}

//  The ticket's lease (0: none), taken from it, and the key it is for.
static uint64_t
s_take_lease (tiers_edge_ticket_t *ticket, const char *collection, const char *id,
              char key [EDGE_KEY_MAX + 1])
{
    uint64_t lease = ticket->lease;
    ticket->lease = 0;
    if (lease)
        s_key (key, collection, id);
    return lease;
}

void
tiers_edge_fill (tiers_edge_t *self, const char *collection, const char *id,
                 tiers_edge_ticket_t *ticket, const tiers_wire_t *reply)
{
    assert (self && ticket && reply);
    char key [EDGE_KEY_MAX + 1];
    uint64_t lease = s_take_lease (ticket, collection, id, key);
    if (!lease)
        return;
    int64_t now = zclock_mono ();
    //  An answer that cannot fill gives the lease back: the key's next
    //  miss takes one at once rather than after the lease's time.
    if (!s_fill (self, key, lease, ticket, reply, now))
        tiers_cachestore_release (self->store, key, lease, now);
    s_sync (self);
}

bool
tiers_edge_not_modified (tiers_http_req_t *req, const tiers_wire_t *reply)
{
    assert (req && reply);
    if (reply->status != 200)
        return false;
    const char *value = MHD_lookup_connection_value (tiers_http_connection (req),
                                                     MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_IF_NONE_MATCH);
    char tag [EDGE_TAG_MAX + 1];
    tiers_api_tags_t if_none;
    const char *why = NULL;
    return value && s_reply_tag (reply, tag)
        && tiers_api_tags_parse (value, true, &if_none, &why) == 0
        && tiers_api_tags_match (&if_none, tag);
}

void
tiers_edge_release (tiers_edge_t *self, const char *collection, const char *id,
                    tiers_edge_ticket_t *ticket)
{
    assert (self && ticket);
    char key [EDGE_KEY_MAX + 1];
    uint64_t lease = s_take_lease (ticket, collection, id, key);
    if (!lease)
        return;
    tiers_cachestore_release (self->store, key, lease, zclock_mono ());
}

//  --------------------------------------------------------------------------
//  A write through this instance

void
tiers_edge_written (tiers_edge_t *self, const char *collection, const char *id,
                    const tiers_wire_t *reply)
{
    assert (self && reply);
    if (reply->status >= 300 && reply->status < 500)
        return;                     //  refused: nothing was written
    //  Its place in the stream: the answer's token, one entry. A write
    //  whose outcome is unknown (5xx) may have been applied at any
    //  version: every fill of the key is refused for a while (the store's
    //  lease_ms), until the stream has told.
    int64_t version = INT64_MAX;
    tiers_token_t token;
    char why [8];
    const char *value = tiers_wire_header (reply, "token");
    size_t shard = tiers_follow_shard_of (self->follow, collection, id);
    const char *name = tiers_follow_shard_name (self->follow, shard);
    if (reply->status < 300 && value && tiers_token_parse (value, &token, why, sizeof why) == 0
    &&  token.count == 1 && token.entries [0].shard_size == strlen (name)
    &&  memcmp (token.entries [0].shard, name, strlen (name)) == 0
    &&  token.entries [0].incarnation_size <= TIERS_TOKEN_INCARNATION_MAX) {
        const tiers_token_entry_t *entry = &token.entries [0];
        char incarnation [TIERS_TOKEN_INCARNATION_MAX + 1];
        memcpy (incarnation, entry->incarnation, entry->incarnation_size);
        incarnation [entry->incarnation_size] = 0;
        //  Of the incarnation the follower is at: the write's version, and
        //  misses read at least there; else every older fill of the key is
        //  refused for a while (and a fill's tag of another incarnation is
        //  refused anyway).
        const char *following = NULL;
        tiers_follow_position (self->follow, shard, &following);
        if (following && streq (following, incarnation)) {
            version = entry->sequence;
            if (!streq (self->written_incarnation [shard], incarnation)) {
                snprintf (self->written_incarnation [shard],
                          sizeof self->written_incarnation [0], "%s", incarnation);
                self->written [shard] = 0;
            }
            if (entry->sequence > self->written [shard])
                self->written [shard] = entry->sequence;
        }
    }
    char key [EDGE_KEY_MAX + 1];
    s_key (key, collection, id);
    tiers_cachestore_time (self->store, zclock_mono ());
    if (tiers_cachestore_invalidate (self->store, key, version))
        s_sync (self);
}

