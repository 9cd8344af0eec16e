/*  security.c — CURVE keys, the ZAP handler and least privilege (see
    security.h and doc/security.md).

    Process-wide state, under one lock: the contexts (one per node object
    that started with keys), the ZAP domains they registered, and the ZAP
    handler actor. A domain is "ID/ENTRY/PORT": ID tells the contexts apart
    (tests run several maps in one process), ENTRY/PORT is the bound port.
    Each domain holds the public keys allowed to reach that port, taken
    from the map: the nodes of every entry with a link to it.

    The handler also watches every CURVE server socket through a libzmq
    monitor, for the handshakes that fail before ZAP is asked (a client
    without CURVE, garbage, a truncated greeting); those are counted as
    reason="handshake", refusals of ZAP as reason="key".
*/
#include "security.h"
#include "log.h"
#include "metrics.h"
#include <pthread.h>
#include <sys/stat.h>

#define KEY_TXT         41          //  Z85 of a 32-byte key, and its NUL
#define ZAP_ENDPOINT    "inproc://zeromq.zap.01"
#define LOGGED_MAX      4096        //  peers logged once each, at most

typedef struct {
    char name [64];                 //  the node
    char public_txt [KEY_TXT];
    zcert_t *cert;                  //  with its secret: a node run here
} node_key_t;

struct _tiers_security_t {
    const tiers_map_t *map;
    unsigned id;
    node_key_t *nodes;
    size_t node_count;
    zlistx_t *domains;              //  the names it registered
    bool registered;                //  in s_contexts, counted in s_zap_users
};

typedef struct {
    char label [160];               //  "ENTRY/PORT", for logs
    zhashx_t *keys;                 //  Z85 public key -> node name
    tiers_counter_t *refused_key, *refused_handshake;
} domain_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
//  The ZAP actor's pipe, used from the actor threads that make sockets.
//  Its own lock: the ZAP actor takes s_lock, never this one.
static pthread_mutex_t s_pipe_lock = PTHREAD_MUTEX_INITIALIZER;
//  Starting and stopping the handler (and counting the contexts that need
//  it): never held with s_lock, which a stopping handler may still wait
//  for inside a request.
static pthread_mutex_t s_zap_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_zap_users;
static zlistx_t *s_contexts;        //  tiers_security_t *
static zhashx_t *s_domains;         //  name -> domain_t *
static zactor_t *s_zap;
static unsigned s_next_id;
static unsigned s_next_monitor;


//  --------------------------------------------------------------------------
//  Keys on disk

bool
tiers_security_curve (const tiers_map_t *map)
{
    const char *security = tiers_map_cluster (map, "security");
    return security && streq (security, "curve");
}

//  Does the public file itself hold `key`? (zcert_load reads only the
//  secret file when there is one: the public file the other nodes get
//  must say the same.)
static bool
s_public_file_is (const char *path, const char *key)
{
    zconfig_t *root = zconfig_load (path);
    const char *text = root ? zconfig_get (root, "/curve/public-key", NULL) : NULL;
    bool same = text && streq (text, key);
    zconfig_destroy (&root);
    return same;
}

static bool
s_key_txt_ok (const char *txt)
{
    uint8_t key [32];
    return txt && strlen (txt) == 40 && zmq_z85_decode (key, txt)
        && strspn (txt, "0") != 40;
}

//  Loads NODE's certificate from dir: the public part always, the secret
//  too when `own`. 0, or -1 + *why.
static int
s_load_node (node_key_t *key, const char *dir, bool own, char **why)
{
    char *path = zsys_sprintf ("%s/%s.cert", dir, key->name);
    char *secret = zsys_sprintf ("%s/%s.cert_secret", dir, key->name);
    struct stat st, dir_st;
    int rc = -1;
    if (stat (dir, &dir_st) == 0 && (dir_st.st_mode & 022))
        *why = zsys_sprintf ("%s can be written by others (mode %04o): whoever can write "
                             "a node's key there is that node (chmod 700 %s)", dir,
                             (unsigned) (dir_st.st_mode & 07777), dir);
    else
    if (stat (path, &st))
        *why = zsys_sprintf ("no key of node '%s': %s is missing (make the keys with "
                             "`tiers keys -m MAP -o %s`)", key->name, path, dir);
    else
    if (st.st_mode & 022)
        *why = zsys_sprintf ("%s can be written by others (mode %04o): chmod 644 %s", path,
                             (unsigned) (st.st_mode & 07777), path);
    else
    if (own && stat (secret, &st))
        *why = zsys_sprintf ("no secret key of node '%s': %s is missing (it is made "
                             "by `tiers keys` and must stay on that node's host)",
                             key->name, secret);
    else
    if (own && (st.st_mode & 077))
        *why = zsys_sprintf ("%s can be read by others (mode %04o): a secret key "
                             "must be mode 0600 (chmod 600 %s)", secret,
                             (unsigned) (st.st_mode & 07777), secret);
    else {
        zcert_t *cert = zcert_load (path);
        const char *public_txt = cert ? zcert_public_txt (cert) : NULL;
        char derived [KEY_TXT] = "";
        if (!cert || !s_key_txt_ok (public_txt))
            *why = zsys_sprintf ("%s is not a CURVE certificate (corrupt?)", path);
        else
        if (own && (!s_key_txt_ok (zcert_secret_txt (cert))
                 || zmq_curve_public (derived, zcert_secret_txt (cert)) != 0
                 || !streq (derived, public_txt)
                 || !s_public_file_is (path, derived)))
            *why = zsys_sprintf ("%s does not hold the secret of %s (corrupt, or from "
                                 "another key pair)", secret, path);
        else {
            snprintf (key->public_txt, sizeof key->public_txt, "%s", public_txt);
            if (own) {
                key->cert = cert;
                cert = NULL;
            }
            rc = 0;
        }
        zcert_destroy (&cert);
    }
    free (path);
    free (secret);
    return rc;
}

int
tiers_security_make_keys (const tiers_map_t *map, const char *dir, bool rotate,
                          FILE *out, char **why)
{
    *why = NULL;
    if (zsys_dir_create ("%s", dir) || chmod (dir, 0700)) {
        *why = zsys_sprintf ("cannot make %s: %s", dir, strerror (errno));
        return -1;
    }
    for (size_t i = 0; i < tiers_map_node_count (map); i++) {
        node_key_t key = { "", "", NULL };
        snprintf (key.name, sizeof key.name, "%s", tiers_map_node_name (map, i));
        //  Without --rotate a node that has a public key keeps it, whether
        //  or not its secret is on this host (it should be on its own).
        char *public_path = zsys_sprintf ("%s/%s.cert", dir, key.name);
        bool exists = zsys_file_exists (public_path);
        free (public_path);
        if (!rotate && exists) {
            char *error = NULL;
            if (s_load_node (&key, dir, false, &error) == 0) {
                char *own = NULL;
                node_key_t check = key;
                check.cert = NULL;
                bool secret = s_load_node (&check, dir, true, &own) == 0;
                fprintf (out, "%s: kept %s%s%s\n", key.name, key.public_txt,
                         secret ? "" : " (", secret ? "" : "no usable secret here: ");
                if (!secret)
                    fprintf (out, "    %s)\n", own);
                zcert_destroy (&check.cert);
                free (own);
            }
            else {
                *why = zsys_sprintf ("%s (remove it, or make all keys anew with --rotate)",
                                     error);
                free (error);
                return -1;
            }
            continue;
        }
        zcert_t *cert = zcert_new ();
        char *path = zsys_sprintf ("%s/%s.cert", dir, key.name);
        char *secret = zsys_sprintf ("%s/%s.cert_secret", dir, key.name);
        zcert_set_meta (cert, "node", "%s", key.name);
        zcert_set_meta (cert, "cluster", "%s", tiers_map_name (map));
        int rc = zcert_save (cert, path);
        if (rc == 0)
            rc = chmod (secret, 0600) || chmod (path, 0644) ? -1 : 0;
        if (rc)
            *why = zsys_sprintf ("cannot write %s: %s", path, strerror (errno));
        else
            fprintf (out, "%s: made %s\n", key.name, zcert_public_txt (cert));
        zcert_destroy (&cert);
        free (path);
        free (secret);
        if (rc)
            return -1;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  The ZAP handler (RFC 27) and the handshake monitors

static void
s_domain_destroy (void **item)
{
    domain_t *domain = (domain_t *) *item;
    if (domain) {
        zhashx_destroy (&domain->keys);
        free (domain);
        *item = NULL;
    }
}

//  The peer's IP as people write it: "tcp://[::ffff:10.0.0.7]:4711" and
//  "::ffff:10.0.0.7" both become "10.0.0.7" (libzmq's sockets take IPv6,
//  so IPv4 peers come as mapped addresses).
static void
s_peer_ip (const char *address, char *ip, size_t size)
{
    const char *at = tiers_has_prefix (address, "tcp://") ? address + 6 : address;
    bool bracket = *at == '[';
    if (bracket)
        at++;
    if (tiers_has_prefix (at, "::ffff:") && strchr (at, '.'))
        at += 7;
    snprintf (ip, size, "%s", at);
    if (bracket)
        ip [strcspn (ip, "]")] = 0;
    else
    if (strchr (ip, '.') && strchr (ip, ':'))
        *strchr (ip, ':') = 0;          //  a.b.c.d:port
}

//  Log a refused peer once (per port, address and key), counting the rest.
static void
s_refused (zhashx_t *logged, const char *label, const char *address,
           const char *key, const char *why)
{
    char ip [128];
    s_peer_ip (address, ip, sizeof ip);
    address = ip;
    char peer [400];
    snprintf (peer, sizeof peer, "%s %s %s", label, address, key);
    if (zhashx_lookup (logged, peer))
        return;
    if (zhashx_size (logged) < LOGGED_MAX)
        zhashx_insert (logged, peer, (void *) 1);
    if (*address)
        tiers_warn ("refused a peer on %s: %s (address %s, key %s)", label, why,
                    address, *key ? key : "none");
    else
        tiers_warn ("refused a peer on %s: %s (libzmq does not say which; counted in "
                    "tiers_security_refused_total, logged once)", label, why);
}

static void
s_zap_request (zsock_t *handler, zhashx_t *logged)
{
    zmsg_t *request = zmsg_recv (handler);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    char *sequence = zmsg_popstr (request);
    char *domain_name = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credential = zmsg_pop (request);
    char key [KEY_TXT] = "";
    if (credential && zframe_size (credential) == 32)
        zmq_z85_encode (key, zframe_data (credential), 32);

    const char *user = NULL;
    const char *why = "not CURVE";
    pthread_mutex_lock (&s_lock);
    domain_t *domain = s_domains && domain_name
                     ? (domain_t *) zhashx_lookup (s_domains, domain_name) : NULL;
    if (!domain)
        why = "a port this process does not serve";
    else
    if (mechanism && streq (mechanism, "CURVE") && *key) {
        user = (const char *) zhashx_lookup (domain->keys, key);
        why = "a key of no node the map lets reach this port";
    }
    char label [160];
    snprintf (label, sizeof label, "%s", domain ? domain->label : "?");
    if (!user && domain)
        tiers_counter_add (domain->refused_key, 1);
    char user_id [64];
    snprintf (user_id, sizeof user_id, "%s", user ? user : "");
    pthread_mutex_unlock (&s_lock);
    if (!user)
        s_refused (logged, label, address ? address : "", key, why);

    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, sequence ? sequence : "");
    zmsg_addstr (reply, user ? "200" : "400");
    zmsg_addstr (reply, user ? "OK" : why);
    zmsg_addstr (reply, user_id);
    zmsg_addmem (reply, NULL, 0);
    zmsg_send (&reply, handler);
    zstr_free (&version);
    zstr_free (&sequence);
    zstr_free (&domain_name);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zframe_destroy (&credential);
    zmsg_destroy (&request);
}

//  One event of a server socket's monitor. False when it stopped.
static bool
s_monitor_event (zsock_t *monitor, const char *domain_name, zhashx_t *logged)
{
    zmsg_t *event = zmsg_recv (monitor);
    if (!event)
        return false;
    zframe_t *head = zmsg_first (event);
    char *address = NULL;
    zframe_t *endpoint = zmsg_next (event);
    if (endpoint)
        address = zframe_strdup (endpoint);
    uint16_t code = 0;
    if (head && zframe_size (head) >= 2)
        memcpy (&code, zframe_data (head), 2);
    zmsg_destroy (&event);
    if (code == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
    ||  code == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        char label [160] = "?";
        pthread_mutex_lock (&s_lock);
        domain_t *domain = s_domains ? (domain_t *) zhashx_lookup (s_domains, domain_name)
                                     : NULL;
        if (domain) {
            tiers_counter_add (domain->refused_handshake, 1);
            snprintf (label, sizeof label, "%s", domain->label);
        }
        pthread_mutex_unlock (&s_lock);
        //  libzmq's event names the port's own endpoint, not the peer:
        //  such refusals are logged once per port, without an address.
        s_refused (logged, label, "", "",
                   code == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                   ? "a handshake that is not CURVE, or malformed"
                   : "a handshake that failed (garbage, or cut short)");
    }
    free (address);
    return code != ZMQ_EVENT_MONITOR_STOPPED;
}

typedef struct {
    zsock_t *sock;
    char domain [200];
} monitor_t;

static void
s_monitor_destroy (void **item)
{
    monitor_t *monitor = (monitor_t *) *item;
    if (monitor) {
        zsock_destroy (&monitor->sock);
        free (monitor);
        *item = NULL;
    }
}

static void
s_zap_actor (zsock_t *pipe, void *args)
{
    (void) args;
    tiers_log_set_actor ("zap");
    //  The endpoint of a handler that just stopped is freed by libzmq's
    //  reaper a moment later: try for a while before giving up.
    zsock_t *handler = zsock_new (ZMQ_REP);
    bool bound = false;
    for (int tries = 0; handler && !bound && tries < 100; tries++) {
        bound = zsock_bind (handler, ZAP_ENDPOINT) == 0;
        if (!bound)
            zclock_sleep (20);
    }
    zsock_signal (pipe, 0);
    zstr_send (pipe, bound ? "OK" : "ERROR");
    if (!bound) {
        zsock_destroy (&handler);
        return;
    }
    zhashx_t *logged = zhashx_new ();
    zlistx_t *monitors = zlistx_new ();
    zlistx_set_destructor (monitors, s_monitor_destroy);
    bool stop = false;
    while (!stop) {
        size_t count = zlistx_size (monitors);
        zmq_pollitem_t *items = (zmq_pollitem_t *) calloc (count + 2, sizeof *items);
        monitor_t **order = (monitor_t **) calloc (count + 1, sizeof *order);
        assert (items && order);
        items [0] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        items [1] = (zmq_pollitem_t) { zsock_resolve (handler), 0, ZMQ_POLLIN, 0 };
        size_t n = 0;
        for (monitor_t *m = (monitor_t *) zlistx_first (monitors); m;
             m = (monitor_t *) zlistx_next (monitors)) {
            order [n] = m;
            items [2 + n++] = (zmq_pollitem_t) { zsock_resolve (m->sock), 0, ZMQ_POLLIN, 0 };
        }
        //  Only $TERM ends the handler (or the context going away): a CURVE
        //  port without its handler would admit any key.
        int rc = zmq_poll (items, (int) (n + 2), -1);
        if (rc < 0 && errno == ETERM)
            stop = true;
        if (rc > 0 && (items [0].revents & ZMQ_POLLIN)) {
            zmsg_t *command = zmsg_recv (pipe);
            char *name = command ? zmsg_popstr (command) : NULL;
            if (!name || streq (name, "$TERM"))
                stop = true;
            else
            if (streq (name, "MONITOR")) {
                char *endpoint = zmsg_popstr (command);
                char *domain = zmsg_popstr (command);
                monitor_t *monitor = (monitor_t *) zmalloc (sizeof *monitor);
                monitor->sock = zsock_new (ZMQ_PAIR);
                if (monitor->sock && endpoint && domain
                &&  zsock_connect (monitor->sock, "%s", endpoint) == 0) {
                    snprintf (monitor->domain, sizeof monitor->domain, "%s", domain);
                    zlistx_add_end (monitors, monitor);
                }
                else
                    s_monitor_destroy ((void **) &monitor);
                zstr_free (&endpoint);
                zstr_free (&domain);
                zsock_signal (pipe, 0);
            }
            zstr_free (&name);
            zmsg_destroy (&command);
        }
        if (rc > 0 && (items [1].revents & ZMQ_POLLIN))
            s_zap_request (handler, logged);
        for (size_t i = 0; rc > 0 && i < n; i++)
            if ((items [2 + i].revents & ZMQ_POLLIN)
            &&  !s_monitor_event (order [i]->sock, order [i]->domain, logged)) {
                void *handle = zlistx_find (monitors, order [i]);
                if (handle)
                    zlistx_delete (monitors, handle);
            }
        free (items);
        free (order);
    }
    zlistx_destroy (&monitors);
    zhashx_destroy (&logged);
    zsock_destroy (&handler);
}


//  --------------------------------------------------------------------------
//  Contexts

//  The domains of a map: every bound tcp:// or ipc:// port, with the keys
//  of the nodes whose entries link to it. Under the lock.
static void
s_register_domains (tiers_security_t *self)
{
    const tiers_map_t *map = self->map;
    size_t entries = tiers_map_entry_count (map);
    for (size_t t = 0; t < entries; t++) {
        const tiers_entry_t *target = tiers_map_entry (map, t);
        for (size_t p = 0; target->kind->ports && target->kind->ports [p].name; p++) {
            const char *port = target->kind->ports [p].name;
            const char *endpoint = target->binds [p];
            if (!endpoint || tiers_has_prefix (endpoint, "inproc://"))
                continue;
            domain_t *domain = (domain_t *) zmalloc (sizeof *domain);
            assert (domain);
            domain->keys = zhashx_new ();
            snprintf (domain->label, sizeof domain->label, "%s/%s", target->name, port);
            char labels [200];
            snprintf (labels, sizeof labels, "actor=\"%s\",port=\"%s\",reason=\"key\"",
                      target->name, port);
            domain->refused_key = tiers_metrics_counter ("tiers_security_refused_total",
                labels, "Peers refused at a CURVE port: reason key (ZAP) or handshake");
            snprintf (labels, sizeof labels, "actor=\"%s\",port=\"%s\",reason=\"handshake\"",
                      target->name, port);
            domain->refused_handshake = tiers_metrics_counter (
                "tiers_security_refused_total", labels,
                "Peers refused at a CURVE port: reason key (ZAP) or handshake");
            for (size_t e = 0; e < entries; e++) {
                const tiers_entry_t *from = tiers_map_entry (map, e);
                const tiers_link_t *links = from->kind->links;
                for (size_t l = 0; links && links [l].name; l++) {
                    if (!links [l].port || !streq (links [l].port, port))
                        continue;
                    for (size_t k = 0; k < from->target_count [l]; k++)
                        if (from->targets [l][k].entry == target)
                            for (size_t n = 0; n < self->node_count; n++)
                                if (streq (self->nodes [n].name, from->node))
                                    zhashx_update (domain->keys, self->nodes [n].public_txt,
                                                   self->nodes [n].name);
                }
            }
            char *name = zsys_sprintf ("%u/%s/%s", self->id, target->name, port);
            zhashx_update (s_domains, name, domain);
            zlistx_add_end (self->domains, name);
            free (name);
        }
    }
}

tiers_security_t *
tiers_security_new (const tiers_map_t *map, const char *node, const char *dir,
                    char **why)
{
    *why = NULL;
    tiers_security_t *self = (tiers_security_t *) zmalloc (sizeof *self);
    assert (self);
    self->map = map;
    self->node_count = tiers_map_node_count (map);
    self->nodes = (node_key_t *) calloc (self->node_count + 1, sizeof (node_key_t));
    self->domains = zlistx_new ();
    zlistx_set_destructor (self->domains, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_duplicator (self->domains, (zlistx_duplicator_fn *) strdup);
    assert (self->nodes && self->domains);
    for (size_t i = 0; i < self->node_count && !*why; i++) {
        node_key_t *key = &self->nodes [i];
        snprintf (key->name, sizeof key->name, "%s", tiers_map_node_name (map, i));
        bool own = !node || streq (node, key->name);
        s_load_node (key, dir, own, why);
    }
    if (*why) {
        tiers_security_destroy (&self);
        return NULL;
    }
    if (!zmq_has ("curve")) {
        *why = strdup ("this libzmq has no CURVE");
        tiers_security_destroy (&self);
        return NULL;
    }
    pthread_mutex_lock (&s_zap_lock);
    zactor_t *zap = NULL;
    if (s_zap_users == 0) {
        zap = zactor_new (s_zap_actor, NULL);
        char *answer = zap ? zstr_recv (zap) : NULL;
        if (!answer || !streq (answer, "OK")) {
            *why = strdup ("cannot start the ZAP handler (is another one bound on "
                           ZAP_ENDPOINT "?)");
            zactor_destroy (&zap);
        }
        zstr_free (&answer);
    }
    if (!*why) {
        s_zap_users++;
        pthread_mutex_lock (&s_lock);
        if (zap)
            s_zap = zap;
        if (!s_contexts) {
            s_contexts = zlistx_new ();
            s_domains = zhashx_new ();
            zhashx_set_destructor (s_domains, s_domain_destroy);
        }
        self->id = ++s_next_id;
        s_register_domains (self);
        zlistx_add_end (s_contexts, self);
        self->registered = true;
        pthread_mutex_unlock (&s_lock);
    }
    pthread_mutex_unlock (&s_zap_lock);
    if (*why)
        tiers_security_destroy (&self);
    return self;
}

void
tiers_security_destroy (tiers_security_t **self_p)
{
    tiers_security_t *self = *self_p;
    if (!self)
        return;
    if (self->registered) {
        pthread_mutex_lock (&s_zap_lock);
        pthread_mutex_lock (&s_lock);
        void *handle = zlistx_find (s_contexts, self);
        if (handle)
            zlistx_delete (s_contexts, handle);
        for (char *name = (char *) zlistx_first (self->domains); name;
             name = (char *) zlistx_next (self->domains))
            zhashx_delete (s_domains, name);
        zactor_t *zap = --s_zap_users == 0 ? s_zap : NULL;
        if (zap)
            s_zap = NULL;
        pthread_mutex_unlock (&s_lock);
        //  Outside s_lock: the handler may be waiting for it in a request.
        pthread_mutex_lock (&s_pipe_lock);
        zactor_destroy (&zap);
        pthread_mutex_unlock (&s_pipe_lock);
        pthread_mutex_unlock (&s_zap_lock);
    }
    for (size_t i = 0; i < self->node_count; i++)
        zcert_destroy (&self->nodes [i].cert);
    free (self->nodes);
    zlistx_destroy (&self->domains);
    free (self);
    *self_p = NULL;
}

//  The context whose map holds `entry`, and the key of its node. Under the
//  lock. NULL when no context has it (the map has no security).
static tiers_security_t *
s_context_of (const tiers_entry_t *entry, const char *node, node_key_t **key_p)
{
    *key_p = NULL;
    if (!s_contexts)
        return NULL;
    //  Several node objects may run one map in a process: the context
    //  that holds this node's secret, else any that has the map.
    tiers_security_t *found = NULL;
    for (tiers_security_t *self = (tiers_security_t *) zlistx_first (s_contexts); self;
         self = (tiers_security_t *) zlistx_next (s_contexts)) {
        if (tiers_map_find (self->map, entry->name) != entry)
            continue;
        for (size_t i = 0; i < self->node_count; i++)
            if (streq (self->nodes [i].name, node) && self->nodes [i].cert) {
                *key_p = &self->nodes [i];
                return self;
            }
        found = found ? found : self;
    }
    return found;
}

static bool
s_plain (const char *endpoint)
{
    return tiers_has_prefix (endpoint, "inproc://");
}

int
tiers_security_serve (zsock_t *sock, const tiers_entry_t *entry, const char *port,
                      const char *endpoint, char **why)
{
    if (s_plain (endpoint))
        return 0;
    pthread_mutex_lock (&s_lock);
    node_key_t *key = NULL;
    tiers_security_t *self = s_context_of (entry, entry->node, &key);
    int rc = 0;
    char domain [200] = "", monitor [64] = "";
    if (!self && entry->curve) {
        *why = zsys_sprintf ("%s: the map has security = curve but no keys of node '%s' "
                             "are loaded", entry->name, entry->node);
        rc = -1;
    }
    else
    if (self && (!key || !key->cert)) {
        *why = zsys_sprintf ("%s: no secret key of node '%s' is loaded", entry->name,
                             entry->node);
        rc = -1;
    }
    else
    if (self) {
        zcert_apply (key->cert, zsock_resolve (sock));
        zsock_set_curve_server (sock, 1);
        //  A handshake that stalls is dropped (and counted) after this.
        zsock_set_handshake_ivl (sock, TIERS_SECURITY_HANDSHAKE_MS);
        snprintf (domain, sizeof domain, "%u/%s/%s", self->id, entry->name, port);
        zsock_set_zap_domain (sock, domain);
        //  No handler, no entry: without it, libzmq admits every client
        //  key when no ZAP handler is bound. The option is DRAFT in libzmq
        //  4.3 (and czmq's setter a no-op without it), so it is asked of
        //  libzmq directly; where libzmq refuses it, what holds is that
        //  the handler lives as long as any context (it leaves its loop
        //  only on $TERM) and that no CURVE port is made without it.
        int one = 1;
        (void) zmq_setsockopt (zsock_resolve (sock), 93 /* ZMQ_ZAP_ENFORCE_DOMAIN */,
                               &one, sizeof one);
        snprintf (monitor, sizeof monitor, "inproc://tiers-monitor-%u", ++s_next_monitor);
    }
    zactor_t *zap = s_zap;
    pthread_mutex_unlock (&s_lock);
    //  The monitor is bound by libzmq now and read by the ZAP actor.
    if (*monitor && zap
    &&  zmq_socket_monitor (zsock_resolve (sock), monitor,
                            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                            | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                            | ZMQ_EVENT_MONITOR_STOPPED) == 0) {
        pthread_mutex_lock (&s_pipe_lock);
        zstr_sendx (zap, "MONITOR", monitor, domain, NULL);
        zsock_wait (zap);
        pthread_mutex_unlock (&s_pipe_lock);
    }
    return rc;
}

int
tiers_security_dial (zsock_t *sock, const tiers_entry_t *from, const tiers_entry_t *to,
                     const char *endpoint, char **why)
{
    if (s_plain (endpoint))
        return 0;
    pthread_mutex_lock (&s_lock);
    node_key_t *key = NULL;
    tiers_security_t *self = s_context_of (from, from->node, &key);
    int rc = 0;
    if (!self && from->curve) {
        *why = zsys_sprintf ("%s: the map has security = curve but no keys of node '%s' "
                             "are loaded", from->name, from->node);
        rc = -1;
    }
    else
    if (self) {
        //  The server: `to`, or the entry that binds the endpoint.
        for (size_t i = 0; !to && i < tiers_map_entry_count (self->map); i++) {
            const tiers_entry_t *entry = tiers_map_entry (self->map, i);
            for (size_t p = 0; p < TIERS_PORTS_MAX && !to; p++)
                if (entry->binds [p] && streq (entry->binds [p], endpoint))
                    to = entry;
        }
        const node_key_t *server = NULL;
        for (size_t i = 0; to && i < self->node_count; i++)
            if (streq (self->nodes [i].name, to->node))
                server = &self->nodes [i];
        if (!key || !key->cert || !server) {
            *why = zsys_sprintf ("%s: no %s to reach %s", from->name,
                                 !key || !key->cert ? "secret key of its node"
                                                    : "server key", endpoint);
            rc = -1;
        }
        else {
            zcert_apply (key->cert, zsock_resolve (sock));
            zsock_set_curve_serverkey (sock, server->public_txt);
        }
    }
    pthread_mutex_unlock (&s_lock);
    return rc;
}
