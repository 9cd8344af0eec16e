/*  api_core.c — the skeleton of the Read API and Write API tiers.

    Both tiers are workers of a balancer pool ("read" / "write") holding the
    application logic of the HTTP document API (doc/http.md): they check
    names and preconditions, route each key to the shard that owns its hash
    slot, and turn the shard's answer into the HTTP status, headers and body
    the gateway sends back. They reach storage only through messages to the
    shards (one DEALER per shard), so an instance runs unchanged on any node.
    What differs is the request path: actors/read_api.c (GET, HEAD, lists)
    and actors/write_api.c (PUT, DELETE, preconditions); each fills the
    hooks of api_core.h. Everything else is here, once.

    Each instance is asynchronous: it takes up to `capacity` requests from
    the balancer at once and keeps a call for each until its shard answers.

    A call's states:
        SHARD     waiting for the owning shard (or, for a list or a READY
                  probe, for every shard: the side's `waiting`, the
                  probe's `pending`, count the answers still due); a read
                  may wait for a replica of the shard instead, or first
                  for a cache (over the side's own socket), and the side's
                  `wake` (at the call's `wake_at`) asks the next copy when
                  one took too long
        (done)    answered to the caller; removed from the table
    A call enters the table when the side's `start` has sent it (one that
    `start` answers at once never does); it leaves when the side's `answer`
    or `wake` says done, or at its deadline, or at shutdown. Every call is
    answered exactly once: by a copy's answer, by a send failure (503), by
    its deadline (504) or by shutdown (503), whichever comes first; an
    answer for a call no longer in the table is dropped, and so is one from
    a copy the side no longer waits for (it says so to `answer`: the core
    tells it which copy answered).

    The read rotation (api_core.h) is a table of replicas, each one of:
        (unheard)   no STATUS answer yet: out of the rotation
        IN          its last STATUS said rotation: true, within SILENT_MS
        OUT         it said rotation: false (behind, catching up), or
                    answered nothing for SILENT_MS
    judged at each STATUS answer and at each STATUS_MS tick; at most one
    STATUS is in flight to a replica at a time (another after SILENT_MS),
    so a replica that is down gets one a second, not four.
*/
#include "api_core.h"
#include "map.h"
#include "node.h"
#include "service.h"
#include "reactor.h"
#include "sock.h"
#include "slot.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "problem.h"
#include <jansson.h>

#define PROBE_MS            1000    //  a READY probe waits this long for the shards
#define PROBE_COMMIT_MS     2000    //  a commit running longer is not ready
#define STATUS_MS           250     //  a replica's STATUS is asked this often
#define SILENT_MS           1000    //  a replica silent this long leaves the rotation
#define REPLICA_TIMEOUT_MS  500     //  default `replica_timeout` (read-api key)
#define READ_WAIT_MS        1000    //  a replica's `read_wait` when its entry has none
#define STATUS_RID          "~status"   //  never a call's rid (NAME-N)

typedef struct {
    tiers_api_core_t *core;
    const tiers_entry_t *entry;
    zsock_t *sock;
    int *replicas;                          //  its replicas: replica table indices
    size_t replica_count;
    size_t turn;                            //  round-robin: the next to try
    //  Where its writes (and strong reads) go: the shard entry (-1), or the
    //  replica that says it is the primary at the highest epoch seen (a
    //  promotion, doc/replication.md).
    int primary;
    int64_t primary_epoch;
} shard_link_t;

typedef struct {
    tiers_api_core_t *core;
    const tiers_entry_t *entry;
    zsock_t *sock;
    size_t shard;                           //  the shard it copies (`of`)
    long long read_wait;                    //  its `read_wait`, ms
    bool said_rotation;                     //  what its last STATUS said
    bool rotation;                          //  IN (else unheard or OUT)
    int64_t heard;                          //  monotonic ms of its last STATUS answer
    int64_t asked;                          //  monotonic ms of the STATUS in flight, or 0
} replica_link_t;

struct _tiers_api_core_t {
    char name [96];
    const char *pool;
    const tiers_api_hooks_t *hooks;
    tiers_service_t *service;
    shard_link_t *shards;
    size_t shard_count;
    replica_link_t *replicas;
    size_t replica_count;
    long long replica_timeout;              //  ms (tiers_api_replica_bound)
    tiers_counter_t *reads [2];             //  by copy: primary, replica
    tiers_counter_t *fallbacks [TIERS_API_FALLBACK_REASONS];
    uint16_t *owner;                        //  slot -> shard index
    uint32_t slots;
    zhashx_t *calls;                        //  rid -> the side's call
    uint64_t sequence;
    tiers_counter_t *shard_errors;
    tiers_histogram_t *latency;             //  request in -> answer out
    tiers_reactor_t *reactor;
    int on_service;                         //  the service's reader
    int64_t expire_at;                      //  next deadline sweep
    void *side;                             //  the side's own state (attach)
};

//  --------------------------------------------------------------------------
//  Answers

//  The request id the client sees: the gateway sends it as a header when
//  the wire rid carries a uniqueness suffix, else the rid is the id.
static const char *
s_request_id (const tiers_wire_t *request)
{
    //  Taken only in the gateway's shape (1..64 printable ASCII, no space):
    //  it goes into JSON bodies and logs.
    const char *shown = tiers_wire_header (request, "request-id");
    size_t length = shown ? strlen (shown) : 0;
    bool good = length >= 1 && length <= 64;
    for (size_t i = 0; good && i < length; i++)
        good = shown [i] > 0x20 && shown [i] < 0x7f;
    return good ? shown : request->rid;
}

void
tiers_api_reply (tiers_api_core_t *self, tiers_api_call_t *call, tiers_wire_t *reply)
{
    assert (self);
    assert (call);
    if (tiers_service_reply (self->service, &call->route, reply))
        tiers_warn ("could not send the answer to %s", s_request_id (call->request));
    tiers_histogram_observe (self->latency, (tiers_clock_us () - call->started) / 1e6);
}

//  RFC 9457 problem details (runtime/problem.h); the gateway adds nothing
//  but the transport.
static void
s_problem (tiers_api_core_t *self, tiers_api_call_t *call, int status, const char *type,
           const char *title, const char *detail, bool replayed)
{
    tiers_wire_t *reply = tiers_wire_reply_to (call->request, status);
    char *text = tiers_problem_json_typed (status, type, title, detail,
                                           s_request_id (call->request));
    if (text)
        tiers_wire_set_body (reply, text, strlen (text));
    free (text);
    tiers_wire_set_header (reply, "content-type", "application/problem+json", 24);
    if (status == 503)
        tiers_wire_set_header (reply, "retry-after", "1", 1);
    if (replayed)
        tiers_wire_set_header (reply, "idempotent-replayed", "true", 4);
    tiers_api_reply (self, call, reply);
    tiers_wire_destroy (&reply);
}

void
tiers_api_problem (tiers_api_core_t *self, tiers_api_call_t *call, int status,
                   const char *detail)
{
    s_problem (self, call, status, NULL, NULL, detail, false);
}

//  A shard's `outcome` of a failed write, as a problem type and title.
static const char *
s_outcome_type (const char *outcome, const char **title)
{
    if (outcome && streq (outcome, "unknown")) {
        *title = "Outcome unknown";
        return TIERS_PROBLEM_OUTCOME_UNKNOWN;
    }
    if (outcome && streq (outcome, "not-applied")) {
        *title = "Not applied";
        return TIERS_PROBLEM_NOT_APPLIED;
    }
    *title = NULL;
    return NULL;
}

void
tiers_api_shard_problem (tiers_api_core_t *self, tiers_api_call_t *call,
                         tiers_wire_t *answer, const char *failed)
{
    int status = answer->status;
    assert (status >= 400);
    const char *detail = tiers_wire_header (answer, "error");
    const char *title = NULL;
    const char *type = s_outcome_type (tiers_wire_header (answer, "outcome"), &title);
    if (status == 404)
        detail = "no such document";
    else
    if (status == 412)
        detail = failed;
    else
    if (status == 422 && type) {
        type = TIERS_PROBLEM_KEY_REUSED;
        title = "Idempotency-Key reused";
    }
    if (status == 421) {
        //  A fenced copy (a replica was promoted): nothing was applied, and
        //  the next try goes to the new primary once it is known.
        status = 503;
        type = TIERS_PROBLEM_NOT_APPLIED;
        title = "Not applied";
        detail = "the shard's primary moved (a replica was promoted): not applied; "
                 "retry";
    }
    if (status >= 500)
        tiers_counter_add (self->shard_errors, 1);
    s_problem (self, call, status, type, title, detail ? detail : tiers_problem_title (status),
               tiers_wire_header (answer, "replayed") != NULL);
}

//  A reply of a keyed write that repeats the first outcome says so.
void
tiers_api_replayed (tiers_wire_t *reply, const tiers_wire_t *answer)
{
    if (tiers_wire_header (answer, "replayed"))
        tiers_wire_set_header (reply, "idempotent-replayed", "true", 4);
}

//  Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): an sf-string,
//  "8e03978e-40d5", or, as many clients send it, the same bare. The key is
//  what stands between the quotes, unescaped (\" and \\), 1..255
//  printable ASCII characters.
int
tiers_api_idempotency_key (const char *value, char *key, size_t size, const char **why)
{
    assert (size > TIERS_API_KEY_MAX);
    *why = "Idempotency-Key must be a string of 1 to 255 printable ASCII characters, "
           "like \"8e03978e-40d5-43e8\"";
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t length = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\') {
                p++;
                if (*p != '"' && *p != '\\')
                    return -1;
            }
            if (*p < 0x20 || *p > 0x7e || length == TIERS_API_KEY_MAX)
                return -1;
            key [length++] = *p;
        }
        if (*p++ != '"')
            return -1;
    }
    else
        for (; *p > 0x20 && *p < 0x7f && !strchr ("\",;\\", *p); p++) {
            if (length == TIERS_API_KEY_MAX)
                return -1;
            key [length++] = *p;
        }
    while (*p == ' ' || *p == '\t')
        p++;
    key [length] = 0;
    return length && !*p ? 0 : -1;
}

void
tiers_api_etag (tiers_wire_t *reply, const char *tag)
{
    if (tag)
        tiers_wire_set_headerf (reply, "etag", "\"%s\"", tag);
}

//  A READY probe (from the gateway's /ready): STATUS asked of every
//  shard at once, gathered until all answered or PROBE_MS passed.
struct _tiers_api_probe_t {
    size_t pending;                         //  shards yet to answer
    bool *answered;                         //  by shard index
    json_t *shards;                         //  name -> its STATUS, and ok
    json_t *problems;                       //  what is not ready, as text
    int64_t bound_ms;                       //  how long it waits
};

static void
s_probe_destroy (struct _tiers_api_probe_t **probe_p)
{
    struct _tiers_api_probe_t *probe = *probe_p;
    if (probe) {
        free (probe->answered);
        json_decref (probe->shards);
        json_decref (probe->problems);
        free (probe);
        *probe_p = NULL;
    }
}

static void
s_call_destroy (tiers_api_call_t **call_p)
{
    tiers_api_call_t *call = *call_p;
    if (call) {
        s_probe_destroy (&call->probe);
        if (call->hooks->call_free)
            call->hooks->call_free (call);
        zmsg_destroy (&call->route);
        tiers_wire_destroy (&call->request);
        free (call);
        *call_p = NULL;
    }
}

static void
s_call_free (void **item)
{
    s_call_destroy ((tiers_api_call_t **) item);
}

//  --------------------------------------------------------------------------
//  Checking what the caller sent

//  The gateway's rules (runtime/names.h), for requests that did not come
//  through it. A missing header is not a name.
bool
tiers_api_name_ok (const char *name, bool id)
{
    size_t size = name ? strlen (name) : 0;
    return id ? tiers_doc_id_ok (name, size) : tiers_collection_ok (name, size);
}

//  Tiers-Token and Tiers-Consistency (doc/http.md, "Read your writes"):
//  the same checks on every document request, reads and writes, so that a
//  client that carries a broken token learns it at once.
int
tiers_api_session (tiers_api_core_t *self, tiers_api_call_t *call, tiers_token_t *token,
                   bool *strong)
{
    char why [256];
    if (tiers_token_parse (tiers_wire_header (call->request, "token"), token,
                           why, sizeof why)) {
        tiers_api_problem (self, call, 400, why);
        return -1;
    }
    const char *consistency = tiers_wire_header (call->request, "consistency");
    *strong = consistency && streq (consistency, "strong");
    if (consistency && !*strong && !streq (consistency, "eventual")) {
        tiers_api_problem (self, call, 400, "Tiers-Consistency must be strong or eventual");
        return -1;
    }
    return 0;
}

//  If-Match / If-None-Match (RFC 9110 section 13.1): "*" or a list of
//  entity-tags, empty list elements allowed. A tag is opaque here: the
//  shard makes them ("INCARNATION.VERSION", doc/storage.md) and compares
//  them; any well-formed tag is kept, and one tiers never made simply
//  matches nothing. W/ tags are kept only where the comparison is weak.
int
tiers_api_tags_parse (const char *value, bool weak_counts, tiers_api_tags_t *tags,
                      const char **why)
{
    memset (tags, 0, sizeof *tags);
    if (!value)
        return 0;
    tags->present = true;
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '*') {
        for (p++; *p == ' ' || *p == '\t'; p++)
            ;
        tags->any = true;
        *why = "* stands alone";
        return *p ? -1 : 0;
    }
    *why = "must be * or a list of quoted ETags like \"3f9a2c1b07d4.42\"";
    while (true) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        bool weak = strncmp (p, "W/", 2) == 0;
        if (weak)
            p += 2;
        if (*p != '"')
            return -1;
        const char *start = ++p;
        while (*p && *p != '"') {
            unsigned char c = (unsigned char) *p++;
            if (c < 0x21 || c == 0x7f)
                return -1;
        }
        if (*p != '"')
            return -1;
        size_t length = (size_t) (p - start);
        for (p++; *p == ' ' || *p == '\t'; p++)
            ;
        if (*p && *p != ',')
            return -1;
        if (weak && !weak_counts)
            continue;               //  never equal under strong comparison
        if (length == 0 || length > TIERS_API_TAG_MAX)
            continue;               //  a tag tiers never made
        if (tags->count == TIERS_API_TAGS_MAX) {
            *why = "lists at most 16 tags";
            return -1;
        }
        tags->tags [tags->count] = start;
        tags->sizes [tags->count++] = length;
    }
    return 0;                       //  an empty list names nothing
}

bool
tiers_api_tags_match (const tiers_api_tags_t *tags, const char *tag)
{
    if (tags->any)
        return tag != NULL;
    size_t length = tag ? strlen (tag) : 0;
    for (size_t i = 0; tag && i < tags->count; i++)
        if (tags->sizes [i] == length && memcmp (tags->tags [i], tag, length) == 0)
            return true;
    return false;
}

size_t
tiers_api_tags_join (const tiers_api_tags_t *tags, char *text, size_t size)
{
    assert (size > 0);
    size_t used = 0;
    text [0] = 0;
    for (size_t i = 0; i < tags->count; i++) {
        if (used + (i ? 1 : 0) + tags->sizes [i] + 1 > size)
            break;
        if (i)
            text [used++] = ' ';
        memcpy (text + used, tags->tags [i], tags->sizes [i]);
        used += tags->sizes [i];
        text [used] = 0;
    }
    return used;
}

//  --------------------------------------------------------------------------
//  Talking to shards

size_t
tiers_api_shard_count (tiers_api_core_t *self)
{
    return self->shard_count;
}

size_t
tiers_api_shard_of (tiers_api_core_t *self, const char *collection, const char *id)
{
    return self->owner [tiers_slot_of (collection, id, self->slots)];
}

tiers_wire_t *
tiers_api_shard_request (tiers_api_core_t *self, tiers_api_call_t *call,
                         size_t shard, const char *op)
{
    assert (shard < self->shard_count);
    const tiers_wire_t *request = call->request;
    tiers_wire_t *message = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (message, call->rid);
    tiers_wire_set_service (message, self->shards [shard].entry->name);
    message->deadline = request->deadline;
    message->trace = request->trace;
    tiers_wire_set_header (message, "op", op, strlen (op));
    //  The caller's request id goes on to the shard, for its logs.
    const char *request_id = s_request_id (request);
    tiers_wire_set_header (message, "request-id", request_id, strlen (request_id));
    const char *collection = tiers_wire_header (request, "collection");
    tiers_wire_set_header (message, "collection", collection, strlen (collection));
    return message;
}

int
tiers_api_shard_send (tiers_api_core_t *self, size_t shard, tiers_wire_t **message_p)
{
    assert (shard < self->shard_count);
    shard_link_t *link = &self->shards [shard];
    zsock_t *sock = link->sock;
    if (link->primary >= 0) {
        //  A replica promoted: the primary of the shard is that entry now.
        replica_link_t *replica = &self->replicas [link->primary];
        tiers_wire_set_service (*message_p, replica->entry->name);
        sock = replica->sock;
    }
    int rc = tiers_wire_send (*message_p, zsock_resolve (sock), NULL);
    tiers_wire_destroy (message_p);
    return rc;
}

void
tiers_api_shard_error (tiers_api_core_t *self)
{
    tiers_counter_add (self->shard_errors, 1);
}

bool
tiers_api_primary_moved (tiers_api_core_t *self, size_t shard)
{
    assert (shard < self->shard_count);
    return self->shards [shard].primary >= 0;
}

const char *
tiers_api_shard_name (tiers_api_core_t *self, size_t shard)
{
    assert (shard < self->shard_count);
    return self->shards [shard].entry->name;
}

//  --------------------------------------------------------------------------
//  Talking to replicas

int
tiers_api_replica_pick (tiers_api_core_t *self, size_t shard)
{
    assert (shard < self->shard_count);
    shard_link_t *link = &self->shards [shard];
    for (size_t tried = 0; tried < link->replica_count; tried++) {
        int replica = link->replicas [link->turn++ % link->replica_count];
        if (self->replicas [replica].rotation)
            return replica;
    }
    return -1;
}

int64_t
tiers_api_replica_bound (tiers_api_core_t *self, tiers_api_call_t *call, int replica,
                         bool waits)
{
    assert (replica >= 0 && (size_t) replica < self->replica_count);
    int64_t now = tiers_wire_now ();
    int64_t bound = self->replica_timeout + (waits ? self->replicas [replica].read_wait : 0);
    int64_t deadline = call->request->deadline;
    if (deadline && (deadline - now) / 2 < bound)
        bound = (deadline - now) / 2;
    return now + (bound > 1 ? bound : 1);
}

int
tiers_api_copy_send (tiers_api_core_t *self, const tiers_api_copy_t *copy,
                     tiers_wire_t **message_p)
{
    if (copy->replica < 0)
        return tiers_api_shard_send (self, copy->shard, message_p);
    assert ((size_t) copy->replica < self->replica_count);
    replica_link_t *replica = &self->replicas [copy->replica];
    assert (replica->shard == copy->shard);
    tiers_wire_set_service (*message_p, replica->entry->name);
    int rc = tiers_wire_send (*message_p, zsock_resolve (replica->sock), NULL);
    tiers_wire_destroy (message_p);
    return rc;
}

void
tiers_api_read_served (tiers_api_core_t *self, const tiers_api_copy_t *copy)
{
    tiers_counter_add (self->reads [copy->replica >= 0], 1);
}

void
tiers_api_read_fallback (tiers_api_core_t *self, tiers_api_fallback_t reason)
{
    assert (reason < TIERS_API_FALLBACK_REASONS);
    tiers_counter_add (self->fallbacks [reason], 1);
}

//  --------------------------------------------------------------------------
//  The side's own sockets

void
tiers_api_set_side (tiers_api_core_t *self, void *side)
{
    assert (self);
    self->side = side;
}

void *
tiers_api_side (tiers_api_core_t *self)
{
    assert (self);
    return self->side;
}

tiers_api_call_t *
tiers_api_call_find (tiers_api_core_t *self, const char *rid)
{
    assert (self && rid);
    return (tiers_api_call_t *) zhashx_lookup (self->calls, rid);
}

void
tiers_api_call_done (tiers_api_core_t *self, tiers_api_call_t *call)
{
    assert (self && call);
    assert (zhashx_lookup (self->calls, call->rid) == call);
    zhashx_delete (self->calls, call->rid);
}

//  --------------------------------------------------------------------------
//  Readiness: is every shard answering, writable, and not stuck in a commit?

static void
s_probe_problem (struct _tiers_api_probe_t *probe, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_probe_problem (struct _tiers_api_probe_t *probe, const char *format, ...)
{
    char text [256];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    json_array_append_new (probe->problems, json_string (text));
}

//  Answers the probe: 200 when every shard is fine, else 503; the body is
//  {"shards":{"s0":{...STATUS...,"ok":true}},"problems":["s1: ..."]}.
static void
s_probe_answer (tiers_api_core_t *self, tiers_api_call_t *call)
{
    struct _tiers_api_probe_t *probe = call->probe;
    for (size_t i = 0; i < self->shard_count; i++)
        if (!probe->answered [i]) {
            const char *name = self->shards [i].entry->name;
            json_object_set_new (probe->shards, name, json_pack ("{s:b}", "ok", 0));
            s_probe_problem (probe, "shard %s: no answer within %lld ms", name,
                             (long long) probe->bound_ms);
        }
    bool ready = json_array_size (probe->problems) == 0;
    json_t *body = json_pack ("{s:O, s:O}", "shards", probe->shards,
                              "problems", probe->problems);
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    tiers_wire_t *reply = tiers_wire_reply_to (call->request, ready ? 200 : 503);
    if (text)
        tiers_wire_set_body (reply, text, strlen (text));
    free (text);
    if (!ready)
        tiers_wire_set_header (reply, "retry-after", "1", 1);
    tiers_api_reply (self, call, reply);
    tiers_wire_destroy (&reply);
}

//  One shard's STATUS. Returns true when the probe was answered.
static bool
s_probe_status (tiers_api_core_t *self, tiers_api_call_t *call, size_t shard,
                tiers_wire_t *answer)
{
    struct _tiers_api_probe_t *probe = call->probe;
    if (probe->answered [shard])
        return false;
    probe->answered [shard] = true;
    probe->pending--;
    size_t problems = json_array_size (probe->problems);
    const char *name = self->shards [shard].entry->name;
    json_t *status = answer->status == 200 && answer->body_size
        ? json_loadb ((const char *) answer->body, answer->body_size, 0, NULL) : NULL;
    if (!json_is_object (status)) {
        json_decref (status);
        status = json_object ();
        s_probe_problem (probe, "shard %s: answered %d to STATUS", name, answer->status);
    }
    else {
        json_t *writable = json_object_get (status, "writable");
        json_t *commit_ms = json_object_get (status, "commit_ms");
        if (json_is_false (writable))
            s_probe_problem (probe, "shard %s: acknowledges no writes (its file was "
                             "removed, or could not be reopened after a failure)", name);
        if (json_is_integer (commit_ms) && json_integer_value (commit_ms) > PROBE_COMMIT_MS)
            s_probe_problem (probe, "shard %s: a commit has been running for %lld ms "
                             "(a frozen or failing disk?)", name,
                             (long long) json_integer_value (commit_ms));
    }
    json_object_set_new (status, "ok",
                         json_boolean (json_array_size (probe->problems) == problems));
    json_object_set_new (probe->shards, name, status);
    if (probe->pending)
        return false;
    s_probe_answer (self, call);
    return true;
}

//  READY: STATUS to every shard, with a deadline of at most PROBE_MS.
//  Returns 0 when the probe waits for the shards.
static int
s_probe_start (tiers_api_core_t *self, tiers_api_call_t *call)
{
    struct _tiers_api_probe_t *probe = (struct _tiers_api_probe_t *) zmalloc (sizeof *probe);
    assert (probe);
    call->probe = probe;
    probe->answered = (bool *) calloc (self->shard_count + 1, sizeof (bool));
    probe->shards = json_object ();
    probe->problems = json_array ();
    assert (probe->answered && probe->shards && probe->problems);
    //  PROBE_MS, or three quarters of what is left of the caller's
    //  deadline, so that the probe answers (naming the silent shards)
    //  before the caller gives up on it.
    int64_t now = tiers_wire_now ();
    probe->bound_ms = PROBE_MS;
    if (call->request->deadline && (call->request->deadline - now) * 3 / 4 < PROBE_MS)
        probe->bound_ms = (call->request->deadline - now) * 3 / 4;
    if (probe->bound_ms < 1)
        probe->bound_ms = 1;
    call->request->deadline = now + probe->bound_ms;
    for (size_t i = 0; i < self->shard_count; i++) {
        tiers_wire_t *message = tiers_wire_new (TIERS_WIRE_STATUS);
        tiers_wire_set_rid (message, call->rid);
        tiers_wire_set_service (message, self->shards [i].entry->name);
        message->deadline = call->request->deadline;
        if (tiers_api_shard_send (self, i, &message) == 0)
            probe->pending++;
        else {
            probe->answered [i] = true;
            s_probe_problem (probe, "shard %s: not reachable", self->shards [i].entry->name);
        }
    }
    if (probe->pending)
        return 0;
    s_probe_answer (self, call);
    return -1;
}

//  --------------------------------------------------------------------------
//  A request from the balancer

static void
s_start (tiers_api_core_t *self, tiers_wire_t *request, zmsg_t *route)
{
    tiers_api_call_t *call = (tiers_api_call_t *) zmalloc (self->hooks->call_size);
    assert (call);
    call->hooks = self->hooks;
    call->request = request;
    call->started = tiers_clock_us ();
    call->route = route;
    snprintf (call->rid, sizeof call->rid, "%.40s-%" PRIu64, self->name, ++self->sequence);

    //  Every text header is read whole: a NUL byte would cut it short.
    static const char *texts [] = { "method", "collection", "id", "if-match",
                                    "if-none-match", "limit", "after", "token",
                                    "consistency", NULL };
    bool bad = false;
    for (const char **name = texts; *name && !bad; name++)
        tiers_wire_text (request, *name, &bad);
    if (bad) {
        tiers_api_problem (self, call, 400, "a header of the request holds a NUL byte");
        s_call_destroy (&call);
        return;
    }
    const char *method = tiers_wire_header (request, "method");
    if (method && streq (method, "READY")) {
        if (s_probe_start (self, call))
            s_call_destroy (&call);
        else
            zhashx_insert (self->calls, call->rid, call);
        return;
    }
    const char *collection = tiers_wire_header (request, "collection");
    const char *id = tiers_wire_header (request, "id");
    if (!tiers_api_name_ok (collection, false)) {
        tiers_api_problem (self, call, 400, TIERS_COLLECTION_RULE);
        s_call_destroy (&call);
        return;
    }
    if (id && !tiers_api_name_ok (id, true)) {
        tiers_api_problem (self, call, 400, TIERS_DOC_ID_RULE);
        s_call_destroy (&call);
        return;
    }
    if (self->hooks->start (self, call)) {
        s_call_destroy (&call);
        return;
    }
    zhashx_insert (self->calls, call->rid, call);
}

//  --------------------------------------------------------------------------
//  A shard's answer

//  Takes one answer without waiting; false when none was there.
static bool
s_on_shard (void *arg)
{
    shard_link_t *link = (shard_link_t *) arg;
    tiers_api_core_t *self = link->core;
    const char *error = NULL;
    tiers_wire_t *answer = NULL;
    if (tiers_wire_try_recv (link->sock, NULL, &answer, &error))
        return false;
    if (!answer) {
        tiers_counter_add (self->shard_errors, 1);
        tiers_warn ("malformed answer from shard %s: %s", link->entry->name,
                    error ? error : "?");
        return true;
    }
    tiers_api_call_t *call = (tiers_api_call_t *) zhashx_lookup (self->calls, answer->rid);
    tiers_api_copy_t from = { (size_t) (link - self->shards), -1 };
    bool done = call && (call->probe
        ? s_probe_status (self, call, from.shard, answer)
        : self->hooks->answer (self, call, &from, answer));
    if (done)
        zhashx_delete (self->calls, answer->rid);
    tiers_wire_destroy (&answer);
    return true;
}

//  --------------------------------------------------------------------------
//  A replica's answer, and the read rotation

//  Judges a replica IN or OUT, now; logs a change.
static void
s_replica_judge (replica_link_t *replica, int64_t now)
{
    bool silent = !replica->heard || now - replica->heard > SILENT_MS;
    bool rotation = replica->said_rotation && !silent;
    if (rotation != replica->rotation) {
        if (rotation)
            tiers_info ("replica %s joined the read rotation", replica->entry->name);
        else
        if (silent)
            tiers_info ("replica %s left the read rotation: no STATUS answer for %d ms",
                        replica->entry->name, SILENT_MS);
        else
            tiers_info ("replica %s left the read rotation: it says it is not in it "
                        "(behind or catching up)", replica->entry->name);
    }
    replica->rotation = rotation;
}

//  A STATUS answer: {"replica":...,"rotation":true,...} (doc/replication.md).
static void
s_replica_status (replica_link_t *replica, tiers_wire_t *answer)
{
    json_t *status = answer->status == 200 && answer->body_size
        ? json_loadb ((const char *) answer->body, answer->body_size, 0, NULL) : NULL;
    replica->said_rotation = json_is_true (json_object_get (status, "rotation"));
    //  A promoted replica serves as the shard: its STATUS is a primary's.
    const char *role = json_string_value (json_object_get (status, "role"));
    json_t *epoch = json_object_get (status, "epoch");
    shard_link_t *link = &replica->core->shards [replica->shard];
    int index = (int) (replica - replica->core->replicas);
    if (role && streq (role, "primary") && json_is_integer (epoch)
    &&  json_integer_value (epoch) > link->primary_epoch) {
        if (link->primary != index)
            tiers_info ("the primary of %s is %s now (epoch %lld)", link->entry->name,
                        replica->entry->name, (long long) json_integer_value (epoch));
        link->primary = index;
        link->primary_epoch = json_integer_value (epoch);
    }
    json_decref (status);
    replica->heard = zclock_mono ();
    replica->asked = 0;
    s_replica_judge (replica, replica->heard);
}

//  Takes one answer without waiting; false when none was there.
static bool
s_on_replica (void *arg)
{
    replica_link_t *replica = (replica_link_t *) arg;
    tiers_api_core_t *self = replica->core;
    const char *error = NULL;
    tiers_wire_t *answer = NULL;
    if (tiers_wire_try_recv (replica->sock, NULL, &answer, &error))
        return false;
    if (!answer) {
        tiers_counter_add (self->shard_errors, 1);
        tiers_warn ("malformed answer from replica %s: %s", replica->entry->name,
                    error ? error : "?");
        return true;
    }
    if (streq (answer->rid, STATUS_RID))
        s_replica_status (replica, answer);
    else {
        //  The replica that is the shard's primary now answers as the
        //  primary (what was sent to it went there as to the primary, a
        //  READY probe's STATUS too); another replica as itself, and a
        //  READY probe has nothing to hear from it.
        tiers_api_call_t *call = (tiers_api_call_t *) zhashx_lookup (self->calls, answer->rid);
        int index = (int) (replica - self->replicas);
        bool primary = self->shards [replica->shard].primary == index;
        tiers_api_copy_t from = { replica->shard, primary ? -1 : index };
        bool done = call && (call->probe
            ? primary && s_probe_status (self, call, replica->shard, answer)
            : self->hooks->answer (self, call, &from, answer));
        if (done)
            zhashx_delete (self->calls, answer->rid);
    }
    tiers_wire_destroy (&answer);
    return true;
}

//  Every STATUS_MS: ask each replica without a STATUS in flight (or with
//  one unanswered for SILENT_MS), and judge them all.
static void
s_on_rotation (void *arg)
{
    tiers_api_core_t *self = (tiers_api_core_t *) arg;
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < self->replica_count; i++) {
        replica_link_t *replica = &self->replicas [i];
        if (!replica->asked || now - replica->asked >= SILENT_MS) {
            tiers_wire_t *message = tiers_wire_new (TIERS_WIRE_STATUS);
            tiers_wire_set_rid (message, STATUS_RID);
            tiers_wire_set_service (message, replica->entry->name);
            message->deadline = tiers_wire_now () + SILENT_MS;
            if (tiers_wire_send (message, zsock_resolve (replica->sock), NULL) == 0)
                replica->asked = now;
            tiers_wire_destroy (&message);
        }
        s_replica_judge (replica, now);
    }
}

//  Calls past their deadline are answered 504; those whose wake_at came
//  go to the side's `wake`.
static void
s_expire (tiers_api_core_t *self)
{
    int64_t now = tiers_wire_now ();
    zlistx_t *late = zlistx_new ();
    zlistx_t *woken = zlistx_new ();
    for (tiers_api_call_t *call = (tiers_api_call_t *) zhashx_first (self->calls); call;
         call = (tiers_api_call_t *) zhashx_next (self->calls))
        if (call->request->deadline && call->request->deadline <= now)
            zlistx_add_end (late, call);
        else
        if (call->wake_at && call->wake_at <= now)
            zlistx_add_end (woken, call);
    for (tiers_api_call_t *call = (tiers_api_call_t *) zlistx_first (late); call;
         call = (tiers_api_call_t *) zlistx_next (late)) {
        if (call->probe)
            s_probe_answer (self, call);    //  naming the shards that did not
        else
            tiers_api_problem (self, call, 504, "the shard did not answer in time");
        zhashx_delete (self->calls, call->rid);
    }
    for (tiers_api_call_t *call = (tiers_api_call_t *) zlistx_first (woken); call;
         call = (tiers_api_call_t *) zlistx_next (woken)) {
        call->wake_at = 0;
        if (call->hooks->wake && call->hooks->wake (self, call))
            zhashx_delete (self->calls, call->rid);
    }
    zlistx_destroy (&late);
    zlistx_destroy (&woken);
}

//  --------------------------------------------------------------------------
//  The actor

//  One request from the balancer; false when none was waiting.
static bool
s_on_service (void *arg)
{
    tiers_api_core_t *self = (tiers_api_core_t *) arg;
    zmsg_t *route = NULL;
    tiers_wire_t *request = NULL;
    if (tiers_service_try_recv (self->service, &route, &request))
        return false;
    if (request)
        s_start (self, request, route);
    return true;
}

//  After each pass: deadlines (a 10 ms sweep), and the link to the balancer
//  (tiers_service_pass: READY again when it went quiet). The heartbeats
//  themselves go from the service's timer, also in the middle of a burst.
static int
s_on_pass (void *arg)
{
    tiers_api_core_t *self = (tiers_api_core_t *) arg;
    if (zclock_mono () >= self->expire_at) {
        s_expire (self);
        self->expire_at = zclock_mono () + 10;
    }
    int timeout = tiers_service_pass (self->service, self->reactor, self->on_service);
    if (zhashx_size (self->calls) && (timeout < 0 || timeout > 10))
        timeout = 10;
    return timeout;
}

//  The link "shards" reaches every shard of the map: one socket each, and
//  the slot table from their `slots` (which the loader checked cover every
//  slot exactly once).
static int
s_slot_table (tiers_api_core_t *self, const tiers_map_t *map, const tiers_entry_t *me)
{
    self->slots = (uint32_t) tiers_map_cluster_number (map, "slots");
    const tiers_target_t *targets;
    size_t count = tiers_entry_targets (me, "shards", &targets);
    self->shards = (shard_link_t *) calloc (count + 1, sizeof (shard_link_t));
    const char **ranges = (const char **) calloc (count + 1, sizeof (const char *));
    assert (self->shards && ranges);
    for (size_t i = 0; i < count; i++) {
        const tiers_entry_t *entry = targets [i].entry;
        size_t index = self->shard_count++;
        self->shards [index].entry = entry;
        self->shards [index].core = self;
        self->shards [index].primary = -1;
        ranges [index] = tiers_entry_get (entry, "slots", NULL);
        self->shards [index].sock = tiers_link_connect (me, "shards", i, NULL);
        if (!self->shards [index].sock) {
            free (ranges);
            return -1;
        }
    }
    self->owner = tiers_slot_owners (ranges, self->shard_count, self->slots);
    free (ranges);
    return self->shard_count && self->owner ? 0 : -1;
}

//  The link "replicas": each replica joins the shard its `of` names. One
//  whose `of` names no shard of the map is left out (the replica kind's
//  own checks are the loader's).
static int
s_replica_table (tiers_api_core_t *self, const tiers_entry_t *me)
{
    const tiers_target_t *targets;
    size_t count = tiers_entry_targets (me, "replicas", &targets);
    self->replicas = (replica_link_t *) calloc (count + 1, sizeof (replica_link_t));
    assert (self->replicas);
    for (size_t i = 0; i < count; i++) {
        const tiers_entry_t *entry = targets [i].entry;
        const char *of = tiers_entry_get (entry, "of", NULL);
        size_t shard = self->shard_count;
        for (size_t s = 0; of && s < self->shard_count; s++)
            if (streq (self->shards [s].entry->name, of))
                shard = s;
        if (shard == self->shard_count) {
            tiers_warn ("replica %s: of = %s names no shard of the map; no read goes "
                        "to it", entry->name, of ? of : "(none)");
            continue;
        }
        replica_link_t *replica = &self->replicas [self->replica_count];
        replica->core = self;
        replica->entry = entry;
        replica->shard = shard;
        replica->read_wait = tiers_entry_int (entry, "read_wait", READ_WAIT_MS);
        replica->sock = tiers_link_connect (me, "replicas", i, NULL);
        if (!replica->sock)
            return -1;
        shard_link_t *link = &self->shards [shard];
        link->replicas = (int *) realloc (link->replicas,
                                          (link->replica_count + 1) * sizeof (int));
        assert (link->replicas);
        link->replicas [link->replica_count++] = (int) self->replica_count++;
    }
    return 0;
}

void
tiers_api_run (zsock_t *pipe, void *args_, const tiers_api_hooks_t *hooks)
{
    assert (hooks);
    assert (hooks->start && hooks->answer);
    assert (hooks->call_size >= sizeof (tiers_api_call_t));
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    tiers_log_set_actor (args->name);
    tiers_api_core_t self_, *self = &self_;
    memset (self, 0, sizeof *self);
    snprintf (self->name, sizeof self->name, "%s", args->name);
    self->hooks = hooks;
    self->pool = tiers_entry_get (args->entry, "pool", hooks->api);
    self->calls = zhashx_new ();
    zhashx_set_destructor (self->calls, s_call_free);
    char labels [128];
    snprintf (labels, sizeof labels, "api=\"%s\"", hooks->api);
    self->shard_errors = tiers_metrics_counter ("tiers_api_shard_errors_total", labels,
        "Shard calls of the read/write APIs that failed or timed out");
    self->latency = tiers_metrics_histogram ("tiers_api_latency_seconds", labels,
        "Time from a request's arrival at a read/write API to its answer");
    if (s_slot_table (self, args->map, args->entry)) {
        tiers_actor_failed (pipe, "cannot reach the shards of the map");
        goto done;
    }
    //  Both sides know the replicas: a promoted one is where writes go
    //  (its STATUS says so); only the read side reads from the others.
    if (s_replica_table (self, args->entry)) {
        tiers_actor_failed (pipe, "cannot reach the replicas of the map");
        goto done;
    }
    if (hooks->replicas) {
        self->replica_timeout = tiers_entry_int (args->entry, "replica_timeout",
                                                 REPLICA_TIMEOUT_MS);
        static const char *copies [2] = { "copy=\"primary\"", "copy=\"replica\"" };
        for (int i = 0; i < 2; i++)
            self->reads [i] = tiers_metrics_counter ("tiers_api_reads_total", copies [i],
                "Reads of the read-api (a get, or one shard's page of a list) by the "
                "copy that served them");
        static const char *reasons [TIERS_API_FALLBACK_REASONS] = {
            "reason=\"refused\"", "reason=\"error\"", "reason=\"timeout\"",
            "reason=\"unreachable\""
        };
        for (int i = 0; i < TIERS_API_FALLBACK_REASONS; i++)
            self->fallbacks [i] = tiers_metrics_counter ("tiers_api_read_fallbacks_total",
                reasons [i], "Reads given up on a replica and asked of the primary");
    }
    long long heartbeat = tiers_map_cluster_number (args->map, "heartbeat");
    tiers_service_config_t config = {
        .endpoint = args->entry->connect,
        .entry = args->entry,
        .pool = self->pool,
        .name = args->name,
        .capacity = (int) tiers_entry_int (args->entry, "capacity", 64),
        .heartbeat_ms = (int) tiers_entry_int (args->entry, "heartbeat", heartbeat),
        .liveness = (int) tiers_entry_int (args->entry, "liveness", 3)
    };
    self->service = tiers_service_new (&config);
    self->reactor = tiers_reactor_new (pipe);
    char *why = NULL;
    if (hooks->attach && hooks->attach (self, args, self->reactor, &why)) {
        tiers_actor_failed (pipe, "%s", why ? why : "the side could not start");
        free (why);
        tiers_reactor_destroy (&self->reactor);
        tiers_service_destroy (&self->service);
        goto done;
    }
    tiers_actor_ready (pipe);
    for (size_t i = 0; i < self->shard_count; i++)
        tiers_reactor_reader (self->reactor, self->shards [i].sock, 0, s_on_shard,
                              &self->shards [i]);
    for (size_t i = 0; i < self->replica_count; i++)
        tiers_reactor_reader (self->reactor, self->replicas [i].sock, 0, s_on_replica,
                              &self->replicas [i]);
    if (self->replica_count) {
        s_on_rotation (self);               //  the first STATUS at once
        tiers_reactor_timer (self->reactor, STATUS_MS, s_on_rotation, self);
    }
    self->on_service = tiers_service_attach (self->service, self->reactor,
                                             s_on_service, self);
    tiers_reactor_set_pass (self->reactor, s_on_pass, self);
    tiers_reactor_run (self->reactor);
    tiers_reactor_destroy (&self->reactor);
    //  Shutting down: whoever waits gets an answer.
    for (tiers_api_call_t *call = (tiers_api_call_t *) zhashx_first (self->calls); call;
         call = (tiers_api_call_t *) zhashx_next (self->calls))
        tiers_api_problem (self, call, 503, "shutting down");
    //  Those answers (and the BYE) may still be queued on tcp://.
    tiers_sock_flush (tiers_service_sock (self->service), 500);
    tiers_service_destroy (&self->service);
done:
    zhashx_destroy (&self->calls);
    if (hooks->detach)
        hooks->detach (self);
    for (size_t i = 0; i < self->replica_count; i++)
        zsock_destroy (&self->replicas [i].sock);
    free (self->replicas);
    for (size_t i = 0; i < self->shard_count; i++) {
        zsock_destroy (&self->shards [i].sock);
        free (self->shards [i].replicas);
    }
    free (self->shards);
    free (self->owner);
}

const tiers_key_t tiers_api_keys [] = {
    TIERS_API_KEYS,
    { NULL, 0, false, 0, 0, NULL }
};

//  The write-api declares `replicas` too (for the promotion of a replica,
//  later) but does not connect them (its hooks say no `replicas`).
const tiers_link_t tiers_api_links [] = {
    TIERS_API_LINKS,
    { NULL, NULL, NULL, 0, false, false, NULL }
};
