/*  wire_cases.h — hand-built malformed wire messages, each with the error
    tiers_wire_decode() must give for it.

    One table serves two users: t/fuzz/make-corpus.c writes every case into
    the seed corpus, and t/unit/wire.c checks each case's error string. The
    bytes are assembled field by field (not by patching offsets of a valid
    encoding), so a case says in code what is wrong with it.
*/
#ifndef TIERS_WIRE_CASES_H
#define TIERS_WIRE_CASES_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t data [512];
    size_t size;
} wire_bytes_t;

static void
wb_mem (wire_bytes_t *b, const void *data, size_t size)
{
    assert (b->size + size <= sizeof (b->data));
    memcpy (b->data + b->size, data, size);
    b->size += size;
}

static void
wb_u8 (wire_bytes_t *b, unsigned v)
{
    uint8_t byte = (uint8_t) v;
    wb_mem (b, &byte, 1);
}

static void
wb_u16 (wire_bytes_t *b, unsigned v)
{
    wb_u8 (b, v >> 8);
    wb_u8 (b, v);
}

static void
wb_u32 (wire_bytes_t *b, uint32_t v)
{
    wb_u16 (b, v >> 16);
    wb_u16 (b, v & 0xffff);
}

//  The 22 fixed bytes: status 200, a deadline and trace id 42.
static void
wb_fixed (wire_bytes_t *b, unsigned magic, unsigned version, unsigned kind,
          unsigned count)
{
    wb_u8 (b, magic);
    wb_u8 (b, version);
    wb_u8 (b, kind);
    wb_u8 (b, count);
    wb_u16 (b, 200);
    wb_u32 (b, 0x0000018b);     //  deadline 0x18bcfe56800 ms (2023)
    wb_u32 (b, 0xcfe56800);
    wb_u32 (b, 0);
    wb_u32 (b, 42);
}

static void
wb_str (wire_bytes_t *b, const char *s)
{
    wb_u8 (b, strlen (s));
    wb_mem (b, s, strlen (s));
}

static void
wb_header (wire_bytes_t *b, const char *key, const char *value)
{
    wb_str (b, key);
    wb_u16 (b, strlen (value));
    wb_mem (b, value, strlen (value));
}

static void
wb_body (wire_bytes_t *b, const char *body)
{
    wb_u32 (b, strlen (body));
    wb_mem (b, body, strlen (body));
}

//  A valid request: rid, service, one header, a JSON body.
static void
wb_valid (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 1);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_header (b, "path", "/v1/users/7");
    wb_body (b, "{}");
}

static void c_too_short (wire_bytes_t *b) { wb_valid (b); b->size = 21; }
static void c_empty (wire_bytes_t *b) { b->size = 0; }
static void c_bad_magic (wire_bytes_t *b) { wb_valid (b); b->data [0] = 'X'; }
static void c_version_0 (wire_bytes_t *b) { wb_valid (b); b->data [1] = 0; }
static void c_version_2 (wire_bytes_t *b) { wb_valid (b); b->data [1] = 2; }
static void c_kind_0 (wire_bytes_t *b) { wb_valid (b); b->data [2] = 0; }
static void c_kind_7 (wire_bytes_t *b) { wb_valid (b); b->data [2] = 7; }
static void c_kind_255 (wire_bytes_t *b) { wb_valid (b); b->data [2] = 255; }
static void c_count_17 (wire_bytes_t *b) { wb_valid (b); b->data [3] = 17; }

static void
c_fixed_only (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 0);
}

static void
c_rid_too_long (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 0);
    wb_u8 (b, TIERS_WIRE_MAX_RID + 1);
    int i;
    for (i = 0; i < TIERS_WIRE_MAX_RID + 1; i++)
        wb_u8 (b, 'x');
    wb_str (b, "read");
    wb_body (b, "");
}

static void
c_rid_truncated (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 0);
    wb_u8 (b, 10);
    wb_mem (b, "abc", 3);
}

static void
c_rid_space (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 0);
    wb_str (b, "r 1");
    wb_str (b, "read");
    wb_body (b, "");
}

static void
c_rid_nul (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 0);
    wb_u8 (b, 3);
    wb_mem (b, "r\0" "1", 3);
    wb_str (b, "read");
    wb_body (b, "");
}

static void
c_service_too_long (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 3, 0);
    wb_str (b, "");
    wb_str (b, "sssssssssssssssssssssssssssssssss");    //  33
    wb_body (b, "");
}

static void
c_service_del (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 3, 0);
    wb_str (b, "");
    wb_str (b, "read\x7f");
    wb_body (b, "");
}

static void
c_service_high (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 3, 0);
    wb_str (b, "");
    wb_str (b, "r\xc3\xa9");
    wb_body (b, "");
}

static void
c_no_service (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 3, 0);
    wb_str (b, "r1");
}

static void
c_key_empty (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 1);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_header (b, "", "v");
    wb_body (b, "");
}

static void
c_key_too_long (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 1);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_header (b, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "v");   //  33
    wb_body (b, "");
}

static void
c_key_control (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 1);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_header (b, "a\nb", "v");
    wb_body (b, "");
}

static void
c_key_duplicate (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 3);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_header (b, "a", "1");
    wb_header (b, "b", "2");
    wb_header (b, "a", "3");
    wb_body (b, "");
}

static void
c_value_too_long (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 1);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_str (b, "k");
    wb_u16 (b, 4097);
    wb_mem (b, "0123456789", 10);
}

static void
c_value_truncated (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 1);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_str (b, "k");
    wb_u16 (b, 100);
    wb_mem (b, "0123456789", 10);
}

static void
c_value_length_cut (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 1);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_str (b, "k");
    wb_u8 (b, 0);
}

static void
c_headers_missing (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 2);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_header (b, "a", "1");
    wb_body (b, "");        //  read as a header: key length 0
}

static void
c_headers_short (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 1, 2);
    wb_str (b, "r1");
    wb_str (b, "read");
    wb_header (b, "a", "1");
}

static void
c_body_too_long (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 2, 0);
    wb_str (b, "r1");
    wb_str (b, "");
    wb_u32 (b, 16u * 1024 * 1024 + 1);
    wb_mem (b, "{}", 2);
}

static void
c_body_huge (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 2, 0);
    wb_str (b, "r1");
    wb_str (b, "");
    wb_u32 (b, 0xffffffff);
}

static void
c_body_truncated (wire_bytes_t *b)
{
    wb_fixed (b, 'T', 1, 2, 0);
    wb_str (b, "r1");
    wb_str (b, "");
    wb_u32 (b, 10);
    wb_mem (b, "{}", 2);
}

static void
c_body_length_cut (wire_bytes_t *b)
{
    wb_valid (b);
    b->size -= 2 + 2;       //  the body and half its length
}

static void
c_trailing_byte (wire_bytes_t *b)
{
    wb_valid (b);
    wb_u8 (b, 0);
}

static void
c_two_messages (wire_bytes_t *b)
{
    wb_valid (b);
    wb_valid (b);
}

typedef struct {
    const char *name;
    const char *error;
    void (*build) (wire_bytes_t *b);
} wire_case_t;

static const wire_case_t wire_cases [] = {
    { "empty",              "too short",            c_empty },
    { "too-short",          "too short",            c_too_short },
    { "bad-magic",          "bad magic",            c_bad_magic },
    { "version-0",          "unknown version",      c_version_0 },
    { "version-2",          "unknown version",      c_version_2 },
    { "kind-0",             "bad kind",             c_kind_0 },
    { "kind-7",             "bad kind",             c_kind_7 },
    { "kind-255",           "bad kind",             c_kind_255 },
    { "count-17",           "too many headers",     c_count_17 },
    { "fixed-only",         "truncated",            c_fixed_only },
    { "rid-too-long",       "rid too long",         c_rid_too_long },
    { "rid-truncated",      "truncated",            c_rid_truncated },
    { "rid-space",          "bad rid",              c_rid_space },
    { "rid-nul",            "bad rid",              c_rid_nul },
    { "service-too-long",   "service too long",     c_service_too_long },
    { "service-del",        "bad service",          c_service_del },
    { "service-utf8",       "bad service",          c_service_high },
    { "no-service",         "truncated",            c_no_service },
    { "key-empty",          "empty header key",     c_key_empty },
    { "key-too-long",       "header key too long",  c_key_too_long },
    { "key-control",        "bad header key",       c_key_control },
    { "key-duplicate",      "duplicate header key", c_key_duplicate },
    { "value-too-long",     "header value too long", c_value_too_long },
    { "value-truncated",    "truncated",            c_value_truncated },
    { "value-length-cut",   "truncated",            c_value_length_cut },
    { "headers-missing",    "empty header key",     c_headers_missing },
    { "headers-short",      "truncated",            c_headers_short },
    { "body-too-long",      "body too long",        c_body_too_long },
    { "body-huge",          "body too long",        c_body_huge },
    { "body-truncated",     "truncated",            c_body_truncated },
    { "body-length-cut",    "truncated",            c_body_length_cut },
    { "trailing-byte",      "trailing bytes",       c_trailing_byte },
    { "two-messages",       "trailing bytes",       c_two_messages },
};

#define WIRE_CASES (sizeof (wire_cases) / sizeof (wire_cases [0]))

#endif

