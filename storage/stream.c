/*  stream.c — the primary's side of a shard's commit stream (stream.h).

    The one idea: the log is a window of the shard's history. Every change
    carries the sequence before it (`previous`) and after it (`sequence`),
    and each change's `previous` is the `sequence` of the one before it,
    so a follower's position — the sequence it has applied — is either the
    shard's last sequence (nothing to send), or the `previous` of exactly
    one change in the window (send from there), or outside the window (it
    must take a snapshot). Nothing else has to be remembered per follower
    than that position (`sent`) and what it acknowledged (`acked`).

    A follower's life, per ROUTER identity:

        SNAPSHOT    it asked for a snapshot (or only fetches chunks):
                    nothing is streamed to it     --follow, covered--> STREAMING
        STREAMING   every change after `sent` goes to it, in order; what
                    does not fit in its socket now (EAGAIN) is sent from
                    the log at the next tick      --its position leaves the
                                                    window--> gone (told 409)
        gone        silent for FOLLOWER_SILENT_MS, or refused: forgotten

    Invariants: changes are sent to a follower in sequence order without a
    gap (sent only moves to the `sequence` of the change just sent, whose
    `previous` was the old `sent`); acked <= sent; the log is contiguous;
    at most FOLLOWER_INFLIGHT bytes of changes are sent and not yet
    acknowledged per follower (and the port's send queue is short), so a
    slow replica holds the log's memory, not copies of it.

    KEYS followers (`want: keys`: the caches and the gateways' edge caches,
    doc/protocol.md "Keys followers") hold no copy of the data: they get, for each change, the
    keys it wrote (a second frame of the change, built by the shard) and
    never a snapshot. A follow whose position the log does not cover is
    answered 200 `reset: 1` from the shard's sequence instead of 409 (the
    follower drops what it holds of the shard). They acknowledge like
    replicas (the in-flight bound) but are no replicas: they count neither
    in tiers_stream_acked nor in tiers_stream_live, and never fence the
    copy (an epoch they send is only a position to them). At most
    KEYS_FOLLOWERS_MAX of them stream at once (a further one is told 503),
    so that many caches never keep a replica out of the table.

    Fenced (a replica was promoted, tiers_stream_fence): nothing more is
    published, no snapshot is served, no new follower is taken; followers
    of this epoch still get what was published before the fence, so the
    replica being promoted can catch up with it.

    Snapshots: one at a time, made by a thread of its own with VACUUM INTO
    on its own connection (a read transaction: writes go on), checksummed
    (SHA-256), served in chunks of SNAPSHOT_CHUNK from the file. Snapshot
    states: NONE --asked--> MAKING --made--> READY --unused 60 s, or its
    sequence left the log--> NONE (file removed); MAKING --failed--> NONE
    (the askers are told 503).
*/
#include "storage/stream.h"
#include "wire.h"
#include "sock.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include <sqlite3.h>
#include <nettle/sha2.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#define FOLLOWERS_MAX       256         //  peers on the stream port at once
#define KEYS_FOLLOWERS_MAX  192         //  of them keys followers: the rest
                                        //  is always there for replicas
#define FOLLOWER_SILENT_MS  3000        //  forgotten after this much silence
#define STREAM_TICK_MS      200         //  heartbeats and resends
#define SNAPSHOT_CHUNK      (1024 * 1024)
#define SNAPSHOT_IDLE_MS    60000       //  a snapshot nobody fetches is removed
#define CHECKSUM_HEX        (SHA256_DIGEST_SIZE * 2)
#define FOLLOWER_INFLIGHT   (16 * 1024 * 1024)  //  bytes sent, not acknowledged
#define STREAM_SNDHWM       256         //  messages queued to one peer

typedef struct {
    int64_t previous, sequence;
    uint8_t *frame;             //  the encoded `change` message (replicas)
    size_t size;
    uint8_t *keys_frame;        //  the same change, its keys for the body
    size_t keys_size;
} change_t;

typedef enum { FOLLOWER_SNAPSHOT, FOLLOWER_STREAMING } follower_state_t;

typedef struct {
    zframe_t *identity;
    follower_state_t state;
    char name [TIERS_WIRE_MAX_VALUE > 64 ? 64 : TIERS_WIRE_MAX_VALUE];
    int64_t sent;               //  STREAMING: changes up to here are sent
    int64_t acked;              //  what it says it has applied (<= sent)
    int64_t heard;              //  monotonic ms of its last message
    size_t inflight;            //  bytes of changes sent after `acked`
    bool snapshot_wanted;       //  waits for the snapshot being made
    bool keys;                  //  a KEYS follower (`want: keys`), no replica
} follower_t;

//  What the snapshot maker thread reads (the stream's own strings), and
//  its connection, for sqlite3_interrupt when the stream stops.
typedef struct {
    char *db_path, *snapshot_path;
    pthread_mutex_t lock;
    sqlite3 *db;                //  under lock: the maker's, while it is open
} maker_args_t;

typedef enum { SNAPSHOT_NONE, SNAPSHOT_MAKING, SNAPSHOT_READY } snapshot_state_t;

struct _tiers_stream_t {
    tiers_stream_config_t config;
    char *shard, *db_path, *snapshot_path;
    zsock_t *router;
    char incarnation [16];
    int64_t epoch;
    int64_t sequence;           //  the last change's (or the file's at start)
    int64_t committed;          //  wall ms of the last change
    //  The log: a ring of changes, oldest at `head`.
    change_t *log;
    size_t head, count, bytes;
    follower_t *followers [FOLLOWERS_MAX];
    size_t follower_count;
    int64_t acked;              //  the last value told to on_ack
    //  The snapshot
    snapshot_state_t snapshot;
    zactor_t *maker;
    maker_args_t maker_args;
    uint64_t snapshot_id;       //  grows with each snapshot made
    int64_t snapshot_size, snapshot_sequence, snapshot_epoch, snapshot_used;
    char snapshot_checksum [CHECKSUM_HEX + 1];
    char snapshot_incarnation [16];
    int snapshot_fd;
    int64_t fenced;             //  > 0: fenced by this epoch (see the head)
    tiers_counter_t *changes, *snapshots, *refused;
    tiers_gauge_t *live, *keys_live, *log_changes, *log_bytes;
};

static int64_t
s_now_ms (void)
{
    return tiers_clock_us () / 1000;
}

static void
s_hex (const uint8_t *digest, char out [CHECKSUM_HEX + 1])
{
    for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf (out + 2 * i, 3, "%02x", digest [i]);
}


//  --------------------------------------------------------------------------
//  The log

static change_t *
s_log_at (tiers_stream_t *self, size_t index)
{
    return &self->log [(self->head + index) % self->config.log_changes];
}

static void
s_log_drop_oldest (tiers_stream_t *self)
{
    change_t *oldest = s_log_at (self, 0);
    self->bytes -= oldest->size + oldest->keys_size;
    free (oldest->frame);
    free (oldest->keys_frame);
    oldest->frame = oldest->keys_frame = NULL;
    self->head = (self->head + 1) % self->config.log_changes;
    self->count--;
}

static void
s_log_clear (tiers_stream_t *self)
{
    while (self->count)
        s_log_drop_oldest (self);
}

//  The index of the change whose `previous` is `position`, or -1 when the
//  window does not hold it (binary search: the log is in sequence order).
static long
s_log_find (tiers_stream_t *self, int64_t position)
{
    size_t low = 0, high = self->count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        change_t *change = s_log_at (self, middle);
        if (change->previous == position)
            return (long) middle;
        if (change->previous < position)
            low = middle + 1;
        else
            high = middle;
    }
    return -1;
}

//  What a change is to this follower: the changeset, or its keys.
static const uint8_t *
s_change_frame (const change_t *change, const follower_t *follower, size_t *size)
{
    *size = follower->keys ? change->keys_size : change->size;
    return follower->keys ? change->keys_frame : change->frame;
}

//  Can a follower at `position` be streamed to from the log?
static bool
s_covered (tiers_stream_t *self, int64_t position)
{
    return position == self->sequence || s_log_find (self, position) >= 0;
}


//  --------------------------------------------------------------------------
//  Followers

static follower_t *
s_follower_find (tiers_stream_t *self, zframe_t *identity)
{
    for (size_t i = 0; i < self->follower_count; i++)
        if (zframe_eq (self->followers [i]->identity, identity))
            return self->followers [i];
    return NULL;
}

static void
s_follower_remove (tiers_stream_t *self, follower_t *follower)
{
    for (size_t i = 0; i < self->follower_count; i++)
        if (self->followers [i] == follower) {
            self->followers [i] = self->followers [--self->follower_count];
            break;
        }
    zframe_destroy (&follower->identity);
    free (follower);
}

//  Streaming followers heard from within `within_ms`: replicas, or KEYS
//  followers when `keys`.
static size_t
s_live (tiers_stream_t *self, int64_t within_ms, bool keys)
{
    size_t live = 0;
    int64_t now = s_now_ms ();
    for (size_t i = 0; i < self->follower_count; i++)
        if (self->followers [i]->state == FOLLOWER_STREAMING
        &&  self->followers [i]->keys == keys
        &&  now - self->followers [i]->heard <= within_ms)
            live++;
    return live;
}

//  Sends `frame` bytes to the peer; 0, or -1 (its socket is full: EAGAIN,
//  or it is gone: EHOSTUNREACH).
static int
s_send_raw (tiers_stream_t *self, zframe_t *identity, const uint8_t *data, size_t size)
{
    zframe_t *head = zframe_dup (identity);
    if (tiers_sock_send_frame (&head, self->router, ZFRAME_MORE)) {
        zframe_destroy (&head);
        return -1;
    }
    zframe_t *body = zframe_new (data, size);
    if (tiers_sock_send_frame (&body, self->router, 0)) {
        zframe_destroy (&body);
        return -1;
    }
    return 0;
}

static int
s_send (tiers_stream_t *self, zframe_t *identity, tiers_wire_t **message_p)
{
    tiers_wire_t *message = *message_p;
    zmsg_t *envelope = zmsg_new ();
    zmsg_append (envelope, &(zframe_t *) { zframe_dup (identity) });
    int rc = tiers_wire_send (message, zsock_resolve (self->router), envelope);
    zmsg_destroy (&envelope);
    tiers_wire_destroy (message_p);
    return rc;
}

static tiers_wire_t *
s_reply (const char *op, int status)
{
    tiers_wire_t *reply = tiers_wire_new (TIERS_WIRE_REPLY);
    reply->status = (uint16_t) status;
    tiers_wire_set_header (reply, "op", op, strlen (op));
    return reply;
}

static void
s_refuse (tiers_stream_t *self, zframe_t *identity, const char *op, int status,
          const char *error)
{
    tiers_wire_t *reply = s_reply (op, status);
    tiers_wire_set_header (reply, "error", error, strlen (error));
    if (status == 503)
        tiers_wire_set_header (reply, "retry-after", "1", 1);
    s_send (self, identity, &reply);
}

//  STREAMING: send what the follower has not been sent, from the log, as
//  far as its socket takes it. False when its position left the window
//  (it was told so and forgotten).
static bool
s_push (tiers_stream_t *self, follower_t *follower)
{
    assert (follower->state == FOLLOWER_STREAMING);
    while (follower->sent < self->sequence) {
        long index = s_log_find (self, follower->sent);
        if (index < 0) {
            tiers_warn ("%s %s fell behind the log (at %" PRId64 ", log from %" PRId64
                        "): it must %s", follower->keys ? "keys follower" : "replica",
                        follower->name, follower->sent,
                        self->count ? s_log_at (self, 0)->previous : self->sequence,
                        follower->keys ? "follow again (and is reset)" : "take a snapshot");
            s_refuse (self, follower->identity, "follow", 409, follower->keys
                      ? "your position left the primary's log: follow again"
                      : "your position left the primary's log: take a snapshot");
            s_follower_remove (self, follower);
            return false;
        }
        for (size_t i = (size_t) index; i < self->count; i++) {
            change_t *change = s_log_at (self, i);
            assert (change->previous == follower->sent);
            size_t size;
            const uint8_t *frame = s_change_frame (change, follower, &size);
            if (!frame) {
                s_refuse (self, follower->identity, "follow", 409,
                          "the primary has no keys of a change: follow again");
                s_follower_remove (self, follower);
                return false;
            }
            if (follower->inflight && follower->inflight + size > FOLLOWER_INFLIGHT)
                return true;        //  its acks make room
            if (s_send_raw (self, follower->identity, frame, size))
                return true;        //  full: the next tick goes on
            follower->sent = change->sequence;
            follower->inflight += size;
        }
    }
    return true;
}

static void
s_heartbeat (tiers_stream_t *self, follower_t *follower)
{
    tiers_wire_t *beat = s_reply ("heartbeat", 200);
    tiers_wire_set_header (beat, "incarnation", self->incarnation, strlen (self->incarnation));
    tiers_wire_set_headerf (beat, "epoch", "%" PRId64, self->epoch);
    tiers_wire_set_headerf (beat, "sequence", "%" PRId64, self->sequence);
    tiers_wire_set_headerf (beat, "committed", "%" PRId64, self->committed);
    if (self->fenced)
        tiers_wire_set_headerf (beat, "fenced", "%" PRId64, self->fenced);
    s_send (self, follower->identity, &beat);
}

//  The acknowledged position moved? Tell the shard.
static void
s_ack_check (tiers_stream_t *self)
{
    int64_t acked = tiers_stream_acked (self);
    if (acked > self->acked) {
        self->acked = acked;
        if (self->config.on_ack)
            self->config.on_ack (self->config.ack_arg, acked);
    }
}


//  --------------------------------------------------------------------------
//  Snapshots

//  The maker thread: VACUUM INTO, then what the snapshot holds and its
//  checksum, on the pipe as "OK SIZE SEQUENCE EPOCH INCARNATION CHECKSUM"
//  or "ERROR why"; then it waits for $TERM.

static int
s_snapshot_facts (const char *path, int64_t *sequence, int64_t *epoch,
                  char incarnation [16], char **why)
{
    sqlite3 *db = NULL;
    int rc = -1;
    *sequence = -1;
    *epoch = 1;
    *incarnation = 0;
    if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_prepare_v2 (db, "SELECT key, value FROM meta", -1, &stmt, NULL)
            == SQLITE_OK) {
            while (sqlite3_step (stmt) == SQLITE_ROW) {
                const char *key = (const char *) sqlite3_column_text (stmt, 0);
                if (key && streq (key, "sequence"))
                    *sequence = sqlite3_column_int64 (stmt, 1);
                if (key && streq (key, "epoch"))
                    *epoch = sqlite3_column_int64 (stmt, 1);
            }
            sqlite3_finalize (stmt);
        }
        if (sqlite3_prepare_v2 (db, "SELECT value FROM identity WHERE name = 'incarnation'",
                                -1, &stmt, NULL) == SQLITE_OK) {
            if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0))
                snprintf (incarnation, 16, "%s", (const char *) sqlite3_column_text (stmt, 0));
            sqlite3_finalize (stmt);
        }
        rc = *sequence >= 0 && *incarnation ? 0 : -1;
    }
    if (rc)
        *why = zsys_sprintf ("the snapshot reads badly: %s",
                             db ? sqlite3_errmsg (db) : "out of memory");
    sqlite3_close (db);
    return rc;
}

static void
s_maker (zsock_t *pipe, void *args_)
{
    maker_args_t *args = (maker_args_t *) args_;
    zsock_signal (pipe, 0);
    char *why = NULL;
    sqlite3 *db = NULL;
    unlink (args->snapshot_path);
    if (sqlite3_open_v2 (args->db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        why = zsys_sprintf ("cannot open %s: %s", args->db_path,
                            db ? sqlite3_errmsg (db) : "out of memory");
    else {
        pthread_mutex_lock (&args->lock);
        args->db = db;
        pthread_mutex_unlock (&args->lock);
        sqlite3_busy_timeout (db, 5000);
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_prepare_v2 (db, "VACUUM INTO ?1", -1, &stmt, NULL) != SQLITE_OK)
            why = zsys_sprintf ("cannot prepare VACUUM INTO: %s", sqlite3_errmsg (db));
        else {
            sqlite3_bind_text (stmt, 1, args->snapshot_path, -1, SQLITE_STATIC);
            if (sqlite3_step (stmt) != SQLITE_DONE)
                why = zsys_sprintf ("VACUUM INTO %s: %s", args->snapshot_path,
                                    sqlite3_errmsg (db));
            sqlite3_finalize (stmt);
        }
    }
    pthread_mutex_lock (&args->lock);
    args->db = NULL;
    pthread_mutex_unlock (&args->lock);
    sqlite3_close (db);
    int64_t sequence = 0, epoch = 1, size = 0;
    char incarnation [16] = "", checksum [CHECKSUM_HEX + 1] = "";
    if (!why)
        s_snapshot_facts (args->snapshot_path, &sequence, &epoch, incarnation, &why);
    if (!why) {
        int fd = open (args->snapshot_path, O_RDONLY | O_CLOEXEC);
        struct sha256_ctx sha;
        sha256_init (&sha);
        uint8_t *buffer = (uint8_t *) malloc (SNAPSHOT_CHUNK);
        ssize_t got = 0;
        while (fd >= 0 && buffer && (got = read (fd, buffer, SNAPSHOT_CHUNK)) > 0) {
            sha256_update (&sha, (size_t) got, buffer);
            size += got;
        }
        if (fd < 0 || !buffer || got < 0)
            why = zsys_sprintf ("cannot read %s: %s", args->snapshot_path, strerror (errno));
        free (buffer);
        if (fd >= 0)
            close (fd);
        uint8_t digest [SHA256_DIGEST_SIZE];
        sha256_digest (&sha, sizeof digest, digest);
        s_hex (digest, checksum);
    }
    if (why)
        zstr_sendf (pipe, "ERROR %s", why);
    else
        zstr_sendf (pipe, "OK %" PRId64 " %" PRId64 " %" PRId64 " %s %s",
                    size, sequence, epoch, incarnation, checksum);
    free (why);
    while (true) {
        char *command = zstr_recv (pipe);
        bool stop = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (stop)
            break;
    }
}

static void
s_snapshot_drop (tiers_stream_t *self)
{
    if (self->snapshot_fd >= 0)
        close (self->snapshot_fd);
    self->snapshot_fd = -1;
    if (self->snapshot != SNAPSHOT_NONE)
        unlink (self->snapshot_path);
    self->snapshot = SNAPSHOT_NONE;
}

//  The answer `snapshot` 200 to one follower.
static void
s_snapshot_offer (tiers_stream_t *self, follower_t *follower)
{
    assert (self->snapshot == SNAPSHOT_READY);
    tiers_wire_t *reply = s_reply ("snapshot", 200);
    tiers_wire_set_headerf (reply, "snapshot", "%" PRIu64, self->snapshot_id);
    tiers_wire_set_headerf (reply, "size", "%" PRId64, self->snapshot_size);
    tiers_wire_set_header (reply, "checksum", self->snapshot_checksum, CHECKSUM_HEX);
    tiers_wire_set_headerf (reply, "sequence", "%" PRId64, self->snapshot_sequence);
    tiers_wire_set_header (reply, "incarnation", self->snapshot_incarnation,
                           strlen (self->snapshot_incarnation));
    tiers_wire_set_headerf (reply, "epoch", "%" PRId64, self->snapshot_epoch);
    s_send (self, follower->identity, &reply);
    follower->snapshot_wanted = false;
    self->snapshot_used = s_now_ms ();
}

static void
s_snapshot_start (tiers_stream_t *self)
{
    assert (self->snapshot == SNAPSHOT_NONE && !self->maker);
    //  The maker's args are the stream's own strings: they outlive it.
    self->maker_args.db_path = self->db_path;
    self->maker_args.snapshot_path = self->snapshot_path;
    self->maker = zactor_new (s_maker, &self->maker_args);
    if (!self->maker)
        return;
    self->snapshot = SNAPSHOT_MAKING;
    tiers_info ("making a snapshot for a replica");
}

//  MAKING: the maker's answer, if it is there.
static void
s_snapshot_poll (tiers_stream_t *self)
{
    if (self->snapshot != SNAPSHOT_MAKING || !self->maker
    ||  !(zsock_events (zactor_sock (self->maker)) & ZMQ_POLLIN))
        return;
    char *answer = zstr_recv (self->maker);
    zactor_destroy (&self->maker);
    char incarnation [16] = "", checksum [CHECKSUM_HEX + 1] = "";
    long long size = 0, sequence = 0, epoch = 0;
    bool good = answer && strncmp (answer, "OK ", 3) == 0
             && sscanf (answer + 3, "%lld %lld %lld %15s %64s", &size, &sequence, &epoch,
                        incarnation, checksum) == 5;
    if (good) {
        self->snapshot_fd = open (self->snapshot_path, O_RDONLY | O_CLOEXEC);
        good = self->snapshot_fd >= 0;
    }
    if (!good) {
        tiers_error ("cannot make a snapshot: %s", answer && strlen (answer) > 6
                     ? answer + 6 : "the maker failed");
        self->snapshot = SNAPSHOT_MAKING;       //  for s_snapshot_drop
        s_snapshot_drop (self);
        for (size_t i = 0; i < self->follower_count; i++)
            if (self->followers [i]->snapshot_wanted) {
                self->followers [i]->snapshot_wanted = false;
                s_refuse (self, self->followers [i]->identity, "snapshot", 503,
                          "the primary could not make a snapshot (its log says why)");
            }
        zstr_free (&answer);
        return;
    }
    zstr_free (&answer);
    self->snapshot = SNAPSHOT_READY;
    if (self->fenced) {
        s_snapshot_drop (self);
        return;
    }
    self->snapshot_id++;
    self->snapshot_size = size;
    self->snapshot_sequence = sequence;
    self->snapshot_epoch = epoch;
    snprintf (self->snapshot_incarnation, sizeof self->snapshot_incarnation, "%s", incarnation);
    snprintf (self->snapshot_checksum, sizeof self->snapshot_checksum, "%s", checksum);
    self->snapshot_used = s_now_ms ();
    tiers_counter_add (self->snapshots, 1);
    tiers_info ("snapshot %" PRIu64 " made: %lld bytes at sequence %lld",
                self->snapshot_id, size, sequence);
    for (size_t i = 0; i < self->follower_count; i++)
        if (self->followers [i]->snapshot_wanted)
            s_snapshot_offer (self, self->followers [i]);
}

//  Is the ready snapshot still of use: of this incarnation, and followable
//  (its sequence is still in the window)?
static bool
s_snapshot_fresh (tiers_stream_t *self)
{
    return self->snapshot == SNAPSHOT_READY
        && streq (self->snapshot_incarnation, self->incarnation)
        && self->snapshot_epoch == self->epoch
        && s_covered (self, self->snapshot_sequence);
}


//  --------------------------------------------------------------------------
//  Messages from followers

//  A non-negative integer header, or -1.
static int64_t
s_number (const tiers_wire_t *msg, const char *key)
{
    bool bad = false;
    const char *text = tiers_wire_text (msg, key, &bad);
    long long value;
    if (!text || bad || tiers_parse_int (text, &value) || value < 0)
        return -1;
    return value;
}

//  A follower that knows a higher epoch: this copy is not the primary.
static bool
s_epoch_above (tiers_stream_t *self, follower_t *follower, const tiers_wire_t *msg)
{
    int64_t epoch = tiers_wire_header (msg, "epoch") ? s_number (msg, "epoch") : -1;
    if (epoch <= self->epoch)
        return false;
    tiers_warn ("replica %s knows epoch %" PRId64 " (this copy is at %" PRId64 "): "
                "a replica was promoted", follower->name, epoch, self->epoch);
    if (self->config.on_fence)
        self->config.on_fence (self->config.ack_arg, epoch);
    if (!self->fenced)
        tiers_stream_fence (self, epoch);
    return true;
}

//  A KEYS follower's follow (its fields were read by s_on_follow): from
//  its position when the log covers it, else reset to the shard's sequence.
static void
s_on_follow_keys (tiers_stream_t *self, follower_t *follower, const char *incarnation,
                  int64_t epoch, int64_t applied)
{
    if (self->fenced) {
        follower->state = FOLLOWER_SNAPSHOT;
        s_refuse (self, follower->identity, "follow", 421,
                  "this copy was fenced: a higher epoch is the primary");
        return;
    }
    bool covered = *incarnation && streq (incarnation, self->incarnation)
                && epoch == self->epoch && applied <= self->sequence
                && s_covered (self, applied);
    int64_t from = covered ? applied : self->sequence;
    tiers_wire_t *reply = s_reply ("follow", 200);
    tiers_wire_set_header (reply, "incarnation", self->incarnation, strlen (self->incarnation));
    tiers_wire_set_headerf (reply, "epoch", "%" PRId64, self->epoch);
    tiers_wire_set_headerf (reply, "sequence", "%" PRId64, self->sequence);
    tiers_wire_set_headerf (reply, "from", "%" PRId64, from);
    if (!covered)
        tiers_wire_set_header (reply, "reset", "1", 1);
    s_send (self, follower->identity, &reply);
    if (follower->state != FOLLOWER_STREAMING || !covered)
        tiers_info ("keys follower %s follows from sequence %" PRId64 "%s", follower->name,
                    from, covered ? "" : " (reset: its position is not in the log)");
    follower->state = FOLLOWER_STREAMING;
    follower->sent = from;
    follower->acked = from;
    follower->inflight = 0;
    s_push (self, follower);
}

//  What a replica is told by a stream of keys only (stream.h, keys_only).
static const char *s_keys_only = "the map names no replica of this shard: its stream "
                                 "carries keys only (for caches)";

#define S_TEXT(x) #x
#define S_NUMBER(x) S_TEXT (x)
static const char *s_keys_full = "this stream has as many keys followers as it takes "
                                 "(" S_NUMBER (KEYS_FOLLOWERS_MAX) "): try again later";

//  How many keys followers are streaming.
static size_t
s_streaming_keys (tiers_stream_t *self)
{
    size_t count = 0;
    for (size_t i = 0; i < self->follower_count; i++)
        count += self->followers [i]->keys
              && self->followers [i]->state == FOLLOWER_STREAMING;
    return count;
}

static void
s_on_follow (tiers_stream_t *self, follower_t *follower, const tiers_wire_t *msg)
{
    bool bad = false;
    const char *name = tiers_wire_text (msg, "name", &bad);
    const char *incarnation = tiers_wire_text (msg, "incarnation", &bad);
    const char *want = tiers_wire_text (msg, "want", &bad);
    int64_t epoch = s_number (msg, "epoch");
    int64_t applied = s_number (msg, "applied");
    bool keys = want && streq (want, "keys");
    if (bad || !name || !*name || (!incarnation && !keys) || epoch < 0 || applied < 0
    ||  (want && !keys)) {
        tiers_counter_add (self->refused, 1);
        s_refuse (self, follower->identity, "follow", 400, want && !keys && !bad
                  ? "follow: `want` is `keys` or absent (a replica)"
                  : "follow needs name, incarnation, epoch and applied");
        return;
    }
    if (keys && follower->state != FOLLOWER_STREAMING
    &&  s_streaming_keys (self) >= KEYS_FOLLOWERS_MAX) {
        tiers_counter_add (self->refused, 1);
        s_refuse (self, follower->identity, "follow", 503, s_keys_full);
        return;
    }
    snprintf (follower->name, sizeof follower->name, "%s", name);
    follower->keys = keys;
    if (keys) {
        s_on_follow_keys (self, follower, incarnation ? incarnation : "", epoch, applied);
        return;
    }
    if (self->config.keys_only) {
        follower->state = FOLLOWER_SNAPSHOT;
        s_refuse (self, follower->identity, "follow", 503, s_keys_only);
        return;
    }
    if (s_epoch_above (self, follower, msg) || (self->fenced && epoch != self->epoch)) {
        follower->state = FOLLOWER_SNAPSHOT;
        s_refuse (self, follower->identity, "follow", 421,
                  "this copy was fenced: a higher epoch is the primary");
        return;
    }
    const char *why = NULL;
    if (!streq (incarnation, self->incarnation))
        why = "your file is of another incarnation of this shard: take a snapshot";
    else
    if (epoch != self->epoch)
        why = "your file is of another epoch of this shard: take a snapshot";
    else
    if (applied > self->sequence)
        why = "your file is ahead of the primary: take a snapshot";
    else
    if (!s_covered (self, applied))
        why = "your position is not in the primary's log: take a snapshot";
    if (why) {
        follower->state = FOLLOWER_SNAPSHOT;
        s_refuse (self, follower->identity, "follow", 409, why);
        return;
    }
    tiers_wire_t *reply = s_reply ("follow", 200);
    tiers_wire_set_header (reply, "incarnation", self->incarnation, strlen (self->incarnation));
    tiers_wire_set_headerf (reply, "epoch", "%" PRId64, self->epoch);
    tiers_wire_set_headerf (reply, "sequence", "%" PRId64, self->sequence);
    s_send (self, follower->identity, &reply);
    if (follower->state != FOLLOWER_STREAMING)
        tiers_info ("replica %s follows from sequence %" PRId64 " (primary at %" PRId64 ")",
                    follower->name, applied, self->sequence);
    follower->state = FOLLOWER_STREAMING;
    follower->sent = applied;
    follower->acked = applied;
    follower->inflight = 0;
    if (s_push (self, follower))
        s_ack_check (self);
}

static void
s_on_ack (tiers_stream_t *self, follower_t *follower, const tiers_wire_t *msg)
{
    if (!follower->keys && s_epoch_above (self, follower, msg)) {
        s_refuse (self, follower->identity, "follow", 421,
                  "this copy was fenced: a higher epoch is the primary");
        follower->state = FOLLOWER_SNAPSHOT;
        return;
    }
    int64_t applied = s_number (msg, "applied");
    if (applied < 0) {
        tiers_counter_add (self->refused, 1);
        s_refuse (self, follower->identity, "ack", 400, "ack needs applied");
        return;
    }
    if (follower->state != FOLLOWER_STREAMING) {
        //  The primary restarted, or forgot a silent follower: follow again.
        s_refuse (self, follower->identity, "follow", 409,
                  "the primary does not know you: follow again");
        return;
    }
    if (applied > follower->sent) {
        tiers_counter_add (self->refused, 1);
        s_refuse (self, follower->identity, "follow", 409, follower->keys
                  ? "you acknowledged a change you were not sent: follow again"
                  : "you acknowledged a change you were not sent: take a snapshot");
        follower->state = FOLLOWER_SNAPSHOT;
        return;
    }
    if (applied > follower->acked) {
        follower->acked = applied;
        //  What is in flight now: the changes after `acked` up to `sent`.
        follower->inflight = 0;
        long index = s_log_find (self, follower->acked);
        for (size_t i = index < 0 ? self->count : (size_t) index; i < self->count; i++) {
            change_t *change = s_log_at (self, i);
            if (change->sequence > follower->sent)
                break;
            size_t size;
            s_change_frame (change, follower, &size);
            follower->inflight += size;
        }
        s_push (self, follower);
    }
    s_ack_check (self);
}

static void
s_on_snapshot (tiers_stream_t *self, follower_t *follower)
{
    follower->state = FOLLOWER_SNAPSHOT;
    //  A snapshot that is no longer followable is made again, but not
    //  under a replica that is still fetching it (that one would start
    //  over, and so on).
    bool fetching = false;
    int64_t now = s_now_ms ();
    for (size_t i = 0; i < self->follower_count; i++)
        fetching |= self->followers [i] != follower
                 && self->followers [i]->state == FOLLOWER_SNAPSHOT
                 && now - self->followers [i]->heard < 5000
                 && now - self->snapshot_used < 5000;
    if (self->snapshot == SNAPSHOT_READY && !s_snapshot_fresh (self) && !fetching)
        s_snapshot_drop (self);
    if (self->snapshot == SNAPSHOT_READY) {
        s_snapshot_offer (self, follower);
        return;
    }
    follower->snapshot_wanted = true;       //  answered when it is made
    if (self->snapshot == SNAPSHOT_NONE) {
        s_snapshot_start (self);
        if (self->snapshot == SNAPSHOT_NONE) {
            follower->snapshot_wanted = false;
            s_refuse (self, follower->identity, "snapshot", 503,
                      "the primary cannot start a snapshot now");
        }
    }
}

static void
s_on_chunk (tiers_stream_t *self, follower_t *follower, const tiers_wire_t *msg)
{
    int64_t id = s_number (msg, "snapshot");
    int64_t offset = s_number (msg, "offset");
    if (id < 0 || offset < 0) {
        tiers_counter_add (self->refused, 1);
        s_refuse (self, follower->identity, "chunk", 400, "chunk needs snapshot and offset");
        return;
    }
    if (self->snapshot != SNAPSHOT_READY || (uint64_t) id != self->snapshot_id
    ||  offset > self->snapshot_size) {
        s_refuse (self, follower->identity, "chunk", 404,
                  "no such snapshot or offset: ask for a snapshot again");
        return;
    }
    size_t want = (size_t) (self->snapshot_size - offset);
    if (want > SNAPSHOT_CHUNK)
        want = SNAPSHOT_CHUNK;
    uint8_t *data = (uint8_t *) malloc (want + 1);
    ssize_t got = data ? pread (self->snapshot_fd, data, want, (off_t) offset) : -1;
    if (got != (ssize_t) want) {
        free (data);
        s_refuse (self, follower->identity, "chunk", 503, "cannot read the snapshot");
        return;
    }
    tiers_wire_t *reply = s_reply ("chunk", 200);
    tiers_wire_set_headerf (reply, "snapshot", "%" PRIu64, self->snapshot_id);
    tiers_wire_set_headerf (reply, "offset", "%" PRId64, offset);
    if (tiers_wire_take_body (reply, data, want))
        free (data);
    s_send (self, follower->identity, &reply);
    self->snapshot_used = s_now_ms ();
}

//  A follower for a new peer: the table is bounded; a peer that is not
//  streaming makes room first.
static follower_t *
s_follower_new (tiers_stream_t *self, zframe_t *identity)
{
    if (self->follower_count == FOLLOWERS_MAX) {
        follower_t *oldest = NULL;
        for (size_t i = 0; i < self->follower_count; i++)
            if (self->followers [i]->state != FOLLOWER_STREAMING
            &&  (!oldest || self->followers [i]->heard < oldest->heard))
                oldest = self->followers [i];
        if (!oldest)
            return NULL;
        s_follower_remove (self, oldest);
    }
    follower_t *follower = (follower_t *) zmalloc (sizeof *follower);
    follower->identity = zframe_dup (identity);
    follower->state = FOLLOWER_SNAPSHOT;
    snprintf (follower->name, sizeof follower->name, "?");
    self->followers [self->follower_count++] = follower;
    return follower;
}

static bool
s_on_router (void *arg)
{
    tiers_stream_t *self = (tiers_stream_t *) arg;
    zmsg_t *route = NULL;
    tiers_wire_t *msg = NULL;
    const char *error = NULL;
    if (tiers_wire_try_recv (self->router, &route, &msg, &error))
        return false;
    zframe_t *identity = route ? zmsg_first (route) : NULL;
    bool bad = false;
    const char *op = msg ? tiers_wire_text (msg, "op", &bad) : NULL;
    bool known = msg && msg->kind == TIERS_WIRE_REQUEST && op && !bad
              && (streq (op, "follow") || streq (op, "ack") || streq (op, "snapshot")
               || streq (op, "chunk"));
    //  Only a well-formed request of the protocol takes a place in the table.
    follower_t *follower = identity ? s_follower_find (self, identity) : NULL;
    if (identity && !follower && known)
        follower = s_follower_new (self, identity);
    if (follower)
        follower->heard = s_now_ms ();
    if (!identity)
        ;
    else
    if (!known) {
        tiers_counter_add (self->refused, 1);
        tiers_warn ("refused a stream message: %s", !msg ? (error ? error : "malformed")
                    : !op || bad ? "a request needs an op" : "unknown op");
        s_refuse (self, identity, op && !bad ? op : "error", 400,
                  !msg ? "malformed message" : !op || bad ? "a stream request needs an op"
                       : "unknown stream op");
    }
    else
    if (!follower)
        s_refuse (self, identity, op, 503, "too many followers");
    else
    if (self->fenced && (streq (op, "snapshot") || streq (op, "chunk"))) {
        //  Not the primary any more: its file may hold what the new
        //  primary never had; it is not to be copied.
        tiers_wire_t *reply = s_reply (op, 421);
        tiers_wire_set_headerf (reply, "epoch", "%" PRId64, self->fenced);
        const char *fenced = "this copy was fenced: a higher epoch is the primary";
        tiers_wire_set_header (reply, "error", fenced, strlen (fenced));
        s_send (self, identity, &reply);
    }
    else
    if (self->config.keys_only && (streq (op, "snapshot") || streq (op, "chunk")))
        s_refuse (self, identity, op, 503, s_keys_only);
    else
    if (streq (op, "follow"))
        s_on_follow (self, follower, msg);
    else
    if (streq (op, "ack"))
        s_on_ack (self, follower, msg);
    else
    if (streq (op, "snapshot"))
        s_on_snapshot (self, follower);
    else
        s_on_chunk (self, follower, msg);
    tiers_wire_destroy (&msg);
    zmsg_destroy (&route);
    return true;
}

static void
s_on_tick (void *arg)
{
    tiers_stream_t *self = (tiers_stream_t *) arg;
    int64_t now = s_now_ms ();
    s_snapshot_poll (self);
    for (size_t i = 0; i < self->follower_count; ) {
        follower_t *follower = self->followers [i];
        if (now - follower->heard > FOLLOWER_SILENT_MS) {
            if (follower->state == FOLLOWER_STREAMING)
                tiers_warn ("%s %s is silent: forgotten (at %" PRId64 ")",
                            follower->keys ? "keys follower" : "replica",
                            follower->name, follower->acked);
            s_follower_remove (self, follower);
            continue;
        }
        if (follower->state == FOLLOWER_STREAMING) {
            if (!s_push (self, follower))
                continue;           //  removed
            s_heartbeat (self, follower);
        }
        i++;
    }
    if (self->snapshot == SNAPSHOT_READY
    &&  (now - self->snapshot_used > SNAPSHOT_IDLE_MS || !s_snapshot_fresh (self))) {
        bool fetching = false;
        for (size_t i = 0; i < self->follower_count; i++)
            fetching |= self->followers [i]->state == FOLLOWER_SNAPSHOT;
        if (!fetching || now - self->snapshot_used > SNAPSHOT_IDLE_MS)
            s_snapshot_drop (self);
    }
    tiers_gauge_set (self->live, (int64_t) tiers_stream_live (self, FOLLOWER_SILENT_MS));
    tiers_gauge_set (self->keys_live, (int64_t) s_live (self, FOLLOWER_SILENT_MS, true));
    tiers_gauge_set (self->log_changes, (int64_t) self->count);
    tiers_gauge_set (self->log_bytes, (int64_t) self->bytes);
}


//  --------------------------------------------------------------------------
//  The API

tiers_stream_t *
tiers_stream_new (const tiers_stream_config_t *config, zsock_t *router,
                  const char *incarnation, int64_t epoch, int64_t sequence)
{
    assert (config && router && config->log_changes > 0);
    tiers_stream_t *self = (tiers_stream_t *) zmalloc (sizeof *self);
    self->config = *config;
    self->shard = strdup (config->shard);
    self->db_path = strdup (config->db_path);
    self->snapshot_path = zsys_sprintf ("%.*s.snapshot.db",
                                        (int) (strlen (config->db_path) - 3), config->db_path);
    self->config.shard = self->shard;
    self->config.db_path = self->db_path;
    self->router = router;
    //  A short queue to each peer: the in-flight bound is the real one.
    zsock_set_sndhwm (router, STREAM_SNDHWM);
    pthread_mutex_init (&self->maker_args.lock, NULL);
    snprintf (self->incarnation, sizeof self->incarnation, "%s", incarnation);
    self->epoch = epoch;
    self->sequence = sequence;
    self->acked = -1;
    self->snapshot_fd = -1;
    self->log = (change_t *) zmalloc (config->log_changes * sizeof (change_t));
    assert (self->log);
    unlink (self->snapshot_path);       //  one left by a process before
    char labels [128];
    snprintf (labels, sizeof labels, "shard=\"%s\"", config->shard);
    self->changes = tiers_metrics_counter ("tiers_shard_stream_changes_total", labels,
        "Changes (committed transactions) the shard published to its stream");
    self->snapshots = tiers_metrics_counter ("tiers_shard_snapshots_total", labels,
        "Snapshots the shard made for replicas");
    self->refused = tiers_metrics_counter ("tiers_shard_stream_refused_total", labels,
        "Malformed or out-of-place messages on the shard's stream port");
    self->live = tiers_metrics_gauge ("tiers_shard_stream_followers", labels,
        "Replicas streaming from the shard");
    self->keys_live = tiers_metrics_gauge ("tiers_shard_stream_keys_followers", labels,
        "Keys followers (caches) streaming from the shard");
    self->log_changes = tiers_metrics_gauge ("tiers_shard_stream_log_changes", labels,
        "Changes held in the shard's log for catch-up");
    self->log_bytes = tiers_metrics_gauge ("tiers_shard_stream_log_bytes", labels,
        "Bytes held in the shard's log for catch-up");
    return self;
}

void
tiers_stream_destroy (tiers_stream_t **self_p)
{
    tiers_stream_t *self = *self_p;
    if (!self)
        return;
    //  A VACUUM INTO under way ends now, not when it is done.
    pthread_mutex_lock (&self->maker_args.lock);
    if (self->maker_args.db)
        sqlite3_interrupt (self->maker_args.db);
    pthread_mutex_unlock (&self->maker_args.lock);
    zactor_destroy (&self->maker);
    pthread_mutex_destroy (&self->maker_args.lock);
    if (self->snapshot == SNAPSHOT_MAKING)
        self->snapshot = SNAPSHOT_READY;        //  its file, if any, goes too
    s_snapshot_drop (self);
    while (self->follower_count)
        s_follower_remove (self, self->followers [0]);
    s_log_clear (self);
    free (self->log);
    zsock_destroy (&self->router);
    free (self->shard);
    free (self->db_path);
    free (self->snapshot_path);
    free (self);
    *self_p = NULL;
}

void
tiers_stream_attach (tiers_stream_t *self, tiers_reactor_t *reactor)
{
    tiers_reactor_reader (reactor, self->router, 0, s_on_router, self);
    tiers_reactor_timer (reactor, STREAM_TICK_MS, s_on_tick, self);
}

//  A change's frame: its headers, the checksum of the body when `checksum`,
//  and the body. NULL when it cannot be encoded (too large).
static uint8_t *
s_change_encode (tiers_stream_t *self, int64_t previous, int64_t sequence,
                 int64_t committed, const void *body, size_t size, bool checksum,
                 size_t *frame_size)
{
    tiers_wire_t *change = s_reply ("change", 200);
    tiers_wire_set_header (change, "shard", self->shard, strlen (self->shard));
    tiers_wire_set_header (change, "incarnation", self->incarnation, strlen (self->incarnation));
    tiers_wire_set_headerf (change, "epoch", "%" PRId64, self->epoch);
    tiers_wire_set_headerf (change, "previous", "%" PRId64, previous);
    tiers_wire_set_headerf (change, "sequence", "%" PRId64, sequence);
    tiers_wire_set_headerf (change, "committed", "%" PRId64, committed);
    if (checksum) {
        uint8_t digest [SHA256_DIGEST_SIZE];
        struct sha256_ctx sha;
        sha256_init (&sha);
        sha256_update (&sha, size, (const uint8_t *) body);
        sha256_digest (&sha, sizeof digest, digest);
        char hex [CHECKSUM_HEX + 1];
        s_hex (digest, hex);
        tiers_wire_set_header (change, "checksum", hex, CHECKSUM_HEX);
    }
    int rc = tiers_wire_set_body (change, body, size);
    *frame_size = tiers_wire_size (change);
    uint8_t *frame = rc == 0 ? (uint8_t *) malloc (*frame_size) : NULL;
    if (frame)
        tiers_wire_encode (change, frame);
    tiers_wire_destroy (&change);
    return frame;
}

void
tiers_stream_publish (tiers_stream_t *self, int64_t previous, int64_t sequence,
                      int64_t committed, const void *changeset, size_t size,
                      const char *keys, size_t keys_size)
{
    assert (sequence > previous);
    assert (keys || keys_size == 0);
    //  Without its keys (NULL: the shard could not build them) a change
    //  is sent to no KEYS follower: one that reaches it follows again.
    if (self->fenced)
        return;                 //  the shard answers those writes 421
    if (previous != self->sequence) {
        //  Not the next change (cannot happen: the writer publishes every
        //  commit): start the window again, followers re-snapshot.
        tiers_error ("change %" PRId64 "->%" PRId64 " does not follow %" PRId64
                     ": the log starts again", previous, sequence, self->sequence);
        s_log_clear (self);
    }
    size_t frame_size = 0, keys_frame_size = 0;
    uint8_t *frame = s_change_encode (self, previous, sequence, committed, changeset, size,
                                      true, &frame_size);
    uint8_t *keys_frame = frame && keys
                        ? s_change_encode (self, previous, sequence, committed, keys,
                                           keys_size, false, &keys_frame_size)
                        : NULL;
    self->sequence = sequence;
    self->committed = committed;
    tiers_counter_add (self->changes, 1);
    if (!frame) {
        //  Too large to send (the writer bounds batches so that it is
        //  not): nobody can follow across it.
        tiers_error ("change %" PRId64 "->%" PRId64 " of %zu bytes cannot be sent: "
                     "replicas must take a snapshot", previous, sequence, size);
        s_log_clear (self);
        return;
    }
    if (!keys_frame)
        tiers_error ("change %" PRId64 "->%" PRId64 " has no keys: keys followers "
                     "must follow again", previous, sequence);
    if (self->count == self->config.log_changes)
        s_log_drop_oldest (self);
    change_t *slot = &self->log [(self->head + self->count) % self->config.log_changes];
    *slot = (change_t) { previous, sequence, frame, frame_size, keys_frame, keys_frame_size };
    self->count++;
    self->bytes += frame_size + keys_frame_size;
    while (self->count > 1 && self->bytes > self->config.log_bytes)
        s_log_drop_oldest (self);
    //  Followers that were sent everything get it now; the others at the
    //  next tick (their order is kept either way).
    for (size_t i = 0; i < self->follower_count; ) {
        follower_t *follower = self->followers [i];
        if (follower->state == FOLLOWER_STREAMING && follower->sent == previous
        &&  !s_push (self, follower))
            continue;
        i++;
    }
}

void
tiers_stream_fence (tiers_stream_t *self, int64_t epoch)
{
    if (self->fenced >= epoch)
        return;
    self->fenced = epoch;
    if (self->snapshot == SNAPSHOT_READY)
        s_snapshot_drop (self);
    for (size_t i = 0; i < self->follower_count; i++)
        self->followers [i]->snapshot_wanted = false;
}

void
tiers_stream_set_identity (tiers_stream_t *self, const char *incarnation, int64_t epoch)
{
    snprintf (self->incarnation, sizeof self->incarnation, "%s", incarnation);
    self->epoch = epoch;
    s_log_clear (self);
    for (size_t i = 0; i < self->follower_count; i++)
        if (self->followers [i]->state == FOLLOWER_STREAMING) {
            self->followers [i]->state = FOLLOWER_SNAPSHOT;
            s_refuse (self, self->followers [i]->identity, "follow", 409,
                      "the shard's incarnation changed: take a snapshot");
        }
}

int64_t
tiers_stream_acked (tiers_stream_t *self)
{
    int64_t best = -1, now = s_now_ms ();
    for (size_t i = 0; i < self->follower_count; i++) {
        follower_t *follower = self->followers [i];
        if (follower->state == FOLLOWER_STREAMING && !follower->keys
        &&  now - follower->heard <= FOLLOWER_SILENT_MS && follower->acked > best)
            best = follower->acked;
    }
    return best;
}

size_t
tiers_stream_live (tiers_stream_t *self, int64_t within_ms)
{
    return s_live (self, within_ms, false);
}

char *
tiers_stream_status (tiers_stream_t *self)
{
    char *text = zsys_sprintf ("\"epoch\":%" PRId64 ",\"log\":{\"changes\":%zu,\"bytes\":%zu,"
                               "\"from\":%" PRId64 "},\"followers\":[",
                               self->epoch, self->count, self->bytes,
                               self->count ? s_log_at (self, 0)->previous : self->sequence);
    int64_t now = s_now_ms ();
    for (size_t i = 0; i < self->follower_count; i++) {
        follower_t *follower = self->followers [i];
        char name [160];
        size_t at = 0;
        for (const char *c = follower->name; *c && at < sizeof name - 7; c++) {
            if (*c == '"' || *c == '\\' || (unsigned char) *c < 0x20)
                at += (size_t) snprintf (name + at, sizeof name - at, "\\u%04x",
                                         (unsigned char) *c);
            else
                name [at++] = *c;
        }
        name [at] = 0;
        char *more = zsys_sprintf ("%s%s{\"name\":\"%s\",%s\"state\":\"%s\",\"sent\":%" PRId64
                                   ",\"acked\":%" PRId64 ",\"heard_ms\":%" PRId64 "}",
                                   text, i ? "," : "", name,
                                   follower->keys ? "\"want\":\"keys\"," : "",
                                   follower->state == FOLLOWER_STREAMING ? "streaming"
                                                                         : "snapshot",
                                   follower->sent, follower->acked, now - follower->heard);
        free (text);
        text = more;
    }
    char *done = zsys_sprintf ("%s]", text);
    free (text);
    return done;
}
