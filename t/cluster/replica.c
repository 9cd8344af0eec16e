/*  replica.c — the replica (storage/replica.c, doc/replication.md) against
    a primary that this test plays by hand.

    The test holds a real shard file (the shard's schema, made with real
    SQLite) and a real ROUTER at the shard's `stream` endpoint: it makes
    changesets of its writes with the session extension and answers
    follow, snapshot and chunk as the protocol says — or as a broken or
    hostile primary would. The replica is the real actor, reading and
    writing its own real file; the test reads it through its `requests`
    port (get, list, STATUS) and looks into its file.

    Runs twice: the replica as a thread of this process (inproc), and as a
    `tiers run` process of its own (tcp on loopback), restarted with
    SIGTERM and killed with SIGKILL.
*/
#include "../tap.h"
#include "harness.h"
#include "service.h"
#include "node.h"
#include "map.h"
#include "log.h"
#include "metrics.h"
#include "sock.h"
#include "storage/replica.h"
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>
#include <nettle/sha2.h>
#include <jansson.h>
#include <inttypes.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define INC         "4f2a9c1b7e3d"      //  the primary's incarnation
#define LOG_MAX     4096

//  --------------------------------------------------------------------------
//  The primary, played by the test

typedef struct {
    int64_t previous, sequence, committed;
    void *body;
    int size;
} change_t;

typedef struct {
    char inc [16];              //  its file's incarnation
    char *dir, *path, *snap_path;
    sqlite3 *db;
    zsock_t *router;
    int64_t sequence, committed;
    int64_t epoch;
    change_t log [LOG_MAX];
    size_t count;
    int64_t log_from;           //  follows from before this are told 409
    zframe_t *peer;             //  the replica's latest identity
    bool following;
    bool quiet;                 //  no heartbeats, no changes sent
    bool hold_snapshot;         //  a snapshot request waits for p_release
    bool hold_follow;           //  ... a follow too
    tiers_wire_t *follow_held;
    bool hold_chunks;           //  chunk requests wait for p_release
    bool snapshot_held;
    int64_t held [16];          //  offsets of the chunks asked for, held
    size_t held_count;
    size_t chunk;               //  bytes a chunk answer carries at most
    int64_t beat_at;
    //  What the replica did
    int follows, snapshots, chunks, acks, most_chunks_waiting;
    int64_t acked;
    char follow_incarnation [32];
    int64_t follow_epoch, follow_applied;
    uint64_t snap_id;
    int64_t snap_size;
    int snap_fd;
} primary_t;

static void
s_exec (sqlite3 *db, const char *sql)
{
    char *error = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &error) != SQLITE_OK) {
        diag ("sql failed: %s: %s", sql, error ? error : "?");
        sqlite3_free (error);
        abort ();
    }
}

static primary_t *
p_new (const char *dir, const char *endpoint, const char *cluster, const char *inc,
       int64_t epoch)
{
    primary_t *p = (primary_t *) zmalloc (sizeof *p);
    snprintf (p->inc, sizeof p->inc, "%s", inc);
    p->dir = zsys_sprintf ("%s/primary-%s", dir, inc);
    zsys_dir_create ("%s", p->dir);
    p->path = zsys_sprintf ("%s/s0.db", p->dir);
    p->snap_path = zsys_sprintf ("%s/s0.snapshot.db", p->dir);
    p->epoch = epoch;
    p->chunk = 1024 * 1024;
    p->snap_fd = -1;
    unlink (p->path);
    assert (sqlite3_open (p->path, &p->db) == SQLITE_OK);
    s_exec (p->db, "PRAGMA journal_mode=WAL");
    //  The schema of storage/shard.c's s_writer_open.
    s_exec (p->db,
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS docs ("
        "  collection TEXT, id TEXT,"
        "  version INTEGER NOT NULL, updated INTEGER NOT NULL,"
        "  body TEXT NOT NULL,"
        "  PRIMARY KEY (collection, id)) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS meta ("
        "  key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('sequence', 0);"
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('fences', 0);"
        "CREATE TABLE IF NOT EXISTS identity ("
        "  name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS idempotency ("
        "  collection TEXT, id TEXT, key TEXT,"
        "  fingerprint BLOB NOT NULL, status INTEGER NOT NULL,"
        "  version INTEGER NOT NULL, tag TEXT NOT NULL,"
        "  updated INTEGER NOT NULL, error TEXT, created INTEGER NOT NULL,"
        "  PRIMARY KEY (collection, id, key)) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency (created);"
        "PRAGMA user_version = 2;"
        "COMMIT;");
    char *sql = sqlite3_mprintf (
        "INSERT INTO identity (name, value) VALUES ('cluster', %Q), ('shard', 's0'),"
        " ('incarnation', %Q), ('created', '1');"
        "INSERT INTO meta (key, value) SELECT 'epoch', %lld WHERE %lld > 1", cluster, inc,
        (long long) epoch, (long long) epoch);
    s_exec (p->db, sql);
    sqlite3_free (sql);
    char *why = NULL;
    p->router = tiers_sock_bind (ZMQ_ROUTER, endpoint, &why);
    if (!p->router)
        diag ("cannot bind %s: %s", endpoint, why);
    assert (p->router);
    return p;
}

static void
p_destroy (primary_t **p_p)
{
    primary_t *p = *p_p;
    for (size_t i = 0; i < p->count; i++)
        free (p->log [i].body);
    tiers_wire_destroy (&p->follow_held);
    zframe_destroy (&p->peer);
    zsock_destroy (&p->router);
    sqlite3_close (p->db);
    if (p->snap_fd >= 0)
        close (p->snap_fd);
    free (p->dir);
    free (p->path);
    free (p->snap_path);
    free (p);
    *p_p = NULL;
}

static void
p_send (primary_t *p, tiers_wire_t **msg_p)
{
    if (p->peer) {
        zmsg_t *envelope = zmsg_new ();
        zmsg_append (envelope, &(zframe_t *) { zframe_dup (p->peer) });
        tiers_wire_send (*msg_p, zsock_resolve (p->router), envelope);
        zmsg_destroy (&envelope);
    }
    tiers_wire_destroy (msg_p);
}

static tiers_wire_t *
p_reply (const char *op, int status)
{
    tiers_wire_t *reply = tiers_wire_new (TIERS_WIRE_REPLY);
    reply->status = (uint16_t) status;
    tiers_wire_set_header (reply, "op", op, strlen (op));
    return reply;
}

static void
s_sha_hex (const void *data, size_t size, char hex [65])
{
    struct sha256_ctx sha;
    uint8_t digest [SHA256_DIGEST_SIZE];
    sha256_init (&sha);
    sha256_update (&sha, size, (const uint8_t *) data);
    sha256_digest (&sha, SHA256_DIGEST_SIZE, digest);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf (hex + 2 * i, 3, "%02x", digest [i]);
}

//  A change as the shard sends it; the fields may be forged.
typedef struct {
    const char *shard, *incarnation, *checksum;
    int64_t epoch, previous, sequence;
    const void *body;
    int size;
    bool no_sequence;
} forged_t;

static void
p_send_change (primary_t *p, const forged_t *f)
{
    tiers_wire_t *msg = p_reply ("change", 200);
    char hex [65];
    s_sha_hex (f->body, (size_t) f->size, hex);
    tiers_wire_set_header (msg, "shard", f->shard, strlen (f->shard));
    tiers_wire_set_header (msg, "incarnation", f->incarnation, strlen (f->incarnation));
    tiers_wire_set_headerf (msg, "epoch", "%" PRId64, f->epoch);
    tiers_wire_set_headerf (msg, "previous", "%" PRId64, f->previous);
    if (!f->no_sequence)
        tiers_wire_set_headerf (msg, "sequence", "%" PRId64, f->sequence);
    tiers_wire_set_headerf (msg, "committed", "%" PRId64, tiers_wire_now ());
    const char *checksum = f->checksum ? f->checksum : hex;
    tiers_wire_set_header (msg, "checksum", checksum, strlen (checksum));
    tiers_wire_set_body (msg, f->body, (size_t) f->size);
    p_send (p, &msg);
}

static void
p_send_logged (primary_t *p, const change_t *change)
{
    forged_t f = { "s0", p->inc, NULL, p->epoch, change->previous, change->sequence,
                   change->body, change->size, false };
    p_send_change (p, &f);
}

//  One transaction of the primary: `count` documents put (body NULL: the
//  document deleted), each taking the next version; its changeset logged
//  and, while the replica follows, sent.
static void
p_write (primary_t *p, const char *const *ids, const char *const *bodies, int count)
{
    sqlite3_session *session = NULL;
    assert (sqlite3session_create (p->db, "main", &session) == SQLITE_OK);
    assert (sqlite3session_attach (session, NULL) == SQLITE_OK);
    s_exec (p->db, "BEGIN IMMEDIATE");
    int64_t previous = p->sequence;
    int64_t now = tiers_wire_now ();
    for (int i = 0; i < count; i++) {
        char *sql = bodies [i]
            ? sqlite3_mprintf ("INSERT INTO docs (collection, id, version, updated, body)"
                               " VALUES ('c', %Q, %lld, %lld, %Q) ON CONFLICT (collection, id)"
                               " DO UPDATE SET version = excluded.version, updated ="
                               " excluded.updated, body = excluded.body", ids [i],
                               (long long) p->sequence + 1, (long long) now, bodies [i])
            : sqlite3_mprintf ("DELETE FROM docs WHERE collection = 'c' AND id = %Q",
                               ids [i]);
        s_exec (p->db, sql);
        sqlite3_free (sql);
        p->sequence++;
    }
    char *sql = sqlite3_mprintf ("UPDATE meta SET value = %lld WHERE key = 'sequence'",
                                 (long long) p->sequence);
    s_exec (p->db, sql);
    sqlite3_free (sql);
    change_t *change = &p->log [p->count++];
    assert (p->count < LOG_MAX);
    assert (sqlite3session_changeset (session, &change->size, &change->body) == SQLITE_OK);
    s_exec (p->db, "COMMIT");
    sqlite3session_delete (session);
    void *copy = malloc ((size_t) change->size);
    memcpy (copy, change->body, (size_t) change->size);
    sqlite3_free (change->body);
    change->body = copy;
    change->previous = previous;
    change->sequence = p->sequence;
    change->committed = p->committed = now;
    if (p->following && !p->quiet)
        p_send_logged (p, change);
}

static void
p_put (primary_t *p, const char *id, const char *body)
{
    p_write (p, &id, &body, 1);
}

static void
p_follow (primary_t *p, tiers_wire_t *msg)
{
    p->follows++;
    const char *incarnation = tiers_wire_header (msg, "incarnation");
    snprintf (p->follow_incarnation, sizeof p->follow_incarnation, "%s",
              incarnation ? incarnation : "?");
    p->follow_epoch = atoll (tiers_wire_header (msg, "epoch") ?: "-1");
    p->follow_applied = atoll (tiers_wire_header (msg, "applied") ?: "-1");
    if (!streq (p->follow_incarnation, p->inc) || p->follow_epoch != p->epoch
    ||  p->follow_applied > p->sequence || p->follow_applied < p->log_from) {
        tiers_wire_t *reply = p_reply ("follow", 409);
        tiers_wire_set_header (reply, "error", "take a snapshot", 15);
        p_send (p, &reply);
        p->following = false;
        return;
    }
    tiers_wire_t *reply = p_reply ("follow", 200);
    tiers_wire_set_header (reply, "incarnation", p->inc, strlen (p->inc));
    tiers_wire_set_headerf (reply, "epoch", "%" PRId64, p->epoch);
    tiers_wire_set_headerf (reply, "sequence", "%" PRId64, p->sequence);
    p_send (p, &reply);
    p->following = true;
    for (size_t i = 0; i < p->count; i++)
        if (p->log [i].previous >= p->follow_applied)
            p_send_logged (p, &p->log [i]);
}

static void
p_snapshot (primary_t *p)
{
    p->following = false;
    unlink (p->snap_path);
    char *sql = sqlite3_mprintf ("VACUUM INTO %Q", p->snap_path);
    s_exec (p->db, sql);
    sqlite3_free (sql);
    if (p->snap_fd >= 0)
        close (p->snap_fd);
    p->snap_fd = open (p->snap_path, O_RDONLY);
    struct stat st;
    assert (p->snap_fd >= 0 && fstat (p->snap_fd, &st) == 0);
    p->snap_size = st.st_size;
    uint8_t *data = (uint8_t *) malloc ((size_t) st.st_size);
    assert (pread (p->snap_fd, data, (size_t) st.st_size, 0) == st.st_size);
    char hex [65];
    s_sha_hex (data, (size_t) st.st_size, hex);
    free (data);
    tiers_wire_t *reply = p_reply ("snapshot", 200);
    tiers_wire_set_headerf (reply, "snapshot", "%" PRIu64, ++p->snap_id);
    tiers_wire_set_headerf (reply, "size", "%" PRId64, p->snap_size);
    tiers_wire_set_header (reply, "checksum", hex, 64);
    tiers_wire_set_headerf (reply, "sequence", "%" PRId64, p->sequence);
    tiers_wire_set_header (reply, "incarnation", p->inc, strlen (p->inc));
    tiers_wire_set_headerf (reply, "epoch", "%" PRId64, p->epoch);
    p_send (p, &reply);
}

static void
p_chunk (primary_t *p, uint64_t id, int64_t offset)
{
    if (id != p->snap_id || offset < 0 || offset >= p->snap_size) {
        tiers_wire_t *reply = p_reply ("chunk", 404);
        p_send (p, &reply);
        return;
    }
    size_t want = (size_t) (p->snap_size - offset) < p->chunk
                ? (size_t) (p->snap_size - offset) : p->chunk;
    uint8_t *data = (uint8_t *) malloc (want);
    assert (pread (p->snap_fd, data, want, offset) == (ssize_t) want);
    tiers_wire_t *reply = p_reply ("chunk", 200);
    tiers_wire_set_headerf (reply, "snapshot", "%" PRIu64, id);
    tiers_wire_set_headerf (reply, "offset", "%" PRId64, offset);
    tiers_wire_set_body (reply, data, want);
    free (data);
    p_send (p, &reply);
}

//  The held snapshot and chunk requests, answered now.
static void
p_release (primary_t *p)
{
    p->hold_snapshot = p->hold_chunks = false;
    if (p->snapshot_held)
        p_snapshot (p);
    p->snapshot_held = false;
    p->hold_follow = false;
    if (p->follow_held) {
        p->follows--;               //  counted when it came
        p_follow (p, p->follow_held);
        tiers_wire_destroy (&p->follow_held);
    }
    for (size_t i = 0; i < p->held_count; i++)
        p_chunk (p, p->snap_id, p->held [i]);
    p->held_count = 0;
}

//  Answers the replica for `ms`, heartbeats every 200 ms while it follows.
static void
p_serve (primary_t *p, int ms)
{
    int64_t until = zclock_mono () + ms;
    do {
        int64_t now = zclock_mono ();
        if (p->following && !p->quiet && now >= p->beat_at) {
            tiers_wire_t *beat = p_reply ("heartbeat", 200);
            tiers_wire_set_header (beat, "incarnation", p->inc, strlen (p->inc));
            tiers_wire_set_headerf (beat, "epoch", "%" PRId64, p->epoch);
            tiers_wire_set_headerf (beat, "sequence", "%" PRId64, p->sequence);
            tiers_wire_set_headerf (beat, "committed", "%" PRId64, p->committed);
            p_send (p, &beat);
            p->beat_at = now + 200;
        }
        zmq_pollitem_t item = { zsock_resolve (p->router), 0, ZMQ_POLLIN, 0 };
        long wait = (long) (until - now);
        if (zmq_poll (&item, 1, wait < 0 ? 0 : wait > 50 ? 50 : wait) <= 0)
            continue;
        int chunks = 0;
        while (zsock_events (p->router) & ZMQ_POLLIN) {
            zmsg_t *route = NULL;
            tiers_wire_t *msg = tiers_wire_recv (zsock_resolve (p->router), &route, NULL);
            zframe_t *identity = route ? zmsg_first (route) : NULL;
            if (identity && (!p->peer || !zframe_eq (identity, p->peer))) {
                zframe_destroy (&p->peer);
                p->peer = zframe_dup (identity);
            }
            const char *op = msg ? tiers_wire_header (msg, "op") : NULL;
            if (op && streq (op, "follow") && p->hold_follow) {
                p->follows++;
                tiers_wire_destroy (&p->follow_held);
                p->follow_held = msg;
                msg = NULL;
            }
            else
            if (op && streq (op, "follow"))
                p_follow (p, msg);
            else
            if (op && streq (op, "ack")) {
                p->acks++;
                p->acked = atoll (tiers_wire_header (msg, "applied") ?: "-1");
            }
            else
            if (op && streq (op, "snapshot")) {
                p->snapshots++;
                if (p->hold_snapshot)
                    p->snapshot_held = true;
                else
                    p_snapshot (p);
            }
            else
            if (op && streq (op, "chunk")) {
                chunks++;
                p->chunks++;
                int64_t offset = atoll (tiers_wire_header (msg, "offset") ?: "-1");
                uint64_t id = (uint64_t) atoll (tiers_wire_header (msg, "snapshot") ?: "0");
                if (p->hold_chunks && id == p->snap_id && p->held_count < 16)
                    p->held [p->held_count++] = offset;
                else
                if (!p->hold_chunks)
                    p_chunk (p, id, offset);
            }
            tiers_wire_destroy (&msg);
            zmsg_destroy (&route);
        }
        if (chunks > p->most_chunks_waiting)
            p->most_chunks_waiting = chunks;
    } while (zclock_mono () < until);
}


//  --------------------------------------------------------------------------
//  The replica: a thread of this process, or a `tiers run` process

typedef struct {
    bool split;                 //  a process of its own
    tiers_map_t *map;
    char *map_path, *log, *tiers;
    const char *endpoint;       //  its requests port
    tiers_actor_args_t args;
    zactor_t *actor;
    pid_t pid;
    zsock_t *client;
    char *file;                 //  its <data>/r1.db
} replica_t;

static int
r_start (replica_t *r)
{
    zsock_destroy (&r->client);
    r->client = zsock_new_dealer (r->endpoint);
    if (r->split) {
        char *argv [] = { r->tiers, (char *) "run", (char *) "-m", r->map_path,
                          (char *) "-n", (char *) "db2", NULL };
        r->pid = h_spawn (argv, r->log);
        return h_wait_for_line (r->log, "; ready", 30000);     //  as lib.sh
    }
    r->args.map = r->map;
    r->args.entry = tiers_map_find (r->map, "r1");
    snprintf (r->args.name, sizeof r->args.name, "r1");
    //  The inproc endpoint of the last run is released by libzmq's reaper
    //  a moment after it stopped: try again for a while.
    for (int attempt = 0; attempt < 40; attempt++) {
        r->actor = zactor_new (tiers_replica_kind.run, &r->args);
        char *answer = r->actor ? zstr_recv (r->actor) : NULL;
        bool good = answer && streq (answer, "OK");
        if (!good && attempt == 39)
            diag ("the replica did not start: %s", answer ? answer : "?");
        zstr_free (&answer);
        if (good)
            return 0;
        zactor_destroy (&r->actor);
        zclock_sleep (50);
    }
    return -1;
}

//  Stops it: SIGTERM (or $TERM), or SIGKILL when `kill` (split only).
static void
r_stop (replica_t *r, bool kill)
{
    if (r->split)
        h_stop (r->pid, kill ? SIGKILL : SIGTERM, 5000);
    else
        zactor_destroy (&r->actor);
}

static tiers_wire_t *
r_request (const char *op, const char *id, ...)
{
    static int rid;
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
    char text [32];
    snprintf (text, sizeof text, "q%d", ++rid);
    tiers_wire_set_rid (request, text);
    request->deadline = tiers_wire_now () + 5000;
    tiers_wire_set_header (request, "op", op, strlen (op));
    tiers_wire_set_header (request, "collection", "c", 1);
    if (id)
        tiers_wire_set_header (request, "id", id, strlen (id));
    va_list args;
    va_start (args, id);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        tiers_wire_set_header (request, key, value, strlen (value));
    }
    va_end (args);
    return request;
}

//  Sends `request` (taken) and waits for its answer, serving the primary
//  meanwhile.
static tiers_wire_t *
r_call (replica_t *r, primary_t *p, tiers_wire_t *request, int timeout_ms)
{
    tiers_wire_send (request, zsock_resolve (r->client), NULL);
    tiers_wire_destroy (&request);
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        if (zsock_events (r->client) & ZMQ_POLLIN)
            return tiers_wire_recv (zsock_resolve (r->client), NULL, NULL);
        if (p)
            p_serve (p, 5);
        else
            zclock_sleep (5);
    }
    return NULL;
}

static json_t *
r_status (replica_t *r, char **text_p)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
    tiers_wire_set_rid (request, "status");
    tiers_wire_t *reply = tiers_call (r->client, request, 2000);
    tiers_wire_destroy (&request);
    json_t *status = reply ? json_loadb ((const char *) reply->body, reply->body_size, 0,
                                         NULL) : NULL;
    if (text_p)
        *text_p = reply ? strdup ((const char *) reply->body) : NULL;
    tiers_wire_destroy (&reply);
    return status;
}

//  Serves the primary until the replica's STATUS says `state` and
//  `applied` (-1: any), or timeout.
static bool
r_wait (replica_t *r, primary_t *p, const char *state, int64_t applied, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        p_serve (p, 30);
        json_t *status = r_status (r, NULL);
        const char *now = status ? json_string_value (json_object_get (status, "state")) : NULL;
        bool there = now && streq (now, state) && (applied < 0
                  || json_integer_value (json_object_get (status, "applied")) == applied);
        json_decref (status);
        if (there)
            return true;
    }
    json_t *status = r_status (r, NULL);
    char *text = status ? json_dumps (status, JSON_COMPACT) : NULL;
    diag ("replica is %s", text ? text : "(no answer)");
    free (text);
    json_decref (status);
    return false;
}

//  A counter of the replica's (this process only: inproc).
static uint64_t
r_counter (const char *name)
{
    return tiers_counter_value (tiers_metrics_counter (name, "replica=\"r1\"", NULL));
}

//  What the replica's file says, read behind its back.
static char *
r_file_body (replica_t *r, const char *id)
{
    sqlite3 *db = NULL;
    char *body = NULL;
    if (sqlite3_open_v2 (r->file, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *stmt = NULL;
        sqlite3_prepare_v2 (db, "SELECT body FROM docs WHERE collection = 'c' AND id = ?1",
                            -1, &stmt, NULL);
        sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
        if (stmt && sqlite3_step (stmt) == SQLITE_ROW)
            body = strdup ((const char *) sqlite3_column_text (stmt, 0));
        sqlite3_finalize (stmt);
    }
    sqlite3_close (db);
    return body;
}


//  --------------------------------------------------------------------------
//  The scenarios

static void
s_big_docs (primary_t *p, int count, size_t size)
{
    char *body = (char *) malloc (size + 16);
    for (int i = 0; i < count; i++) {
        //  Bytes that do not compress away in the file: a page each.
        int at = snprintf (body, 16, "{\"b\":\"");
        for (size_t j = at; j < size; j++)
            body [j] = "abcdefghijklmnopqrstuvwxyz0123456789" [(j * 7919 + i * 104729) % 36];
        strcpy (body + size, "\"}");
        char id [16];
        snprintf (id, sizeof id, "big%d", i);
        p_put (p, id, body);
    }
    free (body);
}

//  Every scenario, with the replica `r` (started and stopped here) and
//  the primary `p`.
static void
s_scenarios (replica_t *r, primary_t *p, const char *L, const char *r2_stream,
             const char *r2_requests)
{
    //  From empty: the snapshot in chunks (4 asked at a time), then the
    //  follow, then streaming.
    s_big_docs (p, 5, 1000 * 1000);
    p_put (p, "a", "{\"n\":1}");
    p_put (p, "b", "{\"n\":2}");
    p->hold_chunks = true;
    ok (r_start (r) == 0, "%s: the replica starts without a file", L);
    int64_t until = zclock_mono () + 3000;
    while (zclock_mono () < until && p->held_count < 4)
        p_serve (p, 20);
    p_serve (p, 300);
    is_int ((long long) p->held_count, 4, "%s: 4 chunk requests outstanding at once", L);
    p_release (p);
    ok (r_wait (r, p, "streaming", p->sequence, 15000),
        "%s: snapshot, then streaming at sequence %" PRId64, L, p->sequence);
    is_int (p->snapshots, 1, "%s: one snapshot asked for", L);
    ok (p->snap_size > 5 * 1000 * 1000, "%s: ... of a %" PRId64 " byte file", L, p->snap_size);
    ok (access (r->file, F_OK) == 0, "%s: the replica holds %s", L, r->file);
    char *incoming = zsys_sprintf ("%s.incoming", r->file);
    ok (access (incoming, F_OK) != 0, "%s: no .incoming left", L);

    //  Streaming: the changes applied as they come; acks.
    p_put (p, "c", "{\"n\":3}");
    const char *ids [] = { "a", "d", "e" };
    const char *bodies [] = { "{\"n\":11}", "{\"n\":4}", "{\"s\":\"five\"}" };
    p_write (p, ids, bodies, 3);
    int64_t top = p->sequence;
    ok (r_wait (r, p, "streaming", top, 5000), "%s: changes applied up to %" PRId64, L, top);
    p_serve (p, 400);
    is_int (p->acked, top, "%s: the replica acknowledged %" PRId64, L, top);

    //  Reads, as the shard answers them, and `applied` on each.
    tiers_wire_t *reply = r_call (r, p, r_request ("get", "a", NULL), 2000);
    char tag [64];
    snprintf (tag, sizeof tag, "%s.%" PRId64, INC, top - 2);
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "{\"n\":11}"),
        "%s: get a: the latest body", L);
    is (reply ? tiers_wire_header (reply, "tag") : NULL, tag, "%s: get a: its tag", L);
    char number [32];
    snprintf (number, sizeof number, "%" PRId64, top);
    is (reply ? tiers_wire_header (reply, "applied") : NULL, number, "%s: get a: applied", L);
    snprintf (number, sizeof number, "%" PRId64, top - 2);
    is (reply ? tiers_wire_header (reply, "version") : NULL, number, "%s: get a: version", L);
    ok (reply && tiers_wire_header (reply, "updated"), "%s: get a: updated", L);
    tiers_wire_destroy (&reply);
    reply = r_call (r, p, r_request ("get", "nope", NULL), 2000);
    ok (reply && reply->status == 404 && tiers_wire_header (reply, "applied"),
        "%s: get of a missing document: 404 with applied", L);
    tiers_wire_destroy (&reply);
    reply = r_call (r, p, r_request ("list", NULL, "limit", "2", "after", "big4", NULL), 2000);
    char *page = zsys_sprintf ("{\"items\":[{\"id\":\"c\",\"version\":8,\"etag\":"
                               "\"\\\"%s.8\\\"\",\"doc\":{\"n\":3}},{\"id\":\"d\","
                               "\"version\":%" PRId64 ",\"etag\":\"\\\"%s.%" PRId64 "\\\"\","
                               "\"doc\":{\"n\":4}}],\"next\":\"d\"}", INC, top - 1, INC,
                               top - 1);
    is (reply ? (char *) reply->body : NULL, page, "%s: list: the shard's page", L);
    free (page);
    tiers_wire_destroy (&reply);
    reply = r_call (r, p, r_request ("put", "x", NULL), 2000);
    ok (reply && reply->status == 421 && streq (tiers_wire_header (reply, "primary") ?: "", "s0")
        && strstr (tiers_wire_header (reply, "error") ?: "", "a replica does not take writes"),
        "%s: a put is refused 421, primary s0", L);
    tiers_wire_destroy (&reply);
    reply = r_call (r, p, r_request ("delete", "a", NULL), 2000);
    ok (reply && reply->status == 421, "%s: a delete too", L);
    tiers_wire_destroy (&reply);
    reply = r_call (r, p, r_request ("get", "a", "min-sequence", "x1", "incarnation", INC,
                                     NULL), 2000);
    ok (reply && reply->status == 400, "%s: a bad min-sequence: 400", L);
    tiers_wire_destroy (&reply);
    char *text = NULL;
    json_decref (r_status (r, &text));
    char *head = zsys_sprintf ("{\"replica\":\"r1\",\"of\":\"s0\",\"state\":\"streaming\","
                               "\"incarnation\":\"%s\",\"epoch\":1,\"applied\":%" PRId64
                               ",\"primary_sequence\":%" PRId64 ",\"lag\":0,\"lag_ms\":0,"
                               "\"primary_silent_ms\":", INC, top, top);
    ok (text && strncmp (text, head, strlen (head)) == 0
        && strstr (text, ",\"rotation\":true}"), "%s: STATUS as the spec has it", L);
    if (text && strncmp (text, head, strlen (head)))
        diag ("STATUS %s", text);
    free (head);
    free (text);

    //  min-sequence: satisfied while it waits, timed out, another incarnation.
    snprintf (number, sizeof number, "%" PRId64, top + 2);
    tiers_wire_t *waiting = r_request ("get", "c", "min-sequence", number, "incarnation",
                                       INC, NULL);
    tiers_wire_send (waiting, zsock_resolve (r->client), NULL);
    tiers_wire_destroy (&waiting);
    p_serve (p, 200);
    ok (!(zsock_events (r->client) & ZMQ_POLLIN), "%s: a read for sequence %s waits", L, number);
    p_put (p, "c", "{\"n\":33}");
    p_put (p, "f", "{\"n\":6}");
    reply = NULL;
    int64_t waited = zclock_mono ();
    while (!reply && zclock_mono () - waited < 2000) {
        p_serve (p, 10);
        if (zsock_events (r->client) & ZMQ_POLLIN)
            reply = tiers_wire_recv (zsock_resolve (r->client), NULL, NULL);
    }
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "{\"n\":33}")
        && atoll (tiers_wire_header (reply, "applied") ?: "0") >= top + 2,
        "%s: ... and is answered once applied reaches it, with the new body", L);
    tiers_wire_destroy (&reply);
    top = p->sequence;
    int64_t started = zclock_mono ();
    reply = r_call (r, p, r_request ("get", "c", "min-sequence", "1000", "incarnation", INC,
                                     NULL), 5000);
    int64_t took = zclock_mono () - started;
    ok (reply && reply->status == 409 && tiers_wire_header (reply, "error")
        && atoll (tiers_wire_header (reply, "applied") ?: "0") == top,
        "%s: a read for sequence 1000: 409 with applied and error", L);
    ok (took >= 450 && took < 3000, "%s: ... after read_wait (%" PRId64 " ms)", L, took);
    tiers_wire_destroy (&reply);
    reply = r_call (r, p, r_request ("get", "c", "min-sequence", "1", "incarnation",
                                     "000000000000", NULL), 3000);
    ok (reply && reply->status == 409, "%s: another incarnation: 409 at once", L);
    tiers_wire_destroy (&reply);
    reply = r_call (r, p, r_request ("get", "c", "eventual", "1", NULL), 3000);
    ok (reply && reply->status == 200, "%s: eventual = 1 while streaming: 200", L);
    tiers_wire_destroy (&reply);

    //  A duplicate is ignored; the next change still applies.
    uint64_t duplicates = r->split ? 0 : r_counter ("tiers_replica_duplicates_total");
    p_send_logged (p, &p->log [p->count - 1]);
    p_send_logged (p, &p->log [p->count - 2]);
    p_put (p, "g", "{\"n\":7}");
    top = p->sequence;
    ok (r_wait (r, p, "streaming", top, 3000), "%s: duplicates ignored, streaming on", L);
    if (!r->split)
        is_int ((long long) (r_counter ("tiers_replica_duplicates_total") - duplicates), 2,
                "%s: 2 duplicates counted", L);

    //  The primary goes silent: after 1 s the replica follows again.
    int follows = p->follows;
    p->quiet = true;
    int64_t silent = zclock_mono ();
    while (p->follows == follows && zclock_mono () - silent < 3000)
        p_serve (p, 20);
    ok (p->follows > follows && zclock_mono () - silent >= 900,
        "%s: a primary silent for 1 s is followed again (after %" PRId64 " ms)", L,
        zclock_mono () - silent);
    p->quiet = false;
    ok (r_wait (r, p, "streaming", top, 3000), "%s: and streams again", L);

    //  Restarts: applied and the file are kept, no snapshot is taken.
    int snapshots = p->snapshots;
    r_stop (r, false);
    p_put (p, "h", "{\"n\":8}");
    follows = p->follows;
    ok (r_start (r) == 0, "%s: the replica starts again", L);
    until = zclock_mono () + 3000;
    while (p->follows == follows && zclock_mono () < until)
        p_serve (p, 20);
    ok (p->follows > follows && p->follow_applied == top && streq (p->follow_incarnation, INC)
        && p->follow_epoch == 1, "%s: it follows from its file: applied %" PRId64
        " (%" PRId64 "), incarnation, epoch 1", L, top, p->follow_applied);
    top = p->sequence;
    ok (r_wait (r, p, "streaming", top, 3000), "%s: and catches up to %" PRId64, L, top);
    is_int (p->snapshots, snapshots, "%s: without a snapshot", L);

    //  A gap: resync by snapshot; nothing of the change after the gap.
    p->quiet = true;
    p_put (p, "i", "{\"n\":9}");
    p_put (p, "j", "{\"n\":10}");
    p->quiet = false;
    p_send_logged (p, &p->log [p->count - 1]);     //  the one after the gap
    ok (r_wait (r, p, "snapshotting", -1, 2000) || p->snapshots > snapshots,
        "%s: a gap: the replica takes a snapshot", L);
    top = p->sequence;
    ok (r_wait (r, p, "streaming", top, 10000), "%s: ... and streams again at %" PRId64, L, top);
    ok (p->snapshots == snapshots + 1, "%s: one snapshot", L);
    char *body = r_file_body (r, "j");
    is (body, "{\"n\":10}", "%s: its file has what the snapshot had", L);
    free (body);

    //  What a broken or hostile primary sends: refused (counted), nothing
    //  applied, the replica re-syncs.
    struct {
        const char *what;
        forged_t forged;
        bool snapshot;          //  a resync by snapshot (else: follows again)
    } cases [] = {
        { "a change of another epoch", { "s0", INC, NULL, 2, 0, 0, NULL, 0, false }, true },
        { "a change of another incarnation", { "s0", "000000000001", NULL, 1, 0, 0, NULL, 0,
                                               false }, true },
        { "a change of another shard", { "s9", INC, NULL, 1, 0, 0, NULL, 0, false }, true },
        { "a change whose checksum does not match", { "s0", INC, "00000000000000000000000000"
            "00000000000000000000000000000000000000", 1, 0, 0, NULL, 0, false }, true },
        { "a forged changeset (garbage with its checksum)", { "s0", INC, NULL, 1, 0, 0,
            "garbage, not a changeset", 24, false }, true },
        { "a change without a sequence", { "s0", INC, NULL, 1, 0, 0, NULL, 0, true }, false },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        uint64_t refused = r->split ? 0 : r_counter ("tiers_replica_refused_total");
        snapshots = p->snapshots;
        follows = p->follows;
        p->quiet = true;                    //  the real change is not sent
        char doc [32];
        snprintf (doc, sizeof doc, "{\"case\":%zu}", c);
        p_put (p, "k", doc);
        p->quiet = false;
        change_t *change = &p->log [p->count - 1];
        forged_t forged = cases [c].forged;
        forged.previous = change->previous;
        forged.sequence = change->sequence;
        if (!forged.body) {
            forged.body = change->body;
            forged.size = change->size;
        }
        p->hold_snapshot = true;            //  the resync waits while the test looks
        p->hold_follow = true;
        p_send_change (p, &forged);
        until = zclock_mono () + 3000;
        while (zclock_mono () < until && p->snapshots == snapshots && p->follows == follows)
            p_serve (p, 20);
        ok (cases [c].snapshot ? p->snapshots > snapshots : p->follows > follows,
            "%s: %s: the replica %s", L, cases [c].what,
            cases [c].snapshot ? "takes a snapshot" : "follows again");
        body = r_file_body (r, "k");
        ok (!body || !streq (body, doc), "%s: %s: nothing of it applied", L, cases [c].what);
        free (body);
        if (!r->split)
            ok (r_counter ("tiers_replica_refused_total") > refused, "%s: %s: counted as "
                "refused", L, cases [c].what);
        p_release (p);
        top = p->sequence;
        ok (r_wait (r, p, "streaming", top, 10000), "%s: %s: streaming again at %" PRId64,
            L, cases [c].what, top);
        body = r_file_body (r, "k");
        is (body, doc, "%s: %s: the real change is there", L, cases [c].what);
        free (body);
    }
    //  Not a tiers message at all.
    follows = p->follows;
    if (p->peer) {
        zframe_t *peer = zframe_dup (p->peer);
        zsock_send (p->router, "fs", peer, "garbage");
        zframe_destroy (&peer);
    }
    until = zclock_mono () + 3000;
    while (zclock_mono () < until && p->follows == follows)
        p_serve (p, 20);
    ok (p->follows > follows, "%s: a frame that is no tiers message: the replica follows "
        "again", L);
    p_put (p, "l", "{\"n\":12}");
    ok (r_wait (r, p, "streaming", p->sequence, 3000), "%s: and streams on", L);

    //  A replica file changed behind its back: the next change to that
    //  row conflicts, the replica re-snapshots, and reads nothing from the
    //  diverged file meanwhile.
    sqlite3 *db = NULL;
    ok (sqlite3_open (r->file, &db) == SQLITE_OK, "%s: the replica's file opened behind "
        "its back", L);
    sqlite3_busy_timeout (db, 5000);
    ok (sqlite3_exec (db, "UPDATE docs SET body = '{\"tampered\":true}' WHERE id = 'b'",
                      NULL, NULL, NULL) == SQLITE_OK, "%s: document b changed in it", L);
    sqlite3_close (db);
    snapshots = p->snapshots;
    p->hold_snapshot = true;
    p_put (p, "b", "{\"n\":22}");
    until = zclock_mono () + 3000;
    while (zclock_mono () < until && p->snapshots == snapshots)
        p_serve (p, 20);
    ok (p->snapshots > snapshots, "%s: the conflict makes the replica take a snapshot", L);
    reply = r_call (r, p, r_request ("get", "a", NULL), 1000);
    ok (reply && reply->status == 409, "%s: ... and it reads nothing from the diverged file "
        "(%d)", L, reply ? reply->status : -1);
    tiers_wire_destroy (&reply);
    p_release (p);
    ok (r_wait (r, p, "streaming", p->sequence, 10000), "%s: streaming again", L);
    reply = r_call (r, p, r_request ("get", "b", NULL), 1000);
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "{\"n\":22}"),
        "%s: document b is the primary's again", L);
    tiers_wire_destroy (&reply);

    //  A primary whose log no longer covers the replica: follow 409, a
    //  snapshot.
    r_stop (r, false);
    p_put (p, "m", "{\"n\":13}");
    p->log_from = p->sequence;
    snapshots = p->snapshots;
    ok (r_start (r) == 0, "%s: started again behind the primary's log", L);
    ok (r_wait (r, p, "streaming", p->sequence, 10000) && p->snapshots == snapshots + 1,
        "%s: follow 409: a snapshot, then streaming", L);

    if (r->split) {
        //  kill -9 in the middle of a snapshot: the half-fetched file is
        //  discarded at the next start, the old file is followed.
        p->log_from = 0;
        p->chunk = 256 * 1024;              //  short answers: the rest asked for
        p->quiet = true;
        p_put (p, "n", "{\"n\":14}");
        p_put (p, "o", "{\"n\":15}");
        p->quiet = false;
        top = p->log [p->count - 2].previous;
        p_send_logged (p, &p->log [p->count - 1]);     //  a gap: a snapshot
        until = zclock_mono () + 3000;
        while (zclock_mono () < until && p->chunks < 3)
            p_serve (p, 5);
        p->hold_chunks = true;
        p_serve (p, 100);
        ok (access (incoming, F_OK) == 0, "%s: a snapshot is being fetched", L);
        r_stop (r, true);
        ok (access (incoming, F_OK) == 0, "%s: kill -9 leaves it half-fetched", L);
        p->hold_chunks = false;
        p->held_count = 0;
        snapshots = p->snapshots;
        follows = p->follows;
        ok (r_start (r) == 0, "%s: the replica starts again", L);
        until = zclock_mono () + 3000;
        while (p->follows == follows && zclock_mono () < until)
            p_serve (p, 20);
        ok (p->follow_applied == top, "%s: it follows from its old file (%" PRId64 ")", L,
            p->follow_applied);
        ok (r_wait (r, p, "streaming", p->sequence, 10000), "%s: and catches up", L);
        ok (access (incoming, F_OK) != 0, "%s: the half-fetched snapshot is gone", L);
        is_int (p->snapshots, snapshots, "%s: no snapshot was needed", L);
    }
    else {
        //  One file, one replica: a second one is refused, naming the pid.
        tiers_actor_args_t args = r->args;
        zactor_t *twin = zactor_new (tiers_replica_kind.run, &args);
        char *answer = twin ? zstr_recv (twin) : NULL;
        char pid [32];
        snprintf (pid, sizeof pid, "pid %d", (int) getpid ());
        ok (answer && strncmp (answer, "ERROR", 5) == 0 && strstr (answer, pid),
            "%s: a second replica on its file is refused (%s)", L, answer ? answer : "-");
        zstr_free (&answer);
        zactor_destroy (&twin);
        is_int ((long long) r_counter ("tiers_replica_snapshots_total"), p->snapshots,
                "%s: every snapshot counted", L);
        ok (r_counter ("tiers_replica_changes_total") > 0
            && r_counter ("tiers_replica_resyncs_total") >= 8, "%s: changes and resyncs "
            "counted", L);
        char *metrics = tiers_metrics_render ();
        ok (strstr (metrics, "tiers_replica_state{replica=\"r1\"} 3")
            && strstr (metrics, "tiers_replica_lag_seconds{replica=\"r1\"} ")
            && strstr (metrics, "tiers_replica_applied{replica=\"r1\"} ")
            && strstr (metrics, "tiers_replica_apply_seconds_count{replica=\"r1\"} "),
            "%s: state, applied and lag are gauges; the apply time a histogram", L);
        free (metrics);
    }

    //  Fencing: a fence of an epoch not above its own changes nothing; a
    //  higher one points it at the new primary, r2 (played by a second
    //  ROUTER at r2's stream port: another incarnation, epoch 2).
    reply = r_call (r, p, r_request ("fence", NULL, "epoch", "1", "by", "s0", NULL), 2000);
    ok (reply && reply->status == 200 && streq (tiers_wire_header (reply, "epoch") ?: "", "1")
        && streq (tiers_wire_header (reply, "role") ?: "", "replica"),
        "%s: a fence at its own epoch: 200, epoch 1, role replica", L);
    tiers_wire_destroy (&reply);
    ok (r_wait (r, p, "streaming", p->sequence, 2000), "%s: ... it streams on from s0", L);
    reply = r_call (r, p, r_request ("fence", NULL, "epoch", "x", NULL), 2000);
    ok (reply && reply->status == 400, "%s: a fence without a good epoch and by: 400", L);
    tiers_wire_destroy (&reply);
    char *where = zsys_sprintf ("%s/%s", h_tmpdir (), L);
    zsys_dir_create ("%s", where);
    primary_t *q = p_new (where, r2_stream, "rt", "9e8d7c6b5a41", 2);
    free (where);
    p_put (q, "q", "{\"from\":\"r2\"}");
    reply = r_call (r, q, r_request ("fence", NULL, "epoch", "2", "by", "r2", NULL), 2000);
    ok (reply && reply->status == 200 && streq (tiers_wire_header (reply, "epoch") ?: "", "2"),
        "%s: a fence of epoch 2 by r2: 200, epoch 2", L);
    tiers_wire_destroy (&reply);
    ok (r_wait (r, q, "streaming", q->sequence, 10000), "%s: it follows r2 (a snapshot of "
        "the new incarnation, then streaming)", L);
    json_t *status = r_status (r, NULL);
    ok (status && streq (json_string_value (json_object_get (status, "incarnation")) ?: "",
                         q->inc)
        && json_integer_value (json_object_get (status, "epoch")) == 2,
        "%s: its file is r2's incarnation, epoch 2", L);
    json_decref (status);
    reply = r_call (r, q, r_request ("get", "q", NULL), 2000);
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "{\"from\":\"r2\"}"),
        "%s: it reads r2's documents", L);
    tiers_wire_destroy (&reply);

    //  Promotion: above its epoch only; then it serves as the shard.
    reply = r_call (r, q, r_request ("promote", NULL, "epoch", "2", "by", "r1", NULL), 2000);
    ok (reply && reply->status == 409, "%s: promote to an epoch not above its own: 409", L);
    tiers_wire_destroy (&reply);
    int64_t sequence = q->sequence;
    reply = r_call (r, q, r_request ("promote", NULL, "epoch", "3", "by", "r1", NULL), 5000);
    const char *promoted = reply ? tiers_wire_header (reply, "incarnation") : NULL;
    ok (reply && reply->status == 200 && streq (tiers_wire_header (reply, "epoch") ?: "", "3")
        && atoll (tiers_wire_header (reply, "sequence") ?: "0") >= sequence
        && promoted && strlen (promoted) == 12 && !streq (promoted, q->inc),
        "%s: promote to epoch 3: 200 once it serves, with a new incarnation (%s)", L,
        promoted ? promoted : "-");
    char *incarnation = promoted ? strdup (promoted) : NULL;
    tiers_wire_destroy (&reply);
    //  As a shard it takes no write before a majority of its copies
    //  answered its question for their epochs: r2 answers (played here).
    int status_code = 0;
    char *why = NULL;
    zsock_t *peer = tiers_sock_bind (ZMQ_ROUTER, r2_requests, &why);
    ok (peer != NULL, "%s: r2's requests port played too", L);
    free (why);
    until = zclock_mono () + 4000;
    while (status_code != 201 && zclock_mono () < until) {
        while (peer && (zsock_events (peer) & ZMQ_POLLIN)) {
            zmsg_t *route = NULL;
            tiers_wire_t *ask = tiers_wire_recv (zsock_resolve (peer), &route, NULL);
            if (ask && ask->kind == TIERS_WIRE_STATUS) {
                tiers_wire_t *answer = tiers_wire_reply_to (ask, 200);
                answer->kind = TIERS_WIRE_REPLY;
                const char *json = "{\"replica\":\"r2\",\"of\":\"s0\",\"epoch\":2}";
                tiers_wire_set_body (answer, json, strlen (json));
                tiers_wire_send (answer, zsock_resolve (peer), route);
                tiers_wire_destroy (&answer);
            }
            tiers_wire_destroy (&ask);
            zmsg_destroy (&route);
        }
        tiers_wire_t *put = r_request ("put", "p1", NULL);
        tiers_wire_set_body (put, "{\"w\":1}", 7);
        reply = r_call (r, NULL, put, 500);
        status_code = reply ? reply->status : 0;
        tiers_wire_destroy (&reply);
        if (status_code != 201)
            zclock_sleep (100);
    }
    is_int (status_code, 201, "%s: the promoted replica takes a write", L);
    reply = r_call (r, NULL, r_request ("get", "p1", NULL), 2000);
    char *tag_prefix = zsys_sprintf ("%s.", incarnation ? incarnation : "?");
    ok (reply && reply->status == 200 && streq ((char *) reply->body, "{\"w\":1}")
        && strncmp (tiers_wire_header (reply, "tag") ?: "", tag_prefix, strlen (tag_prefix)) == 0,
        "%s: and serves it back, tagged with its new incarnation", L);
    free (tag_prefix);
    free (incarnation);
    tiers_wire_destroy (&reply);
    text = NULL;
    json_decref (r_status (r, &text));
    ok (text && strstr (text, "\"role\":\"primary\"") && strstr (text, "\"epoch\":3"),
        "%s: its STATUS: role primary, epoch 3", L);
    free (text);
    zsock_destroy (&peer);
    p_destroy (&q);

    r_stop (r, false);
    free (incoming);
}

static char *
s_map_text (bool split, const char *data, const char *stream, const char *requests,
            const char *replica, const char *r1_stream, const char *r2, const char *r2_stream)
{
    return zsys_sprintf (
        "cluster\n"
        "    name = rt\n"
        "    data = %s\n"
        "    log = warn\n"
        "    sync = normal\n"
        "%s"
        "node = %s\n"
        "    shard = s0\n"
        "        bind = %s\n"
        "        bind.stream = %s\n"
        "%s"
        "    replica = r1\n"
        "        bind = %s\n"
        "        bind.stream = %s\n"
        "        of = s0\n"
        "        read_wait = 500ms\n"
        "%s"
        "    replica = r2\n"
        "        bind = %s\n"
        "        bind.stream = %s\n"
        "        of = s0\n",
        data, split ? "    security = none\n" : "", split ? "db1" : "box", requests,
        stream, split ? "node = db2\n" : "", replica, r1_stream, split ? "node = db3\n" : "",
        r2, r2_stream);
}

int
main (int argc, char **argv)
{
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_ERROR);
    const char *dir = h_tmpdir ();

    //  One process, inproc: the replica is a thread of the test.
    char *data = zsys_sprintf ("%s/one", dir);
    char *text = s_map_text (false, data, "inproc://rt-s0-stream", "inproc://rt-s0",
                             "inproc://rt-r1", "inproc://rt-r1-stream", "inproc://rt-r2",
                             "inproc://rt-r2-stream");
    char *errors = NULL;
    replica_t r = { .split = false };
    r.map = tiers_map_parse (text, "one.map", &errors);
    ok (r.map != NULL, "inproc: the map loads");
    if (errors)
        diag ("%s", errors);
    free (errors);
    if (r.map) {
        primary_t *p = p_new (data, "inproc://rt-s0-stream", "rt", INC, 1);
        r.file = zsys_sprintf ("%s/r1.db", data);
        r.endpoint = "inproc://rt-r1";
        s_scenarios (&r, p, "inproc", "inproc://rt-r2-stream", "inproc://rt-r2");
        zsock_destroy (&r.client);
        p_destroy (&p);
        free (r.file);
        tiers_map_destroy (&r.map);
    }
    free (text);
    free (data);

    //  Two processes, tcp: the replica is `tiers run -n db2`.
    const char *top = getenv ("top_builddir");
    char stream [64], requests [64], replica [64], r1_stream [64], r2 [64], r2_stream [64];
    snprintf (stream, sizeof stream, "tcp://127.0.0.1:%d", h_free_port ());
    snprintf (requests, sizeof requests, "tcp://127.0.0.1:%d", h_free_port ());
    snprintf (replica, sizeof replica, "tcp://127.0.0.1:%d", h_free_port ());
    snprintf (r1_stream, sizeof r1_stream, "tcp://127.0.0.1:%d", h_free_port ());
    snprintf (r2, sizeof r2, "tcp://127.0.0.1:%d", h_free_port ());
    snprintf (r2_stream, sizeof r2_stream, "tcp://127.0.0.1:%d", h_free_port ());
    data = zsys_sprintf ("%s/two", dir);
    text = s_map_text (true, data, stream, requests, replica, r1_stream, r2, r2_stream);
    replica_t s = { .split = true };
    s.map_path = h_write_file ("two.map", text);
    s.log = zsys_sprintf ("%s/replica.log", dir);
    s.tiers = zsys_sprintf ("%s/tiers", top ? top : ".");
    s.file = zsys_sprintf ("%s/r1.db", data);
    primary_t *p = p_new (data, stream, "rt", INC, 1);
    s.endpoint = replica;
    s_scenarios (&s, p, "tcp", r2_stream, r2);
    zsock_destroy (&s.client);
    p_destroy (&p);
    if (tap_failed) {
        diag ("the replica's log:");
        char *command = zsys_sprintf ("tail -40 '%s' | sed 's/^/# /'", s.log);
        if (system (command) != 0)
            diag ("(no log)");
        free (command);
    }
    h_kill_all ();
    free (s.map_path);
    free (s.log);
    free (s.tiers);
    free (s.file);
    free (text);
    free (data);
    (void) argc;
    (void) argv;
    return done_testing ();
}
