/*  bf_health — what /healthz and /readyz report (bf_http.h): actor
    liveness beats, readiness checks, and extra lines for the body.

    Liveness. Each actor thread marks when it starts a turn of its loop
    and when it goes back to waiting:

        void *which = bf_health_zpoller_wait ("relay", poller, timeout);

    replaces `zpoller_wait (poller, timeout)` in the actor's loop: it marks
    the thread idle while it waits and busy from when the wait returns.
    An actor is stuck when it has been busy, without coming back to its
    wait, for longer than the staleness limit: an actor that waits for
    hours for work is idle, not stuck. Loops that wait otherwise call
    bf_health_idle before and bf_health_beat after their wait. The first
    call on a thread registers it under the actor name (with a number,
    "worker#3"); when the thread ends, its entry is removed. Each call is
    two relaxed atomic stores and a clock read.

    Readiness. Programs register named checks (config loaded, PostgreSQL
    answers, sockets bound); /readyz is 200 when all pass. A check runs on
    the HTTP thread: it must read state that actors keep, never block.
    PostgreSQL: bf_db records every connect and every statement outcome
    (bf_health_db_seen); bf_health_ready_db is the check that reads it.

    Every function is thread-safe.  */

#ifndef BF_HEALTH_H_INCLUDED
#define BF_HEALTH_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_HEALTH_MAX_ACTORS 256
#define BF_HEALTH_MAX_CHECKS 16

/*  Marks this thread's actor busy from now (registers it on first use;
    actor is a short name such as "worker").  */
void bf_health_beat (const char *actor);
/*  Marks this thread's actor idle (waiting for work).  */
void bf_health_idle (const char *actor);
/*  zpoller_wait between bf_health_idle and bf_health_beat.  */
void *bf_health_zpoller_wait (const char *actor, zpoller_t *poller, int timeout);

/*  How many actor threads (threads that called the functions above) have
    ended since the process started; the name of the last one ("relay#1")
    into last when non-NULL. A readiness check compares it with the count
    when the program's actors were all up (bf_observe).  */
uint64_t bf_health_actors_ended (char *last, size_t lastsize);

/*  Liveness report: returns true when no registered actor has been busy
    for longer than stale_ms. Writes one line per stuck actor ("stuck:
    worker#2 busy for 75.0 s") into out, or "ok: N actors" when none; out
    is always NUL-terminated.  */
bool bf_health_live (int64_t stale_ms, char *out, size_t outsize);

/*  A readiness check: returns true when ready; may write a short reason
    or detail into reason (reasonsize > 0). Runs on the HTTP thread.  */
typedef bool (*bf_ready_fn) (void *arg, char *reason, size_t reasonsize);

/*  Adds a check under name; 0, or -1 when the table is full.  */
int bf_health_ready_add (const char *name, bf_ready_fn fn, void *arg);

/*  Removes the check(s) named name, before what its arg points to is
    freed: once it returns, the check no longer runs.  */
void bf_health_ready_remove (const char *name);

/*  Runs every check: true when all pass. Writes "name: ok|FAIL (reason)"
    lines, then the info lines, into out (always NUL-terminated).  */
bool bf_health_ready (char *out, size_t outsize);

/*  Sets (or with value NULL removes) an extra "key: value" line that
    /readyz shows after the checks, e.g. "role: leader".  */
void bf_health_info_set (const char *key, const char *value);

/*  A flag check: bf_health_flag_check reads *(atomic_bool *)arg; the
    reason is "yes"/"no". For "sockets bound", "config loaded".  */
bool bf_health_flag_check (void *arg, char *reason, size_t reasonsize);

/*  PostgreSQL as last seen by this process's actors: bf_db calls
    bf_health_db_seen (true) on every successful connect or statement and
    (false) on a failed connect or a lost connection.  */
void bf_health_db_seen (bool up);
/*  The check: ready when the last outcome seen was up; the reason says
    how long ago ("up, seen 0.4 s ago", "down since 3.1 s", "not yet
    connected").  */
bool bf_health_ready_db (void *arg, char *reason, size_t reasonsize);

/*  Clears every actor entry, check and info line (tests only).  */
void bf_health_reset (void);

#endif
