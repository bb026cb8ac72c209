/*  bf_users — the console's users file: who may log in, with which role,
    and their password hash.

    One user per line: `NAME:ROLE:HASH`, NAME a person's name as control
    accepts it (bf_curve_name_valid: 1-64 of A-Z a-z 0-9 . _ -), ROLE
    `operator` or `viewer`, HASH libsodium's crypto_pwhash_str (argon2id,
    "$argon2id$..."). Blank lines and lines starting with '#' are skipped.
    Anything else — a longer line, a missing field, a bad name or role, a
    hash that is not argon2id, a byte outside printable ASCII, a name given
    twice — makes the whole file refused with its line number: a users file
    is not half-read. The file holds secrets (hashes): its mode is checked
    like every secret file (bf_secfile.h).

    Verifying a password is deliberately slow (argon2id, interactive
    limits: about 64 MiB and a few hundred milliseconds): callers run it
    off the thread that serves other clients (bf_console.c).  */

#ifndef BF_USERS_H_INCLUDED
#define BF_USERS_H_INCLUDED

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#define BF_USERS_NAME_MAX     64
#define BF_USERS_LINE_MAX     512
#define BF_USERS_FILE_MAX     (1024 * 1024)
#define BF_USERS_PASSWORD_MIN 10   /* adduser's rule for a new password */
#define BF_USERS_PASSWORD_MAX 1024 /* longest password accepted anywhere */

typedef struct {
    char name[BF_USERS_NAME_MAX + 1];
    char role[16]; /* "operator" or "viewer" */
    char hash[crypto_pwhash_STRBYTES];
} bf_user_t;

typedef struct bf_users_t bf_users_t;

/*  Parses a users file's text (len bytes; NUL bytes are refused). path
    only names the file in messages. NULL with "PATH:LINE: reason" in err.
    An empty text is an empty list.  */
bf_users_t *bf_users_parse (const char *text, size_t len, const char *path, char *err,
                            size_t errsize);

/*  Reads and parses path, after checking its mode (bf_secfile_check).
    NULL with the reason in err.  */
bf_users_t *bf_users_load (const char *path, char *err, size_t errsize);

void bf_users_destroy (bf_users_t **self_p);

size_t bf_users_count (const bf_users_t *self);

/*  The user called name (exact match), or NULL.  */
const bf_user_t *bf_users_find (const bf_users_t *self, const char *name);

/*  True for "operator" and "viewer".  */
bool bf_users_role_valid (const char *role);

/*  Hashes password with argon2id (interactive limits) into out. Returns
    0, or -1 with the reason in err (out of memory).  */
int bf_users_hash (const char *password, char out[crypto_pwhash_STRBYTES], char *err,
                   size_t errsize);

/*  True when password matches hash. A malformed hash, a password longer
    than BF_USERS_PASSWORD_MAX or NULL is false. Slow (see above); any
    thread.  */
bool bf_users_verify (const char *hash, const char *password);

/*  Adds NAME:ROLE:HASH(password) to the users file path, which need not
    exist yet: the file is read (and checked) first, a name already in it
    or a bad name, role or password (shorter than BF_USERS_PASSWORD_MIN,
    longer than the max, not valid UTF-8) is refused, then the new file is
    written beside it (0600), synced, and renamed over it, so a reader
    sees the old file or the new one, never half of one. Returns 0, or -1
    with the reason in err.  */
int bf_users_add (const char *path, const char *name, const char *role, const char *password,
                  char *err, size_t errsize);

#endif
