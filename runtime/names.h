/*  names.h — what a collection name and a document id may be.

    One rule set for every tier that takes a name from outside: the gateway
    checks the names in a URL, the read-api and write-api check the names
    in a wire request (which need not come through the gateway). Both ask
    here, so a name one of them takes, the other takes too (doc/http.md,
    "Names"):

    - a collection is 1 to 64 ASCII letters, digits, '_' or '-', starting
      with a letter or digit;
    - a document id is 1 to 256 ASCII letters, digits or one of . _ ~ - : @,
      but not "." or ".." (anything that normalises URLs would take those
      for path segments).

    Neither needs escaping in a URL path, in JSON or in a log line. The
    checks take a length, not a C string: the gateway checks a segment of
    the path in place; a NUL byte inside the length is refused.
*/
#ifndef TIERS_NAMES_H
#define TIERS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define TIERS_COLLECTION_MAX    64      //  bytes
#define TIERS_DOC_ID_MAX        256     //  bytes

//  The rules in words, as the 400 answers give them.
#define TIERS_COLLECTION_RULE \
    "a collection name is 1 to 64 letters, digits, '_' or '-', starting with a letter or digit"
#define TIERS_DOC_ID_RULE \
    "a document id is 1 to 256 letters, digits or one of . _ ~ - : @, but not . or .."

//  True when the `length` bytes at `text` are a valid name. `text` may be
//  NULL when `length` is 0 (not valid).
bool tiers_collection_ok (const char *text, size_t length);
bool tiers_doc_id_ok (const char *text, size_t length);

#endif
