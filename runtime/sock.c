/*  sock.c — the socket factory (see sock.h).

    One function sets the options; bind and connect only differ in the
    last call. The options are set before bind/connect, because libzmq
    copies the HWMs into a pipe when the pipe is made.
*/
#include "sock.h"
#include "poller.h"
#include "wire.h"
#include "security.h"

static zsock_t *
s_new (int type)
{
    zsock_t *sock = zsock_new (type);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, 0);
    zsock_set_sndhwm (sock, TIERS_SOCK_HWM);
    zsock_set_rcvhwm (sock, TIERS_SOCK_HWM);
    zsock_set_ipv6 (sock, 1);
    //  A peer that announces a frame longer than any tiers message is
    //  dropped at the frame's header, before libzmq allocates for it.
    zsock_set_maxmsgsize (sock, (int) TIERS_WIRE_MAX_MESSAGE);
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory (sock, 1);
    return sock;
}

//  A socket of `type` bound (when `entry` serves `port` there) or connected
//  (`entry` is the one connecting to `to`). With a map that has security =
//  curve, the keys of the entry's node go on before bind / connect
//  (security.h); an entry of NULL is a socket of no map (tests, tools).
static zsock_t *
s_open (int type, const char *endpoint, bool bind, const tiers_entry_t *entry,
        const char *port, const tiers_entry_t *to, char **why)
{
    char *reason = NULL;
    assert (endpoint);
    zsock_t *sock = s_new (type);
    if (!sock)
        reason = zsys_sprintf ("cannot make a socket: %s", zmq_strerror (zmq_errno ()));
    else
    if (entry && (bind ? tiers_security_serve (sock, entry, port, endpoint, &reason)
                       : tiers_security_dial (sock, entry, to, endpoint, &reason)))
        zsock_destroy (&sock);
    else {
        int rc = bind ? zsock_bind (sock, "%s", endpoint) : zsock_connect (sock, "%s", endpoint);
        //  An inproc endpoint is let go of by libzmq's reaper thread, a
        //  moment after its socket was closed: an actor started again at
        //  once (a restart, a test) asks again for up to a second.
        for (int tries = 0; rc < 0 && bind && zmq_errno () == EADDRINUSE
                         && strncmp (endpoint, "inproc://", 9) == 0 && tries < 100; tries++) {
            zclock_sleep (10);
            rc = zsock_bind (sock, "%s", endpoint);
        }
        if (rc < 0) {
            reason = zsys_sprintf ("cannot %s %s: %s", bind ? "bind" : "connect to",
                                   endpoint, zmq_strerror (zmq_errno ()));
            zsock_destroy (&sock);
        }
    }
    if (why)
        *why = reason;
    else
        free (reason);
    return sock;
}

zsock_t *
tiers_sock_bind (int type, const char *endpoint, char **why)
{
    return s_open (type, endpoint, true, NULL, NULL, NULL, why);
}

zsock_t *
tiers_sock_connect (int type, const char *endpoint, char **why)
{
    return s_open (type, endpoint, false, NULL, NULL, NULL, why);
}

zsock_t *
tiers_sock_connect_from (const tiers_entry_t *entry, int type, const char *endpoint,
                         char **why)
{
    //  The entry that binds it, when one of the entry's links reaches it
    //  (a service's balancer): its node's key is the server's.
    const tiers_entry_t *to = NULL;
    for (size_t l = 0; entry && !to && l < TIERS_LINKS_MAX; l++)
        for (size_t t = 0; !to && t < entry->target_count [l]; t++)
            if (streq (entry->targets [l][t].endpoint, endpoint))
                to = entry->targets [l][t].entry;
    return s_open (type, endpoint, false, entry, NULL, to, why);
}

zsock_t *
tiers_port_bind (const tiers_entry_t *entry, const char *port, char **why)
{
    assert (entry && port);
    const tiers_port_t *spec = tiers_kind_port (entry->kind, port, NULL);
    const char *endpoint = tiers_entry_port (entry, port);
    if (!spec || !endpoint) {
        if (why)
            *why = zsys_sprintf ("%s has no port '%s' bound", entry->name, port);
        return NULL;
    }
    return s_open (spec->type, endpoint, true, entry, port, NULL, why);
}

zsock_t *
tiers_link_connect (const tiers_entry_t *entry, const char *link, size_t index,
                    char **why)
{
    assert (entry && link);
    const tiers_link_t *spec = tiers_kind_link (entry->kind, link, NULL);
    const tiers_target_t *targets = NULL;
    size_t count = tiers_entry_targets (entry, link, &targets);
    if (!spec || index >= count) {
        if (why)
            *why = zsys_sprintf ("%s has no link '%s' to a target %zu", entry->name,
                                 link, index);
        return NULL;
    }
    return s_open (spec->type, targets [index].endpoint, false, entry,
                   NULL, targets [index].entry, why);
}

void
tiers_sock_flush (zsock_t *sock, int ms)
{
    if (sock)
        zsock_set_linger (sock, ms);
}

int
tiers_sock_send_frame (zframe_t **frame_p, void *sock, int flags)
{
    tiers_poller_sent (sock);
    return zframe_send (frame_p, sock, flags);
}

int
tiers_sock_send_str (void *sock, const char *text)
{
    tiers_poller_sent (sock);
    return zstr_send (sock, text);
}

bool
tiers_sock_input_waiting (void *sock)
{
    void *handle = sock ? zsock_resolve (sock) : NULL;
    if (!handle)
        return false;
    tiers_poller_sent (handle);
    int events = 0;
    size_t size = sizeof events;
    return zmq_getsockopt (handle, ZMQ_EVENTS, &events, &size) == 0
        && (events & ZMQ_POLLIN) != 0;
}
