/*  cli.c — `tiers run`, `tiers check`, `tiers kinds` (see tiers(1)).

    Signals: SIGINT and SIGTERM are blocked before the first thread starts,
    so every actor thread (and libzmq's I/O threads) inherits the mask and
    only the main thread, waiting in sigtimedwait(), ever sees them. czmq's
    own interrupt handler is switched off: no actor is told to stop behind
    the launcher's back; the launcher stops them in reverse start order.

    Exit codes: 0 success (also after a signal), 1 a node failed to start,
    2 usage error or invalid map.
*/
#include "cli.h"
#include "map.h"
#include "node.h"
#include "log.h"
#include "security.h"
#include "config.h"
#include <getopt.h>
#include <signal.h>
#include <errno.h>

//  The commands that kinds bring (tiers_kind_t.command), for the help.
static const char *
s_kind_commands (void)
{
    static char text [2048];
    size_t at = 0;
    const tiers_kind_t *kind;
    for (size_t i = 0; (kind = tiers_kind_at (i)) && at < sizeof text; i++)
        if (kind->command && kind->command_usage)
            at += (size_t) snprintf (text + at, sizeof text - at, "%s", kind->command_usage);
    text [at < sizeof text ? at : sizeof text - 1] = 0;
    return text;
}

//  The kind that brings `command`, or NULL.
static const tiers_kind_t *
s_command_kind (const char *command)
{
    const tiers_kind_t *kind;
    for (size_t i = 0; (kind = tiers_kind_at (i)); i++)
        if (kind->command && kind->command_run && streq (kind->command, command))
            return kind;
    return NULL;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: tiers [OPTION]... COMMAND [ARG]...\n"
"Run the tiers of a web service as ZeroMQ actors placed by a map file.\n"
"\n"
"Commands:\n"
"  run [-m MAP] [-n NODE] [--http HOST:PORT]\n"
"                  start the actors the map places on NODE (all nodes when\n"
"                  -n is not given); without -m, the built-in single-box map\n"
"  check [-m MAP] [-n NODE] [--http HOST:PORT]\n"
"                  validate a map (and what run would do with NODE and\n"
"                  --http) and print its placement plan and subnets\n"
"  keys -m MAP [-o DIR] [--rotate]\n"
"                  make one CURVE certificate per node of the map in DIR\n"
"                  (default: the map's keys); existing ones are kept\n"
"                  unless --rotate\n"
"  kinds           list the actor kinds this program knows\n"
"%s"
"\n"
"Options:\n"
"  -m, --map FILE      the map file (ZPL, see tiers-map(5))\n"
"  -n, --node NAME     the node to run\n"
"      --http ADDR     override the gateway's listen address (port 0 = any)\n"
"      --keys DIR      the CURVE keys (security = curve; default: the map's\n"
"                      keys, ./tiers-keys)\n"
"  -l, --log LEVEL     error, warn, info (default) or debug\n"
"  -h, --help          show this help and exit\n"
"  -V, --version       show the version and exit\n"
"\n"
"      --force         (promote) go on where it would stop to save writes\n"
"\n"
"Exit status: 0 success, 1 the node failed, 2 usage error or invalid map.\n"
"See tiers(1) and tiers-map(5).\n", s_kind_commands ());
}

static tiers_map_t *
s_load (const char *path)
{
    char *errors = NULL;
    tiers_map_t *map = path ? tiers_map_load (path, &errors)
                            : tiers_map_parse (tiers_map_builtin (), "(built-in map)", &errors);
    if (!map) {
        fputs (errors ? errors : "invalid map\n", stderr);
        fprintf (stderr, "tiers: the map is invalid; nothing was started\n");
    }
    free (errors);
    return map;
}

static bool s_level_given;      //  -l given: it wins over the map

static int
s_run (tiers_map_t *map, const char *node_name)
{
    //  Precedence: -l, then a valid $TIERS_LOG, then the map's `log`
    //  (an empty or unknown $TIERS_LOG is ignored, with a warning).
    const char *level = tiers_map_cluster (map, "log");       //  never NULL
    if (!s_level_given && tiers_log_level_parse (getenv ("TIERS_LOG")) < 0)
        tiers_log_set_level (tiers_log_level_parse (level));
    //  Before any thread exists (see the note at the top); until here,
    //  while the map loads and is checked, Ctrl-C simply ends the program.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    tiers_node_t *node = tiers_node_new (map, node_name);
    if (tiers_node_start (node)) {
        fprintf (stderr, "tiers: %s\n", tiers_node_error (node));
        tiers_node_destroy (&node);
        return 1;
    }
    printf ("tiers: node %s of %s running %zu actors; ready\n",
            node_name ? node_name : "(all)", tiers_map_name (map),
            tiers_node_actor_count (node));
    fflush (stdout);

    int signal_number;
    while ((signal_number = sigwaitinfo (&signals, NULL)) < 0 && errno == EINTR)
        ;
    tiers_info ("%s: stopping", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    tiers_node_destroy (&node);
    printf ("tiers: stopped\n");
    fflush (stdout);
    return 0;
}

typedef struct {
    const char *map_path;
    const char *node_name;
    const char *http;
    const char *keys;
    const char *out;
    bool rotate;
    bool force;
} s_options_t;

//  Reads the options in argv with getopt_long (from optind, with
//  `optstring`) into `options`. Returns -1 to go on, or the exit code for
//  an option that ends the program (--help, --version, a bad option).
static int
s_parse (int argc, char **argv, const char *optstring, s_options_t *options)
{
    static const struct option longs [] = {
        { "map",     required_argument, NULL, 'm' },
        { "node",    required_argument, NULL, 'n' },
        { "http",    required_argument, NULL, 'H' },
        { "keys",    required_argument, NULL, 'K' },
        { "out",     required_argument, NULL, 'o' },
        { "rotate",  no_argument,       NULL, 'R' },
        { "force",   no_argument,       NULL, 'F' },
        { "log",     required_argument, NULL, 'l' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, optstring, longs, NULL)) != -1) {
        switch (opt) {
            case 'm': options->map_path = optarg; break;
            case 'n': options->node_name = optarg; break;
            case 'H': options->http = optarg; break;
            case 'K': options->keys = optarg; break;
            case 'o': options->out = optarg; break;
            case 'R': options->rotate = true; break;
            case 'F': options->force = true; break;
            case 'l':
                if (tiers_log_level_parse (optarg) < 0) {
                    fprintf (stderr, "tiers: unknown log level '%s'\n", optarg);
                    return 2;
                }
                tiers_log_set_level (tiers_log_level_parse (optarg));
                s_level_given = true;
                break;
            case 'h': s_usage (stdout); return 0;
            case 'V': printf ("tiers %s\n", PACKAGE_VERSION); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    return -1;
}

int
tiers_cli_main (int argc, char **argv)
{
    zsys_handler_set (NULL);
    tiers_log_set_actor ("tiers");

    //  Options before the command ("+": stop at the command), then after it.
    s_options_t options = { NULL, NULL, NULL, NULL, NULL, false, false };
    int rc = s_parse (argc, argv, "+m:n:l:hV", &options);
    if (rc >= 0)
        return rc;
    if (optind >= argc) {
        s_usage (stderr);
        return 2;
    }
    const char *command = argv [optind++];
    //  Options may also follow the command: tiers run -m MAP.
    optind--;
    argv [optind] = (char *) "tiers";
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    optind = 1;
    rc = s_parse (sub_argc, sub_argv, "m:n:l:o:hV", &options);
    if (rc >= 0)
        return rc;
    const char *map_path = options.map_path;
    const char *node_name = options.node_name;
    const char *http = options.http;
    const tiers_kind_t *brings = s_command_kind (command);
    const char *argument = NULL;
    if (brings && optind < sub_argc)
        argument = sub_argv [optind++];
    if (optind < sub_argc) {
        fprintf (stderr, "tiers: unexpected argument '%s'\n", sub_argv [optind]);
        return 2;
    }

    if (streq (command, "kinds")) {
        const tiers_kind_t *kind;
        for (size_t i = 0; (kind = tiers_kind_at (i)); i++) {
            printf ("%-12s %s\n", kind->name, kind->summary ? kind->summary : "");
            //  What it binds and what it connects to (doc/actors.md)
            for (size_t p = 0; p < tiers_kind_port_count (kind); p++)
                printf ("%-12s   port %s (%s%s): %s\n", "", kind->ports [p].name,
                        zsys_sockname (kind->ports [p].type),
                        kind->ports [p].required ? "" : ", optional",
                        kind->ports [p].carries ? kind->ports [p].carries : "");
            for (size_t l = 0; l < tiers_kind_link_count (kind); l++)
                printf ("%-12s   link %s -> %s %s (%s, %s%s)\n", "", kind->links [l].name,
                        kind->links [l].kind, kind->links [l].port,
                        zsys_sockname (kind->links [l].type),
                        !kind->links [l].many ? "one entry"
                        : streq (kind->links [l].kind, kind->name) ? "every other entry"
                        : "every entry",
                        kind->links [l].optional ? ", optional" : "");
        }
        return 0;
    }
    if (!streq (command, "run") && !streq (command, "check") && !streq (command, "keys")
    &&  !brings) {
        fprintf (stderr, "tiers: unknown command '%s' (try --help)\n", command);
        return 2;
    }
    if ((streq (command, "keys") || brings) && !map_path) {
        fprintf (stderr, "tiers: %s needs the map (-m MAP)\n", command);
        return 2;
    }
    if (brings && !argument) {
        fprintf (stderr, "tiers: %s needs the name of a %s\n", command, brings->name);
        return 2;
    }
    tiers_map_t *map = s_load (map_path);
    if (!map)
        return 2;
    if (options.keys)
        tiers_map_set_keys (map, options.keys);
    rc = 0;
    if (brings) {
        rc = brings->command_run (map, argument, options.force, stdout);
        tiers_map_destroy (&map);
        return rc;
    }
    if (streq (command, "keys")) {
        char *why = NULL;
        const char *dir = options.out ? options.out : tiers_map_cluster (map, "keys");
        if (tiers_security_make_keys (map, dir, options.rotate, stdout, &why)) {
            fprintf (stderr, "tiers: keys: %s\n", why);
            rc = 1;
        }
        else
            printf ("tiers: keys of %zu nodes in %s (secrets mode 0600: give each host "
                    "only its own)\n", tiers_map_node_count (map), dir);
        free (why);
        tiers_map_destroy (&map);
        return rc;
    }
    if (node_name && !tiers_map_has_node (map, node_name)) {
        fprintf (stderr, "tiers: %s has no node '%s'\n", tiers_map_file (map), node_name);
        rc = 2;
    }
    else
    if (http && tiers_map_set_listener (map, http, node_name)) {
        fprintf (stderr, "tiers: --http %s: %s\n", http, tiers_map_listener_error (map));
        rc = 2;
    }
    else {
        //  security = none is allowed, and said out loud
        bool plain = false;
        for (size_t i = 0; i < tiers_map_entry_count (map) && !plain; i++) {
            const tiers_entry_t *entry = tiers_map_entry (map, i);
            for (size_t p = 0; p < TIERS_PORTS_MAX && !plain; p++)
                plain = entry->binds [p] && !tiers_has_prefix (entry->binds [p], "inproc://");
        }
        if (plain && !tiers_security_curve (map))
            fprintf (stderr, "tiers: warning: security = none: the tcp:// and ipc:// "
                     "endpoints of this map are plain text and serve any peer that can "
                     "connect\n");
    }
    if (rc)
        ;
    else
    if (streq (command, "check"))
        tiers_map_print_plan (map, node_name, stdout);
    else
        rc = s_run (map, node_name);
    tiers_map_destroy (&map);
    return rc;
}
