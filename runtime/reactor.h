/*  reactor.h — the one loop every actor runs: readers, timers, the pipe.

    An actor registers what it listens to and what it must do on time, then
    hands its thread to tiers_reactor_run until $TERM. One pass of the loop:

        wait (tiers_poller: ready flags, one poll() per sleep)
        the pipe: $TERM ends the run; other commands go to the command
                  handler (or are logged and ignored)
        readers, in the order they were added: while the socket is ready,
                  call its handler, at most `burst` times a pass; a handler
                  takes ONE message without waiting and returns false when
                  there was none (the socket is then idle until it stirs)
        descriptors that are readable: their handler, once
        timers that are due, each rescheduled `interval` later
        the pass hook, last: it may say how soon it wants the next pass
                  (it also runs once before the first wait)

    The bounded burst is what keeps one busy socket from starving the
    others and the pipe. Timers do not wait for the end of a burst: a
    timer that is due runs between two messages of one (after a handler
    returned, so the actor's state is whole), so a heartbeat never waits
    behind more than one message however long the burst. A timer must
    therefore not assume the readers have run dry. A handler never blocks
    and never calls tiers_poller_sent: sends go through wire.c or sock.c,
    which do.

    A reactor belongs to the actor thread that made it, like its sockets.
*/
#ifndef TIERS_REACTOR_H
#define TIERS_REACTOR_H

#include <stdbool.h>
#include <czmq.h>

typedef struct _tiers_reactor_t tiers_reactor_t;

//  Messages a reader handler is called for in one pass, unless it asks
//  for another burst.
#define TIERS_REACTOR_BURST 256

//  Takes one message from the reader's socket without waiting; returns
//  false when none was there.
typedef bool (tiers_reader_fn) (void *arg);
//  A readable descriptor, a due timer, a pass: do the work.
typedef void (tiers_event_fn) (void *arg);
//  The pass hook: returns the milliseconds until it wants the next pass
//  (-1 = no wish; 0 = at once).
typedef int (tiers_pass_fn) (void *arg);
//  A pipe command other than $TERM (the reactor frees it).
typedef void (tiers_command_fn) (const char *command, void *arg);

tiers_reactor_t *tiers_reactor_new (zsock_t *pipe);
void tiers_reactor_destroy (tiers_reactor_t **self_p);

//  Adds a reader on `socket` (zsock_t, zactor_t or NULL to be set later);
//  `burst` 0 = TIERS_REACTOR_BURST. Returns its handle.
int tiers_reactor_reader (tiers_reactor_t *self, void *socket, int burst,
                          tiers_reader_fn *fn, void *arg);
//  Replaces the socket of a reader (a service's socket after a reconnect;
//  NULL stops watching it).
void tiers_reactor_set_socket (tiers_reactor_t *self, int reader, void *socket);
//  Adds a plain descriptor (level-triggered): `fn` runs in each pass in
//  which it is readable.
int tiers_reactor_fd (tiers_reactor_t *self, int fd, tiers_event_fn *fn, void *arg);
//  A repeating timer, first due `interval_ms` from now; it may run between
//  two messages of a burst (see above).
int tiers_reactor_timer (tiers_reactor_t *self, int interval_ms,
                         tiers_event_fn *fn, void *arg);
void tiers_reactor_set_pass (tiers_reactor_t *self, tiers_pass_fn *fn, void *arg);
void tiers_reactor_set_command (tiers_reactor_t *self, tiers_command_fn *fn, void *arg);

//  Runs until $TERM on the pipe (or the pipe is gone), or until a handler
//  called tiers_reactor_stop: then the run ends after the pass, with the
//  pipe unread (an actor that hands its thread to another loop, a replica
//  promoted to primary).
void tiers_reactor_run (tiers_reactor_t *self);
void tiers_reactor_stop (tiers_reactor_t *self);
//  True when the last wait ended without anything ready (a timeout).
bool tiers_reactor_timed_out (tiers_reactor_t *self);

#endif
