/*  tool.c — small helpers for the shell cluster tests.

        tool freeport             print a TCP port on 127.0.0.1 free just now
                                  that no test of this build tree was given
                                  in the last ten minutes (ports.h)
        tool freeport6            the same on [::1]; exits 1 where there is
                                  no IPv6 loopback
        tool slowloris PORT SECS  hold 8 connections open for SECS seconds,
                                  sending a partial request one byte at a time
                                  (a slow client that never finishes); prints
                                  "connected N" once connected and exits 1
                                  unless all 8 connected and stayed open
        tool send PORT            send standard input as it is (raw bytes,
                                  NULs too), print what comes back within
                                  2 s or until the server closes
        tool zmtp-huge PORT SIZE  speak ZMTP 3.0 (NULL mechanism, as a
                                  DEALER) to the ZeroMQ socket at PORT, then
                                  announce one frame of SIZE bytes and send
                                  a few; prints "closed" when the peer drops
                                  the connection within 3 s, else "open"
        tool flood HOST PORT N SECS [put]
                                  open N connections at once, send one
                                  request on each (GET /health, or with put
                                  PUT /v1/flood/cI) and keep them all open;
                                  after SECS, or once every connection is
                                  answered or closed, print one line of
                                  counts (connected, answered, ok = 2xx,
                                  busy = 503, retry_after = 503 with
                                  Retry-After, unanswered = closed without
                                  an answer, silent = neither) and a line
                                  "unserved I..." naming the connections
                                  that got no 2xx answer
        tool trickle HOST PORT N INTERVAL_MS SECS [ADDRESSES [head|body|next]]
                                  N connections from each of ADDRESSES
                                  source addresses (127.0.0.2, .3, ...; 0 =
                                  the kernel's choice, the default), each
                                  sending one byte of a request head that
                                  never ends every INTERVAL_MS (body: the
                                  head of a PUT at once, then one byte of
                                  its body; next: a whole GET at once, and
                                  after its answer the next head, one byte
                                  at a time); prints "connected C" once
                                  connected, and after SECS one line of
                                  counts: refused (answered 503), timed_out
                                  (answered 408), closed (closed without an
                                  answer), open, and last_408_ms (the
                                  longest a connection lived before its 408)
        tool hold PORT N SECS     open N connections to 127.0.0.1:PORT and
                                  send nothing; print "connected C", hold
                                  them SECS seconds (or until the server
                                  closes them all), then print "open O"
                                  (those still open) and close them
*/
#include "ports.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <time.h>
#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>

static int
s_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0)
        return fd;
    if (fd >= 0)
        close (fd);
    return -1;
}

//  Prints a TCP port free just now on 127.0.0.1 or [::1]; 1 if none.
static int
s_freeport (bool v6)
{
    int port = h_port_pick (v6);
    if (port < 0)
        return 1;
    printf ("%d\n", port);
    return 0;
}

//  Reads exactly `size` bytes within 3 s; -1 on EOF, error or timeout.
static int
s_read_all (int fd, unsigned char *buffer, size_t size)
{
    size_t got = 0;
    struct pollfd item = { fd, POLLIN, 0 };
    while (got < size) {
        if (poll (&item, 1, 3000) <= 0)
            return -1;
        ssize_t n = recv (fd, buffer + got, size - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t) n;
    }
    return 0;
}

static int
s_zmtp_huge (int port, unsigned long long size)
{
    int fd = s_connect (port);
    if (fd < 0)
        return 1;
    //  Greeting: signature, version 3.0, mechanism NULL, as-server 0.
    unsigned char greeting [64] = { 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 0 };
    memcpy (greeting + 12, "NULL", 4);
    unsigned char peer [64];
    if (send (fd, greeting, sizeof greeting, MSG_NOSIGNAL) != sizeof greeting
    ||  s_read_all (fd, peer, sizeof peer)) {
        printf ("closed\n");           //  dropped at the greeting (a CURVE
        return 0;                       //  port refuses NULL at once)
    }
    //  READY with Socket-Type DEALER: a short command frame.
    unsigned char ready [64];
    size_t n = 0;
    ready [n++] = 0x04;
    ready [n++] = 0;                    //  size, set below
    ready [n++] = 5;
    memcpy (ready + n, "READY", 5); n += 5;
    ready [n++] = 11;
    memcpy (ready + n, "Socket-Type", 11); n += 11;
    ready [n++] = 0; ready [n++] = 0; ready [n++] = 0; ready [n++] = 6;
    memcpy (ready + n, "DEALER", 6); n += 6;
    ready [1] = (unsigned char) (n - 2);
    if (send (fd, ready, n, MSG_NOSIGNAL) != (ssize_t) n)
        return 1;
    //  A long message frame that announces `size` bytes, then a few.
    unsigned char frame [9 + 1024] = { 0x02 };
    for (int i = 0; i < 8; i++)
        frame [1 + i] = (unsigned char) (size >> (56 - 8 * i));
    memset (frame + 9, 'x', 1024);
    send (fd, frame, sizeof frame, MSG_NOSIGNAL);
    //  Whatever the peer sends (its READY) is read; EOF or reset = closed.
    struct pollfd item = { fd, POLLIN, 0 };
    bool closed = false;
    struct timespec start, now;
    clock_gettime (CLOCK_MONOTONIC, &start);
    while (!closed) {
        clock_gettime (CLOCK_MONOTONIC, &now);
        long left = 3000 - ((now.tv_sec - start.tv_sec) * 1000
                          + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0 || poll (&item, 1, (int) left) <= 0)
            break;
        unsigned char buffer [4096];
        closed = recv (fd, buffer, sizeof buffer, 0) <= 0;
    }
    printf ("%s\n", closed ? "closed" : "open");
    close (fd);
    return 0;
}

static long long
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (long long) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Starts a non-blocking connect to HOST:PORT from `source` (NULL: the
//  kernel's choice); -1 when even that fails.
static int
s_connect_start (const char *host, int port, const char *source)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port) };
    if (source) {
        struct sockaddr_in from = { .sin_family = AF_INET };
        if (inet_pton (AF_INET, source, &from.sin_addr) != 1
        ||  bind (fd, (struct sockaddr *) &from, sizeof from)) {
            close (fd);
            return -1;
        }
    }
    if (inet_pton (AF_INET, host, &addr.sin_addr) != 1
    ||  (connect (fd, (struct sockaddr *) &addr, sizeof addr) && errno != EINPROGRESS)) {
        close (fd);
        return -1;
    }
    return fd;
}

//  What came back on one connection, as far as the test cares.
typedef struct {
    int fd;
    bool connected, answered, closed;
    int status;                 //  of the answer's status line
    bool retry_after;           //  the answer carries Retry-After
    char head [4096];           //  the answer's head as it comes
    size_t size;
    long long opened, ended;    //  ms
} peer_t;

//  Reads what is there; true when the peer's state changed for good
//  (a whole answer head, or the end of the connection).
static bool
s_peer_read (peer_t *peer)
{
    char buffer [4096];
    ssize_t n = recv (peer->fd, buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return false;
    if (n <= 0) {
        peer->closed = true;
        peer->ended = s_now_ms ();
        return true;
    }
    if (peer->answered)
        return false;               //  the body, or what follows: not needed
    size_t room = sizeof peer->head - 1 - peer->size;
    size_t take = (size_t) n < room ? (size_t) n : room;
    memcpy (peer->head + peer->size, buffer, take);
    peer->size += take;
    peer->head [peer->size] = 0;
    if (!strstr (peer->head, "\r\n\r\n"))
        return false;
    peer->answered = true;
    peer->ended = s_now_ms ();
    if (strncmp (peer->head, "HTTP/1.", 7) == 0 && strlen (peer->head) > 12)
        peer->status = atoi (peer->head + 9);
    for (char *line = strstr (peer->head, "\r\n"); line; line = strstr (line + 2, "\r\n"))
        if (strncasecmp (line + 2, "Retry-After:", 12) == 0)
            peer->retry_after = true;
    return true;
}

static int
s_flood (const char *host, int port, int count, int seconds, bool put)
{
    peer_t *peers = (peer_t *) calloc ((size_t) count, sizeof (peer_t));
    struct pollfd *items = (struct pollfd *) calloc ((size_t) count, sizeof (struct pollfd));
    if (!peers || !items)
        return 1;
    for (int i = 0; i < count; i++) {
        peers [i].fd = s_connect_start (host, port, NULL);
        peers [i].opened = s_now_ms ();
        items [i].fd = peers [i].fd;
        items [i].events = POLLOUT;
    }
    long long until = s_now_ms () + seconds * 1000LL;
    int done = 0;
    for (int i = 0; i < count; i++)
        if (peers [i].fd < 0) {
            items [i].fd = -1;
            done++;
        }
    while (done < count && s_now_ms () < until) {
        if (poll (items, (nfds_t) count, (int) (until - s_now_ms ())) <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            peer_t *peer = &peers [i];
            if (items [i].fd < 0 || !items [i].revents)
                continue;
            if (!peer->connected) {
                int error = 0;
                socklen_t size = sizeof error;
                getsockopt (peer->fd, SOL_SOCKET, SO_ERROR, &error, &size);
                if (error) {
                    peer->closed = true;
                    items [i].fd = -1;
                    done++;
                    continue;
                }
                peer->connected = true;
                char request [256];
                int length = put
                    ? snprintf (request, sizeof request, "PUT /v1/flood/c%d HTTP/1.1\r\n"
                                "Host: flood\r\nContent-Length: %d\r\n\r\n{\"i\":%d}",
                                i, 6 + snprintf (NULL, 0, "%d", i), i)
                    : snprintf (request, sizeof request,
                                "GET /health HTTP/1.1\r\nHost: flood\r\n\r\n");
                //  An answer may be there before the request: a refusal is
                //  written at once. Either way the request goes out.
                send (peer->fd, request, (size_t) length, MSG_NOSIGNAL);
                items [i].events = POLLIN;
                continue;
            }
            if (s_peer_read (peer)) {
                //  Answered: keep the connection (it holds its slot) but
                //  stop watching it; closed: done with it.
                items [i].fd = -1;
                done++;
            }
        }
    }
    int connected = 0, answered = 0, ok = 0, busy = 0, retry = 0, unanswered = 0;
    for (int i = 0; i < count; i++) {
        peer_t *peer = &peers [i];
        connected += peer->connected;
        answered += peer->answered;
        ok += peer->answered && peer->status >= 200 && peer->status < 300;
        busy += peer->answered && peer->status == 503;
        retry += peer->answered && peer->status == 503 && peer->retry_after;
        unanswered += !peer->answered && peer->closed;
    }
    printf ("connections=%d connected=%d answered=%d ok=%d busy=%d retry_after=%d "
            "unanswered=%d silent=%d\n", count, connected, answered, ok, busy, retry,
            unanswered, count - answered - unanswered);
    printf ("unserved");
    for (int i = 0; i < count; i++)
        if (!peers [i].answered || peers [i].status < 200 || peers [i].status >= 300)
            printf (" %d", i);
    printf ("\n");
    for (int i = 0; i < count; i++)
        if (peers [i].fd >= 0)
            close (peers [i].fd);
    free (peers);
    free (items);
    return 0;
}

typedef enum { TRICKLE_HEAD, TRICKLE_BODY, TRICKLE_NEXT } trickle_t;

static trickle_t
s_trickle_mode (const char *mode)
{
    return strcmp (mode, "body") == 0 ? TRICKLE_BODY
         : strcmp (mode, "next") == 0 ? TRICKLE_NEXT : TRICKLE_HEAD;
}

static int
s_trickle (const char *host, int port, int per_source, int interval_ms, int seconds,
           int sources, trickle_t mode)
{
    int count = per_source * (sources > 0 ? sources : 1);
    peer_t *peers = (peer_t *) calloc ((size_t) count, sizeof (peer_t));
    struct pollfd *items = (struct pollfd *) calloc ((size_t) count, sizeof (struct pollfd));
    size_t *sent = (size_t *) calloc ((size_t) count, sizeof (size_t));
    if (!peers || !items || !sent)
        return 1;
    for (int i = 0; i < count; i++) {
        char source [32];
        if (sources > 0)
            snprintf (source, sizeof source, "127.0.0.%d", 2 + i / per_source);
        peers [i].fd = s_connect_start (host, port, sources > 0 ? source : NULL);
        items [i].fd = peers [i].fd;
        items [i].events = POLLOUT;
    }
    //  Every connect done within 2 s (the ones in a full backlog wait).
    long long until = s_now_ms () + 2000;
    int pending = count;
    while (pending > 0 && s_now_ms () < until) {
        pending = 0;
        for (int i = 0; i < count; i++)
            pending += items [i].fd >= 0 && items [i].events == POLLOUT;
        if (!pending || poll (items, (nfds_t) count, (int) (until - s_now_ms ())) <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            if (items [i].fd < 0 || items [i].events != POLLOUT || !items [i].revents)
                continue;
            int error = 0;
            socklen_t size = sizeof error;
            getsockopt (peers [i].fd, SOL_SOCKET, SO_ERROR, &error, &size);
            peers [i].connected = error == 0;
            peers [i].opened = s_now_ms ();
            items [i].events = POLLIN;
            if (error)
                items [i].fd = -1;
        }
    }
    int connected = 0;
    for (int i = 0; i < count; i++) {
        connected += peers [i].connected;
        if (!peers [i].connected)
            items [i].fd = -1;      //  still waiting in a backlog: left out
    }
    printf ("connected %d\n", connected);
    fflush (stdout);
    const char *head = "GET /health HTTP/1.1\r\nHost: trickle\r\nX-Trickle: ";
    const char *put = "PUT /v1/trickle/t HTTP/1.1\r\nHost: trickle\r\n"
                      "Content-Length: 100000\r\n\r\n";
    const char *get = "GET /health HTTP/1.1\r\nHost: trickle\r\n\r\n";
    const char *first = mode == TRICKLE_BODY ? put : mode == TRICKLE_NEXT ? get : NULL;
    bool *waiting = (bool *) calloc ((size_t) count, sizeof (bool));
    if (!waiting)
        return 1;
    for (int i = 0; first && i < count; i++)
        if (peers [i].connected) {
            send (peers [i].fd, first, strlen (first), MSG_NOSIGNAL);
            waiting [i] = mode == TRICKLE_NEXT;     //  for the first answer
        }
    long long end = s_now_ms () + seconds * 1000LL;
    long long next = s_now_ms ();
    while (s_now_ms () < end) {
        if (s_now_ms () >= next) {
            for (int i = 0; i < count; i++) {
                peer_t *peer = &peers [i];
                if (!peer->connected || peer->closed || peer->answered || waiting [i])
                    continue;
                char byte = mode != TRICKLE_BODY && sent [i] < strlen (head)
                          ? head [sent [i]] : 'a';
                if (send (peer->fd, &byte, 1, MSG_NOSIGNAL) == 1)
                    sent [i]++;
            }
            next += interval_ms;
        }
        long long wait = next - s_now_ms ();
        if (wait > end - s_now_ms ())
            wait = end - s_now_ms ();
        if (poll (items, (nfds_t) count, wait > 0 ? (int) wait : 0) <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            if (items [i].fd < 0 || !items [i].revents || !s_peer_read (&peers [i]))
                continue;
            if (waiting [i] && peers [i].answered && peers [i].status == 200) {
                //  The first request's answer: now the next head trickles,
                //  and its connection's life is counted from here.
                waiting [i] = false;
                peers [i].answered = false;
                peers [i].size = 0;
                peers [i].opened = s_now_ms ();
            }
            else
            if (peers [i].closed)
                items [i].fd = -1;
        }
    }
    int refused = 0, timed_out = 0, closed = 0, open = 0;
    long long last = 0;
    for (int i = 0; i < count; i++) {
        peer_t *peer = &peers [i];
        if (!peer->connected)
            continue;
        refused += peer->answered && peer->status == 503;
        timed_out += peer->answered && peer->status == 408;
        closed += peer->closed && !peer->answered;
        open += !peer->closed && !peer->answered;
        if (peer->answered && peer->status == 408 && peer->ended - peer->opened > last)
            last = peer->ended - peer->opened;
    }
    printf ("sockets=%d connected=%d refused=%d timed_out=%d closed=%d open=%d "
            "last_408_ms=%lld\n", count, connected, refused, timed_out, closed, open, last);
    for (int i = 0; i < count; i++)
        if (peers [i].fd >= 0)
            close (peers [i].fd);
    free (peers);
    free (items);
    free (sent);
    free (waiting);
    return 0;
}

//  Connections that say nothing: they hold their slots (a TLS client that
//  has not sent its ClientHello yet looks the same to the server).
static int
s_hold (int port, int count, int seconds)
{
    if (count < 1 || count > 1024 || seconds < 1)
        return 2;
    struct pollfd items [1024];
    int connected = 0;
    for (int i = 0; i < count; i++) {
        items [i].fd = s_connect (port);
        items [i].events = POLLIN;
        connected += items [i].fd >= 0;
    }
    printf ("connected %d\n", connected);
    fflush (stdout);
    long long end = s_now_ms () + seconds * 1000LL;
    int open = connected;
    while (open > 0 && s_now_ms () < end) {
        if (poll (items, (nfds_t) count, (int) (end - s_now_ms ())) <= 0)
            continue;
        for (int i = 0; i < count; i++)
            if (items [i].fd >= 0 && items [i].revents) {
                char byte;
                if (recv (items [i].fd, &byte, 1, MSG_DONTWAIT) <= 0) {
                    close (items [i].fd);
                    items [i].fd = -1;
                    open--;
                }
            }
    }
    printf ("open %d\n", open);
    for (int i = 0; i < count; i++)
        if (items [i].fd >= 0)
            close (items [i].fd);
    return 0;
}

int
main (int argc, char **argv)
{
    if ((argc == 6 || argc == 7) && strcmp (argv [1], "flood") == 0) {
        if (atoi (argv [4]) < 1 || atoi (argv [5]) < 1
        ||  (argc == 7 && strcmp (argv [6], "put"))) {
            fprintf (stderr, "tool flood: N and SECS are at least 1; the last word is put\n");
            return 2;
        }
        return s_flood (argv [2], atoi (argv [3]), atoi (argv [4]), atoi (argv [5]),
                        argc == 7);
    }
    if (argc >= 7 && argc <= 9 && strcmp (argv [1], "trickle") == 0) {
        const char *mode = argc == 9 ? argv [8] : "head";
        if (strcmp (mode, "head") && strcmp (mode, "body") && strcmp (mode, "next")) {
            fprintf (stderr, "tool trickle: mode is head, body or next\n");
            return 2;
        }
        if (atoi (argv [4]) < 1 || atoi (argv [5]) < 1 || atoi (argv [6]) < 1
        ||  (argc >= 8 && (atoi (argv [7]) < 0 || atoi (argv [7]) > 250))) {
            fprintf (stderr, "tool trickle: N, INTERVAL_MS and SECS are at least 1, "
                     "ADDRESSES 0 to 250\n");
            return 2;
        }
        return s_trickle (argv [2], atoi (argv [3]), atoi (argv [4]), atoi (argv [5]),
                          atoi (argv [6]), argc >= 8 ? atoi (argv [7]) : 0,
                          s_trickle_mode (mode));
    }
    if (argc == 5 && strcmp (argv [1], "hold") == 0)
        return s_hold (atoi (argv [2]), atoi (argv [3]), atoi (argv [4]));
    if (argc == 4 && strcmp (argv [1], "zmtp-huge") == 0)
        return s_zmtp_huge (atoi (argv [2]), strtoull (argv [3], NULL, 10));
    if (argc == 2 && strcmp (argv [1], "freeport") == 0)
        return s_freeport (false);
    if (argc == 2 && strcmp (argv [1], "freeport6") == 0)
        return s_freeport (true);
    if (argc == 4 && strcmp (argv [1], "slowloris") == 0) {
        int port = atoi (argv [2]);
        int seconds = atoi (argv [3]);
        const char *request = "GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: "
                              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        int fds [8], connected = 0;
        for (int i = 0; i < 8; i++) {
            fds [i] = s_connect (port);
            connected += fds [i] >= 0;
        }
        printf ("connected %d\n", connected);
        fflush (stdout);
        for (int t = 0; t < seconds * 4 && request [t]; t++) {
            for (int i = 0; i < 8; i++)
                if (fds [i] >= 0 && send (fds [i], request + t, 1, MSG_NOSIGNAL) != 1) {
                    close (fds [i]);
                    fds [i] = -1;
                }
            struct timespec quarter = { 0, 250000000 };
            nanosleep (&quarter, NULL);
        }
        int open = 0;
        for (int i = 0; i < 8; i++)
            if (fds [i] >= 0) {
                close (fds [i]);
                open++;
            }
        return connected == 8 && open == 8 ? 0 : 1;
    }
    if (argc == 3 && strcmp (argv [1], "send") == 0) {
        int fd = s_connect (atoi (argv [2]));
        if (fd < 0)
            return 1;
        char buffer [65536];
        ssize_t size;
        while ((size = read (0, buffer, sizeof buffer)) > 0)
            if (send (fd, buffer, (size_t) size, MSG_NOSIGNAL) != size)
                return 1;
        shutdown (fd, SHUT_WR);
        struct pollfd item = { fd, POLLIN, 0 };
        while (poll (&item, 1, 2000) > 0
           &&  (size = recv (fd, buffer, sizeof buffer, 0)) > 0)
            fwrite (buffer, 1, (size_t) size, stdout);
        close (fd);
        return 0;
    }
    fprintf (stderr, "usage: tool freeport | tool slowloris PORT SECONDS | tool send PORT\n"
                     "     | tool flood HOST PORT N SECS [put]\n"
                     "     | tool trickle HOST PORT N INTERVAL_MS SECS [ADDRESSES [head|body|next]]\n");
    return 2;
}
