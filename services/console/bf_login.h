/*  bf_login — logging a person in: the users file kept current, the
    failed-login limits per name and per client address, the password
    check, and the session it opens.

    The users file is read again when it changes (its inode, size or
    modification time), so `console adduser` takes effect at the next
    login without a restart; a changed file that does not parse is logged
    and the last good list stays. An unknown name is checked against a
    dummy hash, so the answer takes as long as for a known name with a
    wrong password. Failures are logged with the name (when it is a valid
    name) and the address, never the password. Any thread.  */

#ifndef BF_LOGIN_H_INCLUDED
#define BF_LOGIN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "bf_session.h"

typedef struct {
    const char *users_file;
    size_t max_sessions;
    int64_t idle_ms, absolute_ms;
    int limit_name, limit_address; /* failures per window */
    int64_t window_ms;
} bf_login_args_t;

typedef struct bf_login_t bf_login_t;

/*  Reads the users file (it must exist and parse) and makes the dummy
    hash. NULL with the reason in err.  */
bf_login_t *bf_login_new (const bf_login_args_t *args, char *err, size_t errsize);
void bf_login_destroy (bf_login_t **self_p);

/*  The sessions logins open (owned by self).  */
bf_sessions_t *bf_login_sessions (bf_login_t *self);

/*  0 when name may try to log in from address now; else the ms until
    the name's or the address's limit lets it (answer 429). Quick: call
    it before queuing the check.  */
int64_t bf_login_wait_ms (bf_login_t *self, const char *name, const char *address, int64_t now_ms);

typedef enum {
    BF_LOGIN_OK = 0,
    BF_LOGIN_WRONG = 1,   /* unknown name or wrong password */
    BF_LOGIN_LIMITED = 2, /* rate-limited (the limit may have been reached meanwhile) */
    BF_LOGIN_ERROR = 3,   /* no session could be made */
} bf_login_rc_t;

/*  Checks name's password (slow: argon2id) and, when it matches, opens a
    session: token and *session filled. Counts a failure against name and
    address. Returns a bf_login_rc_t.  */
int bf_login_check (bf_login_t *self, const char *name, const char *password, const char *address,
                    int64_t now_ms, char token[BF_SESSION_TOKEN_HEX], bf_session_t *session);

#endif
