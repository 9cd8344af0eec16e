/*  t/unit/problem.c — tests for runtime/problem.c.

    The exact text for a plain case (member order included: RFC 9457 does
    not need it, but clients' logs and our docs show it), members left out
    for NULL, JSON escaping of quotes, backslashes and control bytes, bad
    UTF-8 repaired with U+FFFD and good UTF-8 kept, and the title table
    against libmicrohttpd's reason phrases (what the gateway used before).
*/
#include "problem.h"
#include "t/tap.h"
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

//  The member `key` of the parsed `text` as a string, or NULL.
static char *
s_member (const char *text, const char *key)
{
    json_t *root = text ? json_loads (text, 0, NULL) : NULL;
    const char *value = json_string_value (json_object_get (root, key));
    char *copy = value ? strdup (value) : NULL;
    json_decref (root);
    return copy;
}

static bool
s_valid (const char *text)
{
    json_t *root = text ? json_loads (text, 0, NULL) : NULL;
    bool valid = json_is_object (root);
    json_decref (root);
    return valid;
}

int
main (void)
{
    char *text = tiers_problem_json (404, "no such route", "3f9a0c12-0-17");
    is (text ? text : "(null)",
        "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,"
        "\"detail\":\"no such route\",\"request_id\":\"3f9a0c12-0-17\"}",
        "a 404: the exact text of doc/http.md");
    free (text);

    text = tiers_problem_json (405, NULL, NULL);
    is (text ? text : "(null)",
        "{\"type\":\"about:blank\",\"title\":\"Method Not Allowed\",\"status\":405}",
        "NULL detail and request id: the members are left out");
    free (text);

    const char *tricky = "a \"quote\", a \\ backslash, a\nnewline, a\ttab, \x01 and \x1f, a /";
    text = tiers_problem_json (400, tricky, "rid\"1");
    ok (s_valid (text), "quotes, backslashes and control bytes: still JSON (%s)", text);
    char *detail = s_member (text, "detail");
    is (detail ? detail : "(none)", tricky, "... and the detail reads back as it was");
    free (detail);
    char *rid = s_member (text, "request_id");
    is (rid ? rid : "(none)", "rid\"1", "... the request id too");
    free (rid);
    ok (text && !strchr (text, '\n') && !strchr (text, '\t') && !strchr (text, '\x01'),
        "... no raw control byte in the text");
    free (text);

    text = tiers_problem_json (500, "caf\xe9 \xff\xfe end \xc3", "\xe2\x82");
    ok (s_valid (text), "bad UTF-8 (latin-1, 0xff, a cut sequence): still JSON (%s)", text);
    detail = s_member (text, "detail");
    is (detail ? detail : "(none)",
        "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd end \xef\xbf\xbd",
        "... each bad byte became U+FFFD");
    free (detail);
    rid = s_member (text, "request_id");
    is (rid ? rid : "(none)", "\xef\xbf\xbd\xef\xbf\xbd", "... in the request id too");
    free (rid);
    free (text);

    //  Overlong, surrogate and beyond U+10FFFF forms are not UTF-8 either.
    text = tiers_problem_json (500, "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80", NULL);
    ok (s_valid (text), "overlong, surrogate, past U+10FFFF: still JSON");
    free (text);

    const char *good = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    text = tiers_problem_json (409, good, NULL);
    detail = s_member (text, "detail");
    is (detail ? detail : "(none)", good, "good UTF-8 (2, 3 and 4 bytes) is kept as it is");
    free (detail);
    free (text);

    //  Titles.
    is (tiers_problem_title (413), "Content Too Large", "413: RFC 9110's name");
    is (tiers_problem_title (431), "Request Header Fields Too Large", "431");
    is (tiers_problem_title (504), "Gateway Timeout", "504");
    is (tiers_problem_title (499), "Error", "a status without a name: Error");
    is (tiers_problem_title (0), "Error", "status 0: Error");
    text = tiers_problem_json (599, "x", NULL);
    char *title = s_member (text, "title");
    is (title ? title : "(none)", "Error", "... and so in the JSON");
    free (title);
    free (text);

    //  Every registered status has the title MHD gives it (MHD also names
    //  449, 450 and 509, which no RFC registers).
    int named = 0, differ = 0;
    for (int status = 400; status < 600; status++) {
        if (status == 449 || status == 450 || status == 509)
            continue;
        const char *mhd = MHD_get_reason_phrase_for ((unsigned) status);
        bool mhd_named = mhd && *mhd && strcmp (mhd, "Unknown") != 0;
        const char *ours = tiers_problem_title (status);
        if (mhd_named)
            named++;
        if (mhd_named ? strcmp (ours, mhd) != 0 : strcmp (ours, "Error") != 0) {
            differ++;
            diag ("%d: ours '%s', MHD's '%s'", status, ours, mhd ? mhd : "(null)");
        }
    }
    ok (named > 30 && differ == 0, "the table agrees with MHD on all %d named 4xx/5xx", named);
    return done_testing ();
}
