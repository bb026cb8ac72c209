/*  bf_login — logging a person in (bf_login.h).  */

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bf_curve.h"
#include "bf_log.h"
#include "bf_login.h"
#include "bf_throttle.h"
#include "bf_users.h"

struct bf_login_t {
    bf_login_args_t args;
    pthread_mutex_t mutex; /* users and the file's identity */
    bf_users_t *users;
    struct stat seen;
    char dummy[crypto_pwhash_STRBYTES];
    bf_throttle_t *by_name, *by_address;
    bf_sessions_t *sessions;
};

#define S_THROTTLE_KEYS 4096

static bool
s_same_file (const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size
           && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/*  Reads the users file again when it changed. Under the mutex.  */
static void
s_refresh (bf_login_t *self)
{
    struct stat now;
    if (stat (self->args.users_file, &now) != 0 || s_same_file (&now, &self->seen))
        return;
    char err[512];
    bf_users_t *users = bf_users_load (self->args.users_file, err, sizeof err);
    self->seen = now;
    if (!users) {
        bf_error ("console: the users file changed but cannot be used (%s); the last good list"
                  " stays",
                  err);
        return;
    }
    bf_users_destroy (&self->users);
    self->users = users;
    bf_info ("console: users file read again: %zu users", bf_users_count (users));
}

bf_login_t *
bf_login_new (const bf_login_args_t *args, char *err, size_t errsize)
{
    bf_login_t *self = calloc (1, sizeof *self);
    if (!self) {
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    self->args = *args;
    pthread_mutex_init (&self->mutex, NULL);
    stat (args->users_file, &self->seen);
    self->users = bf_users_load (args->users_file, err, errsize);
    if (!self->users)
        goto failed;
    uint8_t random[32];
    char secret[65];
    randombytes_buf (random, sizeof random);
    sodium_bin2hex (secret, sizeof secret, random, sizeof random);
    if (bf_users_hash (secret, self->dummy, err, errsize) != 0)
        goto failed;
    self->by_name = bf_throttle_new (S_THROTTLE_KEYS, args->limit_name, args->window_ms);
    self->by_address = bf_throttle_new (S_THROTTLE_KEYS, args->limit_address, args->window_ms);
    self->sessions = bf_sessions_new (args->max_sessions, args->idle_ms, args->absolute_ms);
    if (!self->by_name || !self->by_address || !self->sessions) {
        bf_err_set (err, errsize, "out of memory");
        goto failed;
    }
    return self;
failed:
    bf_login_destroy (&self);
    return NULL;
}

void
bf_login_destroy (bf_login_t **self_p)
{
    if (self_p && *self_p) {
        bf_login_t *self = *self_p;
        bf_users_destroy (&self->users);
        bf_throttle_destroy (&self->by_name);
        bf_throttle_destroy (&self->by_address);
        bf_sessions_destroy (&self->sessions);
        pthread_mutex_destroy (&self->mutex);
        free (self);
        *self_p = NULL;
    }
}

bf_sessions_t *
bf_login_sessions (bf_login_t *self)
{
    return self->sessions;
}

int64_t
bf_login_wait_ms (bf_login_t *self, const char *name, const char *address, int64_t now_ms)
{
    int64_t by_name = bf_throttle_wait_ms (self->by_name, name, now_ms);
    int64_t by_address = bf_throttle_wait_ms (self->by_address, address, now_ms);
    return by_name > by_address ? by_name : by_address;
}

int
bf_login_check (bf_login_t *self, const char *name, const char *password, const char *address,
                int64_t now_ms, char token[BF_SESSION_TOKEN_HEX], bf_session_t *session)
{
    bool valid_name = bf_curve_name_valid (name);
    if (bf_login_wait_ms (self, name, address, now_ms) > 0)
        return BF_LOGIN_LIMITED;
    char hash[crypto_pwhash_STRBYTES], role[16] = "";
    pthread_mutex_lock (&self->mutex);
    s_refresh (self);
    const bf_user_t *user = valid_name ? bf_users_find (self->users, name) : NULL;
    memcpy (hash, user ? user->hash : self->dummy, sizeof hash);
    if (user)
        memcpy (role, user->role, sizeof role);
    pthread_mutex_unlock (&self->mutex);
    bool ok = bf_users_verify (hash, password) && user;
    if (ok) {
        bf_throttle_clear (self->by_name, name);
        if (bf_sessions_open (self->sessions, name, role, now_ms, token, session) != 0) {
            bf_error ("console: cannot open a session for %s", name);
            return BF_LOGIN_ERROR;
        }
        bf_info ("console: %s (%s) logged in from %s", name, role, address);
        return BF_LOGIN_OK;
    }
    int by_name = bf_throttle_fail (self->by_name, name, now_ms);
    int by_address = bf_throttle_fail (self->by_address, address, now_ms);
    bf_warn ("console: failed login for %s from %s (%d of %d for the name, %d of %d for the"
             " address in the window)",
             valid_name ? name : "an invalid name", address, by_name, self->args.limit_name,
             by_address, self->args.limit_address);
    return BF_LOGIN_WRONG;
}
