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
*/
#include "api_core.h"
#include "map.h"
#include <jansson.h>

#define LIST_DEFAULT    100
#define LIST_MAX        1000

typedef struct {
    tiers_api_call_t base;                  //  first: the core's part
    bool list;                              //  a list, else one document
    tiers_api_tags_t if_match;
    tiers_api_tags_t if_none;
    size_t shard;                           //  one document: its shard
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
    tiers_wire_t *message = tiers_api_shard_request (core, &call->base, call->shard, "get");
    tiers_wire_set_header (message, "id", id, strlen (id));
    if (tiers_api_shard_send (core, call->shard, &message)) {
        tiers_api_shard_error (core);
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
    for (size_t i = 0; i < shards; i++) {
        tiers_wire_t *message = tiers_api_shard_request (core, &call->base, i, "list");
        if (after && *after)
            tiers_wire_set_header (message, "after", after, strlen (after));
        //  One more than asked tells whether this shard has more (at the
        //  largest page the shard's own cursor has to tell it).
        tiers_wire_set_headerf (message, "limit", "%d",
                                call->limit < LIST_MAX ? call->limit + 1 : LIST_MAX);
        if (tiers_api_shard_send (core, i, &message) == 0)
            call->waiting++;
    }
    if (call->waiting < (int) shards) {
        tiers_api_shard_error (core);
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
s_list_part (read_call_t *call, tiers_wire_t *answer)
{
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

//  Returns true when the call is done.
static bool
s_answer (tiers_api_core_t *core, tiers_api_call_t *base, tiers_wire_t *answer)
{
    read_call_t *call = (read_call_t *) base;
    if (call->list) {
        //  SHARD: a call leaves the table with its last answer.
        assert (call->waiting > 0);
        s_list_part (call, answer);
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

//  --------------------------------------------------------------------------
//  The kind

static const tiers_api_hooks_t s_hooks = {
    .api = "read",
    .call_size = sizeof (read_call_t),
    .start = s_start,
    .answer = s_answer,
    .call_free = s_call_free
};

static void
s_read_api_actor (zsock_t *pipe, void *args)
{
    tiers_api_run (pipe, args, &s_hooks);
}

const tiers_kind_t tiers_read_api_kind = {
    .name = "read-api",
    .pool = "read",
    .summary = "serves document reads: routes by slot to the shards, merges lists",
    .rank = TIERS_RANK_SERVICE, .run = s_read_api_actor, .keys = tiers_api_keys,
    .links = tiers_api_links, .multi = true, .listener = NULL
};
