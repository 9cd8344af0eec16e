/*  write_api.c — the Write API tier: document writes and their preconditions.

    A worker of the balancer's "write" pool (the skeleton, the call table and
    the shard links are actors/api_core.c). It serves PUT and DELETE of one
    document, sent to the shard that owns its slot, and answers with the
    ETag of the version the shard reports (PUT: a JSON summary too, and
    Location when it created the document). Any other method is the read
    pool's: 405.

    The shard checks one precondition atomically with the write, so most
    If-Match values become a header of the one request:
        If-Match: *             "exists"
        If-Match: "42"          version 42
        If-Match: "abc", W/"7"  (no tag tiers made) a version no document
                                has: PUT 412, DELETE of a missing one 404
        If-None-Match: *        "create" (PUT only)
    An If-Match listing several versions cannot be one header: the call
    starts in LOOKUP (a get for the current version), checks the list here
    and, when it holds, goes on to SHARD with that version as the
    precondition, so a write in between still fails at the shard.
*/
#include "api_core.h"
#include "map.h"
#include "names.h"

#define VERSION_NONE 999999999999999999LL   //  no document has it (18 digits)

typedef struct {
    tiers_api_call_t base;                  //  first: the core's part
    bool put;                               //  PUT, else DELETE
    bool lookup;                            //  LOOKUP stage (If-Match list)
    tiers_api_tags_t if_match;
    bool must_exist;                        //  If-Match: *
    size_t shard;
} write_call_t;

//  --------------------------------------------------------------------------
//  Talking to the shard

//  The write itself (version and create being its precondition), or in
//  LOOKUP the get before it.
static int
s_shard_send (tiers_api_core_t *core, write_call_t *call, long long version, bool create)
{
    const char *op = call->lookup ? "get" : call->put ? "put" : "delete";
    tiers_wire_t *message = tiers_api_shard_request (core, &call->base, call->shard, op);
    const char *id = tiers_wire_header (call->base.request, "id");
    tiers_wire_set_header (message, "id", id, strlen (id));
    if (version > 0)
        tiers_wire_set_headerf (message, "version", "%lld", version);
    if (create)
        tiers_wire_set_header (message, "create", "1", 1);
    if (call->must_exist && !call->lookup)
        tiers_wire_set_header (message, "exists", "1", 1);
    if (call->put && !call->lookup)         //  sent once: moved, not copied
        tiers_wire_move_body (message, call->base.request);
    return tiers_api_shard_send (core, call->shard, &message);
}

//  --------------------------------------------------------------------------
//  A request from the balancer

static int
s_start (tiers_api_core_t *core, tiers_api_call_t *base)
{
    write_call_t *call = (write_call_t *) base;
    tiers_wire_t *request = base->request;
    const char *method = tiers_wire_header (request, "method");
    const char *collection = tiers_wire_header (request, "collection");
    const char *id = tiers_wire_header (request, "id");
    method = method ? method : "";
    if (!id || (!streq (method, "PUT") && !streq (method, "DELETE"))) {
        tiers_api_problem (core, base, 405, TIERS_API_WRONG_METHOD);
        return -1;
    }
    const char *if_match = tiers_wire_header (request, "if-match");
    const char *if_none = tiers_wire_header (request, "if-none-match");
    long long version = 0;
    bool create = false;
    call->put = streq (method, "PUT");
    const char *why = NULL;
    if (tiers_api_tags_parse (if_match, false, &call->if_match, &why)) {
        char detail [96];
        snprintf (detail, sizeof detail, "If-Match %s", why);
        tiers_api_problem (core, base, 400, detail);
        return -1;
    }
    //  The shard checks one precondition atomically with the write:
    //  "exists" for *, a version for one tag, a version that no
    //  document has for none (so PUT gets 412, DELETE of a missing
    //  document its 404); several tags take a lookup first.
    if (call->if_match.any)
        call->must_exist = true;
    else
    if (call->if_match.present && call->if_match.count == 0)
        version = VERSION_NONE;
    else
    if (call->if_match.count == 1)
        version = call->if_match.versions [0];
    else
    if (call->if_match.count > 1)
        call->lookup = true;
    if (if_none) {
        tiers_api_tags_t tags;
        if (tiers_api_tags_parse (if_none, true, &tags, &why)
        ||  !tags.any || !call->put) {
            tiers_api_problem (core, base, 400, "on writes If-None-Match can only be *, "
                                                "on PUT (create only)");
            return -1;
        }
        create = true;
    }
    if (create && (if_match)) {
        tiers_api_problem (core, base, 400, "If-Match and If-None-Match together "
                                            "can never both hold");
        return -1;
    }
    if (call->put && request->body_size == 0) {
        tiers_api_problem (core, base, 400, "the body must be a JSON document");
        return -1;
    }
    //  Whether the body is a JSON document the API can serve back is
    //  the shard's to say (storage/shard.c), once, for every writer.

    call->shard = tiers_api_shard_of (core, collection, id);
    if (call->lookup ? s_shard_send (core, call, 0, false)
                     : s_shard_send (core, call, version, create)) {
        tiers_api_shard_error (core);
        tiers_api_problem (core, base, 503, "the shard is not reachable");
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  A shard's answer

//  LOOKUP: the current version is known; the write goes on when it is one
//  the list names. Returns true when the call is done.
static bool
s_looked_up (tiers_api_core_t *core, write_call_t *call, tiers_wire_t *answer)
{
    const char *error = tiers_wire_header (answer, "error");
    const char *version = tiers_wire_header (answer, "version");
    int status = answer->status;
    assert (call->if_match.count > 1);      //  the one reason for LOOKUP
    if (status == 404 && !call->put) {
        tiers_api_problem (core, &call->base, 404, "no such document");
        return true;
    }
    if (status == 404) {
        tiers_api_problem (core, &call->base, 412, "the document does not exist (If-Match)");
        return true;
    }
    if (status != 200 || !version) {
        tiers_api_problem (core, &call->base, status >= 500 ? status : 502,
                           error ? error : "shard error");
        return true;
    }
    call->lookup = false;                   //  LOOKUP -> SHARD
    long long current = 0;
    tiers_parse_int (version, &current);
    if (!tiers_api_tags_match (&call->if_match, current)) {
        tiers_api_problem (core, &call->base, 412,
                           "the document's version does not match If-Match");
        return true;
    }
    if (s_shard_send (core, call, current, false)) {
        tiers_api_problem (core, &call->base, 503, "the shard is not reachable");
        return true;
    }
    return false;
}

//  Returns true when the call is done.
static bool
s_answer (tiers_api_core_t *core, tiers_api_call_t *base, tiers_wire_t *answer)
{
    write_call_t *call = (write_call_t *) base;
    if (call->lookup)
        return s_looked_up (core, call, answer);
    int status = answer->status;
    if (status >= 400) {
        const char *failed =
            call->put && tiers_wire_header (base->request, "if-none-match")
                ? "the document exists (If-None-Match: *)"
            : call->must_exist ? "the document does not exist (If-Match: *)"
            : "the document's version does not match If-Match";
        tiers_api_shard_problem (core, base, answer, failed);
        return true;
    }
    const char *version = tiers_wire_header (answer, "version");
    tiers_wire_t *reply = tiers_wire_reply_to (base->request, status);
    tiers_api_etag (reply, version);
    if (call->put) {
        const char *collection = tiers_wire_header (base->request, "collection");
        const char *id = tiers_wire_header (base->request, "id");
        //  collection and id were checked by tiers_api_name_ok (names.h):
        //  nothing to escape, so the JSON is written as text
        char text [TIERS_COLLECTION_MAX + TIERS_DOC_ID_MAX + 80];
        int size = snprintf (text, sizeof text,
                             "{\"collection\":\"%s\",\"id\":\"%s\",\"version\":%lld}",
                             collection, id, atoll (version ? version : "0"));
        assert (size > 0 && (size_t) size < sizeof text);
        tiers_wire_set_body (reply, text, (size_t) size);
        if (status == 201)
            tiers_wire_set_headerf (reply, "location", "/v1/%s/%s", collection, id);
    }
    tiers_api_reply (core, base, reply);
    tiers_wire_destroy (&reply);
    return true;
}

//  --------------------------------------------------------------------------
//  The kind

static const tiers_api_hooks_t s_hooks = {
    .api = "write",
    .call_size = sizeof (write_call_t),
    .start = s_start,
    .answer = s_answer,
    .call_free = NULL
};

static void
s_write_api_actor (zsock_t *pipe, void *args)
{
    tiers_api_run (pipe, args, &s_hooks);
}

const tiers_kind_t tiers_write_api_kind = {
    .name = "write-api",
    .pool = "write",
    .summary = "serves document writes: preconditions, routes by slot to the shards",
    .rank = TIERS_RANK_SERVICE, .run = s_write_api_actor, .keys = tiers_api_keys,
    .links = tiers_api_links, .multi = true, .listener = NULL
};
