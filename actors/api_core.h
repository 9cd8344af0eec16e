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
*/
#ifndef TIERS_API_CORE_H
#define TIERS_API_CORE_H

#include "kind.h"
#include "wire.h"

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
} tiers_api_call_t;

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
    //  A shard's answer to a call of the table. Returns true when the call
    //  was answered (the core removes it), false when it waits on.
    bool (*answer) (tiers_api_core_t *core, tiers_api_call_t *call,
                    tiers_wire_t *answer);
    //  Frees what the side's call holds beyond the core's; or NULL.
    void (*call_free) (tiers_api_call_t *call);
};

//  The actor body of a side: runs one instance until $TERM.
void tiers_api_run (zsock_t *pipe, void *args, const tiers_api_hooks_t *hooks);

//  The keys and links both kinds declare: capacity, pool, heartbeat,
//  liveness; the balancer (TIERS_LINK_BALANCER) and every shard ("shards").
extern const tiers_key_t tiers_api_keys [];
extern const tiers_link_t tiers_api_links [];

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

//  --------------------------------------------------------------------------
//  What the caller sent

//  The gateway's name rules (runtime/names.h): a document id when `id`,
//  else a collection. NULL (a missing header) is not a name.
bool tiers_api_name_ok (const char *name, bool id);

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
