/*  bd_export — bills and lines of one period to CSV, streamed.

    PostgreSQL writes the CSV itself (COPY ... TO STDOUT, FORMAT csv), which
    quotes exactly as RFC 4180 needs; we only move the bytes to the file.
    Both files come from one REPEATABLE READ snapshot, so they agree.  */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bd_export.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_log.h"
#include "bf_secfile.h"

/*  Streams the result of a COPY (...) TO STDOUT into path (via path.tmp).
    Returns data rows written (header excluded) or -1.  */
static int64_t
s_copy_to_file (PGconn *conn, const char *sql, const char *path)
{
    char tmp[4200];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    /*  The files hold contacts: 0600 (bf_secfile.h).  */
    char why[600];
    FILE *out = bf_secfile_create (tmp, why, sizeof why);
    if (!out) {
        bf_error ("export: %s", why);
        return -1;
    }
    setvbuf (out, NULL, _IOFBF, 1 << 20);
    PGresult *res = PQexec (conn, sql);
    int rc = bf_db_check (conn, res, PGRES_COPY_OUT, "export COPY");
    PQclear (res);
    int64_t rows = -1; /* the first row is the header */
    bool write_failed = false;
    if (rc == BF_DB_OK) {
        char *buf;
        int len;
        /*  Each call returns exactly one row.  */
        while ((len = PQgetCopyData (conn, &buf, 0)) > 0) {
            if (!write_failed && fwrite (buf, 1, (size_t)len, out) != (size_t)len)
                write_failed = true;
            rows++;
            PQfreemem (buf);
        }
        res = PQgetResult (conn);
        rc = bf_db_check (conn, res, PGRES_COMMAND_OK, "export COPY");
        PQclear (res);
        while ((res = PQgetResult (conn)) != NULL)
            PQclear (res);
    }
    if (fflush (out) != 0 || fsync (fileno (out)) != 0)
        write_failed = true;
    if (fclose (out) != 0)
        write_failed = true;
    if (write_failed)
        bf_error ("export: writing %s failed: %s", tmp, strerror (errno));
    if (rc != BF_DB_OK || write_failed || rename (tmp, path) != 0) {
        if (rc == BF_DB_OK && !write_failed)
            bf_error ("export: cannot rename %s to %s: %s", tmp, path, strerror (errno));
        unlink (tmp);
        return -1;
    }
    return rows < 0 ? 0 : rows;
}

int
bd_export_bills (PGconn *conn, const char *period, const char *dir, bd_export_stats_t *stats)
{
    bf_period_t p;
    if (!period || bf_period_parse (period, &p) != 0) {
        bf_error ("export: '%s' is not a period (YYYY-MM)", period ? period : "");
        return 1;
    }
    memset (stats, 0, sizeof *stats);
    if (bf_db_exec (conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "BEGIN") != BF_DB_OK)
        return -1;
    int result = -1;
    const char *params[] = { period };
    PGresult *res = bf_db_query (
        conn,
        "SELECT EXISTS (SELECT 1 FROM bill WHERE period = $1),"
        " (SELECT state FROM settlement_run WHERE period = $1 ORDER BY run_id DESC LIMIT 1)",
        1, params, PGRES_TUPLES_OK, "checking the period");
    if (!res)
        goto done;
    bool any = strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    if (!any) {
        bf_error ("export: period %s has no bills (has it been settled?)", period);
        PQclear (res);
        result = 1;
        goto done;
    }
    if (!PQgetisnull (res, 0, 1) && strcmp (PQgetvalue (res, 0, 1), "COMPLETED") != 0)
        bf_warn ("export: the latest settlement run of %s is %s, not COMPLETED: the export "
                 "holds the bills committed so far",
                 period, PQgetvalue (res, 0, 1));
    PQclear (res);

    /*  COPY takes no parameters; the period is a validated YYYY-MM, quoted
        by libpq all the same.  */
    char *lit = PQescapeLiteral (conn, period, strlen (period));
    if (!lit) {
        char message[512];
        bf_error ("export: %s", bf_log_oneline (message, sizeof message, PQerrorMessage (conn)));
        goto done;
    }
    char sql[1024], path[4096];
    snprintf (sql, sizeof sql,
              "COPY (SELECT subscriber_id, period, total, due_date, line_count FROM bill"
              " WHERE period = %s ORDER BY subscriber_id) TO STDOUT WITH (FORMAT csv, HEADER)",
              lit);
    snprintf (path, sizeof path, "%s/bills.csv", dir);
    stats->bills = s_copy_to_file (conn, sql, path);
    if (stats->bills >= 0) {
        snprintf (sql, sizeof sql,
                  "COPY (SELECT subscriber_id, period, line_no, code, amount, label FROM bill_line"
                  " WHERE period = %s ORDER BY subscriber_id, line_no)"
                  " TO STDOUT WITH (FORMAT csv, HEADER)",
                  lit);
        snprintf (path, sizeof path, "%s/bill_lines.csv", dir);
        stats->lines = s_copy_to_file (conn, sql, path);
        if (stats->lines >= 0)
            result = 0;
        else {
            snprintf (path, sizeof path, "%s/bills.csv", dir);
            unlink (path);
        }
    }
    PQfreemem (lit);
done:
    bf_db_rollback (conn);
    return result;
}
