/*  node.c — the launcher: start order, reverse stop order, $TERM honoured
    promptly (within 2 s, loose for a loaded machine: a stop that sits out
    a timeout or a linger still fails), a failed start that leaves nothing
    running, and the balancer's own shutdown time. */
#include "../tap.h"
#include "node.h"
#include "map.h"
#include "log.h"
#include <netinet/in.h>
#include <arpa/inet.h>

static char s_events [1024];
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

static void
s_event (const char *what, const char *name)
{
    pthread_mutex_lock (&s_lock);
    size_t used = strlen (s_events);
    snprintf (s_events + used, sizeof s_events - used, "%s%s:%s",
              used ? " " : "", what, name);
    pthread_mutex_unlock (&s_lock);
}

static void
s_probe_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    if (streq (tiers_entry_get (args->entry, "fail", "no"), "yes")) {
        tiers_actor_failed (pipe, "refusing to start on purpose");
        return;
    }
    s_event ("start", args->name);
    tiers_actor_ready (pipe);
    while (true) {
        char *command = zstr_recv (pipe);
        bool stop = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (stop)
            break;
    }
    s_event ("stop", args->name);
}

static const tiers_key_t s_keys [] = {
    { "fail", TIERS_KEY_ENUM, false, 0, 0, "yes|no" },
    { NULL, 0, false, 0, 0, NULL }
};
static const tiers_kind_t s_low = {
    .name = "low", .rank = TIERS_RANK_STORAGE, .run = s_probe_actor,
    .keys = s_keys, .multi = true
};
static const tiers_kind_t s_high = {
    .name = "high", .rank = TIERS_RANK_EDGE, .run = s_probe_actor,
    .keys = s_keys, .multi = true
};

static tiers_map_t *
s_map (const char *text)
{
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "node.map", &errors);
    if (!map)
        diag ("%s", errors);
    free (errors);
    return map;
}

int
main (void)
{
    char *text;
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    tiers_kind_register (&s_low);
    tiers_kind_register (&s_high);

    //  High is written first but starts last; stop order is the reverse.
    tiers_map_t *map = s_map (
        "node = a\n"
        "    high\n"
        "    low\n"
        "        instances = 2\n"
        "node = b\n"
        "    low = other\n");
    ok (map != NULL, "map parses");
    tiers_node_t *node = tiers_node_new (map, "a");
    is_int (tiers_node_start (node), 0, "node a starts");
    is_int ((long long) tiers_node_actor_count (node), 3, "three actors on node a");
    ok (tiers_node_actor (node, "low.1") != NULL, "instances are named entry.N");
    ok (tiers_node_actor (node, "other") == NULL, "node b's actor is not started");
    int64_t start = zclock_usecs ();
    tiers_node_destroy (&node);
    int64_t elapsed = zclock_usecs () - start;
    ok (node == NULL, "destroy nulls the pointer");
    is (s_events, "start:low.0 start:low.1 start:high stop:high stop:low.1 stop:low.0",
        "start in rank order, stop in reverse");
    ok (elapsed < 2000000, "three actors stop in %lld us (< 2 s)", (long long) elapsed);
    tiers_map_destroy (&map);

    //  A failed start stops what had started and reports why.
    s_events [0] = 0;
    map = s_map ("node = a\n"
                 "    low\n"
                 "    high\n"
                 "        fail = yes\n");
    node = tiers_node_new (map, NULL);
    is_int (tiers_node_start (node), -1, "a node with a failing actor does not start");
    ok (strstr (tiers_node_error (node), "refusing to start on purpose") != NULL,
        "the reason is reported: %s", tiers_node_error (node));
    is (s_events, "start:low stop:low", "what had started was stopped");
    is_int ((long long) tiers_node_actor_count (node), 0, "nothing left running");
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);

    //  An unknown node.
    map = s_map ("node = a\n    low\n");
    node = tiers_node_new (map, "zzz");
    is_int (tiers_node_start (node), -1, "an unknown node does not start");
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);

    //  A real actor: the balancer binds, serves, and honours $TERM quickly;
    //  a second one on the same endpoint fails to start, cleanly.
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t size = sizeof addr;
    int port = 0;
    if (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0
    &&  getsockname (fd, (struct sockaddr *) &addr, &size) == 0)
        port = ntohs (addr.sin_port);
    close (fd);
    ok (port > 0, "a free loopback port: %d", port);
    text = zsys_sprintf ("cluster\n    security = none\nnode = a\n    balancer\n"
                         "        bind = tcp://127.0.0.1:%d\n", port);
    map = s_map (text);
    free (text);
    tiers_node_t *first = tiers_node_new (map, NULL);
    is_int (tiers_node_start (first), 0, "balancer starts");
    tiers_node_t *second = tiers_node_new (map, NULL);
    is_int (tiers_node_start (second), -1, "a second bind of the same port fails");
    ok (strstr (tiers_node_error (second), "cannot bind") != NULL,
        "... saying so: %s", tiers_node_error (second));
    tiers_node_destroy (&second);
    start = zclock_usecs ();
    tiers_node_destroy (&first);
    elapsed = zclock_usecs () - start;
    ok (elapsed < 2000000, "balancer stops in %lld us (< 2 s)", (long long) elapsed);
    tiers_map_destroy (&map);

    //  tiers_data_path joins the cluster's data directory.
    const char *tmp = getenv ("TMPDIR") && *getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    char dir [1024];
    snprintf (dir, sizeof dir, "%s/tiers-node-XXXXXX", tmp);
    ok (mkdtemp (dir) != NULL, "temp dir");
    text = zsys_sprintf ("cluster\n    data = %s/d/e\nnode = a\n    low\n", dir);
    map = s_map (text);
    free (text);
    char *path = tiers_data_path (map, "s0.db");
    char *expected = zsys_sprintf ("%s/d/e/s0.db", dir);
    is (path, expected, "data path");
    char *made = zsys_sprintf ("%s/d/e", dir);
    ok (zsys_file_mode (made) != -1 && S_ISDIR (zsys_file_mode (made)),
        "data dir created with its parents");
    free (made);
    char *cleanup = zsys_sprintf ("rm -rf %s", dir);
    if (system (cleanup) != 0)
        diag ("could not remove %s", dir);
    free (cleanup);
    free (path);
    free (expected);
    tiers_map_destroy (&map);
    return done_testing ();
}
