/*  t/unit/map.c — the map loader: valid maps load and resolve, every
    broken map is refused with the right FILE:LINE: message.

    The test registers three kinds of its own so it does not depend on the
    real actors: "echo" (a multi-instance service with the balancer as its
    peer), "web" (a public HTTP listener) and "store" (binds, has slots).
*/
#include "map.h"
#include "service.h"
#include "t/tap.h"
#include <unistd.h>

static void
s_dummy (zsock_t *pipe, void *args)
{
    (void) pipe;
    (void) args;
}

static const tiers_key_t s_echo_keys [] = {
    { "delay", TIERS_KEY_MS, false, 0, 60000, NULL },
    { "capacity", TIERS_KEY_INT, false, 1, 1000, NULL },
    { "pool", TIERS_KEY_NAME, false, 0, 32, NULL },
    { NULL, 0, false, 0, 0, NULL }
};
static const tiers_link_t s_to_balancer [] = {
    TIERS_LINK_BALANCER,
    { NULL, NULL, NULL, 0, false, false }
};
static const tiers_kind_t s_echo = {
    .name = "echo", .summary = "answers what it gets", .rank = TIERS_RANK_SERVICE,
    .run = s_dummy, .keys = s_echo_keys, .links = s_to_balancer, .multi = true,
    .listener = NULL
};
static const tiers_key_t s_web_keys [] = {
    { "http", TIERS_KEY_HOSTPORT, true, 0, 0, NULL },
    { NULL, 0, false, 0, 0, NULL }
};
static const tiers_kind_t s_web = {
    .name = "web", .summary = "HTTP edge", .rank = TIERS_RANK_EDGE,
    .run = s_dummy, .keys = s_web_keys, .links = s_to_balancer, .multi = true,
    .listener = "http"
};
//  A listener that the map may leave out (tiers run --http sets it).
static const tiers_key_t s_edge_keys [] = {
    { "http", TIERS_KEY_HOSTPORT, false, 0, 0, NULL },
    { NULL, 0, false, 0, 0, NULL }
};
static const tiers_kind_t s_edge = {
    .name = "edge", .summary = "optional listener", .rank = TIERS_RANK_EDGE,
    .run = s_dummy, .keys = s_edge_keys, .listener = "http"
};
static const tiers_key_t s_store_keys [] = {
    { "slots", TIERS_KEY_SLOTS, false, 0, 0, NULL },
    { "sync", TIERS_KEY_ENUM, false, 0, 0, "full|normal" },
    { "size", TIERS_KEY_BYTES, false, 1, 0, NULL },
    { NULL, 0, false, 0, 0, NULL }
};
static const tiers_port_t s_store_ports [] = {
    { "requests", ZMQ_ROUTER, "what it keeps", true },
    { NULL, 0, NULL, false }
};
static const tiers_kind_t s_store = {
    .name = "store", .summary = "keeps things", .rank = TIERS_RANK_STORAGE,
    .run = s_dummy, .keys = s_store_keys, .ports = s_store_ports, .multi = false,
    .listener = NULL
};

//  diag() prefixes only its first line; TAP wants '#' on every line.
static void
s_diag_lines (const char *text)
{
    while (text && *text) {
        const char *newline = strchr (text, '\n');
        int length = newline? (int) (newline - text): (int) strlen (text);
        diag ("%.*s", length, text);
        text += length + (newline? 1: 0);
    }
}

//  The errors of a map, or "(loaded)" if it loaded; the caller frees.
static char *
s_errors_of (const char *text)
{
    char *errors = (char *) "x";
    tiers_map_t *map = tiers_map_parse (text, "t.map", &errors);
    if (map) {
        ok (errors == NULL, "no errors string when the map loads");
        tiers_map_destroy (&map);
        return strdup ("(loaded)");
    }
    return errors;
}

static void
s_broken (const char *text, const char *expected)
{
    char *errors = s_errors_of (text);
    if (!ok (errors && strstr (errors, expected), "refused: %s", expected))
        s_diag_lines (errors? errors: "(null)");
    free (errors);
}

static size_t
s_lines (const char *text)
{
    size_t count = 0;
    for (; text && *text; text++)
        count += *text == '\n';
    return count;
}

//  A known-good frame with one balancer; `extra` is spliced in as more
//  entries of node box.
static char *
s_with (const char *extra)
{
    return zsys_sprintf ("node = box\n"
                         "    balancer\n"
                         "        bind = inproc://balancer\n"
                         "%s", extra);
}

//  Valid UTF-8 (not ASCII) is text like any other.
static void
s_parsed_ok_utf8 (void)
{
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse ("cluster\n    name = caf\xc3\xa9\n"
        "node = box\n    store = s\n        bind = inproc://s\n", "t.map", &errors);
    ok (map && streq (tiers_map_name (map), "caf\xc3\xa9"), "a UTF-8 cluster name loads");
    free (errors);
    tiers_map_destroy (&map);
}

static void
s_broken_with (const char *extra, const char *expected)
{
    char *text = s_with (extra);
    s_broken (text, expected);
    free (text);
}

static void
test_parsers (void)
{
    long long n = -1;
    ok (tiers_parse_ms ("250", &n) == 0 && n == 250, "ms: 250");
    ok (tiers_parse_ms ("250ms", &n) == 0 && n == 250, "ms: 250ms");
    ok (tiers_parse_ms ("2s", &n) == 0 && n == 2000, "ms: 2s");
    ok (tiers_parse_ms ("1m", &n) == 0 && n == 60000, "ms: 1m");
    ok (tiers_parse_ms ("1h", &n) == 0 && n == 3600000, "ms: 1h");
    ok (tiers_parse_ms ("", &n) == -1, "ms: empty refused");
    ok (tiers_parse_ms ("-1", &n) == -1, "ms: negative refused");
    ok (tiers_parse_ms ("2x", &n) == -1, "ms: bad unit refused");
    ok (tiers_parse_ms (" 2s", &n) == -1, "ms: leading space refused");
    ok (tiers_parse_ms ("99999999999999999999", &n) == -1, "ms: overflow refused");
    ok (tiers_parse_ms ("9223372036854775807s", &n) == -1,
        "ms: overflow by unit refused");
    ok (tiers_parse_bytes ("512", &n) == 0 && n == 512, "bytes: 512");
    ok (tiers_parse_bytes ("64k", &n) == 0 && n == 65536, "bytes: 64k");
    ok (tiers_parse_bytes ("16m", &n) == 0 && n == 16 << 20, "bytes: 16m");
    ok (tiers_parse_bytes ("1G", &n) == 0 && n == 1 << 30, "bytes: 1G");
    ok (tiers_parse_bytes ("1kb", &n) == -1, "bytes: 1kb refused");
    ok (tiers_parse_bytes ("9999999999999g", &n) == -1, "bytes: overflow refused");
    ok (tiers_parse_int ("-5", &n) == 0 && n == -5, "int: -5");
    ok (tiers_parse_int ("12a", &n) == -1, "int: trailing junk refused");
    ok (tiers_parse_int ("+5", &n) == -1, "int: plus sign refused");
    ok (tiers_parse_int ("-", &n) == -1, "int: lone minus refused");
    ok (tiers_parse_int ("9223372036854775808", &n) == -1, "int: overflow refused");
    ok (tiers_parse_int (NULL, &n) == -1, "int: NULL refused");
    ok (tiers_name_ok ("s0", 2) && tiers_name_ok ("a-b_c", 5) && tiers_name_ok ("s0=x", 2),
        "names: s0, a-b_c, and the first 2 bytes of s0=x");
    ok (!tiers_name_ok ("", 0) && !tiers_name_ok ("_a", 2) && !tiers_name_ok ("a.b", 3)
        && !tiers_name_ok ("s0=x", 4), "names: empty, _a, a.b, s0=x refused");
    ok (tiers_name_ok ("a234567890123456789012345678901b", 32)
        && !tiers_name_ok ("a234567890123456789012345678901bc", 33), "names: 32 bytes at most");

    const char *why = NULL;
    ok (tiers_endpoint_check ("inproc://balancer", &why) == 0, "inproc ok");
    ok (tiers_endpoint_check ("tcp://127.0.0.1:5555", &why) == 0, "tcp ipv4 ok");
    ok (tiers_endpoint_check ("tcp://[::1]:5555", &why) == 0, "tcp ipv6 ok");
    ok (tiers_endpoint_check ("tcp://db-1.internal:5555", &why) == 0,
        "tcp hostname ok");
    ok (tiers_endpoint_check ("ipc:///tmp/tiers.sock", &why) == 0, "ipc ok");
    ok (tiers_endpoint_check ("inproc://", &why) == -1 && why, "inproc without name");
    ok (tiers_endpoint_check ("inproc://a b", &why) == -1, "inproc with space");
    ok (tiers_endpoint_check ("tcp://*:5555", &why) == -1
        && strstr (why, "bind a concrete address"), "tcp wildcard refused");
    ok (tiers_endpoint_check ("tcp://0.0.0.0:5555", &why) == -1, "tcp 0.0.0.0 refused");
    ok (tiers_endpoint_check ("tcp://[::]:5555", &why) == -1, "tcp [::] refused");
    ok (tiers_endpoint_check ("tcp://[::0]:5555", &why) == -1, "tcp [::0] refused");
    ok (tiers_endpoint_check ("tcp://[0:0:0:0:0:0:0:0]:5555", &why) == -1,
        "tcp [0:0:0:0:0:0:0:0] refused");
    ok (tiers_endpoint_check ("tcp://[::ffff:0.0.0.0]:5555", &why) == -1,
        "tcp [::ffff:0.0.0.0] refused");
    ok (tiers_endpoint_check ("tcp://[::1]:5555", &why) == 0, "tcp [::1] accepted");
    ok (tiers_endpoint_check ("tcp://127.0.0.1:0", &why) == -1, "tcp port 0 refused");
    ok (tiers_endpoint_check ("tcp://127.0.0.1:65536", &why) == -1,
        "tcp port 65536 refused");
    ok (tiers_endpoint_check ("tcp://300.1.1.1:80", &why) == -1, "bad IPv4 refused");
    ok (tiers_endpoint_check ("tcp://[zz]:80", &why) == -1, "bad IPv6 refused");
    ok (tiers_endpoint_check ("tcp://-bad:80", &why) == -1, "bad hostname refused");
    ok (tiers_endpoint_check ("tcp://host", &why) == -1, "tcp without port refused");
    ok (tiers_endpoint_check ("ipc://", &why) == -1, "ipc without path refused");
    ok (tiers_endpoint_check ("udp://x:1", &why) == -1, "unknown transport refused");
    ok (tiers_endpoint_check ("", NULL) == -1, "empty refused, why optional");

    char host [64];
    int port = -1;
    ok (tiers_hostport_split ("127.0.0.1:8080", host, sizeof host, &port) == 0
        && streq (host, "127.0.0.1") && port == 8080, "hostport ipv4");
    ok (tiers_hostport_split ("[::1]:80", host, sizeof host, &port) == 0
        && streq (host, "::1") && port == 80, "hostport ipv6 without brackets");
    ok (tiers_hostport_split (":8080", host, sizeof host, &port) == 0
        && streq (host, "") && port == 8080, "hostport empty host");
    ok (tiers_hostport_split ("0.0.0.0:0", host, sizeof host, &port) == 0
        && port == 0, "hostport wildcard, port 0");
    ok (tiers_hostport_split ("8080", host, sizeof host, &port) == -1,
        "hostport without colon refused");
    ok (tiers_hostport_split ("a:99999", host, sizeof host, &port) == -1,
        "hostport big port refused");
    ok (tiers_hostport_split ("averyveryverylonghost:1", host, 8, &port) == -1,
        "hostport small buffer refused");
}

static void
test_single_box (void)
{
    const char *text =
        "# one box, everything inproc\n"
        "cluster\n"
        "    name = single-box\n"
        "    data = ./d          # comment after a value\n"
        "\n"
        "node = box\n"
        "    web\n"
        "        http = 127.0.0.1:8080\n"
        "    balancer\n"
        "        bind = inproc://balancer\n"
        "        timeout = 2s\n"
        "    echo\n"
        "        instances = 3\n"
        "        delay = 250ms\n"
        "        capacity = 10\n"
        "    store = s0\n"
        "        bind = inproc://s0\n"
        "        slots = 0-511,512-1023\n"
        "        size = 16m\n"
        "        sync = \"normal\"\n";
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "box.map", &errors);
    ok (map != NULL, "single-box map loads");
    if (!map) {
        s_diag_lines (errors);
        free (errors);
        return;
    }
    is (tiers_map_name (map), "single-box", "cluster name");
    is (tiers_map_file (map), "box.map", "file name kept");
    is (tiers_map_cluster (map, "data"), "./d", "cluster data");
    is (tiers_map_cluster (map, "sync"), "full", "cluster sync defaults to full");
    is (tiers_map_cluster (map, "slots"), "1024", "cluster slots default");
    is (tiers_map_cluster (map, "spin_us"), "200", "cluster spin_us default");
    ok (tiers_map_cluster (map, "nope") == NULL, "unknown cluster key is NULL");
    is_int (tiers_map_node_count (map), 1, "one node");
    is (tiers_map_node_name (map, 0), "box", "node name");
    ok (tiers_map_node_name (map, 1) == NULL, "node index out of range");
    ok (tiers_map_has_node (map, "box") && !tiers_map_has_node (map, "x"),
        "has_node");
    is_int (tiers_map_entry_count (map), 4, "four entries");
    is (tiers_map_entry (map, 0)->name, "web", "file order kept");
    ok (tiers_map_entry (map, 4) == NULL, "entry index out of range");

    const tiers_entry_t *web = tiers_map_find (map, "web");
    ok (web && streq (web->kind->name, "web"), "find web");
    is (web->connect, "inproc://balancer", "web connects to the only balancer");
    ok (!web->connect_explicit, "by default, not explicitly");
    is (tiers_entry_get (web, "http", NULL), "127.0.0.1:8080", "web http");
    is_int (web->line, 7, "entry line");

    const tiers_entry_t *balancer = tiers_map_find_kind (map, "balancer");
    ok (balancer && streq (balancer->name, "balancer"), "find_kind balancer");
    is (balancer->bind, "inproc://balancer", "balancer bind");
    ok (balancer->connect == NULL, "balancer connects nowhere");
    is_int (tiers_entry_int (balancer, "timeout", 0), 2000, "timeout 2s is 2000 ms");
    is_int (tiers_entry_int (balancer, "heartbeat", 1000), 1000,
            "unset heartbeat falls back");
    is (tiers_entry_get (balancer, "liveness", "3"), "3", "unset get falls back");

    const tiers_entry_t *echo = tiers_map_find (map, "echo");
    is_int (echo->instances, 3, "echo has 3 instances");
    is_int (tiers_entry_int (echo, "instances", 1), 3, "instances via entry_int");
    is_int (tiers_entry_int (echo, "delay", 0), 250, "delay 250ms");
    is_int (tiers_entry_int (echo, "capacity", 0), 10, "capacity 10");
    is (echo->node, "box", "echo on node box");

    const tiers_entry_t *store = tiers_map_find (map, "s0");
    ok (store && streq (store->kind->name, "store"), "store named s0");
    ok (tiers_map_find (map, "store") == NULL, "named entry not found by kind word");
    is_int (tiers_entry_int (store, "size", 0), 16 << 20, "size 16m");
    is (tiers_entry_get (store, "sync", NULL), "normal", "quoted value unquoted");
    is (tiers_entry_get (store, "slots", NULL), "0-511,512-1023", "slots kept");
    is_int (store->instances, 1, "one instance by default");

    char *plan = NULL;
    size_t plan_size = 0;
    FILE *out = open_memstream (&plan, &plan_size);
    tiers_map_print_plan (map, NULL, out);
    fclose (out);
    ok (strstr (plan, "cluster single-box (map box.map") != NULL, "plan: cluster line");
    ok (strstr (plan, "\nnode box\n") != NULL, "plan: node line");
    ok (strstr (plan, "echo      echo      x3   connect inproc://balancer\n") != NULL, "plan: echo x3 aligned");
    ok (strstr (plan, "bind inproc://s0") != NULL, "plan: store bind");
    ok (strstr (plan, "connect inproc://balancer  http 127.0.0.1:8080 (public)")
        != NULL,
        "plan: web connect and public listener");
    ok (strstr (plan, "public listeners:\n    http 127.0.0.1:8080  (web on node box)")
        != NULL,
        "plan: public listener summary");
    s_diag_lines (plan);
    free (plan);
    tiers_map_destroy (&map);
    ok (map == NULL, "destroy nulls the pointer");
    tiers_map_destroy (&map);
}

static void
test_two_nodes (void)
{
    const char *text =
        "cluster\n"
        "    name = two\n"
        "    slots = 2048\n"
        "    spin_us = 0\n"
        "    security = none\n"
        "node = front\n"
        "    web\n"
        "        http = 0.0.0.0:8080\n"
        "    echo = reader\n"
        "        instances = 2\n"
        "        connect = balancer\n"
        "node = back\n"
        "    balancer\n"
        "        bind = tcp://10.0.0.2:5555\n"
        "    store = s0\n"
        "        bind = tcp://10.0.0.2:5556\n"
        "        slots = 0-1023\n"
        "    store = s1\n"
        "        bind = ipc:///tmp/tiers-s1.sock\n"
        "        slots = 1024-2047\n"
        "    echo = writer\n"
        "        connect = tcp://10.0.0.2:5555\n";
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "two.map", &errors);
    ok (map != NULL, "two-node map loads");
    if (!map) {
        s_diag_lines (errors);
        free (errors);
        return;
    }
    is_int (tiers_map_node_count (map), 2, "two nodes");
    is (tiers_map_node_name (map, 1), "back", "second node");
    is (tiers_map_find (map, "web")->connect, "tcp://10.0.0.2:5555",
        "web reaches the balancer over tcp");
    const tiers_entry_t *reader = tiers_map_find (map, "reader");
    is (reader->connect, "tcp://10.0.0.2:5555", "connect by name resolves");
    ok (reader->connect_explicit, "connect by name is explicit");
    is_int (reader->instances, 2, "reader has 2 instances");
    is (reader->node, "front", "reader on front");
    is (tiers_map_find (map, "writer")->connect, "tcp://10.0.0.2:5555",
        "connect by endpoint kept");
    is (tiers_map_find (map, "s1")->bind, "ipc:///tmp/tiers-s1.sock", "ipc bind");
    is (tiers_map_cluster (map, "slots"), "2048", "cluster slots");
    is (tiers_map_cluster (map, "spin_us"), "0", "cluster spin_us 0: sleep at once");
    tiers_map_destroy (&map);
}

static void
test_security_rules (void)
{
    s_broken ("node = box\n    balancer\n        bind = tcp://127.0.0.1:5555\n",
              "t.map:3: endpoint 'tcp://127.0.0.1:5555' leaves the process, and the cluster "
              "has no `security` line: say `security = curve`");
    s_broken ("node = box\n    balancer\n        bind = ipc:///tmp/tiers-x.sock\n",
              "t.map:3: endpoint 'ipc:///tmp/tiers-x.sock' leaves the process");
    s_broken ("cluster\n    security = plain\nnode = box\n    balancer\n"
              "        bind = inproc://b\n", "t.map:2: bad security 'plain'");
    s_broken ("cluster\n    security = none\nnode = box\n    balancer\n"
              "        bind = tcp://203.0.113.9:5555\n",
              "t.map:5: balancer binds 'tcp://203.0.113.9:5555', a public address");
    s_broken ("cluster\n    security = none\nnode = box\n    balancer\n"
              "        bind = tcp://[2001:db8::1]:5555\n", "a public address");
    s_broken ("cluster\n    security = none\nnode = box\n    balancer\n"
              "        bind = tcp://127.0.0.1:5555\n        public = maybe\n",
              "t.map:6: bad public 'maybe': expected yes or no");
    const char *good [] = { "127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.7.7",
                            "169.254.1.1", "100.64.0.1", "[::1]", "[fd00::5]", "[fe80::1]" };
    for (size_t i = 0; i < sizeof good / sizeof good [0]; i++) {
        char *text = zsys_sprintf ("cluster\n    security = none\nnode = box\n    balancer\n"
                                   "        bind = tcp://%s:5555\n", good [i]);
        char *errors = s_errors_of (text);
        is (errors, "(loaded)", "a private actor may bind %s", good [i]);
        free (errors);
        free (text);
    }
    char *errors = s_errors_of ("cluster\n    security = none\nnode = box\n    balancer\n"
                                "        bind = tcp://203.0.113.9:5555\n        public = yes\n");
    is (errors, "(loaded)", "public = yes lets it bind a public address");
    free (errors);
    errors = s_errors_of ("cluster\n    security = curve\n    keys = /k\nnode = box\n"
                          "    balancer\n        bind = tcp://127.0.0.1:5555\n");
    is (errors, "(loaded)", "security = curve and keys are cluster keys");
    free (errors);
    errors = s_errors_of ("node = box\n    balancer\n        bind = inproc://b\n");
    is (errors, "(loaded)", "an inproc-only map needs no security line");
    free (errors);
}

static void
test_set_listener (void)
{
    const char *text =
        "cluster\n"
        "    security = none\n"
        "node = front\n"
        "    web\n"
        "        http = 127.0.0.1:8080\n"
        "node = back\n"
        "    balancer\n"
        "        bind = tcp://127.0.0.1:5555\n"
        "    web = admin\n"
        "        http = 127.0.0.1:9090\n"
        "        connect = balancer\n";
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "l.map", &errors);
    ok (map != NULL, "listener map loads");
    if (!map) {
        s_diag_lines (errors);
        free (errors);
        return;
    }
    ok (tiers_map_set_listener (map, "127.0.0.1:8081", NULL) == -1,
        "set_listener: two listeners in the map is ambiguous");
    ok (tiers_map_set_listener (map, "127.0.0.1:8081", "front") == 0,
        "set_listener on node front");
    is (tiers_entry_get (tiers_map_find (map, "web"), "http", NULL),
        "127.0.0.1:8081", "listener replaced");
    is (tiers_entry_get (tiers_map_find (map, "admin"), "http", NULL),
        "127.0.0.1:9090", "other node untouched");
    ok (tiers_map_set_listener (map, "8081", "front") == -1,
        "set_listener: bad address refused");
    ok (tiers_map_set_listener (map, ":5555", "front") == -1,
        "set_listener: clash with a tcp bind refused");
    ok (tiers_map_set_listener (map, "127.0.0.1:9090", "front") == -1,
        "set_listener: clash with another listener refused");
    ok (tiers_map_set_listener (map, "127.0.0.1:0", "front") == 0,
        "set_listener: port 0 never clashes");
    ok (tiers_map_set_listener (map, "127.0.0.1:80", "nowhere") == -1,
        "set_listener: no listener on that node");
    tiers_map_destroy (&map);

    //  A map without a cluster block: every known key still has a value
    //  (the callers rely on it and do not check for NULL).
    map = tiers_map_parse ("node = box\n    edge\n", "l.map", NULL);
    static const char *keys [] = { "name", "data", "log", "sync", "slots",
                                   "heartbeat", "spin_us", NULL };
    bool all = map != NULL;
    for (const char **key = keys; all && *key; key++)
        if (!tiers_map_cluster (map, *key) || !*tiers_map_cluster (map, *key)) {
            diag ("cluster key %s has no default", *key);
            all = false;
        }
    ok (all, "no cluster block: every cluster key has its default");
    ok (map && tiers_map_cluster (map, "nope") == NULL && tiers_map_cluster (map, NULL) == NULL,
        "... and an unknown key (or NULL) is NULL");
    ok (map && tiers_map_set_listener (map, "[::1]:8080", NULL) == 0,
        "set_listener adds a listener the map left out");
    is (map? tiers_entry_get (tiers_map_find (map, "edge"), "http", NULL): NULL,
        "[::1]:8080", "added listener readable");
    ok (map && tiers_map_set_listener (map, "[::1]:8081", "box") == 0,
        "and replaces it again");
    tiers_map_destroy (&map);

    //  An exporter's listener stays where the map puts it
    map = tiers_map_parse ("node = box\n"
                           "    balancer\n        bind = inproc://b\n"
                           "    gateway\n        http = 127.0.0.1:8080\n"
                           "    exporter\n        http = 127.0.0.1:9101\n", "x.map", NULL);
    ok (map && tiers_map_set_listener (map, "127.0.0.1:0", "box") == 0,
        "set_listener beside an exporter moves the gateway");
    is (map? tiers_entry_get (tiers_map_find (map, "gateway"), "http", NULL): NULL,
        "127.0.0.1:0", "the gateway listens there");
    is (map? tiers_entry_get (tiers_map_find (map, "exporter"), "http", NULL): NULL,
        "127.0.0.1:9101", "the exporter stays");
    tiers_map_destroy (&map);
    map = tiers_map_parse ("node = box\n    exporter\n        http = 127.0.0.1:9101\n",
                           "x.map", NULL);
    ok (map && tiers_map_set_listener (map, "127.0.0.1:0", NULL) == -1,
        "set_listener: an exporter alone is not a gateway");
    tiers_map_destroy (&map);
}

static void
test_syntax (void)
{
    s_broken ("node = box\n\tbalancer\n",
              "t.map:2: tab in indentation; indent with 4 spaces per level");
    s_broken ("node = box\n    balancer\n        bind =\tinproc://b\n",
              "t.map:3: tab character; use spaces");
    s_broken ("node = box\n  balancer\n",
              "t.map:2: indentation of 2 spaces is not a multiple of 4");
    s_broken ("node = box\n            balancer\n",
              "t.map:2: indented more than one level (4 spaces) below the item above");
    s_broken ("    node = box\n", "t.map:1: the first item must not be indented");
    //  A cluster name that is not UTF-8 would be echoed raw to terminals.
    s_broken ("cluster\n    name = caf\xe9\nnode = box\n",
              "t.map:2: the line is not valid UTF-8: ");
    s_broken ("cluster\n    name = \xed\xa0\x80\nnode = box\n",
              "t.map:2: the line is not valid UTF-8: ");
    s_parsed_ok_utf8 ();
    s_broken ("cluster\n    name = \"abc\nnode = box\n",
              "t.map:2: unterminated quote in the value of 'name'");
    s_broken ("cluster\n    name = 'abc\nnode = box\n",
              "t.map:2: unterminated quote in the value of 'name'");
    s_broken ("cluster\n    name =   # nothing\n",
              "t.map:2: 'name =' has no value (write name = VALUE)");
    s_broken ("node = box\n    bal!ancer\n",
              "t.map:2: bad character '!' in name 'bal!ancer'");
    s_broken ("node box\n", "t.map:1: expected '=' after 'node' (write name = value)");
    s_broken ("= box\n", "t.map:1: expected a name before '='");
    s_broken ("cluster\n    name = a b\n",
              "t.map:2: unexpected text after the value of 'name'");
    s_broken ("cluster\n    name = \"a\" b\n",
              "t.map:2: unexpected text after the value of 'name'");
    s_broken ("cluster\n    name = a\x01\n", "t.map:2: control character 0x01 in line");

    char *long_line = (char *) malloc (1200);
    memset (long_line, 'a', 1100);
    strcpy (long_line + 1100, "\n");
    s_broken (long_line, "t.map:1: line longer than 1024 bytes");
    free (long_line);

    //  A problem line is reported once; its children are not reported again.
    char *errors = s_errors_of ("node box\n    balancer\n        bind = x\n");
    is_int (s_lines (errors), 2, "children of a bad line are skipped (+ no actors)");
    free (errors);

    //  CRLF files are accepted.
    errors = s_errors_of ("node = box\r\n    balancer\r\n        bind = inproc://b\r\n");
    is (errors, "(loaded)", "CRLF line ends are accepted");
    free (errors);
}

static void
test_grammar (void)
{
    s_broken ("nodes = box\n",
              "t.map:1: unknown top-level item 'nodes' (expected cluster or node)");
    s_broken ("balancer\n    bind = inproc://b\n",
              "t.map:1: unknown top-level item 'balancer' (expected cluster or "
              "node; actors go inside a node)");
    s_broken ("", "t.map:1: the map places no actors");
    s_broken ("# just a comment\n\n", "t.map:1: the map places no actors");
    s_broken ("cluster\n    name = x\n", "t.map:1: the map places no actors");
    s_broken ("cluster\ncluster\n", "t.map:2: cluster defined twice (first at line 1)");
    s_broken ("cluster = x\n", "t.map:1: cluster takes no value");
    s_broken ("cluster\n    color = red\n",
              "t.map:2: unknown cluster key 'color' (expected name, data, log, "
              "sync, slots, heartbeat, spin_us, security or keys)");
    s_broken ("cluster\n    spin_us = 100001\n",
              "t.map:2: bad spin_us '100001': expected an integer from 0 to 100000");
    s_broken ("cluster\n    spin_us = -1\n",
              "t.map:2: bad spin_us '-1': expected an integer from 0 to 100000");
    s_broken ("cluster\n    name = a\n    name = b\n",
              "t.map:3: duplicate key 'name' (first at line 2)");
    s_broken ("cluster\n    slots = 0\n",
              "t.map:2: bad slots '0': expected an integer from 1 to 65536");
    s_broken ("cluster\n    log = loud\n",
              "t.map:2: bad log 'loud': expected error|warn|info|debug");
    s_broken ("cluster\n    heartbeat = 5ms\n",
              "t.map:2: bad heartbeat '5ms': expected a duration like 250ms, 2s "
              "or 1m, from 10ms to 60000ms");
    s_broken ("cluster\n    name\n", "t.map:2: 'name' needs a value: name = VALUE");
    s_broken ("cluster\n    name = x\n        deeper = y\n",
              "t.map:3: 'deeper' is indented under the setting 'name', which "
              "takes no children");
    s_broken ("node\n    balancer\n", "t.map:1: node needs a name: node = NAME");
    s_broken ("node = \"\"\n    balancer\n", "t.map:1: node needs a name: node = NAME");
    s_broken ("node = a.b\n    balancer\n", "t.map:1: bad node name 'a.b'");
    s_broken ("node = box\n", "t.map:1: node 'box' places no actors");
    s_broken_with ("node = box\n    echo\n",
                   "t.map:4: duplicate node name 'box' (first at line 1)");
    s_broken_with ("    balancr\n", "t.map:4: unknown actor kind 'balancr' (known: ");
    s_broken_with ("    echo = a.1\n", "t.map:4: bad actor name 'a.1'");
    s_broken_with ("    echo = a\n    echo = a\n",
                   "t.map:5: duplicate actor name 'a' (first at line 4)");
    s_broken_with ("    echo = balancer\n",
                   "t.map:4: duplicate actor name 'balancer' (first at line 2)");
    s_broken_with ("    echo\n        colour = red\n",
                   "t.map:5: unknown key 'colour' for echo");
    s_broken_with ("    echo\n        delay = 1s\n        delay = 2s\n",
                   "t.map:6: duplicate key 'delay' (first at line 5)");
    s_broken ("node = box\n    balancer\n        bind = inproc://a\n"
              "        bind = inproc://b\n",
              "t.map:4: duplicate key 'bind' (first at line 3)");
    s_broken ("node = box\n    balancer\n", "t.map:2: balancer needs 'bind'");
    s_broken ("node = box\n    exporter\n", "t.map:2: exporter needs 'http'");
    s_broken ("node = box\n    exporter\n        http = nowhere\n",
              "t.map:3: bad http 'nowhere'");
    s_broken_with ("    store = s0\n", "t.map:4: store 's0' needs 'bind'");
    s_broken_with ("    web\n", "t.map:4: web needs 'http'");
    s_broken_with ("    echo\n        bind = inproc://e\n",
                   "t.map:5: echo does not bind; it connects");
    s_broken ("node = box\n    balancer\n        bind = inproc://b\n"
              "        instances = 2\n",
              "t.map:4: balancer cannot have instances");
    s_broken_with ("    echo\n        instances = 0\n",
                   "t.map:5: bad instances '0': expected an integer from 1 to 256");
    s_broken_with ("    echo\n        instances = 257\n",
                   "t.map:5: bad instances '257'");
    s_broken_with ("    echo\n        instances = two\n",
                   "t.map:5: bad instances 'two'");
    s_broken_with ("    echo\n        pool = my/pool\n",
                   "t.map:5: bad pool 'my/pool': expected 1 to 32 letters, digits, "
                   "'_', '.', ':' or '-'");
    s_broken_with ("    echo\n        pool = a\"b\n",
                   "t.map:5: bad pool 'a\"b'");
    s_broken_with ("    store = s0\n        bind = inproc://s0\n"
                   "    echo\n        connect = s0\n",
                   "t.map:7: a echo connects to a balancer; store 's0' is not one");
    s_broken_with ("    store = s0\n        bind = inproc://s0\n"
                   "    echo\n        connect = inproc://s0\n",
                   "t.map:7: a echo connects to a balancer; store 's0' is not one");
    s_broken ("\xef\xbb\xbfnode = box\n    balancer\n        bind = inproc://b\n",
              "t.map:1: bad character '\\xef' in name '\\xef\\xbb\\xbfnode'");
    s_broken_with ("    store = s0\n        bind = inproc://s0\n        connect = balancer\n",
                   "t.map:6: a store connects to nothing: 'connect' does not apply to it");
    char *crowd = strdup ("");
    for (int i = 0; i < 1025; i++) {
        char *more = zsys_sprintf ("%s    echo = e%d\n", crowd, i);
        free (crowd);
        crowd = more;
    }
    s_broken_with (crowd, "t.map:1027: more than 1024 actors in one map");
    free (crowd);
    crowd = strdup ("node = box\n    balancer\n        bind = tcp://127.0.0.1:5555\n");
    for (int i = 0; i < 1024; i++) {
        char *more = zsys_sprintf ("%snode = n%d\n    echo = e%d\n", crowd, i, i);
        free (crowd);
        crowd = more;
    }
    char *crowd_errors = s_errors_of (crowd);
    ok (crowd_errors && strstr (crowd_errors, "t.map:2050: more than 1024 nodes in one map"),
        "the 1025th node is refused");
    if (crowd_errors && !strstr (crowd_errors, "t.map:2050: more than 1024 nodes"))
        diag ("%.300s", crowd_errors);
    free (crowd_errors);
    free (crowd);
    s_broken_with ("    echo\n        pool = p23456789012345678901234567890123\n",
                   "t.map:5: bad pool 'p23456789012345678901234567890123'");
    s_broken ("node = box\n    balancer\n        bind = inproc://b\n"
              "        timeout = 5x\n",
              "t.map:4: bad timeout '5x': expected a duration like 250ms, 2s or "
              "1m, from 1ms to 3600000ms");
    s_broken ("node = box\n    balancer\n        bind = inproc://b\n"
              "        liveness = 101\n",
              "t.map:4: bad liveness '101': expected an integer from 1 to 100");
    s_broken_with ("    store = s0\n        bind = inproc://s0\n        size = 3q\n",
                   "t.map:6: bad size '3q': expected a size like 512, 64k, 16m or "
                   "1g, of at least 1 bytes");
    s_broken_with ("    store = s0\n        bind = inproc://s0\n        sync = fast\n",
                   "t.map:6: bad sync 'fast': expected full|normal");
    s_broken_with ("    store = s0\n        bind = inproc://s0\n"
                   "        slots = 0-2000\n",
                   "t.map:6: bad slots '0-2000': slot 2000 is beyond the cluster's "
                   "1024 slots (0-1023)");
    s_broken_with ("    store = s0\n        bind = inproc://s0\n"
                   "        slots = 0-10,5-20\n",
                   "t.map:6: bad slots '0-10,5-20': ranges must ascend and not overlap");
    s_broken_with ("    store = s0\n        bind = inproc://s0\n"
                   "        slots = 0-\n",
                   "t.map:6: bad slots '0-': expected slot ranges like 0-511,768-1023");
    s_broken ("cluster\n    slots = 16\nnode = box\n    store = s0\n"
              "        bind = inproc://s0\n        slots = 0-16\n",
              "t.map:6: bad slots '0-16': slot 16 is beyond the cluster's 16 slots");
    s_broken_with ("    web\n        http = 8080\n",
                   "t.map:5: bad http '8080': missing ':port'");
}

static void
test_endpoints (void)
{
    s_broken ("node = box\n    balancer\n        bind = tcp://host\n",
              "t.map:3: malformed endpoint 'tcp://host': missing ':port'");
    s_broken ("node = box\n    balancer\n        bind = tcp://1.2.3:80\n",
              "t.map:3: malformed endpoint 'tcp://1.2.3:80': bad IPv4 address");
    s_broken ("node = box\n    balancer\n        bind = tcp://1.2.3.4:0\n",
              "t.map:3: malformed endpoint 'tcp://1.2.3.4:0': port must be a "
              "number from 1 to 65535");
    s_broken ("node = box\n    balancer\n        bind = http://x\n",
              "t.map:3: malformed endpoint 'http://x': expected inproc://NAME, "
              "tcp://HOST:PORT or ipc://PATH");
    s_broken ("node = box\n    balancer\n        bind = inproc://\n",
              "t.map:3: malformed endpoint 'inproc://': inproc needs a name");
    s_broken ("node = box\n    balancer\n        bind = ipc://\n",
              "t.map:3: malformed endpoint 'ipc://': ipc needs a path");
    s_broken ("node = box\n    balancer\n        bind = tcp://*:5555\n",
              "t.map:3: malformed endpoint 'tcp://*:5555': bind a concrete "
              "address so peers can connect");
    s_broken ("node = box\n    balancer\n        bind = tcp://0.0.0.0:5555\n",
              "t.map:3: malformed endpoint 'tcp://0.0.0.0:5555': bind a concrete");
    s_broken_with ("    store = s0\n        bind = inproc://balancer\n",
                   "t.map:5: endpoint 'inproc://balancer' is already bound at line 3");
    s_broken ("node = box\n    balancer\n        bind = tcp://Box1:5555\n"
              "    store = s0\n        bind = tcp://box1:5555\n",
              "t.map:5: port 5555 already used at line 3");
    s_broken ("node = box\n    balancer\n        bind = tcp://127.0.0.1:8080\n"
              "    web\n        http = :8080\n",
              "t.map:5: port 8080 already used at line 3");
    s_broken_with ("    web = w1\n        http = 127.0.0.1:80\n"
                   "    web = w2\n        http = *:80\n",
                   "t.map:7: port 80 already used at line 5");
    s_broken ("node = box\n    balancer\n        bind = tcp://127.0.0.1:8080\n"
              "    web\n        http = \"[0::]:8080\"\n",
              "t.map:5: port 8080 already used at line 3");
    char *errors = s_errors_of ("cluster\n    security = none\nnode = box\n    balancer\n"
                                "        bind = tcp://10.0.0.1:8080\n"
                                "    web = w1\n        http = 10.0.0.2:8080\n"
                                "    web = w2\n        http = 127.0.0.1:0\n"
                                "    web = w3\n        http = 127.0.0.1:0\n"
                                "        connect = balancer\n");
    is (errors, "(loaded)", "different hosts and port 0 do not clash");
    free (errors);

    s_broken ("node = front\n    echo\nnode = back\n    balancer\n"
              "        bind = inproc://balancer\n",
              "t.map:2: inproc://balancer is bound on node 'back'; node 'front' "
              "cannot reach it (use tcp://)");
    s_broken ("node = front\n    echo\n        connect = b\nnode = back\n"
              "    balancer = b\n        bind = inproc://b\n",
              "t.map:3: inproc://b is bound on node 'back'; node 'front' cannot "
              "reach it (use tcp://)");
    s_broken_with ("    echo\n        connect = tcp://10.0.0.9:5555\n",
                   "t.map:5: nothing in the map binds 'tcp://10.0.0.9:5555'");
    s_broken_with ("    echo\n        connect = nope\n",
                   "t.map:5: connect: no actor named 'nope' in the map");
    s_broken_with ("    echo\n        connect = tcp://x\n",
                   "t.map:5: malformed endpoint 'tcp://x': missing ':port'");
    s_broken_with ("    echo = e\n    echo = f\n        connect = e\n",
                   "t.map:6: a echo connects to a balancer; echo 'e' is not one");
    s_broken ("node = box\n    echo\n",
              "t.map:2: echo needs a balancer but the map has none");
    s_broken_with ("    balancer = b2\n        bind = inproc://b2\n    echo\n",
                   "t.map:6: several balancers: say which one with connect = NAME");
    errors = s_errors_of ("node = box\n    balancer = b1\n        bind = inproc://b1\n"
                          "    balancer = b2\n        bind = inproc://b2\n"
                          "    echo\n        connect = b2\n");
    is (errors, "(loaded)", "explicit connect settles several balancers");
    free (errors);
}

static void
test_collected (void)
{
    //  Three independent problems: all three reported, in line order.
    char *errors = s_errors_of ("node = box\n"
                                "    balancer\n"
                                "        bind = tcp://*:1\n"
                                "    echo\n"
                                "        capacity = 0\n"
                                "    nope\n");
    is_int (s_lines (errors), 3, "three problems, three lines");
    ok (errors && strstr (errors, "t.map:3: ") == errors, "sorted by line");
    ok (errors && strstr (errors, "t.map:5: bad capacity '0'"), "second problem");
    ok (errors && strstr (errors, "t.map:6: unknown actor kind 'nope'"), "third problem");
    s_diag_lines (errors);
    free (errors);

    //  At most 50, then a note.
    char *text = strdup ("node = box\n");
    for (int i = 0; i < 60; i++) {
        char *longer = zsys_sprintf ("%s    nope%d\n", text, i);
        free (text);
        text = longer;
    }
    errors = s_errors_of (text);
    is_int (s_lines (errors), 51, "50 problems and a note");
    ok (errors && strstr (errors, "t.map: 10 more problems not shown"), "the note");
    free (errors);
    free (text);

    //  No errors pointer: still refused, nothing leaks.
    ok (tiers_map_parse ("node = box\n", "t.map", NULL) == NULL,
        "refused without an errors pointer");

    //  Too large.
    size_t size = 1024 * 1024 + 10;
    text = (char *) malloc (size + 1);
    memset (text, '\n', size);
    text [size] = 0;
    errors = s_errors_of (text);
    ok (errors && strstr (errors, "t.map: larger than 1 MiB"), "over 1 MiB refused");
    free (errors);
    free (text);
}

static void
test_files (void)
{
    char *errors = NULL;
    ok (tiers_map_load ("/nonexistent/x.map", &errors) == NULL, "missing file refused");
    is (errors, "/nonexistent/x.map: cannot read: No such file or directory\n",
        "missing file reported");
    free (errors);

    const char *tmp = getenv ("TMPDIR") && *getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    char path [1024];
    snprintf (path, sizeof path, "%s/tiers-map-test-XXXXXX", tmp);
    int fd = mkstemp (path);
    ok (fd >= 0, "temporary file");
    const char good [] = "node = box\n    balancer\n        bind = inproc://b\n";
    ok (write (fd, good, sizeof good - 1) == (ssize_t) sizeof good - 1, "written");
    tiers_map_t *map = tiers_map_load (path, &errors);
    ok (map && !errors, "map loads from a file");
    is (map? tiers_map_file (map): NULL, path, "file name is the path");
    tiers_map_destroy (&map);

    //  A NUL byte in the file is reported at its line.
    const char bad [] = "\n    nul\0here\n";
    ok (ftruncate (fd, 0) == 0 && lseek (fd, 0, SEEK_SET) == 0, "truncated");
    ok (write (fd, good, sizeof good - 1) == (ssize_t) sizeof good - 1
        && write (fd, bad, sizeof bad - 1) == (ssize_t) sizeof bad - 1, "written");
    map = tiers_map_load (path, &errors);
    ok (map == NULL, "NUL byte refused");
    char *expected = zsys_sprintf ("%s:5: NUL byte in line", path);
    ok (errors && strstr (errors, expected), "NUL byte reported at its line");
    free (expected);
    free (errors);
    close (fd);
    unlink (path);

    expected = zsys_sprintf ("%s: cannot read: not a regular file", tmp);
    ok (tiers_map_load (tmp, &errors) == NULL && errors && strstr (errors, expected),
        "a directory is unreadable");
    free (expected);
    free (errors);
}

//  `ghosts` reaches a kind no one registered (as the read-api's `replicas`
//  does before the replica kind exists): optional, so nothing is missing.
static const tiers_link_t s_user_links [] = {
    { "stores", "store", "requests", ZMQ_DEALER, true, false },
    { "ghosts", "ghost", "requests", ZMQ_DEALER, true, true },
    { NULL, NULL, NULL, 0, false, false }
};
static const tiers_kind_t s_user = {
    .name = "user", .summary = "uses every store", .rank = 30,
    .run = s_dummy, .keys = NULL, .multi = true, .links = s_user_links
};

//  A link named by a key (the replica's `of`), on kinds of the test's own:
//  a "source" with a second port `feed`, a "mirror" whose link `upstream`
//  reaches the source its `of` names.
static const tiers_key_t s_source_keys [] = {
    { "ack", TIERS_KEY_ENUM, false, 0, 0, "primary|replica" },
    { NULL, 0, false, 0, 0, NULL }
};
static const tiers_port_t s_source_ports [] = {
    { "requests", ZMQ_ROUTER, "reads", true },
    { "feed", ZMQ_ROUTER, "what changed", false },
    { NULL, 0, NULL, false }
};
static const tiers_kind_t s_source = {
    .name = "source", .summary = "is followed", .rank = TIERS_RANK_STORAGE,
    .run = s_dummy, .keys = s_source_keys, .ports = s_source_ports
};
static const tiers_key_t s_mirror_keys [] = {
    { "of", TIERS_KEY_NAME, true, 0, 0, NULL },
    { NULL, 0, false, 0, 0, NULL }
};
static const tiers_port_t s_mirror_ports [] = {
    { "requests", ZMQ_ROUTER, "reads", true },
    { NULL, 0, NULL, false }
};
static const tiers_link_t s_mirror_links [] = {
    { "upstream", "source", "feed", ZMQ_DEALER, false, false, "of" },
    { NULL, NULL, NULL, 0, false, false, NULL }
};
static const tiers_kind_t s_mirror = {
    .name = "mirror", .summary = "follows a source", .rank = TIERS_RANK_STORAGE + 1,
    .run = s_dummy, .keys = s_mirror_keys, .ports = s_mirror_ports,
    .links = s_mirror_links
};

static void
test_named_by_key (void)
{
    const char *text =
        "node = box\n"
        "    source = o1\n"
        "        bind = inproc://o1\n"
        "        bind.feed = inproc://o1-feed\n"
        "        ack = replica\n"
        "    source = o2\n"
        "        bind = inproc://o2\n"
        "        bind.feed = inproc://o2-feed\n"
        "    mirror = m1\n"
        "        bind = inproc://m1\n"
        "        of = o2\n"
        "    mirror = m2\n"
        "        bind = inproc://m2\n"
        "        of = o2\n";
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "t.map", &errors);
    ok (map != NULL, "by: two sources, the mirrors name theirs with `of`");
    s_diag_lines (errors);
    free (errors);
    const tiers_target_t *targets = NULL;
    const tiers_entry_t *m1 = map ? tiers_map_find (map, "m1") : NULL;
    size_t count = m1 ? tiers_entry_targets (m1, "upstream", &targets) : 0;
    ok (count == 1 && streq (targets [0].entry->name, "o2")
        && streq (targets [0].endpoint, "inproc://o2-feed"),
        "by: m1's upstream is o2's feed port");
    ok (m1 && m1->connect && streq (m1->connect, "inproc://o2-feed"),
        "by: and its connect (the first link)");
    if (map) {
        char *plan = NULL;
        size_t plan_size = 0;
        FILE *out = open_memstream (&plan, &plan_size);
        tiers_map_print_plan (map, NULL, out);
        fclose (out);
        ok (strstr (plan, "mirrors: none  ack: replica\n") != NULL,
            "plan: a source without mirrors, with its ack");
        ok (strstr (plan, "mirrors: m1 (node box), m2 (node box)  ack: primary\n") != NULL,
            "plan: a source's mirrors, ack primary by default");
        ok (strstr (plan, "m1    mirror  x1   bind inproc://m1  connect inproc://o2-feed")
            != NULL, "plan: the mirror connects to the feed");
        s_diag_lines (plan);
        free (plan);
    }
    tiers_map_destroy (&map);

    const char *source =
        "node = box\n"
        "    source = o1\n"
        "        bind = inproc://o1\n"
        "        bind.feed = inproc://o1-feed\n";
    char *broken = zsys_sprintf ("%s    mirror = m1\n        bind = inproc://m1\n"
                                 "        of = o9\n", source);
    s_broken (broken, "t.map:7: of: no actor named 'o9' in the map");
    free (broken);
    broken = zsys_sprintf ("%s    store = s\n        bind = inproc://s\n"
                           "    mirror = m1\n        bind = inproc://m1\n"
                           "        of = s\n", source);
    s_broken (broken, "t.map:9: of: a mirror's upstream is a source; store 's' is not one");
    free (broken);
    s_broken ("node = box\n"
              "    source = o1\n"
              "        bind = inproc://o1\n"
              "    mirror = m1\n        bind = inproc://m1\n        of = o1\n",
              "t.map:6: of: source 'o1' binds no feed port (bind.feed)");
    broken = zsys_sprintf ("%s    mirror = m1\n        bind = inproc://m1\n", source);
    s_broken (broken, "t.map:5: mirror 'm1' needs 'of'");
    free (broken);
    broken = zsys_sprintf ("%s    mirror = m1\n        bind = inproc://m1\n"
                           "        of = o1\n        connect = o1\n", source);
    s_broken (broken, "t.map:8: connect: a mirror's upstream is the source its `of` "
                      "names; `connect` does not apply to it");
    free (broken);
    s_broken ("node = a\n"
              "    source = o1\n"
              "        bind = inproc://o1\n"
              "        bind.feed = inproc://o1-feed\n"
              "node = b\n"
              "    mirror = m1\n        bind = inproc://m1\n        of = o1\n",
              "t.map:8: inproc://o1-feed is bound on node 'a'; node 'b' cannot reach it "
              "(use tcp://)");
    char *loaded = s_errors_of ("cluster\n    security = none\n"
                                "node = a\n"
                                "    source = o1\n"
                                "        bind = inproc://o1\n"
                                "        bind.feed = tcp://127.0.0.1:7100\n"
                                "node = b\n"
                                "    mirror = m1\n        bind = inproc://m1\n"
                                "        of = o1\n");
    is (loaded, "(loaded)", "by: a feed on tcp:// is reachable from another node");
    free (loaded);

    //  The real replica kind: its `of` names a shard that binds `stream`.
    s_broken ("node = box\n"
              "    shard = s0\n        bind = inproc://s0\n"
              "    replica = r1\n        bind = inproc://r1\n        of = s0\n",
              "t.map:6: of: shard 's0' binds no stream port");
    s_broken ("node = box\n"
              "    shard = s0\n        bind = inproc://s0\n"
              "    replica = r1\n        bind = inproc://r1\n        of = s1\n",
              "t.map:6: of: no actor named 's1' in the map");
    s_broken ("node = box\n"
              "    balancer\n        bind = inproc://b\n"
              "    shard = s0\n        bind = inproc://s0\n"
              "    replica = r1\n        bind = inproc://r1\n        of = balancer\n",
              "t.map:8: of: a replica's primary is a shard; balancer 'balancer' is not one");
    s_broken ("node = box\n"
              "    shard = s0\n        bind = inproc://s0\n"
              "    replica = r1\n        bind = inproc://r1\n",
              "t.map:4: replica 'r1' needs 'of'");
    s_broken ("node = box\n"
              "    shard = s0\n        bind = inproc://s0\n"
              "    replica = r1\n        bind = inproc://r1\n        of = s0\n"
              "        max_lag = forever\n",
              "t.map:7: ");
}

//  Slot ownership across stores, and reaching every used store.
static void
test_ownership (void)
{
    s_broken ("node = box\n"
              "    store = s0\n        bind = inproc://s0\n        slots = 0-600\n"
              "    store = s1\n        bind = inproc://s1\n        slots = 500-1023\n",
              "t.map:5: slot 500 of store 's1' is also owned by the store at line 2");
    s_broken ("node = box\n"
              "    store = s0\n        bind = inproc://s0\n        slots = 0-400\n"
              "    store = s1\n        bind = inproc://s1\n        slots = 512-1023\n",
              "slots 401-511 are owned by no store");
    s_broken ("node = box\n"
              "    store = s0\n        bind = inproc://s0\n"
              "    store = s1\n        bind = inproc://s1\n        slots = 512-1023\n",
              "t.map:2: with several stores each needs 'slots'");
    s_broken ("node = web\n    user\n"
              "node = db\n    store = s0\n        bind = inproc://s0\n",
              "t.map:2: user reaches store 's0' at inproc://s0, bound on node 'db'; "
              "node 'web' cannot reach it (use tcp://)");
    s_broken ("node = web\n    user\n",
              "t.map:2: user needs a store but the map has none");
    char *errors = s_errors_of ("cluster\n    security = none\nnode = web\n    user\n"
                                "node = db\n    store = s0\n"
                                "        bind = tcp://127.0.0.1:7000\n");
    is (errors, "(loaded)", "a used store on tcp:// is reachable from another node");
    free (errors);

    char *problems = NULL;
    tiers_map_t *map = tiers_map_parse ("node = box\n    user\n"
                                        "    store = s0\n        bind = inproc://s0\n",
                                        "t.map", &problems);
    const tiers_entry_t *user = map ? tiers_map_find (map, "user") : NULL;
    ok (user && tiers_entry_targets (user, "ghosts", NULL) == 0
        && tiers_entry_targets (user, "stores", NULL) == 1,
        "an optional link to a kind no entry uses (nor registered) reaches nothing");
    tiers_map_destroy (&map);
    free (problems);
    s_broken ("node = box\n    user\n        connect.ghosts = s0\n"
              "    store = s0\n        bind = inproc://s0\n",
              "t.map:3: connect.ghosts: a user reaches every ghost; there is nothing to choose");
}

int
main (void)
{
    ok (tiers_kind_register (&s_echo) == 0, "register echo");
    ok (tiers_kind_register (&s_web) == 0, "register web");
    ok (tiers_kind_register (&s_store) == 0, "register store");
    ok (tiers_kind_register (&s_edge) == 0, "register edge");
    ok (tiers_kind_register (&s_edge) == -1, "a kind registers once");
    ok (tiers_kind_register (&s_user) == 0, "register user");
    ok (tiers_kind_register (&s_source) == 0, "register source");
    ok (tiers_kind_register (&s_mirror) == 0, "register mirror");
    test_parsers ();
    test_single_box ();
    test_two_nodes ();
    test_set_listener ();
    test_security_rules ();
    test_syntax ();
    test_grammar ();
    test_endpoints ();
    test_collected ();
    test_files ();
    test_ownership ();
    test_named_by_key ();
    return done_testing ();
}
