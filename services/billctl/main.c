/*  billctl — the operator's CLI (docs/billctl.md; design.md "billctl").

    Parses the command line (bf_billctl_args.c), applies the global options
    to the configuration, asks control through bf_client (Lazy Pirate: the
    same command id on every attempt, so a repeat is safe) and turns the
    answer into a table, a JSON document and an exit code. keygen is local
    and does not talk to control.  */

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_billctl.h"
#include "bf_client.h"
#include "bf_config.h"
#include "bf_curve.h"
#include "bf_log.h"
#include "bf_uuid.h"

/*  Least per-attempt wait for `run report`.  */
#define S_REPORT_TIMEOUT_MS 300000

typedef struct {
    bf_billctl_opts_t *opts;
    bf_config_t *config;
    bf_client_t *client;
    const char *endpoints;
} s_billctl_t;

static int
s_usage (const bf_billctl_opts_t *opts, const char *err)
{
    char usage[256];
    snprintf (usage, sizeof usage,
              "usage: billctl %s [global options]\n"
              "       billctl --help    (every command, option and exit code)\n",
              bf_billctl_synopsis (opts->cmd));
    return bf_usage_error ("billctl", usage, "%s", err);
}

/*  Loads the configuration and lays the command-line options over it.  */
static int
s_configure (s_billctl_t *self)
{
    const bf_billctl_opts_t *opts = self->opts;
    char err[512];
    self->config = bf_config_load (opts->config_path, err, sizeof err);
    if (!self->config) {
        fprintf (stderr, "billctl: configuration: %s\n", err);
        return BF_BILLCTL_EXIT_SETUP;
    }
    const bf_config_override_t overrides[] = {
        { "control.endpoint", opts->control, "--control" },
        { "control.server_key", opts->server_key, "--server-key" },
        { "control.client_key_file", opts->key_file, "--key" },
        { "billctl.timeout_ms", opts->timeout, "--timeout" },
        { "billctl.retries", opts->retries, "--retries" },
        { "log.level", opts->log_level, "--log-level" },
    };
    if (bf_config_override (self->config, overrides, sizeof overrides / sizeof overrides[0], err,
                            sizeof err)
        != 0)
        return s_usage (opts, err);
    bf_config_log_init (self->config, "billctl");
    return 0;
}

static int
s_connect (s_billctl_t *self)
{
    self->endpoints = bf_config_str (self->config, "control.endpoint");
    if (!*self->endpoints) {
        fprintf (stderr, "billctl: no control endpoint: give --control ENDPOINTS or set"
                         " control.endpoint (BILLFLOW_CONTROL_ENDPOINT)\n");
        return BF_BILLCTL_EXIT_SETUP;
    }
    bf_client_args_t args = {
        .endpoints = self->endpoints,
        .server_key = bf_config_str (self->config, "control.server_key"),
        .key_file = bf_config_str (self->config, "control.client_key_file"),
        .timeout_ms = (int)bf_config_int (self->config, "billctl.timeout_ms"),
        .wait_ms = 0,
        .retries = (int)bf_config_int (self->config, "billctl.retries"),
        .on_behalf_of = self->opts->on_behalf_of,
        .on_behalf_role = self->opts->as_role,
    };
    /*  The report reads a whole period (seconds at a million bills): one
        long attempt, not several short ones that would each start it.  */
    if (self->opts->cmd == BF_BILLCTL_RUN_REPORT && args.timeout_ms < S_REPORT_TIMEOUT_MS)
        args.timeout_ms = S_REPORT_TIMEOUT_MS;
    char err[512];
    self->client = bf_client_new (&args, err, sizeof err);
    if (!self->client) {
        fprintf (stderr, "billctl: %s\n", err);
        return BF_BILLCTL_EXIT_SETUP;
    }
    return 0;
}

/*  Sends one request. Returns 0 with *reply set, or an exit code after
    saying what went wrong.  */
static int
s_ask (s_billctl_t *self, const char *command_id, const char *target, const char *verb,
       size_t nargs, const char *const *keys, const char *const *values, bool query,
       Billflow__CommandReply **reply)
{
    char err[1024];
    int attempts = 0;
    int rc = bf_client_request (self->client, command_id, target, verb, nargs, keys, values, reply,
                                &attempts, err, sizeof err);
    if (rc == BF_CLIENT_ANSWERED)
        return 0;
    if (rc == BF_CLIENT_INTERRUPTED) {
        fprintf (stderr, "billctl: interrupted while waiting for control\n");
        if (!query)
            fprintf (stderr,
                     "billctl: the command may or may not have been stored; repeat it with"
                     " --command-id %s to get its outcome (it runs at most once)\n",
                     command_id);
        return BF_BILLCTL_EXIT_INTERRUPTED;
    }
    if (rc == BF_CLIENT_NO_ANSWER) {
        fprintf (stderr, "billctl: %s\n", err);
        if (query)
            fprintf (stderr,
                     "billctl: %s changes nothing; ask again when control is up"
                     " (check control.endpoint / --control)\n",
                     verb);
        else
            fprintf (stderr,
                     "billctl: the command may or may not have been stored by control. Repeat"
                     " it with --command-id %s to get its outcome: control runs a command id at"
                     " most once.\n",
                     command_id);
        return BF_BILLCTL_EXIT_NO_ANSWER;
    }
    fprintf (stderr, "billctl: cannot send the request: %s\n", err);
    return BF_BILLCTL_EXIT_SETUP;
}

static void
s_print_error (const char *what, const char *error)
{
    char safe[2048];
    bf_billctl_scrub (error && *error ? error : "(no reason given)", safe, sizeof safe);
    fprintf (stderr, "billctl: %s: %s\n", what, safe);
}

/*  run report: exit 0 when the period is final, 1 when bills are
    unnotified or work is in progress (the report says which).  */
static int
s_report_exit (const char *result, const char *period)
{
    char err[512];
    bool final = false;
    if (bf_billctl_report_final (result, &final, err, sizeof err) != 0) {
        fprintf (stderr, "billctl: %s\n", err);
        return BF_BILLCTL_EXIT_FAILED;
    }
    if (final)
        return BF_BILLCTL_EXIT_OK;
    fprintf (stderr,
             "billctl: %s is not final: bills without a final notice, or work still in"
             " progress\n",
             period ? period : "the period");
    return BF_BILLCTL_EXIT_FAILED;
}

/*  Shows an answer and returns the exit code it means.  */
static int
s_outcome (s_billctl_t *self, const Billflow__CommandReply *reply, const char *command_id,
           const char *target, const char *verb, bool query)
{
    const bf_billctl_opts_t *opts = self->opts;
    char err[512], what[128];
    int status = reply->status;
    if (!query && opts->json && bf_billctl_reply_json (stdout, reply, err, sizeof err) != 0
        && status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK) {
        fprintf (stderr, "billctl: %s\n", err);
        return BF_BILLCTL_EXIT_FAILED;
    }
    if (reply->replayed && status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED)
        fprintf (stderr, "billctl: note: command %s was stored earlier and is still waiting\n",
                 command_id);
    else if (reply->replayed)
        fprintf (stderr,
                 "billctl: note: this is the stored result of an earlier execution of command"
                 " %s; nothing ran again\n",
                 command_id);
    switch (status) {
        case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK:
            if (query) {
                int rc = opts->json
                             ? bf_billctl_result_json (stdout, reply->result, err, sizeof err)
                             : bf_billctl_render (stdout, verb, reply->result, err, sizeof err);
                if (rc != 0) {
                    fprintf (stderr, "billctl: %s\n", err);
                    return BF_BILLCTL_EXIT_FAILED;
                }
                if (!strcmp (verb, "run.report"))
                    return s_report_exit (reply->result, opts->period);
            } else if (!opts->json) {
                printf ("%s: OK\n", verb);
                if (reply->result && *reply->result
                    && bf_billctl_render (stdout, verb, reply->result, err, sizeof err) != 0) {
                    fprintf (stderr, "billctl: %s\n", err);
                    return BF_BILLCTL_EXIT_FAILED;
                }
            }
            return BF_BILLCTL_EXIT_OK;
        case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED:
            if (bf_client_queued (reply)) {
                fprintf (stderr,
                         "billctl: command %s is stored and %s is working on it, but its outcome"
                         " did not come in time.\n"
                         "billctl: check it with `billctl commands --id %s` (or repeat this"
                         " command with --command-id %s)\n",
                         command_id, target, command_id, command_id);
                return BF_BILLCTL_EXIT_ACCEPTED;
            }
            fprintf (stderr,
                     "billctl: command %s is stored, but %s is not running: it runs when the"
                     " service returns.\n"
                     "billctl: check its outcome with `billctl commands --id %s` (or repeat this"
                     " command with --command-id %s)\n",
                     command_id, target, command_id, command_id);
            return BF_BILLCTL_EXIT_ACCEPTED;
        case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED:
            if (bf_client_busy (reply)) {
                s_print_error ("control is busy",
                               reply->error + strlen ("busy:") + (reply->error[5] == ' '));
                fprintf (stderr,
                         "billctl: control refused %s for now (too many requests from this key,"
                         " or too many reports queued); nothing was stored or run. Try again"
                         " later%s%s\n",
                         verb, query ? "" : " with --command-id ", query ? "" : command_id);
                return BF_BILLCTL_EXIT_BUSY;
            }
            snprintf (what, sizeof what, "%s failed", verb);
            s_print_error (what, reply->error);
            if (reply->retryable && !query)
                fprintf (stderr,
                         "billctl: it failed for a passing reason and nothing was recorded: it"
                         " can be repeated with --command-id %s\n",
                         command_id);
            else if (reply->retryable)
                fprintf (stderr, "billctl: it failed for a passing reason; try again\n");
            return BF_BILLCTL_EXIT_FAILED;
        case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED:
            snprintf (what, sizeof what, "control rejected %s", verb);
            s_print_error (what, reply->error);
            return BF_BILLCTL_EXIT_REJECTED;
        default:
            fprintf (stderr, "billctl: control answered %s with an unknown status (%d)\n", verb,
                     status);
            return BF_BILLCTL_EXIT_FAILED;
    }
}

/*  One command or query, start to end.  */
static int
s_once (s_billctl_t *self)
{
    const bf_billctl_opts_t *opts = self->opts;
    char fresh[BF_UUID_LEN + 1];
    const char *command_id = opts->command_id;
    if (!command_id) {
        if (!bf_uuid_v4 (fresh)) {
            fprintf (stderr, "billctl: cannot make a command id (libsodium)\n");
            return BF_BILLCTL_EXIT_SETUP;
        }
        command_id = fresh;
    }
    if (!opts->query)
        fprintf (stderr, "command id: %s (repeat with --command-id %s to get its outcome)\n",
                 command_id, command_id);
    Billflow__CommandReply *reply = NULL;
    int rc = s_ask (self, command_id, opts->req_target, opts->req_verb, opts->nargs, opts->keys,
                    opts->values, opts->query, &reply);
    if (rc != 0)
        return rc;
    rc = s_outcome (self, reply, command_id, opts->req_target, opts->req_verb, opts->query);
    billflow__command_reply__free_unpacked (reply, NULL);
    return rc;
}

/*  Sleeps ms, in slices; false when interrupted.  */
static bool
s_sleep (int ms)
{
    int64_t deadline = zclock_mono () + ms;
    while (!zsys_interrupted) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return true;
        zclock_sleep (left < 100 ? (int)left : 100);
    }
    return false;
}

static int
s_watch (s_billctl_t *self)
{
    const bf_billctl_opts_t *opts = self->opts;
    bool tty = !opts->json && isatty (STDOUT_FILENO);
    int drawn = 0; /* lines of the last drawing, to redraw over */
    bool said_waiting = false;
    while (true) {
        char command_id[BF_UUID_LEN + 1];
        if (!bf_uuid_v4 (command_id)) {
            fprintf (stderr, "billctl: cannot make a command id (libsodium)\n");
            return BF_BILLCTL_EXIT_SETUP;
        }
        Billflow__CommandReply *reply = NULL;
        int rc = s_ask (self, command_id, opts->req_target, opts->req_verb, opts->nargs, opts->keys,
                        opts->values, true, &reply);
        if (rc != 0)
            return rc;
        if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK) {
            if (reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED
                && reply->retryable) {
                /*  The database is away for a moment: keep watching.  */
                s_print_error ("run.show failed for now (still watching)", reply->error);
                billflow__command_reply__free_unpacked (reply, NULL);
                drawn = 0;
                if (!s_sleep (opts->interval_ms))
                    return BF_BILLCTL_EXIT_INTERRUPTED;
                continue;
            }
            rc = s_outcome (self, reply, command_id, opts->req_target, opts->req_verb, true);
            billflow__command_reply__free_unpacked (reply, NULL);
            return rc;
        }
        char err[512];
        bool exists, final, failed;
        if (bf_billctl_run_state (reply->result, &exists, &final, &failed, err, sizeof err) != 0) {
            fprintf (stderr, "billctl: %s\n", err);
            billflow__command_reply__free_unpacked (reply, NULL);
            return BF_BILLCTL_EXIT_FAILED;
        }
        if (opts->json) {
            if (bf_billctl_result_json (stdout, reply->result, err, sizeof err) != 0) {
                fprintf (stderr, "billctl: %s\n", err);
                billflow__command_reply__free_unpacked (reply, NULL);
                return BF_BILLCTL_EXIT_FAILED;
            }
            if (!exists && !said_waiting)
                fprintf (stderr, "billctl: no run for %s yet; waiting for it to start\n",
                         opts->period);
        } else {
            if (tty && drawn > 0)
                printf ("\033[%dA", drawn);
            int lines = bf_billctl_render_progress (stdout, reply->result, opts->period, tty, NULL,
                                                    NULL, err, sizeof err);
            if (lines < 0) {
                fprintf (stderr, "billctl: %s\n", err);
                billflow__command_reply__free_unpacked (reply, NULL);
                return BF_BILLCTL_EXIT_FAILED;
            }
            if (tty)
                printf ("\033[J");
            drawn = tty ? lines : 0;
            fflush (stdout);
        }
        said_waiting = !exists;
        if (final) {
            if (!opts->json) {
                printf ("\n");
                bf_billctl_render (stdout, "run.show", reply->result, err, sizeof err);
                printf ("\nrun of %s is final: %s\n", opts->period,
                        failed ? "the run FAILED" : "settled and notified");
            }
            billflow__command_reply__free_unpacked (reply, NULL);
            return failed ? BF_BILLCTL_EXIT_FAILED : BF_BILLCTL_EXIT_OK;
        }
        billflow__command_reply__free_unpacked (reply, NULL);
        if (!s_sleep (opts->interval_ms)) {
            fprintf (stderr, "billctl: interrupted\n");
            return BF_BILLCTL_EXIT_INTERRUPTED;
        }
    }
}

static int
s_keygen (const bf_billctl_opts_t *opts)
{
    char key[BF_CURVE_KEY_TXT], err[512];
    if (bf_curve_keygen (opts->dir, opts->name, key, err, sizeof err) != 0) {
        fprintf (stderr, "billctl: keygen: %s\n", err);
        return BF_BILLCTL_EXIT_SETUP;
    }
    printf ("public key file:  %s/%s.key\n"
            "secret key file:  %s/%s.key_secret  (mode 0600: keep it to yourself; give it to\n"
            "                  billctl with --key or control.client_key_file)\n"
            "public key:       %s\n"
            "\n"
            "Add this line to control's allowed-keys file (control.allowed_keys). It grants\n"
            "the least role, viewer (queries only); change it to operator (commands and\n"
            "queries), service, or console (the web console's key, which acts on behalf of\n"
            "its people: docs/control.md) only for a key that needs it:\n"
            "\n"
            "%s  viewer  %s\n",
            opts->dir, opts->name, opts->dir, opts->name, key, opts->name, key);
    return BF_BILLCTL_EXIT_OK;
}

int
main (int argc, char **argv)
{
    bf_billctl_opts_t opts;
    char err[512];
    if (bf_billctl_parse (argc, argv, &opts, err, sizeof err) != 0)
        return s_usage (&opts, err);
    if (opts.help) {
        bf_billctl_help (stdout, opts.cmd);
        return BF_BILLCTL_EXIT_OK;
    }
    bf_log_init ("billctl", BF_LOG_INFO, false);
    if (opts.cmd == BF_BILLCTL_KEYGEN)
        return s_keygen (&opts);
    if (bf_billctl_load_files (&opts, err, sizeof err) != 0) {
        bf_billctl_free_files (&opts);
        return s_usage (&opts, err);
    }

    s_billctl_t self = { .opts = &opts };
    int rc = s_configure (&self);
    if (rc != 0) {
        bf_config_destroy (&self.config);
        bf_billctl_free_files (&opts);
        return rc;
    }
    /*  CZMQ's handler sets zsys_interrupted on SIGINT/SIGTERM; bf_client
        and the watch loop look at it.  */
    zsys_init ();
    rc = s_connect (&self);
    if (rc == 0)
        rc = opts.cmd == BF_BILLCTL_RUN_WATCH ? s_watch (&self) : s_once (&self);
    bf_client_destroy (&self.client);
    bf_config_destroy (&self.config);
    bf_billctl_free_files (&opts);
    return rc;
}
