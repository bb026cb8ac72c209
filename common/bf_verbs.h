/*  bf_verbs — the catalogue of every command and query control accepts.

    One table shared by control (which rejects anything not in it, and needs
    it to accept commands for a service that is down and has never
    registered), by billctl (which builds commands from it) and by the
    services (a unit test checks that their verb tables match it).

    Commands change something: control stores them before anything else
    (G6), forwards them to their target service, and a repeated command_id
    returns the stored result. Queries change nothing: control answers them
    itself from PostgreSQL, every time, without storing them, so that
    operators can see the system while a service is down.

    Roles (control.allowed_keys): "operator" may send commands and queries,
    "viewer" queries only, "service" neither (it registers, heartbeats and
    answers the commands forwarded to it).  */

#ifndef BF_VERBS_H_INCLUDED
#define BF_VERBS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *target;  /* "settle", "notify" or "control" */
    const char *verb;    /* "run.start" */
    bool query;          /* true: answered by control, never stored */
    const char *args;    /* argument synopsis for help: "period=YYYY-MM" */
    const char *summary; /* one line for help and docs */
    /*  A query that reads whole periods (run.report: seconds at a million
        bills): control computes it in its reporter (and keeps the newest
        per period), and a client gives it a long timeout instead of asking
        again early (each resend would queue another caller).  */
    bool slow;
} bf_verb_t;

/*  The entry for verb, or NULL when the catalogue has no such verb.  */
const bf_verb_t *bf_verb_find (const char *verb);

/*  Entry index (0..) of the table, or NULL past its end.  */
const bf_verb_t *bf_verb_at (size_t index);

/*  True when the role ("operator", "viewer", "service") may send verb.  */
bool bf_verb_allowed (const bf_verb_t *verb, const char *role);

#endif
