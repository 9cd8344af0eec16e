/*  problems.c — problems collected with their line, reported sorted by line
    (see problems.h).

    A fixed array, not a list: a file with more than 50 mistakes is not worth
    describing in full, and a bound keeps a hostile file from making the
    report itself large. Each problem carries the order it was found in, so
    that sorting by line (qsort is not stable) keeps the problems of one line
    in the order the checks found them.
*/
#include "problems.h"
#include <czmq.h>
#include <stdarg.h>

#define PROBLEMS_MAX    50              //  problems reported at most

typedef struct {
    int line;
    int seq;                //  keeps the order of problems on one line
    char *text;
} s_problem_t;

struct _tiers_problems_t {
    char *file;
    s_problem_t list [PROBLEMS_MAX];
    size_t count;
    size_t dropped;
};

tiers_problems_t *
tiers_problems_new (const char *file)
{
    assert (file);
    tiers_problems_t *self = (tiers_problems_t *) zmalloc (sizeof (tiers_problems_t));
    self->file = strdup (file);
    assert (self->file);
    return self;
}

void
tiers_problems_destroy (tiers_problems_t **self_p)
{
    assert (self_p);
    tiers_problems_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < self->count; i++)
            free (self->list [i].text);
        free (self->file);
        free (self);
        *self_p = NULL;
    }
}

void
tiers_problems_add (tiers_problems_t *self, int line, const char *format, ...)
{
    assert (self);
    if (self->count == PROBLEMS_MAX) {
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

size_t
tiers_problems_count (const tiers_problems_t *self)
{
    assert (self);
    return self->count + self->dropped;
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
void
tiers_problems_report (tiers_problems_t *self, char **errors)
{
    assert (self);
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
    self->dropped = 0;
    if (errors)
        *errors = text;
    else
        free (text);
}
