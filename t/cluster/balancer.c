/*  balancer.c — cluster tests of the balancer with real test workers.

    The same topology runs twice: (1) one node, every endpoint inproc://,
    in this process; (2) three nodes on tcp:// loopback, each a separate
    process started as `balancer.t run -m MAP -n NODE` (this program is also
    a tiers launcher with the test-only "echo" kind registered).

    echo: a worker of a balancer pool that answers every request with its
    body after `delay`, naming itself in the "worker" header. It keeps
    `capacity` requests at once and never sleeps, so $TERM is prompt; but
    on the command "STALL <ms>" its thread blocks that long (a worker busy
    with one long piece of work: it neither reads, nor beats, nor answers).
*/
#include "../tap.h"
#include "harness.h"
#include "cli.h"
#include "kind.h"
#include "map.h"
#include "node.h"
#include "service.h"
#include "log.h"
#include "metrics.h"
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

typedef struct {
    int64_t due;
    zmsg_t *route;
    tiers_wire_t *reply;
} pending_t;

static void
s_echo_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    tiers_log_set_actor (args->name);
    tiers_service_config_t config = {
        .endpoint = args->entry->connect,
        .entry = args->entry,               //  its node's keys, with CURVE
        .pool = tiers_entry_get (args->entry, "pool", "echo"),
        .name = args->name,
        .capacity = (int) tiers_entry_int (args->entry, "capacity", 1),
        .heartbeat_ms = (int) tiers_entry_int (args->entry, "heartbeat", 100),
        .liveness = 5
    };
    int64_t delay = tiers_entry_int (args->entry, "delay", 0);
    tiers_service_t *service = tiers_service_new (&config);
    zlistx_t *pending = zlistx_new ();
    tiers_actor_ready (pipe);
    bool frozen = false;
    while (true) {
        int timeout = tiers_service_tick (service);
        pending_t *first = (pending_t *) zlistx_first (pending);
        if (first) {
            int64_t left = first->due - zclock_mono ();
            if (left < timeout)
                timeout = left > 0 ? (int) left : 0;
        }
        zsock_t *sock = tiers_service_sock (service);
        zmq_pollitem_t items [2] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { sock ? zsock_resolve (sock) : NULL, 0, ZMQ_POLLIN, 0 }
        };
        if (zmq_poll (items, sock ? 2 : 1, timeout) < 0 && errno != EINTR)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            bool stop = !command || streq (command, "$TERM");
            if (command && streq (command, "FREEZE")) {
                tiers_service_freeze (service);
                frozen = true;
            }
            if (command && strncmp (command, "STALL ", 6) == 0)
                zclock_sleep (atoi (command + 6));
            zstr_free (&command);
            if (stop)
                break;
        }
        if (sock && (items [1].revents & ZMQ_POLLIN)) {
            pending_t *item = (pending_t *) zmalloc (sizeof *item);
            tiers_wire_t *request = tiers_service_recv (service, &item->route);
            if (request) {
                item->reply = tiers_wire_reply_to (request, 200);
                tiers_wire_set_body (item->reply, request->body, request->body_size);
                tiers_wire_set_header (item->reply, "worker", args->name,
                                       strlen (args->name));
                item->due = zclock_mono () + delay;
                zlistx_add_end (pending, item);
                tiers_wire_destroy (&request);
            }
            else
                free (item);
        }
        while ((first = (pending_t *) zlistx_first (pending))
               && first->due <= zclock_mono ()) {
            zlistx_delete (pending, zlistx_cursor (pending));
            if (!frozen)
                tiers_service_reply (service, &first->route, first->reply);
            zmsg_destroy (&first->route);
            tiers_wire_destroy (&first->reply);
            free (first);
        }
    }
    pending_t *item;
    while ((item = (pending_t *) zlistx_first (pending))) {
        zlistx_delete (pending, zlistx_cursor (pending));
        zmsg_destroy (&item->route);
        tiers_wire_destroy (&item->reply);
        free (item);
    }
    zlistx_destroy (&pending);
    tiers_service_destroy (&service);
}

static const tiers_key_t s_echo_keys [] = {
    { "pool",      TIERS_KEY_STRING, false, 0, TIERS_WIRE_MAX_SERVICE, NULL },
    { "delay",     TIERS_KEY_MS,     false, 0, 60000, NULL },
    { "capacity",  TIERS_KEY_INT,    false, 1, 1000, NULL },
    { "heartbeat", TIERS_KEY_MS,     false, 10, 60000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static const tiers_link_t s_links [] = {
    TIERS_LINK_BALANCER,
    { NULL, NULL, NULL, 0, false, false }
};

static const tiers_kind_t s_echo_kind = {
    .name = "echo", .summary = "test worker: answers with the request body",
    .rank = TIERS_RANK_SERVICE, .run = s_echo_actor, .keys = s_echo_keys,
    .links = s_links, .multi = true, .pool = "echo", .listener = NULL
};

//  --------------------------------------------------------------------------
//  The map, in its two placements.

static char s_security [600];         //  the split map's: CURVE and its keys
static char s_keys [512];

static char *
s_map_text (bool split, const char *lb, const char *lb2)
{
    return zsys_sprintf (
        "cluster\n"
        "    name = balancer-test\n"
        "    log = warn\n"
        "%s"
        "node = %s\n"
        "    balancer = lb\n"
        "        bind = %s\n"
        "        heartbeat = 100ms\n"
        "        liveness = 10\n"
        "        timeout = 10s\n"
        "    balancer = lb2\n"
        "        bind = %s\n"
        "        heartbeat = 100ms\n"
        "        liveness = 10\n"
        "        queue = 2\n"
        "%s"
        "    echo = fast\n"
        "        connect = lb\n"
        "        instances = 2\n"
        "        delay = 20ms\n"
        "    echo = slow\n"
        "        connect = lb2\n"
        "        pool = slow\n"
        "        delay = 600ms\n"
        "%s"
        "    echo = far\n"
        "        connect = lb\n"
        "        delay = 1500ms\n",
        split ? s_security : "", split ? "lb" : "box", lb, lb2,
        split ? "node = w1\n" : "", split ? "node = w2\n" : "");
}

typedef struct {
    bool split;
    const char *label;
    const char *self_path;
    char *map_path;
    pid_t pids [3];             //  split: lb, w1, w2
    char *logs [3];
    tiers_map_t *map;           //  one process
    tiers_node_t *node;
    char lb [64], lb2 [64];
} cluster_t;

static const char *s_nodes [3] = { "lb", "w1", "w2" };

//  A DEALER of the test to lb or lb2. Split, the map has CURVE, so it
//  knocks as a node the map lets in: w2 (worker far) reaches lb, w1
//  (worker slow) reaches lb2.
static zsock_t *
s_dealer (cluster_t *c, const char *endpoint)
{
    if (!c->split)
        return zsock_new_dealer (endpoint);
    return h_dealer_as (endpoint, s_keys, streq (endpoint, c->lb) ? "w2" : "w1", "lb");
}

static int
s_start_node (cluster_t *c, int i)
{
    char *argv [] = { (char *) c->self_path, (char *) "run", (char *) "-m", c->map_path,
                      (char *) "-n", (char *) s_nodes [i], NULL };
    c->pids [i] = h_spawn (argv, c->logs [i]);
    return h_wait_for_line (c->logs [i], "; ready", 30000);    //  as lib.sh (sanitizers)
}

static int
s_cluster_start (cluster_t *c)
{
    char *text;
    if (c->split) {
        snprintf (c->lb, sizeof c->lb, "tcp://127.0.0.1:%d", h_free_port ());
        snprintf (c->lb2, sizeof c->lb2, "tcp://127.0.0.1:%d", h_free_port ());
        snprintf (s_keys, sizeof s_keys, "%s/keys", h_tmpdir ());
        snprintf (s_security, sizeof s_security, "    security = curve\n    keys = %s\n",
                  s_keys);
        text = s_map_text (true, c->lb, c->lb2);
        c->map_path = h_write_file ("split.map", text);
        free (text);
        if (h_make_keys (c->map_path))
            return -1;
        for (int i = 0; i < 3; i++) {
            c->logs [i] = zsys_sprintf ("%s/%s.log", h_tmpdir (), s_nodes [i]);
            if (s_start_node (c, i))
                return -1;
        }
        return 0;
    }
    snprintf (c->lb, sizeof c->lb, "inproc://lb");
    snprintf (c->lb2, sizeof c->lb2, "inproc://lb2");
    text = s_map_text (false, c->lb, c->lb2);
    char *errors = NULL;
    c->map = tiers_map_parse (text, "box.map", &errors);
    free (text);
    if (!c->map) {
        diag ("%s", errors);
        free (errors);
        return -1;
    }
    c->node = tiers_node_new (c->map, NULL);
    return tiers_node_start (c->node);
}

static void
s_cluster_stop (cluster_t *c)
{
    tiers_node_destroy (&c->node);
    tiers_map_destroy (&c->map);
    for (int i = 0; i < 3; i++) {
        if (c->pids [i] > 0)
            ok (h_stop (c->pids [i], SIGTERM, 3000) == 0,
                "%s: node %s exits 0 on SIGTERM", c->label, s_nodes [i]);
        free (c->logs [i]);
    }
    free (c->map_path);
}

//  Simulate the death of the worker "far": kill -9 its process, or freeze
//  its thread (it stops answering and heartbeating, like a hung process).
static void
s_kill_far (cluster_t *c)
{
    if (c->split) {
        ok (h_stop (c->pids [2], SIGKILL, 3000) == 128 + SIGKILL,
            "%s: kill -9 the node holding worker far", c->label);
        c->pids [2] = 0;
    }
    else
        ok (zstr_send (tiers_node_actor (c->node, "far"), "FREEZE") == 0,
            "%s: freeze worker far", c->label);
}

//  Stall the worker "far" for `ms`: block its thread, or stop its process;
//  meanwhile a second caller (`watch`, on lb: no other answers to drop)
//  sees it go silent.
static void
s_stall_far (cluster_t *c, int ms)
{
    zsock_t *watch = s_dealer (c, c->lb);
    zsock_set_linger (watch, 0);
    int64_t until = zclock_mono () + ms;
    if (c->split)
        ok (kill (c->pids [2], SIGSTOP) == 0, "%s: SIGSTOP the node of worker far",
            c->label);
    else
        ok (zstr_sendf (tiers_node_actor (c->node, "far"), "STALL %d", ms) == 0,
            "%s: stall worker far for %d ms", c->label, ms);
    bool silent = false;
    while (zclock_mono () < until - 50 && !silent) {
        char *json = h_status (watch);
        silent = json && strstr (json, "\"echo\":{\"workers\":2,")
                      && strstr (json, "\"silent\":1}");
        free (json);
        if (!silent)
            zclock_sleep (20);
    }
    ok (silent, "%s: silent past its window, it leaves the pool for now "
        "(\"workers\":2, \"silent\":1)", c->label);
    int64_t left = until - zclock_mono ();
    if (left > 0)
        zclock_sleep ((int) left);
    if (c->split)
        ok (kill (c->pids [2], SIGCONT) == 0, "%s: SIGCONT", c->label);
    zsock_destroy (&watch);
}

static int
s_count_status (tiers_wire_t **replies, int count, int status)
{
    int n = 0;
    for (int i = 0; i < count; i++)
        if (replies [i]->status == status)
            n++;
    return n;
}

static void
s_free_replies (tiers_wire_t **replies, int count)
{
    for (int i = 0; i < count; i++)
        tiers_wire_destroy (&replies [i]);
}

//  A raw worker: a DEALER the test drives by hand.
static void
s_raw_send (zsock_t *raw, int kind, const char *pool, const char *name, int capacity)
{
    tiers_wire_t *msg = tiers_wire_new (kind);
    tiers_wire_set_service (msg, pool);
    tiers_wire_set_rid (msg, name);
    if (kind == TIERS_WIRE_READY)
        tiers_wire_set_headerf (msg, "capacity", "%d", capacity);
    tiers_wire_send (msg, zsock_resolve (raw), NULL);
    tiers_wire_destroy (&msg);
}

//  The next request the raw worker gets (heartbeats skipped), or NULL.
static tiers_wire_t *
s_raw_recv (zsock_t *raw, zmsg_t **route, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        zmq_pollitem_t item = { zsock_resolve (raw), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 20) <= 0)
            continue;
        tiers_wire_t *msg = tiers_wire_recv (raw, route, NULL);
        if (msg && msg->kind == TIERS_WIRE_REQUEST)
            return msg;
        tiers_wire_destroy (&msg);
        zmsg_destroy (route);
    }
    return NULL;
}

static void
s_scenarios (cluster_t *c)
{
    const char *L = c->label;
    zsock_t *client = s_dealer (c, c->lb);
    zsock_t *client2 = s_dealer (c, c->lb2);
    zsock_set_linger (client, 0);
    zsock_set_linger (client2, 0);
    ok (h_wait_workers (client, "echo", 3, 10000) == 0, "%s: 3 echo workers joined", L);
    ok (h_wait_workers (client2, "slow", 1, 10000) == 0, "%s: 1 slow worker joined", L);

    //  1. Requests spread over every worker of the pool.
    tiers_wire_t *replies [64];
    for (int i = 0; i < 30; i++) {
        char body [32];
        snprintf (body, sizeof body, "hello %d", i);
        tiers_wire_t *request = h_request ("echo", body, 0);
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    int got = h_collect (client, replies, 30, 10000);
    is_int (got, 30, "%s: all 30 requests answered", L);
    is_int (s_count_status (replies, got, 200), 30, "%s: all 200", L);
    zhashx_t *workers = zhashx_new ();
    bool bodies_ok = true;
    for (int i = 0; i < got; i++) {
        const char *worker = tiers_wire_header (replies [i], "worker");
        if (worker)
            zhashx_update (workers, worker, (void *) "x");
        if (strncmp ((char *) replies [i]->body, "hello ", 6))
            bodies_ok = false;
    }
    is_int ((long long) zhashx_size (workers), 3, "%s: served by 3 distinct workers", L);
    ok (bodies_ok, "%s: every reply carries its request's body", L);
    zhashx_destroy (&workers);
    s_free_replies (replies, got);

    //  2. A saturated pool answers busy at once: 1 in flight, 2 queued.
    int64_t start = zclock_mono ();
    for (int i = 0; i < 6; i++) {
        tiers_wire_t *request = h_request ("slow", "x", 0);
        tiers_wire_send (request, zsock_resolve (client2), NULL);
        tiers_wire_destroy (&request);
    }
    got = h_collect (client2, replies, 3, 2000);
    int64_t elapsed = zclock_mono () - start;
    is_int (got, 3, "%s: three answers arrive first", L);
    is_int (s_count_status (replies, got, 503), 3, "%s: they are 503 busy", L);
    ok (elapsed < 500, "%s: busy answers came at once (%lld ms)", L, (long long) elapsed);
    ok (got > 0 && tiers_wire_header (replies [0], "retry-after") != NULL,
        "%s: busy carries retry-after", L);
    s_free_replies (replies, got);
    got = h_collect (client2, replies, 3, 5000);
    is_int (s_count_status (replies, got, 200), 3,
            "%s: the in-flight and queued requests are served", L);
    s_free_replies (replies, got);

    //  3. A request past its deadline is answered with a timeout.
    start = zclock_mono ();
    tiers_wire_t *request = h_request ("slow", "late", 200);
    tiers_wire_t *reply = tiers_call (client2, request, 3000);
    elapsed = zclock_mono () - start;
    ok (reply && reply->status == 504, "%s: 504 when the deadline passes", L);
    ok (elapsed >= 150 && elapsed < 1000, "%s: timed out near its deadline (%lld ms)",
        L, (long long) elapsed);
    tiers_wire_destroy (&request);
    tiers_wire_destroy (&reply);
    //  The worker's late reply is dropped; the next request is served.
    request = h_request ("slow", "after", 0);
    reply = tiers_call (client2, request, 3000);
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "after"),
        "%s: the pool serves again after a timeout", L);
    tiers_wire_destroy (&request);
    tiers_wire_destroy (&reply);
    //  A request whose deadline already passed never reaches a worker.
    request = h_request ("slow", "dead", 0);
    request->deadline = tiers_wire_now () - 1;
    reply = tiers_call (client2, request, 1000);
    ok (reply && reply->status == 504, "%s: an expired request is refused with 504", L);
    tiers_wire_destroy (&request);
    tiers_wire_destroy (&reply);

    //  4. Malformed input gets an error reply; the balancer keeps serving.
    zstr_send (client, "this is not a tiers message");
    got = h_collect (client, replies, 1, 2000);
    ok (got == 1 && replies [0]->status == 400
        && tiers_wire_header (replies [0], "error")
        && strstr (tiers_wire_header (replies [0], "error"), "malformed"),
        "%s: garbage frame answered 400 malformed", L);
    s_free_replies (replies, got);
    uint8_t truncated [12] = { 'T', 1, 1, 0, 0, 200 };
    zsock_send (client, "b", truncated, sizeof truncated);
    got = h_collect (client, replies, 1, 2000);
    ok (got == 1 && replies [0]->status == 400, "%s: truncated message answered 400", L);
    s_free_replies (replies, got);
    request = h_request ("", "no service", 0);
    reply = tiers_call (client, request, 2000);
    ok (reply && reply->status == 400, "%s: request without service answered 400", L);
    tiers_wire_destroy (&request);
    tiers_wire_destroy (&reply);
    request = h_request ("nosuchpool", "x", 0);
    reply = tiers_call (client, request, 2000);
    ok (reply && reply->status == 503, "%s: unknown pool answered 503", L);
    tiers_wire_destroy (&request);
    tiers_wire_destroy (&reply);

    //  4b. Names from the wire: a service or pool name that could not be
    //      a label or a JSON key is refused; made-up pool names do not grow
    //      the metrics (one "(none)" series).
    request = h_request ("a\"b", "x", 0);
    reply = tiers_call (client, request, 2000);
    ok (reply && reply->status == 400, "%s: a service name with a quote: 400", L);
    tiers_wire_destroy (&request);
    tiers_wire_destroy (&reply);
    zsock_t *raw = s_dealer (c, c->lb);
    zsock_set_linger (raw, 0);
    s_raw_send (raw, TIERS_WIRE_READY, "x\\\"y", "rawbad", 1);
    zmq_pollitem_t raw_item = { zsock_resolve (raw), 0, ZMQ_POLLIN, 0 };
    reply = zmq_poll (&raw_item, 1, 2000) > 0 ? tiers_wire_recv (raw, NULL, NULL) : NULL;
    ok (reply && reply->status == 400, "%s: READY with such a pool name: 400", L);
    tiers_wire_destroy (&reply);
    zsock_destroy (&raw);
    int refused = 0;
    for (int i = 0; i < 30; i++) {
        char pool [32];
        snprintf (pool, sizeof pool, "nopool-%d", i);
        request = h_request (pool, "x", 0);
        reply = tiers_call (client, request, 2000);
        refused += reply && reply->status == 503;
        tiers_wire_destroy (&request);
        tiers_wire_destroy (&reply);
    }
    is_int (refused, 30, "%s: 30 made-up pools: 503 each", L);
    if (!c->split) {
        char *text = tiers_metrics_render ();
        ok (text && !strstr (text, "nopool-") && strstr (text, "pool=\"(none)\",status=\"503\""),
            "%s: counted under pool=\"(none)\", not one series each", L);
        free (text);
    }
    ok (h_wait_workers (client, "echo", 3, 3000) == 0, "%s: the balancer serves on", L);

    //  4c. A worker busy past its window (1 s) but alive: it goes silent
    //      (off the pool: "silent":1), keeps its request, and when it
    //      speaks again its reply reaches the caller: 200, not 502. The
    //      stall (1.5 s) sits between one window and two (removal), some
    //      400 ms from either.
    ok (h_wait_workers (client, "echo", 3, 3000) == 0,
        "%s: 3 workers before the stall", L);
    for (int i = 0; i < 3; i++) {
        request = h_request ("echo", "busy", 0);
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    zclock_sleep (100);             //  each worker holds one request now
    s_stall_far (c, 1500);
    got = h_collect (client, replies, 3, 5000);
    is_int (s_count_status (replies, got, 200), 3,
            "%s: after the stall all 3 are answered 200 (%d answers)", L, got);
    bool far_answered = false;
    for (int i = 0; i < got; i++)
        if (replies [i]->status == 200 && tiers_wire_header (replies [i], "worker")
        &&  streq (tiers_wire_header (replies [i], "worker"), "far"))
            far_answered = true;
    ok (far_answered, "%s: the stalled worker's own reply reached its caller", L);
    s_free_replies (replies, got);
    ok (h_wait_workers (client, "echo", 3, 3000) == 0,
        "%s: it is back in the pool, not dropped", L);

    //  5. A worker that dies mid-request: its request fails back (502),
    //     it is dropped within two heartbeat windows (2 s; on tcp:// at
    //     once, its connection gone), the pool keeps serving. Far holds
    //     its request 1.5 s: still held when it dies.
    ok (h_wait_workers (client, "echo", 3, 3000) == 0, "%s: still 3 workers", L);
    for (int i = 0; i < 3; i++) {
        request = h_request ("echo", "inflight", 0);
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    zclock_sleep (250);             //  each worker holds one request now
    s_kill_far (c);
    start = zclock_mono ();
    got = h_collect (client, replies, 3, 6000);
    is_int (got, 3, "%s: every in-flight request is answered", L);
    is_int (s_count_status (replies, got, 200), 2, "%s: two served", L);
    is_int (s_count_status (replies, got, 502), 1, "%s: the dead worker's fails 502", L);
    s_free_replies (replies, got);
    ok (h_wait_workers (client, "echo", 2, 6000) == 0, "%s: pool shrinks to 2", L);
    elapsed = zclock_mono () - start;
    ok (elapsed < 4000, "%s: dead worker detected in %lld ms (two windows: 2 s)",
        L, (long long) elapsed);
    for (int i = 0; i < 20; i++) {
        request = h_request ("echo", "after death", 0);
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    got = h_collect (client, replies, 20, 5000);
    is_int (s_count_status (replies, got, 200), 20, "%s: the pool keeps serving", L);
    bool only_fast = true;
    for (int i = 0; i < got; i++) {
        const char *worker = tiers_wire_header (replies [i], "worker");
        if (!worker || strncmp (worker, "fast.", 5))
            only_fast = false;
    }
    ok (only_fast, "%s: only the live workers serve", L);
    s_free_replies (replies, got);

    //  7. Raw workers (heartbeat window 1 s): READY again keeps the
    //     requests in flight; a worker that vanished gets nothing more,
    //     its share goes to the live one at once.
    zsock_t *raw1 = s_dealer (c, c->lb);
    zsock_set_linger (raw1, 0);
    s_raw_send (raw1, TIERS_WIRE_READY, "raw", "raw1", 1);
    ok (h_wait_workers (client, "raw", 1, 2000) == 0, "%s: a raw worker joined", L);
    request = h_request ("raw", "first", 3000);
    tiers_wire_send (request, zsock_resolve (client), NULL);
    tiers_wire_destroy (&request);
    zmsg_t *route = NULL;
    tiers_wire_t *held = s_raw_recv (raw1, &route, 1000);
    ok (held && held->body_size == 5, "%s: it holds a request", L);
    s_raw_send (raw1, TIERS_WIRE_READY, "raw", "raw1", 2);
    ok (h_wait_workers (client, "raw", 1, 1000) == 0, "%s: READY again: still one worker", L);
    if (held) {
        reply = tiers_wire_reply_to (held, 200);
        tiers_wire_set_body (reply, "done", 4);
        tiers_wire_send (reply, zsock_resolve (raw1), route);
        tiers_wire_destroy (&reply);
    }
    tiers_wire_destroy (&held);
    zmsg_destroy (&route);
    got = h_collect (client, replies, 1, 2000);
    ok (got == 1 && replies [0]->status == 200,
        "%s: its request in flight is answered 200, not 502", L);
    s_free_replies (replies, got);

    zsock_t *raw2 = s_dealer (c, c->lb);
    zsock_set_linger (raw2, 0);
    s_raw_send (raw2, TIERS_WIRE_READY, "raw", "raw2", 1);
    s_raw_send (raw1, TIERS_WIRE_HEARTBEAT, "raw", "raw1", 0);
    ok (h_wait_workers (client, "raw", 2, 1000) == 0, "%s: a second raw worker joined", L);
    zsock_destroy (&raw2);
    //  The balancer sees it go: its next send to raw2 fails (its
    //  connection is gone), long before a window of silence (1 s) could
    //  take it off. Raw1 heartbeats meanwhile.
    start = zclock_mono ();
    bool gone = false;
    while (!gone && zclock_mono () - start < 5000) {
        s_raw_send (raw1, TIERS_WIRE_HEARTBEAT, "raw", "raw1", 0);
        char *json = h_status (client);
        gone = json && strstr (json, "\"raw\":{\"workers\":1,")
                    && strstr (strstr (json, "\"raw\":{"), "\"silent\":0}");
        free (json);
        if (!gone)
            zclock_sleep (25);
    }
    elapsed = zclock_mono () - start;
    ok (gone && elapsed < 1000, "%s: the vanished worker is removed at once (%lld ms)",
        L, (long long) elapsed);
    s_raw_send (raw1, TIERS_WIRE_HEARTBEAT, "raw", "raw1", 0);
    start = zclock_mono ();
    for (int i = 0; i < 2; i++) {
        request = h_request ("raw", "after", 3000);
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    int served = 0;
    for (int i = 0; i < 2; i++) {
        held = s_raw_recv (raw1, &route, 250);
        if (!held)
            break;
        reply = tiers_wire_reply_to (held, 200);
        tiers_wire_send (reply, zsock_resolve (raw1), route);
        tiers_wire_destroy (&reply);
        tiers_wire_destroy (&held);
        zmsg_destroy (&route);
        served++;
    }
    got = h_collect (client, replies, 2, 1000);
    is_int (served, 2, "%s: both requests reach the live worker", L);
    is_int (s_count_status (replies, got, 200), 2, "%s: both answered 200 (%lld ms)", L,
            (long long) (zclock_mono () - start));
    s_free_replies (replies, got);
    zsock_destroy (&raw1);

    //  6. (split only) The balancer dies and comes back: workers rejoin.
    if (c->split) {
        ok (h_stop (c->pids [0], SIGKILL, 3000) == 128 + SIGKILL,
            "%s: kill -9 the balancer node", L);
        c->pids [0] = 0;
        zclock_sleep (200);
        ok (s_start_node (c, 0) == 0, "%s: balancer node restarted", L);
        ok (h_wait_workers (client, "echo", 2, 15000) == 0,
            "%s: workers said READY again (with back-off) and rejoined", L);
        request = h_request ("echo", "again", 0);
        reply = tiers_call (client, request, 3000);
        ok (reply && reply->status == 200, "%s: served after the balancer restart", L);
        tiers_wire_destroy (&request);
        tiers_wire_destroy (&reply);
    }
    zsock_destroy (&client);
    zsock_destroy (&client2);
}

//  --------------------------------------------------------------------------
//  A READY from an address the map places no worker at (issue 10, item 8).
//  Loopback aliases make a second address on one host: a worker of the map
//  runs on node box (127.0.0.1), a rogue connects from 127.0.0.2 with
//  libzmq's source-address syntax, "tcp://127.0.0.2:0;127.0.0.1:PORT".

//  Can this host send from 127.0.0.2 (Linux routes 127/8 to lo)?
static bool
s_alias_works (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    inet_pton (AF_INET, "127.0.0.2", &addr.sin_addr);
    bool works = fd >= 0 && bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
    if (fd >= 0)
        close (fd);
    return works;
}

//  A node of `text` (or of its node `only`) in this process, its lines
//  logged into `log` (at info level) while it starts.
static tiers_node_t *
s_guard_node (const char *text, const char *only, const char *log, tiers_map_t **map_p)
{
    char *errors = NULL;
    *map_p = tiers_map_parse (text, "guard.map", &errors);
    if (!*map_p) {
        diag ("%s", errors);
        free (errors);
        return NULL;
    }
    FILE *stream = fopen (log, "w");
    tiers_log_set_stream (stream);
    tiers_log_set_level (TIERS_LOG_INFO);
    tiers_node_t *node = tiers_node_new (*map_p, only);
    if (tiers_node_start (node))
        tiers_node_destroy (&node);
    tiers_log_set_level (TIERS_LOG_ERROR);
    tiers_log_set_stream (NULL);
    fclose (stream);
    return node;
}

static bool
s_file_has (const char *path, const char *needle)
{
    char *text = NULL;
    size_t size = 0;
    FILE *file = fopen (path, "r");
    if (file) {
        text = (char *) calloc (1, 1 << 16);
        size = fread (text, 1, (1 << 16) - 1, file);
        fclose (file);
    }
    bool found = text && size && strstr (text, needle);
    free (text);
    return found;
}

//  A READY from `dealer`; returns the balancer's answer (NULL: none in
//  timeout_ms, which is what a worker that joined gets). It heartbeats
//  meanwhile, as a live worker would.
static tiers_wire_t *
s_ready_answer (zsock_t *dealer, const char *pool, const char *name, int timeout_ms)
{
    s_raw_send (dealer, TIERS_WIRE_READY, pool, name, 4);
    zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        s_raw_send (dealer, TIERS_WIRE_HEARTBEAT, pool, name, 0);
        if (zmq_poll (&item, 1, 20) <= 0)
            continue;
        tiers_wire_t *msg = tiers_wire_recv (dealer, NULL, NULL);
        if (msg && msg->kind == TIERS_WIRE_REPLY)
            return msg;
        tiers_wire_destroy (&msg);
    }
    return NULL;
}

//  `count` requests from `client`; meanwhile the rogue heartbeats (a live
//  worker, were it in the pool) and counts the requests it is given.
//  Returns how many the worker `name` answered 200; *stolen_p: how many
//  the rogue got.
static int
s_rogue_round (zsock_t *client, zsock_t *rogue, int count, const char *name,
               int *stolen_p)
{
    for (int i = 0; i < count; i++) {
        tiers_wire_t *request = h_request ("echo", "for near", 2000);
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    int served = 0, answers = 0;
    *stolen_p = 0;
    int64_t until = zclock_mono () + 2500;
    while (zclock_mono () < until && answers < count) {
        s_raw_send (rogue, TIERS_WIRE_HEARTBEAT, "echo", "rogue", 0);
        zmq_pollitem_t items [2] = {
            { zsock_resolve (client), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve (rogue), 0, ZMQ_POLLIN, 0 }
        };
        if (zmq_poll (items, 2, 20) <= 0)
            continue;
        if (items [0].revents & ZMQ_POLLIN) {
            tiers_wire_t *reply = tiers_wire_recv (client, NULL, NULL);
            answers++;
            const char *worker = reply ? tiers_wire_header (reply, "worker") : NULL;
            served += reply && reply->status == 200 && worker && streq (worker, name);
            tiers_wire_destroy (&reply);
        }
        if (items [1].revents & ZMQ_POLLIN) {
            tiers_wire_t *msg = tiers_wire_recv (rogue, NULL, NULL);
            *stolen_p += msg && msg->kind == TIERS_WIRE_REQUEST;
            tiers_wire_destroy (&msg);
        }
    }
    return served;
}

//  Metric value from this process's registry (-1: not there).
static long long
s_metric (const char *series)
{
    char *text = tiers_metrics_render ();
    char *needle = zsys_sprintf ("\n%s ", series);
    char *line = text ? strstr (text, needle) : NULL;
    long long value = line ? atoll (line + strlen (needle)) : -1;
    free (needle);
    free (text);
    return value;
}

//  A free port for the balancer: its endpoint, and the rogue's, which
//  connects to it from 127.0.0.2.
static void
s_guard_endpoints (char lb [64], char rogue [96])
{
    int port = h_free_port ();
    snprintf (lb, 64, "tcp://127.0.0.1:%d", port);
    snprintf (rogue, 96, "tcp://127.0.0.2:0;127.0.0.1:%d", port);
}

static void
s_guard_scenarios (void)
{
    if (!s_alias_works ()) {
        diag ("SKIP the address guard: this host cannot send from 127.0.0.2");
        return;
    }
    const char *G = "guard";
    char lb [64], rogue_endpoint [96], log [256];
    s_guard_endpoints (lb, rogue_endpoint);
    snprintf (log, sizeof log, "%s/guard.log", h_tmpdir ());

    //  1. The map places its one worker on node box, the balancer's node.
    char *text = zsys_sprintf (
        "cluster\n"
        "    name = guard-test\n"
        "    security = none\n"
        "node = box\n"
        "    balancer = lb\n"
        "        bind = %s\n"
        "        heartbeat = 100ms\n"
        "        liveness = 5\n"
        "    echo = near\n", lb);
    tiers_map_t *map = NULL;
    tiers_node_t *node = s_guard_node (text, NULL, log, &map);
    free (text);
    ok (node != NULL, "%s: a balancer on tcp:// and its worker near, on node box", G);
    ok (s_file_has (log, "READY is taken only from where the map places its workers: "
                         "127.0.0.1, ::1"),
        "%s: it says where READY may come from (node box: 127.0.0.1, ::1)", G);
    zsock_t *client = zsock_new (ZMQ_DEALER);
    zsock_set_identity (client, "client-1");
    zsock_connect (client, "%s", lb);
    zsock_set_linger (client, 0);
    ok (h_wait_workers (client, "echo", 1, 5000) == 0, "%s: near joined", G);
    long long refused_before = s_metric ("tiers_balancer_refused_total");
    long long malformed_before = s_metric ("tiers_balancer_malformed_total");

    zsock_t *rogue = zsock_new (ZMQ_DEALER);
    zsock_set_linger (rogue, 0);
    ok (zsock_connect (rogue, "%s", rogue_endpoint) == 0,
        "%s: a rogue DEALER connects from 127.0.0.2", G);
    tiers_wire_t *answer = s_ready_answer (rogue, "echo", "rogue", 1000);
    const char *error = answer ? tiers_wire_header (answer, "error") : NULL;
    ok (answer && answer->status == 403 && error && strstr (error, "127.0.0.2")
        && strstr (error, "no worker"),
        "%s: its READY for pool echo is refused: 403 %s", G, error ? error : "(none)");
    tiers_wire_destroy (&answer);

    //  It gets no requests, though it heartbeats: near serves them all.
    int stolen = 0;
    is_int (s_rogue_round (client, rogue, 10, "near", &stolen), 10,
            "%s: 10 requests, all served by near", G);
    is_int (stolen, 0, "%s: the rogue got none of them", G);
    ok (h_wait_workers (client, "echo", 1, 500) == 0, "%s: the pool has one worker", G);
    is_int (s_metric ("tiers_balancer_refused_total") - refused_before, 1,
            "%s: the refusal is counted (tiers_balancer_refused_total)", G);
    tiers_wire_t *replies [1];
    int got;

    //  Its forged reply, routed to a caller it names, reaches nobody.
    tiers_wire_t *forged = tiers_wire_new (TIERS_WIRE_REPLY);
    tiers_wire_set_rid (forged, "r1");
    forged->status = 200;
    tiers_wire_set_body (forged, "forged", 6);
    zmsg_t *to_client = zmsg_new ();
    zmsg_addstr (to_client, "client-1");
    tiers_wire_send (forged, zsock_resolve (rogue), to_client);
    zmsg_destroy (&to_client);
    tiers_wire_destroy (&forged);
    got = h_collect (client, replies, 1, 300);
    is_int (got, 0, "%s: a forged REPLY from it reaches no caller", G);
    s_free_replies (replies, got);
    ok (s_metric ("tiers_balancer_malformed_total") > malformed_before,
        "%s: it is dropped and counted", G);

    //  A worker from the node's address joins as before.
    zsock_t *local = zsock_new_dealer (lb);
    zsock_set_linger (local, 0);
    answer = s_ready_answer (local, "echo", "local", 300);
    ok (answer == NULL, "%s: a READY from 127.0.0.1 gets no refusal", G);
    tiers_wire_destroy (&answer);
    ok (h_wait_workers (client, "echo", 2, 2000) == 0, "%s: that worker joined", G);
    zsock_destroy (&local);
    zsock_destroy (&rogue);
    zsock_destroy (&client);
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);

    //  2. The worker's node is known by a name (node w binds at localhost,
    //     resolved at start); only the balancer's node runs here.
    s_guard_endpoints (lb, rogue_endpoint);
    text = zsys_sprintf (
        "cluster\n"
        "    name = guard-test\n"
        "    security = none\n"
        "node = box\n"
        "    balancer = lb\n"
        "        bind = %s\n"
        "node = w\n"
        "    balancer = other\n"
        "        bind = tcp://localhost:%d\n"
        "    echo = far\n"
        "        connect = lb\n", lb, h_free_port ());
    node = s_guard_node (text, "box", log, &map);
    free (text);
    ok (node && s_file_has (log, "READY is taken only from where the map places its "
                                 "workers: 127.0.0.1"),
        "%s: a worker's node named by a host name: resolved at start", G);
    rogue = zsock_new (ZMQ_DEALER);
    zsock_set_linger (rogue, 0);
    zsock_connect (rogue, "%s", rogue_endpoint);
    answer = s_ready_answer (rogue, "echo", "rogue", 2000);
    ok (answer && answer->status == 403, "%s: a READY from 127.0.0.2 is refused", G);
    tiers_wire_destroy (&answer);
    local = zsock_new_dealer (lb);
    zsock_set_linger (local, 0);
    answer = s_ready_answer (local, "echo", "local", 300);
    ok (answer == NULL, "%s: one from 127.0.0.1 is not", G);
    tiers_wire_destroy (&answer);
    zsock_destroy (&local);
    zsock_destroy (&rogue);
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);

    //  3. A worker on a node that binds nothing: the map does not say where
    //     it is, so the balancer cannot check, and says so.
    s_guard_endpoints (lb, rogue_endpoint);
    text = zsys_sprintf (
        "cluster\n"
        "    name = guard-test\n"
        "    security = none\n"
        "node = box\n"
        "    balancer = lb\n"
        "        bind = %s\n"
        "node = w\n"
        "    echo = far\n", lb);
    node = s_guard_node (text, "box", log, &map);
    free (text);
    ok (node && s_file_has (log, "READY is not checked by address: node w, where echo "
                                 "'far' runs, binds no tcp:// endpoint"),
        "%s: a worker's node without an address turns the check off, with a line", G);
    rogue = zsock_new (ZMQ_DEALER);
    zsock_set_linger (rogue, 0);
    zsock_connect (rogue, "%s", rogue_endpoint);
    answer = s_ready_answer (rogue, "echo", "rogue", 300);
    ok (answer == NULL, "%s: then a READY from 127.0.0.2 is taken", G);
    tiers_wire_destroy (&answer);
    zsock_destroy (&rogue);
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);

    //  4. On inproc:// there is no peer address to check, and it says so.
    text = zsys_sprintf (
        "cluster\n"
        "    name = guard-test\n"
        "    security = none\n"
        "node = box\n"
        "    balancer = lb\n"
        "        bind = inproc://guard-lb\n"
        "    echo = near\n");
    node = s_guard_node (text, NULL, log, &map);
    free (text);
    ok (node && s_file_has (log, "READY is not checked by address: its port is "
                                 "inproc://"),
        "%s: on inproc:// the check is off, with a line", G);
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);
}

int
main (int argc, char **argv)
{
    tiers_kind_register (&s_echo_kind);
    if (argc > 1)                   //  a node of the split cluster
        return tiers_cli_main (argc, argv);

    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    h_tmpdir ();

    cluster_t one = { .split = false, .label = "inproc" };
    ok (s_cluster_start (&one) == 0, "inproc: cluster started in one process");
    s_scenarios (&one);
    s_cluster_stop (&one);

    cluster_t split = { .split = true, .label = "tcp", .self_path = h_self_path () };
    ok (s_cluster_start (&split) == 0, "tcp: three nodes started as processes");
    s_scenarios (&split);
    s_cluster_stop (&split);
    h_kill_all ();

    s_guard_scenarios ();
    return done_testing ();
}
