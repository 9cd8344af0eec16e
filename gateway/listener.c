/*  listener.c — the listening socket of an HTTP face (see listener.h).

    The one idea: decide at accept time, before anything is spent on a
    connection, whether it may come in, and tell the one that may not.

    Admission keeps three counts: the listener's open connections, one
    count per client address (a hash of the address text, the entry gone
    when its count drops to 0) and the process's count against the
    descriptor budget (an atomic, shared by the listeners of every
    thread). A connection is admitted when all three have room, and
    released once, when MHD closes it.

    The socket is watched through a private epoll descriptor holding only
    it, so that a pause (out of descriptors, below) can take it out of the
    wait without the face's reactor knowing: the reactor waits on the epoll
    descriptor, which is readable exactly when a connection waits.
*/
#include "listener.h"
#include "log.h"
#include "problem.h"
#include <czmq.h>
#include <netdb.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <arpa/inet.h>

//  Descriptors kept for everything but HTTP connections: the single box
//  holds about 50 (ZeroMQ's mailboxes and epolls, SQLite's files, logs),
//  tcp:// links one more per peer. A fixed floor plus a sixteenth.
#define LISTENER_RESERVE(limit)     (128 + (limit) / 16)
#define LISTENER_PAUSE_MS           100     //  out of descriptors, spare gone
#define LISTENER_DRAIN              65536   //  bytes read and dropped at a refusal

struct _tiers_client_t {
    unsigned count;                 //  open connections from the address
    char address [INET6_ADDRSTRLEN + 4];     //  an IPv4 address or an IPv6 /64
};

struct _tiers_listener_t {
    int fd;                         //  the listening socket, -1 once closed
    int epoll_fd;                   //  holds fd alone
    int spare;                      //  a descriptor given up to accept at EMFILE
    int port;
    unsigned connections, per_client;
    unsigned open;
    zhashx_t *clients;              //  address text -> tiers_client_t *
    int64_t paused_until;           //  zclock_mono; 0 = not paused
};

//  --------------------------------------------------------------------------
//  The process's descriptor budget

static pthread_once_t s_budget_once = PTHREAD_ONCE_INIT;
static size_t s_limit, s_budget;
static atomic_size_t s_held;        //  admitted connections, all listeners

static void
s_budget_init (void)
{
    struct rlimit limit = { 1024, 1024 };
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        //  Linux has no unlimited descriptors; fs.nr_open caps the hard
        //  limit, and 1M is its default.
        struct rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? 1048576 : limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &raised) == 0) {
            tiers_info ("file descriptor limit raised from %llu to %llu",
                        (unsigned long long) limit.rlim_cur,
                        (unsigned long long) raised.rlim_cur);
            limit.rlim_cur = raised.rlim_cur;
        }
        else
            tiers_warn ("cannot raise the file descriptor limit from %llu to %llu: %s",
                        (unsigned long long) limit.rlim_cur,
                        (unsigned long long) raised.rlim_cur, strerror (errno));
    }
    s_limit = (size_t) limit.rlim_cur;
    size_t reserve = LISTENER_RESERVE (s_limit);
    //  A tiny limit still lets a quarter of it go to clients.
    s_budget = s_limit > reserve + s_limit / 4 ? s_limit - reserve : s_limit / 4;
    if (s_budget < 1)
        s_budget = 1;
}

size_t
tiers_listener_budget (size_t *limit)
{
    pthread_once (&s_budget_once, s_budget_init);
    if (limit)
        *limit = s_limit;
    return s_budget;
}

//  --------------------------------------------------------------------------
//  The socket

static void
s_client_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

//  The socket as MHD would make it: SO_REUSEADDR (a restart must not fail
//  on connections in TIME_WAIT), SO_REUSEPORT for instances sharing the
//  port, IPv6 only on an IPv6 address.
static int
s_listen (const struct addrinfo *found, bool reuse_port, char **why)
{
    int fd = socket (found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = zsys_sprintf ("cannot make a socket: %s", strerror (errno));
        return -1;
    }
    int on = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (reuse_port && setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on)) {
        *why = zsys_sprintf ("cannot share the port (SO_REUSEPORT): %s", strerror (errno));
        close (fd);
        return -1;
    }
    if (found->ai_family == AF_INET6)
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind (fd, found->ai_addr, found->ai_addrlen) || listen (fd, SOMAXCONN)) {
        *why = zsys_sprintf ("%s", strerror (errno));
        close (fd);
        return -1;
    }
    return fd;
}

tiers_listener_t *
tiers_listener_new (const char *host, int port, bool reuse_port,
                    unsigned connections, unsigned per_client, char **why)
{
    assert (connections > 0 && per_client > 0);
    *why = NULL;
    tiers_listener_budget (NULL);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *found = NULL;
    char service [16];
    snprintf (service, sizeof service, "%d", port);
    const char *name = !host || !*host || streq (host, "*") ? NULL : host;
    int rc = getaddrinfo (name, service, &hints, &found);
    if (rc || !found) {
        *why = zsys_sprintf ("cannot resolve %s: %s", host, gai_strerror (rc));
        return NULL;
    }
    int fd = s_listen (found, reuse_port, why);
    freeaddrinfo (found);
    if (fd < 0)
        return NULL;
    struct sockaddr_storage bound;
    socklen_t size = sizeof bound;
    int epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    struct epoll_event event = { .events = EPOLLIN };
    if (epoll_fd < 0 || epoll_ctl (epoll_fd, EPOLL_CTL_ADD, fd, &event)
    ||  getsockname (fd, (struct sockaddr *) &bound, &size)) {
        *why = zsys_sprintf ("%s", strerror (errno));
        if (epoll_fd >= 0)
            close (epoll_fd);
        close (fd);
        return NULL;
    }
    tiers_listener_t *self = (tiers_listener_t *) zmalloc (sizeof *self);
    assert (self);
    self->fd = fd;
    self->epoll_fd = epoll_fd;
    self->spare = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    self->port = ntohs (bound.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *) &bound)->sin6_port
                        : ((struct sockaddr_in *) &bound)->sin_port);
    self->connections = connections;
    self->per_client = per_client;
    self->clients = zhashx_new ();
    assert (self->clients);
    zhashx_set_destructor (self->clients, s_client_destroy);
    return self;
}

void
tiers_listener_close (tiers_listener_t *self)
{
    assert (self);
    if (self->fd >= 0) {
        close (self->fd);           //  leaves the epoll set with it
        self->fd = -1;
    }
}

void
tiers_listener_destroy (tiers_listener_t **self_p)
{
    assert (self_p);
    tiers_listener_t *self = *self_p;
    if (self) {
        assert (self->open == 0);
        tiers_listener_close (self);
        close (self->epoll_fd);
        if (self->spare >= 0)
            close (self->spare);
        zhashx_destroy (&self->clients);
        free (self);
        *self_p = NULL;
    }
}

int
tiers_listener_fd (tiers_listener_t *self)
{
    assert (self);
    return self->epoll_fd;
}

int
tiers_listener_port (tiers_listener_t *self)
{
    assert (self);
    return self->port;
}

unsigned
tiers_listener_open (tiers_listener_t *self)
{
    assert (self);
    return self->open;
}

//  --------------------------------------------------------------------------
//  Admission

static void
s_pause (tiers_listener_t *self)
{
    if (self->paused_until)
        return;
    epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, self->fd, NULL);
    self->paused_until = zclock_mono () + LISTENER_PAUSE_MS;
    tiers_warn ("out of file descriptors: not accepting for %d ms", LISTENER_PAUSE_MS);
}

long
tiers_listener_wake (tiers_listener_t *self)
{
    assert (self);
    if (!self->paused_until)
        return -1;
    int64_t left = self->paused_until - zclock_mono ();
    if (left > 0)
        return (long) left;
    self->paused_until = 0;
    struct epoll_event event = { .events = EPOLLIN };
    if (self->fd >= 0)
        epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, self->fd, &event);
    return -1;
}

static void
s_address (const struct sockaddr_storage *addr, char *text, size_t size)
{
    //  A client is an IPv4 address, or an IPv6 /64 (what one subscriber
    //  gets, and can pick addresses from at will), as the rate limiter
    //  counts them (limit.c); an IPv4-mapped address is its IPv4 one.
    if (addr->ss_family == AF_INET6) {
        struct in6_addr in6 = ((const struct sockaddr_in6 *) addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED (&in6)) {
            if (!inet_ntop (AF_INET, &in6.s6_addr [12], text, (socklen_t) size))
                snprintf (text, size, "?");
            return;
        }
        memset (&in6.s6_addr [8], 0, 8);
        char prefix [INET6_ADDRSTRLEN];
        if (inet_ntop (AF_INET6, &in6, prefix, sizeof prefix))
            snprintf (text, size, "%s/64", prefix);
        else
            snprintf (text, size, "?");
        return;
    }
    if (!inet_ntop (AF_INET, &((const struct sockaddr_in *) addr)->sin_addr, text,
                    (socklen_t) size))
        snprintf (text, size, "?");
}

tiers_admit_t
tiers_listener_accept (tiers_listener_t *self, tiers_arrival_t *arrival)
{
    assert (self && arrival);
    if (self->fd < 0 || self->paused_until)
        return TIERS_ADMIT_NONE;
    if (self->spare < 0)
        self->spare = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    int fd;
    do {
        arrival->addr_size = sizeof arrival->addr;
        fd = accept4 (self->fd, (struct sockaddr *) &arrival->addr, &arrival->addr_size,
                      SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && (errno == EINTR || errno == ECONNABORTED || errno == EPROTO));
    arrival->fd = fd;
    arrival->client = NULL;
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
        //  The spare descriptor makes room for this one, to refuse it.
        if (self->spare >= 0) {
            close (self->spare);
            self->spare = -1;
            arrival->addr_size = sizeof arrival->addr;
            arrival->fd = accept4 (self->fd, (struct sockaddr *) &arrival->addr,
                                   &arrival->addr_size, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (arrival->fd >= 0)
                return TIERS_ADMIT_FDS;
        }
        s_pause (self);
        return TIERS_ADMIT_NONE;
    }
    if (fd < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        //  ENOBUFS, ENOMEM, EPERM (a firewall): the connection stays in the
        //  queue and the socket readable; pause instead of spinning on it.
        tiers_warn ("accept: %s; pausing 100 ms", strerror (errno));
        s_pause (self);
        return TIERS_ADMIT_NONE;
    }
    if (fd < 0)
        return TIERS_ADMIT_NONE;    //  EAGAIN: nobody waits
    if (self->open >= self->connections)
        return TIERS_ADMIT_FULL;
    char address [INET6_ADDRSTRLEN + 4];
    s_address (&arrival->addr, address, sizeof address);
    tiers_client_t *client = (tiers_client_t *) zhashx_lookup (self->clients, address);
    if (client && client->count >= self->per_client)
        return TIERS_ADMIT_CLIENT;
    if (atomic_fetch_add (&s_held, 1) >= s_budget) {
        atomic_fetch_sub (&s_held, 1);
        return TIERS_ADMIT_FDS;
    }
    if (!client) {
        client = (tiers_client_t *) zmalloc (sizeof *client);
        assert (client);
        snprintf (client->address, sizeof client->address, "%s", address);
        zhashx_insert (self->clients, address, client);
    }
    client->count++;
    self->open++;
    arrival->client = client;
    return TIERS_ADMIT_OK;
}

void
tiers_listener_release (tiers_listener_t *self, tiers_client_t *client)
{
    assert (self && client && client->count > 0 && self->open > 0);
    atomic_fetch_sub (&s_held, 1);
    self->open--;
    if (--client->count == 0)
        zhashx_delete (self->clients, client->address);     //  frees it
}

//  --------------------------------------------------------------------------
//  Answers written straight to the socket

int
tiers_listener_answer (int fd, int status, const char *detail, const char *rid,
                       const char *retry_after)
{
    char *json = tiers_problem_json (status, detail, rid);
    if (!json)
        return -1;
    char date [64];
    time_t now = time (NULL);
    struct tm tm;
    strftime (date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r (&now, &tm));
    char head [512];
    int length = snprintf (head, sizeof head,
        "HTTP/1.1 %d %s\r\n"
        "Content-Type: application/problem+json\r\n"
        "%s%s%s"
        "Date: %s\r\n"
        "%s%s%s"
        "Connection: close\r\n"
        "Content-Length: %zu\r\n\r\n",
        status, tiers_problem_title (status),
        retry_after ? "Retry-After: " : "", retry_after ? retry_after : "",
        retry_after ? "\r\n" : "",
        date,
        rid ? "X-Request-Id: " : "", rid ? rid : "", rid ? "\r\n" : "",
        strlen (json));
    if (length < 0 || (size_t) length >= sizeof head) {
        free (json);
        return -1;              //  cannot happen with our ids and titles
    }
    struct iovec parts [2] = {
        { head, (size_t) length }, { json, strlen (json) }
    };
    struct msghdr message = { .msg_iov = parts, .msg_iovlen = 2 };
    ssize_t sent = sendmsg (fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    int rc = sent == (ssize_t) (parts [0].iov_len + parts [1].iov_len) ? 0 : -1;
    free (json);
    return rc;
}

void
tiers_listener_end (int fd)
{
    //  Closing a socket with unread input resets the connection, and a
    //  reset can reach the client before it read the answer: FIN first,
    //  then drop what already came (a request usually came with the
    //  connection). What comes later still meets a closed socket.
    shutdown (fd, SHUT_WR);
    char buffer [4096];
    size_t drained = 0;
    ssize_t n;
    while (drained < LISTENER_DRAIN
       &&  (n = recv (fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0)
        drained += (size_t) n;
}

void
tiers_listener_refuse (int fd, int status, const char *detail, const char *rid,
                       const char *retry_after)
{
    tiers_listener_answer (fd, status, detail, rid, retry_after);
    tiers_listener_end (fd);
    close (fd);
}

void
tiers_listener_refuse_tls (int fd)
{
    //  A TLS alert record (RFC 8446 6): type 21, the version of a first
    //  record (TLS 1.0, what ClientHellos carry too), length 2; fatal (2),
    //  internal_error (80). A client may read it before any handshake.
    static const unsigned char alert [] = { 21, 3, 1, 0, 2, 2, 80 };
    ssize_t sent = send (fd, alert, sizeof alert, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void) sent;
    tiers_listener_end (fd);
    close (fd);
}
