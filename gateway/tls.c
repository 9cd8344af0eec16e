/*  tls.c — the certificate and key of an HTTPS face, and the plain-HTTP
    probe (see tls.h).

    GnuTLS is linked directly (configure.ac: PKG_CHECK_MODULES gnutls) for
    two things libmicrohttpd does not offer: reading the files with the
    x509 functions to say what is wrong with them before MHD starts, and
    the pull function of a session, which is how the probe sees a
    connection's first bytes before GnuTLS does.
*/
#include "tls.h"
#include "log.h"
#include <czmq.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sys/stat.h>
#include <poll.h>

#define TLS_FILE_MAX    (1024 * 1024)   //  bytes of a PEM file

struct _tiers_tls_t {
    char *cert;                 //  PEM text, NUL-terminated
    char *key;
    size_t key_size;
    char summary [512];
};

//  A small secret file whole, NUL-terminated (tls.h), or NULL + *why.
char *
tiers_secret_file_read (const char *what, const char *path, size_t *size, char **why)
{
    FILE *file = fopen (path, "rb");
    if (file)
        setvbuf (file, NULL, _IONBF, 0);    //  no stdio buffer left holding it
    struct stat info;
    if (!file || fstat (fileno (file), &info)) {
        *why = zsys_sprintf ("cannot read %s %s: %s", what, path, strerror (errno));
        if (file)
            fclose (file);
        return NULL;
    }
    if (!S_ISREG (info.st_mode) || info.st_size > TLS_FILE_MAX) {
        *why = zsys_sprintf ("%s %s: %s", what, path, S_ISREG (info.st_mode)
                             ? "larger than 1 MiB" : "not a regular file");
        fclose (file);
        return NULL;
    }
    *size = (size_t) info.st_size;
    char *text = (char *) malloc (*size + 1);
    assert (text);
    size_t got = fread (text, 1, *size, file);
    int error = ferror (file) ? errno : 0;
    fclose (file);
    if (got != *size) {
        *why = zsys_sprintf ("cannot read %s %s: %s", what, path,
                             error ? strerror (error) : "it changed while read");
        explicit_bzero (text, *size + 1);
        free (text);
        return NULL;
    }
    text [*size] = 0;
    return text;
}

static void
s_utc (time_t when, char *text, size_t size)
{
    struct tm tm;
    strftime (text, size, "%Y-%m-%d %H:%M:%S UTC", gmtime_r (&when, &tm));
}

//  The certificate is valid now, and the key is its key. Returns the
//  reason when not (malloc'ed), NULL when it is; fills the summary.
static char *
s_check (tiers_tls_t *self, const char *cert_path, const char *key_path)
{
    char *why = NULL;
    gnutls_x509_crt_t *chain = NULL;
    unsigned chain_size = 0;
    gnutls_x509_privkey_t key = NULL;
    gnutls_datum_t cert_text = { (unsigned char *) self->cert, (unsigned) strlen (self->cert) };
    gnutls_datum_t key_text = { (unsigned char *) self->key, (unsigned) self->key_size };
    int rc = gnutls_x509_crt_list_import2 (&chain, &chain_size, &cert_text,
                                           GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || chain_size == 0) {
        why = zsys_sprintf ("tls_cert %s holds no PEM certificate that GnuTLS can read (%s)",
                            cert_path, gnutls_strerror (rc));
        goto done;
    }
    time_t now = time (NULL);
    time_t from = gnutls_x509_crt_get_activation_time (chain [0]);
    time_t until = gnutls_x509_crt_get_expiration_time (chain [0]);
    char date [64];
    if (until != (time_t) -1 && until < now) {
        s_utc (until, date, sizeof date);
        why = zsys_sprintf ("tls_cert %s: the certificate expired on %s", cert_path, date);
        goto done;
    }
    if (from != (time_t) -1 && from > now) {
        s_utc (from, date, sizeof date);
        why = zsys_sprintf ("tls_cert %s: the certificate is not valid before %s",
                            cert_path, date);
        goto done;
    }
    if (gnutls_x509_privkey_init (&key) < 0) {
        why = zsys_sprintf ("tls_key %s: out of memory", key_path);
        goto done;
    }
    rc = gnutls_x509_privkey_import2 (key, &key_text, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        why = zsys_sprintf ("tls_key %s holds no PEM private key that GnuTLS can read "
                            "without a password (%s)", key_path, gnutls_strerror (rc));
        goto done;
    }
    unsigned char cert_id [64], key_id [64];
    size_t cert_id_size = sizeof cert_id, key_id_size = sizeof key_id;
    if (gnutls_x509_crt_get_key_id (chain [0], GNUTLS_KEYID_USE_SHA256, cert_id,
                                    &cert_id_size) < 0
    ||  gnutls_x509_privkey_get_key_id (key, GNUTLS_KEYID_USE_SHA256, key_id,
                                        &key_id_size) < 0
    ||  cert_id_size != key_id_size || memcmp (cert_id, key_id, key_id_size)) {
        why = zsys_sprintf ("tls_key %s is not the key of the certificate in tls_cert %s",
                            key_path, cert_path);
        goto done;
    }
    gnutls_datum_t subject = { NULL, 0 };
    gnutls_x509_crt_get_dn3 (chain [0], &subject, 0);
    s_utc (until, date, sizeof date);
    snprintf (self->summary, sizeof self->summary, "certificate %s (%u in the chain), "
              "expires %s (in %lld days)", subject.data ? (char *) subject.data : "?",
              chain_size, date, (long long) (until - now) / 86400);
    gnutls_free (subject.data);
done:
    if (key)
        gnutls_x509_privkey_deinit (key);
    for (unsigned i = 0; i < chain_size; i++)
        gnutls_x509_crt_deinit (chain [i]);
    gnutls_free (chain);
    return why;
}

tiers_tls_t *
tiers_tls_load (const char *cert_path, const char *key_path, char **why)
{
    assert (cert_path && key_path);
    *why = NULL;
    tiers_tls_t *self = (tiers_tls_t *) zmalloc (sizeof *self);
    assert (self);
    size_t cert_size = 0;
    self->cert = tiers_secret_file_read ("tls_cert", cert_path, &cert_size, why);
    if (self->cert)
        self->key = tiers_secret_file_read ("tls_key", key_path, &self->key_size, why);
    if (self->key)
        *why = s_check (self, cert_path, key_path);
    if (*why) {
        tiers_tls_destroy (&self);
        return NULL;
    }
    struct stat info;
    if (stat (key_path, &info) == 0 && (info.st_mode & 077))
        tiers_warn ("tls_key %s can be read by other users (mode %04o): chmod 600 it",
                    key_path, (unsigned) (info.st_mode & 07777));
    return self;
}

void
tiers_tls_destroy (tiers_tls_t **self_p)
{
    assert (self_p);
    tiers_tls_t *self = *self_p;
    if (self) {
        if (self->key)
            explicit_bzero (self->key, self->key_size);
        free (self->key);
        free (self->cert);
        free (self);
        *self_p = NULL;
    }
}

const char *
tiers_tls_cert (const tiers_tls_t *self)
{
    assert (self);
    return self->cert;
}

const char *
tiers_tls_key (const tiers_tls_t *self)
{
    assert (self);
    return self->key;
}

const char *
tiers_tls_summary (const tiers_tls_t *self)
{
    assert (self);
    return self->summary;
}

const char *
tiers_tls_priorities (void)
{
    return "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}

//  --------------------------------------------------------------------------
//  The probe

//  The session's reads once the probe is done: the socket, as GnuTLS's
//  own would (its transport pointer is the descriptor again).
static ssize_t
s_recv (gnutls_transport_ptr_t transport, void *data, size_t size)
{
    return recv ((int) (intptr_t) transport, data, size, 0);
}

//  GnuTLS asks whether data is there within `ms`; the face's thread never
//  waits in here (the socket is non-blocking, MHD polls it), so the answer
//  is for now. A custom pull function needs a pull timeout of its own:
//  GnuTLS refuses the system one beside it.
static int
s_fd_pull_timeout (gnutls_transport_ptr_t transport, unsigned int ms)
{
    (void) ms;
    struct pollfd item = { (int) (intptr_t) transport, POLLIN, 0 };
    return poll (&item, 1, 0);
}

static void
s_release (tiers_tls_probe_t *probe)
{
    gnutls_session_t session = (gnutls_session_t) probe->session;
    gnutls_transport_ptr_t socket = (gnutls_transport_ptr_t) (intptr_t) probe->fd;
    gnutls_transport_set_ptr2 (session, socket, socket);
    gnutls_transport_set_pull_function (session, s_recv);
    gnutls_transport_set_pull_timeout_function (session, s_fd_pull_timeout);
    probe->session = NULL;
}

//  The first read of the session. A TLS record starts with its type (22,
//  a handshake, for a ClientHello); an HTTP request with its method, in
//  capitals.
static ssize_t
s_pull (gnutls_transport_ptr_t transport, void *data, size_t size)
{
    tiers_tls_probe_t *probe = (tiers_tls_probe_t *) transport;
    ssize_t got = recv (probe->fd, data, size, 0);
    if (got < 0)
        return got;                 //  EAGAIN: still the first read to come
    s_release (probe);
    unsigned char first = got > 0 ? ((unsigned char *) data) [0] : 0;
    if (first >= 'A' && first <= 'Z') {
        probe->plain (probe);
        errno = ECONNRESET;         //  GnuTLS fails the handshake; MHD closes
        return -1;
    }
    return got;
}

static int
s_pull_timeout (gnutls_transport_ptr_t transport, unsigned int ms)
{
    (void) ms;                      //  never waits: see s_fd_pull_timeout
    tiers_tls_probe_t *probe = (tiers_tls_probe_t *) transport;
    struct pollfd item = { probe->fd, POLLIN, 0 };
    return poll (&item, 1, 0);
}

void
tiers_tls_probe_start (tiers_tls_probe_t *probe, void *session, int fd)
{
    assert (probe && session && probe->plain);
    probe->session = session;
    probe->fd = fd;
    gnutls_session_t tls = (gnutls_session_t) session;
    gnutls_transport_set_ptr2 (tls, probe, (gnutls_transport_ptr_t) (intptr_t) fd);
    gnutls_transport_set_pull_function (tls, s_pull);
    gnutls_transport_set_pull_timeout_function (tls, s_pull_timeout);
}

void
tiers_tls_probe_stop (tiers_tls_probe_t *probe)
{
    assert (probe);
    if (probe->session)
        s_release (probe);
}
