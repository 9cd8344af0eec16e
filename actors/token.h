/*  token.h — session tokens: a position in a shard's commit stream, for
    read-your-writes over the copies of a shard.

    Every committed write of a shard takes the next number of the shard's
    sequence (doc/replication.md). A successful write is answered with its
    place in that stream, one entry:

        s0=4f2a9c1b7e3d.17          SHARD=INCARNATION.SEQUENCE

    and a client sends back what it holds, merged from several writes (at
    most one entry per shard), on the requests that follow:

        Tiers-Token: s0=4f2a9c1b7e3d.17, s1=0a1b2c3d4e5f.9

    A read of a shard named there is answered from a copy that has applied
    at least SEQUENCE of INCARNATION (the read-api's choice of a copy,
    actors/read_api.c; the guarantee, doc/http.md). This module only reads
    and writes the text, with nothing but the text to go on: which shards
    exist is the map's to say, so an entry for a shard the map does not
    have parses, and the caller ignores it.

    The grammar (a list in the sense of RFC 9110 5.6.1: empty elements and
    whitespace around the commas allowed):
        SHARD        a map name: 1..32 letters, digits, '_' or '-', starting
                     with a letter or digit (runtime/parse.h)
        INCARNATION  1..32 lower-case hex digits (the shard's file's, the
                     first part of its ETags; a shard makes 12)
        SEQUENCE     a decimal integer 0..2^63-1 without leading zeros
    at most TIERS_TOKEN_ENTRIES entries, never two for one shard.
*/
#ifndef TIERS_TOKEN_H
#define TIERS_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIERS_TOKEN_ENTRIES         64
#define TIERS_TOKEN_INCARNATION_MAX 32
//  The longest entry, "SHARD=INCARNATION.SEQUENCE", without its NUL.
#define TIERS_TOKEN_ENTRY_MAX       (32 + 1 + TIERS_TOKEN_INCARNATION_MAX + 1 + 19)

//  One entry; the names point into the parsed value, which must outlive
//  them.
typedef struct {
    const char *shard;
    size_t shard_size;
    const char *incarnation;
    size_t incarnation_size;
    int64_t sequence;
} tiers_token_entry_t;

typedef struct {
    bool present;                   //  a value was given (maybe empty)
    size_t count;
    tiers_token_entry_t entries [TIERS_TOKEN_ENTRIES];
} tiers_token_t;

//  Parses a Tiers-Token value (NULL = not sent: no entries). Returns 0, or
//  -1 with what is wrong in `why` ("Tiers-Token entry 2: ...", naming the
//  entry by its place, never echoing the client's bytes).
int tiers_token_parse (const char *value, tiers_token_t *token, char *why,
                       size_t why_size);

//  The entry for `shard`, or NULL.
const tiers_token_entry_t *tiers_token_find (const tiers_token_t *token,
                                             const char *shard);

//  The entry of a successful write of `shard`: from the shard's answer's
//  headers `incarnation` and `sequence` when it sent both, else from its
//  `tag` (INCARNATION.VERSION, the document's version being the write's
//  sequence). Writes "SHARD=INCARNATION.SEQUENCE" into `text` (size >
//  TIERS_TOKEN_ENTRY_MAX). Returns 0, or -1 when the answer holds no
//  position a token could carry (text is then empty).
int tiers_token_of_write (const char *shard, const char *incarnation,
                          const char *sequence, const char *tag,
                          char *text, size_t size);

#endif
