/*  t/unit/names.c — tests for runtime/names.c.

    The edges of both rules: lengths 0, 1, the maximum and one over; the
    first character of a collection; every allowed punctuation mark and a
    few refused ones; "." and ".." as ids (but "..." and ".a" are fine);
    bytes >= 0x80 and a NUL inside the length.
*/
#include "names.h"
#include "t/tap.h"
#include <stdbool.h>

static bool
s_coll (const char *text)
{
    return tiers_collection_ok (text, strlen (text));
}

static bool
s_id (const char *text)
{
    return tiers_doc_id_ok (text, strlen (text));
}

int
main (void)
{
    char long_name [TIERS_DOC_ID_MAX + 2];

    //  Collections.
    ok (!tiers_collection_ok (NULL, 0), "collection: empty (NULL, 0) is refused");
    ok (!s_coll (""), "collection: empty is refused");
    ok (s_coll ("a") && s_coll ("Z") && s_coll ("7"), "collection: one letter or digit");
    ok (s_coll ("users") && s_coll ("a_b-C9") && s_coll ("9lives"),
        "collection: letters, digits, '_' and '-'");
    ok (!s_coll ("_x"), "collection: '_x' is refused (must start with a letter or digit)");
    ok (!s_coll ("-x"), "collection: '-x' is refused");
    ok (s_coll ("x_") && s_coll ("x-"), "collection: '_' and '-' may end it");
    ok (!s_coll (".") && !s_coll ("..") && !s_coll ("a.b"), "collection: no '.'");
    ok (!s_coll ("a b") && !s_coll ("a/b") && !s_coll ("a~b") && !s_coll ("a:b")
        && !s_coll ("a@b") && !s_coll ("a$b") && !s_coll ("a\"b"),
        "collection: no space, '/', '~', ':', '@', '$' or quote");
    ok (!s_coll ("caf\xc3\xa9") && !s_coll ("\xc3\xa9t\xc3\xa9"), "collection: no bytes >= 0x80");
    ok (!tiers_collection_ok ("ab\0c", 4), "collection: a NUL byte inside the length is refused");
    ok (tiers_collection_ok ("ab\0c", 2), "collection: the length is what counts, not the NUL");
    memset (long_name, 'c', sizeof long_name);
    ok (tiers_collection_ok (long_name, TIERS_COLLECTION_MAX), "collection: 64 bytes is taken");
    ok (!tiers_collection_ok (long_name, TIERS_COLLECTION_MAX + 1), "collection: 65 bytes is refused");

    //  Document ids.
    ok (!tiers_doc_id_ok (NULL, 0) && !s_id (""), "id: empty is refused");
    ok (s_id ("a") && s_id ("0") && s_id ("_") && s_id ("~"), "id: one character");
    ok (s_id ("a.b_c~d-e:f@g") && s_id ("_x") && s_id ("-x") && s_id ("@home"),
        "id: every allowed mark, anywhere");
    ok (!s_id (".") && !s_id (".."), "id: '.' and '..' are refused");
    ok (s_id ("...") && s_id (".a") && s_id ("a.") && s_id ("..a"),
        "id: other dotted ids are taken");
    ok (!s_id ("a/b") && !s_id ("a b") && !s_id ("a%2F") && !s_id ("a?b") && !s_id ("a#b")
        && !s_id ("a\\b") && !s_id ("a\"b") && !s_id ("a\nb") && !s_id ("a\x7f"),
        "id: no '/', space, '%%', '?', '#', backslash, quote or control byte");
    ok (!s_id ("\xff") && !s_id ("caf\xc3\xa9"), "id: no bytes >= 0x80");
    ok (!tiers_doc_id_ok ("nul\0tail", 8), "id: a NUL byte inside the length is refused");
    memset (long_name, 'i', sizeof long_name);
    ok (tiers_doc_id_ok (long_name, TIERS_DOC_ID_MAX), "id: 256 bytes is taken");
    ok (!tiers_doc_id_ok (long_name, TIERS_DOC_ID_MAX + 1), "id: 257 bytes is refused");

    //  The words and the numbers agree.
    ok (strstr (TIERS_COLLECTION_RULE, "1 to 64") != NULL && TIERS_COLLECTION_MAX == 64,
        "the collection rule says 1 to 64");
    ok (strstr (TIERS_DOC_ID_RULE, "1 to 256") != NULL && TIERS_DOC_ID_MAX == 256,
        "the id rule says 1 to 256");
    return done_testing ();
}
