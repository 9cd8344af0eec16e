/*  keys.h — the API keys of a gateway: who may ask, and for what.

    A gateway entry with `api_keys = FILE` takes requests only with
    `Authorization: Bearer KEY` for a key of that file. One key a line:

        # NAME     KEY                               RIGHTS        COLLECTIONS
        shop       7Qm2vR9xKfL3pW8sN4tY6uB1cE5hJ0aD  read,write    users,orders
        reports    sha256:<64 hex digits>            read          *
        scraper    Zk3hP9wQ2rT7yU4iO8aS1dF6gH0jK5lX  metrics

    NAME labels the key in logs and answers (it is no secret); KEY is the
    secret itself, or only its SHA-256 (`sha256:HEX`) so that the file
    need not hold the secret; RIGHTS are `read` (GET, HEAD), `write` (PUT,
    DELETE) and `metrics` (/metrics); COLLECTIONS, for read and write, a
    list of collection names or `*` for all. doc/security.md has the whole
    grammar.

    The one idea: a presented key is never compared with a stored one.
    It is hashed (SHA-256, nettle) and its digest is compared with every
    key's digest in constant time (nettle's memeql_sec), all of them,
    whichever matches: the time a lookup takes says nothing about any key,
    and the table holds no key, only digests. No byte of the file appears
    in a log line or an error message: errors name the file, the line and
    the field.
*/
#ifndef TIERS_KEYS_H
#define TIERS_KEYS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct _tiers_keys_t tiers_keys_t;

//  Rights, a bit each.
#define TIERS_RIGHT_READ        1u
#define TIERS_RIGHT_WRITE       2u
#define TIERS_RIGHT_METRICS     4u

#define TIERS_KEY_MIN           16      //  characters of a key, at least
#define TIERS_KEY_MAX           256     //  and at most

//  Reads and checks the key file. NULL + *why (malloc'ed, "FILE:LINE:
//  what") when it cannot be read or a line is malformed; nothing is kept
//  then.
tiers_keys_t *tiers_keys_load (const char *path, char **why);
//  The same from text in memory; `filename` is for the messages.
tiers_keys_t *tiers_keys_parse (const char *text, size_t size, const char *filename,
                                char **why);
//  Forgets the digests (zeroed first).
void tiers_keys_destroy (tiers_keys_t **self_p);

size_t tiers_keys_size (const tiers_keys_t *self);
//  Does any key hold `right`? (With a key holding `metrics`, /metrics
//  takes only such keys; without one it stays open.)
bool tiers_keys_any (const tiers_keys_t *self, unsigned right);
//  Some keys of the file are written out, not as sha256: digests.
bool tiers_keys_plain (const tiers_keys_t *self);

//  The key whose secret is the `length` bytes at `token`: its index, or
//  -1. Constant time in the token's bytes and in the keys (see above).
int tiers_keys_find (const tiers_keys_t *self, const char *token, size_t length);
//  A key's name (for logs and answers: never the secret).
const char *tiers_keys_name (const tiers_keys_t *self, int key);
//  May key `key` do `right` (one bit) on `collection` (NULL for metrics)?
bool tiers_keys_allows (const tiers_keys_t *self, int key, unsigned right,
                        const char *collection);

//  Is `text` (`length` bytes) a b64token, the syntax of a bearer token
//  (RFC 6750 2.1): letters, digits, - . _ ~ + /, then any '=' padding?
bool tiers_keys_token_ok (const char *text, size_t length);

#endif
