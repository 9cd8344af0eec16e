/*  header_fuzz.c — libFuzzer target for the HTTP header values the API
    tier decodes: If-Match / If-None-Match lists, Idempotency-Key
    (actors/api_core.c) and Tiers-Token (actors/token.c).

    Properties: nothing crashes or reads out of bounds (ASan/UBSan watch);
    a list that parses names at most 16 tags, each 1..64 bytes inside the
    value, none holding a quote or a control byte; joining them and
    quoting them again parses to the same tags; a key that parses is
    1..255 printable ASCII characters; a token that parses has at most 64
    entries inside the value, no two for one shard, and each written again
    as a write's entry (tiers_token_of_write) parses back to itself; a
    refused token says why. The first input byte picks weak or strong
    comparison; the rest is the value.

    CC=clang ./configure --enable-fuzzing && make t/fuzz/header_fuzz
    mkdir -p /tmp/header-corpus && ./t/fuzz/header_fuzz -max_total_time=20 /tmp/header-corpus
*/
#include "actors/api_core.h"
#include "actors/token.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0 || size > 8192)
        return 0;
    char *value = (char *) malloc (size);
    if (!value)
        return 0;
    memcpy (value, data + 1, size - 1);
    value [size - 1] = 0;               //  header values are C strings
    bool weak = data [0] & 1;

    tiers_api_tags_t tags;
    const char *why = NULL;
    if (tiers_api_tags_parse (value, weak, &tags, &why) == 0) {
        if (tags.count > TIERS_API_TAGS_MAX || (tags.any && tags.count))
            abort ();
        for (size_t i = 0; i < tags.count; i++) {
            if (tags.sizes [i] < 1 || tags.sizes [i] > TIERS_API_TAG_MAX
            ||  tags.tags [i] < value || tags.tags [i] + tags.sizes [i] > value + size - 1)
                abort ();
            for (size_t j = 0; j < tags.sizes [i]; j++) {
                unsigned char c = (unsigned char) tags.tags [i][j];
                if (c < 0x21 || c == '"' || c == 0x7f)
                    abort ();
            }
        }
        char joined [TIERS_API_TAGS_MAX * (TIERS_API_TAG_MAX + 1) + 1];
        size_t length = tiers_api_tags_join (&tags, joined, sizeof joined);
        if (length != strlen (joined))
            abort ();
        //  Quote the joined tags again: the same tags come back.
        char again [sizeof joined * 3 + 8] = "";
        size_t used = 0;
        for (char *tag = strtok (joined, " "); tag; tag = strtok (NULL, " "))
            used += (size_t) snprintf (again + used, sizeof again - used, "%s\"%s\"",
                                       used ? ", " : "", tag);
        tiers_api_tags_t back;
        if (tiers_api_tags_parse (again, false, &back, &why) || back.count != tags.count)
            abort ();
        for (size_t i = 0; i < tags.count; i++)
            if (back.sizes [i] != tags.sizes [i]
            ||  memcmp (back.tags [i], tags.tags [i], tags.sizes [i]))
                abort ();
    }
    else
    if (!why)
        abort ();                       //  a refusal says why

    char key [TIERS_API_KEY_MAX + 1];
    if (tiers_api_idempotency_key (value, key, sizeof key, &why) == 0) {
        size_t length = strlen (key);
        if (length < 1 || length > TIERS_API_KEY_MAX)
            abort ();
        for (size_t i = 0; i < length; i++)
            if (key [i] < 0x20 || key [i] > 0x7e)
                abort ();
    }
    tiers_token_t token;
    char reason [256];
    if (tiers_token_parse (value, &token, reason, sizeof reason) == 0) {
        if (token.count > TIERS_TOKEN_ENTRIES)
            abort ();
        for (size_t i = 0; i < token.count; i++) {
            const tiers_token_entry_t *entry = &token.entries [i];
            if (entry->shard < value || entry->shard + entry->shard_size > value + size - 1
            ||  entry->incarnation < value
            ||  entry->incarnation + entry->incarnation_size > value + size - 1
            ||  entry->sequence < 0)
                abort ();
            for (size_t j = 0; j < i; j++)
                if (token.entries [j].shard_size == entry->shard_size
                &&  !memcmp (token.entries [j].shard, entry->shard, entry->shard_size))
                    abort ();
            char shard [64], incarnation [64], sequence [32], text [TIERS_TOKEN_ENTRY_MAX + 1];
            snprintf (shard, sizeof shard, "%.*s", (int) entry->shard_size, entry->shard);
            snprintf (incarnation, sizeof incarnation, "%.*s", (int) entry->incarnation_size,
                      entry->incarnation);
            snprintf (sequence, sizeof sequence, "%lld", (long long) entry->sequence);
            tiers_token_t back;
            if (tiers_token_of_write (shard, incarnation, sequence, NULL, text, sizeof text)
            ||  tiers_token_parse (text, &back, reason, sizeof reason) || back.count != 1
            ||  back.entries [0].sequence != entry->sequence
            ||  back.entries [0].shard_size != entry->shard_size
            ||  back.entries [0].incarnation_size != entry->incarnation_size
            ||  memcmp (back.entries [0].incarnation, entry->incarnation,
                        entry->incarnation_size))
                abort ();
        }
    }
    else
    if (!*reason)
        abort ();                       //  a refusal says why
    free (value);
    return 0;
}
