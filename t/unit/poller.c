/*  t/unit/poller.c — tests for runtime/poller.c.

    Real inproc sockets and a real pipe(2): a new socket starts ready; a
    drained one sleeps until a message comes; the wait times out; a plain
    descriptor reports while it is readable; a busy socket does not starve a
    quiet one; a socket sent on is asked before the thread sleeps; a socket
    replaced at the same place is watched afresh.
*/
#include "poller.h"
#include "t/tap.h"
#include <czmq.h>
#include <unistd.h>

//  Drains `sock` without waiting; returns how many messages it took and
//  marks the item idle when it ran dry.
static int
s_drain (tiers_poller_t *poller, int index, zsock_t *sock)
{
    int count = 0;
    while (tiers_poller_ready (poller, index)) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, zsock_resolve (sock), ZMQ_DONTWAIT) == -1)
            tiers_poller_idle (poller, index);
        else
            count++;
        zmq_msg_close (&msg);
    }
    return count;
}

int
main (void)
{
    zsock_t *a_in = zsock_new_pair ("@inproc://poller-a");
    zsock_t *a_out = zsock_new_pair (">inproc://poller-a");
    zsock_t *b_in = zsock_new_pair ("@inproc://poller-b");
    zsock_t *b_out = zsock_new_pair (">inproc://poller-b");
    int fds [2];
    ok (a_in && a_out && b_in && b_out && pipe (fds) == 0, "sockets and a pipe");

    tiers_poller_t *poller = tiers_poller_new ();
    int on_a = tiers_poller_add (poller, a_in);
    int on_b = tiers_poller_add (poller, b_in);
    int on_fd = tiers_poller_add_fd (poller, fds [0]);
    int on_none = tiers_poller_add (poller, NULL);
    ok (on_a == 0 && on_b == 1 && on_fd == 2 && on_none == 3, "indexes in order");
    ok (tiers_poller_ready (poller, on_a) && tiers_poller_ready (poller, on_b),
        "a new socket starts ready");
    ok (!tiers_poller_ready (poller, on_fd) && !tiers_poller_ready (poller, on_none),
        "a descriptor and an empty place do not");
    is_int (tiers_poller_wait (poller, 0), 2, "wait answers at once: 2 ready");
    is_int (s_drain (poller, on_a, a_in) + s_drain (poller, on_b, b_in), 0,
            "nothing to take yet");

    int64_t start = zclock_mono ();
    is_int (tiers_poller_wait (poller, 60), 0, "nothing ready: the wait times out");
    ok (zclock_mono () - start >= 50, "after about its timeout (%d ms)",
        (int) (zclock_mono () - start));

    zstr_send (a_out, "one");
    zstr_send (a_out, "two");
    start = zclock_mono ();
    is_int (tiers_poller_wait (poller, 2000), 1, "a message wakes the wait");
    ok (zclock_mono () - start < 1000, "at once");
    ok (tiers_poller_ready (poller, on_a) && !tiers_poller_ready (poller, on_b),
        "the socket that got it, only");
    is_int (s_drain (poller, on_a, a_in), 2, "both messages are taken");
    is_int (tiers_poller_wait (poller, 20), 0, "then it sleeps again");

    ok (write (fds [1], "x", 1) == 1, "a byte into the pipe");
    is_int (tiers_poller_wait (poller, 2000), 1, "the descriptor wakes the wait");
    ok (tiers_poller_ready (poller, on_fd), "the descriptor is ready");
    tiers_poller_idle (poller, on_fd);
    is_int (tiers_poller_wait (poller, 0), 1, "still readable: ready again");
    char byte;
    ok (read (fds [0], &byte, 1) == 1, "read it");
    tiers_poller_idle (poller, on_fd);
    is_int (tiers_poller_wait (poller, 20), 0, "served: quiet");

    //  a stays busy (never drained to EAGAIN); b must still be noticed
    zstr_send (a_out, "busy");
    is_int (tiers_poller_wait (poller, 2000), 1, "a is busy");
    zstr_send (b_out, "quiet");
    int passes = 0;
    while (!tiers_poller_ready (poller, on_b) && passes < 100) {
        tiers_poller_wait (poller, 0);
        passes++;
    }
    ok (tiers_poller_ready (poller, on_b) && passes > 1 && passes <= 8,
        "a busy socket does not starve a quiet one (%d passes)", passes);
    s_drain (poller, on_a, a_in);
    s_drain (poller, on_b, b_in);

    //  Sent on: asked before sleeping, whatever its descriptor says
    zstr_send (a_out, "reply");
    zclock_sleep (20);
    tiers_poller_sent (a_in);
    int64_t events = zsock_events (a_in);   //  takes the wake-up signal
    ok (events & ZMQ_POLLIN, "the reply is there");
    is_int (tiers_poller_wait (poller, 2000), 1, "a socket sent on is asked before sleeping");
    is_int (s_drain (poller, on_a, a_in), 1, "and the reply is taken");
    is_int (tiers_poller_wait (poller, 20), 0, "the note is used once");

    //  Sent on while another socket stays busy: the busy pass asks it too
    //  (a wake-up taken by the send is not seen by poll())
    zstr_send (a_out, "busy again");
    is_int (tiers_poller_wait (poller, 2000), 1, "a is busy again");
    zstr_send (b_out, "answer");
    zclock_sleep (20);
    tiers_poller_sent (b_in);
    events = zsock_events (b_in);           //  takes b's wake-up signal
    ok (events & ZMQ_POLLIN, "b's answer is there");
    passes = 0;
    while (!tiers_poller_ready (poller, on_b) && passes < 100) {
        tiers_poller_wait (poller, 0);
        passes++;
    }
    ok (tiers_poller_ready (poller, on_b) && passes <= 8,
        "a socket sent on is found while another stays busy (%d passes)", passes);
    s_drain (poller, on_a, a_in);
    s_drain (poller, on_b, b_in);

    //  Replaced: the new socket is watched, starting ready
    zsock_t *c_in = zsock_new_pair ("@inproc://poller-c");
    zsock_t *c_out = zsock_new_pair (">inproc://poller-c");
    tiers_poller_set (poller, on_none, c_in);
    ok (tiers_poller_ready (poller, on_none), "a socket set in a place starts ready");
    s_drain (poller, on_none, c_in);
    zstr_send (c_out, "c");
    is_int (tiers_poller_wait (poller, 2000), 1, "and wakes the wait");
    is_int (s_drain (poller, on_none, c_in), 1, "its message is taken");
    tiers_poller_set (poller, on_none, NULL);
    zstr_send (c_out, "ignored");
    is_int (tiers_poller_wait (poller, 20), 0, "set to NULL: no longer watched");

    tiers_poller_destroy (&poller);
    ok (poller == NULL, "destroy nulls the pointer");
    tiers_poller_destroy (&poller);
    ok (true, "destroy on NULL is safe");
    close (fds [0]);
    close (fds [1]);
    zsock_destroy (&a_in);
    zsock_destroy (&a_out);
    zsock_destroy (&b_in);
    zsock_destroy (&b_out);
    zsock_destroy (&c_in);
    zsock_destroy (&c_out);
    return done_testing ();
}
