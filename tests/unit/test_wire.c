/*  test_wire — bf_wire (frame format, strict decoding, encoding, counters)
    and bf_uuid.

    Round trips go through bf_wire_encode -> raw frames -> bf_wire_decode,
    and through a real inproc PAIR (and PUB/SUB) socket pair with
    bf_wire_send / zmsg_recv / bf_wire_recv. Malformed input is built by
    packing messages directly with protobuf-c (bf_wire_encode refuses to
    produce it) and by hand-made frames; each case checks its own error code
    and the reason text.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "bf_log.h"
#include "bf_testutil.h"
#include "bf_uuid.h"
#include "bf_wire.h"

//  --------------------------------------------------------------------------
//  Sample messages: every field set to a non-default value.

typedef struct {
    Billflow__BillSettled bill;
    Billflow__Channel channels[2];
    Billflow__RelayHeartbeat relay_hb;
    Billflow__ReplayFetch fetch;
    Billflow__ReplayBatch batch;
    Billflow__ReplayEvent events[2];
    Billflow__ReplayEvent *event_ptrs[2];
    Billflow__BillSettled event_bills[2];
    Billflow__Command command;
    Billflow__Argument args[2];
    Billflow__Argument *arg_ptrs[2];
    Billflow__CommandReply reply;
    Billflow__ServiceRegister reg;
    char *verbs[3];
    Billflow__ServiceHeartbeat svc_hb;
} samples_t;

static void
s_sample_bill (Billflow__BillSettled *bill, const char *event_id, uint64_t bill_id)
{
    billflow__bill_settled__init (bill);
    bill->schema_version = BF_SCHEMA_VERSION;
    bill->event_id = (char *)event_id;
    bill->bill_id = bill_id;
    bill->subscriber_id = 4200000007ULL;
    bill->period = (char *)"2024-03";
    bill->total = 1234567890123LL;
    bill->due_date = (char *)"2024-04-25";
    bill->run_id = 77;
    bill->line_count = 300;
}

static void
s_samples_init (samples_t *s)
{
    memset (s, 0, sizeof *s);
    s_sample_bill (&s->bill, "7f0e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b", 9000000001ULL);
    s->channels[0] = BILLFLOW__CHANNEL__CHANNEL_EMAIL;
    s->channels[1] = BILLFLOW__CHANNEL__CHANNEL_PUSH;
    s->bill.n_channels = 2;
    s->bill.channels = s->channels;

    billflow__relay_heartbeat__init (&s->relay_hb);
    s->relay_hb.schema_version = BF_SCHEMA_VERSION;
    s->relay_hb.event_id = (char *)"hb-1";
    s->relay_hb.last_seq = 123456789012ULL;
    s->relay_hb.relay_id = (char *)"settle-a";
    s->relay_hb.sent_at_ms = 1700000000123LL;

    billflow__replay_fetch__init (&s->fetch);
    s->fetch.schema_version = BF_SCHEMA_VERSION;
    s->fetch.request_id = (char *)"req-1";
    s->fetch.from_seq = 1001;
    s->fetch.count = 500;

    for (int i = 0; i < 2; i++) {
        s_sample_bill (&s->event_bills[i],
                       i == 0 ? "00000000-0000-4000-8000-000000000001"
                              : "00000000-0000-4000-8000-000000000002",
                       5000 + (uint64_t)i);
        billflow__replay_event__init (&s->events[i]);
        s->events[i].seq = 1001 + (uint64_t)i;
        s->events[i].event = &s->event_bills[i];
        s->event_ptrs[i] = &s->events[i];
    }
    billflow__replay_batch__init (&s->batch);
    s->batch.schema_version = BF_SCHEMA_VERSION;
    s->batch.request_id = (char *)"req-1";
    s->batch.status = BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE;
    s->batch.error = (char *)"데이터베이스 연결 실패";
    s->batch.n_events = 2;
    s->batch.events = s->event_ptrs;
    s->batch.last_published_seq = 5000;

    for (int i = 0; i < 2; i++) {
        billflow__argument__init (&s->args[i]);
        s->arg_ptrs[i] = &s->args[i];
    }
    s->args[0].key = (char *)"period";
    s->args[0].value = (char *)"2024-03";
    s->args[1].key = (char *)"dry_run";
    s->args[1].value = (char *)"true";
    billflow__command__init (&s->command);
    s->command.schema_version = BF_SCHEMA_VERSION;
    s->command.command_id = (char *)"cmd-42";
    s->command.target = (char *)"settle";
    s->command.verb = (char *)"run.start";
    s->command.n_args = 2;
    s->command.args = s->arg_ptrs;
    s->command.issued_by = (char *)"ops-key";
    s->command.issued_at_ms = 1700000000456LL;

    billflow__command_reply__init (&s->reply);
    s->reply.schema_version = BF_SCHEMA_VERSION;
    s->reply.command_id = (char *)"cmd-42";
    s->reply.status = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED;
    s->reply.result = (char *)"{\"ok\":false}";
    s->reply.error = (char *)"no such run";
    s->reply.replayed = 1;

    s->verbs[0] = (char *)"dispatch.pause";
    s->verbs[1] = (char *)"dispatch.resume";
    s->verbs[2] = (char *)"status";
    billflow__service_register__init (&s->reg);
    s->reg.schema_version = BF_SCHEMA_VERSION;
    s->reg.event_id = (char *)"reg-1";
    s->reg.service = (char *)"notify";
    s->reg.instance_id = (char *)"host:123:1700000000";
    s->reg.version = (char *)"0.1.0";
    s->reg.pid = 4321;
    s->reg.n_verbs = 3;
    s->reg.verbs = s->verbs;

    billflow__service_heartbeat__init (&s->svc_hb);
    s->svc_hb.schema_version = BF_SCHEMA_VERSION;
    s->svc_hb.event_id = (char *)"shb-1";
    s->svc_hb.service = (char *)"settle";
    s->svc_hb.instance_id = (char *)"host:99:1";
    s->svc_hb.sent_at_ms = 1700000000789LL;
    s->svc_hb.state_json = (char *)"{\"state\":\"idle\"}";
}

static ProtobufCMessage *
s_sample (samples_t *s, bf_msg_type_t type)
{
    switch (type) {
        case BF_MSG_EVT_BILL:
            return &s->bill.base;
        case BF_MSG_EVT_HB:
            return &s->relay_hb.base;
        case BF_MSG_RPL_FETCH:
            return &s->fetch.base;
        case BF_MSG_RPL_BATCH:
            return &s->batch.base;
        case BF_MSG_CMD:
            return &s->command.base;
        case BF_MSG_CMD_REPLY:
            return &s->reply.base;
        case BF_MSG_SVC_REG:
            return &s->reg.base;
        case BF_MSG_SVC_HB:
            return &s->svc_hb.base;
        default:
            fail_msg ("no sample for type %d", (int)type);
    }
    return NULL;
}

//  A distinct seq per type, covering 0, small, and all-ones.
static uint64_t
s_seq_for (bf_msg_type_t type)
{
    switch (type) {
        case BF_MSG_EVT_BILL:
            return 0x0102030405060708ULL;
        case BF_MSG_EVT_HB:
            return 0;
        case BF_MSG_RPL_BATCH:
            return 1002;
        case BF_MSG_CMD:
            return UINT64_MAX;
        default:
            return (uint64_t)type * 1000 + 1;
    }
}

static void
s_check_bill (const Billflow__BillSettled *want, const Billflow__BillSettled *got)
{
    assert_non_null (got);
    assert_int_equal (got->schema_version, want->schema_version);
    assert_string_equal (got->event_id, want->event_id);
    assert_int_equal (got->bill_id, want->bill_id);
    assert_int_equal (got->subscriber_id, want->subscriber_id);
    assert_string_equal (got->period, want->period);
    assert_int_equal (got->total, want->total);
    assert_string_equal (got->due_date, want->due_date);
    assert_int_equal (got->n_channels, want->n_channels);
    for (size_t i = 0; i < want->n_channels; i++)
        assert_int_equal (got->channels[i], want->channels[i]);
    assert_int_equal (got->run_id, want->run_id);
    assert_int_equal (got->line_count, want->line_count);
}

//  Checks every field of the decoded message in m against the sample.
static void
s_check_same (samples_t *s, bf_msg_type_t type, const bf_wire_msg_t *m)
{
    assert_int_equal (m->type, type);
    assert_non_null (m->body);
    switch (type) {
        case BF_MSG_EVT_BILL:
            s_check_bill (&s->bill, bf_wire_bill_settled (m));
            break;
        case BF_MSG_EVT_HB: {
            Billflow__RelayHeartbeat *got = bf_wire_relay_heartbeat (m);
            assert_non_null (got);
            assert_int_equal (got->schema_version, 1);
            assert_string_equal (got->event_id, "hb-1");
            assert_int_equal (got->last_seq, 123456789012ULL);
            assert_string_equal (got->relay_id, "settle-a");
            assert_int_equal (got->sent_at_ms, 1700000000123LL);
            break;
        }
        case BF_MSG_RPL_FETCH: {
            Billflow__ReplayFetch *got = bf_wire_replay_fetch (m);
            assert_non_null (got);
            assert_int_equal (got->schema_version, 1);
            assert_string_equal (got->request_id, "req-1");
            assert_int_equal (got->from_seq, 1001);
            assert_int_equal (got->count, 500);
            break;
        }
        case BF_MSG_RPL_BATCH: {
            Billflow__ReplayBatch *got = bf_wire_replay_batch (m);
            assert_non_null (got);
            assert_int_equal (got->schema_version, 1);
            assert_string_equal (got->request_id, "req-1");
            assert_int_equal (got->status, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE);
            assert_string_equal (got->error, "데이터베이스 연결 실패");
            assert_int_equal (got->last_published_seq, 5000);
            assert_int_equal (got->n_events, 2);
            for (size_t i = 0; i < 2; i++) {
                assert_int_equal (got->events[i]->seq, 1001 + i);
                s_check_bill (&s->event_bills[i], got->events[i]->event);
            }
            break;
        }
        case BF_MSG_CMD: {
            Billflow__Command *got = bf_wire_command (m);
            assert_non_null (got);
            assert_int_equal (got->schema_version, 1);
            assert_string_equal (got->command_id, "cmd-42");
            assert_string_equal (got->target, "settle");
            assert_string_equal (got->verb, "run.start");
            assert_int_equal (got->n_args, 2);
            assert_string_equal (got->args[0]->key, "period");
            assert_string_equal (got->args[0]->value, "2024-03");
            assert_string_equal (got->args[1]->key, "dry_run");
            assert_string_equal (got->args[1]->value, "true");
            assert_string_equal (got->issued_by, "ops-key");
            assert_int_equal (got->issued_at_ms, 1700000000456LL);
            break;
        }
        case BF_MSG_CMD_REPLY: {
            Billflow__CommandReply *got = bf_wire_command_reply (m);
            assert_non_null (got);
            assert_int_equal (got->schema_version, 1);
            assert_string_equal (got->command_id, "cmd-42");
            assert_int_equal (got->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
            assert_string_equal (got->result, "{\"ok\":false}");
            assert_string_equal (got->error, "no such run");
            assert_true (got->replayed);
            break;
        }
        case BF_MSG_SVC_REG: {
            Billflow__ServiceRegister *got = bf_wire_service_register (m);
            assert_non_null (got);
            assert_int_equal (got->schema_version, 1);
            assert_string_equal (got->event_id, "reg-1");
            assert_string_equal (got->service, "notify");
            assert_string_equal (got->instance_id, "host:123:1700000000");
            assert_string_equal (got->version, "0.1.0");
            assert_int_equal (got->pid, 4321);
            assert_int_equal (got->n_verbs, 3);
            assert_string_equal (got->verbs[0], "dispatch.pause");
            assert_string_equal (got->verbs[1], "dispatch.resume");
            assert_string_equal (got->verbs[2], "status");
            break;
        }
        case BF_MSG_SVC_HB: {
            Billflow__ServiceHeartbeat *got = bf_wire_service_heartbeat (m);
            assert_non_null (got);
            assert_int_equal (got->schema_version, 1);
            assert_string_equal (got->event_id, "shb-1");
            assert_string_equal (got->service, "settle");
            assert_string_equal (got->instance_id, "host:99:1");
            assert_int_equal (got->sent_at_ms, 1700000000789LL);
            assert_string_equal (got->state_json, "{\"state\":\"idle\"}");
            break;
        }
        default:
            fail_msg ("unexpected type %d", (int)type);
    }
}

//  --------------------------------------------------------------------------
//  Raw frames

#define S_MAX_FRAMES 5

typedef struct {
    uint8_t *data[S_MAX_FRAMES];
    size_t size[S_MAX_FRAMES];
    size_t n;
} frames_t;

static void
s_frames_add (frames_t *f, const void *data, size_t size)
{
    assert_true (f->n < S_MAX_FRAMES);
    f->data[f->n] = malloc (size ? size : 1);
    assert_non_null (f->data[f->n]);
    if (size)
        memcpy (f->data[f->n], data, size);
    f->size[f->n] = size;
    f->n++;
}

static void
s_frames_free (frames_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        free (f->data[i]);
    memset (f, 0, sizeof *f);
}

//  Copies the frames of msg (which stays the caller's).
static void
s_frames_from_zmsg (frames_t *f, zmsg_t *msg)
{
    memset (f, 0, sizeof *f);
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg))
        s_frames_add (f, zframe_data (frame), zframe_size (frame));
}

static void
s_seq_bytes (uint8_t out[8], uint64_t seq)
{
    for (int i = 7; i >= 0; i--, seq >>= 8)
        out[i] = (uint8_t)(seq & 0xff);
}

//  [type][seq][protobuf_c_message_pack(msg)] without any validation.
static void
s_frames_raw (frames_t *f, const char *type, uint64_t seq, const ProtobufCMessage *msg)
{
    uint8_t seq_bytes[8];
    memset (f, 0, sizeof *f);
    s_frames_add (f, type, strlen (type));
    s_seq_bytes (seq_bytes, seq);
    s_frames_add (f, seq_bytes, 8);
    size_t size = protobuf_c_message_get_packed_size (msg);
    uint8_t *payload = malloc (size ? size : 1);
    assert_non_null (payload);
    assert_int_equal (protobuf_c_message_pack (msg, payload), size);
    s_frames_add (f, payload, size);
    free (payload);
}

static int
s_decode (const frames_t *f, size_t max_payload, bf_wire_msg_t *out, char *err, size_t errsize)
{
    return bf_wire_decode ((const uint8_t *const *)f->data, f->size, f->n, max_payload, out, err,
                           errsize);
}

//  Packs msg raw under type's name, decodes it, and expects rc; when
//  want_text is not NULL, the reason must contain it.
static void
s_expect_raw (bf_msg_type_t type, const ProtobufCMessage *msg, int rc, const char *want_text)
{
    frames_t f;
    char err[256] = "";
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    s_frames_raw (&f, bf_msg_type_name (type), 1, msg);
    int got = s_decode (&f, 0, &m, err, sizeof err);
    if (got != rc)
        fail_msg ("%s: expected rc %d (%s), got %d (%s): %s", bf_msg_type_name (type), rc,
                  bf_wire_rc_name (rc), got, bf_wire_rc_name (got), err);
    if (rc != BF_WIRE_OK) {
        assert_null (m.body);
        assert_int_equal (m.type, BF_MSG_NONE);
        assert_true (strlen (err) > 0);
    }
    if (want_text && !strstr (err, want_text))
        fail_msg ("reason '%s' does not contain '%s'", err, want_text);
    bf_wire_msg_reset (&m);
    s_frames_free (&f);
}

//  Generic field setters, by field name, for tests over every type.
static void
s_set_u32 (ProtobufCMessage *msg, const char *name, uint32_t value)
{
    const ProtobufCFieldDescriptor *field
        = protobuf_c_message_descriptor_get_field_by_name (msg->descriptor, name);
    assert_non_null (field);
    assert_int_equal (field->type, PROTOBUF_C_TYPE_UINT32);
    memcpy ((char *)msg + field->offset, &value, sizeof value);
}

static void
s_set_str (ProtobufCMessage *msg, const char *name, const char *value)
{
    const ProtobufCFieldDescriptor *field
        = protobuf_c_message_descriptor_get_field_by_name (msg->descriptor, name);
    assert_non_null (field);
    assert_int_equal (field->type, PROTOBUF_C_TYPE_STRING);
    char *text = (char *)value;
    memcpy ((char *)msg + field->offset, &text, sizeof text);
}

static const char *
s_id_field (bf_msg_type_t type)
{
    switch (type) {
        case BF_MSG_RPL_FETCH:
        case BF_MSG_RPL_BATCH:
            return "request_id";
        case BF_MSG_CMD:
        case BF_MSG_CMD_REPLY:
            return "command_id";
        default:
            return "event_id";
    }
}

//  --------------------------------------------------------------------------
//  Tests: the type registry

static void
test_type_table (void **state)
{
    (void)state;
    static const struct {
        bf_msg_type_t type;
        const char *name;
        const ProtobufCMessageDescriptor *desc;
    } want[] = {
        { BF_MSG_EVT_BILL, "EVT.BILL", &billflow__bill_settled__descriptor },
        { BF_MSG_EVT_HB, "EVT.HB", &billflow__relay_heartbeat__descriptor },
        { BF_MSG_RPL_FETCH, "RPL.FETCH", &billflow__replay_fetch__descriptor },
        { BF_MSG_RPL_BATCH, "RPL.BATCH", &billflow__replay_batch__descriptor },
        { BF_MSG_CMD, "CMD", &billflow__command__descriptor },
        { BF_MSG_CMD_REPLY, "CMD.REPLY", &billflow__command_reply__descriptor },
        { BF_MSG_SVC_REG, "SVC.REG", &billflow__service_register__descriptor },
        { BF_MSG_SVC_HB, "SVC.HB", &billflow__service_heartbeat__descriptor },
    };
    assert_int_equal (sizeof want / sizeof want[0], BF_MSG_COUNT - 1);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal (bf_msg_type_name (want[i].type), want[i].name);
        assert_ptr_equal (bf_msg_type_descriptor (want[i].type), want[i].desc);
        assert_int_equal (bf_msg_type_lookup (want[i].name, strlen (want[i].name)), want[i].type);
    }
    assert_null (bf_msg_type_name (BF_MSG_NONE));
    assert_null (bf_msg_type_name (BF_MSG_COUNT));
    assert_null (bf_msg_type_name ((bf_msg_type_t)99));
    assert_null (bf_msg_type_descriptor (BF_MSG_NONE));
    assert_int_equal (bf_msg_type_lookup ("EVT", 3), BF_MSG_NONE);
    assert_int_equal (bf_msg_type_lookup ("EVT.BILL", 7), BF_MSG_NONE);
    assert_int_equal (bf_msg_type_lookup ("EVT.BILLX", 9), BF_MSG_NONE);
    assert_int_equal (bf_msg_type_lookup ("EVT.BILL", 9), BF_MSG_NONE); //  with the NUL
    assert_int_equal (bf_msg_type_lookup ("evt.bill", 8), BF_MSG_NONE);
    assert_int_equal (bf_msg_type_lookup ("", 0), BF_MSG_NONE);
    assert_int_equal (bf_msg_type_lookup (NULL, 0), BF_MSG_NONE);
    //  "CMD" is a prefix of "CMD.REPLY": lookup must be exact both ways.
    assert_int_equal (bf_msg_type_lookup ("CMD.REPLY", 3), BF_MSG_CMD);
}

//  --------------------------------------------------------------------------
//  Tests: round trips

static void
test_roundtrip_frames (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    for (int t = BF_MSG_NONE + 1; t < BF_MSG_COUNT; t++) {
        bf_msg_type_t type = (bf_msg_type_t)t;
        uint64_t seq = s_seq_for (type);
        zmsg_t *msg = bf_wire_encode (type, seq, s_sample (&s, type));
        assert_non_null (msg);
        assert_int_equal (zmsg_size (msg), 3);

        frames_t f;
        s_frames_from_zmsg (&f, msg);
        zmsg_destroy (&msg);
        const char *name = bf_msg_type_name (type);
        assert_int_equal (f.size[0], strlen (name));
        assert_memory_equal (f.data[0], name, f.size[0]);
        uint8_t want_seq[8];
        s_seq_bytes (want_seq, seq);
        assert_int_equal (f.size[1], 8);
        assert_memory_equal (f.data[1], want_seq, 8);
        assert_int_equal (f.size[2], protobuf_c_message_get_packed_size (s_sample (&s, type)));

        bf_wire_msg_t m = BF_WIRE_MSG_INIT;
        char err[256] = "untouched";
        int rc = s_decode (&f, 0, &m, err, sizeof err);
        if (rc != BF_WIRE_OK)
            fail_msg ("%s: rc %d: %s", name, rc, err);
        assert_string_equal (err, "");
        assert_int_equal (m.seq, seq);
        s_check_same (&s, type, &m);
        bf_wire_msg_reset (&m);
        s_frames_free (&f);
    }
}

static void
test_seq_big_endian (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    frames_t f;
    s_frames_raw (&f, "EVT.HB", 0, &s.relay_hb.base);
    static const uint8_t bytes[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    memcpy (f.data[1], bytes, 8);
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    assert_int_equal (s_decode (&f, 0, &m, NULL, 0), BF_WIRE_OK);
    assert_true (m.seq == 0x0102030405060708ULL);
    memset (f.data[1], 0xff, 8);
    assert_int_equal (s_decode (&f, 0, &m, NULL, 0), BF_WIRE_OK);
    assert_true (m.seq == UINT64_MAX);
    bf_wire_msg_reset (&m);
    s_frames_free (&f);
}

static void
test_roundtrip_pair_socket (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    zsock_t *server = zsock_new_pair ("@inproc://test_wire_pair");
    zsock_t *client = zsock_new_pair (">inproc://test_wire_pair");
    assert_non_null (server);
    assert_non_null (client);
    zsock_set_rcvtimeo (server, 2000);

    for (int t = BF_MSG_NONE + 1; t < BF_MSG_COUNT; t++) {
        bf_msg_type_t type = (bf_msg_type_t)t;
        assert_int_equal (bf_wire_send (client, type, s_seq_for (type), s_sample (&s, type)), 0);
    }
    for (int t = BF_MSG_NONE + 1; t < BF_MSG_COUNT; t++) {
        bf_msg_type_t type = (bf_msg_type_t)t;
        zmsg_t *msg = zmsg_recv (server);
        assert_non_null (msg);
        bf_wire_msg_t m = BF_WIRE_MSG_INIT;
        char err[256];
        int rc = bf_wire_recv (&msg, 0, &m, err, sizeof err);
        if (rc != BF_WIRE_OK)
            fail_msg ("%s: rc %d: %s", bf_msg_type_name (type), rc, err);
        assert_null (msg);
        assert_true (m.seq == s_seq_for (type));
        s_check_same (&s, type, &m);
        bf_wire_msg_reset (&m);
    }
    zsock_destroy (&client);
    zsock_destroy (&server);
}

//  The type frame is the topic: a SUB on "EVT.BILL" never sees "EVT.HB".
static void
test_type_is_topic (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    zsock_t *pub = zsock_new_pub ("@inproc://test_wire_pub");
    zsock_t *sub = zsock_new_sub (">inproc://test_wire_pub", "EVT.BILL");
    assert_non_null (pub);
    assert_non_null (sub);
    zpoller_t *poller = zpoller_new (sub, NULL);
    assert_non_null (poller);

    //  Subscriptions travel asynchronously: publish until one arrives.
    int bills = 0;
    for (int round = 0; round < 300 && bills < 3; round++) {
        assert_int_equal (bf_wire_send (pub, BF_MSG_EVT_HB, 0, &s.relay_hb.base), 0);
        assert_int_equal (bf_wire_send (pub, BF_MSG_EVT_BILL, (uint64_t)round + 1, &s.bill.base),
                          0);
        while (zpoller_wait (poller, 10) == sub) {
            zmsg_t *msg = zmsg_recv (sub);
            bf_wire_msg_t m = BF_WIRE_MSG_INIT;
            assert_int_equal (bf_wire_recv (&msg, 0, &m, NULL, 0), BF_WIRE_OK);
            assert_int_equal (m.type, BF_MSG_EVT_BILL);
            assert_true (m.seq >= 1);
            bills++;
            bf_wire_msg_reset (&m);
        }
    }
    assert_true (bills >= 3);
    zpoller_destroy (&poller);
    zsock_destroy (&sub);
    zsock_destroy (&pub);
}

//  Unknown fields (a newer writer within the same schema version) pass,
//  and are not kept (bf_wire.h).
static void
test_unknown_field_accepted (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    frames_t f;
    s_frames_raw (&f, "EVT.BILL", 7, &s.bill.base);
    //  Field 99, varint, value 1: tag (99 << 3) = 792 = 0x98 0x06.
    static const uint8_t extra[] = { 0x98, 0x06, 0x01 };
    uint8_t *longer = realloc (f.data[2], f.size[2] + sizeof extra);
    assert_non_null (longer);
    memcpy (longer + f.size[2], extra, sizeof extra);
    f.data[2] = longer;
    f.size[2] += sizeof extra;
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    assert_int_equal (s_decode (&f, 0, &m, NULL, 0), BF_WIRE_OK);
    s_check_same (&s, BF_MSG_EVT_BILL, &m);
    assert_int_equal (m.body->n_unknown_fields, 0);
    bf_wire_msg_reset (&m);
    s_frames_free (&f);
}

//  Appends extra to payload frame of f.
static void
s_frames_append (frames_t *f, const uint8_t *extra, size_t size)
{
    uint8_t *longer = realloc (f->data[2], f->size[2] + size);
    assert_non_null (longer);
    memcpy (longer + f->size[2], extra, size);
    f->data[2] = longer;
    f->size[2] += size;
}

//  Issue 11 defect 9: protobuf-c accepts field number 0 written as the
//  two-byte varint "80 00", keeps it as an unknown field, and writes it back
//  as the one-byte tag 00, which it then refuses. Whatever bf_wire_decode
//  accepts must encode again and decode to the same message. (The same in a
//  BillSettled nested in a ReplayBatch: corpus/wire/defect9_rpl_batch_field_0
//  of fuzz_wire_corpus.)
static void
test_field_zero_reencodes (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    static const uint8_t field_zero[] = { 0x80, 0x00, 0x01 };
    frames_t f;
    s_frames_raw (&f, "CMD", 0, s_sample (&s, BF_MSG_CMD));
    s_frames_append (&f, field_zero, sizeof field_zero);
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    char err[256];
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_OK);
    s_check_same (&s, BF_MSG_CMD, &m);
    zmsg_t *again = bf_wire_encode (m.type, m.seq, m.body);
    assert_non_null (again);
    bf_wire_msg_t m2 = BF_WIRE_MSG_INIT;
    assert_int_equal (bf_wire_recv (&again, 0, &m2, err, sizeof err), BF_WIRE_OK);
    s_check_same (&s, BF_MSG_CMD, &m2);
    bf_wire_msg_reset (&m2);
    bf_wire_msg_reset (&m);
    s_frames_free (&f);
}

//  --------------------------------------------------------------------------
//  Tests: malformed frames

static void
test_frame_count (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    frames_t f;
    char err[256];
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;

    //  Decode a good message first so failures must also empty `m`.
    s_frames_raw (&f, "EVT.BILL", 1, &s.bill.base);
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_OK);
    assert_non_null (m.body);

    f.n = 2;
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_EFRAMES);
    assert_string_equal (err, "expected 3 frames, got 2");
    assert_null (m.body);
    assert_int_equal (m.type, BF_MSG_NONE);
    f.n = 3;
    s_frames_add (&f, "x", 1);
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_EFRAMES);
    assert_string_equal (err, "expected 3 frames, got 4");
    assert_int_equal (bf_wire_decode (NULL, NULL, 0, 0, &m, err, sizeof err), BF_WIRE_EFRAMES);
    assert_string_equal (err, "expected 3 frames, got 0");
    assert_int_equal (bf_wire_decode (NULL, NULL, 1, 0, &m, err, sizeof err), BF_WIRE_EFRAMES);
    //  Bad calls are reported, not asserted.
    assert_int_equal (bf_wire_decode (NULL, NULL, 3, 0, &m, err, sizeof err), BF_WIRE_EARG);
    assert_int_equal (s_decode (&f, 0, NULL, err, sizeof err), BF_WIRE_EARG);
    s_frames_free (&f);
}

static void
test_unknown_type (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    char err[256];
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    frames_t f;

    s_frames_raw (&f, "FOO", 1, &s.bill.base);
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_ETYPE);
    assert_string_equal (err, "unknown frame type 'FOO'");
    s_frames_free (&f);

    const char *near_misses[] = { "EVT.BILLX", "evt.bill", "EVT.BIL", "EVT", "", " CMD" };
    for (size_t i = 0; i < sizeof near_misses / sizeof near_misses[0]; i++) {
        s_frames_raw (&f, near_misses[i], 1, &s.bill.base);
        assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_ETYPE);
        s_frames_free (&f);
    }
    //  Non-printable bytes are escaped, quotes too.
    s_frames_raw (&f, "\x01\xff'A", 1, &s.bill.base);
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_ETYPE);
    assert_string_equal (err, "unknown frame type '\\x01\\xff\\x27A'");
    s_frames_free (&f);
    //  A long name is cut short.
    char long_name[201];
    memset (long_name, 'Z', 200);
    long_name[200] = '\0';
    s_frames_raw (&f, long_name, 1, &s.bill.base);
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_ETYPE);
    assert_non_null (strstr (err, "ZZZ...'"));
    assert_true (strlen (err) < 80);
    s_frames_free (&f);
    //  The type frame is matched with its length: a trailing NUL fails.
    memset (&f, 0, sizeof f);
    s_frames_add (&f, "EVT.BILL\0", 9);
    s_frames_add (&f, "\0\0\0\0\0\0\0\1", 8);
    s_frames_add (&f, "", 0);
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_ETYPE);
    assert_string_equal (err, "unknown frame type 'EVT.BILL\\x00'");
    s_frames_free (&f);
    assert_null (m.body);
}

static void
test_bad_seq (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    char err[256];
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    const size_t bad[] = { 7, 0, 1, 9, 16 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        frames_t f;
        s_frames_raw (&f, "EVT.BILL", 1, &s.bill.base);
        free (f.data[1]);
        f.data[1] = calloc (1, bad[i] ? bad[i] : 1);
        f.size[1] = bad[i];
        assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_ESEQ);
        char want[64];
        snprintf (want, sizeof want, "EVT.BILL: seq frame of %zu bytes, expected 8", bad[i]);
        assert_string_equal (err, want);
        s_frames_free (&f);
    }
    assert_null (m.body);
}

static void
test_truncated_protobuf (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    char err[256];
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    frames_t f;
    s_frames_raw (&f, "EVT.BILL", 1, &s.bill.base);
    size_t full = f.size[2];
    //  The payload ends with line_count = 300: tag 0x50, varint 0xac 0x02.
    assert_true (full > 20);
    assert_int_equal (f.data[2][full - 3], 0x50);
    assert_int_equal (f.data[2][full - 2], 0xac);
    assert_int_equal (f.data[2][full - 1], 0x02);
    f.size[2] = full - 1; //  cut inside the varint
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_EPROTO);
    char want[128];
    snprintf (want, sizeof want,
              "EVT.BILL: payload of %zu bytes is not a valid billflow.BillSettled", full - 1);
    assert_string_equal (err, want);

    //  Starts with schema_version (0x08 0x01), then event_id: tag 0x12, length 36.
    assert_int_equal (f.data[2][2], 0x12);
    assert_int_equal (f.data[2][3], 36);
    f.size[2] = 14; //  cut inside event_id
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_EPROTO);
    f.size[2] = 3; //  cut after a tag
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_EPROTO);
    assert_null (m.body);
    s_frames_free (&f);
}

//  A small deterministic generator for garbage.
static uint64_t
s_xorshift (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static void
test_garbage_payload (void **state)
{
    (void)state;
    char err[256];
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;

    //  Hand-picked undecodable payloads.
    static const struct {
        const char *bytes;
        size_t len;
    } fixed[] = {
        { "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12 }, //  varint overflow
        { "\x0f", 1 },                                              //  wire type 7
        { "\x08", 1 },                                              //  tag, no value
        { "\x12\x05"
          "ab",
          4 }, //  string cut short
        { "\x0a\x01"
          "x",
          3 },             //  schema_version as bytes
        { "\x00\x00", 2 }, //  field number 0
    };
    for (int t = BF_MSG_NONE + 1; t < BF_MSG_COUNT; t++) {
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            frames_t f = { 0 };
            const char *name = bf_msg_type_name ((bf_msg_type_t)t);
            s_frames_add (&f, name, strlen (name));
            s_frames_add (&f, "\0\0\0\0\0\0\0\0", 8);
            s_frames_add (&f, fixed[i].bytes, fixed[i].len);
            int rc = s_decode (&f, 0, &m, err, sizeof err);
            if (rc != BF_WIRE_EPROTO)
                fail_msg ("%s garbage %zu: rc %d (%s)", name, i, rc, err);
            s_frames_free (&f);
        }
    }

    //  Random bytes: never accepted, never a crash; most are not protobuf.
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int proto_errors = 0, total = 0;
    for (int t = BF_MSG_NONE + 1; t < BF_MSG_COUNT; t++) {
        const char *name = bf_msg_type_name ((bf_msg_type_t)t);
        for (int round = 0; round < 500; round++) {
            uint8_t bytes[64];
            size_t len = 1 + s_xorshift (&seed) % sizeof bytes;
            for (size_t i = 0; i < len; i++)
                bytes[i] = (uint8_t)s_xorshift (&seed);
            frames_t f = { 0 };
            s_frames_add (&f, name, strlen (name));
            s_frames_add (&f, bytes, 8);
            s_frames_add (&f, bytes, len);
            int rc = s_decode (&f, 0, &m, err, sizeof err);
            assert_true (rc < 0);
            assert_true (rc == BF_WIRE_EPROTO || rc == BF_WIRE_ESCHEMA || rc == BF_WIRE_ENEWER
                         || rc == BF_WIRE_ENOID || rc == BF_WIRE_EINVAL);
            assert_null (m.body);
            proto_errors += rc == BF_WIRE_EPROTO;
            total++;
            s_frames_free (&f);
        }
    }
    assert_true (proto_errors > total / 2);
}

static void
test_oversize (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    char err[256];
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    frames_t f = { 0 };
    s_frames_add (&f, "EVT.BILL", 8);
    s_frames_add (&f, "\0\0\0\0\0\0\0\1", 8);
    f.data[2] = calloc (1, 2000000);
    assert_non_null (f.data[2]);
    f.size[2] = 2000000;
    f.n = 3;
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_ETOOBIG);
    assert_string_equal (err, "EVT.BILL: payload of 2000000 bytes exceeds 1048576");
    assert_int_equal (s_decode (&f, BF_WIRE_MAX_PAYLOAD, &m, err, sizeof err), BF_WIRE_ETOOBIG);
    //  Exactly the limit passes the size check (and then is not protobuf).
    f.size[2] = BF_WIRE_MAX_PAYLOAD;
    assert_int_equal (s_decode (&f, 0, &m, err, sizeof err), BF_WIRE_EPROTO);
    s_frames_free (&f);

    //  A custom limit, on a valid message.
    s_frames_raw (&f, "EVT.BILL", 1, &s.bill.base);
    size_t size = f.size[2];
    assert_int_equal (s_decode (&f, size, &m, err, sizeof err), BF_WIRE_OK);
    assert_int_equal (s_decode (&f, size - 1, &m, err, sizeof err), BF_WIRE_ETOOBIG);
    char want[96];
    snprintf (want, sizeof want, "EVT.BILL: payload of %zu bytes exceeds %zu", size, size - 1);
    assert_string_equal (err, want);
    assert_null (m.body);
    s_frames_free (&f);
}

//  --------------------------------------------------------------------------
//  Tests: content checks

static void
test_schema_version (void **state)
{
    (void)state;
    for (int t = BF_MSG_NONE + 1; t < BF_MSG_COUNT; t++) {
        bf_msg_type_t type = (bf_msg_type_t)t;
        samples_t s;
        s_samples_init (&s);
        ProtobufCMessage *msg = s_sample (&s, type);
        s_set_u32 (msg, "schema_version", 0);
        s_expect_raw (type, msg, BF_WIRE_ESCHEMA, "schema_version is missing");
        assert_null (bf_wire_encode (type, 1, msg));
        s_set_u32 (msg, "schema_version", 2);
        s_expect_raw (type, msg, BF_WIRE_ENEWER, "schema_version 2 is newer than 1");
        assert_null (bf_wire_encode (type, 1, msg));
        s_set_u32 (msg, "schema_version", UINT32_MAX);
        s_expect_raw (type, msg, BF_WIRE_ENEWER, NULL);
        //  bf_wire_set_schema repairs it.
        assert_int_equal (bf_wire_set_schema (msg), 0);
        s_expect_raw (type, msg, BF_WIRE_OK, NULL);
    }
}

static void
test_missing_id (void **state)
{
    (void)state;
    for (int t = BF_MSG_NONE + 1; t < BF_MSG_COUNT; t++) {
        bf_msg_type_t type = (bf_msg_type_t)t;
        samples_t s;
        s_samples_init (&s);
        ProtobufCMessage *msg = s_sample (&s, type);
        char want[64];
        snprintf (want, sizeof want, "%s: %s is missing", bf_msg_type_name (type),
                  s_id_field (type));
        s_set_str (msg, s_id_field (type), "");
        s_expect_raw (type, msg, BF_WIRE_ENOID, want);
        assert_null (bf_wire_encode (type, 1, msg));
        s_set_str (msg, s_id_field (type), NULL);
        s_expect_raw (type, msg, BF_WIRE_ENOID, want);
        assert_null (bf_wire_encode (type, 1, msg));
        //  Any non-empty id passes.
        s_set_str (msg, s_id_field (type), "x");
        s_expect_raw (type, msg, BF_WIRE_OK, NULL);
    }
}

static void
test_bill_checks (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    s.bill.bill_id = 0;
    s_expect_raw (BF_MSG_EVT_BILL, &s.bill.base, BF_WIRE_EINVAL, "EVT.BILL: bill_id is 0");
    assert_null (bf_wire_encode (BF_MSG_EVT_BILL, 1, &s.bill.base));
    s_samples_init (&s);
    s.bill.subscriber_id = 0;
    s_expect_raw (BF_MSG_EVT_BILL, &s.bill.base, BF_WIRE_EINVAL, "EVT.BILL: subscriber_id is 0");

    const char *bad[]
        = { "",        "2024-13", "2024-00",  "2024-1",   "2024-011", "202401", "2024/01",
            "abcd-01", "1899-12", " 2024-01", "2024-01 ", "2024-1a",  "-024-01" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_samples_init (&s);
        s.bill.period = (char *)bad[i];
        char want[64];
        snprintf (want, sizeof want, "EVT.BILL: period '%s' is not YYYY-MM", bad[i]);
        s_expect_raw (BF_MSG_EVT_BILL, &s.bill.base, BF_WIRE_EINVAL, want);
        assert_null (bf_wire_encode (BF_MSG_EVT_BILL, 1, &s.bill.base));
    }
    const char *good[] = { "1900-01", "2024-12", "2024-10", "9999-09" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        s_samples_init (&s);
        s.bill.period = (char *)good[i];
        s_expect_raw (BF_MSG_EVT_BILL, &s.bill.base, BF_WIRE_OK, NULL);
    }
}

//  from_seq and count are the replay actor's to judge: it answers a bad
//  range with a BAD_REQUEST that carries the request_id, so decoding must
//  let such a request through instead of dropping it.
static void
test_fetch_count (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    s.fetch.count = 0;
    s_expect_raw (BF_MSG_RPL_FETCH, &s.fetch.base, BF_WIRE_OK, NULL);
    zmsg_t *msg = bf_wire_encode (BF_MSG_RPL_FETCH, 0, &s.fetch.base);
    assert_non_null (msg);
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    assert_int_equal (bf_wire_recv (&msg, 0, &m, NULL, 0), BF_WIRE_OK);
    assert_int_equal (bf_wire_replay_fetch (&m)->count, 0);
    assert_string_equal (bf_wire_replay_fetch (&m)->request_id, "req-1");
    bf_wire_msg_reset (&m);
    s.fetch.from_seq = 0;
    s_expect_raw (BF_MSG_RPL_FETCH, &s.fetch.base, BF_WIRE_OK, NULL);
    //  The id is still required.
    s.fetch.request_id = (char *)"";
    s_expect_raw (BF_MSG_RPL_FETCH, &s.fetch.base, BF_WIRE_ENOID, "request_id is missing");
}

static void
test_batch_checks (void **state)
{
    (void)state;
    samples_t s;

    s_samples_init (&s);
    s.events[1].event = NULL;
    s_expect_raw (BF_MSG_RPL_BATCH, &s.batch.base, BF_WIRE_EINVAL,
                  "RPL.BATCH: event 1 (seq 1002) has no BillSettled");

    s_samples_init (&s);
    s.event_bills[0].bill_id = 0;
    s_expect_raw (BF_MSG_RPL_BATCH, &s.batch.base, BF_WIRE_EINVAL,
                  "RPL.BATCH: event 0 (seq 1001): EVT.BILL: bill_id is 0");

    s_samples_init (&s);
    s.event_bills[1].event_id = (char *)"";
    s_expect_raw (BF_MSG_RPL_BATCH, &s.batch.base, BF_WIRE_ENOID, "event_id is missing");

    s_samples_init (&s);
    s.event_bills[1].schema_version = 0;
    s_expect_raw (BF_MSG_RPL_BATCH, &s.batch.base, BF_WIRE_ESCHEMA, NULL);
    s.event_bills[1].schema_version = 2;
    s_expect_raw (BF_MSG_RPL_BATCH, &s.batch.base, BF_WIRE_ENEWER, NULL);

    s_samples_init (&s);
    s.events[0].seq = 0;
    s_expect_raw (BF_MSG_RPL_BATCH, &s.batch.base, BF_WIRE_EINVAL, "event 0 has seq 0");

    s_samples_init (&s);
    s.events[1].seq = 1001;
    s_expect_raw (BF_MSG_RPL_BATCH, &s.batch.base, BF_WIRE_EINVAL,
                  "event 1 has seq 1001 after 1001");
    assert_null (bf_wire_encode (BF_MSG_RPL_BATCH, 1001, &s.batch.base));

    //  An empty batch (an error reply) is fine.
    s_samples_init (&s);
    s.batch.n_events = 0;
    s.batch.events = NULL;
    s.batch.status = BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST;
    s_expect_raw (BF_MSG_RPL_BATCH, &s.batch.base, BF_WIRE_OK, NULL);

    //  Validation guards against NULL slots in memory, too.
    s_samples_init (&s);
    s.event_ptrs[1] = NULL;
    char err[128];
    assert_int_equal (bf_wire_validate (BF_MSG_RPL_BATCH, &s.batch.base, err, sizeof err),
                      BF_WIRE_EINVAL);
    assert_string_equal (err, "RPL.BATCH: event 1 is missing");
    assert_null (bf_wire_encode (BF_MSG_RPL_BATCH, 1, &s.batch.base));
}

//  Command checks stop at command_id, so control can answer a bad one.
static void
test_command_left_to_receiver (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    s.command.verb = (char *)"";
    s.command.target = (char *)"";
    s.command.n_args = 0;
    s.command.args = NULL;
    s_expect_raw (BF_MSG_CMD, &s.command.base, BF_WIRE_OK, NULL);
    s.reply.status = (Billflow__CommandReply__Status)77; //  unknown enum value
    s_expect_raw (BF_MSG_CMD_REPLY, &s.reply.base, BF_WIRE_OK, NULL);
}

//  --------------------------------------------------------------------------
//  Tests: encoding and receiving edge cases

static void
test_encode_refuses (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    assert_null (bf_wire_encode (BF_MSG_NONE, 0, &s.bill.base));
    assert_null (bf_wire_encode (BF_MSG_COUNT, 0, &s.bill.base));
    assert_null (bf_wire_encode (BF_MSG_EVT_BILL, 0, NULL));
    //  Descriptor does not match the type.
    assert_null (bf_wire_encode (BF_MSG_EVT_BILL, 0, &s.relay_hb.base));
    assert_null (bf_wire_encode (BF_MSG_CMD, 0, &s.reply.base));
    //  A repeated field that claims entries but has no array.
    s.command.args = NULL;
    assert_null (bf_wire_encode (BF_MSG_CMD, 0, &s.command.base));

    zsock_t *a = zsock_new_pair ("@inproc://test_wire_refuse");
    assert_non_null (a);
    assert_int_equal (bf_wire_send (a, BF_MSG_EVT_BILL, 0, &s.relay_hb.base), -1);
    assert_int_equal (bf_wire_send (NULL, BF_MSG_EVT_HB, 0, &s.relay_hb.base), -1);
    //  No peer and a zero send timeout: the send itself fails.
    zsock_set_sndtimeo (a, 0);
    assert_int_equal (bf_wire_send (a, BF_MSG_EVT_HB, 0, &s.relay_hb.base), -1);
    zsock_destroy (&a);
}

//  encode_raw frames stored bytes exactly as encode frames the message.
static void
test_encode_raw (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    for (int t = BF_MSG_NONE + 1; t < BF_MSG_COUNT; t++) {
        bf_msg_type_t type = (bf_msg_type_t)t;
        const ProtobufCMessage *sample = s_sample (&s, type);
        uint64_t seq = s_seq_for (type);
        size_t size = protobuf_c_message_get_packed_size (sample);
        uint8_t *packed = malloc (size);
        assert_non_null (packed);
        assert_int_equal (protobuf_c_message_pack (sample, packed), size);

        zmsg_t *want = bf_wire_encode (type, seq, sample);
        zmsg_t *got = bf_wire_encode_raw (type, seq, packed, size);
        free (packed); //  the message holds its own copy
        assert_non_null (want);
        assert_non_null (got);
        frames_t fw, fg;
        s_frames_from_zmsg (&fw, want);
        s_frames_from_zmsg (&fg, got);
        assert_int_equal (fg.n, 3);
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal (fg.size[i], fw.size[i]);
            assert_memory_equal (fg.data[i], fw.data[i], fw.size[i]);
        }
        bf_wire_msg_t m = BF_WIRE_MSG_INIT;
        assert_int_equal (bf_wire_recv (&got, 0, &m, NULL, 0), BF_WIRE_OK);
        assert_int_equal (m.seq, seq);
        s_check_same (&s, type, &m);
        bf_wire_msg_reset (&m);
        zmsg_destroy (&want);
        s_frames_free (&fw);
        s_frames_free (&fg);
    }

    //  Not validated: the caller vouches for the bytes, the receiver judges.
    zmsg_t *msg = bf_wire_encode_raw (BF_MSG_EVT_BILL, 7, "\xff\xff", 2);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 3);
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    assert_int_equal (bf_wire_recv (&msg, 0, &m, NULL, 0), BF_WIRE_EPROTO);
    //  An empty payload is an empty frame.
    msg = bf_wire_encode_raw (BF_MSG_EVT_HB, 0, NULL, 0);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 3);
    assert_int_equal (zframe_size (zmsg_last (msg)), 0);
    zmsg_destroy (&msg);

    assert_null (bf_wire_encode_raw (BF_MSG_NONE, 0, "x", 1));
    assert_null (bf_wire_encode_raw (BF_MSG_COUNT, 0, "x", 1));
    assert_null (bf_wire_encode_raw (BF_MSG_EVT_BILL, 0, NULL, 5));
}

//  A refused message is logged with its reason (bf_log to a pipe).
static void
test_encode_logs_reason (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    s.svc_hb.event_id = (char *)"";
    int fds[2];
    assert_int_equal (pipe (fds), 0);
    assert_int_equal (fcntl (fds[0], F_SETFL, O_NONBLOCK), 0);
    bf_log_set_fd (fds[1]);
    zmsg_t *msg = bf_wire_encode (BF_MSG_SVC_HB, 1, &s.svc_hb.base);
    bf_log_set_fd (*(int *)*state);
    assert_null (msg);
    char logged[1024] = "";
    ssize_t got = read (fds[0], logged, sizeof logged - 1);
    close (fds[0]);
    close (fds[1]);
    assert_true (got > 0);
    logged[got] = '\0';
    if (!strstr (logged, "SVC.HB: event_id is missing"))
        fail_msg ("log line lacks the reason: %s", logged);
}

static void
test_recv_edges (void **state)
{
    (void)state;
    char err[256];
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    assert_int_equal (bf_wire_recv (NULL, 0, &m, err, sizeof err), BF_WIRE_EARG);
    zmsg_t *msg = NULL;
    assert_int_equal (bf_wire_recv (&msg, 0, &m, err, sizeof err), BF_WIRE_EARG);

    msg = zmsg_new ();
    zmsg_addstr (msg, "EVT.HB");
    zmsg_addmem (msg, "\0\0\0\0\0\0\0\0", 8);
    assert_int_equal (bf_wire_recv (&msg, 0, &m, err, sizeof err), BF_WIRE_EFRAMES);
    assert_null (msg);
    assert_string_equal (err, "expected 3 frames, got 2");

    msg = zmsg_new ();
    zmsg_addstr (msg, "EVT.HB");
    zmsg_addmem (msg, "\0\0\0\0\0\0\0\0", 8);
    zmsg_addmem (msg, "\xff\xff\xff", 3);
    assert_int_equal (bf_wire_recv (&msg, 0, &m, NULL, 0), BF_WIRE_EPROTO);
    assert_null (msg);

    //  An empty payload is an empty message: schema_version missing.
    msg = zmsg_new ();
    zmsg_addstr (msg, "SVC.HB");
    zmsg_addmem (msg, "\0\0\0\0\0\0\0\0", 8);
    zmsg_addmem (msg, NULL, 0);
    assert_int_equal (bf_wire_recv (&msg, 0, &m, err, sizeof err), BF_WIRE_ESCHEMA);
    assert_null (msg);
    assert_null (m.body);

    //  Oversize against the caller's limit.
    samples_t s;
    s_samples_init (&s);
    msg = bf_wire_encode (BF_MSG_SVC_HB, 5, &s.svc_hb.base);
    assert_non_null (msg);
    assert_int_equal (bf_wire_recv (&msg, 10, &m, err, sizeof err), BF_WIRE_ETOOBIG);
    assert_null (msg);
    //  A short err buffer is cut, still terminated.
    msg = bf_wire_encode (BF_MSG_SVC_HB, 5, &s.svc_hb.base);
    char tiny[8];
    assert_int_equal (bf_wire_recv (&msg, 10, &m, tiny, sizeof tiny), BF_WIRE_ETOOBIG);
    assert_string_equal (tiny, "SVC.HB:");
}

static void
test_reset_and_accessors (void **state)
{
    (void)state;
    samples_t s;
    s_samples_init (&s);
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    assert_null (bf_wire_bill_settled (&m));
    assert_null (bf_wire_bill_settled (NULL));
    bf_wire_msg_reset (&m);
    bf_wire_msg_reset (NULL);

    frames_t f;
    s_frames_raw (&f, "CMD", 9, &s.command.base);
    assert_int_equal (s_decode (&f, 0, &m, NULL, 0), BF_WIRE_OK);
    assert_ptr_equal (bf_wire_command (&m), m.body);
    assert_null (bf_wire_bill_settled (&m));
    assert_null (bf_wire_relay_heartbeat (&m));
    assert_null (bf_wire_replay_fetch (&m));
    assert_null (bf_wire_replay_batch (&m));
    assert_null (bf_wire_command_reply (&m));
    assert_null (bf_wire_service_register (&m));
    assert_null (bf_wire_service_heartbeat (&m));
    //  Decoding into a full message replaces it (ASan would see a leak).
    assert_int_equal (s_decode (&f, 0, &m, NULL, 0), BF_WIRE_OK);
    assert_int_equal (m.seq, 9);
    bf_wire_msg_reset (&m);
    assert_null (m.body);
    assert_int_equal (m.type, BF_MSG_NONE);
    assert_int_equal (m.seq, 0);
    bf_wire_msg_reset (&m);
    assert_null (bf_wire_command (&m));
    s_frames_free (&f);
}

static void
test_set_schema (void **state)
{
    (void)state;
    Billflow__ServiceRegister reg = BILLFLOW__SERVICE_REGISTER__INIT;
    assert_int_equal (reg.schema_version, 0);
    assert_int_equal (bf_wire_set_schema (&reg.base), 0);
    assert_int_equal (reg.schema_version, BF_SCHEMA_VERSION);
    Billflow__ReplayEvent event = BILLFLOW__REPLAY_EVENT__INIT;
    assert_int_equal (bf_wire_set_schema (&event.base), -1);
    assert_int_equal (bf_wire_set_schema (NULL), -1);
}

//  --------------------------------------------------------------------------
//  Tests: counters

static void
test_stats (void **state)
{
    (void)state;
    bf_wire_stats_t stats = { 0 };
    bf_wire_stats_count (&stats, BF_WIRE_OK);
    bf_wire_stats_count (&stats, BF_WIRE_OK);
    bf_wire_stats_count (&stats, BF_WIRE_EFRAMES);
    bf_wire_stats_count (&stats, BF_WIRE_EFRAMES);
    bf_wire_stats_count (&stats, BF_WIRE_EPROTO);
    bf_wire_stats_count (&stats, BF_WIRE_EINVAL);
    bf_wire_stats_count (&stats, -99); //  unknown codes land on bad_call
    bf_wire_stats_count (&stats, 5);
    bf_wire_stats_count (NULL, BF_WIRE_OK);
    assert_int_equal (stats.decoded, 2);
    assert_int_equal (stats.rejected, 6);
    assert_int_equal (stats.by_rc[0], 2);
    assert_int_equal (stats.by_rc[-BF_WIRE_EFRAMES], 2);
    assert_int_equal (stats.by_rc[-BF_WIRE_EPROTO], 1);
    assert_int_equal (stats.by_rc[-BF_WIRE_EINVAL], 1);
    assert_int_equal (stats.by_rc[-BF_WIRE_EARG], 2);
    assert_int_equal (stats.by_rc[-BF_WIRE_ETYPE], 0);
    uint64_t sum = 0;
    for (int i = 1; i < BF_WIRE_RC_COUNT; i++)
        sum += stats.by_rc[i];
    assert_int_equal (sum, stats.rejected);

    //  Counting real decode results.
    samples_t s;
    s_samples_init (&s);
    bf_wire_stats_t live = { 0 };
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    frames_t f;
    s_frames_raw (&f, "EVT.BILL", 1, &s.bill.base);
    bf_wire_stats_count (&live, s_decode (&f, 0, &m, NULL, 0));
    f.n = 2;
    bf_wire_stats_count (&live, s_decode (&f, 0, &m, NULL, 0));
    f.n = 3;
    f.size[1] = 4;
    bf_wire_stats_count (&live, s_decode (&f, 0, &m, NULL, 0));
    s_frames_free (&f);
    assert_int_equal (live.decoded, 1);
    assert_int_equal (live.rejected, 2);
    assert_int_equal (live.by_rc[-BF_WIRE_EFRAMES], 1);
    assert_int_equal (live.by_rc[-BF_WIRE_ESEQ], 1);
    bf_wire_msg_reset (&m);
}

static void
test_rc_names (void **state)
{
    (void)state;
    assert_string_equal (bf_wire_rc_name (BF_WIRE_OK), "ok");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_EFRAMES), "frames");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_ETYPE), "type");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_ESEQ), "seq");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_ETOOBIG), "too_big");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_EPROTO), "protobuf");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_ESCHEMA), "schema_missing");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_ENEWER), "schema_newer");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_ENOID), "no_id");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_EINVAL), "invalid");
    assert_string_equal (bf_wire_rc_name (BF_WIRE_EARG), "bad_call");
    assert_string_equal (bf_wire_rc_name (1), "unknown");
    assert_string_equal (bf_wire_rc_name (-BF_WIRE_RC_COUNT), "unknown");
    assert_string_equal (bf_wire_rc_name (-1000), "unknown");
    //  Every code has its own name.
    for (int a = 0; a < BF_WIRE_RC_COUNT; a++)
        for (int b = a + 1; b < BF_WIRE_RC_COUNT; b++)
            assert_string_not_equal (bf_wire_rc_name (-a), bf_wire_rc_name (-b));
}

//  --------------------------------------------------------------------------
//  Tests: UUIDs

#define S_UUID_DRAWS 10000

static int
s_compare_uuid (const void *a, const void *b)
{
    return memcmp (a, b, BF_UUID_LEN + 1);
}

static void
test_uuid_format_and_uniqueness (void **state)
{
    (void)state;
    char (*ids)[BF_UUID_LEN + 1] = calloc (S_UUID_DRAWS, sizeof *ids);
    assert_non_null (ids);
    bool first_digit_seen[16] = { false };
    for (int i = 0; i < S_UUID_DRAWS; i++) {
        memset (ids[i], 'X', sizeof ids[i]);
        assert_ptr_equal (bf_uuid_v4 (ids[i]), ids[i]);
        const char *id = ids[i];
        assert_int_equal (strlen (id), BF_UUID_LEN);
        assert_true (bf_uuid_valid (id));
        assert_int_equal (id[8], '-');
        assert_int_equal (id[13], '-');
        assert_int_equal (id[18], '-');
        assert_int_equal (id[23], '-');
        assert_int_equal (id[14], '4');
        assert_non_null (strchr ("89ab", id[19]));
        first_digit_seen[strchr ("0123456789abcdef", id[0]) - "0123456789abcdef"] = true;
    }
    for (int d = 0; d < 16; d++)
        assert_true (first_digit_seen[d]);
    qsort (ids, S_UUID_DRAWS, sizeof *ids, s_compare_uuid);
    for (int i = 1; i < S_UUID_DRAWS; i++)
        assert_string_not_equal (ids[i - 1], ids[i]);
    free (ids);
    assert_null (bf_uuid_v4 (NULL));
}

static void
test_uuid_valid (void **state)
{
    (void)state;
    assert_true (bf_uuid_valid ("0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f"));
    assert_true (bf_uuid_valid ("00000000-0000-0000-0000-000000000000"));
    assert_true (bf_uuid_valid ("6ba7b810-9dad-11d1-80b4-00c04fd430c8")); //  v1 is fine
    assert_false (bf_uuid_valid (NULL));
    assert_false (bf_uuid_valid (""));
    assert_false (bf_uuid_valid ("0B9C6D2E-4F1A-4C3B-9E7D-5A6B7C8D9E0F"));  //  uppercase
    assert_false (bf_uuid_valid ("0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0"));   //  short
    assert_false (bf_uuid_valid ("0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f0")); //  long
    assert_false (bf_uuid_valid ("0b9c6d2e4f1a-4c3b-9e7d-5a6b7c8d9e0f0"));  //  dash moved
    assert_false (bf_uuid_valid ("0b9c6d2e-4f1a-4c3b-9e7d_5a6b7c8d9e0f"));
    assert_false (bf_uuid_valid ("0b9c6d2g-4f1a-4c3b-9e7d-5a6b7c8d9e0f")); //  not hex
    assert_false (bf_uuid_valid ("{0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f}"));
    assert_false (bf_uuid_valid ("0b9c6d2e0-4f1a-4c3b-9e7d-5a6b7c8d9e0f"));
    assert_false (bf_uuid_valid ("0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f\n"));
}

#define S_THREADS    4
#define S_PER_THREAD 1000

static void *
s_uuid_worker (void *arg)
{
    char (*ids)[BF_UUID_LEN + 1] = arg;
    for (int i = 0; i < S_PER_THREAD; i++)
        if (bf_uuid_v4 (ids[i]) == NULL)
            ids[i][0] = '\0';
    return NULL;
}

static void
test_uuid_threads (void **state)
{
    (void)state;
    char (*ids)[BF_UUID_LEN + 1] = calloc (S_THREADS * S_PER_THREAD, sizeof *ids);
    assert_non_null (ids);
    pthread_t threads[S_THREADS];
    for (int t = 0; t < S_THREADS; t++)
        assert_int_equal (pthread_create (&threads[t], NULL, s_uuid_worker, ids + t * S_PER_THREAD),
                          0);
    for (int t = 0; t < S_THREADS; t++)
        assert_int_equal (pthread_join (threads[t], NULL), 0);
    for (int i = 0; i < S_THREADS * S_PER_THREAD; i++)
        assert_true (bf_uuid_valid (ids[i]));
    qsort (ids, S_THREADS * S_PER_THREAD, sizeof *ids, s_compare_uuid);
    for (int i = 1; i < S_THREADS * S_PER_THREAD; i++)
        assert_string_not_equal (ids[i - 1], ids[i]);
    free (ids);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_type_table),      cmocka_unit_test (test_roundtrip_frames),
        cmocka_unit_test (test_seq_big_endian),  cmocka_unit_test (test_roundtrip_pair_socket),
        cmocka_unit_test (test_type_is_topic),   cmocka_unit_test (test_unknown_field_accepted),
        cmocka_unit_test (test_field_zero_reencodes),
        cmocka_unit_test (test_frame_count),     cmocka_unit_test (test_unknown_type),
        cmocka_unit_test (test_bad_seq),         cmocka_unit_test (test_truncated_protobuf),
        cmocka_unit_test (test_garbage_payload), cmocka_unit_test (test_oversize),
        cmocka_unit_test (test_schema_version),  cmocka_unit_test (test_missing_id),
        cmocka_unit_test (test_bill_checks),     cmocka_unit_test (test_fetch_count),
        cmocka_unit_test (test_batch_checks),    cmocka_unit_test (test_command_left_to_receiver),
        cmocka_unit_test (test_encode_refuses),  cmocka_unit_test (test_encode_logs_reason),
        cmocka_unit_test (test_recv_edges),      cmocka_unit_test (test_reset_and_accessors),
        cmocka_unit_test (test_set_schema),      cmocka_unit_test (test_stats),
        cmocka_unit_test (test_rc_names),        cmocka_unit_test (test_uuid_format_and_uniqueness),
        cmocka_unit_test (test_uuid_valid),      cmocka_unit_test (test_uuid_threads),
        cmocka_unit_test (test_encode_raw),
    };
    /*  Many tests provoke refusals on purpose: a quiet log.  */
    return cmocka_run_group_tests (tests, bf_testutil_quiet_setup, bf_testutil_quiet_teardown);
}
