/*  shard.h — the shard tier: SQLite primary for a range of hash slots.

    A shard is an actor (see storage/shard.c for its design); the rest of
    tiers reaches it only through messages (doc/protocol.md, "read-api /
    write-api -> shard") and starts it through its kind descriptor.
*/
#ifndef TIERS_SHARD_H
#define TIERS_SHARD_H

#include "kind.h"
#include "wire.h"

extern const tiers_kind_t tiers_shard_kind;

//  How a shard starts serving: as a shard entry of the map (all zero but
//  lock_fd = -1), or as a replica promoted to primary (storage/replica.c),
//  which hands over what it holds already.
typedef struct {
    const char *shard;          //  the shard's name (its file's identity, the
                                //  stream's `shard`); NULL: the entry's name
    const char *slots;          //  NULL: the entry's `slots`
    const tiers_entry_t *settings;  //  whose keys (sync, ack, ...); NULL: the entry
    zsock_t *requests;          //  the requests port, bound (taken); NULL: bind it
    int lock_fd;                //  the file's lock, held (taken); -1: take it
    zsock_t *stream;            //  the stream port, bound (taken); NULL: bind
                                //  it if the entry has one
    int64_t promote_to;         //  > 0: a promotion: a new incarnation and
                                //  this epoch, written before serving
    tiers_wire_t *promote;      //  the `promote` request (taken), answered
    zmsg_t *promote_route;      //  once serving (200) or when it cannot (503)
} tiers_shard_setup_t;

//  Runs a shard in the calling actor thread until $TERM on `pipe`. The
//  entry's keys (sync, batch, ack, ...) and ports (stream) apply; its file
//  is <data>/<entry name>.db. A promotion signals nothing on the pipe
//  (the actor was ready before); a shard entry signals ready or failed.
void tiers_shard_serve (zsock_t *pipe, tiers_actor_args_t *args,
                        const tiers_shard_setup_t *setup);

#endif
