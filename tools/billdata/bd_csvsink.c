/*  bd_csvsink — a row sink that writes one CSV file per table.

    begin creates (or truncates) DIR/<file> and writes the canonical header;
    row appends one record; end closes the file. One table is open at a
    time, so a single 1 MiB stdio buffer serves every file. The first
    failure on a table is logged; the sink remembers that something failed
    so bd_csv_sink_destroy can report it even when the caller ignored a
    return value.  */

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bd_tables.h"
#include "bd_csv.h"
#include "bf_log.h"
#include "bf_secfile.h"

#define S_BUFFER_SIZE (1u << 20)

typedef struct {
    bd_sink_t sink; /* first: the public handle points here */
    char *dir;
    char *path;   /* file of the open table */
    FILE *file;   /* NULL between end and the next begin */
    char *buffer; /* stdio buffer of the open file */
    bd_table_t table;
    bool table_failed; /* a failure on the open table was logged */
    bool failed;       /* any write, close or create failed */
} s_csv_sink_t;

/*  Closes the open file. Returns 0, or -1 (logged) when buffered data
    could not be written out.  */
static int
s_close (s_csv_sink_t *self)
{
    if (!self->file)
        return 0;
    int rc = fclose (self->file);
    self->file = NULL;
    if (rc != 0) {
        if (!self->table_failed)
            bf_error ("%s: close failed: %s", self->path, strerror (errno));
        self->failed = true;
    }
    rc = rc != 0 || self->table_failed ? -1 : 0;
    free (self->path);
    self->path = NULL;
    return rc;
}

static void
s_write_failed (s_csv_sink_t *self)
{
    if (!self->table_failed)
        bf_error ("%s: write failed: %s", self->path, strerror (errno));
    self->table_failed = true;
    self->failed = true;
}

static int
s_begin (bd_sink_t *sink, bd_table_t table)
{
    s_csv_sink_t *self = (s_csv_sink_t *)sink;
    assert (table < BD_TABLE_COUNT);
    assert (!self->file); /* end the previous table first */

    const char *file = bd_tables[table].file;
    size_t size = strlen (self->dir) + 1 + strlen (file) + 1;
    self->path = (char *)malloc (size);
    if (!self->path) {
        bf_error ("%s/%s: out of memory", self->dir, file);
        self->failed = true;
        return -1;
    }
    snprintf (self->path, size, "%s/%s", self->dir, file);

    self->table = table;
    self->table_failed = false;
    /*  The files hold contacts: 0600 (bf_secfile.h).  */
    char why[600];
    self->file = bf_secfile_create (self->path, why, sizeof why);
    if (!self->file) {
        bf_error ("%s", why);
        self->failed = true;
        free (self->path);
        self->path = NULL;
        return -1;
    }
    if (setvbuf (self->file, self->buffer, _IOFBF, S_BUFFER_SIZE) != 0)
        bf_warn ("%s: cannot set a write buffer; writing unbuffered", self->path);
    if (bd_csv_write (self->file, bd_tables[table].cols, bd_tables[table].ncols)) {
        s_write_failed (self);
        return -1;
    }
    return 0;
}

static int
s_row (bd_sink_t *sink, const char *const *fields)
{
    s_csv_sink_t *self = (s_csv_sink_t *)sink;
    if (!self->file || self->table_failed)
        return -1; /* begin failed (logged) */
    if (bd_csv_write (self->file, fields, bd_tables[self->table].ncols)) {
        s_write_failed (self);
        return -1;
    }
    return 0;
}

static int
s_end (bd_sink_t *sink, bd_table_t table)
{
    s_csv_sink_t *self = (s_csv_sink_t *)sink;
    if (!self->file)
        return -1; /* begin failed (logged) */
    assert (table == self->table);
    (void)table;
    return s_close (self);
}

/*  Sink writing into the existing directory dir. Returns NULL (logged)
    when dir is not a directory or memory runs out.  */
bd_sink_t *
bd_csv_sink_new (const char *dir)
{
    assert (dir);
    struct stat st;
    if (stat (dir, &st) != 0) {
        bf_error ("%s: %s", dir, strerror (errno));
        return NULL;
    }
    if (!S_ISDIR (st.st_mode)) {
        bf_error ("%s: not a directory", dir);
        return NULL;
    }
    s_csv_sink_t *self = (s_csv_sink_t *)calloc (1, sizeof (s_csv_sink_t));
    if (self) {
        self->dir = strdup (dir);
        self->buffer = (char *)malloc (S_BUFFER_SIZE);
    }
    if (!self || !self->dir || !self->buffer) {
        bf_error ("%s: out of memory", dir);
        if (self) {
            free (self->dir);
            free (self->buffer);
            free (self);
        }
        return NULL;
    }
    self->sink.begin = s_begin;
    self->sink.row = s_row;
    self->sink.end = s_end;
    return &self->sink;
}

/*  Closes a table left open, frees the sink and sets *self_p to NULL.
    Returns -1 when any create, write or close of this sink failed, else 0
    (also when *self_p is already NULL).  */
int
bd_csv_sink_destroy (bd_sink_t **self_p)
{
    assert (self_p);
    s_csv_sink_t *self = (s_csv_sink_t *)*self_p;
    if (!self)
        return 0;
    s_close (self);
    int rc = self->failed ? -1 : 0;
    free (self->buffer);
    free (self->dir);
    free (self);
    *self_p = NULL;
    return rc;
}
