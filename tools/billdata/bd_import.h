/*  bd_import — the validating loader behind `billdata import DIR` and
    `billdata generate`.

    One import is one transaction: every row is checked (types, ranges,
    enums, references, overlaps, duplicates) and, while no error has been
    seen, streamed into PostgreSQL with COPY. At the end it commits when the
    whole input was good; otherwise it rolls back and reports every bad row
    it found (up to max_errors) with file, line, column and reason.

    Rules beyond the CSV syntax (docs/data-import.md):
    - every plan assignment, add-on subscription, contract, usage, charge and
      arrears row must name a subscriber of this import's subscribers.csv;
    - plan and add-on codes must be in this import or already in the database;
    - rows whose key already exists in the database (subscriber id, plan or
      add-on code) are errors unless replace is set; with replace, each
      imported subscriber is replaced whole: its plan assignments, add-on
      subscriptions and contracts, and its usage, charges and arrears of
      every period that this import carries rows for.  */

#ifndef BD_IMPORT_H_INCLUDED
#define BD_IMPORT_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bd_tables.h"
#include "bf_pii.h"

typedef struct {
    bool replace;
    long max_errors;     /* stop reading after this many bad rows */
    const bf_pii_t *pii; /* seals contacts; not owned */
} bd_import_opts_t;

typedef struct bd_import_t bd_import_t;

/*  Opens the import's transaction on conn (which must be idle).
    NULL (logged) when the database refuses.  */
bd_import_t *bd_import_new (PGconn *conn, const bd_import_opts_t *opts);
/*  Rolls back whatever was not committed.  */
void bd_import_destroy (bd_import_t **self_p);

/*  A sink that takes rows in canonical column order; each row is numbered
    as line (rows so far + 2) of the table's file, as if it had been read
    from a CSV file with a header.  */
bd_sink_t *bd_import_sink (bd_import_t *self);

/*  Reads DIR/<file> of every table that is present (subscribers.csv is
    required), mapping each header onto the canonical columns. Returns 0,
    or -1 when reading stopped (too many errors, database failure).  */
int bd_import_dir (bd_import_t *self, const char *dir);

/*  Commits when no error was found. Returns 0 on commit, 1 when the input
    had errors (rolled back; see bd_import_report), -1 on database failure
    (rolled back).  */
int bd_import_finish (bd_import_t *self);

/*  Writes every error found, one per line: "FILE:LINE: column C: reason".  */
void bd_import_report (const bd_import_t *self, FILE *out);
long bd_import_error_count (const bd_import_t *self);

/*  Rows accepted per table, and seconds spent loading it (validation,
    transfer and the database's work, including checks at the table's end).  */
int64_t bd_import_rows (const bd_import_t *self, bd_table_t table);
double bd_import_seconds (const bd_import_t *self, bd_table_t table);

#endif
