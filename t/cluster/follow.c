/*  follow.c — KEYS followers of the commit stream: the stream's side
    (storage/stream.c, `want: keys`) and the follower client
    (actors/follow.c), doc/protocol.md "Keys followers".

    Real shard actors run in this process on a temp dir. First the test
    is a keys follower by hand on a DEALER: reset on the first follow,
    change messages whose body lists exactly the keys and versions each
    write got (put, replace, delete, a batch, no replay), a follow again
    from its position, a reset past the window; on a shard with
    `ack = replica`, a keys follower is no replica (503 alone; a write
    waits for the real replica's ack). Then the client, in an actor of a
    kind of the test's own that links to every shard's stream: resets at
    start, on_key in order with the versions, live and position, STALE
    when a shard stops, LIVE again when it comes back, a reset when it
    comes back as another incarnation, a fake primary's malformed keys
    (counted, reset, no crash), and a fenced copy (STALE, 421).
*/
#include "../tap.h"
#include "harness.h"
#include "actors/follow.h"
#include "reactor.h"
#include "sock.h"
#include "service.h"
#include "slot.h"
#include "map.h"
#include "node.h"
#include "log.h"
#include "metrics.h"
#include <jansson.h>
#include <unistd.h>

extern const tiers_kind_t tiers_shard_kind;

static int s_rid;

//  --------------------------------------------------------------------------
//  A keys follower by hand

static void
s_stream_send (zsock_t *dealer, const char *op, ...)
{
    tiers_wire_t *message = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_header (message, "op", op, strlen (op));
    va_list args;
    va_start (args, op);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (message, key, value, strlen (value));
    }
    va_end (args);
    tiers_wire_send (message, zsock_resolve (dealer), NULL);
    tiers_wire_destroy (&message);
}

//  The next message whose op is `op` within timeout_ms (others skipped).
static tiers_wire_t *
s_expect (zsock_t *dealer, const char *op, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) (until - zclock_mono ())) <= 0)
            continue;
        tiers_wire_t *message = tiers_wire_recv (zsock_resolve (dealer), NULL, NULL);
        const char *got = message ? tiers_wire_header (message, "op") : NULL;
        if (got && streq (got, op))
            return message;
        tiers_wire_destroy (&message);
    }
    return NULL;
}

static int64_t
s_header_int (const tiers_wire_t *msg, const char *key)
{
    const char *text = msg ? tiers_wire_header (msg, key) : NULL;
    return text ? atoll (text) : -1;
}

//  A write to a shard's requests port: op, id, body (or NULL), then extra
//  header pairs, NULL-terminated. Sent without waiting unless `wait`.
static tiers_wire_t *
s_write (zsock_t *client, bool wait, const char *op, const char *id, const char *body, ...)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
    char rid [32];
    snprintf (rid, sizeof rid, "r%d", ++s_rid);
    tiers_wire_set_rid (request, rid);
    request->deadline = tiers_wire_now () + 5000;
    tiers_wire_set_header (request, "op", op, strlen (op));
    tiers_wire_set_header (request, "collection", "c", 1);
    tiers_wire_set_header (request, "id", id, strlen (id));
    va_list args;
    va_start (args, body);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (request, key, value, strlen (value));
    }
    va_end (args);
    if (body)
        tiers_wire_set_body (request, body, strlen (body));
    tiers_wire_t *reply = NULL;
    if (wait)
        reply = tiers_call (client, request, 5000);
    else
        tiers_wire_send (request, zsock_resolve (client), NULL);
    tiers_wire_destroy (&request);
    return reply;
}

static json_t *
s_status (zsock_t *client)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
    char rid [32];
    snprintf (rid, sizeof rid, "r%d", ++s_rid);
    tiers_wire_set_rid (request, rid);
    tiers_wire_t *reply = tiers_call (client, request, 3000);
    tiers_wire_destroy (&request);
    json_t *status = reply ? json_loadb ((const char *) reply->body, reply->body_size, 0, NULL)
                           : NULL;
    tiers_wire_destroy (&reply);
    return status;
}

//  The keys of the changes that come until `sequence`, appended to `keys`;
//  false on a gap, a checksum header, or when they stop coming.
static bool
s_keys_until (zsock_t *dealer, int64_t *position, int64_t sequence, char *keys, size_t size,
              int *changes, int *most)
{
    while (*position < sequence) {
        tiers_wire_t *change = s_expect (dealer, "change", 3000);
        if (!change || s_header_int (change, "previous") != *position
        ||  tiers_wire_header (change, "checksum")) {
            tiers_wire_destroy (&change);
            return false;
        }
        *position = s_header_int (change, "sequence");
        size_t have = strlen (keys);
        snprintf (keys + have, size - have, "%s", (const char *) change->body);
        int lines = 0;
        for (size_t i = 0; i < change->body_size; i++)
            lines += change->body [i] == '\n';
        if (changes)
            (*changes)++;
        if (most && lines > *most)
            *most = lines;
        tiers_wire_destroy (&change);
    }
    return true;
}

//  A keys follower's ack of what it took: also its keepalive (a follower
//  silent for 3 s is forgotten, doc/protocol.md "Keys followers").
static void
s_ack (zsock_t *dealer, int64_t position)
{
    char text [32];
    snprintf (text, sizeof text, "%" PRId64, position);
    s_stream_send (dealer, "ack", "applied", text, NULL);
}

static int64_t
s_metric (const char *line_start)
{
    char *text = tiers_metrics_render ();
    const char *at = text ? strstr (text, line_start) : NULL;
    int64_t value = at ? atoll (at + strlen (line_start)) : 0;
    free (text);
    return value;
}

//  --------------------------------------------------------------------------
//  Shard actors that can be stopped and started again

typedef struct {
    tiers_actor_args_t args;
    zactor_t *actor;
} shard_t;

static int
s_shard_start (shard_t *shard, const tiers_map_t *map, const char *name)
{
    shard->args.map = map;
    shard->args.entry = tiers_map_find (map, name);
    snprintf (shard->args.name, sizeof shard->args.name, "%s", name);
    //  The inproc endpoints of a run before are released by libzmq's
    //  reaper a moment after it stopped: try again for a while.
    for (int attempt = 0; attempt < 40; attempt++) {
        shard->actor = zactor_new (tiers_shard_kind.run, &shard->args);
        char *answer = shard->actor ? zstr_recv (shard->actor) : NULL;
        bool good = answer && streq (answer, "OK");
        if (!good && attempt == 39)
            diag ("shard %s did not start: %s", name, answer ? answer : "?");
        zstr_free (&answer);
        if (good)
            return 0;
        zactor_destroy (&shard->actor);
        zclock_sleep (50);
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  The watcher: a kind of this test whose actor runs the follower client

static const tiers_key_t s_watcher_keys [] = { { NULL } };
static const tiers_link_t s_watcher_links [] = {
    { "streams", "shard", "stream", ZMQ_DEALER, true, true, NULL },
    { NULL }
};

typedef struct {
    zsock_t *pipe;
    tiers_follow_t *follow;
    char *events;               //  "reset 0\nkey 0 c/a 1\n..." since the last EVENTS
} watcher_t;

static void
s_event (watcher_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *line = zsys_vprintf (format, args);
    va_end (args);
    char *events = zsys_sprintf ("%s%s\n", self->events ? self->events : "", line);
    free (self->events);
    free (line);
    self->events = events;
}

static void
s_on_key (void *arg, size_t shard, const char *key, int64_t version)
{
    s_event ((watcher_t *) arg, "key %zu %s %" PRId64, shard, key, version);
}

static void
s_on_reset (void *arg, size_t shard)
{
    s_event ((watcher_t *) arg, "reset %zu", shard);
}

//  EVENTS, LIVE n, POSITION n, OF collection id, COUNT, NAME n, STATUS
static void
s_on_command (const char *command, void *arg)
{
    watcher_t *self = (watcher_t *) arg;
    char *answer = NULL;
    unsigned shard = 0;
    char collection [64], id [64];
    if (streq (command, "EVENTS")) {
        answer = strdup (self->events ? self->events : "");
        free (self->events);
        self->events = NULL;
    }
    else
    if (sscanf (command, "LIVE %u", &shard) == 1)
        answer = strdup (tiers_follow_live (self->follow, shard) ? "1" : "0");
    else
    if (sscanf (command, "POSITION %u", &shard) == 1) {
        const char *incarnation = NULL;
        int64_t position = tiers_follow_position (self->follow, shard, &incarnation);
        answer = zsys_sprintf ("%" PRId64 " %s", position, incarnation ? incarnation : "");
    }
    else
    if (sscanf (command, "OF %63s %63s", collection, id) == 2)
        answer = zsys_sprintf ("%zu", tiers_follow_shard_of (self->follow, collection, id));
    else
    if (streq (command, "COUNT"))
        answer = zsys_sprintf ("%zu", tiers_follow_shard_count (self->follow));
    else
    if (sscanf (command, "NAME %u", &shard) == 1)
        answer = strdup (tiers_follow_shard_name (self->follow, shard));
    else
    if (streq (command, "STATUS"))
        answer = tiers_follow_status (self->follow);
    tiers_sock_send_str (self->pipe, answer ? answer : "?");
    free (answer);
}

static void
s_watcher (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    watcher_t self = { pipe, NULL, NULL };
    tiers_follow_config_t config = {
        .name = args->name, .map = args->map, .entry = args->entry, .link = "streams",
        .silent_ms = 1000, .on_key = s_on_key, .on_reset = s_on_reset, .arg = &self
    };
    char *why = NULL;
    self.follow = tiers_follow_new (&config, &why);
    if (!self.follow) {
        tiers_actor_failed (pipe, "cannot follow: %s", why ? why : "?");
        free (why);
        return;
    }
    tiers_reactor_t *reactor = tiers_reactor_new (pipe);
    tiers_follow_attach (self.follow, reactor);
    tiers_reactor_set_command (reactor, s_on_command, &self);
    tiers_actor_ready (pipe);
    tiers_reactor_run (reactor);
    tiers_reactor_destroy (&reactor);
    tiers_follow_destroy (&self.follow);
    free (self.events);
}

static const tiers_kind_t s_watcher_kind = {
    .name = "watcher", .summary = "follows the shards' streams (a test)",
    .rank = TIERS_RANK_SERVICE, .run = s_watcher, .keys = s_watcher_keys,
    .links = s_watcher_links
};

static char *
s_ask (zactor_t *watcher, const char *command)
{
    zstr_send (watcher, command);
    return zstr_recv (watcher);
}

//  Waits until the watcher's events hold `needle`; returns all it saw.
static char *
s_events_until (zactor_t *watcher, const char *needle, int timeout_ms)
{
    char *seen = strdup ("");
    int64_t until = zclock_mono () + timeout_ms;
    while (true) {
        char *events = s_ask (watcher, "EVENTS");
        char *more = zsys_sprintf ("%s%s", seen, events ? events : "");
        zstr_free (&events);
        free (seen);
        seen = more;
        if ((needle && strstr (seen, needle)) || zclock_mono () >= until)
            return seen;
        zclock_sleep (20);
    }
}

static bool
s_live_within (zactor_t *watcher, unsigned shard, bool want, int timeout_ms)
{
    char command [32];
    snprintf (command, sizeof command, "LIVE %u", shard);
    int64_t until = zclock_mono () + timeout_ms;
    while (true) {
        char *answer = s_ask (watcher, command);
        bool live = answer && streq (answer, "1");
        zstr_free (&answer);
        if (live == want)
            return true;
        if (zclock_mono () >= until)
            return false;
        zclock_sleep (20);
    }
}

static int64_t
s_position (zactor_t *watcher, unsigned shard, char *incarnation)
{
    char command [32];
    snprintf (command, sizeof command, "POSITION %u", shard);
    char *answer = s_ask (watcher, command);
    long long position = -2;
    char inc [32] = "";
    if (answer)
        sscanf (answer, "%lld %31s", &position, inc);
    if (incarnation)
        snprintf (incarnation, 16, "%s", inc);
    zstr_free (&answer);
    return position;
}

//  --------------------------------------------------------------------------
//  The stream's side, by hand

static char s_inc0 [16];

static void
s_by_hand (zsock_t *client)
{
    json_t *status = s_status (client);
    snprintf (s_inc0, sizeof s_inc0, "%s",
              json_string_value (json_object_get (status, "incarnation")) ?: "");
    int64_t start = json_integer_value (json_object_get (status, "sequence"));
    json_decref (status);

    zsock_t *keys = zsock_new_dealer ("inproc://fo-s0-stream");
    s_stream_send (keys, "follow", "name", "k1", "want", "keys", "incarnation", "",
                   "epoch", "0", "applied", "0", NULL);
    tiers_wire_t *answer = s_expect (keys, "follow", 3000);
    ok (answer && answer->status == 200 && streq (tiers_wire_header (answer, "reset") ?: "", "1")
     && s_header_int (answer, "sequence") == start && s_header_int (answer, "from") == start
     && streq (tiers_wire_header (answer, "incarnation") ?: "", s_inc0)
     && s_header_int (answer, "epoch") == 1,
        "a first keys follow: 200 reset, from the shard's sequence, its incarnation and epoch");
    tiers_wire_destroy (&answer);

    //  put, replace, delete: one change each, its key and version
    int64_t position = start;
    tiers_wire_t *reply = s_write (client, true, "put", "a", "{\"n\":1}", NULL);
    int64_t v1 = s_header_int (reply, "version");
    ok (reply && reply->status == 201, "put c/a: 201");
    tiers_wire_destroy (&reply);
    tiers_wire_t *change = s_expect (keys, "change", 3000);
    char want [256];
    snprintf (want, sizeof want, "c/a %" PRId64 "\n", v1);
    ok (change && streq ((const char *) change->body, want)
     && s_header_int (change, "previous") == position && s_header_int (change, "sequence") == v1
     && streq (tiers_wire_header (change, "shard") ?: "", "s0")
     && streq (tiers_wire_header (change, "incarnation") ?: "", s_inc0)
     && s_header_int (change, "epoch") == 1 && s_header_int (change, "committed") > 0
     && !tiers_wire_header (change, "checksum"),
        "... its change: the headers of a change, body \"c/a %" PRId64 "\", no checksum", v1);
    position = s_header_int (change, "sequence");
    tiers_wire_destroy (&change);
    s_ack (keys, position);
    reply = s_write (client, true, "put", "a", "{\"n\":2}", NULL);
    int64_t v2 = s_header_int (reply, "version");
    tiers_wire_destroy (&reply);
    reply = s_write (client, true, "delete", "a", NULL, NULL);
    ok (reply && reply->status == 204, "replace and delete c/a");
    tiers_wire_destroy (&reply);
    char got [8192] = "";
    bool chained = s_keys_until (keys, &position, v2 + 1, got, sizeof got, NULL, NULL);
    snprintf (want, sizeof want, "c/a %" PRId64 "\nc/a %" PRId64 "\n", v2, v2 + 1);
    ok (chained && streq (got, want), "... their changes: the replace's version, the delete's "
        "sequence");
    s_ack (keys, position);

    //  Many writes at once: batches; a refused write (412) is in none
    reply = s_write (client, true, "put", "b0", "{}", NULL);
    tiers_wire_destroy (&reply);
    position++;
    change = s_expect (keys, "change", 3000);
    tiers_wire_destroy (&change);
    s_ack (keys, position);
    for (int i = 0; i < 40; i++) {
        char id [16];
        snprintf (id, sizeof id, "b%d", i);
        if (i == 0)
            s_write (client, false, "put", id, "{}", "create", "1", NULL);
        else
            s_write (client, false, "put", id, "{}", NULL);
    }
    char expected [8192] = "";
    int refused = 0, answered = 0;
    int64_t last = position;
    for (int i = 0; i < 40; i++) {
        reply = tiers_wire_recv (zsock_resolve (client), NULL, NULL);
        if (!reply)
            break;
        answered++;
        if (reply->status == 412)
            refused++;
        tiers_wire_destroy (&reply);
    }
    s_ack (keys, position);                 //  (a keepalive: nothing new taken)
    is_int (answered, 40, "40 writes sent at once are answered");
    is_int (refused, 1, "... one of them refused (create on an existing document)");
    status = s_status (client);
    last = json_integer_value (json_object_get (status, "sequence"));
    json_decref (status);
    //  Each write took the next version, in the order they were queued
    for (int i = 1; i < 40; i++) {
        size_t have = strlen (expected);
        snprintf (expected + have, sizeof expected - have, "c/b%d %" PRId64 "\n", i,
                  position + i);
    }
    got [0] = 0;
    int changes = 0, most = 0;
    chained = s_keys_until (keys, &position, last, got, sizeof got, &changes, &most);
    ok (chained && streq (got, expected), "the 39 writes' keys came in order, each with "
        "its version, the refused one in none");
    ok (most > 1, "... in %d changes, one of them with %d keys (a batch)", changes, most);
    s_ack (keys, position);

    //  A replay of a keyed write changes nothing: its key is in no change
    reply = s_write (client, true, "put", "k", "{}", "idempotency-key", "K1", NULL);
    int64_t vk = s_header_int (reply, "version");
    tiers_wire_destroy (&reply);
    reply = s_write (client, true, "put", "k", "{}", "idempotency-key", "K1", NULL);
    ok (reply && reply->status == 201 && tiers_wire_header (reply, "replayed")
     && s_header_int (reply, "version") == vk, "a keyed put, again: replayed");
    tiers_wire_destroy (&reply);
    reply = s_write (client, true, "put", "z", "{}", NULL);
    int64_t vz = s_header_int (reply, "version");
    tiers_wire_destroy (&reply);
    got [0] = 0;
    chained = s_keys_until (keys, &position, vz, got, sizeof got, NULL, NULL);
    snprintf (want, sizeof want, "c/k %" PRId64 "\nc/z %" PRId64 "\n", vk, vz);
    ok (chained && streq (got, want), "... the replay is in no change");
    s_stream_send (keys, "ack", "applied", "999999", NULL);
    answer = s_expect (keys, "follow", 2000);
    ok (answer && answer->status == 409, "an ack of a change never sent: 409");
    tiers_wire_destroy (&answer);

    //  Following again from a position in the log: no reset
    char text [32], text2 [32];
    snprintf (text, sizeof text, "%" PRId64, position - 1);
    s_stream_send (keys, "follow", "name", "k1", "want", "keys", "incarnation", s_inc0,
                   "epoch", "1", "applied", text, NULL);
    answer = s_expect (keys, "follow", 3000);
    ok (answer && answer->status == 200 && !tiers_wire_header (answer, "reset")
     && s_header_int (answer, "from") == position - 1,
        "a follow again from a position in the log: 200, no reset, from there");
    tiers_wire_destroy (&answer);
    int64_t again = position - 1;
    got [0] = 0;
    chained = s_keys_until (keys, &again, position, got, sizeof got, NULL, NULL);
    snprintf (want, sizeof want, "c/z %" PRId64 "\n", vz);
    ok (chained && streq (got, want), "... and the change after it comes again");
    s_stream_send (keys, "ack", "applied", text, NULL);
    zclock_sleep (50);
    status = s_status (client);
    json_t *followers = json_object_get (status, "followers");
    bool listed = false;
    for (size_t i = 0; i < json_array_size (followers); i++) {
        json_t *follower = json_array_get (followers, i);
        listed |= streq (json_string_value (json_object_get (follower, "name")) ?: "", "k1")
               && streq (json_string_value (json_object_get (follower, "want")) ?: "", "keys")
               && streq (json_string_value (json_object_get (follower, "state")) ?: "",
                         "streaming");
    }
    ok (listed, "STATUS lists the keys follower with \"want\":\"keys\"");
    json_decref (status);

    //  The log holds 8 changes: a position behind them is reset
    for (int i = 0; i < 12; i++) {
        char id [16];
        snprintf (id, sizeof id, "e%d", i);
        reply = s_write (client, true, "put", id, "{}", NULL);
        tiers_wire_destroy (&reply);
        s_ack (keys, position);             //  a keepalive
    }
    got [0] = 0;
    chained = s_keys_until (keys, &position, vz + 12, got, sizeof got, NULL, NULL);
    ok (chained, "the follower gets the 12 changes as they come");
    zsock_t *late = zsock_new_dealer ("inproc://fo-s0-stream");
    snprintf (text, sizeof text, "%" PRId64, vz);
    s_stream_send (late, "follow", "name", "late", "want", "keys", "incarnation", s_inc0,
                   "epoch", "1", "applied", text, NULL);
    answer = s_expect (late, "follow", 3000);
    ok (answer && answer->status == 200 && streq (tiers_wire_header (answer, "reset") ?: "", "1")
     && s_header_int (answer, "from") == vz + 12,
        "a keys follow from behind the log: 200 reset, from the shard's sequence");
    tiers_wire_destroy (&answer);
    snprintf (text, sizeof text, "%" PRId64, vz + 100);
    s_stream_send (late, "follow", "name", "late", "want", "keys", "incarnation", s_inc0,
                   "epoch", "1", "applied", text, NULL);
    answer = s_expect (late, "follow", 3000);
    ok (answer && answer->status == 200 && tiers_wire_header (answer, "reset"),
        "... from ahead of the shard: reset");
    tiers_wire_destroy (&answer);
    snprintf (text2, sizeof text2, "%" PRId64, vz + 12);
    s_stream_send (late, "follow", "name", "late", "want", "keys", "incarnation",
                   "000000000000", "epoch", "1", "applied", text2, NULL);
    answer = s_expect (late, "follow", 3000);
    ok (answer && answer->status == 200 && tiers_wire_header (answer, "reset"),
        "... of another incarnation: reset");
    tiers_wire_destroy (&answer);
    s_stream_send (late, "follow", "name", "late", "want", "everything", "incarnation", "",
                   "epoch", "0", "applied", "0", NULL);
    answer = s_expect (late, "follow", 3000);
    ok (answer && answer->status == 400, "want other than keys: 400");
    tiers_wire_destroy (&answer);
    zsock_destroy (&late);
    zsock_destroy (&keys);
}

//  The incarnation and the sequence of the shard behind `client`, as text.
static void
s_shard_at (zsock_t *client, char inc [16], char sequence [32])
{
    json_t *status = s_status (client);
    snprintf (inc, 16, "%s", json_string_value (json_object_get (status, "incarnation")) ?: "");
    snprintf (sequence, 32, "%" PRId64,
              (int64_t) json_integer_value (json_object_get (status, "sequence")));
    json_decref (status);
}

//  A keys follower is no replica: ack = replica is not satisfied by it.
static void
s_no_replica (void)
{
    zsock_t *client = zsock_new_dealer ("inproc://fo-s1");
    char inc [16], sequence [32];
    s_shard_at (client, inc, sequence);
    zsock_t *keys = zsock_new_dealer ("inproc://fo-s1-stream");
    s_stream_send (keys, "follow", "name", "k2", "want", "keys", "incarnation", "",
                   "epoch", "0", "applied", "0", NULL);
    tiers_wire_t *answer = s_expect (keys, "follow", 3000);
    ok (answer && answer->status == 200, "ack = replica: a keys follower follows");
    tiers_wire_destroy (&answer);
    zclock_sleep (50);
    tiers_wire_t *reply = s_write (client, true, "put", "r1", "{}", NULL);
    ok (reply && reply->status == 503
     && streq (tiers_wire_header (reply, "outcome") ?: "", "not-applied"),
        "... a write with only a keys follower: 503 not-applied, as with no follower");
    tiers_wire_destroy (&reply);

    zsock_t *replica = zsock_new_dealer ("inproc://fo-s1-stream");
    s_stream_send (replica, "follow", "name", "rep", "incarnation", inc, "epoch", "1",
                   "applied", sequence, NULL);
    answer = s_expect (replica, "follow", 3000);
    ok (answer && answer->status == 200 && !tiers_wire_header (answer, "reset"),
        "a replica follows beside it");
    tiers_wire_destroy (&answer);
    s_write (client, false, "put", "r2", "{\"r\":2}", NULL);
    tiers_wire_t *keys_change = s_expect (keys, "change", 3000);
    tiers_wire_t *change = s_expect (replica, "change", 3000);
    ok (keys_change && change && tiers_wire_header (change, "checksum")
     && change->body_size > 0 && !strstr ((const char *) change->body, "c/r2 ")
     && strstr ((const char *) keys_change->body, "c/r2 "),
        "the replica gets the changeset (with its checksum), the keys follower the keys");
    if (keys_change)
        s_stream_send (keys, "ack", "applied", tiers_wire_header (keys_change, "sequence"),
                       NULL);
    zmq_pollitem_t item = { zsock_resolve (client), 0, ZMQ_POLLIN, 0 };
    ok (zmq_poll (&item, 1, 150) == 0,
        "... the keys follower's ack does not answer the write");
    if (change)
        s_stream_send (replica, "ack", "applied", tiers_wire_header (change, "sequence"), NULL);
    reply = tiers_wire_recv (zsock_resolve (client), NULL, NULL);
    ok (reply && reply->status == 201, "... the replica's does: 201");
    tiers_wire_destroy (&reply);
    tiers_wire_destroy (&change);
    tiers_wire_destroy (&keys_change);
    json_t *status = s_status (client);
    json_t *followers = json_object_get (status, "followers");
    int replicas = 0, caches = 0;
    for (size_t i = 0; i < json_array_size (followers); i++) {
        json_t *want = json_object_get (json_array_get (followers, i), "want");
        if (want && streq (json_string_value (want) ?: "", "keys"))
            caches++;
        else
            replicas++;
    }
    ok (replicas == 1 && caches == 1, "STATUS: one replica, one keys follower");
    json_decref (status);
    zsock_destroy (&replica);
    zsock_destroy (&keys);
    zsock_destroy (&client);
}

//  Many caches never keep a replica out: at most 192 keys followers stream
//  at once; the next is told 503 (with Retry-After), and a replica still
//  follows.
static void
s_crowd (void)
{
    enum { CROWD = 200 };
    zsock_t *client = zsock_new_dealer ("inproc://fo-s1");
    char inc [16], sequence [32];
    s_shard_at (client, inc, sequence);
    zsock_t *crowd [CROWD];
    for (int i = 0; i < CROWD; i++) {
        char name [16];
        snprintf (name, sizeof name, "crowd%d", i);
        crowd [i] = zsock_new_dealer ("inproc://fo-s1-stream");
        s_stream_send (crowd [i], "follow", "name", name, "want", "keys", "incarnation", "",
                       "epoch", "0", "applied", "0", NULL);
    }
    int taken = 0, refused = 0, other = 0;
    for (int i = 0; i < CROWD; i++) {
        tiers_wire_t *answer = s_expect (crowd [i], "follow", 10000);
        if (answer && answer->status == 200)
            taken++;
        else
        if (answer && answer->status == 503 && tiers_wire_header (answer, "retry-after")
        &&  strstr (tiers_wire_header (answer, "error") ?: "", "(192)"))
            refused++;
        else
            other++;
        tiers_wire_destroy (&answer);
    }
    json_t *status = s_status (client);
    json_t *followers = json_object_get (status, "followers");
    int streaming = 0;
    for (size_t i = 0; i < json_array_size (followers); i++) {
        json_t *follower = json_array_get (followers, i);
        json_t *want = json_object_get (follower, "want");
        streaming += want && streq (json_string_value (want) ?: "", "keys")
                  && streq (json_string_value (json_object_get (follower, "state")) ?: "",
                            "streaming");
    }
    json_decref (status);
    ok (streaming == 192 && refused >= CROWD - 192 && other == 0,
        "%d keys followers at once: 192 stream, the rest are told 503 with Retry-After "
        "(%d taken, %d refused, %d streaming)", CROWD, taken, refused, streaming);
    zsock_t *replica = zsock_new_dealer ("inproc://fo-s1-stream");
    s_stream_send (replica, "follow", "name", "rep2", "incarnation", inc, "epoch", "1",
                   "applied", sequence, NULL);
    tiers_wire_t *answer = s_expect (replica, "follow", 10000);
    ok (answer && answer->status == 200, "... and a replica still follows");
    tiers_wire_destroy (&answer);
    zsock_destroy (&replica);
    for (int i = 0; i < CROWD; i++)
        zsock_destroy (&crowd [i]);
    zsock_destroy (&client);
}

//  --------------------------------------------------------------------------
//  The client

//  The fake primary of s2: answers on a ROUTER bound at its stream port.
static tiers_wire_t *
s_fake_recv (zsock_t *router, zframe_t **identity, int timeout_ms)
{
    zmq_pollitem_t item = { zsock_resolve (router), 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return NULL;
    zmsg_t *route = NULL;
    tiers_wire_t *msg = tiers_wire_recv (zsock_resolve (router), &route, NULL);
    if (route) {
        zframe_destroy (identity);
        *identity = zmsg_pop (route);
    }
    zmsg_destroy (&route);
    return msg;
}

//  The next follow the watcher sends to the fake, within timeout_ms.
static tiers_wire_t *
s_fake_follow (zsock_t *router, zframe_t **identity, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        tiers_wire_t *msg = s_fake_recv (router, identity, (int) (until - zclock_mono ()));
        if (msg && streq (tiers_wire_header (msg, "op") ?: "", "follow"))
            return msg;
        tiers_wire_destroy (&msg);
    }
    return NULL;
}

static void
s_fake_send (zsock_t *router, zframe_t *identity, const char *op, const char *body, ...)
{
    tiers_wire_t *message = tiers_wire_new (TIERS_WIRE_REPLY);
    message->status = 200;
    tiers_wire_set_header (message, "op", op, strlen (op));
    va_list args;
    va_start (args, body);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (message, key, value, strlen (value));
    }
    va_end (args);
    if (body)
        tiers_wire_set_body (message, body, strlen (body));
    zmsg_t *envelope = zmsg_new ();
    zmsg_append (envelope, &(zframe_t *) { zframe_dup (identity) });
    if (tiers_wire_send (message, zsock_resolve (router), envelope))
        diag ("the fake cannot send %s: %s", op, zmq_strerror (zmq_errno ()));
    zmsg_destroy (&envelope);
    tiers_wire_destroy (&message);
}

static void
s_fake_change (zsock_t *router, zframe_t *identity, const char *previous,
               const char *sequence, const char *body)
{
    s_fake_send (router, identity, "change", body, "shard", "s2", "incarnation", "fakeinc00001",
                 "epoch", "1", "previous", previous, "sequence", sequence,
                 "committed", "1", NULL);
}

static void
s_client (const tiers_map_t *map, shard_t *s0, const char *dir)
{
    tiers_actor_args_t args = { .map = map, .entry = tiers_map_find (map, "w") };
    snprintf (args.name, sizeof args.name, "w");
    zactor_t *watcher = zactor_new (s_watcher, &args);
    char *ready = watcher ? zstr_recv (watcher) : NULL;
    ok (ready && streq (ready, "OK"), "the watcher (the follower client in an actor) starts");
    zstr_free (&ready);
    if (!watcher)
        return;
    char *answer = s_ask (watcher, "COUNT");
    ok (answer && streq (answer, "3"), "the follower knows the map's 3 shards");
    zstr_free (&answer);
    answer = s_ask (watcher, "NAME 2");
    ok (answer && streq (answer, "s2"), "... in map order (2 is s2)");
    zstr_free (&answer);
    bool routed = true;
    for (int i = 0; i < 50; i++) {
        char command [64];
        snprintf (command, sizeof command, "OF c id%d", i);
        answer = s_ask (watcher, command);
        uint32_t slot = tiers_slot_of ("c", command + 5, 1024);
        unsigned expect = slot < 340 ? 0 : slot < 680 ? 1 : 2;
        routed &= answer && (unsigned) atoi (answer) == expect;
        zstr_free (&answer);
    }
    ok (routed, "... and the shard of a key by the slot table");

    //  Both resets, in whichever order they come (on a loaded machine s1
    //  can be heard before s0)
    char *events = s_events_until (watcher, "reset 1", 10000);
    if (!strstr (events, "reset 0")) {
        char *more = s_events_until (watcher, "reset 0", 10000);
        char *both = zsys_sprintf ("%s%s", events, more);
        free (events);
        free (more);
        events = both;
    }
    ok (strstr (events, "reset 0") && strstr (events, "reset 1") && !strstr (events, "reset 2"),
        "on_reset for s0 and s1 at the start; none for s2 (nothing there yet)");
    free (events);
    ok (s_live_within (watcher, 0, true, 10000) && s_live_within (watcher, 1, true, 10000),
        "s0 and s1 are live");
    ok (s_live_within (watcher, 2, false, 0), "s2 is not");
    zsock_t *client = zsock_new_dealer ("inproc://fo-s0");
    json_t *status = s_status (client);
    int64_t sequence = json_integer_value (json_object_get (status, "sequence"));
    json_decref (status);
    char inc [16];
    ok (s_position (watcher, 0, inc) == sequence && streq (inc, s_inc0),
        "its position of s0 is the shard's sequence, of its incarnation");

    tiers_wire_t *reply = s_write (client, true, "put", "x1", "{}", NULL);
    int64_t v1 = s_header_int (reply, "version");
    tiers_wire_destroy (&reply);
    reply = s_write (client, true, "put", "x1", "{\"x\":1}", NULL);
    tiers_wire_destroy (&reply);
    reply = s_write (client, true, "put", "x2", "{}", NULL);
    tiers_wire_destroy (&reply);
    reply = s_write (client, true, "delete", "x1", NULL, NULL);
    int64_t v4 = v1 + 3;
    ok (reply && reply->status == 204, "put, replace, put, delete on s0");
    tiers_wire_destroy (&reply);
    char want [256];
    snprintf (want, sizeof want, "key 0 c/x1 %" PRId64 "\nkey 0 c/x1 %" PRId64 "\n"
              "key 0 c/x2 %" PRId64 "\nkey 0 c/x1 %" PRId64 "\n", v1, v1 + 1, v1 + 2, v4);
    char needle [64];
    snprintf (needle, sizeof needle, "c/x1 %" PRId64, v4);
    events = s_events_until (watcher, needle, 10000);
    ok (streq (events, want), "on_key for each, in order, with its version");
    if (!streq (events, want))
        diag ("got:\n%s", events);
    free (events);
    is_int ((int) s_position (watcher, 0, NULL), (int) v4, "the position is the last change's");

    //  The shard stops: silence, STALE; it starts again on its file: LIVE,
    //  no reset (its log is empty, but nothing was written in between)
    zactor_destroy (&s0->actor);
    ok (s_live_within (watcher, 0, false, 10000), "s0 stops: not live after silent_ms");
    answer = s_ask (watcher, "STATUS");
    ok (answer && strstr (answer, "\"state\":\"stale\""), "... STATUS says stale");
    zstr_free (&answer);
    ok (s_position (watcher, 0, NULL) == v4, "... its position is kept");
    ok (s_shard_start (s0, map, "s0") == 0, "s0 starts again on its file");
    ok (s_live_within (watcher, 0, true, 10000), "... live again");
    zsock_destroy (&client);
    client = zsock_new_dealer ("inproc://fo-s0");
    reply = s_write (client, true, "put", "x3", "{}", NULL);
    int64_t v5 = s_header_int (reply, "version");
    tiers_wire_destroy (&reply);
    snprintf (needle, sizeof needle, "key 0 c/x3 %" PRId64 "\n", v5);
    events = s_events_until (watcher, needle, 10000);
    ok (streq (events, needle), "... no reset (nothing was missed), its next write comes");
    free (events);

    //  It starts again on a new file: another incarnation, a reset
    zactor_destroy (&s0->actor);
    const char *suffixes [] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        char path [600];
        snprintf (path, sizeof path, "%s/data/s0.db%s", dir, suffixes [i]);
        unlink (path);
    }
    ok (s_shard_start (s0, map, "s0") == 0, "s0 starts again on a new file");
    events = s_events_until (watcher, "reset 0", 10000);
    ok (strstr (events, "reset 0") != NULL, "... the follower resets s0 (another incarnation)");
    free (events);
    ok (s_live_within (watcher, 0, true, 10000), "... and it is live");
    s_position (watcher, 0, inc);
    ok (!streq (inc, s_inc0) && strlen (inc) == 12, "... on the new incarnation");
    zsock_destroy (&client);
    client = zsock_new_dealer ("inproc://fo-s0");
    reply = s_write (client, true, "put", "y1", "{}", NULL);
    tiers_wire_destroy (&reply);
    events = s_events_until (watcher, "c/y1 1\n", 10000);
    ok (streq (events, "key 0 c/y1 1\n"), "... whose first write is version 1");
    free (events);

    //  A fake primary of s2 sends a bad keys line: counted, a reset, no crash
    zsock_t *fake = tiers_sock_bind (ZMQ_ROUTER, "inproc://fo-s2-stream", NULL);
    ok (fake != NULL, "a fake primary binds s2's stream port");
    zframe_t *identity = NULL;
    //  The follows of the follower's sockets before this one (it makes a
    //  new one for each follow that went unanswered) were queued by
    //  libzmq for the inproc endpoint and come now, from closed sockets:
    //  the next one after them is from the follower's socket of now.
    tiers_wire_t *follow = NULL;
    while (fake && (follow = s_fake_recv (fake, &identity, 300)))
        tiers_wire_destroy (&follow);
    follow = fake ? s_fake_follow (fake, &identity, 10000) : NULL;
    ok (follow && streq (tiers_wire_header (follow, "want") ?: "", "keys")
     && streq (tiers_wire_header (follow, "name") ?: "", "w")
     && streq (tiers_wire_header (follow, "applied") ?: "", "0"),
        "the follower asks it: follow, want keys, its name, applied 0");
    tiers_wire_destroy (&follow);
    if (identity) {
        s_fake_send (fake, identity, "follow", NULL, "reset", "1", "incarnation", "fakeinc00001",
                     "epoch", "1", "sequence", "5", "from", "5", NULL);
        s_fake_change (fake, identity, "5", "7", "c/ok 6\nc/ok2 7\n");
    }
    events = s_events_until (watcher, "c/ok2 7", 10000);
    ok (streq (events, "reset 2\nkey 2 c/ok 6\nkey 2 c/ok2 7\n"),
        "the fake's follow answer resets s2; its change's keys come");
    if (!streq (events, "reset 2\nkey 2 c/ok 6\nkey 2 c/ok2 7\n"))
        diag ("got:\n%s", events);
    free (events);
    ok (s_live_within (watcher, 2, true, 10000), "s2 is live");
    int64_t malformed = s_metric ("tiers_follow_malformed_total{follower=\"w\",shard=\"s2\"} ");
    int64_t resets = s_metric ("tiers_follow_resets_total{follower=\"w\",shard=\"s2\"} ");
    const char *bad [] = {
        "c/a\n",                    //  no version
        "c/a 8",                    //  no newline
        "c/a 99\n",                 //  a version not of the change
        "c a 8\n",                  //  no slash
        "c/a/b 8\n",                //  a bad id
        "c/a -8\n",
        "c/a 8\nc/b x\n",
    };
    int count = (int) (sizeof bad / sizeof bad [0]);
    int answered = 0;
    for (int i = 0; identity && i < count; i++) {
        //  each bad change resets; the follower follows again from scratch
        s_fake_change (fake, identity, "7", "8", bad [i]);
        follow = s_fake_follow (fake, &identity, 10000);
        answered += follow && streq (tiers_wire_header (follow, "applied") ?: "", "0")
                 && streq (tiers_wire_header (follow, "incarnation") ?: "?", "");
        tiers_wire_destroy (&follow);
        s_fake_send (fake, identity, "follow", NULL, "reset", "1", "incarnation",
                     "fakeinc00001", "epoch", "1", "sequence", "7", "from", "7", NULL);
    }
    is_int (answered, count, "after each malformed change the follower follows from scratch");
    //  Garbage, a gap
    if (identity) {
        zframe_t *head = zframe_dup (identity);
        tiers_sock_send_frame (&head, zsock_resolve (fake), ZFRAME_MORE);
        tiers_sock_send_str (zsock_resolve (fake), "garbage");
        follow = s_fake_follow (fake, &identity, 10000);
        ok (follow != NULL, "garbage: it follows again");
        tiers_wire_destroy (&follow);
        s_fake_send (fake, identity, "follow", NULL, "reset", "1", "incarnation",
                     "fakeinc00001", "epoch", "1", "sequence", "7", "from", "7", NULL);
        s_fake_change (fake, identity, "9", "10", "c/gap 10\n");
        follow = s_fake_follow (fake, &identity, 10000);
        ok (follow != NULL, "a gap: it follows again");
        tiers_wire_destroy (&follow);
    }
    is_int ((int) (s_metric ("tiers_follow_malformed_total{follower=\"w\",shard=\"s2\"} ")
                   - malformed), count + 1, "the malformed messages are counted");
    ok (s_metric ("tiers_follow_resets_total{follower=\"w\",shard=\"s2\"} ") - resets
        >= 2 * (count + 1) + 1, "... and the resets");
    events = s_events_until (watcher, NULL, 200);
    ok (!strstr (events, "c/gap") && !strstr (events, "key 2 c/a "),
        "none of their keys reached on_key");
    free (events);
    reply = s_write (client, true, "put", "y2", "{}", NULL);
    tiers_wire_destroy (&reply);
    events = s_events_until (watcher, "c/y2 2\n", 10000);
    ok (streq (events, "key 0 c/y2 2\n"), "the follower goes on: s0's next write comes");
    free (events);
    zframe_destroy (&identity);
    zsock_destroy (&fake);

    //  A fenced copy: its heartbeats say so: STALE; a new keys follow: 421
    tiers_wire_t *fence = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (fence, "f1");
    tiers_wire_set_header (fence, "op", "fence", 5);
    tiers_wire_set_header (fence, "epoch", "2", 1);
    tiers_wire_set_header (fence, "by", "s0r9", 4);
    reply = tiers_call (client, fence, 3000);
    ok (reply && reply->status == 200, "s0 is fenced (epoch 2)");
    tiers_wire_destroy (&reply);
    tiers_wire_destroy (&fence);
    ok (s_live_within (watcher, 0, false, 10000), "... the follower's s0 is not live (fenced)");
    answer = s_ask (watcher, "STATUS");
    ok (answer && strstr (answer, "\"fenced\":true"), "... STATUS says fenced");
    zstr_free (&answer);
    zsock_t *keys = zsock_new_dealer ("inproc://fo-s0-stream");
    s_stream_send (keys, "follow", "name", "k3", "want", "keys", "incarnation", "",
                   "epoch", "0", "applied", "0", NULL);
    tiers_wire_t *refusal = s_expect (keys, "follow", 3000);
    ok (refusal && refusal->status == 421, "a keys follow on a fenced copy: 421");
    tiers_wire_destroy (&refusal);
    zsock_destroy (&keys);
    ok (s_live_within (watcher, 1, true, 0), "s1 is still live");
    zsock_destroy (&client);
    zactor_destroy (&watcher);
}

int
main (void)
{
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    tiers_kind_register (&s_watcher_kind);
    const char *dir = h_tmpdir ();
    char *text = zsys_sprintf (
        "cluster\n"
        "    name = follow\n"
        "    data = %s/data\n"
        "    log = warn\n"
        "node = box\n"
        "    shard = s0\n"
        "        bind = inproc://fo-s0\n"
        "        bind.stream = inproc://fo-s0-stream\n"
        "        changesets = always\n"
        "        slots = 0-339\n"
        "        log_changes = 8\n"
        "    shard = s1\n"
        "        bind = inproc://fo-s1\n"
        "        bind.stream = inproc://fo-s1-stream\n"
        "        changesets = always\n"
        "        slots = 340-679\n"
        "        ack = replica\n"
        "        ack_timeout = 2s\n"
        "    shard = s2\n"
        "        bind = inproc://fo-s2\n"
        "        bind.stream = inproc://fo-s2-stream\n"
        "        changesets = always\n"
        "        slots = 680-1023\n"
        "    watcher = w\n", dir);
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "follow.map", &errors);
    ok (map != NULL, "a map of three shards with stream ports and a watcher loads");
    if (!map)
        diag ("%s", errors);
    free (errors);
    char data [600];
    snprintf (data, sizeof data, "%s/data", dir);
    zsys_dir_create (data);
    shard_t s0 = { 0 }, s1 = { 0 };
    bool started = map && s_shard_start (&s0, map, "s0") == 0
                && s_shard_start (&s1, map, "s1") == 0;
    ok (started, "s0 and s1 start (s2 is left to a fake)");
    if (started) {
        zsock_t *client = zsock_new_dealer ("inproc://fo-s0");
        s_by_hand (client);
        zsock_destroy (&client);
        s_no_replica ();
        s_crowd ();
        s_client (map, &s0, dir);
    }
    zactor_destroy (&s0.actor);
    zactor_destroy (&s1.actor);
    tiers_map_destroy (&map);
    free (text);
    return done_testing ();
}
