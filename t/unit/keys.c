/*  t/unit/keys.c — tests for gateway/keys.c, the API key file.

    The grammar line by line: every malformed line is refused with
    FILE:LINE and never with a byte of what the line held; comments, blank
    lines, CRLF and the sha256: form are taken. Then the lookup (the right
    key, no key for a near miss) and the rights.
*/
#include "gateway/keys.h"
#include "t/tap.h"
#include <czmq.h>

#define KEY_A   "alpha-secret-0123456789"
#define KEY_B   "bravo+secret/0123456789=="

//  Parses `text`; returns the error (malloc'ed) or NULL when it loaded.
static char *
s_error (const char *text)
{
    char *why = NULL;
    tiers_keys_t *keys = tiers_keys_parse (text, strlen (text), "keys.txt", &why);
    tiers_keys_destroy (&keys);
    return why;
}

//  The error starts with `prefix` and holds no byte of `secret`.
static void
s_refused (const char *text, const char *prefix, const char *secret, const char *name)
{
    char *why = s_error (text);
    ok (why && strncmp (why, prefix, strlen (prefix)) == 0, "%s: refused at %s", name, prefix);
    if (why && strncmp (why, prefix, strlen (prefix)))
        diag ("said: %s", why);
    ok (!why || !secret || !strstr (why, secret), "%s: ... without the field's text", name);
    free (why);
}

int
main (void)
{
    char *why = NULL;
    const char *file =
        "# NAME  KEY  RIGHTS  COLLECTIONS\r\n"
        "\n"
        "   \t\n"
        "shop   " KEY_A "   read,write   users,orders   # the shop\n"
        "reports\t" KEY_B "\tread\t*\n"
        "scraper sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 metrics";
    tiers_keys_t *keys = tiers_keys_parse (file, strlen (file), "keys.txt", &why);
    ok (keys != NULL, "a file with comments, blank lines, CRLF, tabs and a digest loads");
    if (why)
        diag ("%s", why);
    is_int ((long long) tiers_keys_size (keys), 3, "... three keys");
    ok (tiers_keys_plain (keys), "... some of them written out");
    ok (tiers_keys_any (keys, TIERS_RIGHT_METRICS), "... one holds metrics");

    is_int (tiers_keys_find (keys, KEY_A, strlen (KEY_A)), 0, "find: the first key");
    is_int (tiers_keys_find (keys, KEY_B, strlen (KEY_B)), 1, "find: the second (+ / = in it)");
    //  sha256("test") is the digest on the third line.
    is_int (tiers_keys_find (keys, "test", 4), 2, "find: the key given as its digest");
    is_int (tiers_keys_find (keys, KEY_A, strlen (KEY_A) - 1), -1, "find: a prefix is no key");
    is_int (tiers_keys_find (keys, "alpha-secret-012345678X", 23), -1,
            "find: one byte off is no key");
    is_int (tiers_keys_find (keys, "", 0), -1, "find: empty is no key");
    is ((char *) tiers_keys_name (keys, 0), "shop", "name of key 0");
    is ((char *) tiers_keys_name (keys, 2), "scraper", "name of key 2");

    ok (tiers_keys_allows (keys, 0, TIERS_RIGHT_READ, "users"), "shop reads users");
    ok (tiers_keys_allows (keys, 0, TIERS_RIGHT_WRITE, "orders"), "shop writes orders");
    ok (!tiers_keys_allows (keys, 0, TIERS_RIGHT_READ, "payments"),
        "shop does not read payments");
    ok (!tiers_keys_allows (keys, 0, TIERS_RIGHT_METRICS, NULL), "shop does not read metrics");
    ok (tiers_keys_allows (keys, 1, TIERS_RIGHT_READ, "anything"), "reports reads any (*)");
    ok (!tiers_keys_allows (keys, 1, TIERS_RIGHT_WRITE, "users"), "reports does not write");
    ok (tiers_keys_allows (keys, 2, TIERS_RIGHT_METRICS, NULL), "scraper reads metrics");
    ok (!tiers_keys_allows (keys, 2, TIERS_RIGHT_READ, "users"), "scraper reads no documents");
    tiers_keys_destroy (&keys);
    ok (keys == NULL, "destroy nulls the pointer");

    //  Malformed lines: FILE:LINE, and never the text.
    s_refused ("", "keys.txt: no keys", NULL, "empty file");
    s_refused ("# only\n\n", "keys.txt: no keys", NULL, "comments only");
    s_refused ("ok " KEY_A " read *\n" KEY_B "\n", "keys.txt:2:", KEY_B, "a key alone");
    s_refused ("ok " KEY_A "\n", "keys.txt:1:", KEY_A, "no rights");
    s_refused ("ok " KEY_A " read * extra\n", "keys.txt:1:", KEY_A, "five fields");
    s_refused ("ok " KEY_A " read\n", "keys.txt:1: read and write need", KEY_A,
               "read without collections");
    s_refused ("ok " KEY_A " metrics users\n", "keys.txt:1: collections", KEY_A,
               "metrics with collections");
    s_refused ("ok " KEY_A " admin *\n", "keys.txt:1: the rights", "admin", "unknown right");
    s_refused ("ok " KEY_A " read, *\n", "keys.txt:1:", KEY_A, "a trailing comma in rights");
    s_refused ("ok " KEY_A " read users,\n", "keys.txt:1: the collections", KEY_A,
               "a trailing comma in collections");
    s_refused ("ok " KEY_A " read us/ers\n", "keys.txt:1: the collections", "us/ers",
               "a collection that is no name");
    s_refused ("ok " KEY_A " read *,users\n", "keys.txt:1: the collections", KEY_A,
               "* among names");
    s_refused ("ok short-key read *\n", "keys.txt:1: the key (field 2)", "short-key",
               "a key of 9 characters");
    s_refused ("ok alpha\"secret-0123456789 read *\n", "keys.txt:1: the key (field 2)",
               "secret-0123", "a key with a quote");
    s_refused ("ok sha256:abc read *\n", "keys.txt:1: the key (field 2)", "abc",
               "a short digest");
    s_refused ("bad/name " KEY_A " read *\n", "keys.txt:1: the name", KEY_A, "a bad name");
    s_refused ("a " KEY_A " read *\nb " KEY_A " read *\n", "keys.txt:2: the key (field 2) is "
               "that of line 1", KEY_A, "the same key twice");
    s_refused ("a " KEY_A " read *\na " KEY_B " read *\n", "keys.txt:2: the name (field 1) is "
               "that of the key on line 1", KEY_B, "the same name twice");
    char nul [] = "a " KEY_A " read *\nb " KEY_B "\0 read *\n";
    why = NULL;
    keys = tiers_keys_parse (nul, sizeof nul - 1, "keys.txt", &why);
    ok (!keys && why && strstr (why, "keys.txt:2: a NUL byte"), "a NUL byte: refused at line 2");
    free (why);
    char *long_line = (char *) malloc (5000);
    memset (long_line, 'a', 4999);
    long_line [4999] = 0;
    s_refused (long_line, "keys.txt:1: a line longer", NULL, "a line of 4999 bytes");
    free (long_line);

    //  The token syntax of RFC 6750.
    ok (tiers_keys_token_ok ("abc", 3), "token: letters");
    ok (tiers_keys_token_ok ("a-._~+/b==", 10), "token: punctuation and padding");
    ok (!tiers_keys_token_ok ("==", 2), "token: padding alone");
    ok (!tiers_keys_token_ok ("a=b", 3), "token: padding inside");
    ok (!tiers_keys_token_ok ("a b", 3), "token: a space");
    ok (!tiers_keys_token_ok ("a\0b", 3), "token: a NUL");

    //  The file: missing.
    keys = tiers_keys_load ("/nonexistent/keys", &why);
    ok (!keys && why && strstr (why, "cannot read api_keys /nonexistent/keys"),
        "load: a missing file says so");
    free (why);
    return done_testing ();
}
