/*  bf_testcycle — the end checks of a billing cycle under faults.  */

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "bf_backoff.h"
#include "bf_testcycle.h"
#include "bf_testdb.h"

void
bf_cycle_log (const char *tag, int64_t started, const char *format, ...)
{
    printf ("# %s +%.1fs: ", tag, (double)(bf_stack_now_ms () - started) / 1000.0);
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    printf ("\n");
    fflush (stdout);
}

uint64_t
bf_cycle_random (uint64_t *state)
{
    return bf_backoff_random (state);
}

void
bf_cycle_generate (bf_stack_t *s, int subscribers, const char *period, uint64_t seed)
{
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (s->db, &out,
                                          "generate --subscribers %d --period %s --seed %llu",
                                          subscribers, period, (unsigned long long)seed),
                      0);
    free (out);
}

void
bf_cycle_start_services (bf_stack_t *s, bool two_controls)
{
    bf_proc_start (&s->control[0]);
    assert_int_equal (bf_stack_wait_active (s, 0, 15000), 0);
    if (two_controls)
        bf_proc_start (&s->control[1]);
    bf_proc_start (&s->settle[0]);
    bf_proc_start (&s->settle[1]);
    bf_proc_start (&s->notify);
    assert_int_equal (bf_stack_wait_registered (s, "settle", 15000), 0);
    assert_int_equal (bf_stack_wait_registered (s, "notify", 15000), 0);
}

int
bf_cycle_checksum (PGconn *conn, const char *period, char *out, size_t outsize)
{
    char sql[1024];
    snprintf (sql, sizeof sql,
              "SELECT count (*) || ':' || sum (hashtextextended (x, 7)::numeric) FROM ("
              " SELECT 'b' || subscriber_id || ',' || total || ',' || due_date || ',' || line_count"
              "  AS x FROM bill WHERE period = '%s'"
              " UNION ALL"
              " SELECT 'l' || subscriber_id || ',' || line_no || ',' || code || ',' || amount"
              "  FROM bill_line WHERE period = '%s') t",
              period, period);
    return bf_testdb_text (conn, sql, out, outsize) == 0 ? 0 : -1;
}

int
bf_cycle_reference (int subscribers, uint64_t seed, const char *period, char *out, size_t outsize)
{
    char *db = bf_testdb_create (true), *text = NULL;
    if (!db) {
        fprintf (stderr, "bf_cycle: no database for the clean run\n");
        return -1;
    }
    int rc = bf_testdb_billdata (db, &text, "generate --subscribers %d --period %s --seed %llu",
                                 subscribers, period, (unsigned long long)seed);
    free (text);
    if (rc == 0)
        rc = bf_testdb_settle_once (db, period);
    if (rc == 0) {
        PGconn *conn = bf_testdb_connect (db);
        rc = conn ? bf_cycle_checksum (conn, period, out, outsize) : -1;
        PQfinish (conn);
    }
    bf_testdb_drop (&db);
    if (rc != 0)
        fprintf (stderr, "bf_cycle: the clean run of %s failed\n", period);
    return rc == 0 ? 0 : -1;
}

int64_t
bf_cycle_scalar (bf_stack_t *s, const char *sql)
{
    if (PQstatus (s->conn) != CONNECTION_OK)
        PQreset (s->conn);
    if (PQstatus (s->conn) != CONNECTION_OK)
        return -1;
    int64_t value = bf_testdb_scalar (s->conn, sql);
    /*  The session may have died under the query: once more on a new one.  */
    if (value < 0 && PQstatus (s->conn) != CONNECTION_OK) {
        PQreset (s->conn);
        value = bf_testdb_scalar (s->conn, sql);
    }
    return value;
}


/*  The contact patterns of the G9 scan, for grep -E: an email, and a
    Korean mobile number with or without dashes, standing alone (not inside
    a longer run of letters, digits or dashes, such as a UUID's hex).  */
#define S_EMAIL_RE "[A-Za-z0-9._%%+-]{2,}@[A-Za-z0-9-]+\\.[A-Za-z.]{2,}"
#define S_PHONE_RE "(^|[^0-9A-Za-z_-])01[016789]-?[0-9]{3,4}-?[0-9]{4}([^0-9A-Za-z_-]|$)"

/*  G9: no service log in the stack's directory holds a contact in clear.
    The patterns are tried first on lines that must and must not match, so
    that a pattern that finds nothing (or everything) fails here; the
    matches, if any, are printed with their file and line (the test's own
    generated data).  */
static void
s_scan_logs_for_contacts (bf_stack_t *s, const char *tag)
{
    char command[2048];
    snprintf (command, sizeof command,
              "printf '%%s\\n' 'to 010-1234-5678.' 'phone=01098765432 ok' 'mail kim.lee@example.com'"
              " | grep -E -c -e '" S_EMAIL_RE "' -e '" S_PHONE_RE "' | grep -qx 3"
              " && ! printf '%%s\\n' 'request 3f2a0190-4123-4567-8abc-019123456789'"
              " 'id 7b01912345678c' 'h***@example.com 010-****-5678 at 1796647714161'"
              " | grep -E -q -e '" S_EMAIL_RE "' -e '" S_PHONE_RE "'");
    if (system (command) != 0)
        fail_msg ("the contact patterns of the log scan do not tell contacts from other text");
    snprintf (command, sizeof command,
              "cd '%s' && grep -E -n -o -e '" S_EMAIL_RE "' -e '" S_PHONE_RE "'"
              " control-*.log settle-*.log notify.log > contacts-found.txt",
              s->dir);
    int found = system (command);
    printf ("# %s: service logs scanned for contacts in clear: %s\n", tag,
            found == 0 ? "FOUND" : WEXITSTATUS (found) == 1 ? "none" : "scan failed");
    fflush (stdout);
    if (found == 0) {
        snprintf (command, sizeof command, "head -20 '%s/contacts-found.txt' | sed 's/^/# found: /'",
                  s->dir);
        if (system (command) != 0)
            printf ("# (could not list the matches)\n");
    }
    assert_true (found != -1 && WIFEXITED (found) && WEXITSTATUS (found) == 1);
}

/*  bf_cycle_scalar of a query formatted from its arguments (periods and
    channel names: the tests' own constants).  */
static int64_t s_scalar_of (bf_stack_t *s, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int64_t
s_scalar_of (bf_stack_t *s, const char *format, ...)
{
    char sql[512];
    va_list args;
    va_start (args, format);
    vsnprintf (sql, sizeof sql, format, args);
    va_end (args);
    return bf_cycle_scalar (s, sql);
}

bool
bf_cycle_done (bf_stack_t *s, const char *period)
{
    if (s_scalar_of (s,
                     "SELECT count (*) FROM settlement_run WHERE period = '%s'"
                     " AND state = 'COMPLETED'",
                     period)
        < 1)
        return false;
    if (s_scalar_of (s,
                     "SELECT count (*) FROM bill b WHERE b.period = '%s' AND NOT EXISTS (SELECT 1"
                     " FROM delivery d WHERE d.period = b.period AND d.bill_id = b.bill_id)",
                     period)
        != 0)
        return false;
    return bf_cycle_scalar (s, "SELECT count (*) FROM delivery WHERE state NOT IN"
                               " ('DELIVERED', 'FAILED', 'CANCELLED', 'HELD')")
           == 0;
}

json_t *
bf_cycle_mock_report (bf_stack_t *s)
{
    char *text = bf_stack_mock_report (s);
    assert_non_null (text);
    json_error_t jerr;
    json_t *report = json_loads (text, 0, &jerr);
    if (!report)
        fprintf (stderr, "bf_cycle: the mock's report does not parse: %s\n", jerr.text);
    free (text);
    assert_non_null (report);
    return report;
}

int64_t
bf_cycle_delivered (bf_stack_t *s, const char *channel)
{
    return s_scalar_of (
        s, "SELECT count (*) FROM delivery WHERE channel = '%s' AND state = 'DELIVERED'", channel);
}

static int64_t
s_accepted (json_t *report, const char *channel)
{
    return json_integer_value (json_object_get (json_object_get (report, channel), "accepted"));
}

void
bf_cycle_verify (bf_stack_t *s, const char *period, const char *reference, const char *tag)
{
    char result[96];
    /*  G1/G7: the same bills as a clean run.  */
    assert_int_equal (bf_cycle_checksum (s->conn, period, result, sizeof result), 0);
    printf ("# %s: checksum %s (clean run %s)\n", tag, result, reference);
    assert_string_equal (result, reference);
    /*  G3: every bill's event reached notify, and every notice is final.  */
    assert_true (bf_cycle_done (s, period));
    /*  G4: a failed email ends with an SMS for the same bill (its fallback,
        or the subscriber's own SMS notice).  */
    assert_int_equal (bf_cycle_scalar (s, "SELECT count (*) FROM delivery e"
                                          " WHERE e.channel = 'EMAIL' AND e.state = 'FAILED'"
                                          " AND NOT EXISTS (SELECT 1 FROM delivery m"
                                          " WHERE m.bill_id = e.bill_id AND m.channel = 'SMS'"
                                          " AND m.state IN ('DELIVERED', 'FAILED', 'HELD'))"),
                      0);
    assert_int_equal (
        s_scalar_of (s, "SELECT count (*) FROM settlement_run WHERE period = '%s'", period), 1);
    /*  G4: the provider accepted exactly one message per delivered notice,
        and no recipient got two on a channel.  */
    json_t *report = bf_cycle_mock_report (s);
    int64_t email = bf_cycle_delivered (s, "EMAIL");
    int64_t sms = bf_cycle_delivered (s, "SMS");
    int64_t push = bf_cycle_delivered (s, "PUSH");
    int64_t accepted_email = s_accepted (report, "email");
    int64_t accepted_sms = s_accepted (report, "sms") + s_accepted (report, "lms");
    int64_t accepted_push = s_accepted (report, "push");
    printf ("# %s: delivered email %lld sms %lld push %lld; provider accepted %lld / %lld / %lld\n",
            tag, (long long)email, (long long)sms, (long long)push, (long long)accepted_email,
            (long long)accepted_sms, (long long)accepted_push);
    /*  Email has no idempotency at the mail server (the mock delivers a
        resent Message-ID again): a second copy may only come from a send
        whose attempt a kill kept from being recorded (claimed attempts
        without their row), or from a possibly delivered attempt (UNKNOWN)
        resent under the policy; at most that many.  */
    int64_t email_copies = json_integer_value (
        json_object_get (json_object_get (report, "email"), "duplicate_deliveries"));
    int64_t window = bf_cycle_scalar (
        s, "SELECT coalesce (sum (d.attempts - (SELECT count (*) FROM delivery_attempt a"
           " WHERE a.delivery_id = d.id)), 0) + (SELECT count (*) FROM delivery_attempt"
           " WHERE outcome = 'UNKNOWN') FROM delivery d WHERE d.channel = 'EMAIL'");
    printf ("# %s: email: %lld second copies, %lld sends in the possibly delivered window\n", tag,
            (long long)email_copies, (long long)window);
    assert_int_equal (accepted_email - email_copies, email);
    assert_true (email_copies <= window);
    assert_int_equal (accepted_sms, sms);
    assert_int_equal (accepted_push, push);
    const char *channels[] = { "email", "sms", "lms", "push" };
    for (size_t i = 0; i < 4; i++) {
        json_t *ch = json_object_get (report, channels[i]);
        int64_t over = json_integer_value (json_object_get (ch, "recipients_over_one_total"));
        if (i == 0)
            assert_true (over <= email_copies);
        else
            assert_int_equal (over, 0);
    }
    json_decref (report);
    /*  G9: no service log holds a contact in clear (masked forms are
        "h***@example.com" and "010-****-5678").  */
    s_scan_logs_for_contacts (s, tag);
}
