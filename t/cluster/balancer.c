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
    .links = s_links, .multi = true, .listener = NULL
};

//  --------------------------------------------------------------------------
//  The map, in its two placements.

static char *
s_map_text (bool split, const char *lb, const char *lb2)
{
    return zsys_sprintf (
        "cluster\n"
        "    name = balancer-test\n"
        "    log = warn\n"
        "node = %s\n"
        "    balancer = lb\n"
        "        bind = %s\n"
        "        heartbeat = 100ms\n"
        "        liveness = 5\n"
        "        timeout = 3s\n"
        "    balancer = lb2\n"
        "        bind = %s\n"
        "        heartbeat = 100ms\n"
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
        "        delay = 400ms\n",
        split ? "lb" : "box", lb, lb2,
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

static int
s_start_node (cluster_t *c, int i)
{
    char *argv [] = { (char *) c->self_path, (char *) "run", (char *) "-m", c->map_path,
                      (char *) "-n", (char *) s_nodes [i], NULL };
    c->pids [i] = h_spawn (argv, c->logs [i]);
    return h_wait_for_line (c->logs [i], "; ready", 10000);
}

static int
s_cluster_start (cluster_t *c)
{
    char *text;
    if (c->split) {
        snprintf (c->lb, sizeof c->lb, "tcp://127.0.0.1:%d", h_free_port ());
        snprintf (c->lb2, sizeof c->lb2, "tcp://127.0.0.1:%d", h_free_port ());
        text = s_map_text (true, c->lb, c->lb2);
        c->map_path = h_write_file ("split.map", text);
        free (text);
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
    zsock_t *watch = zsock_new_dealer (c->lb);
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
    zsock_t *client = zsock_new_dealer (c->lb);
    zsock_t *client2 = zsock_new_dealer (c->lb2);
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
    zsock_t *raw = zsock_new_dealer (c->lb);
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

    //  4c. A worker busy past its window (500 ms) but alive: it goes silent
    //      (off the pool: "silent":1), keeps its request, and when it
    //      speaks again its reply reaches the caller: 200, not 502.
    ok (h_wait_workers (client, "echo", 3, 3000) == 0,
        "%s: 3 workers before the stall", L);
    for (int i = 0; i < 3; i++) {
        request = h_request ("echo", "busy", 0);
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    zclock_sleep (100);             //  each worker holds one request now
    s_stall_far (c, 750);
    got = h_collect (client, replies, 3, 3000);
    is_int (s_count_status (replies, got, 200), 3,
            "%s: after the stall all 3 are answered 200 (%d answers)", L, got);
    bool far_answered = false;
    for (int i = 0; i < got; i++)
        if (replies [i]->status == 200 && tiers_wire_header (replies [i], "worker")
        &&  streq (tiers_wire_header (replies [i], "worker"), "far"))
            far_answered = true;
    ok (far_answered, "%s: the stalled worker's own reply reached its caller", L);
    s_free_replies (replies, got);
    ok (h_wait_workers (client, "echo", 3, 1000) == 0,
        "%s: it is back in the pool, not dropped", L);

    //  5. A worker that dies mid-request: its request fails back (502),
    //     it is dropped within its heartbeat window, the pool keeps serving.
    ok (h_wait_workers (client, "echo", 3, 3000) == 0, "%s: still 3 workers", L);
    for (int i = 0; i < 3; i++) {
        request = h_request ("echo", "inflight", 0);
        tiers_wire_send (request, zsock_resolve (client), NULL);
        tiers_wire_destroy (&request);
    }
    zclock_sleep (250);             //  each worker holds one request now
    s_kill_far (c);
    start = zclock_mono ();
    got = h_collect (client, replies, 3, 3000);
    is_int (got, 3, "%s: every in-flight request is answered", L);
    is_int (s_count_status (replies, got, 200), 2, "%s: two served", L);
    is_int (s_count_status (replies, got, 502), 1, "%s: the dead worker's fails 502", L);
    s_free_replies (replies, got);
    ok (h_wait_workers (client, "echo", 2, 3000) == 0, "%s: pool shrinks to 2", L);
    elapsed = zclock_mono () - start;
    ok (elapsed < 1500, "%s: dead worker detected in %lld ms (window 500 ms)",
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

    //  7. Raw workers (heartbeat window 500 ms): READY again keeps the
    //     requests in flight; a worker that vanished gets nothing more,
    //     its share goes to the live one at once.
    zsock_t *raw1 = zsock_new_dealer (c->lb);
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

    zsock_t *raw2 = zsock_new_dealer (c->lb);
    zsock_set_linger (raw2, 0);
    s_raw_send (raw2, TIERS_WIRE_READY, "raw", "raw2", 1);
    s_raw_send (raw1, TIERS_WIRE_HEARTBEAT, "raw", "raw1", 0);
    ok (h_wait_workers (client, "raw", 2, 1000) == 0, "%s: a second raw worker joined", L);
    zsock_destroy (&raw2);
    zclock_sleep (100);             //  the balancer sees it go
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
    return done_testing ();
}
