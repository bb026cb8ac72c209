/*  bd_csv — streaming RFC 4180 reader and writer (UTF-8, comma, CRLF or LF).

    The reader hands out one record at a time; memory stays flat whatever
    the file size. Fields may be quoted; quoted fields may contain commas,
    doubled quotes and newlines. An empty field (quoted or not) is NULL for
    the caller: fields[i] == NULL. Errors carry the physical line and column
    (both 1-based) where the problem is, and the reader resynchronises at the
    next line so a caller can report every bad row of a file.  */

#ifndef BD_CSV_H_INCLUDED
#define BD_CSV_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct bd_csv_t bd_csv_t;

/*  Reader over a file (NULL + reason in err when it cannot be opened) or
    over memory (the buffer must outlive the reader).  */
bd_csv_t *bd_csv_open (const char *path, char *err, size_t errsize);
bd_csv_t *bd_csv_new_mem (const char *data, size_t len);
void bd_csv_destroy (bd_csv_t **self_p);

/*  Reads the next record. Returns 1 and sets *fields / *count (valid until
    the next call; fields[i] NUL-terminated or NULL when empty), 0 at end of
    input, -1 on a malformed record (see bd_csv_error / _error_line /
    _error_column; the next call continues after it). A record longer than
    the reader's limit (1 MiB) or with more than 256 fields is malformed.
    A blank line at the very end of the input is not a record.  */
int bd_csv_next (bd_csv_t *self, char ***fields, size_t *count);

/*  Physical line on which the record last returned starts.  */
long bd_csv_line (const bd_csv_t *self);

const char *bd_csv_error (const bd_csv_t *self);
long bd_csv_error_line (const bd_csv_t *self);
long bd_csv_error_column (const bd_csv_t *self);

/*  Writes one record: fields[i] NULL or "" -> empty field; fields that
    contain a comma, quote, CR or LF are quoted with quotes doubled.
    Ends the record with "\n". Returns 0, or -1 on a write error.  */
int bd_csv_write (FILE *out, const char *const *fields, size_t count);

#endif
