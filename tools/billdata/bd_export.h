/*  bd_export — `billdata export-bills`: a period's bills and bill lines as
    the CSV files of docs/data-format.md, streamed with flat memory from one
    consistent snapshot. Each file is written under a temporary name, synced
    and renamed, so a reader never sees half a file.  */

#ifndef BD_EXPORT_H_INCLUDED
#define BD_EXPORT_H_INCLUDED

#include <libpq-fe.h>
#include <stdint.h>

typedef struct {
    int64_t bills;
    int64_t lines;
} bd_export_stats_t;

/*  Exports period (YYYY-MM) into DIR/bills.csv and DIR/bill_lines.csv.
    Returns 0; 1 when the period is malformed or has no bills (logged);
    -1 on a database or file error (logged; no final file is left behind).  */
int bd_export_bills (PGconn *conn, const char *period, const char *dir, bd_export_stats_t *stats);

#endif
