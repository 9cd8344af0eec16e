/*  floor.c — the bare libmicrohttpd responder every tiers figure is
    compared with: the fastest answer MHD gives on this machine, with no
    ZeroMQ, no storage, no logic. One internal epoll thread per core, a fixed
    small JSON body. `bench/run` starts it on a free port and runs the same
    wrk scenario against it as against the cluster.

        floor PORT [THREADS]
*/
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

static const char s_body [] = "{\"name\":\"floor\",\"n\":1}";

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *connection, const char *url,
          const char *method, const char *version, const char *upload,
          size_t *upload_size, void **state)
{
    (void) cls; (void) url; (void) method; (void) version; (void) upload;
    if (*state == NULL) {           //  first call: headers only
        *state = (void *) 1;
        return MHD_YES;
    }
    if (*upload_size) {             //  swallow a body
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *response = MHD_create_response_from_buffer (
        sizeof s_body - 1, (void *) s_body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (response, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response (connection, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return rc;
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "usage: floor PORT [THREADS]\n");
        return 2;
    }
    int port = atoi (argv [1]);
    unsigned threads = argc > 2 ? (unsigned) atoi (argv [2])
                                : (unsigned) sysconf (_SC_NPROCESSORS_ONLN);
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO, (uint16_t) port,
        NULL, NULL, s_answer, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, 10000u,
        MHD_OPTION_END);
    if (!daemon) {
        fprintf (stderr, "floor: cannot listen on port %d\n", port);
        return 1;
    }
    printf ("floor: listening on http://127.0.0.1:%d with %u threads; ready\n",
            port, threads);
    fflush (stdout);
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    int signal_number;
    sigwait (&signals, &signal_number);
    MHD_stop_daemon (daemon);
    return 0;
}
