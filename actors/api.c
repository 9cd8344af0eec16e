/*  api.c — the Read API and Write API tiers of the document service.

    Both are workers of a balancer pool ("read" / "write") holding the
    application logic of the HTTP document API (doc/http.md): they check
    names and preconditions, route each key to the shard that owns its hash
    slot, and turn the shard's answer into the HTTP status, headers and body
    the gateway sends back. They reach storage only through messages to the
    shards (one DEALER per shard), so an instance runs unchanged on any node.

    Each instance is asynchronous: it takes up to `capacity` requests from
    the balancer at once and keeps a call for each until its shard answers.

    A call's states:
        LOOKUP    (If-Match: * only) a get to learn the current version
        SHARD     waiting for the owning shard (or, for a list, for every
                  shard: `waiting` counts the answers still due)
        (done)    answered to the caller; removed from the table
    Every call is answered exactly once: by the shard's answer, by a send
    failure (503), or by its deadline (504), whichever comes first; a shard
    answer for a call no longer in the table is dropped.
*/
#include "kind.h"
#include "map.h"
#include "node.h"
#include "service.h"
#include "wire.h"
#include "reactor.h"
#include "sock.h"
#include "slot.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "problem.h"
#include <jansson.h>

#define COLLECTION_MAX  TIERS_COLLECTION_MAX
#define ID_MAX          TIERS_DOC_ID_MAX
#define LIST_DEFAULT    100
#define LIST_MAX        1000

typedef struct _api_t api_t;

typedef struct {
    api_t *api;
    const tiers_entry_t *entry;
    zsock_t *sock;
} shard_link_t;

typedef enum { OP_GET, OP_LIST, OP_PUT, OP_DELETE } op_t;

#define TAGS_MAX 16
#define VERSION_NONE 999999999999999999LL   //  no document has it (18 digits)

typedef struct {
    bool present;               //  the header was sent
    bool any;                   //  "*"
    size_t count;               //  versions named
    long long versions [TAGS_MAX];
} tags_t;

typedef struct {
    char rid [TIERS_WIRE_MAX_RID + 1];      //  ours, towards the shards
    zmsg_t *route;                          //  back to the caller
    tiers_wire_t *request;                  //  the caller's request
    op_t op;
    bool lookup;                            //  LOOKUP stage (If-Match list)
    tags_t if_match;
    tags_t if_none;
    bool must_exist;                        //  If-Match: * on a write
    size_t shard;
    int waiting;                            //  list: answers still due
    int limit;
    json_t *items;                          //  list: gathered items
    bool more;                              //  list: some shard had more
    int failed;                             //  list: worst shard status
    int64_t started;                        //  monotonic us
} call_t;

struct _api_t {
    char name [96];
    const char *pool;
    bool writes;
    tiers_service_t *service;
    shard_link_t *shards;
    size_t shard_count;
    uint16_t *owner;                        //  slot -> shard index
    uint32_t slots;
    zhashx_t *calls;                        //  rid -> call_t
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

static void
s_reply (api_t *self, call_t *call, tiers_wire_t *reply)
{
    if (tiers_service_reply (self->service, &call->route, reply))
        tiers_warn ("could not send the answer to %s", s_request_id (call->request));
    tiers_histogram_observe (self->latency, (tiers_clock_us () - call->started) / 1e6);
}

//  RFC 9457 problem details (runtime/problem.h); the gateway adds nothing
//  but the transport.
static void
s_problem (api_t *self, call_t *call, int status, const char *detail)
{
    tiers_wire_t *reply = tiers_wire_reply_to (call->request, status);
    char *text = tiers_problem_json (status, detail, s_request_id (call->request));
    if (text)
        tiers_wire_set_body (reply, text, strlen (text));
    free (text);
    tiers_wire_set_header (reply, "content-type", "application/problem+json", 24);
    if (status == 503)
        tiers_wire_set_header (reply, "retry-after", "1", 1);
    s_reply (self, call, reply);
    tiers_wire_destroy (&reply);
}

static void
s_call_destroy (call_t **call_p)
{
    call_t *call = *call_p;
    if (call) {
        zmsg_destroy (&call->route);
        tiers_wire_destroy (&call->request);
        json_decref (call->items);
        free (call);
        *call_p = NULL;
    }
}

static void
s_call_free (void **item)
{
    s_call_destroy ((call_t **) item);
}

//  --------------------------------------------------------------------------
//  Checking what the caller sent

//  The gateway's rules (runtime/names.h), for requests that did not come
//  through it. A missing header is not a name.
static bool
s_name_ok (const char *name, bool id)
{
    size_t size = name ? strlen (name) : 0;
    return id ? tiers_doc_id_ok (name, size) : tiers_collection_ok (name, size);
}

//  If-Match / If-None-Match (RFC 9110 section 13.1): "*" or a list of
//  entity-tags, empty list elements allowed. Only a strong tag of the form
//  tiers makes ("42": digits, no leading zero) can name a version; other
//  well-formed tags ("abc", "007", and W/ ones where the comparison is
//  strong) are valid but match nothing.

//  Returns 0, or -1 with *why when the value is not that syntax.
static int
s_tags_parse (const char *value, bool weak_counts, tags_t *tags, const char **why)
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
    size_t elements = 0;
    *why = "must be * or a list of quoted ETags like \"42\"";
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
        elements++;
        if (weak && !weak_counts)
            continue;               //  never equal under strong comparison
        bool canonical = length >= 1 && length <= 18 && start [0] != '0';
        for (size_t i = 0; canonical && i < length; i++)
            canonical = isdigit ((unsigned char) start [i]) != 0;
        if (!canonical)
            continue;               //  a tag tiers never made
        if (tags->count == TAGS_MAX) {
            *why = "lists at most 16 versions";
            return -1;
        }
        tags->versions [tags->count++] = strtoll (start, NULL, 10);
    }
    return 0;                       //  an empty list names nothing
}

//  Does the document's current version (0 = none) satisfy the list?
static bool
s_tags_match (const tags_t *tags, long long version)
{
    if (tags->any)
        return version > 0;
    for (size_t i = 0; i < tags->count; i++)
        if (tags->versions [i] == version)
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Talking to shards

static int
s_shard_send (api_t *self, call_t *call, size_t shard, const char *op,
              long long version, bool create)
{
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
    const char *id = tiers_wire_header (request, "id");
    if (id && call->op != OP_LIST)
        tiers_wire_set_header (message, "id", id, strlen (id));
    if (version > 0)
        tiers_wire_set_headerf (message, "version", "%lld", version);
    if (create)
        tiers_wire_set_header (message, "create", "1", 1);
    if (call->must_exist && !call->lookup)
        tiers_wire_set_header (message, "exists", "1", 1);
    if (call->op == OP_LIST) {
        const char *after = tiers_wire_header (request, "after");
        if (after && *after)
            tiers_wire_set_header (message, "after", after, strlen (after));
        //  One more than asked tells whether this shard has more (at the
        //  largest page the shard's own cursor has to tell it).
        tiers_wire_set_headerf (message, "limit", "%d",
                                call->limit < LIST_MAX ? call->limit + 1 : LIST_MAX);
    }
    if (call->op == OP_PUT && !call->lookup)    //  sent once: moved, not copied
        tiers_wire_move_body (message, call->request);
    int rc = tiers_wire_send (message, zsock_resolve (self->shards [shard].sock), NULL);
    tiers_wire_destroy (&message);
    return rc;
}

//  --------------------------------------------------------------------------
//  A request from the balancer

static void
s_start (api_t *self, tiers_wire_t *request, zmsg_t *route)
{
    call_t *call = (call_t *) zmalloc (sizeof *call);
    assert (call);
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
        s_problem (self, call, 400, "a header of the request holds a NUL byte");
        s_call_destroy (&call);
        return;
    }
    const char *method = tiers_wire_header (request, "method");
    const char *collection = tiers_wire_header (request, "collection");
    const char *id = tiers_wire_header (request, "id");
    method = method ? method : "";
    if (!s_name_ok (collection, false)) {
        s_problem (self, call, 400, TIERS_COLLECTION_RULE);
        s_call_destroy (&call);
        return;
    }
    if (id && !s_name_ok (id, true)) {
        s_problem (self, call, 400, TIERS_DOC_ID_RULE);
        s_call_destroy (&call);
        return;
    }
    const char *if_match = tiers_wire_header (request, "if-match");
    const char *if_none = tiers_wire_header (request, "if-none-match");
    long long version = 0;
    bool create = false;
    const char *op = NULL;

    if (!self->writes && (streq (method, "GET") || streq (method, "HEAD")) && id) {
        call->op = OP_GET;
        const char *why = NULL;
        char detail [96];
        if (s_tags_parse (if_match, false, &call->if_match, &why)
        ||  s_tags_parse (if_none, true, &call->if_none, &why)) {
            snprintf (detail, sizeof detail, "%s %s",
                      why && call->if_none.present ? "If-None-Match" : "If-Match", why);
            s_problem (self, call, 400, detail);
            s_call_destroy (&call);
            return;
        }
        op = "get";
    }
    else
    if (!self->writes && (streq (method, "GET") || streq (method, "HEAD"))) {
        call->op = OP_LIST;
        call->limit = LIST_DEFAULT;
        const char *limit = tiers_wire_header (request, "limit");
        long long n;
        if (limit && (tiers_parse_int (limit, &n) || n < 1 || n > LIST_MAX)) {
            s_problem (self, call, 400, "limit must be an integer from 1 to 1000");
            s_call_destroy (&call);
            return;
        }
        if (limit)
            call->limit = (int) n;
        const char *after = tiers_wire_header (request, "after");
        if (after && *after && !s_name_ok (after, true)) {
            s_problem (self, call, 400, "after must be a document id");
            s_call_destroy (&call);
            return;
        }
        op = "list";
    }
    else
    if (self->writes && id && (streq (method, "PUT") || streq (method, "DELETE"))) {
        call->op = streq (method, "PUT") ? OP_PUT : OP_DELETE;
        op = call->op == OP_PUT ? "put" : "delete";
        const char *why = NULL;
        if (s_tags_parse (if_match, false, &call->if_match, &why)) {
            char detail [96];
            snprintf (detail, sizeof detail, "If-Match %s", why);
            s_problem (self, call, 400, detail);
            s_call_destroy (&call);
            return;
        }
        //  The shard checks one precondition atomically with the write:
        //  "exists" for *, a version for one tag, a version that no
        //  document has for none (so PUT gets 412, DELETE of a missing
        //  document its 404); several tags take a lookup first.
        if (call->if_match.any)
            call->must_exist = true;
        else
        if (call->if_match.present && call->if_match.count == 0)
            version = VERSION_NONE;
        else
        if (call->if_match.count == 1)
            version = call->if_match.versions [0];
        else
        if (call->if_match.count > 1)
            call->lookup = true;
        if (if_none) {
            if (s_tags_parse (if_none, true, &call->if_none, &why)
            ||  !call->if_none.any || call->op != OP_PUT) {
                s_problem (self, call, 400, "on writes If-None-Match can only be *, "
                                            "on PUT (create only)");
                s_call_destroy (&call);
                return;
            }
            create = true;
        }
        if (create && (if_match)) {
            s_problem (self, call, 400, "If-Match and If-None-Match together "
                                        "can never both hold");
            s_call_destroy (&call);
            return;
        }
        if (call->op == OP_PUT && request->body_size == 0) {
            s_problem (self, call, 400, "the body must be a JSON document");
            s_call_destroy (&call);
            return;
        }
        //  Whether the body is a JSON document the API can serve back is
        //  the shard's to say (storage/shard.c), once, for every writer.
    }
    else {
        s_problem (self, call, 405, "this pool does not serve that method");
        s_call_destroy (&call);
        return;
    }

    if (call->op == OP_LIST) {
        call->items = json_array ();
        for (size_t i = 0; i < self->shard_count; i++)
            if (s_shard_send (self, call, i, op, 0, false) == 0)
                call->waiting++;
        if (call->waiting < (int) self->shard_count) {
            tiers_counter_add (self->shard_errors, 1);
            s_problem (self, call, 503, "a shard is not reachable");
            s_call_destroy (&call);
            return;
        }
    }
    else {
        call->shard = self->owner [tiers_slot_of (collection, id, self->slots)];
        int rc = call->lookup ? s_shard_send (self, call, call->shard, "get", 0, false)
                              : s_shard_send (self, call, call->shard, op, version, create);
        if (rc) {
            tiers_counter_add (self->shard_errors, 1);
            s_problem (self, call, 503, "the shard is not reachable");
            s_call_destroy (&call);
            return;
        }
        call->waiting = 1;
    }
    zhashx_insert (self->calls, call->rid, call);
}

//  --------------------------------------------------------------------------
//  A shard's answer

static void
s_etag (tiers_wire_t *reply, const char *version)
{
    if (version)
        tiers_wire_set_headerf (reply, "etag", "\"%s\"", version);
}

static int
s_by_id (const void *a, const void *b)
{
    const char *left = json_string_value (json_object_get (*(json_t * const *) a, "id"));
    const char *right = json_string_value (json_object_get (*(json_t * const *) b, "id"));
    return strcmp (left ? left : "", right ? right : "");
}

static void
s_finish_list (api_t *self, call_t *call)
{
    if (call->failed) {
        s_problem (self, call, call->failed, "a shard could not list");
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
    tiers_wire_t *reply = tiers_wire_reply_to (call->request, 200);
    tiers_wire_set_body (reply, text, strlen (text));
    free (text);
    s_reply (self, call, reply);
    tiers_wire_destroy (&reply);
}

static void
s_list_part (api_t *self, call_t *call, tiers_wire_t *answer)
{
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

//  Returns true when the call is done.
static bool
s_answer (api_t *self, call_t *call, tiers_wire_t *answer)
{
    const char *error = tiers_wire_header (answer, "error");
    const char *version = tiers_wire_header (answer, "version");
    int status = answer->status;
    if (call->op == OP_LIST) {
        s_list_part (self, call, answer);
        if (call->waiting > 0)
            return false;
        s_finish_list (self, call);
        return true;
    }
    if (call->lookup) {                         //  If-Match with several tags
        if (status == 404 && call->op == OP_DELETE) {
            s_problem (self, call, 404, "no such document");
            return true;
        }
        if (status == 404) {
            s_problem (self, call, 412, "the document does not exist (If-Match)");
            return true;
        }
        if (status != 200 || !version) {
            s_problem (self, call, status >= 500 ? status : 502, error ? error : "shard error");
            return true;
        }
        call->lookup = false;
        long long current = 0;
        tiers_parse_int (version, &current);
        if (!s_tags_match (&call->if_match, current)) {
            s_problem (self, call, 412, "the document's version does not match If-Match");
            return true;
        }
        if (s_shard_send (self, call, call->shard, call->op == OP_PUT ? "put" : "delete",
                          current, false)) {
            s_problem (self, call, 503, "the shard is not reachable");
            return true;
        }
        return false;
    }
    if (status >= 400) {
        const char *detail = error;
        if (status == 404)
            detail = "no such document";
        else
        if (status == 412)
            detail = call->op == OP_PUT && tiers_wire_header (call->request, "if-none-match")
                   ? "the document exists (If-None-Match: *)"
                   : call->must_exist ? "the document does not exist (If-Match: *)"
                   : "the document's version does not match If-Match";
        if (status >= 500)
            tiers_counter_add (self->shard_errors, 1);
        s_problem (self, call, status, detail ? detail : tiers_problem_title (status));
        return true;
    }
    tiers_wire_t *reply = tiers_wire_reply_to (call->request, status);
    s_etag (reply, version);
    const char *collection = tiers_wire_header (call->request, "collection");
    const char *id = tiers_wire_header (call->request, "id");
    if (call->op == OP_GET) {
        long long current = 0;
        if (version)
            tiers_parse_int (version, &current);
        if (call->if_match.present && !s_tags_match (&call->if_match, current)) {
            tiers_wire_destroy (&reply);
            s_problem (self, call, 412, "the document's version does not match If-Match");
            return true;
        }
        //  HEAD gets the body too: MHD sends its length and drops it.
        if (call->if_none.present && s_tags_match (&call->if_none, current))
            reply->status = 304;
        else
            tiers_wire_move_body (reply, answer);
    }
    else
    if (call->op == OP_PUT) {
        //  collection and id were checked by s_name_ok (names.h):
        //  nothing to escape, so the JSON is written as text
        char text [COLLECTION_MAX + ID_MAX + 80];
        int size = snprintf (text, sizeof text,
                             "{\"collection\":\"%s\",\"id\":\"%s\",\"version\":%lld}",
                             collection, id, atoll (version ? version : "0"));
        assert (size > 0 && (size_t) size < sizeof text);
        tiers_wire_set_body (reply, text, (size_t) size);
        if (status == 201)
            tiers_wire_set_headerf (reply, "location", "/v1/%s/%s", collection, id);
    }
    s_reply (self, call, reply);
    tiers_wire_destroy (&reply);
    return true;
}

//  Takes one answer without waiting; false when none was there.
static bool
s_on_shard (void *arg)
{
    shard_link_t *link = (shard_link_t *) arg;
    api_t *self = link->api;
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
    call_t *call = (call_t *) zhashx_lookup (self->calls, answer->rid);
    if (call && s_answer (self, call, answer))
        zhashx_delete (self->calls, answer->rid);
    tiers_wire_destroy (&answer);
    return true;
}

//  Calls past their deadline are answered 504.
static void
s_expire (api_t *self)
{
    int64_t now = tiers_wire_now ();
    zlistx_t *late = zlistx_new ();
    for (call_t *call = (call_t *) zhashx_first (self->calls); call;
         call = (call_t *) zhashx_next (self->calls))
        if (call->request->deadline && call->request->deadline <= now)
            zlistx_add_end (late, call);
    for (call_t *call = (call_t *) zlistx_first (late); call;
         call = (call_t *) zlistx_next (late)) {
        s_problem (self, call, 504, "the shard did not answer in time");
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
    api_t *self = (api_t *) arg;
    zmsg_t *route = NULL;
    tiers_wire_t *request = NULL;
    if (tiers_service_try_recv (self->service, &route, &request))
        return false;
    if (request)
        s_start (self, request, route);
    return true;
}

//  After each pass: deadlines (a 10 ms sweep), heartbeats, reconnects.
static int
s_on_pass (void *arg)
{
    api_t *self = (api_t *) arg;
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
s_slot_table (api_t *self, const tiers_map_t *map, const tiers_entry_t *me)
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
        self->shards [index].api = self;
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

static void
s_api_actor (zsock_t *pipe, void *args_, bool writes)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    tiers_log_set_actor (args->name);
    api_t self_, *self = &self_;
    memset (self, 0, sizeof *self);
    snprintf (self->name, sizeof self->name, "%s", args->name);
    self->writes = writes;
    self->pool = tiers_entry_get (args->entry, "pool", writes ? "write" : "read");
    self->calls = zhashx_new ();
    zhashx_set_destructor (self->calls, s_call_free);
    char labels [128];
    snprintf (labels, sizeof labels, "api=\"%s\"", writes ? "write" : "read");
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
        .pool = self->pool,
        .name = args->name,
        .capacity = (int) tiers_entry_int (args->entry, "capacity", 64),
        .heartbeat_ms = (int) tiers_entry_int (args->entry, "heartbeat", heartbeat),
        .liveness = 3
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
    for (call_t *call = (call_t *) zhashx_first (self->calls); call;
         call = (call_t *) zhashx_next (self->calls))
        s_problem (self, call, 503, "shutting down");
    tiers_service_destroy (&self->service);
done:
    zhashx_destroy (&self->calls);
    for (size_t i = 0; i < self->shard_count; i++)
        zsock_destroy (&self->shards [i].sock);
    free (self->shards);
    free (self->owner);
}

static void
s_read_api_actor (zsock_t *pipe, void *args)
{
    s_api_actor (pipe, args, false);
}

static void
s_write_api_actor (zsock_t *pipe, void *args)
{
    s_api_actor (pipe, args, true);
}

static const tiers_key_t s_keys [] = {
    { "capacity",  TIERS_KEY_INT,    false, 1, 10000, NULL },
    { "pool",      TIERS_KEY_NAME,   false, 0, TIERS_WIRE_MAX_SERVICE, NULL },
    { "heartbeat", TIERS_KEY_MS,     false, 10, 60000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static const tiers_link_t s_links [] = {
    TIERS_LINK_BALANCER,
    { "shards", "shard", "requests", ZMQ_DEALER, true, false },
    { NULL, NULL, NULL, 0, false, false }
};

const tiers_kind_t tiers_read_api_kind = {
    .pool = "read",
    .name = "read-api",
    .summary = "serves document reads: routes by slot to the shards, merges lists",
    .rank = TIERS_RANK_SERVICE, .run = s_read_api_actor, .keys = s_keys,
    .links = s_links, .multi = true, .listener = NULL
};

const tiers_kind_t tiers_write_api_kind = {
    .pool = "write",
    .name = "write-api",
    .summary = "serves document writes: preconditions, routes by slot to the shards",
    .rank = TIERS_RANK_SERVICE, .run = s_write_api_actor, .keys = s_keys,
    .links = s_links, .multi = true, .listener = NULL
};
