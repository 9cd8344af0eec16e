/*  parse.c — the value and endpoint parsers of the map (see parse.h).

    Strict on purpose: no signs where none make sense, no spaces, no
    trailing junk, overflow refused rather than wrapped. A value the map
    accepts must mean exactly one thing, because the actors read it again
    with these same functions long after the loader said it was good.
    Reasons are static strings (why) so that callers can put them into their
    own messages; only a value checked against its key comes back as a
    whole message, "bad KEY 'VALUE': ...".
*/
#include "parse.h"
#include "slot.h"
#include <errno.h>
#include <limits.h>
#include <ctype.h>
#include <arpa/inet.h>

#define PARSE_IPC_MAX   107             //  sizeof sun_path - 1

//  --------------------------------------------------------------------------
//  Value parsers (shared with the actors through parse.h and map.h)

bool
tiers_has_prefix (const char *text, const char *prefix)
{
    return strncmp (text, prefix, strlen (prefix)) == 0;
}

//  A non-negative decimal number followed by a suffix; the suffix is
//  returned in *rest. Fails on overflow, no digits, signs or spaces.
int
tiers_parse_unsigned (const char *text, long long *value, const char **rest)
{
    if (!text || !isdigit ((unsigned char) *text))
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll (text, &end, 10);
    if (errno == ERANGE || n < 0)
        return -1;
    *value = n;
    *rest = end;
    return 0;
}

static int
s_scale (long long n, long long unit, long long *value)
{
    if (n > LLONG_MAX / unit)
        return -1;
    *value = n * unit;
    return 0;
}

int
tiers_parse_int (const char *text, long long *value)
{
    assert (value);
    if (!text)
        return -1;
    const char *digits = *text == '-'? text + 1: text;
    if (!isdigit ((unsigned char) *digits))
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll (text, &end, 10);
    if (errno == ERANGE || *end)
        return -1;
    *value = n;
    return 0;
}

int
tiers_parse_ms (const char *text, long long *ms)
{
    assert (ms);
    long long n;
    const char *unit;
    if (tiers_parse_unsigned (text, &n, &unit))
        return -1;
    if (*unit == 0 || streq (unit, "ms"))
        return s_scale (n, 1, ms);
    if (streq (unit, "s"))
        return s_scale (n, 1000, ms);
    if (streq (unit, "m"))
        return s_scale (n, 60 * 1000, ms);
    if (streq (unit, "h"))
        return s_scale (n, 3600 * 1000, ms);
    return -1;
}

int
tiers_parse_bytes (const char *text, long long *bytes)
{
    assert (bytes);
    long long n;
    const char *unit;
    if (tiers_parse_unsigned (text, &n, &unit))
        return -1;
    if (*unit == 0)
        return s_scale (n, 1, bytes);
    if (unit [1])
        return -1;
    switch (*unit) {
        case 'k': case 'K': return s_scale (n, 1LL << 10, bytes);
        case 'm': case 'M': return s_scale (n, 1LL << 20, bytes);
        case 'g': case 'G': return s_scale (n, 1LL << 30, bytes);
    }
    return -1;
}

bool
tiers_host_is_wildcard (const char *host)
{
    if (*host == 0 || streq (host, "*") || streq (host, "0.0.0.0"))
        return true;
    //  Any spelling of the IPv6 "any" address: ::, ::0, 0:0:...:0,
    //  and ::ffff:0.0.0.0
    struct in6_addr any;
    return inet_pton (AF_INET6, host, &any) == 1
        && (IN6_IS_ADDR_UNSPECIFIED (&any)
        || (IN6_IS_ADDR_V4MAPPED (&any) && any.s6_addr32 [3] == 0));
}

//  A host as written in an endpoint or listener (IPv6 without brackets).
static int
s_host_check (const char *host, bool v6, const char **why)
{
    if (v6) {
        unsigned char addr [16];
        if (inet_pton (AF_INET6, host, addr) != 1) {
            *why = "bad IPv6 address";
            return -1;
        }
        return 0;
    }
    if (*host == 0) {
        *why = "missing host";
        return -1;
    }
    if (strspn (host, "0123456789.") == strlen (host)) {
        struct in_addr addr;
        if (inet_pton (AF_INET, host, &addr) != 1) {
            *why = "bad IPv4 address (want four numbers 0-255)";
            return -1;
        }
        return 0;
    }
    //  A hostname: dot-separated labels of letters, digits and '-'.
    size_t length = strlen (host);
    if (length > 253) {
        *why = "hostname longer than 253 characters";
        return -1;
    }
    const char *label = host;
    while (true) {
        size_t size = strspn (label, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
        if (size == 0 || size > 63 || label [0] == '-' || label [size - 1] == '-'
        || (label [size] != '.' && label [size] != 0)) {
            *why = "bad hostname (letters, digits, '-' and '.')";
            return -1;
        }
        if (label [size] == 0)
            break;
        label += size + 1;
    }
    return 0;
}

static int
s_port_parse (const char *text, int min, int *port)
{
    long long n;
    const char *rest;
    if (tiers_parse_unsigned (text, &n, &rest) || *rest || n < min || n > 65535)
        return -1;
    *port = (int) n;
    return 0;
}

//  Splits "host:port" / "[v6]:port"; host may be empty or a wildcard. The
//  host is copied without brackets.
int
tiers_hostport_check (const char *text, char *host, size_t host_size, int *port,
                      int min_port, bool wildcard_ok, const char **why)
{
    const char *colon;
    const char *start = text;
    size_t length;
    bool v6 = false;
    if (*text == '[') {
        const char *close = strchr (text, ']');
        if (!close || close [1] != ':') {
            *why = "IPv6 host must be written [address]:port";
            return -1;
        }
        start = text + 1;
        length = close - start;
        colon = close + 1;
        v6 = true;
    }
    else {
        colon = strrchr (text, ':');
        if (!colon) {
            *why = "missing ':port'";
            return -1;
        }
        length = colon - text;
    }
    if (length >= host_size || length >= 256) {
        *why = "host too long";
        return -1;
    }
    char buffer [256];
    memcpy (buffer, start, length);
    buffer [length] = 0;
    if (s_port_parse (colon + 1, min_port, port)) {
        *why = min_port? "port must be a number from 1 to 65535"
                       : "port must be a number from 0 to 65535";
        return -1;
    }
    if (tiers_host_is_wildcard (buffer)) {
        if (!wildcard_ok) {
            *why = "bind a concrete address so peers can connect "
                   "(not *, 0.0.0.0 or ::)";
            return -1;
        }
    }
    else
    if (s_host_check (buffer, v6, why))
        return -1;
    memcpy (host, buffer, length + 1);
    return 0;
}

int
tiers_hostport_split (const char *text, char *host, size_t host_size, int *port)
{
    assert (host && port);
    const char *why;
    if (!text)
        return -1;
    return tiers_hostport_check (text, host, host_size, port, 0, true, &why);
}

int
tiers_endpoint_check (const char *endpoint, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    *why = NULL;
    if (!endpoint || !*endpoint) {
        *why = "empty endpoint";
        return -1;
    }
    if (strlen (endpoint) > 256) {
        *why = "longer than 256 characters";
        return -1;
    }
    if (tiers_has_prefix (endpoint, "inproc://")) {
        const char *name = endpoint + 9;
        if (*name == 0) {
            *why = "inproc needs a name: inproc://NAME";
            return -1;
        }
        if (strspn (name, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
            != strlen (name)) {
            *why = "inproc names use letters, digits, '_', '.' and '-'";
            return -1;
        }
        return 0;
    }
    if (tiers_has_prefix (endpoint, "tcp://")) {
        char host [256];
        int port;
        return tiers_hostport_check (endpoint + 6, host, sizeof host, &port,
                                 1, false, why);
    }
    if (tiers_has_prefix (endpoint, "ipc://")) {
        const char *path = endpoint + 6;
        if (*path == 0) {
            *why = "ipc needs a path: ipc://PATH";
            return -1;
        }
        if (streq (path, "*")) {
            *why = "ipc://* picks a random path; peers could not find it";
            return -1;
        }
        if (strlen (path) > PARSE_IPC_MAX) {
            *why = "ipc path longer than 107 bytes";
            return -1;
        }
        return 0;
    }
    *why = "expected inproc://NAME, tcp://HOST:PORT or ipc://PATH";
    return -1;
}


//  --------------------------------------------------------------------------
//  Values against their keys (kind.h)

static char *
s_range_text (const tiers_key_t *key, const char *unit)
{
    if (key->max == 0)
        return zsys_sprintf ("of at least %lld%s", key->min, unit);
    return zsys_sprintf ("from %lld%s to %lld%s", key->min, unit, key->max, unit);
}

static bool
s_in_range (const tiers_key_t *key, long long n)
{
    return n >= key->min && (key->max == 0 || n <= key->max);
}

static bool
s_enum_has (const char *choices, const char *word)
{
    size_t length = strlen (word);
    const char *choice = choices;
    while (choice) {
        const char *bar = strchr (choice, '|');
        size_t size = bar? (size_t) (bar - choice): strlen (choice);
        if (size == length && length && memcmp (choice, word, length) == 0)
            return true;
        choice = bar? bar + 1: NULL;
    }
    return false;
}

//  "0-511,768-1023": ranges ascending, not overlapping, below `slots`.
//  Returns NULL or a problem text to free.
static char *
s_slots_check (const char *name, const char *value, long long slots)
{
    char *why;
    if (tiers_slots_each (value, slots, NULL, NULL, &why) == 0)
        return NULL;
    char *text = zsys_sprintf ("bad %s '%s': %s", name, value, why);
    free (why);
    return text;
}

bool
tiers_pool_name_ok (const char *name, size_t max)
{
    size_t length = name ? strlen (name) : 0;
    if (length == 0 || length > max)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!isalnum ((unsigned char) name [i]) && !strchr ("_.:-", name [i]))
            return false;
    return true;
}

bool
tiers_name_ok (const char *name, size_t size)
{
    if (size == 0 || size > TIERS_NAME_MAX || !isalnum ((unsigned char) *name))
        return false;
    for (size_t i = 0; i < size; i++)
        if (!isalnum ((unsigned char) name [i]) && name [i] != '_' && name [i] != '-')
            return false;
    return true;
}

//  Checks a value against its key. Returns NULL or a problem text to free.
char *
tiers_value_check (const tiers_key_t *key, const char *value, long long slots)
{
    long long n;
    const char *why;
    char *range, *text = NULL;
    switch (key->type) {
        case TIERS_KEY_STRING:
            if (*value == 0)
                text = zsys_sprintf ("'%s' needs a non-empty value", key->name);
            else
            if (key->max > 0 && (long long) strlen (value) > key->max)
                text = zsys_sprintf ("bad %s '%s': at most %lld characters",
                                     key->name, value, key->max);
            break;
        case TIERS_KEY_NAME:
            if (!tiers_pool_name_ok (value, key->max ? (size_t) key->max : 64))
                text = zsys_sprintf ("bad %s '%s': expected 1 to %lld letters, digits, "
                                     "'_', '.', ':' or '-'", key->name, value,
                                     key->max ? key->max : 64);
            break;
        case TIERS_KEY_INT:
            if (tiers_parse_int (value, &n) || !s_in_range (key, n)) {
                range = s_range_text (key, "");
                text = zsys_sprintf ("bad %s '%s': expected an integer %s",
                                     key->name, value, range);
                free (range);
            }
            break;
        case TIERS_KEY_MS:
            if (tiers_parse_ms (value, &n) || !s_in_range (key, n)) {
                range = s_range_text (key, "ms");
                text = zsys_sprintf ("bad %s '%s': expected a duration like "
                                     "250ms, 2s or 1m, %s",
                                     key->name, value, range);
                free (range);
            }
            break;
        case TIERS_KEY_BYTES:
            if (tiers_parse_bytes (value, &n) || !s_in_range (key, n)) {
                range = s_range_text (key, " bytes");
                text = zsys_sprintf ("bad %s '%s': expected a size like "
                                     "512, 64k, 16m or 1g, %s",
                                     key->name, value, range);
                free (range);
            }
            break;
        case TIERS_KEY_ENDPOINT:
            if (tiers_endpoint_check (value, &why))
                text = zsys_sprintf ("malformed endpoint '%s': %s", value, why);
            break;
        case TIERS_KEY_HOSTPORT: {
            char host [256];
            int port;
            if (tiers_hostport_check (value, host, sizeof host, &port, 0, true, &why))
                text = zsys_sprintf ("bad %s '%s': %s (expected host:port "
                                     "or [v6]:port)", key->name, value, why);
            break;
        }
        case TIERS_KEY_ENUM:
            if (!s_enum_has (key->choices, value))
                text = zsys_sprintf ("bad %s '%s': expected %s",
                                     key->name, value, key->choices);
            break;
        case TIERS_KEY_SLOTS:
            text = s_slots_check (key->name, value, slots);
            break;
    }
    return text;
}

const tiers_key_t *
tiers_key_find (const tiers_key_t *keys, const char *name)
{
    for (size_t i = 0; keys && keys [i].name; i++)
        if (streq (keys [i].name, name))
            return &keys [i];
    return NULL;
}

//  Well-formed UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool
tiers_utf8_valid (const uint8_t *data, size_t size)
{
    size_t i = 0;
    while (i < size) {
        uint8_t byte = data [i];
        if (byte < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t point;
        if (byte >= 0xc2 && byte <= 0xdf)      { more = 1; point = byte & 0x1f; }
        else if (byte >= 0xe0 && byte <= 0xef) { more = 2; point = byte & 0x0f; }
        else if (byte >= 0xf0 && byte <= 0xf4) { more = 3; point = byte & 0x07; }
        else
            return false;
        if (size - i <= more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((data [i + k] & 0xc0) != 0x80)
                return false;
            point = (point << 6) | (data [i + k] & 0x3f);
        }
        if ((more == 2 && point < 0x800) || (more == 3 && point < 0x10000)
        ||  (point >= 0xd800 && point <= 0xdfff) || point > 0x10ffff)
            return false;
        i += more + 1;
    }
    return true;
}
