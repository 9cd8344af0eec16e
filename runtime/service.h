/*  service.h — the worker side of the balancer protocol, and a caller.

    A service instance (read-api, write-api, a test echo worker, ...) joins
    one pool of the balancer: it connects a DEALER, announces READY with its
    capacity (how many requests it takes at once), answers requests, and
    heartbeats — the Paranoid Pirate worker of the zguide, with one change:
    when it hears nothing from the balancer for heartbeat x liveness it
    keeps its socket and says READY again (at once, then after 1 s,
    doubling to 32 s). libzmq reconnects the transport by itself; a new
    socket would only make the worker a stranger to a balancer that merely
    paused, and lose the replies to the requests it holds.

    The socket changes only when one could not be made (out of
    descriptors): take tiers_service_sock() afresh for every poll.
*/
#ifndef TIERS_SERVICE_H
#define TIERS_SERVICE_H

#include <czmq.h>
#include "wire.h"
#include "reactor.h"
#include "map.h"

typedef struct _tiers_service_t tiers_service_t;

typedef struct {
    const char *endpoint;       //  the balancer's endpoint
    const char *pool;           //  pool to join ("read", "write", ...)
    const char *name;           //  this instance, for logs and replies
    int capacity;               //  requests taken at once (>= 1)
    int heartbeat_ms;           //  default 1000
    int liveness;               //  silent heartbeats before READY again; default 3
    const tiers_entry_t *entry; //  the worker's entry (its node's keys when the
                                //  map has CURVE), or NULL: a plain socket
} tiers_service_config_t;

tiers_service_t *tiers_service_new (const tiers_service_config_t *config);
//  Says BYE to the balancer (so its pool shrinks at once), then frees.
void tiers_service_destroy (tiers_service_t **self_p);

zsock_t *tiers_service_sock (tiers_service_t *self);
//  How many sockets the service has made (one per join): a change means
//  the socket is new, even when it sits at the old one's address.
unsigned tiers_service_joins (tiers_service_t *self);

//  Reads one message from the socket (call when readable). Returns a
//  request, with its return route in *route_p, or NULL when the message was
//  for the protocol itself (heartbeat) or malformed (counted, logged).
tiers_wire_t *tiers_service_recv (tiers_service_t *self, zmsg_t **route_p);
//  The same without waiting: -1 when nothing was waiting (or there is no
//  socket); 0 when a message was taken, *request_p being the request or
//  NULL (a heartbeat, or something malformed: counted and dropped).
int tiers_service_try_recv (tiers_service_t *self, zmsg_t **route_p,
                            tiers_wire_t **request_p);
//  Sends a reply along the route (route destroyed, reply not consumed).
int tiers_service_reply (tiers_service_t *self, zmsg_t **route_p,
                         const tiers_wire_t *reply);
//  Heartbeats, READY again to a silent balancer, a new socket when one
//  could not be made; call at least every heartbeat. The balancer is
//  judged silent only when nothing is left unread on the socket (then it
//  returns 0: read first). Returns the milliseconds until it wants to be
//  called again.
int tiers_service_tick (tiers_service_t *self);
//  Stop taking work without leaving (tests simulate a hung process).
void tiers_service_freeze (tiers_service_t *self);

//  Handler for tiers_service_run: fills `reply` for `request`.
typedef void (tiers_service_fn) (const tiers_wire_t *request,
                                 tiers_wire_t *reply, void *arg);
//  The whole loop of a synchronous worker: pipe commands ($TERM, FREEZE),
//  requests answered one at a time by `handler`. Returns on $TERM.
void tiers_service_run (tiers_service_t *self, zsock_t *pipe,
                        tiers_service_fn *handler, void *arg);

//  Watch the service's socket in a reactor: `fn` takes one message (with
//  tiers_service_try_recv). Also adds the reactor timer that sends the
//  heartbeats (it runs between the messages of a burst, so a worker busy
//  with one still beats). Returns the reader's handle.
int tiers_service_attach (tiers_service_t *self, tiers_reactor_t *reactor,
                          tiers_reader_fn *fn, void *arg);
//  For the reactor's pass hook: tiers_service_tick, and the reader moved
//  to a new socket when one was made. Returns the milliseconds until it
//  wants the next pass.
int tiers_service_pass (tiers_service_t *self, tiers_reactor_t *reactor, int reader);

//  The link of a kind whose entries join (or call) a pool of the balancer:
//  put it in the kind's links table (the map's `connect`, to the one
//  balancer of the map unless it names one).
#define TIERS_LINK_BALANCER \
    { "balancer", "balancer", "requests", ZMQ_DEALER, false, false }

//  Caller side: send `request` on a DEALER connected to a balancer and wait
//  up to timeout_ms for the reply with the same rid (others are dropped).
//  Returns the reply or NULL on timeout.
tiers_wire_t *tiers_call (zsock_t *dealer, const tiers_wire_t *request,
                          int timeout_ms);

#endif
