/*  shard.c — the storage tier: the SQLite primary for a range of hash slots.

    One shard = one SQLite file (<data>/<name>.db) in WAL mode holding the
    documents of the slots it owns, and one actor with two threads:

      - the actor thread owns the ROUTER the APIs talk to and a READ
        connection. It validates every request, answers reads (get, list)
        at once from the read connection — in WAL mode a reader sees the
        last committed state and never waits behind a commit's fsync — and
        queues writes (put, delete);
      - the WRITER thread (a zactor child) owns the write connection. The
        moment a commit ends it takes every waiting write (up to `batch`)
        from the shared queue into the next transaction, and hands the
        committed batch back to the actor thread, which answers each write
        while the next commit runs. Acknowledged means committed with the
        map's `sync` policy.

    The one idea: group commit. While the writer is inside a commit (an
    fsync costs milliseconds), writes keep arriving and queue up; the
    writer takes all of them into the next transaction. Under load one
    fsync pays for many writes; with a single client a write still commits
    at once, alone.

    Every committed write takes the next number of the shard's sequence as
    its version; the sequence lives in the meta table and moves in the same
    transaction as the documents, so a version is never handed out twice,
    not after a delete, not after a restart, and not after a failed commit
    (the in-memory counter is rolled back too). A document's tag (its ETag)
    is INCARNATION.VERSION: the incarnation is the file's identity, made
    new whenever the file cannot be the one this shard last served (an
    empty data dir, a restored copy: s_identity), so no tag repeats.

    A keyed write (`idempotency-key`) keeps its outcome in the same
    transaction; a repeat gets that outcome again (s_writer_apply).

    The hand-off (handoff_t, under its mutex) holds the queue of waiting
    writes (<= SHARD_QUEUE_MAX, beyond it 503 + retry-after) and two
    batches. Each batch is a state machine:

        FREE        the writer may fill it. The writer, when its last
                    commit ended (or on WORK), takes a FREE batch and fills
                    it from the queue --> COMMITTING. With nothing to do, or
                    no FREE batch, it says so (writer_idle) and waits for
                    WORK on its pipe; the actor thread sends WORK when it
                    queues a write or frees a batch while the writer waits.
        COMMITTING  only the writer touches it:
                      BEGIN IMMEDIATE
                      per write: precondition -> 412/404, or apply with
                                 version = ++sequence, updated = now
                      UPDATE meta sequence; COMMIT
                    anything before COMMIT failed -> ROLLBACK, sequence
                    restored, every write 503 not-applied; COMMIT failed
                    -> ROLLBACK, reopen, fence (s_writer_recover): 503
                    not-applied if the fence committed, else 500 unknown.
                    --DONE on the pipe--> ANSWERING
        ANSWERING   only the actor thread touches it: it answers every
                    write, then --> FREE.

    Invariants: a write is answered exactly once; a success is answered
    only after its COMMIT returned; the sequence on disk is the highest
    version ever handed out; at most one batch is COMMITTING, and batches
    come back in the order they were committed. On $TERM the writer takes
    no more batches (`stopping`), the batch in flight finishes its commit
    and is answered (bounded by one commit), waiting writes get 503, then
    the writer stops and both connections close with all statements
    finalized.

    Key ownership (which slots belong here) is checked by the APIs, which
    route with tiers_slot_of(); the shard does not re-check it for now.

    Its role (doc/replication.md, promotion and fencing):

        CHECKING    started with replicas in the map: it asks each of them
                    for its epoch before it takes a write (503 meanwhile),
                    until a majority of the shard's copies (itself and
                    half its replicas, rounded down) is heard
                                               --none is ahead--> PRIMARY
                                               --one is ahead--> FENCED
        PRIMARY     takes writes, publishes the stream. Every
                    FENCE_CHECK_MS it asks its replicas again
                                               --one is ahead, or a FENCE
                                                 with a higher epoch--> FENCED
        FENCED      a copy of a higher epoch exists (a replica was
                    promoted): this file may hold writes that the new
                    primary never had. It answers no read and no write
                    (421 with the reason); nothing leaves FENCED but a
                    restart as a replica. The fence is written to
                    <file>.fenced (fsync) before it is acknowledged, so a
                    restart starts FENCED.

    Invariant: a FENCED shard acknowledges nothing more; a write that its
    writer commits after the fence (it was in flight) is answered 421 too,
    never 2xx.
*/
#include "kind.h"
#include "map.h"
#include "node.h"
#include "wire.h"
#include "reactor.h"
#include "sock.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "storage/sqlfile.h"
#include "storage/shard.h"
#include "storage/stream.h"
#include "storage/docread.h"
//  The session extension's declarations (Debian's libsqlite3 has it built in).
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <sys/random.h>
#include <inttypes.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <unistd.h>

#define SHARD_QUEUE_MAX     10000       //  writes waiting for the writer
#define SHARD_KEY_MAX       1024        //  bytes in a collection or id
#define SHARD_BUSY_MS       5000        //  sqlite busy_timeout
#define SHARD_ROUTER_BURST  1024        //  messages read per wake-up
#define SHARD_SCHEMA        2           //  PRAGMA user_version
#define SHARD_INCARNATION   12          //  hex digits of an incarnation id
#define SHARD_TAG_MAX       48          //  "INCARNATION.VERSION" and its NUL
#define SHARD_MATCH_MAX     16          //  tags in a `match` header
#define SHARD_IKEY_MAX      255         //  bytes of an idempotency key
#define SHARD_PRUNE_MS      1000        //  expired keys are pruned this often
#define SHARD_PRUNE_ROWS    1000        //  ... at most this many at a time
#define FENCE_CHECK_MS      1000        //  replicas asked for their epoch this often
#define SHARD_PEERS_MAX     16          //  replicas of one shard
//  The lock file: the holder's pid, then the mark (doc/storage.md):
//  "INCARNATION SEQUENCE STATE INODE\n", STATE R (running) or C (stopped
//  cleanly), INODE the database file's.
#define MARK_OFFSET         TIERS_LOCK_PID  //  after the pid
#define MARK_SIZE           (SHARD_INCARNATION + 1 + 20 + 1 + 1 + 1 + 20 + 1)

typedef enum { OP_GET, OP_PUT, OP_DELETE, OP_LIST } op_t;

typedef enum { ROLE_CHECKING, ROLE_PRIMARY, ROLE_FENCED } role_t;

//  One queued write. The actor thread fills the request part; the writer
//  fills the outcome while the batch is COMMITTING.
typedef struct {
    tiers_wire_t *request;      //  owned; collection/id point into it
    zmsg_t *route;              //  owned: frames back to the caller
    op_t op;
    const char *collection;
    const char *id;
    const char *match;          //  `match`: the tags it may have, or NULL
    bool create;                //  `create` = 1: only if it does not exist
    bool exists;                //  `exists` = 1: only if it exists (If-Match: *)
    const char *key;            //  `idempotency-key`, or NULL
    uint8_t fingerprint [SHA256_DIGEST_SIZE];   //  of the request, with a key
    //  Outcome
    int status;
    int64_t version;            //  0 = no version header
    int64_t updated;
    char tag [SHARD_TAG_MAX];   //  "" = no tag header
    const char *error;          //  reason, or NULL; static or `error_text`
    char *error_text;           //  a replayed reason (owned), or NULL
    const char *outcome;        //  "unknown" / "not-applied" on a failure
    bool replayed;              //  the first outcome of its key, again
    //  ack = replica: committed, waiting until a replica has `ack_sequence`
    int64_t ack_sequence;
    int64_t ack_deadline;       //  monotonic ms; then 503 outcome unknown
} write_t;

//  A batch's states (the file head says who may touch it in each).
typedef enum { BATCH_FREE, BATCH_COMMITTING, BATCH_ANSWERING } batch_state_t;

typedef struct {
    batch_state_t state;        //  changed under the hand-off's lock
    write_t **writes;           //  capacity = `batch`
    size_t count;
    int64_t sequence;           //  the sequence after the batch
    //  With a stream: the committed transaction's changeset (sqlite3_malloc'ed,
    //  the actor thread publishes and frees it), the sequence before it and
    //  when COMMIT returned (wall ms).
    void *changeset;
    int changeset_size;
    int64_t previous, committed;
} batch_t;

//  The one place a batch changes state, under the hand-off's lock:
//  FREE -> COMMITTING (the writer fills it), COMMITTING -> ANSWERING (the
//  writer, when the commit ended, just before DONE), ANSWERING -> FREE
//  (the actor thread answered every write). At most one batch COMMITTING.
static void
s_batch_move (batch_t *batch, batch_state_t to, const batch_t *other)
{
    assert ((batch->state == BATCH_FREE && to == BATCH_COMMITTING
             && other->state != BATCH_COMMITTING)
         || (batch->state == BATCH_COMMITTING && to == BATCH_ANSWERING)
         || (batch->state == BATCH_ANSWERING && to == BATCH_FREE && batch->count == 0));
    batch->state = to;
}

//  What the actor thread and the writer share, under `lock`: the queue of
//  waiting writes and two batches, one at the writer (COMMITTING) while
//  the actor thread answers the other (ANSWERING) or it lies FREE.
typedef struct {
    pthread_mutex_t lock;
    write_t **queue;            //  ring of SHARD_QUEUE_MAX
    size_t head, count;
    size_t batch_max;
    size_t batch_bytes;         //  bodies in one batch, at most (a stream's
                                //  changeset must fit in one message)
    batch_t batches [2];
    size_t committing;          //  writes in the batch at the writer
    int64_t commit_started;     //  monotonic us the batch was taken, or 0
    bool unwritable;            //  the writer acknowledges no more writes
    bool writer_idle;           //  the writer waits for WORK on its pipe
    bool stopping;              //  the writer takes no more batches
} handoff_t;

//  The writer thread's world. Created by the actor thread, then owned by
//  the writer until it returns.
typedef struct {
    char name [112];            //  for its log lines
    handoff_t *handoff;
    char *path;
    bool sync_full;
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *rollback;
    sqlite3_stmt *lookup, *upsert, *remove, *store_sequence;
    sqlite3_stmt *key_lookup, *key_store, *key_prune, *fence;
    int64_t sequence;           //  last version handed out
    int64_t epoch;              //  the shard's epoch (meta 'epoch'; 1 when absent)
    bool replicating;           //  a stream port: every commit is published
    bool changesets;            //  ... with its changeset (the map has a
                                //  replica of the shard; else keys only)
    //  The file's identity (doc/storage.md): made when the file is, new
    //  again whenever the file cannot be the one this shard last served.
    const char *cluster, *shard;    //  the map's names (not owned)
    char incarnation [SHARD_INCARNATION + 1];
    int lock_fd;                //  the lock file, for the mark
    int64_t key_ttl_ms;         //  how long an idempotency key is kept
    int64_t pruned_at;          //  wall ms of the last prune of keys
    bool broken;                //  sticky: a reopen after a failure failed
    bool reopening;             //  s_writer_recover's open: same file, same identity
    int64_t promote_to;         //  > 0: a promotion, to this epoch (new incarnation)
    //  The files as opened: a removed or replaced one loses every later
    //  commit (SQLite writes on into the unlinked inode).
    dev_t db_dev, wal_dev;
    ino_t db_ino, wal_ino;
    bool wal_known;             //  the WAL file was seen
    bool file_lost;             //  sticky: no write is acknowledged again
    tiers_counter_t *commits, *writes, *errors, *replays, *failures;
    tiers_gauge_t *batch_size;
    tiers_histogram_t *commit_seconds;
} writer_t;

typedef struct {
    char name [96];
    const char *slots;
    zsock_t *router;
    zactor_t *writer;
    writer_t writer_state;
    sqlite3 *db;                //  the read connection
    tiers_docread_t *reads_of;  //  get and list on the read connection
    size_t batch_max;
    size_t max_doc;
    handoff_t handoff;
    int64_t sequence;           //  as of the last batch handed back
    char incarnation [SHARD_INCARNATION + 1];   //  the file's, for tags
    int lock_fd;                //  <file>.lock, held with flock while serving
    //  Replication (doc/replication.md)
    tiers_stream_t *stream;     //  the commit stream, or NULL (no `stream` port)
    bool ack_replica;           //  ack = replica: a write waits for a replica
    int64_t ack_timeout_ms;
    zlistx_t *acking;           //  committed writes waiting for a replica's ack,
                                //  in sequence order (write_t, owned)
    //  Its role (the file head): its replicas, asked for their epochs
    role_t role;
    zsock_t *peers [SHARD_PEERS_MAX];
    bool peer_answered [SHARD_PEERS_MAX];
    size_t peer_count;
    int64_t checking_until;     //  CHECKING: monotonic ms
    int64_t fence_asked;        //  monotonic ms the replicas were last asked
    bool said_waiting;          //  CHECKING: logged that it waits
    int64_t fenced_epoch;       //  FENCED: the epoch that fenced it
    int64_t fenced_sequence;    //  FENCED: its last sequence published before
    char *fence_path;           //  <file>.fenced
    char fenced_reason [200];
    tiers_counter_t *reads, *errors, *ack_timeouts;
} shard_t;


//  --------------------------------------------------------------------------
//  SQLite helpers shared by both connections

static void
s_close (sqlite3 **db_p, sqlite3_stmt **stmts [], size_t count)
{
    for (size_t i = 0; i < count; i++) {
        sqlite3_finalize (*stmts [i]);
        *stmts [i] = NULL;
    }
    if (*db_p && sqlite3_close (*db_p) != SQLITE_OK)
        tiers_error ("cannot close database: %s", sqlite3_errmsg (*db_p));
    *db_p = NULL;
}


//  --------------------------------------------------------------------------
//  The file's identity

#define SHARD_STR_(x) #x
#define SHARD_STR(x) SHARD_STR_ (x)

//  The mark in the lock file: the incarnation, the sequence of the last
//  commit this shard acknowledged, whether it is running or stopped
//  cleanly, and the database's inode (a copy brought back by cp, rsync or
//  tar is another inode). Written R with an fdatasync when the writer
//  opens the file, R after each commit with sync = full (no fsync: with
//  sync = full an acknowledged commit is durable, so the file can only be
//  ahead of a mark lost in a crash, never behind), and C with an
//  fdatasync at a clean stop.
static void
s_mark (writer_t *self, char state, bool durable)
{
    if (self->lock_fd < 0)
        return;
    char mark [MARK_SIZE + 1];
    snprintf (mark, sizeof mark, "%s %020" PRId64 " %c %020llu\n", self->incarnation,
              self->sequence, state, (unsigned long long) self->db_ino);
    if (pwrite (self->lock_fd, mark, MARK_SIZE, MARK_OFFSET) != MARK_SIZE
    ||  (durable && fdatasync (self->lock_fd)))
        tiers_warn ("cannot write the mark: %s", strerror (errno));
}

//  Reads the mark left by the last shard on this file: 0, or -1 if none.
static int
s_mark_read (writer_t *self, char incarnation [SHARD_INCARNATION + 1], int64_t *sequence,
             char *state, unsigned long long *inode)
{
    char mark [MARK_SIZE + 1];
    if (self->lock_fd < 0
    ||  pread (self->lock_fd, mark, MARK_SIZE, MARK_OFFSET) != MARK_SIZE)
        return -1;
    mark [MARK_SIZE] = 0;
    const char *at = mark + SHARD_INCARNATION + 1;
    bool good = mark [SHARD_INCARNATION] == ' ' && mark [MARK_SIZE - 1] == '\n'
             && strspn (mark, "0123456789abcdef") == SHARD_INCARNATION
             && strspn (at, "0123456789") == 20 && at [20] == ' '
             && (at [21] == 'R' || at [21] == 'C') && at [22] == ' '
             && strspn (at + 23, "0123456789") == 20;
    if (!good)
        return -1;
    memcpy (incarnation, mark, SHARD_INCARNATION);
    incarnation [SHARD_INCARNATION] = 0;
    *sequence = strtoll (at, NULL, 10);
    *state = at [21];
    *inode = strtoull (at + 23, NULL, 10);
    return 0;
}

//  Reads the identity rows into cluster/shard/incarnation (empty = none).
static int
s_identity_read (writer_t *self, char cluster [256], char shard [256],
                 char incarnation [SHARD_INCARNATION + 1], char **why)
{
    *cluster = *shard = *incarnation = 0;
    sqlite3_stmt *stmt = NULL;
    if (tiers_sql_prepare (self->db, "SELECT name, value FROM identity", &stmt, why))
        return -1;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *name = (const char *) sqlite3_column_text (stmt, 0);
        const char *value = (const char *) sqlite3_column_text (stmt, 1);
        if (!name || !value)
            continue;
        if (streq (name, "cluster"))
            snprintf (cluster, 256, "%s", value);
        else
        if (streq (name, "shard"))
            snprintf (shard, 256, "%s", value);
        else
        if (streq (name, "incarnation") && strlen (value) == SHARD_INCARNATION
             && strspn (value, "0123456789abcdef") == SHARD_INCARNATION)
            memcpy (incarnation, value, SHARD_INCARNATION + 1);
    }
    sqlite3_finalize (stmt);
    if (rc != SQLITE_DONE) {
        *why = zsys_sprintf ("%s: cannot read its identity: %s", self->path,
                             sqlite3_errmsg (self->db));
        return -1;
    }
    return 0;
}

//  The file's identity: whose it is (cluster, shard), and its incarnation.
//  A file keeps its incarnation only when the mark says that this shard
//  last served this very incarnation, at most up to the file's sequence.
//  Anything else (a new file, a file from before identities, no mark, the
//  mark of another incarnation, a file behind the mark: a restored copy,
//  or commits lost with sync = normal) makes a new one, so that no ETag
//  handed out before can match a document of this file.
static int
s_identity (writer_t *self, char **why)
{
    char cluster [256], shard [256], incarnation [SHARD_INCARNATION + 1];
    if (s_identity_read (self, cluster, shard, incarnation, why))
        return -1;
    if ((*cluster && !streq (cluster, self->cluster))
    ||  (*shard && !streq (shard, self->shard))) {
        *why = zsys_sprintf ("%s belongs to shard '%s' of cluster '%s', not to shard "
                             "'%s' of cluster '%s': each shard has its own file "
                             "(check the map's `data` and names)", self->path,
                             shard, cluster, self->shard, self->cluster);
        return -1;
    }
    char marked [SHARD_INCARNATION + 1];
    int64_t marked_sequence = 0;
    char state = 0;
    unsigned long long inode = 0;
    bool marked_ok = s_mark_read (self, marked, &marked_sequence, &state, &inode) == 0;
    //  With sync = normal a crash (of the machine) can lose acknowledged
    //  commits, and a mark written without fsync can be as old as the
    //  file: only a clean stop (C, made durable) vouches for the file.
    bool vouched = marked_ok && streq (marked, incarnation) && inode == self->db_ino
                && marked_sequence <= self->sequence && (self->sync_full || state == 'C');
    //  A reopen after a failed commit is the same open file: it keeps the
    //  incarnation it had, if the file still says so.
    if (self->reopening)
        vouched = *incarnation && streq (incarnation, self->incarnation);
    //  A promotion starts a new history on this file: a new incarnation
    //  (no tag handed out by the old primary can match here, whatever it
    //  acknowledged that never reached this copy) and the next epoch.
    if (self->promote_to > 0)
        vouched = false;
    if (*incarnation && vouched) {
        memcpy (self->incarnation, incarnation, sizeof self->incarnation);
        s_mark (self, 'R', true);
        return 0;
    }
    uint8_t random [SHARD_INCARNATION / 2];
    if (getrandom (random, sizeof random, 0) != (ssize_t) sizeof random) {
        *why = zsys_sprintf ("cannot draw an incarnation id: %s", strerror (errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof random; i++)
        snprintf (self->incarnation + 2 * i, 3, "%02x", random [i]);
    char *promotion = self->promote_to > 0
        ? sqlite3_mprintf ("INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch', %lld);"
                           "INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch_start', %lld);",
                           (long long) self->promote_to, (long long) self->sequence)
        : sqlite3_mprintf ("%s", "");
    char *sql = sqlite3_mprintf (
        "BEGIN IMMEDIATE;"
        "INSERT OR REPLACE INTO identity (name, value) VALUES ('cluster', %Q);"
        "INSERT OR REPLACE INTO identity (name, value) VALUES ('shard', %Q);"
        "INSERT OR REPLACE INTO identity (name, value) VALUES ('incarnation', %Q);"
        "INSERT OR REPLACE INTO identity (name, value) VALUES ('created', '%lld');"
        "%s"
        "COMMIT;", self->cluster, self->shard, self->incarnation,
        (long long) tiers_wire_now (), promotion ? promotion : "");
    sqlite3_free (promotion);
    int64_t promoted = self->promote_to;
    int rc = sql ? tiers_sql_exec (self->db, sql, why) : -1;
    sqlite3_free (sql);
    if (rc == 0 && self->promote_to > 0) {
        self->epoch = self->promote_to;
        self->promote_to = 0;       //  once: a reopen keeps this incarnation
    }
    if (rc) {
        if (!*why)
            *why = strdup ("out of memory");
        return -1;
    }
    if (promoted > 0)
        tiers_warn ("%s: promoted to primary at epoch %" PRId64 ", sequence %" PRId64
                    ": new incarnation %s (was %s)", self->path, promoted,
                    self->sequence, self->incarnation, *incarnation ? incarnation : "none");
    else
    if (!*incarnation && self->sequence == 0)
        tiers_info ("%s is new: incarnation %s", self->path, self->incarnation);
    else
        tiers_warn ("%s: new incarnation %s (was %s): %s; ETags of before match nothing",
                    self->path, self->incarnation, *incarnation ? incarnation : "none",
                    !*incarnation ? "a file from before identities"
                  : !marked_ok ? "nothing says this shard served this file last "
                                 "(its lock file is new)"
                  : !streq (marked, incarnation) || inode != self->db_ino
                    ? "the file is not the one this shard served last (another "
                      "incarnation, or a copy of it)"
                  : marked_sequence > self->sequence
                    ? "the file is behind what this shard acknowledged (a restored "
                      "copy, or commits lost)"
                  : "the shard did not stop cleanly with sync = normal, so commits "
                    "may have been lost");
    s_mark (self, 'R', true);
    return 0;
}


//  --------------------------------------------------------------------------
//  The writer thread

static int
s_writer_open (writer_t *self, char **why)
{
    if (sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READWRITE
                         | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL)) {
        *why = zsys_sprintf ("cannot open %s: %s", self->path,
                             self->db ? sqlite3_errmsg (self->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout (self->db, SHARD_BUSY_MS);
    sqlite3_extended_result_codes (self->db, 1);

    //  WAL is a property of the file; check that it took (it cannot on
    //  some file systems, and then reads would block behind commits).
    sqlite3_stmt *stmt = NULL;
    if (tiers_sql_prepare (self->db, "PRAGMA journal_mode=WAL", &stmt, why))
        return -1;
    bool wal = sqlite3_step (stmt) == SQLITE_ROW
            && streq ((const char *) sqlite3_column_text (stmt, 0), "wal");
    sqlite3_finalize (stmt);
    if (!wal) {
        *why = zsys_sprintf ("%s: cannot switch to WAL mode: %s", self->path,
                             sqlite3_errmsg (self->db));
        return -1;
    }
    if (tiers_sql_exec (self->db, self->sync_full ? "PRAGMA synchronous=FULL"
                                          : "PRAGMA synchronous=NORMAL", why))
        return -1;

    if (tiers_sql_prepare (self->db, "PRAGMA user_version", &stmt, why))
        return -1;
    int schema = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int (stmt, 0) : -1;
    sqlite3_finalize (stmt);
    if (schema < 0 || schema > SHARD_SCHEMA) {
        *why = zsys_sprintf ("%s: unknown schema version %d (this tiers knows %d)",
                             self->path, schema, SHARD_SCHEMA);
        return -1;
    }
    //  A new file gets the schema; a schema 1 file (no identity, no keys)
    //  gains the two tables. A file at SHARD_SCHEMA is not written to here
    //  (a reopen after a failed commit must not need a commit of its own).
    if (schema < SHARD_SCHEMA && tiers_sql_exec (self->db,
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
            "COMMIT;", why))
        return -1;

    if (tiers_sql_prepare (self->db, "SELECT value FROM meta WHERE key = 'sequence'",
                   &stmt, why))
        return -1;
    bool found = sqlite3_step (stmt) == SQLITE_ROW;
    self->sequence = found ? sqlite3_column_int64 (stmt, 0) : -1;
    sqlite3_finalize (stmt);
    if (self->sequence < 0) {
        *why = zsys_sprintf ("%s: cannot read the sequence", self->path);
        return -1;
    }
    //  The epoch (doc/replication.md): absent in a file that was never
    //  promoted, which is epoch 1.
    if (tiers_sql_prepare (self->db, "SELECT value FROM meta WHERE key = 'epoch'", &stmt, why))
        return -1;
    self->epoch = sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : 1;
    sqlite3_finalize (stmt);
    if (tiers_sql_prepare (self->db, "BEGIN IMMEDIATE", &self->begin, why)
    ||  tiers_sql_prepare (self->db, "COMMIT", &self->commit, why)
    ||  tiers_sql_prepare (self->db, "ROLLBACK", &self->rollback, why)
    ||  tiers_sql_prepare (self->db, "SELECT version FROM docs"
                   " WHERE collection = ?1 AND id = ?2", &self->lookup, why)
    ||  tiers_sql_prepare (self->db, "INSERT INTO docs (collection, id, version, updated, body)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)"
                   " ON CONFLICT (collection, id) DO UPDATE SET"
                   " version = excluded.version, updated = excluded.updated,"
                   " body = excluded.body", &self->upsert, why)
    ||  tiers_sql_prepare (self->db, "DELETE FROM docs WHERE collection = ?1 AND id = ?2",
                   &self->remove, why)
    ||  tiers_sql_prepare (self->db, "UPDATE meta SET value = ?1 WHERE key = 'sequence'",
                   &self->store_sequence, why)
    ||  tiers_sql_prepare (self->db, "SELECT fingerprint, status, version, tag, updated, error"
                   " FROM idempotency WHERE collection = ?1 AND id = ?2 AND key = ?3"
                   " AND created >= ?4", &self->key_lookup, why)
    ||  tiers_sql_prepare (self->db, "INSERT OR REPLACE INTO idempotency (collection, id, key,"
                   " fingerprint, status, version, tag, updated, error, created)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                   &self->key_store, why)
    ||  tiers_sql_prepare (self->db, "DELETE FROM idempotency WHERE (collection, id, key) IN"
                   " (SELECT collection, id, key FROM idempotency WHERE created < ?1"
                   " ORDER BY created LIMIT " SHARD_STR (SHARD_PRUNE_ROWS) ")",
                   &self->key_prune, why)
    ||  tiers_sql_prepare (self->db, "UPDATE meta SET value = value + 1 WHERE key = 'fences'",
                   &self->fence, why))
        return -1;
    //  The files as they are now, for s_files_intact: the database, and
    //  the WAL once journal_mode=WAL made it (else at the first commit).
    struct stat st;
    if (stat (self->path, &st)) {
        *why = zsys_sprintf ("cannot stat %s: %s", self->path, strerror (errno));
        return -1;
    }
    self->db_dev = st.st_dev;
    self->db_ino = st.st_ino;
    char wal_path [PATH_MAX];
    snprintf (wal_path, sizeof wal_path, "%s-wal", self->path);
    if (stat (wal_path, &st) == 0) {
        self->wal_dev = st.st_dev;
        self->wal_ino = st.st_ino;
        self->wal_known = true;
    }
    return s_identity (self, why);
}

static void
s_writer_close (writer_t *self)
{
    sqlite3_stmt **stmts [] = {
        &self->begin, &self->commit, &self->rollback, &self->lookup,
        &self->upsert, &self->remove, &self->store_sequence,
        &self->key_lookup, &self->key_store, &self->key_prune, &self->fence
    };
    s_close (&self->db, stmts, sizeof stmts / sizeof stmts [0]);
}

//  Does `tag` stand in the `match` list (tags separated by spaces)?
static bool
s_match (const char *match, const char *tag)
{
    size_t length = strlen (tag);
    for (const char *at = match; *at; ) {
        size_t size = strcspn (at, " ");
        if (size == length && memcmp (at, tag, size) == 0)
            return true;
        at += size;
        at += strspn (at, " ");
    }
    return false;
}

//  The first outcome of the write's idempotency key, when there is one
//  (and it is not older than the keys' time to live). Returns 1 when the
//  write is answered from it (the same request again, or 422 for another
//  request under the same key), 0 when the key is new, -1 on an error.
static int
s_writer_replay (writer_t *self, write_t *write, int64_t now)
{
    sqlite3_stmt *stmt = self->key_lookup;
    sqlite3_bind_text (stmt, 1, write->collection, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, write->id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 3, write->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 4, now - self->key_ttl_ms);
    int rc = sqlite3_step (stmt);
    int answer = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (rc == SQLITE_ROW) {
        const void *fingerprint = sqlite3_column_blob (stmt, 0);
        bool same = sqlite3_column_bytes (stmt, 0) == SHA256_DIGEST_SIZE && fingerprint
                 && memcmp (fingerprint, write->fingerprint, SHA256_DIGEST_SIZE) == 0;
        if (!same) {
            write->status = 422;
            write->outcome = "not-applied";
            write->error = "this Idempotency-Key was used for another request "
                           "(method, preconditions or body): not applied";
        }
        else {
            write->status = sqlite3_column_int (stmt, 1);
            write->version = sqlite3_column_int64 (stmt, 2);
            const char *tag = (const char *) sqlite3_column_text (stmt, 3);
            snprintf (write->tag, sizeof write->tag, "%s", tag ? tag : "");
            write->updated = sqlite3_column_int64 (stmt, 4);
            const char *error = (const char *) sqlite3_column_text (stmt, 5);
            if (error) {
                write->error_text = strdup (error);
                write->error = write->error_text;
            }
            write->replayed = true;
        }
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return answer;
}

//  Keeps the outcome of a keyed write, in the same transaction as the
//  write: the key's outcome exists exactly when the write committed.
static int
s_writer_keep (writer_t *self, write_t *write, int64_t now)
{
    sqlite3_stmt *stmt = self->key_store;
    sqlite3_bind_text (stmt, 1, write->collection, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, write->id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 3, write->key, -1, SQLITE_STATIC);
    sqlite3_bind_blob (stmt, 4, write->fingerprint, SHA256_DIGEST_SIZE, SQLITE_STATIC);
    sqlite3_bind_int (stmt, 5, write->status);
    sqlite3_bind_int64 (stmt, 6, write->version);
    sqlite3_bind_text (stmt, 7, write->tag, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 8, write->updated);
    if (write->error)
        sqlite3_bind_text (stmt, 9, write->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 10, now);
    return tiers_sql_step_done (stmt) ? 0 : -1;
}

//  Decides one write inside the open transaction and applies it. Returns
//  -1 on a storage error (the whole batch then fails); precondition
//  failures are outcomes.
static int
s_writer_decide (writer_t *self, write_t *write, int64_t now)
{
    sqlite3_bind_text (self->lookup, 1, write->collection, -1, SQLITE_STATIC);
    sqlite3_bind_text (self->lookup, 2, write->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step (self->lookup);
    bool exists = rc == SQLITE_ROW;
    int64_t current = exists ? sqlite3_column_int64 (self->lookup, 0) : 0;
    sqlite3_reset (self->lookup);
    sqlite3_clear_bindings (self->lookup);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    char tag [SHARD_TAG_MAX];
    snprintf (tag, sizeof tag, "%s.%" PRId64, self->incarnation, current);

    if (write->op == OP_DELETE && !exists) {
        write->status = 404;
        write->error = "no such document";
        return 0;
    }
    bool failed = (write->create && exists) || (write->exists && !exists)
               || (write->match && (!exists || !s_match (write->match, tag)));
    if (failed) {
        write->status = 412;
        write->error = write->create ? "document exists"
                     : !exists ? "no such document" : "version does not match";
        if (exists) {
            write->version = current;
            memcpy (write->tag, tag, sizeof tag);
        }
        return 0;
    }
    int64_t version = self->sequence + 1;
    sqlite3_stmt *stmt;
    if (write->op == OP_PUT) {
        stmt = self->upsert;
        sqlite3_bind_text (stmt, 1, write->collection, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 2, write->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (stmt, 3, version);
        sqlite3_bind_int64 (stmt, 4, now);
        sqlite3_bind_text (stmt, 5, (const char *) write->request->body,
                           (int) write->request->body_size, SQLITE_STATIC);
    }
    else {
        stmt = self->remove;
        sqlite3_bind_text (stmt, 1, write->collection, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 2, write->id, -1, SQLITE_STATIC);
    }
    if (!tiers_sql_step_done (stmt))
        return -1;
    self->sequence = version;
    write->status = write->op == OP_DELETE ? 204 : exists ? 200 : 201;
    write->version = version;
    write->updated = now;
    snprintf (write->tag, sizeof write->tag, "%s.%" PRId64, self->incarnation, version);
    return 0;
}

//  Apply one write inside the open transaction: its key's first outcome,
//  or the write decided now (and its outcome kept under its key).
static int
s_writer_apply (writer_t *self, write_t *write, int64_t now)
{
    //  A write whose deadline passed while it waited (a stopped node, a
    //  long queue) is not started: its caller has been told 504 already,
    //  and applying it now would make that 504 a lie.
    //  A repeat of a keyed write gets its first outcome even late: a
    //  replay applies nothing.
    if (write->key) {
        int replayed = s_writer_replay (self, write, now);
        if (replayed)
            return replayed < 0 ? -1 : 0;
    }
    if (write->request->deadline && write->request->deadline <= now) {
        write->status = 504;
        write->outcome = "not-applied";
        write->error = "the deadline passed before the write was started: "
                       "it was not applied";
        return 0;
    }
    if (s_writer_decide (self, write, now))
        return -1;
    return write->key ? s_writer_keep (self, write, now) : 0;
}

//  COMMITTING: the whole commit sequence for one batch.
//  Are the database and its WAL still the files that were opened? Deleting
//  either under a running shard would make every later commit vanish at
//  the next restart, so the writer looks before each COMMIT (two stat()
//  calls, beside an fsync) and, once a file is gone, acknowledges nothing
//  more until the shard is restarted on a file it can trust.
static bool
s_files_intact (writer_t *self)
{
    if (self->file_lost)
        return false;
    struct stat st;
    bool intact = stat (self->path, &st) == 0 && st.st_dev == self->db_dev
               && st.st_ino == self->db_ino && st.st_nlink > 0;
    char wal [PATH_MAX];
    snprintf (wal, sizeof wal, "%s-wal", self->path);
    if (intact && stat (wal, &st) == 0) {
        if (!self->wal_known) {
            self->wal_dev = st.st_dev;
            self->wal_ino = st.st_ino;
            self->wal_known = true;
        }
        intact = st.st_dev == self->wal_dev && st.st_ino == self->wal_ino
              && st.st_nlink > 0;
    }
    else
    if (intact && self->wal_known)
        intact = false;             //  the WAL was there and is gone
    if (!intact) {
        self->file_lost = true;
        tiers_error ("%s (or its WAL) was removed or replaced under the running "
                     "shard: no write is acknowledged any more; restart the shard",
                     self->path);
    }
    return intact;
}

static int s_writer_open (writer_t *self, char **why);
static void s_writer_close (writer_t *self);

//  After a COMMIT that failed, the writer may not trust its connection,
//  nor know whether the commit reached the file: an fsync that reports EIO
//  leaves the WAL frames written, and a later restart would recover them
//  as a commit nobody was told of. So it reopens the file, then commits a
//  fence (a one-row change) at once: that commit's frames take the place
//  of the failed one's, which can then never be recovered. True when the
//  fence committed: the failed batch is verifiably not applied. False: the
//  outcome is unknown (the fence failed too, or the file cannot be opened
//  again: then the shard acknowledges nothing more until it is restarted).
static bool
s_writer_recover (writer_t *self)
{
    tiers_counter_add (self->failures, 1);
    s_writer_close (self);
    char was [SHARD_INCARNATION + 1];
    memcpy (was, self->incarnation, sizeof was);
    int64_t sequence = self->sequence;
    char *why = NULL;
    self->reopening = true;
    int rc = s_writer_open (self, &why);
    self->reopening = false;
    if (rc == 0 && !streq (was, self->incarnation))
        why = zsys_sprintf ("the file reopened as another incarnation (%s, was %s)",
                            self->incarnation, was);
    else
    if (rc == 0 && self->sequence != sequence)
        why = zsys_sprintf ("the file reopened at sequence %" PRId64 ", not the %" PRId64
                            " the writer had (%s)", self->sequence, sequence,
                            self->sequence > sequence ? "the failed commit is there"
                                                      : "acknowledged commits are gone");
    if (why) {
        tiers_error ("cannot open the file again after a failed commit: %s; no write "
                     "is acknowledged any more; restart the shard", why);
        free (why);
        s_writer_close (self);
        self->broken = true;
        return false;
    }
    bool fenced = tiers_sql_step_done (self->begin) && tiers_sql_step_done (self->fence)
               && tiers_sql_step_done (self->commit);
    if (!fenced) {
        tiers_error ("the fence after a failed commit failed too: %s",
                     sqlite3_errmsg (self->db));
        if (!sqlite3_get_autocommit (self->db))
            tiers_sql_step_done (self->rollback);
    }
    else
        tiers_warn ("reopened %s after a failed commit; the fence committed, so that "
                    "commit is not applied (sequence %" PRId64 ")", self->path,
                    self->sequence);
    return fenced;
}

//  Expired idempotency keys go, a bounded number at a time, inside the
//  batch's transaction, at most once per SHARD_PRUNE_MS.
static bool
s_writer_prune (writer_t *self, int64_t now)
{
    if (now - self->pruned_at < SHARD_PRUNE_MS)
        return true;
    self->pruned_at = now;
    sqlite3_bind_int64 (self->key_prune, 1, now - self->key_ttl_ms);
    return tiers_sql_step_done (self->key_prune);
}

//  A failed batch: every write gets the same answer.
static void
s_batch_fail (batch_t *batch, int status, const char *outcome, const char *error)
{
    for (size_t i = 0; i < batch->count; i++) {
        write_t *write = batch->writes [i];
        write->status = status;
        write->version = write->updated = 0;
        write->tag [0] = 0;
        write->replayed = false;
        write->outcome = outcome;
        write->error = error;
    }
}

static void
s_writer_commit (writer_t *self, batch_t *batch)
{
    if (self->broken || self->file_lost) {
        s_batch_fail (batch, 503, "not-applied", self->broken
            ? "the shard could not open its file again after a failed commit: "
              "this write was not applied, and none will be until it is restarted"
            : "the shard's file was removed or replaced: this write was not applied, "
              "and none will be until the shard is restarted");
        tiers_counter_add (self->errors, batch->count);
        batch->previous = batch->sequence = self->sequence;     //  nothing to publish
        return;
    }
    int64_t started = tiers_clock_us ();
    int64_t saved = self->sequence;
    int64_t now = tiers_wire_now ();
    batch->changeset = NULL;
    batch->changeset_size = 0;
    batch->previous = saved;
    //  With a stream, the session records the transaction: attached before
    //  BEGIN, its changeset taken before COMMIT (after it, other writes
    //  could mix in), deleted after (3.40 has no reset). Only the tables
    //  the transaction can change are attached — each costs the session a
    //  look at its schema and a statement per transaction: docs always,
    //  idempotency when a write is keyed or expired keys are pruned. The
    //  meta table's sequence goes in the change's header (the replica
    //  stores it in the same transaction), the identity never changes in
    //  a batch (a new incarnation makes replicas take a snapshot).
    sqlite3_session *session = NULL;
    bool good = true;
    if (self->changesets) {
        bool keyed = now - self->pruned_at >= SHARD_PRUNE_MS;
        for (size_t i = 0; i < batch->count && !keyed; i++)
            keyed = batch->writes [i]->key != NULL;
        good = sqlite3session_create (self->db, "main", &session) == SQLITE_OK
            && sqlite3session_attach (session, "docs") == SQLITE_OK
            && (!keyed || sqlite3session_attach (session, "idempotency") == SQLITE_OK);
        if (!good)
            tiers_error ("cannot record the transaction for the stream: %s",
                         sqlite3_errmsg (self->db));
    }
    good = good && tiers_sql_step_done (self->begin);
    for (size_t i = 0; good && i < batch->count; i++)
        good = s_writer_apply (self, batch->writes [i], now) == 0;
    if (good)
        good = s_writer_prune (self, now);
    //  A transaction that changed rows but took no version (keys pruned, a
    //  keyed outcome kept) still moves the sequence: every change of the
    //  stream has sequence > previous.
    if (good && session && self->sequence == saved && !sqlite3session_isempty (session))
        self->sequence++;
    if (good) {
        sqlite3_bind_int64 (self->store_sequence, 1, self->sequence);
        good = tiers_sql_step_done (self->store_sequence);
    }
    if (good && session && self->sequence != saved) {
        good = sqlite3session_changeset (session, &batch->changeset_size,
                                         &batch->changeset) == SQLITE_OK
            && (size_t) batch->changeset_size <= TIERS_STREAM_CHANGE_MAX;
        if (!good)
            tiers_error ("cannot take the changeset of %zu writes (%d bytes): %s",
                         batch->count, batch->changeset_size, sqlite3_errmsg (self->db));
    }
    bool intact = good && s_files_intact (self);
    //  Up to here nothing has reached the file as a commit: a failure is
    //  rolled back and verifiably not applied. From COMMIT on it is not.
    bool committing = good && intact;
    if (committing)
        good = tiers_sql_step_done (self->commit);
    if (session)
        sqlite3session_delete (session);
    batch->committed = tiers_wire_now ();
    if (!good || !intact) {
        sqlite3_free (batch->changeset);
        batch->changeset = NULL;
        batch->changeset_size = 0;
        if (intact || committing)
            tiers_error ("%s of %zu writes failed: %s", committing ? "commit" : "transaction",
                         batch->count, sqlite3_errmsg (self->db));
        if (!sqlite3_get_autocommit (self->db))
            tiers_sql_step_done (self->rollback);
        self->sequence = saved;
        if (!intact && !committing && good)
            s_batch_fail (batch, 503, "not-applied",
                          "the shard's file was removed or replaced: this write was not "
                          "applied, and none will be until the shard is restarted");
        else
        if (!committing)
            s_batch_fail (batch, 503, "not-applied", "the storage failed before the "
                          "commit; the transaction was rolled back: not applied");
        else
        if (s_writer_recover (self))
            s_batch_fail (batch, 503, "not-applied", "the storage failed while "
                          "committing; the shard reopened its file and made sure "
                          "this write was not applied");
        else
            s_batch_fail (batch, 500, "unknown", "the storage failed while committing: "
                          "this write may or may not have been applied; retry it with "
                          "the same Idempotency-Key, or read before writing again");
        tiers_counter_add (self->errors, batch->count);
    }
    else {
        if (self->sync_full)
            s_mark (self, 'R', false);
        tiers_counter_add (self->commits, 1);
        tiers_counter_add (self->writes, batch->count);
        for (size_t i = 0; i < batch->count; i++)
            if (batch->writes [i]->replayed)
                tiers_counter_add (self->replays, 1);
        tiers_gauge_set (self->batch_size, (int64_t) batch->count);
        tiers_histogram_observe (self->commit_seconds,
                                 (tiers_clock_us () - started) / 1e6);
    }
    batch->sequence = self->sequence;
}

//  Receives "COMMAND" [pointer] from a pipe. Returns the command (to free)
//  or NULL when interrupted; *pointer_p is NULL if there was none.
static char *
s_recv_command (zsock_t *pipe, void **pointer_p)
{
    *pointer_p = NULL;
    zmsg_t *msg = zmsg_recv (pipe);
    if (!msg)
        return NULL;
    char *command = zmsg_popstr (msg);
    zframe_t *frame = zmsg_pop (msg);
    if (frame && zframe_size (frame) == sizeof (void *))
        memcpy (pointer_p, zframe_data (frame), sizeof (void *));
    zframe_destroy (&frame);
    zmsg_destroy (&msg);
    return command;
}

static void
s_writer_actor (zsock_t *pipe, void *args)
{
    writer_t *self = (writer_t *) args;
    tiers_log_set_actor (self->name);
    char *why = NULL;
    if (s_writer_open (self, &why)) {
        zsock_signal (pipe, 0);
        zstr_sendf (pipe, "ERROR %s", why);
        free (why);
        s_writer_close (self);
        return;
    }
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "OK %" PRId64, self->sequence);
    handoff_t *handoff = self->handoff;
    while (true) {
        //  The next batch is taken the moment a commit ends, without
        //  waiting for the actor thread to answer the last one.
        batch_t *batch = NULL;
        pthread_mutex_lock (&handoff->lock);
        for (int i = 0; i < 2 && !batch && handoff->count && !handoff->stopping; i++)
            if (handoff->batches [i].state == BATCH_FREE) {
                batch = &handoff->batches [i];
                s_batch_move (batch, BATCH_COMMITTING, &handoff->batches [1 - i]);
                batch->count = 0;
                size_t bytes = 0;
                while (handoff->count && batch->count < handoff->batch_max
                   &&  (batch->count == 0 || bytes + 2 * handoff->queue [handoff->head]->
                        request->body_size + 4096 <= handoff->batch_bytes)) {
                    //  (an update's changeset holds the old and the new body)
                    bytes += 2 * handoff->queue [handoff->head]->request->body_size + 4096;
                    batch->writes [batch->count++] = handoff->queue [handoff->head];
                    handoff->queue [handoff->head] = NULL;
                    handoff->head = (handoff->head + 1) % SHARD_QUEUE_MAX;
                    handoff->count--;
                }
                handoff->committing = batch->count;
                handoff->commit_started = tiers_clock_us ();
            }
        handoff->writer_idle = batch == NULL;
        pthread_mutex_unlock (&handoff->lock);
        if (batch) {
            s_writer_commit (self, batch);
            pthread_mutex_lock (&handoff->lock);
            handoff->committing = 0;
            handoff->commit_started = 0;
            handoff->unwritable = self->broken || self->file_lost;
            s_batch_move (batch, BATCH_ANSWERING, NULL);
            pthread_mutex_unlock (&handoff->lock);
            zsock_send (pipe, "sp", "DONE", batch);
            continue;
        }
        void *pointer;          //  idle: WORK wakes the writer, $TERM ends it
        char *command = s_recv_command (pipe, &pointer);
        bool stop = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (stop)
            break;
    }
    //  A clean stop: the mark says so, durably (with sync = normal only a
    //  clean stop lets the file keep its incarnation).
    if (self->db && !self->broken && !self->file_lost)
        s_mark (self, 'C', true);
    s_writer_close (self);
}


//  --------------------------------------------------------------------------
//  Input checks


static const char *
s_header (const tiers_wire_t *msg, const char *key, size_t *size_p)
{
    for (size_t i = 0; i < msg->header_count; i++)
        if (streq (msg->headers [i].key, key)) {
            *size_p = msg->headers [i].value_size;
            return msg->headers [i].value;
        }
    return NULL;
}

//  A key part (collection, id, after): 1..SHARD_KEY_MAX bytes of UTF-8
//  without NUL. Returns the value, or NULL with *why set.
static const char *
s_key (const tiers_wire_t *msg, const char *key, const char **why)
{
    size_t size = 0;
    const char *value = s_header (msg, key, &size);
    if (!value || size == 0)
        *why = "missing";
    else
    if (size > SHARD_KEY_MAX)
        *why = "too long";
    else
    if (memchr (value, 0, size) || !tiers_utf8_valid ((const uint8_t *) value, size))
        *why = "not UTF-8 text";
    else
        return value;
    return NULL;
}

//  --------------------------------------------------------------------------
//  Replies

static void
s_send (shard_t *self, tiers_wire_t **reply_p, zmsg_t *route)
{
    if (tiers_wire_send (*reply_p, self->router, route))
        tiers_debug ("reply %s: caller gone or full", (*reply_p)->rid);
    tiers_wire_destroy (reply_p);
}

//  Answer an error. `request` may be NULL (malformed frame).
static void
s_fail (shard_t *self, const tiers_wire_t *request, zmsg_t *route,
        int status, const char *format, ...)
{
    char reason [256];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    tiers_wire_t *reply;
    if (request)
        reply = tiers_wire_reply_to (request, status);
    else {
        reply = tiers_wire_new (TIERS_WIRE_REPLY);
        reply->status = (uint16_t) status;
    }
    tiers_wire_set_header (reply, "error", reason, strlen (reason));
    if (status == 503)
        tiers_wire_set_header (reply, "retry-after", "1", 1);
    if (status != 404 && status != 412)
        tiers_counter_add (self->errors, 1);
    s_send (self, &reply, route);
}

static void
s_write_destroy (write_t **write_p)
{
    write_t *write = *write_p;
    if (write) {
        tiers_wire_destroy (&write->request);
        zmsg_destroy (&write->route);
        free (write->error_text);
        free (write);
        *write_p = NULL;
    }
}

//  DONE: answer one write of a batch that came back.
static void
s_write_answer (shard_t *self, write_t *write)
{
    tiers_wire_t *reply = tiers_wire_reply_to (write->request, write->status);
    if (write->version)
        tiers_wire_set_headerf (reply, "version", "%" PRId64, write->version);
    if (write->tag [0])
        tiers_wire_set_header (reply, "tag", write->tag, strlen (write->tag));
    if (write->updated)
        tiers_wire_set_headerf (reply, "updated", "%" PRId64, write->updated);
    if (write->error)
        tiers_wire_set_header (reply, "error", write->error, strlen (write->error));
    if (write->outcome)
        tiers_wire_set_header (reply, "outcome", write->outcome, strlen (write->outcome));
    if (write->replayed)
        tiers_wire_set_header (reply, "replayed", "1", 1);
    if (write->status == 503)
        tiers_wire_set_header (reply, "retry-after", "1", 1);
    s_send (self, &reply, write->route);
}


//  --------------------------------------------------------------------------
//  Reads, in the actor thread

//  Reads: the answer every copy gives (storage/docread.c). Reads of one
//  burst share a read transaction; every write answered before the burst
//  is in its snapshot.
static void
s_get (shard_t *self, tiers_wire_t *msg, zmsg_t *route,
       const char *collection, const char *id)
{
    tiers_counter_add (self->reads, 1);
    tiers_wire_t *reply = tiers_docread_get (self->reads_of, msg, collection, id);
    if (reply->status >= 500)
        tiers_counter_add (self->errors, 1);
    s_send (self, &reply, route);
}

static void
s_list (shard_t *self, tiers_wire_t *msg, zmsg_t *route, const char *collection)
{
    tiers_counter_add (self->reads, 1);
    tiers_wire_t *reply = tiers_docread_list (self->reads_of, msg, collection);
    if (reply->status >= 400)
        tiers_counter_add (self->errors, 1);
    s_send (self, &reply, route);
}

//  --------------------------------------------------------------------------
//  Writes: validate, queue, ship, answer

//  Wakes the writer if it waits and could take work. Called under the lock.
static void
s_wake_writer (shard_t *self)
{
    handoff_t *handoff = &self->handoff;
    if (handoff->writer_idle && handoff->count && !handoff->stopping
    &&  (handoff->batches [0].state == BATCH_FREE
      || handoff->batches [1].state == BATCH_FREE)) {
        handoff->writer_idle = false;
        tiers_sock_send_str (self->writer, "WORK");
    }
}

static void s_acks_expire (shard_t *self, bool all);

static const char *
s_role_name (role_t role)
{
    return role == ROLE_CHECKING ? "checking" : role == ROLE_PRIMARY ? "primary" : "fenced";
}

//  The one place the role changes (the file head lists the moves).
static void
s_role_move (shard_t *self, role_t to)
{
    assert ((self->role == ROLE_CHECKING && (to == ROLE_PRIMARY || to == ROLE_FENCED))
         || (self->role == ROLE_PRIMARY && to == ROLE_FENCED));
    self->role = to;
}

//  The fence, durable: a restart starts FENCED.
static void
s_fence_write (shard_t *self, int64_t epoch)
{
    char text [32];
    snprintf (text, sizeof text, "%" PRId64 "\n", epoch);
    if (tiers_file_put_durable (self->fence_path, text))
        tiers_error ("the fence holds until this process stops");
}

//  A copy of a higher epoch exists: acknowledge nothing more.
static void
s_fence (shard_t *self, int64_t epoch, const char *by)
{
    if (self->role == ROLE_FENCED)
        return;
    s_fence_write (self, epoch);
    s_role_move (self, ROLE_FENCED);
    self->fenced_epoch = epoch;
    self->fenced_sequence = self->sequence;
    snprintf (self->fenced_reason, sizeof self->fenced_reason,
              "fenced: %s is at epoch %" PRId64 " (this copy is at %" PRId64 "): it "
              "answers nothing until it rejoins as a replica", by, epoch,
              self->writer_state.epoch);
    tiers_error ("%s", self->fenced_reason);
    if (self->stream)
        tiers_stream_fence (self->stream, epoch);
    s_acks_expire (self, true);
}

//  The stream heard of a higher epoch from a replica.
static void
s_on_stream_fence (void *arg, int64_t epoch)
{
    s_fence ((shard_t *) arg, epoch, "a replica");
}

//  A replica's STATUS: its epoch.
static bool
s_on_peer (void *arg, size_t index)
{
    shard_t *self = (shard_t *) arg;
    tiers_wire_t *reply = NULL;
    const char *error = NULL;
    if (tiers_wire_try_recv (self->peers [index], NULL, &reply, &error))
        return false;
    json_t *status = reply && reply->status == 200
        ? json_loadb ((const char *) reply->body, reply->body_size, 0, NULL) : NULL;
    json_t *epoch = json_object_get (status, "epoch");
    const char *name = json_string_value (json_object_get (status, "replica"));
    if (json_is_integer (epoch)) {
        self->peer_answered [index] = true;
        if (json_integer_value (epoch) > self->writer_state.epoch)
            s_fence (self, json_integer_value (epoch), name ? name : "a replica");
    }
    json_decref (status);
    tiers_wire_destroy (&reply);
    return true;
}

#define PEER_READER(n) \
    static bool s_on_peer_##n (void *arg) { return s_on_peer (arg, n); }
PEER_READER (0)  PEER_READER (1)  PEER_READER (2)  PEER_READER (3)
PEER_READER (4)  PEER_READER (5)  PEER_READER (6)  PEER_READER (7)
PEER_READER (8)  PEER_READER (9)  PEER_READER (10) PEER_READER (11)
PEER_READER (12) PEER_READER (13) PEER_READER (14) PEER_READER (15)
static tiers_reader_fn *const s_peer_readers [SHARD_PEERS_MAX] = {
    s_on_peer_0, s_on_peer_1, s_on_peer_2, s_on_peer_3, s_on_peer_4, s_on_peer_5,
    s_on_peer_6, s_on_peer_7, s_on_peer_8, s_on_peer_9, s_on_peer_10, s_on_peer_11,
    s_on_peer_12, s_on_peer_13, s_on_peer_14, s_on_peer_15
};

//  Ask every replica for its epoch; CHECKING ends when all answered or
//  its time is up.
static void
s_on_fence_tick (void *arg)
{
    shard_t *self = (shard_t *) arg;
    if (self->role == ROLE_CHECKING) {
        //  A majority of the copies: any promotion that tiers promote made
        //  without --force told a majority, so one of them answers here.
        size_t heard = 0, needed = (self->peer_count + 1) / 2;
        for (size_t i = 0; i < self->peer_count; i++)
            heard += self->peer_answered [i];
        if (heard >= needed)
            s_role_move (self, ROLE_PRIMARY);
        else
        if (tiers_clock_us () / 1000 >= self->checking_until && !self->said_waiting) {
            tiers_warn ("%zu of the %zu replicas answered; no write is taken until %zu "
                        "have (a replica may have been promoted meanwhile)", heard,
                        self->peer_count, needed);
            self->said_waiting = true;
        }
    }
    if (self->role == ROLE_FENCED)
        return;
    int64_t now = tiers_clock_us () / 1000;
    if (self->role == ROLE_PRIMARY && now - self->fence_asked < FENCE_CHECK_MS)
        return;
    self->fence_asked = now;
    for (size_t i = 0; i < self->peer_count; i++) {
        tiers_wire_t *ask = tiers_wire_new (TIERS_WIRE_STATUS);
        tiers_wire_set_rid (ask, "fence-check");
        tiers_wire_send (ask, zsock_resolve (self->peers [i]), NULL);
        tiers_wire_destroy (&ask);
    }
}

//  ack = replica: answer the committed writes that a replica now has.
static void
s_acks_answer (shard_t *self, int64_t acked)
{
    write_t *write;
    while ((write = (write_t *) zlistx_first (self->acking))
       &&  write->ack_sequence <= acked) {
        zlistx_detach (self->acking, NULL);
        s_write_answer (self, write);
        s_write_destroy (&write);
    }
}

//  The stream says a replica acknowledged more.
static void
s_on_replica_ack (void *arg, int64_t acked)
{
    s_acks_answer ((shard_t *) arg, acked);
}

//  ack = replica: a committed write that no replica confirmed in time. It
//  is on the primary, so "not applied" would be a lie: outcome unknown (a
//  keyed retry settles it).
static void
s_acks_expire (shard_t *self, bool all)
{
    int64_t now = tiers_clock_us () / 1000;
    write_t *write;
    while ((write = (write_t *) zlistx_first (self->acking))
       &&  (all || write->ack_deadline <= now)) {
        zlistx_detach (self->acking, NULL);
        write->status = 503;
        write->outcome = "unknown";
        write->error = all && self->role == ROLE_FENCED
                           ? "the shard was fenced (a replica was promoted) before a "
                             "replica confirmed this write (ack = replica): the new "
                             "primary may or may not have it; retry it with the same "
                             "Idempotency-Key"
                     : all ? "the shard stopped before a replica confirmed this write "
                             "(ack = replica): it is committed on the primary, but may "
                             "be lost if the primary's machine is; retry it with the "
                             "same Idempotency-Key"
                           : "no replica confirmed this write in time (ack = replica): "
                             "it is committed on the primary, but may be lost if the "
                             "primary's machine is; retry it with the same "
                             "Idempotency-Key";
        write->version = write->updated = 0;
        write->tag [0] = 0;
        tiers_counter_add (self->ack_timeouts, 1);
        s_write_answer (self, write);
        s_write_destroy (&write);
    }
}

static void
s_on_ack_tick (void *arg)
{
    s_acks_expire ((shard_t *) arg, false);
}

//  The keys a committed batch wrote, for the stream's KEYS followers: one
//  line "COLLECTION/ID VERSION\n" per write that changed a document (a
//  put's new version, a delete's sequence), in the batch's order. Left
//  out: refusals (404, 412, 422, 504: nothing applied) and replays of an
//  idempotency key (the first outcome again: nothing changed now). NULL
//  when out of memory.
static char *
s_batch_keys (const batch_t *batch, size_t *size)
{
    char *keys = NULL;
    *size = 0;
    FILE *out = open_memstream (&keys, size);
    for (size_t i = 0; out && i < batch->count; i++) {
        const write_t *write = batch->writes [i];
        bool changed = !write->replayed && write->version > 0
                    && (write->status == 200 || write->status == 201 || write->status == 204);
        if (changed)
            fprintf (out, "%s/%s %" PRId64 "\n", write->collection, write->id,
                     write->version);
    }
    bool good = out && !ferror (out);
    if (out && fclose (out))
        good = false;
    if (!good) {
        //  NULL: the stream sends its KEYS followers away (they reset)
        free (keys);
        keys = NULL;
        *size = 0;
    }
    return keys;
}

//  COMMITTING -> ANSWERING -> FREE: the writer handed a batch back.
static void
s_on_writer (shard_t *self)
{
    handoff_t *handoff = &self->handoff;
    void *pointer;
    char *command = s_recv_command (zactor_sock (self->writer), &pointer);
    bool done = command && streq (command, "DONE")
             && (pointer == &handoff->batches [0] || pointer == &handoff->batches [1]);
    zstr_free (&command);
    if (!done)
        return;
    batch_t *batch = (batch_t *) pointer;
    assert (batch->state == BATCH_ANSWERING);
    self->sequence = batch->sequence;
    //  Published before any write of it is answered: with ack = primary a
    //  replica gets a write as soon as its writer can tell about it.
    if (self->stream && self->role != ROLE_FENCED && batch->sequence > batch->previous
    &&  (batch->changeset || !self->writer_state.changesets)) {
        size_t keys_size = 0;
        char *keys = s_batch_keys (batch, &keys_size);
        tiers_stream_publish (self->stream, batch->previous, batch->sequence,
                              batch->committed, batch->changeset,
                              (size_t) batch->changeset_size, keys, keys_size);
        free (keys);
    }
    sqlite3_free (batch->changeset);
    batch->changeset = NULL;
    int64_t now = tiers_clock_us () / 1000;
    for (size_t i = 0; i < batch->count; i++) {
        write_t *write = batch->writes [i];
        if (self->role == ROLE_FENCED && write->status >= 200 && write->status < 300) {
            //  Committed in a file that a re-snapshot will discard.
            write->status = 421;
            write->outcome = "not-applied";
            write->error = self->fenced_reason;
            write->version = write->updated = 0;
            write->tag [0] = 0;
        }
        if (self->ack_replica && write->status >= 200 && write->status < 300) {
            //  ack = replica: answered when a replica has it (s_acks_answer)
            write->ack_sequence = batch->sequence;
            write->ack_deadline = now + self->ack_timeout_ms;
            zlistx_add_end (self->acking, write);
            batch->writes [i] = NULL;
            continue;
        }
        s_write_answer (self, write);
        s_write_destroy (&batch->writes [i]);
    }
    if (self->ack_replica && self->stream)
        s_acks_answer (self, tiers_stream_acked (self->stream));
    batch->count = 0;
    pthread_mutex_lock (&handoff->lock);
    s_batch_move (batch, BATCH_FREE, NULL);
    s_wake_writer (self);
    pthread_mutex_unlock (&handoff->lock);
}

//  Bytes 0x20..0x7e only.
static bool
s_printable (const char *text, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (text [i] < 0x20 || text [i] > 0x7e)
            return false;
    return true;
}

//  A `match` list: at most SHARD_MATCH_MAX tags separated by spaces, each
//  the bytes of an entity-tag (RFC 9110 etagc: no control, space or '"').
//  Empty is a list that matches nothing. NULL when good, else why not.
static const char *
s_match_check (const char *match)
{
    size_t tags = 0;
    for (const unsigned char *at = (const unsigned char *) match; *at; at++) {
        if (*at == ' ')
            continue;
        if (at == (const unsigned char *) match || at [-1] == ' ')
            tags++;
        if (*at < 0x21 || *at == '"' || *at == 0x7f)
            return "a tag holds a control character, a space or a quote";
    }
    return tags > SHARD_MATCH_MAX ? "more than 16 tags" : NULL;
}

//  What makes two requests under one idempotency key the same request:
//  the operation, its preconditions and the body.
static void
s_fingerprint (write_t *write)
{
    struct sha256_ctx sha;
    sha256_init (&sha);
    char head [8] = { write->op == OP_PUT ? 'p' : 'd', 0,
                      write->create ? '1' : '0', write->exists ? '1' : '0',
                      write->match ? 'm' : '-', 0 };
    sha256_update (&sha, 6, (const uint8_t *) head);
    if (write->match)
        sha256_update (&sha, strlen (write->match) + 1, (const uint8_t *) write->match);
    sha256_update (&sha, write->request->body_size, write->request->body);
    sha256_digest (&sha, SHA256_DIGEST_SIZE, write->fingerprint);
}

//  `fence` (tiers promote): a copy of a higher epoch is the primary now.
//  The answer says where this copy stands, for the promoter's choice.
static void
s_on_fence (shard_t *self, tiers_wire_t *msg, zmsg_t *route)
{
    bool bad = false;
    const char *epoch_text = tiers_wire_text (msg, "epoch", &bad);
    const char *by = tiers_wire_text (msg, "by", &bad);
    long long epoch = 0;
    if (bad || !epoch_text || tiers_parse_int (epoch_text, &epoch) || epoch < 1
    ||  !by || !*by || strlen (by) > 64 || !s_printable (by, strlen (by))) {
        s_fail (self, msg, route, 400, "fence needs epoch (> 0) and by (a name)");
        return;
    }
    if (epoch > self->writer_state.epoch)
        s_fence (self, epoch, by);
    tiers_wire_t *reply = tiers_wire_reply_to (msg, 200);
    tiers_wire_set_headerf (reply, "epoch", "%" PRId64, self->writer_state.epoch);
    tiers_wire_set_headerf (reply, "sequence", "%" PRId64,
                            self->role == ROLE_FENCED ? self->fenced_sequence : self->sequence);
    tiers_wire_set_header (reply, "role", s_role_name (self->role),
                           strlen (s_role_name (self->role)));
    s_send (self, &reply, route);
}

static void
s_on_request (shard_t *self, tiers_wire_t *msg, zmsg_t **route_p)
{
    zmsg_t *route = *route_p;
    //  Text headers are read whole: "put\0x" is not "put".
    bool bad = false;
    const char *op_name = tiers_wire_text (msg, "op", &bad);
    const char *version = tiers_wire_text (msg, "version", &bad);
    const char *match = tiers_wire_text (msg, "match", &bad);
    const char *create = tiers_wire_text (msg, "create", &bad);
    const char *exists = tiers_wire_text (msg, "exists", &bad);
    const char *key = tiers_wire_text (msg, "idempotency-key", &bad);
    if (bad) {
        s_fail (self, msg, route, 400, "a header (op, match, create, exists, "
                "idempotency-key) holds a NUL byte");
        return;
    }
    op_t op;
    if (!op_name) {
        s_fail (self, msg, route, 400, "missing op");
        return;
    }
    if (streq (op_name, "get"))
        op = OP_GET;
    else
    if (streq (op_name, "put"))
        op = OP_PUT;
    else
    if (streq (op_name, "delete"))
        op = OP_DELETE;
    else
    if (streq (op_name, "list"))
        op = OP_LIST;
    else
    if (streq (op_name, "fence")) {
        s_on_fence (self, msg, route);
        return;
    }
    else {
        s_fail (self, msg, route, 400, "unknown op (get, put, delete, list, fence)");
        return;
    }
    if (self->role == ROLE_FENCED) {
        s_fail (self, msg, route, 421, "%s", self->fenced_reason);
        return;
    }
    if (self->role == ROLE_CHECKING && (op == OP_PUT || op == OP_DELETE)) {
        tiers_wire_t *reply = tiers_wire_reply_to (msg, 503);
        const char *reason = "the shard is asking its replicas whether one was promoted; "
                             "no write is taken until a majority answered: not applied";
        tiers_wire_set_header (reply, "error", reason, strlen (reason));
        tiers_wire_set_header (reply, "outcome", "not-applied", 11);
        tiers_wire_set_header (reply, "retry-after", "1", 1);
        tiers_counter_add (self->errors, 1);
        s_send (self, &reply, route);
        return;
    }
    const char *why = NULL;
    const char *collection = s_key (msg, "collection", &why);
    if (!collection) {
        s_fail (self, msg, route, 400, "bad collection: %s", why);
        return;
    }
    if (op == OP_LIST) {
        s_list (self, msg, route, collection);
        return;
    }
    const char *id = s_key (msg, "id", &why);
    if (!id) {
        s_fail (self, msg, route, 400, "bad id: %s", why);
        return;
    }
    if (op == OP_GET) {
        s_get (self, msg, route, collection, id);
        return;
    }
    if (version) {
        s_fail (self, msg, route, 400, "version is no precondition: send match, "
                "the tags the document may have");
        return;
    }
    const char *why_match = match ? s_match_check (match) : NULL;
    if (why_match) {
        s_fail (self, msg, route, 400, "bad match: %s", why_match);
        return;
    }
    size_t key_size = key ? strlen (key) : 0;
    if (key && (key_size == 0 || key_size > SHARD_IKEY_MAX
             || !s_printable (key, key_size))) {
        s_fail (self, msg, route, 400, "bad idempotency-key: expected 1..%d printable "
                "ASCII characters", SHARD_IKEY_MAX);
        return;
    }
    if (create && !streq (create, "1") && !streq (create, "0")) {
        s_fail (self, msg, route, 400, "bad create: expected 1 or 0");
        return;
    }
    if (exists && !streq (exists, "1") && !streq (exists, "0")) {
        s_fail (self, msg, route, 400, "bad exists: expected 1 or 0");
        return;
    }
    if (op == OP_PUT) {
        if (msg->body_size > self->max_doc) {
            s_fail (self, msg, route, 413, "document over %zu bytes", self->max_doc);
            return;
        }
        json_error_t error = { .text = "a NUL byte is no JSON" };
        if (!tiers_docread_ijson ((const char *) msg->body, msg->body_size, &error)) {
            s_fail (self, msg, route, 400, "body is not a JSON document (I-JSON) "
                    "that can be served back%s%s", msg->body_size ? ": " : "",
                    msg->body_size ? error.text : "");
            return;
        }
    }
    handoff_t *handoff = &self->handoff;
    pthread_mutex_lock (&handoff->lock);
    size_t waiting = handoff->count;
    pthread_mutex_unlock (&handoff->lock);
    waiting += zlistx_size (self->acking);      //  ack = replica: they wait too
    if (waiting >= SHARD_QUEUE_MAX) {
        s_fail (self, msg, route, 503, "shard busy: %d writes waiting", SHARD_QUEUE_MAX);
        return;
    }
    //  ack = replica never downgrades: with no replica streaming, a write
    //  is refused before it is applied.
    if (self->ack_replica && (!self->stream || tiers_stream_live (self->stream, 1000) == 0)) {
        tiers_wire_t *reply = tiers_wire_reply_to (msg, 503);
        const char *reason = "no replica is streaming from this shard (ack = replica): "
                             "the write was not applied";
        tiers_wire_set_header (reply, "error", reason, strlen (reason));
        tiers_wire_set_header (reply, "outcome", "not-applied", 11);
        tiers_wire_set_header (reply, "retry-after", "1", 1);
        tiers_counter_add (self->errors, 1);
        s_send (self, &reply, route);
        return;
    }
    write_t *write = (write_t *) zmalloc (sizeof *write);
    assert (write);
    write->request = msg;
    write->route = route;
    *route_p = NULL;            //  the write owns request and route now
    write->op = op;
    write->collection = collection;
    write->id = id;
    write->match = match;
    write->create = create && streq (create, "1");
    write->exists = exists && streq (exists, "1");
    write->key = key;
    if (key)
        s_fingerprint (write);
    pthread_mutex_lock (&handoff->lock);
    handoff->queue [(handoff->head + handoff->count) % SHARD_QUEUE_MAX] = write;
    handoff->count++;
    s_wake_writer (self);
    pthread_mutex_unlock (&handoff->lock);
}

static void
s_on_status (shard_t *self, tiers_wire_t *msg, zmsg_t *route)
{
    pthread_mutex_lock (&self->handoff.lock);
    int64_t started = self->handoff.commit_started;
    json_t *status = json_pack ("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:s, s:s, s:I}",
        "shard", self->name, "slots", self->slots, "incarnation", self->incarnation,
        "sequence", (json_int_t) self->sequence,
        "queued", (json_int_t) self->handoff.count,
        "committing", (json_int_t) self->handoff.committing,
        "commit_ms", (json_int_t) (started ? (tiers_clock_us () - started) / 1000 : 0),
        "writable", !self->handoff.unwritable,
        "role", s_role_name (self->role), "ack", self->ack_replica ? "replica" : "primary",
        "acking", (json_int_t) zlistx_size (self->acking));
    pthread_mutex_unlock (&self->handoff.lock);
    //  The stream's part (epoch, log, followers), or the epoch alone.
    char *members = self->stream ? tiers_stream_status (self->stream) : NULL;
    char *object = members ? zsys_sprintf ("{%s}", members) : NULL;
    json_t *stream = object ? json_loads (object, 0, NULL) : NULL;
    if (stream)
        json_object_update (status, stream);
    else
        json_object_set_new (status, "epoch", json_integer (self->writer_state.epoch));
    json_decref (stream);
    free (object);
    free (members);
    char *text = json_dumps (status, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (status);
    tiers_wire_t *reply = tiers_wire_reply_to (msg, 200);
    reply->kind = TIERS_WIRE_REPLY;
    tiers_wire_set_body (reply, text ? text : "{}", text ? strlen (text) : 2);
    free (text);
    s_send (self, &reply, route);
}

//  Takes one message without waiting; false when none was there.
static bool
s_on_router (void *arg)
{
    shard_t *self = (shard_t *) arg;
    const char *error = NULL;
    zmsg_t *route = NULL;
    tiers_wire_t *msg = NULL;
    if (tiers_wire_try_recv (self->router, &route, &msg, &error))
        return false;
    zframe_t *identity = route ? zmsg_first (route) : NULL;
    if (!identity) {                //  cannot happen on a ROUTER
        tiers_wire_destroy (&msg);
        zmsg_destroy (&route);
        return true;
    }
    if (!msg) {
        //  Answer the sender (not any route it claims) so it learns why.
        tiers_warn ("malformed message: %s", error ? error : "?");
        zmsg_t *back = zmsg_new ();
        zmsg_append (back, &(zframe_t *) { zframe_dup (identity) });
        s_fail (self, NULL, back, 400, "malformed message: %s", error ? error : "?");
        zmsg_destroy (&back);
    }
    else
    switch (msg->kind) {
        case TIERS_WIRE_REQUEST:
            s_on_request (self, msg, &route);
            if (!route)
                msg = NULL;         //  queued: the write owns it now
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


//  The writer's pipe: one batch handed back, or false when none waits.
static bool
s_on_writer_ready (void *arg)
{
    shard_t *self = (shard_t *) arg;
    if (!(zsock_events (zactor_sock (self->writer)) & ZMQ_POLLIN))
        return false;
    s_on_writer (self);
    return true;
}

//  After each pass: the burst's read transaction ends.
static int
s_on_pass (void *arg)
{
    tiers_docread_end (((shard_t *) arg)->reads_of);
    return -1;
}


//  --------------------------------------------------------------------------
//  The actor

static int
s_reader_open (shard_t *self, const char *path, char **why)
{
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE
                         | SQLITE_OPEN_NOMUTEX, NULL)) {
        *why = zsys_sprintf ("cannot open %s: %s", path,
                             self->db ? sqlite3_errmsg (self->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout (self->db, SHARD_BUSY_MS);
    if (tiers_sql_exec (self->db, "PRAGMA query_only = 1", why))
        return -1;
    self->reads_of = tiers_docread_new (self->db, self->incarnation, why);
    return self->reads_of ? 0 : -1;
}

static void
s_reader_close (shard_t *self)
{
    tiers_docread_destroy (&self->reads_of);
    s_close (&self->db, NULL, 0);
}

//  Start the writer; it opens (creates) the file. Returns 0 or -1 + why.
static int
s_writer_start (shard_t *self, char **why)
{
    self->writer = zactor_new (s_writer_actor, &self->writer_state);
    if (!self->writer) {
        *why = strdup ("cannot start the writer thread");
        return -1;
    }
    char *answer = zstr_recv (self->writer);
    if (answer && strncmp (answer, "OK ", 3) == 0) {
        self->sequence = strtoll (answer + 3, NULL, 10);
        memcpy (self->incarnation, self->writer_state.incarnation,
                sizeof self->incarnation);
        zstr_free (&answer);
        return 0;
    }
    *why = strdup (answer && strlen (answer) > 6 ? answer + 6 : "writer failed");
    zstr_free (&answer);
    zactor_destroy (&self->writer);
    return -1;
}

static void
s_shard_destroy (shard_t *self)
{
    //  Reader first: the last connection to close checkpoints the WAL
    //  into the main file, and that needs the writable one.
    s_reader_close (self);
    zactor_destroy (&self->writer);     //  writer closes its connection
    tiers_stream_destroy (&self->stream);
    zlistx_destroy (&self->acking);
    for (size_t i = 0; i < self->peer_count; i++)
        zsock_destroy (&self->peers [i]);
    self->peer_count = 0;
    //  The last answers (the batch that committed during $TERM, the 503s)
    //  may still be queued on tcp://: let them leave, briefly.
    tiers_sock_flush (self->router, 500);
    zsock_destroy (&self->router);
    free (self->writer_state.path);
    free (self->fence_path);
    free (self->handoff.queue);
    free (self->handoff.batches [0].writes);
    free (self->handoff.batches [1].writes);
    pthread_mutex_destroy (&self->handoff.lock);
    if (self->lock_fd >= 0)
        close (self->lock_fd);      //  the lock goes with it
    self->lock_fd = -1;
}

//  Does the map name a replica of `shard` (an entry whose `of` is it)? Only
//  then does its stream carry changesets; else keys only (stream.h).
static bool
s_has_replicas (const tiers_map_t *map, const char *shard)
{
    for (size_t i = 0; i < tiers_map_entry_count (map); i++) {
        const char *of = tiers_entry_get (tiers_map_entry (map, i), "of", NULL);
        if (of && streq (of, shard))
            return true;
    }
    return false;
}

void
tiers_shard_serve (zsock_t *pipe, tiers_actor_args_t *args, const tiers_shard_setup_t *setup)
{
    tiers_log_set_actor (args->name);
    shard_t self_, *self = &self_;
    memset (self, 0, sizeof *self);
    self->lock_fd = -1;
    snprintf (self->name, sizeof self->name, "%s", args->name);
    const tiers_entry_t *entry = args->entry;
    //  Its settings: a promoted replica serves with those of its shard.
    const tiers_entry_t *keys = setup->settings ? setup->settings : entry;
    self->slots = setup->slots ? setup->slots : tiers_entry_get (keys, "slots", "all");
    self->batch_max = (size_t) tiers_entry_int (keys, "batch", 256);
    self->max_doc = (size_t) tiers_entry_int (keys, "max_doc", 1024 * 1024);
    const char *sync = tiers_entry_get (keys, "sync",
                                        tiers_map_cluster (args->map, "sync"));
    handoff_t *handoff = &self->handoff;
    pthread_mutex_init (&handoff->lock, NULL);
    handoff->queue = (write_t **) zmalloc (SHARD_QUEUE_MAX * sizeof (write_t *));
    handoff->batch_max = self->batch_max;
    for (int i = 0; i < 2; i++) {
        handoff->batches [i].writes = (write_t **) zmalloc (self->batch_max * sizeof (write_t *));
        handoff->batches [i].state = BATCH_FREE;
        assert (handoff->batches [i].writes);
    }
    assert (handoff->queue);
    self->writer_state.handoff = handoff;

    char labels [128];
    snprintf (labels, sizeof labels, "shard=\"%s\"", args->name);
    self->reads = tiers_metrics_counter ("tiers_shard_reads_total", labels,
        "Reads (get, list) the shard answered");
    self->errors = tiers_metrics_counter ("tiers_shard_errors_total", labels,
        "Requests the shard refused or failed (400, 413, 500, 503, malformed)");
    writer_t *writer = &self->writer_state;
    snprintf (writer->name, sizeof writer->name, "%s/writer", args->name);
    writer->sync_full = !streq (sync, "normal");
    writer->cluster = tiers_map_name (args->map);
    writer->shard = setup->shard ? setup->shard : entry->name;
    writer->promote_to = setup->promote_to;
    writer->lock_fd = -1;
    writer->key_ttl_ms = tiers_entry_int (keys, "idempotency_ttl", 24 * 3600 * 1000);
    writer->replays = tiers_metrics_counter ("tiers_shard_replays_total", labels,
        "Keyed writes answered with the first outcome of their Idempotency-Key");
    writer->failures = tiers_metrics_counter ("tiers_shard_commit_failures_total", labels,
        "Commits that failed in COMMIT (the shard then reopens its file and fences)");
    writer->commits = tiers_metrics_counter ("tiers_shard_commits_total", labels,
        "Transactions the shard committed");
    writer->writes = tiers_metrics_counter ("tiers_shard_writes_total", labels,
        "Writes (put, delete) that went through a committed transaction");
    writer->errors = self->errors;
    writer->batch_size = tiers_metrics_gauge ("tiers_shard_batch_size", labels,
        "Writes in the last committed transaction");
    writer->commit_seconds = tiers_metrics_histogram ("tiers_shard_commit_seconds",
        labels, "Time from BEGIN to the end of COMMIT of one batch");

    char leaf [128];
    snprintf (leaf, sizeof leaf, "%s.db", entry->name);
    writer->path = tiers_data_path (args->map, leaf);
    self->fence_path = zsys_sprintf ("%s.fenced", writer->path);

    //  Replication: a shard that binds a `stream` port records every
    //  commit's changeset; its batches are bounded so that one fits in a
    //  message (an update's holds the old and the new body).
    const char *ack = tiers_entry_get (keys, "ack", tiers_map_cluster (args->map, "ack"));
    self->ack_replica = ack && streq (ack, "replica");
    self->ack_timeout_ms = tiers_entry_int (keys, "ack_timeout", 1000);
    self->acking = zlistx_new ();
    self->ack_timeouts = tiers_metrics_counter ("tiers_shard_ack_timeouts_total", labels,
        "Writes committed with ack = replica that no replica confirmed in time (503)");
    writer->replicating = tiers_entry_port (entry, "stream") != NULL;
    handoff->batch_bytes = writer->replicating ? TIERS_STREAM_CHANGE_MAX - 65536 : SIZE_MAX;
    size_t doc_cap = (TIERS_STREAM_CHANGE_MAX - 65536 - 4096) / 2;
    if (writer->replicating && self->max_doc > doc_cap) {
        tiers_warn ("max_doc %zu is more than a replicated shard can send in one change: "
                    "%zu", self->max_doc, doc_cap);
        self->max_doc = doc_cap;
    }
    if (self->ack_replica && !writer->replicating)
        tiers_warn ("ack = replica but the shard binds no stream port: no replica can "
                    "follow it, and every write will be refused (503)");

    char *why = NULL;
    zsock_t *stream = NULL;
    if (setup->lock_fd >= 0)
        self->lock_fd = setup->lock_fd;     //  a promoted replica's: held already
    //  One file, one shard (sqlfile.h): the lock file holds the pid, then
    //  the mark (s_mark).
    if (setup->lock_fd < 0)
        self->lock_fd = tiers_file_lock (writer->path, "shard", &why);
    if (self->lock_fd >= 0) {
        writer->lock_fd = self->lock_fd;
        self->router = setup->requests ? setup->requests
                                       : tiers_port_bind (entry, "requests", &why);
    }
    if (setup->stream) {
        stream = setup->stream;
        writer->replicating = true;
        handoff->batch_bytes = TIERS_STREAM_CHANGE_MAX - 65536;
    }
    else
    if (self->router && writer->replicating)
        stream = tiers_port_bind (entry, "stream", &why);
    //  `changesets = always`: for a replica the map does not name (tests
    //  that play one by hand, the stream's own benchmark).
    const char *changesets = tiers_entry_get (keys, "changesets", "auto");
    writer->changesets = writer->replicating
                      && (streq (changesets, "always") || s_has_replicas (args->map, writer->shard));
    if (self->router && (stream || !writer->replicating) && s_writer_start (self, &why) == 0
    &&  s_reader_open (self, writer->path, &why) == 0 && stream) {
        tiers_stream_config_t config = {
            .shard = writer->shard, .db_path = writer->path,
            .log_changes = (size_t) tiers_entry_int (keys, "log_changes", 100000),
            .log_bytes = (size_t) tiers_entry_int (keys, "log_bytes", 64 << 20),
            .keys_only = !writer->changesets,
            .on_ack = s_on_replica_ack, .on_fence = s_on_stream_fence, .ack_arg = self
        };
        self->stream = tiers_stream_new (&config, stream, self->incarnation,
                                         writer->epoch, self->sequence);
        stream = NULL;
    }
    zsock_destroy (&stream);
    if (setup->promote) {
        //  The promoter hears how it went.
        tiers_wire_t *reply = tiers_wire_reply_to (setup->promote, why ? 503 : 200);
        if (why)
            tiers_wire_set_header (reply, "error", why, strlen (why));
        else {
            tiers_wire_set_headerf (reply, "epoch", "%" PRId64, writer->epoch);
            tiers_wire_set_headerf (reply, "sequence", "%" PRId64, self->sequence);
            tiers_wire_set_header (reply, "incarnation", self->incarnation,
                                   strlen (self->incarnation));
        }
        if (self->router)
            s_send (self, &reply, setup->promote_route);
        tiers_wire_destroy (&reply);
        tiers_wire_t *request = setup->promote;
        tiers_wire_destroy (&request);
        zmsg_t *route = setup->promote_route;
        zmsg_destroy (&route);
    }
    if (why) {
        if (setup->promote_to > 0)
            tiers_error ("cannot serve as the primary: %s", why);
        else
            tiers_actor_failed (pipe, "%s", why);
        free (why);
        s_shard_destroy (self);
        return;
    }
    tiers_info ("serving %s on %s (slots %s, sync %s, batch %zu, sequence %" PRId64
                ", epoch %" PRId64 "%s)", writer->path, entry->bind, self->slots, sync,
                self->batch_max, self->sequence, writer->epoch,
                self->stream ? ", streaming" : "");
    if (setup->promote_to <= 0)
        tiers_actor_ready (pipe);

    //  Batches handed back first, then a bounded burst of requests, then
    //  the read transaction of the burst ends (the writer gets whatever
    //  has queued meanwhile).
    tiers_reactor_t *reactor = tiers_reactor_new (pipe);
    tiers_reactor_reader (reactor, self->writer, 0, s_on_writer_ready, self);
    tiers_reactor_reader (reactor, self->router, SHARD_ROUTER_BURST, s_on_router, self);
    tiers_reactor_set_pass (reactor, s_on_pass, self);
    if (self->stream)
        tiers_stream_attach (self->stream, reactor);
    if (self->ack_replica)
        tiers_reactor_timer (reactor, 50, s_on_ack_tick, self);
    //  Its replicas, asked for their epochs (the role, in the file head).
    const tiers_target_t *targets = NULL;
    size_t count = tiers_entry_targets (entry, "replicas", &targets);
    for (size_t i = 0; i < count && self->peer_count < SHARD_PEERS_MAX; i++) {
        const char *of = tiers_entry_get (targets [i].entry, "of", NULL);
        if (!of || !streq (of, writer->shard))
            continue;
        char *problem = NULL;
        zsock_t *peer = tiers_link_connect (entry, "replicas", i, &problem);
        if (!peer) {
            tiers_warn ("cannot reach replica %s: %s", targets [i].entry->name,
                        problem ? problem : "?");
            free (problem);
            continue;
        }
        tiers_reactor_reader (reactor, peer, 0, s_peer_readers [self->peer_count], self);
        self->peers [self->peer_count++] = peer;
    }
    self->role = self->peer_count ? ROLE_CHECKING : ROLE_PRIMARY;
    //  A fence survives a restart (s_fence_write).
    FILE *fenced = fopen (self->fence_path, "r");
    long long fenced_by = 0;
    if (fenced && fscanf (fenced, "%lld", &fenced_by) == 1 && fenced_by > writer->epoch) {
        self->role = ROLE_FENCED;
        self->fenced_epoch = fenced_by;
        self->fenced_sequence = self->sequence;
        snprintf (self->fenced_reason, sizeof self->fenced_reason,
                  "fenced: epoch %lld is the primary (this copy is at %" PRId64 "; "
                  "%s says so): it answers nothing until it rejoins as a replica",
                  fenced_by, writer->epoch, self->fence_path);
        tiers_error ("%s", self->fenced_reason);
        if (self->stream)
            tiers_stream_fence (self->stream, fenced_by);
    }
    if (fenced)
        fclose (fenced);
    self->checking_until = tiers_clock_us () / 1000 + FENCE_CHECK_MS;
    if (self->peer_count)
        tiers_reactor_timer (reactor, 100, s_on_fence_tick, self);
    tiers_reactor_run (reactor);
    tiers_reactor_destroy (&reactor);

    //  Shutting down: the batch in flight finishes its commit and is
    //  answered (one commit is the bound); the queue is told to retry.
    pthread_mutex_lock (&handoff->lock);
    handoff->stopping = true;
    pthread_mutex_unlock (&handoff->lock);
    while (handoff->batches [0].state != BATCH_FREE
       ||  handoff->batches [1].state != BATCH_FREE) {
        zmq_pollitem_t item = { zsock_resolve (zactor_sock (self->writer)), 0,
                                ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, 1000);
        if (rc > 0)
            s_on_writer (self);
        else
        if (rc == 0)
            tiers_warn ("still waiting for a commit of %zu writes", handoff->committing);
        else
        if (errno != EINTR)
            break;
    }
    //  Committed writes that no replica confirmed yet: they are on the
    //  primary, their outcome is unknown to their callers.
    s_acks_expire (self, true);
    //  The writer takes nothing more: the queue is the actor thread's now.
    while (handoff->count) {
        write_t *write = handoff->queue [handoff->head];
        handoff->head = (handoff->head + 1) % SHARD_QUEUE_MAX;
        handoff->count--;
        s_fail (self, write->request, write->route, 503, "shard shutting down");
        s_write_destroy (&write);
    }
    s_shard_destroy (self);
    tiers_info ("stopped at sequence %" PRId64, self->sequence);
}

static void
s_shard_actor (zsock_t *pipe, void *args)
{
    tiers_shard_setup_t setup = { .lock_fd = -1 };
    tiers_shard_serve (pipe, (tiers_actor_args_t *) args, &setup);
}

static const tiers_key_t s_keys [] = {
    { "slots",   TIERS_KEY_SLOTS, false, 0, 0, NULL },
    { "sync",    TIERS_KEY_ENUM,  false, 0, 0, "full|normal" },
    { "batch",   TIERS_KEY_INT,   false, 1, 10000, NULL },
    { "max_doc", TIERS_KEY_BYTES, false, 1, 15 * 1024 * 1024, NULL },
    { "idempotency_ttl", TIERS_KEY_MS, false, 1000, 30LL * 24 * 3600 * 1000, NULL },
    { "ack",     TIERS_KEY_ENUM,  false, 0, 0, "primary|replica" },
    { "ack_timeout", TIERS_KEY_MS, false, 10, 60000, NULL },
    { "log_changes", TIERS_KEY_INT, false, 1, 10000000, NULL },
    { "log_bytes", TIERS_KEY_BYTES, false, 65536, 1LL << 40, NULL },
    { "changesets", TIERS_KEY_ENUM, false, 0, 0, "auto|always" },
    { NULL, 0, false, 0, 0, NULL }
};

//  Its replicas (those whose `of` names it), asked for their epochs.
static const tiers_link_t s_links [] = {
    { "replicas", "replica", "requests", ZMQ_DEALER, true, true },
    { NULL, NULL, NULL, 0, false, false }
};

static const tiers_port_t s_ports [] = {
    { "requests", ZMQ_ROUTER, "document reads and writes from the APIs "
                              "(doc/protocol.md)", true },
    { "stream", ZMQ_ROUTER, "the commit stream to replicas: changesets, "
                            "snapshots (doc/replication.md)", false },
    { NULL, 0, NULL, false }
};

const tiers_kind_t tiers_shard_kind = {
    .name = "shard",
    .summary = "SQLite primary for a range of hash slots (WAL, group commit)",
    .rank = TIERS_RANK_STORAGE,
    .run = s_shard_actor,
    .keys = s_keys,
    .ports = s_ports,
    .links = s_links,
    .multi = false,
    .listener = NULL
};
