/*  bf_billctl — billctl's command line and its output, as testable
    functions (main.c talks to control; docs/billctl.md is the manual).

    bf_billctl_parse turns argv into a bf_billctl_opts_t: the command, the
    global options as given (main applies them to the configuration with
    bf_config_set), and the request to send (target, verb, arguments), with
    every argument checked locally first (periods, ids, channels, limits).

    The renderers turn control's JSON result documents (services/control/
    bf_query.h) into aligned tables. They never trust the document: a
    missing or mistyped field shows as "-", a document of the wrong shape is
    an error, and free text (errors, details) is scrubbed of anything that
    looks like an email address or a phone number, so that an unmasked
    contact can never reach the terminal.  */

#ifndef BF_BILLCTL_H_INCLUDED
#define BF_BILLCTL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "billflow.pb-c.h"

/*  Exit codes (billctl --help, docs/billctl.md).  */
#define BF_BILLCTL_EXIT_OK          0
#define BF_BILLCTL_EXIT_FAILED      1
#define BF_BILLCTL_EXIT_USAGE       2
#define BF_BILLCTL_EXIT_ACCEPTED    3
#define BF_BILLCTL_EXIT_REJECTED    4
#define BF_BILLCTL_EXIT_NO_ANSWER   5
#define BF_BILLCTL_EXIT_SETUP       6
#define BF_BILLCTL_EXIT_BUSY        7 /* control is busy (rate limit): try later */
#define BF_BILLCTL_EXIT_INTERRUPTED 130

/*  Default and bounds of run watch --interval, in ms.  */
#define BF_BILLCTL_INTERVAL_DEFAULT 1000
#define BF_BILLCTL_INTERVAL_MIN     100
#define BF_BILLCTL_INTERVAL_MAX     3600000

/*  Most arguments a request carries.  */
#define BF_BILLCTL_MAX_ARGS 10

typedef enum {
    BF_BILLCTL_NONE = 0, /* no command word: global help */
    BF_BILLCTL_RUN_START,
    BF_BILLCTL_RUN_STOP,
    BF_BILLCTL_RUN_RESUME,
    BF_BILLCTL_RUN_STATUS,
    BF_BILLCTL_RUN_WATCH,
    BF_BILLCTL_RUN_REPORT,
    BF_BILLCTL_NOTIFY_PAUSE,
    BF_BILLCTL_NOTIFY_RESUME,
    BF_BILLCTL_NOTIFY_RETRY,
    BF_BILLCTL_NOTIFY_STATUS,
    BF_BILLCTL_NOTIFY_FAILURES,
    BF_BILLCTL_SERVICES,
    BF_BILLCTL_COMMANDS,
    BF_BILLCTL_AUDIT,
    BF_BILLCTL_KEYGEN,
    BF_BILLCTL_RUN_SCHEDULE,
    BF_BILLCTL_RUN_UNSCHEDULE,
    BF_BILLCTL_TEMPLATES_LIST,
    BF_BILLCTL_TEMPLATES_SHOW,
    BF_BILLCTL_TEMPLATES_PREVIEW,
    BF_BILLCTL_TEMPLATES_PUBLISH,
    BF_BILLCTL_SUBSCRIBER_FIND,
    BF_BILLCTL_SUBSCRIBER_TIMELINE,
    BF_BILLCTL_BILL_SHOW,
    BF_BILLCTL_RUN_RATES,
    BF_BILLCTL_COUNT
} bf_billctl_cmd_t;

/*  What the command line asked for. Strings point into argv (or into
    this struct); NULL means "not given".  */
typedef struct {
    bf_billctl_cmd_t cmd;
    bool help; /* --help (or `help`): print bf_billctl_help (cmd) and exit 0 */
    bool json; /* --json */

    /*  Global options.  */
    const char *config_path; /* --config */
    const char *control;     /* --control -> control.endpoint */
    const char *server_key;  /* --server-key -> control.server_key */
    const char *key_file;    /* --key -> control.client_key_file */
    const char *timeout;     /* --timeout -> billctl.timeout_ms */
    const char *retries;     /* --retries -> billctl.retries */
    const char *command_id;  /* --command-id (commands only) */
    const char *log_level;   /* --log-level -> log.level */
    const char *on_behalf_of; /* --on-behalf-of: the person a console key acts for */
    const char *as_role;      /* --as-role: that person's role (operator, viewer) */

    /*  Command arguments and options.  */
    const char *period;   /* PERIOD (YYYY-MM) */
    const char *name;     /* keygen NAME */
    const char *dir;      /* keygen --dir (default ".") */
    const char *run_id;   /* notify retry --run */
    const char *ids;      /* notify retry --ids */
    const char *channel;  /* notify failures --channel (upper-cased) */
    const char *limit;    /* --limit */
    const char *id;       /* commands/audit --id */
    const char *state;    /* commands --state; audit --state (an outcome) */
    const char *target;   /* commands --target */
    const char *actor;    /* commands/audit --actor */
    const char *verb;     /* commands/audit --verb */
    const char *since;    /* commands/audit --since (YYYY-MM-DD or RFC 3339) */
    const char *until;    /* commands/audit --until */
    const char *before;   /* commands/audit --before (older than this row) */
    const char *email;    /* subscriber find --email */
    const char *phone;    /* subscriber find --phone */
    const char *lookup_id; /* subscriber timeline N, bill show N: the id */
    const char *interval; /* run watch --interval as given */
    const char *tz;       /* run start --tz (with --previous-month) */
    bool previous_month;  /* run start --previous-month: PERIOD derived */
    int interval_ms;      /* run watch --interval, parsed */
    const char *at;       /* run schedule --at YYYY-MM-DDTHH:MM */
    const char *version;  /* templates show/preview --version */
    const char *bill;     /* templates preview --bill */
    const char *subject;  /* templates preview/publish --subject TEXT */
    const char *files[3]; /* templates preview/publish --body, --html, --short FILE */
    char *texts[3];       /* their contents (bf_billctl_load_files; freed by
                             bf_billctl_free_files) */

    /*  The request (not for keygen): catalogue target and verb, and the
        arguments keys[i] = values[i].  */
    const char *req_target;
    const char *req_verb;
    bool query; /* the verb is a query (bf_verbs.h): fresh id, nothing stored */
    size_t nargs;
    const char *keys[BF_BILLCTL_MAX_ARGS];
    const char *values[BF_BILLCTL_MAX_ARGS];

    char channel_buf[8];
    char period_buf[8];      /* the derived PERIOD */
    char command_id_buf[24]; /* the derived id: run-start-PERIOD */
} bf_billctl_opts_t;

/*  Parses argv[1..argc-1] into opts (which it zeroes first). Returns 0, or
    BF_BILLCTL_EXIT_USAGE with a one-line reason in err that names the
    offending word. When --help is given anywhere, returns 0 with
    opts->help set and opts->cmd the command named so far (NONE when none);
    the rest of the line is not checked then. Does not print anything.  */
int bf_billctl_parse (int argc, char **argv, bf_billctl_opts_t *opts, char *err, size_t errsize);

/*  The time zone run start --previous-month uses when --tz is not given:
    billing periods are Asia/Seoul calendar months.  */
#define BF_BILLCTL_TZ_DEFAULT "Asia/Seoul"

/*  Writes into out the period (YYYY-MM) before the calendar month that the
    instant now (Unix seconds) falls in, in the time zone tz: January 2027
    gives 2026-12. tz is "Asia/Seoul" (UTC+9 without daylight saving, built
    in), "UTC", a fixed offset "+HH:MM" / "-HH:MM" (up to 14:00), or
    another IANA zone name read from the tz database ($TZDIR or
    /usr/share/zoneinfo; a name that is not there is an error, never UTC).
    Returns 0, or -1 with a reason in err.  */
int bf_billctl_previous_period (int64_t now, const char *tz, char out[8], char *err,
                                size_t errsize);

/*  For templates preview and publish: reads the files named by --body,
    --html and --short (each at most BF_BILLCTL_FILE_MAX bytes) and adds
    them to the request as body, body_html and short_body. Returns 0, or
    BF_BILLCTL_EXIT_USAGE with a reason naming the file in err.  */
#define BF_BILLCTL_FILE_MAX (64 * 1024)
int bf_billctl_load_files (bf_billctl_opts_t *opts, char *err, size_t errsize);

/*  Frees what bf_billctl_load_files read.  */
void bf_billctl_free_files (bf_billctl_opts_t *opts);

/*  Writes the help of cmd (NONE: the whole program, with every command,
    the global options and the exit codes).  */
void bf_billctl_help (FILE *out, bf_billctl_cmd_t cmd);

/*  Short usage of cmd for usage errors ("usage: billctl run start PERIOD
    [options]" and a pointer to --help).  */
const char *bf_billctl_synopsis (bf_billctl_cmd_t cmd);

/*  --- output ------------------------------------------------------------ */

/*  Writes amount with thousands separators ("-1,234,567", by
    bf_won_format) into out, cut to outsize, and returns out.  */
char *bf_billctl_thousands (int64_t amount, char *out, size_t outsize);

/*  Copies text into out (always NUL-terminated, cut to fit) with control
    characters turned into spaces and every email address and Korean phone
    number in it masked (bf_mask_email / bf_mask_phone). Returns out.  */
char *bf_billctl_scrub (const char *text, char *out, size_t outsize);

/*  Renders the JSON result json of a successful verb (a query of
    bf_query.h, or a command's result) as human-readable text on out.
    Returns 0, or -1 with a reason in err (not JSON, or not the shape the
    verb's result has); then nothing, or only part, was written.  */
int bf_billctl_render (FILE *out, const char *verb, const char *json, char *err, size_t errsize);

/*  Writes the progress of a run (the run.show result json) for run watch.
    tty: several lines, each cleared first, meant to be redrawn in place
    (bar, bills, amount, notices by state, held until); not tty: one plain
    line. period names the run when the document has none yet ("no run for
    2026-10 yet"). Returns the number of lines written, or -1 with a reason
    in err. *final gets the document's "final" and *failed whether the
    run's state is FAILED (either may be NULL).  */
int bf_billctl_render_progress (FILE *out, const char *json, const char *period, bool tty,
                                bool *final, bool *failed, char *err, size_t errsize);

/*  What run watch needs from a run.show result: whether the period has a
    run (*exists), whether the document is final, and whether the run's
    state is FAILED. Returns 0, or -1 with a reason in err.  */
int bf_billctl_run_state (const char *json, bool *exists, bool *final, bool *failed, char *err,
                          size_t errsize);

/*  Whether a run.report result json (services/control/bf_report.h) says
    the period is final: every bill notified, nothing in progress, the run
    completed (billctl run report exits 1 when not). Returns 0, or -1 with a
    reason in err when json is not a report (*final is then false).  */
int bf_billctl_report_final (const char *json, bool *final, char *err, size_t errsize);

/*  The --json output of a command's reply, one line:
    {"command_id","status","replayed","result":<parsed result or null>,"error"}.
    A result that is not JSON is shown as null and makes the call return
    -1 with a reason in err (the line is written anyway). Returns 0 or -1.  */
int bf_billctl_reply_json (FILE *out, const Billflow__CommandReply *reply, char *err,
                           size_t errsize);

/*  A query's --json output: the result document, re-encoded on one line
    (contacts and free text scrubbed as in tables). Returns 0, or -1 with a
    reason in err when json is not a JSON document (nothing written).  */
int bf_billctl_result_json (FILE *out, const char *json, char *err, size_t errsize);

#endif
