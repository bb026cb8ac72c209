/*  bf_migrate — applies the numbered SQL migrations of db/ (compiled into
    every binary by bf-embed) in order, once each.

    Safe to run twice and from several processes at once: each migration runs
    in its own transaction under a transaction-level advisory lock, and is
    recorded in schema_migration with a checksum of its text. A recorded
    migration whose text has since changed is an error: migrations are never
    edited once released, only added.  */

#ifndef BF_MIGRATE_H_INCLUDED
#define BF_MIGRATE_H_INCLUDED

#include <libpq-fe.h>
#include <stddef.h>

typedef struct {
    const char *name; /* file name, "001_reference.sql" */
    const char *sql;
} bf_migration_t;

extern const bf_migration_t bf_migrations[];
extern const size_t bf_migrations_count;

/*  Applies pending migrations. Returns the number applied (0 when the
    database was current), or -1 after logging what failed.  */
int bf_migrate (PGconn *conn);

/*  Name of the newest migration applied in the database, into out; returns
    0, or -1 when none is or the query fails.  */
int bf_migrate_current (PGconn *conn, char *out, size_t outsize);

#endif
