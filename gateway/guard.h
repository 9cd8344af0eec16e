/*  guard.h — the public edge's guard: who may ask (API keys) and how
    often (rate limits), for one gateway entry.

    The HTTP face asks the guard about a request in two steps. First WHO
    (tiers_guard_admit): the request's bearer token is looked up among the
    keys; a request with a valid key is charged to that key's bucket, any
    other to its client address's bucket; then, when the route needs a key
    and there is none, 401. Then WHAT (tiers_guard_allows): whether the
    key may do this (read or write this collection, or read /metrics),
    403 otherwise. Both are decided before anything is forwarded, so a
    refused request changes nothing, and a refusal of the bucket (429)
    takes no token.

    A request carrying a valid key is limited per key, not per address:
    the key says who it is, and many clients behind one address (a NAT,
    an application server) are told apart by their keys. Everything else
    (no key, a wrong one, a route that needs none) is limited per
    address, which is also what bounds guessing keys.

    One guard serves all the instances of its entry: the keys are read
    only, the buckets are shared under their tables' locks.
*/
#ifndef TIERS_GUARD_H
#define TIERS_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include "keys.h"
#include "limit.h"

typedef struct _tiers_guard_t tiers_guard_t;

typedef struct {
    const char *api_keys;           //  the key file, or NULL (no keys)
    unsigned rate_per_key;          //  requests a second; 0 = no limit
    unsigned burst_per_key;         //  0 = as many as rate_per_key
    unsigned rate_per_client;
    unsigned burst_per_client;
} tiers_guard_config_t;

typedef enum {
    TIERS_GUARD_PASS,
    TIERS_GUARD_NO_KEY,             //  401: no Authorization
    TIERS_GUARD_MALFORMED,          //  401: not "Bearer TOKEN", or on two lines
    TIERS_GUARD_UNKNOWN,            //  401: no such key
    TIERS_GUARD_FORBIDDEN,          //  403: the key may not do this
    TIERS_GUARD_RATE_KEY,           //  429: the key's bucket is empty
    TIERS_GUARD_RATE_CLIENT,        //  429: the address's bucket is empty
    TIERS_GUARD_VERDICTS
} tiers_verdict_t;

//  Client addresses tracked at most, per guard (see limit.h).
#define TIERS_GUARD_CLIENTS     16384

//  NULL + *why when the key file cannot be used; NULL without a reason
//  when there is nothing to guard (no keys and no limits).
tiers_guard_t *tiers_guard_new (const tiers_guard_config_t *config, char **why);
void tiers_guard_destroy (tiers_guard_t **self_p);

//  The keys, or NULL when the entry has none.
const tiers_keys_t *tiers_guard_keys (const tiers_guard_t *self);
//  The buckets (NULL: that limit is off).
tiers_limit_t *tiers_guard_per_key (const tiers_guard_t *self);
tiers_limit_t *tiers_guard_per_client (const tiers_guard_t *self);

//  Who asks. `authorization` is the header's value (NULL: none), `lines`
//  how many Authorization lines came; `need_key` whether the route takes
//  requests without a key. *key gets the key's index (-1: none) and, for a
//  429, *retry_us the microseconds until a token is back.
tiers_verdict_t tiers_guard_admit (tiers_guard_t *self, const char *authorization,
                                   int lines, bool need_key, tiers_limit_id_t client,
                                   int64_t now_us, int *key, int64_t *retry_us);
//  May `key` do `right` on `collection`? True when the entry has no keys.
bool tiers_guard_allows (const tiers_guard_t *self, int key, unsigned right,
                         const char *collection);
//  Does /metrics need a key (a key holds the right metrics)?
bool tiers_guard_metrics_keyed (const tiers_guard_t *self);

//  The metrics label of a verdict (reason="...").
const char *tiers_guard_reason (tiers_verdict_t verdict);

#endif
