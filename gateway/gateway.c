/*  gateway.c — the HTTP edge: the document API's routes on an HTTP face.

    The one idea: an HTTP request must wait for the back end without ever
    blocking the web server, and a ZeroMQ socket may only be touched by the
    thread that owns it. So each gateway instance is ONE actor thread that
    runs libmicrohttpd in external-event-loop mode beside its DEALER to the
    balancer; the access handler forwards a request and suspends the
    connection, the reply resumes it, in the same thread. No lock, no
    hand-off between threads, and one slow client cannot stall the others.
    Several instances share the listening port with SO_REUSEPORT (one per
    core, like nginx workers).

    That machinery — the MHD loop, suspend/resume, request ids, deadlines,
    limits, problem+json, metrics — is the HTTP face (gateway/http.c), the
    same for every public listener. This file is what makes it the
    document API: its route table (doc/http.md),

        document   /v1/{collection}/{id}  GET HEAD -> pool.read,
                                          PUT DELETE -> pool.write
        list       /v1/{collection}       GET HEAD -> pool.read
        health     /health                answered here
        metrics    /metrics               answered here (Prometheus text)

    and the gateway kind: its keys, its link to the balancer, and its two
    outlets `read` and `write`, which the map points at pools with
    `pool.read` / `pool.write` (the loader checks that every API pool is
    the target of some outlet).

    The public edge (doc/security.md): `tls_cert` / `tls_key` serve HTTPS
    (gateway/tls.h), `api_keys` and the `rate_*` keys make a guard
    (gateway/guard.h) that every instance of the entry shares. /health is
    open to anyone at any rate; /ready to anyone within the per-client
    rate; /metrics too, unless a key holds the right `metrics`; the
    documents take a key with the right to read or write their collection.
*/
#include "gateway.h"
#include "http.h"
#include "edge.h"
#include "guard.h"
#include "tls.h"
#include "map.h"
#include "node.h"
#include "wire.h"
#include "service.h"
#include "reactor.h"
#include "sock.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include <microhttpd.h>
#include <jansson.h>

//  What the routes need of the instance: the pools the outlets point
//  at, and the edge cache (NULL: off).
typedef struct {
    const char *read_pool, *write_pool;
    tiers_edge_t *edge;
} outlets_t;

//  Per request (the face's route state).
typedef struct {
    char collection [TIERS_COLLECTION_MAX + 1];
    char id [TIERS_DOC_ID_MAX + 1];
    tiers_edge_ticket_t ticket;     //  a read the edge missed: its fill
    bool forwarded, replied;        //  it went to a back end; its answer came
} doc_t;

//  --------------------------------------------------------------------------
//  Port sharing between the instances of one entry: instance 0 binds (maybe
//  to port 0 = any), the others reuse the port it really got. Instances
//  start one after the other, each after the previous one signalled ready.

static pthread_mutex_t s_ports_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { const tiers_entry_t *entry; int port; } s_ports [32];
static size_t s_ports_next;
static int s_last_port;

static void
s_port_publish (const tiers_entry_t *entry, int port)
{
    pthread_mutex_lock (&s_ports_lock);
    size_t i;
    for (i = 0; i < 32; i++)
        if (s_ports [i].entry == entry)
            break;
    if (i == 32)
        i = s_ports_next++ % 32;
    s_ports [i].entry = entry;
    s_ports [i].port = port;
    s_last_port = port;
    pthread_mutex_unlock (&s_ports_lock);
}

static int
s_port_lookup (const tiers_entry_t *entry)
{
    int port = 0;
    pthread_mutex_lock (&s_ports_lock);
    for (size_t i = 0; i < 32; i++)
        if (s_ports [i].entry == entry)
            port = s_ports [i].port;
    pthread_mutex_unlock (&s_ports_lock);
    return port;
}

//  --------------------------------------------------------------------------
//  The guard of an entry, shared by its instances: the first to start
//  makes it, the last to stop destroys it.

static pthread_mutex_t s_guards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { const tiers_entry_t *entry; tiers_guard_t *guard; int users; } s_guards [32];

//  The entry's guard; NULL with *why NULL when there is nothing to guard.
static tiers_guard_t *
s_guard_acquire (const tiers_entry_t *entry, const tiers_guard_config_t *config,
                 bool *first, char **why)
{
    *why = NULL;
    *first = false;
    pthread_mutex_lock (&s_guards_lock);
    tiers_guard_t *guard = NULL;
    size_t free_slot = 32;
    for (size_t i = 0; i < 32 && !guard; i++) {
        if (s_guards [i].entry == entry) {
            guard = s_guards [i].guard;
            s_guards [i].users++;
        }
        else
        if (!s_guards [i].entry && free_slot == 32)
            free_slot = i;
    }
    if (!guard) {
        guard = tiers_guard_new (config, why);
        if (guard && free_slot == 32) {
            tiers_guard_destroy (&guard);
            *why = strdup ("more than 32 gateway entries with api_keys or rate limits "
                           "in one process");
        }
        if (guard) {
            s_guards [free_slot].entry = entry;
            s_guards [free_slot].guard = guard;
            s_guards [free_slot].users = 1;
            *first = true;
        }
    }
    pthread_mutex_unlock (&s_guards_lock);
    return guard;
}

static void
s_guard_release (const tiers_entry_t *entry)
{
    pthread_mutex_lock (&s_guards_lock);
    for (size_t i = 0; i < 32; i++)
        if (s_guards [i].entry == entry && --s_guards [i].users == 0) {
            tiers_guard_destroy (&s_guards [i].guard);
            s_guards [i].entry = NULL;
        }
    pthread_mutex_unlock (&s_guards_lock);
}

int
tiers_gateway_port (void)
{
    pthread_mutex_lock (&s_ports_lock);
    int port = s_last_port;
    pthread_mutex_unlock (&s_ports_lock);
    return port;
}

//  --------------------------------------------------------------------------
//  The routes



//  /v1/{collection}: no second slash.
static bool
s_match_list (const char *path)
{
    return strncmp (path, "/v1/", 4) == 0 && path [4] && path [4] != '/'
        && !strchr (path + 4, '/');
}

//  /v1/{collection}/{id}: exactly one slash after the collection, an id.
static bool
s_match_document (const char *path)
{
    if (strncmp (path, "/v1/", 4) || !path [4] || path [4] == '/')
        return false;
    const char *slash = strchr (path + 4, '/');
    return slash && slash [1] && !strchr (slash + 1, '/');
}



//  The collection (and id) of a /v1/ path, checked by the one rule set
//  (runtime/names.h). False when they were refused (answered; *rc is the
//  answer's result).
static bool
s_names (tiers_http_req_t *req, const char *path, bool document, enum MHD_Result *rc)
{
    doc_t *doc = (doc_t *) tiers_http_state (req);
    const char *rest = path + 4;
    const char *slash = document ? strchr (rest, '/') : NULL;
    size_t length = slash ? (size_t) (slash - rest) : strlen (rest);
    if (!tiers_collection_ok (rest, length)) {
        *rc = tiers_http_problem (req, 400, TIERS_COLLECTION_RULE, NULL, NULL);
        return false;
    }
    memcpy (doc->collection, rest, length);
    doc->collection [length] = 0;
    if (slash) {
        if (!tiers_doc_id_ok (slash + 1, strlen (slash + 1))) {
            *rc = tiers_http_problem (req, 400, TIERS_DOC_ID_RULE, NULL, NULL);
            return false;
        }
        snprintf (doc->id, sizeof doc->id, "%s", slash + 1);
    }
    return true;
}

static enum MHD_Result
s_begin_list (tiers_http_req_t *req, const char *path)
{
    if (!tiers_http_reading (req))
        return tiers_http_problem (req, 405, "a collection supports GET and HEAD",
                                   "GET, HEAD", NULL);
    enum MHD_Result rc = MHD_YES;
    if (!s_names (req, path, false, &rc))
        return rc;
    doc_t *doc = (doc_t *) tiers_http_state (req);
    if (!tiers_http_allowed (req, TIERS_RIGHT_READ, doc->collection, &rc))
        return rc;
    outlets_t *outlets = (outlets_t *) tiers_http_arg (req);
    tiers_http_forward_to (req, outlets->read_pool, false);
    return MHD_YES;
}

static enum MHD_Result
s_begin_document (tiers_http_req_t *req, const char *path)
{
    const char *method = tiers_http_method (req);
    if (!method)
        return tiers_http_problem (req, 405, "a document supports GET, HEAD, PUT and DELETE",
                                   "GET, HEAD, PUT, DELETE", NULL);
    enum MHD_Result rc = MHD_YES;
    if (!s_names (req, path, true, &rc))
        return rc;
    bool reading = tiers_http_reading (req);
    doc_t *doc = (doc_t *) tiers_http_state (req);
    if (!tiers_http_allowed (req, reading ? TIERS_RIGHT_READ : TIERS_RIGHT_WRITE,
                             doc->collection, &rc))
        return rc;
    //  The edge cache answers what it may (gateway/edge.h), in this thread.
    outlets_t *outlets = (outlets_t *) tiers_http_arg (req);
    if (reading && outlets->edge
    &&  tiers_edge_lookup (outlets->edge, req, doc->collection, doc->id, &doc->ticket, &rc))
        return rc;
    tiers_http_forward_to (req, reading ? outlets->read_pool : outlets->write_pool,
                           streq (method, "PUT"));
    return MHD_YES;
}

static const char *s_too_long = "a conditional, session or paging header or parameter "
                                "is longer than 4096 bytes";

//  Read your writes (doc/http.md): the session's token and the consistency
//  asked for go to the read-api and write-api, which check them. Lists:
//  several lines of one are joined, as HTTP says of lists (and a token is
//  one; two consistencies joined are refused).
static void
s_forward_session (tiers_http_req_t *req, tiers_wire_t *msg, bool *too_long)
{
    tiers_http_copy_list (req, msg, "Tiers-Token", "token", too_long);
    tiers_http_copy_list (req, msg, "Tiers-Consistency", "consistency", too_long);
}

static int
s_forward_document (tiers_http_req_t *req, tiers_wire_t *msg, const char **detail)
{
    doc_t *doc = (doc_t *) tiers_http_state (req);
    tiers_wire_set_header (msg, "collection", doc->collection, strlen (doc->collection));
    tiers_wire_set_header (msg, "id", doc->id, strlen (doc->id));
    bool too_long = false;
    tiers_http_copy_list (req, msg, MHD_HTTP_HEADER_IF_MATCH, "if-match", &too_long);
    //  A miss the edge fills goes without the client's If-None-Match: a
    //  304 would fill nothing; the match is made here on the 200.
    if (doc->ticket.lease)
        doc->ticket.conditional = MHD_lookup_connection_value (
            tiers_http_connection (req), MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH) != NULL;
    else
        tiers_http_copy_list (req, msg, MHD_HTTP_HEADER_IF_NONE_MATCH, "if-none-match",
                              &too_long);
    //  Two lines of it are joined, and then refused by the write-api.
    tiers_http_copy_list (req, msg, "Idempotency-Key", "idempotency-key", &too_long);
    s_forward_session (req, msg, &too_long);
    if (doc->ticket.lease && !too_long)
        tiers_edge_forward (((outlets_t *) tiers_http_arg (req))->edge, &doc->ticket, msg);
    *detail = s_too_long;
    doc->forwarded = !too_long;     //  (a send that fails is answered 503 by the face)
    return too_long ? 431 : 0;
}

//  A document request is over: a read's lease that no answer filled goes
//  back (the client left, the face answered 503/504/431 itself); a write
//  that no back end answered may still have been applied: its key here
//  is dropped as of an unknown version.
static void
s_done_document (tiers_http_req_t *req)
{
    doc_t *doc = (doc_t *) tiers_http_state (req);
    tiers_edge_t *edge = ((outlets_t *) tiers_http_arg (req))->edge;
    if (!edge || !*doc->collection || !*doc->id)
        return;
    if (doc->ticket.lease)
        tiers_edge_release (edge, doc->collection, doc->id, &doc->ticket);
    else
    if (doc->forwarded && !doc->replied && !tiers_http_reading (req)) {
        tiers_wire_t *unknown = tiers_wire_new (TIERS_WIRE_REPLY);
        unknown->status = 504;
        tiers_edge_written (edge, doc->collection, doc->id, unknown);
        tiers_wire_destroy (&unknown);
    }
}

//  A document's answer: the face's mapping, after the edge filled from it
//  when the read was its miss, or dropped the key a write changed.
static void
s_reply_document (tiers_http_req_t *req, tiers_wire_t *reply)
{
    doc_t *doc = (doc_t *) tiers_http_state (req);
    tiers_edge_t *edge = ((outlets_t *) tiers_http_arg (req))->edge;
    doc->replied = true;
    if (doc->ticket.lease) {
        tiers_edge_fill (edge, doc->collection, doc->id, &doc->ticket, reply);
        if (doc->ticket.conditional && tiers_edge_not_modified (req, reply)) {
            reply->status = 304;
            tiers_wire_set_body (reply, NULL, 0);
        }
    }
    else
    if (edge && !tiers_http_reading (req))
        tiers_edge_written (edge, doc->collection, doc->id, reply);
    tiers_http_reply_default (req, reply);
}

static int
s_forward_list (tiers_http_req_t *req, tiers_wire_t *msg, const char **detail)
{
    doc_t *doc = (doc_t *) tiers_http_state (req);
    tiers_wire_set_header (msg, "collection", doc->collection, strlen (doc->collection));
    bool too_long = false;
    tiers_http_copy_value (req, msg, MHD_GET_ARGUMENT_KIND, "limit", "limit", &too_long);
    tiers_http_copy_value (req, msg, MHD_GET_ARGUMENT_KIND, "after", "after", &too_long);
    s_forward_session (req, msg, &too_long);
    *detail = s_too_long;
    return too_long ? 431 : 0;
}

//  Readiness: liveness (/health) says the gateway runs; /ready says it can
//  serve. Two questions in turn: the balancer, whether every pool its
//  outlets send to has a live worker; then a read-api, whether every shard
//  answers within a bound, takes writes and has no commit stuck (the
//  API's READY probe, actors/api_core.c). 200 with pools and shards, or
//  503 + Retry-After saying what is not ready.
typedef struct {
    bool asked_shards;          //  the balancer answered; now the shards
    char pools [192];           //  the pools' JSON members, for the answer
} ready_t;

static bool
s_match_ready (const char *path)
{
    return streq (path, "/ready");
}

static enum MHD_Result
s_begin_ready (tiers_http_req_t *req, const char *path)
{
    if (!tiers_http_reading (req))
        return tiers_http_problem (req, 405, "use GET or HEAD", "GET, HEAD", NULL);
    tiers_http_forward_to (req, "status", false);      //  the balancer answers
    return MHD_YES;
}

//  Live workers of `pool` in the balancer's STATUS body (0 when absent).
static json_int_t
s_workers (json_t *status, const char *pool)
{
    json_t *workers = json_object_get (json_object_get (json_object_get (status, "pools"),
                                                        pool), "workers");
    return json_is_integer (workers) ? json_integer_value (workers) : 0;
}

//  The balancer's STATUS: every pool with a worker? Then ask the shards.
static void
s_ready_pools (tiers_http_req_t *req, ready_t *ready, tiers_wire_t *reply)
{
    outlets_t *outlets = (outlets_t *) tiers_http_arg (req);
    json_t *status = reply->status == 200
        ? json_loadb ((const char *) reply->body, reply->body_size, 0, NULL) : NULL;
    if (!status) {
        tiers_http_problem (req, 503, "the balancer did not say which pools have "
                            "workers", NULL, "1");
        return;
    }
    const char *pools [2] = { outlets->read_pool, outlets->write_pool };
    char missing [128] = "";
    for (int i = 0; i < 2; i++)
        if (s_workers (status, pools [i]) < 1 && (i == 0 || !streq (pools [0], pools [1])))
            snprintf (missing + strlen (missing), sizeof missing - strlen (missing),
                      "%s%s", *missing ? ", " : "", pools [i]);
    snprintf (ready->pools, sizeof ready->pools, "\"%s\":%lld,\"%s\":%lld",
              pools [0], (long long) s_workers (status, pools [0]),
              pools [1], (long long) s_workers (status, pools [1]));
    json_decref (status);
    if (*missing) {
        char detail [192];
        snprintf (detail, sizeof detail, "no live worker in pool %s", missing);
        tiers_http_problem (req, 503, detail, NULL, "1");
        return;
    }
    ready->asked_shards = true;
    if (tiers_http_ask (req, outlets->read_pool, 0, "READY"))
        tiers_http_problem (req, 503, "the balancer is not taking requests", NULL, "1");
}

//  A read-api's READY answer: {"shards":{...},"problems":[...]}.
static void
s_ready_shards (tiers_http_req_t *req, ready_t *ready, tiers_wire_t *reply)
{
    json_t *answer = json_loadb ((const char *) reply->body, reply->body_size, 0, NULL);
    json_t *shards = json_object_get (answer, "shards");
    json_t *problems = json_object_get (answer, "problems");
    if (reply->status == 200 && json_is_object (shards)) {
        char *members = json_dumps (shards, JSON_COMPACT | JSON_SORT_KEYS);
        char *text = members ? zsys_sprintf ("{\"status\":\"ready\",\"pools\":{%s},"
                                             "\"shards\":%s}", ready->pools, members) : NULL;
        if (text)
            tiers_http_text (req, 200, "application/json", text, strlen (text));
        else
            tiers_http_problem (req, 500, "out of memory", NULL, NULL);
        free (members);
        free (text);
    }
    else
    if (json_array_size (problems)) {
        char detail [1024] = "";
        size_t index;
        json_t *problem;
        json_array_foreach (problems, index, problem)
            if (json_is_string (problem))
                snprintf (detail + strlen (detail), sizeof detail - strlen (detail),
                          "%s%s", *detail ? "; " : "", json_string_value (problem));
        tiers_http_problem (req, 503, detail, NULL, "1");
    }
    else {
        const char *error = tiers_wire_header (reply, "error");
        char detail [256];
        snprintf (detail, sizeof detail, "the shards' readiness is unknown: %s pool "
                  "answered %d%s%s", ((outlets_t *) tiers_http_arg (req))->read_pool, reply->status,
                  error ? ": " : "", error ? error : "");
        tiers_http_problem (req, 503, detail, NULL, "1");
    }
    json_decref (answer);
}

static void
s_reply_ready (tiers_http_req_t *req, tiers_wire_t *reply)
{
    ready_t *ready = (ready_t *) tiers_http_state (req);
    if (ready->asked_shards)
        s_ready_shards (req, ready, reply);
    else
        s_ready_pools (req, ready, reply);
}

static const tiers_http_route_t s_routes [] = {
    { "document", s_match_document, s_begin_document, s_forward_document, NULL, 0,
      s_reply_document, TIERS_HTTP_KEYED, s_done_document },
    { "list",     s_match_list,     s_begin_list,     s_forward_list,     NULL, 0, NULL,
      TIERS_HTTP_KEYED, NULL },
    { "health",   tiers_http_match_health,   tiers_http_begin_health,   NULL,               NULL, 0, NULL,
      TIERS_HTTP_OPEN, NULL },
    { "ready",    s_match_ready,    s_begin_ready,    NULL,               NULL,
      TIERS_WIRE_STATUS, s_reply_ready, TIERS_HTTP_ANYONE, NULL },
    { "metrics",  tiers_http_match_metrics,  tiers_http_begin_metrics,  NULL,               NULL, 0, NULL,
      TIERS_HTTP_METRICS, NULL },
};

//  --------------------------------------------------------------------------
//  The actor

//  One line for the log, by the instance that made the guard: how many
//  keys (never which), and the limits.
static void
s_guard_describe (tiers_guard_t *guard, const char *api_keys)
{
    const tiers_keys_t *keys = tiers_guard_keys (guard);
    tiers_limit_t *per_key = tiers_guard_per_key (guard);
    tiers_limit_t *per_client = tiers_guard_per_client (guard);
    char key_limit [64] = "off", client_limit [64] = "off";
    if (per_key)
        snprintf (key_limit, sizeof key_limit, "%u/s (burst %u)",
                  tiers_limit_rate (per_key), tiers_limit_burst (per_key));
    if (per_client)
        snprintf (client_limit, sizeof client_limit, "%u/s (burst %u)",
                  tiers_limit_rate (per_client), tiers_limit_burst (per_client));
    if (keys)
        tiers_info ("api_keys %s: %zu key%s%s; rate_per_key %s, rate_per_client %s",
                    api_keys, tiers_keys_size (keys), tiers_keys_size (keys) == 1 ? "" : "s",
                    tiers_guard_metrics_keyed (guard) ? ", /metrics needs a key" : "",
                    key_limit, client_limit);
    else
        tiers_info ("no api_keys: open to anyone; rate_per_client %s", client_limit);
}

static void
s_gateway_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    const tiers_entry_t *entry = args->entry;
    tiers_log_set_actor (args->name);
    outlets_t outlets = {
        tiers_entry_get (entry, "pool.read", "read"),
        tiers_entry_get (entry, "pool.write", "write"),
        NULL
    };
    long long idle_ms = tiers_entry_int (entry, "idle_timeout", 15000);
    char host [256];
    int port = 0;
    tiers_http_config_t config = {
        .name = args->name,
        .instance = args->instance,
        .host = host,
        .reuse_port = entry->instances > 1,
        .max_body = (uint64_t) tiers_entry_int (entry, "max_body", 1024 * 1024),
        .max_url = (size_t) tiers_entry_int (entry, "max_url", 2048),
        .max_header = (size_t) tiers_entry_int (entry, "max_header", 16 * 1024),
        //  0: what the file descriptors allow, and a share of that
        .connections = (unsigned) tiers_entry_int (entry, "connections", 0),
        .per_client = (unsigned) tiers_entry_int (entry, "per_client", 0),
        .idle_timeout_s = (unsigned) ((idle_ms + 999) / 1000),
        .head_timeout_ms = tiers_entry_int (entry, "head_timeout", 10000),
        .min_body_rate = (uint64_t) tiers_entry_int (entry, "min_body_rate", 1024),
        .deadline_ms = tiers_entry_int (entry, "deadline", 5000),
        .routes = s_routes,
        .route_count = sizeof s_routes / sizeof s_routes [0],
        .arg = &outlets
    };
    const char *http = tiers_entry_get (entry, "http", NULL);
    if (!http || tiers_hostport_split (http, host, sizeof host, &port)) {
        tiers_actor_failed (pipe, "bad http listener '%s'", http ? http : "");
        return;
    }
    if (!entry->connect) {
        tiers_actor_failed (pipe, "no balancer to connect to");
        return;
    }
    if (args->instance > 0 && port == 0)
        port = s_port_lookup (entry);
    if (args->instance > 0 && port == 0) {
        tiers_actor_failed (pipe, "instance 0 of %s published no port", entry->name);
        return;
    }
    config.port = port;
    //  HTTPS: both files or neither.
    const char *cert = tiers_entry_get (entry, "tls_cert", NULL);
    const char *key = tiers_entry_get (entry, "tls_key", NULL);
    if (!cert != !key) {
        tiers_actor_failed (pipe, "tls_cert and tls_key go together: the entry has only %s",
                            cert ? "tls_cert" : "tls_key");
        return;
    }
    char *why = NULL;
    tiers_tls_t *tls = cert ? tiers_tls_load (cert, key, &why) : NULL;
    if (cert && !tls) {
        tiers_actor_failed (pipe, "%s", why);
        free (why);
        return;
    }
    config.tls = tls;
    //  API keys and rate limits. Without api_keys the gateway is open as it
    //  always was, and unlimited unless rate_per_client says otherwise;
    //  with them, requests without a valid key are limited per address by
    //  default (doc/security.md says why these numbers).
    const char *api_keys = tiers_entry_get (entry, "api_keys", NULL);
    tiers_guard_config_t limits = {
        .api_keys = api_keys,
        .rate_per_key = (unsigned) tiers_entry_int (entry, "rate_per_key", 1000),
        .burst_per_key = (unsigned) tiers_entry_int (entry, "burst_per_key", 0),
        .rate_per_client = (unsigned) tiers_entry_int (entry, "rate_per_client",
                                                       api_keys ? 20 : 0),
        .burst_per_client = (unsigned) tiers_entry_int (entry, "burst_per_client", 0)
    };
    bool first = false;
    config.guard = s_guard_acquire (entry, &limits, &first, &why);
    if (why) {
        tiers_actor_failed (pipe, "%s", why);
        free (why);
        tiers_tls_destroy (&tls);
        return;
    }
    if (first)
        s_guard_describe (config.guard, api_keys);
    if (tls && args->instance == 0)
        tiers_info ("TLS: %s", tiers_tls_summary (tls));
    //  The edge cache: a read's lease lasts what the read may take.
    outlets.edge = tiers_edge_new (args, config.deadline_ms, &why);
    zsock_t *dealer = why ? NULL : tiers_link_connect (entry, "balancer", 0, &why);
    config.dealer = dealer;
    tiers_http_t *face = dealer ? tiers_http_new (&config, &why) : NULL;
    if (!face) {
        tiers_actor_failed (pipe, "%s", why);
        free (why);
        tiers_edge_destroy (&outlets.edge);
        zsock_destroy (&dealer);
        if (config.guard)
            s_guard_release (entry);
        tiers_tls_destroy (&tls);
        return;
    }
    port = tiers_http_port (face);
    if (args->instance == 0)
        s_port_publish (entry, port);
    bool v6 = strchr (host, ':') != NULL;
    const char *scheme = tls ? "https" : "http";
    tiers_info ("listening on %s://%s%s%s:%d (balancer %s)", scheme, v6 ? "[" : "",
                host, v6 ? "]" : "", port, entry->connect);
    printf ("tiers: gateway %s listening on %s://%s%s%s:%d\n", args->name, scheme,
            v6 ? "[" : "", host, v6 ? "]" : "", port);
    fflush (stdout);
    tiers_actor_ready (pipe);

    tiers_reactor_t *reactor = tiers_reactor_new (pipe);
    tiers_http_attach (face, reactor);
    if (outlets.edge)
        tiers_edge_attach (outlets.edge, reactor);
    tiers_reactor_run (reactor);
    tiers_reactor_destroy (&reactor);
    tiers_http_destroy (&face);
    tiers_edge_destroy (&outlets.edge);
    zsock_destroy (&dealer);
    if (config.guard)
        s_guard_release (entry);
    tiers_tls_destroy (&tls);
}

static const tiers_key_t s_keys [] = {
    { "http",         TIERS_KEY_HOSTPORT, true,  0, 0, NULL },
    { "max_body",     TIERS_KEY_BYTES,    false, 1, TIERS_WIRE_MAX_BODY, NULL },
    { "max_url",      TIERS_KEY_INT,      false, 16, 1024 * 1024, NULL },
    { "max_header",   TIERS_KEY_BYTES,    false, 1024, 1024 * 1024, NULL },
    { "connections",  TIERS_KEY_INT,      false, 1, 1000000, NULL },
    { "per_client",   TIERS_KEY_INT,      false, 1, 1000000, NULL },
    { "idle_timeout", TIERS_KEY_MS,       false, 1, 3600000, NULL },
    { "head_timeout", TIERS_KEY_MS,       false, 1, 3600000, NULL },
    { "min_body_rate", TIERS_KEY_BYTES,   false, 0, 1024 * 1024 * 1024, NULL },
    { "deadline",     TIERS_KEY_MS,       false, 1, 3600000, NULL },
    { "pool.read",    TIERS_KEY_NAME,     false, 0, TIERS_WIRE_MAX_SERVICE, NULL },
    { "pool.write",   TIERS_KEY_NAME,     false, 0, TIERS_WIRE_MAX_SERVICE, NULL },
    { "tls_cert",     TIERS_KEY_STRING,   false, 0, 4096, NULL },
    { "tls_key",      TIERS_KEY_STRING,   false, 0, 4096, NULL },
    { "api_keys",     TIERS_KEY_STRING,   false, 0, 4096, NULL },
    { "rate_per_key", TIERS_KEY_INT,      false, 0, 1000000, NULL },
    { "burst_per_key", TIERS_KEY_INT,     false, 1, 1000000, NULL },
    { "rate_per_client", TIERS_KEY_INT,   false, 0, 1000000, NULL },
    { "burst_per_client", TIERS_KEY_INT,  false, 1, 1000000, NULL },
    { "edge_cache",   TIERS_KEY_BYTES,    false, 0, 64LL * 1024 * 1024 * 1024, NULL },
    { "edge_ttl",     TIERS_KEY_MS,       false, 0, 86400000LL * 365, NULL },
    { "edge_negative_ttl", TIERS_KEY_MS,  false, 1, 3600000, NULL },
    { "edge_silent",  TIERS_KEY_MS,       false, 300, 3600000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

//  The balancer, and every shard's commit stream for the edge cache (as a
//  keys follower, actors/follow.h; none is fine: the edge is then off).
static const tiers_link_t s_links [] = {
    TIERS_LINK_BALANCER,
    { "streams", "shard", "stream", ZMQ_DEALER, true, true, NULL },
    { NULL, NULL, NULL, 0, false, false, NULL }
};

//  Where the routes send requests: pool.read and pool.write.
static const char *const s_outlets [] = { "read", "write", NULL };

const tiers_kind_t tiers_gateway_kind = {
    .outlets = s_outlets,
    .name = "gateway",
    .summary = "HTTP edge (libmicrohttpd): routes, limits, request ids, to the balancer",
    .rank = TIERS_RANK_EDGE,
    .run = s_gateway_actor,
    .keys = s_keys,
    .multi = true,
    .links = s_links,
    .listener = "http"
};
