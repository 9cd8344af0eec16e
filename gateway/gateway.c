/*  gateway.c — the HTTP edge: libmicrohttpd in front of the balancer.

    The one idea: an HTTP request must wait for the back end without ever
    blocking the web server, and a ZeroMQ socket may only be touched by the
    thread that owns it. So each gateway instance is ONE actor thread that
    runs MHD in external-event-loop mode (MHD_USE_EPOLL, no MHD thread): the
    epoll fd of MHD sits in the same zmq_poll as the actor pipe and the
    DEALER to the balancer. When a request is complete the access handler
    sends it to the balancer (non-blocking) and suspends the connection;
    when the reply arrives on the DEALER, the same thread queues the
    response and resumes the connection. No lock, no hand-off between
    threads, and one slow client cannot stall the others because MHD treats
    every connection non-blockingly inside that loop. Several instances
    share the listening port with SO_REUSEPORT (one per core, like nginx
    workers).

    A suspended connection never times out in MHD and does not notice the
    client leaving, so the gateway keeps its own table of forwarded
    requests, keyed by request id, with a deadline each. The life of one
    request (its request_t, hung on MHD's per-request pointer):

        RECEIVING   first call: request id, limits, routing; then the body
                    is accumulated (counted against max_body).
                    --error or local route--> ANSWERED (response queued at
                    once, never suspended)
                    --last call: sent to the balancer, connection suspended-->
        FORWARDED   in the table (rid -> request) and in the deadline list
                    (FIFO: every request gets the same `deadline`, so the
                    head is always the nearest one).
                    --REPLY with its rid--> ANSWERED
                    --deadline passed--> ANSWERED (504)
                    --$TERM--> ANSWERED (503)
                    Leaving FORWARDED removes the request from the table and
                    the list, queues the response and resumes the
                    connection: exactly once.
        ANSWERED    MHD sends the response; its completion callback frees
                    the request. A reply for a rid no longer in the table is
                    late: dropped and counted.

    Invariant: a request is in the table iff it is FORWARDED iff its
    connection is suspended.
*/
#include "gateway.h"
#include "map.h"
#include "node.h"
#include "wire.h"
#include "service.h"
#include "reactor.h"
#include "sock.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "problem.h"
#include <microhttpd.h>
#include <netdb.h>
#include <sys/random.h>

#define GW_MAX_COLLECTION   TIERS_COLLECTION_MAX
#define GW_MAX_ID           TIERS_DOC_ID_MAX
#define GW_MAX_RID          64          //  a client's own X-Request-Id
#define GW_MAX_HEADER_LINES 100         //  header lines in one request
//  MHD's memory pool per connection: the headers up to twice max_header
//  (so that the gateway, not MHD, answers those over it), MHD's record of
//  each header line, and room to build the answer's headers.
#define GW_POOL(max_header) (2 * (max_header) + GW_MAX_HEADER_LINES * 64 + 8192)

typedef enum {
    ROUTE_DOCUMENT, ROUTE_LIST, ROUTE_HEALTH, ROUTE_METRICS, ROUTE_OTHER,
    ROUTE_COUNT
} route_t;

static const char *s_route_names [ROUTE_COUNT] = {
    "document", "list", "health", "metrics", "other"
};

typedef enum { REQ_RECEIVING, REQ_FORWARDED, REQ_ANSWERED } req_state_t;

typedef struct _gateway_t gateway_t;

typedef struct {
    gateway_t *gateway;
    struct MHD_Connection *connection;
    req_state_t state;
    route_t route;
    const char *method;         //  static string: "GET", "HEAD", ...
    const char *pool;           //  "read" or "write"
    char rid [GW_MAX_RID + 1];  //  X-Request-Id shown to the client
    bool rid_given;             //  the client sent it (else we made it)
    char key [TIERS_WIRE_MAX_RID + 1];      //  rid on the wire / table key
    char collection [GW_MAX_COLLECTION + 1];
    char id [GW_MAX_ID + 1];    //  empty for a list
    uint8_t *body;              //  PUT body so far (room for body_size + 1)
    size_t body_size, body_room;
    uint64_t received;          //  body bytes seen, kept or not
    bool too_big;               //  body exceeded max_body: answer 413
    bool draining;              //  answered 503 at shutdown
    bool first_call;            //  inside the first call of the handler
    bool has_body;              //  Content-Length > 0 or chunked
    bool close;                 //  close the connection after the answer
    bool if_lists;              //  If-Match or If-None-Match on several lines
    struct MHD_Response *held;  //  answer decided early, queued at the last call
    int held_status;
    int64_t started;            //  monotonic us
    int64_t deadline;           //  monotonic ms, FORWARDED only
    void *handle;               //  in gateway->forwarded, FORWARDED only
} request_t;

struct _gateway_t {
    char name [96];
    int instance;
    zsock_t *pipe;
    zsock_t *dealer;                //  to the balancer
    struct MHD_Daemon *daemon;
    int epoll_fd;
    char host [256];
    int port;
    //  Limits (doc/http.md)
    uint64_t max_body;
    size_t max_url;
    size_t max_header;
    unsigned connections, per_client, idle_timeout_s;
    int64_t deadline_ms;
    //  Forwarded requests
    zhashx_t *table;                //  key -> request_t * (not owned)
    zlistx_t *forwarded;            //  request_t *, oldest (= nearest deadline) first
    uint64_t sequence;              //  for generated request ids
    bool stopping;
    size_t closing;                 //  answered at shutdown, not yet completed
    //  Metrics
    zhashx_t *counters;             //  "route|status" -> tiers_counter_t *
    tiers_histogram_t *latency [ROUTE_COUNT];
    tiers_gauge_t *inflight;
    tiers_counter_t *late, *malformed;
    bool running;                   //  MHD started: its messages are per client
    //  The loop
    tiers_reactor_t *reactor;
    bool http_ready;                //  MHD's epoll fd stirred in this pass
    int replies;                    //  requests resumed in this pass
    long timeout;                   //  the wait the last pass asked for
};

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

int
tiers_gateway_port (void)
{
    pthread_mutex_lock (&s_ports_lock);
    int port = s_last_port;
    pthread_mutex_unlock (&s_ports_lock);
    return port;
}

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
s_rid_generate (gateway_t *self, char *rid, size_t size)
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

static void
s_count (gateway_t *self, request_t *req, int status)
{
    char key [32];
    snprintf (key, sizeof key, "%d|%d", (int) req->route, status);
    tiers_counter_t *counter = (tiers_counter_t *) zhashx_lookup (self->counters, key);
    if (!counter) {
        char labels [64];
        snprintf (labels, sizeof labels, "route=\"%s\",status=\"%d\"",
                  s_route_names [req->route], status);
        counter = tiers_metrics_counter ("tiers_gateway_requests_total", labels,
                                         "HTTP requests answered, by route and status");
        zhashx_insert (self->counters, key, counter);
    }
    tiers_counter_add (counter, 1);
    tiers_histogram_observe (self->latency [req->route],
                             (tiers_clock_us () - req->started) / 1e6);
}

//  Leave FORWARDED: out of the table and the deadline list.
static void
s_forget (gateway_t *self, request_t *req)
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
        s_count (req->gateway, req, status);
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
    gateway_t *self = req->gateway;
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

static enum MHD_Result
s_respond_problem (request_t *req, int status, const char *detail,
                   const char *allow, const char *retry_after)
{
    struct MHD_Response *response = s_problem_new (req, status, detail);
    if (response && allow)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, allow);
    if (response && retry_after)
        MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    return s_respond (req, status, response);
}

static enum MHD_Result
s_respond_text (request_t *req, int status, const char *type,
                const char *text, size_t size)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        size, (void *) text, MHD_RESPMEM_MUST_COPY);
    if (response)
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return s_respond (req, status, response);
}

//  The balancer's or a service's reply becomes the HTTP response.
static void
s_on_reply (gateway_t *self, request_t *req, tiers_wire_t *reply)
{
    int status = reply->status;
    if (status < 100 || status > 599) {
        char detail [96];
        snprintf (detail, sizeof detail, "the %s pool answered with status %d",
                  req->pool, status);
        s_respond_problem (req, 502, detail, NULL, NULL);
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
        s_respond_problem (req, status, detail, NULL, retry_after);
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
    }
    s_respond (req, status, response);
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
    int if_match_lines, if_none_lines;
    int lines;
    bool host, transfer_encoding, chunked_only;
} header_scan_t;

static enum MHD_Result
s_scan_header (void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
               const char *value, size_t value_size)
{
    (void) kind;
    header_scan_t *scan = (header_scan_t *) cls;
    scan->length += 4 + key_size + value_size;
    scan->lines++;
    if (strcasecmp (key, MHD_HTTP_HEADER_HOST) == 0)
        scan->host = true;
    if (value && strcasecmp (key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        //  Only "chunked" (any case, optional whitespace) is understood.
        const char *start = value, *end = value + value_size;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end [-1] == ' ' || end [-1] == '\t'))
            end--;
        scan->chunked_only = !scan->transfer_encoding && end - start == 7
                          && strncasecmp (start, "chunked", 7) == 0;
        scan->transfer_encoding = true;
    }
    if (strcasecmp (key, MHD_HTTP_HEADER_IF_MATCH) == 0)
        scan->if_match_lines++;
    if (strcasecmp (key, MHD_HTTP_HEADER_IF_NONE_MATCH) == 0)
        scan->if_none_lines++;
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
s_on_first_call (gateway_t *self, request_t *req, const char *url,
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
    bool reading = req->method && (streq (req->method, "GET") || streq (req->method, "HEAD"));

    //  Route first so that every answer is counted under its route.
    const char *rest = NULL, *slash = NULL;
    if (streq (url, "/health"))
        req->route = ROUTE_HEALTH;
    else
    if (streq (url, "/metrics"))
        req->route = ROUTE_METRICS;
    else
    if (strncmp (url, "/v1/", 4) == 0 && url [4] && url [4] != '/') {
        rest = url + 4;
        slash = strchr (rest, '/');
        if (!slash)
            req->route = ROUTE_LIST;
        else
        if (slash [1] && !strchr (slash + 1, '/'))
            req->route = ROUTE_DOCUMENT;
        else
            req->route = ROUTE_OTHER;
    }
    else
        req->route = ROUTE_OTHER;

    size_t url_length = strlen (url);
    MHD_get_connection_values (connection, MHD_GET_ARGUMENT_KIND,
                               s_count_argument, &url_length);
    if (url_length > self->max_url) {
        char detail [96];
        snprintf (detail, sizeof detail, "the URL is %zu bytes; the limit is %zu",
                  url_length, self->max_url);
        return s_respond_problem (req, 414, detail, NULL, NULL);
    }
    //  MHD's pool holds twice max_header (see s_start_daemon), so that
    //  headers over the limit get this answer, not MHD's own HTML page.
    header_scan_t scan = { .length = strlen (method) + 1 + url_length + 11 };
    MHD_get_connection_values_n (connection, MHD_HEADER_KIND, s_scan_header, &scan);
    req->if_lists = scan.if_match_lines > 1 || scan.if_none_lines > 1;
    size_t header_length = scan.length;
    if (header_length > self->max_header) {
        char detail [96];
        snprintf (detail, sizeof detail, "the request line and headers are %zu bytes; "
                  "the limit is %zu", header_length, self->max_header);
        return s_respond_problem (req, 431, detail, NULL, NULL);
    }
    if (scan.lines > GW_MAX_HEADER_LINES) {
        char detail [96];
        snprintf (detail, sizeof detail, "%d header lines; the limit is %d",
                  scan.lines, GW_MAX_HEADER_LINES);
        return s_respond_problem (req, 431, detail, NULL, NULL);
    }
    if (scan.transfer_encoding && !scan.chunked_only) {
        req->close = true;
        return s_respond_problem (req, 501, "the only transfer coding understood "
                                  "is chunked", NULL, NULL);
    }
    if (scan.transfer_encoding && scan.content_length) {
        //  RFC 9112 6.3: which framing a proxy in front used is unknown.
        req->close = true;
        return s_respond_problem (req, 400, "Transfer-Encoding and Content-Length "
                                  "together", NULL, NULL);
    }
    if (!scan.host && strcmp (version, MHD_HTTP_VERSION_1_0) != 0)
        return s_respond_problem (req, 400, "an HTTP/1.1 request needs Host", NULL, NULL);
    if (scan.conflict) {
        //  Where this request's body ends is not known: nothing after it
        //  on this connection can be trusted either.
        req->close = true;
        return s_respond_problem (req, 400, "Content-Length is given twice with "
                                  "different values", NULL, NULL);
    }
    if (req->route == ROUTE_OTHER)
        return s_respond_problem (req, 404, "no such route", NULL, NULL);

    if (req->route == ROUTE_HEALTH || req->route == ROUTE_METRICS) {
        if (!reading)
            return s_respond_problem (req, 405, "use GET or HEAD", "GET, HEAD", NULL);
        if (req->route == ROUTE_HEALTH) {
            const char *ok = "{\"status\":\"ok\"}";
            return s_respond_text (req, 200, "application/json", ok, strlen (ok));
        }
        char *text = tiers_metrics_render ();
        enum MHD_Result rc = s_respond_text (req, 200,
            "text/plain; version=0.0.4; charset=utf-8", text ? text : "",
            text ? strlen (text) : 0);
        free (text);
        return rc;
    }
    if (req->route == ROUTE_LIST && !reading)
        return s_respond_problem (req, 405, "a collection supports GET and HEAD",
                                  "GET, HEAD", NULL);
    if (req->route == ROUTE_DOCUMENT && !req->method)
        return s_respond_problem (req, 405, "a document supports GET, HEAD, PUT and DELETE",
                                  "GET, HEAD, PUT, DELETE", NULL);

    size_t collection_length = slash ? (size_t) (slash - rest) : strlen (rest);
    if (!tiers_collection_ok (rest, collection_length))
        return s_respond_problem (req, 400, TIERS_COLLECTION_RULE, NULL, NULL);
    memcpy (req->collection, rest, collection_length);
    req->collection [collection_length] = 0;
    if (slash) {
        if (!tiers_doc_id_ok (slash + 1, strlen (slash + 1)))
            return s_respond_problem (req, 400, TIERS_DOC_ID_RULE, NULL, NULL);
        snprintf (req->id, sizeof req->id, "%s", slash + 1);
    }
    req->pool = reading ? "read" : "write";

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
            return s_respond_problem (req, 413, detail, NULL, NULL);
        }
    }
    return MHD_YES;
}

//  A piece of the body: keep it (PUT) and count it against max_body. An
//  oversized chunked body is read and dropped (MHD cannot answer before the
//  upload ends) up to a bound, then the connection is closed.
static enum MHD_Result
s_on_body (gateway_t *self, request_t *req, const char *data, size_t size)
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
    if (!req->method || !streq (req->method, "PUT"))
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

static void
s_set_list_from (tiers_wire_t *msg, struct MHD_Connection *connection,
                 const char *name, const char *key, bool *too_long)
{
    joined_t joined = { .name = name };
    MHD_get_connection_values (connection, MHD_HEADER_KIND, s_join_line, &joined);
    if (joined.too_long)
        *too_long = true;
    else
    if (joined.found)
        tiers_wire_set_header (msg, key, joined.value, joined.size);
}

static void
s_set_header_from (tiers_wire_t *msg, struct MHD_Connection *connection,
                   enum MHD_ValueKind kind, const char *name, const char *key,
                   bool *too_long)
{
    const char *value = MHD_lookup_connection_value (connection, kind, name);
    if (value && tiers_wire_set_header (msg, key, value, strlen (value)))
        *too_long = true;
}

//  Last call: the request is complete. Forward it and suspend.
static enum MHD_Result
s_forward (gateway_t *self, request_t *req)
{
    if (req->too_big) {
        char detail [128];
        snprintf (detail, sizeof detail, "the body exceeds the limit of %" PRIu64 " bytes",
                  self->max_body);
        return s_respond_problem (req, 413, detail, NULL, NULL);
    }
    if (zhashx_size (self->table) >= self->connections)
        return s_respond_problem (req, 503, "too many requests in flight", NULL, "1");

    //  The wire rid is the table key, and no two requests of this gateway
    //  ever share one: a late reply must never find a later request. A
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
        return s_respond_problem (req, 500, "request key in use", NULL, NULL);
    tiers_wire_t *msg = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (msg, req->key);
    if (req->rid_given)
        tiers_wire_set_header (msg, "request-id", req->rid, strlen (req->rid));
    tiers_wire_set_service (msg, req->pool);
    msg->deadline = tiers_wire_now () + self->deadline_ms;
    tiers_wire_set_header (msg, "method", req->method, strlen (req->method));
    tiers_wire_set_header (msg, "collection", req->collection, strlen (req->collection));
    bool too_long = false;
    if (req->route == ROUTE_DOCUMENT) {
        tiers_wire_set_header (msg, "id", req->id, strlen (req->id));
        if (req->if_lists) {
            s_set_list_from (msg, req->connection, MHD_HTTP_HEADER_IF_MATCH,
                             "if-match", &too_long);
            s_set_list_from (msg, req->connection, MHD_HTTP_HEADER_IF_NONE_MATCH,
                             "if-none-match", &too_long);
        }
        else {
            s_set_header_from (msg, req->connection, MHD_HEADER_KIND,
                               MHD_HTTP_HEADER_IF_MATCH, "if-match", &too_long);
            s_set_header_from (msg, req->connection, MHD_HEADER_KIND,
                               MHD_HTTP_HEADER_IF_NONE_MATCH, "if-none-match", &too_long);
        }
    }
    else {
        s_set_header_from (msg, req->connection, MHD_GET_ARGUMENT_KIND,
                           "limit", "limit", &too_long);
        s_set_header_from (msg, req->connection, MHD_GET_ARGUMENT_KIND,
                           "after", "after", &too_long);
    }
    if (too_long) {
        tiers_wire_destroy (&msg);
        return s_respond_problem (req, 431, "a conditional header or paging "
                                  "parameter is longer than 4096 bytes", NULL, NULL);
    }
    if (req->body_size) {
        if (tiers_wire_take_body (msg, req->body, req->body_size) == 0) {
            req->body = NULL;
            req->body_size = req->body_room = 0;
        }
        else {
            tiers_wire_destroy (&msg);
            return s_respond_problem (req, 413, "the body is too large to forward",
                                      NULL, NULL);
        }
    }
    int rc = tiers_wire_send (msg, self->dealer, NULL);
    tiers_wire_destroy (&msg);
    if (rc) {
        //  Never wait for ZeroMQ: a full pipe to the balancer is back-pressure.
        return s_respond_problem (req, 503, "the balancer is not taking requests",
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
    gateway_t *self = (gateway_t *) cls;
    request_t *req = (request_t *) *con_cls;
    if (!req) {
        req = (request_t *) zmalloc (sizeof *req);
        if (!req)
            return MHD_NO;
        req->gateway = self;
        req->connection = connection;
        req->state = REQ_RECEIVING;
        req->started = tiers_clock_us ();
        *con_cls = req;
        tiers_gauge_add (self->inflight, 1);
        const char *length = MHD_lookup_connection_value (connection,
            MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        req->has_body = (length && strspn (length, "0") != strlen (length))
                     || MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        req->first_call = true;
        enum MHD_Result rc = self->stopping
            ? s_respond_problem (req, 503, "the gateway is shutting down", NULL, "1")
            : s_on_first_call (self, req, url, method, version);
        req->first_call = false;
        return rc;
    }
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
    gateway_t *self = (gateway_t *) cls;
    request_t *req = (request_t *) *con_cls;
    if (!req)
        return;
    if (req->state == REQ_FORWARDED)    //  cannot happen: we resume first
        s_forget (self, req);
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
    if (((gateway_t *) cls)->running)
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
    gateway_t *self = (gateway_t *) arg;
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
    if (req)
        s_on_reply (self, req, reply);
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
    ((gateway_t *) arg)->http_ready = true;
}

//  Answers 504 to requests past their deadline; returns how many.
static int
s_expire (gateway_t *self)
{
    int64_t now = zclock_mono ();
    int count = 0;
    request_t *req;
    while ((req = (request_t *) zlistx_first (self->forwarded))
           && req->deadline <= now) {
        char detail [96];
        snprintf (detail, sizeof detail, "%s pool: no answer within %" PRId64 " ms",
                  req->pool, self->deadline_ms);
        s_respond_problem (req, 504, detail, NULL, NULL);
        count++;
    }
    return count;
}

//  Milliseconds zmq_poll may sleep: MHD's own timers, the nearest
//  deadline, and at most a second.
static long
s_poll_timeout (gateway_t *self)
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
    return timeout;
}

//  Shutdown: every suspended request gets 503, MHD sends what it can for
//  up to 50 ms, then the daemon stops (closing whatever is left).
static int s_expire (gateway_t *self);
static long s_poll_timeout (gateway_t *self);

//  After each pass: deadlines, then MHD when a connection stirred, when
//  replies resumed some, and when its own timers are due.
static int
s_on_pass (void *arg)
{
    gateway_t *self = (gateway_t *) arg;
    self->replies += s_expire (self);
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
s_drain (gateway_t *self)
{
    self->stopping = true;
    request_t *req;
    while ((req = (request_t *) zlistx_first (self->forwarded))) {
        req->draining = true;
        self->closing++;
        s_respond_problem (req, 503, "the gateway is shutting down", NULL, "1");
    }
    int64_t until = zclock_mono () + 50;
    MHD_run (self->daemon);
    while (self->closing && zclock_mono () < until) {
        zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 5);
        MHD_run (self->daemon);
    }
}

static int
s_start_daemon (gateway_t *self, const tiers_entry_t *entry, bool reuse)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *found = NULL;
    char service [16];
    snprintf (service, sizeof service, "%d", self->port);
    const char *host = streq (self->host, "*") || !*self->host ? NULL : self->host;
    int rc = getaddrinfo (host, service, &hints, &found);
    if (rc || !found) {
        tiers_error ("cannot resolve %s: %s", self->host, gai_strerror (rc));
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (found->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (flags, (uint16_t) self->port, NULL, NULL,
        s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,    //  first, or MHD complains
        MHD_OPTION_SOCK_ADDR, found->ai_addr,
        //  An explicit 0 would make MHD *refuse* SO_REUSEADDR, and a restart
        //  after a crash would then fail while old connections sit in
        //  TIME_WAIT; one instance leaves the option out (MHD's default is
        //  SO_REUSEADDR), several ask for SO_REUSEPORT to share the port.
        reuse ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_CONNECTION_LIMIT,
        reuse ? 1u : (unsigned int) self->connections,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) self->connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) self->per_client,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) self->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) GW_POOL (self->max_header),
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
        MHD_OPTION_END);
    freeaddrinfo (found);
    if (!self->daemon)
        return -1;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    self->epoll_fd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        self->port = info->port;
    if (self->epoll_fd < 0) {
        MHD_stop_daemon (self->daemon);
        self->daemon = NULL;
        return -1;
    }
    return 0;
}

static void
s_gateway_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    const tiers_entry_t *entry = args->entry;
    tiers_log_set_actor (args->name);
    gateway_t self_, *self = &self_;
    memset (self, 0, sizeof *self);
    snprintf (self->name, sizeof self->name, "%s", args->name);
    self->instance = args->instance;
    self->pipe = pipe;
    self->max_body = (uint64_t) tiers_entry_int (entry, "max_body", 1024 * 1024);
    self->max_url = (size_t) tiers_entry_int (entry, "max_url", 2048);
    self->max_header = (size_t) tiers_entry_int (entry, "max_header", 16 * 1024);
    self->connections = (unsigned) tiers_entry_int (entry, "connections", 1024);
    self->per_client = (unsigned) tiers_entry_int (entry, "per_client", 128);
    long long idle_ms = tiers_entry_int (entry, "idle_timeout", 15000);
    self->idle_timeout_s = (unsigned) ((idle_ms + 999) / 1000);
    if (self->idle_timeout_s < 1)
        self->idle_timeout_s = 1;
    self->deadline_ms = tiers_entry_int (entry, "deadline", 5000);

    const char *http = tiers_entry_get (entry, "http", NULL);
    if (!http || tiers_hostport_split (http, self->host, sizeof self->host, &self->port)) {
        tiers_actor_failed (pipe, "bad http listener '%s'", http ? http : "");
        return;
    }
    if (!entry->connect) {
        tiers_actor_failed (pipe, "no balancer to connect to");
        return;
    }
    if (self->instance > 0 && self->port == 0)
        self->port = s_port_lookup (entry);
    if (self->instance > 0 && self->port == 0) {
        tiers_actor_failed (pipe, "instance 0 of %s published no port", entry->name);
        return;
    }
    char *why = NULL;
    self->dealer = tiers_link_connect (entry, "balancer", 0, &why);
    if (!self->dealer) {
        tiers_actor_failed (pipe, "%s", why);
        free (why);
        return;
    }
    if (s_start_daemon (self, entry, entry->instances > 1)) {
        tiers_actor_failed (pipe, "cannot listen on %s (port %d in use, or "
                            "address not local?)", http, self->port);
        zsock_destroy (&self->dealer);
        return;
    }
    if (self->instance == 0)
        s_port_publish (entry, self->port);
    self->table = zhashx_new ();
    self->forwarded = zlistx_new ();
    self->counters = zhashx_new ();
    for (int route = 0; route < ROUTE_COUNT; route++) {
        char labels [48];
        snprintf (labels, sizeof labels, "route=\"%s\"", s_route_names [route]);
        self->latency [route] = tiers_metrics_histogram ("tiers_gateway_latency_seconds",
            labels, "Time from a request's first byte to its response");
    }
    self->inflight = tiers_metrics_gauge ("tiers_gateway_inflight", NULL,
        "HTTP requests being received, forwarded or answered");
    self->late = tiers_metrics_counter ("tiers_gateway_late_replies_total", NULL,
        "Replies dropped because their request was already answered");
    self->malformed = tiers_metrics_counter ("tiers_gateway_malformed_total", NULL,
        "Malformed messages from the balancer, dropped");
    self->running = true;

    bool v6 = strchr (self->host, ':') != NULL;
    tiers_info ("listening on http://%s%s%s:%d (balancer %s)", v6 ? "[" : "",
                self->host, v6 ? "]" : "", self->port, entry->connect);
    printf ("tiers: gateway %s listening on http://%s%s%s:%d\n", self->name,
            v6 ? "[" : "", self->host, v6 ? "]" : "", self->port);
    fflush (stdout);
    tiers_actor_ready (pipe);

    self->reactor = tiers_reactor_new (pipe);
    tiers_reactor_reader (self->reactor, self->dealer, 0, s_on_dealer, self);
    tiers_reactor_fd (self->reactor, self->epoll_fd, s_on_http, self);
    tiers_reactor_set_pass (self->reactor, s_on_pass, self);
    self->timeout = s_poll_timeout (self);
    tiers_reactor_run (self->reactor);
    tiers_reactor_destroy (&self->reactor);
    s_drain (self);
    MHD_stop_daemon (self->daemon);
    zlistx_destroy (&self->forwarded);
    zhashx_destroy (&self->table);
    zhashx_destroy (&self->counters);
    zsock_destroy (&self->dealer);
}

static const tiers_key_t s_keys [] = {
    { "http",         TIERS_KEY_HOSTPORT, true,  0, 0, NULL },
    { "max_body",     TIERS_KEY_BYTES,    false, 1, TIERS_WIRE_MAX_BODY, NULL },
    { "max_url",      TIERS_KEY_INT,      false, 16, 1024 * 1024, NULL },
    { "max_header",   TIERS_KEY_BYTES,    false, 1024, 1024 * 1024, NULL },
    { "connections",  TIERS_KEY_INT,      false, 1, 1000000, NULL },
    { "per_client",   TIERS_KEY_INT,      false, 1, 1000000, NULL },
    { "idle_timeout", TIERS_KEY_MS,       false, 1, 3600000, NULL },
    { "deadline",     TIERS_KEY_MS,       false, 1, 3600000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static const tiers_link_t s_links [] = {
    TIERS_LINK_BALANCER,
    { NULL, NULL, NULL, 0, false, false }
};

const tiers_kind_t tiers_gateway_kind = {
    .name = "gateway",
    .summary = "HTTP edge (libmicrohttpd): routes, limits, request ids, to the balancer",
    .rank = TIERS_RANK_EDGE,
    .run = s_gateway_actor,
    .keys = s_keys,
    .multi = true,
    .links = s_links,
    .listener = "http"
};
