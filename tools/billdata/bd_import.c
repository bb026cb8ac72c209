/*  bd_import — validating, streaming, all-or-nothing loader.

    Rows are validated one by one; while the input is clean they stream into
    PostgreSQL over COPY (the database ingests on one core while we parse on
    the other). Checks that need a whole table (overlapping ranges, key
    collisions with existing rows) run when the table ends. The first error
    stops all database work; validation goes on so the operator gets every bad
    row in one pass, and finish() rolls the transaction back.  */

#include <czmq.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "bd_import.h"
#include "bd_csv.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_log.h"
#include "bf_text.h"

/*  Upper bounds that keep every product in rating inside int64:
    quantity (1e12) x rate (1e6 mwon) and fee (1e12) x days (31).  */
#define S_MAX_MONEY    1000000000000LL
#define S_MAX_QUANTITY 1000000000000LL
#define S_MAX_RATE     1000000LL
#define S_MAX_NAME     300
#define S_MAX_TOKEN    512
#define S_MAX_PERIODS  64

/*  --- small containers ---------------------------------------------------- */

/*  Set of positive 64-bit ids, open addressing (0 marks an empty slot).  */
typedef struct {
    uint64_t *slots;
    size_t cap, count;
} s_idset_t;

static size_t
s_id_hash (uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

/*  Returns 1 when added, 0 when present, -1 out of memory.  */
static int
s_idset_add (s_idset_t *set, uint64_t id)
{
    if ((set->count + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1 << 16;
        uint64_t *slots = calloc (cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < set->cap; i++)
            if (set->slots[i]) {
                size_t j = s_id_hash (set->slots[i], cap);
                while (slots[j])
                    j = (j + 1) & (cap - 1);
                slots[j] = set->slots[i];
            }
        free (set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    size_t j = s_id_hash (id, set->cap);
    while (set->slots[j]) {
        if (set->slots[j] == id)
            return 0;
        j = (j + 1) & (set->cap - 1);
    }
    set->slots[j] = id;
    set->count++;
    return 1;
}

static bool
s_idset_has (const s_idset_t *set, uint64_t id)
{
    if (!set->cap)
        return false;
    size_t j = s_id_hash (id, set->cap);
    while (set->slots[j]) {
        if (set->slots[j] == id)
            return true;
        j = (j + 1) & (set->cap - 1);
    }
    return false;
}

/*  Set of short codes (plans, add-ons); each gets a small integer index.  */
typedef struct {
    char **codes;
    size_t count, cap;
} s_codeset_t;

static int
s_codeset_find (const s_codeset_t *set, const char *code)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp (set->codes[i], code) == 0)
            return (int)i;
    return -1;
}

static int
s_codeset_add (s_codeset_t *set, const char *code)
{
    int found = s_codeset_find (set, code);
    if (found >= 0)
        return found;
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        char **codes = realloc (set->codes, cap * sizeof *codes);
        if (!codes)
            return -1;
        set->codes = codes;
        set->cap = cap;
    }
    set->codes[set->count] = strdup (code);
    if (!set->codes[set->count])
        return -1;
    return (int)set->count++;
}

static void
s_codeset_free (s_codeset_t *set)
{
    for (size_t i = 0; i < set->count; i++)
        free (set->codes[i]);
    free (set->codes);
    memset (set, 0, sizeof *set);
}

/*  A validity range of one subscriber, for overlap and duplicate checks.  */
typedef struct {
    int64_t sub;
    int32_t key; /* add-on code index; 0 for plans and contracts */
    bf_day_t from, to;
    long line;
} s_range_t;

/*  --- the import ------------------------------------------------------------ */

struct bd_import_t {
    bd_sink_t sink; /* first: the sink pointer is the import */
    PGconn *conn;
    bd_import_opts_t opts;
    bool db_failed; /* a statement failed: nothing more is sent */
    bool stopped;   /* max_errors reached */
    char **errors;
    long nerrors;
    bd_table_t table;
    long line;
    int64_t rows[BD_TABLE_COUNT];
    int64_t seen[BD_TABLE_COUNT];   /* rows offered, good or bad */
    double seconds[BD_TABLE_COUNT]; /* from begin to end of each table */
    double started;
    bf_copy_t *copy;
    const char *copy_sql;
    bool staging;                      /* subscribers go through a temp table */
    s_codeset_t plans, addons;         /* codes known: database + this import */
    s_codeset_t new_plans, new_addons; /* codes defined by this import */
    s_idset_t subs;                    /* subscriber ids of this import */
    s_range_t *ranges;
    size_t nranges, ranges_cap;
    char periods[BD_TABLE_COUNT][S_MAX_PERIODS][8];
    int nperiods[BD_TABLE_COUNT];
};

static bool
s_clean (const bd_import_t *self)
{
    return self->nerrors == 0 && !self->db_failed;
}

/*  Records a bad row. column may be NULL for row-level problems.  */
static void s_error (bd_import_t *self, const char *column, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_error (bd_import_t *self, const char *column, const char *format, ...)
{
    if (self->stopped)
        return;
    char reason[512];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    char line[768];
    if (column)
        snprintf (line, sizeof line, "%s:%ld: column %s: %s", bd_tables[self->table].file,
                  self->line, column, reason);
    else
        snprintf (line, sizeof line, "%s:%ld: %s", bd_tables[self->table].file, self->line, reason);
    if (self->nerrors == 0 && self->copy)
        bf_copy_end (&self->copy, "input has errors");
    char *copy = strdup (line);
    char **errors = realloc (self->errors, (size_t)(self->nerrors + 1) * sizeof *errors);
    if (!copy || !errors) {
        free (copy);
        if (errors)
            self->errors = errors;
        self->stopped = true;
        return;
    }
    self->errors = errors;
    self->errors[self->nerrors++] = copy;
    if (self->nerrors >= self->opts.max_errors)
        self->stopped = true;
}

static void
s_db_failed (bd_import_t *self)
{
    self->db_failed = true;
    if (self->copy)
        bf_copy_end (&self->copy, "database failure");
}

static bool
s_exec (bd_import_t *self, const char *sql, const char *what)
{
    if (!s_clean (self))
        return false;
    if (bf_db_exec (self->conn, sql, what) != BF_DB_OK) {
        s_db_failed (self);
        return false;
    }
    return true;
}

static bool
s_exec_params (bd_import_t *self, const char *sql, int n, const char *const *params,
               const char *what)
{
    if (!s_clean (self))
        return false;
    PGresult *res = bf_db_query (self->conn, sql, n, params, PGRES_COMMAND_OK, what);
    if (!res) {
        s_db_failed (self);
        return false;
    }
    PQclear (res);
    return true;
}

static bool
s_copy_open (bd_import_t *self)
{
    if (!s_clean (self) || self->copy || !self->copy_sql)
        return s_clean (self);
    self->copy = bf_copy_begin (self->conn, self->copy_sql);
    if (!self->copy)
        s_db_failed (self);
    return self->copy != NULL;
}

static void
s_copy_close (bd_import_t *self)
{
    if (self->copy && bf_copy_end (&self->copy, NULL) != BF_DB_OK)
        s_db_failed (self);
}

static void
s_copy_row_end (bd_import_t *self)
{
    if (self->copy && bf_copy_row_end (self->copy) != BF_DB_OK)
        s_db_failed (self);
}

/*  --- field parsers: each reports its own error and returns false --------- */

static bool
s_required (bd_import_t *self, const char *column, const char *value)
{
    if (value)
        return true;
    s_error (self, column, "is required");
    return false;
}

/*  Strict decimal integer in [min, max].  */
static bool
s_int (bd_import_t *self, const char *column, const char *text, int64_t min, int64_t max,
       int64_t *out)
{
    if (!s_required (self, column, text))
        return false;
    const char *p = text;
    bool negative = *p == '-';
    if (negative)
        p++;
    if (!*p)
        goto bad;
    uint64_t value = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        if (value > (UINT64_MAX - 9) / 10)
            goto range;
        value = value * 10 + (uint64_t)(*p - '0');
    }
    if (value > (uint64_t)INT64_MAX)
        goto range;
    int64_t v = negative ? -(int64_t)value : (int64_t)value;
    if (v < min || v > max)
        goto range;
    *out = v;
    return true;
bad:
    s_error (self, column, "'%s' is not an integer", BF_TEXT_SHOW (text, 40));
    return false;
range:
    s_error (self, column, "%s is out of range [%lld, %lld]", BF_TEXT_SHOW (text, 40), (long long)min,
             (long long)max);
    return false;
}

static bool
s_date (bd_import_t *self, const char *column, const char *text, bf_day_t *out)
{
    if (!s_required (self, column, text))
        return false;
    if (bf_date_parse (text, out) == 0)
        return true;
    s_error (self, column, "'%s' is not a date (YYYY-MM-DD)", BF_TEXT_SHOW (text, 40));
    return false;
}

/*  valid_from, valid_to (optional, > from).  */
static bool
s_range (bd_import_t *self, const char *from_text, const char *to_text, bf_day_t *from,
         bf_day_t *to)
{
    if (!s_date (self, "valid_from", from_text, from))
        return false;
    *to = BF_DAY_OPEN;
    if (!to_text)
        return true;
    if (!s_date (self, "valid_to", to_text, to))
        return false;
    if (*to > *from)
        return true;
    s_error (self, "valid_to", "%s is not after valid_from %s", to_text, from_text);
    return false;
}

static bool
s_period (bd_import_t *self, const char *text)
{
    bf_period_t period;
    if (!s_required (self, "period", text))
        return false;
    if (bf_period_parse (text, &period) == 0)
        return true;
    s_error (self, "period", "'%s' is not a period (YYYY-MM)", BF_TEXT_SHOW (text, 40));
    return false;
}

static bool
s_code (bd_import_t *self, const char *column, const char *text)
{
    if (!s_required (self, column, text))
        return false;
    size_t len = strlen (text);
    bool ok = len >= 1 && len <= 32;
    for (size_t i = 0; ok && i < len; i++) {
        char c = text[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
             || c == '-';
    }
    if (!ok)
        s_error (self, column, "'%s' is not a code (1-32 of A-Z a-z 0-9 _ -)",
                 BF_TEXT_SHOW (text, 40));
    return ok;
}

/*  Printable text without control characters, 1..max bytes.  */
static bool
s_text (bd_import_t *self, const char *column, const char *text, size_t max)
{
    if (!s_required (self, column, text))
        return false;
    size_t len = strlen (text);
    if (len > max) {
        s_error (self, column, "longer than %zu bytes", max);
        return false;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) {
            s_error (self, column, "contains a control character");
            return false;
        }
    return true;
}

static bool
s_email (bd_import_t *self, const char *text)
{
    size_t len = strlen (text);
    const char *at = strchr (text, '@');
    bool ok = len >= 3 && len <= 254 && at && at != text && at[1] && !strchr (at + 1, '@')
              && strchr (at + 1, '.') && (size_t)(at - text) <= 64;
    for (size_t i = 0; ok && i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        /*  No spaces, controls or characters that could break a mail header.  */
        ok = c > 0x20 && c != 0x7f && !strchr ("<>()[],;:\\\"", c);
    }
    if (!ok) {
        char masked[BF_MASK_MAX];
        s_error (self, "email", "'%s' is not an email address",
                 bf_mask_email (text, masked, sizeof masked));
    }
    return ok;
}

/*  Korean mobile number, 010-1234-5678 or 01012345678 (01X prefixes, 3- or
    4-digit middle part); the digits go to out.  */
static bool
s_phone (bd_import_t *self, const char *text, char out[16])
{
    size_t n = 0, len = strlen (text);
    bool ok = len >= 10 && len <= 13;
    for (size_t i = 0; ok && i < len; i++) {
        if (text[i] >= '0' && text[i] <= '9')
            out[n++] = text[i];
        else if (text[i] != '-')
            ok = false;
    }
    out[n] = 0;
    ok = ok && (n == 10 || n == 11) && out[0] == '0' && out[1] == '1' && strchr ("016789", out[2]);
    if (ok && strchr (text, '-'))
        /*  Dashed form: exactly 01X-XXX(X)-XXXX.  */
        ok = len == n + 2 && text[3] == '-' && text[len - 5] == '-';
    if (!ok) {
        char masked[BF_MASK_MAX];
        s_error (self, "phone", "'%s' is not a Korean mobile number (010-1234-5678)",
                 bf_mask_phone (text, masked, sizeof masked));
    }
    return ok;
}

/*  "EMAIL+SMS" -> mask bits 1 EMAIL, 2 SMS, 4 PUSH and "{EMAIL,SMS}".  */
static bool
s_channels (bd_import_t *self, const char *text, int *mask, char out[32])
{
    static const char *names[] = { "EMAIL", "SMS", "PUSH" };
    if (!s_required (self, "channels", text))
        return false;
    *mask = 0;
    const char *p = text;
    while (true) {
        const char *end = strchr (p, '+');
        size_t len = end ? (size_t)(end - p) : strlen (p);
        int bit = -1;
        for (int i = 0; i < 3; i++)
            if (strlen (names[i]) == len && strncmp (p, names[i], len) == 0)
                bit = i;
        if (bit < 0) {
            s_error (self, "channels", "'%s': channels are EMAIL, SMS, PUSH joined by '+'",
                     BF_TEXT_SHOW (text, 40));
            return false;
        }
        if (*mask & (1 << bit)) {
            s_error (self, "channels", "'%s' names %s twice", BF_TEXT_SHOW (text, 40), names[bit]);
            return false;
        }
        *mask |= 1 << bit;
        if (!end)
            break;
        p = end + 1;
    }
    strcpy (out, "{");
    for (int i = 0; i < 3; i++)
        if (*mask & (1 << i)) {
            if (out[1])
                strcat (out, ",");
            strcat (out, names[i]);
        }
    strcat (out, "}");
    return true;
}

static bool
s_known_subscriber (bd_import_t *self, const char *text, int64_t *id)
{
    if (!s_int (self, "subscriber_id", text, 1, INT64_MAX, id))
        return false;
    if (s_idset_has (&self->subs, (uint64_t)*id))
        return true;
    s_error (self, "subscriber_id", "subscriber %lld is not in this import's subscribers.csv",
             (long long)*id);
    return false;
}

/*  First time a fact table meets a period: create its partitions and, with
    replace, clear the replaced subscribers' rows of that period.  */
static bool
s_fact_period (bd_import_t *self, const char *period)
{
    bd_table_t t = self->table;
    for (int i = self->nperiods[t] - 1; i >= 0; i--)
        if (strcmp (self->periods[t][i], period) == 0)
            return true;
    if (self->nperiods[t] == S_MAX_PERIODS) {
        s_error (self, "period", "more than %d different periods in one file", S_MAX_PERIODS);
        return false;
    }
    snprintf (self->periods[t][self->nperiods[t]++], 8, "%s", period);
    if (!s_clean (self))
        return true;
    s_copy_close (self);
    const char *params[] = { period };
    PGresult *res = bf_db_query (self->conn, "SELECT bf_ensure_period ($1)", 1, params,
                                 PGRES_TUPLES_OK, "creating period partitions");
    if (!res) {
        s_db_failed (self);
        return false;
    }
    PQclear (res);
    if (self->opts.replace && self->staging) {
        static const char *deletes[BD_TABLE_COUNT] = {
            [BD_USAGE] = "DELETE FROM usage_record WHERE period = $1 AND subscriber_id IN "
                         "(SELECT id FROM bd_import_subscriber)",
            [BD_CHARGES] = "DELETE FROM charge WHERE period = $1 AND subscriber_id IN "
                           "(SELECT id FROM bd_import_subscriber)",
            [BD_ARREARS] = "DELETE FROM arrears WHERE period = $1 AND subscriber_id IN "
                           "(SELECT id FROM bd_import_subscriber)",
        };
        if (!s_exec_params (self, deletes[t], 1, params, "replacing facts of a period"))
            return false;
    }
    return s_copy_open (self);
}

static void
s_add_range (bd_import_t *self, int64_t sub, int32_t key, bf_day_t from, bf_day_t to)
{
    if (self->nranges == self->ranges_cap) {
        size_t cap = self->ranges_cap ? self->ranges_cap * 2 : 1 << 16;
        s_range_t *ranges = realloc (self->ranges, cap * sizeof *ranges);
        if (!ranges) {
            s_error (self, NULL, "out of memory");
            return;
        }
        self->ranges = ranges;
        self->ranges_cap = cap;
    }
    self->ranges[self->nranges++] = (s_range_t){ sub, key, from, to, self->line };
}

static int
s_range_cmp (const void *a, const void *b)
{
    const s_range_t *x = a, *y = b;
    if (x->sub != y->sub)
        return x->sub < y->sub ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/*  Ranges of one subscriber (and key) may not overlap.  */
static void
s_check_overlaps (bd_import_t *self, const char *column, const char *what)
{
    qsort (self->ranges, self->nranges, sizeof *self->ranges, s_range_cmp);
    for (size_t i = 1; i < self->nranges && !self->stopped; i++) {
        const s_range_t *prev = &self->ranges[i - 1], *cur = &self->ranges[i];
        if (prev->sub != cur->sub || prev->key != cur->key || prev->to <= cur->from)
            continue;
        long line = self->line;
        self->line = cur->line > prev->line ? cur->line : prev->line;
        s_error (self, column, "%s of subscriber %lld overlaps the one on line %ld", what,
                 (long long)cur->sub, cur->line > prev->line ? prev->line : cur->line);
        self->line = line;
    }
    self->nranges = 0;
}

/*  --- rows per table ------------------------------------------------------- */

static void
s_row_plan (bd_import_t *self, const char *const *f)
{
    int64_t fee, allow[3], rates[3];
    bool ok = s_code (self, "code", f[0]) && s_text (self, "name", f[1], S_MAX_NAME)
              && s_int (self, "monthly_fee", f[2], 0, S_MAX_MONEY, &fee);
    for (int i = 0; ok && i < 3; i++)
        ok = !f[3 + i]
             || s_int (self, bd_tables[BD_PLANS].cols[3 + i], f[3 + i], 0, S_MAX_QUANTITY,
                       &allow[i]);
    for (int i = 0; ok && i < 3; i++)
        ok = s_int (self, bd_tables[BD_PLANS].cols[6 + i], f[6 + i], 0, S_MAX_RATE, &rates[i]);
    if (!ok)
        return;
    if (s_codeset_find (&self->new_plans, f[0]) >= 0) {
        s_error (self, "code", "plan %s appears twice", f[0]);
        return;
    }
    if (!self->opts.replace && s_codeset_find (&self->plans, f[0]) >= 0) {
        s_error (self, "code", "plan %s already exists (import with --replace to update it)", f[0]);
        return;
    }
    s_codeset_add (&self->new_plans, f[0]);
    s_codeset_add (&self->plans, f[0]);
    if (s_exec_params (self,
                       "INSERT INTO plan (code, name, monthly_fee, data_mb, voice_min, sms,"
                       " data_rate_mwon, voice_rate_mwon, sms_rate_mwon)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                       " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
                       " monthly_fee = EXCLUDED.monthly_fee, data_mb = EXCLUDED.data_mb,"
                       " voice_min = EXCLUDED.voice_min, sms = EXCLUDED.sms,"
                       " data_rate_mwon = EXCLUDED.data_rate_mwon,"
                       " voice_rate_mwon = EXCLUDED.voice_rate_mwon,"
                       " sms_rate_mwon = EXCLUDED.sms_rate_mwon",
                       9, f, "inserting a plan"))
        self->rows[BD_PLANS]++;
}

static void
s_row_addon (bd_import_t *self, const char *const *f)
{
    int64_t fee;
    if (!(s_code (self, "code", f[0]) && s_text (self, "name", f[1], S_MAX_NAME)
          && s_int (self, "monthly_fee", f[2], 0, S_MAX_MONEY, &fee)))
        return;
    if (s_codeset_find (&self->new_addons, f[0]) >= 0) {
        s_error (self, "code", "add-on %s appears twice", f[0]);
        return;
    }
    if (!self->opts.replace && s_codeset_find (&self->addons, f[0]) >= 0) {
        s_error (self, "code", "add-on %s already exists (import with --replace to update it)",
                 f[0]);
        return;
    }
    s_codeset_add (&self->new_addons, f[0]);
    s_codeset_add (&self->addons, f[0]);
    if (s_exec_params (self,
                       "INSERT INTO addon (code, name, monthly_fee) VALUES ($1, $2, $3)"
                       " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
                       " monthly_fee = EXCLUDED.monthly_fee",
                       3, f, "inserting an add-on"))
        self->rows[BD_ADDONS]++;
}

static void
s_copy_sealed (bd_import_t *self, const char *field, int64_t id, const char *value, bool hash)
{
    if (!value) {
        bf_copy_null (self->copy);
        if (hash)
            bf_copy_null (self->copy);
        return;
    }
    uint8_t sealed[S_MAX_TOKEN + BF_PII_OVERHEAD + 8];
    size_t len = bf_pii_seal (self->opts.pii, field, (uint64_t)id, value, strlen (value), sealed,
                              sizeof sealed);
    bf_copy_bytea (self->copy, sealed, len);
    if (hash) {
        uint8_t digest[BF_PII_HASH_LEN];
        bf_pii_hash (self->opts.pii, field, value, digest);
        bf_copy_bytea (self->copy, digest, sizeof digest);
    }
}

/*  subscribers.csv's columns (docs/data-format.md), in order.  */
enum {
    S_SUB_ID,
    S_SUB_NAME,
    S_SUB_EMAIL,
    S_SUB_PHONE,
    S_SUB_ACTIVATED_ON,
    S_SUB_TERMINATED_ON,
    S_SUB_CUSTOMER_SINCE,
    S_SUB_FAMILY_ID,
    S_SUB_WELFARE_GRADE,
    S_SUB_PAY_DAY,
    S_SUB_CHANNELS,
    S_SUB_QUIET_START,
    S_SUB_QUIET_END,
    S_SUB_PUSH_TOKEN
};

/*  A subscriber row's values as parsed; the other columns are copied as
    they are.  */
typedef struct {
    int64_t id, family, pay_day;
    bf_day_t activated, terminated, since;
    int channels; /* bits 1 EMAIL, 2 SMS, 4 PUSH */
    char phone[16], chan_text[32];
} s_subscriber_t;

static bool
s_welfare_grade (bd_import_t *self, const char *text)
{
    if (!text || !strcmp (text, "DISABLED") || !strcmp (text, "LOW_INCOME")
        || !strcmp (text, "SENIOR"))
        return true;
    s_error (self, "welfare_grade", "'%s' is not DISABLED, LOW_INCOME or SENIOR",
             BF_TEXT_SHOW (text, 40));
    return false;
}

static bool
s_pay_day (bd_import_t *self, const char *text, int64_t *pay_day)
{
    if (!s_int (self, "pay_day", text, 1, 31, pay_day))
        return false;
    if (*pay_day % 5 || *pay_day > 25) {
        s_error (self, "pay_day", "%lld is not one of 5, 10, 15, 20, 25", (long long)*pay_day);
        return false;
    }
    return true;
}

/*  quiet_start and quiet_end: times, both or neither.  */
static bool
s_quiet_hours (bd_import_t *self, const char *start, const char *end)
{
    bool ok = true;
    int minutes;
    if (start && bf_time_parse (start, &minutes) != 0) {
        s_error (self, "quiet_start", "'%s' is not a time (HH:MM)", BF_TEXT_SHOW (start, 40));
        ok = false;
    }
    if (end && bf_time_parse (end, &minutes) != 0) {
        s_error (self, "quiet_end", "'%s' is not a time (HH:MM)", BF_TEXT_SHOW (end, 40));
        ok = false;
    }
    if (!start != !end) {
        s_error (self, start ? "quiet_end" : "quiet_start",
                 "quiet_start and quiet_end come together or not at all");
        ok = false;
    }
    return ok;
}

/*  An optional push token: 1-S_MAX_TOKEN printable ASCII characters.  */
static bool
s_push_token (bd_import_t *self, const char *text)
{
    if (!text)
        return true;
    size_t len = strlen (text);
    bool ok = len <= S_MAX_TOKEN;
    for (size_t i = 0; ok && i < len; i++)
        ok = (text[i] > 0x20 && text[i] < 0x7f);
    if (!ok)
        s_error (self, "push_token", "must be 1-%d printable ASCII characters", S_MAX_TOKEN);
    return ok;
}

/*  Parses every column after the id into sub, reporting each bad one.  */
static bool
s_subscriber_fields (bd_import_t *self, const char *const *f, s_subscriber_t *sub)
{
    bool ok = s_text (self, "name", f[S_SUB_NAME], S_MAX_NAME);
    ok = (!f[S_SUB_EMAIL] || s_email (self, f[S_SUB_EMAIL])) && ok;
    ok = s_required (self, "phone", f[S_SUB_PHONE]) && s_phone (self, f[S_SUB_PHONE], sub->phone)
         && ok;
    ok = s_date (self, "activated_on", f[S_SUB_ACTIVATED_ON], &sub->activated) && ok;
    ok = (!f[S_SUB_TERMINATED_ON]
          || s_date (self, "terminated_on", f[S_SUB_TERMINATED_ON], &sub->terminated))
         && ok;
    ok = s_date (self, "customer_since", f[S_SUB_CUSTOMER_SINCE], &sub->since) && ok;
    ok = (!f[S_SUB_FAMILY_ID]
          || s_int (self, "family_id", f[S_SUB_FAMILY_ID], 1, INT64_MAX, &sub->family))
         && ok;
    ok = s_welfare_grade (self, f[S_SUB_WELFARE_GRADE]) && ok;
    ok = s_pay_day (self, f[S_SUB_PAY_DAY], &sub->pay_day) && ok;
    ok = s_channels (self, f[S_SUB_CHANNELS], &sub->channels, sub->chan_text) && ok;
    ok = s_quiet_hours (self, f[S_SUB_QUIET_START], f[S_SUB_QUIET_END]) && ok;
    ok = s_push_token (self, f[S_SUB_PUSH_TOKEN]) && ok;
    return ok;
}

/*  The rules between columns, checked once every column parsed: the first
    broken one is reported.  */
static bool
s_subscriber_consistent (bd_import_t *self, const char *const *f, const s_subscriber_t *sub)
{
    if (f[S_SUB_TERMINATED_ON] && sub->terminated <= sub->activated) {
        s_error (self, "terminated_on", "%s is not after activated_on %s", f[S_SUB_TERMINATED_ON],
                 f[S_SUB_ACTIVATED_ON]);
        return false;
    }
    if (sub->since > sub->activated) {
        s_error (self, "customer_since", "%s is after activated_on %s", f[S_SUB_CUSTOMER_SINCE],
                 f[S_SUB_ACTIVATED_ON]);
        return false;
    }
    if ((sub->channels & 1) && !f[S_SUB_EMAIL]) {
        s_error (self, "email", "is required: channels include EMAIL");
        return false;
    }
    if ((sub->channels & 4) && !f[S_SUB_PUSH_TOKEN]) {
        s_error (self, "push_token", "is required: channels include PUSH");
        return false;
    }
    return true;
}

/*  The subscriber's row for COPY, contacts sealed (email and phone with
    their lookup hashes).  */
static void
s_copy_subscriber (bd_import_t *self, const char *const *f, const s_subscriber_t *sub)
{
    bf_copy_int (self->copy, sub->id);
    bf_copy_str (self->copy, f[S_SUB_NAME]);
    s_copy_sealed (self, "email", sub->id, f[S_SUB_EMAIL], true);
    s_copy_sealed (self, "phone", sub->id, sub->phone, true);
    s_copy_sealed (self, "push_token", sub->id, f[S_SUB_PUSH_TOKEN], false);
    bf_copy_str (self->copy, f[S_SUB_ACTIVATED_ON]);
    bf_copy_str (self->copy, f[S_SUB_TERMINATED_ON]);
    bf_copy_str (self->copy, f[S_SUB_CUSTOMER_SINCE]);
    bf_copy_str (self->copy, f[S_SUB_FAMILY_ID]);
    bf_copy_str (self->copy, f[S_SUB_WELFARE_GRADE]);
    bf_copy_int (self->copy, sub->pay_day);
    bf_copy_str (self->copy, sub->chan_text);
    bf_copy_str (self->copy, f[S_SUB_QUIET_START]);
    bf_copy_str (self->copy, f[S_SUB_QUIET_END]);
    if (self->staging)
        bf_copy_int (self->copy, self->line);
    s_copy_row_end (self);
}

static void
s_row_subscriber (bd_import_t *self, const char *const *f)
{
    s_subscriber_t sub = { 0 };
    if (!s_int (self, "id", f[S_SUB_ID], 1, INT64_MAX, &sub.id))
        return;
    if (!s_subscriber_fields (self, f, &sub) || !s_subscriber_consistent (self, f, &sub))
        return;
    int added = s_idset_add (&self->subs, (uint64_t)sub.id);
    if (added <= 0) {
        s_error (self, "id", added == 0 ? "subscriber %lld appears twice" : "out of memory (%lld)",
                 (long long)sub.id);
        return;
    }
    if (!s_copy_open (self))
        return;
    s_copy_subscriber (self, f, &sub);
    self->rows[BD_SUBSCRIBERS]++;
}

/*  plan_assignments, addon_subscriptions, contracts: subscriber, code, range.  */
static void
s_row_segment (bd_import_t *self, const char *const *f)
{
    int64_t sub;
    bf_day_t from, to;
    int32_t key = 0;
    bool ok = s_known_subscriber (self, f[0], &sub);
    if (self->table == BD_CONTRACTS) {
        if (s_required (self, "kind", f[1]) && strcmp (f[1], "SELECTIVE_25") != 0) {
            s_error (self, "kind", "'%s' is not a contract kind (SELECTIVE_25)",
                     BF_TEXT_SHOW (f[1], 40));
            ok = false;
        } else if (!f[1])
            ok = false;
    } else {
        bool plan = self->table == BD_PLAN_ASSIGNMENTS;
        const char *column = plan ? "plan_code" : "addon_code";
        if (s_code (self, column, f[1])) {
            key = s_codeset_find (plan ? &self->plans : &self->addons, f[1]);
            if (key < 0) {
                s_error (self, column, "%s %s is neither in this import nor in the database",
                         plan ? "plan" : "add-on", f[1]);
                ok = false;
            }
            if (plan)
                key = 0;
        } else
            ok = false;
    }
    ok = s_range (self, f[2], f[3], &from, &to) && ok;
    if (!ok)
        return;
    s_add_range (self, sub, key, from, to);
    if (!s_copy_open (self))
        return;
    bf_copy_int (self->copy, sub);
    bf_copy_str (self->copy, f[1]);
    bf_copy_str (self->copy, f[2]);
    bf_copy_str (self->copy, f[3]);
    s_copy_row_end (self);
    self->rows[self->table]++;
}

static void
s_row_usage (bd_import_t *self, const char *const *f)
{
    int64_t sub, quantity;
    bool ok = s_known_subscriber (self, f[0], &sub);
    ok = s_period (self, f[1]) && ok;
    if (s_required (self, "kind", f[2]) && strcmp (f[2], "DATA_MB") && strcmp (f[2], "VOICE_SEC")
        && strcmp (f[2], "SMS")) {
        s_error (self, "kind", "'%s' is not DATA_MB, VOICE_SEC or SMS",
                 BF_TEXT_SHOW (f[2], 40));
        ok = false;
    }
    ok = f[2] && s_int (self, "quantity", f[3], 0, S_MAX_QUANTITY, &quantity) && ok;
    if (!ok || !s_fact_period (self, f[1]) || !s_clean (self))
        return;
    bf_copy_str (self->copy, f[1]);
    bf_copy_int (self->copy, sub);
    bf_copy_str (self->copy, f[2]);
    bf_copy_int (self->copy, quantity);
    s_copy_row_end (self);
    self->rows[BD_USAGE]++;
}

static void
s_row_charge (bd_import_t *self, const char *const *f)
{
    int64_t sub, amount;
    bool ok = s_known_subscriber (self, f[0], &sub);
    ok = s_period (self, f[1]) && ok;
    bool taxable_kind = false;
    if (!s_required (self, "kind", f[2]))
        ok = false;
    else if (!strcmp (f[2], "CONTENT") || !strcmp (f[2], "ADJUSTMENT"))
        taxable_kind = true;
    else if (strcmp (f[2], "DEVICE_INSTALLMENT") && strcmp (f[2], "MICRO_PAYMENT")) {
        s_error (self, "kind",
                 "'%s' is not DEVICE_INSTALLMENT, MICRO_PAYMENT, CONTENT or ADJUSTMENT",
                 BF_TEXT_SHOW (f[2], 40));
        ok = false;
    }
    bool adjustment = f[2] && !strcmp (f[2], "ADJUSTMENT");
    ok = s_int (self, "amount", f[3], adjustment ? -S_MAX_MONEY : 0, S_MAX_MONEY, &amount) && ok;
    if (!s_required (self, "taxable", f[4]))
        ok = false;
    else if (strcmp (f[4], "true") && strcmp (f[4], "false")) {
        s_error (self, "taxable", "'%s' is not true or false", BF_TEXT_SHOW (f[4], 40));
        ok = false;
    } else if (ok && (strcmp (f[4], "true") == 0) != taxable_kind) {
        s_error (self, "taxable", "%s charges are %s (billing-rules.md)", f[2],
                 taxable_kind ? "taxable" : "not taxable");
        ok = false;
    }
    if (!ok || !s_fact_period (self, f[1]) || !s_clean (self))
        return;
    bf_copy_str (self->copy, f[1]);
    bf_copy_int (self->copy, sub);
    /*  The line number orders a subscriber's charges as in the file.  */
    bf_copy_int (self->copy, self->line);
    bf_copy_str (self->copy, f[2]);
    bf_copy_int (self->copy, amount);
    bf_copy_str (self->copy, f[4]);
    s_copy_row_end (self);
    self->rows[BD_CHARGES]++;
}

static void
s_row_arrears (bd_import_t *self, const char *const *f)
{
    int64_t sub, amount;
    bool ok = s_known_subscriber (self, f[0], &sub);
    ok = s_period (self, f[1]) && ok;
    ok = s_int (self, "amount", f[2], 0, S_MAX_MONEY, &amount) && ok;
    if (!ok)
        return;
    bf_period_t period;
    bf_period_parse (f[1], &period);
    /*  One arrears row per (subscriber, period): a range of one day per
        period (key 0) makes the overlap check find duplicates.  */
    bf_day_t day = bf_period_first_day (period);
    s_add_range (self, sub, 0, day, day + 1);
    if (!s_fact_period (self, f[1]) || !s_clean (self))
        return;
    bf_copy_int (self->copy, sub);
    bf_copy_str (self->copy, f[1]);
    bf_copy_int (self->copy, amount);
    s_copy_row_end (self);
    self->rows[BD_ARREARS]++;
}

static const char *s_copy_sql[BD_TABLE_COUNT] = {
    [BD_SUBSCRIBERS] = "COPY subscriber (id, name, email_enc, email_hash, phone_enc, phone_hash,"
                       " push_token_enc, activated_on, terminated_on, customer_since, family_id,"
                       " welfare_grade, pay_day, channels, quiet_start, quiet_end) FROM STDIN",
    [BD_PLAN_ASSIGNMENTS] = "COPY plan_assignment (subscriber_id, plan_code, valid_from, valid_to)"
                            " FROM STDIN",
    [BD_ADDON_SUBSCRIPTIONS] = "COPY addon_subscription (subscriber_id, addon_code, valid_from,"
                               " valid_to) FROM STDIN",
    [BD_CONTRACTS] = "COPY contract (subscriber_id, kind, valid_from, valid_to) FROM STDIN",
    [BD_USAGE] = "COPY usage_record (period, subscriber_id, kind, quantity) FROM STDIN",
    [BD_CHARGES] = "COPY charge (period, subscriber_id, seq, kind, amount, taxable) FROM STDIN",
    [BD_ARREARS] = "COPY arrears (subscriber_id, period, amount) FROM STDIN",
};

#define S_SUBSCRIBER_COLS                                                                          \
    "id, name, email_enc, email_hash, phone_enc, phone_hash, push_token_enc, activated_on,"        \
    " terminated_on, customer_since, family_id, welfare_grade, pay_day, channels, quiet_start,"    \
    " quiet_end"

/*  --- sink callbacks --------------------------------------------------------- */

static int
s_begin (bd_sink_t *sink, bd_table_t table)
{
    bd_import_t *self = (bd_import_t *)sink;
    self->started = (zclock_usecs () / 1e6);
    self->table = table;
    self->line = 1;
    self->copy_sql = s_copy_sql[table];
    if (table == BD_SUBSCRIBERS && self->staging) {
        self->copy_sql = "COPY bd_import_subscriber (" S_SUBSCRIBER_COLS ", line) FROM STDIN";
        s_exec (self,
                "CREATE TEMP TABLE bd_import_subscriber"
                " (LIKE subscriber INCLUDING DEFAULTS, line bigint NOT NULL) ON COMMIT DROP",
                "creating the staging table");
    }
    return self->stopped || self->db_failed ? -1 : 0;
}

/*  Validates and loads one row, known to be line `line` of the table's file.  */
static int
s_row_at (bd_import_t *self, const char *const *fields, long line)
{
    self->line = line;
    self->seen[self->table]++;
    switch (self->table) {
        case BD_PLANS:
            s_row_plan (self, fields);
            break;
        case BD_ADDONS:
            s_row_addon (self, fields);
            break;
        case BD_SUBSCRIBERS:
            s_row_subscriber (self, fields);
            break;
        case BD_PLAN_ASSIGNMENTS:
        case BD_ADDON_SUBSCRIPTIONS:
        case BD_CONTRACTS:
            s_row_segment (self, fields);
            break;
        case BD_USAGE:
            s_row_usage (self, fields);
            break;
        case BD_CHARGES:
            s_row_charge (self, fields);
            break;
        case BD_ARREARS:
            s_row_arrears (self, fields);
            break;
        default:
            break;
    }
    return self->stopped || self->db_failed ? -1 : 0;
}

static int
s_row (bd_sink_t *sink, const char *const *fields)
{
    bd_import_t *self = (bd_import_t *)sink;
    return s_row_at (self, fields, self->line + 1);
}

/*  Subscribers staged in a temp table: report ids that exist already, or
    (replace) clear what the replaced subscribers had, then move them in.  */
static void
s_merge_subscribers (bd_import_t *self)
{
    if (!self->opts.replace) {
        char limit[24];
        snprintf (limit, sizeof limit, "%ld", self->opts.max_errors);
        const char *params[] = { limit };
        PGresult *res = bf_db_query (self->conn,
                                     "SELECT i.line, i.id FROM bd_import_subscriber i"
                                     " WHERE EXISTS (SELECT 1 FROM subscriber s WHERE s.id = i.id)"
                                     " ORDER BY i.line LIMIT $1::bigint",
                                     1, params, PGRES_TUPLES_OK, "checking existing subscribers");
        if (!res) {
            s_db_failed (self);
            return;
        }
        for (int i = 0; i < PQntuples (res); i++) {
            self->line = atol (PQgetvalue (res, i, 0));
            s_error (self, "id",
                     "subscriber %s already exists (import with --replace to update it)",
                     PQgetvalue (res, i, 1));
        }
        PQclear (res);
        s_exec (self,
                "INSERT INTO subscriber (" S_SUBSCRIBER_COLS ")"
                " SELECT " S_SUBSCRIBER_COLS " FROM bd_import_subscriber",
                "moving subscribers in");
        return;
    }
    s_exec (self,
            "DELETE FROM plan_assignment WHERE subscriber_id IN"
            " (SELECT id FROM bd_import_subscriber)",
            "replacing plan assignments");
    s_exec (self,
            "DELETE FROM addon_subscription WHERE subscriber_id IN"
            " (SELECT id FROM bd_import_subscriber)",
            "replacing add-on subscriptions");
    s_exec (self,
            "DELETE FROM contract WHERE subscriber_id IN"
            " (SELECT id FROM bd_import_subscriber)",
            "replacing contracts");
    s_exec (self,
            "INSERT INTO subscriber (" S_SUBSCRIBER_COLS ")"
            " SELECT " S_SUBSCRIBER_COLS " FROM bd_import_subscriber"
            " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
            " email_enc = EXCLUDED.email_enc, email_hash = EXCLUDED.email_hash,"
            " phone_enc = EXCLUDED.phone_enc, phone_hash = EXCLUDED.phone_hash,"
            " push_token_enc = EXCLUDED.push_token_enc,"
            " activated_on = EXCLUDED.activated_on, terminated_on = EXCLUDED.terminated_on,"
            " customer_since = EXCLUDED.customer_since, family_id = EXCLUDED.family_id,"
            " welfare_grade = EXCLUDED.welfare_grade, pay_day = EXCLUDED.pay_day,"
            " channels = EXCLUDED.channels, quiet_start = EXCLUDED.quiet_start,"
            " quiet_end = EXCLUDED.quiet_end, updated_at = now()",
            "replacing subscribers");
}

static int
s_end (bd_sink_t *sink, bd_table_t table)
{
    bd_import_t *self = (bd_import_t *)sink;
    s_copy_close (self);
    self->line = 0;
    switch (table) {
        case BD_SUBSCRIBERS:
            if (self->staging && s_clean (self))
                s_merge_subscribers (self);
            break;
        case BD_PLAN_ASSIGNMENTS:
            s_check_overlaps (self, "valid_from", "plan assignment");
            break;
        case BD_ADDON_SUBSCRIPTIONS:
            s_check_overlaps (self, "valid_from", "subscription to this add-on");
            break;
        case BD_CONTRACTS:
            s_check_overlaps (self, "valid_from", "contract");
            break;
        case BD_ARREARS:
            s_check_overlaps (self, "period", "arrears row for this period");
            break;
        default:
            break;
    }
    self->seconds[table] = (zclock_usecs () / 1e6) - self->started;
    return self->stopped || self->db_failed ? -1 : 0;
}

/*  --- public ------------------------------------------------------------------ */

static bool
s_load_codes (bd_import_t *self, const char *sql, s_codeset_t *set)
{
    PGresult *res = bf_db_query (self->conn, sql, 0, NULL, PGRES_TUPLES_OK, "reading codes");
    if (!res)
        return false;
    for (int i = 0; i < PQntuples (res); i++)
        if (s_codeset_add (set, PQgetvalue (res, i, 0)) < 0) {
            PQclear (res);
            return false;
        }
    PQclear (res);
    return true;
}

bd_import_t *
bd_import_new (PGconn *conn, const bd_import_opts_t *opts)
{
    if (!opts->pii) {
        bf_error ("import: no PII key: contacts cannot be stored unencrypted "
                  "(set pii.key_file or BILLFLOW_PII_KEY)");
        return NULL;
    }
    bd_import_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->conn = conn;
    self->opts = *opts;
    if (self->opts.max_errors < 1)
        self->opts.max_errors = 100;
    self->sink = (bd_sink_t){ s_begin, s_row, s_end };
    if (bf_db_begin (conn) != BF_DB_OK)
        goto fail;
    if (!s_load_codes (self, "SELECT code FROM plan", &self->plans)
        || !s_load_codes (self, "SELECT code FROM addon", &self->addons))
        goto fail;
    PGresult *res = bf_db_query (conn, "SELECT EXISTS (SELECT 1 FROM subscriber)", 0, NULL,
                                 PGRES_TUPLES_OK, "checking for subscribers");
    if (!res)
        goto fail;
    /*  Into an empty table nothing can collide: copy straight in.  */
    self->staging = opts->replace || strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    PQclear (res);
    return self;
fail:
    bd_import_destroy (&self);
    return NULL;
}

void
bd_import_destroy (bd_import_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bd_import_t *self = *self_p;
    if (self->copy)
        bf_copy_end (&self->copy, "import abandoned");
    bf_db_rollback (self->conn);
    for (long i = 0; i < self->nerrors; i++)
        free (self->errors[i]);
    free (self->errors);
    s_codeset_free (&self->plans);
    s_codeset_free (&self->addons);
    s_codeset_free (&self->new_plans);
    s_codeset_free (&self->new_addons);
    free (self->subs.slots);
    free (self->ranges);
    free (self);
    *self_p = NULL;
}

bd_sink_t *
bd_import_sink (bd_import_t *self)
{
    return &self->sink;
}

/*  Reads one CSV file through the sink, mapping its header.  */
static int
s_import_file (bd_import_t *self, bd_table_t table, const char *path)
{
    const bd_table_def_t *def = &bd_tables[table];
    char err[256];
    bd_csv_t *csv = bd_csv_open (path, err, sizeof err);
    if (!csv) {
        self->table = table;
        self->line = 0;
        s_error (self, NULL, "cannot read: %s", err);
        return -1;
    }
    int map[BD_MAX_COLUMNS]; /* file column -> canonical column */
    size_t nmap = 0;
    char **fields;
    size_t count;
    int rc = bd_csv_next (csv, &fields, &count);
    self->table = table;
    self->line = 1;
    if (rc <= 0) {
        self->line = rc < 0 ? bd_csv_error_line (csv) : 1;
        s_error (self, NULL, "%s",
                 rc < 0 ? bd_csv_error (csv) : "empty file: a header row is required");
        bd_csv_destroy (&csv);
        return -1;
    }
    bool seen[BD_MAX_COLUMNS] = { false };
    bool header_ok = count <= BD_MAX_COLUMNS;
    if (!header_ok)
        s_error (self, NULL, "header has %zu columns; %s has %zu", count, def->file, def->ncols);
    for (size_t i = 0; header_ok && i < count; i++) {
        int col = fields[i] ? bd_table_column (table, fields[i]) : -1;
        if (col < 0) {
            s_error (self, NULL, "unknown column '%s' in header", 
                     BF_TEXT_SHOW (fields[i], 64));
            header_ok = false;
        } else if (seen[col]) {
            s_error (self, NULL, "column '%s' appears twice in header", fields[i]);
            header_ok = false;
        } else {
            seen[col] = true;
            map[nmap++] = col;
        }
    }
    for (size_t c = 0; header_ok && c < def->ncols; c++)
        if (!seen[c]) {
            s_error (self, NULL, "missing column '%s' in header", def->cols[c]);
            header_ok = false;
        }
    if (!header_ok) {
        bd_csv_destroy (&csv);
        return -1;
    }
    if (s_begin (&self->sink, table) != 0) {
        bd_csv_destroy (&csv);
        return -1;
    }
    const char *row[BD_MAX_COLUMNS];
    int stop = 0;
    while (!stop && (rc = bd_csv_next (csv, &fields, &count)) != 0) {
        if (rc < 0) {
            self->line = bd_csv_error_line (csv);
            s_error (self, NULL, "column %ld: %s", bd_csv_error_column (csv), bd_csv_error (csv));
            stop = self->stopped;
            continue;
        }
        if (count != nmap) {
            self->line = bd_csv_line (csv);
            s_error (self, NULL, "%zu fields where the header has %zu", count, nmap);
            stop = self->stopped;
            continue;
        }
        for (size_t i = 0; i < nmap; i++)
            row[map[i]] = fields[i];
        stop = s_row_at (self, row, bd_csv_line (csv));
    }
    bd_csv_destroy (&csv);
    int end = s_end (&self->sink, table);
    return stop || end ? -1 : 0;
}

int
bd_import_dir (bd_import_t *self, const char *dir)
{
    /*  A misspelt file name would silently import nothing: name it.  */
    DIR *d = opendir (dir);
    if (!d) {
        bf_error ("import: cannot open directory %s", dir);
        self->table = BD_SUBSCRIBERS;
        self->line = 0;
        s_error (self, NULL, "cannot open directory %s", dir);
        return -1;
    }
    struct dirent *entry;
    while ((entry = readdir (d)) != NULL) {
        size_t len = strlen (entry->d_name);
        if (len < 4 || strcmp (entry->d_name + len - 4, ".csv") != 0)
            continue;
        bool known = false;
        for (int t = 0; t < BD_TABLE_COUNT; t++)
            known = known || strcmp (entry->d_name, bd_tables[t].file) == 0;
        if (!known)
            bf_warn ("import: ignoring %s/%s: not one of the import files", dir, entry->d_name);
    }
    closedir (d);
    for (int t = 0; t < BD_TABLE_COUNT; t++) {
        char path[4096];
        snprintf (path, sizeof path, "%s/%s", dir, bd_tables[t].file);
        struct stat st;
        if (stat (path, &st) != 0) {
            if (t == BD_SUBSCRIBERS) {
                self->table = BD_SUBSCRIBERS;
                self->line = 0;
                s_error (self, NULL, "missing: subscribers.csv is required in %s", dir);
                return -1;
            }
            continue;
        }
        if (s_import_file (self, (bd_table_t)t, path) != 0 && (self->stopped || self->db_failed))
            return -1;
    }
    return 0;
}

int
bd_import_finish (bd_import_t *self)
{
    if (self->copy)
        s_copy_close (self);
    if (self->nerrors > 0) {
        bf_db_rollback (self->conn);
        return 1;
    }
    if (self->db_failed || bf_db_commit (self->conn) != BF_DB_OK) {
        bf_db_rollback (self->conn);
        return -1;
    }
    /*  Fresh statistics so the first settlement plans well.  */
    bf_db_exec (self->conn,
                "ANALYZE subscriber, plan_assignment, addon_subscription, contract,"
                " usage_record, charge, arrears",
                "ANALYZE");
    return 0;
}

void
bd_import_report (const bd_import_t *self, FILE *out)
{
    for (long i = 0; i < self->nerrors; i++)
        fprintf (out, "%s\n", self->errors[i]);
    if (self->stopped && self->nerrors >= self->opts.max_errors)
        fprintf (out, "stopped reading after %ld errors (import.max_errors)\n", self->nerrors);
}

long
bd_import_error_count (const bd_import_t *self)
{
    return self->nerrors;
}

int64_t
bd_import_rows (const bd_import_t *self, bd_table_t table)
{
    return self->rows[table];
}

double
bd_import_seconds (const bd_import_t *self, bd_table_t table)
{
    return self->seconds[table];
}
