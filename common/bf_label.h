/*  bf_label — the words a bill line shows (docs/templates.md, "Line labels").

    One rule for every place that labels a line: settle writes the label
    into bill_line.label when it writes the line (db/008_content.sql), and
    notices, billdata export-bills and the console show that stored label.
    The migration's backfill of older lines spells out the same table in
    SQL. Pure functions, thread-safe.  */

#ifndef BF_LABEL_H_INCLUDED
#define BF_LABEL_H_INCLUDED

#include <stddef.h>

/*  The fixed label of a code that is not a plan or add-on ("VAT" →
    "부가가치세"), or NULL when code has none.  */
const char *bf_label_fixed (const char *code);

/*  The label of code. PLAN:<x> and ADDON:<x> show name (the catalogue's
    name of x at the time) when it is non-empty, else a generic label that
    still shows the code ("요금제 (x)", written into buf); other codes show
    their fixed label, or the code itself when there is none. Returns the
    label: a static string, name, buf, or code (also when buf is NULL or too
    small for the generic label). Never NULL; "" for a NULL code.  */
const char *bf_label_line (const char *code, const char *name, char *buf, size_t bufsize);

#endif
