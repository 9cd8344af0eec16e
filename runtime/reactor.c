/*  reactor.c — the actor loop (see reactor.h).

    A thin layer over tiers_poller: the poller keeps the ready flags and
    sleeps; the reactor decides what runs, in which order, and how much.
    Readers and descriptors are poller items at the same index as their
    entry here; item 0 is the pipe.

    Timers are also looked at between two messages of a burst: a burst
    bounded by count is not bounded in time (256 requests of 1 MB took a
    write-api half a second under the sanitizers), and a heartbeat that
    waits behind it reads as a death. The look is one read of the coarse
    clock per message, made only by a reactor that has timers.
*/
#include "reactor.h"
#include "poller.h"
#include "node.h"
#include "log.h"
#include <time.h>

typedef enum { H_READER, H_FD } handler_kind_t;

typedef struct {
    handler_kind_t kind;
    int item;                   //  poller item
    int burst;
    tiers_reader_fn *read;
    tiers_event_fn *event;
    void *arg;
} handler_t;

typedef struct {
    int interval_ms;
    int64_t due;                //  zclock_mono
    tiers_event_fn *fn;
    void *arg;
} alarm_t;

struct _tiers_reactor_t {
    zsock_t *pipe;
    tiers_poller_t *poller;
    int on_pipe;
    handler_t *handlers;
    size_t handler_count;
    alarm_t *timers;
    size_t timer_count;
    int64_t next_due;           //  the earliest timer's `due`; INT64_MAX: none
    tiers_pass_fn *pass;
    void *pass_arg;
    tiers_command_fn *command;
    void *command_arg;
    bool timed_out;
    bool stopping;              //  tiers_reactor_stop: the run ends after this pass
};

tiers_reactor_t *
tiers_reactor_new (zsock_t *pipe)
{
    tiers_reactor_t *self = (tiers_reactor_t *) zmalloc (sizeof *self);
    assert (self);
    self->pipe = pipe;
    self->poller = tiers_poller_new ();
    assert (self->poller);
    self->on_pipe = pipe ? tiers_poller_add (self->poller, pipe) : -1;
    self->next_due = INT64_MAX;
    return self;
}

void
tiers_reactor_destroy (tiers_reactor_t **self_p)
{
    assert (self_p);
    tiers_reactor_t *self = *self_p;
    if (self) {
        tiers_poller_destroy (&self->poller);
        free (self->handlers);
        free (self->timers);
        free (self);
        *self_p = NULL;
    }
}

static handler_t *
s_handler_add (tiers_reactor_t *self)
{
    self->handlers = (handler_t *) realloc (self->handlers,
                     (self->handler_count + 1) * sizeof (handler_t));
    assert (self->handlers);
    handler_t *handler = &self->handlers [self->handler_count++];
    memset (handler, 0, sizeof *handler);
    return handler;
}

int
tiers_reactor_reader (tiers_reactor_t *self, void *socket, int burst,
                      tiers_reader_fn *fn, void *arg)
{
    assert (self && fn);
    handler_t *handler = s_handler_add (self);
    handler->kind = H_READER;
    handler->item = tiers_poller_add (self->poller, socket);
    handler->burst = burst > 0 ? burst : TIERS_REACTOR_BURST;
    handler->read = fn;
    handler->arg = arg;
    return (int) self->handler_count - 1;
}

void
tiers_reactor_set_socket (tiers_reactor_t *self, int reader, void *socket)
{
    assert (self);
    assert (reader >= 0 && (size_t) reader < self->handler_count);
    assert (self->handlers [reader].kind == H_READER);
    tiers_poller_set (self->poller, self->handlers [reader].item, socket);
}

int
tiers_reactor_fd (tiers_reactor_t *self, int fd, tiers_event_fn *fn, void *arg)
{
    assert (self && fn && fd >= 0);
    handler_t *handler = s_handler_add (self);
    handler->kind = H_FD;
    handler->item = tiers_poller_add_fd (self->poller, fd);
    handler->event = fn;
    handler->arg = arg;
    return (int) self->handler_count - 1;
}

int
tiers_reactor_timer (tiers_reactor_t *self, int interval_ms,
                     tiers_event_fn *fn, void *arg)
{
    assert (self && fn && interval_ms >= 0);
    self->timers = (alarm_t *) realloc (self->timers,
                   (self->timer_count + 1) * sizeof (alarm_t));
    assert (self->timers);
    alarm_t *timer = &self->timers [self->timer_count++];
    timer->interval_ms = interval_ms;
    timer->due = zclock_mono () + interval_ms;
    timer->fn = fn;
    timer->arg = arg;
    if (timer->due < self->next_due)
        self->next_due = timer->due;
    return (int) self->timer_count - 1;
}

void
tiers_reactor_set_pass (tiers_reactor_t *self, tiers_pass_fn *fn, void *arg)
{
    assert (self);
    self->pass = fn;
    self->pass_arg = arg;
}

void
tiers_reactor_set_command (tiers_reactor_t *self, tiers_command_fn *fn, void *arg)
{
    assert (self);
    self->command = fn;
    self->command_arg = arg;
}

void
tiers_reactor_stop (tiers_reactor_t *self)
{
    assert (self);
    self->stopping = true;
}

bool
tiers_reactor_timed_out (tiers_reactor_t *self)
{
    assert (self);
    return self->timed_out;
}

//  Every command waiting on the pipe; true on $TERM (or no pipe left).
static bool
s_on_pipe (tiers_reactor_t *self)
{
    while (zsock_events (self->pipe) & ZMQ_POLLIN) {
        char *command = zstr_recv (self->pipe);
        if (!command || streq (command, "$TERM")) {
            zstr_free (&command);
            return true;
        }
        if (self->command)
            self->command (command, self->command_arg);
        else
            tiers_warn ("unknown command '%s' on the pipe ignored", command);
        zstr_free (&command);
    }
    return false;
}

//  The wait: until the nearest timer, or what the pass hook asked for.
static int
s_timeout (tiers_reactor_t *self, int wish)
{
    int64_t now = zclock_mono ();
    int64_t timeout = wish;
    for (size_t i = 0; i < self->timer_count; i++) {
        int64_t left = self->timers [i].due - now;
        if (left < 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = left;
    }
    return (int) timeout;
}

//  The timers that are due, each rescheduled one interval after it ran.
static void
s_timers (tiers_reactor_t *self)
{
    int64_t now = zclock_mono ();
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->timer_count; i++) {
        alarm_t *timer = &self->timers [i];
        if (now >= timer->due) {
            timer->fn (timer->arg);
            timer->due = zclock_mono () + timer->interval_ms;
        }
        if (timer->due < next)
            next = timer->due;
    }
    self->next_due = next;
}

//  Milliseconds of the monotonic clock, from its coarse variant where the
//  kernel has one (a few nanoseconds, no system call; it lags by at most
//  a scheduler tick, 1 to 4 ms, which only makes a timer that late).
static int64_t
s_coarse_ms (void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec now;
    if (clock_gettime (CLOCK_MONOTONIC_COARSE, &now) == 0)
        return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
#endif
    return zclock_mono ();
}

void
tiers_reactor_run (tiers_reactor_t *self)
{
    assert (self);
    int wish = self->pass ? self->pass (self->pass_arg) : -1;
    while (true) {
        int ready = tiers_poller_wait (self->poller, s_timeout (self, wish));
        self->timed_out = ready == 0;
        if (self->on_pipe >= 0 && tiers_poller_ready (self->poller, self->on_pipe)) {
            if (s_on_pipe (self))
                break;
            tiers_poller_idle (self->poller, self->on_pipe);
        }
        for (size_t i = 0; i < self->handler_count; i++) {
            handler_t *handler = &self->handlers [i];
            if (handler->kind == H_READER) {
                for (int n = 0; n < handler->burst
                             && tiers_poller_ready (self->poller, handler->item); n++)
                    if (!handler->read (handler->arg))
                        tiers_poller_idle (self->poller, handler->item);
                    else
                    if (self->timer_count && s_coarse_ms () >= self->next_due)
                        s_timers (self);        //  between two messages
            }
            else
            if (tiers_poller_ready (self->poller, handler->item)) {
                tiers_poller_idle (self->poller, handler->item);
                handler->event (handler->arg);
            }
        }
        if (self->timer_count)
            s_timers (self);
        wish = self->pass ? self->pass (self->pass_arg) : -1;
        if (self->stopping)
            break;
    }
    self->stopping = false;
}
