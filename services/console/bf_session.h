/*  bf_session — the console's logged-in sessions: random tokens, each with
    a CSRF token, an idle and an absolute expiry, and a bound on how many
    live at once.

    A token is 32 random bytes (libsodium), given to the browser as 64 hex
    characters in the bf_session cookie. The table keeps only the BLAKE2b
    hash of each token (a leaked table or core dump opens no session) and
    finds a session by that hash; the CSRF token of a session is compared
    in constant time (sodium_memcmp). A session ends when it has not been
    used for idle_ms, absolute_ms after its login, at logout, or when it is
    the least recently used one and max sessions are live and a login
    needs its place.

    Pure rules with the clock passed in (now_ms); one mutex makes every
    call safe from any thread.  */

#ifndef BF_SESSION_H_INCLUDED
#define BF_SESSION_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_SESSION_TOKEN_HEX 65 /* 64 hex characters and the NUL */
#define BF_SESSION_RATE      20 /* console.session_rate's default */
#define BF_SESSION_BURST     60 /* console.session_burst's default */

typedef struct bf_sessions_t bf_sessions_t;

typedef struct {
    char name[65];
    char role[16];
    char csrf[BF_SESSION_TOKEN_HEX];
    int64_t idle_expires_ms;     /* when it ends unless used again */
    int64_t absolute_expires_ms; /* when it ends anyway */
} bf_session_t;

/*  A table of at most max sessions (at least 1).  */
bf_sessions_t *bf_sessions_new (size_t max, int64_t idle_ms, int64_t absolute_ms);
void bf_sessions_destroy (bf_sessions_t **self_p);

/*  Opens a session for name with role: token gets the new session token
    (hex), *out (when not NULL) the session. Makes room by dropping expired
    sessions, then the least recently used one. Returns 0, or -1 when no
    randomness or memory is left.  */
int bf_sessions_open (bf_sessions_t *self, const char *name, const char *role, int64_t now_ms,
                      char token[BF_SESSION_TOKEN_HEX], bf_session_t *out);

/*  Finds the session of token and, when it is live, marks it used at now_ms
    and copies it to *out: returns true. An unknown, malformed or expired
    token returns false (an expired session is dropped).  */
bool bf_sessions_touch (bf_sessions_t *self, const char *token, int64_t now_ms, bf_session_t *out);

/*  Each session's token bucket for /api/query and /api/command: rate
    requests a second, burst at once (each at least 1; BF_SESSION_RATE and
    BF_SESSION_BURST until set). Applies to sessions opened afterwards.  */
void bf_sessions_set_rate (bf_sessions_t *self, int rate, int burst);

/*  Takes one token from the bucket of token's session at now_ms: true
    when the request may go on (also for an unknown token, which the
    caller refuses anyway). When false, *wait_ms gets the milliseconds
    until a token is there again, and *warn_refused, when a warning is due
    (at most once per session per 10 s), the number refused since the
    last one (else 0).  */
bool bf_sessions_take (bf_sessions_t *self, const char *token, int64_t now_ms, int *wait_ms,
                       uint64_t *warn_refused);

/*  True when the session of token is live at now_ms, without marking it
    used (an open event stream asks before each event, so that logout or
    expiry ends it, and a screen left open does not keep a session
    alive).  */
bool bf_sessions_live (bf_sessions_t *self, const char *token, int64_t now_ms);

/*  True when csrf (may be NULL) equals the session's CSRF token, compared
    in constant time.  */
bool bf_session_csrf_ok (const bf_session_t *session, const char *csrf);

/*  Ends the session of token. True when there was one.  */
bool bf_sessions_close (bf_sessions_t *self, const char *token);

/*  Live sessions (expired ones not yet dropped included).  */
size_t bf_sessions_count (bf_sessions_t *self);

#endif
