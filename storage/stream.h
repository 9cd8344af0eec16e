/*  stream.h — the primary's side of a shard's commit stream.

    The shard's writer turns every committed transaction into a changeset
    (SQLite's session extension); the shard's actor thread publishes it
    here. The stream keeps the recent changes in a bounded log, serves the
    replicas that follow it on the shard's `stream` port (a ROUTER) —
    follow, ack, snapshot, chunk — and sends them every change and a
    heartbeat. The protocol is doc/replication.md. Caches follow it too, as
    KEYS followers: for each change they get the keys it wrote, not the
    changeset (doc/protocol.md, "Keys followers").

    Everything here runs in the shard's actor thread.
*/
#ifndef TIERS_STREAM_H
#define TIERS_STREAM_H

#include <czmq.h>
#include "reactor.h"

typedef struct _tiers_stream_t tiers_stream_t;

//  Called when the highest sequence that a live replica has acknowledged
//  moves (ack = replica answers its waiting writes from here).
typedef void (tiers_stream_ack_fn) (void *arg, int64_t acked);
//  Called when a follower says it knows a higher epoch than the shard's:
//  a replica was promoted, and this copy must fence itself.
typedef void (tiers_stream_fence_fn) (void *arg, int64_t epoch);

typedef struct {
    const char *shard;          //  the shard's name (labels, the `shard` header)
    const char *db_path;        //  the shard's file (snapshots read it)
    size_t log_changes;         //  retention: changes ...
    size_t log_bytes;           //  ... and bytes, whichever is reached first
    //  No replica of the shard is in the map: the shard records no
    //  changesets (they cost a durable PUT a fifth), only the keys each
    //  change wrote; replicas are refused (503), keys followers served.
    bool keys_only;
    tiers_stream_ack_fn *on_ack;
    tiers_stream_fence_fn *on_fence;
    void *ack_arg;              //  the argument of both
} tiers_stream_config_t;

//  A stream on `router` (taken: the stream destroys it), for a shard whose
//  file has `incarnation` and `epoch` and whose last sequence is `sequence`.
tiers_stream_t *tiers_stream_new (const tiers_stream_config_t *config, zsock_t *router,
                                  const char *incarnation, int64_t epoch,
                                  int64_t sequence);
void tiers_stream_destroy (tiers_stream_t **self_p);

//  Adds the stream's reader (the port) and its timer to the actor's reactor.
void tiers_stream_attach (tiers_stream_t *self, tiers_reactor_t *reactor);

//  One committed transaction: sequence `previous` -> `sequence`, COMMIT
//  returned at wall ms `committed`. The changeset goes to replicas, `keys`
//  (the documents the transaction wrote, "COLLECTION/ID VERSION\n" each;
//  may be empty) to KEYS followers; both are copied.
void tiers_stream_publish (tiers_stream_t *self, int64_t previous, int64_t sequence,
                           int64_t committed, const void *changeset, size_t size,
                           const char *keys, size_t keys_size);

//  The file's incarnation changed in place (a reopen keeps it; this is for
//  a promotion): followers of the old one are sent away to re-snapshot.
void tiers_stream_set_identity (tiers_stream_t *self, const char *incarnation,
                                int64_t epoch);

//  A higher epoch is the primary: nothing is published from now on, no
//  snapshot is made or served (421), and no new follower is taken (421);
//  followers of this epoch still get the changes up to the fence, so that
//  the replica being promoted can catch up (heartbeats say `fenced`).
void tiers_stream_fence (tiers_stream_t *self, int64_t epoch);

//  The highest sequence a live replica has acknowledged (-1: none). KEYS
//  followers (caches) are no replicas: they count here and below never.
int64_t tiers_stream_acked (tiers_stream_t *self);
//  Replicas that are streaming and were heard from within `within_ms`.
size_t tiers_stream_live (tiers_stream_t *self, int64_t within_ms);

//  The stream's part of the shard's STATUS: a JSON object's members, no
//  braces (`"epoch":1,"followers":[...],...`). Caller frees.
char *tiers_stream_status (tiers_stream_t *self);

//  The largest changeset a change can carry (the wire's body limit, less
//  room for its headers).
#define TIERS_STREAM_CHANGE_MAX (15u * 1024 * 1024)

#endif
