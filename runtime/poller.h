/*  poller.h — the wait at the heart of every actor loop, with as few system
    calls as libzmq allows.

    zmq_poll() asks every socket for ZMQ_EVENTS before and after it sleeps,
    and each of those questions costs libzmq a poll() and a getpid() on the
    socket's mailbox, even when nothing came. In a request that crosses four
    threads that was ~45 system calls per request, half the cost of a hop.

    tiers_poller keeps one flag per item instead: `ready` means "may hold
    input; receive without waiting until the socket says EAGAIN". The owner
    drains a ready item with non-blocking receives and calls
    tiers_poller_idle() when one finds nothing. Only when every item is idle
    does tiers_poller_wait() sleep, in one poll() over the sockets' ZMQ_FDs and
    the plain descriptors.

    One rule keeps this correct. Sending on a socket may make libzmq take
    that socket's pending commands, including the one that says input has
    arrived; its ZMQ_FD then stays quiet although a message waits. Every send
    therefore goes through tiers_poller_sent() (tiers_wire_send does it), and
    before sleeping tiers_poller_wait() asks those sockets, and only those,
    for ZMQ_EVENTS.

    Before it sleeps, tiers_poller_wait() keeps looking for a short while
    (the cluster's `spin_us`, 200 us by default), calling sched_yield()
    between looks so that any thread that wants the core gets it. A thread
    that is still running when its next message comes needs no wake-up:
    on the 2-core VM of doc/performance.md this was worth ~20 % on GET.
    An idle cluster still sleeps: the spin follows each burst of work.

    A poller belongs to one thread, like the sockets in it.
*/
#ifndef TIERS_POLLER_H
#define TIERS_POLLER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct _tiers_poller_t tiers_poller_t;

tiers_poller_t *tiers_poller_new (void);
void tiers_poller_destroy (tiers_poller_t **self_p);

//  Adds a ZeroMQ socket (a zsock_t, a zactor_t or a libzmq handle; NULL
//  for a place that is filled later with tiers_poller_set). Returns its index.
//  A new socket starts ready, so that the first pass looks at it.
int tiers_poller_add (tiers_poller_t *self, void *socket);

//  Adds a plain descriptor (level-triggered, like poll()). Returns its index.
int tiers_poller_add_fd (tiers_poller_t *self, int fd);

//  Replaces the socket at `index` (NULL takes it out of the wait).
void tiers_poller_set (tiers_poller_t *self, int index, void *socket);

//  Waits at most timeout_ms (-1 = no limit) until an item is ready. Returns
//  the number of ready items, 0 on timeout, -1 when interrupted.
int tiers_poller_wait (tiers_poller_t *self, int timeout_ms);

//  True when the item may hold input.
bool tiers_poller_ready (tiers_poller_t *self, int index);

//  The owner found the item empty (a non-blocking receive gave EAGAIN, or
//  the descriptor was served).
void tiers_poller_idle (tiers_poller_t *self, int index);

//  Microseconds to keep looking before sleeping, for every poller of the
//  process (0 = sleep at once). Set once, before the actors start.
#define TIERS_POLLER_SPIN_US 200
void tiers_poller_set_spin (int spin_us);

//  Notes that this thread sent on `socket` (any form tiers_poller_add takes).
void tiers_poller_sent (void *socket);

#endif
