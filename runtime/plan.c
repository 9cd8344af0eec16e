/*  plan.c — the placement plan that `tiers check` prints.

    What `tiers run` would do with a map, said before it does it: each node
    with the actors it places there (kind, instances, bind and the resolved
    connect; under a shard its replicas and its `ack`), then the public
    listeners, so that everything not listed is
    visibly private. It reads the loaded map through map.h only; a map that
    loaded is complete, so the plan needs no checks of its own.
*/
#include "map.h"
#include "subnet.h"

//  The kind of the entries that follow `kind`'s port through a link
//  named by a key (the replicas of a shard: the replica's link `primary`
//  is named by its `of`), or NULL when no kind does.
static const tiers_kind_t *
s_follower_kind (const tiers_kind_t *kind)
{
    const tiers_kind_t *other;
    for (size_t k = 0; (other = tiers_kind_at (k)); k++)
        for (size_t l = 0; l < tiers_kind_link_count (other); l++) {
            const tiers_link_t *link = &other->links [l];
            if (link->by && streq (link->kind, kind->name)
            &&  tiers_kind_port (kind, link->port, NULL))
                return other;
        }
    return NULL;
}

//  Under an entry that can be followed: who follows it (a shard's
//  replicas), and when its writes are acknowledged (`ack`, the entry's
//  or the cluster's: primary or replica; primary when neither says).
static void
s_print_followers (const tiers_map_t *self, const tiers_entry_t *entry,
                   int indent, FILE *out)
{
    const tiers_kind_t *follower = s_follower_kind (entry->kind);
    if (!follower)
        return;
    fprintf (out, "    %*s%ss:", indent, "", follower->name);
    size_t count = 0;
    for (size_t i = 0; i < tiers_map_entry_count (self); i++) {
        const tiers_entry_t *from = tiers_map_entry (self, i);
        for (size_t l = 0; l < tiers_kind_link_count (from->kind); l++) {
            const tiers_target_t *targets;
            size_t reached = tiers_entry_targets (from, from->kind->links [l].name,
                                                  &targets);
            if (from->kind->links [l].by && reached && targets [0].entry == entry)
                fprintf (out, "%s %s (node %s)", count++ ? "," : "", from->name,
                         from->node);
        }
    }
    const char *cluster_ack = tiers_map_cluster (self, "ack");
    fprintf (out, "%s  ack: %s\n", count ? "" : " none",
             tiers_entry_get (entry, "ack", cluster_ack ? cluster_ack : "primary"));
}

void
tiers_map_print_plan (const tiers_map_t *self, const char *node, FILE *out)
{
    assert (self && out);
    size_t entries = tiers_map_entry_count (self);
    size_t nodes = tiers_map_node_count (self);
    int name_width = 4, kind_width = 4;
    size_t listeners = 0;
    for (size_t i = 0; i < entries; i++) {
        const tiers_entry_t *entry = tiers_map_entry (self, i);
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
             tiers_map_name (self), tiers_map_file (self),
             tiers_map_cluster (self, "slots"), tiers_map_cluster (self, "data"));
    for (size_t n = 0; n < nodes; n++) {
        const char *name = tiers_map_node_name (self, n);
        if (node && !streq (node, name))
            continue;
        fprintf (out, "\nnode %s\n", name);
        for (size_t i = 0; i < entries; i++) {
            const tiers_entry_t *entry = tiers_map_entry (self, i);
            if (!streq (entry->node, name))
                continue;
            fprintf (out, "    %-*s  %-*s  x%-2d", name_width, entry->name,
                     kind_width, entry->kind->name, entry->instances);
            const tiers_kind_t *kind = entry->kind;
            for (size_t p = 0; p < tiers_kind_port_count (kind); p++) {
                const char *bind = tiers_entry_port (entry, kind->ports [p].name);
                if (bind)
                    fprintf (out, "  bind%s%s %s", p ? "." : "",
                             p ? kind->ports [p].name : "", bind);
            }
            for (size_t l = 0; l < tiers_kind_link_count (kind); l++) {
                const tiers_target_t *targets;
                size_t count = tiers_entry_targets (entry, kind->links [l].name, &targets);
                if (count == 0)
                    continue;
                fprintf (out, "  connect%s%s ", l ? "." : "", l ? kind->links [l].name : "");
                for (size_t t = 0; t < count; t++)
                    fprintf (out, "%s%s", t ? "," : "", targets [t].endpoint);
            }
            const char *listener = entry->kind->listener;
            const char *address = listener
                                ? tiers_entry_get (entry, listener, NULL): NULL;
            if (address)
                fprintf (out, "  %s %s (public)", listener, address);
            fprintf (out, "\n");
            s_print_followers (self, entry, name_width + 2, out);
        }
    }
    fprintf (out, "\npublic listeners:%s\n", listeners? "": " none");
    for (size_t i = 0; i < entries; i++) {
        const tiers_entry_t *entry = tiers_map_entry (self, i);
        const char *listener = entry->kind->listener;
        const char *address = listener
                            ? tiers_entry_get (entry, listener, NULL): NULL;
        if (address && (!node || streq (node, entry->node)))
            fprintf (out, "    %s %s  (%s on node %s)\n", listener, address,
                     entry->name, entry->node);
    }
    fprintf (out, "everything else is private: actors reach each other only "
                  "through the endpoints above\n");

    //  The subnet view: every bound port, where it can be reached from, and
    //  which nodes the map lets reach it (with CURVE, nobody else can).
    bool curve = streq (tiers_map_cluster (self, "security"), "curve");
    fprintf (out, "\nsecurity %s%s%s\n", curve ? "curve (keys " : "none",
             curve ? tiers_map_cluster (self, "keys") : "", curve
             ? "): every tcp:// and ipc:// port admits only the nodes listed"
             : ": plain text, any peer that can connect to a tcp:// or ipc:// port "
               "is served");
    fprintf (out, "subnets:\n");
    for (size_t i = 0; i < entries; i++) {
        const tiers_entry_t *entry = tiers_map_entry (self, i);
        if (node && !streq (node, entry->node))
            continue;
        const tiers_kind_t *kind = entry->kind;
        for (size_t p = 0; p < tiers_kind_port_count (kind); p++) {
            const char *bind = tiers_entry_port (entry, kind->ports [p].name);
            if (!bind)
                continue;
            tiers_subnet_t subnet = tiers_subnet_of (bind);
            fprintf (out, "    %-*s  %-9s %-28s %-10s reached by:", name_width,
                     entry->name, kind->ports [p].name, bind, tiers_subnet_name (subnet));
            size_t reachers = 0;
            for (size_t n = 0; n < nodes; n++) {
                const char *from_node = tiers_map_node_name (self, n);
                bool reaches = false;
                for (size_t e = 0; e < entries && !reaches; e++) {
                    const tiers_entry_t *from = tiers_map_entry (self, e);
                    if (!streq (from->node, from_node))
                        continue;
                    for (size_t l = 0; l < tiers_kind_link_count (from->kind) && !reaches; l++) {
                        const tiers_link_t *link = &from->kind->links [l];
                        const tiers_target_t *targets;
                        size_t count = tiers_entry_targets (from, link->name, &targets);
                        for (size_t t = 0; t < count && !reaches; t++)
                            reaches = targets [t].entry == entry && link->port
                                   && streq (link->port, kind->ports [p].name);
                    }
                }
                if (reaches)
                    fprintf (out, "%s%s", reachers++ ? ", " : " ", from_node);
            }
            fprintf (out, "%s%s\n", reachers ? "" : " nobody",
                     entry->public_ok ? "  (public = yes)" : "");
        }
    }
}
