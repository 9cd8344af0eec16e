/*  gateway.c — cluster tests of the HTTP edge: real MHD, real curl, a real
    balancer and test workers.

    fakeapi: a synchronous worker (tiers_service_run) of pool `pool` that
    answers from the request headers, so every test can see what the
    gateway forwarded and where:
        body   {"pool":..,"method":..,"collection":..,"id":..,"if_match":..,
                "limit":..,"after":..,"rid":..,"body":<request body>}
        PUT -> 201 with etag "7" and a location; DELETE -> 204, no body;
        if-none-match "7" -> 304; id "gone" -> 404 with only an `error`
        header (the gateway writes the problem+json); id "slow" -> answers
        after 1.5 s (the map's deadline is 1 s).
*/
#include "../tap.h"
#include "kind.h"
#include "map.h"
#include "node.h"
#include "service.h"
#include "log.h"
#include "gateway/gateway.h"
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

static const tiers_kind_t s_fakeapi_kind = {
    .name = "fakeapi", .summary = "test worker: echoes what the gateway forwarded",
    .rank = TIERS_RANK_SERVICE, .run = s_fakeapi_actor, .keys = s_fakeapi_keys,
    .bind = false, .multi = true, .peer = "balancer", .listener = NULL
};

//  --------------------------------------------------------------------------
//  curl

static char s_dir [256];
static int s_port;

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

//  Runs curl against the gateway; `args` is the rest of the command line
//  with %s standing for the base URL (http://127.0.0.1:PORT).
static http_t
s_curl (const char *format, ...)
{
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
        "curl -s --max-time 10 -o %s/body -D %s/headers -w '%%{http_code}' %s",
        s_dir, s_dir, (char *) zchunk_data (line));
    zchunk_destroy (&line);
    free (rest);
    http_t r = { 0 };
    char path [300];
    snprintf (path, sizeof path, "%s/body", s_dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/headers", s_dir);
    unlink (path);
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
    snprintf (path, sizeof path, "%s/body", s_dir);
    r.body = s_slurp (path);
    snprintf (path, sizeof path, "%s/headers", s_dir);
    r.headers = s_slurp (path);
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

static char *
s_write_file (const char *name, size_t size, char fill)
{
    char *path = zsys_sprintf ("%s/%s", s_dir, name);
    FILE *file = fopen (path, "wb");
    for (size_t i = 0; i < size; i++)
        fputc (fill, file);
    fclose (file);
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

static tiers_map_t *s_map;
static tiers_node_t *s_node;

static int
s_start (bool with_write)
{
    char *text = zsys_sprintf (
        "cluster\n"
        "    name = gateway-test\n"
        "    log = warn\n"
        "node = box\n"
        "    balancer\n"
        "        bind = inproc://%s\n"
        "    fakeapi = r\n"
        "        pool = read\n"
        "        instances = 2\n"
        "%s"
        "    gateway\n"
        "        http = 127.0.0.1:0\n"
        "        instances = %d\n"
        "        max_body = 1k\n"
        "        max_header = 4k\n"
        "        idle_timeout = 1s\n"
        "        deadline = 1s\n",
        //  libzmq unbinds inproc endpoints asynchronously: a fresh name.
        with_write ? "balancer" : "balancer2",
        with_write ? "    fakeapi = w\n        pool = write\n" : "",
        with_write ? 2 : 1);
    char *errors = NULL;
    s_map = tiers_map_parse (text, "gateway.map", &errors);
    free (text);
    if (!s_map) {
        diag ("%s", errors);
        free (errors);
        return -1;
    }
    s_node = tiers_node_new (s_map, NULL);
    if (tiers_node_start (s_node)) {
        diag ("%s", tiers_node_error (s_node));
        return -1;
    }
    s_port = tiers_gateway_port ();
    //  Wait until the read pool serves (workers have joined).
    for (int i = 0; i < 50; i++) {
        http_t r = s_curl ("%%B/v1/c/warmup");
        int status = r.status;
        s_http_free (&r);
        if (status == 200)
            return 0;
        zclock_sleep (100);
    }
    return -1;
}

static void
s_stop (void)
{
    tiers_node_destroy (&s_node);
    tiers_map_destroy (&s_map);
}

static void
s_routes (void)
{
    http_t r = s_curl ("%%B/health");
    is_int (r.status, 200, "/health answers 200");
    is (r.body, "{\"status\":\"ok\"}", "/health body is {\"status\":\"ok\"}");
    ok (strlen (s_header (&r, "X-Request-Id")) > 0, "a request id is generated");
    char first [128];
    snprintf (first, sizeof first, "%s", s_header (&r, "X-Request-Id"));
    s_http_free (&r);
    r = s_curl ("%%B/health");
    ok (*s_header (&r, "X-Request-Id") && !streq (first, s_header (&r, "X-Request-Id")),
        "generated request ids differ (%s, %s)", first, s_header (&r, "X-Request-Id"));
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
    ok (seen [0] && seen [1], "both gateway instances serve the shared port");

    r = s_curl ("%%B/metrics");
    is_int (r.status, 200, "/metrics answers 200");
    ok (s_has (&r, "tiers_gateway_requests_total{route=\"health\",status=\"200\"}"),
        "/metrics counts the health requests");
    ok (s_has (&r, "tiers_gateway_latency_seconds") && s_has (&r, "tiers_gateway_inflight"),
        "/metrics has the latency histogram and the in-flight gauge");
    ok (strncmp (s_header (&r, "Content-Type"), "text/plain; version=0.0.4", 25) == 0,
        "/metrics is Prometheus text (%s)", s_header (&r, "Content-Type"));
    s_http_free (&r);

    r = s_curl ("-H 'X-Request-Id: abc-123' %%B/v1/users/u1");
    is_int (r.status, 200, "GET a document: 200");
    ok (s_has (&r, "\"pool\":\"read\"") && s_has (&r, "\"method\":\"GET\"")
        && s_has (&r, "\"collection\":\"users\"") && s_has (&r, "\"id\":\"u1\""),
        "GET goes to the read pool with method, collection, id");
    is (s_header (&r, "X-Request-Id"), "abc-123", "a given X-Request-Id is echoed");
    ok (s_has (&r, "\"rid\":\"abc-123\""), "and is the rid on the wire");
    is (s_header (&r, "Content-Type"), "application/json", "default content type");
    s_http_free (&r);

    r = s_curl ("-H 'X-Request-Id: has space' %%B/v1/users/u1");
    ok (r.status == 200 && !streq (s_header (&r, "X-Request-Id"), "has space")
        && *s_header (&r, "X-Request-Id"), "an invalid X-Request-Id is replaced (%s)",
        s_header (&r, "X-Request-Id"));
    s_http_free (&r);

    r = s_curl ("-X PUT -H 'If-Match: \"3\"' -H 'Content-Type: application/json' "
                "--data-binary '{\"a\":1}' %%B/v1/users/u1");
    is_int (r.status, 201, "PUT a document: 201 from the write pool");
    ok (s_has (&r, "\"pool\":\"write\"") && s_has (&r, "\"method\":\"PUT\"")
        && s_has (&r, "\"body\":{\"a\":1}"), "PUT goes to the write pool with its body");
    ok (s_has (&r, "\"if_match\":\"\\\"3\\\"\"") || s_has (&r, "\"if_match\":\"\"3\"\""),
        "If-Match is forwarded verbatim");
    is (s_header (&r, "ETag"), "\"7\"", "the reply's etag becomes ETag");
    is (s_header (&r, "Location"), "/v1/users/u1", "the reply's location becomes Location");
    s_http_free (&r);

    r = s_curl ("-X DELETE %%B/v1/users/u1");
    is_int (r.status, 204, "DELETE a document: 204");
    ok (*r.body == 0 && *s_header (&r, "X-Request-Id"), "no body, a request id");
    s_http_free (&r);

    r = s_curl ("-H 'If-None-Match: \"7\"' %%B/v1/users/u1");
    is_int (r.status, 304, "If-None-Match forwarded: 304");
    s_http_free (&r);

    r = s_curl ("-I %%B/v1/users/u1");     //  -I: the headers land in body too
    ok (r.status == 200 && atoi (s_header (&r, "Content-Length")) > 0
        && !s_has (&r, "{"), "HEAD: 200, Content-Length of the document, no body");
    s_http_free (&r);

    r = s_curl ("'%%B/v1/users?limit=5&after=k9'");
    is_int (r.status, 200, "GET a collection: 200");
    ok (s_has (&r, "\"pool\":\"read\"") && s_has (&r, "\"limit\":\"5\"")
        && s_has (&r, "\"after\":\"k9\"") && s_has (&r, "\"id\":\"\""),
        "a list carries limit and after, no id");
    s_http_free (&r);

    r = s_curl ("%%B/v1/users/gone");
    ok (s_is_problem (&r, 404) && s_has (&r, "no such document"),
        "a 404 without a body becomes problem+json with the service's reason");
    s_http_free (&r);
}

static void
s_errors (void)
{
    http_t r = s_curl ("-H 'X-Request-Id: req-404' %%B/nothing/here");
    ok (s_is_problem (&r, 404), "unknown route: 404 problem+json");
    is (s_header (&r, "X-Request-Id"), "req-404", "with the given request id");
    s_http_free (&r);

    r = s_curl ("%%B/v1/users/a/b");
    ok (s_is_problem (&r, 404), "too deep a path: 404");
    s_http_free (&r);

    r = s_curl ("-X POST -d x %%B/v1/users/u1");
    ok (s_is_problem (&r, 405), "POST on a document: 405");
    is (s_header (&r, "Allow"), "GET, HEAD, PUT, DELETE", "with Allow");
    s_http_free (&r);

    r = s_curl ("-X DELETE %%B/v1/users");
    ok (s_is_problem (&r, 405) && streq (s_header (&r, "Allow"), "GET, HEAD"),
        "DELETE on a collection: 405, Allow: GET, HEAD");
    s_http_free (&r);

    r = s_curl ("-X PUT %%B/health");
    ok (s_is_problem (&r, 405), "PUT /health: 405");
    s_http_free (&r);

    r = s_curl ("'%%B/v1/bad!name/u1'");
    ok (s_is_problem (&r, 400) && s_has (&r, "collection"), "bad collection name: 400");
    s_http_free (&r);

    char *big = s_write_file ("big", 2048, 'x');
    r = s_curl ("-X PUT --data-binary @%s %%B/v1/users/u1", big);
    ok (s_is_problem (&r, 413) && s_has (&r, "2048"), "Content-Length over max_body: 413");
    ok (r.ms < 900, "refused before the body (%lld ms)", (long long) r.ms);
    s_http_free (&r);

    r = s_curl ("-X PUT -H 'Transfer-Encoding: chunked' --data-binary @%s "
                "%%B/v1/users/u1", big);
    ok (s_is_problem (&r, 413) && s_has (&r, "1024"), "chunked upload over max_body: 413");
    s_http_free (&r);
    free (big);

    char *small = s_write_file ("small", 1000, 'y');
    r = s_curl ("-X PUT -H 'Transfer-Encoding: chunked' --data-binary @%s "
                "%%B/v1/users/u1", small);
    is_int (r.status, 201, "a chunked upload within max_body is forwarded");
    free (small);
    s_http_free (&r);

    char *long_id = (char *) malloc (3001);
    memset (long_id, 'a', 3000);
    long_id [3000] = 0;
    r = s_curl ("%%B/v1/users/%s", long_id);
    ok (s_is_problem (&r, 414) && s_has (&r, "2048"), "URL over max_url: 414");
    s_http_free (&r);
    free (long_id);

    char *huge = (char *) malloc (8001);
    memset (huge, 'h', 8000);
    huge [8000] = 0;
    r = s_curl ("-H 'X-Big: %s' %%B/v1/users/u1", huge);
    is_int (r.status, 431, "headers over max_header: 431 (MHD's own page)");
    s_http_free (&r);
    free (huge);
    r = s_curl ("%%B/health");
    is_int (r.status, 200, "the gateway still serves after oversized headers");
    s_http_free (&r);

    r = s_curl ("%%B/v1/users/slow");
    ok (s_is_problem (&r, 504), "a request past its deadline: 504");
    ok (r.ms >= 900 && r.ms < 2500, "answered near the 1 s deadline (%lld ms)",
        (long long) r.ms);
    s_http_free (&r);
    //  The late reply (after 1.5 s) is dropped; the pool keeps serving.
    zclock_sleep (700);
    r = s_curl ("%%B/v1/users/after-slow");
    is_int (r.status, 200, "served normally after a timeout");
    s_http_free (&r);
    r = s_curl ("%%B/metrics");
    ok (s_has (&r, "tiers_gateway_late_replies_total"), "late replies are counted");
    ok (s_has (&r, "route=\"document\",status=\"504\""), "504s are counted by route");
    s_http_free (&r);
}

static void
s_slow_clients (void)
{
    //  A slowloris: a partial request line, then silence.
    int slowloris = s_connect ();
    ok (slowloris >= 0, "slowloris connected");
    ok (send (slowloris, "GET /heal", 9, 0) == 9, "slowloris sent a partial request line");
    int idle = s_connect ();
    ok (idle >= 0, "an idle connection is open");
    int64_t start = zclock_mono ();
    int served = 0;
    for (int i = 0; i < 20; i++) {
        http_t r = s_curl ("%%B/v1/users/u%d", i);
        if (r.status == 200 && s_has (&r, "\"pool\":\"read\""))
            served++;
        s_http_free (&r);
    }
    int64_t elapsed = zclock_mono () - start;
    is_int (served, 20, "20 requests served while the slowloris stalls");
    ok (elapsed < 5000, "quickly (%lld ms)", (long long) elapsed);
    //  Both are closed by the idle timeout (1 s; MHD counts whole seconds).
    int64_t closed = s_wait_closed (slowloris, 4000);
    ok (closed >= 0, "the slowloris is disconnected by idle_timeout (%lld ms more)",
        (long long) closed);
    closed = s_wait_closed (idle, 4000);
    ok (closed >= 0, "the idle connection is closed by idle_timeout");
    close (slowloris);
    close (idle);
}

//  Many clients at once: every request answered, none lost in the table.
static void
s_concurrency (void)
{
    char *command = zsys_sprintf (
        "curl -s --no-progress-meter -Z --parallel-max 64 --max-time 20 -o '%s/par_#1' "
        "-w '%%{http_code}\\n' 'http://127.0.0.1:%d/v1/users/p[1-300]'", s_dir, s_port);
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
    is_int (answers, 300, "300 parallel requests (64 at once) all answered");
    is_int (served, 300, "all 200 (%lld ms)", (long long) (zclock_mono () - start));
    http_t r = s_curl ("%%B/metrics");
    ok (s_has (&r, "tiers_gateway_inflight 1\n"), "in flight: only the /metrics request itself");
    if (!s_has (&r, "tiers_gateway_inflight 1\n"))
        diag ("%s", strstr (r.body, "tiers_gateway_inflight") ?: "no gauge");
    s_http_free (&r);
}

static void
s_no_write_pool (void)
{
    http_t r = s_curl ("-X PUT --data-binary '{}' %%B/v1/users/u1");
    ok (s_is_problem (&r, 503), "no write workers: 503 problem+json");
    ok (*s_header (&r, "Retry-After"), "with Retry-After: %s", s_header (&r, "Retry-After"));
    ok (s_has (&r, "write pool"), "naming the pool");
    s_http_free (&r);
    r = s_curl ("%%B/v1/users/u1");
    is_int (r.status, 200, "reads still served");
    s_http_free (&r);

    //  Shutdown answers a suspended request instead of dropping it.
    char *command = zsys_sprintf ("curl -s --max-time 10 -o /dev/null -w '%%{http_code}' "
                                  "http://127.0.0.1:%d/v1/users/slow", s_port);
    FILE *pipe = popen (command, "r");
    free (command);
    zclock_sleep (300);             //  forwarded, suspended
    int64_t start = zclock_mono ();
    zactor_t *gateway = tiers_node_actor (s_node, "gateway");
    ok (gateway != NULL, "the gateway actor is found");
    char code [16] = "";
    s_stop ();
    if (!fgets (code, sizeof code, pipe))
        code [0] = 0;
    pclose (pipe);
    is (code, "503", "a request suspended at shutdown gets 503");
    diag ("node stopped in %lld ms", (long long) (zclock_mono () - start));
}

int
main (void)
{
    zsys_init ();
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_WARN);
    tiers_kind_register (&s_fakeapi_kind);
    snprintf (s_dir, sizeof s_dir, "%s/tiers-gateway-XXXXXX",
              getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
    if (!mkdtemp (s_dir)) {
        printf ("Bail out! cannot make a temp dir\n");
        return 1;
    }
    int rc = s_start (true);
    if (!ok (rc == 0, "cluster with read and write pools started (port %d)", s_port)) {
        s_stop ();
        return done_testing ();
    }
    s_routes ();
    s_errors ();
    s_slow_clients ();
    s_concurrency ();
    s_stop ();

    rc = s_start (false);
    if (ok (rc == 0, "cluster without a write pool started (port %d)", s_port))
        s_no_write_pool ();
    else
        s_stop ();
    char *command = zsys_sprintf ("rm -rf '%s'", s_dir);
    if (system (command) != 0)
        diag ("could not remove %s", s_dir);
    free (command);
    return done_testing ();
}
