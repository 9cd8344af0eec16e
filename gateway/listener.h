/*  listener.h — the listening socket of an HTTP face, and who may come in.

    libmicrohttpd at its connection limit stops accepting, and the clients
    beyond it wait in the kernel's accept queue without a word until a slot
    frees (issue 10, item 9). So the face accepts for MHD: the listener
    takes each waiting connection and decides, before MHD sees it, whether
    there is room for it —

        connections     under the listener's own limit
        per_client      under the limit for the client's address
        descriptors     within the process's file descriptors

    — and the face either hands it to MHD (MHD_add_connection) or answers
    503 with Retry-After itself and closes it (tiers_listener_refuse). A
    refusal costs an accept, one send and a close: no MHD connection, no
    memory pool, no request parsing.

    The descriptor budget is the process's. The first listener raises the
    soft RLIMIT_NOFILE to the hard limit, and every listener of the
    process draws from one count of open connections, kept within that
    limit less a reserve for everything else the process holds (ZeroMQ,
    SQLite, logs, the listeners themselves). Should the process run out
    all the same, one descriptor kept spare lets the listener still accept
    and refuse (503) the connection that found none.

    A listener belongs to the face's thread; only the budget is shared.
*/
#ifndef TIERS_LISTENER_H
#define TIERS_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct _tiers_listener_t tiers_listener_t;
typedef struct _tiers_client_t tiers_client_t;     //  one client address

typedef enum {
    TIERS_ADMIT_NONE,       //  nothing (more) waiting
    TIERS_ADMIT_OK,         //  admitted: the caller owns the socket and the client
    TIERS_ADMIT_FULL,       //  over the listener's connections: refuse it
    TIERS_ADMIT_CLIENT,     //  over per_client for its address: refuse it
    TIERS_ADMIT_FDS         //  over the process's descriptors: refuse it
} tiers_admit_t;

typedef struct {
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_size;
    tiers_client_t *client;     //  TIERS_ADMIT_OK only
} tiers_arrival_t;

//  Connections all the listeners of the process may hold together: the
//  file descriptor limit (the soft limit raised to the hard one, done
//  once) less the reserve. `limit` (may be NULL) gets the limit itself.
size_t tiers_listener_budget (size_t *limit);

//  Listens on host:port ("*" or "" = any; port 0 = the kernel's choice),
//  with SO_REUSEPORT when reuse_port. NULL + *why (malloc'ed) on failure.
tiers_listener_t *tiers_listener_new (const char *host, int port, bool reuse_port,
                                      unsigned connections, unsigned per_client,
                                      char **why);
//  Closes the socket; every admitted connection must be released first.
void tiers_listener_destroy (tiers_listener_t **self_p);
//  Stops accepting: the listening socket is closed (a new client is
//  refused by the kernel), the admitted connections stay.
void tiers_listener_close (tiers_listener_t *self);

//  The descriptor to wait on: readable when a connection waits.
int tiers_listener_fd (tiers_listener_t *self);
//  The port it listens on (the kernel's choice for port 0).
int tiers_listener_port (tiers_listener_t *self);
//  Connections admitted and not yet released.
unsigned tiers_listener_open (tiers_listener_t *self);

//  Takes one waiting connection and says what to do with it: OK, hand it
//  on and release its client when it closes; FULL, CLIENT or FDS, answer
//  it with tiers_listener_refuse; NONE, nothing waits.
tiers_admit_t tiers_listener_accept (tiers_listener_t *self, tiers_arrival_t *arrival);
//  An admitted connection closed.
void tiers_listener_release (tiers_listener_t *self, tiers_client_t *client);
//  When the process ran out of descriptors and not even the spare one was
//  left, the listener pauses for a moment rather than spin on a socket it
//  cannot accept from. Resumes it when the pause is over; returns the
//  milliseconds until then, or -1 when it is not paused.
long tiers_listener_wake (tiers_listener_t *self);

//  Writes a whole answer on `fd` without waiting: the status line,
//  Content-Type application/problem+json, Retry-After (when not NULL),
//  Date, X-Request-Id (when rid is not NULL), Connection: close and the
//  problem (runtime/problem.h). For sockets no request was read from, or
//  whose request MHD never finished reading. Returns 0 when all of it went.
int tiers_listener_answer (int fd, int status, const char *detail, const char *rid,
                           const char *retry_after);
//  Answers (as tiers_listener_answer), then closes: the write side first,
//  and what the client already sent is read and dropped, so that the
//  close does not reset the connection under the answer.
void tiers_listener_refuse (int fd, int status, const char *detail, const char *rid,
                            const char *retry_after);
//  The same for a TLS listener, where no HTTP can be written before a
//  handshake: a fatal TLS alert (internal_error), then closed.
void tiers_listener_refuse_tls (int fd);
//  Shuts the write side and drops what the client already sent (at most
//  64 KiB), without closing: for an answer written on a socket someone
//  else closes.
void tiers_listener_end (int fd);

#endif
