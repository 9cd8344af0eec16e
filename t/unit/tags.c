/*  t/unit/tags.c — If-Match / If-None-Match lists (actors/api_core.c):
    what names a version, what is valid but names nothing, what is refused.
*/
#include "actors/api_core.h"
#include "t/tap.h"

static void
s_parsed (const char *value, bool weak_counts, int rc, size_t count, const char *label)
{
    tiers_api_tags_t tags;
    const char *why = NULL;
    int got = tiers_api_tags_parse (value, weak_counts, &tags, &why);
    ok (got == rc && (rc || tags.count == count), "%s: '%s' -> %s, %zu version(s)%s%s",
        label, value ? value : "(none)", rc ? "refused" : "valid", tags.count,
        got && why ? ": " : "", got && why ? why : "");
}

int
main (void)
{
    tiers_api_tags_t tags;
    const char *why = NULL;
    s_parsed (NULL, false, 0, 0, "no header");
    ok (tiers_api_tags_parse (NULL, false, &tags, &why) == 0 && !tags.present,
        "no header: not present");
    s_parsed ("\"42\"", false, 0, 1, "one tag");
    ok (tiers_api_tags_parse ("\"42\"", false, &tags, &why) == 0
        && tiers_api_tags_match (&tags, 42) && !tiers_api_tags_match (&tags, 41),
        "\"42\" matches version 42 only");
    s_parsed ("\"1\", \"2\" ,\"3\"", false, 0, 3, "a list with spaces");
    s_parsed (" , \"7\",,", false, 0, 1, "empty list elements");
    s_parsed ("", false, 0, 0, "an empty list");
    ok (tiers_api_tags_parse ("", false, &tags, &why) == 0 && !tiers_api_tags_match (&tags, 1),
        "an empty list matches nothing");
    s_parsed ("*", false, 0, 0, "*");
    ok (tiers_api_tags_parse ("*", false, &tags, &why) == 0 && tags.any
        && tiers_api_tags_match (&tags, 5) && !tiers_api_tags_match (&tags, 0),
        "* matches any existing version, not a missing document");
    s_parsed ("*, \"1\"", false, -1, 0, "* with a tag");
    s_parsed ("\"abc\"", false, 0, 0, "a tag tiers never made");
    s_parsed ("\"007\"", false, 0, 0, "a leading zero");
    s_parsed ("\"1234567890123456789\"", false, 0, 0, "19 digits");
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
    s_parsed (many, false, -1, 0, "17 versions");
    ok (tiers_api_tags_parse (many, false, &tags, &why) == -1 && why
        && strstr (why, "at most 16"), "... says at most 16");
    return done_testing ();
}
