/*  relay.c — the example kind of doc/actors.md: two ports and two links,
    run in both placements.

    A relay serves two ports:
        in      ROUTER  "SEND HOPS WORD" (answered "OK"), "SEEN", "COUNT"
        news    PUB     "NAME WORD" for every SEND it took
    and has two links:
        next    one     DEALER to the `in` of another relay: a SEND with
                        HOPS > 0 goes on there with HOPS - 1
        watch   many    SUB to the `news` of every other relay: SEEN
                        answers the names it heard from, sorted, comma-joined
    With two relays a and b and no `connect` in the map, the loader links
    a's next to b and b's next to a, and each watches the other: a SEND to
    a reaches b (next), and each hears the other's news (watch).

    The same map runs in this process (inproc) and split over two `tiers
    run` processes (this program started as itself, tcp on loopback).
*/
#include "../tap.h"
#include "harness.h"
#include "cli.h"
#include "kind.h"
#include "map.h"
#include "node.h"
#include "reactor.h"
#include "sock.h"
#include "log.h"
#include <signal.h>

#define WATCH_MAX 8

typedef struct {
    char name [96];
    zsock_t *in, *news, *next;
    zsock_t *watch [WATCH_MAX];
    size_t watch_count;
    zlistx_t *seen;             //  names heard from, sorted
    int count;                  //  SENDs taken
} relay_t;

static void
s_answer (relay_t *self, zframe_t *identity, const char *text)
{
    if (tiers_sock_send_frame (&identity, self->in, ZFRAME_MORE | ZFRAME_REUSE) == 0)
        tiers_sock_send_str (self->in, text);
}

static bool
s_on_in (void *arg)
{
    relay_t *self = (relay_t *) arg;
    if (!(zsock_events (self->in) & ZMQ_POLLIN))
        return false;
    zmsg_t *msg = zmsg_recv (self->in);
    zframe_t *identity = msg ? zmsg_pop (msg) : NULL;
    char *text = msg ? zmsg_popstr (msg) : NULL;
    int hops = 0;
    char word [32] = "";
    if (!identity || !text)
        ;
    else
    if (sscanf (text, "SEND %d %31s", &hops, word) == 2) {
        self->count++;
        char *news = zsys_sprintf ("%s %s", self->name, word);
        tiers_sock_send_str (self->news, news);
        free (news);
        if (hops > 0 && self->next) {
            char *on = zsys_sprintf ("SEND %d %s", hops - 1, word);
            tiers_sock_send_str (self->next, on);
            free (on);
        }
        s_answer (self, identity, "OK");
    }
    else
    if (streq (text, "SEEN")) {
        char line [256] = "";
        for (char *name = (char *) zlistx_first (self->seen); name;
             name = (char *) zlistx_next (self->seen))
            snprintf (line + strlen (line), sizeof line - strlen (line), "%s%s",
                      *line ? "," : "", name);
        s_answer (self, identity, line);
    }
    else
    if (streq (text, "COUNT")) {
        char line [16];
        snprintf (line, sizeof line, "%d", self->count);
        s_answer (self, identity, line);
    }
    else
        s_answer (self, identity, "ERROR unknown command");
    zstr_free (&text);
    zframe_destroy (&identity);
    zmsg_destroy (&msg);
    return true;
}

//  Replies of the next relay: taken and dropped.
static bool
s_on_next (void *arg)
{
    relay_t *self = (relay_t *) arg;
    if (!(zsock_events (self->next) & ZMQ_POLLIN))
        return false;
    char *reply = zstr_recv (self->next);
    zstr_free (&reply);
    return true;
}

//  One reader per watched relay: the argument is the relay, the socket
//  is found by index.
typedef struct {
    relay_t *relay;
    size_t index;
} watch_arg_t;

static bool
s_on_watched (void *arg)
{
    watch_arg_t *watch = (watch_arg_t *) arg;
    relay_t *self = watch->relay;
    zsock_t *sub = self->watch [watch->index];
    if (!(zsock_events (sub) & ZMQ_POLLIN))
        return false;
    char *news = zstr_recv (sub);
    char name [64];
    if (news && sscanf (news, "%63s", name) == 1
    &&  !zlistx_find (self->seen, name))
        zlistx_add_end (self->seen, strdup (name));
    zlistx_sort (self->seen);
    zstr_free (&news);
    return true;
}

static void
s_relay_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    const tiers_entry_t *entry = args->entry;
    relay_t self_, *self = &self_;
    memset (self, 0, sizeof *self);
    snprintf (self->name, sizeof self->name, "%s", args->name);
    self->seen = zlistx_new ();
    zlistx_set_destructor (self->seen, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (self->seen, (zlistx_comparator_fn *) strcmp);
    watch_arg_t watch_args [WATCH_MAX];
    char *why = NULL;
    self->in = tiers_port_bind (entry, "in", &why);
    if (self->in)
        self->news = tiers_port_bind (entry, "news", &why);
    if (self->news && tiers_entry_targets (entry, "next", NULL) == 1)
        self->next = tiers_link_connect (entry, "next", 0, &why);
    size_t watched = tiers_entry_targets (entry, "watch", NULL);
    for (size_t i = 0; !why && i < watched && i < WATCH_MAX; i++) {
        self->watch [i] = tiers_link_connect (entry, "watch", i, &why);
        if (self->watch [i]) {
            zsock_set_subscribe (self->watch [i], "");
            self->watch_count++;
        }
    }
    if (why) {
        tiers_actor_failed (pipe, "%s", why);
        free (why);
    }
    else {
        tiers_actor_ready (pipe);
        tiers_reactor_t *reactor = tiers_reactor_new (pipe);
        tiers_reactor_reader (reactor, self->in, 0, s_on_in, self);
        if (self->next)
            tiers_reactor_reader (reactor, self->next, 0, s_on_next, self);
        for (size_t i = 0; i < self->watch_count; i++) {
            watch_args [i] = (watch_arg_t) { self, i };
            tiers_reactor_reader (reactor, self->watch [i], 0, s_on_watched, &watch_args [i]);
        }
        tiers_reactor_run (reactor);
        tiers_reactor_destroy (&reactor);
    }
    for (size_t i = 0; i < self->watch_count; i++)
        zsock_destroy (&self->watch [i]);
    zsock_destroy (&self->next);
    zsock_destroy (&self->news);
    zsock_destroy (&self->in);
    zlistx_destroy (&self->seen);
}

static const tiers_port_t s_ports [] = {
    { "in",   ZMQ_ROUTER, "SEND HOPS WORD, SEEN, COUNT; answered as text", true },
    { "news", ZMQ_PUB,    "NAME WORD for every SEND taken", true },
    { NULL, 0, NULL, false }
};

static const tiers_link_t s_links [] = {
    { "next",  "relay", "in",   ZMQ_DEALER, false, true },
    { "watch", "relay", "news", ZMQ_SUB,    true,  true },
    { NULL, NULL, NULL, 0, false, false }
};

static const tiers_kind_t s_relay_kind = {
    .name = "relay", .summary = "example kind: two ports, two links",
    .rank = TIERS_RANK_SERVICE, .run = s_relay_actor, .keys = NULL,
    .ports = s_ports, .links = s_links, .multi = false, .listener = NULL
};

//  --------------------------------------------------------------------------
//  The test

static char s_security [600];         //  the split map's: CURVE and its keys
static char s_keys [512];

static char *
s_map_text (bool split, const char *ends [4])
{
    return zsys_sprintf (
        "cluster\n"
        "    name = relay-test\n"
        "    log = warn\n"
        "%s"
        "node = %s\n"
        "    relay = a\n"
        "        bind = %s\n"
        "        bind.news = %s\n"
        "%s"
        "    relay = b\n"
        "        bind.in = %s\n"
        "        bind.news = %s\n",
        split ? s_security : "", split ? "one" : "box", ends [0], ends [1],
        split ? "node = two\n" : "",
        ends [2], ends [3]);
}

static char *
s_ask (zsock_t *client, const char *text)
{
    zstr_send (client, text);
    zpoller_t *poller = zpoller_new (client, NULL);
    //  Long: an answer later than this would be taken for the next ask's.
    char *reply = zpoller_wait (poller, 10000) ? zstr_recv (client) : NULL;
    zpoller_destroy (&poller);
    return reply;
}

static void
s_scenario (const char *L, const char *a_in, const char *b_in, const char *keys)
{
    //  With CURVE the test knocks as the node the map lets in: b's (two)
    //  reaches a's port 'in', a's (one) reaches b's.
    zsock_t *a = h_dealer_as (a_in, keys, "two", "one");
    zsock_t *b = h_dealer_as (b_in, keys, "one", "two");
    //  Subscriptions take a moment to reach a publisher: send until both
    //  relays have heard from each other (bounded).
    char *a_seen = NULL, *b_seen = NULL;
    bool sent = true;
    int64_t until = zclock_mono () + 10000;
    while (zclock_mono () < until) {
        char *ok_ = s_ask (a, "SEND 1 hello");
        sent = sent && ok_ && streq (ok_, "OK");
        zstr_free (&ok_);
        zstr_free (&a_seen);
        zstr_free (&b_seen);
        a_seen = s_ask (a, "SEEN");
        b_seen = s_ask (b, "SEEN");
        if (a_seen && b_seen && streq (a_seen, "b") && streq (b_seen, "a"))
            break;
        zclock_sleep (50);
    }
    ok (sent, "%s: a took every SEND on its port 'in'", L);
    is (b_seen, "a", "%s: b heard a's news (b's link 'watch' to a's port 'news')", L);
    is (a_seen, "b", "%s: a heard b's news: the SEND went on to b (a's link "
            "'next'), and a watches b", L);
    char *count = s_ask (b, "COUNT");
    ok (count && atoi (count) >= 1, "%s: b took SENDs from a (%s)", L, count ? count : "none");
    zstr_free (&count);
    char *bad = s_ask (a, "HELLO");
    is (bad, "ERROR unknown command", "%s: an unknown command gets an error reply", L);
    zstr_free (&bad);
    zstr_free (&a_seen);
    zstr_free (&b_seen);
    zsock_destroy (&a);
    zsock_destroy (&b);
}

//  The loader resolves and checks the links generically.
static void
s_loader (void)
{
    const char *three =
        "node = box\n"
        "    relay = a\n        bind = inproc://a\n        bind.news = inproc://an\n"
        "    relay = b\n        bind = inproc://b\n        bind.news = inproc://bn\n"
        "    relay = c\n        bind = inproc://c\n        bind.news = inproc://cn\n";
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (three, "three.map", &errors);
    ok (!map && errors && strstr (errors, "three.map:2: several relays: say which one "
        "with connect.next = NAME"), "three relays: 'next' must be chosen");
    if (errors)
        diag ("%s", errors);
    free (errors);
    tiers_map_destroy (&map);

    char *chosen = zsys_sprintf ("%s        connect.next = c\n", three);
    //  connect.next under c (the last entry) is c's own: it may not be itself.
    map = tiers_map_parse (chosen, "chosen.map", &errors);
    ok (!map && errors && strstr (errors, "chosen.map:11: c cannot connect to itself"),
        "a link to itself is refused");
    free (errors);
    tiers_map_destroy (&map);
    free (chosen);

    const char *named =
        "node = box\n"
        "    relay = a\n        bind = inproc://a\n        bind.news = inproc://an\n"
        "        connect.next = b\n"
        "    relay = b\n        bind = inproc://b\n        bind.news = inproc://bn\n"
        "        connect.next = c\n"
        "    relay = c\n        bind = inproc://c\n        bind.news = inproc://cn\n"
        "        connect.next = a\n";
    map = tiers_map_parse (named, "named.map", &errors);
    ok (map != NULL, "three relays with their next named load");
    const tiers_entry_t *a = map ? tiers_map_find (map, "a") : NULL;
    const tiers_target_t *targets = NULL;
    ok (a && tiers_entry_targets (a, "next", &targets) == 1
        && streq (targets [0].endpoint, "inproc://b") && streq (targets [0].entry->name, "b"),
        "a's next is b's port 'in'");
    ok (a && tiers_entry_targets (a, "watch", &targets) == 2
        && streq (targets [0].endpoint, "inproc://bn") && streq (targets [1].endpoint, "inproc://cn"),
        "a watches the news of b and c, not its own");
    ok (a && tiers_entry_port (a, "news") && streq (tiers_entry_port (a, "news"), "inproc://an"),
        "a's port 'news' is bound where the map says");
    tiers_map_destroy (&map);
    free (errors);

    const char *unbound =
        "node = box\n"
        "    relay = a\n        bind = inproc://a\n";
    map = tiers_map_parse (unbound, "unbound.map", &errors);
    ok (!map && errors && strstr (errors, "unbound.map:2: relay 'a' needs 'bind.news'"),
        "a required port left unbound is refused");
    free (errors);
    tiers_map_destroy (&map);

    const char *unknown =
        "node = box\n"
        "    relay = a\n        bind = inproc://a\n        bind.news = inproc://an\n"
        "        bind.old = inproc://ao\n        connect.far = a\n";
    map = tiers_map_parse (unknown, "unknown.map", &errors);
    ok (!map && errors && strstr (errors, "unknown.map:5: relay has no port 'old' "
        "(ports: in, news)") && strstr (errors, "unknown.map:6: relay has no link 'far' "
        "(links: next, watch)"), "unknown ports and links are refused");
    free (errors);
    tiers_map_destroy (&map);
}

int
main (int argc, char **argv)
{
    tiers_kind_register (&s_relay_kind);
    if (argc > 1 && streq (argv [1], "run"))
        return tiers_cli_main (argc, argv);
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    h_tmpdir ();
    s_loader ();

    //  One process.
    const char *inproc [4] = { "inproc://a-in", "inproc://a-news",
                               "inproc://b-in", "inproc://b-news" };
    char *text = s_map_text (false, inproc);
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "one.map", &errors);
    if (!map)
        diag ("%s", errors);
    free (errors);
    tiers_node_t *node = map ? tiers_node_new (map, NULL) : NULL;
    ok (node && tiers_node_start (node) == 0, "inproc: two relays started");
    if (node && tiers_node_actor_count (node) == 2)
        s_scenario ("inproc", inproc [0], inproc [2], NULL);
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);
    free (text);

    //  Two processes.
    char ends [4][64];
    const char *tcp [4];
    for (int i = 0; i < 4; i++) {
        snprintf (ends [i], sizeof ends [i], "tcp://127.0.0.1:%d", h_free_port ());
        tcp [i] = ends [i];
    }
    snprintf (s_keys, sizeof s_keys, "%s/keys", h_tmpdir ());
    snprintf (s_security, sizeof s_security, "    security = curve\n    keys = %s\n", s_keys);
    text = s_map_text (true, tcp);
    char *path = h_write_file ("two.map", text);
    ok (h_make_keys (path) == 0, "tcp: the nodes' CURVE keys are made");
    char *logs [2] = { zsys_sprintf ("%s/one.log", h_tmpdir ()),
                       zsys_sprintf ("%s/two.log", h_tmpdir ()) };
    const char *nodes [2] = { "one", "two" };
    pid_t pids [2];
    bool up = true;
    for (int i = 0; i < 2; i++) {
        char *args [] = { (char *) h_self_path (), (char *) "run", (char *) "-m", path,
                          (char *) "-n", (char *) nodes [i], NULL };
        pids [i] = h_spawn (args, logs [i]);
        up = up && h_wait_for_line (logs [i], "; ready", 30000) == 0;     //  as lib.sh
    }
    ok (up, "tcp: the relays run as two processes");
    if (up)
        s_scenario ("tcp", tcp [0], tcp [2], s_keys);
    for (int i = 0; i < 2; i++)
        is_int (h_stop (pids [i], SIGTERM, 3000), 0, "tcp: node %s exits 0 on SIGTERM",
                nodes [i]);
    h_kill_all ();
    for (int i = 0; i < 2; i++)
        free (logs [i]);
    free (path);
    free (text);
    return done_testing ();
}
