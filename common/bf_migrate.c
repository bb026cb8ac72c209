/*  bf_migrate — applies the embedded db/ migrations in order, once each.

    A session advisory lock serialises concurrent migrators (two pods
    starting at once, or `billdata migrate` run twice); each migration then
    runs and is recorded in one transaction, so a failure leaves the database
    at the previous migration.  */

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "bf_db.h"
#include "bf_log.h"
#include "bf_migrate.h"

/*  Advisory lock key: "bfmigrat" as an integer, shared by every migrator.  */
#define S_LOCK_KEY "7089628163291660404"

static void
s_checksum (const char *sql, char out[65])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const unsigned char *)sql, strlen (sql));
    sodium_bin2hex (out, 65, digest, sizeof digest);
}

/*  Applies migration m unless it is recorded. Returns 1 when applied, 0 when
    it already was (same checksum), -1 on failure or checksum mismatch.  */
static int
s_apply (PGconn *conn, const bf_migration_t *m)
{
    char sum[65];
    s_checksum (m->sql, sum);
    if (bf_db_begin (conn) != BF_DB_OK)
        return -1;
    const char *params[] = { m->name };
    PGresult *res = bf_db_query (conn, "SELECT checksum FROM schema_migration WHERE name = $1", 1,
                                 params, PGRES_TUPLES_OK, "reading schema_migration");
    if (!res)
        goto fail;
    if (PQntuples (res) == 1) {
        bool same = strcmp (PQgetvalue (res, 0, 0), sum) == 0;
        PQclear (res);
        bf_db_rollback (conn);
        if (!same) {
            bf_error ("migrate: %s was changed after it was applied (checksum differs); "
                      "add a new migration instead of editing a released one",
                      m->name);
            return -1;
        }
        return 0;
    }
    PQclear (res);
    char what[128];
    snprintf (what, sizeof what, "migration %s", m->name);
    /*  PQexec runs the whole multi-statement file inside our transaction.  */
    if (bf_db_exec (conn, m->sql, what) != BF_DB_OK)
        goto fail;
    const char *rec[] = { m->name, sum };
    res = bf_db_query (conn, "INSERT INTO schema_migration (name, checksum) VALUES ($1, $2)", 2,
                       rec, PGRES_COMMAND_OK, "recording migration");
    if (!res)
        goto fail;
    PQclear (res);
    if (bf_db_commit (conn) != BF_DB_OK)
        goto fail;
    bf_info ("migrate: applied %s", m->name);
    return 1;
fail:
    bf_db_rollback (conn);
    return -1;
}

int
bf_migrate (PGconn *conn)
{
    if (sodium_init () < 0) {
        bf_error ("migrate: libsodium failed to initialise");
        return -1;
    }
    PGresult *res = bf_db_query (conn, "SELECT pg_advisory_lock (" S_LOCK_KEY ")", 0, NULL,
                                 PGRES_TUPLES_OK, "taking the migration lock");
    if (!res)
        return -1;
    PQclear (res);
    int applied = 0;
    if (bf_db_exec (conn,
                    "SET client_min_messages = warning;"
                    "CREATE TABLE IF NOT EXISTS schema_migration ("
                    "  name text PRIMARY KEY,"
                    "  checksum text NOT NULL,"
                    "  applied_at timestamptz NOT NULL DEFAULT now())",
                    "creating schema_migration")
        != BF_DB_OK)
        applied = -1;
    for (size_t i = 0; applied >= 0 && i < bf_migrations_count; i++) {
        int rc = s_apply (conn, &bf_migrations[i]);
        applied = rc < 0 ? -1 : applied + rc;
    }
    res = PQexec (conn, "SELECT pg_advisory_unlock (" S_LOCK_KEY ")");
    PQclear (res);
    return applied;
}

int
bf_migrate_current (PGconn *conn, char *out, size_t outsize)
{
    PGresult *res = bf_db_query (conn, "SELECT max(name) FROM schema_migration", 0, NULL,
                                 PGRES_TUPLES_OK, "reading schema_migration");
    if (!res)
        return -1;
    int rc = -1;
    if (PQntuples (res) == 1 && !PQgetisnull (res, 0, 0)) {
        snprintf (out, outsize, "%s", PQgetvalue (res, 0, 0));
        rc = 0;
    }
    PQclear (res);
    return rc;
}
