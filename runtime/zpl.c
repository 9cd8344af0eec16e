/*  zpl.c — the ZPL reader: lines in, a tree of items out (see zpl.h).

    ZPL is the czmq zconfig format, read here by hand because zconfig
    forgets lines and prints its own errors to stdout. The one idea: a line
    is an item whose depth is its indentation / 4, and it hangs under the
    last item one level up; each item points at its first child and next
    sibling by index into one flat array, so the whole tree is one
    allocation and is walked without recursion.
*/
#include "zpl.h"
#include "parse.h"
#include <czmq.h>
#include <ctype.h>

#define ZPL_MAX_LINE    1024            //  bytes per line, without newline

static bool
s_name_char (int c)
{
    return isalnum (c) || (c && strchr ("_$@./&+-", c));
}

//  Skips spaces; a tab outside quotes and comments is refused.
static int
s_skip_spaces (tiers_problems_t *problems, int lineno, const char *line,
               size_t length, size_t *i)
{
    while (*i < length && (line [*i] == ' ' || line [*i] == '\t')) {
        if (line [*i] == '\t') {
            tiers_problems_add (problems, lineno, "tab character; use spaces");
            return -1;
        }
        (*i)++;
    }
    return 0;
}

//  Parses one line into item (name/value malloc'ed). Returns 1 for an
//  item, 0 for a blank or comment line, -1 after reporting a problem.
static int
s_parse_line (tiers_problems_t *problems, int lineno, const char *line,
              size_t length, tiers_zpl_item_t *item)
{
    if (length > ZPL_MAX_LINE) {
        tiers_problems_add (problems, lineno, "line longer than %d bytes", ZPL_MAX_LINE);
        return -1;
    }
    if (!tiers_utf8_valid ((const uint8_t *) line, length)) {
        //  A name or value that is not text would reach logs and
        //  terminals raw; the message shows the bytes as \xNN.
        tiers_problems_add (problems, lineno, "the line is not valid UTF-8: %.*s",
                            (int) (length < 80 ? length : 80), line);
        return -1;
    }
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char) line [i];
        if (c == 0) {
            tiers_problems_add (problems, lineno, "NUL byte in line");
            return -1;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            tiers_problems_add (problems, lineno, "control character 0x%02x in line", c);
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
        tiers_problems_add (problems, lineno,
                            "tab in indentation; indent with 4 spaces per level");
        return -1;
    }
    if (i % 4) {
        tiers_problems_add (problems, lineno,
                            "indentation of %zu spaces is not a multiple of 4", i);
        return -1;
    }
    item->depth = (int) (i / 4);
    size_t start = i;
    while (i < length && line [i] != ' ' && line [i] != '\t'
        && line [i] != '=' && line [i] != '#')
        i++;
    if (i == start) {
        tiers_problems_add (problems, lineno, "expected a name before '='");
        return -1;
    }
    int name_length = (int) (i - start);
    const char *name = line + start;
    for (size_t j = start; j < i; j++)
        if (!s_name_char ((unsigned char) line [j])) {
            tiers_problems_add (problems, lineno,
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
            tiers_problems_add (problems, lineno,
                                "expected '=' after '%.*s' (write name = value)",
                                name_length, name);
            return -1;
        }
        i++;
        if (s_skip_spaces (problems, lineno, line, length, &i))
            return -1;
        if (i == length || line [i] == '#') {
            tiers_problems_add (problems, lineno,
                                "'%.*s =' has no value (write %.*s = VALUE)",
                                name_length, name, name_length, name);
            return -1;
        }
        if (line [i] == '"' || line [i] == '\'') {
            const char *close = memchr (line + i + 1, line [i], length - i - 1);
            if (!close) {
                tiers_problems_add (problems, lineno,
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
            tiers_problems_add (problems, lineno,
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
tiers_zpl_item_t *
tiers_zpl_parse (tiers_problems_t *problems, const char *text, size_t size,
                 size_t *count_p)
{
    size_t count = 0, limit = 64;
    tiers_zpl_item_t *items = (tiers_zpl_item_t *) calloc (limit,
                                                           sizeof (tiers_zpl_item_t));
    int last [ZPL_MAX_LINE / 4 + 2];    //  last item at each depth
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
            items = (tiers_zpl_item_t *) realloc (items,
                                                  limit * sizeof (tiers_zpl_item_t));
            assert (items);
        }
        tiers_zpl_item_t *item = &items [count];
        int rc = s_parse_line (problems, lineno, line, length, item);
        if (rc == 1 && item->depth > last_depth + 1) {
            tiers_problems_add (problems, lineno, last_depth < 0
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
                tiers_zpl_item_t *parent = &items [last [item->depth - 1]];
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

void
tiers_zpl_destroy (tiers_zpl_item_t **items_p, size_t count)
{
    assert (items_p);
    tiers_zpl_item_t *items = *items_p;
    if (items) {
        for (size_t i = 0; i < count; i++) {
            free (items [i].name);
            free (items [i].value);
        }
        free (items);
        *items_p = NULL;
    }
}
