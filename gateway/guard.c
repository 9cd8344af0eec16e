/*  guard.c — API keys and rate limits for one gateway entry (see guard.h).

    What it keeps: the key file (keys.c), and up to two bucket tables
    (limit.c): one bucket per key, and one per client address, at most
    TIERS_GUARD_CLIENTS of those. The order of the checks is the contract:

        token   Authorization: Bearer TOKEN -> a key, or none (missing,
                malformed, unknown)
        bucket  the key's bucket when there is a key, else the address's:
                empty -> 429 (nothing taken)
        key     the route needs one and there is none -> 401
        rights  (tiers_guard_allows, after the route read its names) -> 403
*/
#include "guard.h"
#include "log.h"
#include <czmq.h>
#include <sys/stat.h>

struct _tiers_guard_t {
    tiers_keys_t *keys;
    bool metrics_keyed;             //  a key holds `metrics`
    tiers_limit_t *per_key;
    tiers_limit_t *per_client;
};

tiers_guard_t *
tiers_guard_new (const tiers_guard_config_t *config, char **why)
{
    assert (config);
    *why = NULL;
    bool keyed = config->api_keys != NULL;
    if (!keyed && !config->rate_per_client)
        return NULL;                //  nothing to guard: rate_per_key needs keys
    tiers_guard_t *self = (tiers_guard_t *) zmalloc (sizeof *self);
    assert (self);
    if (keyed) {
        self->keys = tiers_keys_load (config->api_keys, why);
        if (!self->keys) {
            free (self);
            return NULL;
        }
        struct stat info;
        if (tiers_keys_plain (self->keys) && stat (config->api_keys, &info) == 0
        &&  (info.st_mode & 077))
            tiers_warn ("api_keys %s holds keys as they are and can be read by other users "
                        "(mode %04o): chmod 600 it, or keep only the keys' sha256: digests",
                        config->api_keys, (unsigned) (info.st_mode & 07777));
        self->metrics_keyed = tiers_keys_any (self->keys, TIERS_RIGHT_METRICS);
        if (config->rate_per_key)
            self->per_key = tiers_limit_new (config->rate_per_key,
                config->burst_per_key ? config->burst_per_key : config->rate_per_key,
                tiers_keys_size (self->keys));
    }
    if (config->rate_per_client)
        self->per_client = tiers_limit_new (config->rate_per_client,
            config->burst_per_client ? config->burst_per_client : config->rate_per_client,
            TIERS_GUARD_CLIENTS);
    return self;
}

void
tiers_guard_destroy (tiers_guard_t **self_p)
{
    assert (self_p);
    tiers_guard_t *self = *self_p;
    if (self) {
        tiers_keys_destroy (&self->keys);
        tiers_limit_destroy (&self->per_key);
        tiers_limit_destroy (&self->per_client);
        free (self);
        *self_p = NULL;
    }
}

const tiers_keys_t *
tiers_guard_keys (const tiers_guard_t *self)
{
    assert (self);
    return self->keys;
}

tiers_limit_t *
tiers_guard_per_key (const tiers_guard_t *self)
{
    assert (self);
    return self->per_key;
}

tiers_limit_t *
tiers_guard_per_client (const tiers_guard_t *self)
{
    assert (self);
    return self->per_client;
}

bool
tiers_guard_metrics_keyed (const tiers_guard_t *self)
{
    assert (self);
    return self->metrics_keyed;
}

//  "Bearer TOKEN" (the scheme in any case, RFC 9110 11.1; one or more
//  spaces): the token and its length, or NULL.
static const char *
s_bearer (const char *value, size_t *length)
{
    if (strncasecmp (value, "Bearer ", 7) != 0)
        return NULL;
    const char *token = value + 7;
    while (*token == ' ')
        token++;
    size_t size = strlen (token);
    while (size && (token [size - 1] == ' ' || token [size - 1] == '\t'))
        size--;
    if (!tiers_keys_token_ok (token, size))
        return NULL;
    *length = size;
    return token;
}

tiers_verdict_t
tiers_guard_admit (tiers_guard_t *self, const char *authorization, int lines,
                   bool need_key, tiers_limit_id_t client, int64_t now_us,
                   int *key, int64_t *retry_us)
{
    assert (self && key && retry_us);
    *key = -1;
    *retry_us = 0;
    tiers_verdict_t missing = TIERS_GUARD_PASS;
    if (self->keys && need_key) {
        size_t length = 0;
        const char *token = lines == 1 && authorization
                          ? s_bearer (authorization, &length) : NULL;
        if (lines == 0 || !authorization)
            missing = TIERS_GUARD_NO_KEY;
        else
        if (!token)
            missing = TIERS_GUARD_MALFORMED;
        else {
            //  A token no key can be is not hashed (its length is no secret).
            if (length >= TIERS_KEY_MIN && length <= TIERS_KEY_MAX)
                *key = tiers_keys_find (self->keys, token, length);
            if (*key < 0)
                missing = TIERS_GUARD_UNKNOWN;
        }
    }
    if (*key >= 0) {
        tiers_limit_id_t id = { 0, (uint64_t) *key };
        if (self->per_key && (*retry_us = tiers_limit_take (self->per_key, id, now_us)))
            return TIERS_GUARD_RATE_KEY;
        return TIERS_GUARD_PASS;
    }
    if (self->per_client && (*retry_us = tiers_limit_take (self->per_client, client, now_us)))
        return TIERS_GUARD_RATE_CLIENT;
    return missing;
}

bool
tiers_guard_allows (const tiers_guard_t *self, int key, unsigned right,
                    const char *collection)
{
    assert (self);
    if (!self->keys)
        return true;
    if (right == TIERS_RIGHT_METRICS && !self->metrics_keyed)
        return true;
    return key >= 0 && tiers_keys_allows (self->keys, key, right, collection);
}

const char *
tiers_guard_reason (tiers_verdict_t verdict)
{
    static const char *reasons [TIERS_GUARD_VERDICTS] = {
        "pass", "key_missing", "key_malformed", "key_unknown", "key_rights",
        "rate_key", "rate_client"
    };
    assert (verdict < TIERS_GUARD_VERDICTS);
    return reasons [verdict];
}
