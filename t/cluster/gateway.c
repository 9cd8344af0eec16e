/*  gateway.c — cluster tests of the HTTP edge: real MHD, real curl, a real
    balancer and test workers.

    Every scenario runs twice: (1) one node in this process, the balancer on
    inproc://; (2) split over three processes on tcp:// loopback: "lb" (the
    balancer), "apis" (the fakeapi workers) and "web" (the gateway, started
    with --http 127.0.0.1:0; its port is read from its log). Each node is
    this program started as `gateway.t run -m MAP -n NODE`: with arguments
    it is a tiers launcher with the test kind registered.

    fakeapi: a synchronous worker (tiers_service_run) of pool `pool` that
    answers from the request headers, so every test can see what the
    gateway forwarded and where:
        body   {"pool":..,"method":..,"collection":..,"id":..,"if_match":..,
                "limit":..,"after":..,"rid":..,"body":<request body>}
        PUT -> 201 with etag "7" and a location; DELETE -> 204, no body;
        if-none-match "7" -> 304; id "gone" -> 404 with only an `error`
        header (the gateway writes the problem+json); id "badtext" -> 500
        with only an `error` header that is not UTF-8 and holds JSON's
        special characters; id "slow" -> answers after 1.5 s (the map's
        deadline is 1 s).
*/
#include "../tap.h"
#include "harness.h"
#include "cli.h"
#include "kind.h"
#include "map.h"
#include "node.h"
#include "service.h"
#include "log.h"
#include "gateway/gateway.h"
#include <jansson.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
//  --------------------------------------------------------------------------
//  The test worker

static void
s_fakeapi_handler (const tiers_wire_t *request, tiers_wire_t *reply, void *arg)
{
    const char *method = tiers_wire_header (request, "method");
    const char *id = tiers_wire_header (request, "id");
    const char *if_none = tiers_wire_header (request, "if-none-match");
    #define H(key) (tiers_wire_header (request, key) ? tiers_wire_header (request, key) : "")
    char *json = zsys_sprintf (
        "{\"pool\":\"%s\",\"method\":\"%s\",\"collection\":\"%s\",\"id\":\"%s\","
        "\"if_match\":\"%s\",\"limit\":\"%s\",\"after\":\"%s\",\"rid\":\"%s\","
        "\"body\":%s}",
        request->service, H ("method"), H ("collection"), H ("id"), H ("if-match"),
        H ("limit"), H ("after"), request->rid,
        request->body_size ? (const char *) request->body : "null");
    #undef H
    reply->status = 200;
    if (id && streq (id, "slow"))
        zclock_sleep (1500);
    if (id && streq (id, "gone")) {
        reply->status = 404;
        tiers_wire_set_header (reply, "error", "no such document", 16);
    }
    else
    if (id && streq (id, "badtext")) {
        reply->status = 500;
        const char *error = "caf\xe9 \"q\" \\ \t end";
        tiers_wire_set_header (reply, "error", error, strlen (error));
    }
    else
    if (method && streq (method, "DELETE"))
        reply->status = 204;
    else
    if (if_none && streq (if_none, "\"7\""))
        reply->status = 304;
    else {
        if (method && streq (method, "PUT")) {
            reply->status = 201;
            tiers_wire_set_header (reply, "etag", "\"7\"", 3);
            tiers_wire_set_headerf (reply, "location", "/v1/%s/%s",
                                    tiers_wire_header (request, "collection"), id);
        }
        tiers_wire_set_body (reply, json, strlen (json));
    }
    free (json);
}

static void
s_fakeapi_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    tiers_log_set_actor (args->name);
    tiers_service_config_t config = {
        .endpoint = args->entry->connect,
        .entry = args->entry,               //  its node's keys, with CURVE
        .pool = tiers_entry_get (args->entry, "pool", "read"),
        .name = args->name,
        .capacity = 1,
        .heartbeat_ms = 1000,
        .liveness = 3
    };
    tiers_service_t *service = tiers_service_new (&config);
    tiers_actor_ready (pipe);
    tiers_service_run (service, pipe, s_fakeapi_handler, NULL);
    tiers_service_destroy (&service);
}

static const tiers_key_t s_fakeapi_keys [] = {
    { "pool", TIERS_KEY_STRING, false, 0, 0, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static const tiers_link_t s_links [] = {
    TIERS_LINK_BALANCER,
    { NULL, NULL, NULL, 0, false, false }
};

static const tiers_kind_t s_fakeapi_kind = {
    .name = "fakeapi", .summary = "test worker: echoes what the gateway forwarded",
    .rank = TIERS_RANK_SERVICE, .run = s_fakeapi_actor, .keys = s_fakeapi_keys,
    .links = s_links, .multi = true, .listener = NULL
};

//  --------------------------------------------------------------------------
//  curl

static int s_port;              //  the port of the gateway under test

typedef struct {
    int status;
    char *body;
    char *headers;
    int64_t ms;
} http_t;

static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return strdup ("");
    zchunk_t *chunk = zchunk_read (file, 16 * 1024 * 1024);
    fclose (file);
    char *text = (char *) malloc (zchunk_size (chunk) + 1);
    memcpy (text, zchunk_data (chunk), zchunk_size (chunk));
    text [zchunk_size (chunk)] = 0;
    zchunk_destroy (&chunk);
    return text;
}

static void
s_http_free (http_t *r)
{
    free (r->body);
    free (r->headers);
    memset (r, 0, sizeof *r);
}

//  Runs curl against the gateway; `format` is the rest of the command line
//  with %B standing for the base URL (http://127.0.0.1:PORT).
static http_t
s_curl (const char *format, ...)
{
    const char *dir = h_tmpdir ();
    char base [64];
    snprintf (base, sizeof base, "http://127.0.0.1:%d", s_port);
    va_list args;
    va_start (args, format);
    char *rest = zsys_vprintf (format, args);
    va_end (args);
    //  Replace every "%B" with the base URL.
    zchunk_t *line = zchunk_new (NULL, 256);
    for (const char *p = rest; *p; p++) {
        if (p [0] == '%' && p [1] == 'B') {
            zchunk_extend (line, base, strlen (base));
            p++;
        }
        else
            zchunk_extend (line, p, 1);
    }
    zchunk_extend (line, "", 1);
    char *command = zsys_sprintf (
        "curl -s --max-time 10 -o '%s/body' -D '%s/headers' -w '%%{http_code}' %s",
        dir, dir, (char *) zchunk_data (line));
    zchunk_destroy (&line);
    free (rest);
    http_t r = { 0 };
    char body_path [300], headers_path [300];
    snprintf (body_path, sizeof body_path, "%s/body", dir);
    snprintf (headers_path, sizeof headers_path, "%s/headers", dir);
    unlink (body_path);
    unlink (headers_path);
    int64_t start = zclock_mono ();
    FILE *pipe = popen (command, "r");
    char code [16] = "";
    if (pipe) {
        if (!fgets (code, sizeof code, pipe))
            code [0] = 0;
        pclose (pipe);
    }
    r.ms = zclock_mono () - start;
    free (command);
    r.status = atoi (code);
    r.body = s_slurp (body_path);
    r.headers = s_slurp (headers_path);
    return r;
}

//  A response header's value (case-insensitive name), or "" (static buffer).
static const char *
s_header (const http_t *r, const char *name)
{
    static char value [512];
    value [0] = 0;
    size_t length = strlen (name);
    const char *line = r->headers;
    while (line && *line) {
        if (strncasecmp (line, name, length) == 0 && line [length] == ':') {
            const char *start = line + length + 1;
            while (*start == ' ')
                start++;
            size_t size = strcspn (start, "\r\n");
            if (size >= sizeof value)
                size = sizeof value - 1;
            memcpy (value, start, size);
            value [size] = 0;
            return value;
        }
        line = strchr (line, '\n');
        if (line)
            line++;
    }
    return value;
}

static bool
s_has (const http_t *r, const char *needle)
{
    return r->body && strstr (r->body, needle) != NULL;
}

//  A problem+json body with the response's own request id.
static bool
s_is_problem (const http_t *r, int status)
{
    char expect [64];
    snprintf (expect, sizeof expect, "\"status\":%d", status);
    char rid [600];
    snprintf (rid, sizeof rid, "\"request_id\":\"%s\"", s_header (r, "X-Request-Id"));
    bool pass = r->status == status
             && streq (s_header (r, "Content-Type"), "application/problem+json")
             && s_has (r, "\"type\":\"about:blank\"")
             && s_has (r, expect) && s_has (r, "\"title\":\"")
             && s_has (r, "\"detail\":\"")
             && *s_header (r, "X-Request-Id") && s_has (r, rid);
    if (!pass)
        diag ("status %d, headers:\n%s\nbody: %s", r->status, r->headers, r->body);
    return pass;
}

//  `size` times `fill`, NUL-terminated (malloc'ed).
static char *
s_repeat (char fill, size_t size)
{
    char *text = (char *) malloc (size + 1);
    memset (text, fill, size);
    text [size] = 0;
    return text;
}

//  A file of `size` bytes `fill` in the test's directory; returns its path.
static char *
s_write_file (const char *name, size_t size, char fill)
{
    char *text = s_repeat (fill, size);
    char *path = h_write_file (name, text);
    free (text);
    return path;
}

//  A raw TCP connection to the gateway, or -1.
static int
s_connect (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET,
                                   .sin_port = htons ((uint16_t) s_port) };
    inet_pton (AF_INET, "127.0.0.1", &address.sin_addr);
    if (connect (fd, (struct sockaddr *) &address, sizeof address)) {
        close (fd);
        return -1;
    }
    return fd;
}

//  Milliseconds until the server closes fd (reads and drops any bytes), or
//  -1 if it is still open after timeout_ms.
static int64_t
s_wait_closed (int fd, int timeout_ms)
{
    int64_t start = zclock_mono ();
    while (zclock_mono () - start < timeout_ms) {
        struct pollfd item = { fd, POLLIN, 0 };
        if (poll (&item, 1, 50) > 0) {
            char buffer [4096];
            ssize_t got = recv (fd, buffer, sizeof buffer, 0);
            if (got <= 0)
                return zclock_mono () - start;
        }
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  The cluster, in its two placements

static char s_security [600];         //  the split map's: CURVE and its keys

static char *
s_map_text (bool split, bool with_write, const char *balancer)
{
    return zsys_sprintf (
        "cluster\n"
        "    name = gateway-test\n"
        "    log = warn\n"
        "%s"
        "node = %s\n"
        "    balancer\n"
        "        bind = %s\n"
        "%s"
        "    fakeapi = r\n"
        "        pool = read\n"
        "        instances = 2\n"
        "%s"
        "%s"
        "    gateway\n"
        "        http = 127.0.0.1:0\n"
        "        instances = %d\n"
        "        max_body = 1k\n"
        "        max_header = 4k\n"
        "        idle_timeout = 1s\n"
        "        deadline = 1s\n",
        split ? s_security : "", split ? "lb" : "box", balancer,
        split ? "node = apis\n" : "",
        with_write ? "    fakeapi = w\n        pool = write\n" : "",
        split ? "node = web\n" : "",
        with_write ? 2 : 1);
}

#define NODES 3
static const char *s_nodes [NODES] = { "lb", "apis", "web" };
enum { LB, APIS, WEB };

typedef struct {
    bool split;
    bool with_write;
    const char *label;          //  "inproc" or "tcp", prefixes every assertion
    const char *self_path;      //  split: this program
    tiers_map_t *map;           //  one process
    tiers_node_t *node;
    char *map_path;             //  split
    pid_t pids [NODES];         //  split: lb, apis, web (0 = not running)
    char *logs [NODES];
} cluster_t;

//  Start node i as a child process; wait for its "; ready" line.
static int
s_start_node (cluster_t *c, int i)
{
    c->logs [i] = zsys_sprintf ("%s/%s%s.log", h_tmpdir (), s_nodes [i],
                                c->with_write ? "" : "-nowrite");
    char *argv [] = { (char *) c->self_path, (char *) "run", (char *) "-m", c->map_path,
                      (char *) "-n", (char *) s_nodes [i], NULL, NULL, NULL };
    if (i == WEB) {                 //  the gateway's address, as an operator would
        argv [6] = (char *) "--http";
        argv [7] = (char *) "127.0.0.1:0";
    }
    c->pids [i] = h_spawn (argv, c->logs [i]);
    if (h_wait_for_line (c->logs [i], "; ready", 30000) == 0)     //  as lib.sh
        return 0;
    char *log = s_slurp (c->logs [i]);
    diag ("node %s did not start:\n%s", s_nodes [i], log);
    free (log);
    return -1;
}

//  The port the web node's gateway listens on, from its log, or 0.
static int
s_web_port (cluster_t *c)
{
    char *log = s_slurp (c->logs [WEB]);
    const char *needle = " listening on http://127.0.0.1:";
    const char *line = strstr (log, "tiers: gateway ");
    line = line ? strstr (line, needle) : NULL;
    int port = line ? atoi (line + strlen (needle)) : 0;
    free (log);
    return port;
}

static int
s_cluster_start (cluster_t *c)
{
    s_port = 0;
    if (c->split) {
        char balancer [64];
        snprintf (balancer, sizeof balancer, "tcp://127.0.0.1:%d", h_free_port ());
        snprintf (s_security, sizeof s_security, "    security = curve\n    keys = %s/keys\n",
                  h_tmpdir ());
        char *text = s_map_text (true, c->with_write, balancer);
        c->map_path = h_write_file (c->with_write ? "split.map" : "split-nowrite.map",
                                    text);
        free (text);
        if (h_make_keys (c->map_path))
            return -1;
        for (int i = 0; i < NODES; i++)
            if (s_start_node (c, i))
                return -1;
        s_port = s_web_port (c);
    }
    else {
        //  libzmq unbinds inproc endpoints asynchronously: a fresh name.
        const char *balancer = c->with_write ? "inproc://balancer" : "inproc://balancer2";
        char *text = s_map_text (false, c->with_write, balancer);
        char *errors = NULL;
        c->map = tiers_map_parse (text, "gateway.map", &errors);
        free (text);
        if (!c->map) {
            diag ("%s", errors);
            free (errors);
            return -1;
        }
        c->node = tiers_node_new (c->map, NULL);
        if (tiers_node_start (c->node)) {
            diag ("%s", tiers_node_error (c->node));
            return -1;
        }
        s_port = tiers_gateway_port ();
    }
    if (s_port <= 0)
        return -1;
    //  Wait until the read pool serves (workers have joined).
    for (int i = 0; i < 100; i++) {
        http_t r = s_curl ("%%B/v1/c/warmup");
        int status = r.status;
        s_http_free (&r);
        if (status == 200)
            return 0;
        zclock_sleep (100);
    }
    return -1;
}

//  Stop whatever still runs: the node in this process, or every child by
//  pid (the web node first: it is the one clients talk to).
static void
s_cluster_stop (cluster_t *c)
{
    tiers_node_destroy (&c->node);
    tiers_map_destroy (&c->map);
    for (int i = NODES - 1; i >= 0; i--) {
        if (c->pids [i] > 0)
            is_int (h_stop (c->pids [i], SIGTERM, 5000), 0,
                    "%s: node %s exits 0 on SIGTERM", c->label, s_nodes [i]);
        c->pids [i] = 0;
        free (c->logs [i]);
        c->logs [i] = NULL;
    }
    free (c->map_path);
    c->map_path = NULL;
}

//  --------------------------------------------------------------------------
//  The scenarios

static void
s_routes (const char *L)
{
    http_t r = s_curl ("%%B/health");
    is_int (r.status, 200, "%s: /health answers 200", L);
    is (r.body, "{\"status\":\"ok\"}", "%s: /health body is {\"status\":\"ok\"}", L);
    ok (strlen (s_header (&r, "X-Request-Id")) > 0, "%s: a request id is generated", L);
    char first [128];
    snprintf (first, sizeof first, "%s", s_header (&r, "X-Request-Id"));
    s_http_free (&r);
    r = s_curl ("%%B/health");
    ok (*s_header (&r, "X-Request-Id") && !streq (first, s_header (&r, "X-Request-Id")),
        "%s: generated request ids differ (%s, %s)", L, first,
        s_header (&r, "X-Request-Id"));
    s_http_free (&r);

    //  Two instances share the port (SO_REUSEPORT); the kernel spreads
    //  connections over both. Generated ids name the instance: SALT-I-N.
    bool seen [2] = { false, false };
    for (int i = 0; i < 24; i++) {
        r = s_curl ("%%B/health");
        const char *rid = s_header (&r, "X-Request-Id");
        const char *dash = strchr (rid, '-');
        if (r.status == 200 && dash && (dash [1] == '0' || dash [1] == '1'))
            seen [dash [1] - '0'] = true;
        s_http_free (&r);
    }
    ok (seen [0] && seen [1], "%s: both gateway instances serve the shared port", L);

    r = s_curl ("%%B/metrics");
    is_int (r.status, 200, "%s: /metrics answers 200", L);
    ok (s_has (&r, "tiers_gateway_requests_total{route=\"health\",status=\"200\"}"),
        "%s: /metrics counts the health requests", L);
    ok (s_has (&r, "tiers_gateway_latency_seconds") && s_has (&r, "tiers_gateway_inflight"),
        "%s: /metrics has the latency histogram and the in-flight gauge", L);
    ok (strncmp (s_header (&r, "Content-Type"), "text/plain; version=0.0.4", 25) == 0,
        "%s: /metrics is Prometheus text (%s)", L, s_header (&r, "Content-Type"));
    s_http_free (&r);

    r = s_curl ("-H 'X-Request-Id: abc-123' %%B/v1/users/u1");
    is_int (r.status, 200, "%s: GET a document: 200", L);
    ok (s_has (&r, "\"pool\":\"read\"") && s_has (&r, "\"method\":\"GET\"")
        && s_has (&r, "\"collection\":\"users\"") && s_has (&r, "\"id\":\"u1\""),
        "%s: GET goes to the read pool with method, collection, id", L);
    is (s_header (&r, "X-Request-Id"), "abc-123", "%s: a given X-Request-Id is echoed", L);
    ok (s_has (&r, "\"rid\":\"abc-123~"), "%s: and starts the rid on the wire (made unique)", L);
    is (s_header (&r, "Content-Type"), "application/json", "%s: default content type", L);
    s_http_free (&r);

    r = s_curl ("-H 'X-Request-Id: has space' %%B/v1/users/u1");
    ok (r.status == 200 && !streq (s_header (&r, "X-Request-Id"), "has space")
        && *s_header (&r, "X-Request-Id"),
        "%s: an invalid X-Request-Id is replaced (%s)", L,
        s_header (&r, "X-Request-Id"));
    s_http_free (&r);

    r = s_curl ("-X PUT -H 'If-Match: \"3\"' -H 'Content-Type: application/json' "
                "--data-binary '{\"a\":1}' %%B/v1/users/u1");
    is_int (r.status, 201, "%s: PUT a document: 201 from the write pool", L);
    ok (s_has (&r, "\"pool\":\"write\"") && s_has (&r, "\"method\":\"PUT\"")
        && s_has (&r, "\"body\":{\"a\":1}"),
        "%s: PUT goes to the write pool with its body", L);
    ok (s_has (&r, "\"if_match\":\"\\\"3\\\"\"") || s_has (&r, "\"if_match\":\"\"3\"\""),
        "%s: If-Match is forwarded verbatim", L);
    is (s_header (&r, "ETag"), "\"7\"", "%s: the reply's etag becomes ETag", L);
    is (s_header (&r, "Location"), "/v1/users/u1",
        "%s: the reply's location becomes Location", L);
    s_http_free (&r);

    r = s_curl ("-X DELETE %%B/v1/users/u1");
    is_int (r.status, 204, "%s: DELETE a document: 204", L);
    ok (*r.body == 0 && *s_header (&r, "X-Request-Id"), "%s: no body, a request id", L);
    s_http_free (&r);

    r = s_curl ("-H 'If-None-Match: \"7\"' %%B/v1/users/u1");
    is_int (r.status, 304, "%s: If-None-Match forwarded: 304", L);
    s_http_free (&r);

    r = s_curl ("-I %%B/v1/users/u1");     //  -I: the headers land in body too
    ok (r.status == 200 && atoi (s_header (&r, "Content-Length")) > 0
        && !s_has (&r, "{"), "%s: HEAD: 200, Content-Length of the document, no body", L);
    s_http_free (&r);

    r = s_curl ("'%%B/v1/users?limit=5&after=k9'");
    is_int (r.status, 200, "%s: GET a collection: 200", L);
    ok (s_has (&r, "\"pool\":\"read\"") && s_has (&r, "\"limit\":\"5\"")
        && s_has (&r, "\"after\":\"k9\"") && s_has (&r, "\"id\":\"\""),
        "%s: a list carries limit and after, no id", L);
    s_http_free (&r);

    r = s_curl ("%%B/v1/users/gone");
    ok (s_is_problem (&r, 404) && s_has (&r, "no such document"),
        "%s: a 404 without a body becomes problem+json with the service's reason", L);
    s_http_free (&r);

    //  The service's reason quoted in the detail: escaped, and its bad
    //  UTF-8 repaired (U+FFFD), so that the body is still JSON.
    r = s_curl ("%%B/v1/users/badtext");
    json_error_t error = { .text = "no body" };
    json_t *problem = r.body ? json_loads (r.body, 0, &error) : NULL;
    const char *detail = json_string_value (json_object_get (problem, "detail"));
    const char *title = json_string_value (json_object_get (problem, "title"));
    ok (s_is_problem (&r, 500) && problem,
        "%s: a reason that is not UTF-8: the problem+json is still JSON (%s)", L,
        problem ? "parsed" : error.text);
    is (detail ? detail : "(none)", "read pool: caf\xef\xbf\xbd \"q\" \\ \t end",
        "%s: ... its detail is the reason, repaired", L);
    is (title ? title : "(none)", "Internal Server Error", "%s: ... and its title the reason phrase", L);
    json_decref (problem);
    s_http_free (&r);
}

static void
s_errors (const char *L)
{
    http_t r = s_curl ("-H 'X-Request-Id: req-404' %%B/nothing/here");
    ok (s_is_problem (&r, 404), "%s: unknown route: 404 problem+json", L);
    is (s_header (&r, "X-Request-Id"), "req-404", "%s: with the given request id", L);
    s_http_free (&r);

    r = s_curl ("%%B/v1/users/a/b");
    ok (s_is_problem (&r, 404), "%s: too deep a path: 404", L);
    s_http_free (&r);

    r = s_curl ("-X POST -d x %%B/v1/users/u1");
    ok (s_is_problem (&r, 405), "%s: POST on a document: 405", L);
    is (s_header (&r, "Allow"), "GET, HEAD, PUT, DELETE", "%s: with Allow", L);
    s_http_free (&r);

    r = s_curl ("-X DELETE %%B/v1/users");
    ok (s_is_problem (&r, 405) && streq (s_header (&r, "Allow"), "GET, HEAD"),
        "%s: DELETE on a collection: 405, Allow: GET, HEAD", L);
    s_http_free (&r);

    r = s_curl ("-X PUT %%B/health");
    ok (s_is_problem (&r, 405), "%s: PUT /health: 405", L);
    s_http_free (&r);

    r = s_curl ("'%%B/v1/bad!name/u1'");
    ok (s_is_problem (&r, 400) && s_has (&r, "collection"),
        "%s: bad collection name: 400", L);
    s_http_free (&r);

    char *big = s_write_file ("big", 2048, 'x');
    //  curl sends the body at once unless told to wait for 100 Continue
    //  (it asks by itself only for bodies over 1 MB): asked, the gateway
    //  answers 413 without ever inviting the body. Curl is told to wait
    //  10 s for an answer before it sends the body anyway (its default,
    //  1 s, is a race on a loaded machine): a gateway that waited for the
    //  body would take that long.
    r = s_curl ("-X PUT -H 'Expect: 100-continue' --expect100-timeout 10 "
                "--data-binary @%s %%B/v1/users/u1", big);
    ok (s_is_problem (&r, 413) && s_has (&r, "2048"),
        "%s: Content-Length over max_body: 413", L);
    ok (r.headers && !strstr (r.headers, " 100 "),
        "%s: refused before the body: no 100 Continue", L);
    ok (r.ms < 5000, "%s: ... and without waiting for it (%lld ms)", L, (long long) r.ms);
    s_http_free (&r);

    r = s_curl ("-X PUT -H 'Transfer-Encoding: chunked' --data-binary @%s "
                "%%B/v1/users/u1", big);
    ok (s_is_problem (&r, 413) && s_has (&r, "1024"),
        "%s: chunked upload over max_body: 413", L);
    s_http_free (&r);
    free (big);

    char *small = s_write_file ("small", 1000, 'y');
    r = s_curl ("-X PUT -H 'Transfer-Encoding: chunked' --data-binary @%s "
                "%%B/v1/users/u1", small);
    is_int (r.status, 201, "%s: a chunked upload within max_body is forwarded", L);
    free (small);
    s_http_free (&r);

    char *long_id = s_repeat ('a', 3000);
    r = s_curl ("%%B/v1/users/%s", long_id);
    ok (s_is_problem (&r, 414) && s_has (&r, "2048"), "%s: URL over max_url: 414", L);
    s_http_free (&r);
    free (long_id);

    char *big_header = s_repeat ('h', 5000);
    r = s_curl ("-H 'X-Big: %s' %%B/v1/users/u1", big_header);
    ok (s_is_problem (&r, 431) && s_has (&r, "the limit is 4096"),
        "%s: headers over max_header: 431 problem+json", L);
    s_http_free (&r);
    r = s_curl ("-X PUT -H 'X-Big: %s' -d '{\"a\":1}' %%B/v1/users/big-header", big_header);
    ok (s_is_problem (&r, 431), "%s: a PUT with oversized headers: 431", L);
    s_http_free (&r);
    free (big_header);
    char *huge = s_repeat ('h', 24000);
    r = s_curl ("-H 'X-Big: %s' %%B/v1/users/u1", huge);
    is_int (r.status, 431, "%s: headers over MHD's pool (max_header + 14 kB): 431 (MHD's own page)",
            L);
    s_http_free (&r);
    free (huge);
    r = s_curl ("%%B/health");
    is_int (r.status, 200, "%s: the gateway still serves after oversized headers", L);
    s_http_free (&r);

    r = s_curl ("%%B/v1/users/slow");
    ok (s_is_problem (&r, 504), "%s: a request past its deadline: 504", L);
    ok (r.ms >= 900 && r.ms < 5000, "%s: answered near the 1 s deadline (%lld ms)", L,
        (long long) r.ms);
    s_http_free (&r);
    //  The late reply (after 1.5 s) is dropped; the pool keeps serving.
    zclock_sleep (700);
    r = s_curl ("%%B/v1/users/after-slow");
    is_int (r.status, 200, "%s: served normally after a timeout", L);
    s_http_free (&r);
    r = s_curl ("%%B/metrics");
    ok (s_has (&r, "tiers_gateway_late_replies_total"), "%s: late replies are counted", L);
    ok (s_has (&r, "route=\"document\",status=\"504\""),
        "%s: 504s are counted by route", L);
    s_http_free (&r);
}

static void
s_slow_clients (const char *L)
{
    //  A slowloris: a partial request line, then silence.
    int slowloris = s_connect ();
    ok (slowloris >= 0, "%s: slowloris connected", L);
    ok (send (slowloris, "GET /heal", 9, 0) == 9,
        "%s: slowloris sent a partial request line", L);
    int idle = s_connect ();
    ok (idle >= 0, "%s: an idle connection is open", L);
    int64_t start = zclock_mono ();
    int served = 0;
    for (int i = 0; i < 20; i++) {
        http_t r = s_curl ("%%B/v1/users/u%d", i);
        if (r.status == 200 && s_has (&r, "\"pool\":\"read\""))
            served++;
        s_http_free (&r);
    }
    int64_t elapsed = zclock_mono () - start;
    is_int (served, 20, "%s: 20 requests served while the slowloris stalls", L);
    ok (elapsed < 5000, "%s: quickly (%lld ms)", L, (long long) elapsed);
    //  Both are closed by the idle timeout (1 s; MHD counts whole seconds).
    int64_t closed = s_wait_closed (slowloris, 4000);
    ok (closed >= 0, "%s: the slowloris is disconnected by idle_timeout (%lld ms more)", L,
        (long long) closed);
    closed = s_wait_closed (idle, 4000);
    ok (closed >= 0, "%s: the idle connection is closed by idle_timeout", L);
    close (slowloris);
    close (idle);
}

//  Many clients at once: every request answered, none lost in the table.
static void
s_concurrency (const char *L)
{
    char *command = zsys_sprintf (
        "curl -s --no-progress-meter -Z --parallel-max 64 --max-time 20 -o '%s/par_#1' "
        "-w '%%{http_code}\\n' 'http://127.0.0.1:%d/v1/users/p[1-300]'",
        h_tmpdir (), s_port);
    int64_t start = zclock_mono ();
    FILE *pipe = popen (command, "r");
    free (command);
    int answers = 0, served = 0;
    char line [32];
    while (pipe && fgets (line, sizeof line, pipe)) {
        answers++;
        if (atoi (line) == 200)
            served++;
    }
    if (pipe)
        pclose (pipe);
    is_int (answers, 300, "%s: 300 parallel requests (64 at once) all answered", L);
    is_int (served, 300, "%s: all 200 (%lld ms)", L, (long long) (zclock_mono () - start));
    //  A request's completion is counted a moment after curl has its
    //  answer: asked again until only the /metrics request is in flight.
    http_t r = { 0 };
    bool settled = false;
    int64_t until = zclock_mono () + 5000;
    while (true) {
        r = s_curl ("%%B/metrics");
        settled = s_has (&r, "tiers_gateway_inflight 1\n");
        if (settled || zclock_mono () >= until)
            break;
        s_http_free (&r);
        zclock_sleep (50);
    }
    ok (settled, "%s: in flight: only the /metrics request itself", L);
    if (!settled)
        diag ("%s", r.body && strstr (r.body, "tiers_gateway_inflight")
                    ? strstr (r.body, "tiers_gateway_inflight") : "no gauge");
    s_http_free (&r);
}

//  The wire rid is unique for the gateway's lifetime: a client that reuses
//  its X-Request-Id (or guesses a generated one) never gets another
//  request's answer. Runs on one gateway instance: ids are per instance.
static void
s_request_ids (const char *L)
{
    //  A late answer never reaches a later request with the same id. The
    //  worker takes 1.5 s over "slow"; the deadline is 1 s.
    char *command = zsys_sprintf ("curl -s --max-time 10 -o /dev/null -w '%%{http_code}' "
                                  "-H 'X-Request-Id: same-id' "
                                  "http://127.0.0.1:%d/v1/users/slow", s_port);
    FILE *pipe = popen (command, "r");
    free (command);
    char code [16] = "";
    if (!pipe || !fgets (code, sizeof code, pipe))
        code [0] = 0;
    if (pipe)
        pclose (pipe);
    is (code, "504", "%s: a slow request with X-Request-Id same-id: 504", L);
    //  Its answer comes ~0.5 s from now, while this one (the other worker)
    //  still waits: it must not be taken for this one's. (The balancer
    //  drops a late answer itself, so this checks the two tiers together;
    //  the twenty twins below are what needs the gateway's unique rid.)
    http_t r = s_curl ("-H 'X-Request-Id: same-id' %%B/v1/users/slow");
    ok (s_is_problem (&r, 504),
        "%s: the next request with that id gets its own 504, not the late answer", L);
    is (s_header (&r, "X-Request-Id"), "same-id", "%s: and keeps its id", L);
    s_http_free (&r);
    zclock_sleep (700);             //  both workers free again

    //  Twenty requests at once with one id: each gets its own answer; the
    //  wire carries the id with a suffix that makes it unique.
    command = zsys_sprintf (
        "curl -s --no-progress-meter -Z --parallel-immediate --parallel-max 20 "
        "--max-time 20 -H 'X-Request-Id: twin' -o '%s/twin_#1' -w '%%{http_code}\\n' "
        "'http://127.0.0.1:%d/v1/users/t[1-20]'", h_tmpdir (), s_port);
    pipe = popen (command, "r");
    free (command);
    int answered = 0;
    char line [32];
    while (pipe && fgets (line, sizeof line, pipe))
        answered += atoi (line) == 200;
    if (pipe)
        pclose (pipe);
    is_int (answered, 20, "%s: 20 requests with one X-Request-Id: all 200", L);
    int own = 0, suffixed = 0;
    for (int i = 1; i <= 20; i++) {
        char *path = zsys_sprintf ("%s/twin_%d", h_tmpdir (), i);
        char *body = s_slurp (path);
        char *expect = zsys_sprintf ("\"id\":\"t%d\"", i);
        own += strstr (body, expect) != NULL;
        suffixed += strstr (body, "\"rid\":\"twin~") != NULL;
        free (expect);
        free (body);
        free (path);
    }
    is_int (own, 20, "%s: each got the answer to its own document", L);
    is_int (suffixed, 20, "%s: each went on the wire as twin~<unique>", L);
}

static void
s_no_write_pool (cluster_t *c)
{
    const char *L = c->label;
    http_t r = s_curl ("-X PUT --data-binary '{}' %%B/v1/users/u1");
    ok (s_is_problem (&r, 503), "%s: no write workers: 503 problem+json", L);
    ok (*s_header (&r, "Retry-After"), "%s: with Retry-After: %s", L,
        s_header (&r, "Retry-After"));
    ok (s_has (&r, "write pool"), "%s: naming the pool", L);
    s_http_free (&r);
    r = s_curl ("%%B/v1/users/u1");
    is_int (r.status, 200, "%s: reads still served", L);
    s_http_free (&r);

    //  Shutdown answers a suspended request instead of dropping it: the
    //  node in this process is destroyed, the web node gets SIGTERM.
    char *command = zsys_sprintf ("curl -s --max-time 10 -o /dev/null -w '%%{http_code}' "
                                  "http://127.0.0.1:%d/v1/users/slow", s_port);
    FILE *pipe = popen (command, "r");
    free (command);
    //  Wait until the gateway holds it (forwarded, suspended): the
    //  deadline is 1 s, so the stop must come soon after, not after a
    //  guess at how long curl takes to start.
    bool suspended = false;
    for (int64_t until = zclock_mono () + 5000; !suspended && zclock_mono () < until; ) {
        http_t m = s_curl ("%%B/metrics");
        //  The gauge counts the /metrics request too
        suspended = s_has (&m, "\ntiers_gateway_inflight 2\n");
        s_http_free (&m);
        if (!suspended)
            zclock_sleep (10);
    }
    ok (suspended, "%s: the slow request is suspended in the gateway", L);
    int64_t start = zclock_mono ();
    if (c->split) {
        diag ("%s: no actor to look up in another process; its node is stopped by pid", L);
        is_int (h_stop (c->pids [WEB], SIGTERM, 5000), 0,
                "%s: node web exits 0 on SIGTERM", L);
        c->pids [WEB] = 0;
    }
    else {
        ok (tiers_node_actor (c->node, "gateway") != NULL,
            "%s: the gateway actor is found", L);
        tiers_node_destroy (&c->node);
    }
    char code [16] = "";
    if (!fgets (code, sizeof code, pipe))
        code [0] = 0;
    pclose (pipe);
    is (code, "503", "%s: a request suspended at shutdown gets 503", L);
    diag ("%s: node stopped in %lld ms", L, (long long) (zclock_mono () - start));
}

//  Every scenario, on one placement of the cluster.
static void
s_run_all (bool split, const char *self_path)
{
    const char *L = split ? "tcp" : "inproc";
    cluster_t c = { .split = split, .with_write = true, .label = L,
                    .self_path = self_path };
    int rc = s_cluster_start (&c);
    if (ok (rc == 0, "%s: cluster with read and write pools started (port %d)",
            L, s_port)) {
        s_routes (L);
        s_errors (L);
        s_slow_clients (L);
        s_concurrency (L);
    }
    s_cluster_stop (&c);

    cluster_t without = { .split = split, .with_write = false, .label = L,
                          .self_path = self_path };
    rc = s_cluster_start (&without);
    if (ok (rc == 0, "%s: cluster without a write pool started (port %d)", L, s_port)) {
        s_request_ids (L);
        s_no_write_pool (&without);
    }
    s_cluster_stop (&without);
}

int
main (int argc, char **argv)
{
    tiers_kind_register (&s_fakeapi_kind);
    if (argc > 1)                   //  a node of the split cluster
        return tiers_cli_main (argc, argv);

    zsys_init ();
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_WARN);
    h_tmpdir ();
    s_run_all (false, h_self_path ());
    s_run_all (true, h_self_path ());
    h_kill_all ();
    return done_testing ();
}
