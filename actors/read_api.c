/*  read_api.c — the Read API tier: document reads over the shards.

    A worker of the balancer's "read" pool (the skeleton, the call table and
    the shard links are actors/api_core.c). It serves two requests:

        GET/HEAD /v1/C/ID   one document, from the shard that owns its slot;
                            If-Match (412 when it fails) and If-None-Match
                            (304 when it holds) are checked against the
                            tag the shard answers with
        GET/HEAD /v1/C      a list: one page asked of every shard at once,
                            merged in id order and cut to `limit`; `next`
                            is the last id given when any shard has more

    Any other method is the write pool's: 405. A list call is in SHARD until
    every shard has answered (`waiting` counts down); one failed shard fails
    the whole list, with the worst status.

    Which copy of a shard a read goes to (for a get, and for each shard's
    page of a list, each on its own; doc/http.md, "Read your writes"):

        Tiers-Consistency: strong       the primary
        a Tiers-Token entry for it      a replica in the rotation, with
                                        min-sequence and incarnation: it
                                        answers once it has that write
        otherwise (eventual)            a replica in the rotation, with
                                        eventual: 1
        no replica in the rotation      the primary

    A read sent to a replica is a PART waiting on it, until its bound
    (tiers_api_replica_bound: replica_timeout, plus the replica's read_wait
    when it waits for a token). A 409 (behind, another incarnation, out of
    the rotation), any answer other than 200 (or a get's 404), or no
    answer by the bound sends the same read to the primary, once; the
    primary's answer is final. An answer from a copy the part no longer
    waits for is dropped. A part's states:

        REPLICA --(usable answer)--> DONE
        REPLICA --(409, error, bound, send failed)--> PRIMARY
        PRIMARY --(any answer)--> DONE
*/
#include "api_core.h"
#include "map.h"
#include <jansson.h>

#define LIST_DEFAULT    100
#define LIST_MAX        1000

//  One shard's share of a read.
typedef struct {
    int replica;                            //  the copy asked: a replica, or
                                            //  -1 for the primary
    int64_t bound;                          //  REPLICA: wall ms to give up
    bool done;
    const tiers_token_entry_t *token;       //  the session's entry, or NULL
} part_t;

typedef struct {
    tiers_api_call_t base;                  //  first: the core's part
    bool list;                              //  a list, else one document
    bool strong;                            //  Tiers-Consistency: strong
    tiers_token_t *token;                   //  the session's; its entries
                                            //  point into the request
    tiers_api_tags_t if_match;
    tiers_api_tags_t if_none;
    size_t shard;                           //  one document: its shard
    part_t one;                             //  one document: its part
    part_t *parts;                          //  list: one per shard
    int waiting;                            //  list: answers still due
    int limit;
    json_t *items;                          //  list: gathered items
    bool more;                              //  list: some shard had more
    int failed;                             //  list: worst shard status
} read_call_t;

static void
s_call_free (tiers_api_call_t *base)
{
    read_call_t *call = (read_call_t *) base;
    json_decref (call->items);
    free (call->parts);
    free (call->token);
}

//  --------------------------------------------------------------------------
//  Choosing a copy

static part_t *
s_part (read_call_t *call, size_t shard)
{
    return call->list ? &call->parts [shard] : shard == call->shard ? &call->one : NULL;
}

//  The request for one shard's share of the read, to whichever copy.
static tiers_wire_t *
s_request (tiers_api_core_t *core, read_call_t *call, size_t shard)
{
    tiers_wire_t *request = call->base.request;
    tiers_wire_t *message = tiers_api_shard_request (core, &call->base, shard,
                                                     call->list ? "list" : "get");
    if (call->list) {
        const char *after = tiers_wire_header (request, "after");
        if (after && *after)
            tiers_wire_set_header (message, "after", after, strlen (after));
        //  One more than asked tells whether this shard has more (at the
        //  largest page the shard's own cursor has to tell it).
        tiers_wire_set_headerf (message, "limit", "%d",
                                call->limit < LIST_MAX ? call->limit + 1 : LIST_MAX);
    }
    else {
        const char *id = tiers_wire_header (request, "id");
        tiers_wire_set_header (message, "id", id, strlen (id));
    }
    return message;
}

//  The earliest bound of the parts waiting on a replica: the call's wake.
static void
s_set_wake (read_call_t *call, tiers_api_core_t *core)
{
    call->base.wake_at = 0;
    size_t count = call->list ? tiers_api_shard_count (core) : 1;
    for (size_t i = 0; i < count; i++) {
        part_t *part = call->list ? &call->parts [i] : &call->one;
        if (!part->done && part->replica >= 0
        &&  (!call->base.wake_at || part->bound < call->base.wake_at))
            call->base.wake_at = part->bound;
    }
}

//  Sends one shard's share to the primary. Returns 0, or -1 when it
//  could not be sent (counted as a shard error).
static int
s_ask_primary (tiers_api_core_t *core, read_call_t *call, size_t shard, part_t *part)
{
    part->replica = -1;
    tiers_wire_t *message = s_request (core, call, shard);
    tiers_api_copy_t primary = { shard, -1 };
    if (tiers_api_copy_send (core, &primary, &message)) {
        tiers_api_shard_error (core);
        return -1;
    }
    return 0;
}

//  Sends one shard's share to the copy the rules above choose. Returns 0,
//  or -1 when not even the primary could be asked.
static int
s_ask (tiers_api_core_t *core, read_call_t *call, size_t shard, part_t *part)
{
    int replica = call->strong ? -1 : tiers_api_replica_pick (core, shard);
    if (replica < 0)
        return s_ask_primary (core, call, shard, part);
    tiers_wire_t *message = s_request (core, call, shard);
    if (part->token) {
        tiers_wire_set_headerf (message, "min-sequence", "%" PRId64, part->token->sequence);
        tiers_wire_set_header (message, "incarnation", part->token->incarnation,
                               part->token->incarnation_size);
    }
    else
        tiers_wire_set_header (message, "eventual", "1", 1);
    part->bound = tiers_api_replica_bound (core, &call->base, replica, part->token != NULL);
    //  The replica stops waiting for the token's sequence when we do.
    message->deadline = part->bound;
    tiers_api_copy_t copy = { shard, replica };
    if (tiers_api_copy_send (core, &copy, &message)) {
        tiers_api_read_fallback (core, TIERS_API_FALLBACK_UNREACHABLE);
        return s_ask_primary (core, call, shard, part);
    }
    part->replica = replica;
    s_set_wake (call, core);
    return 0;
}

//  --------------------------------------------------------------------------
//  A request from the balancer

static int
s_start_get (tiers_api_core_t *core, read_call_t *call)
{
    tiers_wire_t *request = call->base.request;
    const char *why = NULL;
    char detail [96];
    if (tiers_api_tags_parse (tiers_wire_header (request, "if-match"), false,
                              &call->if_match, &why)
    ||  tiers_api_tags_parse (tiers_wire_header (request, "if-none-match"), true,
                              &call->if_none, &why)) {
        snprintf (detail, sizeof detail, "%s %s",
                  why && call->if_none.present ? "If-None-Match" : "If-Match", why);
        tiers_api_problem (core, &call->base, 400, detail);
        return -1;
    }
    const char *collection = tiers_wire_header (request, "collection");
    const char *id = tiers_wire_header (request, "id");
    call->shard = tiers_api_shard_of (core, collection, id);
    call->one.token = tiers_token_find (call->token, tiers_api_shard_name (core, call->shard));
    if (s_ask (core, call, call->shard, &call->one)) {
        tiers_api_problem (core, &call->base, 503, "the shard is not reachable");
        return -1;
    }
    return 0;
}

static int
s_start_list (tiers_api_core_t *core, read_call_t *call)
{
    tiers_wire_t *request = call->base.request;
    call->list = true;
    call->limit = LIST_DEFAULT;
    const char *limit = tiers_wire_header (request, "limit");
    long long n;
    if (limit && (tiers_parse_int (limit, &n) || n < 1 || n > LIST_MAX)) {
        tiers_api_problem (core, &call->base, 400, "limit must be an integer from 1 to 1000");
        return -1;
    }
    if (limit)
        call->limit = (int) n;
    const char *after = tiers_wire_header (request, "after");
    if (after && *after && !tiers_api_name_ok (after, true)) {
        tiers_api_problem (core, &call->base, 400, "after must be a document id");
        return -1;
    }
    call->items = json_array ();
    size_t shards = tiers_api_shard_count (core);
    call->parts = (part_t *) calloc (shards, sizeof (part_t));
    assert (call->parts);
    for (size_t i = 0; i < shards; i++) {
        call->parts [i].token = tiers_token_find (call->token, tiers_api_shard_name (core, i));
        if (s_ask (core, call, i, &call->parts [i]) == 0)
            call->waiting++;
    }
    if (call->waiting < (int) shards) {
        tiers_api_problem (core, &call->base, 503, "a shard is not reachable");
        return -1;
    }
    return 0;
}

static int
s_start (tiers_api_core_t *core, tiers_api_call_t *base)
{
    read_call_t *call = (read_call_t *) base;
    const char *method = tiers_wire_header (base->request, "method");
    method = method ? method : "";
    if (!streq (method, "GET") && !streq (method, "HEAD")) {
        tiers_api_problem (core, base, 405, TIERS_API_WRONG_METHOD);
        return -1;
    }
    call->token = (tiers_token_t *) malloc (sizeof (tiers_token_t));
    assert (call->token);
    if (tiers_api_session (core, base, call->token, &call->strong))
        return -1;
    if (tiers_wire_header (base->request, "id"))
        return s_start_get (core, call);
    else
        return s_start_list (core, call);
}

//  --------------------------------------------------------------------------
//  A shard's answer

static int
s_by_id (const void *a, const void *b)
{
    const char *left = json_string_value (json_object_get (*(json_t * const *) a, "id"));
    const char *right = json_string_value (json_object_get (*(json_t * const *) b, "id"));
    return strcmp (left ? left : "", right ? right : "");
}

static void
s_finish_list (tiers_api_core_t *core, read_call_t *call)
{
    if (call->failed) {
        tiers_api_problem (core, &call->base, call->failed, "a shard could not list");
        return;
    }
    //  Merge in id order; ids are compared as bytes, as SQLite orders them.
    size_t count = json_array_size (call->items);
    json_t **sorted = (json_t **) malloc ((count ? count : 1) * sizeof (json_t *));
    for (size_t i = 0; i < count; i++)
        sorted [i] = json_array_get (call->items, i);
    qsort (sorted, count, sizeof (json_t *), s_by_id);
    size_t take = count < (size_t) call->limit ? count : (size_t) call->limit;
    json_t *items = json_array ();
    for (size_t i = 0; i < take; i++)
        json_array_append (items, sorted [i]);
    bool more = count > take || call->more;
    json_t *next = more && take ? json_object_get (sorted [take - 1], "id") : NULL;
    json_t *body = json_pack ("{s:o, s:O}", "items", items, "next",
                              next ? next : json_null ());
    free (sorted);
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    tiers_wire_t *reply = tiers_wire_reply_to (call->base.request, 200);
    tiers_wire_set_body (reply, text, strlen (text));
    free (text);
    tiers_api_reply (core, &call->base, reply);
    tiers_wire_destroy (&reply);
}

static void
s_list_part (read_call_t *call, part_t *part, tiers_wire_t *answer)
{
    part->done = true;
    call->waiting--;
    if (answer->status != 200) {
        call->failed = answer->status >= 500 ? answer->status : 502;
        return;
    }
    json_error_t error;
    json_t *page = json_loadb ((const char *) answer->body, answer->body_size,
                               JSON_ALLOW_NUL, &error);
    json_t *items = page ? json_object_get (page, "items") : NULL;
    if (!json_is_array (items)) {
        call->failed = 502;
        json_decref (page);
        return;
    }
    size_t index;
    json_t *item;
    json_array_foreach (items, index, item) {
        if (!json_is_string (json_object_get (item, "id"))) {
            call->failed = 502;
            break;
        }
        json_array_append (call->items, item);
    }
    //  The shard was asked for limit + 1: a full page means it has more.
    if (json_array_size (items) > (size_t) call->limit) {
        call->more = true;
        json_array_remove (call->items, json_array_size (call->items) - 1);
    }
    else
    if (call->limit == LIST_MAX && json_is_string (json_object_get (page, "next")))
        call->more = true;
    json_decref (page);
}

//  A part given up on its replica goes to the primary (PRIMARY). Returns
//  true when that was the last hope of the call and it was answered (a
//  get whose primary is not reachable, a list whose last part was this).
static bool
s_fall_back (tiers_api_core_t *core, read_call_t *call, size_t shard, part_t *part,
             tiers_api_fallback_t reason)
{
    tiers_api_read_fallback (core, reason);
    bool sent = s_ask_primary (core, call, shard, part) == 0;
    s_set_wake (call, core);
    if (sent)
        return false;
    if (!call->list) {
        tiers_api_problem (core, &call->base, 503, "the shard is not reachable");
        return true;
    }
    part->done = true;
    call->failed = 503;
    if (--call->waiting > 0)
        return false;
    s_finish_list (core, call);
    return true;
}

//  Returns true when the call is done.
static bool
s_answer (tiers_api_core_t *core, tiers_api_call_t *base, const tiers_api_copy_t *from,
          tiers_wire_t *answer)
{
    read_call_t *call = (read_call_t *) base;
    part_t *part = s_part (call, from->shard);
    if (!part || part->done || part->replica != from->replica)
        return false;                   //  from a copy it no longer waits for
    if (from->replica >= 0) {
        //  Used as a shard's would be: a page, a document, or its absence.
        bool usable = answer->status == 200 || (!call->list && answer->status == 404);
        if (!usable)
            return s_fall_back (core, call, from->shard, part, answer->status == 409
                                ? TIERS_API_FALLBACK_REFUSED : TIERS_API_FALLBACK_ERROR);
        part->replica = -1;             //  no longer waiting on it
        s_set_wake (call, core);
    }
    tiers_api_read_served (core, from);
    if (call->list) {
        //  SHARD: a call leaves the table with its last answer.
        assert (call->waiting > 0);
        s_list_part (call, part, answer);
        if (call->waiting > 0)
            return false;
        s_finish_list (core, call);
        return true;
    }
    if (answer->status >= 400) {
        tiers_api_shard_problem (core, base, answer,
                                 "the document's version does not match If-Match");
        return true;
    }
    const char *tag = tiers_wire_header (answer, "tag");
    tiers_wire_t *reply = tiers_wire_reply_to (base->request, answer->status);
    tiers_api_etag (reply, tag);
    if (call->if_match.present && !tiers_api_tags_match (&call->if_match, tag)) {
        tiers_wire_destroy (&reply);
        tiers_api_problem (core, base, 412, "the document's version does not match If-Match");
        return true;
    }
    //  HEAD gets the body too: MHD sends its length and drops it.
    if (call->if_none.present && tiers_api_tags_match (&call->if_none, tag))
        reply->status = 304;
    else
        tiers_wire_move_body (reply, answer);
    tiers_api_reply (core, base, reply);
    tiers_wire_destroy (&reply);
    return true;
}

//  The call's wake_at came: every part still waiting on a replica past its
//  bound goes to the primary. Returns true when the call was answered.
static bool
s_wake (tiers_api_core_t *core, tiers_api_call_t *base)
{
    read_call_t *call = (read_call_t *) base;
    int64_t now = tiers_wire_now ();
    size_t count = call->list ? tiers_api_shard_count (core) : 1;
    for (size_t i = 0; i < count; i++) {
        size_t shard = call->list ? i : call->shard;
        part_t *part = s_part (call, shard);
        if (!part->done && part->replica >= 0 && part->bound <= now
        &&  s_fall_back (core, call, shard, part, TIERS_API_FALLBACK_TIMEOUT))
            return true;
    }
    s_set_wake (call, core);
    return false;
}

//  --------------------------------------------------------------------------
//  The kind

static const tiers_api_hooks_t s_hooks = {
    .api = "read",
    .call_size = sizeof (read_call_t),
    .start = s_start,
    .answer = s_answer,
    .wake = s_wake,
    .call_free = s_call_free,
    .replicas = true
};

//  The core's keys, and how long a read waits for a replica before it
//  asks the primary (tiers_api_replica_bound).
static const tiers_key_t s_keys [] = {
    TIERS_API_KEYS,
    { "replica_timeout", TIERS_KEY_MS, false, 1, 60000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};

static void
s_read_api_actor (zsock_t *pipe, void *args)
{
    tiers_api_run (pipe, args, &s_hooks);
}

const tiers_kind_t tiers_read_api_kind = {
    .name = "read-api",
    .pool = "read",
    .summary = "serves document reads: routes by slot to a shard's primary or its "
               "replicas, merges lists",
    .rank = TIERS_RANK_SERVICE, .run = s_read_api_actor, .keys = s_keys,
    .links = tiers_api_links, .multi = true, .listener = NULL
};
