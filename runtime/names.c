/*  names.c — the collection and document id rules (see names.h).

    ASCII tests written out rather than isalnum(): the rule must not move
    with the process's locale, and a byte >= 0x80 is never part of a name.
*/
#include "names.h"
#include <string.h>

static bool
s_alnum (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool
tiers_collection_ok (const char *text, size_t length)
{
    if (length < 1 || length > TIERS_COLLECTION_MAX || !s_alnum (text [0]))
        return false;
    for (size_t i = 1; i < length; i++)
        if (!s_alnum (text [i]) && text [i] != '_' && text [i] != '-')
            return false;
    return true;
}

bool
tiers_doc_id_ok (const char *text, size_t length)
{
    if (length < 1 || length > TIERS_DOC_ID_MAX)
        return false;
    if (text [0] == '.' && (length == 1 || (length == 2 && text [1] == '.')))
        return false;
    for (size_t i = 0; i < length; i++)
        //  (a NUL byte would match strchr's terminator: test it first)
        if (!s_alnum (text [i]) && (text [i] == 0 || !strchr ("._~-:@", text [i])))
            return false;
    return true;
}
