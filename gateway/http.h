/*  http.h — an HTTP face: what every public listener of tiers needs, apart
    from its routes.

    A face is libmicrohttpd in external-event-loop mode inside one actor
    thread, beside a DEALER to the balancer: the access handler suspends a
    connection when it forwards a request and the reply resumes it, in the
    same thread (gateway.c's file head tells why). The face owns the parts
    every listener shares — the MHD loop in the actor's reactor, suspend
    and resume, request ids (X-Request-Id), the table of forwarded requests
    with their deadlines (504), the limits (URL 414, headers 431, bodies
    413, framing 400/501), who may connect (gateway/listener.h: 503 past
    the connection limits), how long a connection may take to send its
    request (408), problem+json answers, the wire reply turned into the
    HTTP response, shutdown (503 to whoever waits) and the tiers_gateway_*
    metrics — and asks a ROUTE TABLE everything else.

    A route says which requests it takes (match), checks them when their
    headers are in (begin: answer at once, or pick a pool with
    tiers_http_forward_to), and adds what its back end needs to the wire
    request before it goes (forward). The document API (gateway.c) is the
    first table; the S3 listener, the queue's SQS face and the jobs routes
    are the next ones, each its own table over this face.

    Who may ask (gateway/guard.h): a face with a guard checks API keys and
    rate limits before a route begins, as each route's `access` says
    (401, 429), and a route checks the rights of the key for what it was
    asked (tiers_http_allowed: 403). A face with TLS (gateway/tls.h)
    serves HTTPS through libmicrohttpd's GnuTLS, and answers plain HTTP on
    its port with a plain 400.

    Bodies: a route that keeps the body gets it whole (at most max_body)
    as the wire body. A route that sets `body` instead gets it chunk by
    chunk as MHD reads it (bounded by MHD's per-connection memory), and
    may pass the chunks on to a back end: the seam for uploads larger than
    memory (doc/http.md, "Bodies larger than memory").
*/
#ifndef TIERS_HTTP_H
#define TIERS_HTTP_H

#include <microhttpd.h>
#include "reactor.h"
#include "wire.h"
#include "guard.h"
#include "tls.h"

typedef struct _tiers_http_t tiers_http_t;
typedef struct _tiers_http_req_t tiers_http_req_t;

#define TIERS_HTTP_STATE_MAX 400    //  bytes of per-request state a route keeps

//  What a route asks of a request before it begins, when the face has a
//  guard (without one, every route is open as it always was).
typedef enum {
    TIERS_HTTP_KEYED,       //  a valid API key when there are keys (401), charged
                            //  to the key's bucket; the route checks the key's
                            //  rights with tiers_http_allowed (403)
    TIERS_HTTP_ANYONE,      //  no key; charged to the client address's bucket
    TIERS_HTTP_OPEN,        //  no key and no limit (liveness: /health)
    TIERS_HTTP_METRICS      //  a key with the right `metrics` when a key has it,
                            //  else as ANYONE
} tiers_http_access_t;

typedef struct {
    const char *name;       //  the metrics label: route="document"
    //  Does the route take this path (percent-decoded, without the query)?
    bool (*match) (const char *path);
    //  Headers in and the face's limits passed. Answer now (return what
    //  tiers_http_problem / tiers_http_text returned), or pick a pool with
    //  tiers_http_forward_to and return MHD_YES.
    enum MHD_Result (*begin) (tiers_http_req_t *req, const char *path);
    //  The last call: add the route's headers to `msg` (rid, request-id,
    //  pool, deadline and method are set). Returns 0, or an HTTP status to
    //  answer with *detail instead of forwarding.
    int (*forward) (tiers_http_req_t *req, tiers_wire_t *msg, const char **detail);
    //  Optional: body chunks as they come (NULL: the face keeps the body
    //  whole when begin asked for it). Returns MHD_NO to close.
    enum MHD_Result (*body) (tiers_http_req_t *req, const char *data, size_t size);
    //  Optional: the wire kind sent (0: TIERS_WIRE_REQUEST; the readiness
    //  route asks the balancer for its STATUS).
    int kind;
    //  Optional: turn the back end's reply into the answer (it must answer,
    //  with tiers_http_problem or tiers_http_text). NULL: the face's own
    //  mapping (status, body, ETag, Location, Retry-After, problem+json).
    void (*reply) (tiers_http_req_t *req, tiers_wire_t *reply);
    tiers_http_access_t access;
    //  Optional: the request is over (answered, refused, cut, given up
    //  on), once, before its route state goes.
    void (*done) (tiers_http_req_t *req);
} tiers_http_route_t;

typedef struct {
    const char *name;           //  the actor, for logs
    int instance;               //  for generated request ids
    const char *host;           //  listener address ("*" or "" = any)
    int port;                   //  0 = any (see tiers_http_port)
    bool reuse_port;            //  several instances share the port
    uint64_t max_body;
    size_t max_url, max_header;
    unsigned connections;       //  0 = what the file descriptors allow
    unsigned per_client;        //  0 = a share of connections (doc/http.md)
    unsigned idle_timeout_s;
    int64_t head_timeout_ms;    //  a request head must be complete within
    uint64_t min_body_rate;     //  bytes/s a body must keep up (0 = any)
    int64_t deadline_ms;        //  a forwarded request is answered 504 after
    zsock_t *dealer;            //  to the balancer (the caller owns it; NULL
                                //  when no route forwards)
    const tiers_http_route_t *routes;   //  tried in order
    size_t route_count;
    void *arg;                  //  for the routes: tiers_http_arg
    const char *metrics;        //  the metrics' middle word: "gateway" ->
                                //  tiers_gateway_requests_total, ...
    const char *not_found;      //  detail of the 404 no route takes (NULL:
                                //  "no such route")
    const tiers_tls_t *tls;     //  HTTPS with this certificate; NULL = plain HTTP
    tiers_guard_t *guard;       //  API keys and rate limits; NULL = none (the
                                //  caller owns both, and keeps them until destroy)
} tiers_http_config_t;

//  Starts listening. NULL + *why (malloc'ed) when MHD cannot.
tiers_http_t *tiers_http_new (const tiers_http_config_t *config, char **why);
//  Answers 503 to every request still waiting, lets MHD send for a moment,
//  stops the daemon, frees.
void tiers_http_destroy (tiers_http_t **self_p);
//  The port it listens on (the kernel's choice for port 0).
int tiers_http_port (tiers_http_t *self);
//  Puts the face into the actor's reactor: the dealer's replies, MHD's
//  descriptor, and MHD's timers and the deadlines in the pass hook.
void tiers_http_attach (tiers_http_t *self, tiers_reactor_t *reactor);

//  For routes: the request.
void *tiers_http_arg (tiers_http_req_t *req);
//  "GET", "HEAD", "PUT", "DELETE", or NULL for another method.
const char *tiers_http_method (tiers_http_req_t *req);
bool tiers_http_reading (tiers_http_req_t *req);   //  GET or HEAD
struct MHD_Connection *tiers_http_connection (tiers_http_req_t *req);
//  TIERS_HTTP_STATE_MAX bytes the route may use, zeroed at the start.
void *tiers_http_state (tiers_http_req_t *req);
//  Forward the request to `pool` at its last call; keep the body (at most
//  max_body) and send it as the wire body when keep_body.
void tiers_http_forward_to (tiers_http_req_t *req, const char *pool, bool keep_body);
//  From a route's reply hook: ask another back end for the same request
//  (`kind` 0 = a REQUEST to `pool` with header method = `method`), within
//  what is left of its deadline; its reply comes to the hook again. Returns
//  0, or -1 when it cannot be sent (then the hook must answer).
int tiers_http_ask (tiers_http_req_t *req, const char *pool, int kind, const char *method);
//  May the request's key do `right` (TIERS_RIGHT_READ or _WRITE) on
//  `collection`? True when it may, or when the face has no keys; else
//  answers 403 (*rc is the answer's result) and returns false.
bool tiers_http_allowed (tiers_http_req_t *req, unsigned right, const char *collection,
                         enum MHD_Result *rc);
//  Answers (exactly once per request; the result is for MHD).
enum MHD_Result tiers_http_problem (tiers_http_req_t *req, int status, const char *detail,
                                    const char *allow, const char *retry_after);
enum MHD_Result tiers_http_text (tiers_http_req_t *req, int status, const char *type,
                                 const char *text, size_t size);
//  Answers with a response the route made (consumed; NULL = out of memory:
//  the connection is closed). The face adds X-Request-Id and counts it.
enum MHD_Result tiers_http_respond (tiers_http_req_t *req, int status,
                                    struct MHD_Response *response);
//  The face's own mapping of a back end's reply (what a route without a
//  reply hook gets), for a reply hook that adds to it: status, body,
//  ETag, Location, Retry-After, Tiers-Token, problem+json. It may take
//  the reply's body.
void tiers_http_reply_default (tiers_http_req_t *req, tiers_wire_t *reply);
//  Copy a request header (or a query argument) to the wire as `key`; a
//  list header sent on several lines is joined with ", " (RFC 9110 5.3).
//  *too_long is set when the value is over the wire's limit.
void tiers_http_copy_list (tiers_http_req_t *req, tiers_wire_t *msg,
                           const char *header, const char *key, bool *too_long);
void tiers_http_copy_value (tiers_http_req_t *req, tiers_wire_t *msg,
                            enum MHD_ValueKind kind, const char *name,
                            const char *key, bool *too_long);

//  /health (liveness: 200 {"status":"ok"}) and /metrics (Prometheus text
//  of the process), the same on every face: match and begin hooks.
bool tiers_http_match_health (const char *path);
bool tiers_http_match_metrics (const char *path);
enum MHD_Result tiers_http_begin_health (tiers_http_req_t *req, const char *path);
enum MHD_Result tiers_http_begin_metrics (tiers_http_req_t *req, const char *path);

#endif
