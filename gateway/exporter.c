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

    It is an HTTP face (gateway/http.h) with a route table of two routes
    and no balancer: the same listener, the same connection limits (503
    with Retry-After past them), the same deadlines for a request head and
    body (408), the same problem+json, request ids and metrics
    (tiers_exporter_*) as the gateway. Its limits are fixed, for a port
    that scrapers use: few connections, few per address, small requests.
    It runs in the actor's thread, in the actor's reactor; rendering takes
    the registry's lock, and the counters are atomics that the other actors
    keep adding to meanwhile.
*/
#include "exporter.h"
#include "http.h"
#include "map.h"
#include "node.h"
#include "log.h"
#include "metrics.h"
#include "reactor.h"
#include <microhttpd.h>
#include <string.h>

//  Scrapers are few and ask small questions. One address may hold an
//  eighth of the connections: it takes eight to fill the port, and a
//  trickling one is cut at the head deadline all the same.
#define EXPORTER_CONNECTIONS    64
#define EXPORTER_PER_CLIENT     8
#define EXPORTER_TIMEOUT_S      10          //  idle
#define EXPORTER_HEAD_MS        10000
#define EXPORTER_BODY_RATE      1024        //  bytes/s (a body is dropped)





static const tiers_http_route_t s_routes [] = {
    { "metrics", tiers_http_match_metrics, tiers_http_begin_metrics, NULL, NULL, 0, NULL, TIERS_HTTP_OPEN, NULL },
    { "health",  tiers_http_match_health,  tiers_http_begin_health,  NULL, NULL, 0, NULL, TIERS_HTTP_OPEN, NULL },
};

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
    tiers_http_config_t config = {
        .name = args->name,
        .host = host,
        .port = port,
        .max_body = 1024,
        .max_url = 1024,
        .max_header = 8 * 1024,
        .connections = EXPORTER_CONNECTIONS,
        .per_client = EXPORTER_PER_CLIENT,
        .idle_timeout_s = EXPORTER_TIMEOUT_S,
        .head_timeout_ms = EXPORTER_HEAD_MS,
        .min_body_rate = EXPORTER_BODY_RATE,
        .deadline_ms = 1000,
        .routes = s_routes,
        .route_count = sizeof s_routes / sizeof s_routes [0],
        .metrics = "exporter",
        .not_found = "the exporter serves /metrics and /health"
    };
    char *why = NULL;
    tiers_http_t *face = tiers_http_new (&config, &why);
    if (!face) {
        tiers_actor_failed (pipe, "%s", why);
        free (why);
        return;
    }
    int bound = tiers_http_port (face);
    bool v6 = strchr (host, ':') != NULL;
    tiers_info ("metrics on http://%s%s%s:%d/metrics", v6 ? "[" : "", host, v6 ? "]" : "",
                bound);
    printf ("tiers: exporter %s listening on http://%s%s%s:%d\n", args->name,
            v6 ? "[" : "", host, v6 ? "]" : "", bound);
    fflush (stdout);
    tiers_actor_ready (pipe);

    tiers_reactor_t *reactor = tiers_reactor_new (pipe);
    tiers_http_attach (face, reactor);
    tiers_reactor_run (reactor);
    tiers_reactor_destroy (&reactor);
    tiers_http_destroy (&face);
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
