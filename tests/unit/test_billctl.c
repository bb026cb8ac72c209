/*  test_billctl — billctl's command line (bf_billctl_parse), its help, its
    renderers (tables, progress lines, JSON output) on sample documents of
    every shape control sends (services/control/bf_query.h) and on
    malformed ones, and the built binary itself against an endpoint where
    nothing listens (exit 5, quickly, with a clear message). The binary's
    path comes from BF_BILLCTL (tests/meson.build sets it).  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bf_billctl.h"
#include "bf_client.h"
#include "bf_date.h"
#include "bf_log.h"
#include "bf_testutil.h"

extern char **environ;

//  --------------------------------------------------------------------------
//  Helpers

/*  A NULL-terminated argv with "billctl" in front.  */
// clang-format off
#define ARGV(...) ((char *[]){ "billctl", __VA_ARGS__, NULL })
// clang-format on

static int
s_argc (char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

static int
s_parse (char **argv, bf_billctl_opts_t *opts, char *err, size_t errsize)
{
    return bf_billctl_parse (s_argc (argv), argv, opts, err, errsize);
}

/*  Parses argv, expecting a usage error whose reason contains needle.  */
static void
s_usage_error (char **argv, const char *needle)
{
    bf_billctl_opts_t opts;
    char err[512] = "";
    int rc = s_parse (argv, &opts, err, sizeof err);
    if (rc != BF_BILLCTL_EXIT_USAGE)
        fail_msg ("expected a usage error containing '%s', got rc %d", needle, rc);
    if (!strstr (err, needle))
        fail_msg ("usage error '%s' does not contain '%s'", err, needle);
}

static void
s_ok (char **argv, bf_billctl_opts_t *opts)
{
    char err[512] = "";
    int rc = s_parse (argv, opts, err, sizeof err);
    if (rc != 0)
        fail_msg ("unexpected usage error: %s", err);
}

static const char *
s_arg (const bf_billctl_opts_t *opts, const char *key)
{
    for (size_t i = 0; i < opts->nargs; i++)
        if (!strcmp (opts->keys[i], key))
            return opts->values[i];
    return NULL;
}

typedef struct {
    FILE *file;
    char *text;
    size_t size;
} memout_t;

static void
s_mem_open (memout_t *self)
{
    self->text = NULL;
    self->size = 0;
    self->file = open_memstream (&self->text, &self->size);
    assert_non_null (self->file);
}

static char *
s_mem_close (memout_t *self)
{
    fclose (self->file);
    return self->text;
}

/*  Renders json for verb into a string (caller frees); rc into *rc.  */
static char *
s_render (const char *verb, const char *json, int *rc, char *err, size_t errsize)
{
    memout_t mem;
    s_mem_open (&mem);
    *rc = bf_billctl_render (mem.file, verb, json, err, errsize);
    return s_mem_close (&mem);
}

/*  Renders json for verb and fails unless rc is want_rc, err holds
    needle (when not NULL) and the output is text (when not NULL).  */
static void
s_render_check (const char *verb, const char *json, int want_rc, const char *needle,
                const char *text)
{
    int rc;
    char err[256] = "";
    char *out = s_render (verb, json, &rc, err, sizeof err);
    bool ok = rc == want_rc && (!needle || strstr (err, needle)) && (!text || !strcmp (out, text));
    if (!ok)
        fail_msg ("%s %s: rc %d, err '%s', output:\n%s", verb, json, rc, err, out);
    free (out);
}

static void
s_contains (const char *text, const char *needle)
{
    if (!strstr (text, needle))
        fail_msg ("output does not contain '%s':\n%s", needle, text);
}

static void
s_lacks (const char *text, const char *needle)
{
    if (strstr (text, needle))
        fail_msg ("output contains '%s':\n%s", needle, text);
}

//  --------------------------------------------------------------------------
//  Sample documents

static const char *s_run_show
    = "{\"run\":{\"run_id\":42,\"period\":\"2026-10\",\"state\":\"RUNNING\",\"rerate\":false,"
      "\"chunk_size\":1000,\"chunks_total\":100,\"chunks_done\":45,\"subscribers_done\":45000,"
      "\"bills\":44990,\"amount_total\":12345678,\"rating_errors\":2,"
      "\"command_id\":\"0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f\","
      "\"created_at\":\"2026-11-01T00:00:00Z\",\"started_at\":\"2026-11-01T00:00:01Z\","
      "\"finished_at\":null,\"seconds\":12.5},"
      "\"notices\":{\"total\":30000,\"by_state\":{\"DELIVERED\":25000,\"FAILED\":12,"
      "\"PENDING\":4000,\"HELD\":988},"
      "\"by_channel\":{\"EMAIL\":{\"DELIVERED\":20000,\"FAILED\":10},\"SMS\":{\"DELIVERED\":5000,"
      "\"FAILED\":2,\"HELD\":988}},\"fallbacks\":7,\"held_until\":\"2026-11-02T08:00:00+09:00\"},"
      "\"events\":{\"published_seq\":44990,\"ingested_seq\":44000,\"unsequenced\":true},"
      "\"rating_errors\":[{\"subscriber_id\":4200000007,\"reason\":\"no plan on 2026-10-01\"},"
      "{\"subscriber_id\":4200000009,\"reason\":\"arrears row for unknown subscriber\"}],"
      "\"final\":false}";

static const char *s_services
    = "{\"services\":[{\"service\":\"settle\",\"instance_id\":\"host-a:101:1700000000\","
      "\"pid\":101,\"version\":\"0.1.0\",\"verbs\":[\"run.start\",\"run.stop\",\"run.resume\"],"
      "\"registered_at\":\"2026-11-01T00:00:00Z\",\"last_heartbeat\":\"2026-11-01T00:10:00Z\","
      "\"age_ms\":800,\"up\":true,\"leader\":\"relay\",\"state\":{\"workers\":8}},"
      "{\"service\":\"notify\",\"instance_id\":\"host-b:202:1700000001\",\"pid\":202,"
      "\"version\":\"0.1.0\",\"verbs\":[\"dispatch.pause\"],\"registered_at\":null,"
      "\"last_heartbeat\":\"2026-11-01T00:01:00Z\",\"age_ms\":540000,\"up\":false,"
      "\"leader\":null,\"state\":{}},"
      "{\"service\":\"control\",\"instance_id\":\"ctl-1\",\"pid\":303,\"version\":null,"
      "\"verbs\":[],\"registered_at\":null,\"last_heartbeat\":\"2026-11-01T00:10:00Z\","
      "\"age_ms\":300,\"up\":true,\"leader\":true,\"state\":{}},"
      "{\"service\":\"control\",\"instance_id\":\"ctl-2\",\"pid\":304,\"version\":null,"
      "\"verbs\":[],\"registered_at\":null,\"last_heartbeat\":\"2026-11-01T00:10:00Z\","
      "\"age_ms\":400,\"up\":true,\"leader\":false,\"state\":{}}]}";

static const char *s_commands
    = "{\"commands\":[{\"command_id\":\"cron-run-start-2026-10\",\"client\":\"ops-kim\","
      "\"target\":\"settle\",\"verb\":\"run.start\",\"args\":{\"period\":\"2026-10\"},"
      "\"state\":\"DONE\",\"result\":{\"outcome\":\"started\",\"run\":null},\"error\":\"\","
      "\"received_at\":\"2026-11-01T00:00:00Z\",\"forwarded_at\":\"2026-11-01T00:00:00Z\","
      "\"completed_at\":\"2026-11-01T00:00:01Z\"},"
      "{\"command_id\":\"5a6b\",\"client\":\"ops-lee\",\"target\":\"notify\","
      "\"verb\":\"deliveries.retry\",\"args\":{\"ids\":\"1,2,3\"},\"state\":\"ACCEPTED\","
      "\"result\":null,\"error\":null,\"received_at\":\"2026-11-01T01:00:00Z\","
      "\"forwarded_at\":null,\"completed_at\":null}]}";

/*  A run.report document (services/control/bf_report.h) and its rendering.  */
static const char *s_report
    = "{\"period\":\"2026-10\",\"final\":false,\"run_state\":\"COMPLETED\",\"bills\":{\"cou"
      "nt\":1234567,\"amount_total\":45678901230,\"table_count\":1234567,\"table_amount_tot"
      "al\":45678901230,\"consistent\":true},\"runs\":[{\"run_id\":41,\"state\":\"COMPLETED"
      "\",\"rerate\":false,\"bills\":1234560,\"amount_total\":45678000000,\"rating_errors\""
      ":7,\"started_at\":\"2026-11-01T00:00:00.000Z\",\"finished_at\":\"2026-11-01T00:01:40"
      ".000Z\",\"seconds\":100.0},{\"run_id\":42,\"state\":\"COMPLETED\",\"rerate\":true,\""
      "bills\":7,\"amount_total\":901230,\"rating_errors\":0,\"started_at\":\"2026-11-02T00"
      ":00:00.000Z\",\"finished_at\":\"2026-11-02T00:00:01.500Z\",\"seconds\":1.5}],\"notic"
      "es\":{\"total\":2469140,\"finished\":2469130,\"unfinished\":10,\"by_state\":{\"DELIV"
      "ERED\":2469000,\"FAILED\":120,\"CANCELLED\":10,\"PENDING\":1,\"SENDING\":2,\"RETRY\""
      ":3,\"HELD\":4},\"by_channel\":{\"EMAIL\":{\"DELIVERED\":1234000,\"FAILED\":100,\"CAN"
      "CELLED\":10,\"PENDING\":1,\"SENDING\":2,\"RETRY\":3,\"HELD\":1},\"SMS\":{\"DELIVERED"
      "\":1235000,\"FAILED\":20,\"CANCELLED\":0,\"PENDING\":0,\"SENDING\":0,\"RETRY\":0,\"H"
      "ELD\":3},\"PUSH\":{\"DELIVERED\":0,\"FAILED\":0,\"CANCELLED\":0,\"PENDING\":0,\"SEND"
      "ING\":0,\"RETRY\":0,\"HELD\":0}}},\"fallbacks\":{\"failed_emails\":100,\"created\":9"
      "0,\"delivered\":80,\"failed\":8,\"cancelled\":0,\"unfinished\":2},\"held\":{\"count\""
      ":4,\"from\":\"2026-11-02T12:00:00.000Z\",\"until\":\"2026-11-02T23:00:00.000Z\",\"re"
      "asons\":[{\"reason\":\"quiet hours (system)\",\"count\":3},{\"reason\":null,\"count\""
      ":1}]},\"attempts\":{\"total\":2469504,\"by_channel\":{\"EMAIL\":{\"DELIVERED\":1234000,"
      "\"DUPLICATE\":5,\"TRANSIENT\":300,\"PERMANENT\":100,\"THROTTLED\":0,\"UNKNOWN\":4},"
      "\"SMS\":{\"DELIVERED\":1235000,\"DUPLICATE\":0,\"TRANSIENT\":0,\"PERMANENT\":20,"
      "\"THROTTLED\":75,\"UNKNOWN\":0},\"PUSH\":{\"DELIVERED\":0,\"DUPLICATE\":0,"
      "\"TRANSIENT\":0,\"PERMANENT\":0,\"THROTTLED\":0,\"UNKNOWN\":0}},\"by_outcome\":"
      "{\"DELIVERED\":2469000,\"DUPLICATE\":5,\"TRANSIENT\":300,\"PERMANENT\":120,"
      "\"THROTTLED\":75,\"UNKNOWN\":4}},\"possible_duplicates\":{\"notices\":4,"
      "\"delivered\":1,\"awaiting_resend\":2,\"not_resent\":1},"
      "\"unnotified\":{\"count\":1203,\"by_reason\":{\"n"
      "o delivery\":1,\"in progress\":2,\"failed without fallback\":1200},\"bills\":[{\"bil"
      "l_id\":9000000001,\"subscriber_id\":4200000007,\"reason\":\"no delivery\"},{\"bill_i"
      "d\":9000000002,\"subscriber_id\":4200000008,\"reason\":\"failed without fallback\"}]"
      "}}";

static const char *s_report_text
    = "Reconciliation report of 2026-10: NOT FINAL\n"
      "  1,203 bills without a final notice; 6 notices in progress\n"
      "\n"
      "Bills\n"
      "  bills            1,234,567\n"
      "  amount           45,678,901,230 won\n"
      "  bill table       1,234,567 bills, 45,678,901,230 won: agrees with the runs\n"
      "\n"
      "Runs\n"
      "  RUN  STATE                    BILLS    AMOUNT (WON)  ERRORS  STARTED                  "
      " FINISHED                  SECONDS\n"
      "   41  COMPLETED            1,234,560  45,678,000,000       7  2026-11-01T00:00:00.000Z "
      " 2026-11-01T00:01:40.000Z    100.0\n"
      "   42  COMPLETED (re-rate)          7         901,230       0  2026-11-02T00:00:00.000Z "
      " 2026-11-02T00:00:01.500Z      1.5\n"
      "\n"
      "Notices: 2,469,140 total, 2,469,130 finished, 10 unfinished\n"
      "  CHANNEL  DELIVERED  FAILED  CANCELLED  PENDING  SENDING  RETRY  HELD      TOTAL\n"
      "  EMAIL    1,234,000     100         10        1        2      3     1  1,234,117\n"
      "  SMS      1,235,000      20          0        0        0      0     3  1,235,023\n"
      "  PUSH             0       0          0        0        0      0     0          0\n"
      "  all      2,469,000     120         10        1        2      3     4  2,469,140\n"
      "\n"
      "Fallbacks (SMS in place of a failed email)\n"
      "  failed emails    100\n"
      "  created          90\n"
      "  delivered        80\n"
      "  failed           8\n"
      "  cancelled        0\n"
      "  unfinished       2\n"
      "\n"
      "Held: 4 notices, from 2026-11-02T12:00:00.000Z until 2026-11-02T23:00:00.000Z\n"
      "  REASON                NOTICES\n"
      "  quiet hours (system)        3\n"
      "  -                           1\n"
      "\n"
      "Attempts: 2,469,504 total\n"
      "  CHANNEL  DELIVERED  DUPLICATE  TRANSIENT  PERMANENT  THROTTLED  UNKNOWN      TOTAL\n"
      "  EMAIL    1,234,000          5        300        100          0        4  1,234,409\n"
      "  SMS      1,235,000          0          0         20         75        0  1,235,095\n"
      "  PUSH             0          0          0          0          0        0          0\n"
      "  all      2,469,000          5        300        120         75        4  2,469,504\n"
      "\n"
      "Possible duplicates (email possibly delivered: sent, no final reply)\n"
      "  notices          4\n"
      "  delivered        1\n"
      "  awaiting resend  2\n"
      "  not resent       1\n"
      "\n"
      "Unnotified bills: 1,203 (no delivery 1, in progress 2, failed without fallback 1,200)\n"
      "        BILL  SUBSCRIBER  REASON\n"
      "  9000000001  4200000007  no delivery\n"
      "  9000000002  4200000008  failed without fallback\n"
      "  (the first 2 of 1,203)\n";

//  --------------------------------------------------------------------------
//  Parsing

static void
test_parse_run_commands (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    s_ok (ARGV ("run", "start", "2026-10"), &opts);
    assert_int_equal (opts.cmd, BF_BILLCTL_RUN_START);
    assert_string_equal (opts.req_target, "settle");
    assert_string_equal (opts.req_verb, "run.start");
    assert_false (opts.query);
    assert_int_equal (opts.nargs, 1);
    assert_string_equal (s_arg (&opts, "period"), "2026-10");

    s_ok (ARGV ("run", "stop", "2026-10"), &opts);
    assert_string_equal (opts.req_verb, "run.stop");
    s_ok (ARGV ("run", "resume", "1999-01"), &opts);
    assert_string_equal (opts.req_verb, "run.resume");

    s_ok (ARGV ("run", "status"), &opts);
    assert_string_equal (opts.req_verb, "runs.list");
    assert_string_equal (opts.req_target, "control");
    assert_true (opts.query);
    assert_int_equal (opts.nargs, 0);
    s_ok (ARGV ("run", "status", "2026-10"), &opts);
    assert_string_equal (opts.req_verb, "run.show");
    assert_string_equal (s_arg (&opts, "period"), "2026-10");

    s_ok (ARGV ("run", "watch", "2026-10"), &opts);
    assert_string_equal (opts.req_verb, "run.show");
    assert_int_equal (opts.interval_ms, BF_BILLCTL_INTERVAL_DEFAULT);
    s_ok (ARGV ("run", "watch", "2026-10", "--interval", "250"), &opts);
    assert_int_equal (opts.interval_ms, 250);
    s_ok (ARGV ("run", "watch", "--interval=5000", "2026-10"), &opts);
    assert_int_equal (opts.interval_ms, 5000);
}

/*  Unix seconds of a UTC date and time.  */
static int64_t
s_utc (int year, int month, int day, int hour, int minute)
{
    return (int64_t)bf_day_from_ymd (year, month, day) * 86400 + hour * 3600 + minute * 60;
}

/*  The previous period of now in tz, which must be want.  */
static void
s_previous (int64_t now, const char *tz, const char *want)
{
    char out[8] = "", err[256] = "";
    if (bf_billctl_previous_period (now, tz, out, err, sizeof err) != 0)
        fail_msg ("previous period of %lld in %s: %s", (long long)now, tz, err);
    if (strcmp (out, want))
        fail_msg ("previous period of %lld in %s: %s, not %s", (long long)now, tz, out, want);
}

static void
test_previous_month (void **state)
{
    (void)state;
    static const struct {
        int year, month, day, hour, minute;
        const char *tz, *want;
    } cases[] = {
        //  January gives December of the year before.
        { 2027, 1, 15, 3, 0, "Asia/Seoul", "2026-12" },
        { 2027, 1, 15, 3, 0, "UTC", "2026-12" },
        { 2026, 12, 1, 0, 0, "UTC", "2026-11" },
        { 2028, 3, 1, 0, 0, "UTC", "2028-02" },
        //  Midnight of 1 November in Seoul is 15:00 UTC on 31 October:
        //  Seoul's month has turned, UTC's has not.
        { 2026, 10, 31, 15, 0, "Asia/Seoul", "2026-10" },
        { 2026, 10, 31, 14, 59, "Asia/Seoul", "2026-09" },
        { 2026, 10, 31, 15, 0, "UTC", "2026-09" },
        { 2026, 10, 31, 15, 0, "+09:00", "2026-10" },
        //  New Year in Seoul, still 31 December in UTC.
        { 2026, 12, 31, 15, 0, "Asia/Seoul", "2026-12" },
        { 2026, 12, 31, 15, 0, "UTC", "2026-11" },
        { 2027, 1, 1, 2, 0, "-05:00", "2026-11" },
        { 1970, 1, 1, 0, 0, "-01:00", "1969-11" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_previous (s_utc (cases[i].year, cases[i].month, cases[i].day, cases[i].hour,
                           cases[i].minute),
                    cases[i].tz, cases[i].want);
    //  The tz database, when it is installed: New York in summer time
    //  (UTC-4) is still in June at 03:00 UTC on 1 July.
    if (access ("/usr/share/zoneinfo/America/New_York", R_OK) == 0 && !getenv ("TZDIR")) {
        s_previous (s_utc (2026, 7, 1, 3, 0), "America/New_York", "2026-05");
        s_previous (s_utc (2026, 7, 1, 5, 0), "America/New_York", "2026-06");
        s_previous (s_utc (2026, 10, 31, 15, 0), "Asia/Tokyo", "2026-10");
    }
    char out[8], err[256];
    static const char *const bad[] = { "+15:00", "+9", "+09:60", "09:00", "Mars/Olympus_Mons",
                                       "../etc/passwd", "/etc/localtime", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (bf_billctl_previous_period (s_utc (2026, 11, 1, 0, 0), bad[i], out, err, sizeof err)
            != -1)
            fail_msg ("--tz '%s' accepted", bad[i]);
        assert_non_null (strstr (err, "--tz"));
    }

    //  The command line: PERIOD from the clock, the id from PERIOD.
    bf_billctl_opts_t opts;
    char want[8], id[32];
    assert_int_equal (bf_billctl_previous_period ((int64_t)time (NULL), "Asia/Seoul", want, err,
                                                  sizeof err),
                      0);
    snprintf (id, sizeof id, "run-start-%s", want);
    s_ok (ARGV ("run", "start", "--previous-month"), &opts);
    assert_string_equal (opts.req_verb, "run.start");
    assert_string_equal (s_arg (&opts, "period"), want);
    assert_string_equal (opts.command_id, id);
    s_ok (ARGV ("run", "start", "--previous-month", "--tz", "Asia/Seoul", "--command-id", "c-1"),
          &opts);
    assert_string_equal (s_arg (&opts, "period"), want);
    assert_string_equal (opts.command_id, "c-1");
    s_ok (ARGV ("--json", "run", "start", "--previous-month", "--tz=UTC"), &opts);
    assert_true (opts.json);
    assert_non_null (strstr (opts.command_id, "run-start-"));
    //  A period given explicitly keeps a fresh id.
    s_ok (ARGV ("run", "start", "2026-10"), &opts);
    assert_null (opts.command_id);
    s_usage_error (ARGV ("run", "start", "2026-10", "--previous-month"), "not both");
    s_usage_error (ARGV ("run", "start", "--tz", "UTC"), "--tz applies to --previous-month");
    s_usage_error (ARGV ("run", "start", "--previous-month", "--tz", "Mars/Olympus_Mons"),
                   "no such zone");
    s_usage_error (ARGV ("run", "stop", "--previous-month"), "does not apply");
    s_usage_error (ARGV ("run", "start", "--previous-month", "--command-id", "bad id"),
                   "--command-id must be");
    s_usage_error (ARGV ("run", "start", "--previous-month", "--previous-month"), "given twice");
}

static void
test_parse_run_report (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    s_ok (ARGV ("run", "report", "2026-10"), &opts);
    assert_int_equal (opts.cmd, BF_BILLCTL_RUN_REPORT);
    assert_string_equal (opts.req_target, "control");
    assert_string_equal (opts.req_verb, "run.report");
    assert_true (opts.query);
    assert_int_equal (opts.nargs, 1);
    assert_string_equal (s_arg (&opts, "period"), "2026-10");
    s_ok (ARGV ("--json", "run", "report", "2026-10"), &opts);
    assert_true (opts.json);

    s_usage_error (ARGV ("run", "report"), "run report needs a PERIOD");
    s_usage_error (ARGV ("run", "report", "2026-13"), "'2026-13' is not a period");
    s_usage_error (ARGV ("run", "report", "2026-10", "2026-11"), "unexpected argument '2026-11'");
    s_usage_error (ARGV ("run", "report", "2026-10", "--limit", "5"), "does not apply");
    s_usage_error (ARGV ("run", "report", "2026-10", "--command-id", "x"), "not to the query");

    memout_t mem;
    s_mem_open (&mem);
    bf_billctl_help (mem.file, BF_BILLCTL_RUN_REPORT);
    char *text = s_mem_close (&mem);
    s_contains (text, "usage: billctl run report PERIOD");
    s_contains (text, "run.report");
    s_contains (text, "Exit 0 when final; 1 when bills are unnotified");
    free (text);
    s_mem_open (&mem);
    bf_billctl_help (mem.file, BF_BILLCTL_NONE);
    text = s_mem_close (&mem);
    s_contains (text, "run report PERIOD");
    s_contains (text, "run report: the period is not final");
    free (text);
}

static void
test_parse_bad_period (void **state)
{
    (void)state;
    s_usage_error (ARGV ("run", "start", "2026-13"), "'2026-13' is not a period");
    s_usage_error (ARGV ("run", "start", "2026-1"), "not a period");
    s_usage_error (ARGV ("run", "stop", "October"), "not a period");
    s_usage_error (ARGV ("run", "status", "2026-10-01"), "not a period");
    s_usage_error (ARGV ("run", "watch", "26-10"), "not a period");
    s_usage_error (ARGV ("notify", "status", "x"), "not a period");
    s_usage_error (ARGV ("notify", "failures", "2026-00"), "not a period");
    s_usage_error (ARGV ("run", "start"), "needs a PERIOD");
    s_usage_error (ARGV ("run", "resume"), "needs a PERIOD");
    s_usage_error (ARGV ("run", "watch"), "needs a PERIOD");
}

static void
test_parse_notify (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    s_ok (ARGV ("notify", "pause"), &opts);
    assert_string_equal (opts.req_target, "notify");
    assert_string_equal (opts.req_verb, "dispatch.pause");
    s_ok (ARGV ("notify", "resume"), &opts);
    assert_string_equal (opts.req_verb, "dispatch.resume");

    s_ok (ARGV ("notify", "retry", "--run", "42"), &opts);
    assert_string_equal (opts.req_verb, "deliveries.retry");
    assert_int_equal (opts.nargs, 1);
    assert_string_equal (s_arg (&opts, "run_id"), "42");
    s_ok (ARGV ("notify", "retry", "--ids", "1,2,3"), &opts);
    assert_string_equal (s_arg (&opts, "ids"), "1,2,3");
    assert_null (s_arg (&opts, "run_id"));

    s_usage_error (ARGV ("notify", "retry"), "needs --run ID or --ids");
    s_usage_error (ARGV ("notify", "retry", "--run", "4", "--ids", "1"), "not both");
    s_usage_error (ARGV ("notify", "retry", "--run", "0"), "--run must be");
    s_usage_error (ARGV ("notify", "retry", "--run", "-3"), "--run must be");
    s_usage_error (ARGV ("notify", "retry", "--run", "4x"), "--run must be");
    s_usage_error (ARGV ("notify", "retry", "--ids", "1,,2"), "--ids must be");
    s_usage_error (ARGV ("notify", "retry", "--ids", "1,2,"), "--ids must be");
    s_usage_error (ARGV ("notify", "retry", "--ids", "1, 2"), "--ids must be");
    s_usage_error (ARGV ("notify", "retry", "--ids", "0"), "--ids must be");
    s_usage_error (ARGV ("notify", "retry", "--ids", "99999999999999999999"), "--ids must be");
    s_usage_error (ARGV ("notify", "retry", "--run"), "needs a value");

    s_ok (ARGV ("notify", "status"), &opts);
    assert_string_equal (opts.req_verb, "deliveries.summary");
    assert_int_equal (opts.nargs, 0);
    s_ok (ARGV ("notify", "failures", "2026-10", "--channel", "sms", "--limit", "100"), &opts);
    assert_string_equal (opts.req_verb, "deliveries.failures");
    assert_string_equal (s_arg (&opts, "period"), "2026-10");
    assert_string_equal (s_arg (&opts, "channel"), "SMS");
    assert_string_equal (s_arg (&opts, "limit"), "100");
    s_usage_error (ARGV ("notify", "failures", "--channel", "FAX"), "--channel must be");
    s_usage_error (ARGV ("notify", "failures", "--limit", "0"), "--limit must be");
    s_usage_error (ARGV ("notify", "failures", "--limit", "501"), "--limit must be");
    s_usage_error (ARGV ("notify", "failures", "--limit", "ten"), "--limit must be");
}

static void
test_parse_templates_and_schedule (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    s_ok (ARGV ("run", "schedule", "2026-10", "--at", "2026-11-03T10:00"), &opts);
    assert_string_equal (opts.req_target, "notify");
    assert_string_equal (opts.req_verb, "run.schedule");
    assert_false (opts.query);
    assert_string_equal (s_arg (&opts, "period"), "2026-10");
    assert_string_equal (s_arg (&opts, "at"), "2026-11-03T10:00");
    s_usage_error (ARGV ("run", "schedule", "2026-10"), "needs --at");
    s_usage_error (ARGV ("run", "schedule", "2026-10", "--at", "2026-11-03 10:00"),
                   "--at must be YYYY-MM-DDTHH:MM");
    s_usage_error (ARGV ("run", "schedule", "2026-10", "--at", "2026-11-31T10:00"),
                   "--at must be");
    s_usage_error (ARGV ("run", "schedule", "2026-10", "--at", "2026-11-03T24:00"),
                   "--at must be");
    s_usage_error (ARGV ("run", "schedule", "--at", "2026-11-03T10:00"), "needs a PERIOD");
    s_ok (ARGV ("run", "unschedule", "2026-10"), &opts);
    assert_string_equal (opts.req_verb, "run.unschedule");
    assert_int_equal (opts.nargs, 1);
    s_usage_error (ARGV ("run", "unschedule", "2026-10", "--at", "2026-11-03T10:00"),
                   "does not apply");

    s_ok (ARGV ("templates", "list"), &opts);
    assert_string_equal (opts.req_verb, "templates.list");
    assert_true (opts.query);
    assert_int_equal (opts.nargs, 0);
    s_ok (ARGV ("templates", "list", "--channel", "sms"), &opts);
    assert_string_equal (s_arg (&opts, "channel"), "SMS");
    s_ok (ARGV ("templates", "show", "--channel", "EMAIL", "--version", "2"), &opts);
    assert_string_equal (opts.req_verb, "template.show");
    assert_string_equal (s_arg (&opts, "version"), "2");
    s_usage_error (ARGV ("templates", "show", "--channel", "EMAIL"), "needs --version");
    s_usage_error (ARGV ("templates", "show", "--version", "2"), "needs --channel");
    s_usage_error (ARGV ("templates", "show", "--channel", "FAX", "--version", "2"),
                   "--channel must be");
    s_usage_error (ARGV ("templates", "show", "--channel", "SMS", "--version", "0"),
                   "--version must be");
    s_ok (ARGV ("templates", "preview", "--channel", "SMS", "--bill", "202610000123", "--version",
                "1"),
          &opts);
    assert_string_equal (opts.req_verb, "template.preview");
    assert_string_equal (s_arg (&opts, "bill_id"), "202610000123");
    s_usage_error (ARGV ("templates", "preview", "--channel", "SMS", "--version", "1"),
                   "needs --bill");
    s_usage_error (ARGV ("templates", "preview", "--channel", "SMS", "--bill", "7"), "one of them");
    s_usage_error (ARGV ("templates", "preview", "--channel", "SMS", "--bill", "7", "--version",
                         "1", "--body", "x.txt"),
                   "not both");
    s_usage_error (ARGV ("templates", "preview", "--channel", "SMS", "--bill", "7", "--subject",
                         "x"),
                   "needs --body");
    s_ok (ARGV ("templates", "publish", "--channel", "push", "--subject", "제목", "--body",
                "push.txt", "--command-id", "tpl-1"),
          &opts);
    assert_string_equal (opts.req_verb, "template.publish");
    assert_false (opts.query);
    assert_string_equal (opts.command_id, "tpl-1");
    assert_string_equal (s_arg (&opts, "channel"), "PUSH");
    assert_string_equal (s_arg (&opts, "subject"), "제목");
    assert_null (s_arg (&opts, "body")); /* read by bf_billctl_load_files */
    s_usage_error (ARGV ("templates", "publish", "--channel", "PUSH", "--body", "x.txt"),
                   "needs --subject");
    s_usage_error (ARGV ("templates", "list", "--version", "1"), "does not apply");

    /*  The files: read into the request, or refused by name.  */
    char *dir = bf_testutil_tmpdir ("billctl_files");
    assert_non_null (dir);
    char path[600];
    snprintf (path, sizeof path, "%s/push.txt", dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("{{total}}원", file);
    fclose (file);
    char err[512] = "";
    s_ok (ARGV ("templates", "publish", "--channel", "PUSH", "--subject", "s", "--body", path),
          &opts);
    assert_int_equal (bf_billctl_load_files (&opts, err, sizeof err), 0);
    assert_string_equal (s_arg (&opts, "body"), "{{total}}원");
    bf_billctl_free_files (&opts);
    unlink (path);
    s_ok (ARGV ("templates", "publish", "--channel", "PUSH", "--subject", "s", "--body", path),
          &opts);
    assert_int_equal (bf_billctl_load_files (&opts, err, sizeof err), BF_BILLCTL_EXIT_USAGE);
    assert_non_null (strstr (err, "cannot be read"));
    bf_billctl_free_files (&opts);
    bf_testutil_rmdir (&dir);
}

static void
test_render_templates (void **state)
{
    (void)state;
    int rc;
    char err[256];
    char *text = s_render ("templates.list",
                           "{\"templates\":[{\"channel\":\"SMS\",\"purpose\":\"BILL_ISSUED\","
                           "\"version\":2,\"active\":true,\"subject\":\"[빌플로우] 안내\","
                           "\"created_at\":\"2026-11-01T00:00:00.000Z\",\"published_by\":\"tpl-1\","
                           "\"client\":\"ops-kim\"},{\"channel\":\"SMS\",\"version\":1,"
                           "\"active\":false,\"published_by\":null,\"client\":null}]}",
                           &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "CHANNEL  VERSION  ACTIVE  PUBLISHED");
    s_contains (text, "ops-kim");
    s_contains (text, "tpl-1");
    free (text);
    text = s_render ("template.show",
                     "{\"channel\":\"SMS\",\"version\":2,\"active\":true,\"subject\":\"제목\","
                     "\"body\":\"첫 줄\\n둘째 줄 010-1234-5678\",\"body_html\":null,"
                     "\"short_body\":\"짧게\"}",
                     &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "body:\n    첫 줄\n    둘째 줄 010-****-5678\n");
    s_contains (text, "body_html:\n    -\n");
    free (text);
    text = s_render ("template.preview",
                     "{\"channel\":\"EMAIL\",\"version\":1,\"draft\":false,\"bill_id\":7,"
                     "\"sent_as\":\"EMAIL\",\"lines\":3,\"preview\":\"채널: EMAIL\\n받는 사람:"
                     " h***@example.com\",\"body_html\":\"<p>x</p>\"}",
                     &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "    받는 사람: h***@example.com\n");
    s_contains (text, "body_html:\n    <p>x</p>\n");
    free (text);
    s_render_check ("template.show", "{\"channel\":\"SMS\"}", -1, "no \"body\"", NULL);
    s_render_check ("template.preview", "{\"channel\":\"SMS\"}", -1, "no \"preview\"", NULL);
    text = s_render ("run.show",
                     "{\"run\":{\"run_id\":1,\"period\":\"2026-10\",\"state\":\"COMPLETED\"},"
                     "\"schedule\":{\"at\":\"2026-11-03T10:00\",\"release_at\":"
                     "\"2026-11-03T01:00:00.000Z\",\"command_id\":\"s-1\"},\"final\":false}",
                     &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "scheduled        not before 2026-11-03T10:00 local"
                      " (2026-11-03T01:00:00.000Z), by s-1");
    free (text);
}

static void
test_parse_queries (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    s_ok (ARGV ("services"), &opts);
    assert_string_equal (opts.req_verb, "services.list");
    assert_true (opts.query);

    s_ok (ARGV ("commands", "--id", "abc", "--state", "DONE", "--target", "settle", "--limit", "5"),
          &opts);
    assert_string_equal (opts.req_verb, "commands.list");
    assert_string_equal (s_arg (&opts, "command_id"), "abc");
    assert_string_equal (s_arg (&opts, "state"), "DONE");
    assert_string_equal (s_arg (&opts, "target"), "settle");
    assert_string_equal (s_arg (&opts, "limit"), "5");
    s_usage_error (ARGV ("commands", "--target", "billing"), "--target must be");
    s_usage_error (ARGV ("commands", "--state", "SLEEPING"), "--state must be");
    s_usage_error (ARGV ("commands", "--id", "a b"), "--id must be");
    s_ok (ARGV ("commands", "--state", "failed"), &opts);
    assert_string_equal (s_arg (&opts, "state"), "FAILED");
    s_usage_error (ARGV ("audit", "--actor", "kim park"), "--actor must be");
    s_usage_error (ARGV ("audit", "--id", ""), "--id must be");

    s_ok (ARGV ("audit", "--actor", "ops-kim", "--id", "x1", "--limit", "3"), &opts);
    assert_string_equal (opts.req_verb, "audit.list");
    assert_string_equal (s_arg (&opts, "actor"), "ops-kim");
    assert_string_equal (s_arg (&opts, "command_id"), "x1");
    assert_string_equal (s_arg (&opts, "limit"), "3");
    /*  A console's person (issue 15).  */
    s_ok (ARGV ("audit", "--actor", "console/kim"), &opts);
    assert_string_equal (s_arg (&opts, "actor"), "console/kim");
    s_usage_error (ARGV ("audit", "--actor", "console/"), "--actor must be");
    s_usage_error (ARGV ("audit", "--actor", "web/kim"), "--actor must be");
}

/*  commands and audit filter by actor, verb, state and time, and page
    with --before (issue 15, page 7): each flag is checked as control
    checks it and sent as control's argument.  */
static void
test_parse_list_filters (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    s_ok (ARGV ("commands", "--actor", "console/kim", "--verb", "run.start", "--state", "done",
                "--target", "settle", "--since", "2026-11-01", "--until",
                "2026-11-02T09:00:00+09:00", "--before", "c-17", "--limit", "50", "--id", "c-1"),
          &opts);
    assert_string_equal (opts.req_verb, "commands.list");
    assert_int_equal (opts.nargs, 9);
    assert_string_equal (s_arg (&opts, "actor"), "console/kim");
    assert_string_equal (s_arg (&opts, "verb"), "run.start");
    assert_string_equal (s_arg (&opts, "state"), "DONE");
    assert_string_equal (s_arg (&opts, "since"), "2026-11-01");
    assert_string_equal (s_arg (&opts, "until"), "2026-11-02T09:00:00+09:00");
    assert_string_equal (s_arg (&opts, "before_id"), "c-17");
    assert_string_equal (s_arg (&opts, "limit"), "50");

    s_ok (ARGV ("audit", "--actor", "ops-kim", "--verb", "dispatch.pause", "--state", "Refused",
                "--since", "2026-11-01T00:00:00Z", "--until", "2026-11-01T00:00:00.5Z", "--before",
                "1234", "--limit", "3", "--id", "x1"),
          &opts);
    assert_string_equal (opts.req_verb, "audit.list");
    assert_int_equal (opts.nargs, 8);
    assert_string_equal (s_arg (&opts, "state"), "refused");
    assert_string_equal (s_arg (&opts, "verb"), "dispatch.pause");
    assert_string_equal (s_arg (&opts, "since"), "2026-11-01T00:00:00Z");
    assert_string_equal (s_arg (&opts, "until"), "2026-11-01T00:00:00.5Z");
    assert_string_equal (s_arg (&opts, "before_id"), "1234");
    assert_null (s_arg (&opts, "target"));

    s_usage_error (ARGV ("commands", "--actor", "kim park"), "--actor must be");
    s_usage_error (ARGV ("commands", "--verb", "run.begin"), "--verb must be a verb");
    s_usage_error (ARGV ("audit", "--verb", "run.start\x1b[2J"), "--verb must be");
    s_usage_error (ARGV ("audit", "--state", "DELIVERED"), "--state must be received");
    s_usage_error (ARGV ("audit", "--state", "FORWARDED"), "--state must be");
    s_usage_error (ARGV ("commands", "--state", "refused"), "--state must be RECEIVED");
    s_usage_error (ARGV ("audit", "--since", "2026-11-01 09:00"), "--since must be YYYY-MM-DD");
    s_usage_error (ARGV ("commands", "--since", "yesterday"), "--since must be");
    s_usage_error (ARGV ("audit", "--until", "2026-11-01T09:00:00"), "--until must be");
    s_usage_error (ARGV ("audit", "--until", "2026-02-29"), "--until must be");
    s_usage_error (ARGV ("audit", "--since", "2026-11-02", "--until", "2026-11-01"),
                   "--since (2026-11-02) must be before --until (2026-11-01)");
    s_usage_error (
        ARGV ("commands", "--since", "2026-11-01T09:00:00+09:00", "--until", "2026-11-01"),
        "must be before --until");
    s_usage_error (ARGV ("audit", "--before", "0"), "--before");
    s_usage_error (ARGV ("audit", "--before", "c-17"), "--before");
    s_usage_error (ARGV ("commands", "--before", "a b"), "--before must be a command id");
    s_usage_error (ARGV ("audit", "--target", "settle"), "--target");
    s_usage_error (ARGV ("services", "--since", "2026-11-01"), "--since");
}

/*  --on-behalf-of NAME --as-role ROLE (issue 15): checked as control
    checks them; whether the key may send them only control knows.  */
static void
test_parse_on_behalf (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    s_ok (ARGV ("--on-behalf-of", "kim", "--as-role", "operator", "run", "start", "2026-10"),
          &opts);
    assert_string_equal (opts.on_behalf_of, "kim");
    assert_string_equal (opts.as_role, "operator");
    s_ok (ARGV ("services", "--on-behalf-of=lee", "--as-role=viewer"), &opts);
    assert_string_equal (opts.on_behalf_of, "lee");
    assert_string_equal (opts.as_role, "viewer");
    s_ok (ARGV ("services"), &opts);
    assert_null (opts.on_behalf_of);
    assert_null (opts.as_role);
    s_usage_error (ARGV ("services", "--on-behalf-of", "kim"), "go together");
    s_usage_error (ARGV ("services", "--as-role", "viewer"), "go together");
    s_usage_error (ARGV ("services", "--on-behalf-of", "kim park", "--as-role", "viewer"),
                   "--on-behalf-of must be");
    s_usage_error (ARGV ("services", "--on-behalf-of", "", "--as-role", "viewer"),
                   "--on-behalf-of must be");
    s_usage_error (ARGV ("services", "--on-behalf-of", "k\x01m", "--as-role", "viewer"),
                   "--on-behalf-of must be");
    s_usage_error (ARGV ("services", "--on-behalf-of", "kim", "--as-role", "admin"),
                   "--as-role must be operator or viewer");
    s_usage_error (ARGV ("services", "--on-behalf-of", "kim", "--as-role", "console"),
                   "--as-role must be");
    s_usage_error (ARGV ("keygen", "k", "--on-behalf-of", "kim", "--as-role", "viewer"),
                   "do not apply to keygen");
}

static void
test_parse_global_options (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    /*  Before and after the command word, both spellings.  */
    s_ok (ARGV ("--control", "tcp://a:7100,tcp://b:7100", "--timeout=500", "services", "--json",
                "--retries", "0", "--key", "ops.key_secret", "--server-key", "K", "--config",
                "billflow.conf", "--log-level", "debug"),
          &opts);
    assert_int_equal (opts.cmd, BF_BILLCTL_SERVICES);
    assert_string_equal (opts.control, "tcp://a:7100,tcp://b:7100");
    assert_string_equal (opts.timeout, "500");
    assert_string_equal (opts.retries, "0");
    assert_string_equal (opts.key_file, "ops.key_secret");
    assert_string_equal (opts.server_key, "K");
    assert_string_equal (opts.config_path, "billflow.conf");
    assert_string_equal (opts.log_level, "debug");
    assert_true (opts.json);

    s_ok (ARGV ("run", "start", "2026-10", "--command-id", "cron-run-start-2026-10"), &opts);
    assert_string_equal (opts.command_id, "cron-run-start-2026-10");
    s_ok (ARGV ("--command-id", "x", "notify", "pause"), &opts);
    assert_string_equal (opts.command_id, "x");
    s_usage_error (ARGV ("services", "--command-id", "x"), "--command-id applies to commands");
    s_usage_error (ARGV ("run", "start", "2026-10", "--command-id", "has space"), "--command-id");
    s_usage_error (ARGV ("run", "start", "2026-10", "--command-id", "a/b"), "--command-id");
    char long_id[140];
    memset (long_id, 'x', 129);
    long_id[129] = 0;
    s_usage_error (ARGV ("notify", "pause", "--command-id", long_id), "--command-id");
    long_id[128] = 0;
    s_ok (ARGV ("notify", "pause", "--command-id", long_id), &opts);
    s_ok (ARGV ("notify", "pause", "--command-id", "job:2026-10_a.b"), &opts);
    s_usage_error (ARGV ("run", "start", "2026-10", "--command-id", ""), "--command-id");
}

static void
test_parse_usage_errors (void **state)
{
    (void)state;
    s_usage_error (ARGV ("services", "--frobnicate"), "unknown option '--frobnicate'");
    s_usage_error (ARGV ("--verbose", "services"), "unknown option '--verbose'");
    s_usage_error (ARGV ("services", "-x"), "unknown option '-x'");
    //  Found by fuzz_billctl_args: the reason quotes the word, and a control
    //  character in it (a line break, an escape) shows as '?': one line.
    s_usage_error (ARGV ("notify", "retry", "-\n-run", "42"), "unknown option '-?-run'");
    s_usage_error (ARGV ("run", "start", "\x1b[2J2026-10"), "'?[2J2026-10' is not a period");
    s_usage_error (ARGV ("services", "extra"), "unexpected argument 'extra'");
    s_usage_error (ARGV ("run", "start", "2026-10", "2026-11"), "unexpected argument '2026-11'");
    s_usage_error (ARGV ("notify", "pause", "now"), "unexpected argument 'now'");
    s_usage_error (ARGV ("frobnicate"), "unknown command 'frobnicate'");
    s_usage_error (ARGV ("run", "explode"), "unknown command 'run explode'");
    s_usage_error (ARGV ("run"), "needs a subcommand");
    s_usage_error (ARGV ("--json"), "no command");
    s_usage_error (ARGV ("services", "--limit", "5"), "'--limit' does not apply");
    s_usage_error (ARGV ("run", "start", "2026-10", "--interval", "5"), "does not apply");
    s_usage_error (ARGV ("services", "--json", "--json"), "given twice");
    s_usage_error (ARGV ("services", "--json=yes"), "takes no value");
    s_usage_error (ARGV ("services", "--control"), "needs a value");
    s_usage_error (ARGV ("run", "watch", "2026-10", "--interval", "50"), "--interval must be");
    s_usage_error (ARGV ("keygen"), "needs a NAME");
    s_usage_error (ARGV ("keygen", "bad name!"), "not a key name");
    s_usage_error (ARGV ("keygen", "ops", "--json"), "--json does not apply");

    bf_billctl_opts_t opts;
    char **argv = ARGV ("keygen", "ops-kim", "--dir", "/tmp/keys");
    s_ok (argv, &opts);
    assert_int_equal (opts.cmd, BF_BILLCTL_KEYGEN);
    assert_string_equal (opts.name, "ops-kim");
    assert_string_equal (opts.dir, "/tmp/keys");
    s_ok (ARGV ("keygen", "ops-kim"), &opts);
    assert_string_equal (opts.dir, ".");
    /*  "--" ends the options.  */
    s_usage_error (ARGV ("services", "--", "--json"), "unexpected argument '--json'");
}

static void
test_help (void **state)
{
    (void)state;
    struct {
        char **argv;
        bf_billctl_cmd_t cmd;
        const char *needle;
    } cases[] = {
        { ARGV ("--help"), BF_BILLCTL_NONE, "commands:" },
        { ARGV ("-h"), BF_BILLCTL_NONE, "commands:" },
        { ARGV ("help"), BF_BILLCTL_NONE, "commands:" },
        { ARGV ("run", "start", "--help"), BF_BILLCTL_RUN_START, "run start PERIOD" },
        { ARGV ("--help", "run", "stop"), BF_BILLCTL_RUN_STOP, "run stop PERIOD" },
        { ARGV ("run", "resume", "--help"), BF_BILLCTL_RUN_RESUME, "run resume PERIOD" },
        { ARGV ("run", "status", "--help"), BF_BILLCTL_RUN_STATUS, "runs.list" },
        { ARGV ("run", "watch", "--help"), BF_BILLCTL_RUN_WATCH, "--interval" },
        { ARGV ("notify", "pause", "--help"), BF_BILLCTL_NOTIFY_PAUSE, "dispatch.pause" },
        { ARGV ("notify", "resume", "--help"), BF_BILLCTL_NOTIFY_RESUME, "dispatch.resume" },
        { ARGV ("notify", "retry", "--help"), BF_BILLCTL_NOTIFY_RETRY, "--ids" },
        { ARGV ("notify", "status", "--help"), BF_BILLCTL_NOTIFY_STATUS, "deliveries.summary" },
        { ARGV ("notify", "failures", "--help"), BF_BILLCTL_NOTIFY_FAILURES, "--channel" },
        { ARGV ("services", "--help"), BF_BILLCTL_SERVICES, "services.list" },
        { ARGV ("commands", "--help"), BF_BILLCTL_COMMANDS, "--state" },
        { ARGV ("audit", "--help"), BF_BILLCTL_AUDIT, "--actor" },
        { ARGV ("keygen", "--help"), BF_BILLCTL_KEYGEN, "allowed-keys" },
        { ARGV ("help", "notify", "retry"), BF_BILLCTL_NOTIFY_RETRY, "--run" },
        /*  --help wins over what is wrong or missing.  */
        { ARGV ("run", "start", "--help", "--frobnicate"), BF_BILLCTL_RUN_START, "PERIOD" },
        { ARGV ("run", "start", "2026-99", "--help"), BF_BILLCTL_RUN_START, "PERIOD" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_billctl_opts_t opts;
        char err[256];
        int rc = s_parse (cases[i].argv, &opts, err, sizeof err);
        assert_int_equal (rc, 0);
        assert_true (opts.help);
        assert_int_equal (opts.cmd, cases[i].cmd);
        memout_t mem;
        s_mem_open (&mem);
        bf_billctl_help (mem.file, opts.cmd);
        char *text = s_mem_close (&mem);
        s_contains (text, cases[i].needle);
        s_contains (text, "exit codes:");
        s_contains (text, "130");
        s_contains (text, "--command-id");
        free (text);
    }
}

//  --------------------------------------------------------------------------
//  Rendering

static void
test_thousands_and_scrub (void **state)
{
    (void)state;
    char out[64];
    assert_string_equal (bf_billctl_thousands (0, out, sizeof out), "0");
    assert_string_equal (bf_billctl_thousands (999, out, sizeof out), "999");
    assert_string_equal (bf_billctl_thousands (1000, out, sizeof out), "1,000");
    assert_string_equal (bf_billctl_thousands (12345678, out, sizeof out), "12,345,678");
    assert_string_equal (bf_billctl_thousands (-1234567, out, sizeof out), "-1,234,567");
    assert_string_equal (bf_billctl_thousands (INT64_MIN, out, sizeof out),
                         "-9,223,372,036,854,775,808");

    char safe[256];
    bf_billctl_scrub ("550 mailbox hong.gildong@example.com unknown.", safe, sizeof safe);
    assert_string_equal (safe, "550 mailbox h***@example.com unknown.");
    bf_billctl_scrub ("sms to 010-1234-5678 failed", safe, sizeof safe);
    assert_string_equal (safe, "sms to 010-****-5678 failed");
    bf_billctl_scrub ("to 01012345678: 429", safe, sizeof safe);
    s_lacks (safe, "12345678");
    bf_billctl_scrub ("intl +82-10-1234-5678 x", safe, sizeof safe);
    s_lacks (safe, "1234-5678");
    /*  Already masked, ids, periods, times and uuids stay as they are.  */
    const char *keep[] = {
        "h***@example.com",
        "010-****-5678",
        "subscriber 4200000007 period 2026-10",
        "2026-11-01T00:00:00Z",
        "0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f",
        "run 01 of 2026-10",
    };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        bf_billctl_scrub (keep[i], safe, sizeof safe);
        assert_string_equal (safe, keep[i]);
    }
    bf_billctl_scrub ("line\nbreak\tand\033[2Jescape", safe, sizeof safe);
    assert_null (strchr (safe, '\n'));
    assert_null (strchr (safe, '\033'));
    /*  Cut short: never a partial address.  */
    bf_billctl_scrub ("x hong.gildong@example.com", safe, 8);
    s_lacks (safe, "hong");
    assert_true (strlen (safe) < 8);
}

static void
test_render_run_show (void **state)
{
    (void)state;
    int rc;
    char err[256];
    char *text = s_render ("run.show", s_run_show, &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "Run 42 of 2026-10: RUNNING");
    s_contains (text, "45/100 (45%)");
    s_contains (text, "45,000");
    s_contains (text, "12,345,678 won");
    s_contains (text, "12.5 s");
    s_contains (text, "some not yet sequenced");
    s_contains (text, "final            no");
    s_contains (text, "Notices: 30,000 total, 7 fallbacks, held until 2026-11-02T08:00:00+09:00");
    s_contains (text, "CHANNEL  DELIVERED  FAILED  PENDING  SENDING  RETRY  HELD");
    s_contains (text, "EMAIL       20,000      10        0        0      0     0");
    s_contains (text, "SMS          5,000       2        0        0      0   988");
    s_contains (text, "all         25,000      12    4,000        0      0   988");
    s_contains (text, "Rating errors (first 2)");
    s_contains (text, "4200000007  no plan on 2026-10-01");
    free (text);

    text = s_render ("run.show", "{\"run\":null,\"final\":false}", &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "No run");
    free (text);
}

static void
test_render_report (void **state)
{
    (void)state;
    /*  The whole report, exactly.  */
    s_render_check ("run.report", s_report, 0, NULL, s_report_text);
    bool final = true;
    char err[256] = "";
    assert_int_equal (bf_billctl_report_final (s_report, &final, err, sizeof err), 0);
    assert_false (final);

    /*  Final, nothing unnotified, nothing held, no runs (a hand-made
        document: control would not call it final without a run).  */
    const char *done = "{\"period\":\"2026-09\",\"final\":true,\"run_state\":\"COMPLETED\","
                       "\"bills\":{\"count\":2,\"amount_total\":20000,\"table_count\":3,"
                       "\"table_amount_total\":30000,\"consistent\":false},\"runs\":[],"
                       "\"held\":{\"count\":0,\"from\":null,\"until\":null,\"reasons\":[]},"
                       "\"unnotified\":{\"count\":0,\"by_reason\":{},\"bills\":[]}}";
    int rc;
    char *text = s_render ("run.report", done, &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "Reconciliation report of 2026-09: FINAL\n\nBills\n");
    s_contains (text, "3 bills, 30,000 won: DIFFERS from the runs' counters");
    s_contains (text, "Runs\n  none\n");
    s_contains (text, "Held: none\n");
    s_contains (text, "Unnotified bills: none\n");
    s_lacks (text, "BILL>");
    free (text);
    assert_int_equal (bf_billctl_report_final (done, &final, err, sizeof err), 0);
    assert_true (final);

    /*  No run yet: said so under the title.  */
    text = s_render ("run.report",
                     "{\"period\":\"2026-11\",\"final\":false,\"run_state\":null,"
                     "\"unnotified\":{\"count\":0,\"bills\":[]}}",
                     &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, ": NOT FINAL\n  no run\n");
    free (text);

    /*  Not a report: an error, nothing to decide the exit code with.  */
    const struct {
        const char *json, *needle;
    } bad[] = {
        { "not json", "not JSON" },
        { "", "no result" },
        { "[1]", "not a JSON object" },
        { "{}", "no \"final\"" },
        { "{\"final\":\"yes\",\"unnotified\":{\"bills\":[]}}", "no \"final\"" },
        { "{\"final\":true}", "no \"unnotified\" bills list" },
        { "{\"final\":true,\"unnotified\":{\"bills\":{}}}", "no \"unnotified\" bills list" },
        { "{\"final\":true,\"unnotified\":[]}", "no \"unnotified\" bills list" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_render_check ("run.report", bad[i].json, -1, bad[i].needle, NULL);
        final = true;
        assert_int_equal (bf_billctl_report_final (bad[i].json, &final, err, sizeof err), -1);
        assert_false (final);
        if (!strstr (err, bad[i].needle))
            fail_msg ("report_final '%s': '%s'", bad[i].json, err);
    }
    assert_int_equal (bf_billctl_report_final (NULL, &final, err, sizeof err), -1);

    /*  The right shape with odd fields: rendered, no crash, no contact.  */
    text = s_render ("run.report",
                     "{\"final\":false,\"period\":7,\"run_state\":{},\"bills\":[],\"runs\":{},"
                     "\"notices\":{\"by_channel\":{\"EMAIL\":7,\"X\":{\"DELIVERED\":\"x\","
                     "\"FAILED\":9223372036854775807,\"CANCELLED\":9223372036854775807}},"
                     "\"by_state\":[]},\"held\":{\"count\":\"x\",\"reasons\":\"y\"},"
                     "\"attempts\":5,\"unnotified\":{\"count\":\"many\",\"by_reason\":[],"
                     "\"bills\":[1,\"x\",{},null,{\"bill_id\":1,\"reason\":"
                     "\"call 010-1234-5678\"}]}}",
                     &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "Reconciliation report of 7: NOT FINAL");
    s_contains (text, "Unnotified bills: many");
    s_contains (text, "call 010-****-5678");
    s_lacks (text, "1234-5678");
    free (text);
}

static void
test_render_services_and_commands (void **state)
{
    (void)state;
    int rc;
    char err[256];
    char *text = s_render ("services.list", s_services, &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "SERVICE  INSTANCE");
    s_contains (text, "settle   host-a:101:1700000000  101");
    s_contains (text, "run.start,run.stop,run.resume");
    s_contains (text, "DOWN");
    s_contains (text, "0.8 s");
    s_contains (text, "9 min");
    s_contains (text, "workers=8");
    /*  The leader column: settle's relay by its role, the active control,
        a standby control, and notify (no leader).  */
    s_contains (text, "LEADER");
    s_contains (text, "up    relay");
    s_contains (text, "ctl-1                  303  -        up    leader");
    s_contains (text, "ctl-2                  304  -        up    no");
    s_contains (text, "DOWN  -");
    /*  Columns line up: every row starts its second column at one place.  */
    const char *line2 = strchr (text, '\n') + 1;
    assert_int_equal (strstr (text, "INSTANCE") - text, strstr (line2, "host-a") - line2);
    free (text);

    text = s_render ("commands.list", s_commands, &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "COMMAND ID");
    s_contains (text, "cron-run-start-2026-10");
    s_contains (text, "period=2026-10");
    s_contains (text, "started");
    s_contains (text, "ACCEPTED");
    s_contains (text, "ids=1,2,3");
    free (text);

    text = s_render ("runs.list",
                     "{\"runs\":[{\"run_id\":7,\"period\":\"2026-09\",\"state\":\"COMPLETED\","
                     "\"rerate\":true,\"chunks_total\":10,\"chunks_done\":10,"
                     "\"subscribers_done\":1000000,\"bills\":999999,\"amount_total\":"
                     "45678901234,\"rating_errors\":0,\"started_at\":\"s\",\"finished_at\":\"f\","
                     "\"seconds\":61.0}]}",
                     &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "AMOUNT (WON)");
    s_contains (text, "COMPLETED (re-rate)");
    s_contains (text, "45,678,901,234");
    s_contains (text, "1,000,000");
    s_contains (text, "10/10 (100%)");
    free (text);

    text = s_render ("runs.list", "{\"runs\":[]}", &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "No runs.");
    free (text);

    text
        = s_render ("audit.list",
                    "{\"audit\":[{\"id\":1,\"at\":\"t\",\"actor\":\"ops-kim\",\"command_id\":\"c\","
                    "\"target\":\"notify\",\"verb\":\"dispatch.pause\",\"args\":{},"
                    "\"outcome\":\"OK\",\"detail\":null}]}",
                    &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "ops-kim");
    s_contains (text, "dispatch.pause");
    free (text);

    text = s_render ("deliveries.summary",
                     "{\"period\":null,\"paused\":true,\"notices\":{\"total\":3,\"by_state\":"
                     "{\"FAILED\":3},\"by_channel\":{\"PUSH\":{\"FAILED\":3}},\"fallbacks\":0,"
                     "\"held_until\":null}}",
                     &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "all periods");
    s_contains (text, "PAUSED");
    s_contains (text, "PUSH");
    free (text);

    /*  A command's result.  */
    text = s_render ("dispatch.pause", "{\"outcome\":\"paused\",\"paused\":true}", &rc, err,
                     sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "outcome");
    s_contains (text, "paused");
    s_contains (text, "yes");
    free (text);
}

static void
test_render_contacts_masked (void **state)
{
    (void)state;
    int rc;
    char err[256];
    char *text = s_render (
        "deliveries.failures",
        "{\"failures\":[{\"id\":1017,\"period\":\"2026-10\",\"bill_id\":9000000001,"
        "\"subscriber_id\":4200000007,\"channel\":\"EMAIL\",\"attempts\":5,"
        "\"last_error\":\"550 5.1.1 <hong.gildong@example.com>: user unknown\","
        "\"contact\":\"h***@example.com\",\"final_at\":\"2026-11-01T03:00:00Z\","
        "\"fallback_id\":2040},"
        "{\"id\":1018,\"period\":\"2026-10\",\"bill_id\":9000000002,\"subscriber_id\":4200000008,"
        "\"channel\":\"SMS\",\"attempts\":3,\"last_error\":\"rejected 010-9876-5432\","
        "\"contact\":\"010-9876-5432\",\"final_at\":null,\"fallback_id\":null}]}",
        &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "h***@example.com");
    s_lacks (text, "hong.gildong");
    s_lacks (text, "9876-5432");
    s_contains (text, "1017");
    s_contains (text, "LAST ERROR");
    free (text);

    memout_t mem;
    s_mem_open (&mem);
    assert_int_equal (bf_billctl_result_json (mem.file,
                                              "{\"failures\":[{\"contact\":\"kim@example.com\","
                                              "\"last_error\":\"for kim@example.com\"}]}",
                                              err, sizeof err),
                      0);
    text = s_mem_close (&mem);
    s_lacks (text, "kim@example.com");
    s_contains (text, "\"contact\":\"***\"");
    free (text);
}

static void
test_render_malformed (void **state)
{
    (void)state;
    const struct {
        const char *verb, *json, *needle;
    } bad[] = {
        { "runs.list", "not json", "not JSON" },
        { "runs.list", "", "no result" },
        { "runs.list", "[1,2]", "not a JSON object" },
        { "runs.list", "{\"runs\":{}}", "no \"runs\" list" },
        { "run.show", "{\"run\":7}", "no \"run\" object" },
        { "run.show", "{}", "no \"run\" object" },
        { "services.list", "{\"services\":\"x\"}", "no \"services\" list" },
        { "commands.list", "{\"commands\"", "not JSON" },
        { "audit.list", "{}", "no \"audit\" list" },
        { "deliveries.failures", "null", "not JSON" },
        { "deliveries.summary", "{\"paused\":1}", "no \"notices\" object" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_render_check (bad[i].verb, bad[i].json, -1, bad[i].needle, NULL);
    /*  Right shape, wrong field types: rendered without a crash.  */
    const struct {
        const char *verb, *json;
    } odd[] = {
        { "runs.list", "{\"runs\":[1,\"x\",null,{\"run_id\":\"seven\",\"chunks_total\":\"a\","
                       "\"amount_total\":1.5,\"rerate\":\"yes\"}]}" },
        { "run.show", "{\"run\":{\"state\":5,\"chunks_total\":0},\"notices\":[],\"events\":3,"
                      "\"rating_errors\":{},\"final\":\"no\"}" },
        { "run.show", "{\"run\":{},\"notices\":{\"by_state\":[],\"by_channel\":{\"EMAIL\":7,"
                      "\"SMS\":{\"WEIRD|STATE>\":\"x\"}}}}" },
        { "services.list", "{\"services\":[{\"verbs\":\"x\",\"up\":\"maybe\",\"age_ms\":-5,"
                           "\"state\":[1]}]}" },
        { "commands.list", "{\"commands\":[{\"args\":[1,2],\"result\":\"r\",\"error\":5}]}" },
        { "audit.list", "{\"audit\":[{\"args\":\"raw\",\"id\":{}}]}" },
        { "deliveries.failures", "{\"failures\":[{\"contact\":5}]}" },
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        s_render_check (odd[i].verb, odd[i].json, 0, NULL, NULL);
}

/*  Every table renderer's exact output, odd rows and empty lists included:
    the bytes an operator sees must not change when the table code does.  */
static void
test_render_tables_exact (void **state)
{
    (void)state;
    const struct {
        const char *verb, *json, *text;
    } cases[] = {
        { "services.list",
          "{\"services\":[{\"service\":\"settle\",\"pid\":101,\"verbs\":[\"run.start\","
          "\"run.stop\"],\"age_ms\":800,\"up\":true,\"state\":{\"workers\":8}},"
          "{\"service\":\"notify\",\"verbs\":[],\"age_ms\":9000000,\"up\":false,"
          "\"state\":\"idle\"},{\"verbs\":\"x\",\"up\":\"maybe\",\"age_ms\":-5,\"leader\":5,"
          "\"state\":[1]},7]}",
          "SERVICE  INSTANCE  PID  VERSION  UP    LEADER  LAST HEARTBEAT     AGE  VERBS               "
          "STATE\n"
          "settle   -         101  -        up    -       -                0.8 s  run.start,run.stop  "
          "workers=8\n"
          "notify   -           -  -        DOWN  -       -                2.5 h  -                   "
          "idle\n"
          "-        -           -  -        -     5       -               -0.0 s  x                   "
          "[1]\n"
          "-        -           -  -        -     -       -                    -  -                   "
          "-\n" },
        { "commands.list",
          "{\"commands\":[{\"command_id\":\"c-1\",\"client\":\"ops-kim\",\"target\":\"settle\","
          "\"verb\":\"run.start\",\"args\":{\"period\":\"2026-10\",\"limit\":5},"
          "\"state\":\"DONE\",\"result\":{\"outcome\":\"started\"},\"error\":\"\","
          "\"received_at\":\"r\",\"completed_at\":\"c\"},{\"command_id\":\"c-2\",\"args\":{},"
          "\"result\":null,\"error\":null},{\"args\":[1,2],\"result\":\"r\",\"error\":5},"
          "{\"result\":{\"run\":1},\"error\":\"boom\"}]}",
          "COMMAND ID  CLIENT   TARGET  VERB       ARGS                    STATE  RECEIVED  "
          "COMPLETED  OUTCOME  ERROR\n"
          "c-1         ops-kim  settle  run.start  period=2026-10 limit=5  DONE   r         "
          "c          started  -\n"
          "c-2         -        -       -          -                       -      -         "
          "-          -        -\n"
          "-           -        -       -          [1,2]                   -      -         "
          "-          r        5\n"
          "-           -        -       -          -                       -      -         "
          "-          -        boom\n" },
        { "runs.list",
          "{\"runs\":[{\"run_id\":7,\"period\":\"2026-09\",\"state\":\"COMPLETED\","
          "\"rerate\":true,\"chunks_total\":10,\"chunks_done\":3,\"subscribers_done\":1000000,"
          "\"bills\":999999,\"amount_total\":45678901234,\"rating_errors\":0,"
          "\"started_at\":\"s\",\"finished_at\":\"f\",\"seconds\":61.0},{\"run_id\":\"seven\","
          "\"chunks_total\":\"a\",\"amount_total\":1.5,\"rerate\":\"yes\"},1]}",
          "  RUN  PERIOD   STATE                    CHUNKS  SUBSCRIBERS    BILLS    AMOUNT "
          "(WON)  ERRORS  STARTED  FINISHED  SECONDS\n"
          "    7  2026-09  COMPLETED (re-rate)  3/10 (30%)    1,000,000  999,999  "
          "45,678,901,234       0  s        f            61.0\n"
          "seven  -        -                           0/0            -        -             "
          "1.5       -  -        -               -\n"
          "    -  -        -                           0/0            -        -               "
          "-       -  -        -               -\n" },
        { "audit.list",
          "{\"audit\":[{\"id\":1,\"at\":\"t\",\"actor\":\"ops-kim\",\"command_id\":\"c\","
          "\"target\":\"notify\",\"verb\":\"dispatch.pause\",\"args\":{},\"outcome\":\"OK\","
          "\"detail\":null},{\"args\":\"raw\",\"id\":{}}]}",
          "ID  AT  ACTOR    COMMAND ID  TARGET  VERB            ARGS  OUTCOME  DETAIL\n"
          " 1  t   ops-kim  c           notify  dispatch.pause  -     OK       -\n"
          "{}  -   -        -           -       -               raw   -        -\n" },
        { "deliveries.failures",
          "{\"failures\":[{\"id\":1017,\"period\":\"2026-10\",\"bill_id\":9000000001,"
          "\"subscriber_id\":4200000007,\"channel\":\"EMAIL\",\"attempts\":5,"
          "\"last_error\":\"550 <hong.gildong@example.com>: user unknown\","
          "\"contact\":\"h***@example.com\",\"final_at\":\"2026-11-01T03:00:00Z\","
          "\"fallback_id\":2040},{\"contact\":5,\"channel\":\"SMS\",\"last_error\":\"rejected "
          "010-9876-5432\"}]}",
          "  ID  PERIOD         BILL  SUBSCRIBER  CHANNEL  ATTEMPTS  CONTACT           FINAL "
          "AT              FALLBACK  LAST ERROR\n"
          "1017  2026-10  9000000001  4200000007  EMAIL           5  h***@example.com  "
          "2026-11-01T03:00:00Z      2040  550 <h***@example.com>: user unknown\n"
          "   -  -                 -           -  SMS             -  5                 "
          "-                            -  rejected 010-****-5432\n" },
        { "run.show",
          "{\"run\":{\"run_id\":42,\"period\":\"2026-10\",\"state\":\"RUNNING\","
          "\"chunks_total\":100,\"chunks_done\":45},\"notices\":{\"total\":1,"
          "\"by_state\":{\"FAILED\":1},\"by_channel\":{\"SMS\":{\"FAILED\":1}},"
          "\"fallbacks\":0},\"rating_errors\":[{\"subscriber_id\":4200000007,\"reason\":\"no "
          "plan on 2026-10-01\"},{\"reason\":5},3],\"final\":true}",
          "Run 42 of 2026-10: RUNNING\n"
          "  chunks           45/100 (45%)\n"
          "  subscribers      -\n"
          "  bills            -\n"
          "  amount           - won\n"
          "  rating errors    -\n"
          "  duration         -\n"
          "  final            yes\n"
          "\n"
          "Notices: 1 total, 0 fallbacks, held until -\n"
          "  CHANNEL  DELIVERED  FAILED  PENDING  SENDING  RETRY  HELD\n"
          "  SMS              0       1        0        0      0     0\n"
          "  all              0       1        0        0      0     0\n"
          "\n"
          "Rating errors (first 3):\n"
          "  SUBSCRIBER  REASON\n"
          "  4200000007  no plan on 2026-10-01\n"
          "           -  5\n"
          "           -  -\n" },
        { "runs.list", "{\"runs\":[]}", "No runs.\n" },
        { "services.list", "{\"services\":[]}", "No services registered.\n" },
        { "commands.list", "{\"commands\":[]}", "No commands.\n" },
        { "audit.list", "{\"audit\":[]}", "No audit entries.\n" },
        { "deliveries.failures", "{\"failures\":[]}", "No failed notices.\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_render_check (cases[i].verb, cases[i].json, 0, NULL, cases[i].text);
}

static void
test_render_progress (void **state)
{
    (void)state;
    char err[256];
    bool final = true, failed = true;
    memout_t mem;
    s_mem_open (&mem);
    int lines = bf_billctl_render_progress (mem.file, s_run_show, "2026-10", false, &final, &failed,
                                            err, sizeof err);
    char *text = s_mem_close (&mem);
    assert_int_equal (lines, 1);
    assert_false (final);
    assert_false (failed);
    s_contains (text, "2026-10 run 42 RUNNING: chunks 45/100 (45%)");
    s_contains (text, "amount 12,345,678 won");
    s_contains (text, "delivered 25,000 failed 12 pending 4,000 sending 0 retry 0 held 988");
    assert_null (strchr (text, '\033'));
    assert_int_equal (strchr (text, '\n') - text + 1, (long)strlen (text)); /* one line */
    free (text);

    s_mem_open (&mem);
    lines = bf_billctl_render_progress (mem.file, s_run_show, "2026-10", true, NULL, NULL, err,
                                        sizeof err);
    text = s_mem_close (&mem);
    assert_int_equal (lines, 6);
    s_contains (text, "\033[2K");
    s_contains (text, "[#############.................]  45%");
    s_contains (text, "held until   2026-11-02T08:00:00+09:00");
    free (text);

    s_mem_open (&mem);
    lines = bf_billctl_render_progress (mem.file, "{\"run\":null,\"final\":false}", "2026-10",
                                        false, &final, &failed, err, sizeof err);
    text = s_mem_close (&mem);
    assert_int_equal (lines, 1);
    s_contains (text, "no run for 2026-10 yet");
    free (text);

    const char *done = "{\"run\":{\"run_id\":1,\"state\":\"FAILED\"},\"final\":true}";
    s_mem_open (&mem);
    lines = bf_billctl_render_progress (mem.file, done, "2026-10", false, &final, &failed, err,
                                        sizeof err);
    free (s_mem_close (&mem));
    assert_int_equal (lines, 1);
    assert_true (final);
    assert_true (failed);

    bool exists;
    assert_int_equal (bf_billctl_run_state (done, &exists, &final, &failed, err, sizeof err), 0);
    assert_true (exists && final && failed);
    assert_int_equal (bf_billctl_run_state ("{\"run\":null,\"final\":true}", &exists, &final,
                                            &failed, err, sizeof err),
                      0);
    assert_false (exists || final || failed);
    assert_int_equal (bf_billctl_run_state ("garbage", &exists, &final, &failed, err, sizeof err),
                      -1);

    s_mem_open (&mem);
    lines = bf_billctl_render_progress (mem.file, "{\"run\":[]}", "2026-10", true, NULL, NULL, err,
                                        sizeof err);
    free (s_mem_close (&mem));
    assert_int_equal (lines, -1);
}

static void
test_reply_json (void **state)
{
    (void)state;
    Billflow__CommandReply reply;
    billflow__command_reply__init (&reply);
    reply.schema_version = 1;
    reply.command_id = (char *)"cmd-1";
    reply.status = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK;
    reply.result = (char *)"{\"outcome\":\"started\",\"run\":{\"run_id\":42}}";
    reply.replayed = 1;
    char err[256];
    memout_t mem;
    s_mem_open (&mem);
    assert_int_equal (bf_billctl_reply_json (mem.file, &reply, err, sizeof err), 0);
    char *text = s_mem_close (&mem);
    json_error_t jerr;
    json_t *doc = json_loads (text, 0, &jerr);
    assert_non_null (doc);
    assert_string_equal (json_string_value (json_object_get (doc, "command_id")), "cmd-1");
    assert_string_equal (json_string_value (json_object_get (doc, "status")), "OK");
    assert_true (json_is_true (json_object_get (doc, "replayed")));
    assert_int_equal (json_integer_value (json_object_get (
                          json_object_get (json_object_get (doc, "result"), "run"), "run_id")),
                      42);
    assert_true (json_is_null (json_object_get (doc, "error")));
    json_decref (doc);
    free (text);

    reply.status = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED;
    reply.result = (char *)"";
    reply.error = (char *)"no run for 2026-10";
    reply.replayed = 0;
    s_mem_open (&mem);
    assert_int_equal (bf_billctl_reply_json (mem.file, &reply, err, sizeof err), 0);
    text = s_mem_close (&mem);
    doc = json_loads (text, 0, &jerr);
    assert_non_null (doc);
    assert_string_equal (json_string_value (json_object_get (doc, "status")), "FAILED");
    assert_true (json_is_null (json_object_get (doc, "result")));
    assert_string_equal (json_string_value (json_object_get (doc, "error")), "no run for 2026-10");
    json_decref (doc);
    free (text);

    /*  A result that is not JSON: null, and an error.  */
    reply.status = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK;
    reply.result = (char *)"{broken";
    s_mem_open (&mem);
    assert_int_equal (bf_billctl_reply_json (mem.file, &reply, err, sizeof err), -1);
    text = s_mem_close (&mem);
    s_contains (err, "not JSON");
    doc = json_loads (text, 0, &jerr);
    assert_non_null (doc);
    assert_true (json_is_null (json_object_get (doc, "result")));
    json_decref (doc);
    free (text);

    s_mem_open (&mem);
    assert_int_equal (bf_billctl_result_json (mem.file, "{nope", err, sizeof err), -1);
    text = s_mem_close (&mem);
    assert_int_equal (strlen (text), 0);
    free (text);
    assert_string_equal (bf_client_status_name (BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED),
                         "ACCEPTED");
    assert_string_equal (bf_client_status_name (99), "UNSPECIFIED");
}

//  --------------------------------------------------------------------------
//  The binary

typedef struct {
    int status; /* exit code, or -1 */
    char out[8192];
    char err[8192];
    int64_t ms;
} run_t;

static void
s_read_all (int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read (fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = 0;
}

/*  Runs billctl with args, without BILLFLOW_* from the environment.
    Skips the test when BF_BILLCTL is not set.  */
static void
s_run_billctl (char *const *args, run_t *run)
{
    const char *path = getenv ("BF_BILLCTL");
    if (!path || !*path) {
        fprintf (stderr, "# BF_BILLCTL is not set (meson test sets it): skipped\n");
        skip ();
    }
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)path;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    char *envp[256];
    int envc = 0;
    for (char **e = environ; *e && envc < 255; e++)
        if (strncmp (*e, "BILLFLOW_", 9) != 0)
            envp[envc++] = *e;
    envp[envc] = NULL;

    int out_pipe[2], err_pipe[2];
    assert_int_equal (pipe (out_pipe), 0);
    assert_int_equal (pipe (err_pipe), 0);
    int64_t start = zclock_mono ();
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        dup2 (out_pipe[1], 1);
        dup2 (err_pipe[1], 2);
        close (out_pipe[0]);
        close (err_pipe[0]);
        close (out_pipe[1]);
        close (err_pipe[1]);
        execve (path, argv, envp);
        _exit (127);
    }
    close (out_pipe[1]);
    close (err_pipe[1]);
    /*  Small outputs: stdout first, then stderr, fits the pipe buffers.  */
    s_read_all (out_pipe[0], run->out, sizeof run->out);
    s_read_all (err_pipe[0], run->err, sizeof run->err);
    close (out_pipe[0]);
    close (err_pipe[0]);
    int status;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    run->ms = zclock_mono () - start;
    run->status = WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_binary_dead_endpoint (void **state)
{
    (void)state;
    int port;
    int holder = bf_testutil_dead_port (&port);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);

    run_t run;
    char *args[] = { "run",       "start", "2026-10",   "--control", endpoint,
                     "--timeout", "200",   "--retries", "2",         NULL };
    s_run_billctl (args, &run);
    if (run.status != BF_BILLCTL_EXIT_NO_ANSWER)
        fail_msg ("exit %d, stderr: %s", run.status, run.err);
    assert_true (run.ms < 3000);
    assert_true (run.ms >= 550);
    s_contains (run.err, "command id: ");
    s_contains (run.err, endpoint);
    s_contains (run.err, "3 attempts");
    s_contains (run.err, "may or may not have been stored");
    s_contains (run.err, "--command-id");
    assert_int_equal (strlen (run.out), 0);

    /*  The same command id, given: it is the one named.  */
    char *again[] = { "--command-id", "cron-run-start-2026-10",
                      "--control",    endpoint,
                      "--timeout",    "100",
                      "--retries",    "0",
                      "run",          "start",
                      "2026-10",      NULL };
    s_run_billctl (again, &run);
    assert_int_equal (run.status, BF_BILLCTL_EXIT_NO_ANSWER);
    s_contains (run.err, "--command-id cron-run-start-2026-10");
    s_contains (run.err, "1 attempt ");

    /*  A query says nothing was changed.  */
    char *query[]
        = { "services", "--control", endpoint, "--timeout", "100", "--retries", "1", NULL };
    s_run_billctl (query, &run);
    assert_int_equal (run.status, BF_BILLCTL_EXIT_NO_ANSWER);
    s_lacks (run.err, "command id:");
    s_contains (run.err, "changes nothing");
    close (holder);
}

static void
test_binary_exit_codes (void **state)
{
    (void)state;
    run_t run;
    char *help[] = { "--help", NULL };
    s_run_billctl (help, &run);
    assert_int_equal (run.status, 0);
    s_contains (run.out, "exit codes:");

    char *bad_period[] = { "run", "start", "2026-13", NULL };
    s_run_billctl (bad_period, &run);
    assert_int_equal (run.status, BF_BILLCTL_EXIT_USAGE);
    s_contains (run.err, "'2026-13' is not a period");
    s_contains (run.err, "usage: billctl run start PERIOD");

    char *bad_option[] = { "services", "--bogus", NULL };
    s_run_billctl (bad_option, &run);
    assert_int_equal (run.status, BF_BILLCTL_EXIT_USAGE);
    s_contains (run.err, "--bogus");

    /*  A bad value for a setting is a usage error; no endpoint is setup.  */
    char *bad_timeout[] = { "services", "--control", "tcp://127.0.0.1:1", "--timeout", "5", NULL };
    s_run_billctl (bad_timeout, &run);
    assert_int_equal (run.status, BF_BILLCTL_EXIT_USAGE);
    s_contains (run.err, "billctl.timeout_ms");

    char *no_endpoint[] = { "services", NULL };
    s_run_billctl (no_endpoint, &run);
    assert_int_equal (run.status, BF_BILLCTL_EXIT_SETUP);
    s_contains (run.err, "--control");

    char *no_key[] = { "services",
                       "--control",
                       "tcp://127.0.0.1:1",
                       "--server-key",
                       "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
                       NULL };
    s_run_billctl (no_key, &run);
    assert_int_equal (run.status, BF_BILLCTL_EXIT_SETUP);
    s_contains (run.err, "--key");

    char *missing_config[] = { "services", "--config", "/nonexistent/billflow.conf", NULL };
    s_run_billctl (missing_config, &run);
    assert_int_equal (run.status, BF_BILLCTL_EXIT_SETUP);
}

/*  subscriber find, subscriber timeline, bill show: strict arguments.  */
static void
test_parse_subscriber_and_bill (void **state)
{
    (void)state;
    bf_billctl_opts_t opts;
    s_ok (ARGV ("subscriber", "find", "--phone", "010-1234-5678"), &opts);
    assert_int_equal (opts.cmd, BF_BILLCTL_SUBSCRIBER_FIND);
    assert_string_equal (opts.req_verb, "subscriber.find");
    assert_true (opts.query);
    assert_string_equal (s_arg (&opts, "phone"), "010-1234-5678");
    assert_int_equal (opts.nargs, 1);
    s_ok (ARGV ("subscriber", "find", "--email=hong@example.com", "--json"), &opts);
    assert_string_equal (s_arg (&opts, "email"), "hong@example.com");
    s_ok (ARGV ("subscriber", "find", "--id", "1017"), &opts);
    assert_string_equal (s_arg (&opts, "subscriber_id"), "1017");
    s_ok (ARGV ("subscriber", "timeline", "1017", "--limit", "3"), &opts);
    assert_int_equal (opts.cmd, BF_BILLCTL_SUBSCRIBER_TIMELINE);
    assert_string_equal (opts.req_verb, "subscriber.timeline");
    assert_string_equal (s_arg (&opts, "subscriber_id"), "1017");
    assert_string_equal (s_arg (&opts, "limit"), "3");
    s_ok (ARGV ("bill", "show", "20417"), &opts);
    assert_int_equal (opts.cmd, BF_BILLCTL_BILL_SHOW);
    assert_string_equal (opts.req_verb, "bill.show");
    assert_string_equal (s_arg (&opts, "bill_id"), "20417");
    assert_null (opts.period);
    s_ok (ARGV ("run", "rates", "7", "--json"), &opts);
    assert_int_equal (opts.cmd, BF_BILLCTL_RUN_RATES);
    assert_string_equal (opts.req_verb, "run.rates");
    assert_string_equal (s_arg (&opts, "run_id"), "7");
    assert_null (s_arg (&opts, "limit"));
    assert_null (opts.period);

    char huge[4096];
    memset (huge, '1', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    const struct {
        char **argv;
        const char *needle;
    } bad[] = {
        { ARGV ("subscriber", "find"), "takes one of --id N, --email" },
        { ARGV ("subscriber", "find", "--id", "1", "--phone", "01012345678"), "only one" },
        { ARGV ("subscriber", "find", "--id", "-1"), "--id" },
        { ARGV ("subscriber", "find", "--id", "0"), "--id" },
        { ARGV ("subscriber", "find", "--id", "99999999999999999999"), "--id" },
        { ARGV ("subscriber", "find", "--id", "1; DROP TABLE bill"), "--id" },
        { ARGV ("subscriber", "find", "--email", "nobody"), "--email must be an email" },
        { ARGV ("subscriber", "find", "--email", "a b@example.com"), "--email must be" },
        { ARGV ("subscriber", "find", "--email", "\xc3\x28@example.com"), "--email must be" },
        { ARGV ("subscriber", "find", "--phone", "' OR 1=1 --"), "--phone must be a Korean mobile" },
        { ARGV ("subscriber", "find", "--phone", "02-123-4567"), "--phone must be" },
        { ARGV ("subscriber", "find", "--phone", huge), "--phone must be" },
        { ARGV ("subscriber", "find", "--email", huge), "--email must be" },
        { ARGV ("subscriber", "find", "--limit", "5", "--id", "1"), "does not apply" },
        { ARGV ("subscriber", "timeline"), "subscriber timeline needs an id" },
        { ARGV ("subscriber", "timeline", "-7"), "unknown option '-7'" },
        { ARGV ("subscriber", "timeline", "--", "-7"), "SUBSCRIBER_ID" },
        { ARGV ("subscriber", "timeline", "2026-10"), "SUBSCRIBER_ID" },
        { ARGV ("subscriber", "timeline", "7", "--limit", "0"), "--limit" },
        { ARGV ("subscriber", "timeline", "7", "8"), "unexpected argument '8'" },
        { ARGV ("subscriber", "timeline", "7", "--command-id", "x"), "not to the query" },
        { ARGV ("bill", "show"), "bill show needs an id" },
        { ARGV ("bill", "show", "abc"), "BILL_ID" },
        { ARGV ("bill", "show", "12", "--limit", "3"), "does not apply" },
        { ARGV ("run", "rates"), "run rates needs an id" },
        { ARGV ("run", "rates", "2026-10"), "RUN_ID" },
        { ARGV ("run", "rates", "0"), "RUN_ID" },
        { ARGV ("run", "rates", "7", "8"), "unexpected argument '8'" },
        { ARGV ("run", "rates", "7", "--limit", "3"), "does not apply" },
        { ARGV ("subscriber"), "needs a subcommand" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_usage_error (bad[i].argv, bad[i].needle);
}

static const char s_timeline[]
    = "{\"subscriber\":{\"subscriber_id\":7,\"email\":\"h***@example.com\","
      "\"phone\":\"01012345678\",\"push\":false,\"channels\":[\"EMAIL\",\"SMS\"],"
      "\"activated_on\":\"2020-01-01\",\"terminated_on\":null},"
      "\"bills\":[{\"period\":\"2026-10\",\"bill_id\":20417,\"subscriber_id\":7,\"run_id\":3,"
      "\"total\":55000,\"due_date\":\"2026-11-25\",\"line_count\":2,\"issued_at\":null,"
      "\"notices\":[{\"id\":9,\"channel\":\"SMS\",\"state\":\"DELIVERED\",\"attempts\":2,"
      "\"contact\":\"010-****-5678\",\"last_error\":null,\"attempt_log\":["
      "{\"attempt_no\":2,\"provider\":\"mock-sms\",\"outcome\":\"DELIVERED\",\"error\":null,"
      "\"finished_at\":\"2026-11-02T09:02:01.000Z\"},"
      "{\"attempt_no\":1,\"provider\":\"mock-sms\",\"outcome\":\"TRANSIENT\","
      "\"error\":\"busy, call 010-2222-3333\",\"finished_at\":\"2026-11-02T09:01:01.000Z\"}]}]}],"
      "\"more\":true}";

static const char s_bill[]
    = "{\"bill\":{\"period\":\"2026-10\",\"bill_id\":20417,\"subscriber_id\":7,\"run_id\":3,"
      "\"total\":55000,\"due_date\":\"2026-11-25\",\"line_count\":2,"
      "\"lines\":[{\"line_no\":1,\"code\":\"PLAN:5G_STD\",\"label\":\"5G 스탠다드\","
      "\"amount\":50000},{\"line_no\":2,\"code\":\"VAT\",\"label\":\"부가가치세\","
      "\"amount\":5000}],\"notices\":[]},"
      "\"subscriber\":{\"subscriber_id\":7,\"email\":null,\"phone\":\"010-****-5678\"}}";

/*  The three renderers: every figure, never a clear contact.  */
static void
test_render_subscriber_and_bill (void **state)
{
    (void)state;
    int rc;
    char err[256];
    char *text = s_render ("subscriber.find",
                           "{\"subscribers\":[{\"subscriber_id\":7,\"email\":\"hong@example.com\","
                           "\"phone\":\"010-****-5678\",\"push\":true,\"channels\":[\"SMS\"],"
                           "\"activated_on\":\"2020-01-01\",\"terminated_on\":null}]}",
                           &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "SUBSCRIBER");
    s_contains (text, "010-****-5678");
    assert_null (strstr (text, "hong@example.com")); /* a clear one is never shown */
    free (text);
    s_render_check ("subscriber.find", "{\"subscribers\":[]}", 0, NULL, "No such subscriber.\n");

    text = s_render ("subscriber.timeline", s_timeline, &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "Subscriber 7");
    s_contains (text, "h***@example.com");
    s_contains (text, "Bill 20417 of 2026-10: 55,000 won, due 2026-11-25 (run 3)");
    s_contains (text, "010-****-5678");
    s_contains (text, "TRANSIENT");
    s_contains (text, "mock-sms");
    s_contains (text, "older bills not shown");
    assert_null (strstr (text, "01012345678"));
    assert_null (strstr (text, "2222-3333"));
    free (text);
    s_render_check ("subscriber.timeline", "{\"subscriber\":null,\"bills\":[],\"more\":false}", 0,
                    NULL, "No such subscriber.\n");
    s_render_check ("subscriber.timeline", "{\"subscriber\":null}", -1, "no \"bills\" list", NULL);

    text = s_render ("bill.show", s_bill, &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text, "Bill 20417 of 2026-10: 55,000 won, due 2026-11-25");
    s_contains (text, "5G 스탠다드");
    s_contains (text, "부가가치세");
    s_contains (text, "50,000");
    s_contains (text, "55,000");
    s_contains (text, "No notices.");
    free (text);
    s_render_check ("bill.show", "{\"bill\":null,\"subscriber\":null}", 0, NULL,
                    "No such bill.\n");
    s_render_check ("bill.show", "{\"bill\":[1]}", -1, "no \"bill\" object", NULL);
}

/*  run rates: the run's line and a row per point, "gap" for unknown rates.  */
static void
test_render_rates (void **state)
{
    (void)state;
    int rc;
    char err[256];
    char *text = s_render (
        "run.rates",
        "{\"run_id\":7,\"run\":{\"period\":\"2026-10\",\"state\":\"COMPLETED\",\"bills\":12500,"
        "\"started_at\":\"2026-11-01T00:00:00.000Z\",\"finished_at\":null},\"points\":["
        "{\"t\":1.0,\"seconds\":1.0,\"bills\":2500,\"notices\":0,\"bills_per_s\":2500.0,"
        "\"notices_per_s\":0.0},"
        "{\"t\":9.5,\"seconds\":8.5,\"bills\":10000,\"notices\":400,\"bills_per_s\":null,"
        "\"notices_per_s\":null}]}",
        &rc, err, sizeof err);
    assert_int_equal (rc, 0);
    s_contains (text,
                "Run 7 of 2026-10: COMPLETED, 12,500 bills, started 2026-11-01T00:00:00.000Z");
    s_contains (text, "T (S)  SECONDS   BILLS  NOTICES  BILLS/S  NOTICES/S\n"
                      "  1.0      1.0   2,500        0   2500.0        0.0\n"
                      "  9.5      8.5  10,000      400      gap        gap\n");
    free (text);
    s_render_check ("run.rates", "{\"run_id\":9,\"run\":null,\"points\":[]}", 0, NULL,
                    "No run 9.\n");
    s_render_check ("run.rates", "{\"run_id\":9,\"points\":[]}", -1, "no \"run\"", NULL);
}


int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parse_run_commands),
        cmocka_unit_test (test_previous_month),
        cmocka_unit_test (test_parse_run_report),
        cmocka_unit_test (test_parse_bad_period),
        cmocka_unit_test (test_parse_notify),
        cmocka_unit_test (test_parse_queries),
        cmocka_unit_test (test_parse_list_filters),
        cmocka_unit_test (test_parse_on_behalf),
        cmocka_unit_test (test_parse_templates_and_schedule),
        cmocka_unit_test (test_render_templates),
        cmocka_unit_test (test_parse_global_options),
        cmocka_unit_test (test_parse_usage_errors),
        cmocka_unit_test (test_help),
        cmocka_unit_test (test_thousands_and_scrub),
        cmocka_unit_test (test_render_run_show),
        cmocka_unit_test (test_render_report),
        cmocka_unit_test (test_render_services_and_commands),
        cmocka_unit_test (test_render_contacts_masked),
        cmocka_unit_test (test_render_malformed),
        cmocka_unit_test (test_render_tables_exact),
        cmocka_unit_test (test_render_progress),
        cmocka_unit_test (test_parse_subscriber_and_bill),
        cmocka_unit_test (test_render_subscriber_and_bill),
        cmocka_unit_test (test_render_rates),
        cmocka_unit_test (test_reply_json),
        cmocka_unit_test (test_binary_dead_endpoint),
        cmocka_unit_test (test_binary_exit_codes),
    };
    if (getenv ("BF_TEST_FILTER"))
        cmocka_set_test_filter (getenv ("BF_TEST_FILTER"));
    return cmocka_run_group_tests_name ("billctl", tests, bf_testutil_quiet_setup,
                                        bf_testutil_quiet_teardown);
}
