/*  tool.c — small helpers for the shell cluster tests.

        tool freeport             print a TCP port on 127.0.0.1 free just now
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
*/
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

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
    struct sockaddr_storage addr;
    memset (&addr, 0, sizeof addr);
    socklen_t size;
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        size = sizeof *in6;
    }
    else {
        struct sockaddr_in *in4 = (struct sockaddr_in *) &addr;
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        size = sizeof *in4;
    }
    int fd = socket (addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || bind (fd, (struct sockaddr *) &addr, size)
    ||  getsockname (fd, (struct sockaddr *) &addr, &size))
        return 1;
    printf ("%d\n", ntohs (v6 ? ((struct sockaddr_in6 *) &addr)->sin6_port
                              : ((struct sockaddr_in *) &addr)->sin_port));
    close (fd);
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
    ||  s_read_all (fd, peer, sizeof peer))
        return 1;
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

int
main (int argc, char **argv)
{
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
    fprintf (stderr, "usage: tool freeport | tool slowloris PORT SECONDS | tool send PORT\n");
    return 2;
}
