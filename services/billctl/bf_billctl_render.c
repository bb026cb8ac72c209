/*  bf_billctl_render — billctl's tables and JSON output (bf_billctl.h).

    Every value goes through s_cell, which copes with any JSON type (so a
    field of an unexpected type prints, never crashes) and scrubs strings:
    control masks contacts already, and this is the second line of defence
    that keeps an unmasked email or phone number off the operator's screen.  */

#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bf_billctl.h"
#include "bf_client.h"
#include "bf_log.h"
#include "bf_text.h"
#include "bf_won.h"

#define S_CELL      512 /* bytes of one rendered value */
#define S_MAX_WIDTH 72  /* display columns of a table cell before it is cut */
#define S_MAX_COLS  12

//  --------------------------------------------------------------------------
//  Numbers and text

char *
bf_billctl_thousands (int64_t amount, char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return out;
    char won[BF_WON_MAX];
    bf_won_format (amount, won, sizeof won);
    snprintf (out, outsize, "%s", won);
    return out;
}

static size_t
s_append (char *out, size_t outsize, size_t o, const char *text)
{
    while (*text && o + 1 < outsize)
        out[o++] = *text++;
    return o;
}

char *
bf_billctl_scrub (const char *text, char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return out;
    /*  Contacts masked by the one masking module (bf_mask.h), which cuts
        on a character boundary and never writes half a mask; then control
        characters become spaces (a mask holds none).  */
    bf_mask_text (text, text ? strlen (text) : 0, NULL, 0, out, outsize);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return out;
}

/*  Display columns of one character (Hangul and CJK count two).  */
static size_t
s_char_width (uint32_t cp)
{
    bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF)
                || (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0xFF00 && cp <= 0xFF60);
    return wide ? 2 : 1;
}

/*  The character at text (len bytes left): its length in bytes (a
    malformed byte is one narrow character) and its display columns.  */
static size_t
s_char (const char *text, size_t len, size_t *width)
{
    uint32_t cp;
    size_t n = bf_text_utf8_decode (text, len, &cp);
    *width = n ? s_char_width (cp) : 1;
    return n ? n : 1;
}

/*  Display columns of UTF-8 text.  */
static size_t
s_width (const char *text)
{
    size_t width = 0, len = strlen (text);
    for (size_t i = 0, w; i < len; width += w)
        i += s_char (text + i, len - i, &w);
    return width;
}

/*  Cuts text (in place) to at most max display columns, ending in "...".  */
static void
s_cut (char *text, size_t max)
{
    if (s_width (text) <= max)
        return;
    size_t width = 0, len = strlen (text);
    for (size_t i = 0, w; i < len; width += w) {
        size_t n = s_char (text + i, len - i, &w);
        if (width + w > max - 3) {
            strcpy (text + i, "...");
            return;
        }
        i += n;
    }
}

//  --------------------------------------------------------------------------
//  JSON values as text

/*  A string value as safe text: contacts must come masked (anything else
    is replaced), everything else is scrubbed.  */
static char *
s_safe_string (const char *key, const char *text, char *out, size_t outsize)
{
    if (key && !strcmp (key, "contact") && !bf_mask_is_masked (text)) {
        snprintf (out, outsize, "***");
        return out;
    }
    return bf_billctl_scrub (text, out, outsize);
}

/*  Any JSON value as text: null/missing "-", booleans yes/no, objects and
    arrays compact JSON (scrubbed).  */
static char *
s_cell (const json_t *value, const char *key, char *out, size_t outsize)
{
    if (!value || json_is_null (value))
        snprintf (out, outsize, "-");
    else if (json_is_string (value))
        s_safe_string (key, json_string_value (value), out, outsize);
    else if (json_is_integer (value))
        snprintf (out, outsize, "%lld", (long long)json_integer_value (value));
    else if (json_is_real (value))
        snprintf (out, outsize, "%.1f", json_real_value (value));
    else if (json_is_boolean (value))
        snprintf (out, outsize, "%s", json_is_true (value) ? "yes" : "no");
    else {
        char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
        bf_billctl_scrub (text ? text : "?", out, outsize);
        free (text);
    }
    return out;
}

/*  A count with thousands separators (other types as s_cell).  */
static char *
s_count (const json_t *value, const char *key, char *out, size_t outsize)
{
    if (json_is_integer (value))
        return bf_billctl_thousands (json_integer_value (value), out, outsize);
    return s_cell (value, key, out, outsize);
}

static char *
s_field (const json_t *object, const char *key, char *out, size_t outsize)
{
    return s_cell (json_is_object (object) ? json_object_get (object, key) : NULL, key, out,
                   outsize);
}

static char *
s_field_count (const json_t *object, const char *key, char *out, size_t outsize)
{
    return s_count (json_is_object (object) ? json_object_get (object, key) : NULL, key, out,
                    outsize);
}

static int64_t
s_int (const json_t *object, const char *key)
{
    const json_t *value = json_is_object (object) ? json_object_get (object, key) : NULL;
    return json_is_integer (value) ? json_integer_value (value) : 0;
}

/*  "period=2026-10 limit=5" from an args object (other types as s_cell).  */
static char *
s_args (const json_t *value, const char *key, char *out, size_t outsize)
{
    if (!json_is_object (value))
        return s_cell (value, key, out, outsize);
    size_t o = 0;
    out[0] = 0;
    const char *name;
    json_t *v;
    json_object_foreach ((json_t *)value, name, v)
    {
        char cell[S_CELL], safe_name[64];
        s_cell (v, name, cell, sizeof cell);
        bf_billctl_scrub (name, safe_name, sizeof safe_name);
        if (o > 0)
            o = s_append (out, outsize, o, " ");
        o = s_append (out, outsize, o, safe_name);
        o = s_append (out, outsize, o, "=");
        o = s_append (out, outsize, o, cell);
        out[o] = 0;
    }
    if (o == 0)
        snprintf (out, outsize, "-");
    return out;
}

//  --------------------------------------------------------------------------
//  Tables

typedef struct {
    size_t ncols;
    const char *heads[S_MAX_COLS];
    char head_store[S_MAX_COLS][32];
    bool right[S_MAX_COLS];
    char **cells;
    size_t ncells, cap;
    bool oom;
} s_table_t;

static void
s_table_init (s_table_t *self)
{
    memset (self, 0, sizeof *self);
}

/*  Adds a column headed head; a trailing '>' aligns the column right.  */
static void
s_table_head (s_table_t *self, const char *head)
{
    if (self->ncols == S_MAX_COLS)
        return;
    size_t len = strlen (head);
    bool right = len > 0 && head[len - 1] == '>';
    size_t n = right ? len - 1 : len;
    if (n >= sizeof self->head_store[0])
        n = sizeof self->head_store[0] - 1;
    memcpy (self->head_store[self->ncols], head, n);
    self->head_store[self->ncols][n] = 0;
    self->heads[self->ncols] = self->head_store[self->ncols];
    self->right[self->ncols] = right;
    self->ncols++;
}

static void
s_table_cell (s_table_t *self, const char *text)
{
    if (self->ncells == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        char **cells = realloc (self->cells, cap * sizeof *cells);
        if (!cells) {
            self->oom = true;
            return;
        }
        self->cells = cells;
        self->cap = cap;
    }
    char *copy = strdup (text);
    if (!copy) {
        self->oom = true;
        return;
    }
    s_cut (copy, S_MAX_WIDTH);
    self->cells[self->ncells++] = copy;
}

static void
s_pad (FILE *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fputc (' ', out);
}

static void
s_table_row (FILE *out, const s_table_t *self, const char *const *row, const size_t *widths,
             const char *indent)
{
    fputs (indent, out);
    for (size_t c = 0; c < self->ncols; c++) {
        size_t w = s_width (row[c]);
        bool last = c + 1 == self->ncols;
        if (self->right[c])
            s_pad (out, widths[c] - w);
        fputs (row[c], out);
        if (!last && !self->right[c])
            s_pad (out, widths[c] - w);
        if (!last)
            fputs ("  ", out);
    }
    fputc ('\n', out);
}

/*  Prints and frees the table.  */
static void
s_table_print (FILE *out, s_table_t *self, const char *indent)
{
    size_t widths[S_MAX_COLS] = { 0 };
    size_t nrows = self->ncols ? self->ncells / self->ncols : 0;
    for (size_t c = 0; c < self->ncols; c++) {
        widths[c] = s_width (self->heads[c]);
        for (size_t r = 0; r < nrows; r++) {
            size_t w = s_width (self->cells[r * self->ncols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    s_table_row (out, self, self->heads, widths, indent);
    for (size_t r = 0; r < nrows; r++)
        s_table_row (out, self, (const char *const *)&self->cells[r * self->ncols], widths, indent);
    for (size_t i = 0; i < self->ncells; i++)
        free (self->cells[i]);
    free (self->cells);
    self->cells = NULL;
    self->ncells = self->cap = 0;
}

static void
s_kv (FILE *out, const char *label, const char *value)
{
    fprintf (out, "  %-16s %s\n", label, value);
}

/*  A column of a table with a row per element of a JSON list: format
    writes the cell for value, the row's field key (the whole row when key
    is NULL), into out and returns it.  */
typedef char *(s_format_fn)(const json_t *value, const char *key, char *out, size_t outsize);

typedef struct {
    const char *head; /* as s_table_head: a trailing '>' aligns right */
    const char *key;
    s_format_fn *format;
} s_column_t;

#define S_COLUMNS(columns) (columns), sizeof (columns) / sizeof (columns)[0]

/*  Starts self with these columns and a row per element of list.  */
static void
s_table_list (s_table_t *self, const json_t *list, const s_column_t *columns, size_t ncolumns)
{
    assert (ncolumns <= S_MAX_COLS);
    s_table_init (self);
    for (size_t c = 0; c < ncolumns; c++)
        s_table_head (self, columns[c].head);
    size_t i;
    json_t *row;
    json_array_foreach (list, i, row)
    {
        for (size_t c = 0; c < ncolumns; c++) {
            char cell[S_CELL];
            const char *key = columns[c].key;
            s_table_cell (self, columns[c].format (key ? json_object_get (row, key) : row, key,
                                                   cell, sizeof cell));
        }
    }
}

//  --------------------------------------------------------------------------
//  Result documents

/*  "45/100 (45%)" from a run's chunk counts (key unused: a column format
    of the whole row).  */
static char *
s_chunks (const json_t *run, const char *key, char *out, size_t outsize)
{
    (void)key;
    int64_t done = s_int (run, "chunks_done"), total = s_int (run, "chunks_total");
    if (total > 0)
        snprintf (out, outsize, "%lld/%lld (%lld%%)", (long long)done, (long long)total,
                  (long long)(done * 100 / total));
    else
        snprintf (out, outsize, "%lld/%lld", (long long)done, (long long)total);
    return out;
}

/*  A "label  value" line of field key, unless the document lacks the key
    altogether (a command's result carries fewer fields than run.show).  */
static void
s_kv_field (FILE *out, const json_t *run, const char *label, const char *key, bool count)
{
    if (!json_object_get (run, key))
        return;
    char a[S_CELL];
    s_kv (out, label,
          count ? s_field_count (run, key, a, sizeof a) : s_field (run, key, a, sizeof a));
}

/*  The details of one RUN object.  */
static void
s_render_run (FILE *out, const json_t *run)
{
    char a[S_CELL], b[S_CELL], line[2 * S_CELL + 64];
    s_field (run, "run_id", a, sizeof a);
    s_field (run, "period", b, sizeof b);
    char state[S_CELL];
    s_field (run, "state", state, sizeof state);
    fprintf (out, "Run %s of %s: %s%s\n", a, b, state,
             json_is_true (json_object_get (run, "rerate")) ? " (re-rate)" : "");
    s_kv (out, "chunks", s_chunks (run, NULL, a, sizeof a));
    s_kv (out, "subscribers", s_field_count (run, "subscribers_done", a, sizeof a));
    s_kv (out, "bills", s_field_count (run, "bills", a, sizeof a));
    s_field_count (run, "amount_total", a, sizeof a);
    snprintf (line, sizeof line, "%s won", a);
    s_kv (out, "amount", line);
    s_kv (out, "rating errors", s_field_count (run, "rating_errors", a, sizeof a));
    s_kv_field (out, run, "chunk size", "chunk_size", true);
    s_kv_field (out, run, "command id", "command_id", false);
    s_kv_field (out, run, "created", "created_at", false);
    s_kv_field (out, run, "started", "started_at", false);
    s_kv_field (out, run, "finished", "finished_at", false);
    s_field (run, "seconds", a, sizeof a);
    if (strcmp (a, "-"))
        snprintf (line, sizeof line, "%s s", a);
    else
        snprintf (line, sizeof line, "-");
    s_kv (out, "duration", line);
}

/*  States in a sensible order first, then any others as they come.  */
static const char *s_states[] = { "DELIVERED", "FAILED", "PENDING", "SENDING", "RETRY", "HELD" };
#define S_NSTATES (sizeof s_states / sizeof s_states[0])

static bool
s_known_state (const char *state)
{
    for (size_t i = 0; i < S_NSTATES; i++)
        if (!strcmp (s_states[i], state))
            return true;
    return false;
}

static void
s_add_state (const char **columns, size_t *ncolumns, size_t max, const char *state)
{
    for (size_t i = 0; i < *ncolumns; i++)
        if (!strcmp (columns[i], state))
            return;
    if (*ncolumns < max)
        columns[(*ncolumns)++] = state;
}

/*  NOTICES: totals, then a table of channel x state with a total row.  */
static void
s_render_notices (FILE *out, const json_t *notices)
{
    if (!json_is_object (notices)) {
        fprintf (out, "Notices: -\n");
        return;
    }
    char total[S_CELL], fallbacks[S_CELL], held[S_CELL];
    fprintf (out, "Notices: %s total, %s fallback%s, held until %s\n",
             s_field_count (notices, "total", total, sizeof total),
             s_field_count (notices, "fallbacks", fallbacks, sizeof fallbacks),
             s_int (notices, "fallbacks") == 1 ? "" : "s",
             s_field (notices, "held_until", held, sizeof held));
    json_t *by_state = json_object_get (notices, "by_state");
    json_t *by_channel = json_object_get (notices, "by_channel");
    /*  Columns: the usual states, then whatever else turns up (up to the
        table's width).  */
    const char *columns[S_MAX_COLS - 1];
    size_t ncolumns = 0;
    const size_t max = S_MAX_COLS - 1;
    for (size_t i = 0; i < S_NSTATES; i++)
        s_add_state (columns, &ncolumns, max, s_states[i]);
    const char *key;
    json_t *value;
    if (json_is_object (by_state)) {
        json_object_foreach (by_state, key, value)
        {
            if (!s_known_state (key))
                s_add_state (columns, &ncolumns, max, key);
        }
    }
    if (json_is_object (by_channel)) {
        json_t *states;
        json_object_foreach (by_channel, key, states)
        {
            const char *state;
            if (!json_is_object (states))
                continue;
            json_object_foreach (states, state, value)
            {
                if (!s_known_state (state))
                    s_add_state (columns, &ncolumns, max, state);
            }
        }
    }
    s_table_t table;
    s_table_init (&table);
    s_table_head (&table, "CHANNEL");
    for (size_t i = 0; i < ncolumns; i++) {
        char head[33]; /* 31 bytes of the state, '>' */
        bf_billctl_scrub (columns[i], head, sizeof head - 1);
        for (char *p = head; *p; p++)
            if (*p == '|' || *p == '>')
                *p = '_'; /* a state's name cannot steer the table */
        strcat (head, ">");
        s_table_head (&table, head);
    }
    char cell[S_CELL];
    if (json_is_object (by_channel)) {
        json_t *states;
        json_object_foreach (by_channel, key, states)
        {
            s_table_cell (&table, bf_billctl_scrub (key, cell, sizeof cell));
            for (size_t i = 0; i < ncolumns; i++) {
                json_t *n = json_is_object (states) ? json_object_get (states, columns[i]) : NULL;
                s_table_cell (&table, n ? s_count (n, NULL, cell, sizeof cell) : "0");
            }
        }
    }
    s_table_cell (&table, "all");
    for (size_t i = 0; i < ncolumns; i++) {
        json_t *n = json_is_object (by_state) ? json_object_get (by_state, columns[i]) : NULL;
        s_table_cell (&table, n ? s_count (n, NULL, cell, sizeof cell) : "0");
    }
    s_table_print (out, &table, "  ");
}

static int
s_render_run_show (FILE *out, json_t *root, char *err, size_t errsize)
{
    json_t *run = json_object_get (root, "run");
    if (!run || (!json_is_null (run) && !json_is_object (run)))
        return bf_err_set (err, errsize, "control's answer to run.show has no \"run\" object");
    if (json_is_null (run)) {
        fprintf (out, "No run for this period.\n");
        return 0;
    }
    s_render_run (out, run);
    json_t *events = json_object_get (root, "events");
    char a[S_CELL], b[S_CELL];
    if (json_is_object (events)) {
        char line[2 * S_CELL + 64];
        snprintf (line, sizeof line, "published %s, ingested %s%s",
                  s_field_count (events, "published_seq", a, sizeof a),
                  s_field_count (events, "ingested_seq", b, sizeof b),
                  json_is_true (json_object_get (events, "unsequenced"))
                      ? ", some not yet sequenced"
                      : "");
        s_kv (out, "events", line);
    }
    json_t *schedule = json_object_get (root, "schedule");
    if (json_is_object (schedule)) {
        char line[3 * S_CELL + 64], c[S_CELL];
        snprintf (line, sizeof line, "not before %s local (%s), by %s",
                  s_field (schedule, "at", a, sizeof a),
                  s_field (schedule, "release_at", b, sizeof b),
                  s_field (schedule, "command_id", c, sizeof c));
        s_kv (out, "scheduled", line);
    }
    json_t *final = json_object_get (root, "final");
    s_kv (out, "final", json_is_true (final) ? "yes" : "no (events or notices still in progress)");
    fputc ('\n', out);
    s_render_notices (out, json_object_get (root, "notices"));
    json_t *errors = json_object_get (root, "rating_errors");
    if (json_is_array (errors) && json_array_size (errors) > 0) {
        fprintf (out, "\nRating errors (first %zu):\n", json_array_size (errors));
        static const s_column_t columns[] = {
            { "SUBSCRIBER>", "subscriber_id", s_cell },
            { "REASON", "reason", s_cell },
        };
        s_table_t table;
        s_table_list (&table, errors, S_COLUMNS (columns));
        s_table_print (out, &table, "  ");
    }
    return 0;
}

static int
s_render_summary (FILE *out, json_t *root, char *err, size_t errsize)
{
    json_t *notices = json_object_get (root, "notices");
    if (!json_is_object (notices))
        return bf_err_set (err, errsize,
                           "control's answer to deliveries.summary has no \"notices\" object");
    char a[S_CELL];
    json_t *period = json_object_get (root, "period");
    fprintf (out, "Period:   %s\n",
             json_is_string (period) ? s_cell (period, "period", a, sizeof a) : "all periods");
    json_t *paused = json_object_get (root, "paused");
    fprintf (out, "Dispatch: %s\n",
             json_is_true (paused)    ? "PAUSED (billctl notify resume sends again)"
             : json_is_false (paused) ? "running"
                                      : "-");
    s_render_notices (out, notices);
    return 0;
}

//  --------------------------------------------------------------------------
//  Lists: a table of columns each, a row per element

/*  The run's state, " (re-rate)" added for a re-rating run (key unused: a
    column format of the whole row).  */
static char *
s_run_state (const json_t *run, const char *key, char *out, size_t outsize)
{
    (void)key;
    s_field (run, "state", out, outsize);
    if (json_is_true (json_object_get (run, "rerate")))
        strncat (out, " (re-rate)", outsize - strlen (out) - 1);
    return out;
}

static char *
s_age (const json_t *value, const char *key, char *out, size_t outsize)
{
    if (!json_is_integer (value))
        return s_cell (value, key, out, outsize);
    double seconds = (double)json_integer_value (value) / 1000.0;
    if (seconds < 120)
        snprintf (out, outsize, "%.1f s", seconds);
    else if (seconds < 7200)
        snprintf (out, outsize, "%.0f min", seconds / 60);
    else
        snprintf (out, outsize, "%.1f h", seconds / 3600);
    return out;
}

static char *
s_verbs (const json_t *value, const char *key, char *out, size_t outsize)
{
    if (!json_is_array (value))
        return s_cell (value, key, out, outsize);
    size_t o = 0, i;
    json_t *v;
    out[0] = 0;
    json_array_foreach (value, i, v)
    {
        char cell[S_CELL];
        if (o > 0)
            o = s_append (out, outsize, o, ",");
        o = s_append (out, outsize, o, s_cell (v, NULL, cell, sizeof cell));
        out[o] = 0;
    }
    if (o == 0)
        snprintf (out, outsize, "-");
    return out;
}

static char *
s_up (const json_t *value, const char *key, char *out, size_t outsize)
{
    (void)key;
    snprintf (out, outsize, "%s",
              json_is_boolean (value) ? (json_is_true (value) ? "up" : "DOWN") : "-");
    return out;
}

/*  services.list's leader: true "leader", a role name as it is, false
    "no", null (a service without a leader) "-".  */
static char *
s_leader (const json_t *value, const char *key, char *out, size_t outsize)
{
    if (json_is_true (value))
        snprintf (out, outsize, "leader");
    else if (json_is_false (value))
        snprintf (out, outsize, "no");
    else
        s_cell (value, key, out, outsize);
    return out;
}

/*  A run.rates rate: null (an interval with a gap) "gap", else one
    decimal.  */
static char *
s_rate (const json_t *value, const char *key, char *out, size_t outsize)
{
    if (json_is_null (value))
        snprintf (out, outsize, "gap");
    else if (json_is_number (value))
        snprintf (out, outsize, "%.1f", json_number_value (value));
    else
        s_cell (value, key, out, outsize);
    return out;
}

/*  A command's outcome: its result's "outcome", or a result that is no
    object.  */
static char *
s_outcome (const json_t *result, const char *key, char *out, size_t outsize)
{
    if (json_is_object (result) && json_object_get (result, "outcome"))
        return s_cell (json_object_get (result, "outcome"), "outcome", out, outsize);
    return s_cell (result && !json_is_object (result) ? result : NULL, key, out, outsize);
}

/*  As s_cell, an empty string "-" too.  */
static char *
s_nonempty (const json_t *value, const char *key, char *out, size_t outsize)
{
    if (json_is_string (value) && !*json_string_value (value)) {
        snprintf (out, outsize, "-");
        return out;
    }
    return s_cell (value, key, out, outsize);
}

/*  The lists' columns, one a line (clang-format would pack short ones
    into a grid).  */
// clang-format off
static const s_column_t s_runs_columns[] = {
    { "RUN>", "run_id", s_cell },
    { "PERIOD", "period", s_cell },
    { "STATE", NULL, s_run_state },
    { "CHUNKS>", NULL, s_chunks },
    { "SUBSCRIBERS>", "subscribers_done", s_count },
    { "BILLS>", "bills", s_count },
    { "AMOUNT (WON)>", "amount_total", s_count },
    { "ERRORS>", "rating_errors", s_count },
    { "STARTED", "started_at", s_cell },
    { "FINISHED", "finished_at", s_cell },
    { "SECONDS>", "seconds", s_cell },
};

static const s_column_t s_failures_columns[] = {
    { "ID>", "id", s_cell },
    { "PERIOD", "period", s_cell },
    { "BILL>", "bill_id", s_cell },
    { "SUBSCRIBER>", "subscriber_id", s_cell },
    { "CHANNEL", "channel", s_cell },
    { "ATTEMPTS>", "attempts", s_cell },
    { "CONTACT", "contact", s_cell },
    { "FINAL AT", "final_at", s_cell },
    { "FALLBACK>", "fallback_id", s_cell },
    { "LAST ERROR", "last_error", s_cell },
};

static const s_column_t s_services_columns[] = {
    { "SERVICE", "service", s_cell },
    { "INSTANCE", "instance_id", s_cell },
    { "PID>", "pid", s_cell },
    { "VERSION", "version", s_cell },
    { "UP", "up", s_up },
    { "LEADER", "leader", s_leader },
    { "LAST HEARTBEAT", "last_heartbeat", s_cell },
    { "AGE>", "age_ms", s_age },
    { "VERBS", "verbs", s_verbs },
    { "STATE", "state", s_args },
};

static const s_column_t s_commands_columns[] = {
    { "COMMAND ID", "command_id", s_cell },
    { "CLIENT", "client", s_cell },
    { "TARGET", "target", s_cell },
    { "VERB", "verb", s_cell },
    { "ARGS", "args", s_args },
    { "STATE", "state", s_cell },
    { "RECEIVED", "received_at", s_cell },
    { "COMPLETED", "completed_at", s_cell },
    { "OUTCOME", "result", s_outcome },
    { "ERROR", "error", s_nonempty },
};

static const s_column_t s_audit_columns[] = {
    { "ID>", "id", s_cell },
    { "AT", "at", s_cell },
    { "ACTOR", "actor", s_cell },
    { "COMMAND ID", "command_id", s_cell },
    { "TARGET", "target", s_cell },
    { "VERB", "verb", s_cell },
    { "ARGS", "args", s_args },
    { "OUTCOME", "outcome", s_cell },
    { "DETAIL", "detail", s_cell },
};

static const s_column_t s_templates_columns[] = {
    { "CHANNEL", "channel", s_cell },
    { "VERSION>", "version", s_cell },
    { "ACTIVE", "active", s_cell },
    { "PUBLISHED", "created_at", s_cell },
    { "BY", "client", s_cell },
    { "COMMAND ID", "published_by", s_cell },
    { "SUBJECT", "subject", s_cell },
};
// clang-format on

//  --------------------------------------------------------------------------
//  subscriber.find, subscriber.timeline, bill.show

/*  A contact: shown only when it comes masked (as s_safe_string's
    "contact").  */
static char *
s_contact_cell (const json_t *value, const char *key, char *out, size_t outsize)
{
    (void)key;
    return s_cell (value, "contact", out, outsize);
}

/*  "12,340 won" of an amount (other types as s_cell).  */
static char *
s_won_cell (const json_t *value, const char *key, char *out, size_t outsize)
{
    char a[S_CELL - 8];
    s_count (value, key, a, sizeof a);
    snprintf (out, outsize, "%s won", a);
    return out;
}

// clang-format off
static const s_column_t s_subscribers_columns[] = {
    { "SUBSCRIBER>", "subscriber_id", s_cell },
    { "EMAIL", "email", s_contact_cell },
    { "PHONE", "phone", s_contact_cell },
    { "PUSH", "push", s_cell },
    { "CHANNELS", "channels", s_cell },
    { "ACTIVATED", "activated_on", s_cell },
    { "TERMINATED", "terminated_on", s_cell },
};
// clang-format on

/*  The notices of a bill, a row per attempt (newest first) under each
    notice, indented.  */
static void
s_render_bill_notices (FILE *out, const json_t *notices)
{
    if (!json_is_array (notices) || json_array_size (notices) == 0) {
        fprintf (out, "  No notices.\n");
        return;
    }
    static const char *const heads[]
        = { "NOTICE>", "CHANNEL", "STATE", "CONTACT", "TRY>", "PROVIDER", "OUTCOME", "FINISHED",
            "ERROR" };
    s_table_t table;
    s_table_init (&table);
    for (size_t c = 0; c < sizeof heads / sizeof heads[0]; c++)
        s_table_head (&table, heads[c]);
    size_t i, j;
    json_t *notice, *attempt;
    json_array_foreach (notices, i, notice)
    {
        char a[S_CELL];
        json_t *log = json_object_get (notice, "attempt_log");
        size_t n = json_is_array (log) ? json_array_size (log) : 0;
        for (j = 0; j == 0 || j < n; j++) {
            attempt = n ? json_array_get (log, j) : NULL;
            s_table_cell (&table, j ? "" : s_field (notice, "id", a, sizeof a));
            s_table_cell (&table, j ? "" : s_field (notice, "channel", a, sizeof a));
            s_table_cell (&table, j ? "" : s_field (notice, "state", a, sizeof a));
            s_table_cell (&table, j ? "" : s_field (notice, "contact", a, sizeof a));
            s_table_cell (&table, s_field (attempt, "attempt_no", a, sizeof a));
            s_table_cell (&table, s_field (attempt, "provider", a, sizeof a));
            s_table_cell (&table, s_field (attempt, "outcome", a, sizeof a));
            s_table_cell (&table, s_field (attempt, "finished_at", a, sizeof a));
            s_table_cell (&table, attempt ? s_field (attempt, "error", a, sizeof a)
                                          : s_field (notice, "last_error", a, sizeof a));
        }
    }
    s_table_print (out, &table, "  ");
}

/*  "Bill 20417 of 2026-10: 12,340 won, due 2026-11-25 (run 3)".  */
static void
s_render_bill_head (FILE *out, const json_t *bill)
{
    char id[S_CELL], period[S_CELL], total[S_CELL], due[S_CELL], run[S_CELL];
    s_field (bill, "bill_id", id, sizeof id);
    s_field (bill, "period", period, sizeof period);
    s_won_cell (json_object_get (bill, "total"), "total", total, sizeof total);
    s_field (bill, "due_date", due, sizeof due);
    s_field (bill, "run_id", run, sizeof run);
    fprintf (out, "Bill %s of %s: %s, due %s (run %s)\n", id, period, total, due, run);
}

static void
s_render_subscriber_line (FILE *out, const json_t *sub)
{
    char id[S_CELL], email[S_CELL], phone[S_CELL];
    fprintf (out, "Subscriber %s  email %s  phone %s\n", s_field (sub, "subscriber_id", id, sizeof id),
             s_contact_cell (json_object_get (sub, "email"), NULL, email, sizeof email),
             s_contact_cell (json_object_get (sub, "phone"), NULL, phone, sizeof phone));
}

static int
s_render_timeline (FILE *out, json_t *root, char *err, size_t errsize)
{
    json_t *sub = json_object_get (root, "subscriber");
    json_t *bills = json_object_get (root, "bills");
    if (!json_is_array (bills) || (!json_is_null (sub) && !json_is_object (sub)))
        return bf_err_set (err, errsize,
                           "control's answer to subscriber.timeline has no \"bills\" list");
    if (json_is_null (sub)) {
        fprintf (out, "No such subscriber.\n");
        return 0;
    }
    s_render_subscriber_line (out, sub);
    if (json_array_size (bills) == 0)
        fprintf (out, "No bills.\n");
    size_t i;
    json_t *bill;
    json_array_foreach (bills, i, bill)
    {
        fputc ('\n', out);
        s_render_bill_head (out, bill);
        s_render_bill_notices (out, json_object_get (bill, "notices"));
    }
    if (json_is_true (json_object_get (root, "more")))
        fprintf (out, "\n(older bills not shown: use --limit)\n");
    return 0;
}

static int
s_render_bill (FILE *out, json_t *root, char *err, size_t errsize)
{
    json_t *bill = json_object_get (root, "bill");
    if (!bill || (!json_is_null (bill) && !json_is_object (bill)))
        return bf_err_set (err, errsize, "control's answer to bill.show has no \"bill\" object");
    if (json_is_null (bill)) {
        fprintf (out, "No such bill.\n");
        return 0;
    }
    s_render_bill_head (out, bill);
    if (json_is_object (json_object_get (root, "subscriber")))
        s_render_subscriber_line (out, json_object_get (root, "subscriber"));
    fputc ('\n', out);
    static const s_column_t columns[] = {
        { "NO>", "line_no", s_cell },
        { "ITEM", "label", s_cell },
        { "AMOUNT (WON)>", "amount", s_count },
    };
    s_table_t table;
    s_table_list (&table, json_object_get (bill, "lines"), S_COLUMNS (columns));
    char a[S_CELL];
    s_table_cell (&table, "");
    s_table_cell (&table, "합계 (total)");
    s_table_cell (&table, s_field_count (bill, "total", a, sizeof a));
    s_table_print (out, &table, "  ");
    fprintf (out, "\nNotices:\n");
    s_render_bill_notices (out, json_object_get (bill, "notices"));
    return 0;
}

/*  run.rates: the run's line, then one row per point.  */
static int
s_render_rates (FILE *out, json_t *root, char *err, size_t errsize)
{
    json_t *points = json_object_get (root, "points");
    json_t *run = json_object_get (root, "run");
    if (!json_is_array (points) || !(json_is_object (run) || json_is_null (run)))
        return bf_err_set (err, errsize,
                           "control's answer to run.rates has no \"run\" and \"points\"");
    char id[S_CELL], a[S_CELL], b[S_CELL], c[S_CELL], d[S_CELL];
    if (json_is_null (run)) {
        fprintf (out, "No run %s.\n", s_field (root, "run_id", id, sizeof id));
        return 0;
    }
    fprintf (out, "Run %s of %s: %s, %s bills, started %s\n",
             s_field (root, "run_id", id, sizeof id), s_field (run, "period", a, sizeof a),
             s_field (run, "state", b, sizeof b), s_field_count (run, "bills", c, sizeof c),
             s_field (run, "started_at", d, sizeof d));
    if (json_array_size (points) == 0) {
        fprintf (out, "No samples yet (the active control samples a run once a second).\n");
        return 0;
    }
    static const s_column_t columns[] = {
        { "T (S)>", "t", s_cell },
        { "SECONDS>", "seconds", s_cell },
        { "BILLS>", "bills", s_count },
        { "NOTICES>", "notices", s_count },
        { "BILLS/S>", "bills_per_s", s_rate },
        { "NOTICES/S>", "notices_per_s", s_rate },
    };
    s_table_t table;
    s_table_list (&table, points, S_COLUMNS (columns));
    s_table_print (out, &table, "");
    return 0;
}

typedef struct {
    const char *verb;  /* the query */
    const char *key;   /* its answer's list */
    const char *empty; /* the line for an empty list */
    const s_column_t *columns;
    size_t ncolumns;
} s_list_t;

static const s_list_t s_lists[] = {
    { "runs.list", "runs", "No runs.", S_COLUMNS (s_runs_columns) },
    { "deliveries.failures", "failures", "No failed notices.", S_COLUMNS (s_failures_columns) },
    { "services.list", "services", "No services registered.", S_COLUMNS (s_services_columns) },
    { "commands.list", "commands", "No commands.", S_COLUMNS (s_commands_columns) },
    { "audit.list", "audit", "No audit entries.", S_COLUMNS (s_audit_columns) },
    { "templates.list", "templates", "No templates.", S_COLUMNS (s_templates_columns) },
    { "subscriber.find", "subscribers", "No such subscriber.", S_COLUMNS (s_subscribers_columns) },
};

static const s_list_t *
s_list_lookup (const char *verb)
{
    for (size_t i = 0; i < sizeof s_lists / sizeof s_lists[0]; i++)
        if (!strcmp (s_lists[i].verb, verb))
            return &s_lists[i];
    return NULL;
}

static int
s_render_list (FILE *out, const s_list_t *self, json_t *root, char *err, size_t errsize)
{
    json_t *list = json_object_get (root, self->key);
    if (!json_is_array (list))
        return bf_err_set (err, errsize, "control's answer to %s has no \"%s\" list", self->verb,
                           self->key);
    if (json_array_size (list) == 0) {
        fprintf (out, "%s\n", self->empty);
        return 0;
    }
    s_table_t table;
    s_table_list (&table, list, self->columns, self->ncolumns);
    s_table_print (out, &table, "");
    return 0;
}

/*  Anything else (a command's result, control.status): one line per key,
    a nested run in detail.  */
static int
s_render_object (FILE *out, json_t *root)
{
    const char *key;
    json_t *value;
    json_t *run = NULL;
    json_object_foreach (root, key, value)
    {
        if (!strcmp (key, "run") && json_is_object (value)) {
            run = value;
            continue;
        }
        char label[64], cell[S_CELL];
        bf_billctl_scrub (key, label, sizeof label);
        s_kv (out, label, s_cell (value, key, cell, sizeof cell));
    }
    if (run)
        s_render_run (out, run);
    return 0;
}

//  --------------------------------------------------------------------------
//  template.show and template.preview: texts shown whole

/*  Writes text line by line, each line indented and scrubbed (a template or
    a rendered notice never shows a contact in clear); NULL or "" as "-".  */
static void
s_text_block (FILE *out, const char *title, const json_t *value)
{
    fprintf (out, "%s:\n", title);
    const char *text = json_is_string (value) ? json_string_value (value) : NULL;
    if (!text || !*text) {
        fprintf (out, "    -\n");
        return;
    }
    while (*text) {
        const char *end = strchr (text, '\n');
        size_t len = end ? (size_t)(end - text) : strlen (text);
        char *line = malloc (len + 1), *clean = malloc (2 * len + 64);
        if (line && clean) {
            memcpy (line, text, len);
            line[len] = 0;
            fprintf (out, "    %s\n", bf_billctl_scrub (line, clean, 2 * len + 64));
        }
        free (line);
        free (clean);
        text += len + (end ? 1 : 0);
    }
}

static int
s_render_template_show (FILE *out, json_t *root, char *err, size_t errsize)
{
    if (!json_is_string (json_object_get (root, "body")))
        return bf_err_set (err, errsize, "control's answer to template.show has no \"body\"");
    char cell[S_CELL];
    static const char *const keys[]
        = { "channel", "version", "active", "created_at", "client", "published_by" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        s_kv (out, keys[i], s_field (root, keys[i], cell, sizeof cell));
    fputc ('\n', out);
    s_text_block (out, "subject", json_object_get (root, "subject"));
    s_text_block (out, "body", json_object_get (root, "body"));
    s_text_block (out, "body_html", json_object_get (root, "body_html"));
    s_text_block (out, "short_body", json_object_get (root, "short_body"));
    return 0;
}

static int
s_render_template_preview (FILE *out, json_t *root, char *err, size_t errsize)
{
    if (!json_is_string (json_object_get (root, "preview")))
        return bf_err_set (err, errsize,
                           "control's answer to template.preview has no \"preview\"");
    char cell[S_CELL];
    static const char *const keys[]
        = { "channel", "version", "draft", "bill_id", "period", "sent_as", "lines" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        s_kv (out, keys[i], s_field (root, keys[i], cell, sizeof cell));
    fputc ('\n', out);
    s_text_block (out, "preview", json_object_get (root, "preview"));
    if (json_is_string (json_object_get (root, "body_html")))
        s_text_block (out, "body_html", json_object_get (root, "body_html"));
    return 0;
}

//  --------------------------------------------------------------------------
//  run.report: the reconciliation report of a period

/*  A table row: name, a count per column of row (an object; "-" where it
    has none) and their total ("-" unless every one is an integer).  */
static void
s_matrix_row (s_table_t *table, const char *name, const json_t *row, const char *const *columns,
              size_t ncolumns)
{
    char cell[S_CELL];
    s_table_cell (table, bf_billctl_scrub (name, cell, sizeof cell));
    int64_t total = 0;
    bool summable = json_is_object (row);
    for (size_t i = 0; i < ncolumns; i++) {
        json_t *n = json_is_object (row) ? json_object_get (row, columns[i]) : NULL;
        s_table_cell (table, s_count (n, NULL, cell, sizeof cell));
        if (!json_is_integer (n) || __builtin_add_overflow (total, json_integer_value (n), &total))
            summable = false;
    }
    s_table_cell (table, summable ? bf_billctl_thousands (total, cell, sizeof cell) : "-");
}

/*  rows (an object of objects: channel -> column -> count) as a table of
    the fixed columns with a TOTAL column, and an "all" row of totals.  */
static void
s_render_matrix (FILE *out, const json_t *rows, const json_t *totals, const char *const *columns,
                 size_t ncolumns)
{
    s_table_t table;
    s_table_init (&table);
    s_table_head (&table, "CHANNEL");
    for (size_t i = 0; i < ncolumns; i++) {
        char head[32];
        snprintf (head, sizeof head, "%s>", columns[i]);
        s_table_head (&table, head);
    }
    s_table_head (&table, "TOTAL>");
    const char *key;
    json_t *row;
    if (json_is_object (rows)) {
        json_object_foreach ((json_t *)rows, key, row)
        {
            s_matrix_row (&table, key, row, columns, ncolumns);
        }
    }
    s_matrix_row (&table, "all", totals, columns, ncolumns);
    s_table_print (out, &table, "  ");
}

/*  "12,345 won" of an amount (other types as s_cell).  */
static char *
s_won (const json_t *value, char *out, size_t outsize)
{
    char a[S_CELL - 8];
    s_count (value, NULL, a, sizeof a);
    snprintf (out, outsize, "%s won", a);
    return out;
}

/*  The line under the title: why the period is not final.  */
static void
s_report_why (const json_t *root, char *out, size_t outsize)
{
    char a[S_CELL];
    size_t o = 0;
    out[0] = 0;
    json_t *run_state = json_object_get (root, "run_state");
    if (!json_is_string (run_state) || strcmp (json_string_value (run_state), "COMPLETED")) {
        s_cell (run_state, "run_state", a, sizeof a);
        o = s_append (out, outsize, o, json_is_null (run_state) ? "no run" : "run ");
        if (!json_is_null (run_state))
            o = s_append (out, outsize, o, a);
    }
    json_t *unnotified = json_object_get (root, "unnotified");
    if (s_int (unnotified, "count") != 0) {
        s_field_count (unnotified, "count", a, sizeof a);
        o = s_append (out, outsize, o, o ? "; " : "");
        o = s_append (out, outsize, o, a);
        o = s_append (out, outsize, o, " bills without a final notice");
    }
    const json_t *by_state = json_object_get (json_object_get (root, "notices"), "by_state");
    int64_t open = 0;
    static const char *const in_flight[] = { "PENDING", "SENDING", "RETRY" };
    for (size_t i = 0; i < sizeof in_flight / sizeof in_flight[0]; i++) {
        int64_t n = s_int (by_state, in_flight[i]);
        if (n > 0 && __builtin_add_overflow (open, n, &open))
            open = INT64_MAX;
    }
    if (open > 0) {
        bf_billctl_thousands (open, a, sizeof a);
        o = s_append (out, outsize, o, o ? "; " : "");
        o = s_append (out, outsize, o, a);
        o = s_append (out, outsize, o, " notices in progress");
    }
    out[o] = 0;
}

static const char *const s_report_states[]
    = { "DELIVERED", "FAILED", "CANCELLED", "PENDING", "SENDING", "RETRY", "HELD" };
static const char *const s_report_outcomes[]
    = { "DELIVERED", "DUPLICATE", "TRANSIENT", "PERMANENT", "THROTTLED", "UNKNOWN" };
static const char *const s_report_reasons[]
    = { "no delivery", "in progress", "failed without fallback" };

#define S_NELEMS(a) (sizeof (a) / sizeof (a)[0])

// clang-format off
static const s_column_t s_report_runs_columns[] = {
    { "RUN>", "run_id", s_cell },
    { "STATE", NULL, s_run_state },
    { "BILLS>", "bills", s_count },
    { "AMOUNT (WON)>", "amount_total", s_count },
    { "ERRORS>", "rating_errors", s_count },
    { "STARTED", "started_at", s_cell },
    { "FINISHED", "finished_at", s_cell },
    { "SECONDS>", "seconds", s_cell },
};

static const s_column_t s_report_held_columns[] = {
    { "REASON", "reason", s_cell },
    { "NOTICES>", "count", s_count },
};

static const s_column_t s_report_unnotified_columns[] = {
    { "BILL>", "bill_id", s_cell },
    { "SUBSCRIBER>", "subscriber_id", s_cell },
    { "REASON", "reason", s_cell },
};
// clang-format on

/*  The document of bf_report.h: needs "final" (a boolean) and an
    "unnotified" object with a "bills" list; anything else that is missing
    or odd shows as "-".  */
static int
s_report_shape (const json_t *root, char *err, size_t errsize)
{
    json_t *unnotified = json_object_get (root, "unnotified");
    if (!json_is_boolean (json_object_get (root, "final")))
        return bf_err_set (err, errsize, "control's answer to run.report has no \"final\"");
    if (!json_is_object (unnotified) || !json_is_array (json_object_get (unnotified, "bills")))
        return bf_err_set (err, errsize,
                           "control's answer to run.report has no \"unnotified\" bills list");
    return 0;
}

/*  The title, and under it why the period is not final.  */
static void
s_report_title (FILE *out, const json_t *root)
{
    char a[S_CELL], line[4 * S_CELL];
    bool final = json_is_true (json_object_get (root, "final"));
    fprintf (out, "Reconciliation report of %s: %s\n", s_field (root, "period", a, sizeof a),
             final ? "FINAL" : "NOT FINAL");
    if (!final) {
        s_report_why (root, line, sizeof line);
        if (*line)
            fprintf (out, "  %s\n", line);
    }
}

/*  Bills: the runs' counters, checked against the bill table.  */
static void
s_report_bills (FILE *out, const json_t *root)
{
    char a[S_CELL], b[S_CELL], line[4 * S_CELL];
    json_t *bills = json_object_get (root, "bills");
    fprintf (out, "\nBills\n");
    s_kv (out, "bills", s_field_count (bills, "count", a, sizeof a));
    s_kv (out, "amount", s_won (json_object_get (bills, "amount_total"), a, sizeof a));
    json_t *consistent = json_object_get (bills, "consistent");
    snprintf (line, sizeof line, "%s bills, %s: %s",
              s_field_count (bills, "table_count", a, sizeof a),
              s_won (json_object_get (bills, "table_amount_total"), b, sizeof b),
              json_is_true (consistent)    ? "agrees with the runs"
              : json_is_false (consistent) ? "DIFFERS from the runs' counters"
                                           : "-");
    s_kv (out, "bill table", line);
}

static void
s_report_runs (FILE *out, const json_t *root)
{
    char a[S_CELL];
    json_t *runs = json_object_get (root, "runs");
    fprintf (out, "\nRuns\n");
    if (json_is_array (runs) && json_array_size (runs) > 0) {
        s_table_t table;
        s_table_list (&table, runs, S_COLUMNS (s_report_runs_columns));
        s_table_print (out, &table, "  ");
    } else
        fprintf (out, "  %s\n", json_is_array (runs) ? "none" : s_cell (runs, "runs", a, sizeof a));
}

/*  Notices by channel and state, then attempts by channel and outcome.  */
static void
s_report_notices (FILE *out, const json_t *root)
{
    char a[S_CELL], b[S_CELL], c[S_CELL];
    json_t *notices = json_object_get (root, "notices");
    fprintf (out, "\nNotices: %s total, %s finished, %s unfinished\n",
             s_field_count (notices, "total", a, sizeof a),
             s_field_count (notices, "finished", b, sizeof b),
             s_field_count (notices, "unfinished", c, sizeof c));
    s_render_matrix (out, json_object_get (notices, "by_channel"),
                     json_object_get (notices, "by_state"), s_report_states,
                     S_NELEMS (s_report_states));
}

/*  Under a heading, "label  count" for each key of the object at name in
    root (labels[i] shows keys[i]).  */
static void
s_report_counts (FILE *out, const json_t *root, const char *name, const char *heading,
                 const char *const *labels, const char *const *keys, size_t n)
{
    char a[S_CELL];
    json_t *object = json_object_get (root, name);
    fprintf (out, "\n%s\n", heading);
    for (size_t i = 0; i < n; i++)
        s_kv (out, labels[i], s_field_count (object, keys[i], a, sizeof a));
}

static void
s_report_fallbacks (FILE *out, const json_t *root)
{
    static const char *const labels[]
        = { "failed emails", "created", "delivered", "failed", "cancelled", "unfinished" };
    static const char *const keys[]
        = { "failed_emails", "created", "delivered", "failed", "cancelled", "unfinished" };
    s_report_counts (out, root, "fallbacks", "Fallbacks (SMS in place of a failed email)", labels,
                     keys, S_NELEMS (keys));
}

/*  Held notices: how many, from when until when, and why.  */
static void
s_report_held (FILE *out, const json_t *root)
{
    char a[S_CELL], b[S_CELL], c[S_CELL];
    json_t *held = json_object_get (root, "held");
    json_t *reasons = json_object_get (held, "reasons");
    if (json_is_integer (json_object_get (held, "count")) && s_int (held, "count") == 0
        && (!reasons || (json_is_array (reasons) && json_array_size (reasons) == 0))) {
        fprintf (out, "\nHeld: none\n");
        return;
    }
    fprintf (out, "\nHeld: %s notices, from %s until %s\n",
             s_field_count (held, "count", a, sizeof a), s_field (held, "from", b, sizeof b),
             s_field (held, "until", c, sizeof c));
    if (json_is_array (reasons) && json_array_size (reasons) > 0) {
        s_table_t table;
        s_table_list (&table, reasons, S_COLUMNS (s_report_held_columns));
        s_table_print (out, &table, "  ");
    }
}

static void
s_report_attempts (FILE *out, const json_t *root)
{
    char a[S_CELL];
    json_t *attempts = json_object_get (root, "attempts");
    fprintf (out, "\nAttempts: %s total\n", s_field_count (attempts, "total", a, sizeof a));
    s_render_matrix (out, json_object_get (attempts, "by_channel"),
                     json_object_get (attempts, "by_outcome"), s_report_outcomes,
                     S_NELEMS (s_report_outcomes));
}

/*  Emails possibly delivered (sent, no final reply); only when the report
    has the section.  */
static void
s_report_possible (FILE *out, const json_t *root)
{
    static const char *const labels[] = { "notices", "delivered", "awaiting resend", "not resent" };
    static const char *const keys[] = { "notices", "delivered", "awaiting_resend", "not_resent" };
    if (json_object_get (root, "possible_duplicates"))
        s_report_counts (out, root, "possible_duplicates",
                         "Possible duplicates (email possibly delivered: sent, no final reply)",
                         labels, keys, S_NELEMS (keys));
}

/*  Bills without a final notice: the count by reason, then the first of
    them.  */
static void
s_report_unnotified (FILE *out, const json_t *root)
{
    char a[S_CELL], line[4 * S_CELL];
    json_t *unnotified = json_object_get (root, "unnotified");
    json_t *list = json_object_get (unnotified, "bills");
    json_t *count = json_object_get (unnotified, "count");
    if (json_array_size (list) == 0 && json_is_integer (count) && json_integer_value (count) == 0) {
        fprintf (out, "\nUnnotified bills: none\n");
        return;
    }
    json_t *by_reason = json_object_get (unnotified, "by_reason");
    size_t o = 0;
    line[0] = 0;
    for (size_t i = 0; i < S_NELEMS (s_report_reasons); i++) {
        o = s_append (line, sizeof line, o, i ? ", " : " (");
        o = s_append (line, sizeof line, o, s_report_reasons[i]);
        o = s_append (line, sizeof line, o, " ");
        o = s_append (line, sizeof line, o,
                      s_field_count (by_reason, s_report_reasons[i], a, sizeof a));
        line[o] = 0;
    }
    o = s_append (line, sizeof line, o, ")");
    line[o] = 0;
    fprintf (out, "\nUnnotified bills: %s%s\n", s_count (count, "count", a, sizeof a), line);
    if (json_array_size (list) > 0) {
        s_table_t table;
        s_table_list (&table, list, S_COLUMNS (s_report_unnotified_columns));
        s_table_print (out, &table, "  ");
        if (json_is_integer (count)
            && json_integer_value (count) > (json_int_t)json_array_size (list))
            fprintf (out, "  (the first %zu of %s)\n", json_array_size (list),
                     bf_billctl_thousands (json_integer_value (count), a, sizeof a));
    }
}

static int
s_render_report (FILE *out, json_t *root, char *err, size_t errsize)
{
    if (s_report_shape (root, err, errsize) != 0)
        return -1;
    s_report_title (out, root);
    s_report_bills (out, root);
    s_report_runs (out, root);
    s_report_notices (out, root);
    s_report_fallbacks (out, root);
    s_report_held (out, root);
    s_report_attempts (out, root);
    s_report_possible (out, root);
    s_report_unnotified (out, root);
    return 0;
}

static json_t *
s_parse (const char *json, const char *verb, char *err, size_t errsize)
{
    if (!json || !*json) {
        bf_err_set (err, errsize, "control's answer to %s has no result", verb);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loads (json, 0, &jerr);
    if (!root) {
        bf_err_set (err, errsize, "control's answer to %s is not JSON (line %d: %s)", verb,
                    jerr.line, jerr.text);
        return NULL;
    }
    if (!json_is_object (root)) {
        json_decref (root);
        bf_err_set (err, errsize, "control's answer to %s is not a JSON object", verb);
        return NULL;
    }
    return root;
}

int
bf_billctl_render (FILE *out, const char *verb, const char *json, char *err, size_t errsize)
{
    if (err && errsize)
        *err = 0;
    verb = verb ? verb : "?";
    json_t *root = s_parse (json, verb, err, errsize);
    if (!root)
        return -1;
    int rc;
    const s_list_t *list = s_list_lookup (verb);
    if (list)
        rc = s_render_list (out, list, root, err, errsize);
    else if (!strcmp (verb, "run.show"))
        rc = s_render_run_show (out, root, err, errsize);
    else if (!strcmp (verb, "deliveries.summary"))
        rc = s_render_summary (out, root, err, errsize);
    else if (!strcmp (verb, "run.report"))
        rc = s_render_report (out, root, err, errsize);
    else if (!strcmp (verb, "template.show"))
        rc = s_render_template_show (out, root, err, errsize);
    else if (!strcmp (verb, "template.preview"))
        rc = s_render_template_preview (out, root, err, errsize);
    else if (!strcmp (verb, "subscriber.timeline"))
        rc = s_render_timeline (out, root, err, errsize);
    else if (!strcmp (verb, "bill.show"))
        rc = s_render_bill (out, root, err, errsize);
    else if (!strcmp (verb, "run.rates"))
        rc = s_render_rates (out, root, err, errsize);
    else
        rc = s_render_object (out, root);
    json_decref (root);
    return rc;
}

int
bf_billctl_report_final (const char *json, bool *final, char *err, size_t errsize)
{
    *final = false;
    json_t *root = s_parse (json, "run.report", err, errsize);
    if (!root)
        return -1;
    int rc = s_report_shape (root, err, errsize);
    *final = rc == 0 && json_is_true (json_object_get (root, "final"));
    json_decref (root);
    return rc;
}

//  --------------------------------------------------------------------------
//  run watch

static void
s_bar (char *out, size_t outsize, int64_t done, int64_t total)
{
    const int width = 30;
    int filled = total > 0 ? (int)(done * width / total) : 0;
    if (filled > width)
        filled = width;
    if (filled < 0)
        filled = 0;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    snprintf (out, outsize, "[%s] %3lld%%", bar, total > 0 ? (long long)(done * 100 / total) : 0LL);
}

static char *
s_notice_counts (const json_t *notices, const char *sep, char *out, size_t outsize)
{
    const json_t *by_state
        = json_is_object (notices) ? json_object_get (notices, "by_state") : NULL;
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < S_NSTATES; i++) {
        char lower[16], n[32];
        size_t k = 0;
        for (; s_states[i][k] && k + 1 < sizeof lower; k++)
            lower[k] = (char)tolower ((unsigned char)s_states[i][k]);
        lower[k] = 0;
        bf_billctl_thousands (s_int (by_state, s_states[i]), n, sizeof n);
        if (i > 0)
            o = s_append (out, outsize, o, sep);
        o = s_append (out, outsize, o, lower);
        o = s_append (out, outsize, o, " ");
        o = s_append (out, outsize, o, n);
        out[o] = 0;
    }
    return out;
}

int
bf_billctl_render_progress (FILE *out, const char *json, const char *period, bool tty, bool *final,
                            bool *failed, char *err, size_t errsize)
{
    if (final)
        *final = false;
    if (failed)
        *failed = false;
    json_t *root = s_parse (json, "run.show", err, errsize);
    if (!root)
        return -1;
    json_t *run = json_object_get (root, "run");
    if (!run || (!json_is_null (run) && !json_is_object (run))) {
        json_decref (root);
        return bf_err_set (err, errsize, "control's answer to run.show has no \"run\" object");
    }
    const char *clear = tty ? "\033[2K" : "";
    char safe_period[32];
    bf_billctl_scrub (period ? period : "?", safe_period, sizeof safe_period);
    if (json_is_null (run)) {
        fprintf (out, "%sno run for %s yet; waiting for it to start\n", clear, safe_period);
        json_decref (root);
        return 1;
    }
    bool is_final = json_is_true (json_object_get (root, "final"));
    char state[S_CELL], id[S_CELL], bar[128], chunks[64], subs[S_CELL], bills[S_CELL],
        amount[S_CELL], notices[512], held[S_CELL];
    s_field (run, "state", state, sizeof state);
    s_field (run, "run_id", id, sizeof id);
    int64_t done = s_int (run, "chunks_done"), total = s_int (run, "chunks_total");
    s_bar (bar, sizeof bar, done, total);
    snprintf (chunks, sizeof chunks, "%lld/%lld", (long long)done, (long long)total);
    s_field_count (run, "subscribers_done", subs, sizeof subs);
    s_field_count (run, "bills", bills, sizeof bills);
    s_field_count (run, "amount_total", amount, sizeof amount);
    json_t *notice_doc = json_object_get (root, "notices");
    json_t *held_until
        = json_is_object (notice_doc) ? json_object_get (notice_doc, "held_until") : NULL;
    s_cell (held_until, "held_until", held, sizeof held);
    int lines;
    if (tty) {
        s_notice_counts (notice_doc, "  ", notices, sizeof notices);
        fprintf (out, "%srun %s of %s: %s%s%s\n", clear, id, safe_period, state,
                 json_is_true (json_object_get (run, "rerate")) ? " (re-rate)" : "",
                 is_final ? " (final)" : "");
        fprintf (out, "%s  subscribers  %s  chunks %s  settled %s\n", clear, bar, chunks, subs);
        fprintf (out, "%s  bills        %s\n", clear, bills);
        fprintf (out, "%s  amount       %s won\n", clear, amount);
        fprintf (out, "%s  notices      %s\n", clear, notices);
        fprintf (out, "%s  held until   %s\n", clear, held);
        lines = 6;
    } else {
        s_notice_counts (notice_doc, " ", notices, sizeof notices);
        fprintf (out,
                 "%s run %s %s: chunks %s (%lld%%), subscribers %s, bills %s, amount %s won;"
                 " notices %s; held until %s%s\n",
                 safe_period, id, state, chunks, total > 0 ? (long long)(done * 100 / total) : 0LL,
                 subs, bills, amount, notices, held, is_final ? " (final)" : "");
        lines = 1;
    }
    if (final)
        *final = is_final;
    if (failed)
        *failed = !strcmp (state, "FAILED");
    json_decref (root);
    return lines;
}

int
bf_billctl_run_state (const char *json, bool *exists, bool *final, bool *failed, char *err,
                      size_t errsize)
{
    *exists = *final = *failed = false;
    json_t *root = s_parse (json, "run.show", err, errsize);
    if (!root)
        return -1;
    json_t *run = json_object_get (root, "run");
    if (!run || (!json_is_null (run) && !json_is_object (run))) {
        json_decref (root);
        return bf_err_set (err, errsize, "control's answer to run.show has no \"run\" object");
    }
    *exists = json_is_object (run);
    *final = *exists && json_is_true (json_object_get (root, "final"));
    json_t *state = *exists ? json_object_get (run, "state") : NULL;
    *failed = json_is_string (state) && !strcmp (json_string_value (state), "FAILED");
    json_decref (root);
    return 0;
}

//  --------------------------------------------------------------------------
//  JSON output

/*  Replaces, in place, every string in value that could hold a contact.  */
static void
s_scrub_json (json_t *value, const char *key)
{
    if (json_is_string (value)) {
        /*  A mask is at most a few bytes longer than what it replaces.  */
        const char *text = json_string_value (value);
        size_t size = 2 * strlen (text) + 64;
        char *safe = malloc (size);
        if (!safe || strcmp (s_safe_string (key, text, safe, size), text))
            if (json_string_set (value, safe ? safe : "***") != 0)
                json_string_set (value, "***");
        free (safe);
    } else if (json_is_object (value)) {
        const char *k;
        json_t *v;
        json_object_foreach (value, k, v)
        {
            s_scrub_json (v, k);
        }
    } else if (json_is_array (value)) {
        size_t i;
        json_t *v;
        json_array_foreach (value, i, v)
        {
            s_scrub_json (v, key);
        }
    }
}

static int
s_dump_line (FILE *out, json_t *doc)
{
    char *text = json_dumps (doc, JSON_COMPACT);
    if (!text)
        return -1;
    fprintf (out, "%s\n", text);
    free (text);
    fflush (out);
    return 0;
}

int
bf_billctl_reply_json (FILE *out, const Billflow__CommandReply *reply, char *err, size_t errsize)
{
    if (err && errsize)
        *err = 0;
    int rc = 0;
    json_t *result = json_null ();
    if (reply->result && *reply->result) {
        json_error_t jerr;
        json_t *parsed = json_loads (reply->result, JSON_DECODE_ANY, &jerr);
        if (parsed) {
            json_decref (result);
            result = parsed;
            s_scrub_json (result, NULL);
        } else
            rc = bf_err_set (err, errsize, "control's result is not JSON (line %d: %s)", jerr.line,
                             jerr.text);
    }
    char command_id[256], error[4096];
    bf_billctl_scrub (reply->command_id, command_id, sizeof command_id);
    bf_billctl_scrub (reply->error, error, sizeof error);
    json_t *doc
        = json_pack ("{s:s, s:s, s:b, s:o, s:s?}", "command_id", command_id, "status",
                     bf_client_status_name (reply->status), "replayed", reply->replayed ? 1 : 0,
                     "result", result, "error", *error ? error : NULL);
    if (!doc)
        return bf_err_set (err, errsize, "cannot build the JSON output");
    if (s_dump_line (out, doc) != 0)
        rc = bf_err_set (err, errsize, "cannot write the JSON output");
    json_decref (doc);
    return rc;
}

int
bf_billctl_result_json (FILE *out, const char *json, char *err, size_t errsize)
{
    if (err && errsize)
        *err = 0;
    json_error_t jerr;
    json_t *doc = json && *json ? json_loads (json, 0, &jerr) : NULL;
    if (!doc) {
        if (json && *json)
            return bf_err_set (err, errsize, "control's result is not JSON (line %d: %s)",
                               jerr.line, jerr.text);
        return bf_err_set (err, errsize, "control's answer has no result");
    }
    s_scrub_json (doc, NULL);
    int rc = s_dump_line (out, doc);
    json_decref (doc);
    return rc == 0 ? 0 : bf_err_set (err, errsize, "cannot write the JSON output");
}
