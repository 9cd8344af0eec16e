/*  t/unit/reactor.c — tests for runtime/reactor.c.

    Real inproc sockets, one thread. A burst of slow messages (5 ms of work
    each) does not hold a timer back: the timer runs between two messages
    of the burst, on time (issue 10, item 13: a write-api busy with a burst
    of 1 MB requests let its heartbeats wait behind it, and was declared
    dead). A reactor without timers reads its burst as before, and the pass
    hook still comes after the readers.
*/
#include "reactor.h"
#include "t/tap.h"
#include <czmq.h>

#define MESSAGES    40
#define WORK_MS     5
#define INTERVAL_MS 10

typedef struct {
    zsock_t *in;                //  the reader's socket
    zsock_t *stop;              //  the other end of the reactor's pipe
    int taken;                  //  messages read so far
    int work_ms;                //  the cost of one message
    int64_t ticks [MESSAGES * 4];
    int taken_at [MESSAGES * 4];
    int tick_count;
    int passes;
    int taken_at_pass;          //  messages read when the last pass ran
} bench_t;

static bool
s_on_in (void *arg)
{
    bench_t *self = (bench_t *) arg;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = zmq_msg_recv (&msg, zsock_resolve (self->in), ZMQ_DONTWAIT);
    zmq_msg_close (&msg);
    if (rc == -1)
        return false;
    if (self->work_ms)
        zclock_sleep (self->work_ms);
    if (++self->taken == MESSAGES)
        zstr_send (self->stop, "$TERM");
    return true;
}

static void
s_on_tick (void *arg)
{
    bench_t *self = (bench_t *) arg;
    if (self->tick_count < MESSAGES * 4) {
        self->ticks [self->tick_count] = zclock_mono ();
        self->taken_at [self->tick_count] = self->taken;
        self->tick_count++;
    }
}

static int
s_on_pass (void *arg)
{
    bench_t *self = (bench_t *) arg;
    self->passes++;
    self->taken_at_pass = self->taken;
    return -1;
}

typedef struct {
    tiers_reactor_t *reactor;
    zsock_t *in;
    int taken;
} stopper_t;

//  Takes "stop" and stops the reactor.
static bool
s_on_stop (void *arg)
{
    stopper_t *self = (stopper_t *) arg;
    if (!(zsock_events (self->in) & ZMQ_POLLIN))
        return false;
    char *text = zstr_recv (self->in);
    self->taken++;
    if (text && streq (text, "stop"))
        tiers_reactor_stop (self->reactor);
    zstr_free (&text);
    return true;
}

//  One run: MESSAGES queued, then the reactor until the reader stops it.
static void
s_run (bench_t *self, bool timer, const char *endpoint)
{
    zsock_t *out = zsock_new_pair (NULL);
    self->in = zsock_new_pair (NULL);
    zsock_bind (self->in, "%s", endpoint);
    zsock_connect (out, "%s", endpoint);
    char pipe_endpoint [64];
    snprintf (pipe_endpoint, sizeof pipe_endpoint, "%s-pipe", endpoint);
    zsock_t *pipe = zsock_new_pair (NULL);
    self->stop = zsock_new_pair (NULL);
    zsock_bind (pipe, "%s", pipe_endpoint);
    zsock_connect (self->stop, "%s", pipe_endpoint);
    for (int i = 0; i < MESSAGES; i++)
        zstr_send (out, "work");

    tiers_reactor_t *reactor = tiers_reactor_new (pipe);
    tiers_reactor_reader (reactor, self->in, 0, s_on_in, self);
    if (timer)
        tiers_reactor_timer (reactor, INTERVAL_MS, s_on_tick, self);
    tiers_reactor_set_pass (reactor, s_on_pass, self);
    tiers_reactor_run (reactor);
    tiers_reactor_destroy (&reactor);
    zsock_destroy (&self->stop);
    zsock_destroy (&pipe);
    zsock_destroy (&self->in);
    zsock_destroy (&out);
}

int
main (void)
{
    //  A burst of MESSAGES x WORK_MS = 200 ms, with a 10 ms timer.
    bench_t slow = { .work_ms = WORK_MS };
    int64_t start = zclock_mono ();
    s_run (&slow, true, "inproc://reactor-slow");
    int64_t elapsed = zclock_mono () - start;
    is_int (slow.taken, MESSAGES, "the reader took every message (%d ms)",
            (int) elapsed);
    //  What the timer's place between messages means, counted in messages
    //  (a loaded machine stretches the wall clock, not the count): between
    //  two ticks the reader took about INTERVAL_MS / WORK_MS = 2 messages,
    //  never a burst (256) — at most 4, as the reactor's look at the clock
    //  is the coarse one, up to a scheduler tick (10 ms at HZ=100) behind.
    //  The wall-clock gap is only checked loosely.
    int during = 0;
    int most = 0;               //  messages taken between two ticks, at most
    int64_t gap = 0;
    int64_t last = start;
    int taken_before = 0;
    for (int i = 0; i < slow.tick_count; i++) {
        if (slow.taken_at [i] > 0 && slow.taken_at [i] < MESSAGES)
            during++;
        if (slow.taken_at [i] - taken_before > most)
            most = slow.taken_at [i] - taken_before;
        taken_before = slow.taken_at [i];
        if (slow.ticks [i] - last > gap)
            gap = slow.ticks [i] - last;
        last = slow.ticks [i];
    }
    if (MESSAGES - taken_before > most)
        most = MESSAGES - taken_before;     //  after the last tick
    ok (during >= (MESSAGES * WORK_MS) / INTERVAL_MS / 2,
        "the timer ran between the messages of the burst (%d times of %d)",
        during, slow.tick_count);
    ok (most <= 4,
        "never more than a few messages between two ticks (at most %d, "
        "interval %d ms, one message %d ms)", most, INTERVAL_MS, WORK_MS);
    ok (gap < 500,
        "and no tick long late (longest gap %d ms)", (int) gap);
    ok (slow.passes >= 1 && slow.taken_at_pass == MESSAGES,
        "the pass hook still comes after the readers (%d passes)", slow.passes);

    //  Without timers the burst is read as before: one pass takes all.
    bench_t fast = { .work_ms = 0 };
    s_run (&fast, false, "inproc://reactor-fast");
    is_int (fast.taken, MESSAGES, "no timers: the reader took every message");
    is_int (fast.tick_count, 0, "and nothing else ran between them");
    ok (fast.passes <= 3, "in one burst (%d passes)", fast.passes);

    //  A handler that stops the reactor: the run ends after that pass,
    //  with $TERM still unread on the pipe (the next loop's to take).
    zsock_t *pipe = zsock_new_pair ("@inproc://reactor-stop-pipe");
    zsock_t *other = zsock_new_pair (">inproc://reactor-stop-pipe");
    zsock_t *in = zsock_new_pair ("@inproc://reactor-stop");
    zsock_t *out = zsock_new_pair (">inproc://reactor-stop");
    zstr_send (out, "stop");
    tiers_reactor_t *reactor = tiers_reactor_new (pipe);
    stopper_t stopper = { reactor, in, 0 };
    tiers_reactor_reader (reactor, in, 0, s_on_stop, &stopper);
    tiers_reactor_run (reactor);
    is_int (stopper.taken, 1, "tiers_reactor_stop ends the run after its pass");
    zstr_send (other, "$TERM");
    zstr_send (out, "more");
    tiers_reactor_run (reactor);
    ok (stopper.taken >= 1, "a run after a stop ends on $TERM");
    tiers_reactor_destroy (&reactor);
    zsock_destroy (&out);
    zsock_destroy (&in);
    zsock_destroy (&other);
    zsock_destroy (&pipe);
    return done_testing ();
}
