/*  t/unit/tags.c — If-Match / If-None-Match lists and Idempotency-Key
    values (actors/api_core.c): what names a tag, what is valid but names
    nothing, what is refused.
*/
#include "actors/api_core.h"
#include "t/tap.h"

static void
s_parsed (const char *value, bool weak_counts, int rc, size_t count, const char *label)
{
    tiers_api_tags_t tags;
    const char *why = NULL;
    int got = tiers_api_tags_parse (value, weak_counts, &tags, &why);
    ok (got == rc && (rc || tags.count == count), "%s: '%s' -> %s, %zu tag(s)%s%s",
        label, value ? value : "(none)", rc ? "refused" : "valid", tags.count,
        got && why ? ": " : "", got && why ? why : "");
}

static void
s_key (const char *value, const char *expected, const char *label)
{
    char key [TIERS_API_KEY_MAX + 1];
    const char *why = NULL;
    int rc = tiers_api_idempotency_key (value, key, sizeof key, &why);
    if (expected)
        ok (rc == 0 && streq (key, expected), "Idempotency-Key %s: '%s' -> '%s'",
            label, value, rc == 0 ? key : "(refused)");
    else
        ok (rc == -1 && why && strstr (why, "Idempotency-Key"),
            "Idempotency-Key %s: '%s' refused", label, value);
}

int
main (void)
{
    tiers_api_tags_t tags;
    const char *why = NULL;
    s_parsed (NULL, false, 0, 0, "no header");
    ok (tiers_api_tags_parse (NULL, false, &tags, &why) == 0 && !tags.present,
        "no header: not present");
    s_parsed ("\"a1b2c3d4e5f6.42\"", false, 0, 1, "one tag");
    ok (tiers_api_tags_parse ("\"a1b2c3d4e5f6.42\"", false, &tags, &why) == 0
        && tiers_api_tags_match (&tags, "a1b2c3d4e5f6.42")
        && !tiers_api_tags_match (&tags, "a1b2c3d4e5f6.4")
        && !tiers_api_tags_match (&tags, "a1b2c3d4e5f6.421")
        && !tiers_api_tags_match (&tags, "ffffffffffff.42")
        && !tiers_api_tags_match (&tags, NULL),
        "a tag matches itself only, byte for byte");
    s_parsed ("\"1\", \"2\" ,\"3\"", false, 0, 3, "a list with spaces");
    s_parsed (" , \"7\",,", false, 0, 1, "empty list elements");
    s_parsed ("", false, 0, 0, "an empty list");
    ok (tiers_api_tags_parse ("", false, &tags, &why) == 0
        && !tiers_api_tags_match (&tags, "x.1"), "an empty list matches nothing");
    s_parsed ("*", false, 0, 0, "*");
    ok (tiers_api_tags_parse ("*", false, &tags, &why) == 0 && tags.any
        && tiers_api_tags_match (&tags, "x.5") && !tiers_api_tags_match (&tags, NULL),
        "* matches any existing document, not a missing one");
    s_parsed ("*, \"1\"", false, -1, 0, "* with a tag");
    s_parsed ("\"\"", false, 0, 0, "an empty tag names nothing");
    char longer [80];
    memset (longer, 'a', sizeof longer);
    longer [0] = '"';
    longer [66] = '"';
    longer [67] = 0;
    s_parsed (longer, false, 0, 0, "a tag over 64 bytes names nothing");
    s_parsed ("W/\"5\"", false, 0, 0, "weak, strong comparison (If-Match)");
    s_parsed ("W/\"5\"", true, 0, 1, "weak, weak comparison (If-None-Match)");
    s_parsed ("42", false, -1, 0, "unquoted");
    s_parsed ("\"42", false, -1, 0, "unterminated");
    s_parsed ("\"4 2\"", false, -1, 0, "a space inside");
    s_parsed ("\"1\" \"2\"", false, -1, 0, "no comma");
    char many [256] = "";
    for (int i = 1; i <= 17; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "%s\"%d\"",
                  i > 1 ? "," : "", i);
    s_parsed (many, false, -1, 0, "17 tags");
    ok (tiers_api_tags_parse (many, false, &tags, &why) == -1 && why
        && strstr (why, "at most 16"), "... says at most 16");
    char joined [64];
    tiers_api_tags_parse ("\"a.1\", W/\"b.2\", \"c.3\"", false, &tags, &why);
    ok (tiers_api_tags_join (&tags, joined, sizeof joined) == 7 && streq (joined, "a.1 c.3"),
        "join: strong tags separated by a space ('%s')", joined);
    tiers_api_tags_parse ("", false, &tags, &why);
    ok (tiers_api_tags_join (&tags, joined, sizeof joined) == 0 && streq (joined, ""),
        "join of none: empty");

    s_key ("\"8e03978e-40d5-43e8\"", "8e03978e-40d5-43e8", "quoted (sf-string)");
    s_key ("  \"a b\"  ", "a b", "quoted with a space inside, OWS around");
    s_key ("\"q\\\"uote\\\\d\"", "q\"uote\\d", "escapes");
    s_key ("order-17", "order-17", "bare");
    s_key ("\"\"", NULL, "empty");
    s_key ("", NULL, "empty bare");
    s_key ("\"abc", NULL, "unterminated");
    s_key ("\"a\\x\"", NULL, "a bad escape");
    s_key ("\"a\", \"b\"", NULL, "two values (two lines joined)");
    s_key ("a, b", NULL, "two bare values");
    s_key ("\"tab\there\"", NULL, "a control character");
    s_key ("\"\xc3\xa9\"", NULL, "non-ASCII");
    char big [300];
    big [0] = '"';
    memset (big + 1, 'k', 256);
    big [257] = '"';
    big [258] = 0;
    s_key (big, NULL, "256 characters");
    big [256] = '"';
    big [257] = 0;
    char expect [256];
    memset (expect, 'k', 255);
    expect [255] = 0;
    s_key (big, expect, "255 characters");
    return done_testing ();
}
