/*  harness.c — see harness.h. */
#include "harness.h"
#include "ports.h"
#include "security.h"
#include "map.h"
#include "service.h"
#include <signal.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>

#define MAX_CHILDREN 32
static pid_t s_children [MAX_CHILDREN];
static char s_dir [256];
static int s_seq;

static void
s_cleanup (void)
{
    h_kill_all ();
    if (*s_dir) {
        char command [300];
        snprintf (command, sizeof command, "rm -rf '%s'", s_dir);
        if (system (command) != 0)
            fprintf (stderr, "# could not remove %s\n", s_dir);
    }
}

const char *
h_tmpdir (void)
{
    if (!*s_dir) {
        const char *base = getenv ("TMPDIR");
        snprintf (s_dir, sizeof s_dir, "%s/tiers-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp (s_dir)) {
            perror ("mkdtemp");
            exit (1);
        }
        atexit (s_cleanup);
    }
    return s_dir;
}

const char *
h_self_path (void)
{
    static char path [4096];
    if (!*path) {
        ssize_t size = readlink ("/proc/self/exe", path, sizeof path - 1);
        assert (size > 0);
        path [size] = 0;
    }
    return path;
}

int
h_free_port (void)
{
    return h_port_pick (false);
}

char *
h_write_file (const char *name, const char *text)
{
    char *path = zsys_sprintf ("%s/%s", h_tmpdir (), name);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    return path;
}

pid_t
h_spawn (char *const argv [], const char *log)
{
    fflush (stdout);
    //  Empty the log before the fork: a restart that reuses it must not
    //  let the caller read the last process's lines ("ready") before the
    //  child gets to truncate it.
    int truncated = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (truncated >= 0)
        close (truncated);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        //  The child must not inherit blocked signals from a test thread.
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        execv (argv [0], argv);
        _exit (127);
    }
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (s_children [i] == 0) {
            s_children [i] = pid;
            break;
        }
    return pid;
}

int
h_wait_for_line (const char *log, const char *needle, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        char *text = NULL;
        FILE *file = fopen (log, "r");
        if (file) {
            size_t size = 0;
            FILE *memory = open_memstream (&text, &size);
            char buffer [4096];
            size_t got;
            while ((got = fread (buffer, 1, sizeof buffer, file)) > 0)
                fwrite (buffer, 1, got, memory);
            fclose (memory);
            fclose (file);
        }
        bool found = text && strstr (text, needle);
        free (text);
        if (found)
            return 0;
        zclock_sleep (20);
    }
    return -1;
}

static void
s_forget (pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (s_children [i] == pid)
            s_children [i] = 0;
}

int
h_stop (pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill (pid, sig);
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        int status;
        pid_t done = waitpid (pid, &status, WNOHANG);
        if (done == pid) {
            s_forget (pid);
            if (WIFEXITED (status))
                return WEXITSTATUS (status);
            return 128 + WTERMSIG (status);
        }
        zclock_sleep (10);
    }
    return -1;
}

void
h_kill_all (void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (s_children [i] > 0) {
            kill (s_children [i], SIGKILL);
            waitpid (s_children [i], NULL, 0);
            s_children [i] = 0;
        }
}

tiers_wire_t *
h_request (const char *service, const char *body, int deadline_ms)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
    char rid [32];
    snprintf (rid, sizeof rid, "r%d", ++s_seq);
    tiers_wire_set_rid (request, rid);
    tiers_wire_set_service (request, service);
    if (body)
        tiers_wire_set_body (request, body, strlen (body));
    if (deadline_ms)
        request->deadline = tiers_wire_now () + deadline_ms;
    return request;
}

int
h_collect (zsock_t *dealer, tiers_wire_t **replies, int count, int timeout_ms)
{
    int got = 0;
    int64_t until = zclock_mono () + timeout_ms;
    while (got < count) {
        int64_t left = until - zclock_mono ();
        if (left <= 0)
            break;
        zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, left) <= 0)
            continue;
        tiers_wire_t *reply = tiers_wire_recv (dealer, NULL, NULL);
        if (reply)
            replies [got++] = reply;
    }
    return got;
}

char *
h_status (zsock_t *dealer)
{
    tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
    char rid [32];
    snprintf (rid, sizeof rid, "status%d", ++s_seq);
    tiers_wire_set_rid (request, rid);
    tiers_wire_t *reply = tiers_call (dealer, request, 1000);
    tiers_wire_destroy (&request);
    char *json = reply ? strdup ((char *) reply->body) : NULL;
    tiers_wire_destroy (&reply);
    return json;
}

int
h_wait_workers (zsock_t *dealer, const char *pool, int workers, int timeout_ms)
{
    char needle [96];
    snprintf (needle, sizeof needle, "\"%s\":{\"workers\":%d,", pool, workers);
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        char *json = h_status (dealer);
        bool found = json && strstr (json, needle);
        free (json);
        if (found)
            return 0;
        zclock_sleep (25);
    }
    return -1;
}

int
h_make_keys (const char *map_path)
{
    char *errors = NULL;
    tiers_map_t *map = tiers_map_load (map_path, &errors);
    if (!map) {
        fprintf (stderr, "%s", errors ? errors : "map?\n");
        free (errors);
        return -1;
    }
    char *why = NULL;
    FILE *null = fopen ("/dev/null", "w");
    int rc = tiers_security_make_keys (map, tiers_map_cluster (map, "keys"), false,
                                       null ? null : stderr, &why);
    if (null)
        fclose (null);
    if (rc)
        fprintf (stderr, "keys: %s\n", why);
    free (why);
    tiers_map_destroy (&map);
    return rc;
}

zsock_t *
h_dealer_as (const char *endpoint, const char *keys, const char *node, const char *server)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_linger (dealer, 0);
    if (keys) {
        char *mine = zsys_sprintf ("%s/%s.cert", keys, node);
        char *theirs = zsys_sprintf ("%s/%s.cert", keys, server);
        zcert_t *cert = zcert_load (mine);
        zcert_t *peer = zcert_load (theirs);
        assert (cert && peer);
        zcert_apply (cert, zsock_resolve (dealer));
        zsock_set_curve_serverkey (dealer, zcert_public_txt (peer));
        zcert_destroy (&cert);
        zcert_destroy (&peer);
        free (mine);
        free (theirs);
    }
    int rc = zsock_connect (dealer, "%s", endpoint);
    assert (rc == 0);
    return dealer;
}
