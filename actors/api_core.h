/*  api_core.h — what the Read API and the Write API tiers share.

    The two tiers (actors/read_api.c, actors/write_api.c) are one actor
    skeleton with two request paths. The core holds the skeleton: it joins
    the balancer pool, keeps the call table, talks to the shards, answers
    (problem+json for errors), sweeps deadlines and answers 503 when it
    shuts down. A side fills a table of hooks: `start` checks a new request
    and sends it to the shards, `answer` turns a shard's answer into the
    reply (or into the next request to a shard).

    A side's call embeds tiers_api_call_t as its first member, so the core
    can keep it in its table and the side can cast it back. Everything here
    is tiers_api_*, the word the metrics of both tiers use.

    A shard may have replicas (doc/replication.md). The core knows them by
    the link `replicas` and, for a side that reads from them (the read-api),
    connects one DEALER each and keeps the READ ROTATION: it asks every
    replica for its STATUS every 250 ms, and a replica is in the rotation
    while its last answer said `rotation: true` and it answered within the
    last second. Which copy a read goes to is the side's choice
    (actors/read_api.c); the core says which copies there are, picks the
    next replica of a shard in the rotation (round-robin), sends, and tells
    the side which copy an answer came from.

    A side may talk to more than the shards (the read-api to its caches):
    its `attach` hook makes its own sockets and readers in the core's
    reactor, once, before the instance takes its first request, and keeps
    its state where tiers_api_side finds it; `detach` frees them at the
    end. A reader of the side finds the call an answer is for with
    tiers_api_call_find (by the rid the side sent it with: the call's own)
    and, when it answered the call, ends it with tiers_api_call_done, as
    the core does when `answer` says done.
*/
#ifndef TIERS_API_CORE_H
#define TIERS_API_CORE_H

#include "kind.h"
#include "wire.h"
#include "reactor.h"
#include "token.h"

typedef struct _tiers_api_core_t tiers_api_core_t;
typedef struct _tiers_api_hooks_t tiers_api_hooks_t;

//  The part of a call the core keeps. `rid` and `request` are for the
//  side to read; the rest is the core's.
typedef struct {
    char rid [TIERS_WIRE_MAX_RID + 1];      //  ours, towards the shards
    zmsg_t *route;                          //  back to the caller
    tiers_wire_t *request;                  //  the caller's request
    int64_t started;                        //  monotonic us
    const tiers_api_hooks_t *hooks;         //  of the side that made it
    struct _tiers_api_probe_t *probe;       //  a READY probe, or NULL
    int64_t wake_at;                        //  the side's: wall-clock ms at
                                            //  which its `wake` runs (0: never)
} tiers_api_call_t;

//  A copy of a shard: its primary (replica < 0) or one of its replicas
//  (an index of the core's replica table, tiers_api_replica_*).
typedef struct {
    size_t shard;
    int replica;
} tiers_api_copy_t;

struct _tiers_api_hooks_t {
    const char *api;            //  "read" / "write": the metrics' api label
                                //  and the default pool
    size_t call_size;           //  the side's call, tiers_api_call_t first;
                                //  the core allocates it zeroed
    //  A new request whose text headers hold no NUL byte and whose
    //  collection (and id, if sent) are names: check the rest and send it
    //  to the shards. Returns 0 when the call waits for the shards (the
    //  core puts it in the table), -1 when it was answered (freed).
    int (*start) (tiers_api_core_t *core, tiers_api_call_t *call);
    //  The answer of copy `from` to a call of the table. Returns true when
    //  the call was answered (the core removes it), false when it waits on.
    bool (*answer) (tiers_api_core_t *core, tiers_api_call_t *call,
                    const tiers_api_copy_t *from, tiers_wire_t *answer);
    //  The call's `wake_at` has come, before its deadline (the core clears
    //  wake_at first). Returns true when the call was answered. May be NULL
    //  for a side that never sets wake_at.
    bool (*wake) (tiers_api_core_t *core, tiers_api_call_t *call);
    //  Frees what the side's call holds beyond the core's; or NULL.
    void (*call_free) (tiers_api_call_t *call);
    //  Reads go to replicas too: connect them and keep the read rotation.
    bool replicas;
    //  The side's own sockets, into the core's reactor (before the first
    //  request; tiers_api_set_side keeps what it made). Returns 0, or -1
    //  with *why (malloc'ed): the instance does not start. May be NULL.
    int (*attach) (tiers_api_core_t *core, const tiers_actor_args_t *args,
                   tiers_reactor_t *reactor, char **why);
    //  Frees what attach made, after the last call was answered. May be
    //  NULL; runs also when attach failed.
    void (*detach) (tiers_api_core_t *core);
};

//  The actor body of a side: runs one instance until $TERM.
void tiers_api_run (zsock_t *pipe, void *args, const tiers_api_hooks_t *hooks);

//  The keys and links both kinds declare: capacity, pool, heartbeat,
//  liveness; the balancer (TIERS_LINK_BALANCER), every shard ("shards")
//  and every replica ("replicas", optional: a map without replicas is
//  fine). TIERS_API_KEYS are the keys, for a side that adds its own.
#define TIERS_API_KEYS \
    { "capacity",  TIERS_KEY_INT,    false, 1, 10000, NULL }, \
    { "pool",      TIERS_KEY_NAME,   false, 0, TIERS_WIRE_MAX_SERVICE, NULL }, \
    { "heartbeat", TIERS_KEY_MS,     false, 10, 60000, NULL }, \
    { "liveness",  TIERS_KEY_INT,    false, 1, 100, NULL }
extern const tiers_key_t tiers_api_keys [];
#define TIERS_API_LINKS \
    TIERS_LINK_BALANCER, \
    { "shards", "shard", "requests", ZMQ_DEALER, true, false, NULL }, \
    { "replicas", "replica", "requests", ZMQ_DEALER, true, true, NULL }
extern const tiers_link_t tiers_api_links [];

//  --------------------------------------------------------------------------
//  The side's own state and sockets (hooks attach / detach)

void tiers_api_set_side (tiers_api_core_t *core, void *side);
void *tiers_api_side (tiers_api_core_t *core);
//  The call in the table with that rid (its `rid`), or NULL: it was
//  answered already, or never was.
tiers_api_call_t *tiers_api_call_find (tiers_api_core_t *core, const char *rid);
//  A call the side answered from its own reader leaves the table (freed).
void tiers_api_call_done (tiers_api_core_t *core, tiers_api_call_t *call);

//  What a pool answers (405) for a method it does not serve.
#define TIERS_API_WRONG_METHOD "this pool does not serve that method"

//  --------------------------------------------------------------------------
//  Answering (each call exactly once)

//  Sends `reply` (not consumed) to the caller and observes the latency.
void tiers_api_reply (tiers_api_core_t *core, tiers_api_call_t *call,
                      tiers_wire_t *reply);
//  An RFC 9457 problem (runtime/problem.h); a 503 says retry-after: 1.
void tiers_api_problem (tiers_api_core_t *core, tiers_api_call_t *call,
                        int status, const char *detail);
//  A shard's error answer (status >= 400) as a problem: 404 "no such
//  document", 412 `failed` (the precondition that did not hold), the
//  shard's error text otherwise; a 5xx counts as a shard error.
void tiers_api_shard_problem (tiers_api_core_t *core, tiers_api_call_t *call,
                              tiers_wire_t *answer, const char *failed);
//  `idempotent-replayed: true` on the reply when the shard's answer was
//  the first outcome of an Idempotency-Key, again.
void tiers_api_replayed (tiers_wire_t *reply, const tiers_wire_t *answer);
//  The ETag header for a shard's tag (none when tag is NULL).
void tiers_api_etag (tiers_wire_t *reply, const char *tag);

//  --------------------------------------------------------------------------
//  The shards

size_t tiers_api_shard_count (tiers_api_core_t *core);
//  The shard that owns the slot of (collection, id).
size_t tiers_api_shard_of (tiers_api_core_t *core, const char *collection,
                           const char *id);
//  A request to `shard` for `call`: rid, service, deadline and trace set,
//  and the headers op, request-id and collection. The side adds the rest
//  and sends it with tiers_api_shard_send.
tiers_wire_t *tiers_api_shard_request (tiers_api_core_t *core, tiers_api_call_t *call,
                                       size_t shard, const char *op);
//  Sends the message to `shard` and destroys it. Returns 0 or -1.
int tiers_api_shard_send (tiers_api_core_t *core, size_t shard,
                          tiers_wire_t **message_p);
//  Counts a shard call that failed (tiers_api_shard_errors_total).
void tiers_api_shard_error (tiers_api_core_t *core);
//  Has a replica of the shard been promoted (writes go to it, not to the
//  shard's entry)?
bool tiers_api_primary_moved (tiers_api_core_t *core, size_t shard);
//  The shard's map name ("s0").
const char *tiers_api_shard_name (tiers_api_core_t *core, size_t shard);

//  --------------------------------------------------------------------------
//  The replicas (for a side with `replicas` in its hooks; none otherwise)

//  The next replica of `shard` in the read rotation (round-robin), or -1
//  when none is.
int tiers_api_replica_pick (tiers_api_core_t *core, size_t shard);
//  When a read sent now to `replica` for `call` is given up and asked of
//  the primary instead (wall-clock ms): after the instance's
//  `replica_timeout`, plus the replica's `read_wait` when the read
//  `waits` for a token's sequence; at most half of what is left of the
//  call's deadline, so that the primary has the other half.
int64_t tiers_api_replica_bound (tiers_api_core_t *core, tiers_api_call_t *call,
                                 int replica, bool waits);
//  Sends a request made by tiers_api_shard_request for the copy's shard
//  to that copy (a replica's name becomes its service) and destroys it.
//  Returns 0 or -1.
int tiers_api_copy_send (tiers_api_core_t *core, const tiers_api_copy_t *copy,
                         tiers_wire_t **message_p);

//  What the read path counts: a read (a get, or one shard's page of a
//  list) served by `copy` (tiers_api_reads_total{copy}), and a read given
//  up on a replica and asked of the primary (tiers_api_read_fallbacks_total
//  {reason}).
typedef enum {
    TIERS_API_FALLBACK_REFUSED,     //  the replica answered 409
    TIERS_API_FALLBACK_ERROR,       //  another answer that cannot be used
    TIERS_API_FALLBACK_TIMEOUT,     //  no answer within the bound
    TIERS_API_FALLBACK_UNREACHABLE, //  the request could not be sent
    TIERS_API_FALLBACK_REASONS
} tiers_api_fallback_t;
void tiers_api_read_served (tiers_api_core_t *core, const tiers_api_copy_t *copy);
void tiers_api_read_fallback (tiers_api_core_t *core, tiers_api_fallback_t reason);

//  --------------------------------------------------------------------------
//  What the caller sent

//  The gateway's name rules (runtime/names.h): a document id when `id`,
//  else a collection. NULL (a missing header) is not a name.
bool tiers_api_name_ok (const char *name, bool id);

//  The session headers of the call's request: `token` (Tiers-Token,
//  actors/token.h) into *token, and `consistency` (Tiers-Consistency:
//  `strong` sets *strong; `eventual` or none leaves it false). Returns 0,
//  or -1 when one is malformed: the call was answered 400 then.
int tiers_api_session (tiers_api_core_t *core, tiers_api_call_t *call,
                       tiers_token_t *token, bool *strong);

//  An Idempotency-Key header's value: the key into `key` (size >
//  TIERS_API_KEY_MAX). Returns 0, or -1 with *why.
#define TIERS_API_KEY_MAX 255
int tiers_api_idempotency_key (const char *value, char *key, size_t size,
                               const char **why);

//  If-Match / If-None-Match (RFC 9110 section 13.1), parsed. The tags
//  point into the header value, which must outlive them.
#define TIERS_API_TAGS_MAX 16
#define TIERS_API_TAG_MAX 64        //  longer tags are valid, match nothing
typedef struct {
    bool present;               //  the header was sent
    bool any;                   //  "*"
    size_t count;               //  tags named (their bytes between quotes)
    const char *tags [TIERS_API_TAGS_MAX];
    size_t sizes [TIERS_API_TAGS_MAX];
} tiers_api_tags_t;

//  Parses a header value (NULL = not sent). W/ tags count only when
//  `weak_counts` (weak comparison). Returns 0, or -1 with *why when the
//  value is not that syntax.
int tiers_api_tags_parse (const char *value, bool weak_counts,
                          tiers_api_tags_t *tags, const char **why);
//  Does the document's current tag (the shard's `tag`; NULL = no
//  document) satisfy the list?
bool tiers_api_tags_match (const tiers_api_tags_t *tags, const char *tag);
//  The tags separated by spaces (the shard's `match` header), as many as
//  fit in `size`. Returns the length.
size_t tiers_api_tags_join (const tiers_api_tags_t *tags, char *text, size_t size);

#endif
