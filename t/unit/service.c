/*  t/unit/service.c — tests for runtime/service.c, the worker side of the
    balancer protocol.

    The test plays the balancer with a bare ROUTER (inproc) and drives one
    service by hand (tiers_service_tick, tiers_service_recv). A balancer
    that goes quiet does not cost the worker its link: the worker says
    READY again on the same socket (the same identity, so a balancer that
    only paused still knows it), and a reply to a request taken before the
    silence still goes out on it. Input left unread is the balancer
    speaking: a worker that did not read for a while does not judge the
    balancer silent. A refusal of READY is not a word from the balancer.
    (Issue 10, item 13.)
*/
#include "service.h"
#include "wire.h"
#include "log.h"
#include "t/tap.h"
#include <czmq.h>

#define HEARTBEAT_MS 100            //  x 3: silent after 300 ms (a loaded
                                    //  machine stalls a loop for tens of ms)

//  What the fake balancer received: the next message within timeout_ms,
//  with the sender's identity in *identity_p (heartbeats skipped when
//  `skip_heartbeats`). NULL when none came.
static tiers_wire_t *
s_balancer_recv (zsock_t *router, zframe_t **identity_p, int timeout_ms,
                 bool skip_heartbeats)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        zmq_pollitem_t item = { zsock_resolve (router), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 5) <= 0)
            continue;
        zmsg_t *route = NULL;
        tiers_wire_t *msg = tiers_wire_recv (router, &route, NULL);
        if (msg && !(skip_heartbeats && msg->kind == TIERS_WIRE_HEARTBEAT)) {
            *identity_p = zmsg_pop (route);
            zmsg_destroy (&route);
            return msg;
        }
        tiers_wire_destroy (&msg);
        zmsg_destroy (&route);
    }
    return NULL;
}

static void
s_balancer_send (zsock_t *router, zframe_t *identity, tiers_wire_t *msg,
                 const char *caller)
{
    zmsg_t *route = zmsg_new ();
    zmsg_append (route, &(zframe_t *) { zframe_dup (identity) });
    if (caller)
        zmsg_addstr (route, caller);
    tiers_wire_send (msg, zsock_resolve (router), route);
    zmsg_destroy (&route);
}

//  The worker's loop for `ms`: ticks, and (when `reads`) takes what the
//  balancer sends. Returns the first request taken (its route in
//  *route_p), or NULL.
static tiers_wire_t *
s_worker_run (tiers_service_t *service, int ms, bool reads, zmsg_t **route_p)
{
    tiers_wire_t *request = NULL;
    int64_t until = zclock_mono () + ms;
    do {                                //  once at least, however late
        tiers_service_tick (service);
        zsock_t *sock = tiers_service_sock (service);
        if (reads && sock) {
            zmq_pollitem_t item = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
            if (zmq_poll (&item, 1, 2) > 0) {
                zmsg_t *route = NULL;
                tiers_wire_t *msg = tiers_service_recv (service, &route);
                if (msg && !request && route_p) {
                    request = msg;
                    *route_p = route;
                }
                else {
                    tiers_wire_destroy (&msg);
                    zmsg_destroy (&route);
                }
            }
        }
        else
            zclock_sleep (2);
    } while (zclock_mono () < until);
    return request;
}

int
main (void)
{
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    zsock_t *router = zsock_new_router ("inproc://service-lb");
    ok (router != NULL, "a fake balancer (ROUTER)");
    tiers_service_config_t config = {
        .endpoint = "inproc://service-lb", .pool = "p", .name = "w",
        .capacity = 2, .heartbeat_ms = HEARTBEAT_MS, .liveness = 3
    };
    tiers_service_t *service = tiers_service_new (&config);
    ok (service != NULL, "a service joins it");

    zframe_t *first = NULL;
    tiers_wire_t *msg = s_balancer_recv (router, &first, 1000, true);
    ok (msg && msg->kind == TIERS_WIRE_READY && streq (msg->service, "p"),
        "its READY arrives");
    tiers_wire_destroy (&msg);

    //  A request, taken while the balancer speaks.
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (request, "q1");
    tiers_wire_set_service (request, "p");
    s_balancer_send (router, first, request, "caller");
    tiers_wire_destroy (&request);
    zmsg_t *route = NULL;
    request = s_worker_run (service, HEARTBEAT_MS / 2, true, &route);
    ok (request && streq (request->rid, "q1"), "the worker takes a request");

    //  The balancer says nothing for 2 windows: the worker says READY
    //  again, from the same socket (once: the next READY is 1 s later,
    //  past the silence).
    s_worker_run (service, 2 * 3 * HEARTBEAT_MS, true, NULL);
    zframe_t *again = NULL;
    msg = s_balancer_recv (router, &again, 100, true);
    ok (msg && msg->kind == TIERS_WIRE_READY,
        "after the balancer's silence the worker says READY again (at once)");
    ok (again && first && zframe_eq (again, first),
        "on the same link: the balancer sees the same identity");
    tiers_wire_destroy (&msg);
    zframe_destroy (&again);

    //  The reply to the request taken before the silence still goes out.
    if (request) {
        tiers_wire_t *reply = tiers_wire_reply_to (request, 200);
        ok (tiers_service_reply (service, &route, reply) == 0,
            "a reply to the request from before the silence is sent");
        tiers_wire_destroy (&reply);
    }
    else
        ok (0, "a reply to the request from before the silence is sent");
    tiers_wire_destroy (&request);
    zframe_t *from = NULL;
    msg = s_balancer_recv (router, &from, 500, true);
    ok (msg && msg->kind == TIERS_WIRE_REPLY && streq (msg->rid, "q1")
        && from && zframe_eq (from, first),
        "it reaches the balancer, from the worker it gave the request to");
    tiers_wire_destroy (&msg);
    zframe_destroy (&from);

    //  The balancer speaks again: the worker is back to plain heartbeats.
    tiers_wire_t *heartbeat = tiers_wire_new (TIERS_WIRE_HEARTBEAT);
    s_balancer_send (router, first, heartbeat, NULL);
    s_worker_run (service, 20, true, NULL);
    bool quiet_again = false;
    for (int i = 0; i < 12; i++) {          //  4 windows, heard each third
        s_balancer_send (router, first, heartbeat, NULL);
        s_worker_run (service, HEARTBEAT_MS, true, NULL);
        zframe_t *who = NULL;
        while ((msg = s_balancer_recv (router, &who, 1, true))) {
            quiet_again |= msg->kind == TIERS_WIRE_READY;
            tiers_wire_destroy (&msg);
            zframe_destroy (&who);
        }
    }
    ok (!quiet_again, "heard again, it says no more READYs");

    //  The worker does not read for 5 windows while the balancer keeps
    //  speaking: what waits unread is the balancer's voice, not silence.
    for (int i = 0; i < 15; i++) {
        s_balancer_send (router, first, heartbeat, NULL);
        s_worker_run (service, HEARTBEAT_MS, false, NULL);
    }
    s_balancer_send (router, first, heartbeat, NULL);
    s_worker_run (service, 2 * HEARTBEAT_MS, true, NULL);
    zframe_t *who = NULL;
    bool ready = false, beats = false;
    while ((msg = s_balancer_recv (router, &who, 20, false))) {
        ready |= msg->kind == TIERS_WIRE_READY;
        beats |= msg->kind == TIERS_WIRE_HEARTBEAT && zframe_eq (who, first);
        tiers_wire_destroy (&msg);
        zframe_destroy (&who);
    }
    ok (!ready && beats, "a worker that did not read its socket for a while does "
        "not take the balancer for silent: no READY, its heartbeats go on");
    tiers_wire_destroy (&heartbeat);

    //  A refusal of its READY is not the balancer speaking: it stays quiet
    //  and tries again later, less often.
    tiers_wire_t *refusal = tiers_wire_new (TIERS_WIRE_REPLY);
    refusal->status = 403;
    tiers_wire_set_header (refusal, "error", "no worker here", 14);
    int readies = 0;
    int64_t until = zclock_mono () + 1500;
    while (zclock_mono () < until) {
        s_worker_run (service, 10, true, NULL);
        while ((msg = s_balancer_recv (router, &who, 1, true))) {
            if (msg->kind == TIERS_WIRE_READY) {
                readies++;
                s_balancer_send (router, who, refusal, NULL);
            }
            tiers_wire_destroy (&msg);
            zframe_destroy (&who);
        }
    }
    ok (readies >= 1 && readies <= 3,
        "refused, it says READY again with a back-off (%d times in 1.5 s)", readies);
    tiers_wire_destroy (&refusal);

    zframe_destroy (&first);
    tiers_service_destroy (&service);
    zsock_destroy (&router);
    return done_testing ();
}
