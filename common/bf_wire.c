/*  bf_wire — the billflow wire format: [type][seq][protobuf] frames.

    One table maps each frame type to its name, its protobuf-c descriptor and
    where its schema_version and id fields live, so decoding, validation and
    encoding share one generic path; only the type-specific content checks
    look at typed structs. Everything that reads outside input works on
    (pointer, length) pairs and reports through a result code and an error
    text; nothing here asserts on what came off the network.  */

#include "bf_wire.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bf_log.h"

/*  How many bytes of a foreign string an error text quotes.  */
#define S_QUOTE_MAX 32

typedef struct {
    const char *name;                       /* wire name / topic */
    const ProtobufCMessageDescriptor *desc; /* payload type */
    size_t schema_offset;                   /* uint32_t schema_version */
    size_t id_offset;                       /* char * id field */
    const char *id_name;                    /* its name, for messages */
} s_type_t;

// clang-format off
#define S_TYPE(wire, ctype, cdesc, idfield) \
    {wire, &cdesc, offsetof (ctype, schema_version), offsetof (ctype, idfield), #idfield}

static const s_type_t s_types[BF_MSG_COUNT] = {
    [BF_MSG_NONE]      = {NULL, NULL, 0, 0, NULL},
    [BF_MSG_EVT_BILL]  = S_TYPE ("EVT.BILL", Billflow__BillSettled,
                                 billflow__bill_settled__descriptor, event_id),
    [BF_MSG_EVT_HB]    = S_TYPE ("EVT.HB", Billflow__RelayHeartbeat,
                                 billflow__relay_heartbeat__descriptor, event_id),
    [BF_MSG_RPL_FETCH] = S_TYPE ("RPL.FETCH", Billflow__ReplayFetch,
                                 billflow__replay_fetch__descriptor, request_id),
    [BF_MSG_RPL_BATCH] = S_TYPE ("RPL.BATCH", Billflow__ReplayBatch,
                                 billflow__replay_batch__descriptor, request_id),
    [BF_MSG_CMD]       = S_TYPE ("CMD", Billflow__Command,
                                 billflow__command__descriptor, command_id),
    [BF_MSG_CMD_REPLY] = S_TYPE ("CMD.REPLY", Billflow__CommandReply,
                                 billflow__command_reply__descriptor, command_id),
    [BF_MSG_SVC_REG]   = S_TYPE ("SVC.REG", Billflow__ServiceRegister,
                                 billflow__service_register__descriptor, event_id),
    [BF_MSG_SVC_HB]    = S_TYPE ("SVC.HB", Billflow__ServiceHeartbeat,
                                 billflow__service_heartbeat__descriptor, event_id),
};
// clang-format on

static const char *s_rc_names[BF_WIRE_RC_COUNT] = {
    [0] = "ok",
    [-BF_WIRE_EFRAMES] = "frames",
    [-BF_WIRE_ETYPE] = "type",
    [-BF_WIRE_ESEQ] = "seq",
    [-BF_WIRE_ETOOBIG] = "too_big",
    [-BF_WIRE_EPROTO] = "protobuf",
    [-BF_WIRE_ESCHEMA] = "schema_missing",
    [-BF_WIRE_ENEWER] = "schema_newer",
    [-BF_WIRE_ENOID] = "no_id",
    [-BF_WIRE_EINVAL] = "invalid",
    [-BF_WIRE_EARG] = "bad_call",
};

//  --------------------------------------------------------------------------
//  Helpers

static const s_type_t *
s_type (bf_msg_type_t type)
{
    if (type <= BF_MSG_NONE || type >= BF_MSG_COUNT)
        return NULL;
    return &s_types[type];
}

static int s_fail (int rc, char *err, size_t errsize, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Writes the reason into err (when there is room) and returns rc.
static int
s_fail (int rc, char *err, size_t errsize, const char *format, ...)
{
    if (err && errsize > 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, errsize, format, args);
        va_end (args);
    }
    return rc;
}

//  Quotes at most S_QUOTE_MAX bytes of foreign data into out for an error
//  text: printable ASCII as is, anything else as \xNN, "..." when cut.
static char *
s_quote (const void *data, size_t len, char *out, size_t outsize)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *bytes = (const uint8_t *)data;
    size_t used = 0;
    size_t shown = len > S_QUOTE_MAX ? S_QUOTE_MAX : len;
    //  Worst case 4 bytes per input byte, "...", NUL.
    if (outsize < 4 * S_QUOTE_MAX + 4) {
        if (outsize)
            out[0] = '\0';
        return out;
    }
    for (size_t i = 0; i < shown && bytes; i++) {
        uint8_t c = bytes[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            out[used++] = (char)c;
        else {
            out[used++] = '\\';
            out[used++] = 'x';
            out[used++] = hex[c >> 4];
            out[used++] = hex[c & 15];
        }
    }
    if (shown < len) {
        memcpy (out + used, "...", 3);
        used += 3;
    }
    out[used] = '\0';
    return out;
}

static bool
s_empty (const char *text)
{
    return text == NULL || text[0] == '\0';
}

static bool
s_digit (char c)
{
    return c >= '0' && c <= '9';
}

//  "YYYY-MM", years 1900..9999 (bf_date's range), months 01..12.
static bool
s_period_valid (const char *text)
{
    if (text == NULL)
        return false;
    for (int i = 0; i < 7; i++) {
        bool ok = i == 4 ? text[i] == '-' : s_digit (text[i]);
        if (!ok)
            return false; //  also stops at an early NUL
    }
    if (text[7] != '\0')
        return false;
    int year
        = (text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 + (text[3] - '0');
    int month = (text[5] - '0') * 10 + (text[6] - '0');
    return year >= 1900 && month >= 1 && month <= 12;
}

static uint64_t
s_get_be64 (const uint8_t *bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | bytes[i];
    return value;
}

static void
s_put_be64 (uint8_t *bytes, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        bytes[i] = (uint8_t)(value & 0xff);
        value >>= 8;
    }
}

static int
s_check_bill (const char *where, const Billflow__BillSettled *bill, char *err, size_t errsize)
{
    char quoted[4 * S_QUOTE_MAX + 4];
    if (bill->bill_id == 0)
        return s_fail (BF_WIRE_EINVAL, err, errsize, "%s: bill_id is 0", where);
    if (bill->subscriber_id == 0)
        return s_fail (BF_WIRE_EINVAL, err, errsize, "%s: subscriber_id is 0", where);
    if (!s_period_valid (bill->period)) {
        const char *period = bill->period ? bill->period : "";
        return s_fail (BF_WIRE_EINVAL, err, errsize, "%s: period '%s' is not YYYY-MM", where,
                       s_quote (period, strlen (period), quoted, sizeof quoted));
    }
    return BF_WIRE_OK;
}

static int
s_check_batch (const Billflow__ReplayBatch *batch, char *err, size_t errsize)
{
    if (batch->n_events > 0 && batch->events == NULL)
        return s_fail (BF_WIRE_EINVAL, err, errsize, "RPL.BATCH: events array is missing");
    uint64_t previous = 0;
    for (size_t i = 0; i < batch->n_events; i++) {
        const Billflow__ReplayEvent *event = batch->events[i];
        if (event == NULL)
            return s_fail (BF_WIRE_EINVAL, err, errsize, "RPL.BATCH: event %zu is missing", i);
        if (event->seq == 0)
            return s_fail (BF_WIRE_EINVAL, err, errsize, "RPL.BATCH: event %zu has seq 0", i);
        if (event->seq <= previous)
            return s_fail (BF_WIRE_EINVAL, err, errsize,
                           "RPL.BATCH: event %zu has seq %" PRIu64 " after %" PRIu64, i, event->seq,
                           previous);
        previous = event->seq;
        if (event->event == NULL)
            return s_fail (BF_WIRE_EINVAL, err, errsize,
                           "RPL.BATCH: event %zu (seq %" PRIu64 ") has no BillSettled", i,
                           event->seq);
        char inner[200];
        int rc = bf_wire_validate (BF_MSG_EVT_BILL, &event->event->base, inner, sizeof inner);
        if (rc != BF_WIRE_OK)
            return s_fail (rc, err, errsize, "RPL.BATCH: event %zu (seq %" PRIu64 "): %s", i,
                           event->seq, inner);
    }
    return BF_WIRE_OK;
}

//  --------------------------------------------------------------------------
//  Frame types

const char *
bf_msg_type_name (bf_msg_type_t type)
{
    const s_type_t *entry = s_type (type);
    return entry ? entry->name : NULL;
}

bf_msg_type_t
bf_msg_type_lookup (const void *name, size_t len)
{
    if (name == NULL)
        return BF_MSG_NONE;
    for (int type = BF_MSG_NONE + 1; type < BF_MSG_COUNT; type++) {
        const char *candidate = s_types[type].name;
        if (strlen (candidate) == len && memcmp (candidate, name, len) == 0)
            return (bf_msg_type_t)type;
    }
    return BF_MSG_NONE;
}

const ProtobufCMessageDescriptor *
bf_msg_type_descriptor (bf_msg_type_t type)
{
    const s_type_t *entry = s_type (type);
    return entry ? entry->desc : NULL;
}

//  --------------------------------------------------------------------------
//  Validation

int
bf_wire_validate (bf_msg_type_t type, const ProtobufCMessage *msg, char *err, size_t errsize)
{
    const s_type_t *entry = s_type (type);
    if (entry == NULL)
        return s_fail (BF_WIRE_EARG, err, errsize, "%d is not a frame type", (int)type);
    if (msg == NULL)
        return s_fail (BF_WIRE_EARG, err, errsize, "%s: no message", entry->name);
    if (msg->descriptor != entry->desc)
        return s_fail (BF_WIRE_EARG, err, errsize, "%s needs a %s, got %s", entry->name,
                       entry->desc->name, msg->descriptor ? msg->descriptor->name : "(null)");

    const char *base = (const char *)msg;
    uint32_t schema;
    memcpy (&schema, base + entry->schema_offset, sizeof schema);
    if (schema == 0)
        return s_fail (BF_WIRE_ESCHEMA, err, errsize, "%s: schema_version is missing", entry->name);
    if (schema > BF_SCHEMA_VERSION)
        return s_fail (BF_WIRE_ENEWER, err, errsize,
                       "%s: schema_version %" PRIu32 " is newer than %d", entry->name, schema,
                       BF_SCHEMA_VERSION);
    const char *id;
    memcpy (&id, base + entry->id_offset, sizeof id);
    if (s_empty (id))
        return s_fail (BF_WIRE_ENOID, err, errsize, "%s: %s is missing", entry->name,
                       entry->id_name);

    switch (type) {
        case BF_MSG_EVT_BILL:
            return s_check_bill (entry->name, (const Billflow__BillSettled *)msg, err, errsize);
        case BF_MSG_RPL_BATCH:
            return s_check_batch ((const Billflow__ReplayBatch *)msg, err, errsize);
        default:
            return BF_WIRE_OK;
    }
}

//  --------------------------------------------------------------------------
//  Decoding

//  Frees the unknown fields of msg and of every message nested in it
//  (bf_wire.h: a decoded message keeps none). unpack allocated them with
//  the default allocator (malloc).
static void
s_drop_unknown (ProtobufCMessage *msg)
{
    if (msg == NULL)
        return;
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        free (msg->unknown_fields[i].data);
    free (msg->unknown_fields);
    msg->unknown_fields = NULL;
    msg->n_unknown_fields = 0;
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[f];
        if (field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        char *at = (char *)msg + field->offset;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(size_t *)((char *)msg + field->quantifier_offset);
            ProtobufCMessage **items = *(ProtobufCMessage ***)at;
            for (size_t i = 0; i < count; i++)
                s_drop_unknown (items[i]);
        } else
            s_drop_unknown (*(ProtobufCMessage **)at);
    }
}

int
bf_wire_decode (const uint8_t *const *frames, const size_t *sizes, size_t nframes,
                size_t max_payload, bf_wire_msg_t *out, char *err, size_t errsize)
{
    char quoted[4 * S_QUOTE_MAX + 4];
    if (err && errsize > 0)
        err[0] = '\0';
    if (out == NULL)
        return s_fail (BF_WIRE_EARG, err, errsize, "no output message");
    bf_wire_msg_reset (out);

    if (nframes != BF_WIRE_FRAMES)
        return s_fail (BF_WIRE_EFRAMES, err, errsize, "expected %d frames, got %zu", BF_WIRE_FRAMES,
                       nframes);
    if (frames == NULL || sizes == NULL)
        return s_fail (BF_WIRE_EARG, err, errsize, "no frames");
    for (int i = 0; i < BF_WIRE_FRAMES; i++)
        if (frames[i] == NULL && sizes[i] > 0)
            return s_fail (BF_WIRE_EARG, err, errsize, "frame %d has a size but no data", i);

    bf_msg_type_t type = bf_msg_type_lookup (frames[0], sizes[0]);
    if (type == BF_MSG_NONE)
        return s_fail (BF_WIRE_ETYPE, err, errsize, "unknown frame type '%s'",
                       s_quote (frames[0], sizes[0], quoted, sizeof quoted));
    const s_type_t *entry = &s_types[type];

    if (sizes[1] != BF_WIRE_SEQ_SIZE)
        return s_fail (BF_WIRE_ESEQ, err, errsize, "%s: seq frame of %zu bytes, expected %d",
                       entry->name, sizes[1], BF_WIRE_SEQ_SIZE);
    uint64_t seq = s_get_be64 (frames[1]);

    size_t limit = max_payload ? max_payload : BF_WIRE_MAX_PAYLOAD;
    if (sizes[2] > limit)
        return s_fail (BF_WIRE_ETOOBIG, err, errsize, "%s: payload of %zu bytes exceeds %zu",
                       entry->name, sizes[2], limit);

    //  protobuf-c wants a data pointer even for an empty payload.
    static const uint8_t no_bytes[1] = { 0 };
    const uint8_t *payload = frames[2] ? frames[2] : no_bytes;
    ProtobufCMessage *body = protobuf_c_message_unpack (entry->desc, NULL, sizes[2], payload);
    if (body == NULL)
        return s_fail (BF_WIRE_EPROTO, err, errsize, "%s: payload of %zu bytes is not a valid %s",
                       entry->name, sizes[2], entry->desc->name);
    s_drop_unknown (body);

    int rc = bf_wire_validate (type, body, err, errsize);
    if (rc != BF_WIRE_OK) {
        protobuf_c_message_free_unpacked (body, NULL);
        return rc;
    }
    out->type = type;
    out->seq = seq;
    out->body = body;
    return BF_WIRE_OK;
}

int
bf_wire_recv (zmsg_t **msg_p, size_t max_payload, bf_wire_msg_t *out, char *err, size_t errsize)
{
    char why[256] = "";
    int rc;
    if (msg_p == NULL || *msg_p == NULL) {
        if (out)
            bf_wire_msg_reset (out);
        rc = s_fail (BF_WIRE_EARG, why, sizeof why, "no message");
    } else {
        zmsg_t *msg = *msg_p;
        *msg_p = NULL;
        const uint8_t *frames[BF_WIRE_FRAMES] = { NULL };
        size_t sizes[BF_WIRE_FRAMES] = { 0 };
        size_t nframes = zmsg_size (msg);
        if (nframes == BF_WIRE_FRAMES) {
            zframe_t *frame = zmsg_first (msg);
            for (int i = 0; i < BF_WIRE_FRAMES && frame; i++) {
                frames[i] = zframe_data (frame);
                sizes[i] = zframe_size (frame);
                frame = zmsg_next (msg);
            }
        }
        rc = bf_wire_decode (frames, sizes, nframes, max_payload, out, why, sizeof why);
        zmsg_destroy (&msg);
    }
    if (rc != BF_WIRE_OK)
        bf_debug ("bf_wire: rejected message (%s): %s", bf_wire_rc_name (rc), why);
    if (err && errsize > 0)
        snprintf (err, errsize, "%s", why);
    return rc;
}

void
bf_wire_msg_reset (bf_wire_msg_t *self)
{
    if (self == NULL)
        return;
    if (self->body)
        protobuf_c_message_free_unpacked (self->body, NULL);
    self->body = NULL;
    self->type = BF_MSG_NONE;
    self->seq = 0;
}

static void *
s_body (const bf_wire_msg_t *self, bf_msg_type_t type)
{
    if (self == NULL || self->type != type || self->body == NULL
        || self->body->descriptor != s_types[type].desc)
        return NULL;
    return self->body;
}

Billflow__BillSettled *
bf_wire_bill_settled (const bf_wire_msg_t *self)
{
    return (Billflow__BillSettled *)s_body (self, BF_MSG_EVT_BILL);
}

Billflow__RelayHeartbeat *
bf_wire_relay_heartbeat (const bf_wire_msg_t *self)
{
    return (Billflow__RelayHeartbeat *)s_body (self, BF_MSG_EVT_HB);
}

Billflow__ReplayFetch *
bf_wire_replay_fetch (const bf_wire_msg_t *self)
{
    return (Billflow__ReplayFetch *)s_body (self, BF_MSG_RPL_FETCH);
}

Billflow__ReplayBatch *
bf_wire_replay_batch (const bf_wire_msg_t *self)
{
    return (Billflow__ReplayBatch *)s_body (self, BF_MSG_RPL_BATCH);
}

Billflow__Command *
bf_wire_command (const bf_wire_msg_t *self)
{
    return (Billflow__Command *)s_body (self, BF_MSG_CMD);
}

Billflow__CommandReply *
bf_wire_command_reply (const bf_wire_msg_t *self)
{
    return (Billflow__CommandReply *)s_body (self, BF_MSG_CMD_REPLY);
}

Billflow__ServiceRegister *
bf_wire_service_register (const bf_wire_msg_t *self)
{
    return (Billflow__ServiceRegister *)s_body (self, BF_MSG_SVC_REG);
}

Billflow__ServiceHeartbeat *
bf_wire_service_heartbeat (const bf_wire_msg_t *self)
{
    return (Billflow__ServiceHeartbeat *)s_body (self, BF_MSG_SVC_HB);
}

//  --------------------------------------------------------------------------
//  Encoding

int
bf_wire_set_schema (ProtobufCMessage *msg)
{
    if (msg == NULL || msg->descriptor == NULL)
        return -1;
    const ProtobufCFieldDescriptor *field
        = protobuf_c_message_descriptor_get_field_by_name (msg->descriptor, "schema_version");
    if (field == NULL || field->type != PROTOBUF_C_TYPE_UINT32
        || field->label == PROTOBUF_C_LABEL_REPEATED)
        return -1;
    uint32_t version = BF_SCHEMA_VERSION;
    memcpy ((char *)msg + field->offset, &version, sizeof version);
    return 0;
}

//  Builds [type name][seq][payload], taking the payload frame over whatever
//  the result. NULL (logged) when memory runs out.
static zmsg_t *
s_frame (const s_type_t *entry, uint64_t seq, zframe_t **payload_p)
{
    uint8_t seq_bytes[BF_WIRE_SEQ_SIZE];
    s_put_be64 (seq_bytes, seq);
    zmsg_t *wire = zmsg_new ();
    if (wire == NULL || zmsg_addstr (wire, entry->name) != 0
        || zmsg_addmem (wire, seq_bytes, sizeof seq_bytes) != 0
        || zmsg_append (wire, payload_p) != 0) {
        bf_error ("bf_wire_encode: %s: cannot build the message", entry->name);
        zframe_destroy (payload_p);
        zmsg_destroy (&wire);
        return NULL;
    }
    return wire;
}

zmsg_t *
bf_wire_encode (bf_msg_type_t type, uint64_t seq, const ProtobufCMessage *msg)
{
    char err[256];
    const s_type_t *entry = s_type (type);
    if (entry == NULL) {
        bf_error ("bf_wire_encode: %d is not a frame type", (int)type);
        return NULL;
    }
    if (msg == NULL || msg->descriptor != entry->desc) {
        bf_error ("bf_wire_encode: %s needs a %s, got %s", entry->name, entry->desc->name,
                  msg && msg->descriptor ? msg->descriptor->name : "(null)");
        return NULL;
    }
    if (!protobuf_c_message_check (msg)) {
        bf_error ("bf_wire_encode: %s: NULL where the message needs a value", entry->name);
        return NULL;
    }
    int rc = bf_wire_validate (type, msg, err, sizeof err);
    if (rc != BF_WIRE_OK) {
        bf_error ("bf_wire_encode: refusing a message receivers would reject (%s): %s",
                  bf_wire_rc_name (rc), err);
        return NULL;
    }

    size_t size = protobuf_c_message_get_packed_size (msg);
    zframe_t *payload = zframe_new (NULL, size);
    if (payload == NULL) {
        bf_error ("bf_wire_encode: %s: cannot allocate %zu bytes", entry->name, size);
        return NULL;
    }
    size_t packed = protobuf_c_message_pack (msg, zframe_data (payload));
    if (packed != size) {
        bf_error ("bf_wire_encode: %s: packed %zu bytes, expected %zu", entry->name, packed, size);
        zframe_destroy (&payload);
        return NULL;
    }

    return s_frame (entry, seq, &payload);
}

zmsg_t *
bf_wire_encode_raw (bf_msg_type_t type, uint64_t seq, const void *payload, size_t len)
{
    const s_type_t *entry = s_type (type);
    if (entry == NULL) {
        bf_error ("bf_wire_encode_raw: %d is not a frame type", (int)type);
        return NULL;
    }
    if (payload == NULL && len > 0) {
        bf_error ("bf_wire_encode_raw: %s: no payload for %zu bytes", entry->name, len);
        return NULL;
    }
    zframe_t *frame = zframe_new (len ? payload : NULL, len);
    if (frame == NULL) {
        bf_error ("bf_wire_encode_raw: %s: cannot allocate %zu bytes", entry->name, len);
        return NULL;
    }
    return s_frame (entry, seq, &frame);
}

int
bf_wire_send (void *socket, bf_msg_type_t type, uint64_t seq, const ProtobufCMessage *msg)
{
    if (socket == NULL) {
        bf_error ("bf_wire_send: no socket");
        return -1;
    }
    zmsg_t *wire = bf_wire_encode (type, seq, msg);
    if (wire == NULL)
        return -1;
    if (zmsg_send (&wire, socket) != 0) {
        int error = zmq_errno ();
        bf_warn ("bf_wire_send: %s seq %" PRIu64 ": %s", bf_msg_type_name (type), seq,
                 zmq_strerror (error));
        //  Older CZMQ keeps the message on failure; newer destroys it.
        zmsg_destroy (&wire);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Counters

void
bf_wire_stats_count (bf_wire_stats_t *stats, int rc)
{
    if (stats == NULL)
        return;
    if (rc == BF_WIRE_OK) {
        stats->decoded++;
        stats->by_rc[0]++;
        return;
    }
    int index = (rc < 0 && rc > -BF_WIRE_RC_COUNT) ? -rc : -BF_WIRE_EARG;
    stats->rejected++;
    stats->by_rc[index]++;
}

const char *
bf_wire_rc_name (int rc)
{
    if (rc > 0 || rc <= -BF_WIRE_RC_COUNT)
        return "unknown";
    return s_rc_names[-rc];
}

void
bf_wire_reply_init (Billflow__CommandReply *reply, const char *command_id,
                    Billflow__CommandReply__Status status, const char *result, const char *error,
                    bool replayed, bool retryable)
{
    billflow__command_reply__init (reply);
    reply->schema_version = BF_SCHEMA_VERSION;
    reply->command_id = (char *)command_id;
    reply->status = status;
    reply->result = (char *)(result ? result : "");
    reply->error = (char *)(error ? error : "");
    reply->replayed = replayed;
    reply->retryable = retryable;
}
