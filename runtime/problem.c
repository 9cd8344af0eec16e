/*  problem.c — problem+json bodies (see problem.h).

    jansson writes the JSON, so escaping is its job, not ours. It refuses a
    string that is not UTF-8; a detail can quote a service's error header,
    which is any bytes, so such text is repaired first instead of losing
    the whole body.
*/
#include "problem.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int status;
    const char *title;
} title_t;

//  RFC 9110 section 15, and the registered codes beyond it (RFC 6585,
//  RFC 7725, RFC 8470, WebDAV RFC 4918/5842, RFC 2774's 510).
static const title_t s_titles [] = {
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 402, "Payment Required" },
    { 403, "Forbidden" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 406, "Not Acceptable" },
    { 407, "Proxy Authentication Required" },
    { 408, "Request Timeout" },
    { 409, "Conflict" },
    { 410, "Gone" },
    { 411, "Length Required" },
    { 412, "Precondition Failed" },
    { 413, "Content Too Large" },
    { 414, "URI Too Long" },
    { 415, "Unsupported Media Type" },
    { 416, "Range Not Satisfiable" },
    { 417, "Expectation Failed" },
    { 421, "Misdirected Request" },
    { 422, "Unprocessable Content" },
    { 423, "Locked" },
    { 424, "Failed Dependency" },
    { 425, "Too Early" },
    { 426, "Upgrade Required" },
    { 428, "Precondition Required" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 451, "Unavailable For Legal Reasons" },
    { 500, "Internal Server Error" },
    { 501, "Not Implemented" },
    { 502, "Bad Gateway" },
    { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
    { 505, "HTTP Version Not Supported" },
    { 506, "Variant Also Negotiates" },
    { 507, "Insufficient Storage" },
    { 508, "Loop Detected" },
    { 510, "Not Extended" },
    { 511, "Network Authentication Required" },
};

const char *
tiers_problem_title (int status)
{
    for (size_t i = 0; i < sizeof s_titles / sizeof s_titles [0]; i++)
        if (s_titles [i].status == status)
            return s_titles [i].title;
    return "Error";
}

//  Length of the valid UTF-8 sequence at `at` (RFC 3629: no overlong
//  forms, no surrogates, nothing past U+10FFFF), or 0.
static size_t
s_utf8_length (const unsigned char *at)
{
    unsigned char c = at [0];
    if (c < 0x80)
        return 1;
    size_t length;
    unsigned char low = 0x80, high = 0xbf;      //  bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf)
        length = 2;
    else
    if (c >= 0xe0 && c <= 0xef) {
        length = 3;
        if (c == 0xe0)
            low = 0xa0;                         //  overlong
        if (c == 0xed)
            high = 0x9f;                        //  surrogates
    }
    else
    if (c >= 0xf0 && c <= 0xf4) {
        length = 4;
        if (c == 0xf0)
            low = 0x90;                         //  overlong
        if (c == 0xf4)
            high = 0x8f;                        //  past U+10FFFF
    }
    else
        return 0;
    if (at [1] < low || at [1] > high)
        return 0;                               //  (also stops at the NUL)
    for (size_t i = 2; i < length; i++)
        if (at [i] < 0x80 || at [i] > 0xbf)
            return 0;
    return length;
}

//  A JSON string of `text`, bad bytes replaced by U+FFFD; NULL when out
//  of memory.
static json_t *
s_string (const char *text)
{
    json_t *string = json_string (text);
    if (string)
        return string;
    size_t size = strlen (text);
    char *clean = (char *) malloc (size * 3 + 1);
    if (!clean)
        return NULL;
    char *out = clean;
    for (const unsigned char *at = (const unsigned char *) text; *at; ) {
        size_t length = s_utf8_length (at);
        if (length) {
            memcpy (out, at, length);
            out += length;
            at += length;
        }
        else {
            memcpy (out, "\xef\xbf\xbd", 3);
            out += 3;
            at++;
        }
    }
    *out = 0;
    string = json_string (clean);
    free (clean);
    return string;
}

char *
tiers_problem_json (int status, const char *detail, const char *request_id)
{
    return tiers_problem_json_typed (status, NULL, NULL, detail, request_id);
}

char *
tiers_problem_json_typed (int status, const char *type, const char *title,
                          const char *detail, const char *request_id)
{
    json_t *body = json_object ();
    if (!body)
        return NULL;
    bool good = json_object_set_new (body, "type",
                                     json_string (type ? type : "about:blank")) == 0
             && json_object_set_new (body, "title",
                                     s_string (title ? title : tiers_problem_title (status))) == 0
             && json_object_set_new (body, "status", json_integer (status)) == 0
             && (!detail
                 || json_object_set_new (body, "detail", s_string (detail)) == 0)
             && (!request_id
                 || json_object_set_new (body, "request_id", s_string (request_id)) == 0);
    char *text = good ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    return text;
}
