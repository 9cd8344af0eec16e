/*  poller.c — tiers_poller: ready flags, one poll() per sleep.

    See poller.h for the idea. The implementation keeps the pollfd array
    ready-made; ZMQ_FD is read when a socket is added or replaced.
*/
#include "poller.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sched.h>
#include <czmq.h>

typedef struct {
    void *handle;               //  libzmq socket, or NULL
    int fd;                     //  its ZMQ_FD, or the plain descriptor
    bool plain;                 //  a plain descriptor
    bool ready;
} item_t;

struct _tiers_poller_t {
    item_t *items;              //  grows as items are added: an API has
    size_t count, size;         //  one socket per shard, a map has many
    struct pollfd *fds;         //  room for `size` items, for the wait
    int *map;                   //  fds [i] belongs to items [map [i]]
    unsigned busy_passes;       //  waits answered without poll() in a row
};

//  Sockets this thread sent on since its last wait. When the list
//  overflows, every socket is asked.
#define SENT_MAX 8
static __thread void *s_sent [SENT_MAX];
static __thread size_t s_sent_count;
static __thread bool s_sent_overflow;

//  A waiting socket is polled now and then even while others are ready,
//  so that a busy socket cannot starve a quiet one.
#define BUSY_PASSES_MAX 8

tiers_poller_t *
tiers_poller_new (void)
{
    return (tiers_poller_t *) calloc (1, sizeof (tiers_poller_t));
}

void
tiers_poller_destroy (tiers_poller_t **self_p)
{
    assert (self_p);
    tiers_poller_t *self = *self_p;
    if (self) {
        free (self->items);
        free (self->fds);
        free (self->map);
        free (self);
        *self_p = NULL;
    }
}

//  Returns the next free item, the arrays grown when needed.
static item_t *
s_next_item (tiers_poller_t *self)
{
    if (self->count == self->size) {
        size_t size = self->size ? self->size * 2 : 8;
        item_t *items = (item_t *) realloc (self->items, size * sizeof (item_t));
        struct pollfd *fds = (struct pollfd *) realloc (self->fds,
                                                        size * sizeof (struct pollfd));
        int *map = (int *) realloc (self->map, size * sizeof (int));
        assert (items && fds && map);
        self->items = items;
        self->fds = fds;
        self->map = map;
        self->size = size;
    }
    return &self->items [self->count];
}

static void
s_fill (item_t *item, void *socket)
{
    item->handle = socket ? zsock_resolve (socket) : NULL;
    item->fd = -1;
    item->plain = false;
    item->ready = item->handle != NULL;
    if (item->handle) {
        size_t size = sizeof item->fd;
        if (zmq_getsockopt (item->handle, ZMQ_FD, &item->fd, &size))
            item->fd = -1;
    }
}

int
tiers_poller_add (tiers_poller_t *self, void *socket)
{
    assert (self);
    s_fill (s_next_item (self), socket);
    return (int) self->count++;
}

int
tiers_poller_add_fd (tiers_poller_t *self, int fd)
{
    assert (self);
    item_t *item = s_next_item (self);
    *item = (item_t) { NULL, fd, true, false };
    return (int) self->count++;
}

void
tiers_poller_set (tiers_poller_t *self, int index, void *socket)
{
    assert (self);
    assert (index >= 0 && (size_t) index < self->count);
    assert (!self->items [index].plain);
    s_fill (&self->items [index], socket);
}

bool
tiers_poller_ready (tiers_poller_t *self, int index)
{
    assert (self);
    assert (index >= 0 && (size_t) index < self->count);
    return self->items [index].ready;
}

void
tiers_poller_idle (tiers_poller_t *self, int index)
{
    assert (self);
    assert (index >= 0 && (size_t) index < self->count);
    self->items [index].ready = false;
}

void
tiers_poller_sent (void *socket)
{
    void *handle = socket ? zsock_resolve (socket) : NULL;
    if (!handle)
        return;
    for (size_t i = 0; i < s_sent_count; i++)
        if (s_sent [i] == handle)
            return;
    if (s_sent_count < SENT_MAX)
        s_sent [s_sent_count++] = handle;
    else
        s_sent_overflow = true;
}

//  Sockets sent on may hold input their ZMQ_FD no longer tells about.
static void
s_check_sent (tiers_poller_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        item_t *item = &self->items [i];
        if (item->ready || !item->handle)
            continue;
        bool sent = s_sent_overflow;
        for (size_t j = 0; !sent && j < s_sent_count; j++)
            sent = s_sent [j] == item->handle;
        if (!sent)
            continue;
        int events = 0;
        size_t size = sizeof events;
        if (zmq_getsockopt (item->handle, ZMQ_EVENTS, &events, &size) == 0
        &&  (events & ZMQ_POLLIN))
            item->ready = true;
    }
    s_sent_count = 0;
    s_sent_overflow = false;
}

static int s_spin_us = TIERS_POLLER_SPIN_US;

//  Before sleeping, look again for a short while, giving the core to
//  whoever else wants it: a thread that is running needs no wake-up.
//  Returns the timeout left for the real sleep (0 when something came).
static int
s_spin (struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    if (s_spin_us == 0 || timeout_ms == 0)
        return timeout_ms;
    int64_t until = zclock_usecs () + s_spin_us;
    do {
        if (poll (fds, nfds, 0) > 0)
            return 0;
        sched_yield ();
    } while (zclock_usecs () < until);
    return timeout_ms;
}

void
tiers_poller_set_spin (int spin_us)
{
    s_spin_us = spin_us > 0 ? spin_us : 0;
}

static size_t
s_ready_count (tiers_poller_t *self)
{
    size_t ready = 0;
    for (size_t i = 0; i < self->count; i++)
        ready += self->items [i].ready;
    return ready;
}

int
tiers_poller_wait (tiers_poller_t *self, int timeout_ms)
{
    assert (self);
    size_t ready = s_ready_count (self);
    if (ready == 0) {
        s_check_sent (self);
        ready = s_ready_count (self);
    }
    if (ready && ++self->busy_passes < BUSY_PASSES_MAX)
        return (int) ready;
    //  Sleep (nothing ready), or a look at the others (busy for a while).
    //  The look asks the sockets this thread sent on, too: a send can take
    //  the wake-up of a socket that is not ready, and poll() would not see it.
    if (ready) {
        s_check_sent (self);
        ready = s_ready_count (self);
    }
    self->busy_passes = 0;
    struct pollfd *fds = self->fds;
    int *map = self->map;
    nfds_t nfds = 0;
    for (size_t i = 0; i < self->count; i++) {
        item_t *item = &self->items [i];
        if (item->fd < 0 || (item->ready && !item->plain))
            continue;
        fds [nfds] = (struct pollfd) { item->fd, POLLIN, 0 };
        map [nfds++] = (int) i;
    }
    int rc = poll (fds, nfds, ready ? 0 : s_spin (fds, nfds, timeout_ms));
    if (rc < 0)
        return errno == EINTR ? -1 : (int) ready;
    for (nfds_t i = 0; i < nfds; i++)
        if (fds [i].revents) {
            item_t *item = &self->items [map [i]];
            if (!item->ready)
                ready++;
            item->ready = true;
        }
    return (int) ready;
}
