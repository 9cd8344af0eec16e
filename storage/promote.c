/*  promote.c — `tiers promote -m MAP REPLICA`: make a replica the primary
    of its shard, with the next epoch (doc/replication.md, "Promotion").

    The tool talks to the running copies of the shard (the shard entry and
    every replica whose `of` names it) on their requests ports, as a node
    of the map that may reach them all (with CURVE, with that node's keys).

        1. STATUS of every copy: role, epoch, sequence (applied), state.
           A majority of the copies must answer (else --force), so that
           the new epoch — one above the highest seen — is above every
           epoch a majority ever took.
        2. The shard entry, if it answers (primary, checking or fenced):
           it is fenced first (`fence`: from then on it acknowledges
           nothing), and the replica must reach the sequence it last
           published (5 s) — else nothing is promoted, unless --force.
           It does not answer (it died): the replica must be the most
           advanced of the replicas that answer, unless --force. Either
           way the replica must be streaming or catching up.
        3. `fence` to every other replica: each keeps the new epoch in its
           file and will follow only a primary of that epoch.
        4. `promote` to the replica: it writes the new epoch and a new
           incarnation into its file and serves as the primary.
        A copy that does not answer learns the epoch when it comes back: a
        shard asks its replicas, and takes no write until a majority of
        the copies answered; one of them was told.

    Why two primaries never both acknowledge: the old primary is fenced
    before the promotion when it answers; when it does not, it is either
    dead or cut off, and a shard that comes back asks its replicas for
    their epochs before it takes a write, and again every second. With
    `ack = replica` a write also needs a replica's ack, and the replicas
    that were told the new epoch follow only the new primary.
*/
#include "storage/promote.h"
#include "wire.h"
#include "sock.h"
#include "security.h"
#include "service.h"
#include "log.h"
#include <jansson.h>
#include <inttypes.h>

#define COPIES_MAX      17          //  a shard and its replicas
#define ASK_MS          2000        //  one question's bound
#define CATCH_UP_MS     5000        //  a planned switch waits this long
#define PROMOTE_MS      10000       //  the promote order's bound

typedef struct {
    const tiers_entry_t *entry;
    bool replica;                   //  else the shard entry
    zsock_t *sock;
    bool answered;
    char role [16];                 //  primary, checking, fenced, replica
    char state [24];                //  a replica's
    char incarnation [16];
    int64_t epoch, sequence;
} copy_t;

static int s_rid;

static tiers_wire_t *
s_ask (copy_t *copy, tiers_wire_t *request, int timeout_ms)
{
    char rid [32];
    snprintf (rid, sizeof rid, "promote-%d", ++s_rid);
    tiers_wire_set_rid (request, rid);
    request->deadline = tiers_wire_now () + timeout_ms;
    return tiers_call (copy->sock, request, timeout_ms);
}

//  STATUS into the copy's fields; false when it did not answer.
static bool
s_status (copy_t *copy)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
    tiers_wire_t *reply = s_ask (copy, request, ASK_MS);
    tiers_wire_destroy (&request);
    json_t *status = reply && reply->status == 200
        ? json_loadb ((const char *) reply->body, reply->body_size, 0, NULL) : NULL;
    tiers_wire_destroy (&reply);
    copy->answered = status != NULL;
    if (status) {
        const char *role = json_string_value (json_object_get (status, "role"));
        const char *state = json_string_value (json_object_get (status, "state"));
        const char *incarnation = json_string_value (json_object_get (status, "incarnation"));
        snprintf (copy->role, sizeof copy->role, "%s", role ? role : "replica");
        snprintf (copy->state, sizeof copy->state, "%s", state ? state : "");
        snprintf (copy->incarnation, sizeof copy->incarnation, "%s",
                  incarnation ? incarnation : "");
        copy->epoch = json_integer_value (json_object_get (status, "epoch"));
        json_t *applied = json_object_get (status, "applied");
        copy->sequence = json_integer_value (applied ? applied
                                                     : json_object_get (status, "sequence"));
    }
    json_decref (status);
    return copy->answered;
}

//  `op` (fence or promote) with epoch and by; the reply (or NULL).
static tiers_wire_t *
s_order (copy_t *copy, const char *op, int64_t epoch, const char *by)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_header (request, "op", op, strlen (op));
    tiers_wire_set_headerf (request, "epoch", "%" PRId64, epoch);
    tiers_wire_set_header (request, "by", by, strlen (by));
    //  A promotion reopens a file and starts a writer: give it longer.
    tiers_wire_t *reply = s_ask (copy, request, streq (op, "promote") ? PROMOTE_MS : ASK_MS);
    tiers_wire_destroy (&request);
    return reply;
}

//  A node of the map whose entries' links reach the requests port of
//  every copy: the tool speaks as that node. NULL when none does.
static const tiers_entry_t *
s_speaker (const tiers_map_t *map, copy_t *copies, size_t count)
{
    for (size_t i = 0; i < tiers_map_entry_count (map); i++) {
        const tiers_entry_t *entry = tiers_map_entry (map, i);
        size_t reached = 0;
        for (size_t c = 0; c < count; c++) {
            const char *endpoint = tiers_entry_port (copies [c].entry, "requests");
            bool found = false;
            for (size_t l = 0; l < tiers_kind_link_count (entry->kind) && !found; l++) {
                const tiers_target_t *targets = NULL;
                size_t n = tiers_entry_targets (entry, entry->kind->links [l].name, &targets);
                for (size_t t = 0; t < n && !found; t++)
                    found = targets [t].entry == copies [c].entry
                         && endpoint && streq (targets [t].endpoint, endpoint);
            }
            reached += found;
        }
        if (reached == count)
            return entry;
    }
    return NULL;
}

int
tiers_promote_run (tiers_map_t *map, const char *name, bool force, FILE *out)
{
    const tiers_entry_t *target = name ? tiers_map_find (map, name) : NULL;
    if (!target || !streq (target->kind->name, "replica")) {
        fprintf (stderr, "tiers: promote: %s '%s' is not a replica of the map\n",
                 tiers_map_file (map), name ? name : "");
        return 2;
    }
    const char *shard_name = tiers_entry_get (target, "of", NULL);
    copy_t copies [COPIES_MAX];
    memset (copies, 0, sizeof copies);
    size_t count = 0;
    const tiers_entry_t *shard = shard_name ? tiers_map_find (map, shard_name) : NULL;
    if (shard)
        copies [count++] = (copy_t) { .entry = shard };
    copy_t *chosen = NULL;
    for (size_t i = 0; i < tiers_map_entry_count (map) && count < COPIES_MAX; i++) {
        const tiers_entry_t *entry = tiers_map_entry (map, i);
        const char *of = tiers_entry_get (entry, "of", NULL);
        if (streq (entry->kind->name, "replica") && of && streq (of, shard_name)) {
            copies [count] = (copy_t) { .entry = entry, .replica = true };
            if (entry == target)
                chosen = &copies [count];
            count++;
        }
    }
    assert (chosen);
    int rc = 0;
    tiers_security_t *security = NULL;
    const tiers_entry_t *speaker = s_speaker (map, copies, count);
    if (!speaker) {
        fprintf (stderr, "tiers: promote: no node of the map reaches every copy of %s\n",
                 shard_name);
        return 1;
    }
    if (tiers_security_curve (map)) {
        char *why = NULL;
        security = tiers_security_new (map, speaker->node, tiers_map_cluster (map, "keys"),
                                       &why);
        if (!security) {
            fprintf (stderr, "tiers: promote: the keys of node %s: %s\n", speaker->node, why);
            free (why);
            return 1;
        }
    }
    for (size_t c = 0; c < count; c++) {
        char *why = NULL;
        copies [c].sock = tiers_sock_connect_from (speaker, ZMQ_DEALER,
            tiers_entry_port (copies [c].entry, "requests"), &why);
        if (!copies [c].sock) {
            fprintf (stderr, "tiers: promote: cannot reach %s: %s\n",
                     copies [c].entry->name, why ? why : "?");
            free (why);
        }
    }

    //  1. Where every copy stands.
    int64_t top = 0;
    copy_t *primary = NULL;
    size_t answered = 0;
    for (size_t c = 0; c < count; c++) {
        copy_t *copy = &copies [c];
        if (!copy->sock || !s_status (copy)) {
            fprintf (out, "  %-12s no answer\n", copy->entry->name);
            continue;
        }
        fprintf (out, "  %-12s %-8s epoch %" PRId64 ", sequence %" PRId64 "%s%s\n",
                 copy->entry->name, copy->replica && !streq (copy->role, "primary")
                 ? "replica" : copy->role, copy->epoch, copy->sequence,
                 *copy->state ? ", " : "", copy->state);
        answered++;
        if (copy->epoch > top)
            top = copy->epoch;
        //  The shard entry in any role it answers with (it may be checking,
        //  or fenced by a promotion that did not finish), or a replica that
        //  was promoted before.
        bool primary_like = streq (copy->role, "primary") || (!copy->replica
                         && (streq (copy->role, "checking") || streq (copy->role, "fenced")));
        if (primary_like && (!primary || copy->epoch > primary->epoch))
            primary = copy;
    }
    if (answered < count / 2 + 1 && !force) {
        fprintf (stderr, "tiers: promote: %zu of the %zu copies of %s answered; a "
                 "majority must (else an epoch could be taken twice): nothing was "
                 "changed (--force promotes anyway)\n", answered, count, shard_name);
        rc = 1;
        goto done;
    }
    if (!chosen->answered) {
        fprintf (stderr, "tiers: promote: %s does not answer: nothing was changed\n", name);
        rc = 1;
        goto done;
    }
    if (primary == chosen) {
        //  Done before; the others are told again (a run that stopped half way).
        fprintf (out, "tiers: %s is the primary of %s already (epoch %" PRId64 ")\n",
                 name, shard_name, chosen->epoch);
        for (size_t c = 0; c < count; c++)
            if (&copies [c] != chosen && copies [c].sock) {
                tiers_wire_t *reply = s_order (&copies [c], "fence", chosen->epoch, name);
                tiers_wire_destroy (&reply);
            }
        goto done;
    }
    if (!force && !streq (chosen->state, "streaming") && !streq (chosen->state, "catching up")
    &&  !streq (chosen->state, "catching_up")) {
        fprintf (stderr, "tiers: promote: %s is %s, not streaming or catching up: "
                 "nothing was changed (--force promotes it anyway)\n", name,
                 *chosen->state ? chosen->state : "in no known state");
        rc = 1;
        goto done;
    }
    int64_t epoch = top + 1;

    //  2. A live primary is fenced first, and the replica must catch up.
    if (primary) {
        if (!force && !streq (chosen->incarnation, primary->incarnation)) {
            fprintf (stderr, "tiers: promote: %s is not a copy of %s's incarnation: "
                     "nothing was changed (--force promotes it anyway)\n", name,
                     primary->entry->name);
            rc = 1;
            goto done;
        }
        tiers_wire_t *reply = s_order (primary, "fence", epoch, name);
        bool fenced = reply && reply->status == 200;
        int64_t last = fenced ? atoll (tiers_wire_header (reply, "sequence") ?: "0") : 0;
        tiers_wire_destroy (&reply);
        if (!fenced && !force) {
            fprintf (stderr, "tiers: promote: %s did not take the fence: nothing was "
                     "changed\n", primary->entry->name);
            rc = 1;
            goto done;
        }
        fprintf (out, "tiers: %s fenced at sequence %" PRId64 "\n", primary->entry->name, last);
        int64_t until = zclock_mono () + CATCH_UP_MS;
        while (s_status (chosen) && chosen->sequence < last && zclock_mono () < until)
            zclock_sleep (50);
        if (chosen->sequence < last) {
            fprintf (stderr, "tiers: promote: %s reached %" PRId64 " of %" PRId64 " within "
                     "%d ms%s\n", name, chosen->sequence, last, CATCH_UP_MS,
                     force ? ": promoting it anyway (--force): the rest is lost"
                           : ": nothing was promoted, and the primary stays fenced; "
                             "--force promotes it anyway");
            if (!force) {
                rc = 1;
                goto done;
            }
        }
    }
    else {
        //  No primary answers: the most advanced replica, or --force.
        for (size_t c = 0; c < count; c++) {
            copy_t *copy = &copies [c];
            if (copy != chosen && copy->answered && copy->replica
            &&  streq (copy->incarnation, chosen->incarnation)
            &&  copy->sequence > chosen->sequence && !force) {
                fprintf (stderr, "tiers: promote: %s has more (sequence %" PRId64
                         " against %" PRId64 "): promote it instead, or use --force\n",
                         copy->entry->name, copy->sequence, chosen->sequence);
                rc = 1;
                goto done;
            }
        }
    }

    //  3. Every other replica is told the new epoch first: from then on it
    //  follows only a primary of that epoch.
    for (size_t c = 0; c < count; c++) {
        copy_t *copy = &copies [c];
        if (copy == chosen || copy == primary || !copy->sock)
            continue;
        tiers_wire_t *reply = s_order (copy, "fence", epoch, name);
        fprintf (out, "  %-12s %s\n", copy->entry->name,
                 reply && reply->status == 200 ? "told the new epoch"
                 : "no answer: it learns the epoch when it comes back");
        tiers_wire_destroy (&reply);
    }

    //  4. The promotion. Its answer may come late (the file is reopened):
    //  no answer is asked about again before it counts as refused.
    tiers_wire_t *reply = s_order (chosen, "promote", epoch, name);
    if (!reply && s_status (chosen) && streq (chosen->role, "primary")
    &&  chosen->epoch == epoch) {
        fprintf (out, "tiers: %s is the primary of %s: epoch %" PRId64 ", sequence %" PRId64
                 ", incarnation %s\n", name, shard_name, epoch, chosen->sequence,
                 chosen->incarnation);
        goto done;
    }
    if (!reply || reply->status != 200) {
        fprintf (stderr, "tiers: promote: %s refused: %s\n", name,
                 reply ? (tiers_wire_header (reply, "error") ?: "?") : "no answer");
        tiers_wire_destroy (&reply);
        rc = 1;
        goto done;
    }
    fprintf (out, "tiers: %s is the primary of %s: epoch %" PRId64 ", sequence %s, "
             "incarnation %s\n", name, shard_name, epoch,
             tiers_wire_header (reply, "sequence") ?: "?",
             tiers_wire_header (reply, "incarnation") ?: "?");
    tiers_wire_destroy (&reply);
done:
    for (size_t c = 0; c < count; c++)
        zsock_destroy (&copies [c].sock);
    tiers_security_destroy (&security);
    return rc;
}
