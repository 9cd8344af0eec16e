/*  docread.c — document reads on a read connection (see docread.h).

    The reads the shard answers (doc/protocol.md: `get`, `list`), taken out
    of the actor so that every copy of a shard's file answers them alike:
    the primary and its replicas give a document the same headers and the
    same tag, and a list page the same JSON. What is stored is trusted only
    as far as the I-JSON check: a stored document that is not I-JSON (put
    before the shard checked, or by hand) is listed with an `error` in
    place of its `doc`, so that one bad row cannot break a page.
*/
#include "storage/sqlfile.h"
#include "storage/docread.h"
#include "parse.h"
#include "log.h"
#include <inttypes.h>

//  Bytes of a list page's body: the wire's body limit less room for the
//  rest of the reply.
#define DOCREAD_PAGE_MAX    (TIERS_WIRE_MAX_BODY - 65536)

struct _tiers_docread_t {
    sqlite3 *db;                //  the caller's read connection
    sqlite3_stmt *get, *list, *begin, *end, *sequence;
    bool reading;               //  a read transaction is open
    char incarnation [TIERS_DOCREAD_INCARNATION + 1];
};

tiers_docread_t *
tiers_docread_new (sqlite3 *db, const char *incarnation, char **why)
{
    assert (db && incarnation);
    tiers_docread_t *self = (tiers_docread_t *) zmalloc (sizeof *self);
    assert (self);
    self->db = db;
    snprintf (self->incarnation, sizeof self->incarnation, "%s", incarnation);
    if (tiers_sql_prepare (db, "SELECT version, updated, body FROM docs"
                   " WHERE collection = ?1 AND id = ?2", &self->get, why)
    ||  tiers_sql_prepare (db, "SELECT id, version, body FROM docs"
                   " WHERE collection = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                   &self->list, why)
    ||  tiers_sql_prepare (db, "SELECT value FROM meta WHERE key = 'sequence'",
                   &self->sequence, why)
    ||  tiers_sql_prepare (db, "BEGIN", &self->begin, why)
    ||  tiers_sql_prepare (db, "COMMIT", &self->end, why))
        tiers_docread_destroy (&self);
    return self;
}

void
tiers_docread_destroy (tiers_docread_t **self_p)
{
    assert (self_p);
    tiers_docread_t *self = *self_p;
    if (!self)
        return;
    tiers_docread_end (self);
    sqlite3_finalize (self->get);
    sqlite3_finalize (self->list);
    sqlite3_finalize (self->begin);
    sqlite3_finalize (self->end);
    sqlite3_finalize (self->sequence);
    free (self);
    *self_p = NULL;
}

static void
s_begin (tiers_docread_t *self)
{
    if (!self->reading)
        self->reading = tiers_sql_step_done (self->begin);
}

void
tiers_docread_end (tiers_docread_t *self)
{
    if (self && self->reading)
        tiers_sql_step_done (self->end);
    if (self)
        self->reading = false;
}

tiers_wire_t *
tiers_docread_error (const tiers_wire_t *request, int status, const char *format, ...)
{
    char reason [256];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    tiers_wire_t *reply;
    if (request)
        reply = tiers_wire_reply_to (request, status);
    else {
        reply = tiers_wire_new (TIERS_WIRE_REPLY);
        reply->status = (uint16_t) status;
    }
    tiers_wire_set_header (reply, "error", reason, strlen (reason));
    if (status == 503)
        tiers_wire_set_header (reply, "retry-after", "1", 1);
    return reply;
}

static const char *
s_header (const tiers_wire_t *msg, const char *key, size_t *size_p)
{
    for (size_t i = 0; i < msg->header_count; i++)
        if (streq (msg->headers [i].key, key)) {
            *size_p = msg->headers [i].value_size;
            return msg->headers [i].value;
        }
    return NULL;
}

const char *
tiers_docread_key (const tiers_wire_t *msg, const char *key, const char **why)
{
    size_t size = 0;
    const char *value = s_header (msg, key, &size);
    if (!value || size == 0)
        *why = "missing";
    else
    if (size > TIERS_DOCREAD_KEY_MAX)
        *why = "too long";
    else
    if (memchr (value, 0, size) || !tiers_utf8_valid ((const uint8_t *) value, size))
        *why = "not UTF-8 text";
    else
        return value;
    return NULL;
}

//  A positive decimal of at most 18 digits (so it fits in int64).
static int
s_positive (const char *text, int64_t *value)
{
    size_t length = strlen (text);
    if (length == 0 || length > 18 || strspn (text, "0123456789") != length)
        return -1;
    *value = strtoll (text, NULL, 10);
    return *value > 0 ? 0 : -1;
}

bool
tiers_docread_ijson (const char *body, size_t size, json_error_t *error)
{
    json_error_t ignored;
    json_t *doc = size && !memchr (body, 0, size)
                ? json_loadb (body, size, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                              error ? error : &ignored)
                : NULL;
    json_decref (doc);
    return doc != NULL;
}

tiers_wire_t *
tiers_docread_get (tiers_docread_t *self, const tiers_wire_t *request,
                   const char *collection, const char *id)
{
    assert (self);
    s_begin (self);
    sqlite3_stmt *stmt = self->get;
    sqlite3_bind_text (stmt, 1, collection, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, id, -1, SQLITE_STATIC);
    tiers_wire_t *reply = NULL;
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
        reply = tiers_wire_reply_to (request, 200);
        int64_t version = sqlite3_column_int64 (stmt, 0);
        tiers_wire_set_headerf (reply, "version", "%" PRId64, version);
        tiers_wire_set_headerf (reply, "tag", "%s.%" PRId64, self->incarnation, version);
        tiers_wire_set_headerf (reply, "updated", "%" PRId64,
                                (int64_t) sqlite3_column_int64 (stmt, 1));
        const void *body = sqlite3_column_text (stmt, 2);
        int size = sqlite3_column_bytes (stmt, 2);
        if (tiers_wire_set_body (reply, body ? body : "", (size_t) size)) {
            tiers_wire_destroy (&reply);
            reply = tiers_docread_error (request, 500, "document too large to send");
        }
    }
    else
    if (rc == SQLITE_DONE) {
        reply = tiers_docread_error (request, 404, "no such document");
        //  At which sequence it was absent (a cache may keep the 404 as of
        //  then): the file's, in the same read transaction as the lookup.
        if (self->reading && sqlite3_step (self->sequence) == SQLITE_ROW) {
            tiers_wire_set_headerf (reply, "sequence", "%" PRId64,
                                    (int64_t) sqlite3_column_int64 (self->sequence, 0));
            tiers_wire_set_header (reply, "incarnation", self->incarnation,
                                   strlen (self->incarnation));
        }
        sqlite3_reset (self->sequence);
    }
    else {
        tiers_error ("get failed: %s", sqlite3_errmsg (self->db));
        reply = tiers_docread_error (request, 500, "storage error");
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return reply;
}

//  A growing text buffer for list pages.
typedef struct {
    char *data;
    size_t size, room;
} text_t;

static void
s_text_add (text_t *text, const char *data, size_t size)
{
    if (text->size + size + 1 > text->room) {
        while (text->size + size + 1 > text->room)
            text->room = text->room ? text->room * 2 : 4096;
        text->data = (char *) realloc (text->data, text->room);
        assert (text->data);
    }
    memcpy (text->data + text->size, data, size);
    text->size += size;
    text->data [text->size] = 0;
}

static void
s_text_str (text_t *text, const char *string)
{
    s_text_add (text, string, strlen (string));
}

//  A JSON string literal (the input is valid UTF-8).
static void
s_text_json (text_t *text, const char *string)
{
    s_text_add (text, "\"", 1);
    const char *run = string;
    for (const char *at = string; *at; at++) {
        unsigned char byte = (unsigned char) *at;
        if (byte >= 0x20 && byte != '"' && byte != '\\')
            continue;
        s_text_add (text, run, (size_t) (at - run));
        char escape [8];
        switch (byte) {
            case '"':  s_text_str (text, "\\\""); break;
            case '\\': s_text_str (text, "\\\\"); break;
            case '\n': s_text_str (text, "\\n"); break;
            case '\r': s_text_str (text, "\\r"); break;
            case '\t': s_text_str (text, "\\t"); break;
            case '\b': s_text_str (text, "\\b"); break;
            case '\f': s_text_str (text, "\\f"); break;
            default:
                snprintf (escape, sizeof escape, "\\u%04x", byte);
                s_text_str (text, escape);
        }
        run = at + 1;
    }
    s_text_str (text, run);
    s_text_add (text, "\"", 1);
}

tiers_wire_t *
tiers_docread_list (tiers_docread_t *self, const tiers_wire_t *request,
                    const char *collection)
{
    assert (self);
    int64_t limit = TIERS_DOCREAD_LIMIT_DEFAULT;
    bool bad = false;
    const char *limit_text = tiers_wire_text (request, "limit", &bad);
    if (bad || (limit_text && (s_positive (limit_text, &limit)
                            || limit > TIERS_DOCREAD_LIMIT_MAX)))
        return tiers_docread_error (request, 400, "bad limit: expected 1..%d",
                                    TIERS_DOCREAD_LIMIT_MAX);
    const char *after = "";
    size_t size;
    if (s_header (request, "after", &size)) {
        const char *why = NULL;
        after = tiers_docread_key (request, "after", &why);
        if (!after)
            return tiers_docread_error (request, 400, "bad after: %s", why);
    }
    s_begin (self);
    sqlite3_stmt *stmt = self->list;
    sqlite3_bind_text (stmt, 1, collection, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, after, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 3, limit);

    text_t page = { NULL, 0, 0 };
    text_t last = { NULL, 0, 0 };       //  the last id, as a JSON literal
    s_text_str (&page, "{\"items\":[");
    int64_t count = 0;
    bool full = false;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *id = (const char *) sqlite3_column_text (stmt, 0);
        int64_t version = sqlite3_column_int64 (stmt, 1);
        const char *body = (const char *) sqlite3_column_text (stmt, 2);
        size_t body_size = (size_t) sqlite3_column_bytes (stmt, 2);
        if (!id || !body) {
            rc = SQLITE_NOMEM;
            break;
        }
        //  Bound the page in bytes too: a page cut short counts as full,
        //  so the caller follows `next` to the rest.
        if (count > 0 && page.size + body_size + 6 * strlen (id) + 160 > DOCREAD_PAGE_MAX) {
            full = true;
            break;
        }
        last.size = 0;
        s_text_json (&last, id);
        char number [128];
        snprintf (number, sizeof number, "%s{\"id\":", count ? "," : "");
        s_text_str (&page, number);
        s_text_add (&page, last.data, last.size);
        snprintf (number, sizeof number, ",\"version\":%" PRId64 ",\"etag\":\"\\\"%s.%"
                  PRId64 "\\\"\"", version, self->incarnation, version);
        s_text_str (&page, number);
        if (tiers_docread_ijson (body, body_size, NULL))
            s_text_str (&page, ",\"doc\":");
        else {
            s_text_str (&page, ",\"error\":\"the stored document is not I-JSON: "
                               "GET it for its bytes\"");
            body_size = 0;
        }
        s_text_add (&page, body, body_size);
        s_text_str (&page, "}");
        count++;
    }
    if (count == limit)
        full = true;
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);

    tiers_wire_t *reply = NULL;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        tiers_error ("list failed: %s", sqlite3_errmsg (self->db));
        reply = tiers_docread_error (request, 500, "storage error");
    }
    else {
        s_text_str (&page, "],\"next\":");
        if (full && count > 0)
            s_text_add (&page, last.data, last.size);
        else
            s_text_str (&page, "null");
        s_text_str (&page, "}");
        reply = tiers_wire_reply_to (request, 200);
        if (tiers_wire_take_body (reply, (uint8_t *) page.data, page.size) == 0)
            page.data = NULL;
        else {
            tiers_wire_destroy (&reply);
            reply = tiers_docread_error (request, 500, "document too large for a list page");
        }
    }
    free (page.data);
    free (last.data);
    return reply;
}
