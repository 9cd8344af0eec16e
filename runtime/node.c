/*  node.c — starting and stopping the actors of one node (see node.h).

    The launcher owns a list of running actors in start order. Start-up is a
    handshake: zactor_new() returns once the body signalled on its pipe,
    then the body sends one string, "OK" or "ERROR reason". A failed start
    stops everything started so far, in reverse, so a bad map entry never
    leaves half a node running.
*/
#include "node.h"
#include "log.h"
#include "poller.h"
#include "security.h"
#include <stdarg.h>
#include <errno.h>
#include <sys/stat.h>

typedef struct {
    char name [96];
    const tiers_entry_t *entry;
    tiers_actor_args_t *args;
    zactor_t *actor;
} s_running_t;

struct _tiers_node_t {
    const tiers_map_t *map;
    char *node;                 //  NULL = all nodes
    s_running_t *actors;
    size_t count, size;
    tiers_security_t *security; //  the keys, with security = curve
    char error [512];
};

tiers_node_t *
tiers_node_new (const tiers_map_t *map, const char *node)
{
    assert (map);
    tiers_node_t *self = (tiers_node_t *) zmalloc (sizeof (tiers_node_t));
    assert (self);
    self->map = map;
    self->node = node ? strdup (node) : NULL;
    return self;
}

const char *
tiers_node_error (tiers_node_t *self)
{
    assert (self);
    return self->error;
}

static void
s_stop_all (tiers_node_t *self)
{
    while (self->count > 0) {
        s_running_t *running = &self->actors [--self->count];
        tiers_debug ("stopping %s", running->name);
        zactor_destroy (&running->actor);
        free (running->args);
    }
    tiers_security_destroy (&self->security);
}

static int
s_start_one (tiers_node_t *self, const tiers_entry_t *entry, int instance)
{
    if (self->count == self->size) {
        self->size = self->size ? self->size * 2 : 16;
        self->actors = (s_running_t *) realloc (self->actors,
                                                self->size * sizeof (s_running_t));
        assert (self->actors);
    }
    tiers_actor_args_t *args = (tiers_actor_args_t *) zmalloc (sizeof *args);
    assert (args);
    args->map = self->map;
    args->entry = entry;
    args->instance = instance;
    if (entry->instances > 1)
        snprintf (args->name, sizeof args->name, "%s.%d", entry->name, instance);
    else
        snprintf (args->name, sizeof args->name, "%s", entry->name);

    zactor_t *actor = zactor_new (entry->kind->run, args);
    if (!actor) {
        snprintf (self->error, sizeof self->error,
                  "%s: cannot start thread", args->name);
        free (args);
        return -1;
    }
    char *answer = zstr_recv (actor);
    if (!answer || !streq (answer, "OK")) {
        snprintf (self->error, sizeof self->error, "%s: %s", args->name,
                  answer && strlen (answer) > 6 ? answer + 6 : "failed to start");
        zstr_free (&answer);
        zactor_destroy (&actor);
        free (args);
        return -1;
    }
    zstr_free (&answer);
    s_running_t *running = &self->actors [self->count++];
    memset (running, 0, sizeof *running);
    snprintf (running->name, sizeof running->name, "%s", args->name);
    running->entry = entry;
    running->args = args;
    running->actor = actor;
    tiers_debug ("started %s (%s)", args->name, entry->kind->name);
    return 0;
}

int
tiers_node_start (tiers_node_t *self)
{
    assert (self);
    assert (self->count == 0);
    //  Every socket from here on speaks IPv6 too (tcp://[::1]:PORT in a
    //  map); IPv4 endpoints work as before.
    zsys_set_ipv6 (1);
    if (self->node && !tiers_map_has_node (self->map, self->node)) {
        snprintf (self->error, sizeof self->error,
                  "the map has no node '%s'", self->node);
        return -1;
    }
    tiers_poller_set_spin ((int) tiers_map_cluster_number (self->map, "spin_us"));
    //  With CURVE, the keys before any socket: a node whose keys are
    //  missing, readable by others or corrupt starts nothing.
    if (tiers_security_curve (self->map)) {
        char *why = NULL;
        self->security = tiers_security_new (self->map, self->node,
                                             tiers_map_cluster (self->map, "keys"), &why);
        if (!self->security) {
            snprintf (self->error, sizeof self->error, "security = curve: %s", why);
            free (why);
            return -1;
        }
    }
    else
    if (tiers_map_cluster_given (self->map, "security"))
        tiers_warn ("security = none: every tcp:// and ipc:// endpoint of this map is "
                    "plain text and serves any peer that can connect");
    //  Collect the ranks in use, then start rank by rank, file order within.
    size_t entries = tiers_map_entry_count (self->map);
    int rank = -1;
    while (true) {
        int next = -1;
        for (size_t i = 0; i < entries; i++) {
            const tiers_entry_t *entry = tiers_map_entry (self->map, i);
            if (entry->kind->rank > rank && (next < 0 || entry->kind->rank < next))
                next = entry->kind->rank;
        }
        if (next < 0)
            break;
        rank = next;
        for (size_t i = 0; i < entries; i++) {
            const tiers_entry_t *entry = tiers_map_entry (self->map, i);
            if (entry->kind->rank != rank)
                continue;
            if (self->node && !streq (entry->node, self->node))
                continue;
            for (int instance = 0; instance < entry->instances; instance++)
                if (s_start_one (self, entry, instance)) {
                    s_stop_all (self);
                    return -1;
                }
        }
    }
    return 0;
}

void
tiers_node_destroy (tiers_node_t **self_p)
{
    assert (self_p);
    tiers_node_t *self = *self_p;
    if (self) {
        s_stop_all (self);
        free (self->actors);
        free (self->node);
        free (self);
        *self_p = NULL;
    }
}

size_t
tiers_node_actor_count (tiers_node_t *self)
{
    assert (self);
    return self->count;
}

zactor_t *
tiers_node_actor (tiers_node_t *self, const char *name)
{
    assert (self);
    for (size_t i = 0; i < self->count; i++)
        if (streq (self->actors [i].name, name))
            return self->actors [i].actor;
    return NULL;
}

void
tiers_actor_ready (zsock_t *pipe)
{
    zsock_signal (pipe, 0);
    zstr_send (pipe, "OK");
}

void
tiers_actor_failed (zsock_t *pipe, const char *format, ...)
{
    char reason [400];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    tiers_error ("%s", reason);
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "ERROR %s", reason);
}

bool
tiers_actor_stopping (zsock_t *pipe)
{
    char *command = zstr_recv (pipe);
    bool stop = !command || streq (command, "$TERM");
    if (command && !stop)
        tiers_warn ("unknown command '%s' on the pipe ignored", command);
    zstr_free (&command);
    return stop;
}

char *
tiers_data_path (const tiers_map_t *map, const char *leaf)
{
    const char *data = tiers_map_cluster (map, "data");       //  never NULL
    if (zsys_dir_create ("%s", data))       //  with its parents, like mkdir -p
        tiers_warn ("cannot create %s: %s", data, strerror (errno));
    return zsys_sprintf ("%s/%s", data, leaf);
}
