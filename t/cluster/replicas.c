/*  replicas.c — the read-api's choice of a copy (actors/read_api.c): reads
    over replicas, read-your-writes, the rotation and the fallbacks to the
    primary.

    The cluster is real (balancer, read-api, write-api, two SQLite shards);
    the replicas are played by this test: raw ROUTER sockets bound at the
    endpoints the map gives three `replica` entries (s0r1, s0r2 of s0; s1r1
    of s1) on a node that is never started. Each answers STATUS with the
    `rotation` the test sets, and reads as the test says (a document that
    names the replica, 409, 500, 404, or nothing at all), and notes what it
    was asked (min-sequence, incarnation, eventual). So the test sees which
    copy served each read: a replica's answer names it, the primary's is
    the document really written.

    Until storage/replica.c registers the kind `replica`, the test registers
    one of its own (its ports and keys as doc/replication.md gives them,
    and a body that never runs); with the real kind the same map loads and
    the same sockets play its entries.

    Runs twice: the back end in this process (inproc), and as a `run`
    process of this program (the balancer on tcp:// loopback).
*/
#include "../tap.h"
#include "harness.h"
#include "cli.h"
#include "kind.h"
#include "map.h"
#include "node.h"
#include "service.h"
#include "sock.h"
#include "slot.h"
#include "metrics.h"
#include "log.h"
#include <jansson.h>
#include <signal.h>

#define COPIES          3
#define REPLICA_TIMEOUT 300             //  the map's read-api replica_timeout
#define READ_WAIT       700             //  the map's replicas' read_wait

//  --------------------------------------------------------------------------
//  The test-only kind (when the real one is not there)

static void
s_unplayed (zsock_t *pipe, void *args)
{
    tiers_actor_failed (pipe, "the test's replica kind runs no actor: the test "
                        "plays its entries over raw sockets");
}

static const tiers_key_t s_replica_keys [] = {
    { "of",        TIERS_KEY_STRING, true,  0, 32, NULL },
    { "sync",      TIERS_KEY_ENUM,   false, 0, 0, "full|normal" },
    { "max_lag",   TIERS_KEY_MS,     false, 0, 3600000, NULL },
    { "read_wait", TIERS_KEY_MS,     false, 0, 3600000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static const tiers_port_t s_replica_ports [] = {
    { "requests", ZMQ_ROUTER, "get, list and STATUS (doc/replication.md)", true },
    { NULL, 0, NULL, false }
};

static const tiers_kind_t s_replica_kind = {
    .name = "replica", .summary = "test-only: a replica played by the test",
    .rank = TIERS_RANK_STORAGE, .run = s_unplayed, .keys = s_replica_keys,
    .ports = s_replica_ports, .multi = false, .listener = NULL
};

//  --------------------------------------------------------------------------
//  The replicas, played: one actor, a ROUTER per replica
//
//  Pipe commands (each answered, so that the test knows it took effect):
//      MODE NAME ROTATION READS    ROTATION 1|0; READS ok|409|500|404|
//                                  silent (no answer to reads) | dead (no
//                                  answer to anything, STATUS too) -> OK
//      STATS NAME                  -> READS STATUSES MIN-SEQUENCE INCARNATION
//                                     EVENTUAL (of the last read; - if none);
//                                     STATUSES counts the read-api's
//      RESET                       counts and last reads forgotten -> OK

typedef struct {
    const char *name, *of;
    zsock_t *router;
    bool rotation;
    char reads_mode [8];
    int reads, statuses;
    char min_sequence [32], incarnation [48], eventual [8];
} copy_t;

static void
s_keep (char *to, size_t size, const char *value)
{
    snprintf (to, size, "%s", value ? value : "-");
}

static void
s_copy_answer (copy_t *copy, tiers_wire_t *message, zmsg_t *envelope)
{
    tiers_wire_t *reply = NULL;
    if (message->kind == TIERS_WIRE_STATUS) {
        //  The read-api's STATUS is counted; the shard's own (it asks its
        //  replicas for their epochs, rid "fence-check") is not.
        if (message->rid [0] && !streq (message->rid, "fence-check"))
            copy->statuses++;
        if (streq (copy->reads_mode, "dead"))
            return;
        reply = tiers_wire_reply_to (message, 200);
        reply->kind = TIERS_WIRE_REPLY;
        char *json = zsys_sprintf ("{\"replica\":\"%s\",\"of\":\"%s\",\"state\":\"streaming\","
                                   "\"epoch\":1,\"applied\":7,\"rotation\":%s}", copy->name, copy->of,
                                   copy->rotation ? "true" : "false");
        tiers_wire_set_body (reply, json, strlen (json));
        free (json);
    }
    else {
        copy->reads++;
        s_keep (copy->min_sequence, sizeof copy->min_sequence,
                tiers_wire_header (message, "min-sequence"));
        s_keep (copy->incarnation, sizeof copy->incarnation,
                tiers_wire_header (message, "incarnation"));
        s_keep (copy->eventual, sizeof copy->eventual, tiers_wire_header (message, "eventual"));
        const char *op = tiers_wire_header (message, "op");
        if (streq (copy->reads_mode, "silent") || streq (copy->reads_mode, "dead"))
            return;
        int status = atoi (copy->reads_mode);
        reply = tiers_wire_reply_to (message, status ? status : 200);
        tiers_wire_set_header (reply, "applied", "7", 1);
        if (status == 409 || status == 500)
            tiers_wire_set_header (reply, "error", "played", 6);
        else
        if (status == 0 && op && streq (op, "list")) {
            char *json = zsys_sprintf ("{\"items\":[{\"id\":\"%s\",\"version\":7,"
                                       "\"etag\":\"\\\"abc.7\\\"\",\"doc\":{\"copy\":\"%s\"}}],"
                                       "\"next\":null}", copy->name, copy->name);
            tiers_wire_set_body (reply, json, strlen (json));
            free (json);
        }
        else
        if (status == 0) {
            char *json = zsys_sprintf ("{\"copy\":\"%s\"}", copy->name);
            tiers_wire_set_body (reply, json, strlen (json));
            free (json);
            tiers_wire_set_header (reply, "version", "7", 1);
            tiers_wire_set_header (reply, "tag", "abc.7", 5);
        }
    }
    tiers_wire_send (reply, zsock_resolve (copy->router), envelope);
    tiers_wire_destroy (&reply);
}

static copy_t *
s_copy_named (copy_t *copies, const char *name)
{
    for (int i = 0; name && i < COPIES; i++)
        if (streq (copies [i].name, name))
            return &copies [i];
    return NULL;
}

static void
s_copies_command (zsock_t *pipe, copy_t *copies, zmsg_t *command)
{
    char *verb = zmsg_popstr (command);
    char *name = zmsg_popstr (command);
    copy_t *copy = s_copy_named (copies, name);
    if (verb && streq (verb, "MODE") && copy) {
        char *rotation = zmsg_popstr (command);
        char *mode = zmsg_popstr (command);
        copy->rotation = rotation && streq (rotation, "1");
        snprintf (copy->reads_mode, sizeof copy->reads_mode, "%s", mode ? mode : "ok");
        zstr_free (&rotation);
        zstr_free (&mode);
        zstr_send (pipe, "OK");
    }
    else
    if (verb && streq (verb, "STATS") && copy) {
        char reads [16], statuses [16];
        snprintf (reads, sizeof reads, "%d", copy->reads);
        snprintf (statuses, sizeof statuses, "%d", copy->statuses);
        zstr_sendx (pipe, reads, statuses, copy->min_sequence, copy->incarnation,
                    copy->eventual, NULL);
    }
    else
    if (verb && streq (verb, "RESET")) {
        for (int i = 0; i < COPIES; i++) {
            copies [i].reads = copies [i].statuses = 0;
            s_keep (copies [i].min_sequence, sizeof copies [i].min_sequence, NULL);
            s_keep (copies [i].incarnation, sizeof copies [i].incarnation, NULL);
            s_keep (copies [i].eventual, sizeof copies [i].eventual, NULL);
        }
        zstr_send (pipe, "OK");
    }
    else
        zstr_send (pipe, "ERROR");
    zstr_free (&verb);
    zstr_free (&name);
}

//  args: the three endpoints (const char *[COPIES]).
static void
s_copies_actor (zsock_t *pipe, void *args)
{
    const char **endpoints = (const char **) args;
    static const char *names [COPIES] = { "s0r1", "s0r2", "s1r1" };
    static const char *ofs [COPIES] = { "s0", "s0", "s1" };
    copy_t copies [COPIES];
    memset (copies, 0, sizeof copies);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    bool bound = true;
    for (int i = 0; i < COPIES; i++) {
        copies [i].name = names [i];
        copies [i].of = ofs [i];
        copies [i].rotation = true;
        snprintf (copies [i].reads_mode, sizeof copies [i].reads_mode, "ok");
        s_keep (copies [i].min_sequence, sizeof copies [i].min_sequence, NULL);
        s_keep (copies [i].incarnation, sizeof copies [i].incarnation, NULL);
        s_keep (copies [i].eventual, sizeof copies [i].eventual, NULL);
        copies [i].router = tiers_sock_bind (ZMQ_ROUTER, endpoints [i], NULL);
        bound = bound && copies [i].router;
        if (copies [i].router)
            zpoller_add (poller, copies [i].router);
    }
    zsock_signal (pipe, bound ? 0 : 1);
    while (bound) {
        void *which = zpoller_wait (poller, -1);
        if (!which)
            break;
        if (which == pipe) {
            zmsg_t *command = zmsg_recv (pipe);
            char *verb = command ? zmsg_popstr (command) : NULL;
            bool term = !verb || streq (verb, "$TERM");
            if (!term) {
                zmsg_pushstr (command, verb);
                s_copies_command (pipe, copies, command);
            }
            zstr_free (&verb);
            zmsg_destroy (&command);
            if (term)
                break;
            continue;
        }
        for (int i = 0; i < COPIES; i++)
            if (which == copies [i].router) {
                zmsg_t *envelope = NULL;
                const char *error = NULL;
                tiers_wire_t *message = tiers_wire_recv (copies [i].router, &envelope, &error);
                if (message && envelope)
                    s_copy_answer (&copies [i], message, envelope);
                tiers_wire_destroy (&message);
                zmsg_destroy (&envelope);
            }
    }
    zpoller_destroy (&poller);
    for (int i = 0; i < COPIES; i++)
        zsock_destroy (&copies [i].router);
}

static void
s_mode (zactor_t *copies, const char *name, const char *rotation, const char *reads)
{
    zstr_sendx (copies, "MODE", name, rotation, reads, NULL);
    char *ok_ = zstr_recv (copies);
    zstr_free (&ok_);
}

static void
s_reset (zactor_t *copies)
{
    zstr_send (copies, "RESET");
    char *ok_ = zstr_recv (copies);
    zstr_free (&ok_);
}

typedef struct {
    int reads, statuses;
    char min_sequence [32], incarnation [48], eventual [8];
} stats_t;

static stats_t
s_stats (zactor_t *copies, const char *name)
{
    stats_t stats;
    memset (&stats, 0, sizeof stats);
    zstr_sendx (copies, "STATS", name, NULL);
    char *reads = NULL, *statuses = NULL, *min_sequence = NULL, *incarnation = NULL,
         *eventual = NULL;
    zstr_recvx (copies, &reads, &statuses, &min_sequence, &incarnation, &eventual, NULL);
    stats.reads = reads ? atoi (reads) : -1;
    stats.statuses = statuses ? atoi (statuses) : -1;
    snprintf (stats.min_sequence, sizeof stats.min_sequence, "%s", min_sequence ? min_sequence : "?");
    snprintf (stats.incarnation, sizeof stats.incarnation, "%s", incarnation ? incarnation : "?");
    snprintf (stats.eventual, sizeof stats.eventual, "%s", eventual ? eventual : "?");
    zstr_free (&reads);
    zstr_free (&statuses);
    zstr_free (&min_sequence);
    zstr_free (&incarnation);
    zstr_free (&eventual);
    return stats;
}

//  Until every replica was asked for its STATUS `count` times more.
static bool
s_statuses_seen (zactor_t *copies, int count)
{
    int base [COPIES];
    const char *names [COPIES] = { "s0r1", "s0r2", "s1r1" };
    for (int i = 0; i < COPIES; i++)
        base [i] = s_stats (copies, names [i]).statuses;
    int64_t until = zclock_mono () + 5000;
    while (zclock_mono () < until) {
        bool all = true;
        for (int i = 0; i < COPIES; i++)
            all = all && s_stats (copies, names [i]).statuses >= base [i] + count;
        if (all)
            return true;
        zclock_sleep (20);
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Calls

//  A request to a pool with the given headers ("key", "value", ... NULL).
static tiers_wire_t *
s_call (zsock_t *client, const char *pool, int deadline_ms, const char *body, ...)
{
    tiers_wire_t *request = h_request (pool, body, deadline_ms);
    va_list args;
    va_start (args, body);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (request, key, value, strlen (value));
    }
    va_end (args);
    tiers_wire_t *reply = tiers_call (client, request, deadline_ms + 2000);
    tiers_wire_destroy (&request);
    return reply;
}

//  A GET of c/ID with the headers (pairs, NULL-terminated): the body, or
//  "STATUS" for a reply without one, "none" for no reply. Caller frees.
static char *
s_get (zsock_t *client, const char *id, ...)
{
    tiers_wire_t *request = h_request ("read", NULL, 3000);
    tiers_wire_set_header (request, "method", "GET", 3);
    tiers_wire_set_header (request, "collection", "c", 1);
    tiers_wire_set_header (request, "id", id, strlen (id));
    va_list args;
    va_start (args, id);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (request, key, value, strlen (value));
    }
    va_end (args);
    tiers_wire_t *reply = tiers_call (client, request, 5000);
    tiers_wire_destroy (&request);
    char *text = !reply ? strdup ("none")
               : reply->status != 200 ? zsys_sprintf ("%d", reply->status)
               : strdup ((char *) reply->body);
    tiers_wire_destroy (&reply);
    return text;
}

//  An id of collection c whose slot the shard `shard` (0: 0-511, 1: the rest) owns.
static void
s_id_on (int shard, const char *prefix, char *id, size_t size)
{
    for (int i = 0; ; i++) {
        snprintf (id, size, "%s%d", prefix, i);
        if ((tiers_slot_of ("c", id, 1024) < 512) == (shard == 0))
            return;
    }
}

//  --------------------------------------------------------------------------
//  The scenarios

static void
s_scenarios (zsock_t *client, zactor_t *copies, const char *L, bool metrics)
{
    ok (h_wait_workers (client, "read", 1, 10000) == 0
        && h_wait_workers (client, "write", 1, 10000) == 0, "%s: the pools joined", L);
    ok (s_statuses_seen (copies, 2), "%s: the read-api asks every replica for its STATUS", L);

    //  Two documents, one on each shard, written to the primaries.
    char a [32], b [32];
    s_id_on (0, "a", a, sizeof a);
    s_id_on (1, "b", b, sizeof b);
    char qa [40], qb [40];                  //  as a list shows them
    snprintf (qa, sizeof qa, "\"id\":\"%s\"", a);
    snprintf (qb, sizeof qb, "\"id\":\"%s\"", b);
    //  A shard takes writes once a majority of its copies answered it
    //  (CHECKING, doc/replication.md): on a loaded machine the first
    //  answers may come after the first write; a 503 then is asked again.
    tiers_wire_t *reply = NULL;
    for (int i = 0; i < 30; i++) {
        tiers_wire_destroy (&reply);
        reply = s_call (client, "write", 3000, "{\"doc\":\"a\"}", "method", "PUT",
                        "collection", "c", "id", a, NULL);
        if (!reply || reply->status != 503)
            break;
        zclock_sleep (100);
    }
    if (!reply || reply->status >= 300)
        diag ("the first write: %d %s", reply ? reply->status : -1,
              reply && tiers_wire_header (reply, "error") ? tiers_wire_header (reply, "error")
                                                          : "");
    const char *token = reply ? tiers_wire_header (reply, "token") : NULL;
    char written [128] = "";
    snprintf (written, sizeof written, "%s", token ? token : "");
    ok (reply && reply->status == 201 && strncmp (written, "s0=", 3) == 0,
        "%s: a write on s0 answers a token of s0 (%s)", L, written);
    tiers_wire_destroy (&reply);
    char incarnation [48] = "", sequence [32] = "";
    const char *dot = strrchr (written, '.');
    if (dot && strlen (written) > 3) {
        snprintf (incarnation, sizeof incarnation, "%.*s", (int) (dot - written - 3), written + 3);
        snprintf (sequence, sizeof sequence, "%s", dot + 1);
    }
    reply = s_call (client, "write", 3000, "{\"doc\":\"b\"}", "method", "PUT",
                    "collection", "c", "id", b, NULL);
    ok (reply && reply->status == 201, "%s: a write on s1", L);
    tiers_wire_destroy (&reply);
    s_reset (copies);

    //  Eventual reads go round the replicas in the rotation.
    char *got [4];
    for (int i = 0; i < 4; i++)
        got [i] = s_get (client, a, NULL);
    stats_t r1 = s_stats (copies, "s0r1"), r2 = s_stats (copies, "s0r2");
    ok (streq (got [0], "{\"copy\":\"s0r1\"}") || streq (got [0], "{\"copy\":\"s0r2\"}"),
        "%s: an eventual read is a replica's (%s)", L, got [0]);
    ok (r1.reads == 2 && r2.reads == 2 && !streq (got [0], got [1]) && streq (got [0], got [2]),
        "%s: four eventual reads: two on each replica of s0, in turn (%d, %d)", L,
        r1.reads, r2.reads);
    is (r1.eventual, "1", "%s: ... asked with eventual: 1", L);
    is (r1.min_sequence, "-", "%s: ... and no min-sequence", L);
    is_int (s_stats (copies, "s1r1").reads, 0, "%s: ... and s1's replica was not asked", L);
    for (int i = 0; i < 4; i++)
        free (got [i]);
    reply = s_call (client, "read", 3000, NULL, "method", "GET", "collection", "c",
                    "id", a, NULL);
    const char *etag = reply ? tiers_wire_header (reply, "etag") : NULL;
    ok (etag && streq (etag, "\"abc.7\""), "%s: a replica's answer has the ETag of its tag (%s)",
        L, etag ? etag : "none");
    tiers_wire_destroy (&reply);

    //  With the write's token: a replica, told to wait for the write.
    s_reset (copies);
    char *text = s_get (client, a, "token", written, NULL);
    r1 = s_stats (copies, "s0r1");
    r2 = s_stats (copies, "s0r2");
    stats_t *asked = r1.reads ? &r1 : &r2;
    ok (strstr (text, "\"copy\":\"s0r") && r1.reads + r2.reads == 1,
        "%s: a read with a token is a replica's (%s)", L, text);
    is (asked->min_sequence, sequence, "%s: ... asked with min-sequence = the token's sequence", L);
    is (asked->incarnation, incarnation, "%s: ... and incarnation = the token's", L);
    is (asked->eventual, "-", "%s: ... and not eventual", L);
    free (text);
    s_reset (copies);
    text = s_get (client, a, "token", "s1=0a1b2c3d4e5f.99", NULL);
    r1 = s_stats (copies, "s0r1");
    r2 = s_stats (copies, "s0r2");
    asked = r1.reads ? &r1 : &r2;
    ok (strstr (text, "\"copy\":\"s0r") && streq (asked->eventual, "1")
        && streq (asked->min_sequence, "-"),
        "%s: a token without an entry for the shard: an eventual read (%s)", L, text);
    free (text);
    s_reset (copies);
    text = s_get (client, a, "token", "s0=0a1b2c3d4e5f.nope", NULL);
    ok (streq (text, "400") && s_stats (copies, "s0r1").reads + s_stats (copies, "s0r2").reads == 0,
        "%s: a malformed token is 400 and asks no copy", L);
    free (text);

    //  Strong: the primary, whatever the token.
    s_reset (copies);
    text = s_get (client, a, "consistency", "strong", "token", written, NULL);
    is (text, "{\"doc\":\"a\"}", "%s: a strong read is the primary's", L);
    is_int (s_stats (copies, "s0r1").reads + s_stats (copies, "s0r2").reads, 0,
            "%s: ... no replica was asked", L);
    free (text);

    //  409: the primary, once.
    s_mode (copies, "s0r1", "1", "409");
    s_mode (copies, "s0r2", "1", "409");
    s_reset (copies);
    text = s_get (client, a, "token", written, NULL);
    is (text, "{\"doc\":\"a\"}", "%s: a replica's 409 to a token: the primary answers", L);
    is_int (s_stats (copies, "s0r1").reads + s_stats (copies, "s0r2").reads, 1,
            "%s: ... after one replica was asked (no second replica)", L);
    free (text);
    text = s_get (client, a, NULL);
    is (text, "{\"doc\":\"a\"}", "%s: a replica's 409 to an eventual read: the primary", L);
    free (text);
    s_mode (copies, "s0r1", "1", "500");
    s_mode (copies, "s0r2", "1", "500");
    text = s_get (client, a, NULL);
    is (text, "{\"doc\":\"a\"}", "%s: a replica's 500: the primary", L);
    free (text);
    s_mode (copies, "s0r1", "1", "404");
    s_mode (copies, "s0r2", "1", "404");
    text = s_get (client, a, NULL);
    is (text, "404", "%s: a replica's 404 is an answer (eventual: not there yet)", L);
    free (text);

    //  Silent: the primary after the bound, within the deadline.
    s_mode (copies, "s0r1", "1", "silent");
    s_mode (copies, "s0r2", "1", "silent");
    int64_t start = zclock_mono ();
    text = s_get (client, a, "token", written, NULL);
    int64_t took = zclock_mono () - start;
    is (text, "{\"doc\":\"a\"}", "%s: a silent replica: the primary answers the token's read", L);
    ok (took >= REPLICA_TIMEOUT + READ_WAIT - 20 && took < 2500,
        "%s: ... after replica_timeout + read_wait (%lld ms)", L, (long long) took);
    free (text);
    start = zclock_mono ();
    text = s_get (client, a, NULL);
    took = zclock_mono () - start;
    is (text, "{\"doc\":\"a\"}", "%s: ... and an eventual read", L);
    ok (took >= REPLICA_TIMEOUT - 20 && took < REPLICA_TIMEOUT + READ_WAIT,
        "%s: ... after replica_timeout (%lld ms)", L, (long long) took);
    free (text);
    //  A deadline below the token read's replica bound (replica_timeout +
    //  read_wait = 1000 ms): only a read-api that gives the replica at most
    //  half of it (475 ms) has the primary's answer in time.
    tiers_wire_t *quick = h_request ("read", NULL, 950);
    tiers_wire_set_header (quick, "method", "GET", 3);
    tiers_wire_set_header (quick, "collection", "c", 1);
    tiers_wire_set_header (quick, "id", a, strlen (a));
    tiers_wire_set_header (quick, "token", written, strlen (written));
    start = zclock_mono ();
    reply = tiers_call (client, quick, 3000);
    took = zclock_mono () - start;
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "{\"doc\":\"a\"}")
        && took < 950, "%s: with a 950 ms deadline the primary is asked in time (%lld ms, %d)",
        L, (long long) took, reply ? reply->status : -1);
    tiers_wire_destroy (&reply);
    tiers_wire_destroy (&quick);

    //  Out of the rotation: asked nothing.
    s_mode (copies, "s0r1", "1", "ok");
    s_mode (copies, "s0r2", "0", "ok");
    ok (s_statuses_seen (copies, 2), "%s: s0r2 says it is out of the rotation", L);
    s_reset (copies);
    int replica = 0;
    for (int i = 0; i < 6; i++) {
        text = s_get (client, a, i % 2 ? "token" : NULL, written, NULL);
        replica += streq (text, "{\"copy\":\"s0r1\"}");
        free (text);
    }
    is_int (replica, 6, "%s: six reads, eventual and with a token: all s0r1's", L);
    is_int (s_stats (copies, "s0r2").reads, 0, "%s: ... s0r2, out of the rotation, got none", L);

    //  A replica that answers nothing, not even STATUS, leaves the rotation.
    //  (Silent for SILENT_MS, 1 s: until two eventual reads in a row are
    //  s0r2's, at least 1.6 s, as the STATUS count below needs a window.)
    s_mode (copies, "s0r1", "1", "dead");
    s_mode (copies, "s0r2", "1", "ok");
    s_reset (copies);
    int64_t silent_since = zclock_mono ();
    int in_a_row = 0;
    while (in_a_row < 2 && zclock_mono () - silent_since < 10000) {
        text = s_get (client, a, NULL);
        in_a_row = streq (text, "{\"copy\":\"s0r2\"}") ? in_a_row + 1 : 0;
        free (text);
        if (in_a_row < 2)
            zclock_sleep (50);
    }
    int64_t left = silent_since + 1600 - zclock_mono ();
    if (left > 0)
        zclock_sleep ((int) left);
    int s0r1_reads = s_stats (copies, "s0r1").reads;
    replica = 0;
    for (int i = 0; i < 4; i++) {
        text = s_get (client, a, NULL);
        replica += streq (text, "{\"copy\":\"s0r2\"}");
        free (text);
    }
    int64_t window = zclock_mono () - silent_since;
    is_int (replica, 4, "%s: s0r1 silent for a second: every read is s0r2's (after %lld ms)",
            L, (long long) window);
    is_int (s_stats (copies, "s0r1").reads - s0r1_reads, 0, "%s: ... s0r1 got none", L);
    //  Asked every STATUS_MS (250 ms) it would be 8 a second; once a second
    //  per API, 2 a second, and 2 more for the asks already on their way.
    int statuses = s_stats (copies, "s0r1").statuses;
    ok (statuses <= 2 * (int) (window / 1000 + 2),
        "%s: ... and one STATUS a second from each API (read, write: they both "
        "look for a promoted primary) while it is silent (%d in %lld ms)", L,
        statuses, (long long) window);

    //  None in the rotation: the primary.
    s_mode (copies, "s0r1", "0", "ok");
    s_mode (copies, "s0r2", "0", "ok");
    zclock_sleep (1200);                //  s0r1 answers STATUS again
    ok (s_statuses_seen (copies, 2), "%s: both replicas of s0 out of the rotation", L);
    s_reset (copies);
    text = s_get (client, a, "token", written, NULL);
    is (text, "{\"doc\":\"a\"}", "%s: no replica in the rotation: the primary", L);
    free (text);
    text = s_get (client, a, NULL);
    is (text, "{\"doc\":\"a\"}", "%s: ... also for an eventual read", L);
    free (text);
    is_int (s_stats (copies, "s0r1").reads + s_stats (copies, "s0r2").reads, 0,
            "%s: ... and no replica was asked", L);

    //  Lists: each shard's page from its own choice.
    s_mode (copies, "s0r1", "1", "ok");
    s_mode (copies, "s0r2", "1", "ok");
    s_mode (copies, "s1r1", "1", "ok");
    ok (s_statuses_seen (copies, 2), "%s: every replica back in the rotation", L);
    reply = s_call (client, "read", 3000, NULL, "method", "GET", "collection", "c", NULL);
    const char *page = reply && reply->status == 200 ? (char *) reply->body : "";
    ok (strstr (page, "\"id\":\"s0r") && strstr (page, "\"id\":\"s1r1\"") && !strstr (page, qa),
        "%s: an eventual list: a replica's page for each shard (%s)", L, page);
    tiers_wire_destroy (&reply);
    s_mode (copies, "s1r1", "1", "409");
    s_reset (copies);
    char *s1_token = zsys_sprintf ("%s, s1=%s.1", written, incarnation);
    reply = s_call (client, "read", 3000, NULL, "method", "GET", "collection", "c",
                    "token", s1_token, NULL);
    page = reply && reply->status == 200 ? (char *) reply->body : "";
    ok (strstr (page, "\"id\":\"s0r") && strstr (page, qb) && !strstr (page, "s1r1"),
        "%s: a list whose s1 replica answers 409: s1's page is the primary's (%s)", L, page);
    tiers_wire_destroy (&reply);
    stats_t s1 = s_stats (copies, "s1r1");
    is (s1.min_sequence, "1", "%s: ... s1's replica was asked for the token's s1 entry", L);
    free (s1_token);
    reply = s_call (client, "read", 3000, NULL, "method", "GET", "collection", "c",
                    "consistency", "strong", NULL);
    page = reply && reply->status == 200 ? (char *) reply->body : "";
    ok (strstr (page, qa) && strstr (page, qb) && !strstr (page, "\"id\":\"s"),
        "%s: a strong list is the primaries' (%s)", L, page);
    tiers_wire_destroy (&reply);
    s_mode (copies, "s1r1", "1", "ok");

    if (metrics) {
        tiers_counter_t *served = tiers_metrics_counter ("tiers_api_reads_total",
                                                         "copy=\"replica\"", "");
        tiers_counter_t *primary = tiers_metrics_counter ("tiers_api_reads_total",
                                                          "copy=\"primary\"", "");
        tiers_counter_t *refused = tiers_metrics_counter ("tiers_api_read_fallbacks_total",
                                                          "reason=\"refused\"", "");
        tiers_counter_t *timeout = tiers_metrics_counter ("tiers_api_read_fallbacks_total",
                                                          "reason=\"timeout\"", "");
        tiers_counter_t *error = tiers_metrics_counter ("tiers_api_read_fallbacks_total",
                                                        "reason=\"error\"", "");
        ok (tiers_counter_value (served) >= 15 && tiers_counter_value (primary) >= 8,
            "%s: tiers_api_reads_total counts reads by copy (replica %llu, primary %llu)", L,
            (unsigned long long) tiers_counter_value (served),
            (unsigned long long) tiers_counter_value (primary));
        ok (tiers_counter_value (refused) >= 3 && tiers_counter_value (timeout) >= 3
            && tiers_counter_value (error) >= 1,
            "%s: tiers_api_read_fallbacks_total counts them by reason (refused %llu, "
            "timeout %llu, error %llu)", L,
            (unsigned long long) tiers_counter_value (refused),
            (unsigned long long) tiers_counter_value (timeout),
            (unsigned long long) tiers_counter_value (error));
    }
}

//  --------------------------------------------------------------------------
//  The map, the placements

//  Ports of the shard kind beyond `requests` (the stream port, once the
//  shard has one) are bound on tcp:// too: the replicas' node reaches them.
static char *
s_shard_ports (const char *shard)
{
    const tiers_kind_t *kind = tiers_kind_find ("shard");
    char *lines = strdup ("");
    for (size_t i = 1; kind && i < tiers_kind_port_count (kind); i++) {
        char *more = zsys_sprintf ("%s        bind.%s = tcp://127.0.0.1:%d\n", lines,
                                   kind->ports [i].name, h_free_port ());
        free (lines);
        lines = more;
    }
    (void) shard;
    return lines;
}

static char *
s_map_text (const char *data, const char *lb, const char *tag, const char *ends [COPIES])
{
    char *s0_ports = s_shard_ports ("s0");
    char *s1_ports = s_shard_ports ("s1");
    char *text = zsys_sprintf (
        "cluster\n"
        "    name = replicas-test\n"
        "    data = %s\n"
        "    log = warn\n"
        "    security = none\n"
        "node = box\n"
        "    balancer\n"
        "        bind = %s\n"
        "    read-api\n"
        "        replica_timeout = %dms\n"
        "    write-api\n"
        "    shard = s0\n"
        "        bind = inproc://%s-s0\n"
        "        slots = 0-511\n"
        "%s"
        "    shard = s1\n"
        "        bind = inproc://%s-s1\n"
        "        slots = 512-1023\n"
        "%s"
        "node = copies\n"
        "    replica = s0r1\n"
        "        of = s0\n"
        "        bind = %s\n"
        "        read_wait = %dms\n"
        "    replica = s0r2\n"
        "        of = s0\n"
        "        bind = %s\n"
        "        read_wait = %dms\n"
        "    replica = s1r1\n"
        "        of = s1\n"
        "        bind = %s\n"
        "        read_wait = %dms\n",
        data, lb, REPLICA_TIMEOUT, tag, s0_ports, tag, s1_ports,
        ends [0], READ_WAIT, ends [1], READ_WAIT, ends [2], READ_WAIT);
    free (s0_ports);
    free (s1_ports);
    return text;
}

static zactor_t *
s_play (const char *ends [COPIES])
{
    zactor_t *copies = zactor_new (s_copies_actor, (void *) ends);
    return copies;
}

int
main (int argc, char **argv)
{
    if (!tiers_kind_find ("replica"))
        tiers_kind_register (&s_replica_kind);
    if (argc > 1 && streq (argv [1], "run"))
        return tiers_cli_main (argc, argv);
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    const char *dir = h_tmpdir ();
    char endpoints [COPIES][64];
    const char *ends [COPIES];

    //  One process: the back end in this one.
    for (int i = 0; i < COPIES; i++) {
        snprintf (endpoints [i], sizeof endpoints [i], "tcp://127.0.0.1:%d", h_free_port ());
        ends [i] = endpoints [i];
    }
    zactor_t *copies = s_play (ends);
    char *data = zsys_sprintf ("%s/one", dir);
    char *text = s_map_text (data, "inproc://replicas-balancer", "one", ends);
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "one.map", &errors);
    ok (map != NULL, "inproc: a map with replicas of a kind %s loads",
        tiers_kind_find ("replica") == &s_replica_kind ? "of the test's" : "registered");
    if (!map)
        diag ("%s", errors);
    free (errors);
    tiers_node_t *node = map ? tiers_node_new (map, "box") : NULL;
    bool started = node && tiers_node_start (node) == 0;
    ok (started, "inproc: node box started (the replicas' node is not: the test plays it)");
    if (node && !started)
        diag ("%s", tiers_node_error (node));
    if (started) {
        zsock_t *client = zsock_new_dealer ("inproc://replicas-balancer");
        s_scenarios (client, copies, "inproc", true);
        zsock_destroy (&client);
    }
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);
    zactor_destroy (&copies);
    free (text);
    free (data);

    //  Two processes: the back end as `run` of this program, the balancer
    //  on tcp://.
    for (int i = 0; i < COPIES; i++) {
        snprintf (endpoints [i], sizeof endpoints [i], "tcp://127.0.0.1:%d", h_free_port ());
        ends [i] = endpoints [i];
    }
    copies = s_play (ends);
    char lb [64];
    snprintf (lb, sizeof lb, "tcp://127.0.0.1:%d", h_free_port ());
    data = zsys_sprintf ("%s/two", dir);
    text = s_map_text (data, lb, "two", ends);
    char *path = h_write_file ("two.map", text);
    char *log = zsys_sprintf ("%s/box.log", dir);
    char *args [] = { (char *) h_self_path (), (char *) "run", (char *) "-m", path,
                      (char *) "-n", (char *) "box", NULL };
    pid_t box = h_spawn (args, log);
    bool up = h_wait_for_line (log, "; ready", 30000) == 0;     //  as lib.sh
    ok (up, "tcp: node box runs as a process");
    if (up) {
        zsock_t *client = tiers_sock_connect (ZMQ_DEALER, lb, NULL);
        s_scenarios (client, copies, "tcp", false);
        zsock_destroy (&client);
    }
    is_int (h_stop (box, SIGTERM, 3000), 0, "tcp: node box exits 0 on SIGTERM");
    h_kill_all ();
    zactor_destroy (&copies);
    free (log);
    free (path);
    free (text);
    free (data);
    return done_testing ();
}
