/*  fuzz_csv — fuzz target for the CSV reader (bd_csv_new_mem/bd_csv_next),
    which reads subscriber imports. Input: the CSV bytes as they are.
    Contract checked: every record has 1..256 fields, each NULL or a
    NUL-terminated string; a malformed record has a reason and a position;
    the reader always reaches the end (no endless loop on any input).  */

#include <stdint.h>
#include <string.h>

#include "bd_csv.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    bd_csv_t *csv = bd_csv_new_mem ((const char *)data, size);
    bf_fuzz_require (csv != NULL);
    char **fields;
    size_t count;
    int rc;
    size_t records = 0;
    while ((rc = bd_csv_next (csv, &fields, &count)) != 0) {
        //  Each record or error consumes at least one byte of input.
        bf_fuzz_require (++records <= size + 1);
        if (rc == 1) {
            bf_fuzz_require (count >= 1 && count <= 256);
            for (size_t i = 0; i < count; i++)
                if (fields[i])
                    (void)strlen (fields[i]);
        } else {
            bf_fuzz_require (rc == -1);
            bf_fuzz_require (bd_csv_error (csv) && bd_csv_error (csv)[0]);
            bf_fuzz_require (bd_csv_error_line (csv) >= 1);
        }
    }
    bd_csv_destroy (&csv);
    bf_fuzz_require (csv == NULL);
    return 0;
}
