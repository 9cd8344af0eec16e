/*  token.c — session tokens, read and written (see token.h).

    The parser is strict in what makes an entry and lenient only where HTTP
    lists are (empty elements, spaces and tabs around commas, lines joined
    with ", " by the gateway): a token is written by tiers and only carried
    by the client, so anything else is a client bug worth a 400 that says
    which entry is wrong and why.
*/
#include "token.h"
#include "parse.h"
#include <assert.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>

#define TOKEN_FORM "the form is SHARD=INCARNATION.SEQUENCE, like s0=4f2a9c1b7e3d.17"

static bool
s_incarnation_ok (const char *text, size_t size)
{
    if (size == 0 || size > TIERS_TOKEN_INCARNATION_MAX)
        return false;
    for (size_t i = 0; i < size; i++)
        if (!((text [i] >= '0' && text [i] <= '9') || (text [i] >= 'a' && text [i] <= 'f')))
            return false;
    return true;
}

//  0 .. INT64_MAX in decimal, no sign, no leading zero.
static bool
s_sequence_ok (const char *text, size_t size, int64_t *sequence)
{
    if (size == 0 || size > 19 || (size > 1 && text [0] == '0'))
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < size; i++) {
        if (text [i] < '0' || text [i] > '9')
            return false;
        n = n * 10 + (uint64_t) (text [i] - '0');      //  19 digits fit in 64 bits
    }
    if (n > (uint64_t) INT64_MAX)
        return false;
    *sequence = (int64_t) n;
    return true;
}

//  One entry, `size` bytes at `text`. Returns NULL, or what is wrong.
static const char *
s_entry (const char *text, size_t size, tiers_token_entry_t *entry)
{
    const char *equals = (const char *) memchr (text, '=', size);
    if (!equals)
        return "has no '='";
    entry->shard = text;
    entry->shard_size = (size_t) (equals - text);
    if (!tiers_name_ok (entry->shard, entry->shard_size))
        return "the shard must be a name of 1 to 32 letters, digits, '_' or '-', "
               "starting with a letter or digit";
    const char *position = equals + 1;
    size_t rest = size - entry->shard_size - 1;
    const char *dot = NULL;
    for (size_t i = 0; i < rest; i++)
        if (position [i] == '.')
            dot = position + i;
    if (!dot)
        return "has no '.' between the incarnation and the sequence";
    entry->incarnation = position;
    entry->incarnation_size = (size_t) (dot - position);
    if (!s_incarnation_ok (entry->incarnation, entry->incarnation_size))
        return "the incarnation must be 1 to 32 lower-case hex digits";
    if (!s_sequence_ok (dot + 1, rest - entry->incarnation_size - 1, &entry->sequence))
        return "the sequence must be a decimal integer from 0 to 9223372036854775807 "
               "without leading zeros";
    return NULL;
}

static int
s_refuse (char *why, size_t why_size, size_t element, const char *problem)
{
    if (element)
        snprintf (why, why_size, "Tiers-Token entry %zu: %s; " TOKEN_FORM, element, problem);
    else
        snprintf (why, why_size, "Tiers-Token: %s; " TOKEN_FORM, problem);
    return -1;
}

int
tiers_token_parse (const char *value, tiers_token_t *token, char *why, size_t why_size)
{
    assert (token);
    assert (why && why_size);
    token->present = value != NULL;
    token->count = 0;
    *why = 0;
    const char *p = value ? value : "";
    size_t element = 0;
    while (true) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        element++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        size_t size = (size_t) (p - start);
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != ',')
            return s_refuse (why, why_size, element, "holds a space");
        tiers_token_entry_t entry;
        const char *problem = s_entry (start, size, &entry);
        if (problem)
            return s_refuse (why, why_size, element, problem);
        if (token->count == TIERS_TOKEN_ENTRIES)
            return s_refuse (why, why_size, 0, "more than 64 entries");
        for (size_t i = 0; i < token->count; i++)
            if (token->entries [i].shard_size == entry.shard_size
            &&  memcmp (token->entries [i].shard, entry.shard, entry.shard_size) == 0) {
                char problem_ [96];
                snprintf (problem_, sizeof problem_, "a second entry for shard %.*s "
                          "(keep one per shard)", (int) entry.shard_size, entry.shard);
                return s_refuse (why, why_size, element, problem_);
            }
        token->entries [token->count++] = entry;
    }
    return 0;
}

const tiers_token_entry_t *
tiers_token_find (const tiers_token_t *token, const char *shard)
{
    size_t size = strlen (shard);
    for (size_t i = 0; i < token->count; i++)
        if (token->entries [i].shard_size == size
        &&  memcmp (token->entries [i].shard, shard, size) == 0)
            return &token->entries [i];
    return NULL;
}

int
tiers_token_of_write (const char *shard, const char *incarnation, const char *sequence,
                      const char *tag, char *text, size_t size)
{
    assert (size > TIERS_TOKEN_ENTRY_MAX);
    text [0] = 0;
    size_t incarnation_size, sequence_size;
    if (incarnation && sequence) {
        incarnation_size = strlen (incarnation);
        sequence_size = strlen (sequence);
    }
    else
    if (tag) {
        const char *dot = strrchr (tag, '.');
        if (!dot)
            return -1;
        incarnation = tag;
        incarnation_size = (size_t) (dot - tag);
        sequence = dot + 1;
        sequence_size = strlen (sequence);
    }
    else
        return -1;
    int64_t n;
    if (!shard || !tiers_name_ok (shard, strlen (shard))
    ||  !s_incarnation_ok (incarnation, incarnation_size)
    ||  !s_sequence_ok (sequence, sequence_size, &n))
        return -1;
    snprintf (text, size, "%s=%.*s.%" PRId64, shard, (int) incarnation_size, incarnation, n);
    return 0;
}
