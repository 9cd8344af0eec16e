/*  problem.h — RFC 9457 problem details, the body of every error tiers writes.

    The gateway writes one for the errors it decides itself (and for a
    service reply that gave only a reason); the read-api and write-api
    write one for theirs and the gateway passes it through; the exporter
    for its 404 and 405. They build it here, so the shape and the titles
    are the same whoever answers (doc/http.md, "Errors"):

        {"type":"about:blank","title":"Not Found","status":404,
         "detail":"no such route","request_id":"3f9a0c12-0-17"}

    `type` is about:blank, so `title` is the status's reason phrase (RFC
    9110, section 15), except for the few outcomes a client must tell apart
    from the status alone (doc/http.md, "What a failed write means"): those
    have a type of their own below, and its title. The transport stays with the caller: an MHD
    response, or a wire reply with content-type application/problem+json.
*/
#ifndef TIERS_PROBLEM_H
#define TIERS_PROBLEM_H

//  The reason phrase of an HTTP status, "Error" for one without a name.
const char *tiers_problem_title (int status);

//  The problem+json text, NUL-terminated, malloc'ed: the caller frees it.
//  `detail` and `request_id` may be NULL (the member is left out). Text
//  that is not UTF-8 has each bad byte replaced by U+FFFD, so the result
//  is always valid JSON. NULL only when memory runs out.
char *tiers_problem_json (int status, const char *detail, const char *request_id);

//  The same with a problem type (NULL = about:blank) and its title (NULL =
//  the status's reason phrase).
char *tiers_problem_json_typed (int status, const char *type, const char *title,
                                const char *detail, const char *request_id);

//  The problem types of writes. A shard says `outcome: unknown` or
//  `outcome: not-applied` on a failed write; the APIs turn it into these.
#define TIERS_PROBLEM_OUTCOME_UNKNOWN   "urn:tiers:problem:outcome-unknown"
#define TIERS_PROBLEM_NOT_APPLIED       "urn:tiers:problem:not-applied"
#define TIERS_PROBLEM_KEY_REUSED        "urn:tiers:problem:idempotency-key-reused"

#endif
