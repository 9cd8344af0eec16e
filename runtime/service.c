/*  service.c — a worker of a balancer pool (see service.h).

    States of the link to the balancer:
        JOINED    socket connected, READY sent; every message from the
                  balancer pushes `expires` to now + heartbeat x liveness.
        QUIET     the balancer said nothing past `expires`. The socket is
                  kept: libzmq reconnects its transport by itself, and a
                  balancer that only paused still holds this worker's
                  requests in flight, whose replies must go out on this
                  socket (a new one would be a stranger to it). What a
                  restarted balancer lacks is a READY, so READY is said
                  again at `ready_at`: at once, then 1 s later, doubling
                  to 32 s. Heartbeats and replies go on.
        WAITING   no socket: making one failed; at `reconnect_at` another
                  try, the wait doubling up to 32 s.
        FROZEN    (tests) neither answers nor heartbeats.
    Transitions: WAITING -> JOINED (a socket made), WAITING -> WAITING
    (none could be made), JOINED -> QUIET (silence), QUIET -> JOINED (any
    message from the balancer but an error answer), any -> FROZEN.
    Invariant: in JOINED and QUIET there is exactly one socket; in WAITING
    none.

    Silence is judged only with nothing left unread on the socket: unread
    input is the balancer speaking, heard late by a worker that was busy
    elsewhere. Heartbeats go out from a reactor timer, which runs between
    the messages of a burst too, so a worker busy with a long burst still
    beats.
*/
#include "service.h"
#include "reactor.h"
#include "sock.h"
#include "log.h"
#include "metrics.h"

#define BACKOFF_MIN_MS  1000
#define BACKOFF_MAX_MS  32000

typedef enum { S_JOINED, S_QUIET, S_WAITING, S_FROZEN } s_state_t;

static void s_move (tiers_service_t *self, s_state_t to);

struct _tiers_service_t {
    char *endpoint, *pool, *name;
    const tiers_entry_t *entry;     //  connects with its keys, or NULL
    int capacity, heartbeat_ms, liveness;
    zsock_t *sock;
    unsigned joins;             //  sockets made so far: tells a new one apart
    unsigned watched_joins;     //  the socket the reactor watches
    s_state_t state;
    int64_t expires;            //  balancer presumed gone after this
    int64_t heartbeat_at;       //  next heartbeat to send
    int64_t reconnect_at;       //  WAITING: the next try for a socket
    int64_t ready_at;           //  QUIET: the next READY
    int backoff_ms;
    tiers_counter_t *malformed;
};

//  The one place the state changes (see the file head).
static void
s_move (tiers_service_t *self, s_state_t to)
{
    assert (to == S_FROZEN
         || (to == S_WAITING && !self->sock && self->state == S_WAITING)
         || (to == S_JOINED && self->sock
             && (self->state == S_WAITING || self->state == S_QUIET))
         || (to == S_QUIET && self->sock && self->state == S_JOINED));
    self->state = to;
}

static void
s_send_kind (tiers_service_t *self, int kind)
{
    tiers_wire_t *msg = tiers_wire_new (kind);
    tiers_wire_set_service (msg, self->pool);
    tiers_wire_set_rid (msg, self->name);
    if (kind == TIERS_WIRE_READY)
        tiers_wire_set_headerf (msg, "capacity", "%d", self->capacity);
    tiers_wire_send (msg, self->sock, NULL);
    tiers_wire_destroy (&msg);
}

//  A heartbeat, when one is due and there is a link to send it on.
static void
s_beat (tiers_service_t *self, int64_t now)
{
    if ((self->state == S_JOINED || self->state == S_QUIET)
    &&  now >= self->heartbeat_at) {
        s_send_kind (self, TIERS_WIRE_HEARTBEAT);
        self->heartbeat_at = now + self->heartbeat_ms;
    }
}

static void
s_on_beat (void *arg)
{
    s_beat ((tiers_service_t *) arg, zclock_mono ());
}

static void
s_join (tiers_service_t *self)
{
    char *why = NULL;
    int64_t now = zclock_mono ();
    self->sock = self->entry
        ? tiers_sock_connect_from (self->entry, ZMQ_DEALER, self->endpoint, &why)
        : tiers_sock_connect (ZMQ_DEALER, self->endpoint, &why);
    if (!self->sock) {          //  out of sockets or descriptors: try later
        tiers_error ("%s", why);
        free (why);
        s_move (self, S_WAITING);
        self->reconnect_at = now + self->backoff_ms;
        if (self->backoff_ms < BACKOFF_MAX_MS)
            self->backoff_ms *= 2;
        return;
    }
    self->joins++;
    s_send_kind (self, TIERS_WIRE_READY);
    s_move (self, S_JOINED);
    self->expires = now + (int64_t) self->heartbeat_ms * self->liveness;
    self->heartbeat_at = now + self->heartbeat_ms;
}

tiers_service_t *
tiers_service_new (const tiers_service_config_t *config)
{
    assert (config && config->endpoint && config->pool);
    tiers_service_t *self = (tiers_service_t *) zmalloc (sizeof *self);
    assert (self);
    self->endpoint = strdup (config->endpoint);
    self->entry = config->entry;
    self->pool = strdup (config->pool);
    self->name = strdup (config->name ? config->name : config->pool);
    self->capacity = config->capacity > 0 ? config->capacity : 1;
    self->heartbeat_ms = config->heartbeat_ms > 0 ? config->heartbeat_ms : 1000;
    self->liveness = config->liveness > 0 ? config->liveness : 3;
    self->backoff_ms = BACKOFF_MIN_MS;
    char labels [96];
    snprintf (labels, sizeof labels, "pool=\"%s\"", self->pool);
    self->malformed = tiers_metrics_counter ("tiers_service_malformed_total",
        labels, "Malformed messages a service instance received and dropped");
    self->state = S_WAITING;    //  born without a socket: the join makes one
    s_join (self);
    return self;
}

void
tiers_service_destroy (tiers_service_t **self_p)
{
    assert (self_p);
    tiers_service_t *self = *self_p;
    if (self) {
        if (self->sock && (self->state == S_JOINED || self->state == S_QUIET))
            s_send_kind (self, TIERS_WIRE_BYE);
        zsock_destroy (&self->sock);
        free (self->endpoint);
        free (self->pool);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
tiers_service_sock (tiers_service_t *self)
{
    assert (self);
    return self->sock;
}

unsigned
tiers_service_joins (tiers_service_t *self)
{
    assert (self);
    return self->joins;
}

//  What a message from the balancer means: a request for the caller, or
//  something the service handles itself (NULL).
static tiers_wire_t *
s_take (tiers_service_t *self, tiers_wire_t *msg, zmsg_t *route,
        const char *error, zmsg_t **route_p)
{
    if (self->state == S_FROZEN) {
        tiers_wire_destroy (&msg);
        zmsg_destroy (&route);
        return NULL;
    }
    if (!msg) {
        tiers_counter_add (self->malformed, 1);
        tiers_warn ("dropped a malformed message: %s", error ? error : "?");
        zmsg_destroy (&route);
        return NULL;
    }
    //  An error answer is the balancer refusing our READY (a bad capacity,
    //  too many pools, an address where the map places no worker): we are
    //  not in the pool. It does not count as hearing the balancer, so the
    //  link goes QUIET and READY is said again, ever less often.
    if (msg->kind == TIERS_WIRE_REPLY && msg->status >= 400) {
        const char *reason = tiers_wire_header (msg, "error");
        tiers_warn ("the balancer at %s refused this worker: %u %s", self->endpoint,
                    msg->status, reason ? reason : "");
        tiers_wire_destroy (&msg);
        zmsg_destroy (&route);
        return NULL;
    }
    //  Anything else from the balancer proves it is alive.
    self->expires = zclock_mono () + (int64_t) self->heartbeat_ms * self->liveness;
    self->backoff_ms = BACKOFF_MIN_MS;
    if (self->state == S_QUIET) {
        s_move (self, S_JOINED);
        tiers_info ("the balancer at %s speaks again", self->endpoint);
    }
    if (msg->kind == TIERS_WIRE_REQUEST) {
        *route_p = route;
        return msg;
    }
    if (msg->kind != TIERS_WIRE_HEARTBEAT) {
        tiers_counter_add (self->malformed, 1);
        tiers_warn ("unexpected %s from the balancer", tiers_wire_kind_name (msg->kind));
    }
    tiers_wire_destroy (&msg);
    zmsg_destroy (&route);
    return NULL;
}

tiers_wire_t *
tiers_service_recv (tiers_service_t *self, zmsg_t **route_p)
{
    assert (self && route_p);
    *route_p = NULL;
    if (!self->sock)
        return NULL;
    const char *error = NULL;
    zmsg_t *route = NULL;
    tiers_wire_t *msg = tiers_wire_recv (self->sock, &route, &error);
    return s_take (self, msg, route, error, route_p);
}

int
tiers_service_try_recv (tiers_service_t *self, zmsg_t **route_p,
                        tiers_wire_t **request_p)
{
    assert (self && route_p && request_p);
    *route_p = NULL;
    *request_p = NULL;
    if (!self->sock)
        return -1;
    const char *error = NULL;
    zmsg_t *route = NULL;
    tiers_wire_t *msg = NULL;
    if (tiers_wire_try_recv (self->sock, &route, &msg, &error))
        return -1;
    *request_p = s_take (self, msg, route, error, route_p);
    return 0;
}

int
tiers_service_reply (tiers_service_t *self, zmsg_t **route_p,
                     const tiers_wire_t *reply)
{
    assert (self && route_p);
    int rc = -1;
    if (self->sock && (self->state == S_JOINED || self->state == S_QUIET))
        rc = tiers_wire_send (reply, self->sock, *route_p);
    zmsg_destroy (route_p);
    return rc;
}

int
tiers_service_tick (tiers_service_t *self)
{
    assert (self);
    int64_t now = zclock_mono ();
    if (self->state == S_FROZEN)
        return self->heartbeat_ms;
    if (self->state == S_WAITING) {
        if (now < self->reconnect_at)
            return (int) (self->reconnect_at - now);
        tiers_info ("joining pool '%s' at %s again", self->pool, self->endpoint);
        s_join (self);
        if (self->state == S_WAITING)
            return self->backoff_ms;
    }
    //  Input not read yet is the balancer speaking: read it before judging
    //  (a pass at once; the poller looks at the socket again).
    if (self->state == S_JOINED && now >= self->expires) {
        if (tiers_sock_input_waiting (self->sock))
            return 0;
        tiers_warn ("the balancer at %s said nothing for %lld ms; saying READY "
                    "again now, and less and less often until it answers",
                    self->endpoint, (long long) (now - self->expires)
                    + (long long) self->heartbeat_ms * self->liveness);
        s_move (self, S_QUIET);
        self->ready_at = now;
    }
    if (self->state == S_QUIET && now >= self->ready_at) {
        tiers_debug ("READY again to the balancer at %s", self->endpoint);
        s_send_kind (self, TIERS_WIRE_READY);
        self->ready_at = now + self->backoff_ms;
        if (self->backoff_ms < BACKOFF_MAX_MS)
            self->backoff_ms *= 2;
    }
    s_beat (self, now);
    int64_t next = self->state == S_QUIET ? self->ready_at : self->expires;
    if (self->heartbeat_at < next)
        next = self->heartbeat_at;
    return next > now ? (int) (next - now) : 0;
}

void
tiers_service_freeze (tiers_service_t *self)
{
    assert (self);
    s_move (self, S_FROZEN);
}

int
tiers_service_pass (tiers_service_t *self, tiers_reactor_t *reactor, int reader)
{
    assert (self && reactor);
    int timeout = tiers_service_tick (self);
    if (self->joins != self->watched_joins || !self->sock) {
        tiers_reactor_set_socket (reactor, reader, self->sock);
        self->watched_joins = self->joins;
    }
    return timeout;
}

//  The synchronous worker of tiers_service_run.
typedef struct {
    tiers_service_t *service;
    tiers_reactor_t *reactor;
    int reader;
    tiers_service_fn *handler;
    void *arg;
} s_worker_t;

static bool
s_worker_read (void *arg)
{
    s_worker_t *worker = (s_worker_t *) arg;
    zmsg_t *route = NULL;
    tiers_wire_t *request = NULL;
    if (tiers_service_try_recv (worker->service, &route, &request))
        return false;
    if (request) {
        tiers_wire_t *reply = tiers_wire_reply_to (request, 200);
        worker->handler (request, reply, worker->arg);
        tiers_service_reply (worker->service, &route, reply);
        tiers_wire_destroy (&reply);
        tiers_wire_destroy (&request);
    }
    return true;
}

static int
s_worker_pass (void *arg)
{
    s_worker_t *worker = (s_worker_t *) arg;
    return tiers_service_pass (worker->service, worker->reactor, worker->reader);
}

static void
s_worker_command (const char *command, void *arg)
{
    s_worker_t *worker = (s_worker_t *) arg;
    if (streq (command, "FREEZE"))
        tiers_service_freeze (worker->service);
    else
        tiers_warn ("unknown command '%s' on the pipe ignored", command);
}

void
tiers_service_run (tiers_service_t *self, zsock_t *pipe,
                   tiers_service_fn *handler, void *arg)
{
    s_worker_t worker = { self, tiers_reactor_new (pipe), 0, handler, arg };
    worker.reader = tiers_service_attach (self, worker.reactor, s_worker_read, &worker);
    tiers_reactor_set_pass (worker.reactor, s_worker_pass, &worker);
    tiers_reactor_set_command (worker.reactor, s_worker_command, &worker);
    tiers_reactor_run (worker.reactor);
    tiers_reactor_destroy (&worker.reactor);
}

int
tiers_service_attach (tiers_service_t *self, tiers_reactor_t *reactor,
                      tiers_reader_fn *fn, void *arg)
{
    assert (self && reactor && fn);
    self->watched_joins = self->joins;
    //  Four looks per heartbeat: a beat is at most a quarter late (and one
    //  message's work, when the timer waits between two of a burst).
    int interval = self->heartbeat_ms / 4 > 0 ? self->heartbeat_ms / 4 : 1;
    tiers_reactor_timer (reactor, interval, s_on_beat, self);
    return tiers_reactor_reader (reactor, self->sock, 0, fn, arg);
}

tiers_wire_t *
tiers_call (zsock_t *dealer, const tiers_wire_t *request, int timeout_ms)
{
    assert (dealer && request);
    //  A DEALER with no peer (an inproc endpoint nobody binds any more)
    //  would block in the send: it waits for room within the timeout too.
    int64_t until = zclock_mono () + timeout_ms;
    zmq_pollitem_t room = { zsock_resolve (dealer), 0, ZMQ_POLLOUT, 0 };
    if (zmq_poll (&room, 1, timeout_ms) <= 0 || tiers_wire_send (request, dealer, NULL))
        return NULL;
    while (true) {
        int64_t left = until - zclock_mono ();
        if (left <= 0)
            return NULL;
        zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, left) <= 0)
            continue;
        tiers_wire_t *reply = tiers_wire_recv (dealer, NULL, NULL);
        if (reply && streq (reply->rid, request->rid))
            return reply;
        tiers_wire_destroy (&reply);
    }
}
