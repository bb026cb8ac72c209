/*  bd_tables — the CSV interface of docs/data-format.md: which files exist,
    their column names in canonical order, and the order they load in.

    The generator emits rows in canonical column order; the importer maps a
    file's header (columns in any order) onto the same order, so both feed
    one validating loader.  */

#ifndef BD_TABLES_H_INCLUDED
#define BD_TABLES_H_INCLUDED

#include <stddef.h>

typedef enum {
    BD_PLANS = 0,
    BD_ADDONS,
    BD_SUBSCRIBERS,
    BD_PLAN_ASSIGNMENTS,
    BD_ADDON_SUBSCRIPTIONS,
    BD_CONTRACTS,
    BD_USAGE,
    BD_CHARGES,
    BD_ARREARS,
    BD_TABLE_COUNT
} bd_table_t;

#define BD_MAX_COLUMNS 16

typedef struct {
    const char *file; /* "plans.csv" */
    size_t ncols;
    const char *cols[BD_MAX_COLUMNS]; /* canonical order */
} bd_table_def_t;

/*  Indexed by bd_table_t, in load order (references before referrers).  */
extern const bd_table_def_t bd_tables[BD_TABLE_COUNT];

/*  Column index of name in table t, or -1.  */
int bd_table_column (bd_table_t t, const char *name);

/*  --- Row sinks ----------------------------------------------------------
    Where generated (or parsed) rows go: CSV files in a directory, or the
    validating database loader. Tables arrive in bd_table_t order, each
    opened once; fields are in canonical order, NULL = empty.  */

typedef struct bd_sink_t bd_sink_t;
struct bd_sink_t {
    int (*begin) (bd_sink_t *self, bd_table_t table);
    int (*row) (bd_sink_t *self, const char *const *fields);
    int (*end) (bd_sink_t *self, bd_table_t table);
};

/*  A sink writing DIR/<table file> for every table (DIR must exist).
    Returns NULL with a logged reason when a file cannot be created.  */
bd_sink_t *bd_csv_sink_new (const char *dir);
/*  Closes every file. Returns 0, or -1 when a write or close failed.  */
int bd_csv_sink_destroy (bd_sink_t **self_p);

#endif
