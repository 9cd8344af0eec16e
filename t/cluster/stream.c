/*  stream.c — the primary's side of the commit stream (storage/stream.c,
    doc/replication.md), as a replica sees it.

    A real shard runs in this process with a `stream` port; the test plays
    the replica by hand on a DEALER: it takes a snapshot in chunks and
    checks its checksum, follows, applies every change to its copy with
    SQLite's session extension (any conflict fails the test), acknowledges,
    and sends what a broken or hostile replica would. A second shard has
    `ack = replica`: its writes wait for the acknowledgement.
*/
#include "../tap.h"
#include "harness.h"
#include "service.h"
#include "node.h"
#include "map.h"
#include "log.h"
#include "metrics.h"
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>
#include <nettle/sha2.h>
#include <jansson.h>
#include <unistd.h>

static int s_rid;

//  A request on the stream port: op and header pairs, NULL-terminated.
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

//  The next message on the stream whose op is `op` (heartbeats skipped
//  unless asked for), within timeout_ms; NULL if none.
static tiers_wire_t *
s_stream_expect (zsock_t *dealer, const char *op, int timeout_ms)
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

//  A request straight to a shard's requests port.
static tiers_wire_t *
s_shard_call (zsock_t *dealer, const char *op, const char *id, const char *body,
              int timeout_ms)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
    char rid [32];
    snprintf (rid, sizeof rid, "r%d", ++s_rid);
    tiers_wire_set_rid (request, rid);
    request->deadline = tiers_wire_now () + 5000;
    tiers_wire_set_header (request, "op", op, strlen (op));
    tiers_wire_set_header (request, "collection", "c", 1);
    if (id)
        tiers_wire_set_header (request, "id", id, strlen (id));
    if (body)
        tiers_wire_set_body (request, body, strlen (body));
    tiers_wire_t *reply = tiers_call (dealer, request, timeout_ms);
    tiers_wire_destroy (&request);
    return reply;
}

static json_t *
s_status (zsock_t *dealer)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
    char rid [32];
    snprintf (rid, sizeof rid, "r%d", ++s_rid);
    tiers_wire_set_rid (request, rid);
    tiers_wire_t *reply = tiers_call (dealer, request, 3000);
    tiers_wire_destroy (&request);
    json_t *status = reply ? json_loadb ((const char *) reply->body, reply->body_size, 0, NULL)
                           : NULL;
    tiers_wire_destroy (&reply);
    return status;
}

static void
s_hex (const uint8_t *data, size_t size, char *out)
{
    uint8_t digest [SHA256_DIGEST_SIZE];
    struct sha256_ctx sha;
    sha256_init (&sha);
    sha256_update (&sha, size, data);
    sha256_digest (&sha, sizeof digest, digest);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf (out + 2 * i, 3, "%02x", digest [i]);
}

static int s_conflicts;

static int
s_on_conflict (void *arg, int type, sqlite3_changeset_iter *iter)
{
    (void) arg; (void) type; (void) iter;
    s_conflicts++;
    return SQLITE_CHANGESET_ABORT;
}

//  Takes a snapshot through the stream into `path`; returns its sequence
//  (or -1), checking size and checksum.
static int64_t
s_snapshot (zsock_t *dealer, const char *path, const char *label)
{
    s_stream_send (dealer, "snapshot", NULL);
    tiers_wire_t *offer = s_stream_expect (dealer, "snapshot", 5000);
    ok (offer && offer->status == 200, "%s: the primary offers a snapshot", label);
    if (!offer || offer->status != 200) {
        tiers_wire_destroy (&offer);
        return -1;
    }
    long long size = atoll (tiers_wire_header (offer, "size"));
    int64_t sequence = atoll (tiers_wire_header (offer, "sequence"));
    char id [32], checksum [65];
    snprintf (id, sizeof id, "%s", tiers_wire_header (offer, "snapshot"));
    snprintf (checksum, sizeof checksum, "%s", tiers_wire_header (offer, "checksum"));
    tiers_wire_destroy (&offer);
    uint8_t *file = (uint8_t *) malloc ((size_t) size + 1);
    long long have = 0;
    bool good = true;
    while (good && have < size) {
        char offset [32];
        snprintf (offset, sizeof offset, "%lld", have);
        s_stream_send (dealer, "chunk", "snapshot", id, "offset", offset, NULL);
        tiers_wire_t *chunk = s_stream_expect (dealer, "chunk", 5000);
        good = chunk && chunk->status == 200 && chunk->body_size > 0
            && have + (long long) chunk->body_size <= size;
        if (good) {
            memcpy (file + have, chunk->body, chunk->body_size);
            have += (long long) chunk->body_size;
        }
        tiers_wire_destroy (&chunk);
    }
    char mine [65] = "";
    if (good)
        s_hex (file, (size_t) size, mine);
    ok (good && streq (mine, checksum), "%s: the snapshot's %lld bytes match its checksum",
        label, size);
    FILE *out = fopen (path, "wb");
    if (out) {
        fwrite (file, 1, (size_t) have, out);
        fclose (out);
    }
    free (file);
    return good ? sequence : -1;
}

static int64_t
s_meta (sqlite3 *db, const char *key)
{
    sqlite3_stmt *stmt = NULL;
    int64_t value = -1;
    sqlite3_prepare_v2 (db, "SELECT value FROM meta WHERE key = ?1", -1, &stmt, NULL);
    sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step (stmt) == SQLITE_ROW)
        value = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    return value;
}

static int
s_count (sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    int count = -1;
    sqlite3_prepare_v2 (db, "SELECT count(*) FROM docs", -1, &stmt, NULL);
    if (sqlite3_step (stmt) == SQLITE_ROW)
        count = sqlite3_column_int (stmt, 0);
    sqlite3_finalize (stmt);
    return count;
}

//  Receives changes until the copy reaches `sequence`; applies each to db.
//  Returns the number of changes; *chained false on a gap or bad checksum.
static int
s_follow_changes (zsock_t *dealer, sqlite3 *db, int64_t *applied, int64_t sequence,
                  bool *chained)
{
    int count = 0;
    *chained = true;
    while (*applied < sequence) {
        tiers_wire_t *change = s_stream_expect (dealer, "change", 3000);
        if (!change) {
            *chained = false;
            break;
        }
        char checksum [65];
        s_hex (change->body, change->body_size, checksum);
        int64_t previous = atoll (tiers_wire_header (change, "previous"));
        int64_t next = atoll (tiers_wire_header (change, "sequence"));
        if (previous != *applied || next <= previous
        ||  !streq (checksum, tiers_wire_header (change, "checksum")))
            *chained = false;
        sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        int rc = sqlite3changeset_apply (db, (int) change->body_size, change->body, NULL,
                                         s_on_conflict, NULL);
        //  The sequence comes in the header: stored in the same transaction,
        //  as a replica does.
        char *store = sqlite3_mprintf ("UPDATE meta SET value = %lld WHERE key = 'sequence'",
                                       (long long) next);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec (db, store, NULL, NULL, NULL);
        sqlite3_free (store);
        sqlite3_exec (db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        if (rc != SQLITE_OK || s_meta (db, "sequence") != next)
            *chained = false;
        *applied = next;
        count++;
        tiers_wire_destroy (&change);
    }
    return count;
}

static int64_t
s_metric (const char *line_start)
{
    char *text = tiers_metrics_render ();
    const char *at = text ? strstr (text, line_start) : NULL;
    int64_t value = at ? atoll (at + strlen (line_start)) : -1;
    free (text);
    return value;
}

static void
s_primary (const char *dir)
{
    char path [512];
    //  s0: the snapshot, the stream, a copy that follows it.
    zsock_t *client = zsock_new_dealer ("inproc://st-s0");
    json_t *status = s_status (client);
    const char *incarnation = json_string_value (json_object_get (status, "incarnation"));
    char inc [16] = "";
    snprintf (inc, sizeof inc, "%s", incarnation ? incarnation : "");
    ok (strlen (inc) == 12 && json_integer_value (json_object_get (status, "epoch")) == 1
     && streq (json_string_value (json_object_get (status, "role")), "primary"),
        "STATUS says incarnation, epoch 1, role primary");
    json_decref (status);
    int created = 0;
    for (int i = 0; i < 10; i++) {
        char id [16], body [64];
        snprintf (id, sizeof id, "d%d", i);
        snprintf (body, sizeof body, "{\"n\":%d}", i);
        tiers_wire_t *reply = s_shard_call (client, "put", id, body, 3000);
        created += reply && reply->status == 201;
        tiers_wire_destroy (&reply);
    }
    is_int (created, 10, "10 documents written to the primary");

    zsock_t *replica = zsock_new_dealer ("inproc://st-s0-stream");
    snprintf (path, sizeof path, "%s/copy.db", dir);
    int64_t applied = s_snapshot (replica, path, "snapshot");
    is_int ((int) applied, 10, "the snapshot is at sequence 10");
    sqlite3 *db = NULL;
    sqlite3_open (path, &db);
    is_int (s_count (db), 10, "the snapshot holds the 10 documents");
    is_int ((int) s_meta (db, "sequence"), 10, "... and its meta sequence");

    s_stream_send (replica, "follow", "name", "copy", "incarnation", inc, "epoch", "1",
                   "applied", "10", NULL);
    tiers_wire_t *answer = s_stream_expect (replica, "follow", 3000);
    ok (answer && answer->status == 200, "follow from the snapshot's sequence: 200");
    tiers_wire_destroy (&answer);
    for (int i = 10; i < 15; i++) {
        char id [16], body [64];
        snprintf (id, sizeof id, "d%d", i);
        snprintf (body, sizeof body, "{\"n\":%d}", i);
        tiers_wire_t *reply = s_shard_call (client, "put", id, body, 3000);
        tiers_wire_destroy (&reply);
    }
    tiers_wire_t *reply = s_shard_call (client, "put", "d3", "{\"n\":\"again\"}", 3000);
    ok (reply && reply->status == 200, "an update");
    tiers_wire_destroy (&reply);
    reply = s_shard_call (client, "delete", "d4", NULL, 3000);
    ok (reply && reply->status == 204, "a delete");
    tiers_wire_destroy (&reply);
    bool chained;
    s_conflicts = 0;
    int changes = s_follow_changes (replica, db, &applied, 17, &chained);
    ok (chained && changes == 7, "7 changes came, each after the last, checksums right "
        "(got %d)", changes);
    is_int (s_conflicts, 0, "... and applied to the copy without a conflict");
    is_int (s_count (db), 14, "the copy holds the primary's 14 documents");
    sqlite3_stmt *stmt = NULL;
    sqlite3_prepare_v2 (db, "SELECT body FROM docs WHERE collection = 'c' AND id = 'd3'",
                        -1, &stmt, NULL);
    const char *body = sqlite3_step (stmt) == SQLITE_ROW
                     ? (const char *) sqlite3_column_text (stmt, 0) : NULL;
    ok (body && streq (body, "{\"n\":\"again\"}"), "the copy has the update's body");
    sqlite3_finalize (stmt);

    tiers_wire_t *beat = s_stream_expect (replica, "heartbeat", 1000);
    ok (beat && streq (tiers_wire_header (beat, "sequence"), "17")
     && streq (tiers_wire_header (beat, "incarnation"), inc),
        "a heartbeat says the primary's sequence and incarnation");
    tiers_wire_destroy (&beat);
    s_stream_send (replica, "ack", "applied", "17", NULL);
    bool listed = false;
    int64_t listed_until = zclock_mono () + 5000;
    while (!listed && zclock_mono () < listed_until) {
        status = s_status (client);
        json_t *follower = json_array_get (json_object_get (status, "followers"), 0);
        listed = follower && json_integer_value (json_object_get (follower, "acked")) == 17
              && streq (json_string_value (json_object_get (follower, "name")) ?: "", "copy");
        json_decref (status);
        if (!listed)
            zclock_sleep (20);
    }
    ok (listed, "STATUS lists the follower and what it acknowledged");

    //  What a broken or hostile replica sends: answered, counted, nothing changes.
    int64_t refused = s_metric ("tiers_shard_stream_refused_total{shard=\"s0\"} ");
    zsock_t *rogue = zsock_new_dealer ("inproc://st-s0-stream");
    zstr_send (rogue, "garbage");
    answer = s_stream_expect (rogue, "error", 2000);
    ok (answer && answer->status == 400, "garbage on the stream port: 400");
    tiers_wire_destroy (&answer);
    s_stream_send (rogue, "rewind", NULL);
    answer = s_stream_expect (rogue, "rewind", 2000);
    ok (answer && answer->status == 400, "an unknown op: 400");
    tiers_wire_destroy (&answer);
    s_stream_send (rogue, "follow", "name", "rogue", NULL);
    answer = s_stream_expect (rogue, "follow", 2000);
    ok (answer && answer->status == 400, "follow without a position: 400");
    tiers_wire_destroy (&answer);
    s_stream_send (rogue, "follow", "name", "rogue", "incarnation", "000000000000",
                   "epoch", "1", "applied", "17", NULL);
    answer = s_stream_expect (rogue, "follow", 2000);
    ok (answer && answer->status == 409, "follow with another incarnation: 409 (snapshot)");
    tiers_wire_destroy (&answer);
    s_stream_send (rogue, "follow", "name", "rogue", "incarnation", inc,
                   "epoch", "0", "applied", "17", NULL);
    answer = s_stream_expect (rogue, "follow", 2000);
    ok (answer && answer->status == 409, "follow with a lower epoch: 409 (snapshot)");
    tiers_wire_destroy (&answer);
    s_stream_send (rogue, "follow", "name", "rogue", "incarnation", inc,
                   "epoch", "1", "applied", "99", NULL);
    answer = s_stream_expect (rogue, "follow", 2000);
    ok (answer && answer->status == 409, "follow from ahead of the primary: 409");
    tiers_wire_destroy (&answer);
    s_stream_send (rogue, "chunk", "snapshot", "99", "offset", "0", NULL);
    answer = s_stream_expect (rogue, "chunk", 2000);
    ok (answer && answer->status == 404, "a chunk of no snapshot: 404");
    tiers_wire_destroy (&answer);
    s_stream_send (rogue, "follow", "name", "rogue", "incarnation", inc,
                   "epoch", "1", "applied", "17", NULL);
    answer = s_stream_expect (rogue, "follow", 2000);
    ok (answer && answer->status == 200, "a good follow");
    tiers_wire_destroy (&answer);
    s_stream_send (rogue, "ack", "applied", "18", NULL);
    answer = s_stream_expect (rogue, "follow", 2000);
    ok (answer && answer->status == 409, "an ack of a change never sent: 409");
    tiers_wire_destroy (&answer);
    ok (s_metric ("tiers_shard_stream_refused_total{shard=\"s0\"} ") - refused >= 4,
        "the refusals are counted");
    zsock_destroy (&rogue);
    reply = s_shard_call (client, "get", "d3", NULL, 3000);
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "{\"n\":\"again\"}"),
        "the primary serves on, unchanged");
    tiers_wire_destroy (&reply);

    //  The log keeps the last 50 changes: a follower behind them must
    //  take a snapshot; one inside them catches up. The copy applies and
    //  acknowledges every 10 puts, as a replica does (a follower silent
    //  for FOLLOWER_SILENT_MS, 3 s, is forgotten, and 60 fsync'd puts take
    //  that long on a loaded machine).
    s_conflicts = 0;
    changes = 0;
    bool all_chained = true;
    for (int i = 0; i < 60; i++) {
        char id [16];
        snprintf (id, sizeof id, "e%d", i);
        reply = s_shard_call (client, "put", id, "{}", 3000);
        tiers_wire_destroy (&reply);
        if ((i + 1) % 10 == 0) {
            changes += s_follow_changes (replica, db, &applied, 17 + i + 1, &chained);
            all_chained &= chained;
            char position [32];
            snprintf (position, sizeof position, "%" PRId64, applied);
            s_stream_send (replica, "ack", "applied", position, NULL);
        }
    }
    ok (all_chained && changes == 60 && s_conflicts == 0 && s_count (db) == 74,
        "the follower got the 60 commits as they came (%d), its copy matches", changes);
    zsock_t *late = zsock_new_dealer ("inproc://st-s0-stream");
    s_stream_send (late, "follow", "name", "late", "incarnation", inc, "epoch", "1",
                   "applied", "17", NULL);
    answer = s_stream_expect (late, "follow", 2000);
    ok (answer && answer->status == 409, "a follower behind the log's 50 changes: 409");
    tiers_wire_destroy (&answer);
    s_stream_send (late, "follow", "name", "late", "incarnation", inc, "epoch", "1",
                   "applied", "40", NULL);
    answer = s_stream_expect (late, "follow", 2000);
    ok (answer && answer->status == 200, "one inside the log: 200");
    tiers_wire_destroy (&answer);
    int caught = 0;
    tiers_wire_t *change;
    int64_t at = 40;
    bool in_order = true;
    while (at < 77 && (change = s_stream_expect (late, "change", 2000))) {
        in_order &= atoll (tiers_wire_header (change, "previous")) == at;
        at = atoll (tiers_wire_header (change, "sequence"));
        caught++;
        tiers_wire_destroy (&change);
    }
    ok (in_order && caught == 37 && at == 77, "... and catches up from the log: %d changes "
        "in order", caught);
    zsock_destroy (&late);

    //  A fence (what tiers promote sends): a higher epoch exists. The copy
    //  speaks first, to be heard within FOLLOWER_SILENT_MS of the checks.
    s_stream_send (replica, "ack", "applied", "77", NULL);
    tiers_wire_t *fence = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (fence, "f1");
    tiers_wire_set_header (fence, "op", "fence", 5);
    tiers_wire_set_header (fence, "epoch", "x", 1);
    reply = tiers_call (client, fence, 3000);
    ok (reply && reply->status == 400, "fence: a bad epoch is refused (400)");
    tiers_wire_destroy (&reply);
    tiers_wire_set_header (fence, "epoch", "1", 1);
    tiers_wire_set_header (fence, "by", "s0r9", 4);
    reply = tiers_call (client, fence, 3000);
    ok (reply && reply->status == 200 && streq (tiers_wire_header (reply, "role"), "primary"),
        "fence: an epoch not above its own changes nothing");
    tiers_wire_destroy (&reply);
    tiers_wire_set_header (fence, "epoch", "2", 1);
    reply = tiers_call (client, fence, 3000);
    ok (reply && reply->status == 200 && streq (tiers_wire_header (reply, "role"), "fenced")
     && streq (tiers_wire_header (reply, "sequence"), "77"),
        "fence: epoch 2 fences it; the answer says its sequence");
    tiers_wire_destroy (&reply);
    tiers_wire_destroy (&fence);
    reply = s_shard_call (client, "put", "f1", "{}", 3000);
    ok (reply && reply->status == 421, "fenced: a write is refused (421)");
    tiers_wire_destroy (&reply);
    reply = s_shard_call (client, "get", "d3", NULL, 3000);
    ok (reply && reply->status == 421, "fenced: a read too");
    tiers_wire_destroy (&reply);
    //  Heartbeats sent before the fence may still wait in the socket:
    //  the first that came after it says so.
    int64_t beats_until = zclock_mono () + 2000;
    answer = NULL;
    while (zclock_mono () < beats_until) {
        answer = s_stream_expect (replica, "heartbeat", (int) (beats_until - zclock_mono ()));
        if (!answer || tiers_wire_header (answer, "fenced"))
            break;
        tiers_wire_destroy (&answer);
    }
    ok (answer && answer->status == 200 && streq (tiers_wire_header (answer, "fenced") ?: "", "2"),
        "fenced: its follower stays (to catch up), its heartbeats say fenced");
    tiers_wire_destroy (&answer);
    zsock_t *newcomer = zsock_new_dealer ("inproc://st-s0-stream");
    s_stream_send (newcomer, "snapshot", NULL);
    answer = s_stream_expect (newcomer, "snapshot", 2000);
    ok (answer && answer->status == 421, "fenced: no snapshot of it is served (421)");
    tiers_wire_destroy (&answer);
    s_stream_send (newcomer, "follow", "name", "new", "incarnation", inc, "epoch", "2",
                   "applied", "77", NULL);
    answer = s_stream_expect (newcomer, "follow", 2000);
    ok (answer && answer->status == 421, "fenced: a follower of the new epoch is sent away (421)");
    tiers_wire_destroy (&answer);
    zsock_destroy (&newcomer);
    char fence_file [600];
    snprintf (fence_file, sizeof fence_file, "%s/data/s0.db.fenced", dir);
    ok (access (fence_file, F_OK) == 0, "fenced: the fence is written to s0.db.fenced");
    status = s_status (client);
    ok (streq (json_string_value (json_object_get (status, "role")) ?: "", "fenced"),
        "fenced: STATUS says so");
    json_decref (status);
    sqlite3_close (db);
    zsock_destroy (&replica);
    zsock_destroy (&client);
}

static void
s_ack_replica (const char *dir)
{
    char path [512];
    zsock_t *client = zsock_new_dealer ("inproc://st-s1");
    json_t *status = s_status (client);
    char inc [16] = "";
    snprintf (inc, sizeof inc, "%s",
              json_string_value (json_object_get (status, "incarnation")) ?: "");
    ok (streq (json_string_value (json_object_get (status, "ack")) ?: "", "replica"),
        "ack = replica: STATUS says so");
    json_decref (status);
    tiers_wire_t *reply = s_shard_call (client, "put", "a1", "{}", 3000);
    ok (reply && reply->status == 503
     && streq (tiers_wire_header (reply, "outcome") ?: "", "not-applied")
     && tiers_wire_header (reply, "retry-after"),
        "ack = replica, no replica: 503 not-applied, Retry-After");
    tiers_wire_destroy (&reply);
    reply = s_shard_call (client, "get", "a1", NULL, 3000);
    ok (reply && reply->status == 404, "... and it was not applied");
    tiers_wire_destroy (&reply);

    zsock_t *replica = zsock_new_dealer ("inproc://st-s1-stream");
    snprintf (path, sizeof path, "%s/copy1.db", dir);
    int64_t applied = s_snapshot (replica, path, "ack");
    char text [32];
    snprintf (text, sizeof text, "%" PRId64, applied);
    s_stream_send (replica, "follow", "name", "r1", "incarnation", inc, "epoch", "1",
                   "applied", text, NULL);
    tiers_wire_t *answer = s_stream_expect (replica, "follow", 3000);
    ok (answer && answer->status == 200, "ack: a replica follows");
    tiers_wire_destroy (&answer);

    //  A write waits for the replica's ack.
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (request, "w1");
    request->deadline = tiers_wire_now () + 5000;
    tiers_wire_set_header (request, "op", "put", 3);
    tiers_wire_set_header (request, "collection", "c", 1);
    tiers_wire_set_header (request, "id", "a2", 2);
    tiers_wire_set_body (request, "{\"a\":2}", 7);
    tiers_wire_send (request, zsock_resolve (client), NULL);
    tiers_wire_destroy (&request);
    tiers_wire_t *change = s_stream_expect (replica, "change", 2000);
    ok (change != NULL, "ack: the write's change reaches the replica");
    zmq_pollitem_t item = { zsock_resolve (client), 0, ZMQ_POLLIN, 0 };
    ok (zmq_poll (&item, 1, 100) == 0, "ack: ... and the write is not answered yet");
    //  (ack_timeout is 1500 ms: the ack below has that long to get there)
    if (change) {
        s_stream_send (replica, "ack", "applied", tiers_wire_header (change, "sequence"), NULL);
        tiers_wire_destroy (&change);
    }
    reply = tiers_wire_recv (zsock_resolve (client), NULL, NULL);
    ok (reply && reply->status == 201, "ack: answered 201 once the replica acknowledged");
    tiers_wire_destroy (&reply);

    //  A replica that does not acknowledge: 503, outcome unknown, and the
    //  write is on the primary.
    int64_t timeouts = s_metric ("tiers_shard_ack_timeouts_total{shard=\"s1\"} ");
    int64_t started = zclock_mono ();
    reply = s_shard_call (client, "put", "a3", "{\"a\":3}", 5000);
    int64_t waited = zclock_mono () - started;
    ok (reply && reply->status == 503
     && streq (tiers_wire_header (reply, "outcome") ?: "", "unknown")
     && waited >= 1400,
        "ack: no acknowledgement within ack_timeout: 503 outcome unknown (after %d ms)",
        (int) waited);
    tiers_wire_destroy (&reply);
    is_int ((int) (s_metric ("tiers_shard_ack_timeouts_total{shard=\"s1\"} ") - timeouts), 1,
        "ack: the timeout is counted");
    reply = s_shard_call (client, "get", "a3", NULL, 3000);
    ok (reply && reply->status == 200, "ack: ... and the write is on the primary");
    tiers_wire_destroy (&reply);

    //  A follower that knows a higher epoch: a replica was promoted, this
    //  copy fences itself.
    s_stream_send (replica, "follow", "name", "r1", "incarnation", inc, "epoch", "5",
                   "applied", text, NULL);
    answer = s_stream_expect (replica, "follow", 3000);
    ok (answer && answer->status == 421, "a follower of epoch 5: 421");
    tiers_wire_destroy (&answer);
    status = s_status (client);
    ok (streq (json_string_value (json_object_get (status, "role")) ?: "", "fenced"),
        "... and the shard fenced itself");
    json_decref (status);
    zsock_destroy (&replica);
    zsock_destroy (&client);
}

int
main (void)
{
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    const char *dir = h_tmpdir ();
    char *text = zsys_sprintf (
        "cluster\n"
        "    name = stream\n"
        "    data = %s/data\n"
        "    log = warn\n"
        "node = box\n"
        "    shard = s0\n"
        "        bind = inproc://st-s0\n"
        "        bind.stream = inproc://st-s0-stream\n"
        "        changesets = always\n"
        "        slots = 0-511\n"
        "        log_changes = 50\n"
        "    shard = s1\n"
        "        bind = inproc://st-s1\n"
        "        bind.stream = inproc://st-s1-stream\n"
        "        changesets = always\n"
        "        slots = 512-1023\n"
        "        ack = replica\n"
        "        ack_timeout = 1500ms\n", dir);
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "stream.map", &errors);
    ok (map != NULL, "a map of shards with stream ports loads");
    if (!map)
        diag ("%s", errors);
    free (errors);
    tiers_node_t *node = map ? tiers_node_new (map, NULL) : NULL;
    bool started = node && tiers_node_start (node) == 0;
    ok (started, "the shards start");
    if (node && !started)
        diag ("%s", tiers_node_error (node));
    if (started) {
        s_primary (dir);
        s_ack_replica (dir);
    }
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);
    free (text);
    return done_testing ();
}
