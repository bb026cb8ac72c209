/*  bf_route — the console's routes and the checks of what a request
    carries (services/console/README.md, the HTTP contract): which route a
    method and path are, the query-string arguments, the JSON bodies of
    login and of a command, and how control's answer becomes a status and
    a body. Pure functions: no socket, no clock; the unit tests call them.  */

#ifndef BF_ROUTE_H_INCLUDED
#define BF_ROUTE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "billflow.pb-c.h"
#include "bf_verbs.h"

#define BF_ROUTE_ARGS_MAX  16
#define BF_ROUTE_KEY_MAX   32
#define BF_ROUTE_VALUE_MAX 256
#define BF_ROUTE_ID_MAX    128 /* a command_id: 1-128 of A-Z a-z 0-9 . _ : - */
#define BF_ROUTE_URL_MAX   512

typedef enum {
    BF_ROUTE_INDEX,    /* GET / */
    BF_ROUTE_STATIC,   /* GET /static/NAME */
    BF_ROUTE_LOGIN,    /* POST /api/login */
    BF_ROUTE_LOGOUT,   /* POST /api/logout */
    BF_ROUTE_ME,       /* GET /api/me */
    BF_ROUTE_QUERY,    /* GET /api/query/VERB?args, or POST with {"args": {...}} */
    BF_ROUTE_COMMAND,  /* POST /api/command/VERB */
    BF_ROUTE_OVERVIEW, /* GET /api/overview */
    BF_ROUTE_EVENTS,   /* GET /api/events */
} bf_route_kind_t;

typedef struct {
    bf_route_kind_t kind;
    const char *name;      /* BF_ROUTE_STATIC: the file name (points into the url) */
    const bf_verb_t *verb; /* BF_ROUTE_QUERY / BF_ROUTE_COMMAND */
    bool api;              /* under /api/: JSON errors, no-store */
    bool post;             /* the method is POST (a query's arguments in the body) */
} bf_route_t;

/*  Matches method and url (the path, without the query string). Returns
    0 with *route filled, 404 for an unknown path (a verb that is not in
    the catalogue, a command verb under /api/query/ or a query verb under
    /api/command/ included), 405 for a known path with another method
    (GET routes also take HEAD; /api/query/VERB takes GET, HEAD and POST),
    or 414 for a path over BF_ROUTE_URL_MAX.
    For 404 and 405, route->api says whether the path was under /api/.  */
int bf_route_match (const char *method, const char *url, bf_route_t *route);

/*  A request's arguments, as control's Command args.  */
typedef struct {
    size_t count;
    char keys[BF_ROUTE_ARGS_MAX][BF_ROUTE_KEY_MAX + 1];
    char values[BF_ROUTE_ARGS_MAX][BF_ROUTE_VALUE_MAX + 1];
} bf_route_args_t;

/*  Adds one argument (key_len and value_len bytes; value may be NULL for
    "?key" without '=', which is refused). Refused with a reason in err
    (and -1): a key that is not 1-32 of [a-z_], a value over 256 bytes,
    not valid UTF-8 or holding a NUL or another control character, a key
    given twice, more than BF_ROUTE_ARGS_MAX arguments. The reason quotes
    no value.  */
int bf_route_arg_add (bf_route_args_t *args, const char *key, size_t key_len, const char *value,
                      size_t value_len, char *err, size_t errsize);

/*  The key and value pointers of args for bf_client_request.  */
void bf_route_arg_arrays (const bf_route_args_t *args, const char *keys[BF_ROUTE_ARGS_MAX],
                          const char *values[BF_ROUTE_ARGS_MAX]);

/*  Checks a request body before it is parsed: valid UTF-8 and at most
    max bytes. Returns 0, or -1 with a reason in err.  */
int bf_route_body_check (const char *body, size_t len, size_t max, char *err, size_t errsize);

/*  The login body {"name": "...", "password": "..."} (nothing else): name
    into name (at most 64 bytes, else refused), password into password
    (at most 1024 bytes). Returns 0, or -1 with a reason in err that
    quotes neither.  */
int bf_route_login_body (const char *body, size_t len, char name[65], char password[1025],
                         char *err, size_t errsize);

/*  A command body {"command_id": "ID", "args": {"key": "value", ...}}
    ("args" may be missing or {}; a value may be a string or an integer,
    sent as its decimal text; nothing else is accepted). Returns 0, or -1
    with a reason in err.  */
int bf_route_command_body (const char *body, size_t len, char command_id[BF_ROUTE_ID_MAX + 1],
                           bf_route_args_t *args, char *err, size_t errsize);

/*  The arguments of a command that have one form whatever the verb (as
    billctl checks them before it sends, common/bf_cmdargs.h): period
    (YYYY-MM), run_id (an id), ids (1..BF_CMDARGS_MAX_IDS ids joined by
    commas, each once), at (YYYY-MM-DDTHH:MM, and within two days before
    now_ms, ms since the epoch, and 367 days after: coarser than notify's
    own window, which knows its UTC offset). Other keys are control's and
    the service's to check. Returns 0, or -1 with a reason in err that
    names the key and quotes no value.  */
int bf_route_command_args_check (const bf_route_args_t *args, int64_t now_ms, char *err,
                                 size_t errsize);

/*  A query's POST body {"args": {"key": "value", ...}} ("args" may be
    missing or {}; values as in a command body; nothing else is
    accepted), for arguments that must stay out of URLs (an email or a
    phone: access logs keep query strings). Returns 0, or -1 with a
    reason in err that quotes no value.  */
int bf_route_query_body (const char *body, size_t len, bf_route_args_t *args, char *err,
                         size_t errsize);

/*  True when a Command reply means control refused the person: REJECTED
    and the role may not send verb.  */
bool bf_route_refused (const Billflow__CommandReply *reply, const bf_verb_t *verb,
                       const char *role);

/*  The HTTP status of control's answer to a query: 200 OK (and ACCEPTED),
    403 refused, 503 busy (FAILED retryable), 400 anything else (bad
    arguments, unknown run).  */
int bf_route_query_status (const Billflow__CommandReply *reply, const bf_verb_t *verb,
                           const char *role);

/*  The body of the answer to a command: {"status", "result" (control's
    JSON document, or null), "error", "replayed", "retryable"}. A
    malloc'd string, or NULL when out of memory.  */
char *bf_route_command_json (const Billflow__CommandReply *reply);

/*  {"error": message} as a malloc'd string (message cut to 512 bytes on a
    character boundary), or NULL when out of memory.  */
char *bf_route_error_json (const char *message);

#endif
