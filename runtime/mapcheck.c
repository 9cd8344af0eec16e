/*  mapcheck.c — pass 3 of the map loader: the checks across the map.

    Each entry was checked alone in pass 2 (map.c); what is left needs all
    of them at once: no endpoint bound twice, no TCP port used twice on one
    host, every link of every entry resolved to the endpoints of the port it
    reaches (one entry, or every entry of the kind but itself), bound by
    something in the map and reachable from the connecting node, and every
    slot owned by exactly one shard.
    The checks compare entries pairwise, which the loader keeps affordable
    by bounding the number of entries.
*/
#include "map_internal.h"
#include "parse.h"
#include "slot.h"
#include "subnet.h"

bool
tiers_tcp_port_clash (const tiers_tcp_port_t *a, const tiers_tcp_port_t *b)
{
    return a->port == b->port
        && (tiers_host_is_wildcard (a->host) || tiers_host_is_wildcard (b->host)
         || strcasecmp (a->host, b->host) == 0);
}

static void
s_check_binds (tiers_loader_t *self)
{
    size_t room = self->draft_count * (TIERS_PORTS_MAX + 1) + 1;
    tiers_tcp_port_t *ports = (tiers_tcp_port_t *) calloc (room, sizeof (tiers_tcp_port_t));
    assert (ports);
    size_t port_count = 0;
    const char *why;
    for (size_t i = 0; i < self->draft_count; i++) {
        tiers_draft_t *draft = &self->drafts [i];
        tiers_entry_t *entry = draft->entry;
        tiers_tcp_port_t port;
        for (size_t p = 0; p < TIERS_PORTS_MAX; p++) {
            const char *bind = entry->binds [p];
            if (!bind)
                continue;
            bool duplicate = false;
            for (size_t j = 0; j <= i && !duplicate; j++)
                for (size_t q = 0; q < (j < i ? TIERS_PORTS_MAX : p) && !duplicate; q++)
                    if (self->drafts [j].entry->binds [q]
                    &&  streq (self->drafts [j].entry->binds [q], bind)) {
                        tiers_problems_add (self->problems, draft->bind_lines [p],
                                            "endpoint '%s' is already bound at line %d",
                                            bind, self->drafts [j].bind_lines [q]);
                        duplicate = true;
                    }
            if (!duplicate && tiers_has_prefix (bind, "tcp://")
            &&  tiers_hostport_check (bind + 6, port.host, sizeof port.host,
                                      &port.port, 1, false, &why) == 0) {
                port.line = draft->bind_lines [p];
                ports [port_count++] = port;
            }
        }
        if (draft->listener
        &&  tiers_hostport_check (draft->listener, port.host, sizeof port.host,
                                  &port.port, 0, true, &why) == 0
        &&  port.port != 0) {
            port.line = draft->listener_line;
            ports [port_count++] = port;
        }
    }
    //  Report each clash once, at the later line.
    for (size_t i = 0; i < port_count; i++)
        for (size_t j = 0; j < i; j++)
            if (tiers_tcp_port_clash (&ports [i], &ports [j])) {
                tiers_problems_add (self->problems, ports [i].line,
                                    "port %d already used at line %d",
                                    ports [i].port, ports [j].line);
                break;
            }
    free (ports);
}

//  The map's key for a link in messages: `connect` for the link of a
//  kind that has one, else `connect.NAME` (the first also answers to
//  `connect`).
static void
s_link_key (const tiers_kind_t *kind, size_t link, char *key, size_t size)
{
    if (link == 0 && tiers_kind_link_count (kind) == 1)
        snprintf (key, size, "connect");
    else
        snprintf (key, size, "connect.%s", kind->links [link].name);
}

//  The endpoint where `target` binds the port a link reaches, or NULL.
static const char *
s_port_of (const tiers_entry_t *target, const tiers_link_t *link)
{
    size_t index;
    if (!streq (target->kind->name, link->kind)
    ||  !tiers_kind_port (target->kind, link->port, &index))
        return NULL;
    return target->binds [index];
}

//  Was the port's bind of that entry written (even if its value was bad)?
static bool
s_port_written (tiers_loader_t *self, const tiers_entry_t *target,
                const tiers_link_t *link)
{
    size_t index;
    tiers_draft_t *draft = tiers_loader_draft (self, target->name);
    return draft && tiers_kind_port (target->kind, link->port, &index)
        && draft->bind_lines [index] != 0;
}

//  One link of one entry resolved to its targets, or its problems reported.
static void
s_resolve_link (tiers_loader_t *self, tiers_draft_t *draft, size_t index)
{
    tiers_entry_t *entry = draft->entry;
    const tiers_kind_t *kind = entry->kind;
    const tiers_link_t *link = &kind->links [index];
    const char *written = draft->connects [index];
    int line = draft->connect_lines [index];
    char key [48];
    s_link_key (kind, index, key, sizeof key);
    if (line && !written && !link->by)
        return;                     //  a bad value, already reported
    tiers_target_t *targets = (tiers_target_t *) calloc (self->draft_count + 1,
                                                         sizeof (tiers_target_t));
    assert (targets);
    size_t count = 0;
    //  A link named by a key (a replica's `of`): the key's value stands
    //  where `connect.LINK = NAME` would, and the messages name the key.
    if (link->by) {
        if (line)
            tiers_problems_add (self->problems, line, "%s: a %s's %s is the %s its `%s` "
                                "names; `%s` does not apply to it", key, kind->name,
                                link->name, link->kind, link->by, key);
        snprintf (key, sizeof key, "%s", link->by);
        written = tiers_entry_get (entry, link->by, NULL);
        line = entry->line;
        for (size_t k = 0; k < entry->setting_count; k++)
            if (streq (entry->keys [k], link->by))
                line = entry->lines [k];
        if (!written) {
            const tiers_key_t *spec = kind->keys ? tiers_key_find (kind->keys, link->by)
                                                 : NULL;
            if (!link->optional && !(spec && spec->required))
                tiers_problems_add (self->problems, line, "%s needs `%s`: the %s its "
                                    "%s reaches", kind->name, link->by, link->kind,
                                    link->name);
            goto done;              //  (a required key missing is reported)
        }
    }
    bool explicit_ = written != NULL;
    if (written && link->many) {
        tiers_problems_add (self->problems, line, "%s: a %s reaches every %s; "
                            "there is nothing to choose", key, kind->name, link->kind);
        goto done;
    }
    if (written) {
        const tiers_entry_t *target = NULL;
        if (strstr (written, "://") && !link->by) {
            for (size_t j = 0; j < self->draft_count && !target; j++)
                for (size_t p = 0; p < TIERS_PORTS_MAX && !target; p++)
                    if (self->drafts [j].entry->binds [p]
                    &&  streq (self->drafts [j].entry->binds [p], written))
                        target = self->drafts [j].entry;
            if (!target) {
                tiers_problems_add (self->problems, line,
                                    "nothing in the map binds '%s'", written);
                goto done;
            }
        }
        else {
            tiers_draft_t *named = tiers_loader_draft (self, written);
            if (!named) {
                tiers_problems_add (self->problems, line, "%s: no actor named '%s' in "
                                    "the map", link->by ? key : "connect", written);
                goto done;
            }
            target = named->entry;
        }
        if (target == entry) {
            tiers_problems_add (self->problems, line,
                                "%s cannot connect to itself", entry->name);
            goto done;
        }
        if (!streq (target->kind->name, link->kind)) {
            if (link->by)
                tiers_problems_add (self->problems, line,
                                    "%s: a %s's %s is a %s; %s '%s' is not one", key,
                                    kind->name, link->name, link->kind,
                                    target->kind->name, target->name);
            else
                tiers_problems_add (self->problems, line,
                                    "a %s connects to a %s; %s '%s' is not one",
                                    kind->name, link->kind, target->kind->name,
                                    target->name);
            goto done;
        }
        const char *endpoint = s_port_of (target, link);
        if (!endpoint) {
            size_t port = 0;
            bool declared = tiers_kind_port (target->kind, link->port, &port) != NULL;
            if (link->by && !s_port_written (self, target, link))
                tiers_problems_add (self->problems, line,
                                    "%s: %s '%s' binds no %s port (%s%s%s)", key,
                                    target->kind->name, target->name, link->port,
                                    declared && port == 0 ? "bind" : "bind.",
                                    declared && port == 0 ? "" : link->port,
                                    declared ? "" : "; this tiers has no such port");
            else
            if (!s_port_written (self, target, link))
                tiers_problems_add (self->problems, line,
                                    "connect: '%s' binds nothing to connect to",
                                    target->name);
            goto done;
        }
        if (strstr (written, "://") && !streq (endpoint, written)) {
            tiers_problems_add (self->problems, line,
                                "%s: '%s' is not the %s port of %s '%s' (that is %s)",
                                key, written, link->port, target->kind->name,
                                target->name, endpoint);
            goto done;
        }
        targets [count++] = (tiers_target_t) { target, endpoint };
    }
    else {
        line = entry->line;
        size_t found = 0;
        for (size_t j = 0; j < self->draft_count; j++) {
            const tiers_entry_t *target = self->drafts [j].entry;
            if (target == entry || !streq (target->kind->name, link->kind))
                continue;
            found++;
            const char *endpoint = s_port_of (target, link);
            if (endpoint)           //  else its missing bind is reported
                targets [count++] = (tiers_target_t) { target, endpoint };
        }
        if (found == 0 && !link->optional) {
            tiers_problems_add (self->problems, line,
                                "%s needs a %s but the map has none",
                                kind->name, link->kind);
            goto done;
        }
        if (found > 1 && !link->many) {
            tiers_problems_add (self->problems, line,
                                "several %ss: say which one with %s = NAME",
                                link->kind, key);
            count = 0;
            goto done;
        }
    }
    //  inproc:// reaches only the node that binds it.
    for (size_t t = 0; t < count; t++) {
        const tiers_entry_t *target = targets [t].entry;
        if (!tiers_has_prefix (targets [t].endpoint, "inproc://")
        ||  streq (target->node, entry->node))
            continue;
        if (link->many)
            tiers_problems_add (self->problems, line,
                                "%s reaches %s '%s' at %s, bound on node '%s'; "
                                "node '%s' cannot reach it (use tcp://)",
                                kind->name, link->kind, target->name,
                                targets [t].endpoint, target->node, entry->node);
        else
            tiers_problems_add (self->problems, line,
                                "%s is bound on node '%s'; node '%s' cannot reach it "
                                "(use tcp://)", targets [t].endpoint, target->node,
                                entry->node);
    }
done:
    entry->targets [index] = targets;
    entry->target_count [index] = count;
    if (index == 0 && count) {
        entry->connect = targets [0].endpoint;
        entry->connect_explicit = explicit_;
    }
}

static void
s_resolve_links (tiers_loader_t *self)
{
    for (size_t i = 0; i < self->draft_count; i++) {
        tiers_draft_t *draft = &self->drafts [i];
        size_t links = tiers_kind_link_count (draft->entry->kind);
        for (size_t l = 0; l < links; l++)
            s_resolve_link (self, draft, l);
    }
}

//  One entry's claim on the slots, handed over range by range.
typedef struct {
    tiers_problems_t *problems;
    const tiers_entry_t *entry;
    int *owner;             //  per slot: the line of the owning entry, or 0
    bool clash;             //  a slot was owned already
} s_claim_t;

static int
s_claim (long long low, long long high, void *arg)
{
    s_claim_t *claim = (s_claim_t *) arg;
    const tiers_entry_t *entry = claim->entry;
    for (long long s = low; s <= high; s++) {
        if (claim->owner [s] && claim->owner [s] != entry->line) {
            tiers_problems_add (claim->problems, entry->line,
                                "slot %lld of %s '%s' is also owned by the %s "
                                "at line %d", s, entry->kind->name, entry->name,
                                entry->kind->name, claim->owner [s]);
            claim->clash = true;
            break;          //  one problem per range, then the next range
        }
        claim->owner [s] = entry->line;
    }
    return 0;
}

//  Slot ownership: the entries of a kind with a SLOTS key named "slots"
//  (the shards) must own every slot exactly once. One entry without
//  `slots` owns them all.
static void
s_check_slot_owners (tiers_loader_t *self)
{
    const tiers_kind_t *kind;
    for (size_t k = 0; (kind = tiers_kind_at (k)); k++) {
        const tiers_key_t *key = kind->keys ? tiers_key_find (kind->keys, "slots")
                                            : NULL;
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
                    tiers_problems_add (self->problems, entry->line,
                                        "with several %ss each needs 'slots'",
                                        kind->name);
                    complete = false;
                }
                else
                    for (long long s = 0; s < self->slots; s++)
                        owner [s] = entry->line;
                continue;
            }
            s_claim_t claim = { self->problems, entry, owner, false };
            char *why;
            if (tiers_slots_each (value, self->slots, s_claim, &claim, &why)) {
                free (why);             //  reported with the setting
                complete = false;
                continue;
            }
            if (claim.clash)
                complete = false;
        }
        if (complete)
            for (long long s = 0; s < self->slots; s++)
                if (!owner [s]) {
                    long long end = s;
                    while (end + 1 < self->slots && !owner [end + 1])
                        end++;
                    tiers_problems_add (self->problems,
                                        self->cluster_line ? self->cluster_line : 1,
                                        "slots %lld-%lld are owned by no %s",
                                        s, end, kind->name);
                    break;
                }
        free (owner);
    }
}


//  The pool an outlet of `entry` sends to.
static const char *
s_outlet_pool (const tiers_entry_t *entry, const char *outlet)
{
    char key [64];
    snprintf (key, sizeof key, "pool.%s", outlet);
    return tiers_entry_get (entry, key, outlet);
}

//  Every pool an entry joins must be one that some outlet sends to: an
//  API in a pool no route uses would never get a request (and every
//  request of the route it was meant for would be 503).
static void
s_check_pools (tiers_loader_t *self)
{
    zlistx_t *routed = zlistx_new ();
    zlistx_set_comparator (routed, (zlistx_comparator_fn *) strcmp);
    for (size_t i = 0; i < self->draft_count; i++) {
        const tiers_entry_t *entry = self->drafts [i].entry;
        for (size_t o = 0; entry->kind->outlets && entry->kind->outlets [o]; o++) {
            const char *pool = s_outlet_pool (entry, entry->kind->outlets [o]);
            if (pool && !zlistx_find (routed, (void *) pool))
                zlistx_add_end (routed, (void *) pool);
        }
    }
    if (zlistx_size (routed) == 0) {    //  no outlets: callers are not in the map
        zlistx_destroy (&routed);
        return;
    }
    char *names = strdup ("");
    for (const char *pool = (const char *) zlistx_first (routed); pool;
         pool = (const char *) zlistx_next (routed)) {
        char *more = zsys_sprintf ("%s%s%s", names, *names ? ", " : "", pool);
        free (names);
        names = more;
    }
    for (size_t i = 0; i < self->draft_count; i++) {
        const tiers_entry_t *entry = self->drafts [i].entry;
        if (!entry->kind->pool)
            continue;
        const char *pool = tiers_entry_get (entry, "pool", entry->kind->pool);
        if (!pool || zlistx_find (routed, (void *) pool))
            continue;               //  (no value: reported with the setting)
        int line = entry->line;
        for (size_t k = 0; k < entry->setting_count; k++)
            if (streq (entry->keys [k], "pool"))
                line = entry->lines [k];
        tiers_problems_add (self->problems, line,
                            "%s '%s' joins pool '%s', but no route of the map sends "
                            "to it (routed pools: %s)", entry->kind->name, entry->name,
                            pool, names);
    }
    free (names);
    zlistx_destroy (&routed);
}

//  The VPC rung (doc/security.md): a map whose endpoints leave the process
//  says whether they are CURVE or plain, and private actors bind private
//  addresses unless the entry says `public = yes`.
static void
s_check_security (tiers_loader_t *self)
{
    bool given = tiers_map_cluster_given (self->map, "security");
    bool curve = streq (tiers_map_cluster (self->map, "security"), "curve");
    bool reported = false;
    for (size_t i = 0; i < self->draft_count; i++) {
        tiers_draft_t *draft = &self->drafts [i];
        tiers_entry_t *entry = draft->entry;
        entry->curve = curve;
        for (size_t p = 0; p < TIERS_PORTS_MAX; p++) {
            const char *bind = entry->binds [p];
            if (!bind)
                continue;
            tiers_subnet_t subnet = tiers_subnet_of (bind);
            if (subnet != TIERS_SUBNET_INPROC && !given && !reported) {
                tiers_problems_add (self->problems, draft->bind_lines [p] ? draft->bind_lines [p]
                                                                          : self->cluster_line,
                    "endpoint '%s' leaves the process, and the cluster has no `security` "
                    "line: say `security = curve` (nodes authenticate and encrypt; make "
                    "keys with `tiers keys`) or `security = none` (plain text: any peer "
                    "that can connect is served)", bind);
                reported = true;
            }
            if (subnet == TIERS_SUBNET_UNKNOWN && !entry->public_ok)
                tiers_problems_add (self->problems, draft->bind_lines [p],
                    "%s binds '%s', whose address cannot be told here (a name that does "
                    "not resolve, or an interface): bind an address, or say `public = "
                    "yes` in its entry if it may be public", entry->name, bind);
            else
            if (subnet == TIERS_SUBNET_PUBLIC && !entry->public_ok)
                tiers_problems_add (self->problems, draft->bind_lines [p],
                    "%s binds '%s', a public address: a private actor binds loopback or a "
                    "private address (RFC 1918, RFC 4193, link-local); say `public = yes` "
                    "in its entry if it is meant to be reached from outside",
                    entry->name, bind);
        }
    }
}

void
tiers_mapcheck (tiers_loader_t *self)
{
    assert (self);
    s_check_binds (self);
    s_resolve_links (self);
    s_check_slot_owners (self);
    s_check_pools (self);
    s_check_security (self);
}
