/*  balancer.c — the load-balancer tier: service pools over one ROUTER.

    After the zguide's load-balancing broker with Paranoid Pirate
    heartbeats. Callers (the gateway, tests) and workers (read-api,
    write-api, ...) all connect DEALERs to the balancer's one bound ROUTER;
    the message kind tells them apart. A worker joins pool P by sending
    READY with service P and a capacity (requests it takes at once). A
    request for pool P goes to the least recently used worker of P that has
    spare capacity; otherwise it waits in P's bounded queue.

    Frames: caller -> balancer   [caller][request]
            balancer -> worker   [worker][caller][request]
            worker -> balancer   [worker][caller][reply]
            balancer -> caller   [caller][reply]

    The worker table is a state machine, one entry per worker identity.
    A window is heartbeat x liveness; any message from a worker (a reply
    as much as a heartbeat) proves it alive and sets expires = now + window.

        (unknown) --READY from an address the map places a worker at-->
                ACTIVE
        ACTIVE: credit = capacity - in-flight requests.
                ACTIVE and credit > 0  <=>  on its pool's ready list
                (LRU order: dispatch from the head, append at the tail).
        ACTIVE --now > expires--> SILENT: silent for a window. Off the
                ready list, so it gets no new requests, but it keeps those
                in flight, and is still heartbeated; expires = now + window.
        SILENT --any message--> ACTIVE: it was busy, not gone. Its
                requests are still its own; their replies go to their
                callers.
        ACTIVE or SILENT --BYE, or its connection gone (a send to it fails
                EHOSTUNREACH), or (SILENT) now > expires--> (removed): every
                request it still held is answered 502 "worker lost".
                Removed other than by BYE (or a READY for another pool),
                it is counted lost (tiers_balancer_workers_lost_total).
    pool->workers counts the ACTIVE workers (the live ones), pool->silent
    the SILENT ones; a pool with neither answers 503 at once, one with only
    SILENT workers queues (they may speak again).

    Silence is the balancer's judgement, so its own stalls do not count: a
    tick that comes late (the process paused, its core taken, one long
    message) adds its lateness to every window, since the workers' words
    were waiting unread meanwhile. The reactor runs the tick between the
    messages of a burst, so a busy balancer ticks on time.

    Requests, each answered exactly once:
        QUEUED    in its pool's queue (length <= `queue`; beyond it the
                  caller gets 503 at once);  --deadline--> answered 504
        INFLIGHT  held by one worker; --reply--> forwarded to the caller;
                  --deadline--> answered 504 and marked `answered`, so the
                  late reply is dropped (the worker's credit comes back
                  only when its reply arrives or it is removed);
                  --worker removed--> answered 502.
    Anything malformed is answered 400 when it has a return route, and
    counted.

    Until CURVE (the security rung) anybody who reaches the port can speak
    here, so a READY is taken only from an address the map places one of
    this balancer's workers at, where the balancer can tell (doc/security.md
    says what that set is, and what it does not close). Others get 403.
*/
#include "kind.h"
#include "map.h"
#include "node.h"
#include "wire.h"
#include "reactor.h"
#include "sock.h"
#include "log.h"
#include "metrics.h"
#include <ctype.h>
#include <arpa/inet.h>
#include <netdb.h>

#define BALANCER_POOLS_MAX  256     //  pools are made by READY; bounded
#define KEY_IDENTITY_MAX    32      //  libzmq's own identities are 5 bytes
#define REFUSAL_LOG_MS      1000    //  one line a second about refused READYs

typedef struct _pool_t pool_t;

typedef struct {
    zmsg_t *route;              //  frames back to the caller
    zframe_t *payload;          //  QUEUED: the encoded request, forwarded
                                //  as it came; INFLIGHT: NULL
    char rid [TIERS_WIRE_MAX_RID + 1];
    //  INFLIGHT: "CALLER:rid", the caller's identity in hex; the worker's
    //  `by_key` finds the item by it when the reply comes. Empty for an
    //  identity over KEY_IDENTITY_MAX bytes (found by a scan).
    char key [2 * KEY_IDENTITY_MAX + 1 + TIERS_WIRE_MAX_RID + 1];
    int64_t deadline;           //  wall-clock ms
    int64_t started;            //  monotonic us, for latency
    bool answered;              //  INFLIGHT and already answered 504
} item_t;

typedef enum { W_ACTIVE, W_SILENT } worker_state_t;

typedef struct {
    char key [2 * 255 + 1];     //  identity in hex (at most 255 bytes)
    zframe_t *identity;
    char name [TIERS_WIRE_MAX_RID + 1];
    pool_t *pool;
    worker_state_t state;
    int capacity, credit;
    int64_t expires;            //  monotonic ms: ACTIVE goes SILENT after
                                //  it, SILENT is removed after it
    const char *leaving;        //  why it is removed, in the tick's list
    zlistx_t *inflight;         //  item_t *, oldest first
    zhashx_t *by_key;           //  item key -> its handle in `inflight`
    void *ready_handle;         //  handle in pool->ready, or NULL
} worker_t;

struct _pool_t {
    char name [TIERS_WIRE_MAX_SERVICE + 1];
    zlistx_t *ready;            //  worker_t * with credit > 0, LRU first
    zlistx_t *queue;            //  item_t *, oldest first
    size_t workers;             //  ACTIVE workers
    size_t silent;              //  SILENT workers
    tiers_gauge_t *depth, *worker_gauge;
    tiers_counter_t *went_silent, *lost;
    tiers_histogram_t *latency;
    tiers_counter_t *answered [6];  //  by status class: 1xx .. 5xx, cached
    uint16_t answered_status [6];
};

//  Where the map places this balancer's workers: the addresses a READY
//  may come from (IPv4 as IPv4-mapped IPv6, ::ffff:a.b.c.d).
typedef struct {
    bool on;                    //  false: not checked, `why` says why
    struct in6_addr *addresses;
    size_t count;
    char why [512];
} guard_t;

typedef struct {
    char name [96];
    zsock_t *pipe;
    zsock_t *router;
    zhashx_t *pools;            //  name -> pool_t
    zhashx_t *workers;          //  key -> worker_t
    int heartbeat_ms, liveness;
    int64_t window;             //  heartbeat x liveness
    size_t queue_max;
    int64_t default_timeout_ms;
    int64_t heartbeat_at;
    int tick_ms;
    int64_t ticked_at;          //  the last tick, monotonic ms
    guard_t guard;
    int64_t refusal_log_at;     //  the next line about a refusal, not before
    size_t refusals_unlogged;   //  refused since the last line
    tiers_counter_t *malformed, *unroutable, *refused;
    zhashx_t *counters;         //  "pool|status" -> tiers_counter_t *
} balancer_t;

static void
s_item_destroy (item_t **item_p)
{
    item_t *item = *item_p;
    if (item) {
        zmsg_destroy (&item->route);
        zframe_destroy (&item->payload);
        free (item);
        *item_p = NULL;
    }
}

static tiers_counter_t *s_count (balancer_t *self, const char *pool, int status);
static void s_hex (zframe_t *frame, char *text);

//  An in-flight item's key: the caller's identity and the rid.
static void
s_item_key (item_t *item)
{
    zframe_t *caller = zmsg_first (item->route);
    item->key [0] = 0;
    if (zframe_size (caller) > KEY_IDENTITY_MAX)
        return;
    s_hex (caller, item->key);
    size_t length = strlen (item->key);
    snprintf (item->key + length, sizeof item->key - length, ":%s", item->rid);
}

//  A pool's answers, with the counter of the last status of each class
//  kept at hand (nearly every answer is a 200).
static void
s_count_pool (balancer_t *self, pool_t *pool, int status)
{
    int class = status >= 100 && status < 600 ? status / 100 : 0;
    if (pool->answered [class] && pool->answered_status [class] == status) {
        tiers_counter_add (pool->answered [class], 1);
        return;
    }
    pool->answered [class] = s_count (self, pool->name, status);
    pool->answered_status [class] = (uint16_t) status;
}

//  The registry's lookup takes a lock and a scan: keep the handles here.
//  Counts one answer and returns the counter.
//  Names and statuses come from the wire: a pool that does not exist is
//  counted as "(none)" and a status outside 100..599 as "other", so that a
//  stream of made-up names cannot grow the registry.
static tiers_counter_t *
s_count (balancer_t *self, const char *pool, int status)
{
    if (!zhashx_lookup (self->pools, pool))
        pool = "(none)";
    char code [8] = "other";
    if (status >= 100 && status <= 599)
        snprintf (code, sizeof code, "%d", status);
    char key [TIERS_WIRE_MAX_SERVICE + 16];
    snprintf (key, sizeof key, "%s|%s", pool, code);
    tiers_counter_t *counter = (tiers_counter_t *) zhashx_lookup (self->counters, key);
    if (!counter) {
        char value [2 * TIERS_WIRE_MAX_SERVICE + 1];
        char labels [sizeof value + 32];
        snprintf (labels, sizeof labels, "pool=\"%s\",status=\"%s\"",
                  tiers_metrics_label_value (value, sizeof value, pool), code);
        counter = tiers_metrics_counter ("tiers_balancer_requests_total",
            labels, "Requests answered by the balancer, by pool and status");
        zhashx_insert (self->counters, key, counter);
    }
    tiers_counter_add (counter, 1);
    return counter;
}

//  Forward an encoded message as it came: [route...][payload]. The route is
//  not consumed; the payload is (on success). Frames go out one by one,
//  the route's as copies, the payload as it is. Returns 0 or -1 (peer gone
//  or full).
static int
s_forward (balancer_t *self, zframe_t *first, zmsg_t *route, zframe_t **payload_p)
{
    void *handle = zsock_resolve (self->router);
    if (first && tiers_sock_send_frame (&first, handle, ZFRAME_MORE | ZFRAME_REUSE))
        return -1;
    for (zframe_t *frame = zmsg_first (route); frame; frame = zmsg_next (route))
        if (tiers_sock_send_frame (&frame, handle, ZFRAME_MORE | ZFRAME_REUSE))
            return -1;
    return tiers_sock_send_frame (payload_p, handle, 0);
}

//  An error (or timeout) status from the balancer itself, not counted.
static void
s_reply_error (balancer_t *self, zmsg_t *route, const char *rid, const char *pool,
               int status, const char *reason)
{
    tiers_wire_t *reply = tiers_wire_new (TIERS_WIRE_REPLY);
    tiers_wire_set_rid (reply, rid);
    tiers_wire_set_service (reply, pool);
    reply->status = (uint16_t) status;
    tiers_wire_set_header (reply, "error", reason, strlen (reason));
    if (status == 503)
        tiers_wire_set_header (reply, "retry-after", "1", 1);
    if (tiers_wire_send (reply, self->router, route))
        tiers_counter_add (self->unroutable, 1);
    tiers_wire_destroy (&reply);
}

//  Answer a caller with an error (or timeout) status, counted.
static void
s_answer (balancer_t *self, zmsg_t *route, const char *rid, const char *pool,
          int status, const char *reason)
{
    s_reply_error (self, route, rid, pool, status, reason);
    s_count (self, pool, status);
}

static pool_t *
s_pool (balancer_t *self, const char *name)
{
    pool_t *pool = (pool_t *) zhashx_lookup (self->pools, name);
    if (!pool) {
        pool = (pool_t *) zmalloc (sizeof *pool);
        assert (pool);
        snprintf (pool->name, sizeof pool->name, "%s", name);
        pool->ready = zlistx_new ();
        pool->queue = zlistx_new ();
        char value [2 * TIERS_WIRE_MAX_SERVICE + 1];
        char labels [sizeof value + 16];
        snprintf (labels, sizeof labels, "pool=\"%s\"",
                  tiers_metrics_label_value (value, sizeof value, name));
        pool->depth = tiers_metrics_gauge ("tiers_balancer_queue_depth", labels,
                                           "Requests waiting for a worker");
        pool->worker_gauge = tiers_metrics_gauge ("tiers_balancer_workers", labels,
                                                  "Live workers in the pool");
        pool->latency = tiers_metrics_histogram ("tiers_balancer_latency_seconds",
            labels, "Time from a request's arrival to its answer");
        pool->went_silent = tiers_metrics_counter (
            "tiers_balancer_workers_silent_total", labels, "Workers silent for "
            "heartbeat x liveness, taken off the pool until they speak again");
        pool->lost = tiers_metrics_counter ("tiers_balancer_workers_lost_total",
            labels, "Workers removed without a BYE (silent for two windows, or "
            "their connection gone); their requests in flight were answered 502");
        zhashx_insert (self->pools, name, pool);
    }
    return pool;
}

static void
s_pool_free (void **item)
{
    pool_t *pool = (pool_t *) *item;
    if (pool) {
        zlistx_destroy (&pool->ready);
        item_t *queued = (item_t *) zlistx_first (pool->queue);
        while (queued) {
            s_item_destroy (&queued);
            queued = (item_t *) zlistx_next (pool->queue);
        }
        zlistx_destroy (&pool->queue);
        free (pool);
        *item = NULL;
    }
}

static void s_worker_remove (balancer_t *self, worker_t *worker, const char *why,
                             bool lost);

//  Credit is what the capacity leaves beside the requests in flight (a
//  READY may have lowered the capacity below them). An ACTIVE worker with
//  credit is on its pool's ready list, and nobody else is.
static void
s_worker_credit (worker_t *worker)
{
    int inflight = (int) zlistx_size (worker->inflight);
    worker->credit = worker->capacity > inflight ? worker->capacity - inflight : 0;
    bool ready = worker->state == W_ACTIVE && worker->credit > 0;
    if (ready && !worker->ready_handle)
        worker->ready_handle = zlistx_add_end (worker->pool->ready, worker);
    else
    if (!ready && worker->ready_handle) {
        zlistx_delete (worker->pool->ready, worker->ready_handle);
        worker->ready_handle = NULL;
    }
}

//  The one place a worker already in the table changes state (see the
//  file head); joining and removal count in s_on_ready / s_worker_remove.
static void
s_worker_move (worker_t *worker, worker_state_t to)
{
    pool_t *pool = worker->pool;
    if (to == W_SILENT) {
        assert (worker->state == W_ACTIVE && pool->workers > 0);
        pool->workers--;
        pool->silent++;
    }
    else {
        assert (to == W_ACTIVE && worker->state == W_SILENT && pool->silent > 0);
        pool->silent--;
        pool->workers++;
    }
    worker->state = to;
    s_worker_credit (worker);
    tiers_gauge_set (pool->worker_gauge, (int64_t) pool->workers);
}

//  Any message from a worker proves it alive. Returns true when it was
//  SILENT and is ACTIVE again.
static bool
s_worker_heard (balancer_t *self, worker_t *worker)
{
    worker->expires = zclock_mono () + self->window;
    if (worker->state == W_ACTIVE)
        return false;
    s_worker_move (worker, W_ACTIVE);
    tiers_info ("worker %s of pool '%s' spoke again: it was busy, not gone "
                "(%zu requests in flight are still its own)", worker->name,
                worker->pool->name, zlistx_size (worker->inflight));
    return true;
}

//  Silent for a window: no new requests until it speaks again; what it
//  holds waits one more window.
static void
s_worker_silent (balancer_t *self, worker_t *worker, int64_t now)
{
    s_worker_move (worker, W_SILENT);
    worker->expires = now + self->window;
    tiers_counter_add (worker->pool->went_silent, 1);
    tiers_info ("worker %s of pool '%s' silent for a window (heartbeat x "
                "liveness, %lld ms): no new requests until it speaks; its %zu "
                "in flight wait one window more", worker->name, worker->pool->name,
                (long long) self->window, zlistx_size (worker->inflight));
}

//  Give one request to the worker (which has credit): it becomes INFLIGHT.
//  Returns -1 when nothing can be sent now (the request is queued again).
static int
s_dispatch (balancer_t *self, worker_t *worker, item_t *item)
{
    assert (worker->state == W_ACTIVE && worker->credit > 0);
    if (s_forward (self, worker->identity, item->route, &item->payload)) {
        //  The request goes back to the front of the queue, still whole.
        //  A worker that is gone (ROUTER_MANDATORY says so at once) leaves
        //  the pool before anything else is sent to it; a full socket
        //  (EAGAIN) only stops this round.
        int error = zmq_errno ();
        tiers_counter_add (self->unroutable, 1);
        pool_t *pool = worker->pool;
        zlistx_add_start (pool->queue, item);
        if (error != EHOSTUNREACH)
            return -1;
        s_worker_remove (self, worker, "unreachable", true);
        return 0;
    }
    worker->credit--;
    void *handle = zlistx_add_end (worker->inflight, item);
    s_item_key (item);
    if (*item->key)     //  a twin key stays out: its reply is found by the scan
        zhashx_insert (worker->by_key, item->key, handle);
    if (worker->credit == 0 && worker->ready_handle) {
        zlistx_delete (worker->pool->ready, worker->ready_handle);
        worker->ready_handle = NULL;
    }
    else
    if (worker->ready_handle)       //  LRU: the worker goes to the back
        zlistx_move_end (worker->pool->ready, worker->ready_handle);
    return 0;
}

//  Feed queued requests to ready workers.
static void
s_pump (balancer_t *self, pool_t *pool)
{
    while (zlistx_size (pool->queue) && zlistx_size (pool->ready)) {
        item_t *item = (item_t *) zlistx_first (pool->queue);
        zlistx_delete (pool->queue, zlistx_cursor (pool->queue));
        worker_t *worker = (worker_t *) zlistx_first (pool->ready);
        if (s_dispatch (self, worker, item))
            break;
    }
    tiers_gauge_set (pool->depth, (int64_t) zlistx_size (pool->queue));
}

//  Out of the table; `lost` when it went without a BYE (counted).
static void
s_worker_remove (balancer_t *self, worker_t *worker, const char *why, bool lost)
{
    pool_t *pool = worker->pool;
    tiers_info ("worker %s left pool '%s': %s", worker->name, pool->name, why);
    item_t *item = (item_t *) zlistx_first (worker->inflight);
    while (item) {
        if (!item->answered)
            s_answer (self, item->route, item->rid, pool->name, 502, "worker lost");
        s_item_destroy (&item);
        item = (item_t *) zlistx_next (worker->inflight);
    }
    zlistx_purge (worker->inflight);
    zhashx_purge (worker->by_key);
    if (worker->ready_handle)
        zlistx_delete (pool->ready, worker->ready_handle);
    if (worker->state == W_ACTIVE) {
        assert (pool->workers > 0);
        pool->workers--;
    }
    else {
        assert (pool->silent > 0);
        pool->silent--;
    }
    tiers_gauge_set (pool->worker_gauge, (int64_t) pool->workers);
    if (lost)
        tiers_counter_add (pool->lost, 1);
    zhashx_delete (self->workers, worker->key);
    //  A pool without workers cannot serve its queue: fail it now.
    if (pool->workers + pool->silent == 0) {
        item_t *queued;
        while ((queued = (item_t *) zlistx_first (pool->queue))) {
            zlistx_delete (pool->queue, zlistx_cursor (pool->queue));
            s_answer (self, queued->route, queued->rid, pool->name, 503,
                      "no workers in pool");
            s_item_destroy (&queued);
        }
        tiers_gauge_set (pool->depth, 0);
    }
}

static void
s_worker_free (void **item)
{
    worker_t *worker = (worker_t *) *item;
    if (worker) {
        item_t *inflight = (item_t *) zlistx_first (worker->inflight);
        while (inflight) {
            s_item_destroy (&inflight);
            inflight = (item_t *) zlistx_next (worker->inflight);
        }
        zlistx_destroy (&worker->inflight);
        zhashx_destroy (&worker->by_key);
        zframe_destroy (&worker->identity);
        free (worker);
        *item = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Where the map places workers (doc/security.md)
//
//  The set of addresses a READY may come from, made once at start from the
//  map: for every node that runs a worker of this balancer (an entry whose
//  links reach it and whose kind sends no requests to pools, as the
//  gateway's outlets do: the APIs, whose kinds name a `.pool`, and any kind
//  the map cannot tell from them), the hosts of every tcp://
//  endpoint that node's entries bind and of their concrete HTTP listeners,
//  names resolved; for the balancer's own node also the loopback addresses
//  (127.0.0.1, ::1), where its threads connect from. The check is off when
//  the balancer cannot tell (its port is not tcp://: libzmq gives no peer
//  address on inproc://, and no IP on ipc://) or the map cannot say (a
//  worker's node binds nothing on tcp://, or a host does not resolve).

static void
s_guard_add (guard_t *guard, const struct in6_addr *address)
{
    for (size_t i = 0; i < guard->count; i++)
        if (memcmp (&guard->addresses [i], address, sizeof *address) == 0)
            return;
    guard->addresses = (struct in6_addr *) realloc (guard->addresses,
                       (guard->count + 1) * sizeof *address);
    assert (guard->addresses);
    guard->addresses [guard->count++] = *address;
}

static void
s_guard_add_v4 (guard_t *guard, const struct in_addr *v4)
{
    struct in6_addr mapped;
    memset (&mapped, 0, sizeof mapped);
    mapped.s6_addr [10] = 0xff;
    mapped.s6_addr [11] = 0xff;
    memcpy (&mapped.s6_addr [12], v4, 4);
    s_guard_add (guard, &mapped);
}

//  An IP address as text (a zone after '%' ignored) into IPv6 form;
//  false for anything else.
static bool
s_guard_parse (const char *text, struct in6_addr *address)
{
    char copy [INET6_ADDRSTRLEN + 1];
    size_t length = strcspn (text, "%");
    if (length >= sizeof copy)
        return false;
    memcpy (copy, text, length);
    copy [length] = 0;
    if (inet_pton (AF_INET6, copy, address) == 1)
        return true;
    struct in_addr v4;
    if (inet_pton (AF_INET, copy, &v4) != 1)
        return false;
    memset (address, 0, sizeof *address);
    address->s6_addr [10] = 0xff;
    address->s6_addr [11] = 0xff;
    memcpy (&address->s6_addr [12], &v4, 4);
    return true;
}

//  A host of the map (an address, or a name to resolve). Returns 0 or -1.
static int
s_guard_add_host (guard_t *guard, const char *host)
{
    struct in6_addr address;
    if (s_guard_parse (host, &address)) {
        s_guard_add (guard, &address);
        return 0;
    }
    struct addrinfo hints, *found = NULL;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo (host, NULL, &hints, &found) || !found)
        return -1;
    for (struct addrinfo *one = found; one; one = one->ai_next)
        if (one->ai_family == AF_INET)
            s_guard_add_v4 (guard, &((struct sockaddr_in *) one->ai_addr)->sin_addr);
        else
        if (one->ai_family == AF_INET6)
            s_guard_add (guard, &((struct sockaddr_in6 *) one->ai_addr)->sin6_addr);
    freeaddrinfo (found);
    return 0;
}

//  The addresses of a node: the hosts its entries bind tcp:// endpoints
//  and HTTP listeners at. Returns how many hosts it has, or -1 when one
//  does not resolve (that one is left in `host`).
static int
s_guard_add_node (guard_t *guard, const tiers_map_t *map, const char *node,
                  char *host, size_t host_size)
{
    int hosts = 0;
    for (size_t i = 0; i < tiers_map_entry_count (map); i++) {
        const tiers_entry_t *entry = tiers_map_entry (map, i);
        if (!streq (entry->node, node))
            continue;
        int port;
        for (size_t p = 0; p < tiers_kind_port_count (entry->kind); p++) {
            const char *bind = entry->binds [p];
            if (!bind || !tiers_has_prefix (bind, "tcp://")
            ||  tiers_hostport_split (bind + 6, host, host_size, &port))
                continue;
            if (s_guard_add_host (guard, host))
                return -1;
            hosts++;
        }
        const char *key = entry->kind->listener;
        const char *listener = key ? tiers_entry_get (entry, key, NULL) : NULL;
        if (!listener || tiers_hostport_split (listener, host, host_size, &port)
        ||  tiers_host_is_wildcard (host))
            continue;
        if (s_guard_add_host (guard, host))
            return -1;
        hosts++;
    }
    return hosts;
}

//  Is `entry` a worker of the balancer `me`: does it link to it without
//  being a caller (a kind with outlets)?
static bool
s_worker_of (const tiers_entry_t *entry, const tiers_entry_t *me)
{
    if (entry->kind->outlets && !entry->kind->pool)
        return false;
    for (size_t l = 0; l < tiers_kind_link_count (entry->kind); l++)
        for (size_t t = 0; t < entry->target_count [l]; t++)
            if (entry->targets [l][t].entry == me)
                return true;
    return false;
}

static void
s_guard_init (guard_t *guard, const tiers_map_t *map, const tiers_entry_t *me)
{
    memset (guard, 0, sizeof *guard);
    if (!tiers_has_prefix (me->bind, "tcp://")) {
        snprintf (guard->why, sizeof guard->why, "its port is %.*s: libzmq tells "
                  "no peer's IP address there (only on tcp://)",
                  (int) strcspn (me->bind, ":") + 3, me->bind);
        return;
    }
    zlistx_t *nodes = zlistx_new ();        //  node names seen
    zlistx_set_comparator (nodes, (zlistx_comparator_fn *) strcmp);
    for (size_t i = 0; i < tiers_map_entry_count (map); i++) {
        const tiers_entry_t *entry = tiers_map_entry (map, i);
        if (!s_worker_of (entry, me)
        ||  zlistx_find (nodes, entry->node))
            continue;
        zlistx_add_end (nodes, entry->node);
        bool own = streq (entry->node, me->node);
        if (own) {
            struct in_addr loopback = { htonl (INADDR_LOOPBACK) };
            s_guard_add_v4 (guard, &loopback);
            s_guard_add (guard, &in6addr_loopback);
        }
        char host [256];
        int hosts = s_guard_add_node (guard, map, entry->node, host, sizeof host);
        if (hosts < 0)
            snprintf (guard->why, sizeof guard->why, "the address '%s' of node %s "
                      "(where %s '%s' runs) does not resolve", host,
                      entry->node, entry->kind->name, entry->name);
        else
        if (hosts == 0 && !own)
            snprintf (guard->why, sizeof guard->why, "node %s, where %s '%s' runs, "
                      "binds no tcp:// endpoint and no HTTP listener: the map does "
                      "not say at which address it is", entry->node,
                      entry->kind->name, entry->name);
        if (*guard->why)
            break;
    }
    zlistx_destroy (&nodes);
    guard->on = !*guard->why;
    if (!guard->on) {
        free (guard->addresses);
        guard->addresses = NULL;
        guard->count = 0;
    }
}

//  May a READY come from `peer` (libzmq's Peer-Address, or NULL)? With
//  the guard on (a tcp:// port) a peer whose address libzmq does not give
//  is refused: on tcp:// it always does.
static bool
s_guard_allows (const guard_t *guard, const char *peer)
{
    struct in6_addr address;
    if (!guard->on)
        return true;
    if (!peer || !s_guard_parse (peer, &address))
        return false;
    for (size_t i = 0; i < guard->count; i++)
        if (memcmp (&guard->addresses [i], &address, sizeof address) == 0)
            return true;
    return false;
}

//  The set for the start's log line: "127.0.0.1, ::1".
static char *
s_guard_text (const guard_t *guard)
{
    char *text = strdup ("");
    for (size_t i = 0; i < guard->count && text; i++) {
        char one [INET6_ADDRSTRLEN];
        const struct in6_addr *address = &guard->addresses [i];
        if (IN6_IS_ADDR_V4MAPPED (address))
            inet_ntop (AF_INET, &address->s6_addr [12], one, sizeof one);
        else
            inet_ntop (AF_INET6, address, one, sizeof one);
        char *more = zsys_sprintf ("%s%s%s", text, i ? ", " : "", one);
        free (text);
        text = more;
    }
    return text;
}

//  A READY from elsewhere: an error on the wire, a count, and a line (at
//  most one a second, saying how many it left out).
static void
s_refuse (balancer_t *self, zmsg_t *route, const tiers_wire_t *msg, const char *peer)
{
    tiers_counter_add (self->refused, 1);
    char reason [160];
    snprintf (reason, sizeof reason, "READY from %s, an address where the map "
              "places no worker of this balancer", peer);
    s_reply_error (self, route, msg->rid, msg->service, 403, reason);
    int64_t now = zclock_mono ();
    if (now < self->refusal_log_at) {
        self->refusals_unlogged++;
        return;
    }
    bool named = tiers_pool_name_ok (msg->service, TIERS_WIRE_MAX_SERVICE);
    char more [64] = "";
    if (self->refusals_unlogged)
        snprintf (more, sizeof more, " (and %zu more since the last line)",
                  self->refusals_unlogged);
    tiers_warn ("refused a READY for pool '%s' from %s: the map places no worker "
                "there%s", named ? msg->service : "?", peer, more);
    self->refusal_log_at = now + REFUSAL_LOG_MS;
    self->refusals_unlogged = 0;
}

//  --------------------------------------------------------------------------
//  Messages

static void
s_on_ready (balancer_t *self, zframe_t *identity, const char *key,
            tiers_wire_t *msg, zmsg_t *route, const char *peer)
{
    if (!s_guard_allows (&self->guard, peer)) {
        s_refuse (self, route, msg, peer);
        return;
    }
    if (!*msg->service) {
        s_answer (self, route, msg->rid, "", 400, "READY without a pool name");
        return;
    }
    if (!tiers_pool_name_ok (msg->service, TIERS_WIRE_MAX_SERVICE)) {
        s_answer (self, route, msg->rid, "", 400, "bad pool name: 1 to 32 "
                  "letters, digits, '_', '.', ':' or '-'");
        return;
    }
    const char *capacity = tiers_wire_header (msg, "capacity");
    long long credit = 1;
    if (capacity && (tiers_parse_int (capacity, &credit) || credit < 1 || credit > 10000)) {
        s_answer (self, route, msg->rid, msg->service, 400, "bad capacity");
        return;
    }
    worker_t *worker = (worker_t *) zhashx_lookup (self->workers, key);
    if (worker && streq (worker->pool->name, msg->service)) {
        //  READY again from the same worker for the same pool: a new
        //  capacity, nothing lost (its requests in flight stay its own).
        worker->capacity = (int) credit;
        s_worker_credit (worker);
        s_pump (self, worker->pool);
        return;
    }
    if (worker)
        s_worker_remove (self, worker, "joined another pool", false);
    if (!zhashx_lookup (self->pools, msg->service)
    &&  zhashx_size (self->pools) >= BALANCER_POOLS_MAX) {
        s_answer (self, route, msg->rid, msg->service, 503, "too many pools");
        return;
    }
    worker = (worker_t *) zmalloc (sizeof *worker);
    assert (worker);
    snprintf (worker->key, sizeof worker->key, "%s", key);
    snprintf (worker->name, sizeof worker->name, "%.*s", TIERS_WIRE_MAX_RID, *msg->rid ? msg->rid : key);
    worker->identity = zframe_dup (identity);
    worker->pool = s_pool (self, msg->service);
    worker->state = W_ACTIVE;               //  (unknown) -> ACTIVE
    worker->capacity = worker->credit = (int) credit;
    worker->expires = zclock_mono () + self->window;
    worker->inflight = zlistx_new ();
    worker->by_key = zhashx_new ();
    zhashx_insert (self->workers, key, worker);
    worker->ready_handle = zlistx_add_end (worker->pool->ready, worker);
    worker->pool->workers++;
    tiers_gauge_set (worker->pool->worker_gauge, (int64_t) worker->pool->workers);
    tiers_info ("worker %s joined pool '%s' (capacity %d)",
                worker->name, worker->pool->name, worker->capacity);
    s_pump (self, worker->pool);
}

static void
s_on_reply (balancer_t *self, worker_t *worker, tiers_wire_t *msg, zmsg_t *route,
            zframe_t **payload_p)
{
    //  route = [worker][caller...]; find the in-flight item for this reply:
    //  by its key, or (a caller that reused a rid while the first was in
    //  flight) by a scan.
    zframe_t *caller = zmsg_size (route) > 1 ? zmsg_next (route) : NULL;
    if (!caller)
        caller = zmsg_first (route);
    char key [sizeof ((item_t *) 0)->key] = "";
    if (zframe_size (caller) <= KEY_IDENTITY_MAX) {
        s_hex (caller, key);
        size_t length = strlen (key);
        snprintf (key + length, sizeof key - length, ":%s", msg->rid);
    }
    void *handle = *key ? zhashx_lookup (worker->by_key, key) : NULL;
    item_t *item = handle ? (item_t *) zlistx_handle_item (handle) : NULL;
    if (!item) {
        item_t *candidate = (item_t *) zlistx_first (worker->inflight);
        while (candidate && !(streq (candidate->rid, msg->rid)
                           && zframe_eq (zmsg_first (candidate->route), caller)))
            candidate = (item_t *) zlistx_next (worker->inflight);
        if (candidate) {
            item = candidate;
            handle = zlistx_cursor (worker->inflight);
        }
    }
    if (!item) {
        tiers_warn ("reply %s from %s matches no request; dropped",
                    msg->rid, worker->name);
        tiers_counter_add (self->malformed, 1);
        return;
    }
    if (*item->key && zhashx_lookup (worker->by_key, item->key) == handle)
        zhashx_delete (worker->by_key, item->key);
    zlistx_detach (worker->inflight, handle);
    if (!item->answered) {
        if (s_forward (self, NULL, item->route, payload_p))
            tiers_counter_add (self->unroutable, 1);
        s_count_pool (self, worker->pool, msg->status);
        tiers_histogram_observe (worker->pool->latency,
                                 (tiers_clock_us () - item->started) / 1e6);
    }
    s_item_destroy (&item);
    s_worker_credit (worker);
    s_pump (self, worker->pool);
}

static void
s_on_request (balancer_t *self, tiers_wire_t *msg, zmsg_t **route_p,
              zframe_t **payload_p)
{
    if (!*msg->service) {
        s_answer (self, *route_p, msg->rid, "", 400, "request without a service");
        return;
    }
    if (!tiers_pool_name_ok (msg->service, TIERS_WIRE_MAX_SERVICE)) {
        s_answer (self, *route_p, msg->rid, "", 400, "bad service name: 1 to 32 "
                  "letters, digits, '_', '.', ':' or '-'");
        return;
    }
    pool_t *pool = (pool_t *) zhashx_lookup (self->pools, msg->service);
    if (!pool || pool->workers + pool->silent == 0) {
        s_answer (self, *route_p, msg->rid, msg->service, 503, "no workers in pool");
        return;
    }
    int64_t now = tiers_wire_now ();
    if (msg->deadline == 0) {       //  give it ours; the worker must see it
        msg->deadline = now + self->default_timeout_ms;
        tiers_wire_set_deadline_at (zframe_data (*payload_p), zframe_size (*payload_p),
                                    msg->deadline);
    }
    if (msg->deadline <= now) {
        s_answer (self, *route_p, msg->rid, msg->service, 504, "deadline passed");
        return;
    }
    if (zlistx_size (pool->ready) == 0 && zlistx_size (pool->queue) >= self->queue_max) {
        s_answer (self, *route_p, msg->rid, msg->service, 503, "pool busy");
        return;
    }
    item_t *item = (item_t *) zmalloc (sizeof *item);
    assert (item);
    item->route = *route_p;
    *route_p = NULL;
    snprintf (item->rid, sizeof item->rid, "%s", msg->rid);
    item->deadline = msg->deadline;
    item->started = tiers_clock_us ();
    item->payload = *payload_p;
    *payload_p = NULL;
    zlistx_add_end (pool->queue, item);
    s_pump (self, pool);
}

static void
s_on_status (balancer_t *self, tiers_wire_t *msg, zmsg_t *route)
{
    //  {"pools":{"read":{"workers":2,"ready":1,"queued":0,"silent":0}}}
    char *json = strdup ("{\"pools\":{");
    bool first = true;
    for (pool_t *pool = (pool_t *) zhashx_first (self->pools); pool;
         pool = (pool_t *) zhashx_next (self->pools)) {
        char *more = zsys_sprintf ("%s%s\"%s\":{\"workers\":%zu,\"ready\":%zu,"
                                   "\"queued\":%zu,\"silent\":%zu}",
                                   json, first ? "" : ",", pool->name, pool->workers,
                                   zlistx_size (pool->ready), zlistx_size (pool->queue),
                                   pool->silent);
        free (json);
        json = more;
        first = false;
    }
    char *more = zsys_sprintf ("%s}}", json);
    free (json);
    tiers_wire_t *reply = tiers_wire_reply_to (msg, 200);
    reply->kind = TIERS_WIRE_REPLY;
    tiers_wire_set_body (reply, more, strlen (more));
    free (more);
    if (tiers_wire_send (reply, self->router, route))
        tiers_counter_add (self->unroutable, 1);
    tiers_wire_destroy (&reply);
}

//  The worker table's key: the identity in hex (what zframe_strhex gives,
//  without the allocation).
static void
s_hex (zframe_t *frame, char *text)
{
    static const char digits [] = "0123456789ABCDEF";
    const uint8_t *data = zframe_data (frame);
    size_t size = zframe_size (frame) < 255 ? zframe_size (frame) : 255;
    for (size_t i = 0; i < size; i++) {
        text [2 * i] = digits [data [i] >> 4];
        text [2 * i + 1] = digits [data [i] & 15];
    }
    text [2 * size] = 0;
}

//  Takes one message from the router without waiting; false when none
//  was there.
static bool
s_on_router (void *arg)
{
    balancer_t *self = (balancer_t *) arg;
    //  Decoded with the one codec, but the payload frame is kept: requests
    //  and replies are forwarded as they came, never encoded again.
    const char *error = NULL;
    void *handle = zsock_resolve (self->router);
    zmq_msg_t first;
    zmq_msg_init (&first);
    if (zmq_msg_recv (&first, handle, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&first);
        return false;
    }
    zmsg_t *route = zmsg_new ();
    bool more = zmq_msg_more (&first);
    zframe_t *frame = zframe_new (zmq_msg_data (&first), zmq_msg_size (&first));
    zmq_msg_close (&first);
    zmsg_append (route, &frame);
    while (more && (frame = zframe_recv (handle))) {
        more = zframe_more (frame);
        zmsg_append (route, &frame);
    }
    zframe_t *payload = zmsg_last (route);
    if (!payload || zmsg_size (route) < 2) {    //  interrupted, or no identity
        zmsg_destroy (&route);
        return true;
    }
    zmsg_remove (route, payload);
    //  Checked in full but not copied: the balancer reads only the fixed
    //  fields. READY (capacity header) and STATUS (answered) are decoded.
    tiers_wire_t view, *full = NULL;
    error = tiers_wire_peek (zframe_data (payload), zframe_size (payload), &view);
    tiers_wire_t *msg = error ? NULL : &view;
    if (msg && (msg->kind == TIERS_WIRE_READY || msg->kind == TIERS_WIRE_STATUS))
        msg = full = tiers_wire_decode (zframe_data (payload), zframe_size (payload),
                                        &error);
    zframe_t *identity = zmsg_first (route);
    char key [2 * 255 + 1];         //  identities are at most 255 bytes
    s_hex (identity, key);
    worker_t *worker = (worker_t *) zhashx_lookup (self->workers, key);
    bool revived = worker && s_worker_heard (self, worker);

    if (!msg) {
        tiers_counter_add (self->malformed, 1);
        tiers_warn ("malformed message from %s: %s", key, error ? error : "?");
        //  Answer the sender (not any route it claims) so it learns why.
        zmsg_t *back = zmsg_new ();
        zmsg_append (back, &(zframe_t *) { zframe_dup (identity) });
        char reason [128];
        snprintf (reason, sizeof reason, "malformed message: %s", error ? error : "?");
        s_answer (self, back, "", "", 400, reason);
        zmsg_destroy (&back);
    }
    else
    switch (msg->kind) {
        case TIERS_WIRE_REQUEST:
            if (zmsg_size (route) != 1)
                s_answer (self, route, msg->rid, msg->service, 400,
                          "request with an envelope");
            else
                s_on_request (self, msg, &route, &payload);
            break;
        case TIERS_WIRE_READY:
            //  The peer's address, for the guard: only a READY asks.
            s_on_ready (self, identity, key, msg, route,
                        self->guard.on ? zframe_meta (payload, "Peer-Address") : NULL);
            break;
        case TIERS_WIRE_HEARTBEAT:
            if (revived)            //  expiry already refreshed
                s_pump (self, worker->pool);
            break;
        case TIERS_WIRE_REPLY:
            if (worker)
                s_on_reply (self, worker, msg, route, &payload);
            else {
                tiers_counter_add (self->malformed, 1);
                tiers_warn ("reply from unknown worker %s dropped", key);
            }
            break;
        case TIERS_WIRE_BYE:
            if (worker)
                s_worker_remove (self, worker, "said bye", false);
            break;
        case TIERS_WIRE_STATUS:
            s_on_status (self, msg, route);
            break;
        default:
            s_answer (self, route, msg->rid, msg->service, 400, "unexpected kind");
            break;
    }
    tiers_wire_destroy (&full);
    zmsg_destroy (&route);
    zframe_destroy (&payload);
    return true;
}

//  Heartbeats out, silent workers judged, late requests answered. Runs
//  every tick_ms, also between the messages of a burst (the reactor's
//  timers do), so the balancer's heartbeats never wait behind its work.
static void
s_tick (void *arg)
{
    balancer_t *self = (balancer_t *) arg;
    int64_t mono = zclock_mono ();
    int64_t now = tiers_wire_now ();
    bool beat = mono >= self->heartbeat_at;
    if (beat)
        self->heartbeat_at = mono + self->heartbeat_ms;
    //  However late this tick is, the balancer was not reading meanwhile:
    //  what its workers said then waits unread, so it is not their silence.
    int64_t late = mono - self->ticked_at - self->tick_ms;
    self->ticked_at = mono;

    zlistx_t *leaving = zlistx_new ();
    for (worker_t *worker = (worker_t *) zhashx_first (self->workers); worker;
         worker = (worker_t *) zhashx_next (self->workers)) {
        if (late > 0)
            worker->expires += late;
        if (mono > worker->expires) {
            if (worker->state == W_ACTIVE)
                s_worker_silent (self, worker, mono);
            else {
                worker->leaving = "silent for two windows";
                zlistx_add_end (leaving, worker);
                continue;
            }
        }
        //  SILENT ones too: one that is only busy hears us and stays.
        if (beat) {
            tiers_wire_t *heartbeat = tiers_wire_new (TIERS_WIRE_HEARTBEAT);
            zmsg_t *envelope = zmsg_new ();
            zmsg_append (envelope, &(zframe_t *) { zframe_dup (worker->identity) });
            int rc = tiers_wire_send (heartbeat, self->router, envelope);
            int error = zmq_errno ();
            zmsg_destroy (&envelope);
            tiers_wire_destroy (&heartbeat);
            if (rc) {
                tiers_counter_add (self->unroutable, 1);
                if (error == EHOSTUNREACH) {        //  its connection is gone
                    worker->leaving = "unreachable";
                    zlistx_add_end (leaving, worker);
                    continue;
                }
            }
        }
        for (item_t *item = (item_t *) zlistx_first (worker->inflight); item;
             item = (item_t *) zlistx_next (worker->inflight))
            if (!item->answered && item->deadline <= now) {
                s_answer (self, item->route, item->rid, worker->pool->name, 504,
                          "deadline passed");
                item->answered = true;
            }
    }
    for (worker_t *worker = (worker_t *) zlistx_first (leaving); worker;
         worker = (worker_t *) zlistx_next (leaving))
        s_worker_remove (self, worker, worker->leaving, true);
    zlistx_destroy (&leaving);

    for (pool_t *pool = (pool_t *) zhashx_first (self->pools); pool;
         pool = (pool_t *) zhashx_next (self->pools)) {
        item_t *item = (item_t *) zlistx_first (pool->queue);
        while (item) {
            if (item->deadline <= now) {
                zlistx_detach_cur (pool->queue);
                s_answer (self, item->route, item->rid, pool->name, 504,
                          "deadline passed while queued");
                s_item_destroy (&item);
            }
            item = (item_t *) zlistx_next (pool->queue);
        }
        tiers_gauge_set (pool->depth, (int64_t) zlistx_size (pool->queue));
    }
}

static void
s_balancer_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    tiers_log_set_actor (args->name);
    balancer_t self_, *self = &self_;
    memset (self, 0, sizeof *self);
    snprintf (self->name, sizeof self->name, "%s", args->name);
    self->pipe = pipe;
    long long heartbeat = tiers_map_cluster_number (args->map, "heartbeat");
    self->heartbeat_ms = (int) tiers_entry_int (args->entry, "heartbeat", heartbeat);
    self->liveness = (int) tiers_entry_int (args->entry, "liveness", 3);
    self->window = (int64_t) self->heartbeat_ms * self->liveness;
    self->queue_max = (size_t) tiers_entry_int (args->entry, "queue", 100);
    self->default_timeout_ms = tiers_entry_int (args->entry, "timeout", 5000);

    char *why = NULL;
    self->router = tiers_port_bind (args->entry, "requests", &why);
    if (!self->router) {
        tiers_actor_failed (pipe, "%s", why);
        free (why);
        return;
    }
    self->pools = zhashx_new ();
    zhashx_set_destructor (self->pools, s_pool_free);
    self->counters = zhashx_new ();
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, s_worker_free);
    self->malformed = tiers_metrics_counter ("tiers_balancer_malformed_total", NULL,
        "Malformed or unmatched messages the balancer dropped or refused");
    self->unroutable = tiers_metrics_counter ("tiers_balancer_unroutable_total", NULL,
        "Messages the balancer could not deliver (peer gone or full)");
    self->refused = tiers_metrics_counter ("tiers_balancer_refused_total", NULL,
        "READY messages refused: from an address where the map places no worker");
    self->heartbeat_at = zclock_mono () + self->heartbeat_ms;
    tiers_info ("listening on %s (heartbeat %d ms x %d, queue %zu)",
                args->entry->bind, self->heartbeat_ms, self->liveness, self->queue_max);
    s_guard_init (&self->guard, args->map, args->entry);
    if (self->guard.on) {
        char *text = s_guard_text (&self->guard);
        tiers_info ("READY is taken only from where the map places its workers: %s",
                    text && *text ? text : "nowhere (the map places none)");
        free (text);
    }
    else
        tiers_info ("READY is not checked by address: %s", self->guard.why);
    tiers_actor_ready (pipe);

    //  The reactor runs the tick between the messages of a burst, too.
    self->tick_ms = self->heartbeat_ms < 50 ? self->heartbeat_ms : 50;
    self->ticked_at = zclock_mono ();
    tiers_reactor_t *reactor = tiers_reactor_new (pipe);
    tiers_reactor_reader (reactor, self->router, 0, s_on_router, self);
    tiers_reactor_timer (reactor, self->tick_ms, s_tick, self);
    tiers_reactor_run (reactor);
    tiers_reactor_destroy (&reactor);
    //  Shutting down: whoever still waits gets an answer, not silence.
    for (pool_t *pool = (pool_t *) zhashx_first (self->pools); pool;
         pool = (pool_t *) zhashx_next (self->pools)) {
        item_t *item;
        while ((item = (item_t *) zlistx_first (pool->queue))) {
            zlistx_delete (pool->queue, zlistx_cursor (pool->queue));
            s_answer (self, item->route, item->rid, pool->name, 503, "shutting down");
            s_item_destroy (&item);
        }
    }
    //  Requests in flight get an answer too: their worker's may never come.
    for (worker_t *worker = (worker_t *) zhashx_first (self->workers); worker;
         worker = (worker_t *) zhashx_next (self->workers))
        for (item_t *item = (item_t *) zlistx_first (worker->inflight); item;
             item = (item_t *) zlistx_next (worker->inflight))
            if (!item->answered) {
                s_answer (self, item->route, item->rid, worker->pool->name, 503,
                          "shutting down");
                item->answered = true;
            }
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->pools);
    zhashx_destroy (&self->counters);
    free (self->guard.addresses);
    //  Let those answers leave (on tcp:// they may still be queued), briefly.
    tiers_sock_flush (self->router, 500);
    zsock_destroy (&self->router);
}

static const tiers_key_t s_keys [] = {
    { "heartbeat", TIERS_KEY_MS,  false, 10, 60000, NULL },
    { "liveness",  TIERS_KEY_INT, false, 1, 100, NULL },
    { "queue",     TIERS_KEY_INT, false, 0, 1000000, NULL },
    { "timeout",   TIERS_KEY_MS,  false, 1, 3600000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static const tiers_port_t s_ports [] = {
    { "requests", ZMQ_ROUTER, "callers' requests and workers' replies, READY, "
                              "HEARTBEAT, BYE (doc/protocol.md)", true },
    { NULL, 0, NULL, false }
};

const tiers_kind_t tiers_balancer_kind = {
    .name = "balancer",
    .summary = "spreads requests over service pools (LRU, heartbeats, bounded queues)",
    .rank = TIERS_RANK_ROUTING,
    .run = s_balancer_actor,
    .keys = s_keys,
    .ports = s_ports,
    .multi = false,
    .listener = NULL
};
