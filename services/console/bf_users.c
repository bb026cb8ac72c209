/*  bf_users — the console's users file (bf_users.h).  */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf_curve.h"
#include "bf_log.h"
#include "bf_secfile.h"
#include "bf_text.h"
#include "bf_users.h"

struct bf_users_t {
    bf_user_t *users;
    size_t count;
};

#define S_HASH_PREFIX "$argon2id$"

bool
bf_users_role_valid (const char *role)
{
    return role && (!strcmp (role, "operator") || !strcmp (role, "viewer"));
}

/*  Splits one line (NUL-terminated, no newline) into user. Returns 0, or
    -1 with the reason (never quoting the line: it holds a hash).  */
static int
s_parse_line (char *line, bf_user_t *user, char *err, size_t errsize)
{
    for (const char *p = line; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7E)
            return bf_err_set (err, errsize, "a byte outside printable ASCII (spaces included)");
    char *role = strchr (line, ':');
    char *hash = role ? strchr (role + 1, ':') : NULL;
    if (!role || !hash)
        return bf_err_set (err, errsize, "not NAME:ROLE:HASH");
    *role++ = 0;
    *hash++ = 0;
    if (!bf_curve_name_valid (line))
        return bf_err_set (err, errsize, "the name is not 1-%d of A-Z a-z 0-9 . _ -",
                           BF_USERS_NAME_MAX);
    if (!bf_users_role_valid (role))
        return bf_err_set (err, errsize, "the role is not operator or viewer");
    if (strncmp (hash, S_HASH_PREFIX, strlen (S_HASH_PREFIX)) != 0
        || strlen (hash) >= sizeof user->hash)
        return bf_err_set (err, errsize,
                           "the hash is not an argon2id hash (make entries with"
                           " `console adduser`)");
    memcpy (user->name, line, strlen (line) + 1); /* checked: at most 64 */
    memcpy (user->role, role, strlen (role) + 1); /* operator or viewer */
    memcpy (user->hash, hash, strlen (hash) + 1); /* checked: fits */
    return 0;
}

bf_users_t *
bf_users_parse (const char *text, size_t len, const char *path, char *err, size_t errsize)
{
    bf_users_t *self = calloc (1, sizeof *self);
    if (!self) {
        bf_err_set (err, errsize, "%s: out of memory", path);
        return NULL;
    }
    if (memchr (text, 0, len)) {
        bf_err_set (err, errsize, "%s: a NUL byte: not a users file", path);
        goto failed;
    }
    size_t lineno = 0, capacity = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        char line[BF_USERS_LINE_MAX + 1];
        if (n > BF_USERS_LINE_MAX) {
            bf_err_set (err, errsize, "%s:%zu: longer than %d bytes", path, lineno,
                        BF_USERS_LINE_MAX);
            goto failed;
        }
        memcpy (line, p, n);
        line[n] = 0;
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        p = nl ? nl + 1 : end;
        if (n == 0 || line[0] == '#')
            continue;
        bf_user_t user;
        char why[160];
        int rc = s_parse_line (line, &user, why, sizeof why);
        explicit_bzero (line, sizeof line);
        if (rc != 0) {
            bf_err_set (err, errsize, "%s:%zu: %s", path, lineno, why);
            goto failed;
        }
        if (bf_users_find (self, user.name)) {
            bf_err_set (err, errsize, "%s:%zu: user '%s' is listed twice", path, lineno, user.name);
            goto failed;
        }
        if (self->count == capacity) {
            size_t more = capacity ? capacity * 2 : 16;
            bf_user_t *grown = realloc (self->users, more * sizeof *grown);
            if (!grown) {
                bf_err_set (err, errsize, "%s: out of memory", path);
                goto failed;
            }
            self->users = grown;
            capacity = more;
        }
        self->users[self->count++] = user;
    }
    return self;
failed:
    bf_users_destroy (&self);
    return NULL;
}

/*  Reads the whole of an open file (at most BF_USERS_FILE_MAX) into a
    malloc'd buffer. NULL with the reason in err.  */
static char *
s_read_all (int fd, const char *path, size_t *len, char *err, size_t errsize)
{
    char *text = malloc (BF_USERS_FILE_MAX + 1);
    size_t used = 0;
    if (!text) {
        bf_err_set (err, errsize, "%s: out of memory", path);
        return NULL;
    }
    for (;;) {
        ssize_t n = read (fd, text + used, BF_USERS_FILE_MAX + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bf_err_set (err, errsize, "cannot read %s: %s", path, strerror (errno));
            free (text);
            return NULL;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > BF_USERS_FILE_MAX) {
            bf_err_set (err, errsize, "%s: larger than %d bytes", path, BF_USERS_FILE_MAX);
            free (text);
            return NULL;
        }
    }
    text[used] = 0;
    *len = used;
    return text;
}

bf_users_t *
bf_users_load (const char *path, char *err, size_t errsize)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bf_err_set (err, errsize, "cannot open the users file %s: %s", path, strerror (errno));
        return NULL;
    }
    bf_users_t *self = NULL;
    size_t len = 0;
    char *text = NULL;
    if (bf_secfile_check (fd, "users file", path, err, errsize) == 0)
        text = s_read_all (fd, path, &len, err, errsize);
    if (text)
        self = bf_users_parse (text, len, path, err, errsize);
    if (text) {
        explicit_bzero (text, len);
        free (text);
    }
    close (fd);
    return self;
}

void
bf_users_destroy (bf_users_t **self_p)
{
    if (self_p && *self_p) {
        bf_users_t *self = *self_p;
        if (self->users)
            explicit_bzero (self->users, self->count * sizeof *self->users);
        free (self->users);
        free (self);
        *self_p = NULL;
    }
}

size_t
bf_users_count (const bf_users_t *self)
{
    return self ? self->count : 0;
}

const bf_user_t *
bf_users_find (const bf_users_t *self, const char *name)
{
    if (!self || !name)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (!strcmp (self->users[i].name, name))
            return &self->users[i];
    return NULL;
}

int
bf_users_hash (const char *password, char out[crypto_pwhash_STRBYTES], char *err, size_t errsize)
{
    if (sodium_init () < 0)
        return bf_err_set (err, errsize, "libsodium failed to initialise");
    if (crypto_pwhash_str (out, password, strlen (password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                           crypto_pwhash_MEMLIMIT_INTERACTIVE)
        != 0)
        return bf_err_set (err, errsize, "cannot hash the password (out of memory)");
    return 0;
}

bool
bf_users_verify (const char *hash, const char *password)
{
    if (!hash || !password || strnlen (password, BF_USERS_PASSWORD_MAX + 1) > BF_USERS_PASSWORD_MAX
        || strncmp (hash, S_HASH_PREFIX, strlen (S_HASH_PREFIX)) != 0
        || strnlen (hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return false;
    if (sodium_init () < 0)
        return false;
    return crypto_pwhash_str_verify (hash, password, strlen (password)) == 0;
}

/*  The text of the users file at path, or an empty one when it does not
    exist (its mode checked). NULL with the reason in err.  */
static char *
s_read_existing (const char *path, size_t *len, char *err, size_t errsize)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        *len = 0;
        return calloc (1, 1);
    }
    if (fd < 0) {
        bf_err_set (err, errsize, "cannot open the users file %s: %s", path, strerror (errno));
        return NULL;
    }
    char *text = NULL;
    if (bf_secfile_check (fd, "users file", path, err, errsize) == 0)
        text = s_read_all (fd, path, len, err, errsize);
    close (fd);
    return text;
}

/*  Writes text + line to tmp (0600), syncs it and renames it to path.  */
static int
s_replace (const char *path, const char *text, size_t len, const char *line, char *err,
           size_t errsize)
{
    char tmp[4096];
    if ((size_t)snprintf (tmp, sizeof tmp, "%s.new.%ld", path, (long)getpid ()) >= sizeof tmp)
        return bf_err_set (err, errsize, "the users file's path is too long");
    FILE *out = bf_secfile_create (tmp, err, errsize);
    if (!out)
        return -1;
    bool ok = fwrite (text, 1, len, out) == len;
    if (ok && len && text[len - 1] != '\n')
        ok = fputc ('\n', out) != EOF;
    ok = ok && fputs (line, out) != EOF && fflush (out) == 0 && fsync (fileno (out)) == 0;
    ok = (fclose (out) == 0) && ok;
    if (!ok || rename (tmp, path) != 0) {
        bf_err_set (err, errsize, "cannot write %s: %s", path, strerror (errno));
        unlink (tmp);
        return -1;
    }
    return 0;
}

int
bf_users_add (const char *path, const char *name, const char *role, const char *password, char *err,
              size_t errsize)
{
    if (!bf_curve_name_valid (name))
        return bf_err_set (err, errsize, "the name must be 1-%d of A-Z a-z 0-9 . _ -",
                           BF_USERS_NAME_MAX);
    if (!bf_users_role_valid (role))
        return bf_err_set (err, errsize, "the role must be operator or viewer");
    size_t plen = strlen (password);
    if (plen < BF_USERS_PASSWORD_MIN || plen > BF_USERS_PASSWORD_MAX)
        return bf_err_set (err, errsize, "the password must be %d to %d bytes long",
                           BF_USERS_PASSWORD_MIN, BF_USERS_PASSWORD_MAX);
    if (!bf_text_utf8_valid (password, plen))
        return bf_err_set (err, errsize, "the password is not valid UTF-8");
    size_t len = 0;
    char *text = s_read_existing (path, &len, err, errsize);
    if (!text)
        return -1;
    int rc = -1;
    bf_users_t *users = bf_users_parse (text, len, path, err, errsize);
    char hash[crypto_pwhash_STRBYTES];
    char line[BF_USERS_LINE_MAX + 2];
    if (!users)
        goto cleanup;
    if (bf_users_find (users, name)) {
        bf_err_set (err, errsize, "user '%s' is in %s already", name, path);
        goto cleanup;
    }
    if (bf_users_hash (password, hash, err, errsize) != 0)
        goto cleanup;
    snprintf (line, sizeof line, "%s:%s:%s\n", name, role, hash);
    rc = s_replace (path, text, len, line, err, errsize);
cleanup:
    bf_users_destroy (&users);
    explicit_bzero (text, len);
    free (text);
    return rc;
}
