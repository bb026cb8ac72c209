/*  bf_curve — CURVE key files, the allowed-keys list, and control's ZAP
    handler (ZAP 1.0, RFC 27).  */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bf_curve.h"
#include "bf_secfile.h"
#include "bf_log.h"

#define S_ZAP_ENDPOINT      "inproc://zeromq.zap.01"
#define S_ZAP_DOMAIN        "billflow"
#define S_ROLE_PROPERTY     "X-Role"
#define S_SERVICE_PROPERTY  BF_CURVE_SERVICE_PROPERTY
#define S_INSTANCE_PROPERTY BF_CURVE_INSTANCE_PROPERTY
#define S_REFUSAL_QUIET_MS  (60 * 1000) /* one report per key per minute */
#define S_REFUSAL_TRACKED   4096        /* keys remembered for that */
#define S_RELOAD_CHECK_MS   1000
#define S_SECRET_FILE_MAX   16384
#define S_BIND_RETRY_MS     500

static const char s_z85_alphabet[]
    = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
      ".-:+=^!/*?&<>()[]{}@%$#";

static const char *const s_roles[] = { "operator", "viewer", "service", "console", NULL };

/*  --------------------------------------------------------------------------
    Keys and key files  */

bool
bf_curve_key_parse (const char *text, uint8_t out[32])
{
    if (!text || strnlen (text, BF_CURVE_KEY_TXT) != BF_CURVE_KEY_TXT - 1)
        return false;
    //  zmq_z85_decode checks less than we want on some versions: the
    //  alphabet, and that no 5-character group exceeds 32 bits.
    for (int group = 0; group < 8; group++) {
        uint64_t value = 0;
        for (int i = 0; i < 5; i++) {
            const char *at = strchr (s_z85_alphabet, text[group * 5 + i]);
            if (!at)
                return false;
            value = value * 85 + (uint64_t)(at - s_z85_alphabet);
        }
        if (value > UINT32_MAX)
            return false;
    }
    uint8_t key[32];
    if (!zmq_z85_decode (key, text))
        return false;
    if (out)
        memcpy (out, key, sizeof key);
    return true;
}

bool
bf_curve_name_valid (const char *name)
{
    size_t len = name ? strnlen (name, 66) : 0;
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
              || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool
s_role_valid (const char *role)
{
    for (const char *const *r = s_roles; *r; r++)
        if (!strcmp (*r, role))
            return true;
    return false;
}

/*  A copy of text fit for a one-line message: at most max characters,
    anything unprintable as '?'.  */
static const char *
s_printable (const char *text, size_t max, char *out, size_t outsize)
{
    size_t n = 0;
    for (; text[n] && n < max && n + 1 < outsize; n++)
        out[n] = (text[n] >= 0x20 && text[n] < 0x7f) ? text[n] : '?';
    out[n] = 0;
    if (text[n] && n + 4 < outsize)
        strcat (out, "...");
    return out;
}

int
bf_curve_keygen (const char *dir, const char *name, char public_txt[BF_CURVE_KEY_TXT], char *err,
                 size_t errsize)
{
    char shown[80];
    if (!bf_curve_name_valid (name))
        return bf_err_set (err, errsize, "key name '%s' is not 1-64 of A-Z a-z 0-9 . _ -",
                           s_printable (name ? name : "", 64, shown, sizeof shown));
    char pub[PATH_MAX], sec[PATH_MAX];
    if (!dir || !*dir)
        dir = ".";
    if (snprintf (pub, sizeof pub, "%s/%s.key", dir, name) >= (int)sizeof pub
        || snprintf (sec, sizeof sec, "%s/%s.key_secret", dir, name) >= (int)sizeof sec)
        return bf_err_set (err, errsize, "key directory path is too long");

    //  Create both files first, exclusively: an existing key is never
    //  overwritten, and the secret file is 0600 before a byte is written
    //  (zconfig_save opens with "w", which keeps the mode).
    int fd = open (pub, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return bf_err_set (err, errsize, "%s: %s%s", pub, strerror (errno),
                           errno == EEXIST ? " (refusing to overwrite an existing key)" : "");
    close (fd);
    fd = open (sec, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int error = errno;
        unlink (pub);
        return bf_err_set (err, errsize, "%s: %s%s", sec, strerror (error),
                           error == EEXIST ? " (refusing to overwrite an existing key)" : "");
    }
    close (fd);

    zcert_t *cert = zcert_new ();
    if (!cert) {
        unlink (pub);
        unlink (sec);
        return bf_err_set (err, errsize, "cannot generate a key pair");
    }
    char created[32];
    time_t now = time (NULL);
    struct tm tm;
    strftime (created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&now, &tm));
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "created", "%s", created);
    //  Public first: zcert keeps one tree for both files, and the secret
    //  save adds the secret key to it.
    if (zcert_save_public (cert, pub) != 0 || zcert_save_secret (cert, sec) != 0
        || chmod (sec, 0600) != 0) {
        int error = errno;
        zcert_destroy (&cert);
        unlink (pub);
        unlink (sec);
        return bf_err_set (err, errsize, "cannot write the key files in %s: %s", dir,
                           strerror (error));
    }
    snprintf (public_txt, BF_CURVE_KEY_TXT, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
    return 0;
}

/*  Copies every metadata item of config into cert.  */
static void
s_copy_metadata (zconfig_t *config, zcert_t *cert)
{
    zconfig_t *metadata = zconfig_locate (config, "/metadata");
    for (zconfig_t *item = metadata ? zconfig_child (metadata) : NULL; item;
         item = zconfig_next (item))
        if (zconfig_name (item) && zconfig_value (item))
            zcert_set_meta (cert, zconfig_name (item), "%s", zconfig_value (item));
}

zcert_t *
bf_curve_load_secret (const char *path, char *err, size_t errsize)
{
    if (!path || !*path) {
        bf_err_set (err, errsize, "no secret key file given");
        return NULL;
    }
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        bf_err_set (err, errsize, "secret key file '%s': %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    if (bf_secfile_check (fd, "secret key file", path, err, errsize) != 0
        || fstat (fd, &st) != 0) {
        close (fd);
        return NULL;
    }
    if (st.st_size > S_SECRET_FILE_MAX) {
        bf_err_set (err, errsize, "secret key file '%s' is too large to be a key file", path);
        close (fd);
        return NULL;
    }
    char text[S_SECRET_FILE_MAX + 1];
    size_t len = 0;
    ssize_t n;
    while (len < S_SECRET_FILE_MAX && (n = read (fd, text + len, S_SECRET_FILE_MAX - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bf_err_set (err, errsize, "secret key file '%s': %s", path, strerror (errno));
            close (fd);
            sodium_memzero (text, sizeof text);
            return NULL;
        }
        len += (size_t)n;
    }
    close (fd);
    text[len] = 0;
    zconfig_t *config = memchr (text, 0, len) ? NULL : zconfig_str_load (text);
    sodium_memzero (text, sizeof text);
    if (!config) {
        bf_err_set (err, errsize, "secret key file '%s' is not a key file (ZPL)", path);
        return NULL;
    }
    const char *public_txt = zconfig_get (config, "/curve/public-key", NULL);
    const char *secret_txt = zconfig_get (config, "/curve/secret-key", NULL);
    uint8_t public_key[32], secret_key[32];
    char derived[BF_CURVE_KEY_TXT];
    zcert_t *cert = NULL;
    if (!secret_txt)
        bf_err_set (err, errsize, "'%s' holds no secret key (is it the public .key file?)", path);
    else if (!public_txt || !bf_curve_key_parse (public_txt, public_key)
             || !bf_curve_key_parse (secret_txt, secret_key))
        bf_err_set (err, errsize, "'%s': a key is not 40 Z85 characters", path);
    else if (zmq_curve_public (derived, secret_txt) != 0 || strcmp (derived, public_txt) != 0)
        bf_err_set (err, errsize, "'%s': the public key does not belong to the secret key", path);
    else if (!(cert = zcert_new_from (public_key, secret_key)))
        bf_err_set (err, errsize, "'%s': cannot make a certificate", path);
    else
        s_copy_metadata (config, cert);
    sodium_memzero (secret_key, sizeof secret_key);
    zconfig_destroy (&config);
    return cert;
}

int
bf_curve_client (zsock_t *sock, zcert_t *cert, const char *server_txt, char *err, size_t errsize)
{
    char shown[60];
    if (!bf_curve_key_parse (server_txt, NULL))
        return bf_err_set (err, errsize, "server public key '%s' is not 40 Z85 characters",
                           s_printable (server_txt ? server_txt : "", 48, shown, sizeof shown));
    if (!cert)
        return bf_err_set (err, errsize, "no key pair for the CURVE client");
    if (!zsys_has_curve ())
        return bf_err_set (err, errsize, "this libzmq is built without CURVE");
    zcert_apply (cert, sock);
    zsock_set_curve_serverkey (sock, server_txt);
    return 0;
}

void
bf_curve_server (zsock_t *sock, zcert_t *cert)
{
    //  The domain first: should CURVE be missing, the socket still asks the
    //  ZAP handler, which refuses every mechanism but CURVE.
    zsock_set_zap_domain (sock, S_ZAP_DOMAIN);
    if (!zsys_has_curve ()) {
        bf_error ("curve: this libzmq is built without CURVE: every client will be refused");
        return;
    }
    zcert_apply (cert, sock);
    zsock_set_curve_server (sock, 1);
}

/*  --------------------------------------------------------------------------
    The allowed-keys list  */

struct bf_keyring_t {
    bf_keyring_entry_t *entries;
    int *lines; /* line of each entry, for duplicate messages */
    size_t size, cap;
};

size_t
bf_keyring_size (const bf_keyring_t *self)
{
    return self ? self->size : 0;
}

const bf_keyring_entry_t *
bf_keyring_find (const bf_keyring_t *self, const uint8_t key[32])
{
    for (size_t i = 0; self && key && i < self->size; i++)
        if (!memcmp (self->entries[i].key, key, 32))
            return &self->entries[i];
    return NULL;
}

void
bf_keyring_destroy (bf_keyring_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->entries);
    free ((*self_p)->lines);
    free (*self_p);
    *self_p = NULL;
}

/*  Splits a service binding "SERVICE" or "SERVICE:GLOB". Returns 0, or -1
    when either part is empty, too long or holds characters it may not.  */
static int
s_binding_parse (const char *text, char *service, size_t service_size, char *pattern,
                 size_t pattern_size)
{
    const char *colon = strchr (text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen (text);
    if (len < 1 || len >= service_size)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return -1;
    }
    memcpy (service, text, len);
    service[len] = 0;
    *pattern = 0;
    if (!colon)
        return 0;
    const char *glob = colon + 1;
    size_t glen = strlen (glob);
    if (glen < 1 || glen >= pattern_size)
        return -1;
    for (size_t i = 0; i < glen; i++)
        if ((unsigned char)glob[i] < 0x21 || (unsigned char)glob[i] > 0x7e)
            return -1;
    memcpy (pattern, glob, glen + 1);
    return 0;
}

/*  Checks one split line and appends it. Returns 0, or -1 with the reason
    (without the file:line prefix) in why.  */
static int
s_keyring_add (bf_keyring_t *self, char *const *field, int nfields, int lineno, char *why,
               size_t whysize)
{
    char shown[80];
    if (nfields < 3)
        return bf_err_set (why, whysize, "expected 'name role key', found %d field%s", nfields,
                           nfields == 1 ? "" : "s");
    if (nfields > 4)
        return bf_err_set (why, whysize, "unexpected '%s' after the service binding",
                           s_printable (field[4], 40, shown, sizeof shown));
    const char *name = field[0], *role = field[1], *key_txt = field[2];
    const char *binding = nfields == 4 ? field[3] : NULL;
    char service[sizeof ((bf_keyring_entry_t *)0)->service] = "";
    char pattern[sizeof ((bf_keyring_entry_t *)0)->instance_pattern] = "";
    if (binding && strcmp (role, "service") != 0)
        return bf_err_set (why, whysize,
                           "unexpected '%s' after the key: only a service key is"
                           " bound to a service",
                           s_printable (binding, 40, shown, sizeof shown));
    if (binding && s_binding_parse (binding, service, sizeof service, pattern, sizeof pattern) != 0)
        return bf_err_set (why, whysize,
                           "bad service binding '%s' for '%s': SERVICE or SERVICE:INSTANCE-GLOB"
                           " (service 1-15 of a-z 0-9 _ -; glob 1-127 printable characters)",
                           s_printable (binding, 60, shown, sizeof shown), name);
    if (!bf_curve_name_valid (name))
        return bf_err_set (why, whysize, "bad name '%s': 1-64 of A-Z a-z 0-9 . _ -",
                           s_printable (name, 64, shown, sizeof shown));
    if (!s_role_valid (role))
        return bf_err_set (why, whysize, "unknown role '%s' (operator, viewer, service or console)",
                           s_printable (role, 40, shown, sizeof shown));
    uint8_t key[32];
    if (strlen (key_txt) != BF_CURVE_KEY_TXT - 1)
        return bf_err_set (why, whysize, "bad key for '%s': %zu characters, not 40", name,
                           strlen (key_txt));
    if (!bf_curve_key_parse (key_txt, key))
        return bf_err_set (why, whysize, "bad key for '%s': not Z85", name);
    for (size_t i = 0; i < self->size; i++) {
        if (!strcmp (self->entries[i].name, name))
            return bf_err_set (why, whysize, "duplicate name '%s' (also on line %d)", name,
                               self->lines[i]);
        if (!memcmp (self->entries[i].key, key, sizeof key))
            return bf_err_set (why, whysize, "duplicate key: '%s' has the key of '%s' (line %d)",
                               name, self->entries[i].name, self->lines[i]);
    }
    if (self->size == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        bf_keyring_entry_t *entries = realloc (self->entries, cap * sizeof *entries);
        if (entries)
            self->entries = entries;
        int *lines = entries ? realloc (self->lines, cap * sizeof *lines) : NULL;
        if (lines)
            self->lines = lines;
        if (!entries || !lines)
            return bf_err_set (why, whysize, "out of memory");
        self->cap = cap;
    }
    bf_keyring_entry_t *entry = &self->entries[self->size];
    memset (entry, 0, sizeof *entry);
    snprintf (entry->name, sizeof entry->name, "%s", name);
    snprintf (entry->role, sizeof entry->role, "%s", role);
    snprintf (entry->key_txt, sizeof entry->key_txt, "%s", key_txt);
    snprintf (entry->service, sizeof entry->service, "%s", service);
    snprintf (entry->instance_pattern, sizeof entry->instance_pattern, "%s", pattern);
    memcpy (entry->key, key, sizeof key);
    self->lines[self->size++] = lineno;
    return 0;
}

bf_keyring_t *
bf_keyring_load (const char *path, char *err, size_t errsize)
{
    if (!path || !*path) {
        bf_err_set (err, errsize, "no allowed-keys file given");
        return NULL;
    }
    FILE *file = fopen (path, "re");
    if (!file) {
        bf_err_set (err, errsize, "%s: %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    if (fstat (fileno (file), &st) != 0 || !S_ISREG (st.st_mode)) {
        bf_err_set (err, errsize, "%s: not a regular file", path);
        fclose (file);
        return NULL;
    }
    if (bf_secfile_check (fileno (file), "allowed-keys file", path, err, errsize) != 0) {
        fclose (file);
        return NULL;
    }
    bf_keyring_t *self = calloc (1, sizeof *self);
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    int lineno = 0;
    bool ok = self != NULL;
    if (!self)
        bf_err_set (err, errsize, "%s: out of memory", path);
    while (ok && (len = getline (&line, &linecap, file)) >= 0) {
        lineno++;
        char why[200] = "";
        if ((size_t)len != strlen (line))
            bf_err_set (why, sizeof why, "contains a NUL byte");
        else {
            //  Fields separated by white space; a line whose first field
            //  starts with '#' is a comment, and so is anything after the
            //  key that starts with '#' (a key itself may hold '#').
            char *field[5], *save = NULL;
            int nfields = 0;
            for (char *word = strtok_r (line, " \t\r\n\v\f", &save); word;
                 word = strtok_r (NULL, " \t\r\n\v\f", &save)) {
                if (word[0] == '#' && (nfields == 0 || nfields >= 3))
                    break;
                if (nfields < 5)
                    field[nfields] = word;
                nfields++;
            }
            if (nfields > 0)
                s_keyring_add (self, field, nfields, lineno, why, sizeof why);
        }
        if (*why) {
            bf_err_set (err, errsize, "%s:%d: %s", path, lineno, why);
            ok = false;
        }
    }
    if (ok && ferror (file)) {
        bf_err_set (err, errsize, "%s: %s", path, strerror (errno));
        ok = false;
    }
    free (line);
    fclose (file);
    if (!ok)
        bf_keyring_destroy (&self);
    return self;
}

/*  --------------------------------------------------------------------------
    The ZAP handler  */

typedef struct {
    zsock_t *pipe;
    zsock_t *handler; /* REP on inproc://zeromq.zap.01 */
    char *path;
    bf_keyring_t *keyring;
    struct stat seen; /* the version of the file last read (or tried) */
    int64_t next_check;
    zhash_t *reported; /* key text -> int64_t * (zclock_mono of the last report) */
    char *roles;       /* ",role,role," or NULL: every role is let in */
    char *services;    /* ",svc,svc," or NULL: any binding is let in */
    uint64_t allowed, refused, reloads;
} s_zap_t;

static bool
s_same_file (const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
           && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/*  Reads the list again when the file changed since the last look (at most
    once a second). A list that no longer parses keeps the previous one.  */
static void
s_zap_check_reload (s_zap_t *self, bool force)
{
    int64_t now = zclock_mono ();
    if (!force && now < self->next_check)
        return;
    self->next_check = now + S_RELOAD_CHECK_MS;
    struct stat st;
    if (stat (self->path, &st) != 0) {
        if (self->seen.st_ino != 0) {
            bf_error ("zap: allowed-keys list %s: %s; keeping the %zu keys read before", self->path,
                      strerror (errno), bf_keyring_size (self->keyring));
            memset (&self->seen, 0, sizeof self->seen);
        }
        return;
    }
    if (s_same_file (&st, &self->seen))
        return;
    self->seen = st;
    char err[512];
    bf_keyring_t *keyring = bf_keyring_load (self->path, err, sizeof err);
    if (!keyring) {
        bf_error ("zap: the allowed-keys list no longer parses (%s); keeping the %zu keys read"
                  " before",
                  err, bf_keyring_size (self->keyring));
        return;
    }
    bf_keyring_destroy (&self->keyring);
    self->keyring = keyring;
    self->reloads++;
    bf_info ("zap: reloaded %s: %zu keys", self->path, bf_keyring_size (keyring));
}

/*  Reports a refusal to the log and the pipe, at most once per key per
    minute. The pipe send never blocks: an owner that does not read its
    pipe must not stall every handshake.  */
static void
s_zap_report (s_zap_t *self, const char *key, const char *address, const char *mechanism,
              const char *why)
{
    int64_t now = zclock_mono ();
    int64_t *last = zhash_lookup (self->reported, key);
    if (last && now - *last < S_REFUSAL_QUIET_MS)
        return;
    if (!last) {
        if (zhash_size (self->reported) >= S_REFUSAL_TRACKED) {
            zlist_t *keys = zhash_keys (self->reported);
            for (char *k = keys ? zlist_first (keys) : NULL; k; k = zlist_next (keys)) {
                int64_t *at = zhash_lookup (self->reported, k);
                if (at && now - *at >= S_REFUSAL_QUIET_MS)
                    zhash_delete (self->reported, k);
            }
            zlist_destroy (&keys);
        }
        //  Still full: that many different keys in a minute; stay quiet.
        if (zhash_size (self->reported) >= S_REFUSAL_TRACKED)
            return;
        last = malloc (sizeof *last);
        if (!last)
            return;
        if (zhash_insert (self->reported, key, last) != 0) {
            free (last);
            return;
        }
        zhash_freefn (self->reported, key, free);
    }
    *last = now;
    bf_warn ("zap: refused %s client %s from %s: %s", mechanism, key, address, why);
    void *handle = zsock_resolve (self->pipe);
    const char *parts[] = { "REFUSED", key, address, mechanism };
    for (int i = 0; i < 4; i++)
        if (zmq_send (handle, parts[i], strlen (parts[i]), ZMQ_DONTWAIT | (i < 3 ? ZMQ_SNDMORE : 0))
            < 0) {
            bf_debug ("zap: the pipe is full; a refusal report was dropped");
            break;
        }
}

/*  A frame as a printable C string (at most max characters).  */
static char *
s_frame_text (zframe_t *frame, size_t max, char *out, size_t outsize)
{
    size_t n = frame ? zframe_size (frame) : 0;
    const char *data = frame ? (const char *)zframe_data (frame) : "";
    if (n > max)
        n = max;
    if (n >= outsize)
        n = outsize - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (data[i] >= 0x20 && data[i] < 0x7f) ? data[i] : '?';
    out[n] = 0;
    return out;
}

static bool
s_frame_is (zframe_t *frame, const char *text)
{
    return frame && zframe_size (frame) == strlen (text)
           && !memcmp (zframe_data (frame), text, zframe_size (frame));
}

/*  Appends one ZMTP metadata property at p: name length (1 byte), name,
    value length (4 bytes, big-endian), value. Returns the end.  */
static uint8_t *
s_metadata_add (uint8_t *p, const char *name, const char *value)
{
    size_t name_len = strlen (name), value_len = strlen (value);
    *p++ = (uint8_t)name_len;
    memcpy (p, name, name_len);
    p += name_len;
    *p++ = (uint8_t)(value_len >> 24);
    *p++ = (uint8_t)(value_len >> 16);
    *p++ = (uint8_t)(value_len >> 8);
    *p++ = (uint8_t)value_len;
    memcpy (p, value, value_len);
    return p + value_len;
}

static void
s_zap_reply (s_zap_t *self, zframe_t *request_id, const char *status, const char *text,
             const bf_keyring_entry_t *entry)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (request_id)
        zmsg_addmem (reply, zframe_data (request_id), zframe_size (request_id));
    else
        zmsg_addmem (reply, NULL, 0);
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    if (entry) {
        //  ZMTP metadata: the role and, for a bound service key, the service
        //  and instance glob it may register as.
        uint8_t metadata[3 * (1 + 16 + 4) + sizeof entry->role + sizeof entry->service
                         + sizeof entry->instance_pattern];
        uint8_t *p = metadata;
        p = s_metadata_add (p, S_ROLE_PROPERTY, entry->role);
        if (*entry->service)
            p = s_metadata_add (p, S_SERVICE_PROPERTY, entry->service);
        if (*entry->instance_pattern)
            p = s_metadata_add (p, S_INSTANCE_PROPERTY, entry->instance_pattern);
        zmsg_addstr (reply, entry->name);
        zmsg_addmem (reply, metadata, (size_t)(p - metadata));
    } else {
        zmsg_addmem (reply, NULL, 0);
        zmsg_addmem (reply, NULL, 0);
    }
    if (zmsg_send (&reply, self->handler) != 0) {
        bf_error ("zap: cannot send a reply: %s", zmq_strerror (zmq_errno ()));
        zmsg_destroy (&reply);
    }
}

/*  True when list (",a,b,", see s_zap_list) is NULL or names item.  */
static bool
s_zap_listed (const char *list, const char *item)
{
    if (!list)
        return true;
    char entry[40];
    snprintf (entry, sizeof entry, ",%s,", item);
    return *item && strstr (list, entry) != NULL;
}

/*  ",a,b," from "a,b", so that a lookup of ",item," matches whole names
    only; NULL for NULL or empty (no restriction) and when out of memory
    (then the caller refuses to start).  */
static char *
s_zap_list (const char *items)
{
    if (!items || !*items)
        return NULL;
    char *list = malloc (strlen (items) + 3);
    if (list)
        sprintf (list, ",%s,", items);
    return list;
}

/*  One ZAP request: [version][request id][domain][address][identity]
    [mechanism][credentials...] (the REP socket strips the envelope).  */
static void
s_zap_handle (s_zap_t *self)
{
    zmsg_t *request = zmsg_recv (self->handler);
    if (!request)
        return;
    zframe_t *version = zmsg_first (request);
    zframe_t *request_id = zmsg_next (request);
    zframe_t *domain = zmsg_next (request);
    zframe_t *address = zmsg_next (request);
    zframe_t *identity = zmsg_next (request);
    zframe_t *mechanism = zmsg_next (request);
    zframe_t *credentials = zmsg_next (request);
    (void)identity;
    if (!mechanism || !s_frame_is (version, "1.0")) {
        bf_error ("zap: a malformed ZAP request (%zu frames)", zmsg_size (request));
        s_zap_reply (self, request_id, "500", "malformed ZAP request", NULL);
        zmsg_destroy (&request);
        return;
    }
    char mech[24], peer[128], key[BF_CURVE_KEY_TXT] = "-";
    s_frame_text (mechanism, 20, mech, sizeof mech);
    s_frame_text (address, 100, peer, sizeof peer);
    if (!*peer)
        snprintf (peer, sizeof peer, "-");
    bool curve = s_frame_is (mechanism, "CURVE") && credentials && zframe_size (credentials) == 32;
    if (curve && !zmq_z85_encode (key, zframe_data (credentials), 32))
        snprintf (key, sizeof key, "-");
    s_zap_check_reload (self, false);
    const bf_keyring_entry_t *entry = NULL;
    const char *why;
    if (!s_frame_is (domain, S_ZAP_DOMAIN))
        why = "not the billflow ZAP domain";
    else if (!curve)
        why = "only CURVE is accepted";
    else if (!(entry = bf_keyring_find (self->keyring, zframe_data (credentials))))
        why = "key not in the allowed list";
    else if (!s_zap_listed (self->roles, entry->role)) {
        why = "the key's role may not connect here";
        entry = NULL;
    } else if (!s_zap_listed (self->services, entry->service)) {
        why = "the key is not bound to a service that may connect here";
        entry = NULL;
    } else
        why = NULL;
    if (entry) {
        self->allowed++;
        bf_debug ("zap: allowed %s (%s) from %s", entry->name, entry->role, peer);
        s_zap_reply (self, request_id, "200", "OK", entry);
    } else {
        self->refused++;
        s_zap_report (self, key, peer, mech, why);
        s_zap_reply (self, request_id, "400", why, NULL);
    }
    zmsg_destroy (&request);
}

static bool
s_zap_on_pipe (s_zap_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg)
        return false;
    char *command = zmsg_popstr (msg);
    bool go_on = command && !streq (command, "$TERM");
    if (command && streq (command, "STATS")) {
        char v[4][24];
        snprintf (v[0], sizeof v[0], "%llu", (unsigned long long)self->allowed);
        snprintf (v[1], sizeof v[1], "%llu", (unsigned long long)self->refused);
        snprintf (v[2], sizeof v[2], "%llu", (unsigned long long)self->reloads);
        snprintf (v[3], sizeof v[3], "%zu", bf_keyring_size (self->keyring));
        zstr_sendx (self->pipe, v[0], v[1], v[2], v[3], NULL);
    } else if (go_on)
        bf_warn ("zap: unknown pipe command '%s'", command);
    free (command);
    zmsg_destroy (&msg);
    return go_on;
}

void
bf_zap_actor (zsock_t *pipe, void *args)
{
    const bf_zap_args_t *zargs = args;
    s_zap_t self = { .pipe = pipe };
    char err[512];
    if (!zargs || !zargs->allowed_keys || !*zargs->allowed_keys) {
        bf_error ("zap: no allowed-keys list given (control.allowed_keys)");
        zsock_signal (pipe, (byte)-1);
        return;
    }
    self.roles = s_zap_list (zargs->roles);
    self.services = s_zap_list (zargs->services);
    if ((zargs->roles && *zargs->roles && !self.roles)
        || (zargs->services && *zargs->services && !self.services)) {
        bf_error ("zap: out of memory at start");
        free (self.roles);
        free (self.services);
        zsock_signal (pipe, (byte)-1);
        return;
    }
    self.path = strdup (zargs->allowed_keys);
    if (self.path && stat (self.path, &self.seen) != 0)
        memset (&self.seen, 0, sizeof self.seen);
    self.keyring = self.path ? bf_keyring_load (self.path, err, sizeof err) : NULL;
    if (!self.keyring) {
        bf_error ("zap: cannot read the allowed-keys list: %s", self.path ? err : "out of memory");
        free (self.path);
        free (self.roles);
        free (self.services);
        zsock_signal (pipe, (byte)-1);
        return;
    }
    if (bf_keyring_size (self.keyring) == 0)
        bf_warn ("zap: the allowed-keys list %s is empty: every client is refused", self.path);
    self.handler = zsock_new (ZMQ_REP);
    //  A handler that just stopped may hold the endpoint for a moment.
    int rc = -1;
    int64_t give_up = zclock_mono () + S_BIND_RETRY_MS;
    while (self.handler && (rc = zsock_bind (self.handler, S_ZAP_ENDPOINT)) != 0
           && zmq_errno () == EADDRINUSE && zclock_mono () < give_up)
        zclock_sleep (10);
    if (rc != 0) {
        bf_error ("zap: cannot bind %s: %s (is another ZAP handler running?)", S_ZAP_ENDPOINT,
                  self.handler ? zmq_strerror (zmq_errno ()) : "no socket");
        zsock_destroy (&self.handler);
        bf_keyring_destroy (&self.keyring);
        free (self.path);
        free (self.roles);
        free (self.services);
        zsock_signal (pipe, (byte)-1);
        return;
    }
    zsock_set_linger (self.handler, 0);
    self.reported = zhash_new ();
    self.next_check = zclock_mono () + S_RELOAD_CHECK_MS;
    bf_info ("zap: %zu allowed keys from %s", bf_keyring_size (self.keyring), self.path);
    zsock_signal (pipe, 0);

    zpoller_t *poller = zpoller_new (pipe, self.handler, NULL);
    zpoller_set_nonstop (poller, true);
    bool running = true;
    while (running) {
        int64_t wait = self.next_check - zclock_mono ();
        void *which = zpoller_wait (poller, wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait);
        if (which == pipe)
            running = s_zap_on_pipe (&self);
        else if (which == self.handler)
            s_zap_handle (&self);
        else if (zpoller_terminated (poller) && zmq_errno () == ETERM)
            break;
        s_zap_check_reload (&self, false);
    }
    zpoller_destroy (&poller);
    zsock_unbind (self.handler, S_ZAP_ENDPOINT);
    zsock_destroy (&self.handler);
    zhash_destroy (&self.reported);
    bf_keyring_destroy (&self.keyring);
    free (self.path);
    free (self.roles);
    free (self.services);
}
