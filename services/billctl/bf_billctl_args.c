/*  bf_billctl_args — billctl's command line: commands, options, help.

    Hand-written rather than getopt_long: global options go before or after
    the command word, command options belong to some commands only, and the
    parser has to be callable again and again from tests (getopt keeps
    global state).  */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_billctl.h"
#include "bf_cmdargs.h"
#include "bf_config.h"
#include "bf_date.h"
#include "bf_pii.h"
#include "bf_text.h"
#include "bf_verbs.h"

#define S_BIT(cmd) (1u << (cmd))

typedef struct {
    bf_billctl_cmd_t cmd;
    const char *group; /* "run"; NULL for one-word commands */
    const char *word;
    const char *synopsis;
    const char *summary;
    const char *help; /* what it does, options, examples */
    const char *verb; /* catalogue verb; NULL for keygen */
    int min_args, max_args;
} s_command_t;

static const s_command_t s_commands[] = {
    { BF_BILLCTL_RUN_START, "run", "start", "run start PERIOD",
      "start the settlement run of PERIOD",
      "Starts the settlement run of PERIOD (YYYY-MM) in settle (verb run.start). Starting a\n"
      "period that already has a run finds that run; re-running a settled period re-rates\n"
      "changed subscribers only.\n"
      "\n"
      "example:\n"
      "  billctl run start 2026-10\n"
      "  billctl run start 2026-10 --command-id cron-run-start-2026-10\n",
      "run.start", 1, 1 },
    { BF_BILLCTL_RUN_STOP, "run", "stop", "run stop PERIOD",
      "stop the run after the chunks in hand",
      "Stops the run of PERIOD (verb run.stop): workers finish the chunks they hold, nothing\n"
      "committed is lost, and `billctl run resume PERIOD` continues it.\n"
      "\n"
      "example:\n"
      "  billctl run stop 2026-10\n",
      "run.stop", 1, 1 },
    { BF_BILLCTL_RUN_RESUME, "run", "resume", "run resume PERIOD", "resume a stopped run",
      "Resumes the stopped run of PERIOD (verb run.resume) from its last committed chunk.\n"
      "\n"
      "example:\n"
      "  billctl run resume 2026-10\n",
      "run.resume", 1, 1 },
    { BF_BILLCTL_RUN_STATUS, "run", "status", "run status [PERIOD]",
      "list runs, or show one run in detail",
      "Without PERIOD: the runs, newest first (query runs.list). With PERIOD: that run's\n"
      "progress, counts, amount and duration, its notices by state and by channel, and the\n"
      "first rating errors (query run.show).\n"
      "\n"
      "example:\n"
      "  billctl run status\n"
      "  billctl run status 2026-10 --json\n",
      "runs.list", 0, 1 },
    { BF_BILLCTL_RUN_WATCH, "run", "watch", "run watch PERIOD [--interval MS]",
      "follow a run live until it is final",
      "Asks for the run of PERIOD every --interval ms (default 1000; query run.show) and\n"
      "shows its progress: redrawn in place on a terminal, one line per poll otherwise, one\n"
      "JSON document per poll with --json. A period without a run yet is waited for. Ends\n"
      "when the run is final (completed or failed, every event ingested, no notice in\n"
      "flight) with a summary: exit 0, or 1 when the run FAILED.\n"
      "\n"
      "options:\n"
      "  --interval MS   time between polls (100..3600000, default 1000)\n"
      "\n"
      "example:\n"
      "  billctl run watch 2026-10\n"
      "  billctl run watch 2026-10 --interval 5000 --json > progress.jsonl\n",
      "run.show", 1, 1 },
    { BF_BILLCTL_RUN_REPORT, "run", "report", "run report PERIOD",
      "the period's reconciliation report",
      "The reconciliation report of PERIOD (query run.report): bills and amount in won\n"
      "(the runs' counters checked against the bill table), the runs, notices by channel\n"
      "and state, SMS fallbacks of failed emails, held notices (how many, from when until\n"
      "when, why), send attempts by channel and outcome, and the bills without a final\n"
      "notice (the first 100, each with its reason: no delivery, in progress, failed\n"
      "without fallback). A bill is notified when one of its notices was delivered, is\n"
      "held, or is the SMS fallback of a failed email and ended too.\n"
      "\n"
      "The period is final when its newest run completed, every bill is notified and no\n"
      "notice is pending, sending or waiting to retry (held ones may remain).\n"
      "Exit 0 when final; 1 when bills are unnotified or work is still in progress (also\n"
      "with --json, which prints the document).\n"
      "\n"
      "example:\n"
      "  billctl run report 2026-10\n"
      "  billctl run report 2026-10 --json > report-2026-10.json\n",
      "run.report", 1, 1 },
    { BF_BILLCTL_NOTIFY_PAUSE, "notify", "pause", "notify pause", "stop sending notices",
      "Pauses dispatch in notify (verb dispatch.pause): no notice is sent until\n"
      "`billctl notify resume`; the pause survives restarts.\n"
      "\n"
      "example:\n"
      "  billctl notify pause\n",
      "dispatch.pause", 0, 0 },
    { BF_BILLCTL_NOTIFY_RESUME, "notify", "resume", "notify resume", "send notices again",
      "Resumes dispatch in notify (verb dispatch.resume).\n"
      "\n"
      "example:\n"
      "  billctl notify resume\n",
      "dispatch.resume", 0, 0 },
    { BF_BILLCTL_NOTIFY_RETRY, "notify", "retry", "notify retry (--run ID | --ids 1,2,3)",
      "send failed deliveries again",
      "Sends failed deliveries again (verb deliveries.retry): every failed delivery of a\n"
      "run, or the listed delivery ids (see `billctl notify failures`). Give exactly one\n"
      "of the two options.\n"
      "\n"
      "options:\n"
      "  --run ID        the run id (a positive integer)\n"
      "  --ids LIST      delivery ids, comma-separated positive integers\n"
      "\n"
      "example:\n"
      "  billctl notify retry --run 42\n"
      "  billctl notify retry --ids 1017,1018,2040\n",
      "deliveries.retry", 0, 0 },
    { BF_BILLCTL_NOTIFY_STATUS, "notify", "status", "notify status [PERIOD]",
      "notices by channel and state",
      "Notices by state and by channel, of PERIOD or of every period, and whether dispatch\n"
      "is paused (query deliveries.summary).\n"
      "\n"
      "example:\n"
      "  billctl notify status 2026-10\n",
      "deliveries.summary", 0, 1 },
    { BF_BILLCTL_NOTIFY_FAILURES, "notify", "failures",
      "notify failures [PERIOD] [--channel EMAIL|SMS|PUSH] [--limit N]",
      "failed notices and their last error",
      "Failed notices, newest first, with masked contacts and their last error (query\n"
      "deliveries.failures).\n"
      "\n"
      "options:\n"
      "  --channel C     EMAIL, SMS or PUSH only\n"
      "  --limit N       at most N rows (1..500; control's default 20)\n"
      "\n"
      "example:\n"
      "  billctl notify failures 2026-10 --channel SMS --limit 100\n",
      "deliveries.failures", 0, 1 },
    { BF_BILLCTL_SERVICES, NULL, "services", "services", "registered services, up or down",
      "The service instances registered with control, whether they are up (a heartbeat\n"
      "within three intervals) and the verbs they apply (query services.list).\n"
      "\n"
      "example:\n"
      "  billctl services\n",
      "services.list", 0, 0 },
    { BF_BILLCTL_COMMANDS, NULL, "commands",
      "commands [--id ID] [--state S] [--target T] [--limit N]", "stored commands and outcomes",
      "The commands control stored, newest first, with their state and outcome (query\n"
      "commands.list). Use it to find what happened to a command id.\n"
      "\n"
      "options:\n"
      "  --id ID         one command id\n"
      "  --state S       only commands in state S: RECEIVED, FORWARDED, DONE, FAILED\n"
      "                  or REJECTED\n"
      "  --target T      only commands for settle, notify or control\n"
      "  --limit N       at most N rows (1..500; control's default 20)\n"
      "\n"
      "example:\n"
      "  billctl commands --id 0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f\n"
      "  billctl commands --target settle --limit 5\n",
      "commands.list", 0, 0 },
    { BF_BILLCTL_AUDIT, NULL, "audit", "audit [--actor NAME] [--id ID] [--limit N]",
      "the audit log",
      "The audit log, newest first: who sent what, and the outcome (query audit.list).\n"
      "\n"
      "options:\n"
      "  --actor NAME    entries of one key name\n"
      "  --id ID         entries of one command id\n"
      "  --limit N       at most N rows (1..500; control's default 20)\n"
      "\n"
      "example:\n"
      "  billctl audit --actor ops-kim --limit 50\n",
      "audit.list", 0, 0 },
    { BF_BILLCTL_KEYGEN, NULL, "keygen", "keygen NAME [--dir DIR]", "make a CURVE key pair",
      "Makes a CURVE key pair, locally (control is not asked): DIR/NAME.key (public) and\n"
      "DIR/NAME.key_secret (secret, mode 0600; never overwritten). Prints the public key and\n"
      "the line to add to control's allowed-keys file (control.allowed_keys). NAME: 1-64 of\n"
      "A-Z a-z 0-9 . _ -\n"
      "\n"
      "options:\n"
      "  --dir DIR       where to write the files (default: the current directory)\n"
      "\n"
      "example:\n"
      "  billctl keygen ops-kim --dir ~/.billflow\n",
      NULL, 1, 1 },
    { BF_BILLCTL_SUBSCRIBER_FIND, "subscriber", "find",
      "subscriber find (--id N | --email ADDRESS | --phone NUMBER)",
      "find a subscriber by id, email or phone",
      "Finds subscribers by id, or by an exact email address or phone number (query\n"
      "subscriber.find). control looks a contact up by its keyed hash: no table is\n"
      "decrypted to search it, so the match is exact (an email's case and surrounding\n"
      "spaces aside; a phone's separators and a +82 country code aside). Contacts are\n"
      "shown masked. Give exactly one option.\n"
      "\n"
      "options:\n"
      "  --id N          the subscriber id (a positive integer)\n"
      "  --email ADDRESS an email address, name@domain\n"
      "  --phone NUMBER  a Korean mobile number: 010-1234-5678, 01012345678,\n"
      "                  +82 10-1234-5678\n"
      "\n"
      "example:\n"
      "  billctl subscriber find --phone 010-1234-5678\n"
      "  billctl subscriber find --email hong@example.com --json\n",
      "subscriber.find", 0, 0 },
    { BF_BILLCTL_SUBSCRIBER_TIMELINE, "subscriber", "timeline", "subscriber timeline ID [--limit N]",
      "a subscriber's bills, notices and attempts",
      "The subscriber's bills, newest first (period, bill id, total, due date, run), each\n"
      "with every notice per channel and every send attempt: provider, outcome, error and\n"
      "times (query subscriber.timeline). Contacts are masked.\n"
      "\n"
      "options:\n"
      "  --limit N       at most N bills (1..500; control's default 20)\n"
      "\n"
      "example:\n"
      "  billctl subscriber timeline 1017\n"
      "  billctl subscriber timeline 1017 --limit 3 --json\n",
      "subscriber.timeline", 1, 1 },
    { BF_BILLCTL_BILL_SHOW, "bill", "show", "bill show BILL_ID",
      "one bill as the subscriber sees it",
      "The itemised statement of one bill as its subscriber sees it: every line with its\n"
      "label and amount, the total and the due date, and the bill's notices with their\n"
      "attempts (query bill.show). Contacts are masked.\n"
      "\n"
      "example:\n"
      "  billctl bill show 20417\n",
      "bill.show", 1, 1 },
};

#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

typedef enum { S_STRING, S_FLAG_JSON, S_FLAG_HELP } s_kind_t;

typedef struct {
    const char *name; /* without the leading "--" */
    s_kind_t kind;
    size_t offset;     /* of the const char * field (S_STRING) */
    unsigned commands; /* 0: global; else S_BIT of the commands that take it */
} s_option_t;

#define S_FIELD(f) offsetof (bf_billctl_opts_t, f)

static const s_option_t s_options[] = {
    { "config", S_STRING, S_FIELD (config_path), 0 },
    { "control", S_STRING, S_FIELD (control), 0 },
    { "server-key", S_STRING, S_FIELD (server_key), 0 },
    { "key", S_STRING, S_FIELD (key_file), 0 },
    { "timeout", S_STRING, S_FIELD (timeout), 0 },
    { "retries", S_STRING, S_FIELD (retries), 0 },
    { "command-id", S_STRING, S_FIELD (command_id), 0 },
    { "log-level", S_STRING, S_FIELD (log_level), 0 },
    { "json", S_FLAG_JSON, 0, 0 },
    { "help", S_FLAG_HELP, 0, 0 },
    { "interval", S_STRING, S_FIELD (interval), S_BIT (BF_BILLCTL_RUN_WATCH) },
    { "run", S_STRING, S_FIELD (run_id), S_BIT (BF_BILLCTL_NOTIFY_RETRY) },
    { "ids", S_STRING, S_FIELD (ids), S_BIT (BF_BILLCTL_NOTIFY_RETRY) },
    { "channel", S_STRING, S_FIELD (channel), S_BIT (BF_BILLCTL_NOTIFY_FAILURES) },
    { "limit", S_STRING, S_FIELD (limit),
      S_BIT (BF_BILLCTL_NOTIFY_FAILURES) | S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT)
          | S_BIT (BF_BILLCTL_SUBSCRIBER_TIMELINE) },
    { "id", S_STRING, S_FIELD (id),
      S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT) | S_BIT (BF_BILLCTL_SUBSCRIBER_FIND) },
    { "email", S_STRING, S_FIELD (email), S_BIT (BF_BILLCTL_SUBSCRIBER_FIND) },
    { "phone", S_STRING, S_FIELD (phone), S_BIT (BF_BILLCTL_SUBSCRIBER_FIND) },
    { "state", S_STRING, S_FIELD (state), S_BIT (BF_BILLCTL_COMMANDS) },
    { "target", S_STRING, S_FIELD (target), S_BIT (BF_BILLCTL_COMMANDS) },
    { "actor", S_STRING, S_FIELD (actor), S_BIT (BF_BILLCTL_AUDIT) },
    { "dir", S_STRING, S_FIELD (dir), S_BIT (BF_BILLCTL_KEYGEN) },
};

#define S_NOPTIONS (sizeof s_options / sizeof s_options[0])

static const char *s_global_help
    = "global options (before or after the command):\n"
      "  --config FILE        config file (default $BILLFLOW_CONFIG; docs/configuration.md)\n"
      "  --control ENDPOINTS  control's endpoints, comma-separated    (control.endpoint)\n"
      "  --server-key Z85     control's public key                    (control.server_key)\n"
      "  --key FILE           this operator's secret key file         (control.client_key_file)\n"
      "  --timeout MS         wait per attempt for control's answer   (billctl.timeout_ms)\n"
      "  --retries N          more attempts with the same command id  (billctl.retries)\n"
      "  --json               print JSON documents instead of tables\n"
      "  --command-id ID      the command's id (commands only; default a new UUID);\n"
      "                       1-128 of A-Z a-z 0-9 . _ : -\n"
      "  --log-level LEVEL    debug, info, warn or error              (log.level)\n"
      "  --help               this help; `billctl COMMAND --help` for one command\n"
      "Settings also come from BILLFLOW_* environment variables and the config file.\n";

static const char *s_exit_help
    = "exit codes:\n"
      "  0    OK\n"
      "  1    FAILED: the target service refused or failed it (or control's answer was\n"
      "       malformed); when retryable, repeat it with the same --command-id.\n"
      "       run report: the period is not final (unnotified bills, work in progress)\n"
      "  2    usage error (bad option, argument or period)\n"
      "  3    ACCEPTED: stored, but the target service is down; it runs when the service\n"
      "       returns (check with `billctl commands --id ID`)\n"
      "  4    REJECTED by control: unauthorised, unknown verb or malformed\n"
      "  5    no answer from control after every attempt: the command may or may not have\n"
      "       been stored; repeat it with the same --command-id (safe: it runs at most once)\n"
      "  6    local setup error: key file unreadable, bad configuration\n"
      "  7    control is busy: this key is over its rate limit (or has reports queued)\n"
      "       after every retry; nothing was stored or run: try again later\n"
      "  130  interrupted (SIGINT/SIGTERM)\n";

static const s_command_t *
s_command (bf_billctl_cmd_t cmd)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (s_commands[i].cmd == cmd)
            return &s_commands[i];
    return NULL;
}

static int s_fail (char *err, size_t errsize, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (char *err, size_t errsize, const char *format, ...)
{
    if (err && errsize) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, errsize, format, args);
        va_end (args);
        //  The reason quotes the offending word as typed: a control
        //  character in it (a line break, an escape sequence) is shown as
        //  '?' so the reason stays one harmless line on the terminal.
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7F)
                *p = '?';
    }
    return BF_BILLCTL_EXIT_USAGE;
}

static const s_option_t *
s_option_find (const char *name, size_t len)
{
    for (size_t i = 0; i < S_NOPTIONS; i++)
        if (strlen (s_options[i].name) == len && !strncmp (s_options[i].name, name, len))
            return &s_options[i];
    return NULL;
}

/*  Positive decimal integer without sign, spaces or leading zeros' games:
    1..max.  */
static bool
s_positive (const char *text, int64_t max)
{
    int64_t value;
    if (!text || !isdigit ((unsigned char)*text) || bf_config_parse_int (text, &value) != 0)
        return false;
    return value >= 1 && value <= max;
}


/*  A command id as control's command table allows it: 1-128 of
    A-Z a-z 0-9 . _ : -  */
static bool
s_command_id_ok (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > 128)
        return false;
    for (const char *p = text; *p; p++)
        if (!isalnum ((unsigned char)*p) && !strchr ("._:-", *p))
            return false;
    return true;
}

static bool
s_name_ok (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > 64)
        return false;
    for (const char *p = text; *p; p++)
        if (!isalnum ((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return false;
    return true;
}

static void
s_arg (bf_billctl_opts_t *opts, const char *key, const char *value)
{
    if (value && opts->nargs < BF_BILLCTL_MAX_ARGS) {
        opts->keys[opts->nargs] = key;
        opts->values[opts->nargs] = value;
        opts->nargs++;
    }
}

static int
s_check_period (const char *period, char *err, size_t errsize)
{
    bf_period_t parsed;
    if (period && bf_period_parse (period, &parsed) != 0)
        return s_fail (err, errsize, "'%s' is not a period (YYYY-MM, e.g. 2026-10)", period);
    return 0;
}

static int
s_check_limit (const char *limit, char *err, size_t errsize)
{
    if (limit && !s_positive (limit, 500))
        return s_fail (err, errsize, "--limit must be a whole number from 1 to 500, not '%s'",
                       limit);
    return 0;
}

/*  Copies text upper-cased into buf (bufsize bytes); text too long for it
    leaves buf empty, which no check accepts.  */
static char *
s_upper (const char *text, char *buf, size_t bufsize)
{
    size_t len = strlen (text);
    if (len >= bufsize)
        len = 0;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)toupper ((unsigned char)text[i]);
    buf[len] = 0;
    return buf;
}

/*  keygen NAME: local, so no request; the options that apply to requests
    do not apply.  */
static int
s_build_keygen (bf_billctl_opts_t *opts, const char *name, char *err, size_t errsize)
{
    opts->name = name;
    if (!s_name_ok (opts->name))
        return s_fail (err, errsize, "'%s' is not a key name (1-64 of A-Z a-z 0-9 . _ -)",
                       opts->name);
    if (!opts->dir)
        opts->dir = ".";
    if (!*opts->dir)
        return s_fail (err, errsize, "--dir needs a directory");
    if (opts->command_id)
        return s_fail (err, errsize, "--command-id does not apply to keygen");
    if (opts->json)
        return s_fail (err, errsize, "--json does not apply to keygen");
    return 0;
}

/*  run watch: --interval, checked and in milliseconds.  */
static int
s_build_watch (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    opts->interval_ms = BF_BILLCTL_INTERVAL_DEFAULT;
    if (opts->interval) {
        if (!s_positive (opts->interval, BF_BILLCTL_INTERVAL_MAX)
            || atoi (opts->interval) < BF_BILLCTL_INTERVAL_MIN)
            return s_fail (err, errsize,
                           "--interval must be a number of milliseconds from %d to %d,"
                           " not '%s'",
                           BF_BILLCTL_INTERVAL_MIN, BF_BILLCTL_INTERVAL_MAX, opts->interval);
        opts->interval_ms = atoi (opts->interval);
    }
    s_arg (opts, "period", opts->period);
    return 0;
}

/*  notify retry: exactly one of --run and --ids, checked by the same
    strict rules notify applies (bf_cmdargs.h).  */
static int
s_build_retry (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    if (!opts->run_id && !opts->ids)
        return s_fail (err, errsize,
                       "notify retry needs --run ID or --ids 1,2,3 (which deliveries)");
    if (opts->run_id && opts->ids)
        return s_fail (err, errsize, "notify retry takes --run or --ids, not both");
    char why[256];
    if (opts->run_id) {
        int64_t id;
        if (bf_cmdargs_id ("--run", opts->run_id, &id, why, sizeof why) != 0)
            return s_fail (err, errsize, "%s", why);
    }
    if (opts->ids) {
        int64_t ids[BF_CMDARGS_MAX_IDS];
        size_t count;
        if (bf_cmdargs_id_list ("--ids", opts->ids, ids, BF_CMDARGS_MAX_IDS, &count, why,
                                sizeof why)
            != 0)
            return s_fail (err, errsize, "%s", why);
    }
    s_arg (opts, "run_id", opts->run_id);
    s_arg (opts, "ids", opts->ids);
    return 0;
}

/*  notify failures: --channel (any case).  */
static int
s_build_failures (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    s_arg (opts, "period", opts->period);
    if (opts->channel) {
        const char *channel = s_upper (opts->channel, opts->channel_buf, sizeof opts->channel_buf);
        if (strcmp (channel, "EMAIL") && strcmp (channel, "SMS") && strcmp (channel, "PUSH"))
            return s_fail (err, errsize, "--channel must be EMAIL, SMS or PUSH, not '%s'",
                           opts->channel);
        opts->channel = channel;
    }
    s_arg (opts, "channel", opts->channel);
    s_arg (opts, "limit", opts->limit);
    return 0;
}

static int
s_check_id (const char *id, char *err, size_t errsize)
{
    if (id && !s_command_id_ok (id))
        return s_fail (err, errsize,
                       "--id must be a command id (1-128 of A-Z a-z 0-9 . _ : -), not '%s'", id);
    return 0;
}

/*  commands: --target and --state (any case).  */
static int
s_build_commands (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    if (opts->target && strcmp (opts->target, "settle") && strcmp (opts->target, "notify")
        && strcmp (opts->target, "control"))
        return s_fail (err, errsize, "--target must be settle, notify or control, not '%s'",
                       opts->target);
    if (opts->state) {
        static const char *const states[]
            = { "RECEIVED", "FORWARDED", "DONE", "FAILED", "REJECTED" };
        const char *state = s_upper (opts->state, opts->state_buf, sizeof opts->state_buf);
        bool known = false;
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
            known = known || !strcmp (state, states[i]);
        if (!known)
            return s_fail (err, errsize,
                           "--state must be RECEIVED, FORWARDED, DONE, FAILED or REJECTED,"
                           " not '%s'",
                           opts->state);
        opts->state = state;
    }
    s_arg (opts, "command_id", opts->id);
    s_arg (opts, "state", opts->state);
    s_arg (opts, "target", opts->target);
    s_arg (opts, "limit", opts->limit);
    return 0;
}

/*  audit: --actor.  */
static int
s_build_audit (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    if (opts->actor && !s_name_ok (opts->actor))
        return s_fail (err, errsize,
                       "--actor must be a key name (1-64 of A-Z a-z 0-9 . _ -), not '%s'",
                       opts->actor);
    s_arg (opts, "actor", opts->actor);
    s_arg (opts, "command_id", opts->id);
    s_arg (opts, "limit", opts->limit);
    return 0;
}

/*  subscriber find: exactly one of --id, --email and --phone, each
    checked as control checks it.  */
static int
s_build_find (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    int given = !!opts->id + !!opts->email + !!opts->phone;
    if (given != 1)
        return s_fail (err, errsize, "subscriber find takes %s of --id N, --email ADDRESS and"
                                     " --phone NUMBER",
                       given ? "only one" : "one");
    char why[256];
    int64_t id;
    if (opts->id && bf_cmdargs_id ("--id", opts->id, &id, why, sizeof why) != 0)
        return s_fail (err, errsize, "%s", why);
    if (opts->email) {
        size_t len = strlen (opts->email);
        const char *at = strchr (opts->email, '@');
        bool ok = len >= 3 && len <= 254 && bf_text_utf8_valid (opts->email, len) && at
                  && at != opts->email && at[1] && !strchr (at + 1, '@');
        for (const char *p = opts->email; ok && *p; p++)
            ok = (unsigned char)*p > 0x20 && *p != 0x7f;
        if (!ok) {
            char shown[64];
            return s_fail (err, errsize,
                           "--email must be an email address (name@domain, no spaces), not '%s'",
                           bf_text_clip (shown, sizeof shown, opts->email, 48));
        }
    }
    char digits[16];
    if (opts->phone && bf_pii_phone_normal (opts->phone, digits, sizeof digits) < 0) {
        char shown[64];
        return s_fail (err, errsize,
                       "--phone must be a Korean mobile number (010-1234-5678 or"
                       " +82 10-1234-5678), not '%s'",
                       bf_text_clip (shown, sizeof shown, opts->phone, 48));
    }
    s_arg (opts, "subscriber_id", opts->id);
    s_arg (opts, "email", opts->email);
    s_arg (opts, "phone", opts->phone);
    return 0;
}

/*  subscriber timeline ID, bill show ID: the id as bf_cmdargs has ids.  */
static int
s_build_subject (bf_billctl_opts_t *opts, const char *key, const char *what, char *err,
                 size_t errsize)
{
    char why[256];
    int64_t id;
    if (bf_cmdargs_id (what, opts->subject, &id, why, sizeof why) != 0)
        return s_fail (err, errsize, "%s", why);
    s_arg (opts, key, opts->subject);
    s_arg (opts, "limit", opts->limit);
    return 0;
}

/*  The request's arguments, by command. --id (commands and audit only) is
    checked before the other options.  */
static int
s_build_args (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    if (opts->cmd == BF_BILLCTL_SUBSCRIBER_FIND)
        return s_build_find (opts, err, errsize);
    if (opts->cmd == BF_BILLCTL_SUBSCRIBER_TIMELINE)
        return s_build_subject (opts, "subscriber_id", "SUBSCRIBER_ID", err, errsize);
    if (opts->cmd == BF_BILLCTL_BILL_SHOW)
        return s_build_subject (opts, "bill_id", "BILL_ID", err, errsize);
    if (s_check_id (opts->id, err, errsize))
        return BF_BILLCTL_EXIT_USAGE;
    switch (opts->cmd) {
        case BF_BILLCTL_RUN_STATUS:
            if (opts->period)
                opts->req_verb = "run.show";
            s_arg (opts, "period", opts->period);
            return 0;
        case BF_BILLCTL_RUN_START:
        case BF_BILLCTL_RUN_STOP:
        case BF_BILLCTL_RUN_RESUME:
        case BF_BILLCTL_RUN_REPORT:
        case BF_BILLCTL_NOTIFY_STATUS:
            s_arg (opts, "period", opts->period);
            return 0;
        case BF_BILLCTL_RUN_WATCH:
            return s_build_watch (opts, err, errsize);
        case BF_BILLCTL_NOTIFY_RETRY:
            return s_build_retry (opts, err, errsize);
        case BF_BILLCTL_NOTIFY_FAILURES:
            return s_build_failures (opts, err, errsize);
        case BF_BILLCTL_COMMANDS:
            return s_build_commands (opts, err, errsize);
        case BF_BILLCTL_AUDIT:
            return s_build_audit (opts, err, errsize);
        default:
            return 0;
    }
}

/*  The request's target and kind, from the verb catalogue; --command-id
    only for commands, and as control stores it.  */
static int
s_build_verb (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    const bf_verb_t *verb = bf_verb_find (opts->req_verb);
    if (!verb)
        return s_fail (err, errsize, "internal error: verb %s is not in the catalogue",
                       opts->req_verb);
    opts->req_target = verb->target;
    opts->query = verb->query;
    if (!opts->command_id)
        return 0;
    if (opts->query)
        return s_fail (err, errsize,
                       "--command-id applies to commands (run start/stop/resume, notify"
                       " pause/resume/retry), not to the query '%s'",
                       opts->req_verb);
    if (!s_command_id_ok (opts->command_id))
        return s_fail (err, errsize,
                       "--command-id must be 1-128 of A-Z a-z 0-9 . _ : - (as control"
                       " stores it), not '%s'",
                       opts->command_id);
    return 0;
}

/*  Checks the command's own arguments and builds the request.  */
static int
s_build (bf_billctl_opts_t *opts, const char **words, int nwords, char *err, size_t errsize)
{
    const s_command_t *command = s_command (opts->cmd);
    if (nwords < command->min_args) {
        if (opts->cmd == BF_BILLCTL_KEYGEN)
            return s_fail (err, errsize, "keygen needs a NAME for the key pair");
        if (opts->cmd == BF_BILLCTL_SUBSCRIBER_TIMELINE || opts->cmd == BF_BILLCTL_BILL_SHOW)
            return s_fail (err, errsize, "%s %s needs an id (usage: billctl %s)", command->group,
                           command->word, command->synopsis);
        return s_fail (err, errsize, "%s %s needs a PERIOD (YYYY-MM)", command->group,
                       command->word);
    }
    if (nwords > command->max_args)
        return s_fail (err, errsize, "unexpected argument '%s' (usage: billctl %s)",
                       words[command->max_args], command->synopsis);
    if (opts->cmd == BF_BILLCTL_KEYGEN)
        return s_build_keygen (opts, words[0], err, errsize);
    if (nwords == 1
        && (opts->cmd == BF_BILLCTL_SUBSCRIBER_TIMELINE || opts->cmd == BF_BILLCTL_BILL_SHOW))
        opts->subject = words[0];
    else if (nwords == 1) {
        opts->period = words[0];
        if (s_check_period (opts->period, err, errsize))
            return BF_BILLCTL_EXIT_USAGE;
    }
    opts->req_verb = command->verb;
    /*  --limit last: a command's own options are checked first.  */
    if (s_build_args (opts, err, errsize) || s_check_limit (opts->limit, err, errsize))
        return BF_BILLCTL_EXIT_USAGE;
    return s_build_verb (opts, err, errsize);
}

/*  Takes the option at argv[*i] (and its value, moving *i past it).  */
static int
s_option (bf_billctl_opts_t *opts, int argc, char **argv, int *i, const s_option_t **given,
          size_t *ngiven, char *err, size_t errsize)
{
    const char *arg = argv[*i];
    if (!strcmp (arg, "-h")) {
        opts->help = true;
        return 0;
    }
    if (arg[1] != '-')
        return s_fail (err, errsize, "unknown option '%s'", arg);
    const char *name = arg + 2;
    const char *eq = strchr (name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen (name);
    const s_option_t *option = s_option_find (name, len);
    if (!option)
        return s_fail (err, errsize, "unknown option '--%.*s'", (int)len, name);
    for (size_t g = 0; g < *ngiven; g++)
        if (given[g] == option)
            return s_fail (err, errsize, "option '--%s' given twice", option->name);
    given[(*ngiven)++] = option;
    if (option->kind != S_STRING) {
        if (eq)
            return s_fail (err, errsize, "option '--%s' takes no value", option->name);
        if (option->kind == S_FLAG_JSON)
            opts->json = true;
        else
            opts->help = true;
        return 0;
    }
    const char *value;
    if (eq)
        value = eq + 1;
    else if (*i + 1 < argc)
        value = argv[++*i];
    else
        return s_fail (err, errsize, "option '--%s' needs a value", option->name);
    *(const char **)((char *)opts + option->offset) = value;
    return 0;
}

int
bf_billctl_parse (int argc, char **argv, bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    memset (opts, 0, sizeof *opts);
    if (err && errsize)
        *err = 0;
    const char *words[8];
    int nwords = 0;
    const s_option_t *given[S_NOPTIONS];
    size_t ngiven = 0;
    bool options_done = false;
    const char *extra = NULL; /* first positional word beyond what fits in words */

    /*  With --help anywhere, nothing else on the line is an error.  */
    bool help_mode = false;
    for (int i = 1; i < argc && strcmp (argv[i], "--"); i++)
        if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
            help_mode = true;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && !strcmp (arg, "--")) {
            options_done = true;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] != 0) {
            if (s_option (opts, argc, argv, &i, given, &ngiven, err, errsize) != 0 && !help_mode)
                return BF_BILLCTL_EXIT_USAGE;
            continue;
        }
        if (nwords < (int)(sizeof words / sizeof words[0]))
            words[nwords++] = arg;
        else if (!extra)
            extra = arg;
    }
    if (help_mode && err && errsize)
        *err = 0;

    /*  The command word(s).  */
    int used = 0;
    if (nwords > 0 && !strcmp (words[0], "help")) {
        opts->help = true;
        used = 1;
    }
    if (nwords > used) {
        const char *first = words[used];
        bool group = false;
        for (size_t c = 0; c < S_NCOMMANDS && !opts->cmd; c++) {
            const s_command_t *command = &s_commands[c];
            if (!command->group) {
                if (!strcmp (command->word, first)) {
                    opts->cmd = command->cmd;
                    used += 1;
                }
                continue;
            }
            if (strcmp (command->group, first))
                continue;
            group = true;
            if (nwords > used + 1 && !strcmp (command->word, words[used + 1])) {
                opts->cmd = command->cmd;
                used += 2;
            }
        }
        if (!opts->cmd && !opts->help) {
            if (group && nwords > used + 1)
                return s_fail (err, errsize, "unknown command '%s %s' (try billctl --help)", first,
                               words[used + 1]);
            if (group)
                return s_fail (err, errsize, "'%s' needs a subcommand (try billctl %s --help)",
                               first, first);
            return s_fail (err, errsize, "unknown command '%s' (try billctl --help)", first);
        }
    }
    if (opts->help)
        return 0;
    if (!opts->cmd)
        return s_fail (err, errsize, "no command given (try billctl --help)");
    if (extra)
        return s_fail (err, errsize, "unexpected argument '%s'", extra);

    /*  Command options that this command does not take.  */
    for (size_t g = 0; g < ngiven; g++)
        if (given[g]->commands && !(given[g]->commands & S_BIT (opts->cmd)))
            return s_fail (err, errsize, "option '--%s' does not apply to '%s'", given[g]->name,
                           s_command (opts->cmd)->synopsis);
    return s_build (opts, words + used, nwords - used, err, errsize);
}

const char *
bf_billctl_synopsis (bf_billctl_cmd_t cmd)
{
    const s_command_t *command = s_command (cmd);
    return command ? command->synopsis : "COMMAND [ARGS] [OPTIONS]";
}

void
bf_billctl_help (FILE *out, bf_billctl_cmd_t cmd)
{
    const s_command_t *command = s_command (cmd);
    if (command) {
        fprintf (out, "usage: billctl %s [global options]\n\n%s\n%s\n%s", command->synopsis,
                 command->help, s_global_help, s_exit_help);
        return;
    }
    fprintf (out,
             "usage: billctl [global options] COMMAND [ARGS] [OPTIONS]\n"
             "\n"
             "The operator's CLI of billflow: asks control (control.endpoint) to run commands\n"
             "and queries. Commands carry a command id and run at most once per id; when\n"
             "control does not answer, billctl asks again with the same id.\n"
             "\n"
             "commands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        if (strlen (s_commands[i].synopsis) > 36)
            fprintf (out, "  %s\n  %-36s  %s\n", s_commands[i].synopsis, "", s_commands[i].summary);
        else
            fprintf (out, "  %-36s  %s\n", s_commands[i].synopsis, s_commands[i].summary);
    }
    fprintf (out, "\n%s\n%s\nSee `billctl COMMAND --help` and docs/billctl.md.\n", s_global_help,
             s_exit_help);
}
