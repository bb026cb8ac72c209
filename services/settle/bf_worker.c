/*  bf_worker — claims chunks, rates them, writes them in one transaction.

    Inputs for a chunk come from eight queries, each ordered by subscriber
    id; the worker walks them side by side (a merge), so rating a chunk costs
    eight round trips however many subscribers it holds. String inputs point
    into the query results, which live until the chunk is written.  */

#include <stdlib.h>
#include <string.h>

#include "billflow.pb-c.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_fault.h"
#include "bf_health.h"
#include "bf_label.h"
#include "bf_log.h"
#include "bf_rating.h"
#include "bf_run.h"
#include "bf_settle_metrics.h"
#include "bf_uuid.h"
#include "bf_wire.h"
#include "bf_worker.h"

/*  Query indexes; each result is ordered by subscriber id.  */
enum { Q_SUB, Q_PLAN, Q_ADDON, Q_CONTRACT, Q_USAGE, Q_CHARGE, Q_ARREARS, Q_BILLED, Q_COUNT };

static const char *s_query_names[Q_COUNT] = { "w_sub",   "w_plan",   "w_addon",   "w_contract",
                                              "w_usage", "w_charge", "w_arrears", "w_billed" };

/*  $1 period, $2 first id, $3 end id (exclusive), $4 period start, $5 end.  */
static const char *s_queries[Q_COUNT] = {
    [Q_SUB] = "SELECT s.id, s.activated_on, s.terminated_on, s.customer_since, s.welfare_grade,"
              " s.pay_day, s.channels::text,"
              " CASE WHEN s.family_id IS NULL THEN 0 ELSE (SELECT count (*) FROM subscriber m"
              "   WHERE m.family_id = s.family_id AND m.activated_on < $5::date"
              "   AND (m.terminated_on IS NULL OR m.terminated_on > $4::date)) END"
              " FROM subscriber s WHERE s.id >= $2 AND s.id < $3 AND $1::text IS NOT NULL"
              " ORDER BY s.id",
    [Q_PLAN] = "SELECT a.subscriber_id, a.valid_from, a.valid_to, a.plan_code, p.code IS NOT NULL,"
               " p.monthly_fee, p.data_mb, p.voice_min, p.sms, p.data_rate_mwon,"
               " p.voice_rate_mwon, p.sms_rate_mwon, p.name"
               " FROM plan_assignment a LEFT JOIN plan p ON p.code = a.plan_code"
               " WHERE a.subscriber_id >= $2 AND a.subscriber_id < $3 AND $1::text IS NOT NULL"
               " AND a.valid_from < $5::date AND (a.valid_to IS NULL OR a.valid_to > $4::date)"
               " ORDER BY a.subscriber_id, a.valid_from",
    [Q_ADDON] = "SELECT a.subscriber_id, a.valid_from, a.valid_to, a.addon_code,"
                " d.code IS NOT NULL, d.monthly_fee, d.name"
                " FROM addon_subscription a LEFT JOIN addon d ON d.code = a.addon_code"
                " WHERE a.subscriber_id >= $2 AND a.subscriber_id < $3 AND $1::text IS NOT NULL"
                " AND a.valid_from < $5::date AND (a.valid_to IS NULL OR a.valid_to > $4::date)"
                " ORDER BY a.subscriber_id, a.valid_from, a.addon_code",
    [Q_CONTRACT] = "SELECT subscriber_id, valid_from, valid_to FROM contract"
                   " WHERE subscriber_id >= $2 AND subscriber_id < $3 AND $1::text IS NOT NULL"
                   " AND valid_from < $5::date AND (valid_to IS NULL OR valid_to > $4::date)"
                   " ORDER BY subscriber_id, valid_from",
    [Q_USAGE]
    = "SELECT subscriber_id,"
      " coalesce (sum (quantity) FILTER (WHERE kind = 'DATA_MB'), 0),"
      " coalesce (sum (quantity) FILTER (WHERE kind = 'VOICE_SEC'), 0),"
      " coalesce (sum (quantity) FILTER (WHERE kind = 'SMS'), 0)"
      " FROM usage_record WHERE period = $1 AND subscriber_id >= $2 AND subscriber_id < $3"
      " AND $4::date IS NOT NULL AND $5::date IS NOT NULL"
      " GROUP BY subscriber_id ORDER BY subscriber_id",
    [Q_CHARGE] = "SELECT subscriber_id, kind, amount, taxable FROM charge"
                 " WHERE period = $1 AND subscriber_id >= $2 AND subscriber_id < $3"
                 " AND $4::date IS NOT NULL AND $5::date IS NOT NULL"
                 " ORDER BY subscriber_id, seq",
    [Q_ARREARS] = "SELECT subscriber_id, amount FROM arrears"
                  " WHERE period = $1 AND subscriber_id >= $2 AND subscriber_id < $3"
                  " AND $4::date IS NOT NULL AND $5::date IS NOT NULL ORDER BY subscriber_id",
    [Q_BILLED] = "SELECT subscriber_id FROM bill"
                 " WHERE period = $1 AND subscriber_id >= $2 AND subscriber_id < $3"
                 " AND $4::date IS NOT NULL AND $5::date IS NOT NULL ORDER BY subscriber_id",
};

/*  One subscriber's bill waiting to be written.  */
typedef struct {
    int64_t subscriber_id;
    int64_t total;
    bf_day_t due_date;
    uint32_t line_first, nlines;
    int channels; /* bit 0 EMAIL, 1 SMS, 2 PUSH */
} s_pending_t;

typedef struct {
    int64_t subscriber_id;
    char reason[240];
} s_failure_t;

typedef struct {
    zsock_t *pipe;
    PGconn *conn;
    char id[96];
    char conninfo[1024];
    int lease_ms, poll_ms;
    /*  The chunk in hand.  */
    int64_t run_id;
    int chunk_no;
    int64_t id_from, id_to;
    char period[8];
    bf_period_t p;
    PGresult *res[Q_COUNT];
    int row[Q_COUNT]; /* merge cursors */
    /*  Per-subscriber scratch.  */
    bf_rating_plan_t *plans;
    bf_rating_addon_t *addons;
    bf_rating_contract_t *contracts;
    bf_rating_charge_t *charges;
    size_t plans_cap, addons_cap, contracts_cap, charges_cap;
    /*  Output of the chunk.  */
    s_pending_t *bills;
    size_t nbills, bills_cap;
    bf_bill_line_t *lines;
    size_t nlines, lines_cap;
    /*  Per line: the catalogue name its label shows (PLAN and ADDON lines),
        pointing into the chunk's query results, or NULL.  */
    const char **line_names;
    size_t line_names_cap;
    s_failure_t *failures;
    size_t nfailures, failures_cap;
    int64_t subscribers, amount;
    /*  Totals for STATS.  */
    int64_t stat_chunks, stat_subscribers, stat_bills, stat_errors;
} s_worker_t;

/*  Grows *array (of elsize) to hold need elements. false when out of memory.  */
static bool
s_reserve (void **array, size_t *cap, size_t need, size_t elsize)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *grown = realloc (*array, n * elsize);
    if (!grown)
        return false;
    *array = grown;
    *cap = n;
    return true;
}

static int64_t
s_i64 (const PGresult *res, int row, int col)
{
    return strtoll (PQgetvalue (res, row, col), NULL, 10);
}

/*  A nullable date column: BF_DAY_OPEN when NULL.  */
static bf_day_t
s_day (const PGresult *res, int row, int col)
{
    bf_day_t day = BF_DAY_OPEN;
    if (!PQgetisnull (res, row, col))
        bf_date_parse (PQgetvalue (res, row, col), &day);
    return day;
}

static int64_t
s_allowance (const PGresult *res, int row, int col)
{
    return PQgetisnull (res, row, col) ? BF_RATING_UNLIMITED : s_i64 (res, row, col);
}

static void
s_clear_results (s_worker_t *self)
{
    for (int q = 0; q < Q_COUNT; q++) {
        PQclear (self->res[q]);
        self->res[q] = NULL;
        self->row[q] = 0;
    }
}

/*  True when query q's cursor is on a row of subscriber id.  */
static bool
s_at (s_worker_t *self, int q, int64_t id)
{
    const PGresult *res = self->res[q];
    while (self->row[q] < PQntuples (res) && s_i64 (res, self->row[q], 0) < id)
        self->row[q]++; /* rows of ids outside the subscriber list */
    return self->row[q] < PQntuples (res) && s_i64 (res, self->row[q], 0) == id;
}

static bf_welfare_t
s_welfare (const char *text)
{
    if (!text || !*text)
        return BF_WELFARE_NONE;
    if (!strcmp (text, "DISABLED"))
        return BF_WELFARE_DISABLED;
    if (!strcmp (text, "LOW_INCOME"))
        return BF_WELFARE_LOW_INCOME;
    return BF_WELFARE_SENIOR;
}

static bf_charge_kind_t
s_charge_kind (const char *text)
{
    if (!strcmp (text, "MICRO_PAYMENT"))
        return BF_CHARGE_MICRO_PAYMENT;
    if (!strcmp (text, "CONTENT"))
        return BF_CHARGE_CONTENT;
    if (!strcmp (text, "ADJUSTMENT"))
        return BF_CHARGE_ADJUSTMENT;
    return BF_CHARGE_DEVICE_INSTALLMENT;
}

static int
s_channels (const char *text)
{
    int mask = 0;
    if (strstr (text, "EMAIL"))
        mask |= 1;
    if (strstr (text, "SMS"))
        mask |= 2;
    if (strstr (text, "PUSH"))
        mask |= 4;
    return mask;
}

/*  Gathers subscriber `row` of Q_SUB and the matching rows of every other
    query into input. Returns false when out of memory.  */
static bool
s_gather (s_worker_t *self, int row, bf_rating_input_t *in)
{
    const PGresult *s = self->res[Q_SUB];
    memset (in, 0, sizeof *in);
    in->subscriber_id = s_i64 (s, row, 0);
    in->activated_on = s_day (s, row, 1);
    in->terminated_on = s_day (s, row, 2);
    in->customer_since = s_day (s, row, 3);
    in->welfare = s_welfare (PQgetisnull (s, row, 4) ? NULL : PQgetvalue (s, row, 4));
    in->pay_day = atoi (PQgetvalue (s, row, 5));
    in->family_active = atoi (PQgetvalue (s, row, 7));
    int64_t id = in->subscriber_id;

    size_t n = 0;
    for (; s_at (self, Q_PLAN, id); self->row[Q_PLAN]++, n++) {
        if (!s_reserve ((void **)&self->plans, &self->plans_cap, n + 1, sizeof *self->plans))
            return false;
        const PGresult *r = self->res[Q_PLAN];
        int i = self->row[Q_PLAN];
        bf_rating_plan_t *p = &self->plans[n];
        p->from = s_day (r, i, 1);
        p->to = s_day (r, i, 2);
        p->plan_code = PQgetvalue (r, i, 3);
        p->known = PQgetvalue (r, i, 4)[0] == 't';
        p->name = p->known ? PQgetvalue (r, i, 12) : NULL;
        if (p->known) {
            p->monthly_fee = s_i64 (r, i, 5);
            p->data_mb = s_allowance (r, i, 6);
            p->voice_min = s_allowance (r, i, 7);
            p->sms = s_allowance (r, i, 8);
            p->data_rate_mwon = s_i64 (r, i, 9);
            p->voice_rate_mwon = s_i64 (r, i, 10);
            p->sms_rate_mwon = s_i64 (r, i, 11);
        }
    }
    in->plans = self->plans;
    in->nplans = n;

    n = 0;
    for (; s_at (self, Q_ADDON, id); self->row[Q_ADDON]++, n++) {
        if (!s_reserve ((void **)&self->addons, &self->addons_cap, n + 1, sizeof *self->addons))
            return false;
        const PGresult *r = self->res[Q_ADDON];
        int i = self->row[Q_ADDON];
        bf_rating_addon_t *a = &self->addons[n];
        a->from = s_day (r, i, 1);
        a->to = s_day (r, i, 2);
        a->addon_code = PQgetvalue (r, i, 3);
        a->known = PQgetvalue (r, i, 4)[0] == 't';
        a->name = a->known ? PQgetvalue (r, i, 6) : NULL;
        a->monthly_fee = a->known ? s_i64 (r, i, 5) : 0;
    }
    in->addons = self->addons;
    in->naddons = n;

    n = 0;
    for (; s_at (self, Q_CONTRACT, id); self->row[Q_CONTRACT]++, n++) {
        if (!s_reserve ((void **)&self->contracts, &self->contracts_cap, n + 1,
                        sizeof *self->contracts))
            return false;
        const PGresult *r = self->res[Q_CONTRACT];
        int i = self->row[Q_CONTRACT];
        self->contracts[n].from = s_day (r, i, 1);
        self->contracts[n].to = s_day (r, i, 2);
    }
    in->contracts = self->contracts;
    in->ncontracts = n;

    if (s_at (self, Q_USAGE, id)) {
        const PGresult *r = self->res[Q_USAGE];
        int i = self->row[Q_USAGE]++;
        in->used_data_mb = s_i64 (r, i, 1);
        in->used_voice_sec = s_i64 (r, i, 2);
        in->used_sms = s_i64 (r, i, 3);
    }

    n = 0;
    for (; s_at (self, Q_CHARGE, id); self->row[Q_CHARGE]++, n++) {
        if (!s_reserve ((void **)&self->charges, &self->charges_cap, n + 1, sizeof *self->charges))
            return false;
        const PGresult *r = self->res[Q_CHARGE];
        int i = self->row[Q_CHARGE];
        self->charges[n].kind = s_charge_kind (PQgetvalue (r, i, 1));
        self->charges[n].amount = s_i64 (r, i, 2);
        self->charges[n].taxable = PQgetvalue (r, i, 3)[0] == 't';
    }
    in->charges = self->charges;
    in->ncharges = n;

    if (s_at (self, Q_ARREARS, id)) {
        in->has_arrears = true;
        in->arrears = s_i64 (self->res[Q_ARREARS], self->row[Q_ARREARS]++, 1);
    }
    return true;
}

/*  Reads the chunk's inputs.  */
static int
s_load (s_worker_t *self)
{
    char from[24], to[24], start[11], end[11];
    snprintf (from, sizeof from, "%lld", (long long)self->id_from);
    snprintf (to, sizeof to, "%lld", (long long)self->id_to);
    bf_date_format (bf_period_first_day (self->p), start);
    bf_date_format (bf_period_end_day (self->p), end);
    const char *params[] = { self->period, from, to, start, end };
    for (int q = 0; q < Q_COUNT; q++) {
        const char *name = s_query_names[q];
        self->res[q] = bf_db_query_prepared (self->conn, name, 5, params, PGRES_TUPLES_OK, name);
        if (!self->res[q])
            return bf_db_last_status ();
    }
    return BF_DB_OK;
}

/*  The catalogue name a PLAN:<x> or ADDON:<x> line of in shows, as read
    with this chunk (the label is snapshotted into bill_line, so a later
    rename does not change a settled bill); NULL for other codes.  */
static const char *
s_line_name (const bf_rating_input_t *in, const char *code)
{
    if (code[0] == 'P' && strncmp (code, "PLAN:", 5) == 0) {
        for (size_t k = 0; k < in->nplans; k++)
            if (in->plans[k].name && strcmp (in->plans[k].plan_code, code + 5) == 0)
                return in->plans[k].name;
    } else if (code[0] == 'A' && strncmp (code, "ADDON:", 6) == 0) {
        for (size_t k = 0; k < in->naddons; k++)
            if (in->addons[k].name && strcmp (in->addons[k].addon_code, code + 6) == 0)
                return in->addons[k].name;
    }
    return NULL;
}

/*  Rates every subscriber of the chunk into the output buffers.  */
static int
s_rate (s_worker_t *self)
{
    self->nbills = self->nlines = self->nfailures = 0;
    self->subscribers = self->amount = 0;
    const PGresult *subs = self->res[Q_SUB];
    bf_bill_t bill;
    for (int row = 0; row < PQntuples (subs); row++) {
        bf_rating_input_t in;
        if (!s_gather (self, row, &in)) {
            bf_error ("worker %s: out of memory rating chunk %d", self->id, self->chunk_no);
            return BF_DB_FAIL;
        }
        self->subscribers++;
        if (s_at (self, Q_BILLED, in.subscriber_id))
            continue; /* billed by an earlier run: never a second bill (G1) */
        char reason[240];
        if (bf_rating_rate (&in, self->p, &bill, reason, sizeof reason) != 0) {
            if (!s_reserve ((void **)&self->failures, &self->failures_cap, self->nfailures + 1,
                            sizeof *self->failures))
                return BF_DB_FAIL;
            s_failure_t *f = &self->failures[self->nfailures++];
            f->subscriber_id = in.subscriber_id;
            snprintf (f->reason, sizeof f->reason, "%s", reason);
            continue;
        }
        if (!bill.has_bill)
            continue;
        if (!s_reserve ((void **)&self->bills, &self->bills_cap, self->nbills + 1,
                        sizeof *self->bills)
            || !s_reserve ((void **)&self->lines, &self->lines_cap, self->nlines + bill.nlines,
                           sizeof *self->lines)
            || !s_reserve ((void **)&self->line_names, &self->line_names_cap,
                           self->nlines + bill.nlines, sizeof *self->line_names))
            return BF_DB_FAIL;
        s_pending_t *b = &self->bills[self->nbills++];
        b->subscriber_id = in.subscriber_id;
        b->total = bill.total;
        b->due_date = bill.due_date;
        b->line_first = (uint32_t)self->nlines;
        b->nlines = (uint32_t)bill.nlines;
        b->channels = s_channels (PQgetvalue (subs, row, 6));
        memcpy (&self->lines[self->nlines], bill.lines, bill.nlines * sizeof bill.lines[0]);
        for (size_t l = 0; l < bill.nlines; l++)
            self->line_names[self->nlines + l] = s_line_name (&in, bill.lines[l].code);
        self->nlines += bill.nlines;
        self->amount += bill.total;
    }
    return BF_DB_OK;
}

/*  Packs the BillSettled event of bill b (bill_id assigned) into buf.  */
static size_t
s_event (const s_worker_t *self, const s_pending_t *b, int64_t bill_id, const char *event_id,
         uint8_t *buf, size_t bufsize)
{
    Billflow__BillSettled ev = BILLFLOW__BILL_SETTLED__INIT;
    Billflow__Channel channels[3];
    size_t n = 0;
    if (b->channels & 1)
        channels[n++] = BILLFLOW__CHANNEL__CHANNEL_EMAIL;
    if (b->channels & 2)
        channels[n++] = BILLFLOW__CHANNEL__CHANNEL_SMS;
    if (b->channels & 4)
        channels[n++] = BILLFLOW__CHANNEL__CHANNEL_PUSH;
    char due[11];
    ev.schema_version = BF_SCHEMA_VERSION;
    ev.event_id = (char *)event_id;
    ev.bill_id = (uint64_t)bill_id;
    ev.subscriber_id = (uint64_t)b->subscriber_id;
    ev.period = (char *)self->period;
    ev.total = b->total;
    ev.due_date = bf_date_format (b->due_date, due);
    ev.n_channels = n;
    ev.channels = channels;
    ev.run_id = (uint64_t)self->run_id;
    ev.line_count = b->nlines;
    if (billflow__bill_settled__get_packed_size (&ev) > bufsize)
        return 0;
    return billflow__bill_settled__pack (&ev, buf);
}

/*  Ends a COPY of s_write: commits it when rc is BF_DB_OK, else cancels it
    and keeps rc. A COPY that did not start (copy NULL) gives the database's
    status.  */
static int
s_copy_finish (bf_copy_t *copy, int rc)
{
    if (!copy)
        return rc == BF_DB_OK ? bf_db_last_status () : rc;
    if (rc != BF_DB_OK) {
        bf_copy_end (&copy, "chunk failed");
        return rc;
    }
    return bf_copy_end (&copy, NULL);
}

/*  Bills rated again must drop their old rating errors.  */
static int
s_clear_errors (s_worker_t *self)
{
    char from[24], to[24];
    snprintf (from, sizeof from, "%lld", (long long)self->id_from);
    snprintf (to, sizeof to, "%lld", (long long)self->id_to);
    const char *params[] = { self->period, from, to };
    PGresult *res = bf_db_query_prepared (self->conn, "w_clear_errors", 3, params, PGRES_COMMAND_OK,
                                          "clearing rating errors");
    if (!res)
        return bf_db_last_status ();
    PQclear (res);
    return BF_DB_OK;
}

/*  Reserves a bill id for each pending bill: *ids (nbills of them, the
    caller frees) on BF_DB_OK.  */
static int
s_reserve_bill_ids (s_worker_t *self, int64_t **ids)
{
    char count[24];
    snprintf (count, sizeof count, "%zu", self->nbills);
    const char *params[] = { count };
    PGresult *res = bf_db_query_prepared (self->conn, "w_bill_ids", 1, params, PGRES_TUPLES_OK,
                                          "reserving bill ids");
    if (!res)
        return bf_db_last_status ();
    int rc = BF_DB_FAIL;
    *ids = malloc (self->nbills * sizeof **ids);
    if (*ids && (size_t)PQntuples (res) == self->nbills) {
        for (size_t i = 0; i < self->nbills; i++)
            (*ids)[i] = s_i64 (res, (int)i, 0);
        rc = BF_DB_OK;
    }
    PQclear (res);
    return rc;
}

static int
s_copy_bills (s_worker_t *self, const int64_t *ids)
{
    int rc = BF_DB_OK;
    bf_copy_t *copy = bf_copy_begin (self->conn, "COPY bill (period, subscriber_id, bill_id,"
                                                 " run_id, total, due_date, line_count)"
                                                 " FROM STDIN");
    for (size_t i = 0; copy && i < self->nbills && rc == BF_DB_OK; i++) {
        const s_pending_t *b = &self->bills[i];
        char due[11];
        bf_copy_str (copy, self->period);
        bf_copy_int (copy, b->subscriber_id);
        bf_copy_int (copy, ids[i]);
        bf_copy_int (copy, self->run_id);
        bf_copy_int (copy, b->total);
        bf_copy_str (copy, bf_date_format (b->due_date, due));
        bf_copy_int (copy, b->nlines);
        rc = bf_copy_row_end (copy);
    }
    return s_copy_finish (copy, rc);
}

/*  The lines of every pending bill, each with its label snapshotted.  */
static int
s_copy_lines (s_worker_t *self)
{
    int rc = BF_DB_OK;
    bf_copy_t *copy = bf_copy_begin (self->conn, "COPY bill_line (period, subscriber_id,"
                                                 " line_no, code, amount, label) FROM STDIN");
    for (size_t i = 0; copy && i < self->nbills && rc == BF_DB_OK; i++) {
        const s_pending_t *b = &self->bills[i];
        for (uint32_t l = 0; l < b->nlines && rc == BF_DB_OK; l++) {
            const bf_bill_line_t *line = &self->lines[b->line_first + l];
            char generic[BF_RATING_CODE_MAX + 32];
            bf_copy_str (copy, self->period);
            bf_copy_int (copy, b->subscriber_id);
            bf_copy_int (copy, l + 1);
            bf_copy_str (copy, line->code);
            bf_copy_int (copy, line->amount);
            bf_copy_str (copy, bf_label_line (line->code, self->line_names[b->line_first + l],
                                              generic, sizeof generic));
            rc = bf_copy_row_end (copy);
        }
    }
    return s_copy_finish (copy, rc);
}

/*  An EVT.BILL outbox event per pending bill, for notify.  */
static int
s_copy_outbox (s_worker_t *self, const int64_t *ids)
{
    int rc = BF_DB_OK;
    bf_copy_t *copy = bf_copy_begin (self->conn, "COPY outbox (event_id, topic, period, bill_id,"
                                                 " subscriber_id, payload) FROM STDIN");
    for (size_t i = 0; copy && i < self->nbills && rc == BF_DB_OK; i++) {
        char event_id[37];
        uint8_t payload[512];
        bf_uuid_v4 (event_id);
        size_t len = s_event (self, &self->bills[i], ids[i], event_id, payload, sizeof payload);
        bf_copy_str (copy, event_id);
        bf_copy_str (copy, "EVT.BILL");
        bf_copy_str (copy, self->period);
        bf_copy_int (copy, ids[i]);
        bf_copy_int (copy, self->bills[i].subscriber_id);
        bf_copy_bytea (copy, payload, len);
        rc = bf_copy_row_end (copy);
    }
    return s_copy_finish (copy, rc);
}

/*  The pending bills: their ids, the bills, their lines and their outbox
    events. Nothing to do without bills.  */
static int
s_write_bills (s_worker_t *self)
{
    if (self->nbills == 0)
        return BF_DB_OK;
    int64_t *ids = NULL;
    int rc = s_reserve_bill_ids (self, &ids);
    if (rc == BF_DB_OK) {
        rc = s_copy_bills (self, ids);
        bf_fault ("worker.mid_copy");
    }
    if (rc == BF_DB_OK)
        rc = s_copy_lines (self);
    if (rc == BF_DB_OK)
        rc = s_copy_outbox (self, ids);
    free (ids);
    return rc;
}

static int
s_write_failures (s_worker_t *self)
{
    if (self->nfailures == 0)
        return BF_DB_OK;
    int rc = BF_DB_OK;
    bf_copy_t *copy = bf_copy_begin (
        self->conn, "COPY rating_error (period, subscriber_id, run_id, reason) FROM STDIN");
    for (size_t i = 0; copy && i < self->nfailures && rc == BF_DB_OK; i++) {
        bf_copy_str (copy, self->period);
        bf_copy_int (copy, self->failures[i].subscriber_id);
        bf_copy_int (copy, self->run_id);
        bf_copy_str (copy, self->failures[i].reason);
        rc = bf_copy_row_end (copy);
    }
    return s_copy_finish (copy, rc);
}

/*  Marks the chunk DONE (only while this worker holds its lease:
    BF_DB_RETRY when another took it over) and adds its counts to the run.  */
static int
s_mark_done (s_worker_t *self)
{
    char run[24], chunk[16], subs[24], bills[24], amount[24], errors[24];
    snprintf (run, sizeof run, "%lld", (long long)self->run_id);
    snprintf (chunk, sizeof chunk, "%d", self->chunk_no);
    snprintf (subs, sizeof subs, "%lld", (long long)self->subscribers);
    snprintf (bills, sizeof bills, "%zu", self->nbills);
    snprintf (amount, sizeof amount, "%lld", (long long)self->amount);
    snprintf (errors, sizeof errors, "%zu", self->nfailures);
    const char *done_params[] = { run, chunk, self->id, subs, bills, amount, errors };
    PGresult *res = bf_db_query_prepared (self->conn, "w_done", 7, done_params, PGRES_COMMAND_OK,
                                          "marking the chunk done");
    if (!res)
        return bf_db_last_status ();
    bool ours = strcmp (PQcmdTuples (res), "1") == 0;
    PQclear (res);
    if (!ours) {
        bf_warn ("worker %s: lost the lease on run %s chunk %s before committing; "
                 "another worker settles it",
                 self->id, run, chunk);
        return BF_DB_RETRY;
    }
    const char *count_params[] = { run, subs, bills, amount, errors };
    res = bf_db_query_prepared (self->conn, "w_run_counts", 5, count_params, PGRES_COMMAND_OK,
                                "updating the run");
    if (!res)
        return bf_db_last_status ();
    PQclear (res);
    return BF_DB_OK;
}

/*  Writes the chunk: bill ids, bills, lines, outbox, rating errors, the
    chunk's DONE mark and the run's counters. Caller has the transaction.  */
static int
s_write (s_worker_t *self)
{
    int rc = s_clear_errors (self);
    if (rc == BF_DB_OK)
        rc = s_write_bills (self);
    if (rc == BF_DB_OK)
        rc = s_write_failures (self);
    if (rc == BF_DB_OK)
        rc = s_mark_done (self);
    return rc;
}

/*  w_claim's RETURNING list, in order.  */
enum {
    S_CLAIM_RUN_ID,
    S_CLAIM_CHUNK_NO,
    S_CLAIM_ID_FROM,
    S_CLAIM_ID_TO,
    S_CLAIM_PERIOD,
    S_CLAIM_ATTEMPTS
};

/*  The statements besides the read queries.  */
static const bf_db_statement_t s_statements[] = {
    { "w_claim",
      "UPDATE settlement_chunk c SET state = 'CLAIMED', lease_owner = $1,"
      " lease_until = now () + $2::int * interval '1 millisecond', attempts = c.attempts + 1"
      " FROM (SELECT c2.run_id, c2.chunk_no FROM settlement_chunk c2"
      "       JOIN settlement_run r ON r.run_id = c2.run_id"
      "       WHERE r.state = 'RUNNING' AND c2.state <> 'DONE'"
      "       AND (c2.state = 'PENDING' OR c2.lease_until < now ())"
      "       ORDER BY c2.run_id, c2.chunk_no LIMIT 1"
      "       FOR UPDATE OF c2 SKIP LOCKED) pick, settlement_run r"
      " WHERE c.run_id = pick.run_id AND c.chunk_no = pick.chunk_no AND r.run_id = c.run_id"
      " RETURNING c.run_id, c.chunk_no, c.id_from, c.id_to, r.period, c.attempts",
      2 },
    { "w_bill_ids", "SELECT nextval ('bill_id_seq') FROM generate_series (1, $1::int)", 1 },
    { "w_clear_errors",
      "DELETE FROM rating_error WHERE period = $1 AND subscriber_id >= $2 AND subscriber_id < $3",
      3 },
    { "w_done",
      "UPDATE settlement_chunk SET state = 'DONE', lease_owner = NULL, lease_until = NULL,"
      " done_by = $3, subscribers = $4, bills = $5, amount = $6, errors = $7,"
      " finished_at = now ()"
      " WHERE run_id = $1 AND chunk_no = $2 AND state = 'CLAIMED' AND lease_owner = $3",
      7 },
    { "w_run_counts",
      "UPDATE settlement_run SET chunks_done = chunks_done + 1,"
      " subscribers_done = subscribers_done + $2, bills = bills + $3,"
      " amount_total = amount_total + $4, rating_errors = rating_errors + $5,"
      " updated_at = now (),"
      " state = CASE WHEN chunks_done + 1 >= chunks_total THEN 'COMPLETED' ELSE state END,"
      " finished_at = CASE WHEN chunks_done + 1 >= chunks_total THEN now () ELSE finished_at END"
      " WHERE run_id = $1",
      5 },
};

static bool
s_prepare (s_worker_t *self)
{
    for (int q = 0; q < Q_COUNT; q++)
        if (bf_db_prepare (self->conn, s_query_names[q], s_queries[q], 5) != BF_DB_OK)
            return false;
    return bf_db_prepare_all (self->conn, s_statements,
                              sizeof s_statements / sizeof s_statements[0])
           == BF_DB_OK;
}

static void
s_disconnect (s_worker_t *self)
{
    s_clear_results (self);
    PQfinish (self->conn);
    self->conn = NULL;
}

/*  Takes the chunk of w_claim's row: its run, ids and period.  */
static void
s_take_chunk (s_worker_t *self, const PGresult *res)
{
    self->run_id = s_i64 (res, 0, S_CLAIM_RUN_ID);
    self->chunk_no = atoi (PQgetvalue (res, 0, S_CLAIM_CHUNK_NO));
    self->id_from = s_i64 (res, 0, S_CLAIM_ID_FROM);
    self->id_to = s_i64 (res, 0, S_CLAIM_ID_TO);
    snprintf (self->period, sizeof self->period, "%s", PQgetvalue (res, 0, S_CLAIM_PERIOD));
    bf_period_parse (self->period, &self->p);
    int attempts = atoi (PQgetvalue (res, 0, S_CLAIM_ATTEMPTS));
    bf_settle_metrics_claimed (attempts);
    if (attempts > 1)
        bf_warn ("worker %s: took over run %lld chunk %d (attempt %d; an earlier holder's "
                 "lease expired)",
                 self->id, (long long)self->run_id, self->chunk_no, attempts);
}

/*  Claims a chunk. 1 claimed, 0 none available, -1 database failure.  */
static int
s_claim (s_worker_t *self)
{
    char lease[16];
    snprintf (lease, sizeof lease, "%d", self->lease_ms);
    const char *params[] = { self->id, lease };
    PGresult *res = bf_db_query_prepared (self->conn, "w_claim", 2, params, PGRES_TUPLES_OK,
                                          "claiming a chunk");
    if (!res)
        return -1;
    bool claimed = PQntuples (res) == 1;
    if (claimed)
        s_take_chunk (self, res);
    PQclear (res);
    return claimed ? 1 : 0;
}

/*  Settles the claimed chunk in one transaction. BF_DB_OK when committed.  */
static int
s_settle_chunk (s_worker_t *self)
{
    int rc = bf_db_begin (self->conn);
    if (rc == BF_DB_OK)
        rc = s_load (self);
    if (rc == BF_DB_OK)
        rc = s_rate (self);
    if (rc == BF_DB_OK)
        rc = s_write (self);
    s_clear_results (self);
    if (rc == BF_DB_OK) {
        bf_fault ("worker.before_commit");
        rc = bf_db_commit (self->conn);
    }
    if (rc != BF_DB_OK) {
        bf_db_rollback (self->conn);
        return rc;
    }
    bf_fault ("worker.after_commit");
    bf_settle_metrics_committed (self->subscribers, self->nbills, self->amount, self->nfailures);
    self->stat_chunks++;
    self->stat_subscribers += self->subscribers;
    self->stat_bills += (int64_t)self->nbills;
    self->stat_errors += (int64_t)self->nfailures;
    if (self->nfailures > 0)
        bf_warn ("worker %s: run %lld chunk %d: %zu subscriber%s failed rating (first: %lld: %s)",
                 self->id, (long long)self->run_id, self->chunk_no, self->nfailures,
                 self->nfailures == 1 ? "" : "s", (long long)self->failures[0].subscriber_id,
                 self->failures[0].reason);
    bf_debug ("worker %s: run %lld chunk %d: %lld subscribers, %zu bills", self->id,
              (long long)self->run_id, self->chunk_no, (long long)self->subscribers, self->nbills);
    return BF_DB_OK;
}

/*  Handles one pipe message. Returns false on $TERM.  */
static bool
s_pipe (s_worker_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command)
        return false;
    bool go_on = true;
    if (streq (command, "$TERM"))
        go_on = false;
    else if (streq (command, "STATS")) {
        char v[4][24];
        snprintf (v[0], sizeof v[0], "%lld", (long long)self->stat_chunks);
        snprintf (v[1], sizeof v[1], "%lld", (long long)self->stat_subscribers);
        snprintf (v[2], sizeof v[2], "%lld", (long long)self->stat_bills);
        snprintf (v[3], sizeof v[3], "%lld", (long long)self->stat_errors);
        zstr_sendx (self->pipe, v[0], v[1], v[2], v[3], NULL);
    }
    free (command);
    return go_on;
}

static void
s_worker_free (s_worker_t *self)
{
    s_disconnect (self);
    free (self->plans);
    free (self->addons);
    free (self->contracts);
    free (self->charges);
    free (self->bills);
    free (self->lines);
    free (self->line_names);
    free (self->failures);
}

void
bf_worker_actor (zsock_t *pipe, void *args)
{
    const bf_worker_args_t *a = args;
    s_worker_t self = { .pipe = pipe, .lease_ms = a->lease_ms, .poll_ms = a->poll_ms };
    snprintf (self.id, sizeof self.id, "%s", a->worker_id);
    snprintf (self.conninfo, sizeof self.conninfo, "%s", a->conninfo ? a->conninfo : "");
    zsock_signal (pipe, 0);

    zpoller_t *poller = zpoller_new (pipe, NULL);
    zpoller_set_nonstop (poller, true);
    bool running = true;
    int idle_wait = 0;
    while (running) {
        if (bf_health_zpoller_wait ("worker", poller, idle_wait) == pipe) {
            running = s_pipe (&self);
            continue;
        }
        idle_wait = self.poll_ms;
        if (!self.conn) {
            /*  One attempt at a time, so $TERM is heard between attempts
                (a stopping pod must not wait out a connect timeout).  */
            self.conn = bf_db_connect (self.conninfo, "settle-worker", 0);
            if (!self.conn || !s_prepare (&self)) {
                s_disconnect (&self);
                idle_wait = bf_db_retry_wait_ms (self.poll_ms); /* the process's gate */
                continue;
            }
        }
        int claimed = s_claim (&self);
        if (claimed < 0) {
            s_disconnect (&self);
            continue;
        }
        if (claimed == 0) {
            if (bf_run_settle_stops (self.conn) < 0)
                s_disconnect (&self);
            continue;
        }
        /*  Every line about this chunk carries it (docs/observability.md).  */
        bf_log_ctx_int ("run_id", self.run_id);
        bf_log_ctx_set ("period", "%s", self.period);
        bf_log_ctx_int ("chunk", self.chunk_no);
        int rc = s_settle_chunk (&self);
        if (rc == BF_DB_RETRY && bf_db_lost (self.conn))
            s_disconnect (&self);
        bf_log_ctx_clear ();
        /*  Straight on to the next chunk while there is work.  */
        idle_wait = rc == BF_DB_OK ? 0 : self.poll_ms;
    }
    zpoller_destroy (&poller);
    s_worker_free (&self);
}

void
bf_worker_args_from_config (bf_worker_args_t *args, const bf_config_t *config)
{
    memset (args, 0, sizeof *args);
    args->conninfo = bf_config_str (config, "db.conninfo");
    args->lease_ms = (int)bf_config_int (config, "settle.lease_ms");
    args->poll_ms = (int)bf_config_int (config, "settle.poll_ms");
}
