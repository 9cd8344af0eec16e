/*  map.c — the map loader: ZPL text in, a validated placement out.

    The map is the only thing that decides where actors run, so a mistake in
    it must be caught before anything starts and reported where it is:
    FILE:LINE: message, every problem at once (up to 50). That is why the
    loader reads ZPL itself instead of using zconfig, which forgets lines
    and prints its own errors to stdout.

    The one idea: loading is three passes over a flat list of items. The
    first turns lines into items (name, value, depth, line) and reports
    syntax; the second walks the tree (cluster, nodes, actor entries and
    their settings) and checks each value against the kind's key table; the
    third looks across the whole map: duplicate binds, port clashes, and the
    resolution of every `connect` to an endpoint that something in the map
    binds and that the connecting node can reach. Nothing is returned unless
    all three passes found no problem. The grammar is in tiers-map(5).
*/
#include "map.h"
#include <errno.h>
#include <limits.h>
#include <ctype.h>
#include <stdarg.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAP_MAX_BYTES   (1024 * 1024)   //  larger files are refused
#define MAP_MAX_ENTRIES 1024            //  actor entries (each up to 256 instances)
#define MAP_MAX_LINE    1024            //  bytes per line, without newline
#define MAP_MAX_ERRORS  50              //  problems reported at most
#define MAP_NAME_MAX    32              //  node and actor names
#define MAP_INSTANCES   256             //  `instances` upper bound
#define MAP_SLOTS       1024            //  default cluster slot count
#define MAP_IPC_MAX     107             //  sizeof sun_path - 1

//  The cluster block: keys, types and defaults. tiers_map_cluster returns
//  the default when the map does not set a key, so callers never guess.
static const tiers_key_t s_cluster_keys [] = {
    { "name",      TIERS_KEY_STRING, false, 0, 0, NULL },
    { "data",      TIERS_KEY_STRING, false, 0, 0, NULL },
    { "log",       TIERS_KEY_ENUM,   false, 0, 0, "error|warn|info|debug" },
    { "sync",      TIERS_KEY_ENUM,   false, 0, 0, "full|normal" },
    { "slots",     TIERS_KEY_INT,    false, 1, 65536, NULL },
    { "heartbeat", TIERS_KEY_MS,     false, 10, 60000, NULL },
    { "spin_us",   TIERS_KEY_INT,    false, 0, 100000, NULL },
    { NULL, 0, false, 0, 0, NULL }
};
static const char *s_cluster_defaults [] = {
    "tiers", "./tiers-data", "info", "full", "1024", "1s", "200"
};
#define CLUSTER_KEYS (sizeof (s_cluster_defaults) / sizeof (s_cluster_defaults [0]))

struct _tiers_map_t {
    char *file;
    char *cluster [CLUSTER_KEYS];       //  map values, NULL when unset
    char **nodes;
    size_t node_count;
    tiers_entry_t **entries;
    size_t entry_count;
    char listener_error [160];          //  why set_listener refused
};


//  --------------------------------------------------------------------------
//  Problems: collected with their line, reported sorted by line

typedef struct {
    int line;
    int seq;                //  keeps the order of problems on one line
    char *text;
} s_problem_t;

typedef struct {
    const char *file;
    s_problem_t list [MAP_MAX_ERRORS];
    size_t count;
    size_t dropped;
} s_problems_t;

static void
s_problem (s_problems_t *self, int line, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_problem (s_problems_t *self, int line, const char *format, ...)
{
    if (self->count == MAP_MAX_ERRORS) {
        self->dropped++;
        return;
    }
    va_list args;
    va_start (args, format);
    char *raw = zsys_vprintf (format, args);
    va_end (args);
    assert (raw);
    //  Quoted map text may hold any byte: control and non-ASCII bytes are
    //  shown as \xNN (an invisible BOM, raw binary) so the message stays
    //  one readable line.
    char *text = (char *) malloc (4 * strlen (raw) + 1);
    assert (text);
    char *out = text;
    for (const unsigned char *c = (const unsigned char *) raw; *c; c++)
        if (*c < 0x20 || *c >= 0x7f)
            out += sprintf (out, "\\x%02x", *c);
        else
            *out++ = (char) *c;
    *out = 0;
    zstr_free (&raw);
    s_problem_t *problem = &self->list [self->count];
    problem->line = line;
    problem->seq = (int) self->count;
    problem->text = text;
    self->count++;
}

static int
s_problem_compare (const void *a, const void *b)
{
    const s_problem_t *pa = a, *pb = b;
    if (pa->line != pb->line)
        return pa->line < pb->line? -1: 1;
    return pa->seq < pb->seq? -1: pa->seq > pb->seq;
}

//  Frees the problems; if errors is not NULL, hands them over as one string.
static void
s_problems_report (s_problems_t *self, char **errors)
{
    qsort (self->list, self->count, sizeof (s_problem_t), s_problem_compare);
    size_t size = 1;
    for (size_t i = 0; i < self->count; i++)
        size += strlen (self->file) + strlen (self->list [i].text) + 16;
    if (self->dropped)
        size += strlen (self->file) + 80;
    char *text = (char *) malloc (size);
    assert (text);
    size_t used = 0;
    text [0] = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_problem_t *problem = &self->list [i];
        if (problem->line > 0)
            used += snprintf (text + used, size - used, "%s:%d: %s\n",
                              self->file, problem->line, problem->text);
        else
            used += snprintf (text + used, size - used, "%s: %s\n",
                              self->file, problem->text);
        free (problem->text);
    }
    if (self->dropped)
        snprintf (text + used, size - used,
                  "%s: %zu more problems not shown\n", self->file, self->dropped);
    self->count = 0;
    if (errors)
        *errors = text;
    else
        free (text);
}


//  --------------------------------------------------------------------------
//  Value parsers (shared with the actors through map.h)

static bool
s_prefix (const char *text, const char *prefix)
{
    return strncmp (text, prefix, strlen (prefix)) == 0;
}

//  A non-negative decimal number followed by a suffix; the suffix is
//  returned in *rest. Fails on overflow, no digits, signs or spaces.
static int
s_parse_unsigned (const char *text, long long *value, const char **rest)
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
    if (s_parse_unsigned (text, &n, &unit))
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
    if (s_parse_unsigned (text, &n, &unit))
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

static bool
s_is_wildcard (const char *host)
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
    if (s_parse_unsigned (text, &n, &rest) || *rest || n < min || n > 65535)
        return -1;
    *port = (int) n;
    return 0;
}

//  Splits "host:port" / "[v6]:port"; host may be empty or a wildcard. The
//  host is copied without brackets.
static int
s_hostport_split (const char *text, char *host, size_t host_size, int *port,
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
    if (s_is_wildcard (buffer)) {
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
    return s_hostport_split (text, host, host_size, port, 0, true, &why);
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
    if (s_prefix (endpoint, "inproc://")) {
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
    if (s_prefix (endpoint, "tcp://")) {
        char host [256];
        int port;
        return s_hostport_split (endpoint + 6, host, sizeof host, &port,
                                 1, false, why);
    }
    if (s_prefix (endpoint, "ipc://")) {
        const char *path = endpoint + 6;
        if (*path == 0) {
            *why = "ipc needs a path: ipc://PATH";
            return -1;
        }
        if (streq (path, "*")) {
            *why = "ipc://* picks a random path; peers could not find it";
            return -1;
        }
        if (strlen (path) > MAP_IPC_MAX) {
            *why = "ipc path longer than 107 bytes";
            return -1;
        }
        return 0;
    }
    *why = "expected inproc://NAME, tcp://HOST:PORT or ipc://PATH";
    return -1;
}

//  --------------------------------------------------------------------------
//  Pass 1: lines to items

typedef struct {
    int line;
    int depth;
    char *name;
    char *value;            //  NULL when the line had no '='
    int first_child;        //  item index or -1
    int next;               //  next sibling or -1
} s_item_t;

static bool
s_name_char (int c)
{
    return isalnum (c) || (c && strchr ("_$@./&+-", c));
}

//  Skips spaces; a tab outside quotes and comments is refused.
static int
s_skip_spaces (s_problems_t *problems, int lineno, const char *line,
               size_t length, size_t *i)
{
    while (*i < length && (line [*i] == ' ' || line [*i] == '\t')) {
        if (line [*i] == '\t') {
            s_problem (problems, lineno, "tab character; use spaces");
            return -1;
        }
        (*i)++;
    }
    return 0;
}

//  Parses one line into item (name/value malloc'ed). Returns 1 for an
//  item, 0 for a blank or comment line, -1 after reporting a problem.
static int
s_parse_line (s_problems_t *problems, int lineno, const char *line,
              size_t length, s_item_t *item)
{
    if (length > MAP_MAX_LINE) {
        s_problem (problems, lineno, "line longer than %d bytes", MAP_MAX_LINE);
        return -1;
    }
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char) line [i];
        if (c == 0) {
            s_problem (problems, lineno, "NUL byte in line");
            return -1;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            s_problem (problems, lineno, "control character 0x%02x in line", c);
            return -1;
        }
    }
    size_t i = 0;
    bool tab = false;
    while (i < length && (line [i] == ' ' || line [i] == '\t'))
        tab |= line [i++] == '\t';
    if (i == length || line [i] == '#')
        return 0;
    if (tab) {
        s_problem (problems, lineno,
                   "tab in indentation; indent with 4 spaces per level");
        return -1;
    }
    if (i % 4) {
        s_problem (problems, lineno,
                   "indentation of %zu spaces is not a multiple of 4", i);
        return -1;
    }
    item->depth = (int) (i / 4);
    size_t start = i;
    while (i < length && line [i] != ' ' && line [i] != '\t'
        && line [i] != '=' && line [i] != '#')
        i++;
    if (i == start) {
        s_problem (problems, lineno, "expected a name before '='");
        return -1;
    }
    int name_length = (int) (i - start);
    const char *name = line + start;
    for (size_t j = start; j < i; j++)
        if (!s_name_char ((unsigned char) line [j])) {
            s_problem (problems, lineno,
                       "bad character '%c' in name '%.*s' (names use letters, "
                       "digits and _$@./&+-)", line [j], name_length, name);
            return -1;
        }
    if (s_skip_spaces (problems, lineno, line, length, &i))
        return -1;
    const char *value = NULL;
    size_t value_length = 0;
    if (i < length && line [i] != '#') {
        if (line [i] != '=') {
            s_problem (problems, lineno,
                       "expected '=' after '%.*s' (write name = value)",
                       name_length, name);
            return -1;
        }
        i++;
        if (s_skip_spaces (problems, lineno, line, length, &i))
            return -1;
        if (i == length || line [i] == '#') {
            s_problem (problems, lineno,
                       "'%.*s =' has no value (write %.*s = VALUE)",
                       name_length, name, name_length, name);
            return -1;
        }
        if (line [i] == '"' || line [i] == '\'') {
            const char *close = memchr (line + i + 1, line [i], length - i - 1);
            if (!close) {
                s_problem (problems, lineno,
                           "unterminated quote in the value of '%.*s'",
                           name_length, name);
                return -1;
            }
            value = line + i + 1;
            value_length = close - value;
            i = close - line + 1;
        }
        else {
            value = line + i;
            while (i < length && line [i] != ' ' && line [i] != '\t'
                && line [i] != '#')
                i++;
            value_length = line + i - value;
        }
        if (s_skip_spaces (problems, lineno, line, length, &i))
            return -1;
        if (i < length && line [i] != '#') {
            s_problem (problems, lineno,
                       "unexpected text after the value of '%.*s' "
                       "(quote values that contain spaces)",
                       name_length, name);
            return -1;
        }
    }
    item->line = lineno;
    item->name = strndup (name, name_length);
    item->value = value? strndup (value, value_length): NULL;
    item->first_child = item->next = -1;
    assert (item->name && (!value || item->value));
    return 1;
}

//  Splits text into items linked as a tree. A line with a problem is
//  dropped together with everything indented below it, so one mistake
//  is reported once and not again for each child.
static s_item_t *
s_parse_items (s_problems_t *problems, const char *text, size_t size,
               size_t *count_p)
{
    size_t count = 0, limit = 64;
    s_item_t *items = (s_item_t *) calloc (limit, sizeof (s_item_t));
    int last [MAP_MAX_LINE / 4 + 2];    //  last item at each depth
    int last_depth = -1;
    bool skipping = false;
    size_t skip_indent = 0;
    int lineno = 0;
    const char *line = text;
    const char *end = text + size;
    assert (items);
    while (line < end) {
        lineno++;
        const char *newline = memchr (line, '\n', end - line);
        size_t length = (newline? newline: end) - line;
        const char *next = newline? newline + 1: end;
        if (length && line [length - 1] == '\r')
            length--;               //  tolerate CRLF files
        size_t indent = strspn (line, " \t");
        if (indent > length)
            indent = length;
        bool blank = indent == length || line [indent] == '#';
        if (skipping && !blank && indent > skip_indent) {
            line = next;
            continue;
        }
        if (count == limit) {
            limit *= 2;
            items = (s_item_t *) realloc (items, limit * sizeof (s_item_t));
            assert (items);
        }
        s_item_t *item = &items [count];
        int rc = s_parse_line (problems, lineno, line, length, item);
        if (rc == 1 && item->depth > last_depth + 1) {
            s_problem (problems, lineno, last_depth < 0
                       ? "the first item must not be indented"
                       : "indented more than one level (4 spaces) "
                         "below the item above");
            free (item->name);
            free (item->value);
            rc = -1;
        }
        if (rc == -1) {
            skipping = true;
            skip_indent = indent;
        }
        else
        if (rc == 1) {
            skipping = false;
            int index = (int) count++;
            if (item->depth > 0) {
                s_item_t *parent = &items [last [item->depth - 1]];
                if (item->depth > last_depth || parent->first_child < 0)
                    parent->first_child = index;
                else
                    items [last [item->depth]].next = index;
            }
            else
            if (last_depth >= 0)
                items [last [0]].next = index;
            last [item->depth] = index;
            last_depth = item->depth;
        }
        line = next;
    }
    *count_p = count;
    return items;
}


//  --------------------------------------------------------------------------
//  Pass 2: the tree

//  An entry under construction, with what pass 3 needs to know.
typedef struct {
    tiers_entry_t *entry;
    const char *connect;    //  as written, or NULL
    int connect_line;
    int bind_line;
    const char *listener;   //  host:port as written, or NULL
    int listener_line;
} s_draft_t;

typedef struct {
    tiers_map_t *map;
    s_problems_t *problems;
    s_item_t *items;
    size_t item_count;
    long long slots;        //  the cluster's slot count
    int cluster_line;
    s_draft_t *drafts;
    size_t draft_count;
    int *node_lines;
} s_loader_t;

static bool
s_good_name (const char *name)
{
    size_t length = strlen (name);
    if (length == 0 || length > MAP_NAME_MAX || !isalnum ((unsigned char) *name))
        return false;
    for (size_t i = 0; i < length; i++)
        if (!isalnum ((unsigned char) name [i]) && name [i] != '_' && name [i] != '-')
            return false;
    return true;
}

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
    const char *cursor = value;
    long long previous = -1;
    while (true) {
        long long low, high;
        const char *rest;
        if (s_parse_unsigned (cursor, &low, &rest))
            break;
        high = low;
        if (*rest == '-' && s_parse_unsigned (rest + 1, &high, &rest))
            break;
        if (high < low || low <= previous)
            return zsys_sprintf ("bad %s '%s': ranges must ascend and not "
                                 "overlap", name, value);
        if (high >= slots)
            return zsys_sprintf ("bad %s '%s': slot %lld is beyond the "
                                 "cluster's %lld slots (0-%lld)",
                                 name, value, high, slots, slots - 1);
        previous = high;
        if (*rest == 0)
            return NULL;
        if (*rest != ',')
            break;
        cursor = rest + 1;
    }
    return zsys_sprintf ("bad %s '%s': expected slot ranges like 0-511,768-1023",
                         name, value);
}

//  Checks a value against its key. Returns NULL or a problem text to free.
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

static char *
s_value_check (const tiers_key_t *key, const char *value, long long slots)
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
            if (s_hostport_split (value, host, sizeof host, &port, 0, true, &why))
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

static const tiers_key_t *
s_key_find (const tiers_key_t *keys, const char *name)
{
    for (size_t i = 0; keys && keys [i].name; i++)
        if (streq (keys [i].name, name))
            return &keys [i];
    return NULL;
}

//  A setting must have a value and no children. Returns false if not.
static bool
s_setting_ok (s_loader_t *self, s_item_t *item)
{
    bool good = true;
    if (!item->value) {
        s_problem (self->problems, item->line,
                   "'%s' needs a value: %s = VALUE", item->name, item->name);
        good = false;
    }
    for (int child = item->first_child; child >= 0;
         child = self->items [child].next)
        s_problem (self->problems, self->items [child].line,
                   "'%s' is indented under the setting '%s', which takes "
                   "no children", self->items [child].name, item->name);
    return good;
}

static void
s_load_cluster (s_loader_t *self, s_item_t *cluster)
{
    int first [CLUSTER_KEYS] = { 0 };
    if (cluster->value)
        s_problem (self->problems, cluster->line,
                   "cluster takes no value (set name = ... inside it)");
    for (int index = cluster->first_child; index >= 0;
         index = self->items [index].next) {
        s_item_t *item = &self->items [index];
        const tiers_key_t *key = s_key_find (s_cluster_keys, item->name);
        if (!key) {
            s_problem (self->problems, item->line,
                       "unknown cluster key '%s' (expected name, data, log, "
                       "sync, slots, heartbeat or spin_us)", item->name);
            continue;
        }
        size_t slot = key - s_cluster_keys;
        if (first [slot]) {
            s_problem (self->problems, item->line,
                       "duplicate key '%s' (first at line %d)",
                       item->name, first [slot]);
            continue;
        }
        first [slot] = item->line;
        if (!s_setting_ok (self, item))
            continue;
        char *problem = s_value_check (key, item->value, MAP_SLOTS);
        if (problem) {
            s_problem (self->problems, item->line, "%s", problem);
            free (problem);
            continue;
        }
        self->map->cluster [slot] = strdup (item->value);
        if (streq (key->name, "slots"))
            tiers_parse_int (item->value, &self->slots);
    }
}

static void
s_entry_destroy (tiers_entry_t **self_p)
{
    assert (self_p);
    tiers_entry_t *self = *self_p;
    if (self) {
        free (self->name);
        free (self->node);
        free (self->bind);
        free (self->connect);
        for (size_t i = 0; i < self->setting_count; i++) {
            free (self->keys [i]);
            free (self->values [i]);
        }
        free (self->keys);
        free (self->values);
        free (self->lines);
        free (self);
        *self_p = NULL;
    }
}

static s_draft_t *
s_draft_find (s_loader_t *self, const char *name)
{
    for (size_t i = 0; i < self->draft_count; i++)
        if (streq (self->drafts [i].entry->name, name))
            return &self->drafts [i];
    return NULL;
}

static char *
s_known_kinds (void)
{
    char *list = strdup ("");
    const tiers_kind_t *kind;
    for (size_t i = 0; (kind = tiers_kind_at (i)); i++) {
        char *longer = zsys_sprintf ("%s%s%s", list, i? ", ": "", kind->name);
        free (list);
        list = longer;
    }
    return list;
}

//  "balancer" or "shard 's0'": how messages name an entry.
static char *
s_entry_label (const tiers_entry_t *entry)
{
    if (streq (entry->name, entry->kind->name))
        return strdup (entry->name);
    return zsys_sprintf ("%s '%s'", entry->kind->name, entry->name);
}

static void
s_load_entry (s_loader_t *self, s_item_t *item, const char *node)
{
    const tiers_kind_t *kind = tiers_kind_find (item->name);
    if (!kind) {
        char *known = s_known_kinds ();
        s_problem (self->problems, item->line,
                   "unknown actor kind '%s' (known: %s)", item->name, known);
        free (known);
        return;
    }
    const char *name = item->value? item->value: item->name;
    if (!s_good_name (name)) {
        s_problem (self->problems, item->line,
                   "bad actor name '%s' (up to %d letters, digits, '_' or '-', "
                   "starting with a letter or digit)", name, MAP_NAME_MAX);
        return;
    }
    if (self->draft_count >= MAP_MAX_ENTRIES) {
        //  The checks across the map compare entries pairwise: bounded.
        s_problem (self->problems, item->line,
                   "more than %d actors in one map", MAP_MAX_ENTRIES);
        return;
    }
    s_draft_t *twin = s_draft_find (self, name);
    if (twin) {
        s_problem (self->problems, item->line,
                   "duplicate actor name '%s' (first at line %d)",
                   name, twin->entry->line);
        return;
    }
    tiers_entry_t *entry = (tiers_entry_t *) zmalloc (sizeof (tiers_entry_t));
    entry->kind = kind;
    entry->name = strdup (name);
    entry->node = strdup (node);
    entry->line = item->line;
    entry->instances = 1;
    size_t children = 0;
    for (int index = item->first_child; index >= 0; index = self->items [index].next)
        children++;
    entry->keys = (char **) calloc (children + 1, sizeof (char *));
    entry->values = (char **) calloc (children + 1, sizeof (char *));
    entry->lines = (int *) calloc (children + 1, sizeof (int));
    assert (entry->name && entry->node && entry->keys && entry->values
            && entry->lines);

    self->drafts = (s_draft_t *) realloc (self->drafts,
                   (self->draft_count + 1) * sizeof (s_draft_t));
    assert (self->drafts);
    s_draft_t *draft = &self->drafts [self->draft_count++];
    memset (draft, 0, sizeof *draft);
    draft->entry = entry;
    self->map->entries = (tiers_entry_t **) realloc (self->map->entries,
                         (self->map->entry_count + 1) * sizeof (tiers_entry_t *));
    assert (self->map->entries);
    self->map->entries [self->map->entry_count++] = entry;

    char *label = s_entry_label (entry);
    int instances_line = 0;
    for (int index = item->first_child; index >= 0; index = self->items [index].next) {
        s_item_t *setting = &self->items [index];
        const char *key = setting->name;
        int first = 0;
        if (streq (key, "bind"))
            first = draft->bind_line;
        else
        if (streq (key, "connect"))
            first = draft->connect_line;
        else
        if (streq (key, "instances"))
            first = instances_line;
        else
            for (size_t i = 0; i < entry->setting_count && !first; i++)
                if (streq (entry->keys [i], key))
                    first = entry->lines [i];
        if (first) {
            s_problem (self->problems, setting->line,
                       "duplicate key '%s' (first at line %d)", key, first);
            continue;
        }
        const tiers_key_t *spec = s_key_find (kind->keys, key);
        bool common = streq (key, "bind") || streq (key, "connect")
                   || streq (key, "instances");
        if (!spec && !common) {
            s_problem (self->problems, setting->line,
                       "unknown key '%s' for %s", key, kind->name);
            continue;
        }
        //  Remember the line before checking, so a bad value is not also
        //  reported as missing.
        if (streq (key, "bind"))
            draft->bind_line = setting->line;
        else
        if (streq (key, "connect"))
            draft->connect_line = setting->line;
        else
        if (streq (key, "instances"))
            instances_line = setting->line;
        else {
            entry->keys [entry->setting_count] = strdup (key);
            entry->lines [entry->setting_count] = setting->line;
            entry->setting_count++;
        }
        if (!s_setting_ok (self, setting))
            continue;
        const char *value = setting->value;
        const char *why;
        if (streq (key, "bind")) {
            if (!kind->bind)
                s_problem (self->problems, setting->line,
                           "%s does not bind; it connects", kind->name);
            else
            if (tiers_endpoint_check (value, &why))
                s_problem (self->problems, setting->line,
                           "malformed endpoint '%s': %s", value, why);
            else
                entry->bind = strdup (value);
        }
        else
        if (streq (key, "connect")) {
            if (strstr (value, "://") && tiers_endpoint_check (value, &why))
                s_problem (self->problems, setting->line,
                           "malformed endpoint '%s': %s", value, why);
            else
            if (!strstr (value, "://") && !s_good_name (value))
                s_problem (self->problems, setting->line,
                           "bad connect '%s': expected an actor name or an "
                           "endpoint", value);
            else
                draft->connect = value;
        }
        else
        if (streq (key, "instances")) {
            long long n;
            if (!kind->multi)
                s_problem (self->problems, setting->line,
                           "%s cannot have instances", kind->name);
            else
            if (tiers_parse_int (value, &n) || n < 1 || n > MAP_INSTANCES)
                s_problem (self->problems, setting->line,
                           "bad instances '%s': expected an integer from 1 "
                           "to %d", value, MAP_INSTANCES);
            else
                entry->instances = (int) n;
        }
        else {
            char *problem = s_value_check (spec, value, self->slots);
            if (problem) {
                s_problem (self->problems, setting->line, "%s", problem);
                free (problem);
            }
            entry->values [entry->setting_count - 1] = strdup (value);
            if (!problem && kind->listener && streq (key, kind->listener)) {
                draft->listener = value;
                draft->listener_line = setting->line;
            }
        }
    }
    if (kind->bind && !draft->bind_line)
        s_problem (self->problems, item->line, "%s needs 'bind'", label);
    for (size_t i = 0; kind->keys && kind->keys [i].name; i++) {
        if (!kind->keys [i].required)
            continue;
        bool found = false;
        for (size_t j = 0; j < entry->setting_count && !found; j++)
            found = streq (entry->keys [j], kind->keys [i].name);
        if (!found)
            s_problem (self->problems, item->line, "%s needs '%s'",
                       label, kind->keys [i].name);
    }
    free (label);
}

static void
s_load_node (s_loader_t *self, s_item_t *item)
{
    tiers_map_t *map = self->map;
    if (!item->value || !*item->value) {
        s_problem (self->problems, item->line, "node needs a name: node = NAME");
        return;
    }
    if (!s_good_name (item->value)) {
        s_problem (self->problems, item->line,
                   "bad node name '%s' (up to %d letters, digits, '_' or '-', "
                   "starting with a letter or digit)", item->value, MAP_NAME_MAX);
        return;
    }
    if (map->node_count >= MAP_MAX_ENTRIES) {
        //  Every node needs an actor: more nodes than actors cannot load,
        //  and the duplicate check below is pairwise.
        s_problem (self->problems, item->line,
                   "more than %d nodes in one map", MAP_MAX_ENTRIES);
        return;
    }
    for (size_t i = 0; i < map->node_count; i++)
        if (streq (map->nodes [i], item->value)) {
            s_problem (self->problems, item->line,
                       "duplicate node name '%s' (first at line %d)",
                       item->value, self->node_lines [i]);
            return;
        }
    map->nodes = (char **) realloc (map->nodes,
                                    (map->node_count + 1) * sizeof (char *));
    self->node_lines = (int *) realloc (self->node_lines,
                                        (map->node_count + 1) * sizeof (int));
    assert (map->nodes && self->node_lines);
    map->nodes [map->node_count] = strdup (item->value);
    self->node_lines [map->node_count] = item->line;
    map->node_count++;

    if (item->first_child < 0)
        s_problem (self->problems, item->line,
                   "node '%s' places no actors", item->value);
    for (int index = item->first_child; index >= 0; index = self->items [index].next)
        s_load_entry (self, &self->items [index], item->value);
}


//  --------------------------------------------------------------------------
//  Pass 3: across the map

//  Where something listens on a TCP port.
typedef struct {
    char host [256];
    int port;
    int line;
} s_port_t;

static bool
s_ports_clash (const s_port_t *a, const s_port_t *b)
{
    return a->port == b->port
        && (s_is_wildcard (a->host) || s_is_wildcard (b->host)
         || strcasecmp (a->host, b->host) == 0);
}

static void
s_check_binds (s_loader_t *self)
{
    s_port_t *ports = (s_port_t *) calloc (self->draft_count * 2 + 1,
                                           sizeof (s_port_t));
    assert (ports);
    size_t port_count = 0;
    const char *why;
    for (size_t i = 0; i < self->draft_count; i++) {
        s_draft_t *draft = &self->drafts [i];
        tiers_entry_t *entry = draft->entry;
        s_port_t port;
        if (entry->bind) {
            bool duplicate = false;
            for (size_t j = 0; j < i && !duplicate; j++)
                if (self->drafts [j].entry->bind
                &&  streq (self->drafts [j].entry->bind, entry->bind)) {
                    s_problem (self->problems, draft->bind_line,
                               "endpoint '%s' is already bound at line %d",
                               entry->bind, self->drafts [j].bind_line);
                    duplicate = true;
                }
            if (!duplicate && s_prefix (entry->bind, "tcp://")
            &&  s_hostport_split (entry->bind + 6, port.host, sizeof port.host,
                                  &port.port, 1, false, &why) == 0) {
                port.line = draft->bind_line;
                ports [port_count++] = port;
            }
        }
        if (draft->listener
        &&  s_hostport_split (draft->listener, port.host, sizeof port.host,
                              &port.port, 0, true, &why) == 0
        &&  port.port != 0) {
            port.line = draft->listener_line;
            ports [port_count++] = port;
        }
    }
    //  Report each clash once, at the later line.
    for (size_t i = 0; i < port_count; i++)
        for (size_t j = 0; j < i; j++)
            if (s_ports_clash (&ports [i], &ports [j])) {
                s_problem (self->problems, ports [i].line,
                           "port %d already used at line %d",
                           ports [i].port, ports [j].line);
                break;
            }
    free (ports);
}

static void
s_resolve_connects (s_loader_t *self)
{
    for (size_t i = 0; i < self->draft_count; i++) {
        s_draft_t *draft = &self->drafts [i];
        tiers_entry_t *entry = draft->entry;
        const tiers_entry_t *target = NULL;
        int line = draft->connect_line;
        if (draft->connect_line && !draft->connect)
            continue;               //  a bad value, already reported
        if (draft->connect && !entry->kind->peer) {
            s_problem (self->problems, line, "a %s connects to nothing: "
                       "'connect' does not apply to it", entry->kind->name);
            continue;
        }
        if (draft->connect && strstr (draft->connect, "://")) {
            for (size_t j = 0; j < self->draft_count && !target; j++)
                if (self->drafts [j].entry->bind
                &&  streq (self->drafts [j].entry->bind, draft->connect))
                    target = self->drafts [j].entry;
            if (!target) {
                s_problem (self->problems, line,
                           "nothing in the map binds '%s'", draft->connect);
                continue;
            }
        }
        else
        if (draft->connect) {
            s_draft_t *named = s_draft_find (self, draft->connect);
            if (!named) {
                s_problem (self->problems, line,
                           "connect: no actor named '%s' in the map",
                           draft->connect);
                continue;
            }
            if (named->entry == entry) {
                s_problem (self->problems, line,
                           "%s cannot connect to itself", entry->name);
                continue;
            }
            if (!named->entry->bind) {
                if (!named->bind_line)  //  else its bind was reported
                    s_problem (self->problems, line,
                               "connect: '%s' binds nothing to connect to",
                               draft->connect);
                continue;
            }
            target = named->entry;
        }
        else
        if (entry->kind->peer) {
            line = entry->line;
            const char *peer = entry->kind->peer;
            size_t found = 0;
            for (size_t j = 0; j < self->draft_count; j++)
                if (streq (self->drafts [j].entry->kind->name, peer)) {
                    if (!target)
                        target = self->drafts [j].entry;
                    found++;
                }
            if (found == 0) {
                s_problem (self->problems, line,
                           "%s needs a %s but the map has none",
                           entry->kind->name, peer);
                continue;
            }
            if (found > 1) {
                s_problem (self->problems, line,
                           "several %ss: say which one with connect = NAME",
                           peer);
                continue;
            }
            if (!target->bind)
                continue;           //  the peer's missing bind is reported
        }
        else
            continue;               //  connects nowhere
        if (!streq (target->kind->name, entry->kind->peer)) {
            s_problem (self->problems, line, "a %s connects to a %s; %s '%s' is not one",
                       entry->kind->name, entry->kind->peer, target->kind->name,
                       target->name);
            continue;
        }
        if (s_prefix (target->bind, "inproc://")
        &&  !streq (target->node, entry->node)) {
            s_problem (self->problems, line,
                       "%s is bound on node '%s'; node '%s' cannot reach it "
                       "(use tcp://)", target->bind, target->node, entry->node);
            continue;
        }
        entry->connect = strdup (target->bind);
        entry->connect_explicit = draft->connect != NULL;
    }
}

//  A kind that `uses` another (the APIs use every shard) connects to each
//  entry of it: each must exist, bind, and be reachable from its node.
static void
s_check_uses (s_loader_t *self)
{
    for (size_t i = 0; i < self->draft_count; i++) {
        tiers_entry_t *entry = self->drafts [i].entry;
        const char *uses = entry->kind->uses;
        if (!uses)
            continue;
        size_t found = 0;
        for (size_t j = 0; j < self->draft_count; j++) {
            tiers_entry_t *target = self->drafts [j].entry;
            if (!streq (target->kind->name, uses) || !target->bind)
                continue;
            found++;
            if (s_prefix (target->bind, "inproc://")
            &&  !streq (target->node, entry->node))
                s_problem (self->problems, entry->line,
                           "%s reaches %s '%s' at %s, bound on node '%s'; "
                           "node '%s' cannot reach it (use tcp://)",
                           entry->kind->name, uses, target->name, target->bind,
                           target->node, entry->node);
        }
        if (found == 0)
            s_problem (self->problems, entry->line,
                       "%s needs a %s but the map has none",
                       entry->kind->name, uses);
    }
}

//  Slot ownership: the entries of a kind with a SLOTS key named "slots"
//  (the shards) must own every slot exactly once. One entry without
//  `slots` owns them all.
static void
s_check_slot_owners (s_loader_t *self)
{
    const tiers_kind_t *kind;
    for (size_t k = 0; (kind = tiers_kind_at (k)); k++) {
        const tiers_key_t *key = kind->keys ? s_key_find (kind->keys, "slots") : NULL;
        if (!key || key->type != TIERS_KEY_SLOTS)
            continue;
        size_t count = 0;
        for (size_t i = 0; i < self->draft_count; i++)
            if (self->drafts [i].entry->kind == kind)
                count++;
        if (count == 0)
            continue;
        int *owner = (int *) calloc ((size_t) self->slots, sizeof (int));
        assert (owner);
        bool complete = true;
        for (size_t i = 0; i < self->draft_count; i++) {
            tiers_entry_t *entry = self->drafts [i].entry;
            if (entry->kind != kind)
                continue;
            const char *value = tiers_entry_get (entry, "slots", NULL);
            if (!value) {
                if (count > 1) {
                    s_problem (self->problems, entry->line,
                               "with several %ss each needs 'slots'", kind->name);
                    complete = false;
                }
                else
                    for (long long s = 0; s < self->slots; s++)
                        owner [s] = entry->line;
                continue;
            }
            char *why = s_slots_check ("slots", value, self->slots);
            if (why) {                  //  reported with the setting
                free (why);
                complete = false;
                continue;
            }
            const char *cursor = value;
            while (*cursor) {
                long long low, high;
                const char *rest;
                s_parse_unsigned (cursor, &low, &rest);
                high = low;
                if (*rest == '-')
                    s_parse_unsigned (rest + 1, &high, &rest);
                for (long long s = low; s <= high; s++) {
                    if (owner [s] && owner [s] != entry->line) {
                        s_problem (self->problems, entry->line,
                                   "slot %lld of %s '%s' is also owned by the %s "
                                   "at line %d", s, kind->name, entry->name,
                                   kind->name, owner [s]);
                        complete = false;
                        break;
                    }
                    owner [s] = entry->line;
                }
                cursor = *rest == ',' ? rest + 1 : rest;
            }
        }
        if (complete)
            for (long long s = 0; s < self->slots; s++)
                if (!owner [s]) {
                    long long end = s;
                    while (end + 1 < self->slots && !owner [end + 1])
                        end++;
                    s_problem (self->problems, self->cluster_line ? self->cluster_line : 1,
                               "slots %lld-%lld are owned by no %s",
                               s, end, kind->name);
                    break;
                }
        free (owner);
    }
}


//  --------------------------------------------------------------------------
//  The map

static tiers_map_t *
s_parse (const char *text, size_t size, const char *filename, char **errors)
{
    s_problems_t *problems = (s_problems_t *) zmalloc (sizeof (s_problems_t));
    problems->file = filename;
    tiers_map_t *self = (tiers_map_t *) zmalloc (sizeof (tiers_map_t));
    self->file = strdup (filename);

    s_loader_t loader = { 0 };
    loader.map = self;
    loader.problems = problems;
    loader.slots = MAP_SLOTS;
    if (size > MAP_MAX_BYTES)
        s_problem (problems, 0, "larger than 1 MiB; a map is a short text");
    else
        loader.items = s_parse_items (problems, text, size, &loader.item_count);

    //  The cluster block first: its slot count bounds the shards' slots.
    s_item_t *items = loader.items;
    for (size_t i = 0; i < loader.item_count; i++) {
        if (items [i].depth || !streq (items [i].name, "cluster"))
            continue;
        if (loader.cluster_line)
            s_problem (problems, items [i].line,
                       "cluster defined twice (first at line %d)",
                       loader.cluster_line);
        else {
            loader.cluster_line = items [i].line;
            s_load_cluster (&loader, &items [i]);
        }
    }
    bool nodes = false;
    for (size_t i = 0; i < loader.item_count; i++) {
        if (items [i].depth || streq (items [i].name, "cluster"))
            continue;
        if (streq (items [i].name, "node")) {
            nodes = true;
            s_load_node (&loader, &items [i]);
        }
        else
            s_problem (problems, items [i].line,
                       "unknown top-level item '%s' (expected cluster or node%s)",
                       items [i].name, tiers_kind_find (items [i].name)
                       ? "; actors go inside a node" : "");
    }
    if (!nodes && size <= MAP_MAX_BYTES)
        s_problem (problems, 1, "the map places no actors");
    s_check_binds (&loader);
    s_resolve_connects (&loader);
    s_check_uses (&loader);
    s_check_slot_owners (&loader);

    for (size_t i = 0; i < loader.item_count; i++) {
        free (items [i].name);
        free (items [i].value);
    }
    free (loader.items);
    free (loader.drafts);
    free (loader.node_lines);
    if (errors)
        *errors = NULL;
    if (problems->count || problems->dropped) {
        s_problems_report (problems, errors);
        tiers_map_destroy (&self);
    }
    free (problems);
    return self;
}

tiers_map_t *
tiers_map_parse (const char *text, const char *filename, char **errors)
{
    assert (text);
    return s_parse (text, strlen (text), filename? filename: "(map)", errors);
}

tiers_map_t *
tiers_map_load (const char *path, char **errors)
{
    assert (path);
    if (errors)
        *errors = NULL;
    //  Opened without blocking and checked to be a regular file first: a
    //  FIFO or a device as the map would otherwise wait forever.
    char *text = NULL;
    size_t size = 0;
    int error = 0;
    bool irregular = false;
    FILE *file = NULL;
    int fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat status;
    if (fd < 0)
        error = errno;
    else
    if (fstat (fd, &status)) {
        error = errno;
        close (fd);
    }
    else
    if (!S_ISREG (status.st_mode)) {
        irregular = true;
        close (fd);
    }
    else {
        fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
        file = fdopen (fd, "rb");
        if (!file) {
            error = errno;
            close (fd);
        }
    }
    if (irregular) {
        if (errors)
            *errors = zsys_sprintf ("%s: cannot read: not a regular file\n", path);
        return NULL;
    }
    if (file) {
        //  Read one byte past the limit to know the file is too large.
        text = (char *) malloc (MAP_MAX_BYTES + 2);
        assert (text);
        size = fread (text, 1, MAP_MAX_BYTES + 1, file);
        if (ferror (file))
            error = errno? errno: EIO;
        fclose (file);
    }
    if (error) {
        free (text);
        if (errors)
            *errors = zsys_sprintf ("%s: cannot read: %s\n", path,
                                    strerror (error));
        return NULL;
    }
    text [size] = 0;
    tiers_map_t *self = s_parse (text, size, path, errors);
    free (text);
    return self;
}

const char *
tiers_map_listener_error (const tiers_map_t *self)
{
    assert (self);
    return self->listener_error;
}

void
tiers_map_destroy (tiers_map_t **self_p)
{
    assert (self_p);
    tiers_map_t *self = *self_p;
    if (self) {
        free (self->file);
        for (size_t i = 0; i < CLUSTER_KEYS; i++)
            free (self->cluster [i]);
        for (size_t i = 0; i < self->node_count; i++)
            free (self->nodes [i]);
        free (self->nodes);
        for (size_t i = 0; i < self->entry_count; i++)
            s_entry_destroy (&self->entries [i]);
        free (self->entries);
        free (self);
        *self_p = NULL;
    }
}

const char *
tiers_map_cluster (const tiers_map_t *self, const char *key)
{
    assert (self);
    const tiers_key_t *spec = key? s_key_find (s_cluster_keys, key): NULL;
    if (!spec)
        return NULL;
    size_t slot = spec - s_cluster_keys;
    return self->cluster [slot]? self->cluster [slot]: s_cluster_defaults [slot];
}

const char *
tiers_map_name (const tiers_map_t *self)
{
    return tiers_map_cluster (self, "name");
}

const char *
tiers_map_file (const tiers_map_t *self)
{
    assert (self);
    return self->file;
}

size_t
tiers_map_node_count (const tiers_map_t *self)
{
    assert (self);
    return self->node_count;
}

const char *
tiers_map_node_name (const tiers_map_t *self, size_t index)
{
    assert (self);
    return index < self->node_count? self->nodes [index]: NULL;
}

bool
tiers_map_has_node (const tiers_map_t *self, const char *node)
{
    assert (self);
    for (size_t i = 0; node && i < self->node_count; i++)
        if (streq (self->nodes [i], node))
            return true;
    return false;
}

size_t
tiers_map_entry_count (const tiers_map_t *self)
{
    assert (self);
    return self->entry_count;
}

const tiers_entry_t *
tiers_map_entry (const tiers_map_t *self, size_t index)
{
    assert (self);
    return index < self->entry_count? self->entries [index]: NULL;
}

const tiers_entry_t *
tiers_map_find (const tiers_map_t *self, const char *name)
{
    assert (self);
    for (size_t i = 0; name && i < self->entry_count; i++)
        if (streq (self->entries [i]->name, name))
            return self->entries [i];
    return NULL;
}

const tiers_entry_t *
tiers_map_find_kind (const tiers_map_t *self, const char *kind)
{
    assert (self);
    for (size_t i = 0; kind && i < self->entry_count; i++)
        if (streq (self->entries [i]->kind->name, kind))
            return self->entries [i];
    return NULL;
}

const char *
tiers_entry_get (const tiers_entry_t *self, const char *key,
                 const char *fallback)
{
    assert (self);
    for (size_t i = 0; key && i < self->setting_count; i++)
        if (streq (self->keys [i], key))
            return self->values [i];
    return fallback;
}

long long
tiers_entry_int (const tiers_entry_t *self, const char *key,
                 long long fallback)
{
    assert (self);
    if (key && streq (key, "instances"))
        return self->instances;
    const char *value = tiers_entry_get (self, key, NULL);
    if (!value)
        return fallback;
    const tiers_key_t *spec = s_key_find (self->kind->keys, key);
    tiers_key_type_t type = spec? spec->type: TIERS_KEY_INT;
    long long n;
    int rc = type == TIERS_KEY_MS? tiers_parse_ms (value, &n)
           : type == TIERS_KEY_BYTES? tiers_parse_bytes (value, &n)
           : tiers_parse_int (value, &n);
    return rc == 0? n: fallback;
}

//  The listener must still be free of clashes with the tcp binds and the
//  other listeners, as the loader would have checked it.
int
tiers_map_set_listener (tiers_map_t *self, const char *hostport,
                        const char *node)
{
    assert (self);
    s_port_t wanted;
    const char *why = "expected HOST:PORT";
    if (!hostport
    ||  s_hostport_split (hostport, wanted.host, sizeof wanted.host,
                          &wanted.port, 0, true, &why)) {
        snprintf (self->listener_error, sizeof self->listener_error,
                  "expected HOST:PORT (%s)", why);
        return -1;
    }
    tiers_entry_t *target = NULL;
    for (size_t i = 0; i < self->entry_count; i++) {
        tiers_entry_t *entry = self->entries [i];
        //  --http moves the public edge (the gateway), not an exporter
        if (!entry->kind->listener || entry->kind->fixed_listener
        ||  (node && !streq (entry->node, node)))
            continue;
        if (target) {
            snprintf (self->listener_error, sizeof self->listener_error,
                      "more than one gateway%s%s: give -n NODE or edit the map",
                      node ? " on node " : "", node ? node : "");
            return -1;
        }
        target = entry;
    }
    if (!target) {
        snprintf (self->listener_error, sizeof self->listener_error,
                  "no gateway%s%s", node ? " on node " : " in the map",
                  node ? node : "");
        return -1;
    }
    for (size_t i = 0; wanted.port && i < self->entry_count; i++) {
        tiers_entry_t *entry = self->entries [i];
        s_port_t port;
        if (entry == target)
            continue;
        const char *listener = entry->kind->listener
                             ? tiers_entry_get (entry, entry->kind->listener, NULL)
                             : NULL;
        if (listener
        &&  s_hostport_split (listener, port.host, sizeof port.host,
                              &port.port, 0, true, &why) == 0
        &&  s_ports_clash (&wanted, &port)) {
            snprintf (self->listener_error, sizeof self->listener_error,
                      "port %d is %s's listener (line %d)", wanted.port,
                      entry->name, entry->line);
            return -1;
        }
        if (entry->bind && s_prefix (entry->bind, "tcp://")
        &&  s_hostport_split (entry->bind + 6, port.host, sizeof port.host,
                              &port.port, 1, false, &why) == 0
        &&  s_ports_clash (&wanted, &port)) {
            snprintf (self->listener_error, sizeof self->listener_error,
                      "port %d is bound by %s (line %d)", wanted.port,
                      entry->name, entry->line);
            return -1;
        }
    }
    const char *key = target->kind->listener;
    for (size_t i = 0; i < target->setting_count; i++)
        if (streq (target->keys [i], key)) {
            char *value = strdup (hostport);
            assert (value);
            free (target->values [i]);
            target->values [i] = value;
            return 0;
        }
    size_t count = target->setting_count + 1;
    target->keys = (char **) realloc (target->keys, count * sizeof (char *));
    target->values = (char **) realloc (target->values, count * sizeof (char *));
    target->lines = (int *) realloc (target->lines, count * sizeof (int));
    assert (target->keys && target->values && target->lines);
    target->keys [count - 1] = strdup (key);
    target->values [count - 1] = strdup (hostport);
    target->lines [count - 1] = 0;  //  not from the map file
    assert (target->keys [count - 1] && target->values [count - 1]);
    target->setting_count = count;
    return 0;
}

void
tiers_map_print_plan (const tiers_map_t *self, const char *node, FILE *out)
{
    assert (self && out);
    int name_width = 4, kind_width = 4;
    size_t listeners = 0;
    for (size_t i = 0; i < self->entry_count; i++) {
        const tiers_entry_t *entry = self->entries [i];
        int width = (int) strlen (entry->name);
        name_width = width > name_width? width: name_width;
        width = (int) strlen (entry->kind->name);
        kind_width = width > kind_width? width: kind_width;
        if (entry->kind->listener
        &&  tiers_entry_get (entry, entry->kind->listener, NULL)
        &&  (!node || streq (node, entry->node)))
            listeners++;
    }
    fprintf (out, "cluster %s (map %s, %s slots, data %s)\n",
             tiers_map_name (self), self->file,
             tiers_map_cluster (self, "slots"), tiers_map_cluster (self, "data"));
    for (size_t n = 0; n < self->node_count; n++) {
        if (node && !streq (node, self->nodes [n]))
            continue;
        fprintf (out, "\nnode %s\n", self->nodes [n]);
        for (size_t i = 0; i < self->entry_count; i++) {
            const tiers_entry_t *entry = self->entries [i];
            if (!streq (entry->node, self->nodes [n]))
                continue;
            fprintf (out, "    %-*s  %-*s  x%-2d", name_width, entry->name,
                     kind_width, entry->kind->name, entry->instances);
            if (entry->bind)
                fprintf (out, "  bind %s", entry->bind);
            if (entry->connect)
                fprintf (out, "  connect %s", entry->connect);
            const char *listener = entry->kind->listener;
            const char *address = listener
                                ? tiers_entry_get (entry, listener, NULL): NULL;
            if (address)
                fprintf (out, "  %s %s (public)", listener, address);
            fprintf (out, "\n");
        }
    }
    fprintf (out, "\npublic listeners:%s\n", listeners? "": " none");
    for (size_t i = 0; i < self->entry_count; i++) {
        const tiers_entry_t *entry = self->entries [i];
        const char *listener = entry->kind->listener;
        const char *address = listener
                            ? tiers_entry_get (entry, listener, NULL): NULL;
        if (address && (!node || streq (node, entry->node)))
            fprintf (out, "    %s %s  (%s on node %s)\n", listener, address,
                     entry->name, entry->node);
    }
    fprintf (out, "everything else is private: actors reach each other only "
                  "through the endpoints above\n");
}
