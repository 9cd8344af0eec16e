/*  http.c — the HTTP face (see http.h): libmicrohttpd in one actor thread,
    beside the DEALER to the balancer, with a route table deciding what
    each request is.

    The life of one request (its request_t, hung on MHD's per-request
    pointer):

        RECEIVING   first call: request id, the face's limits, the route
                    (match, then begin); then the body, counted against
                    max_body and kept when the route asked for it.
                    --error or local answer--> ANSWERED (response queued
                    at once, never suspended)
                    --last call: sent to the route's pool, connection
                    suspended-->
        FORWARDED   in the table (rid -> request) and in the deadline list
                    (FIFO: every request gets the same `deadline`, so the
                    head is always the nearest one).
                    --REPLY with its rid--> ANSWERED
                    --deadline passed--> ANSWERED (504)
                    --shutdown--> ANSWERED (503)
                    Leaving FORWARDED removes the request from the table and
                    the list, queues the response and resumes the
                    connection: exactly once.
        ANSWERED    MHD sends the response; its completion callback frees
                    the request. A reply for a rid no longer in the table is
                    late: dropped and counted.

    Invariant: a request is in the table iff it is FORWARDED iff its
    connection is suspended.

    A suspended connection never times out in MHD and does not notice the
    client leaving: that is why the face keeps its own deadline per
    forwarded request.

    The life of one connection (its conn_t, MHD's socket context), for
    the other end of the same problem: a client that is slow to send.
    MHD's idle timeout starts again at every byte, so a client trickling
    a byte every few seconds would hold its connection for ever; each
    phase of sending therefore has a deadline of its own:

        (accepted by the listener, handed to MHD)
        HEAD        until the first request's head is complete: at most
                    head_timeout from the accept
        BODY        while a request's body comes: every head_timeout, at
                    least min_body_rate x head_timeout bytes more of it
        BUSY        the request is being handled, forwarded or answered:
                    no deadline here (the request's own deadline is)
        WAIT        kept alive after an answer, until the next head is
                    complete: at most idle_timeout + head_timeout (the
                    idle wait for its first byte, then its head)

        HEAD, WAIT --head complete--> BODY (a body follows) or BUSY
        BODY --body complete--> BUSY --answer sent--> WAIT
        HEAD, WAIT, BODY --deadline--> CUT: answered 408 straight on the
                    socket (unless MHD has an answer of its own on the way)
                    and shut down; MHD sees the end and closes it

    Each of HEAD, WAIT and BODY is a FIFO whose entries all got the same
    interval, so its head is always the nearest deadline: checking costs
    nothing while nothing is due. A connection is in at most one FIFO.

    Over TLS the same phases hold (the handshake is part of HEAD), but
    the face cannot write on the socket past MHD's TLS session: a cut
    connection is closed without the 408, and a connection refused at
    accept gets a TLS alert instead of the 503 (listener.h).

    The guard (when the face has one) is asked at the first call, once
    the route is known and before it begins: the key and the bucket, per
    the route's access (http.h). Without a guard that is one test of a
    NULL pointer.
*/
#include "http.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "problem.h"
#include <microhttpd.h>
#include <sys/random.h>

#define GW_MAX_RID          64          //  a client's own X-Request-Id
#define GW_MAX_HEADER_LINES 100         //  header lines in one request
//  MHD's memory pool per connection: the headers up to max_header, MHD's
//  record of each header line, and room to build the answer's headers;
//  headers somewhat over max_header still fit (the face, not MHD, answers
//  those). No more than that: MHD 0.9.75 zeroes the whole pool before
//  every request of a kept-alive connection, so its size is paid on each
//  request (twice max_header here cost a quarter of /health's rate,
//  doc/performance.md, "The read cache").
#define GW_POOL(max_header) ((max_header) + GW_MAX_HEADER_LINES * 64 + 8192)
#define GW_ACCEPT_BURST     64          //  connections taken per pass

typedef enum { REQ_RECEIVING, REQ_FORWARDED, REQ_ANSWERED } req_state_t;
typedef enum { CONN_HEAD, CONN_BODY, CONN_BUSY, CONN_WAIT } conn_phase_t;

typedef struct _tiers_http_t face_t;
typedef struct _tiers_http_req_t request_t;
typedef struct _conn_t conn_t;

struct _conn_t {
    face_t *face;
    struct MHD_Connection *connection;
    int fd;
    tiers_client_t *client;     //  its address's count in the listener
    conn_phase_t phase;
    conn_t *prev, *next;        //  in the phase's FIFO (not when BUSY)
    int64_t due;                //  monotonic ms: the phase's deadline
    request_t *req;             //  the request in progress, if any
    uint64_t mark;              //  BODY: body bytes at the last check
    bool cut;                   //  timed out: its requests are refused
    tiers_limit_id_t address;   //  its client's bucket (with a guard)
    tiers_tls_probe_t probe;    //  plain HTTP on the TLS port? (with TLS)
};

typedef struct {
    conn_t *head, *tail;
} fifo_t;

struct _tiers_http_req_t {
    face_t *face;
    struct MHD_Connection *connection;
    conn_t *conn;               //  the connection's deadlines
    req_state_t state;
    const tiers_http_route_t *route;    //  NULL: no route took it
    size_t label;               //  route index; route_count for "other"
    const char *method;         //  static string: "GET", "HEAD", ...
    const char *pool;           //  where it goes, NULL: answered here
    bool keep_body;             //  the body goes with it
    char rid [GW_MAX_RID + 1];  //  X-Request-Id shown to the client
    bool rid_given;             //  the client sent it (else we made it)
    char key [TIERS_WIRE_MAX_RID + 1];      //  rid on the wire / table key
    uint8_t *body;              //  the body so far (room for body_size + 1)
    size_t body_size, body_room;
    uint64_t received;          //  body bytes seen, kept or not
    bool too_big;               //  body exceeded max_body: answer 413
    bool draining;              //  answered 503 at shutdown
    bool first_call;            //  inside the first call of the handler
    bool has_body;              //  Content-Length > 0 or chunked
    bool close;                 //  close the connection after the answer
    struct MHD_Response *held;  //  answer decided early, queued at the last call
    int held_status;
    int64_t started;            //  monotonic us
    int api_key;                //  the guard's key index, -1 = none
    int64_t deadline;           //  monotonic ms, FORWARDED only
    bool asked;                 //  the reply hook asked another back end
    void *handle;               //  in face->forwarded, FORWARDED only
    uint64_t state_ [TIERS_HTTP_STATE_MAX / 8];     //  the route's
};

struct _tiers_http_t {
    char name [96];
    int instance;
    zsock_t *dealer;                //  to the balancer
    struct MHD_Daemon *daemon;
    int epoll_fd;
    tiers_listener_t *listener;     //  accepts for MHD
    char host [256];
    int port;
    bool reuse_port;
    const tiers_http_route_t *routes;
    size_t route_count;
    void *arg;
    const char *not_found;
    const tiers_tls_t *tls;         //  NULL: plain HTTP
    tiers_guard_t *guard;           //  NULL: no keys, no rate limits
    //  Limits (doc/http.md)
    uint64_t max_body;
    size_t max_url;
    size_t max_header;
    unsigned connections, per_client, idle_timeout_s;
    int64_t head_timeout_ms;
    uint64_t min_body_rate;
    int64_t deadline_ms;
    //  Connections (see the file head)
    fifo_t heads, bodies, waits;
    tiers_arrival_t *adding;        //  the one MHD_add_connection is taking
    //  Forwarded requests
    zhashx_t *table;                //  key -> request_t * (not owned)
    zlistx_t *forwarded;            //  request_t *, oldest (= nearest deadline) first
    uint64_t sequence;              //  for generated request ids
    bool stopping;
    size_t closing;                 //  answered at shutdown, not yet completed
    //  Metrics
    char metrics [32];              //  tiers_<metrics>_requests_total, ...
    zhashx_t *counters;             //  "label|status" -> tiers_counter_t *
    tiers_histogram_t **latency;    //  per route, and one for "other"
    tiers_gauge_t *inflight, *open;
    tiers_counter_t *late, *malformed;
    tiers_counter_t *refused_full, *refused_client, *refused_fds;
    tiers_counter_t *cut_head, *cut_body;
    tiers_counter_t *denied [TIERS_GUARD_VERDICTS];    //  by the guard's reason
    bool running;                   //  MHD started: its messages are per client
    //  The loop
    tiers_reactor_t *reactor;
    bool http_ready;                //  MHD's epoll fd stirred in this pass
    int replies;                    //  requests resumed in this pass
    long timeout;                   //  the wait the last pass asked for
};

//  --------------------------------------------------------------------------
//  Request ids

static bool
s_rid_valid (const char *text)
{
    size_t length = text ? strlen (text) : 0;
    if (length < 1 || length > GW_MAX_RID)
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char) text [i] < 0x21 || (unsigned char) text [i] > 0x7e)
            return false;
    return true;
}

//  A process-wide random prefix makes generated ids unique across
//  processes and restarts; instance and counter make them unique inside.
static uint32_t s_salt;
static pthread_once_t s_salt_once = PTHREAD_ONCE_INIT;

static void
s_salt_init (void)
{
    if (getrandom (&s_salt, sizeof s_salt, 0) != sizeof s_salt)
        s_salt = (uint32_t) getpid () ^ (uint32_t) zclock_time ();
}

static uint32_t
s_process_salt (void)
{
    pthread_once (&s_salt_once, s_salt_init);
    return s_salt;
}

static void
s_rid_generate (face_t *self, char *rid, size_t size)
{
    snprintf (rid, size, "%08x-%d-%" PRIx64, s_process_salt (), self->instance,
              ++self->sequence);
}

//  --------------------------------------------------------------------------
//  Responses

//  RFC 9457 problem details (runtime/problem.h), with our request id.
static struct MHD_Response *
s_problem_new (request_t *req, int status, const char *detail)
{
    char *json = tiers_problem_json (status, detail, req->rid);
    struct MHD_Response *response = json
        ? MHD_create_response_from_buffer_with_free_callback (strlen (json), json, free)
        : NULL;
    if (!response)
        free (json);
    else
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                 "application/problem+json");
    return response;
}

//  "tiers_<metrics>_<what>": a face's metrics carry its listener's word
//  (tiers_gateway_requests_total, tiers_exporter_requests_total).
static const char *
s_metric (face_t *self, const char *what, char *name, size_t size)
{
    snprintf (name, size, "tiers_%s_%s", self->metrics, what);
    return name;
}

static void
s_count (face_t *self, request_t *req, int status)
{
    char key [32];
    snprintf (key, sizeof key, "%zu|%d", req->label, status);
    tiers_counter_t *counter = (tiers_counter_t *) zhashx_lookup (self->counters, key);
    if (!counter) {
        char labels [96];
        snprintf (labels, sizeof labels, "route=\"%s\",status=\"%d\"",
                  req->route ? req->route->name : "other", status);
        char name [64];
        counter = tiers_metrics_counter (s_metric (self, "requests_total", name, sizeof name),
                                         labels, "HTTP requests answered, by route and status");
        zhashx_insert (self->counters, key, counter);
    }
    tiers_counter_add (counter, 1);
    tiers_histogram_observe (self->latency [req->label],
                             (tiers_clock_us () - req->started) / 1e6);
}

//  Leave FORWARDED: out of the table and the deadline list.
static void
s_forget (face_t *self, request_t *req)
{
    assert (req->state == REQ_FORWARDED);
    zhashx_delete (self->table, req->key);
    zlistx_delete (self->forwarded, req->handle);
    req->handle = NULL;
}

//  Hand the response to MHD and count it.
static enum MHD_Result
s_queue (request_t *req, int status, struct MHD_Response *response)
{
    enum MHD_Result rc = MHD_queue_response (req->connection, (unsigned) status,
                                             response);
    MHD_destroy_response (response);
    if (rc == MHD_YES)
        s_count (req->face, req, status);
    else
        tiers_warn ("request %s: MHD refused the %d response", req->rid, status);
    return rc;
}

//  Send `response` (consumed) for this request, exactly once: queue it
//  and, when the connection is suspended, take the request out of the
//  table and resume it. Returns MHD's verdict for the access handler.
//
//  An answer decided on the first call of a request without a body is
//  held until the last call: MHD 0.9.75 closes the connection after a
//  response queued "early" (before the body), which would cost keep-alive
//  on every /health, 404 or 405. With a body, early is what we want (413:
//  the body is never read).
static enum MHD_Result
s_respond (request_t *req, int status, struct MHD_Response *response)
{
    face_t *self = req->face;
    bool suspended = req->state == REQ_FORWARDED;
    if (suspended)
        s_forget (self, req);
    req->state = REQ_ANSWERED;
    if (!response) {
        //  Out of memory: close the connection (a resumed one comes back
        //  to the access handler as ANSWERED, which says MHD_NO).
        tiers_error ("request %s: cannot create a response", req->rid);
        if (suspended)
            MHD_resume_connection (req->connection);
        return MHD_NO;
    }
    MHD_add_response_header (response, "X-Request-Id", req->rid);
    if (self->stopping || req->close)
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONNECTION, "close");
    if (req->first_call && !req->has_body) {
        req->held = response;
        req->held_status = status;
        return MHD_YES;
    }
    enum MHD_Result rc = s_queue (req, status, response);
    if (suspended)
        MHD_resume_connection (req->connection);
    return rc;
}

enum MHD_Result
tiers_http_problem (request_t *req, int status, const char *detail,
                    const char *allow, const char *retry_after)
{
    struct MHD_Response *response = s_problem_new (req, status, detail);
    if (response && allow)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, allow);
    if (response && retry_after)
        MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    return s_respond (req, status, response);
}

enum MHD_Result
tiers_http_respond (request_t *req, int status, struct MHD_Response *response)
{
    return s_respond (req, status, response);
}

enum MHD_Result
tiers_http_text (request_t *req, int status, const char *type,
                 const char *text, size_t size)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        size, (void *) text, MHD_RESPMEM_MUST_COPY);
    if (response)
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return s_respond (req, status, response);
}

//  --------------------------------------------------------------------------
//  The guard: who may ask, and how often

//  RFC 6750 3: the challenge of each refusal.
static const char *
s_challenge (tiers_verdict_t verdict)
{
    switch (verdict) {
        case TIERS_GUARD_NO_KEY:    return "Bearer realm=\"tiers\"";
        case TIERS_GUARD_MALFORMED: return "Bearer realm=\"tiers\", error=\"invalid_request\"";
        case TIERS_GUARD_UNKNOWN:   return "Bearer realm=\"tiers\", error=\"invalid_token\"";
        case TIERS_GUARD_FORBIDDEN: return "Bearer realm=\"tiers\", error=\"insufficient_scope\"";
        default:                    return NULL;
    }
}

//  401, 403 or 429, counted by reason. Nothing was forwarded, so nothing
//  of the request can have been applied.
static enum MHD_Result
s_deny (request_t *req, tiers_verdict_t verdict, const char *detail, int64_t retry_us)
{
    face_t *self = req->face;
    int status = verdict == TIERS_GUARD_FORBIDDEN ? 403
               : verdict == TIERS_GUARD_RATE_KEY || verdict == TIERS_GUARD_RATE_CLIENT ? 429
               : 401;
    tiers_counter_add (self->denied [verdict], 1);
    tiers_debug ("request %s: %d %s (%s)", req->rid, status,
                 tiers_guard_reason (verdict), detail);
    struct MHD_Response *response = s_problem_new (req, status, detail);
    const char *challenge = s_challenge (verdict);
    if (response && challenge)
        MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
    if (response && status == 429) {
        //  Whole seconds until a token is back, rounded up.
        char retry_after [24];
        snprintf (retry_after, sizeof retry_after, "%" PRId64,
                  retry_us > 0 ? (retry_us + 999999) / 1000000 : 1);
        MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    }
    return s_respond (req, status, response);
}

//  The Authorization lines of a request: the first value and the count.
typedef struct {
    const char *value;
    int lines;
} authorization_t;

static enum MHD_Result
s_authorization_line (void *cls, enum MHD_ValueKind kind, const char *key,
                      const char *value)
{
    (void) kind;
    authorization_t *found = (authorization_t *) cls;
    if (strcasecmp (key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
        if (!found->lines)
            found->value = value;
        found->lines++;
    }
    return MHD_YES;
}

//  Before the route begins: the key and the bucket, as the route's access
//  says. False when the request was refused (answered; *rc is the result).
static bool
s_guard (face_t *self, request_t *req, enum MHD_Result *rc)
{
    tiers_http_access_t access = req->route->access;
    if (access == TIERS_HTTP_OPEN)
        return true;
    bool need_key = access == TIERS_HTTP_KEYED
                 || (access == TIERS_HTTP_METRICS && tiers_guard_metrics_keyed (self->guard));
    authorization_t authorization = { NULL, 0 };
    if (need_key && tiers_guard_keys (self->guard))
        MHD_get_connection_values (req->connection, MHD_HEADER_KIND,
                                   s_authorization_line, &authorization);
    tiers_limit_id_t address = req->conn ? req->conn->address : (tiers_limit_id_t) { 0, 0 };
    int64_t retry_us = 0;
    tiers_verdict_t verdict = tiers_guard_admit (self->guard, authorization.value,
                                                 authorization.lines, need_key, address,
                                                 req->started, &req->api_key, &retry_us);
    char detail [256];
    switch (verdict) {
        case TIERS_GUARD_PASS:
            break;
        case TIERS_GUARD_NO_KEY:
            *rc = s_deny (req, verdict, "this API takes requests with a key: send "
                          "Authorization: Bearer KEY", 0);
            return false;
        case TIERS_GUARD_MALFORMED:
            *rc = s_deny (req, verdict, "the Authorization header must be one line, "
                          "Bearer KEY", 0);
            return false;
        case TIERS_GUARD_UNKNOWN:
            *rc = s_deny (req, verdict, "the key is not valid", 0);
            return false;
        case TIERS_GUARD_RATE_KEY: {
            tiers_limit_t *limit = tiers_guard_per_key (self->guard);
            snprintf (detail, sizeof detail, "the key '%s' is over its limit of %u requests "
                      "a second (burst %u); nothing was done",
                      tiers_keys_name (tiers_guard_keys (self->guard), req->api_key),
                      tiers_limit_rate (limit), tiers_limit_burst (limit));
            *rc = s_deny (req, verdict, detail, retry_us);
            return false;
        }
        case TIERS_GUARD_RATE_CLIENT: {
            tiers_limit_t *limit = tiers_guard_per_client (self->guard);
            snprintf (detail, sizeof detail, "your address is over its limit of %u requests "
                      "a second (burst %u); nothing was done",
                      tiers_limit_rate (limit), tiers_limit_burst (limit));
            *rc = s_deny (req, verdict, detail, retry_us);
            return false;
        }
        default:
            assert (false);
    }
    if (access == TIERS_HTTP_METRICS && need_key
    &&  !tiers_guard_allows (self->guard, req->api_key, TIERS_RIGHT_METRICS, NULL)) {
        snprintf (detail, sizeof detail, "the key '%s' may not read the metrics",
                  tiers_keys_name (tiers_guard_keys (self->guard), req->api_key));
        *rc = s_deny (req, TIERS_GUARD_FORBIDDEN, detail, 0);
        return false;
    }
    return true;
}

bool
tiers_http_allowed (tiers_http_req_t *req, unsigned right, const char *collection,
                    enum MHD_Result *rc)
{
    face_t *self = req->face;
    if (!self->guard || tiers_guard_allows (self->guard, req->api_key, right, collection))
        return true;
    char detail [256];
    snprintf (detail, sizeof detail, "the key '%s' may not %s collection '%s'",
              req->api_key >= 0 ? tiers_keys_name (tiers_guard_keys (self->guard), req->api_key)
                            : "(none)",
              right == TIERS_RIGHT_WRITE ? "write to" : "read", collection ? collection : "");
    *rc = s_deny (req, TIERS_GUARD_FORBIDDEN, detail, 0);
    return false;
}

//  The balancer's or a service's reply becomes the HTTP response.
void
tiers_http_reply_default (request_t *req, tiers_wire_t *reply)
{
    int status = reply->status;
    if (status < 100 || status > 599) {
        char detail [96];
        snprintf (detail, sizeof detail, "the %s pool answered with status %d",
                  req->pool, status);
        tiers_http_problem (req, 502, detail, NULL, NULL);
        return;
    }
    const char *error = tiers_wire_header (reply, "error");
    const char *retry_after = tiers_wire_header (reply, "retry-after");
    if (status >= 400 && reply->body_size == 0) {
        //  The balancer (busy, no workers, deadline, worker lost) or a
        //  service that gave only a reason: we write the problem+json.
        char detail [512];
        snprintf (detail, sizeof detail, "%s pool: %s", req->pool,
                  error ? error : tiers_problem_title (status));
        if (status == 503 && !retry_after)
            retry_after = "1";
        tiers_http_problem (req, status, detail, NULL, retry_after);
        return;
    }
    //  Hand the body to MHD without copying it.
    size_t size = reply->body_size;
    uint8_t *body = reply->body;
    reply->body = NULL;
    reply->body_size = 0;
    struct MHD_Response *response =
        MHD_create_response_from_buffer_with_free_callback (size, body, free);
    if (!response)
        free (body);
    else {
        const char *type = tiers_wire_header (reply, "content-type");
        if (status != 204 && status != 304)
            MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                     type ? type : "application/json");
        const char *etag = tiers_wire_header (reply, "etag");
        if (etag)
            MHD_add_response_header (response, MHD_HTTP_HEADER_ETAG, etag);
        const char *location = tiers_wire_header (reply, "location");
        if (location)
            MHD_add_response_header (response, MHD_HTTP_HEADER_LOCATION, location);
        if (retry_after)
            MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER,
                                     retry_after);
        if (tiers_wire_header (reply, "idempotent-replayed"))
            MHD_add_response_header (response, "Idempotent-Replayed", "true");
        //  A write's session token (actors/token.h): tiers makes it of a
        //  shard name, hex and digits, nothing a header cannot carry.
        const char *token = tiers_wire_header (reply, "token");
        if (token)
            MHD_add_response_header (response, "Tiers-Token", token);
    }
    s_respond (req, status, response);
}

//  --------------------------------------------------------------------------
//  Connections: who comes in (the listener), and how long each may take
//  to send its requests (the phases of the file head)

static fifo_t *
s_fifo (face_t *self, conn_phase_t phase)
{
    return phase == CONN_HEAD ? &self->heads
         : phase == CONN_BODY ? &self->bodies
         : phase == CONN_WAIT ? &self->waits : NULL;
}

//  Into `phase`, due interval_ms from now (BUSY has no deadline). Every
//  entry of a FIFO gets the same interval, so the FIFO stays in deadline
//  order.
static void
s_conn_enter (conn_t *conn, conn_phase_t phase, int64_t interval_ms)
{
    face_t *self = conn->face;
    fifo_t *fifo = s_fifo (self, conn->phase);
    if (fifo) {
        if (conn->prev)
            conn->prev->next = conn->next;
        else
            fifo->head = conn->next;
        if (conn->next)
            conn->next->prev = conn->prev;
        else
            fifo->tail = conn->prev;
        conn->prev = conn->next = NULL;
    }
    conn->phase = phase;
    fifo = s_fifo (self, phase);
    if (fifo) {
        conn->due = zclock_mono () + interval_ms;
        conn->prev = fifo->tail;
        if (fifo->tail)
            fifo->tail->next = conn;
        else
            fifo->head = conn;
        fifo->tail = conn;
    }
}

//  Plain HTTP came to the TLS port (tls.h): a plain 400 that says so, and
//  the connection ends (MHD closes it when GnuTLS fails the handshake).
static void
s_on_plain (tiers_tls_probe_t *probe)
{
    conn_t *conn = (conn_t *) ((char *) probe - offsetof (conn_t, probe));
    face_t *self = conn->face;
    char rid [GW_MAX_RID + 1];
    s_rid_generate (self, rid, sizeof rid);
    tiers_listener_answer (conn->fd, 400, "this port speaks HTTPS: plain HTTP is not "
                           "served here (use https://)", rid, NULL);
    tiers_listener_end (conn->fd);
    conn->cut = true;
    tiers_debug ("plain HTTP on the TLS port: answered 400 (%s)", rid);
}

static void
s_probe_start (face_t *self, conn_t *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn->connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    conn->probe.plain = s_on_plain;
    if (info && info->tls_session)
        tiers_tls_probe_start (&conn->probe, info->tls_session, conn->fd);
}

static conn_t *
s_conn_of (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? (conn_t *) info->socket_context : NULL;
}

//  MHD starts a connection (only ever inside MHD_add_connection: MHD has
//  no listening socket of its own) and closes it (at its cleanup, before
//  it closes the socket).
static void
s_on_connection (void *cls, struct MHD_Connection *connection, void **socket_context,
                 enum MHD_ConnectionNotificationCode code)
{
    face_t *self = (face_t *) cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        assert (self->adding);
        conn_t *conn = (conn_t *) zmalloc (sizeof *conn);
        assert (conn);
        conn->face = self;
        conn->connection = connection;
        conn->fd = self->adding->fd;
        conn->client = self->adding->client;
        self->adding->client = NULL;        //  the connection holds it now
        conn->phase = CONN_BUSY;
        s_conn_enter (conn, CONN_HEAD, self->head_timeout_ms);
        *socket_context = conn;
        tiers_gauge_add (self->open, 1);
        if (self->guard)
            conn->address = tiers_limit_address ((struct sockaddr *) &self->adding->addr);
        if (self->tls)
            s_probe_start (self, conn);
    }
    else {
        conn_t *conn = (conn_t *) *socket_context;
        if (!conn)
            return;
        if (self->tls)
            tiers_tls_probe_stop (&conn->probe);
        s_conn_enter (conn, CONN_BUSY, 0);
        tiers_listener_release (self->listener, conn->client);
        tiers_gauge_add (self->open, -1);
        free (conn);
        *socket_context = NULL;
    }
}

//  Over a limit: 503 with Retry-After on the socket, and closed. The
//  request was never read, so nothing of it can have been applied.
static void
s_refuse (face_t *self, tiers_arrival_t *arrival, tiers_admit_t admit)
{
    char rid [GW_MAX_RID + 1];
    char detail [160];
    tiers_counter_t *counter;
    s_rid_generate (self, rid, sizeof rid);
    if (admit == TIERS_ADMIT_FULL) {
        snprintf (detail, sizeof detail, "the server is at its limit of %u connections; "
                  "nothing was read", self->connections);
        counter = self->refused_full;
    }
    else
    if (admit == TIERS_ADMIT_CLIENT) {
        snprintf (detail, sizeof detail, "your address is at the limit of %u connections "
                  "per client; nothing was read", self->per_client);
        counter = self->refused_client;
    }
    else {
        snprintf (detail, sizeof detail, "the server is out of file descriptors; "
                  "nothing was read");
        counter = self->refused_fds;
    }
    if (self->tls)
        tiers_listener_refuse_tls (arrival->fd);
    else
        tiers_listener_refuse (arrival->fd, 503, detail, rid, "1");
    tiers_counter_add (counter, 1);
}

//  The listening socket stirred: take what waits (a burst at a time, so
//  that a flood cannot hold the loop), hand the admitted to MHD, answer
//  the others at once.
static void
s_on_listen (void *arg)
{
    face_t *self = (face_t *) arg;
    for (int i = 0; i < GW_ACCEPT_BURST; i++) {
        tiers_arrival_t arrival;
        tiers_admit_t admit = tiers_listener_accept (self->listener, &arrival);
        if (admit == TIERS_ADMIT_NONE)
            break;
        if (admit != TIERS_ADMIT_OK) {
            s_refuse (self, &arrival, admit);
            continue;
        }
        self->adding = &arrival;
        MHD_add_connection (self->daemon, arrival.fd, (struct sockaddr *) &arrival.addr,
                            arrival.addr_size);
        self->adding = NULL;
        //  MHD closes what it cannot take; if it did so before it told us
        //  of the connection, its client count is still ours to give back.
        if (arrival.client)
            tiers_listener_release (self->listener, arrival.client);
        self->http_ready = true;            //  MHD reads it in this pass
    }
}

//  A connection past its deadline: 408 on the socket, unless MHD has an
//  answer of its own on the way (its 400 or 431 page), then shut down
//  both ways, which MHD takes for the client's end: it closes the
//  connection at its next run (and refuses a request it still finds in
//  what was read: the connection is marked cut).
static void
s_cut (face_t *self, conn_t *conn, const char *detail, tiers_counter_t *counter)
{
    s_conn_enter (conn, CONN_BUSY, 0);
    conn->cut = true;
    if (!self->tls
    &&  !MHD_get_connection_info (conn->connection, MHD_CONNECTION_INFO_HTTP_STATUS)) {
        char rid [GW_MAX_RID + 1];
        if (conn->req)
            snprintf (rid, sizeof rid, "%s", conn->req->rid);
        else
            s_rid_generate (self, rid, sizeof rid);
        tiers_listener_answer (conn->fd, 408, detail, rid, NULL);
    }
    shutdown (conn->fd, SHUT_RDWR);
    tiers_counter_add (counter, 1);
    self->http_ready = true;
}

//  The phases' deadlines: the FIFOs' heads, while they are due.
static void
s_check_connections (face_t *self)
{
    int64_t now = zclock_mono ();
    char detail [128];
    conn_t *conn;
    while ((conn = self->heads.head) && conn->due <= now) {
        snprintf (detail, sizeof detail, "the request head was not complete within %"
                  PRId64 " ms", self->head_timeout_ms);
        s_cut (self, conn, detail, self->cut_head);
    }
    while ((conn = self->waits.head) && conn->due <= now) {
        snprintf (detail, sizeof detail, "the next request head was not complete within %"
                  PRId64 " ms of the last answer",
                  (int64_t) self->idle_timeout_s * 1000 + self->head_timeout_ms);
        s_cut (self, conn, detail, self->cut_head);
    }
    //  A body must bring min_body_rate bytes a second, counted over each
    //  head_timeout: a stall of a moment is forgiven, a trickle is not.
    uint64_t need = self->min_body_rate * (uint64_t) self->head_timeout_ms / 1000;
    while ((conn = self->bodies.head) && conn->due <= now) {
        uint64_t got = conn->req->received - conn->mark;
        if (got < need) {
            snprintf (detail, sizeof detail, "the body came at %" PRIu64 " bytes/s; the "
                      "minimum is %" PRIu64, got * 1000 / (uint64_t) self->head_timeout_ms,
                      self->min_body_rate);
            s_cut (self, conn, detail, self->cut_body);
        }
        else {
            conn->mark = conn->req->received;
            s_conn_enter (conn, CONN_BODY, self->head_timeout_ms);
        }
    }
}

//  Milliseconds until the nearest phase deadline or the listener's wake,
//  if sooner than `timeout`.
static long
s_connections_timeout (face_t *self, long timeout)
{
    int64_t now = zclock_mono ();
    const fifo_t *fifos [3] = { &self->heads, &self->bodies, &self->waits };
    for (int i = 0; i < 3; i++)
        if (fifos [i]->head) {
            int64_t left = fifos [i]->head->due - now;
            if (left < timeout)
                timeout = left > 0 ? (long) left : 0;
        }
    long wake = tiers_listener_wake (self->listener);
    if (wake >= 0 && wake < timeout)
        timeout = wake;
    return timeout;
}

//  --------------------------------------------------------------------------
//  Routing

//  MHD hands us the path without the query; add the query back for the
//  length check, as a client would count it.
static enum MHD_Result
s_count_argument (void *cls, enum MHD_ValueKind kind, const char *key,
                  const char *value)
{
    size_t *length = (size_t *) cls;
    *length += 2 + strlen (key) + (value ? strlen (value) : 0);
    return MHD_YES;
}

//  One pass over the header lines: their bytes as they came ("Key:
//  value\r\n") and Content-Length lines that disagree (RFC 9112 6.3).
typedef struct {
    size_t length;
    const char *content_length;
    size_t content_length_size;
    bool conflict;
    int lines;
    int hosts;                  //  Host lines
    bool bad_name;              //  a field name that is not a token
    bool transfer_encoding, chunked_only;
} header_scan_t;

//  RFC 9110 5.1: a field name is a token (no space before the colon,
//  not empty).
static bool
s_token (const char *key, size_t size)
{
    if (size == 0)
        return false;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) key [i];
        if (c <= 0x20 || c >= 0x7f || strchr ("\"(),/:;<=>?@[\\]{}", c))
            return false;
    }
    return true;
}

static enum MHD_Result
s_scan_header (void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
               const char *value, size_t value_size)
{
    (void) kind;
    header_scan_t *scan = (header_scan_t *) cls;
    scan->length += 4 + key_size + value_size;
    scan->lines++;
    if (!s_token (key, key_size))
        scan->bad_name = true;
    if (strcasecmp (key, MHD_HTTP_HEADER_HOST) == 0)
        scan->hosts++;
    if (value && strcasecmp (key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        //  Only "chunked" (any case) is understood, and only as MHD reads
        //  it: leading whitespace is MHD's to skip, trailing is not, so
        //  "chunked " is a coding MHD would not decode (501, not a hang).
        const char *start = value, *end = value + value_size;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        scan->chunked_only = !scan->transfer_encoding && end - start == 7
                          && strncasecmp (start, "chunked", 7) == 0;
        scan->transfer_encoding = true;
    }
    if (value && strcasecmp (key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (scan->content_length
        && (scan->content_length_size != value_size
        ||  memcmp (scan->content_length, value, value_size)))
            scan->conflict = true;
        scan->content_length = value;
        scan->content_length_size = value_size;
    }
    return MHD_YES;
}

static const char *
s_method_word (const char *method)
{
    static const char *words [] = { "GET", "HEAD", "PUT", "DELETE", NULL };
    for (int i = 0; words [i]; i++)
        if (streq (method, words [i]))
            return words [i];
    return NULL;
}

//  Percent-decoding of the path and the query, as MHD's own but for two
//  bytes: %00 and %2F stay as they are (and then fail the name checks
//  with 400). Decoded, a NUL would cut the value short of what the client
//  sent, and an encoded slash would become a path separator.
static int
s_hex_digit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t
s_unescape (void *cls, struct MHD_Connection *connection, char *text)
{
    (void) cls; (void) connection;
    char *out = text;
    for (const char *in = text; *in; ) {
        int high = in [0] == '%' ? s_hex_digit (in [1]) : -1;
        int low = high >= 0 ? s_hex_digit (in [2]) : -1;
        int byte = high * 16 + low;
        if (low >= 0 && byte != 0 && byte != '/') {
            *out++ = (char) byte;
            in += 3;
        }
        else
            *out++ = *in++;
    }
    *out = 0;
    return (size_t) (out - text);
}

//  First call of a request: decide everything that does not need the body.
//  Returns with req->state ANSWERED when the request is already answered.
static enum MHD_Result
s_on_first_call (face_t *self, request_t *req, const char *url,
                 const char *method, const char *version)
{
    struct MHD_Connection *connection = req->connection;
    const char *given = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                     "X-Request-Id");
    req->rid_given = s_rid_valid (given);
    if (req->rid_given)
        snprintf (req->rid, sizeof req->rid, "%s", given);
    else
        s_rid_generate (self, req->rid, sizeof req->rid);
    req->method = s_method_word (method);

    //  Route first so that every answer is counted under its route.
    req->label = self->route_count;
    for (size_t i = 0; i < self->route_count && !req->route; i++)
        if (self->routes [i].match (url)) {
            req->route = &self->routes [i];
            req->label = i;
        }

    size_t url_length = strlen (url);
    MHD_get_connection_values (connection, MHD_GET_ARGUMENT_KIND,
                               s_count_argument, &url_length);
    if (url_length > self->max_url) {
        char detail [96];
        snprintf (detail, sizeof detail, "the URL is %zu bytes; the limit is %zu",
                  url_length, self->max_url);
        return tiers_http_problem (req, 414, detail, NULL, NULL);
    }
    //  MHD's pool holds twice max_header (see s_start_daemon), so that
    //  headers over the limit get this answer, not MHD's own HTML page.
    header_scan_t scan = { .length = strlen (method) + 1 + url_length + 11 };
    MHD_get_connection_values_n (connection, MHD_HEADER_KIND, s_scan_header, &scan);
    size_t header_length = scan.length;
    if (header_length > self->max_header) {
        char detail [96];
        snprintf (detail, sizeof detail, "the request line and headers are %zu bytes; "
                  "the limit is %zu", header_length, self->max_header);
        return tiers_http_problem (req, 431, detail, NULL, NULL);
    }
    if (scan.lines > GW_MAX_HEADER_LINES) {
        char detail [96];
        snprintf (detail, sizeof detail, "%d header lines; the limit is %d",
                  scan.lines, GW_MAX_HEADER_LINES);
        return tiers_http_problem (req, 431, detail, NULL, NULL);
    }
    if (scan.transfer_encoding && !scan.chunked_only) {
        req->close = true;
        return tiers_http_problem (req, 501, "the only transfer coding understood "
                                   "is chunked", NULL, NULL);
    }
    if (scan.transfer_encoding && scan.content_length) {
        //  RFC 9112 6.3: which framing a proxy in front used is unknown.
        req->close = true;
        return tiers_http_problem (req, 400, "Transfer-Encoding and Content-Length "
                                   "together", NULL, NULL);
    }
    if (!scan.hosts && strcmp (version, MHD_HTTP_VERSION_1_0) != 0)
        return tiers_http_problem (req, 400, "an HTTP/1.1 request needs Host", NULL, NULL);
    if (scan.hosts > 1) {         //  RFC 9112 3.2: which one is meant is unknown
        req->close = true;
        return tiers_http_problem (req, 400, "more than one Host header", NULL, NULL);
    }
    if (scan.bad_name) {          //  RFC 9112 5.1: "Foo : bar" (MHD drops ": bar")
        req->close = true;
        return tiers_http_problem (req, 400, "a header name that is not a token "
                                   "(a space before the colon?)", NULL, NULL);
    }
    if (scan.conflict) {
        //  Where this request's body ends is not known: nothing after it
        //  on this connection can be trusted either.
        req->close = true;
        return tiers_http_problem (req, 400, "Content-Length is given twice with "
                                   "different values", NULL, NULL);
    }
    if (!req->route)
        return tiers_http_problem (req, 404, self->not_found, NULL, NULL);
    enum MHD_Result rc = MHD_YES;
    if (self->guard && !s_guard (self, req, &rc))
        return rc;
    rc = req->route->begin (req, url);
    if (req->state != REQ_RECEIVING)
        return rc;
    if (!req->pool)         //  a route that neither answered nor forwards
        return tiers_http_problem (req, 500, "the route chose no pool", NULL, NULL);

    //  Bodies: refuse an announced oversized one before reading a byte.
    const char *length = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length) {
        char *end = NULL;
        errno = 0;
        unsigned long long announced = strtoull (length, &end, 10);
        if (errno == 0 && end != length && *end == 0 && announced > self->max_body) {
            char detail [128];
            snprintf (detail, sizeof detail, "the body is %llu bytes; the limit is %" PRIu64,
                      announced, self->max_body);
            return tiers_http_problem (req, 413, detail, NULL, NULL);
        }
    }
    return MHD_YES;
}

//  A piece of the body: count it against max_body; keep it when the route
//  asked, or hand it to the route's own body handler. An
//  oversized chunked body is read and dropped (MHD cannot answer before the
//  upload ends) up to a bound, then the connection is closed.
static enum MHD_Result
s_on_body (face_t *self, request_t *req, const char *data, size_t size)
{
    req->received += size;
    if (req->received > self->max_body) {
        req->too_big = true;
        free (req->body);
        req->body = NULL;
        req->body_size = req->body_room = 0;
        if (req->received > 2 * self->max_body + 1024 * 1024) {
            tiers_info ("request %s: body over %" PRIu64 " bytes, connection closed",
                        req->rid, req->received);
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (req->route && req->route->body)
        return req->route->body (req, data, size);
    if (!req->keep_body)
        return MHD_YES;             //  a body on GET/DELETE means nothing
    if (req->body_size + size + 1 > req->body_room) {
        size_t room = req->body_room ? req->body_room : 4096;
        while (room < req->body_size + size + 1)
            room *= 2;
        if (room > self->max_body + 1)
            room = self->max_body + 1;
        uint8_t *grown = (uint8_t *) realloc (req->body, room);
        if (!grown)
            return MHD_NO;
        req->body = grown;
        req->body_room = room;
    }
    memcpy (req->body + req->body_size, data, size);
    req->body_size += size;
    return MHD_YES;
}

//  A list header sent on several lines is one list (RFC 9110 5.3): the
//  lines' values joined with ", ", in the order they came.
typedef struct {
    const char *name;
    char value [TIERS_WIRE_MAX_VALUE + 1];
    size_t size;
    bool found, too_long;
} joined_t;

static enum MHD_Result
s_join_line (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    joined_t *joined = (joined_t *) cls;
    if (!value || strcasecmp (key, joined->name) != 0)
        return MHD_YES;
    size_t length = strlen (value);
    size_t need = (joined->found ? 2 : 0) + length;
    if (joined->size + need > TIERS_WIRE_MAX_VALUE) {
        joined->too_long = true;
        return MHD_NO;
    }
    if (joined->found) {
        memcpy (joined->value + joined->size, ", ", 2);
        joined->size += 2;
    }
    memcpy (joined->value + joined->size, value, length);
    joined->size += length;
    joined->found = true;
    return MHD_YES;
}

void
tiers_http_copy_list (tiers_http_req_t *req, tiers_wire_t *msg,
                      const char *name, const char *key, bool *too_long)
{
    joined_t joined = { .name = name };
    MHD_get_connection_values (req->connection, MHD_HEADER_KIND, s_join_line, &joined);
    if (joined.too_long)
        *too_long = true;
    else
    if (joined.found)
        tiers_wire_set_header (msg, key, joined.value, joined.size);
}

void
tiers_http_copy_value (tiers_http_req_t *req, tiers_wire_t *msg,
                       enum MHD_ValueKind kind, const char *name, const char *key,
                       bool *too_long)
{
    const char *value = MHD_lookup_connection_value (req->connection, kind, name);
    if (value && tiers_wire_set_header (msg, key, value, strlen (value)))
        *too_long = true;
}

//  Last call: the request is complete. Forward it and suspend.
static enum MHD_Result
s_forward (face_t *self, request_t *req)
{
    //  A body that finished arriving during shutdown is not forwarded: a
    //  suspended connection at MHD_stop_daemon would make MHD panic.
    if (self->stopping)
        return tiers_http_problem (req, 503, "the gateway is shutting down", NULL, "1");
    if (req->too_big) {
        char detail [128];
        snprintf (detail, sizeof detail, "the body exceeds the limit of %" PRIu64 " bytes",
                  self->max_body);
        return tiers_http_problem (req, 413, detail, NULL, NULL);
    }
    if (zhashx_size (self->table) >= self->connections)
        return tiers_http_problem (req, 503, "too many requests in flight", NULL, "1");

    //  The wire rid is the table key, and no two requests of this gateway
    //  ever share one: a late reply must never find a later request (a
    //  route that asks a second back end, tiers_http_ask, asks it under
    //  the same request's rid, one after the other). A
    //  generated id is unique already; a client's own id gets a generated
    //  suffix ("CLIENT~SALT-INSTANCE-COUNTER") and travels on as the
    //  request-id header, the id every tier shows.
    if (req->rid_given) {
        char unique [48];
        s_rid_generate (self, unique, sizeof unique);
        snprintf (req->key, sizeof req->key, "%s~%s", req->rid, unique);
    }
    else
        snprintf (req->key, sizeof req->key, "%s", req->rid);
    if (zhashx_lookup (self->table, req->key))
        return tiers_http_problem (req, 500, "request key in use", NULL, NULL);
    tiers_wire_t *msg = tiers_wire_new (req->route->kind ? req->route->kind
                                                         : TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (msg, req->key);
    if (req->rid_given)
        tiers_wire_set_header (msg, "request-id", req->rid, strlen (req->rid));
    tiers_wire_set_service (msg, req->pool);
    msg->deadline = tiers_wire_now () + self->deadline_ms;
    tiers_wire_set_header (msg, "method", req->method, strlen (req->method));
    const char *detail = NULL;
    int status = req->route->forward ? req->route->forward (req, msg, &detail) : 0;
    if (status) {
        tiers_wire_destroy (&msg);
        return tiers_http_problem (req, status, detail ? detail : tiers_problem_title (status),
                                   NULL, NULL);
    }
    if (req->body_size) {
        if (tiers_wire_take_body (msg, req->body, req->body_size) == 0) {
            req->body = NULL;
            req->body_size = req->body_room = 0;
        }
        else {
            tiers_wire_destroy (&msg);
            return tiers_http_problem (req, 413, "the body is too large to forward",
                                      NULL, NULL);
        }
    }
    int rc = tiers_wire_send (msg, self->dealer, NULL);
    tiers_wire_destroy (&msg);
    if (rc) {
        //  Never wait for ZeroMQ: a full pipe to the balancer is back-pressure.
        return tiers_http_problem (req, 503, "the balancer is not taking requests",
                                  NULL, "1");
    }
    MHD_suspend_connection (req->connection);
    req->state = REQ_FORWARDED;
    req->deadline = zclock_mono () + self->deadline_ms;
    req->handle = zlistx_add_end (self->forwarded, req);
    zhashx_insert (self->table, req->key, req);
    return MHD_YES;
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    face_t *self = (face_t *) cls;
    request_t *req = (request_t *) *con_cls;
    if (!req) {
        conn_t *conn = s_conn_of (connection);
        if (conn && conn->cut)
            return MHD_NO;          //  timed out: no more requests from it
        req = (request_t *) zmalloc (sizeof *req);
        if (!req)
            return MHD_NO;
        req->face = self;
        req->connection = connection;
        req->conn = conn;
        if (conn) {                 //  the head is complete
            conn->req = req;
            s_conn_enter (conn, CONN_BUSY, 0);
        }
        req->state = REQ_RECEIVING;
        req->started = tiers_clock_us ();
        req->api_key = -1;
        *con_cls = req;
        tiers_gauge_add (self->inflight, 1);
        const char *length = MHD_lookup_connection_value (connection,
            MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        req->has_body = (length && strspn (length, "0") != strlen (length))
                     || MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        req->first_call = true;
        enum MHD_Result rc = self->stopping
            ? tiers_http_problem (req, 503, "the gateway is shutting down", NULL, "1")
            : s_on_first_call (self, req, url, method, version);
        req->first_call = false;
        if (conn && req->has_body && req->state == REQ_RECEIVING && self->min_body_rate) {
            conn->mark = 0;
            s_conn_enter (conn, CONN_BODY, self->head_timeout_ms);
        }
        return rc;
    }
    if (req->conn && req->conn->cut)
        return MHD_NO;
    if (*upload_data_size == 0 && req->conn && req->conn->phase == CONN_BODY)
        s_conn_enter (req->conn, CONN_BUSY, 0);         //  the body is complete
    if (req->held && *upload_data_size == 0) {
        struct MHD_Response *response = req->held;
        req->held = NULL;
        return s_queue (req, req->held_status, response);
    }
    if (req->state == REQ_ANSWERED && !req->held)
        return MHD_NO;              //  only if queueing the answer failed
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        return s_on_body (self, req, upload_data, size);
    }
    return s_forward (self, req);
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    face_t *self = (face_t *) cls;
    request_t *req = (request_t *) *con_cls;
    if (!req)
        return;
    if (req->state == REQ_FORWARDED)    //  cannot happen: we resume first
        s_forget (self, req);
    conn_t *conn = req->conn;
    if (conn) {
        //  Kept alive: the wait for the next request starts now.
        conn->req = NULL;
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && !conn->cut)
            s_conn_enter (conn, CONN_WAIT,
                          (int64_t) self->idle_timeout_s * 1000 + self->head_timeout_ms);
        else
            s_conn_enter (conn, CONN_BUSY, 0);
    }
    if (req->route && req->route->done)
        req->route->done (req);
    if (req->draining)
        self->closing--;
    tiers_gauge_add (self->inflight, -1);
    if (req->held)
        MHD_destroy_response (req->held);
    free (req->body);
    free (req);
    *con_cls = NULL;
}

static void
s_mhd_log (void *cls, const char *format, va_list args)
{
    char line [512];
    vsnprintf (line, sizeof line, format, args);
    size_t length = strlen (line);
    while (length && (line [length - 1] == '\n' || line [length - 1] == '\r'))
        line [--length] = 0;
    //  Once running, MHD's messages are about one client's bad request:
    //  debug only, or any client could flood the log.
    if (((face_t *) cls)->running)
        tiers_debug ("libmicrohttpd: %s", line);
    else
        tiers_warn ("libmicrohttpd: %s", line);
}

//  --------------------------------------------------------------------------
//  The loop

//  Takes one reply without waiting; false when none was there.
static bool
s_on_dealer (void *arg)
{
    face_t *self = (face_t *) arg;
    const char *error = NULL;
    tiers_wire_t *reply = NULL;
    if (tiers_wire_try_recv (self->dealer, NULL, &reply, &error))
        return false;
    self->replies++;
    if (!reply) {
        tiers_warn ("malformed message from the balancer: %s", error ? error : "?");
        tiers_counter_add (self->malformed, 1);
        return true;
    }
    request_t *req = reply->kind == TIERS_WIRE_REPLY
                   ? (request_t *) zhashx_lookup (self->table, reply->rid) : NULL;
    if (req) {
        req->asked = false;
        if (req->route && req->route->reply)
            req->route->reply (req, reply);
        else
            tiers_http_reply_default (req, reply);
        //  A route's reply hook that forgot to answer (and did not ask on)
        //  must not leave the connection suspended for ever.
        if (req->state == REQ_FORWARDED && !req->asked)
            tiers_http_problem (req, 502, "the route did not answer", NULL, NULL);
    }
    else {
        tiers_debug ("late or unknown reply %s dropped", reply->rid);
        tiers_counter_add (self->late, 1);
    }
    tiers_wire_destroy (&reply);
    return true;
}

//  A connection stirred: MHD runs at the end of the pass.
static void
s_on_http (void *arg)
{
    ((face_t *) arg)->http_ready = true;
}

//  Answers 504 to requests past their deadline; returns how many.
static int
s_expire (face_t *self)
{
    int64_t now = zclock_mono ();
    int count = 0;
    request_t *req;
    while ((req = (request_t *) zlistx_first (self->forwarded))
           && req->deadline <= now) {
        char detail [96];
        snprintf (detail, sizeof detail, "%s pool: no answer within %" PRId64 " ms",
                  req->pool, self->deadline_ms);
        tiers_http_problem (req, 504, detail, NULL, NULL);
        count++;
    }
    return count;
}

//  Milliseconds zmq_poll may sleep: MHD's own timers, the nearest
//  deadline of a request or a connection, and at most a second.
static long
s_poll_timeout (face_t *self)
{
    long timeout = 1000;
    MHD_UNSIGNED_LONG_LONG mhd = 0;
    if (MHD_get_timeout (self->daemon, &mhd) == MHD_YES && (long long) mhd < timeout)
        timeout = (long) mhd;
    request_t *req = (request_t *) zlistx_first (self->forwarded);
    if (req) {
        int64_t left = req->deadline - zclock_mono ();
        if (left < timeout)
            timeout = left > 0 ? (long) left : 0;
    }
    return s_connections_timeout (self, timeout);
}

//  Shutdown: every suspended request gets 503, MHD sends what it can for
//  up to 50 ms, then the daemon stops (closing whatever is left).
static int s_expire (face_t *self);
static long s_poll_timeout (face_t *self);

//  After each pass: deadlines (requests', then connections'), then MHD
//  when a connection stirred or was cut, when replies resumed some, and
//  when its own timers are due.
static int
s_on_pass (void *arg)
{
    face_t *self = (face_t *) arg;
    self->replies += s_expire (self);
    s_check_connections (self);
    if (self->http_ready || self->replies || self->timeout == 0
    ||  tiers_reactor_timed_out (self->reactor)) {
        self->http_ready = false;
        MHD_run (self->daemon);
    }
    self->replies = 0;
    self->timeout = s_poll_timeout (self);
    return (int) self->timeout;
}

static void
s_drain (face_t *self)
{
    self->stopping = true;
    tiers_listener_close (self->listener);     //  no one new
    request_t *req;
    while ((req = (request_t *) zlistx_first (self->forwarded))) {
        req->draining = true;
        self->closing++;
        tiers_http_problem (req, 503, "the gateway is shutting down", NULL, "1");
    }
    int64_t until = zclock_mono () + 50;
    MHD_run (self->daemon);
    while (self->closing && zclock_mono () < until) {
        zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 5);
        MHD_run (self->daemon);
    }
}

//  MHD without a listening socket of its own: the listener accepts and
//  hands it what it admits (MHD_add_connection), which is how clients
//  beyond the limits get an answer instead of the kernel's accept queue.
static int
s_start_daemon (face_t *self)
{
    unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME
                   | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
    //  HTTPS: MHD's GnuTLS with the files tls.c checked. A connection the
    //  listener hands over is then a TLS connection (MHD_add_connection
    //  sets up the session when the daemon has MHD_USE_TLS).
    struct MHD_OptionItem tls [] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0,
          self->tls ? (void *) tiers_tls_cert (self->tls) : NULL },
        { MHD_OPTION_HTTPS_MEM_KEY, 0,
          self->tls ? (void *) tiers_tls_key (self->tls) : NULL },
        { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) tiers_tls_priorities () },
        { MHD_OPTION_END, 0, NULL }
    };
    if (self->tls)
        flags |= MHD_USE_TLS;
    else
        tls [0].option = MHD_OPTION_END;
    self->daemon = MHD_start_daemon (flags, 0, NULL, NULL,
        s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,    //  first, or MHD complains
        MHD_OPTION_ARRAY, tls,
        //  The listener admits within the same limit; at MHD's own it
        //  would close connections without a word, which cannot happen
        //  since both count the same connections.
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) self->connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) self->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) GW_POOL (self->max_header),
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_on_connection, self,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
        MHD_OPTION_END);
    if (!self->daemon)
        return -1;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    self->epoll_fd = info ? info->epoll_fd : -1;
    if (self->epoll_fd < 0) {
        MHD_stop_daemon (self->daemon);
        self->daemon = NULL;
        return -1;
    }
    return 0;
}

//  The default per_client: a thirty-second of the connections, from 8 (a
//  few browsers behind one address) to 256 (a large NAT; more is the
//  map's to say). Then no fewer than 32 addresses can fill the listener,
//  however slowly they send, and each can still open what a browser does.
static unsigned
s_per_client_share (unsigned connections)
{
    unsigned share = connections / 32;
    return share < 8 ? 8 : share > 256 ? 256 : share;
}

//  --------------------------------------------------------------------------
//  The face

tiers_http_t *
tiers_http_new (const tiers_http_config_t *config, char **why)
{
    assert (config && config->routes);
    *why = NULL;
    face_t *self = (face_t *) zmalloc (sizeof *self);
    assert (self);
    snprintf (self->name, sizeof self->name, "%s", config->name ? config->name : "http");
    snprintf (self->host, sizeof self->host, "%s", config->host ? config->host : "*");
    self->instance = config->instance;
    self->port = config->port;
    self->reuse_port = config->reuse_port;
    self->dealer = config->dealer;
    self->routes = config->routes;
    self->route_count = config->route_count;
    self->arg = config->arg;
    self->not_found = config->not_found ? config->not_found : "no such route";
    self->tls = config->tls;
    self->guard = config->guard;
    snprintf (self->metrics, sizeof self->metrics, "%s",
              config->metrics ? config->metrics : "gateway");
    self->max_body = config->max_body;
    self->max_url = config->max_url;
    self->max_header = config->max_header;
    self->idle_timeout_s = config->idle_timeout_s ? config->idle_timeout_s : 1;
    self->head_timeout_ms = config->head_timeout_ms > 0 ? config->head_timeout_ms : 10000;
    self->min_body_rate = config->min_body_rate;
    self->deadline_ms = config->deadline_ms;
    //  As many connections as the descriptors allow, unless the map says
    //  fewer: past the budget a connection would find no descriptor.
    size_t limit = 0;
    size_t budget = tiers_listener_budget (&limit);
    self->connections = config->connections ? config->connections
                                            : (unsigned) (budget < UINT_MAX ? budget : UINT_MAX);
    if (self->connections > budget) {
        tiers_warn ("connections = %u is more than the file descriptors allow (limit %zu): "
                    "%zu", self->connections, limit, budget);
        self->connections = (unsigned) budget;
    }
    self->per_client = config->per_client ? config->per_client
                                          : s_per_client_share (self->connections);
    char *reason = NULL;
    self->listener = tiers_listener_new (self->host, self->port, self->reuse_port,
                                         self->connections, self->per_client, &reason);
    if (!self->listener) {
        *why = zsys_sprintf ("cannot listen on %s:%d: %s", self->host, self->port,
                             reason ? reason : "?");
        zstr_free (&reason);
        free (self);
        return NULL;
    }
    self->port = tiers_listener_port (self->listener);
    if (s_start_daemon (self)) {
        *why = zsys_sprintf ("cannot start libmicrohttpd%s on %s:%d", self->tls
                             ? " with TLS" : "", self->host, self->port);
        tiers_listener_destroy (&self->listener);
        free (self);
        return NULL;
    }
    tiers_info ("%u connections (file descriptor limit %zu), %u per client, head_timeout "
                "%" PRId64 " ms, min_body_rate %" PRIu64 " bytes/s", self->connections, limit,
                self->per_client, self->head_timeout_ms, self->min_body_rate);
    self->table = zhashx_new ();
    self->forwarded = zlistx_new ();
    self->counters = zhashx_new ();
    self->latency = (tiers_histogram_t **) calloc (self->route_count + 1,
                                                   sizeof (tiers_histogram_t *));
    assert (self->latency);
    char name [64];
    for (size_t route = 0; route <= self->route_count; route++) {
        char labels [96];
        snprintf (labels, sizeof labels, "route=\"%s\"", route < self->route_count
                  ? self->routes [route].name : "other");
        self->latency [route] = tiers_metrics_histogram (
            s_metric (self, "latency_seconds", name, sizeof name),
            labels, "Time from a request's first byte to its response");
    }
    self->inflight = tiers_metrics_gauge (s_metric (self, "inflight", name, sizeof name),
        NULL, "HTTP requests being received, forwarded or answered");
    self->open = tiers_metrics_gauge (s_metric (self, "connections", name, sizeof name),
        NULL, "HTTP connections open");
    self->late = tiers_metrics_counter (s_metric (self, "late_replies_total", name,
        sizeof name), NULL, "Replies dropped because their request was already answered");
    self->malformed = tiers_metrics_counter (s_metric (self, "malformed_total", name,
        sizeof name), NULL, "Malformed messages from the balancer, dropped");
    s_metric (self, "refused_total", name, sizeof name);
    const char *refused = "Connections answered 503 and closed at once, by the limit they met";
    self->refused_full = tiers_metrics_counter (name, "limit=\"connections\"", refused);
    self->refused_client = tiers_metrics_counter (name, "limit=\"per_client\"", refused);
    self->refused_fds = tiers_metrics_counter (name, "limit=\"descriptors\"", refused);
    s_metric (self, "timeouts_total", name, sizeof name);
    const char *timeouts = "Connections answered 408 and closed: a request head or body "
                           "too slow";
    self->cut_head = tiers_metrics_counter (name, "phase=\"head\"", timeouts);
    self->cut_body = tiers_metrics_counter (name, "phase=\"body\"", timeouts);
    if (self->guard) {
        s_metric (self, "denied_total", name, sizeof name);
        for (int verdict = TIERS_GUARD_NO_KEY; verdict < TIERS_GUARD_VERDICTS; verdict++) {
            char labels [64];
            snprintf (labels, sizeof labels, "reason=\"%s\"",
                      tiers_guard_reason ((tiers_verdict_t) verdict));
            self->denied [verdict] = tiers_metrics_counter (name, labels,
                "Requests refused by the API keys (401, 403) or the rate limits (429)");
        }
    }
    self->running = true;
    return self;
}

void
tiers_http_destroy (tiers_http_t **self_p)
{
    assert (self_p);
    face_t *self = *self_p;
    if (self) {
        s_drain (self);
        MHD_stop_daemon (self->daemon);         //  releases every connection
        tiers_listener_destroy (&self->listener);
        zlistx_destroy (&self->forwarded);
        zhashx_destroy (&self->table);
        zhashx_destroy (&self->counters);
        free (self->latency);
        free (self);
        *self_p = NULL;
    }
}

int
tiers_http_port (tiers_http_t *self)
{
    assert (self);
    return self->port;
}

void
tiers_http_attach (tiers_http_t *self, tiers_reactor_t *reactor)
{
    assert (self && reactor);
    self->reactor = reactor;
    if (self->dealer)
        tiers_reactor_reader (reactor, self->dealer, 0, s_on_dealer, self);
    tiers_reactor_fd (reactor, self->epoll_fd, s_on_http, self);
    tiers_reactor_fd (reactor, tiers_listener_fd (self->listener), s_on_listen, self);
    tiers_reactor_set_pass (reactor, s_on_pass, self);
    self->timeout = s_poll_timeout (self);
}

void *
tiers_http_arg (tiers_http_req_t *req)
{
    return req->face->arg;
}

const char *
tiers_http_method (tiers_http_req_t *req)
{
    return req->method;
}

bool
tiers_http_reading (tiers_http_req_t *req)
{
    return req->method && (streq (req->method, "GET") || streq (req->method, "HEAD"));
}

struct MHD_Connection *
tiers_http_connection (tiers_http_req_t *req)
{
    return req->connection;
}

void *
tiers_http_state (tiers_http_req_t *req)
{
    return req->state_;
}

void
tiers_http_forward_to (tiers_http_req_t *req, const char *pool, bool keep_body)
{
    assert (req->state == REQ_RECEIVING && req->face->dealer);
    req->pool = pool;
    req->keep_body = keep_body;
}

int
tiers_http_ask (tiers_http_req_t *req, const char *pool, int kind, const char *method)
{
    assert (req->state == REQ_FORWARDED);
    face_t *self = req->face;
    tiers_wire_t *msg = tiers_wire_new (kind ? kind : TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (msg, req->key);
    if (req->rid_given)
        tiers_wire_set_header (msg, "request-id", req->rid, strlen (req->rid));
    tiers_wire_set_service (msg, pool);
    int64_t left = req->deadline - zclock_mono ();
    msg->deadline = tiers_wire_now () + (left > 1 ? left : 1);
    tiers_wire_set_header (msg, "method", method, strlen (method));
    int rc = tiers_wire_send (msg, self->dealer, NULL);
    tiers_wire_destroy (&msg);
    if (rc == 0) {
        req->pool = pool;       //  for the 504's detail
        req->asked = true;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  The two routes every face serves the same way (gateway, exporter)

bool
tiers_http_match_health (const char *path)
{
    return streq (path, "/health");
}

bool
tiers_http_match_metrics (const char *path)
{
    return streq (path, "/metrics");
}

enum MHD_Result
tiers_http_begin_health (tiers_http_req_t *req, const char *path)
{
    (void) path;
    if (!tiers_http_reading (req))
        return tiers_http_problem (req, 405, "use GET or HEAD", "GET, HEAD", NULL);
    const char *ok = "{\"status\":\"ok\"}";
    return tiers_http_text (req, 200, "application/json", ok, strlen (ok));
}

enum MHD_Result
tiers_http_begin_metrics (tiers_http_req_t *req, const char *path)
{
    (void) path;
    if (!tiers_http_reading (req))
        return tiers_http_problem (req, 405, "use GET or HEAD", "GET, HEAD", NULL);
    char *text = tiers_metrics_render ();
    enum MHD_Result rc = tiers_http_text (req, 200,
        "text/plain; version=0.0.4; charset=utf-8", text ? text : "",
        text ? strlen (text) : 0);
    free (text);
    return rc;
}
