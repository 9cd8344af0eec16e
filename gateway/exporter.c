/*  exporter.c — the metrics of one process over HTTP, for nodes without a
    gateway.

    Every process keeps one metrics registry (runtime/metrics.h), and a
    gateway shows its own process's at /metrics. A node without a gateway
    (the storage node of maps/storage-apart.map) places an exporter:

        node = storage
            exporter
                http = 127.0.0.1:9101

    and Prometheus scrapes each node, the usual shape. The exporter answers
    GET (and HEAD) /metrics in Prometheus text format and /health; anything
    else is a problem+json 404, another method a 405 with Allow.

    It touches no ZeroMQ socket but its pipe, so libmicrohttpd runs in its
    own thread (MHD_USE_INTERNAL_POLLING_THREAD) and the actor thread only
    waits for $TERM. Rendering takes the registry's lock; the counters are
    atomics that the actors keep adding to meanwhile.
*/
#include "exporter.h"
#include "map.h"
#include "node.h"
#include "log.h"
#include "metrics.h"
#include "problem.h"
#include <microhttpd.h>
#include <netdb.h>
#include <string.h>

#define EXPORTER_CONNECTIONS    64      //  scrapers are few
#define EXPORTER_TIMEOUT_S      10

static enum MHD_Result
s_send (struct MHD_Connection *connection, unsigned int status,
        const char *type, const char *body, const char *allow)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (body), (void *) body, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

//  RFC 9457 problem details (runtime/problem.h); no request ids here.
static enum MHD_Result
s_problem (struct MHD_Connection *connection, unsigned int status,
           const char *detail, const char *allow)
{
    char *body = tiers_problem_json ((int) status, detail, NULL);
    if (!body)
        return MHD_NO;
    enum MHD_Result rc = s_send (connection, status, "application/problem+json",
                                 body, allow);
    free (body);
    return rc;
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    (void) cls; (void) version; (void) upload_data;
    //  The first call only sees the headers; answer on the last one, so
    //  that a body (which nobody should send) is read and dropped first.
    if (!*con_cls) {
        *con_cls = connection;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    bool get = streq (method, "GET") || streq (method, "HEAD");
    if (streq (url, "/metrics") || streq (url, "/health")) {
        if (!get)
            return s_problem (connection, 405, "only GET and HEAD", "GET, HEAD");
        if (streq (url, "/health"))
            return s_send (connection, 200, "application/json",
                           "{\"status\":\"ok\"}", NULL);
        char *text = tiers_metrics_render ();
        enum MHD_Result rc = s_send (connection, 200,
                                     "text/plain; version=0.0.4; charset=utf-8",
                                     text ? text : "", NULL);
        free (text);
        return rc;
    }
    return s_problem (connection, 404, "the exporter serves /metrics and /health", NULL);
}

static void
s_exporter_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    tiers_log_set_actor (args->name);
    const char *http = tiers_entry_get (args->entry, "http", NULL);
    char host [256];
    int port = 0;
    if (!http || tiers_hostport_split (http, host, sizeof host, &port)) {
        tiers_actor_failed (pipe, "bad http address '%s'", http ? http : "");
        return;
    }
    char service [16];
    snprintf (service, sizeof service, "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *found = NULL;
    if (getaddrinfo (host, service, &hints, &found) || !found) {
        tiers_actor_failed (pipe, "cannot resolve %s", http);
        return;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (found->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *daemon = MHD_start_daemon (flags, (uint16_t) port, NULL, NULL,
        s_access, NULL,
        MHD_OPTION_SOCK_ADDR, found->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) EXPORTER_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) EXPORTER_TIMEOUT_S,
        MHD_OPTION_END);
    freeaddrinfo (found);
    if (!daemon) {
        tiers_actor_failed (pipe, "cannot listen on %s", http);
        return;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? info->port : port;
    bool v6 = strchr (host, ':') != NULL;
    tiers_info ("metrics on http://%s%s%s:%d/metrics", v6 ? "[" : "", host, v6 ? "]" : "",
                bound);
    printf ("tiers: exporter %s listening on http://%s%s%s:%d\n", args->name,
            v6 ? "[" : "", host, v6 ? "]" : "", bound);
    fflush (stdout);
    tiers_actor_ready (pipe);
    while (!tiers_actor_stopping (pipe))
        ;                           //  other commands: nothing to do
    MHD_stop_daemon (daemon);
}

static const tiers_key_t s_keys [] = {
    { "http", TIERS_KEY_HOSTPORT, true, 0, 0, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

const tiers_kind_t tiers_exporter_kind = {
    .name = "exporter",
    .summary = "the metrics of its process over HTTP (/metrics), for nodes without a gateway",
    .rank = TIERS_RANK_EDGE,
    .run = s_exporter_actor,
    .keys = s_keys,
    .multi = false,
    .listener = "http",
    .fixed_listener = true
};
