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
                  probe's `pending`, count the answers still due)
        (done)    answered to the caller; removed from the table
    A call enters the table when the side's `start` has sent it (one that
    `start` answers at once never does); it leaves when the side's `answer`
    says done, or at its deadline, or at shutdown. Every call is answered
    exactly once: by the shard's answer, by a send failure (503), by its
    deadline (504) or by shutdown (503), whichever comes first; a shard
    answer for a call no longer in the table is dropped.
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

typedef struct {
    tiers_api_core_t *core;
    const tiers_entry_t *entry;
    zsock_t *sock;
} shard_link_t;

struct _tiers_api_core_t {
    char name [96];
    const char *pool;
    const tiers_api_hooks_t *hooks;
    tiers_service_t *service;
    shard_link_t *shards;
    size_t shard_count;
    uint16_t *owner;                        //  slot -> shard index
    uint32_t slots;
    zhashx_t *calls;                        //  rid -> the side's call
    uint64_t sequence;
    tiers_counter_t *shard_errors;
    tiers_histogram_t *latency;             //  request in -> answer out
    tiers_reactor_t *reactor;
    int on_service;                         //  the service's reader
    int64_t expire_at;                      //  next deadline sweep
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
    int rc = tiers_wire_send (*message_p, zsock_resolve (self->shards [shard].sock), NULL);
    tiers_wire_destroy (message_p);
    return rc;
}

void
tiers_api_shard_error (tiers_api_core_t *self)
{
    tiers_counter_add (self->shard_errors, 1);
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
                                    "if-none-match", "limit", "after", NULL };
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
    bool done = call && (call->probe
        ? s_probe_status (self, call, (size_t) (link - self->shards), answer)
        : self->hooks->answer (self, call, answer));
    if (done)
        zhashx_delete (self->calls, answer->rid);
    tiers_wire_destroy (&answer);
    return true;
}

//  Calls past their deadline are answered 504.
static void
s_expire (tiers_api_core_t *self)
{
    int64_t now = tiers_wire_now ();
    zlistx_t *late = zlistx_new ();
    for (tiers_api_call_t *call = (tiers_api_call_t *) zhashx_first (self->calls); call;
         call = (tiers_api_call_t *) zhashx_next (self->calls))
        if (call->request->deadline && call->request->deadline <= now)
            zlistx_add_end (late, call);
    for (tiers_api_call_t *call = (tiers_api_call_t *) zlistx_first (late); call;
         call = (tiers_api_call_t *) zlistx_next (late)) {
        if (call->probe)
            s_probe_answer (self, call);    //  naming the shards that did not
        else
            tiers_api_problem (self, call, 504, "the shard did not answer in time");
        zhashx_delete (self->calls, call->rid);
    }
    zlistx_destroy (&late);
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

//  A shard's slot ranges into the owner table (tiers_slots_each callback).
typedef struct {
    uint16_t *owner;
    uint16_t index;
} slot_claim_t;

static int
s_slot_claim (long long low, long long high, void *arg)
{
    slot_claim_t *claim = (slot_claim_t *) arg;
    for (long long s = low; s <= high; s++)
        claim->owner [s] = claim->index;
    return 0;
}

//  The link "shards" reaches every shard of the map: one socket each, and
//  the slot table from their `slots` (which the loader checked cover every
//  slot exactly once).
static int
s_slot_table (tiers_api_core_t *self, const tiers_map_t *map, const tiers_entry_t *me)
{
    self->slots = (uint32_t) tiers_map_cluster_number (map, "slots");
    self->owner = (uint16_t *) calloc (self->slots, sizeof (uint16_t));
    const tiers_target_t *targets;
    size_t count = tiers_entry_targets (me, "shards", &targets);
    self->shards = (shard_link_t *) calloc (count + 1, sizeof (shard_link_t));
    assert (self->shards);
    for (size_t i = 0; i < count; i++) {
        const tiers_entry_t *entry = targets [i].entry;
        size_t index = self->shard_count++;
        self->shards [index].entry = entry;
        self->shards [index].core = self;
        self->shards [index].sock = tiers_link_connect (me, "shards", i, NULL);
        if (!self->shards [index].sock)
            return -1;
        //  Validated by the loader: ranges "a-b,c,d-e" below `slots`.
        const char *ranges = tiers_entry_get (entry, "slots", NULL);
        if (!ranges) {
            for (uint32_t s = 0; s < self->slots; s++)
                self->owner [s] = (uint16_t) index;
            continue;
        }
        slot_claim_t claim = { self->owner, (uint16_t) index };
        tiers_slots_each (ranges, self->slots, s_slot_claim, &claim, NULL);
    }
    return self->shard_count ? 0 : -1;
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
    tiers_actor_ready (pipe);

    self->reactor = tiers_reactor_new (pipe);
    for (size_t i = 0; i < self->shard_count; i++)
        tiers_reactor_reader (self->reactor, self->shards [i].sock, 0, s_on_shard,
                              &self->shards [i]);
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
    for (size_t i = 0; i < self->shard_count; i++)
        zsock_destroy (&self->shards [i].sock);
    free (self->shards);
    free (self->owner);
}

const tiers_key_t tiers_api_keys [] = {
    { "capacity",  TIERS_KEY_INT,    false, 1, 10000, NULL },
    { "pool",      TIERS_KEY_NAME,   false, 0, TIERS_WIRE_MAX_SERVICE, NULL },
    { "heartbeat", TIERS_KEY_MS,     false, 10, 60000, NULL },
    { "liveness",  TIERS_KEY_INT,    false, 1, 100, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

const tiers_link_t tiers_api_links [] = {
    TIERS_LINK_BALANCER,
    { "shards", "shard", "requests", ZMQ_DEALER, true, false },
    { NULL, NULL, NULL, 0, false, false }
};
