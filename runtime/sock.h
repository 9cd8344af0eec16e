/*  sock.h — the one socket factory: every ZeroMQ socket of tiers is made here.

    A socket's options decide how the system behaves under load and when a
    peer dies, so they are set in one place, the same for every tier:
    high-water marks of TIERS_SOCK_HWM messages each way (past them a send
    fails at once with EAGAIN: a bounded queue, never a silent block), no
    linger (an actor that stops does not hang on a dead peer; the few that
    must flush their last answers say so with tiers_sock_flush), sends that
    never wait, ROUTER_MANDATORY on ROUTERs (an unroutable reply is an error
    the caller counts, not a silent drop), IPv6 on, and no inbound frame
    longer than the longest tiers message (TIERS_WIRE_MAX_MESSAGE: a peer
    that announces more is disconnected before anything is allocated). It
    is also where CURVE goes on: with a map that says security = curve,
    every tcp:// and ipc:// socket of an entry carries its node's keys
    (security.h); tiers_sock_bind / tiers_sock_connect, which know no
    entry, make plain sockets (tests and tools).

    The sends here note the socket for the poller (tiers_poller_sent), so
    that a reactor never sleeps on input a send has hidden (poller.h): code
    that sends raw frames or strings uses these instead of czmq's.
*/
#ifndef TIERS_SOCK_H
#define TIERS_SOCK_H

#include <czmq.h>
#include "map.h"

#define TIERS_SOCK_HWM 100000       //  messages queued each way, at most

//  A socket of `type` (ZMQ_ROUTER, ZMQ_DEALER, ...) bound to / connected to
//  `endpoint`. Returns NULL on failure and, when why is not NULL, a
//  malloc'ed reason in *why ("cannot bind tcp://...: Address in use").
zsock_t *tiers_sock_bind (int type, const char *endpoint, char **why);
zsock_t *tiers_sock_connect (int type, const char *endpoint, char **why);
//  The same, connected by `entry` (its node's keys when the map has CURVE).
zsock_t *tiers_sock_connect_from (const tiers_entry_t *entry, int type,
                                  const char *endpoint, char **why);

//  An entry's port, bound where the map says, with the socket type its
//  kind declares. NULL + *why when the kind has no such port, the entry
//  leaves it unbound, or the bind fails.
zsock_t *tiers_port_bind (const tiers_entry_t *entry, const char *port, char **why);
//  The socket of an entry's link to its target number `index` (0 ..
//  tiers_entry_targets - 1), connected, with the type the kind declares.
zsock_t *tiers_link_connect (const tiers_entry_t *entry, const char *link,
                             size_t index, char **why);

//  Before destroying: let queued messages leave for up to `ms` (answers
//  sent during shutdown, on tcp:// they may still be queued).
void tiers_sock_flush (zsock_t *sock, int ms);

//  Sends that keep the poller's books. Same results as zframe_send and
//  zstr_send: 0, or -1 with zmq_errno() set (the frame is kept then).
int tiers_sock_send_frame (zframe_t **frame_p, void *sock, int flags);
int tiers_sock_send_str (void *sock, const char *text);
//  Whether a message waits to be read on the socket (NULL: false). Asking
//  libzmq may take the wake-up its ZMQ_FD owed the poller, as a send may:
//  the poller is told to look at the socket again before it sleeps.
bool tiers_sock_input_waiting (void *sock);

#endif
