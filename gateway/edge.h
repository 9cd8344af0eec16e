/*  edge.h — the edge cache: hot document GETs answered in the gateway's
    own thread.

    A GET that the read-api answers takes gateway -> balancer -> read-api
    -> shard and back; a hit here takes none of it. Each gateway instance
    (each its own thread) keeps its own store (actors/cachestore.h) and its
    own follower of every shard's commit stream (actors/follow.h, the
    gateway's `streams` link): every committed write invalidates its key
    here as it does in the cache tier, and a shard whose stream is not
    live has none of its keys served from here. doc/http.md, "The edge
    cache", says what is and is never answered from it.

    The document route asks it three things of a GET or HEAD:

        tiers_edge_lookup   (begin) a HIT is answered at once, the same
                            response the read-api's path gives; a MISS
                            that got the key's lease is forwarded with a
                            TICKET; anything else is forwarded as before
        tiers_edge_forward  (forward) a ticketed read carries the session
                            token merged with the follower's position, so
                            that it reads at least what the edge has seen
                            invalidated
        tiers_edge_fill     (reply) the answer fills the store under the
                            ticket's lease (200: the document; the read-
                            api's 404: a negative entry)

    and of a PUT or DELETE's answer, tiers_edge_written: the key goes at
    once, before the client can read again through this instance.

    Nothing here locks: the store, the follower and the metrics' handles
    belong to the instance's thread.
*/
#ifndef TIERS_EDGE_H
#define TIERS_EDGE_H

#include "http.h"
#include "kind.h"
#include "actors/token.h"

typedef struct _tiers_edge_t tiers_edge_t;

//  What the route keeps of a request the edge did not answer (in its
//  per-request state; zeroed = no ticket).
typedef struct {
    uint64_t lease;             //  the store's lease: the reply fills (0: no fill)
    int64_t position;           //  the follower's position of the shard at the lookup
    uint32_t shard;             //  the key's shard (the follower's index)
    char incarnation [TIERS_TOKEN_INCARNATION_MAX + 1];     //  of that position
    bool conditional;           //  the client's If-None-Match was kept back:
                                //  the route answers it (tiers_edge_not_modified)
} tiers_edge_ticket_t;

//  The edge of one gateway instance, from its entry's keys (edge_cache,
//  edge_ttl, edge_negative_ttl, edge_silent) and its `streams` link.
//  NULL with *why NULL when it is off (edge_cache 0, or not set and no
//  shard of the map has a stream); NULL with *why (malloc'ed) when it is
//  asked for and cannot be.
tiers_edge_t *tiers_edge_new (const tiers_actor_args_t *args, int64_t lease_ms, char **why);
void tiers_edge_destroy (tiers_edge_t **self_p);
//  The follower's sockets and the edge's timer into the instance's reactor.
void tiers_edge_attach (tiers_edge_t *self, tiers_reactor_t *reactor);
//  Its cap in bytes (for the log).
size_t tiers_edge_cap (tiers_edge_t *self);

//  A GET or HEAD of COLLECTION/ID whose names and rights were checked.
//  True when it was answered from the edge (*rc is the answer's result);
//  false when it must be forwarded, with *ticket set when the reply is to
//  fill (ticket->lease != 0).
bool tiers_edge_lookup (tiers_edge_t *self, tiers_http_req_t *req, const char *collection,
                        const char *id, tiers_edge_ticket_t *ticket, enum MHD_Result *rc);
//  A ticketed read goes: its `token` header, the client's merged with the
//  ticket's entry. Call after the client's token was copied to `msg`.
void tiers_edge_forward (tiers_edge_t *self, tiers_edge_ticket_t *ticket, tiers_wire_t *msg);
//  Its reply came: fill the store under the ticket's lease when the
//  answer is one the edge can give again (the lease ends either way).
void tiers_edge_fill (tiers_edge_t *self, const char *collection, const char *id,
                      tiers_edge_ticket_t *ticket, const tiers_wire_t *reply);
//  A miss forwarded without the client's If-None-Match (so that its 200
//  fills): is the reply's ETag one of that header's tags? Then the route
//  answers 304 (no body), as the read-api would have.
bool tiers_edge_not_modified (tiers_http_req_t *req, const tiers_wire_t *reply);
//  The ticketed read ended without a reply (the client left, the face
//  answered it): its lease goes back.
void tiers_edge_release (tiers_edge_t *self, const char *collection, const char *id,
                         tiers_edge_ticket_t *ticket);
//  A write of COLLECTION/ID was answered through this instance: its key
//  is invalidated here at once (at the answer's token), not only when the
//  stream brings it.
void tiers_edge_written (tiers_edge_t *self, const char *collection, const char *id,
                         const tiers_wire_t *reply);

#endif
