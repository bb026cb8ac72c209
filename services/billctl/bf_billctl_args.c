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
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "bf_behalf.h"
#include "bf_billctl.h"
#include "bf_cmdargs.h"
#include "bf_config.h"
#include "bf_curve.h"
#include "bf_date.h"
#include "bf_log.h"
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
    { BF_BILLCTL_RUN_START, "run", "start", "run start PERIOD | --previous-month [--tz ZONE]",
      "start the settlement run of PERIOD",
      "Starts the settlement run of PERIOD (YYYY-MM) in settle (verb run.start). Starting a\n"
      "period that already has a run finds that run; re-running a settled period re-rates\n"
      "changed subscribers only.\n"
      "\n"
      "options:\n"
      "  --previous-month  instead of PERIOD: the month before the current one in ZONE;\n"
      "                    the command id is then run-start-PERIOD unless --command-id\n"
      "                    is given, so a retried or doubled job starts one run\n"
      "  --tz ZONE         Asia/Seoul (default), UTC, +HH:MM / -HH:MM, or a zone of the\n"
      "                    tz database\n"
      "\n"
      "example:\n"
      "  billctl run start 2026-10\n"
      "  billctl run start 2026-10 --command-id cron-run-start-2026-10\n"
      "  billctl run start --previous-month   (on 2026-11-01 in Seoul: 2026-10,\n"
      "                                        command id run-start-2026-10)\n",
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
    { BF_BILLCTL_RUN_RATES, "run", "rates", "run rates RUN_ID",
      "bills and notices per second over a run",
      "The bills per second and notices per second (final notices: delivered, failed,\n"
      "cancelled) of run RUN_ID over its whole life (query run.rates): one row per\n"
      "interval, at most 600 whatever the run's length, each with its end in seconds since\n"
      "the run started, its length, what changed and the rates. The active control samples\n"
      "every run once a second; an interval with no active control in it (a failover) shows\n"
      "its change without rates (\"gap\"). The run ids are in `billctl run status`.\n"
      "\n"
      "example:\n"
      "  billctl run rates 7\n"
      "  billctl run rates 7 --json > rates-7.json\n",
      "run.rates", 1, 1 },
    { BF_BILLCTL_RUN_SCHEDULE, "run", "schedule", "run schedule PERIOD --at YYYY-MM-DDTHH:MM",
      "send the run's notices from a time on",
      "Sets when the notices of the run of PERIOD may go out (verb run.schedule, applied by\n"
      "notify): none is sent before --at, a local time (notify.utc_offset_min; Asia/Seoul by\n"
      "default). Quiet hours and personal windows still apply after it, so a notice goes at\n"
      "the later of the two. Scheduling again moves the time; `billctl run unschedule`\n"
      "removes it. `billctl run status PERIOD` shows it.\n"
      "\n"
      "options:\n"
      "  --at TIME       YYYY-MM-DDTHH:MM, local time\n"
      "\n"
      "example:\n"
      "  billctl run schedule 2026-10 --at 2026-11-03T10:00\n",
      "run.schedule", 1, 1 },
    { BF_BILLCTL_RUN_UNSCHEDULE, "run", "unschedule", "run unschedule PERIOD",
      "remove the run's release time",
      "Removes the release time of the run of PERIOD (verb run.unschedule): its notices go\n"
      "out as usual from now on.\n"
      "\n"
      "example:\n"
      "  billctl run unschedule 2026-10\n",
      "run.unschedule", 1, 1 },
    { BF_BILLCTL_TEMPLATES_LIST, "templates", "list", "templates list [--channel C]",
      "template versions, which is active, who published them",
      "Every template version, by channel, newest first: whether it is the active one, when\n"
      "and by whom (key and command id) it was published (query templates.list).\n"
      "\n"
      "options:\n"
      "  --channel C     EMAIL, SMS or PUSH only\n"
      "\n"
      "example:\n"
      "  billctl templates list --channel SMS\n",
      "templates.list", 0, 0 },
    { BF_BILLCTL_TEMPLATES_SHOW, "templates", "show", "templates show --channel C --version N",
      "one template version's texts",
      "Subject, body, HTML part and short body of one template version (query\n"
      "template.show).\n"
      "\n"
      "example:\n"
      "  billctl templates show --channel EMAIL --version 1\n",
      "template.show", 0, 0 },
    { BF_BILLCTL_TEMPLATES_PREVIEW, "templates", "preview",
      "templates preview --channel C --bill ID (--version N | --body FILE ...)",
      "a template rendered for a bill, contact masked",
      "Renders a stored version, or a draft read from files, for one bill with notify's\n"
      "renderer (query template.preview): what the notice would say and whether an SMS\n"
      "goes as SMS, LMS or its short form. The contact is masked.\n"
      "\n"
      "options:\n"
      "  --channel C     EMAIL, SMS or PUSH\n"
      "  --bill ID       the bill id\n"
      "  --version N     a stored version; or a draft:\n"
      "  --body FILE     its text body (UTF-8)\n"
      "  --subject TEXT  its subject / LMS title / push title\n"
      "  --html FILE     its HTML part (EMAIL)\n"
      "  --short FILE    its short form (SMS)\n"
      "\n"
      "example:\n"
      "  billctl templates preview --channel SMS --bill 202610000123 --version 2\n"
      "  billctl templates preview --channel SMS --bill 202610000123 --subject '[빌플로우] 안내' \\\n"
      "      --body sms.txt --short sms-short.txt\n",
      "template.preview", 0, 0 },
    { BF_BILLCTL_TEMPLATES_PUBLISH, "templates", "publish",
      "templates publish --channel C --subject TEXT --body FILE [--html FILE] [--short FILE]",
      "check a template and make it the active version",
      "Publishes a new template version (verb template.publish, applied by notify): the texts\n"
      "are checked as notify checks them (docs/templates.md) and, when they pass, stored as\n"
      "the channel's next version and made the active one; notify sends with it within a\n"
      "minute. A refused template stores nothing and the checker's message says why.\n"
      "EMAIL needs --html, SMS needs --short. Repeating it with the same --command-id\n"
      "publishes once. The request holds at most control.max_request_bytes (16 KiB).\n"
      "\n"
      "options:\n"
      "  --channel C     EMAIL, SMS or PUSH\n"
      "  --subject TEXT  subject / LMS title / push title\n"
      "  --body FILE     text body (UTF-8)\n"
      "  --html FILE     the email's HTML part\n"
      "  --short FILE    the SMS sent when the body is too long even for LMS\n"
      "\n"
      "example:\n"
      "  billctl templates publish --channel PUSH --subject '{{period_label}} 요금' \\\n"
      "      --body push.txt --command-id tpl-push-2026-11\n",
      "template.publish", 0, 0 },
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
      "commands [--id ID] [--actor NAME] [--verb V] [--state S] [--target T] [--since T]"
      " [--until T] [--before ID] [--limit N]",
      "stored commands and outcomes",
      "The commands control stored, newest first, with their state and outcome (query\n"
      "commands.list). Use it to find what happened to a command id. Options combine.\n"
      "\n"
      "options:\n"
      "  --id ID         one command id\n"
      "  --actor NAME    only commands of one key name, or of one console user\n"
      "                  (console/NAME)\n"
      "  --verb V        only commands of one verb (run.start, dispatch.pause, ...)\n"
      "  --state S       only commands in state S: RECEIVED, FORWARDED, DONE, FAILED\n"
      "                  or REJECTED\n"
      "  --target T      only commands for settle, notify or control\n"
      "  --since T       only commands received at or after T: YYYY-MM-DD (midnight\n"
      "                  UTC) or RFC 3339 (2026-11-01T09:00:00+09:00)\n"
      "  --until T       only commands received before T (same forms; after --since)\n"
      "  --before ID     only commands older than command ID (the next page)\n"
      "  --limit N       at most N rows (1..500; control's default 20)\n"
      "\n"
      "example:\n"
      "  billctl commands --id 0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f\n"
      "  billctl commands --target settle --limit 5\n"
      "  billctl commands --verb run.start --state FAILED --since 2026-11-01\n",
      "commands.list", 0, 0 },
    { BF_BILLCTL_AUDIT, NULL, "audit",
      "audit [--actor NAME] [--id ID] [--verb V] [--state OUTCOME] [--since T] [--until T]"
      " [--before N] [--limit N]",
      "the audit log",
      "The audit log, newest first: who sent what, and the outcome (query audit.list).\n"
      "Options combine.\n"
      "\n"
      "options:\n"
      "  --actor NAME    entries of one key name, or of one console user (console/NAME)\n"
      "  --id ID         entries of one command id\n"
      "  --verb V        entries of one verb (run.start, dispatch.pause, ...)\n"
      "  --state OUTCOME entries with one outcome: received, done, failed, refused,\n"
      "                  rejected or repeated\n"
      "  --since T       entries at or after T: YYYY-MM-DD (midnight UTC) or RFC 3339\n"
      "                  (2026-11-01T09:00:00+09:00)\n"
      "  --until T       entries before T (same forms; after --since)\n"
      "  --before N      entries older than entry N (the next page)\n"
      "  --limit N       at most N rows (1..500; control's default 20)\n"
      "\n"
      "example:\n"
      "  billctl audit --actor ops-kim --limit 50\n"
      "  billctl audit --state refused --since 2026-11-01T00:00:00Z --until 2026-11-02\n",
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

typedef enum { S_STRING, S_FLAG_JSON, S_FLAG_HELP, S_FLAG_PREVIOUS } s_kind_t;

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
    { "on-behalf-of", S_STRING, S_FIELD (on_behalf_of), 0 },
    { "as-role", S_STRING, S_FIELD (as_role), 0 },
    { "json", S_FLAG_JSON, 0, 0 },
    { "help", S_FLAG_HELP, 0, 0 },
    { "interval", S_STRING, S_FIELD (interval), S_BIT (BF_BILLCTL_RUN_WATCH) },
    { "previous-month", S_FLAG_PREVIOUS, 0, S_BIT (BF_BILLCTL_RUN_START) },
    { "tz", S_STRING, S_FIELD (tz), S_BIT (BF_BILLCTL_RUN_START) },
    { "run", S_STRING, S_FIELD (run_id), S_BIT (BF_BILLCTL_NOTIFY_RETRY) },
    { "ids", S_STRING, S_FIELD (ids), S_BIT (BF_BILLCTL_NOTIFY_RETRY) },
    { "channel", S_STRING, S_FIELD (channel),
      S_BIT (BF_BILLCTL_NOTIFY_FAILURES) | S_BIT (BF_BILLCTL_TEMPLATES_LIST)
          | S_BIT (BF_BILLCTL_TEMPLATES_SHOW) | S_BIT (BF_BILLCTL_TEMPLATES_PREVIEW)
          | S_BIT (BF_BILLCTL_TEMPLATES_PUBLISH) },
    { "at", S_STRING, S_FIELD (at), S_BIT (BF_BILLCTL_RUN_SCHEDULE) },
    { "version", S_STRING, S_FIELD (version),
      S_BIT (BF_BILLCTL_TEMPLATES_SHOW) | S_BIT (BF_BILLCTL_TEMPLATES_PREVIEW) },
    { "bill", S_STRING, S_FIELD (bill), S_BIT (BF_BILLCTL_TEMPLATES_PREVIEW) },
    { "subject", S_STRING, S_FIELD (subject),
      S_BIT (BF_BILLCTL_TEMPLATES_PREVIEW) | S_BIT (BF_BILLCTL_TEMPLATES_PUBLISH) },
    { "body", S_STRING, S_FIELD (files[0]),
      S_BIT (BF_BILLCTL_TEMPLATES_PREVIEW) | S_BIT (BF_BILLCTL_TEMPLATES_PUBLISH) },
    { "html", S_STRING, S_FIELD (files[1]),
      S_BIT (BF_BILLCTL_TEMPLATES_PREVIEW) | S_BIT (BF_BILLCTL_TEMPLATES_PUBLISH) },
    { "short", S_STRING, S_FIELD (files[2]),
      S_BIT (BF_BILLCTL_TEMPLATES_PREVIEW) | S_BIT (BF_BILLCTL_TEMPLATES_PUBLISH) },
    { "limit", S_STRING, S_FIELD (limit),
      S_BIT (BF_BILLCTL_NOTIFY_FAILURES) | S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT)
          | S_BIT (BF_BILLCTL_SUBSCRIBER_TIMELINE) },
    { "id", S_STRING, S_FIELD (id),
      S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT) | S_BIT (BF_BILLCTL_SUBSCRIBER_FIND) },
    { "email", S_STRING, S_FIELD (email), S_BIT (BF_BILLCTL_SUBSCRIBER_FIND) },
    { "phone", S_STRING, S_FIELD (phone), S_BIT (BF_BILLCTL_SUBSCRIBER_FIND) },
    { "state", S_STRING, S_FIELD (state), S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT) },
    { "target", S_STRING, S_FIELD (target), S_BIT (BF_BILLCTL_COMMANDS) },
    { "actor", S_STRING, S_FIELD (actor), S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT) },
    { "verb", S_STRING, S_FIELD (verb), S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT) },
    { "since", S_STRING, S_FIELD (since), S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT) },
    { "until", S_STRING, S_FIELD (until), S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT) },
    { "before", S_STRING, S_FIELD (before),
      S_BIT (BF_BILLCTL_COMMANDS) | S_BIT (BF_BILLCTL_AUDIT) },
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
      "  --on-behalf-of NAME  with --as-role operator|viewer: act for the person NAME\n"
      "                       (a console key only; control refuses it from others)\n"
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

/*  --channel, when given: any case, upper-cased into opts.  */
static int
s_check_channel (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    if (!opts->channel)
        return 0;
    const char *channel = s_upper (opts->channel, opts->channel_buf, sizeof opts->channel_buf);
    if (strcmp (channel, "EMAIL") && strcmp (channel, "SMS") && strcmp (channel, "PUSH"))
        return s_fail (err, errsize, "--channel must be EMAIL, SMS or PUSH, not '%s'",
                       opts->channel);
    opts->channel = channel;
    return 0;
}

/*  notify failures: --channel (any case).  */
static int
s_build_failures (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    s_arg (opts, "period", opts->period);
    if (s_check_channel (opts, err, errsize))
        return BF_BILLCTL_EXIT_USAGE;
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

/*  The entry of set (NULL-terminated) that value spells in any case, as
    the set spells it; NULL when none does.  */
static const char *
s_any_case (const char *value, const char *const *set)
{
    for (; *set; set++)
        if (!strcasecmp (value, *set))
            return *set;
    return NULL;
}

/*  The filters commands and audit share: --actor, --verb, --since,
    --until, checked as control checks them. Adds actor, verb, since and
    until.  */
static int
s_build_filters (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    if (opts->actor && !bf_behalf_actor_valid (opts->actor))
        return s_fail (err, errsize,
                       "--actor must be a key name (1-64 of A-Z a-z 0-9 . _ -) or console/NAME,"
                       " not '%s'",
                       opts->actor);
    if (opts->verb && !bf_verb_find (opts->verb))
        return s_fail (err, errsize,
                       "--verb must be a verb of the catalogue (run.start, ...),"
                       " not '%s'",
                       opts->verb);
    int64_t since = 0, until = 0;
    if (opts->since && bf_timestamp_parse (opts->since, &since) != 0)
        return s_fail (err, errsize,
                       "--since must be YYYY-MM-DD or RFC 3339 (2026-11-01T09:00:00+09:00),"
                       " not '%s'",
                       opts->since);
    if (opts->until && bf_timestamp_parse (opts->until, &until) != 0)
        return s_fail (err, errsize,
                       "--until must be YYYY-MM-DD or RFC 3339 (2026-11-01T09:00:00+09:00),"
                       " not '%s'",
                       opts->until);
    if (opts->since && opts->until && since >= until)
        return s_fail (err, errsize, "--since (%s) must be before --until (%s)", opts->since,
                       opts->until);
    s_arg (opts, "actor", opts->actor);
    s_arg (opts, "verb", opts->verb);
    s_arg (opts, "since", opts->since);
    s_arg (opts, "until", opts->until);
    return 0;
}

/*  commands: --target, --state (any case), --before (a command id) and
    the shared filters.  */
static int
s_build_commands (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    if (opts->before && !s_command_id_ok (opts->before))
        return s_fail (err, errsize,
                       "--before must be a command id (1-128 of A-Z a-z 0-9 . _ : -), not '%s'",
                       opts->before);
    if (opts->target && strcmp (opts->target, "settle") && strcmp (opts->target, "notify")
        && strcmp (opts->target, "control"))
        return s_fail (err, errsize, "--target must be settle, notify or control, not '%s'",
                       opts->target);
    static const char *const states[]
        = { "RECEIVED", "FORWARDED", "DONE", "FAILED", "REJECTED", NULL };
    const char *state = opts->state ? s_any_case (opts->state, states) : NULL;
    if (opts->state && !state)
        return s_fail (err, errsize,
                       "--state must be RECEIVED, FORWARDED, DONE, FAILED or REJECTED,"
                       " not '%s'",
                       opts->state);
    opts->state = state;
    if (s_build_filters (opts, err, errsize))
        return BF_BILLCTL_EXIT_USAGE;
    s_arg (opts, "command_id", opts->id);
    s_arg (opts, "state", opts->state);
    s_arg (opts, "target", opts->target);
    s_arg (opts, "before_id", opts->before);
    s_arg (opts, "limit", opts->limit);
    return 0;
}

/*  audit: --state (an outcome, any case), --before (an entry's id) and
    the shared filters.  */
static int
s_build_audit (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    static const char *const outcomes[]
        = { "received", "done", "failed", "refused", "rejected", "repeated", NULL };
    const char *state = opts->state ? s_any_case (opts->state, outcomes) : NULL;
    if (opts->state && !state)
        return s_fail (err, errsize,
                       "--state must be received, done, failed, refused, rejected or repeated,"
                       " not '%s'",
                       opts->state);
    opts->state = state;
    int64_t before;
    char why[256];
    if (opts->before && bf_cmdargs_id ("--before", opts->before, &before, why, sizeof why) != 0)
        return s_fail (err, errsize, "%s", why);
    if (s_build_filters (opts, err, errsize))
        return BF_BILLCTL_EXIT_USAGE;
    s_arg (opts, "command_id", opts->id);
    s_arg (opts, "state", opts->state);
    s_arg (opts, "before_id", opts->before);
    s_arg (opts, "limit", opts->limit);
    return 0;
}

/*  run schedule: --at as notify takes it (YYYY-MM-DDTHH:MM, local).  */
static int
s_build_schedule (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    char why[256];
    int64_t minutes;
    if (!opts->at)
        return s_fail (err, errsize, "run schedule needs --at YYYY-MM-DDTHH:MM (local time)");
    if (bf_cmdargs_local_time ("--at", opts->at, &minutes, why, sizeof why) != 0)
        return s_fail (err, errsize, "--at must be YYYY-MM-DDTHH:MM (local time), not '%s'",
                       opts->at);
    s_arg (opts, "period", opts->period);
    s_arg (opts, "at", opts->at);
    return 0;
}

/*  templates list/show/preview/publish: --channel (any case), --version,
    --bill, and which of the texts each needs. The files are read later
    (bf_billctl_load_files), so parsing stays free of I/O.  */
static int
s_build_templates (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    bf_billctl_cmd_t cmd = opts->cmd;
    if (s_check_channel (opts, err, errsize))
        return BF_BILLCTL_EXIT_USAGE;
    if (!opts->channel && cmd != BF_BILLCTL_TEMPLATES_LIST)
        return s_fail (err, errsize, "templates %s needs --channel EMAIL|SMS|PUSH",
                       s_command (cmd)->word);
    if (opts->version && !s_positive (opts->version, 1000000000))
        return s_fail (err, errsize, "--version must be a positive whole number, not '%s'",
                       opts->version);
    if (cmd == BF_BILLCTL_TEMPLATES_SHOW && !opts->version)
        return s_fail (err, errsize, "templates show needs --version N");
    if (cmd == BF_BILLCTL_TEMPLATES_PREVIEW) {
        char why[256];
        int64_t id;
        if (!opts->bill)
            return s_fail (err, errsize, "templates preview needs --bill ID");
        if (bf_cmdargs_id ("--bill", opts->bill, &id, why, sizeof why) != 0)
            return s_fail (err, errsize, "%s", why);
        bool draft = opts->subject || opts->files[0] || opts->files[1] || opts->files[2];
        if (draft == (opts->version != NULL))
            return s_fail (err, errsize,
                           "templates preview takes --version N or a draft (--body FILE ...),"
                           " %s",
                           draft ? "not both" : "one of them");
        if (draft && !opts->files[0])
            return s_fail (err, errsize, "a draft needs --body FILE");
    }
    if (cmd == BF_BILLCTL_TEMPLATES_PUBLISH) {
        if (!opts->subject || !opts->files[0])
            return s_fail (err, errsize, "templates publish needs --subject TEXT and --body FILE");
        for (int i = 0; i < 3; i++)
            if (opts->files[i] && !*opts->files[i])
                return s_fail (err, errsize, "a file name is empty");
    }
    s_arg (opts, "channel", opts->channel);
    s_arg (opts, "version", opts->version);
    s_arg (opts, "bill_id", opts->bill);
    s_arg (opts, "subject", opts->subject);
    return 0;
}

int
bf_billctl_load_files (bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    static const char *const keys[] = { "body", "body_html", "short_body" };
    static const char *const options[] = { "--body", "--html", "--short" };
    for (int i = 0; i < 3; i++) {
        if (!opts->files[i])
            continue;
        FILE *file = fopen (opts->files[i], "rb");
        char *text = file ? malloc (BF_BILLCTL_FILE_MAX + 1) : NULL;
        size_t n = text ? fread (text, 1, BF_BILLCTL_FILE_MAX + 1, file) : 0;
        bool failed = !file || !text || ferror (file);
        if (file)
            fclose (file);
        if (failed || n > BF_BILLCTL_FILE_MAX || memchr (text, 0, n)) {
            free (text);
            return s_fail (err, errsize, "%s %s: %s", options[i], opts->files[i],
                           failed ? "cannot be read"
                           : n > BF_BILLCTL_FILE_MAX
                               ? "larger than 64 KiB"
                               : "holds a NUL byte (not a text file)");
        }
        text[n] = 0;
        opts->texts[i] = text;
        s_arg (opts, keys[i], text);
    }
    return 0;
}

void
bf_billctl_free_files (bf_billctl_opts_t *opts)
{
    for (int i = 0; i < 3; i++) {
        free (opts->texts[i]);
        opts->texts[i] = NULL;
    }
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
    if (bf_cmdargs_id (what, opts->lookup_id, &id, why, sizeof why) != 0)
        return s_fail (err, errsize, "%s", why);
    s_arg (opts, key, opts->lookup_id);
    s_arg (opts, "limit", opts->limit);
    return 0;
}

/*  Commands whose one word is an id rather than a PERIOD.  */
static bool
s_takes_id (bf_billctl_cmd_t cmd)
{
    return cmd == BF_BILLCTL_SUBSCRIBER_TIMELINE || cmd == BF_BILLCTL_BILL_SHOW
           || cmd == BF_BILLCTL_RUN_RATES;
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
    if (opts->cmd == BF_BILLCTL_RUN_RATES)
        return s_build_subject (opts, "run_id", "RUN_ID", err, errsize);
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
        case BF_BILLCTL_RUN_SCHEDULE:
            return s_build_schedule (opts, err, errsize);
        case BF_BILLCTL_RUN_UNSCHEDULE:
            s_arg (opts, "period", opts->period);
            return 0;
        case BF_BILLCTL_TEMPLATES_LIST:
        case BF_BILLCTL_TEMPLATES_SHOW:
        case BF_BILLCTL_TEMPLATES_PREVIEW:
        case BF_BILLCTL_TEMPLATES_PUBLISH:
            return s_build_templates (opts, err, errsize);
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
                       "--command-id applies to commands (run start/stop/resume/schedule/"
                       "unschedule, notify pause/resume/retry, templates publish), not to the"
                       " query '%s'",
                       opts->req_verb);
    if (!s_command_id_ok (opts->command_id))
        return s_fail (err, errsize,
                       "--command-id must be 1-128 of A-Z a-z 0-9 . _ : - (as control"
                       " stores it), not '%s'",
                       opts->command_id);
    return 0;
}

/*  run start --previous-month [--tz ZONE]: PERIOD from the clock, and
    the command id from PERIOD unless one was given.  */
static int
s_build_previous (bf_billctl_opts_t *opts, int nwords, char *err, size_t errsize)
{
    if (!opts->previous_month)
        return s_fail (err, errsize, "--tz applies to --previous-month only");
    if (nwords > 0)
        return s_fail (err, errsize, "run start takes PERIOD or --previous-month, not both");
    char why[256];
    if (bf_billctl_previous_period ((int64_t)time (NULL),
                                    opts->tz ? opts->tz : BF_BILLCTL_TZ_DEFAULT, opts->period_buf,
                                    why, sizeof why)
        != 0)
        return s_fail (err, errsize, "%s", why);
    opts->period = opts->period_buf;
    if (!opts->command_id) {
        snprintf (opts->command_id_buf, sizeof opts->command_id_buf, "run-start-%s",
                  opts->period_buf);
        opts->command_id = opts->command_id_buf;
    }
    opts->req_verb = s_command (opts->cmd)->verb;
    if (s_build_args (opts, err, errsize))
        return BF_BILLCTL_EXIT_USAGE;
    return s_build_verb (opts, err, errsize);
}

/*  --on-behalf-of NAME --as-role ROLE: both or neither, not for keygen,
    and as control checks them (bf_behalf.h); whether the key is a console
    key only control knows.  */
static int
s_check_behalf (const bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    if (!opts->on_behalf_of && !opts->as_role)
        return 0;
    if (opts->cmd == BF_BILLCTL_KEYGEN)
        return s_fail (err, errsize, "--on-behalf-of and --as-role do not apply to keygen");
    if (!opts->on_behalf_of || !opts->as_role)
        return s_fail (err, errsize, "--on-behalf-of NAME and --as-role ROLE go together");
    if (!bf_curve_name_valid (opts->on_behalf_of))
        return s_fail (err, errsize, "--on-behalf-of must be 1-64 of A-Z a-z 0-9 . _ -, not '%s'",
                       opts->on_behalf_of);
    if (strcmp (opts->as_role, "operator") && strcmp (opts->as_role, "viewer"))
        return s_fail (err, errsize, "--as-role must be operator or viewer, not '%s'",
                       opts->as_role);
    return 0;
}

/*  Checks the command's own arguments and builds the request.  */
static int
s_build (bf_billctl_opts_t *opts, const char **words, int nwords, char *err, size_t errsize)
{
    const s_command_t *command = s_command (opts->cmd);
    if (opts->cmd == BF_BILLCTL_RUN_START && (opts->previous_month || opts->tz))
        return s_build_previous (opts, nwords, err, errsize);
    if (nwords < command->min_args) {
        if (opts->cmd == BF_BILLCTL_KEYGEN)
            return s_fail (err, errsize, "keygen needs a NAME for the key pair");
        if (s_takes_id (opts->cmd))
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
    if (nwords == 1 && s_takes_id (opts->cmd))
        opts->lookup_id = words[0];
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
        else if (option->kind == S_FLAG_PREVIOUS)
            opts->previous_month = true;
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
    int rc = s_build (opts, words + used, nwords - used, err, errsize);
    return rc ? rc : s_check_behalf (opts, err, errsize);
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

//  ---------------------------------------------------------------------------
//  The previous month

//  "+HH:MM" / "-HH:MM" into seconds east of UTC. Returns 0 or -1.
static int
s_fixed_offset (const char *tz, int64_t *offset)
{
    if ((tz[0] != '+' && tz[0] != '-') || strlen (tz) != 6 || tz[3] != ':')
        return -1;
    for (int i = 1; i < 6; i++)
        if (i != 3 && !isdigit ((unsigned char)tz[i]))
            return -1;
    int hours = (tz[1] - '0') * 10 + (tz[2] - '0');
    int minutes = (tz[4] - '0') * 10 + (tz[5] - '0');
    if (minutes > 59 || hours * 60 + minutes > 14 * 60)
        return -1;
    *offset = (int64_t)(hours * 3600 + minutes * 60) * (tz[0] == '-' ? -1 : 1);
    return 0;
}

//  The offset of the IANA zone tz at now, from the tz database. The zone
//  must exist there: glibc would silently take UTC for a missing one.
static int
s_zone_offset (int64_t now, const char *tz, int64_t *offset, char *err, size_t errsize)
{
    size_t len = strlen (tz);
    bool name_ok = len > 0 && len < 64 && tz[0] != '/' && !strstr (tz, "..");
    for (const char *p = tz; name_ok && *p; p++)
        name_ok = isalnum ((unsigned char)*p) || strchr ("/_+-", *p);
    if (!name_ok)
        return bf_err_set (err, errsize,
                           "--tz '%s' is not a time zone (Asia/Seoul, UTC, +09:00, or a name"
                           " of the tz database)",
                           tz);
    const char *tzdir = getenv ("TZDIR");
    char path[512];
    snprintf (path, sizeof path, "%s/%s", tzdir && *tzdir ? tzdir : "/usr/share/zoneinfo", tz);
    struct stat st;
    if (stat (path, &st) != 0 || !S_ISREG (st.st_mode))
        return bf_err_set (err, errsize,
                           "--tz '%s': no such zone in the tz database (%s); use Asia/Seoul,"
                           " UTC or +HH:MM",
                           tz, path);
    char *saved = getenv ("TZ") ? strdup (getenv ("TZ")) : NULL;
    setenv ("TZ", tz, 1);
    tzset ();
    time_t t = (time_t)now;
    struct tm local;
    bool ok = localtime_r (&t, &local) != NULL;
    if (saved) {
        setenv ("TZ", saved, 1);
        free (saved);
    }
    else
        unsetenv ("TZ");
    tzset ();
    if (!ok)
        return bf_err_set (err, errsize, "--tz '%s': cannot convert the time", tz);
    *offset = local.tm_gmtoff;
    return 0;
}

int
bf_billctl_previous_period (int64_t now, const char *tz, char out[8], char *err, size_t errsize)
{
    int64_t offset = 0;
    if (!tz || !strcmp (tz, "Asia/Seoul"))
        offset = 9 * 3600; //  KST; no daylight saving since 1988
    else if (!strcmp (tz, "UTC") || !strcmp (tz, "Etc/UTC"))
        offset = 0;
    else if (tz[0] == '+' || tz[0] == '-') {
        if (s_fixed_offset (tz, &offset) != 0)
            return bf_err_set (err, errsize,
                               "--tz '%s' is not an offset (+HH:MM or -HH:MM, at most 14:00)",
                               tz);
    }
    else if (s_zone_offset (now, tz, &offset, err, errsize) != 0)
        return -1;
    int64_t local = now + offset;
    int64_t day = local / 86400 - (local % 86400 < 0 ? 1 : 0);
    int year, month, mday;
    bf_day_to_ymd ((bf_day_t)day, &year, &month, &mday);
    bf_period_t period = { .year = year, .month = month - 1 };
    if (month == 1) //  January: December of the year before
        period = (bf_period_t){ .year = year - 1, .month = 12 };
    if (period.year < 1900 || period.year > 9999)
        return bf_err_set (err, errsize, "the previous month of %lld is out of range",
                           (long long)now);
    bf_period_format (period, out);
    return 0;
}
