/*  mapcheck.c — pass 3 of the map loader: the checks across the map.

    Each entry was checked alone in pass 2 (map.c); what is left needs all
    of them at once: no endpoint bound twice, no TCP port used twice on one
    host, every `connect` resolved to an endpoint that something in the map
    binds and that the connecting node can reach, every kind an entry
    `uses` present and reachable, and every slot owned by exactly one shard.
    The checks compare entries pairwise, which the loader keeps affordable
    by bounding the number of entries.
*/
#include "map_internal.h"
#include "parse.h"
#include "slot.h"

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
    tiers_tcp_port_t *ports = (tiers_tcp_port_t *) calloc (self->draft_count * 2 + 1,
                                                   sizeof (tiers_tcp_port_t));
    assert (ports);
    size_t port_count = 0;
    const char *why;
    for (size_t i = 0; i < self->draft_count; i++) {
        tiers_draft_t *draft = &self->drafts [i];
        tiers_entry_t *entry = draft->entry;
        tiers_tcp_port_t port;
        if (entry->bind) {
            bool duplicate = false;
            for (size_t j = 0; j < i && !duplicate; j++)
                if (self->drafts [j].entry->bind
                &&  streq (self->drafts [j].entry->bind, entry->bind)) {
                    tiers_problems_add (self->problems, draft->bind_line,
                                        "endpoint '%s' is already bound at line %d",
                                        entry->bind, self->drafts [j].bind_line);
                    duplicate = true;
                }
            if (!duplicate && tiers_has_prefix (entry->bind, "tcp://")
            &&  tiers_hostport_check (entry->bind + 6, port.host, sizeof port.host,
                                      &port.port, 1, false, &why) == 0) {
                port.line = draft->bind_line;
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

static void
s_resolve_connects (tiers_loader_t *self)
{
    for (size_t i = 0; i < self->draft_count; i++) {
        tiers_draft_t *draft = &self->drafts [i];
        tiers_entry_t *entry = draft->entry;
        const tiers_entry_t *target = NULL;
        int line = draft->connect_line;
        if (draft->connect_line && !draft->connect)
            continue;               //  a bad value, already reported
        if (draft->connect && !entry->kind->peer) {
            tiers_problems_add (self->problems, line, "a %s connects to nothing: "
                                "'connect' does not apply to it", entry->kind->name);
            continue;
        }
        if (draft->connect && strstr (draft->connect, "://")) {
            for (size_t j = 0; j < self->draft_count && !target; j++)
                if (self->drafts [j].entry->bind
                &&  streq (self->drafts [j].entry->bind, draft->connect))
                    target = self->drafts [j].entry;
            if (!target) {
                tiers_problems_add (self->problems, line,
                                    "nothing in the map binds '%s'", draft->connect);
                continue;
            }
        }
        else
        if (draft->connect) {
            tiers_draft_t *named = tiers_loader_draft (self, draft->connect);
            if (!named) {
                tiers_problems_add (self->problems, line,
                                    "connect: no actor named '%s' in the map",
                                    draft->connect);
                continue;
            }
            if (named->entry == entry) {
                tiers_problems_add (self->problems, line,
                                    "%s cannot connect to itself", entry->name);
                continue;
            }
            if (!named->entry->bind) {
                if (!named->bind_line)  //  else its bind was reported
                    tiers_problems_add (self->problems, line,
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
                tiers_problems_add (self->problems, line,
                                    "%s needs a %s but the map has none",
                                    entry->kind->name, peer);
                continue;
            }
            if (found > 1) {
                tiers_problems_add (self->problems, line,
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
            tiers_problems_add (self->problems, line,
                                "a %s connects to a %s; %s '%s' is not one",
                                entry->kind->name, entry->kind->peer,
                                target->kind->name, target->name);
            continue;
        }
        if (tiers_has_prefix (target->bind, "inproc://")
        &&  !streq (target->node, entry->node)) {
            tiers_problems_add (self->problems, line,
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
s_check_uses (tiers_loader_t *self)
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
            if (tiers_has_prefix (target->bind, "inproc://")
            &&  !streq (target->node, entry->node))
                tiers_problems_add (self->problems, entry->line,
                                    "%s reaches %s '%s' at %s, bound on node '%s'; "
                                    "node '%s' cannot reach it (use tcp://)",
                                    entry->kind->name, uses, target->name, target->bind,
                                    target->node, entry->node);
        }
        if (found == 0)
            tiers_problems_add (self->problems, entry->line,
                                "%s needs a %s but the map has none",
                                entry->kind->name, uses);
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


void
tiers_mapcheck (tiers_loader_t *self)
{
    assert (self);
    s_check_binds (self);
    s_resolve_connects (self);
    s_check_uses (self);
    s_check_slot_owners (self);
}
