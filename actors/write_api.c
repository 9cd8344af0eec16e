/*  write_api.c — the Write API tier: document writes and their preconditions.

    A worker of the balancer's "write" pool (the skeleton, the call table and
    the shard links are actors/api_core.c). It serves PUT and DELETE of one
    document, sent to the shard that owns its slot, and answers with the
    ETag of the tag the shard reports (PUT: a JSON summary too, and
    Location when it created the document). Any other method is the read
    pool's: 405.

    The shard checks the precondition atomically with the write, so each
    request is one message to one shard:
        If-Match: *             "exists"
        If-Match: "a", "b"      "match" = the tags, separated by spaces (a
                                list of none — only W/ tags, or tags tiers
                                never made — matches nothing: PUT 412,
                                DELETE of a missing one 404)
        If-None-Match: *        "create" (PUT only)
        Idempotency-Key: "k"    "idempotency-key" = k: the shard answers a
                                repeat with the first outcome (doc/http.md)

    A successful write is answered with its session token too (header
    `token`, Tiers-Token over HTTP: actors/token.h), the write's place in
    its shard's commit stream, which a client sends back on its reads to
    read its own writes from a replica. Tiers-Token and Tiers-Consistency
    sent on a write are checked as on a read (400 when malformed) and
    change nothing: a write always goes to the primary.
*/
#include "api_core.h"
#include "map.h"
#include "names.h"

typedef struct {
    tiers_api_call_t base;                  //  first: the core's part
    bool put;                               //  PUT, else DELETE
    bool must_exist;                        //  If-Match: *
    size_t shard;
} write_call_t;

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
    call->put = streq (method, "PUT");
    const char *if_match = tiers_wire_header (request, "if-match");
    const char *if_none = tiers_wire_header (request, "if-none-match");
    const char *key_value = tiers_wire_header (request, "idempotency-key");
    tiers_token_t token;
    bool strong;
    if (tiers_api_session (core, base, &token, &strong))
        return -1;
    tiers_api_tags_t tags;
    const char *why = NULL;
    if (tiers_api_tags_parse (if_match, false, &tags, &why)) {
        char detail [96];
        snprintf (detail, sizeof detail, "If-Match %s", why);
        tiers_api_problem (core, base, 400, detail);
        return -1;
    }
    bool create = false;
    if (if_none) {
        tiers_api_tags_t any;
        if (tiers_api_tags_parse (if_none, true, &any, &why)
        ||  !any.any || !call->put) {
            tiers_api_problem (core, base, 400, "on writes If-None-Match can only be *, "
                                                "on PUT (create only)");
            return -1;
        }
        create = true;
    }
    if (create && if_match) {
        tiers_api_problem (core, base, 400, "If-Match and If-None-Match together "
                                            "can never both hold");
        return -1;
    }
    char key [TIERS_API_KEY_MAX + 1];
    if (key_value && tiers_api_idempotency_key (key_value, key, sizeof key, &why)) {
        tiers_api_problem (core, base, 400, why);
        return -1;
    }
    if (call->put && request->body_size == 0) {
        tiers_api_problem (core, base, 400, "the body must be a JSON document");
        return -1;
    }
    //  Whether the body is a JSON document the API can serve back is
    //  the shard's to say (storage/shard.c), once, for every writer.
    call->shard = tiers_api_shard_of (core, collection, id);
    tiers_wire_t *message = tiers_api_shard_request (core, base, call->shard,
                                                     call->put ? "put" : "delete");
    tiers_wire_set_header (message, "id", id, strlen (id));
    call->must_exist = tags.any;
    if (tags.any)
        tiers_wire_set_header (message, "exists", "1", 1);
    else
    if (tags.present) {
        char match [TIERS_API_TAGS_MAX * (TIERS_API_TAG_MAX + 1) + 1];
        size_t size = tiers_api_tags_join (&tags, match, sizeof match);
        tiers_wire_set_header (message, "match", match, size);
    }
    if (create)
        tiers_wire_set_header (message, "create", "1", 1);
    if (key_value)
        tiers_wire_set_header (message, "idempotency-key", key, strlen (key));
    if (call->put)                          //  sent once: moved, not copied
        tiers_wire_move_body (message, request);
    if (tiers_api_shard_send (core, call->shard, &message)) {
        tiers_api_shard_error (core);
        tiers_api_problem (core, base, 503, "the shard is not reachable");
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  A shard's answer

//  Returns true when the call is done.
static bool
s_answer (tiers_api_core_t *core, tiers_api_call_t *base, const tiers_api_copy_t *from,
          tiers_wire_t *answer)
{
    write_call_t *call = (write_call_t *) base;
    int status = answer->status;
    if (status >= 400) {
        const char *failed =
            call->put && tiers_wire_header (base->request, "if-none-match")
                ? "the document exists (If-None-Match: *)"
            : call->must_exist ? "the document does not exist (If-Match: *)"
            : "the document's tag does not match If-Match";
        tiers_api_shard_problem (core, base, answer, failed);
        return true;
    }
    const char *version = tiers_wire_header (answer, "version");
    const char *tag = tiers_wire_header (answer, "tag");
    tiers_wire_t *reply = tiers_wire_reply_to (base->request, status);
    tiers_api_etag (reply, tag);
    tiers_api_replayed (reply, answer);
    char token [TIERS_TOKEN_ENTRY_MAX + 1];
    if (tiers_token_of_write (tiers_api_shard_name (core, call->shard),
                              tiers_wire_header (answer, "incarnation"),
                              tiers_wire_header (answer, "sequence"), tag,
                              token, sizeof token) == 0)
        tiers_wire_set_header (reply, "token", token, strlen (token));
    if (call->put) {
        const char *collection = tiers_wire_header (base->request, "collection");
        const char *id = tiers_wire_header (base->request, "id");
        //  collection and id were checked by tiers_api_name_ok (names.h),
        //  the tag is the shard's (hex and digits): nothing to escape, so
        //  the JSON is written as text
        char text [TIERS_COLLECTION_MAX + TIERS_DOC_ID_MAX + 160];
        int size = snprintf (text, sizeof text,
                             "{\"collection\":\"%s\",\"id\":\"%s\",\"version\":%lld,"
                             "\"etag\":\"\\\"%.64s\\\"\"}", collection, id,
                             atoll (version ? version : "0"), tag ? tag : "");
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
    .wake = NULL,
    .call_free = NULL,
    .replicas = false
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
