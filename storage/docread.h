/*  docread.h — document reads (get, list) on a read connection of a
    shard's file: the one answer of doc/protocol.md for every copy.

    A shard (the primary) and a replica hold the same file format (schema
    2: docs, meta, identity, idempotency) and answer `get` and `list` the
    same way: the same reply headers, the same tags (INCARNATION.VERSION),
    the same list JSON. This module is that answer. It owns the read
    statements of one read connection (the caller owns the connection) and
    builds replies; the caller sends them, counts them and adds what is its
    own (a replica's `applied`).

    Reads of one burst share a read transaction (tiers_docread_begin, _end):
    one WAL snapshot and one read lock instead of one per statement. A
    caller that changed the file on another connection ends it first, so
    that the next read sees the change.
*/
#ifndef TIERS_DOCREAD_H
#define TIERS_DOCREAD_H

#include <sqlite3.h>
#include <jansson.h>
#include "wire.h"

#define TIERS_DOCREAD_KEY_MAX       1024    //  bytes in a collection or id
#define TIERS_DOCREAD_LIMIT_DEFAULT 100
#define TIERS_DOCREAD_LIMIT_MAX     1000
#define TIERS_DOCREAD_INCARNATION   12      //  hex digits of an incarnation id

typedef struct _tiers_docread_t tiers_docread_t;

//  Prepares the reads on `db` (opened read-only by the caller: query_only)
//  for a file of incarnation `incarnation`. NULL + *why (malloc'ed).
tiers_docread_t *tiers_docread_new (sqlite3 *db, const char *incarnation, char **why);
//  Ends the read transaction and finalizes the statements (not the
//  connection). Safe on NULL.
void tiers_docread_destroy (tiers_docread_t **self_p);

//  The read transaction of a burst: begun by the first read, ended here.
void tiers_docread_end (tiers_docread_t *self);

//  `get` of collection/id: 200 (headers version, tag, updated; body the
//  document), 404 or 500, with header `error` when not 200. A 404 says
//  the file's `sequence` and `incarnation` of the read (what a cache keeps
//  a negative entry as of). Never NULL.
tiers_wire_t *tiers_docread_get (tiers_docread_t *self, const tiers_wire_t *request,
                                 const char *collection, const char *id);
//  `list` of a collection (headers `after`, `limit`): 200 with the page
//  `{"items":[...],"next":...}`, 400 for a bad limit or after, 500.
tiers_wire_t *tiers_docread_list (tiers_docread_t *self, const tiers_wire_t *request,
                                  const char *collection);

//  An error reply to `request` (NULL: a bare REPLY) with header `error`
//  (and `retry-after: 1` for 503).
tiers_wire_t *tiers_docread_error (const tiers_wire_t *request, int status,
                                   const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  A key part of a request (collection, id, after): 1..KEY_MAX bytes of
//  UTF-8 without NUL. The value, or NULL with *why set (static).
const char *tiers_docread_key (const tiers_wire_t *request, const char *key,
                               const char **why);

//  Is this body a JSON text that can be served back (I-JSON in practice:
//  UTF-8, no NUL byte, numbers jansson reads)? `error` may be NULL.
bool tiers_docread_ijson (const char *body, size_t size, json_error_t *error);

#endif
