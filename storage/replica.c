/*  replica.c — the replica tier: a read copy of one shard's file, kept
    current from the shard's commit stream (doc/replication.md).

    A replica holds <data>/<name>.db, a faithful copy of its primary's file
    (the same schema, the same identity, the same sequence in the meta
    table), and one actor thread that owns everything: a DEALER to the
    primary's `stream` port, the ROUTER its readers talk to (get, list,
    STATUS), a write connection that applies the stream and a read
    connection that answers reads. It never writes a document of its own:
    puts and deletes are refused 421.

    The one idea: the Clone pattern. The replica follows the primary from
    its own position (`follow` with its incarnation, epoch and sequence);
    the primary answers with the changes from there, each one committed
    transaction of the primary as a SQLite changeset numbered by the
    shard's sequence. The replica applies them strictly in order, each
    whole or not at all, with the sequence moving in the same transaction
    (the changeset carries the meta row), so its file is at every commit
    the primary's file as of one of its commits. Whatever the replica
    cannot explain — a gap, a conflict, a checksum, another incarnation or
    epoch, a primary whose log no longer covers it — it does not repair:
    it takes a new snapshot of the whole file and follows from there.

    The states (replica_state_t; s_state_move is the one place they change):

        EMPTY        no file yet (at start only)
                       --> SNAPSHOTTING   no file: ask for a snapshot
                       --> CATCHING_UP    a file from before: follow from its
                                          sequence
        SNAPSHOTTING asking for a snapshot, fetching it into <name>.db.incoming
                       --> CATCHING_UP    installed (checked, renamed over the
                                          file): follow from its sequence
        CATCHING_UP  follow sent; applying the backlog once it is answered
                       --> STREAMING      applied reached the primary's sequence
        STREAMING    applying changes as they come
                       --> CATCHING_UP    primary silent 1 s, or a malformed
                                          message: follow again on a new socket
        any          --> SNAPSHOTTING     gap, conflict, checksum mismatch,
                                          unexpected shard, incarnation or
                                          epoch, follow 409 (logged why; in
                                          SNAPSHOTTING itself the snapshot is
                                          started over)

    Invariants: changes are applied only in CATCHING_UP and STREAMING after
    the follow was answered 200 (`following`); the queue of changes waiting
    for the next group apply is contiguous from `applied` (each previous is
    the sequence before it); outside a transaction `applied` is the file's
    meta sequence; reads are answered only from a file that is not known
    to have diverged. Changes that queue up while one burst is read are
    applied in one transaction (group apply, in the pass hook), then acked.

    Every step survives kill -9: an apply is one SQLite transaction; a
    half-fetched snapshot is discarded at start; installing one unlinks the
    old file before renaming the new one over it, so a crash in between
    leaves no file (a new snapshot) rather than an old file with a WAL of
    another (s_snapshot_install).
*/
#define SQLITE_ENABLE_SESSION 1         //  the changeset API of sqlite3.h
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "kind.h"
#include "map.h"
#include "node.h"
#include "wire.h"
#include "reactor.h"
#include "sock.h"
#include "log.h"
#include "metrics.h"
#include "storage/sqlfile.h"
#include "storage/replica.h"
#include "storage/docread.h"
#include "storage/shard.h"
#include "storage/promote.h"
#include <sqlite3.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPLICA_SCHEMA          2       //  the shard's PRAGMA user_version
#define REPLICA_INCARNATION     TIERS_DOCREAD_INCARNATION
#define REPLICA_QUEUE_MAX       1024    //  changes waiting for one group apply
#define REPLICA_QUEUE_BYTES     (64 * 1024 * 1024)  //  ... and their bytes
#define REPLICA_PENDING_MAX     1024    //  reads waiting for a sequence
#define REPLICA_TICK_MS         250     //  acks (the keepalive), timeouts
#define REPLICA_SILENT_MS       1000    //  primary silent this long: follow again
#define REPLICA_ASK_MS          5000    //  a snapshot or chunk unanswered: ask again
#define REPLICA_CHUNK           (1024 * 1024)   //  bytes a chunk asks for
#define REPLICA_CHUNKS_OUT      4       //  chunk requests outstanding
#define REPLICA_SNAPSHOT_MAX    (1LL << 40)     //  bytes of a snapshot, at most
#define REPLICA_RETRY_MS        1000    //  after a bad snapshot, doubling
#define REPLICA_RETRY_MAX_MS    30000
#define REPLICA_BUSY_MS         5000    //  sqlite busy_timeout
#define REPLICA_ROUTER_BURST    1024
#define REPLICA_STREAM_BURST    256
#define REPLICA_ID_MAX          64      //  bytes of a snapshot id

typedef enum {
    REPLICA_EMPTY,
    REPLICA_SNAPSHOTTING,
    REPLICA_CATCHING_UP,
    REPLICA_STREAMING
} replica_state_t;

//  STATUS and the state gauge (0..3) use these.
static const char *s_state_names [] = { "empty", "snapshotting", "catching up",
                                        "streaming" };
static const char *s_state_words [] = { "empty", "snapshotting", "catching_up",
                                        "streaming" };

//  Inside SNAPSHOTTING: asked and waiting for the answer, waiting to ask
//  (after a 503 or a bad snapshot), or fetching the chunks.
typedef enum { SNAP_ASKING, SNAP_WAITING, SNAP_FETCHING } snap_phase_t;

//  A chunk asked for: bytes [offset, end) of the snapshot.
typedef struct {
    int64_t offset, end;
    int64_t asked;              //  monotonic ms
} chunk_t;

typedef struct {
    snap_phase_t phase;
    int64_t asked;              //  SNAP_ASKING: when; SNAP_WAITING: when to ask
    int failures;               //  bad snapshots in a row (the retry doubles)
    char id [REPLICA_ID_MAX + 1];
    int64_t size, sequence, epoch;
    char incarnation [REPLICA_INCARNATION + 1];
    char checksum [2 * SHA256_DIGEST_SIZE + 1];
    int fd;                     //  <name>.db.incoming, or -1
    int64_t next;               //  the next offset to ask for
    chunk_t out [REPLICA_CHUNKS_OUT];
    size_t out_count;
    struct sha256_ctx sha;      //  of bytes [0, hashed)
    int64_t hashed;
} snapshot_t;

//  A read that waits until the replica has applied `sequence` of
//  `incarnation`, until `until` (monotonic ms) at the latest.
typedef struct {
    tiers_wire_t *request;
    zmsg_t *route;
    int64_t sequence;
    char incarnation [REPLICA_INCARNATION + 1];
    int64_t until;
} pending_t;

typedef struct {
    char name [96];
    const char *of;             //  the shard it copies (the map's, not owned)
    const char *cluster;
    const tiers_entry_t *entry;
    bool sync_full;
    int64_t max_lag_ms, read_wait_ms;
    char *path, *incoming;      //  <data>/<name>.db, <data>/<name>.db.incoming
    int lock_fd;
    zsock_t *router, *stream;
    tiers_reactor_t *reactor;
    int stream_reader;          //  the reactor's handle of the stream reader
    const char *link;           //  what `stream` reaches: "primary" (the `of`), or
    size_t link_index;          //  "peers" [i] (a replica promoted since, `fence`)
    replica_state_t state;

    //  The file (db == NULL: none)
    sqlite3 *db;                //  the write connection: applies the stream
    sqlite3 *read_db;           //  the read connection: answers reads
    sqlite3_stmt *begin, *commit, *rollback, *sequence_of, *sequence_store;
    tiers_docread_t *reads;
    bool diverged;              //  known to differ from the primary: no reads
    char incarnation [REPLICA_INCARNATION + 1];     //  "" without a file
    int64_t epoch;
    int64_t applied;

    //  Following
    bool following;             //  the follow was answered 200
    int64_t follow_sent;        //  monotonic ms
    int64_t heard;              //  monotonic ms of the primary's last message
    int64_t started;
    int64_t primary_sequence;   //  the highest sequence the primary told of
    int64_t primary_committed;  //  wall ms of the change at primary_sequence
    int64_t behind_committed;   //  wall ms of the oldest change known, not applied
    tiers_wire_t *queue [REPLICA_QUEUE_MAX];    //  checked changes, in order
    size_t queued, queued_bytes;
    int64_t queued_to;          //  the sequence after the last queued change

    snapshot_t snap;
    pending_t pending [REPLICA_PENDING_MAX];
    size_t pending_count;

    //  Promotion and fencing (doc/replication.md)
    int64_t told_epoch;         //  the highest epoch a `fence` told of
    tiers_wire_t *promote;      //  the `promote` request, once taken
    zmsg_t *promote_route;
    int64_t promote_to;

    tiers_gauge_t *applied_gauge, *lag, *lag_seconds, *state_gauge;
    tiers_histogram_t *apply_seconds;
    tiers_counter_t *changes, *snapshots, *resyncs, *refused, *reads_total;
    tiers_counter_t *duplicates, *ignored, *errors;
} replica_t;

static void s_follow (replica_t *self, const char *why);
static void s_resync (replica_t *self, bool diverged, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
static void s_snapshot_start (replica_t *self, int64_t delay_ms);
static void s_pending_check (replica_t *self);


//  --------------------------------------------------------------------------
//  The state machine

//  The one place the state changes; the assert is the table at the top.
static void
s_state_move (replica_t *self, replica_state_t to, const char *why)
{
    replica_state_t from = self->state;
    assert ((from == REPLICA_EMPTY && (to == REPLICA_SNAPSHOTTING
                                    || (to == REPLICA_CATCHING_UP && self->db)))
         || (from == REPLICA_SNAPSHOTTING && to == REPLICA_CATCHING_UP && self->db)
         || (from == REPLICA_CATCHING_UP && to == REPLICA_STREAMING && self->following)
         || (from == REPLICA_STREAMING && to == REPLICA_CATCHING_UP)
         || (from != REPLICA_SNAPSHOTTING && to == REPLICA_SNAPSHOTTING));
    self->state = to;
    tiers_gauge_set (self->state_gauge, (int64_t) to);
    if (to == REPLICA_STREAMING)
        tiers_info ("streaming from %s at sequence %" PRId64, self->of, self->applied);
    else
        tiers_info ("%s -> %s: %s", s_state_names [from], s_state_names [to], why);
}


//  --------------------------------------------------------------------------
//  Small helpers

static int64_t
s_now (void)
{
    return zclock_mono ();
}

//  A non-negative decimal of 1..18 digits.
static int
s_number (const char *text, int64_t *value)
{
    size_t length = text ? strlen (text) : 0;
    if (length == 0 || length > 18 || strspn (text, "0123456789") != length)
        return -1;
    *value = strtoll (text, NULL, 10);
    return 0;
}

//  A header holding such a number: 0, or -1 when missing or not one.
static int
s_header_number (const tiers_wire_t *msg, const char *key, int64_t *value)
{
    bool bad = false;
    const char *text = tiers_wire_text (msg, key, &bad);
    return bad ? -1 : s_number (text, value);
}

static bool
s_lower_hex (const char *text, size_t length)
{
    return text && strlen (text) == length
        && strspn (text, "0123456789abcdef") == length;
}

static void
s_digest_hex (struct sha256_ctx *sha, char hex [2 * SHA256_DIGEST_SIZE + 1])
{
    uint8_t digest [SHA256_DIGEST_SIZE];
    sha256_digest (sha, SHA256_DIGEST_SIZE, digest);
    for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf (hex + 2 * i, 3, "%02x", digest [i]);
}

//  unlink that does not mind a file that is not there.
static int
s_remove (const char *path)
{
    if (unlink (path) && errno != ENOENT) {
        tiers_warn ("cannot remove %s: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

static void
s_remove_suffixed (const char *path, const char *suffix)
{
    char name [PATH_MAX];
    snprintf (name, sizeof name, "%s%s", path, suffix);
    s_remove (name);
}

//  --------------------------------------------------------------------------
//  The file

static void
s_file_close (replica_t *self)
{
    tiers_docread_destroy (&self->reads);
    if (self->read_db && sqlite3_close (self->read_db) != SQLITE_OK)
        tiers_error ("cannot close the read connection: %s", sqlite3_errmsg (self->read_db));
    self->read_db = NULL;
    sqlite3_finalize (self->begin);
    sqlite3_finalize (self->commit);
    sqlite3_finalize (self->rollback);
    sqlite3_finalize (self->sequence_of);
    sqlite3_finalize (self->sequence_store);
    self->begin = self->commit = self->rollback = self->sequence_of = NULL;
    self->sequence_store = NULL;
    //  The write connection last: the last close checkpoints the WAL.
    if (self->db && sqlite3_close (self->db) != SQLITE_OK)
        tiers_error ("cannot close the database: %s", sqlite3_errmsg (self->db));
    self->db = NULL;
    *self->incarnation = 0;
    self->epoch = 0;
    self->applied = 0;
}

//  The file and its WAL go (a copy that cannot be used is taken again).
static void
s_file_discard (replica_t *self)
{
    s_file_close (self);
    s_remove (self->path);
    s_remove_suffixed (self->path, "-wal");
    s_remove_suffixed (self->path, "-shm");
    s_remove_suffixed (self->path, "-journal");
}

//  A meta row as an integer: 0 with *value, 1 when there is no such row,
//  -1 on an error.
static int
s_meta (sqlite3 *db, const char *key, int64_t *value)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (db, "SELECT value FROM meta WHERE key = ?1", -1,
                            &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
}

//  Opens <name>.db: 0, 1 when there is no file, -1 + why when there is one
//  that is not a copy of this replica's shard (then nothing stays open).
static int
s_file_open (replica_t *self, char **why)
{
    struct stat st;
    if (stat (self->path, &st) && errno == ENOENT)
        return 1;
    if (sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READWRITE
                         | SQLITE_OPEN_NOMUTEX, NULL)) {
        *why = zsys_sprintf ("cannot open %s: %s", self->path,
                             self->db ? sqlite3_errmsg (self->db) : "out of memory");
        goto failed;
    }
    sqlite3_busy_timeout (self->db, REPLICA_BUSY_MS);
    sqlite3_extended_result_codes (self->db, 1);
    sqlite3_stmt *stmt = NULL;
    if (tiers_sql_prepare (self->db, "PRAGMA journal_mode=WAL", &stmt, why))
        goto failed;
    bool wal = sqlite3_step (stmt) == SQLITE_ROW
            && streq ((const char *) sqlite3_column_text (stmt, 0), "wal");
    sqlite3_finalize (stmt);
    if (!wal) {
        *why = zsys_sprintf ("%s: cannot switch to WAL mode: %s", self->path,
                             sqlite3_errmsg (self->db));
        goto failed;
    }
    if (tiers_sql_exec (self->db, self->sync_full ? "PRAGMA synchronous=FULL"
                                          : "PRAGMA synchronous=NORMAL", why))
        goto failed;
    if (tiers_sql_prepare (self->db, "PRAGMA user_version", &stmt, why))
        goto failed;
    int schema = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int (stmt, 0) : -1;
    sqlite3_finalize (stmt);
    if (schema != REPLICA_SCHEMA) {
        *why = zsys_sprintf ("%s: schema version %d, not the shard's %d", self->path,
                             schema, REPLICA_SCHEMA);
        goto failed;
    }
    //  Whose copy it is: the identity rows the primary made.
    char cluster [256] = "", shard [256] = "";
    if (tiers_sql_prepare (self->db, "SELECT name, value FROM identity", &stmt, why))
        goto failed;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *name = (const char *) sqlite3_column_text (stmt, 0);
        const char *value = (const char *) sqlite3_column_text (stmt, 1);
        if (!name || !value)
            continue;
        if (streq (name, "cluster"))
            snprintf (cluster, sizeof cluster, "%s", value);
        else
        if (streq (name, "shard"))
            snprintf (shard, sizeof shard, "%s", value);
        else
        if (streq (name, "incarnation") && s_lower_hex (value, REPLICA_INCARNATION))
            memcpy (self->incarnation, value, REPLICA_INCARNATION + 1);
    }
    sqlite3_finalize (stmt);
    if (rc != SQLITE_DONE || !*self->incarnation || !streq (shard, self->of)
    ||  !streq (cluster, self->cluster)) {
        *why = rc != SQLITE_DONE
             ? zsys_sprintf ("%s: cannot read its identity: %s", self->path,
                             sqlite3_errmsg (self->db))
             : zsys_sprintf ("%s is a copy of shard '%s' of cluster '%s' (incarnation "
                             "'%s'), not of shard '%s' of cluster '%s'", self->path,
                             shard, cluster, self->incarnation, self->of, self->cluster);
        goto failed;
    }
    int found = s_meta (self->db, "sequence", &self->applied);
    int epoch = found == 0 ? s_meta (self->db, "epoch", &self->epoch) : -1;
    if (found != 0 || epoch < 0 || self->applied < 0) {
        *why = zsys_sprintf ("%s: cannot read its sequence", self->path);
        goto failed;
    }
    if (epoch == 1)
        self->epoch = 1;            //  no epoch row: a file never promoted
    if (tiers_sql_prepare (self->db, "BEGIN IMMEDIATE", &self->begin, why)
    ||  tiers_sql_prepare (self->db, "COMMIT", &self->commit, why)
    ||  tiers_sql_prepare (self->db, "ROLLBACK", &self->rollback, why)
    ||  tiers_sql_prepare (self->db, "SELECT value FROM meta WHERE key = 'sequence'",
                   &self->sequence_of, why)
    ||  tiers_sql_prepare (self->db, "UPDATE meta SET value = ?1 WHERE key = 'sequence'",
                   &self->sequence_store, why))
        goto failed;
    //  Reads on a connection of their own (read-write, but query_only: a
    //  read-only connection to a WAL file would need the -shm writable
    //  anyway, and this one can never write).
    if (sqlite3_open_v2 (self->path, &self->read_db, SQLITE_OPEN_READWRITE
                         | SQLITE_OPEN_NOMUTEX, NULL)) {
        *why = zsys_sprintf ("cannot open %s: %s", self->path, self->read_db
                             ? sqlite3_errmsg (self->read_db) : "out of memory");
        goto failed;
    }
    sqlite3_busy_timeout (self->read_db, REPLICA_BUSY_MS);
    if (tiers_sql_exec (self->read_db, "PRAGMA query_only = 1", why))
        goto failed;
    self->reads = tiers_docread_new (self->read_db, self->incarnation, why);
    if (!self->reads)
        goto failed;
    return 0;
failed:
    s_file_close (self);
    return -1;
}

//  --------------------------------------------------------------------------
//  Talking to the primary

static void
s_send_primary (replica_t *self, tiers_wire_t **msg_p)
{
    if (tiers_wire_send (*msg_p, self->stream, NULL))
        tiers_debug ("cannot send %s to the primary: %s",
                     tiers_wire_header (*msg_p, "op"), zmq_strerror (zmq_errno ()));
    tiers_wire_destroy (msg_p);
}

static tiers_wire_t *
s_request (const char *op)
{
    tiers_wire_t *msg = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_header (msg, "op", op, strlen (op));
    return msg;
}

//  A new socket to the primary: whatever the old one still queued (acks,
//  follows sent while the primary was away) goes with it, and the primary
//  knows the replica again by its new identity.
static void
s_reconnect (replica_t *self)
{
    char *why = NULL;
    zsock_t *stream = tiers_link_connect (self->entry, self->link, self->link_index, &why);
    if (!stream) {
        tiers_error ("cannot connect to the primary again: %s", why);
        free (why);
        return;
    }
    zsock_destroy (&self->stream);
    self->stream = stream;
    tiers_reactor_set_socket (self->reactor, self->stream_reader, stream);
}

static void
s_ack (replica_t *self)
{
    tiers_wire_t *msg = s_request ("ack");
    tiers_wire_set_headerf (msg, "applied", "%" PRId64, self->applied);
    s_send_primary (self, &msg);
}

static void
s_queue_clear (replica_t *self)
{
    for (size_t i = 0; i < self->queued; i++)
        tiers_wire_destroy (&self->queue [i]);
    self->queued = self->queued_bytes = 0;
    self->queued_to = self->applied;
}

//  --> CATCHING_UP: follow from `applied` (also again, when already there).
static void
s_follow (replica_t *self, const char *why)
{
    assert (self->db);
    s_queue_clear (self);
    self->following = false;
    if (self->state != REPLICA_CATCHING_UP)
        s_state_move (self, REPLICA_CATCHING_UP, why);
    else
        tiers_info ("follow again: %s", why);
    tiers_wire_t *msg = s_request ("follow");
    tiers_wire_set_header (msg, "name", self->name, strlen (self->name));
    tiers_wire_set_header (msg, "incarnation", self->incarnation, strlen (self->incarnation));
    tiers_wire_set_headerf (msg, "epoch", "%" PRId64, self->epoch);
    tiers_wire_set_headerf (msg, "applied", "%" PRId64, self->applied);
    s_send_primary (self, &msg);
    self->follow_sent = s_now ();
}

//  A message the replica cannot take: counted, logged; while following,
//  it follows again on a new socket (nothing of it was applied).
static void
s_refuse (replica_t *self, bool refollow, const char *format, ...)
{
    char reason [300];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    tiers_counter_add (self->refused, 1);
    tiers_warn ("refused from the primary: %s", reason);
    if (refollow && (self->state == REPLICA_CATCHING_UP || self->state == REPLICA_STREAMING)) {
        s_reconnect (self);
        s_follow (self, reason);
    }
}

//  --> SNAPSHOTTING (or a new snapshot when already there), logged why.
static void
s_resync (replica_t *self, bool diverged, const char *format, ...)
{
    char reason [300];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    tiers_counter_add (self->resyncs, 1);
    s_queue_clear (self);
    self->following = false;
    if (diverged)
        self->diverged = true;      //  no read from this file any more
    if (self->state != REPLICA_SNAPSHOTTING) {
        tiers_warn ("resync at sequence %" PRId64 ": %s; taking a snapshot%s",
                    self->applied, reason, diverged ? " (the file diverged: no "
                    "reads until the snapshot is in)" : "");
        s_state_move (self, REPLICA_SNAPSHOTTING, reason);
        s_snapshot_start (self, 0);
    }
    else {
        self->snap.failures++;
        int64_t delay = REPLICA_RETRY_MS << (self->snap.failures > 5 ? 5
                                                                     : self->snap.failures - 1);
        delay = delay > REPLICA_RETRY_MAX_MS ? REPLICA_RETRY_MAX_MS : delay;
        tiers_warn ("snapshot started over: %s; asking again in %" PRId64 " ms",
                    reason, delay);
        s_snapshot_start (self, delay);
    }
    s_pending_check (self);
}


//  --------------------------------------------------------------------------
//  Applying the stream

//  Any conflict is divergence: the apply stops, nothing of it stays.
typedef struct {
    int type;                   //  SQLITE_CHANGESET_DATA, ...; 0 = none
    char table [64];
} conflict_t;

static int
s_conflict (void *arg, int type, sqlite3_changeset_iter *iter)
{
    conflict_t *conflict = (conflict_t *) arg;
    if (!conflict->type) {
        conflict->type = type;
        const char *table = NULL;
        int columns, op, indirect;
        if (type != SQLITE_CHANGESET_FOREIGN_KEY
        &&  sqlite3changeset_op (iter, &table, &columns, &op, &indirect) == SQLITE_OK)
            snprintf (conflict->table, sizeof conflict->table, "%s", table ? table : "?");
    }
    return SQLITE_CHANGESET_ABORT;
}

static const char *
s_conflict_name (int type)
{
    return type == SQLITE_CHANGESET_DATA ? "data"
         : type == SQLITE_CHANGESET_NOTFOUND ? "not found"
         : type == SQLITE_CHANGESET_CONFLICT ? "conflict"
         : type == SQLITE_CHANGESET_CONSTRAINT ? "constraint"
         : type == SQLITE_CHANGESET_FOREIGN_KEY ? "foreign key" : "?";
}

//  The age of the oldest change the replica knows of and has not applied
//  (by the primary's clock: its `committed`), 0 when it has applied all
//  it knows of.
static int64_t
s_lag_ms (replica_t *self)
{
    if (!self->behind_committed || self->applied >= self->primary_sequence)
        return 0;
    int64_t lag = tiers_wire_now () - self->behind_committed;
    return lag < 0 ? 0 : lag;
}

static void
s_gauges (replica_t *self)
{
    int64_t lag = self->primary_sequence > self->applied
                ? self->primary_sequence - self->applied : 0;
    tiers_gauge_set (self->applied_gauge, self->applied);
    tiers_gauge_set (self->lag, lag);
    tiers_gauge_set (self->lag_seconds, s_lag_ms (self));
}

static bool
s_in_rotation (replica_t *self)
{
    return self->state == REPLICA_STREAMING && self->db && !self->diverged
        && s_lag_ms (self) <= self->max_lag_ms;
}

//  The group apply: every queued change in one transaction, then one ack.
static void
s_apply (replica_t *self)
{
    if (self->queued == 0)
        return;
    assert (self->db && self->following);
    char reason [300] = "";
    bool diverged = false;
    bool garbage = false;
    if (!tiers_sql_step_done (self->begin))
        snprintf (reason, sizeof reason, "cannot begin a transaction: %s",
                  sqlite3_errmsg (self->db));
    int64_t last = self->applied;
    for (size_t i = 0; !*reason && i < self->queued; i++) {
        tiers_wire_t *change = self->queue [i];
        int64_t sequence = 0;
        s_header_number (change, "sequence", &sequence);   //  checked on receipt
        conflict_t conflict = { 0, "" };
        int rc = sqlite3changeset_apply_v2 (self->db, (int) change->body_size,
                                            change->body, NULL, s_conflict, &conflict,
                                            NULL, NULL, 0);
        if (rc != SQLITE_OK) {
            diverged = conflict.type != 0;
            garbage = !diverged;
            if (diverged)
                snprintf (reason, sizeof reason, "a %s conflict in table %s applying "
                          "the change to sequence %" PRId64, s_conflict_name (conflict.type),
                          conflict.table, sequence);
            else
                snprintf (reason, sizeof reason, "the change to sequence %" PRId64
                          " cannot be applied: %s", sequence, sqlite3_errmsg (self->db));
            break;
        }
        //  The change's sequence, in the same transaction (the primary
        //  records the rows, not its meta table: doc/replication.md).
        sqlite3_bind_int64 (self->sequence_store, 1, sequence);
        int stored = sqlite3_step (self->sequence_store);
        sqlite3_reset (self->sequence_store);
        if (stored != SQLITE_DONE || sqlite3_changes (self->db) != 1) {
            snprintf (reason, sizeof reason, "cannot store sequence %" PRId64 ": %s",
                      sequence, sqlite3_errmsg (self->db));
            break;
        }
        last = sequence;
    }
    if (!*reason && !tiers_sql_step_done (self->commit)) {
        //  A failed commit may or may not have reached the file: the file
        //  says which (its sequence moved with it), once reopened.
        tiers_error ("commit of %zu changes failed: %s", self->queued,
                     sqlite3_errmsg (self->db));
        if (!sqlite3_get_autocommit (self->db))
            tiers_sql_step_done (self->rollback);
        tiers_counter_add (self->errors, 1);
        s_file_close (self);
        char *why = NULL;
        if (s_file_open (self, &why) == 0) {
            s_reconnect (self);
            s_follow (self, "a commit failed; the file was opened again");
        }
        else {
            tiers_error ("cannot open the file again: %s", why ? why : "it is gone");
            free (why);
            s_file_discard (self);
            s_resync (self, false, "the file could not be opened after a failed commit");
        }
        return;
    }
    if (*reason) {
        if (!sqlite3_get_autocommit (self->db))
            tiers_sql_step_done (self->rollback);
        if (garbage)
            tiers_counter_add (self->refused, 1);
        s_resync (self, diverged, "%s", reason);
        return;
    }
    tiers_counter_add (self->changes, self->queued);
    int64_t now = tiers_wire_now ();
    for (size_t i = 0; i < self->queued; i++) {
        //  The replication lag of each change: from the primary's COMMIT
        //  to this one (by the two clocks; never below 0).
        int64_t committed = now;
        s_header_number (self->queue [i], "committed", &committed);
        tiers_histogram_observe (self->apply_seconds,
                                 now > committed ? (now - committed) / 1000.0 : 0);
        tiers_wire_destroy (&self->queue [i]);
    }
    self->queued = self->queued_bytes = 0;
    self->applied = last;
    self->queued_to = last;
    //  The next read sees what was applied.
    tiers_docread_end (self->reads);
    s_ack (self);
    if (self->applied >= self->primary_sequence)
        self->behind_committed = 0;
    else
        self->behind_committed = self->primary_committed;
    if (self->state == REPLICA_CATCHING_UP && self->applied >= self->primary_sequence)
        s_state_move (self, REPLICA_STREAMING, "caught up");
    s_gauges (self);
    s_pending_check (self);
}

//  A `change`: checked, then queued for the group apply (or dropped as a
//  duplicate, or the reason for a resync).
static void
s_on_change (replica_t *self, tiers_wire_t **msg_p)
{
    tiers_wire_t *msg = *msg_p;
    if ((self->state != REPLICA_CATCHING_UP && self->state != REPLICA_STREAMING)
    ||  !self->following) {
        tiers_counter_add (self->ignored, 1);
        return;                     //  of a follow before this one, or a snapshot's time
    }
    bool bad = false;
    const char *shard = tiers_wire_text (msg, "shard", &bad);
    const char *incarnation = tiers_wire_text (msg, "incarnation", &bad);
    const char *checksum = tiers_wire_text (msg, "checksum", &bad);
    int64_t epoch, previous, sequence, committed;
    if (bad || !shard || !incarnation || !checksum
    ||  s_header_number (msg, "epoch", &epoch) || s_header_number (msg, "previous", &previous)
    ||  s_header_number (msg, "sequence", &sequence)
    ||  s_header_number (msg, "committed", &committed)
    ||  sequence <= previous || !s_lower_hex (checksum, 2 * SHA256_DIGEST_SIZE)) {
        s_refuse (self, true, "a change with missing or malformed headers (shard, "
                  "incarnation, epoch, previous, sequence > previous, committed, checksum)");
        return;
    }
    if (!streq (shard, self->of)) {
        tiers_counter_add (self->refused, 1);
        s_resync (self, false, "a change of shard '%.64s', not '%s'", shard, self->of);
        return;
    }
    if (!streq (incarnation, self->incarnation)) {
        tiers_counter_add (self->refused, 1);
        s_resync (self, false, "a change of incarnation '%.32s', not '%s'",
                  incarnation, self->incarnation);
        return;
    }
    if (epoch != self->epoch) {
        tiers_counter_add (self->refused, 1);
        s_resync (self, false, "a change of epoch %" PRId64 ", not %" PRId64,
                  epoch, self->epoch);
        return;
    }
    struct sha256_ctx sha;
    sha256_init (&sha);
    sha256_update (&sha, msg->body_size, msg->body);
    char hex [2 * SHA256_DIGEST_SIZE + 1];
    s_digest_hex (&sha, hex);
    if (!streq (hex, checksum)) {
        tiers_counter_add (self->refused, 1);
        s_resync (self, false, "the change to sequence %" PRId64 " does not match "
                  "its checksum", sequence);
        return;
    }
    if (sequence > self->primary_sequence) {
        self->primary_sequence = sequence;
        self->primary_committed = committed;
    }
    if (sequence <= self->queued_to) {
        tiers_counter_add (self->duplicates, 1);
        tiers_debug ("duplicate change %" PRId64 "..%" PRId64 " ignored", previous, sequence);
        return;
    }
    if (previous < self->queued_to) {
        s_resync (self, false, "the change %" PRId64 "..%" PRId64 " overlaps sequence %"
                  PRId64, previous, sequence, self->queued_to);
        return;
    }
    if (previous > self->queued_to) {
        s_resync (self, false, "a gap: the change after sequence %" PRId64 " came, "
                  "the one after %" PRId64 " did not", previous, self->queued_to);
        return;
    }
    if (self->queued == REPLICA_QUEUE_MAX
    ||  self->queued_bytes + msg->body_size > REPLICA_QUEUE_BYTES) {
        s_apply (self);             //  bounded: apply what waits, then queue
        if (self->state == REPLICA_SNAPSHOTTING || !self->following)
            return;
    }
    if (!self->behind_committed)
        self->behind_committed = committed;
    self->queue [self->queued++] = msg;
    self->queued_bytes += msg->body_size;
    self->queued_to = sequence;
    *msg_p = NULL;                  //  the queue owns it now
}

//  The primary's answer to `follow`.
static void
s_on_follow (replica_t *self, tiers_wire_t *msg)
{
    bool bad = false;
    const char *error = tiers_wire_text (msg, "error", &bad);
    if (msg->status == 409 && self->following
    &&  (self->state == REPLICA_CATCHING_UP || self->state == REPLICA_STREAMING)) {
        //  While streaming: the primary forgot this follower (it restarted,
        //  or heard nothing for a while), or its position left the log. A
        //  follow on a new socket finds out which.
        s_reconnect (self);
        s_follow (self, error ? error : "the primary answered 409");
        return;
    }
    if (self->state != REPLICA_CATCHING_UP || self->following) {
        tiers_counter_add (self->ignored, 1);
        return;                     //  the answer to an earlier follow
    }
    if (msg->status == 421) {
        tiers_warn ("the primary is fenced (%.200s): following again in 1 s",
                    error ? error : "421");
        return;
    }
    if (msg->status == 409) {
        s_resync (self, false, "the primary cannot stream from sequence %" PRId64
                  " of incarnation %s, epoch %" PRId64 ": %.200s", self->applied,
                  self->incarnation, self->epoch, error ? error : "(no reason given)");
        return;
    }
    if (msg->status != 200) {
        tiers_warn ("the primary answered follow %d: %.200s (following again in 1 s)",
                    msg->status, error ? error : "(no reason given)");
        return;                     //  the tick asks again
    }
    const char *incarnation = tiers_wire_text (msg, "incarnation", &bad);
    int64_t epoch, sequence;
    if (bad || !incarnation || s_header_number (msg, "epoch", &epoch)
    ||  s_header_number (msg, "sequence", &sequence)) {
        s_refuse (self, true, "a follow answer with missing or malformed headers "
                  "(incarnation, epoch, sequence)");
        return;
    }
    if (epoch < self->told_epoch) {
        //  A fence told of a higher epoch: this primary is not the primary.
        tiers_warn ("the primary answers at epoch %" PRId64 ", but epoch %" PRId64 " is the "
                    "primary's now: not following it (asking again in 1 s)", epoch,
                    self->told_epoch);
        return;
    }
    if (!streq (incarnation, self->incarnation) || epoch != self->epoch) {
        tiers_counter_add (self->refused, 1);
        s_resync (self, false, "the primary follows with incarnation '%.32s', epoch %"
                  PRId64 ", not '%s', %" PRId64, incarnation, epoch,
                  self->incarnation, self->epoch);
        return;
    }
    if (sequence < self->applied) {
        s_resync (self, true, "the primary is at sequence %" PRId64 ", behind this "
                  "copy's %" PRId64, sequence, self->applied);
        return;
    }
    self->following = true;
    self->primary_sequence = sequence;
    tiers_debug ("following from %" PRId64 " (primary at %" PRId64 ")", self->applied,
                 sequence);
    if (self->applied >= sequence) {
        self->behind_committed = 0;
        s_state_move (self, REPLICA_STREAMING, "caught up");
    }
}

static void
s_on_heartbeat (replica_t *self, tiers_wire_t *msg)
{
    if ((self->state != REPLICA_CATCHING_UP && self->state != REPLICA_STREAMING)
    ||  !self->following)
        return;                     //  alive, and that is all it says now
    bool bad = false;
    const char *incarnation = tiers_wire_text (msg, "incarnation", &bad);
    int64_t epoch, sequence, committed;
    if (bad || !incarnation || s_header_number (msg, "epoch", &epoch)
    ||  s_header_number (msg, "sequence", &sequence)
    ||  s_header_number (msg, "committed", &committed)) {
        s_refuse (self, true, "a heartbeat with missing or malformed headers "
                  "(incarnation, epoch, sequence, committed)");
        return;
    }
    if (!streq (incarnation, self->incarnation) || epoch != self->epoch) {
        tiers_counter_add (self->refused, 1);
        s_resync (self, false, "the primary's heartbeat says incarnation '%.32s', "
                  "epoch %" PRId64 ", not '%s', %" PRId64, incarnation, epoch,
                  self->incarnation, self->epoch);
        return;
    }
    if (sequence < self->queued_to)
        return;                     //  older than what came: nothing new
    self->primary_sequence = sequence;
    self->primary_committed = committed;
    if (sequence > self->applied && !self->behind_committed)
        self->behind_committed = committed;
    if (self->state == REPLICA_CATCHING_UP && self->queued == 0
    &&  self->applied >= sequence) {
        self->behind_committed = 0;
        s_state_move (self, REPLICA_STREAMING, "caught up");
    }
}


//  --------------------------------------------------------------------------
//  Snapshots

static void
s_snapshot_close (replica_t *self)
{
    if (self->snap.fd >= 0)
        close (self->snap.fd);
    self->snap.fd = -1;
    self->snap.out_count = 0;
    s_remove (self->incoming);
}

static void
s_snapshot_ask (replica_t *self)
{
    assert (self->state == REPLICA_SNAPSHOTTING);
    s_snapshot_close (self);
    tiers_wire_t *msg = s_request ("snapshot");
    s_send_primary (self, &msg);
    self->snap.phase = SNAP_ASKING;
    self->snap.asked = s_now ();
}

//  A snapshot from the start: asked now, or after `delay_ms`.
static void
s_snapshot_start (replica_t *self, int64_t delay_ms)
{
    s_snapshot_close (self);
    if (delay_ms <= 0)
        s_snapshot_ask (self);
    else {
        self->snap.phase = SNAP_WAITING;
        self->snap.asked = s_now () + delay_ms;
    }
}

static void
s_chunk_send (replica_t *self, chunk_t *chunk)
{
    tiers_wire_t *msg = s_request ("chunk");
    tiers_wire_set_header (msg, "snapshot", self->snap.id, strlen (self->snap.id));
    tiers_wire_set_headerf (msg, "offset", "%" PRId64, chunk->offset);
    s_send_primary (self, &msg);
    chunk->asked = s_now ();
}

//  Up to REPLICA_CHUNKS_OUT chunks asked for at any time.
static void
s_chunks_fill (replica_t *self)
{
    snapshot_t *snap = &self->snap;
    while (snap->out_count < REPLICA_CHUNKS_OUT && snap->next < snap->size) {
        chunk_t *chunk = &snap->out [snap->out_count++];
        chunk->offset = snap->next;
        chunk->end = snap->next + REPLICA_CHUNK < snap->size ? snap->next + REPLICA_CHUNK
                                                             : snap->size;
        snap->next = chunk->end;
        s_chunk_send (self, chunk);
    }
}

static void
s_on_snapshot (replica_t *self, tiers_wire_t *msg)
{
    snapshot_t *snap = &self->snap;
    if (self->state != REPLICA_SNAPSHOTTING || snap->phase != SNAP_ASKING) {
        tiers_counter_add (self->ignored, 1);
        return;
    }
    bool bad = false;
    const char *error = tiers_wire_text (msg, "error", &bad);
    if (msg->status == 503) {
        int64_t retry = 1;
        if (s_header_number (msg, "retry-after", &retry) || retry < 1)
            retry = 1;
        retry = retry > 30 ? 30 : retry;
        tiers_info ("the snapshot is not ready (%.200s): asking again in %" PRId64 " s",
                    error ? error : "no reason given", retry);
        snap->phase = SNAP_WAITING;
        snap->asked = s_now () + retry * 1000;
        return;
    }
    if (msg->status != 200) {
        s_resync (self, false, "the primary answered snapshot %d: %.200s", msg->status,
                  error ? error : "(no reason given)");
        return;
    }
    const char *id = tiers_wire_text (msg, "snapshot", &bad);
    const char *checksum = tiers_wire_text (msg, "checksum", &bad);
    const char *incarnation = tiers_wire_text (msg, "incarnation", &bad);
    int64_t size, sequence, epoch;
    if (bad || !id || !*id || strlen (id) > REPLICA_ID_MAX
    ||  !tiers_utf8_valid ((const uint8_t *) id, strlen (id))
    ||  !s_lower_hex (checksum, 2 * SHA256_DIGEST_SIZE)
    ||  !s_lower_hex (incarnation, REPLICA_INCARNATION)
    ||  s_header_number (msg, "size", &size) || size < 1 || size > REPLICA_SNAPSHOT_MAX
    ||  s_header_number (msg, "sequence", &sequence)
    ||  s_header_number (msg, "epoch", &epoch) || epoch < 1) {
        tiers_counter_add (self->refused, 1);
        s_resync (self, false, "a snapshot answer with missing or malformed headers "
                  "(snapshot, size, checksum, sequence, incarnation, epoch)");
        return;
    }
    if (epoch < self->told_epoch) {
        s_resync (self, false, "a snapshot of epoch %" PRId64 ", but epoch %" PRId64
                  " is the primary's now", epoch, self->told_epoch);
        return;
    }
    snprintf (snap->id, sizeof snap->id, "%s", id);
    snprintf (snap->checksum, sizeof snap->checksum, "%s", checksum);
    snprintf (snap->incarnation, sizeof snap->incarnation, "%s", incarnation);
    snap->size = size;
    snap->sequence = sequence;
    snap->epoch = epoch;
    snap->fd = open (self->incoming, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (snap->fd < 0) {
        tiers_error ("cannot create %s: %s", self->incoming, strerror (errno));
        s_resync (self, false, "cannot create the snapshot's file");
        return;
    }
    tiers_info ("fetching snapshot %s of %s: %" PRId64 " bytes at sequence %" PRId64
                " (incarnation %s, epoch %" PRId64 ")", snap->id, self->of, size,
                sequence, incarnation, epoch);
    snap->phase = SNAP_FETCHING;
    sha256_init (&snap->sha);
    snap->hashed = 0;
    snap->next = 0;
    snap->out_count = 0;
    s_chunks_fill (self);
}

//  The snapshot is all there: check it, put it in the file's place, open
//  it, follow from its sequence.
static void
s_snapshot_install (replica_t *self)
{
    snapshot_t *snap = &self->snap;
    //  Chunks that came out of order were written, not hashed: read them.
    uint8_t *buffer = (uint8_t *) malloc (65536);
    assert (buffer);
    bool read_ok = true;
    while (read_ok && snap->hashed < snap->size) {
        size_t want = snap->size - snap->hashed < 65536 ? (size_t) (snap->size - snap->hashed)
                                                        : 65536;
        ssize_t got = pread (snap->fd, buffer, want, (off_t) snap->hashed);
        read_ok = got > 0;
        if (read_ok) {
            sha256_update (&snap->sha, (size_t) got, buffer);
            snap->hashed += got;
        }
    }
    free (buffer);
    char hex [2 * SHA256_DIGEST_SIZE + 1] = "";
    if (read_ok)
        s_digest_hex (&snap->sha, hex);
    struct stat st;
    if (!read_ok || fstat (snap->fd, &st) || st.st_size != snap->size) {
        s_resync (self, false, "cannot read back the snapshot's %" PRId64 " bytes: %s",
                  snap->size, strerror (errno));
        return;
    }
    if (!streq (hex, snap->checksum)) {
        tiers_counter_add (self->refused, 1);
        s_resync (self, false, "snapshot %s does not match its checksum", snap->id);
        return;
    }
    if (fsync (snap->fd)) {
        s_resync (self, false, "cannot sync the snapshot: %s", strerror (errno));
        return;
    }
    close (snap->fd);
    snap->fd = -1;
    //  The old file goes first, then its WAL (a WAL left beside the new
    //  file would be replayed into it), then the new file takes its name.
    //  A crash between the steps leaves no file, never a mix.
    s_file_close (self);
    s_remove (self->path);
    s_remove_suffixed (self->path, "-wal");
    s_remove_suffixed (self->path, "-shm");
    s_remove_suffixed (self->path, "-journal");
    if (rename (self->incoming, self->path)) {
        tiers_error ("cannot rename %s: %s", self->incoming, strerror (errno));
        s_resync (self, false, "cannot put the snapshot in place");
        return;
    }
    tiers_file_sync_dir (self->path);
    char *why = NULL;
    int rc = s_file_open (self, &why);
    if (rc == 0 && (!streq (self->incarnation, snap->incarnation)
                 || self->applied != snap->sequence || self->epoch != snap->epoch)) {
        why = zsys_sprintf ("it holds sequence %" PRId64 " of incarnation %s, epoch %"
                            PRId64 ", not what the primary said (%" PRId64 ", %s, %"
                            PRId64 ")", self->applied, self->incarnation, self->epoch,
                            snap->sequence, snap->incarnation, snap->epoch);
        rc = -1;
    }
    if (rc) {
        tiers_counter_add (self->refused, 1);
        s_file_discard (self);
        s_resync (self, false, "snapshot %s cannot be used: %s", snap->id,
                  why ? why : "it is gone");
        free (why);
        return;
    }
    tiers_counter_add (self->snapshots, 1);
    self->diverged = false;
    snap->failures = 0;
    self->primary_sequence = self->primary_sequence > self->applied
                           ? self->primary_sequence : self->applied;
    tiers_info ("snapshot %s installed: sequence %" PRId64 " of incarnation %s",
                snap->id, self->applied, self->incarnation);
    s_reconnect (self);             //  nothing of the snapshot's time is left on it
    s_follow (self, "snapshot installed");
    s_gauges (self);
    s_pending_check (self);
}

static void
s_on_chunk (replica_t *self, tiers_wire_t *msg)
{
    snapshot_t *snap = &self->snap;
    bool bad = false;
    const char *id = tiers_wire_text (msg, "snapshot", &bad);
    int64_t offset = -1;
    s_header_number (msg, "offset", &offset);
    size_t index = 0;
    while (index < snap->out_count && snap->out [index].offset != offset)
        index++;
    if (self->state != REPLICA_SNAPSHOTTING || snap->phase != SNAP_FETCHING
    ||  bad || !id || !streq (id, snap->id) || index == snap->out_count) {
        tiers_counter_add (self->ignored, 1);
        return;                     //  of another snapshot, or answered already
    }
    if (msg->status == 404) {
        //  Gone (kept 60 s after the last chunk asked): a new one.
        tiers_warn ("snapshot %s is gone: asking for another", snap->id);
        s_snapshot_ask (self);
        return;
    }
    chunk_t *chunk = &snap->out [index];
    if (msg->status != 200 || msg->body_size == 0
    ||  (int64_t) msg->body_size > chunk->end - chunk->offset) {
        if (msg->status == 200)
            tiers_counter_add (self->refused, 1);
        s_resync (self, false, "chunk %" PRId64 " of snapshot %s: status %d, %zu bytes "
                  "(asked for up to %" PRId64 ")", offset, snap->id, msg->status,
                  msg->body_size, chunk->end - chunk->offset);
        return;
    }
    size_t written = 0;
    while (written < msg->body_size) {
        ssize_t rc = pwrite (snap->fd, msg->body + written, msg->body_size - written,
                             (off_t) (offset + (int64_t) written));
        if (rc <= 0) {
            tiers_error ("cannot write %s: %s", self->incoming, strerror (errno));
            s_resync (self, false, "cannot write the snapshot's file");
            return;
        }
        written += (size_t) rc;
    }
    if (offset == snap->hashed) {
        sha256_update (&snap->sha, msg->body_size, msg->body);
        snap->hashed += (int64_t) msg->body_size;
    }
    if (offset + (int64_t) msg->body_size < chunk->end) {
        chunk->offset = offset + (int64_t) msg->body_size;     //  the rest, now
        s_chunk_send (self, chunk);
    }
    else
        snap->out [index] = snap->out [--snap->out_count];
    s_chunks_fill (self);
    if (snap->out_count == 0 && snap->next >= snap->size)
        s_snapshot_install (self);
}


//  --------------------------------------------------------------------------
//  The stream socket

static bool
s_on_stream (void *arg)
{
    replica_t *self = (replica_t *) arg;
    const char *error = NULL;
    zmsg_t *envelope = NULL;
    tiers_wire_t *msg = NULL;
    if (tiers_wire_try_recv (self->stream, &envelope, &msg, &error))
        return false;
    zmsg_destroy (&envelope);
    self->heard = s_now ();
    if (!msg) {
        s_refuse (self, true, "a malformed message: %s", error ? error : "?");
        return true;
    }
    bool bad = false;
    const char *op = tiers_wire_text (msg, "op", &bad);
    if (msg->kind != TIERS_WIRE_REPLY || bad || !op)
        s_refuse (self, true, "a %s message %s", tiers_wire_kind_name (msg->kind),
                  bad || !op ? "without an op" : "where replies are expected");
    else
    if (msg->status == 400) {
        const char *why = tiers_wire_text (msg, "error", &bad);
        tiers_warn ("the primary found our %.32s malformed: %.200s", op,
                    why ? why : "(no reason given)");
        if ((streq (op, "chunk") || streq (op, "snapshot"))
        &&  self->state == REPLICA_SNAPSHOTTING)
            s_resync (self, false, "the primary refused a %s request", op);
    }
    else
    if (streq (op, "change"))
        s_on_change (self, &msg);
    else
    if (streq (op, "heartbeat"))
        s_on_heartbeat (self, msg);
    else
    if (streq (op, "follow"))
        s_on_follow (self, msg);
    else
    if (streq (op, "snapshot"))
        s_on_snapshot (self, msg);
    else
    if (streq (op, "chunk"))
        s_on_chunk (self, msg);
    else
        s_refuse (self, false, "an unknown op '%.32s'", op);
    tiers_wire_destroy (&msg);
    return true;
}

//  Every 250 ms: the ack (keepalive), the primary's silence, the
//  snapshot's unanswered requests, the gauges.
static void
s_on_tick (void *arg)
{
    replica_t *self = (replica_t *) arg;
    int64_t now = s_now ();
    if (self->state == REPLICA_CATCHING_UP || self->state == REPLICA_STREAMING) {
        if (self->following)
            s_ack (self);
        int64_t since = self->heard > self->follow_sent ? self->heard : self->follow_sent;
        if (now - since >= REPLICA_SILENT_MS) {
            char why [96];
            snprintf (why, sizeof why, "the primary has been silent for %" PRId64 " ms",
                      now - self->heard);
            s_reconnect (self);
            s_follow (self, why);
        }
    }
    else
    if (self->state == REPLICA_SNAPSHOTTING) {
        snapshot_t *snap = &self->snap;
        if (snap->phase == SNAP_ASKING && now - snap->asked >= REPLICA_ASK_MS) {
            tiers_warn ("no answer to snapshot for %d s: asking again", REPLICA_ASK_MS / 1000);
            s_reconnect (self);
            s_snapshot_ask (self);
        }
        else
        if (snap->phase == SNAP_WAITING && now >= snap->asked)
            s_snapshot_ask (self);
        else
        if (snap->phase == SNAP_FETCHING) {
            bool late = false;
            for (size_t i = 0; i < snap->out_count; i++)
                late |= now - snap->out [i].asked >= REPLICA_ASK_MS;
            if (late) {
                tiers_warn ("a chunk of snapshot %s unanswered for %d s: asking again",
                            snap->id, REPLICA_ASK_MS / 1000);
                s_reconnect (self);
                for (size_t i = 0; i < snap->out_count; i++)
                    s_chunk_send (self, &snap->out [i]);
            }
        }
    }
    s_gauges (self);
}


//  --------------------------------------------------------------------------
//  Reads

static void
s_reply (replica_t *self, tiers_wire_t **reply_p, zmsg_t *route)
{
    tiers_wire_set_headerf (*reply_p, "applied", "%" PRId64, self->applied);
    if ((*reply_p)->status >= 500 || (*reply_p)->status == 400)
        tiers_counter_add (self->errors, 1);
    if (tiers_wire_send (*reply_p, self->router, route))
        tiers_debug ("reply %s: caller gone or full", (*reply_p)->rid);
    tiers_wire_destroy (reply_p);
}

static void
s_fail (replica_t *self, const tiers_wire_t *request, zmsg_t *route, int status,
        const char *format, ...)
    __attribute__ ((format (printf, 5, 6)));

static void
s_fail (replica_t *self, const tiers_wire_t *request, zmsg_t *route, int status,
        const char *format, ...)
{
    char reason [300];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    tiers_wire_t *reply = tiers_docread_error (request, status, "%s", reason);
    if (status == 409 && *self->incarnation)
        tiers_wire_set_header (reply, "incarnation", self->incarnation,
                               strlen (self->incarnation));
    s_reply (self, &reply, route);
}

//  Answers a read from the file (checked: the file is there, not diverged).
static void
s_read (replica_t *self, tiers_wire_t *request, zmsg_t *route)
{
    tiers_counter_add (self->reads_total, 1);
    bool bad = false;
    const char *op = tiers_wire_text (request, "op", &bad);
    const char *why = NULL;
    const char *collection = tiers_docread_key (request, "collection", &why);
    tiers_wire_t *reply;
    if (streq (op, "list"))
        reply = tiers_docread_list (self->reads, request, collection);
    else
        reply = tiers_docread_get (self->reads, request, collection,
                                   tiers_docread_key (request, "id", &why));
    s_reply (self, &reply, route);
}

static bool
s_readable (replica_t *self)
{
    return self->db && self->reads && !self->diverged;
}

//  The waiting reads: answered when the replica got there, 409 when it
//  cannot (another incarnation) or did not in time.
static void
s_pending_check (replica_t *self)
{
    int64_t now = s_now ();
    size_t kept = 0;
    for (size_t i = 0; i < self->pending_count; i++) {
        pending_t *pending = &self->pending [i];
        bool readable = s_readable (self);
        if (readable && !streq (pending->incarnation, self->incarnation))
            s_fail (self, pending->request, pending->route, 409, "this replica holds "
                    "incarnation %s, not %s", self->incarnation, pending->incarnation);
        else
        if (readable && self->applied >= pending->sequence)
            s_read (self, pending->request, pending->route);
        else
        if (now >= pending->until)
            s_fail (self, pending->request, pending->route, 409, "this replica did not "
                    "reach sequence %" PRId64 " in time (applied %" PRId64 ", %s)",
                    pending->sequence, self->applied, s_state_names [self->state]);
        else {
            self->pending [kept++] = *pending;
            continue;
        }
        tiers_wire_destroy (&pending->request);
        zmsg_destroy (&pending->route);
    }
    self->pending_count = kept;
}

//  The highest epoch this replica knows of: its file's, or one a fence
//  told it of (what it says in STATUS: a primary that asks must learn of
//  a promotion from any copy that knows of it).
static int64_t
s_epoch_known (replica_t *self)
{
    return self->told_epoch > self->epoch ? self->told_epoch : self->epoch;
}

//  What a fence or a promotion said is kept beside the file, made durable
//  before it is answered, so that a restart remembers it: <file>.fence
//  ("EPOCH BY": the epoch known and the replica that holds it; the
//  majority check of a returning primary counts on it) and <file>.primary
//  ("EPOCH": this replica was promoted; it starts as the shard).

//  `fence` (epoch, by): a copy of a higher epoch is the primary. The
//  replica follows it from now on (at its stream port: the link `peers`),
//  and never again the primary it followed (its epoch is lower).
static void
s_on_fence (replica_t *self, tiers_wire_t *msg, zmsg_t *route, int64_t epoch,
            const char *by)
{
    if (epoch > s_epoch_known (self) && epoch > self->epoch) {
        char *mark = zsys_sprintf ("%s.fence", self->path);
        char *text = zsys_sprintf ("%" PRId64 " %.64s\n", epoch, by);
        int kept = tiers_file_put_durable (mark, text);
        free (mark);
        free (text);
        if (kept) {
            s_fail (self, msg, route, 503, "cannot keep the fence durably: not taken");
            return;
        }
        self->told_epoch = epoch;
        const tiers_target_t *targets = NULL;
        size_t count = tiers_entry_targets (self->entry, "peers", &targets);
        size_t found = count;
        for (size_t i = 0; i < count; i++)
            if (streq (targets [i].entry->name, by))
                found = i;
        if (found < count) {
            tiers_warn ("fenced: %s is the primary at epoch %" PRId64 " (this copy is at %"
                        PRId64 "): following it", by, epoch, self->epoch);
            self->link = "peers";
            self->link_index = found;
            s_reconnect (self);
            if (self->state == REPLICA_CATCHING_UP || self->state == REPLICA_STREAMING)
                s_follow (self, "a new primary");
            else
            if (self->state == REPLICA_SNAPSHOTTING)
                s_snapshot_start (self, 0);
        }
        else
            tiers_warn ("fenced: %s is the primary at epoch %" PRId64 ", but it binds no "
                        "stream port in this map: this replica follows no primary of a "
                        "lower epoch, and nobody until the map says where", by, epoch);
    }
    tiers_wire_t *reply = tiers_wire_reply_to (msg, 200);
    tiers_wire_set_headerf (reply, "epoch", "%" PRId64, s_epoch_known (self));
    tiers_wire_set_headerf (reply, "sequence", "%" PRId64, self->applied);
    tiers_wire_set_header (reply, "role", "replica", 7);
    s_reply (self, &reply, route);
}

static void
s_on_request (replica_t *self, tiers_wire_t **msg_p, zmsg_t **route_p)
{
    tiers_wire_t *msg = *msg_p;
    zmsg_t *route = *route_p;
    bool bad = false;
    const char *op = tiers_wire_text (msg, "op", &bad);
    const char *min_text = tiers_wire_text (msg, "min-sequence", &bad);
    const char *incarnation = tiers_wire_text (msg, "incarnation", &bad);
    const char *eventual = tiers_wire_text (msg, "eventual", &bad);
    if (bad) {
        s_fail (self, msg, route, 400, "a header (op, min-sequence, incarnation, "
                "eventual) holds a NUL byte");
        return;
    }
    if (!op) {
        s_fail (self, msg, route, 400, "missing op");
        return;
    }
    if (streq (op, "fence") || streq (op, "promote")) {
        const char *by = tiers_wire_text (msg, "by", &bad);
        int64_t epoch = 0;
        if (bad || !by || !*by || strlen (by) > 64
        ||  s_header_number (msg, "epoch", &epoch) || epoch < 1) {
            s_fail (self, msg, route, 400, "%s needs epoch (1 or more) and by (a name)", op);
            return;
        }
        if (streq (op, "fence")) {
            s_on_fence (self, msg, route, epoch, by);
            return;
        }
        if (epoch <= s_epoch_known (self)) {
            s_fail (self, msg, route, 409, "epoch %" PRId64 " is not above this copy's %"
                    PRId64, epoch, s_epoch_known (self));
            return;
        }
        if (!s_readable (self) || self->promote) {
            s_fail (self, msg, route, 503, "this replica cannot be promoted now (%s%s)",
                    self->promote ? "a promotion is under way" : s_state_names [self->state],
                    !self->promote && self->diverged ? ", its file diverged" : "");
            return;
        }
        //  The handover (s_replica_actor, after the reactor): the shard's
        //  loop answers the promoter once it serves.
        tiers_warn ("promoted by %.64s to epoch %" PRId64 " at sequence %" PRId64,
                    by, epoch, self->applied);
        self->promote = msg;
        self->promote_route = route;
        self->promote_to = epoch;
        *msg_p = NULL;
        *route_p = NULL;
        tiers_reactor_stop (self->reactor);
        return;
    }
    if (streq (op, "put") || streq (op, "delete")) {
        tiers_wire_t *reply = tiers_docread_error (msg, 421, "a replica does not take writes");
        tiers_wire_set_header (reply, "primary", self->of, strlen (self->of));
        s_reply (self, &reply, route);
        return;
    }
    if (!streq (op, "get") && !streq (op, "list")) {
        s_fail (self, msg, route, 400, "unknown op (get, list; a replica takes no writes)");
        return;
    }
    const char *why = NULL;
    if (!tiers_docread_key (msg, "collection", &why)) {
        s_fail (self, msg, route, 400, "bad collection: %s", why);
        return;
    }
    if (streq (op, "get") && !tiers_docread_key (msg, "id", &why)) {
        s_fail (self, msg, route, 400, "bad id: %s", why);
        return;
    }
    int64_t min_sequence = 0;
    if (min_text && s_number (min_text, &min_sequence)) {
        s_fail (self, msg, route, 400, "bad min-sequence: expected a decimal sequence");
        return;
    }
    if (min_text && !incarnation) {
        s_fail (self, msg, route, 400, "min-sequence needs incarnation: a sequence is "
                "one of an incarnation");
        return;
    }
    if (incarnation && !s_lower_hex (incarnation, REPLICA_INCARNATION)) {
        s_fail (self, msg, route, 400, "bad incarnation: expected %d lower-case hex digits",
                REPLICA_INCARNATION);
        return;
    }
    if (eventual && !streq (eventual, "1") && !streq (eventual, "0")) {
        s_fail (self, msg, route, 400, "bad eventual: expected 1 or 0");
        return;
    }
    if (eventual && streq (eventual, "1") && !s_in_rotation (self)) {
        s_fail (self, msg, route, 409, "not in the read rotation (%s, %" PRId64 " ms "
                "behind, max_lag %" PRId64 " ms)", s_state_names [self->state],
                s_lag_ms (self), self->max_lag_ms);
        return;
    }
    if (!incarnation) {
        if (s_readable (self))
            s_read (self, msg, route);
        else
            s_fail (self, msg, route, 409, "this replica has no copy to read from yet "
                    "(%s)", s_state_names [self->state]);
        return;
    }
    if (s_readable (self) && !streq (incarnation, self->incarnation)) {
        s_fail (self, msg, route, 409, "this replica holds incarnation %s, not %s",
                self->incarnation, incarnation);
        return;
    }
    if (s_readable (self) && self->applied >= min_sequence) {
        s_read (self, msg, route);
        return;
    }
    //  Behind: wait for it, up to read_wait and within the deadline.
    int64_t wait = self->read_wait_ms;
    if (msg->deadline) {
        int64_t left = msg->deadline - tiers_wire_now ();
        wait = left < wait ? left : wait;
    }
    if (wait <= 0 || self->pending_count == REPLICA_PENDING_MAX) {
        s_fail (self, msg, route, 409, "this replica is at sequence %" PRId64 ", not %"
                PRId64 "%s", self->applied, min_sequence, wait <= 0 ? ""
                : " (and too many reads wait already)");
        return;
    }
    pending_t *pending = &self->pending [self->pending_count++];
    pending->request = msg;
    pending->route = route;
    pending->sequence = min_sequence;
    snprintf (pending->incarnation, sizeof pending->incarnation, "%s", incarnation);
    pending->until = s_now () + wait;
    *msg_p = NULL;
    *route_p = NULL;                //  the pending read owns them
}

static void
s_on_status (replica_t *self, tiers_wire_t *msg, zmsg_t *route)
{
    int64_t lag = self->primary_sequence > self->applied
                ? self->primary_sequence - self->applied : 0;
    json_t *status = json_object ();
    json_object_set_new (status, "replica", json_string (self->name));
    json_object_set_new (status, "of", json_string (self->of));
    json_object_set_new (status, "state", json_string (s_state_words [self->state]));
    json_object_set_new (status, "incarnation", json_string (self->incarnation));
    json_object_set_new (status, "epoch", json_integer (s_epoch_known (self)));
    json_object_set_new (status, "applied", json_integer (self->applied));
    json_object_set_new (status, "primary_sequence", json_integer (self->primary_sequence));
    json_object_set_new (status, "lag", json_integer (lag));
    json_object_set_new (status, "lag_ms", json_integer (s_lag_ms (self)));
    json_object_set_new (status, "primary_silent_ms", json_integer (s_now () - self->heard));
    json_object_set_new (status, "rotation", json_boolean (s_in_rotation (self)));
    char *text = json_dumps (status, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (status);
    tiers_wire_t *reply = tiers_wire_reply_to (msg, 200);
    reply->kind = TIERS_WIRE_REPLY;
    tiers_wire_set_body (reply, text ? text : "{}", text ? strlen (text) : 2);
    free (text);
    if (tiers_wire_send (reply, self->router, route))
        tiers_debug ("status reply: caller gone or full");
    tiers_wire_destroy (&reply);
}

static bool
s_on_router (void *arg)
{
    replica_t *self = (replica_t *) arg;
    const char *error = NULL;
    zmsg_t *route = NULL;
    tiers_wire_t *msg = NULL;
    if (tiers_wire_try_recv (self->router, &route, &msg, &error))
        return false;
    zframe_t *identity = route ? zmsg_first (route) : NULL;
    if (!identity) {
        tiers_wire_destroy (&msg);
        zmsg_destroy (&route);
        return true;
    }
    if (!msg) {
        tiers_warn ("malformed message: %s", error ? error : "?");
        zmsg_t *back = zmsg_new ();
        zmsg_append (back, &(zframe_t *) { zframe_dup (identity) });
        s_fail (self, NULL, back, 400, "malformed message: %s", error ? error : "?");
        zmsg_destroy (&back);
    }
    else
    switch (msg->kind) {
        case TIERS_WIRE_REQUEST:
            s_on_request (self, &msg, &route);
            break;
        case TIERS_WIRE_STATUS:
            s_on_status (self, msg, route);
            break;
        case TIERS_WIRE_HEARTBEAT:
            break;
        default:
            s_fail (self, msg, route, 400, "unexpected %s message",
                    tiers_wire_kind_name (msg->kind));
            break;
    }
    tiers_wire_destroy (&msg);
    zmsg_destroy (&route);
    return true;
}

//  After each pass: the group apply of what the burst queued, the read
//  transaction's end, the waiting reads; the next pass when the first of
//  them is due.
static int
s_on_pass (void *arg)
{
    replica_t *self = (replica_t *) arg;
    tiers_docread_end (self->reads);
    s_apply (self);
    s_pending_check (self);
    tiers_docread_end (self->reads);
    if (self->pending_count == 0)
        return -1;
    int64_t now = s_now (), first = INT64_MAX;
    for (size_t i = 0; i < self->pending_count; i++)
        first = self->pending [i].until < first ? self->pending [i].until : first;
    return first <= now ? 0 : (int) (first - now);
}


//  --------------------------------------------------------------------------
//  The actor

static void
s_replica_destroy (replica_t *self)
{
    for (size_t i = 0; i < self->pending_count; i++) {
        s_fail (self, self->pending [i].request, self->pending [i].route, 503,
                "replica shutting down");
        tiers_wire_destroy (&self->pending [i].request);
        zmsg_destroy (&self->pending [i].route);
    }
    self->pending_count = 0;
    s_queue_clear (self);
    if (self->snap.fd >= 0)
        close (self->snap.fd);      //  a half-fetched snapshot: discarded at start
    self->snap.fd = -1;
    s_file_close (self);
    tiers_sock_flush (self->router, 500);
    zsock_destroy (&self->router);
    zsock_destroy (&self->stream);
    free (self->path);
    free (self->incoming);
    if (self->lock_fd >= 0)
        close (self->lock_fd);
    self->lock_fd = -1;
}

//  At start: a half-fetched snapshot goes; the file, if there is one and
//  it is a copy of this shard, is followed from its sequence; else a
//  snapshot.
static void
s_start (replica_t *self)
{
    s_remove (self->incoming);
    char *why = NULL;
    int rc = s_file_open (self, &why);
    if (rc == 0) {
        tiers_info ("%s: sequence %" PRId64 " of %s (incarnation %s, epoch %" PRId64 ")",
                    self->path, self->applied, self->of, self->incarnation, self->epoch);
        self->queued_to = self->applied;
        s_follow (self, "a file from before");
        return;
    }
    if (rc < 0) {
        tiers_warn ("%s; discarding it and taking a snapshot", why);
        free (why);
    }
    s_file_discard (self);          //  (its WAL and -shm too, if stale)
    s_state_move (self, REPLICA_SNAPSHOTTING, "no file yet");
    s_snapshot_start (self, 0);
}

static void
s_replica_actor (zsock_t *pipe, void *args_)
{
    tiers_actor_args_t *args = (tiers_actor_args_t *) args_;
    tiers_log_set_actor (args->name);
    replica_t *self = (replica_t *) zmalloc (sizeof *self);
    assert (self);
    self->lock_fd = -1;
    self->snap.fd = -1;
    snprintf (self->name, sizeof self->name, "%s", args->name);
    const tiers_entry_t *entry = args->entry;
    self->entry = entry;
    self->of = tiers_entry_get (entry, "of", "");
    self->cluster = tiers_map_name (args->map);
    const char *sync = tiers_entry_get (entry, "sync", tiers_map_cluster (args->map, "sync"));
    self->sync_full = !streq (sync, "normal");
    self->max_lag_ms = tiers_entry_int (entry, "max_lag", 1000);
    self->read_wait_ms = tiers_entry_int (entry, "read_wait", 1000);
    self->started = self->heard = s_now ();
    self->link = "primary";

    char labels [160], name [100];
    snprintf (labels, sizeof labels, "replica=\"%s\"",
              tiers_metrics_label_value (name, sizeof name, args->name));
    self->applied_gauge = tiers_metrics_gauge ("tiers_replica_applied", labels,
        "The sequence of the primary's last change applied to the replica's file");
    self->lag = tiers_metrics_gauge ("tiers_replica_lag", labels,
        "Sequence numbers the replica is behind the primary, as far as it knows");
    self->lag_seconds = tiers_metrics_gauge_ms ("tiers_replica_lag_seconds", labels,
        "Age of the oldest change the replica knows of and has not applied");
    self->state_gauge = tiers_metrics_gauge ("tiers_replica_state", labels,
        "0 empty, 1 snapshotting, 2 catching up, 3 streaming");
    self->apply_seconds = tiers_metrics_histogram ("tiers_replica_apply_seconds", labels,
        "Time from the primary's COMMIT of a change to the replica's");
    self->changes = tiers_metrics_counter ("tiers_replica_changes_total", labels,
        "Changes (committed transactions of the primary) applied");
    self->snapshots = tiers_metrics_counter ("tiers_replica_snapshots_total", labels,
        "Snapshots fetched and installed");
    self->resyncs = tiers_metrics_counter ("tiers_replica_resyncs_total", labels,
        "Resyncs (gap, conflict, checksum, incarnation, epoch, log not covering)");
    self->refused = tiers_metrics_counter ("tiers_replica_refused_total", labels,
        "Messages from the primary refused (malformed, wrong shard, incarnation, "
        "epoch or checksum, a changeset that does not apply, a bad snapshot)");
    self->reads_total = tiers_metrics_counter ("tiers_replica_reads_total", labels,
        "Reads (get, list) the replica answered from its file");
    self->duplicates = tiers_metrics_counter ("tiers_replica_duplicates_total", labels,
        "Changes the replica had already applied, ignored");
    self->ignored = tiers_metrics_counter ("tiers_replica_ignored_total", labels,
        "Answers the replica no longer waited for (an earlier follow, an old chunk)");
    self->errors = tiers_metrics_counter ("tiers_replica_errors_total", labels,
        "Requests refused or failed (400, 5xx) and failed commits");

    char leaf [128];
    snprintf (leaf, sizeof leaf, "%s.db", entry->name);
    self->path = tiers_data_path (args->map, leaf);
    self->incoming = zsys_sprintf ("%s.incoming", self->path);

    //  Promoted before: this copy is the shard (its role checks say
    //  whether it was fenced since).
    char *mark = zsys_sprintf ("%s.primary", self->path);
    bool primary = access (mark, F_OK) == 0;
    free (mark);
    if (primary) {
        const tiers_entry_t *shard = tiers_map_find (args->map, self->of);
        tiers_info ("%s was promoted: serving as the primary of %s", self->path, self->of);
        tiers_shard_setup_t setup = {
            .shard = self->of, .settings = shard,
            .slots = shard ? tiers_entry_get (shard, "slots", "all") : "all",
            .lock_fd = -1
        };
        s_replica_destroy (self);
        free (self);
        tiers_shard_serve (pipe, args, &setup);
        return;
    }
    //  Fenced before: the epoch it knows, and whom it follows.
    mark = zsys_sprintf ("%s.fence", self->path);
    FILE *fence = fopen (mark, "r");
    long long told = 0;
    char by [80] = "";
    if (fence && fscanf (fence, "%lld %64s", &told, by) == 2 && told > 0) {
        self->told_epoch = told;
        const tiers_target_t *targets = NULL;
        size_t count = tiers_entry_targets (entry, "peers", &targets);
        for (size_t i = 0; i < count; i++)
            if (streq (targets [i].entry->name, by)) {
                self->link = "peers";
                self->link_index = i;
            }
        tiers_info ("%s knows epoch %lld (%s): it follows %s", self->path, told, mark,
                    streq (self->link, "peers") ? by : "no copy of a lower epoch");
    }
    if (fence)
        fclose (fence);
    free (mark);

    char *why = NULL;
    self->lock_fd = tiers_file_lock (self->path, "replica", &why);
    if (self->lock_fd >= 0)
        self->router = tiers_port_bind (entry, "requests", &why);
    if (self->router)
        self->stream = tiers_link_connect (entry, self->link, self->link_index, &why);
    if (why) {
        tiers_actor_failed (pipe, "%s", why);
        free (why);
        s_replica_destroy (self);
        free (self);
        return;
    }
    self->reactor = tiers_reactor_new (pipe);
    self->stream_reader = tiers_reactor_reader (self->reactor, self->stream,
                                                REPLICA_STREAM_BURST, s_on_stream, self);
    tiers_reactor_reader (self->reactor, self->router, REPLICA_ROUTER_BURST,
                          s_on_router, self);
    tiers_reactor_timer (self->reactor, REPLICA_TICK_MS, s_on_tick, self);
    tiers_reactor_set_pass (self->reactor, s_on_pass, self);
    s_start (self);
    tiers_info ("replica of %s serving reads on %s (sync %s, max_lag %" PRId64
                " ms, read_wait %" PRId64 " ms)", self->of, entry->bind, sync,
                self->max_lag_ms, self->read_wait_ms);
    tiers_actor_ready (pipe);
    tiers_reactor_run (self->reactor);
    tiers_reactor_destroy (&self->reactor);
    int64_t applied = self->applied;
    if (self->promote) {
        //  Promoted: the thread serves as the shard from here on, with the
        //  replica's file, requests port and lock. Reads that wait are
        //  told to ask again; the shard's loop answers the promoter.
        for (size_t i = 0; i < self->pending_count; i++) {
            s_fail (self, self->pending [i].request, self->pending [i].route, 503,
                    "this replica is being promoted to primary: ask again");
            tiers_wire_destroy (&self->pending [i].request);
            zmsg_destroy (&self->pending [i].route);
        }
        self->pending_count = 0;
        const tiers_entry_t *shard = tiers_map_find (args->map, self->of);
        char *promoted = zsys_sprintf ("%s.primary", self->path);
        char *text = zsys_sprintf ("%" PRId64 "\n", self->promote_to);
        tiers_file_put_durable (promoted, text);
        free (promoted);
        free (text);
        tiers_shard_setup_t setup = {
            .shard = self->of, .settings = shard,
            .slots = shard ? tiers_entry_get (shard, "slots", "all") : "all",
            .requests = self->router, .lock_fd = self->lock_fd, .stream = NULL,
            .promote_to = self->promote_to, .promote = self->promote,
            .promote_route = self->promote_route
        };
        self->router = NULL;
        self->lock_fd = -1;
        self->promote = NULL;
        self->promote_route = NULL;
        s_replica_destroy (self);       //  its connections close: the shard opens its own
        free (self);
        tiers_shard_serve (pipe, args, &setup);
        return;
    }
    s_replica_destroy (self);
    free (self);
    tiers_info ("stopped at sequence %" PRId64, applied);
}

static const tiers_key_t s_keys [] = {
    { "of",        TIERS_KEY_NAME, true,  0, 0, NULL },
    { "sync",      TIERS_KEY_ENUM, false, 0, 0, "full|normal" },
    { "max_lag",   TIERS_KEY_MS,   false, 0, 3600 * 1000, NULL },
    { "read_wait", TIERS_KEY_MS,   false, 0, 60 * 1000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static const tiers_port_t s_ports [] = {
    { "requests", ZMQ_ROUTER, "document reads (get, list; min-sequence, eventual), "
                              "STATUS, fence and promote; writes are refused 421 "
                              "(doc/replication.md)", true },
    { "stream", ZMQ_ROUTER, "the commit stream it serves once promoted to primary", false },
    { NULL, 0, NULL, false }
};

static const tiers_link_t s_links [] = {
    //  The shard the entry's `of` names, at its commit stream.
    { "primary", "shard", "stream", ZMQ_DEALER, false, false, "of" },
    //  Promoted, it asks the other replicas for their epochs (as a shard).
    { "replicas", "replica", "requests", ZMQ_DEALER, true, true, NULL },
    //  Fenced, it follows the replica promoted since, at its stream port.
    { "peers", "replica", "stream", ZMQ_DEALER, true, true, NULL },
    { NULL, NULL, NULL, 0, false, false, NULL }
};

const tiers_kind_t tiers_replica_kind = {
    .name = "replica",
    .summary = "SQLite read copy of one shard, kept current from its commit stream",
    .rank = TIERS_RANK_STORAGE + 1,     //  after the shards it follows
    .run = s_replica_actor,
    .keys = s_keys,
    .ports = s_ports,
    .links = s_links,
    .multi = false,
    .listener = NULL,
    .command = "promote",
    .command_usage = "  promote REPLICA  make a replica the primary of its shard at the next "
                     "epoch\n                  (-m MAP, --keys DIR, --force; doc/replication.md)\n",
    .command_run = tiers_promote_run
};
