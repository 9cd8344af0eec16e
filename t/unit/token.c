/*  t/unit/token.c — session tokens (actors/token.c): what parses, what is
    refused and what the refusal says, and the entry a write answer gives.
*/
#include "actors/token.h"
#include "t/tap.h"
#include <string.h>

#define streq(a, b) (strcmp ((a), (b)) == 0)

//  Parses `value`; checks the result and the number of entries.
static void
s_parsed (const char *value, size_t count, const char *label)
{
    tiers_token_t token;
    char why [256];
    int rc = tiers_token_parse (value, &token, why, sizeof why);
    bool shown = !value || strlen (value) < 80;
    ok (rc == 0 && token.count == count, "%s: '%s' -> %zu entr%s%s%s", label,
        !value ? "(none)" : shown ? value : "...", rc ? 0 : token.count,
        count == 1 ? "y" : "ies",
        rc ? ": refused: " : "", rc ? why : "");
}

//  Refuses `value`, with a reason that holds `says`.
static void
s_refused (const char *value, const char *says, const char *label)
{
    tiers_token_t token;
    char why [256];
    int rc = tiers_token_parse (value, &token, why, sizeof why);
    ok (rc == -1 && strstr (why, says) && strstr (why, "SHARD=INCARNATION.SEQUENCE"),
        "%s: '%s' refused, saying '%s' (%s)", label, strlen (value) < 80 ? value : "...",
        says, rc ? why : "accepted");
}

static void
s_write (const char *incarnation, const char *sequence, const char *tag,
         const char *expected, const char *label)
{
    char text [TIERS_TOKEN_ENTRY_MAX + 1];
    int rc = tiers_token_of_write ("s0", incarnation, sequence, tag, text, sizeof text);
    if (expected)
        ok (rc == 0 && streq (text, expected), "write %s -> '%s' (got '%s')", label,
            expected, rc ? "(none)" : text);
    else
        ok (rc == -1 && !*text, "write %s -> no token", label);
}

int
main (void)
{
    tiers_token_t token;
    char why [256];

    //  What parses.
    s_parsed (NULL, 0, "no header");
    ok (tiers_token_parse (NULL, &token, why, sizeof why) == 0 && !token.present,
        "no header: not present");
    s_parsed ("", 0, "an empty value");
    ok (tiers_token_parse ("", &token, why, sizeof why) == 0 && token.present,
        "an empty value: present, no entries");
    s_parsed ("s0=4f2a9c1b7e3d.17", 1, "one entry");
    ok (tiers_token_parse ("s0=4f2a9c1b7e3d.17", &token, why, sizeof why) == 0
        && token.entries [0].shard_size == 2 && memcmp (token.entries [0].shard, "s0", 2) == 0
        && token.entries [0].incarnation_size == 12
        && memcmp (token.entries [0].incarnation, "4f2a9c1b7e3d", 12) == 0
        && token.entries [0].sequence == 17, "one entry: shard, incarnation, sequence");
    s_parsed ("s0=4f2a9c1b7e3d.17, s1=0a1b2c3d4e5f.9", 2, "two entries");
    s_parsed ("s0=4f2a9c1b7e3d.17 ,\ts1=0a1b2c3d4e5f.9\t", 2, "spaces and tabs around commas");
    s_parsed (" , s0=4f2a9c1b7e3d.17,,, ", 1, "empty list elements");
    s_parsed ("users-eu_2=a.0", 1, "a name with '-' and '_', sequence 0");
    s_parsed ("s0=0123456789abcdef0123456789abcdef.9223372036854775807", 1,
              "a 32-digit incarnation and the largest sequence");
    s_parsed ("s9=4f2a9c1b7e3d.17", 1, "a shard the map may not have (the caller ignores it)");
    ok (tiers_token_parse ("s0=aa.1, s1=bb.2, s10=cc.3", &token, why, sizeof why) == 0
        && tiers_token_find (&token, "s1") && tiers_token_find (&token, "s1")->sequence == 2
        && tiers_token_find (&token, "s10") && tiers_token_find (&token, "s10")->sequence == 3
        && !tiers_token_find (&token, "s") && !tiers_token_find (&token, "s2"),
        "find: by the whole name");
    char many [64 * 24 + 1] = "";
    for (int i = 0; i < 64; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "%ss%d=ab.%d",
                  i ? "," : "", i, i);
    s_parsed (many, 64, "64 entries");

    //  What is refused.
    s_refused ("s0", "entry 1: has no '='", "no '='");
    s_refused ("s0=4f2a9c1b7e3d", "entry 1: has no '.'", "no sequence");
    s_refused ("s0=4f2a9c1b7e3d.17, s1", "entry 2: has no '='", "the second entry bad");
    s_refused ("=4f2a9c1b7e3d.17", "the shard must be a name", "no shard");
    s_refused ("_s0=4f2a9c1b7e3d.17", "the shard must be a name", "a shard starting with _");
    s_refused ("s/0=4f2a9c1b7e3d.17", "the shard must be a name", "a shard with a slash");
    s_refused ("s00000000000000000000000000000000=ab.1", "the shard must be a name",
               "a shard of 33 characters");
    s_refused ("s0=.17", "the incarnation must be", "no incarnation");
    s_refused ("s0=4F2A9C1B7E3D.17", "the incarnation must be", "upper-case hex");
    s_refused ("s0=4f2a9c1b7e3g.17", "the incarnation must be", "not hex");
    s_refused ("s0=0123456789abcdef0123456789abcdef0.1", "the incarnation must be",
               "a 33-digit incarnation");
    s_refused ("s0=4f2a.1.7", "the incarnation must be", "two dots");
    s_refused ("s0=4f2a9c1b7e3d.", "the sequence must be", "an empty sequence");
    s_refused ("s0=4f2a9c1b7e3d.-1", "the sequence must be", "a negative sequence");
    s_refused ("s0=4f2a9c1b7e3d.+1", "the sequence must be", "a signed sequence");
    s_refused ("s0=4f2a9c1b7e3d.017", "the sequence must be", "a leading zero");
    s_refused ("s0=4f2a9c1b7e3d.1x", "the sequence must be", "trailing junk");
    s_refused ("s0=4f2a9c1b7e3d.9223372036854775808", "the sequence must be",
               "a sequence past 2^63-1");
    s_refused ("s0=4f2a9c1b7e3d.99999999999999999999", "the sequence must be",
               "a sequence of 20 digits");
    s_refused ("s0=4f2a9c1b7e3d.17 s1=ab.1", "entry 1: holds a space", "entries without a comma");
    s_refused ("s0 =4f2a9c1b7e3d.17", "entry 1: holds a space", "a space before '='");
    s_refused ("s0=4f2a9c1b7e3d.17;x", "the sequence must be", "a parameter");
    s_refused ("\"s0=4f2a9c1b7e3d.17\"", "the shard must be a name", "quoted");
    s_refused ("s0=aa.1, s0=aa.2", "entry 2: a second entry for shard s0", "two entries for one shard");
    char more [sizeof many + 16];
    snprintf (more, sizeof more, "%s,s64=ab.1", many);
    s_refused (more, "more than 64 entries", "65 entries");
    ok (tiers_token_parse ("s0=\xff.1", &token, why, sizeof why) == -1
        && !strchr (why, '\xff'), "a refusal never echoes the client's bytes");
    char tiny [16];
    ok (tiers_token_parse ("nope", &token, tiny, sizeof tiny) == -1 && strlen (tiny) == 15,
        "a refusal fits the caller's buffer");

    //  The entry of a write's answer.
    s_write ("4f2a9c1b7e3d", "17", "4f2a9c1b7e3d.12", "s0=4f2a9c1b7e3d.17",
             "with sequence and incarnation (the tag is not used)");
    s_write (NULL, NULL, "4f2a9c1b7e3d.12", "s0=4f2a9c1b7e3d.12", "with the tag only");
    s_write ("4f2a9c1b7e3d", NULL, "4f2a9c1b7e3d.12", "s0=4f2a9c1b7e3d.12",
             "with incarnation but no sequence: the tag");
    s_write (NULL, NULL, NULL, NULL, "with nothing");
    s_write (NULL, NULL, "12", NULL, "with a tag without a dot");
    s_write (NULL, NULL, "XYZ.12", NULL, "with a tag that is not hex");
    s_write ("4f2a9c1b7e3d", "-3", NULL, NULL, "with a bad sequence");
    char text [TIERS_TOKEN_ENTRY_MAX + 1];
    ok (tiers_token_of_write ("s 0", NULL, NULL, "ab.1", text, sizeof text) == -1,
        "write of a shard whose name a token cannot carry -> no token");
    ok (tiers_token_of_write ("s000000000000000000000000000000a",
                              "0123456789abcdef0123456789abcdef", "9223372036854775807",
                              NULL, text, sizeof text) == 0
        && strlen (text) == TIERS_TOKEN_ENTRY_MAX, "the longest entry fits");
    //  What a write gives, a read takes.
    ok (tiers_token_of_write ("s0", NULL, NULL, "4f2a9c1b7e3d.12", text, sizeof text) == 0
        && tiers_token_parse (text, &token, why, sizeof why) == 0 && token.count == 1
        && token.entries [0].sequence == 12, "a write's entry parses back");
    return done_testing ();
}
