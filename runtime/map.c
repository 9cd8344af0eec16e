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

    Pass 2 and the map's accessors are here; pass 1 is zpl.c, pass 3 is
    mapcheck.c, the problems list is problems.c, the value checks are
    parse.c and the plan of `tiers check` is plan.c.
*/
#include "map_internal.h"
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAP_MAX_BYTES   (1024 * 1024)   //  larger files are refused
#define MAP_MAX_ENTRIES 1024            //  actor entries (each up to 256 instances)
#define MAP_NAME_MAX    TIERS_NAME_MAX  //  node and actor names (parse.h)
#define MAP_INSTANCES   256             //  `instances` upper bound
#define MAP_SLOTS       1024            //  default cluster slot count

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
    { "security",  TIERS_KEY_ENUM,   false, 0, 0, "curve|none" },
    { "keys",      TIERS_KEY_STRING, false, 0, 0, NULL },
    { "ack",       TIERS_KEY_ENUM,   false, 0, 0, "primary|replica" },
    { NULL, 0, false, 0, 0, NULL }
};
static const char *s_cluster_defaults [] = {
    "tiers", "./tiers-data", "info", "full", "1024", "1s", "200", "none", "./tiers-keys",
    "primary"
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
//  Pass 2: the tree

static bool
s_good_name (const char *name)
{
    return tiers_name_ok (name, strlen (name));
}

//  A setting must have a value and no children. Returns false if not.
static bool
s_setting_ok (tiers_loader_t *self, tiers_zpl_item_t *item)
{
    bool good = true;
    if (!item->value) {
        tiers_problems_add (self->problems, item->line,
                            "'%s' needs a value: %s = VALUE", item->name, item->name);
        good = false;
    }
    for (int child = item->first_child; child >= 0;
         child = self->items [child].next)
        tiers_problems_add (self->problems, self->items [child].line,
                            "'%s' is indented under the setting '%s', which takes "
                            "no children", self->items [child].name, item->name);
    return good;
}

static void
s_load_cluster (tiers_loader_t *self, tiers_zpl_item_t *cluster)
{
    int first [CLUSTER_KEYS] = { 0 };
    if (cluster->value)
        tiers_problems_add (self->problems, cluster->line,
                            "cluster takes no value (set name = ... inside it)");
    for (int index = cluster->first_child; index >= 0;
         index = self->items [index].next) {
        tiers_zpl_item_t *item = &self->items [index];
        const tiers_key_t *key = tiers_key_find (s_cluster_keys, item->name);
        if (!key) {
            tiers_problems_add (self->problems, item->line,
                                "unknown cluster key '%s' (expected name, data, log, "
                                "sync, slots, heartbeat, spin_us, security or keys)",
                                item->name);
            continue;
        }
        size_t slot = key - s_cluster_keys;
        if (first [slot]) {
            tiers_problems_add (self->problems, item->line,
                                "duplicate key '%s' (first at line %d)",
                                item->name, first [slot]);
            continue;
        }
        first [slot] = item->line;
        if (!s_setting_ok (self, item))
            continue;
        char *problem = tiers_value_check (key, item->value, MAP_SLOTS);
        if (problem) {
            tiers_problems_add (self->problems, item->line, "%s", problem);
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
        for (size_t i = 0; i < TIERS_PORTS_MAX; i++)
            free (self->binds [i]);
        for (size_t i = 0; i < TIERS_LINKS_MAX; i++)
            free (self->targets [i]);
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

tiers_draft_t *
tiers_loader_draft (tiers_loader_t *self, const char *name)
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

//  The names of a kind's ports or links, for messages: "in, news".
static char *
s_socket_names (const tiers_kind_t *kind, bool ports)
{
    char *names = strdup ("");
    size_t count = ports ? tiers_kind_port_count (kind) : tiers_kind_link_count (kind);
    for (size_t i = 0; i < count; i++) {
        char *more = zsys_sprintf ("%s%s%s", names, i ? ", " : "",
                                   ports ? kind->ports [i].name : kind->links [i].name);
        free (names);
        names = more;
    }
    return names;
}

//  Which socket a key names: `bind` / `bind.PORT` a port, `connect` /
//  `connect.LINK` a link (the bare words the first of each). Returns
//  'p' or 'l' with *index_p set, 0 for any other key, or -1 after
//  reporting a socket the kind does not have.
static int
s_socket_key (tiers_loader_t *self, const tiers_kind_t *kind, const char *key,
              int line, size_t *index_p)
{
    bool port = tiers_has_prefix (key, "bind");
    bool link = tiers_has_prefix (key, "connect");
    const char *rest = port ? key + 4 : link ? key + 7 : NULL;
    if (!rest || (*rest && *rest != '.'))
        return 0;
    size_t count = port ? tiers_kind_port_count (kind) : tiers_kind_link_count (kind);
    if (count == 0) {
        if (port && tiers_kind_link_count (kind))
            tiers_problems_add (self->problems, line,
                                "%s does not bind; it connects", kind->name);
        else
        if (port)
            tiers_problems_add (self->problems, line, "a %s has no ports: "
                                "'bind' does not apply to it", kind->name);
        else
            tiers_problems_add (self->problems, line, "a %s connects to nothing: "
                                "'connect' does not apply to it", kind->name);
        return -1;
    }
    *index_p = 0;
    if (*rest == '.'
    && !(port ? (void *) tiers_kind_port (kind, rest + 1, index_p)
              : (void *) tiers_kind_link (kind, rest + 1, index_p))) {
        char *names = s_socket_names (kind, port);
        tiers_problems_add (self->problems, line, "%s has no %s '%s' (%s: %s)",
                            kind->name, port ? "port" : "link", rest + 1,
                            port ? "ports" : "links", names);
        free (names);
        return -1;
    }
    return port ? 'p' : 'l';
}

static void
s_load_entry (tiers_loader_t *self, tiers_zpl_item_t *item, const char *node)
{
    const tiers_kind_t *kind = tiers_kind_find (item->name);
    if (!kind) {
        char *known = s_known_kinds ();
        tiers_problems_add (self->problems, item->line,
                            "unknown actor kind '%s' (known: %s)", item->name, known);
        free (known);
        return;
    }
    const char *name = item->value? item->value: item->name;
    if (!s_good_name (name)) {
        tiers_problems_add (self->problems, item->line,
                            "bad actor name '%s' (up to %d letters, digits, '_' or '-', "
                            "starting with a letter or digit)", name, MAP_NAME_MAX);
        return;
    }
    if (self->draft_count >= MAP_MAX_ENTRIES) {
        //  The checks across the map compare entries pairwise: bounded.
        tiers_problems_add (self->problems, item->line,
                            "more than %d actors in one map", MAP_MAX_ENTRIES);
        return;
    }
    tiers_draft_t *twin = tiers_loader_draft (self, name);
    if (twin) {
        tiers_problems_add (self->problems, item->line,
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

    self->drafts = (tiers_draft_t *) realloc (self->drafts,
                   (self->draft_count + 1) * sizeof (tiers_draft_t));
    assert (self->drafts);
    tiers_draft_t *draft = &self->drafts [self->draft_count++];
    memset (draft, 0, sizeof *draft);
    draft->entry = entry;
    self->map->entries = (tiers_entry_t **) realloc (self->map->entries,
                         (self->map->entry_count + 1) * sizeof (tiers_entry_t *));
    assert (self->map->entries);
    self->map->entries [self->map->entry_count++] = entry;

    char *label = s_entry_label (entry);
    int instances_line = 0, public_line = 0;
    for (int index = item->first_child; index >= 0; index = self->items [index].next) {
        tiers_zpl_item_t *setting = &self->items [index];
        const char *key = setting->name;
        size_t socket = 0;
        int socket_kind = s_socket_key (self, kind, key, setting->line, &socket);
        if (socket_kind < 0)
            continue;
        int first = 0;
        if (socket_kind == 'p')
            first = draft->bind_lines [socket];
        else
        if (socket_kind == 'l')
            first = draft->connect_lines [socket];
        else
        if (streq (key, "instances"))
            first = instances_line;
        else
        if (streq (key, "public"))
            first = public_line;
        else
            for (size_t i = 0; i < entry->setting_count && !first; i++)
                if (streq (entry->keys [i], key))
                    first = entry->lines [i];
        if (first) {
            tiers_problems_add (self->problems, setting->line,
                                "duplicate key '%s' (first at line %d)", key, first);
            continue;
        }
        const tiers_key_t *spec = tiers_key_find (kind->keys, key);
        if (!spec && !socket_kind && !streq (key, "instances") && !streq (key, "public")) {
            tiers_problems_add (self->problems, setting->line,
                                "unknown key '%s' for %s", key, kind->name);
            continue;
        }
        //  Remember the line before checking, so a bad value is not also
        //  reported as missing.
        if (socket_kind == 'p')
            draft->bind_lines [socket] = setting->line;
        else
        if (socket_kind == 'l')
            draft->connect_lines [socket] = setting->line;
        else
        if (streq (key, "instances"))
            instances_line = setting->line;
        else
        if (streq (key, "public"))
            public_line = setting->line;
        else {
            entry->keys [entry->setting_count] = strdup (key);
            entry->lines [entry->setting_count] = setting->line;
            entry->setting_count++;
        }
        if (!s_setting_ok (self, setting))
            continue;
        const char *value = setting->value;
        const char *why;
        if (socket_kind == 'p') {
            if (tiers_endpoint_check (value, &why))
                tiers_problems_add (self->problems, setting->line,
                                    "malformed endpoint '%s': %s", value, why);
            else
                entry->binds [socket] = strdup (value);
        }
        else
        if (socket_kind == 'l') {
            if (strstr (value, "://") && tiers_endpoint_check (value, &why))
                tiers_problems_add (self->problems, setting->line,
                                    "malformed endpoint '%s': %s", value, why);
            else
            if (!strstr (value, "://") && !s_good_name (value))
                tiers_problems_add (self->problems, setting->line,
                                    "bad connect '%s': expected an actor name or an "
                                    "endpoint", value);
            else
                draft->connects [socket] = value;
        }
        else
        if (streq (key, "instances")) {
            long long n;
            if (!kind->multi)
                tiers_problems_add (self->problems, setting->line,
                                    "%s cannot have instances", kind->name);
            else
            if (tiers_parse_int (value, &n) || n < 1 || n > MAP_INSTANCES)
                tiers_problems_add (self->problems, setting->line,
                                    "bad instances '%s': expected an integer from 1 "
                                    "to %d", value, MAP_INSTANCES);
            else
                entry->instances = (int) n;
        }
        else
        if (streq (key, "public")) {
            if (!streq (value, "yes") && !streq (value, "no"))
                tiers_problems_add (self->problems, setting->line,
                                    "bad public '%s': expected yes or no", value);
            entry->public_ok = streq (value, "yes");
        }
        else {
            char *problem = tiers_value_check (spec, value, self->slots);
            if (problem) {
                tiers_problems_add (self->problems, setting->line, "%s", problem);
                free (problem);
            }
            entry->values [entry->setting_count - 1] = strdup (value);
            if (!problem && kind->listener && streq (key, kind->listener)) {
                draft->listener = value;
                draft->listener_line = setting->line;
            }
        }
    }
    entry->bind = entry->binds [0];
    for (size_t i = 0; i < tiers_kind_port_count (kind); i++)
        if (kind->ports [i].required && !draft->bind_lines [i]) {
            if (i == 0)
                tiers_problems_add (self->problems, item->line, "%s needs 'bind'", label);
            else
                tiers_problems_add (self->problems, item->line, "%s needs 'bind.%s'",
                                    label, kind->ports [i].name);
        }
    for (size_t i = 0; kind->keys && kind->keys [i].name; i++) {
        if (!kind->keys [i].required)
            continue;
        bool found = false;
        for (size_t j = 0; j < entry->setting_count && !found; j++)
            found = streq (entry->keys [j], kind->keys [i].name);
        if (!found)
            tiers_problems_add (self->problems, item->line, "%s needs '%s'",
                                label, kind->keys [i].name);
    }
    free (label);
}

static void
s_load_node (tiers_loader_t *self, tiers_zpl_item_t *item)
{
    tiers_map_t *map = self->map;
    if (!item->value || !*item->value) {
        tiers_problems_add (self->problems, item->line, "node needs a name: node = NAME");
        return;
    }
    if (!s_good_name (item->value)) {
        tiers_problems_add (self->problems, item->line,
                            "bad node name '%s' (up to %d letters, digits, '_' or "
                            "'-', starting with a letter or digit)",
                            item->value, MAP_NAME_MAX);
        return;
    }
    if (map->node_count >= MAP_MAX_ENTRIES) {
        //  Every node needs an actor: more nodes than actors cannot load,
        //  and the duplicate check below is pairwise.
        tiers_problems_add (self->problems, item->line,
                            "more than %d nodes in one map", MAP_MAX_ENTRIES);
        return;
    }
    for (size_t i = 0; i < map->node_count; i++)
        if (streq (map->nodes [i], item->value)) {
            tiers_problems_add (self->problems, item->line,
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
        tiers_problems_add (self->problems, item->line,
                            "node '%s' places no actors", item->value);
    for (int index = item->first_child; index >= 0; index = self->items [index].next)
        s_load_entry (self, &self->items [index], item->value);
}


//  --------------------------------------------------------------------------
//  The map

static tiers_map_t *
s_parse (const char *text, size_t size, const char *filename, char **errors)
{
    tiers_problems_t *problems = tiers_problems_new (filename);
    tiers_map_t *self = (tiers_map_t *) zmalloc (sizeof (tiers_map_t));
    self->file = strdup (filename);

    tiers_loader_t loader = { 0 };
    loader.map = self;
    loader.problems = problems;
    loader.slots = MAP_SLOTS;
    if (size > MAP_MAX_BYTES)
        tiers_problems_add (problems, 0, "larger than 1 MiB; a map is a short text");
    else
        loader.items = tiers_zpl_parse (problems, text, size, &loader.item_count);

    //  The cluster block first: its slot count bounds the shards' slots.
    tiers_zpl_item_t *items = loader.items;
    for (size_t i = 0; i < loader.item_count; i++) {
        if (items [i].depth || !streq (items [i].name, "cluster"))
            continue;
        if (loader.cluster_line)
            tiers_problems_add (problems, items [i].line,
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
            tiers_problems_add (problems, items [i].line,
                                "unknown top-level item '%s' (expected cluster "
                                "or node%s)",
                                items [i].name, tiers_kind_find (items [i].name)
                                ? "; actors go inside a node" : "");
    }
    if (!nodes && size <= MAP_MAX_BYTES)
        tiers_problems_add (problems, 1, "the map places no actors");
    tiers_mapcheck (&loader);

    tiers_zpl_destroy (&loader.items, loader.item_count);
    free (loader.drafts);
    free (loader.node_lines);
    if (errors)
        *errors = NULL;
    if (tiers_problems_count (problems)) {
        tiers_problems_report (problems, errors);
        tiers_map_destroy (&self);
    }
    tiers_problems_destroy (&problems);
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
    const tiers_key_t *spec = key? tiers_key_find (s_cluster_keys, key): NULL;
    if (!spec)
        return NULL;
    size_t slot = spec - s_cluster_keys;
    return self->cluster [slot]? self->cluster [slot]: s_cluster_defaults [slot];
}

long long
tiers_map_cluster_number (const tiers_map_t *self, const char *key)
{
    const tiers_key_t *spec = key? tiers_key_find (s_cluster_keys, key): NULL;
    const char *text = tiers_map_cluster (self, key);
    long long n = -1;
    if (!spec || !text
    ||  (spec->type == TIERS_KEY_MS ? tiers_parse_ms (text, &n)
       : spec->type == TIERS_KEY_INT ? tiers_parse_int (text, &n) : -1))
        return -1;
    return n;
}

bool
tiers_map_cluster_given (const tiers_map_t *self, const char *key)
{
    assert (self);
    const tiers_key_t *spec = key? tiers_key_find (s_cluster_keys, key): NULL;
    return spec && self->cluster [spec - s_cluster_keys] != NULL;
}

void
tiers_map_set_keys (tiers_map_t *self, const char *dir)
{
    assert (self && dir);
    size_t slot = tiers_key_find (s_cluster_keys, "keys") - s_cluster_keys;
    free (self->cluster [slot]);
    self->cluster [slot] = strdup (dir);
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
tiers_entry_port (const tiers_entry_t *self, const char *port)
{
    assert (self);
    size_t index;
    return tiers_kind_port (self->kind, port, &index) ? self->binds [index] : NULL;
}

size_t
tiers_entry_targets (const tiers_entry_t *self, const char *link,
                     const tiers_target_t **targets_p)
{
    assert (self);
    size_t index;
    if (!tiers_kind_link (self->kind, link, &index)) {
        if (targets_p)
            *targets_p = NULL;
        return 0;
    }
    if (targets_p)
        *targets_p = self->targets [index];
    return self->target_count [index];
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
    const tiers_key_t *spec = tiers_key_find (self->kind->keys, key);
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
    tiers_tcp_port_t wanted;
    const char *why = "expected HOST:PORT";
    if (!hostport
    ||  tiers_hostport_check (hostport, wanted.host, sizeof wanted.host,
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
        tiers_tcp_port_t port;
        if (entry == target)
            continue;
        const char *listener = entry->kind->listener
                             ? tiers_entry_get (entry, entry->kind->listener, NULL)
                             : NULL;
        if (listener
        &&  tiers_hostport_check (listener, port.host, sizeof port.host,
                                  &port.port, 0, true, &why) == 0
        &&  tiers_tcp_port_clash (&wanted, &port)) {
            snprintf (self->listener_error, sizeof self->listener_error,
                      "port %d is %s's listener (line %d)", wanted.port,
                      entry->name, entry->line);
            return -1;
        }
        for (size_t p = 0; p < TIERS_PORTS_MAX; p++) {
            const char *bind = entry->binds [p];
            if (bind && tiers_has_prefix (bind, "tcp://")
            &&  tiers_hostport_check (bind + 6, port.host, sizeof port.host,
                                      &port.port, 1, false, &why) == 0
            &&  tiers_tcp_port_clash (&wanted, &port)) {
                snprintf (self->listener_error, sizeof self->listener_error,
                          "port %d is bound by %s (line %d)", wanted.port,
                          entry->name, entry->line);
                return -1;
            }
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
