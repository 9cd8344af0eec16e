/*  wire_api.c — the read-api and write-api refuse malformed requests that
    come to them over the wire (not through the gateway, which checks the
    same things first), and store nothing for them.

    Runs twice: the single-box topology in this process (inproc), and split
    into a web node and a storage node, each a `tiers run` process, with the
    balancer on tcp:// loopback so that this test can reach it.
*/
#include "../tap.h"
#include "harness.h"
#include "service.h"
#include "node.h"
#include "map.h"
#include "log.h"
#include <signal.h>

//  The split map's security lines: CURVE, keys in the test's directory.
static char s_security [600];
static char s_keys [512];

static char *
s_map_text (bool split, const char *data, const char *lb, const char *s0,
            const char *s1)
{
    return zsys_sprintf (
        "cluster\n"
        "    name = wire-api\n"
        "    data = %s\n"
        "    log = warn\n"
        "%s"
        "node = %s\n"
        "    balancer\n"
        "        bind = %s\n"
        "    read-api\n"
        "    write-api\n"
        "%s"
        "    shard = s0\n"
        "        bind = %s\n"
        "        slots = 0-511\n"
        "    shard = s1\n"
        "        bind = %s\n"
        "        slots = 512-1023\n",
        data, split ? s_security : "", split ? "web" : "box", lb,
        split ? "node = storage\n" : "", s0, s1);
}

//  A request to a pool with the given headers ("key", "value", ... NULL).
static tiers_wire_t *
s_call (zsock_t *client, const char *pool, const char *body, ...)
{
    tiers_wire_t *request = h_request (pool, body, 3000);
    va_list args;
    va_start (args, body);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (request, key, value, strlen (value));
    }
    va_end (args);
    tiers_wire_t *reply = tiers_call (client, request, 5000);
    tiers_wire_destroy (&request);
    return reply;
}

static void
s_expect (zsock_t *client, const char *label, int status, const char *detail,
          const char *what, tiers_wire_t *reply)
{
    ok (reply && reply->status == status, "%s: %s is %d (got %d)", label, what,
        status, reply ? reply->status : -1);
    const char *type = reply ? tiers_wire_header (reply, "content-type") : NULL;
    ok (type && streq (type, "application/problem+json"),
        "%s: %s answers problem+json", label, what);
    ok (reply && strstr ((char *) reply->body, detail) && strstr ((char *) reply->body,
        "\"request_id\":\""), "%s: %s says '%s'", label, what, detail);
    tiers_wire_destroy (&reply);
}

static void
s_scenarios (zsock_t *client, const char *L)
{
    ok (h_wait_workers (client, "read", 1, 10000) == 0, "%s: read pool joined", L);
    ok (h_wait_workers (client, "write", 1, 10000) == 0, "%s: write pool joined", L);

    //  Reads.
    s_expect (client, L, 400, "collection name", "no collection",
              s_call (client, "read", NULL, "method", "GET", "id", "a", NULL));
    s_expect (client, L, 400, "collection name", "a collection with a space",
              s_call (client, "read", NULL, "method", "GET", "collection", "a b", "id", "x", NULL));
    //  The gateway's rule (runtime/names.h): a collection starts with a
    //  letter or digit. The API must refuse what the gateway would, or a
    //  document written here could never be read over HTTP.
    s_expect (client, L, 400, "starting with a letter or digit", "the collection _x",
              s_call (client, "read", NULL, "method", "GET", "collection", "_x", "id", "a", NULL));
    s_expect (client, L, 400, "starting with a letter or digit", "a list of the collection -x",
              s_call (client, "read", NULL, "method", "GET", "collection", "-x", NULL));
    s_expect (client, L, 400, "document id", "the id ..",
              s_call (client, "read", NULL, "method", "GET", "collection", "c", "id", "..", NULL));
    s_expect (client, L, 400, "document id", "an id of 257 bytes",
              s_call (client, "read", NULL, "method", "GET", "collection", "c", "id",
                      "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii"
                      "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii"
                      "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii"
                      "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii", NULL));
    s_expect (client, L, 400, "document id", "an id with a slash",
              s_call (client, "read", NULL, "method", "GET", "collection", "c", "id", "a/b", NULL));
    s_expect (client, L, 400, "If-None-Match", "a garbage If-None-Match",
              s_call (client, "read", NULL, "method", "GET", "collection", "c", "id", "x",
                      "if-none-match", "nonsense", NULL));
    s_expect (client, L, 400, "limit", "limit=5000",
              s_call (client, "read", NULL, "method", "GET", "collection", "c", "limit", "5000", NULL));
    s_expect (client, L, 400, "after", "a bad cursor",
              s_call (client, "read", NULL, "method", "GET", "collection", "c", "after", "$$", NULL));
    s_expect (client, L, 405, "method", "no method",
              s_call (client, "read", NULL, "collection", "c", "id", "x", NULL));
    //  A request-id that is not in the gateway's shape (here not UTF-8):
    //  the problem body names the rid instead, and the API stays up.
    s_expect (client, L, 400, "collection name", "a request-id of bytes 0xff",
              s_call (client, "read", NULL, "method", "GET", "collection", "a b",
                      "request-id", "\xff\xfe", NULL));
    tiers_wire_t *request = h_request ("write", "{}", 3000);
    tiers_wire_set_header (request, "method", "PUT", 3);
    tiers_wire_set_header (request, "collection", "c", 1);
    tiers_wire_set_header (request, "id", "nul\0tail", 8);
    s_expect (client, L, 400, "NUL byte", "an id header holding a NUL byte",
              tiers_call (client, request, 5000));
    tiers_wire_destroy (&request);
    s_expect (client, L, 404, "no such document", "... nothing stored under the cut-short id",
              s_call (client, "read", NULL, "method", "GET", "collection", "c", "id", "nul", NULL));
    s_expect (client, L, 405, "method", "PUT to the read pool",
              s_call (client, "read", "{}", "method", "PUT", "collection", "c", "id", "x", NULL));

    //  Writes: each refused, and nothing stored.
    s_expect (client, L, 400, "JSON document", "a PUT without a body",
              s_call (client, "write", NULL, "method", "PUT", "collection", "c", "id", "w1", NULL));
    s_expect (client, L, 400, "If-Match", "a garbage If-Match",
              s_call (client, "write", "{}", "method", "PUT", "collection", "c", "id", "w2",
                      "if-match", "42", NULL));
    s_expect (client, L, 400, "If-None-Match", "If-None-Match with a tag on PUT",
              s_call (client, "write", "{}", "method", "PUT", "collection", "c", "id", "w3",
                      "if-none-match", "\"1\"", NULL));
    s_expect (client, L, 400, "never both hold", "If-Match with If-None-Match",
              s_call (client, "write", "{}", "method", "PUT", "collection", "c", "id", "w4",
                      "if-match", "\"1\"", "if-none-match", "*", NULL));
    s_expect (client, L, 400, "not", "a body that is not JSON",
              s_call (client, "write", "{nope", "method", "PUT", "collection", "c", "id", "w5", NULL));
    s_expect (client, L, 400, "starting with a letter or digit", "a PUT into the collection _x",
              s_call (client, "write", "{}", "method", "PUT", "collection", "_x", "id", "w7", NULL));
    s_expect (client, L, 400, "starting with a letter or digit", "a DELETE in the collection _x",
              s_call (client, "write", NULL, "method", "DELETE", "collection", "_x", "id", "w7", NULL));
    s_expect (client, L, 405, "method", "GET to the write pool",
              s_call (client, "write", NULL, "method", "GET", "collection", "c", "id", "w6", NULL));
    s_expect (client, L, 405, "method", "DELETE of a collection",
              s_call (client, "write", NULL, "method", "DELETE", "collection", "c", NULL));
    tiers_wire_t *reply = s_call (client, "read", NULL, "method", "GET", "collection", "c", NULL);
    ok (reply && reply->status == 200
        && streq ((char *) reply->body, "{\"items\":[],\"next\":null}"),
        "%s: nothing was stored by the refused writes (%s)", L, reply ? (char *) reply->body : "-");
    tiers_wire_destroy (&reply);

    //  And a good one still works.
    reply = s_call (client, "write", "{\"ok\":true}", "method", "PUT", "collection", "c", "id", "good", NULL);
    ok (reply && reply->status == 201, "%s: a good PUT is 201", L);
    tiers_wire_destroy (&reply);
    reply = s_call (client, "read", NULL, "method", "GET", "collection", "c", "id", "good", NULL);
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "{\"ok\":true}"),
        "%s: and reads back", L);
    tiers_wire_destroy (&reply);
}

//  A valid map with more shards than a poller once held (32) runs: the
//  API watches one socket per shard. Every shard owns one slot.
static void
s_many_shards (const char *dir)
{
    enum { SHARDS = 40 };
    char *data = zsys_sprintf ("%s/many", dir);
    char *text = zsys_sprintf ("cluster\n    data = %s\n    log = warn\n    slots = %d\n"
                               "node = box\n    balancer\n        bind = inproc://many-balancer\n"
                               "    read-api\n    write-api\n", data, SHARDS);
    for (int i = 0; i < SHARDS; i++) {
        //  Endpoints of their own: the inproc names of the cluster before
        //  are released by libzmq's reaper, a moment after it stopped.
        char *more = zsys_sprintf ("%s    shard = s%d\n        bind = inproc://many-s%d\n"
                                   "        slots = %d\n", text, i, i, i);
        free (text);
        text = more;
    }
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "many.map", &errors);
    ok (map != NULL, "many: a map of %d shards loads", SHARDS);
    if (!map)
        diag ("%s", errors);
    free (errors);
    tiers_node_t *node = map ? tiers_node_new (map, NULL) : NULL;
    bool started = node && tiers_node_start (node) == 0;
    ok (started, "many: the cluster starts");
    if (node && !started)
        diag ("%s", tiers_node_error (node));
    if (node && tiers_node_actor_count (node) > 0) {
        zsock_t *client = zsock_new_dealer ("inproc://many-balancer");
        ok (h_wait_workers (client, "write", 1, 10000) == 0
         && h_wait_workers (client, "read", 1, 10000) == 0, "many: the pools joined");
        int written = 0, read = 0;
        for (int i = 0; i < 100; i++) {
            char id [16];
            snprintf (id, sizeof id, "d%d", i);
            tiers_wire_t *reply = s_call (client, "write", "{\"n\":1}", "method", "PUT",
                                          "collection", "c", "id", id, NULL);
            written += reply && reply->status == 201;
            tiers_wire_destroy (&reply);
            reply = s_call (client, "read", NULL, "method", "GET", "collection", "c",
                            "id", id, NULL);
            read += reply && reply->status == 200;
            tiers_wire_destroy (&reply);
        }
        is_int (written, 100, "many: 100 documents written over %d shards", SHARDS);
        is_int (read, 100, "many: and read back");
        tiers_wire_t *reply = s_call (client, "read", NULL, "method", "GET",
                                      "collection", "c", "limit", "1000", NULL);
        ok (reply && reply->status == 200 && reply->body
         && strstr ((char *) reply->body, "\"d99\""), "many: a list gathers every shard");
        tiers_wire_destroy (&reply);
        zsock_destroy (&client);
    }
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);
    free (text);
    free (data);
}

int
main (int argc, char **argv)
{
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    const char *dir = h_tmpdir ();

    //  One process, inproc.
    char *data = zsys_sprintf ("%s/one", dir);
    char *text = s_map_text (false, data, "inproc://balancer", "inproc://s0", "inproc://s1");
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "one.map", &errors);
    if (!map)
        diag ("%s", errors);
    free (errors);
    tiers_node_t *node = map ? tiers_node_new (map, NULL) : NULL;
    ok (node && tiers_node_start (node) == 0, "inproc: cluster started");
    if (node && tiers_node_actor_count (node) > 0) {
        zsock_t *client = zsock_new_dealer ("inproc://balancer");
        s_scenarios (client, "inproc");
        zsock_destroy (&client);
    }
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);
    free (text);
    free (data);
    s_many_shards (dir);

    //  Two processes, tcp.
    const char *top = getenv ("top_builddir");
    char *tiers = zsys_sprintf ("%s/tiers", top ? top : ".");
    char lb [64], s0 [64], s1 [64];
    snprintf (lb, sizeof lb, "tcp://127.0.0.1:%d", h_free_port ());
    snprintf (s0, sizeof s0, "tcp://127.0.0.1:%d", h_free_port ());
    snprintf (s1, sizeof s1, "tcp://127.0.0.1:%d", h_free_port ());
    data = zsys_sprintf ("%s/two", dir);
    snprintf (s_keys, sizeof s_keys, "%s/keys", dir);
    snprintf (s_security, sizeof s_security, "    security = curve\n    keys = %s\n", s_keys);
    text = s_map_text (true, data, lb, s0, s1);
    char *path = h_write_file ("two.map", text);
    ok (h_make_keys (path) == 0, "tcp: the nodes' CURVE keys are made");
    char *storage_log = zsys_sprintf ("%s/storage.log", dir);
    char *web_log = zsys_sprintf ("%s/web.log", dir);
    char *storage_argv [] = { tiers, (char *) "run", (char *) "-m", path,
                              (char *) "-n", (char *) "storage", NULL };
    char *web_argv [] = { tiers, (char *) "run", (char *) "-m", path,
                          (char *) "-n", (char *) "web", NULL };
    pid_t storage = h_spawn (storage_argv, storage_log);
    bool up = h_wait_for_line (storage_log, "; ready", 30000) == 0;  //  as lib.sh
    pid_t web = h_spawn (web_argv, web_log);
    up = up && h_wait_for_line (web_log, "; ready", 30000) == 0;
    ok (up, "tcp: storage and web nodes started as processes");
    if (up) {
        //  The test calls the balancer as the web node would.
        zsock_t *client = h_dealer_as (lb, s_keys, "web", "web");
        s_scenarios (client, "tcp");
        zsock_destroy (&client);
    }
    is_int (h_stop (web, SIGTERM, 3000), 0, "tcp: web node exits 0 on SIGTERM");
    is_int (h_stop (storage, SIGTERM, 3000), 0, "tcp: storage node exits 0 on SIGTERM");
    h_kill_all ();
    free (storage_log);
    free (web_log);
    free (path);
    free (text);
    free (data);
    free (tiers);
    return done_testing ();
}
