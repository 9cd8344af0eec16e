/*  keys.c — the API key file and the constant-time lookup (see keys.h).

    A line is cut into fields at spaces and tabs; a field that starts with
    '#' starts a comment (no field can hold '#'). Every check says which
    line and which field failed and never what the field held: a key
    pasted into the wrong column must not end up in a log.

    The table keeps, per key, its name, the SHA-256 of its secret, its
    rights and its collections. Lookup hashes the presented token and
    compares the digest with all the table's digests, each in constant time,
    and keeps the match without a branch on it: the time it takes depends
    on the number of keys only.
*/
#include "keys.h"
#include "tls.h"
#include "names.h"
#include <czmq.h>
#include <nettle/sha2.h>
#include <nettle/memops.h>
#include <sys/stat.h>

#define KEYS_LINE_MAX       4096            //  bytes of one line
#define KEYS_NAME_MAX       64
#define KEYS_FIELDS         4

typedef struct {
    char name [KEYS_NAME_MAX + 1];
    uint8_t digest [SHA256_DIGEST_SIZE];
    unsigned rights;
    bool all;                   //  COLLECTIONS is *
    char **collections;         //  else these
    size_t collection_count;
    int line;
} api_key_t;

struct _tiers_keys_t {
    api_key_t *keys;
    size_t count;
    bool plain;                 //  some secrets are in the file as they are
};

//  --------------------------------------------------------------------------
//  Syntax

bool
tiers_keys_token_ok (const char *text, size_t length)
{
    size_t i = 0;
    while (i < length && text [i]
           && (isalnum ((unsigned char) text [i]) || strchr ("-._~+/", text [i])))
        i++;
    if (i == 0)
        return false;
    while (i < length && text [i] == '=')
        i++;
    return i == length;
}

static bool
s_name_ok (const char *text, size_t length)
{
    if (length < 1 || length > KEYS_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!text [i] || (!isalnum ((unsigned char) text [i]) && !strchr ("_.-", text [i])))
            return false;
    return true;
}

static int
s_hex (char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void
s_sha256 (const void *data, size_t size, uint8_t *digest)
{
    struct sha256_ctx context;
    sha256_init (&context);
    sha256_update (&context, size, (const uint8_t *) data);
    sha256_digest (&context, SHA256_DIGEST_SIZE, digest);
}

//  Field 2: the secret, or sha256:HEX. Fills the digest; false when
//  malformed.
static bool
s_key_digest (const char *text, size_t length, uint8_t *digest, bool *plain)
{
    if (length == 7 + 2 * SHA256_DIGEST_SIZE && strncmp (text, "sha256:", 7) == 0) {
        for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
            int high = s_hex (text [7 + 2 * i]), low = s_hex (text [8 + 2 * i]);
            if (high < 0 || low < 0)
                return false;
            digest [i] = (uint8_t) (high * 16 + low);
        }
        *plain = false;
        return true;
    }
    if (length < TIERS_KEY_MIN || length > TIERS_KEY_MAX || !tiers_keys_token_ok (text, length))
        return false;
    s_sha256 (text, length, digest);
    *plain = true;
    return true;
}

//  Field 3: read,write,metrics.
static bool
s_rights (const char *text, size_t length, unsigned *rights)
{
    *rights = 0;
    const char *end = text + length;
    while (text < end) {
        const char *comma = memchr (text, ',', (size_t) (end - text));
        size_t word = (size_t) ((comma ? comma : end) - text);
        if (word == 4 && memcmp (text, "read", 4) == 0)
            *rights |= TIERS_RIGHT_READ;
        else
        if (word == 5 && memcmp (text, "write", 5) == 0)
            *rights |= TIERS_RIGHT_WRITE;
        else
        if (word == 7 && memcmp (text, "metrics", 7) == 0)
            *rights |= TIERS_RIGHT_METRICS;
        else
            return false;
        text += word + (comma ? 1 : 0);
        if (comma && text == end)
            return false;           //  a trailing comma
    }
    return *rights != 0;
}

//  Field 4: names separated by commas, or * alone.
static bool
s_collections (api_key_t *key, const char *text, size_t length)
{
    if (length == 1 && *text == '*') {
        key->all = true;
        return true;
    }
    const char *end = text + length;
    while (text <= end) {
        const char *comma = memchr (text, ',', (size_t) (end - text));
        size_t word = (size_t) ((comma ? comma : end) - text);
        if (!tiers_collection_ok (text, word))
            return false;
        key->collections = (char **) realloc (key->collections,
                                              (key->collection_count + 1) * sizeof (char *));
        assert (key->collections);
        key->collections [key->collection_count++] = strndup (text, word);
        if (!comma)
            break;
        text = comma + 1;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  The file

static void
s_key_free (api_key_t *key)
{
    for (size_t i = 0; i < key->collection_count; i++)
        free (key->collections [i]);
    free (key->collections);
    explicit_bzero (key, sizeof *key);
}

void
tiers_keys_destroy (tiers_keys_t **self_p)
{
    assert (self_p);
    tiers_keys_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < self->count; i++)
            s_key_free (&self->keys [i]);
        free (self->keys);
        free (self);
        *self_p = NULL;
    }
}

//  One line (without its end), as fields. Returns the number of fields,
//  or -1 when there are more than KEYS_FIELDS.
static int
s_fields (const char *line, size_t size, const char **fields, size_t *lengths)
{
    int count = 0;
    size_t i = 0;
    while (i < size) {
        while (i < size && (line [i] == ' ' || line [i] == '\t'))
            i++;
        if (i == size || line [i] == '#')
            break;
        size_t start = i;
        while (i < size && line [i] != ' ' && line [i] != '\t')
            i++;
        if (count == KEYS_FIELDS)
            return -1;
        fields [count] = line + start;
        lengths [count] = i - start;
        count++;
    }
    return count;
}

//  Checks one line into `key`; the reason (static text) when it is not a
//  key line, NULL when it is.
static const char *
s_line (api_key_t *key, const char **fields, const size_t *lengths, int count, bool *plain)
{
    if (count < 3)
        return "a key line is NAME KEY RIGHTS [COLLECTIONS]: too few fields";
    if (!s_name_ok (fields [0], lengths [0]))
        return "the name (field 1) must be 1 to 64 letters, digits, '_', '.' or '-'";
    memcpy (key->name, fields [0], lengths [0]);
    key->name [lengths [0]] = 0;
    if (!s_key_digest (fields [1], lengths [1], key->digest, plain))
        return "the key (field 2) must be 16 to 256 of the characters A-Z a-z 0-9 - . _ ~ + /"
               " (then any '=' padding), or sha256: and 64 hex digits";
    if (!s_rights (fields [2], lengths [2], &key->rights))
        return "the rights (field 3) are read, write or metrics, separated by commas";
    bool documents = key->rights & (TIERS_RIGHT_READ | TIERS_RIGHT_WRITE);
    if (documents && count < 4)
        return "read and write need the collections (field 4): names separated by "
               "commas, or * for all";
    if (!documents && count == 4)
        return "collections (field 4) are for read and write only";
    if (count == 4 && !s_collections (key, fields [3], lengths [3]))
        return "the collections (field 4) are collection names separated by commas, or * "
               "for all (" TIERS_COLLECTION_RULE ")";
    return NULL;
}

tiers_keys_t *
tiers_keys_parse (const char *text, size_t size, const char *filename, char **why)
{
    assert (text || size == 0);
    *why = NULL;
    tiers_keys_t *self = (tiers_keys_t *) zmalloc (sizeof *self);
    assert (self);
    size_t room = 0;
    int number = 0;
    const char *line = text, *end = text + size;
    while (line < end && !*why) {
        number++;
        const char *newline = memchr (line, '\n', (size_t) (end - line));
        size_t length = (size_t) ((newline ? newline : end) - line);
        const char *next = newline ? newline + 1 : end;
        if (length && line [length - 1] == '\r')
            length--;
        if (length > KEYS_LINE_MAX) {
            *why = zsys_sprintf ("%s:%d: a line longer than %d bytes", filename, number,
                                 KEYS_LINE_MAX);
            break;
        }
        if (memchr (line, 0, length)) {
            *why = zsys_sprintf ("%s:%d: a NUL byte", filename, number);
            break;
        }
        const char *fields [KEYS_FIELDS];
        size_t lengths [KEYS_FIELDS];
        int count = s_fields (line, length, fields, lengths);
        line = next;
        if (count == 0)
            continue;               //  blank or a comment
        if (count < 0) {
            *why = zsys_sprintf ("%s:%d: a key line is NAME KEY RIGHTS [COLLECTIONS]: too "
                                 "many fields (a comment starts with #)", filename, number);
            break;
        }
        api_key_t key = { .line = number };
        bool plain = false;
        const char *reason = s_line (&key, fields, lengths, count, &plain);
        for (size_t i = 0; !reason && i < self->count; i++) {
            if (streq (self->keys [i].name, key.name))
                *why = zsys_sprintf ("%s:%d: the name (field 1) is that of the key on "
                                     "line %d", filename, number, self->keys [i].line);
            else
            if (memcmp (self->keys [i].digest, key.digest, SHA256_DIGEST_SIZE) == 0)
                *why = zsys_sprintf ("%s:%d: the key (field 2) is that of line %d",
                                     filename, number, self->keys [i].line);
            if (*why)
                break;
        }
        if (reason)
            *why = zsys_sprintf ("%s:%d: %s", filename, number, reason);
        if (*why) {
            s_key_free (&key);
            break;
        }
        if (self->count == room) {
            room = room ? 2 * room : 8;
            self->keys = (api_key_t *) realloc (self->keys, room * sizeof (api_key_t));
            assert (self->keys);
        }
        self->keys [self->count++] = key;
        self->plain |= plain;
    }
    if (!*why && self->count == 0)
        *why = zsys_sprintf ("%s: no keys (every request would be refused)", filename);
    if (*why)
        tiers_keys_destroy (&self);
    return self;
}

tiers_keys_t *
tiers_keys_load (const char *path, char **why)
{
    *why = NULL;
    size_t size = 0;
    char *text = tiers_secret_file_read ("api_keys", path, &size, why);
    if (!text)
        return NULL;
    tiers_keys_t *self = tiers_keys_parse (text, size, path, why);
    explicit_bzero (text, size + 1);
    free (text);
    return self;
}

//  --------------------------------------------------------------------------
//  Lookup

size_t
tiers_keys_size (const tiers_keys_t *self)
{
    assert (self);
    return self->count;
}

bool
tiers_keys_any (const tiers_keys_t *self, unsigned right)
{
    assert (self);
    for (size_t i = 0; i < self->count; i++)
        if (self->keys [i].rights & right)
            return true;
    return false;
}

bool
tiers_keys_plain (const tiers_keys_t *self)
{
    assert (self);
    return self->plain;
}

int
tiers_keys_find (const tiers_keys_t *self, const char *token, size_t length)
{
    assert (self);
    uint8_t digest [SHA256_DIGEST_SIZE];
    s_sha256 (token, length, digest);
    //  Every digest is compared, and the match is kept by a mask, not a
    //  branch. Digests are unique (the loader refuses a repeated key).
    unsigned found = (unsigned) -1;
    for (size_t i = 0; i < self->count; i++) {
        unsigned mask = 0u - (unsigned) memeql_sec (digest, self->keys [i].digest,
                                                     SHA256_DIGEST_SIZE);
        found = (mask & (unsigned) i) | (~mask & found);
    }
    explicit_bzero (digest, sizeof digest);
    return found == (unsigned) -1 ? -1 : (int) found;
}

const char *
tiers_keys_name (const tiers_keys_t *self, int key)
{
    assert (self && key >= 0 && (size_t) key < self->count);
    return self->keys [key].name;
}

bool
tiers_keys_allows (const tiers_keys_t *self, int key, unsigned right,
                   const char *collection)
{
    assert (self && key >= 0 && (size_t) key < self->count);
    const api_key_t *entry = &self->keys [key];
    if (!(entry->rights & right))
        return false;
    if (!collection || entry->all)
        return true;
    for (size_t i = 0; i < entry->collection_count; i++)
        if (streq (entry->collections [i], collection))
            return true;
    return false;
}
