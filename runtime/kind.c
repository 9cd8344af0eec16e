/*  kind.c — the registry of actor kinds (see kind.h).

    A small fixed table: tiers has a dozen kinds, tests add a few of their
    own. The built-in kinds are registered on first use, so a program that
    links libtiers gets them without an init call. Registration happens
    before any actor thread starts; lookups afterwards are read-only.
*/
#include "kind.h"
#include <string.h>
#include <pthread.h>

#define KIND_MAX 64

static const tiers_kind_t *s_kinds [KIND_MAX];
static size_t s_count;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

//  Defined next to each actor; listed in builtin.c.
extern const tiers_kind_t *const tiers_builtin_kinds [];

static int
s_add (const tiers_kind_t *kind)
{
    assert (kind && kind->name && kind->run);
    assert (tiers_kind_port_count (kind) <= TIERS_PORTS_MAX);
    assert (tiers_kind_link_count (kind) <= TIERS_LINKS_MAX);
    int rc = -1;
    pthread_mutex_lock (&s_lock);
    size_t i;
    for (i = 0; i < s_count; i++)
        if (streq (s_kinds [i]->name, kind->name))
            break;
    if (i == s_count && s_count < KIND_MAX) {
        s_kinds [s_count++] = kind;
        rc = 0;
    }
    pthread_mutex_unlock (&s_lock);
    return rc;
}

static void
s_register_builtins (void)
{
    for (size_t i = 0; tiers_builtin_kinds [i]; i++)
        s_add (tiers_builtin_kinds [i]);
}

int
tiers_kind_register (const tiers_kind_t *kind)
{
    pthread_once (&s_once, s_register_builtins);
    return s_add (kind);
}

const tiers_kind_t *
tiers_kind_find (const char *name)
{
    pthread_once (&s_once, s_register_builtins);
    if (!name)
        return NULL;
    const tiers_kind_t *found = NULL;
    pthread_mutex_lock (&s_lock);
    for (size_t i = 0; i < s_count && !found; i++)
        if (streq (s_kinds [i]->name, name))
            found = s_kinds [i];
    pthread_mutex_unlock (&s_lock);
    return found;
}

const tiers_kind_t *
tiers_kind_at (size_t index)
{
    pthread_once (&s_once, s_register_builtins);
    const tiers_kind_t *found = NULL;
    pthread_mutex_lock (&s_lock);
    if (index < s_count)
        found = s_kinds [index];
    pthread_mutex_unlock (&s_lock);
    return found;
}

const tiers_port_t *
tiers_kind_port (const tiers_kind_t *kind, const char *name, size_t *index_p)
{
    assert (kind);
    for (size_t i = 0; name && kind->ports && kind->ports [i].name; i++)
        if (streq (kind->ports [i].name, name)) {
            if (index_p)
                *index_p = i;
            return &kind->ports [i];
        }
    return NULL;
}

const tiers_link_t *
tiers_kind_link (const tiers_kind_t *kind, const char *name, size_t *index_p)
{
    assert (kind);
    for (size_t i = 0; name && kind->links && kind->links [i].name; i++)
        if (streq (kind->links [i].name, name)) {
            if (index_p)
                *index_p = i;
            return &kind->links [i];
        }
    return NULL;
}

size_t
tiers_kind_port_count (const tiers_kind_t *kind)
{
    size_t count = 0;
    while (kind->ports && kind->ports [count].name)
        count++;
    return count;
}

size_t
tiers_kind_link_count (const tiers_kind_t *kind)
{
    size_t count = 0;
    while (kind->links && kind->links [count].name)
        count++;
    return count;
}
