/*  bf_wire — the billflow wire format: frame types, strict decoding,
    encoding, and rejection counters.

    Every ZeroMQ message between billflow services is exactly three frames

        [type][seq][payload]

    type     the ASCII frame-type name below ("EVT.BILL" ...), no NUL; it
             doubles as the PUB/SUB topic. ZeroMQ subscriptions match on a
             prefix, so subscribe to the full name.
    seq      exactly 8 bytes, unsigned 64-bit big-endian; 0 when the message
             has no sequence.
    payload  the protobuf-c packed message that the type names (see
             proto/billflow.proto).

    Routing envelopes (ROUTER identity frames) are not part of the wire
    message: a ROUTER pushes the identity in front of what bf_wire_encode
    returns, and pops it before calling bf_wire_recv.

    Decoding is strict and never asserts on what it receives: wrong frame
    count, unknown type, bad seq, oversize or undecodable payload, missing or
    newer schema_version, a missing id (event_id / request_id / command_id,
    "" counts as missing) and cheap type-specific nonsense are each rejected
    with their own error code, so receivers can count what they drop.

    Unknown fields are skipped, as protobuf does, and not kept: a decoded
    message holds only the fields of proto/billflow.proto, at every depth.
    So whatever was accepted encodes again to a payload that decodes to the
    same message (protobuf-c accepts a field number 0 written as "80 00",
    keeps it, and would write it back as a tag that it then refuses).

    Schema version: the encoder sets nothing itself. Callers fill
    schema_version (BF_SCHEMA_VERSION) in every message they build — in the
    BillSettled events nested inside a ReplayBatch too — either directly or
    with bf_wire_set_schema. bf_wire_encode refuses a message that
    bf_wire_decode would reject, so a contract breach shows up at the sender.

    Thread safety: no shared state; a bf_wire_stats_t belongs to one thread.  */

#ifndef BF_WIRE_H_INCLUDED
#define BF_WIRE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "billflow.pb-c.h"

/*  The schema this build writes and the newest it accepts.  */
#define BF_SCHEMA_VERSION 1

/*  Default limit on the payload frame (1 MiB).  */
#define BF_WIRE_MAX_PAYLOAD ((size_t)1 << 20)

/*  Frames per wire message, and the size of the seq frame.  */
#define BF_WIRE_FRAMES   3
#define BF_WIRE_SEQ_SIZE 8

/*  Frame types. BF_MSG_NONE is the empty state of a bf_wire_msg_t, never
    on the wire.  */
typedef enum {
    BF_MSG_NONE = 0,
    BF_MSG_EVT_BILL,  /* "EVT.BILL"  billflow.BillSettled      */
    BF_MSG_EVT_HB,    /* "EVT.HB"    billflow.RelayHeartbeat   */
    BF_MSG_RPL_FETCH, /* "RPL.FETCH" billflow.ReplayFetch      */
    BF_MSG_RPL_BATCH, /* "RPL.BATCH" billflow.ReplayBatch      */
    BF_MSG_CMD,       /* "CMD"       billflow.Command          */
    BF_MSG_CMD_REPLY, /* "CMD.REPLY" billflow.CommandReply     */
    BF_MSG_SVC_REG,   /* "SVC.REG"   billflow.ServiceRegister  */
    BF_MSG_SVC_HB,    /* "SVC.HB"    billflow.ServiceHeartbeat */
    BF_MSG_COUNT      /* number of entries, BF_MSG_NONE included */
} bf_msg_type_t;

/*  Decode results: 0 or one of these negative codes.  */
typedef enum {
    BF_WIRE_OK = 0,
    BF_WIRE_EFRAMES = -1, /* not exactly 3 frames */
    BF_WIRE_ETYPE = -2,   /* unknown frame type name */
    BF_WIRE_ESEQ = -3,    /* seq frame is not 8 bytes */
    BF_WIRE_ETOOBIG = -4, /* payload larger than max_payload */
    BF_WIRE_EPROTO = -5,  /* payload is not a valid protobuf of the type */
    BF_WIRE_ESCHEMA = -6, /* schema_version missing (0) */
    BF_WIRE_ENEWER = -7,  /* schema_version newer than BF_SCHEMA_VERSION */
    BF_WIRE_ENOID = -8,   /* event_id / request_id / command_id missing */
    BF_WIRE_EINVAL = -9,  /* type-specific content check failed */
    BF_WIRE_EARG = -10,   /* bad call: NULL arguments (programmer error) */
} bf_wire_rc_t;

/*  Number of result codes, BF_WIRE_OK included: code c indexes -c.  */
#define BF_WIRE_RC_COUNT 11

/*  A decoded message. Zero-initialise it (or use BF_WIRE_MSG_INIT) before
    first use. body is the unpacked protobuf-c message of the type's
    descriptor, owned by this struct: use the typed accessors below or cast
    it, and free it with bf_wire_msg_reset.  */
typedef struct {
    bf_msg_type_t type;
    uint64_t seq;
    ProtobufCMessage *body;
} bf_wire_msg_t;

// clang-format off
#define BF_WIRE_MSG_INIT {BF_MSG_NONE, 0, NULL}
// clang-format on

/*  Rejection counters for one receiver: messages decoded, messages rejected,
    and per result code (by_rc[-rc]; by_rc[0] equals decoded).
    Zero-initialise; not thread-safe.  */
typedef struct {
    uint64_t decoded;
    uint64_t rejected;
    uint64_t by_rc[BF_WIRE_RC_COUNT];
} bf_wire_stats_t;

/*  --- frame types ------------------------------------------------------- */

/*  Wire name of type ("EVT.BILL"), or NULL for BF_MSG_NONE and values out
    of range.  */
const char *bf_msg_type_name (bf_msg_type_t type);

/*  The type whose wire name is exactly the len bytes at name (no NUL
    needed), or BF_MSG_NONE.  */
bf_msg_type_t bf_msg_type_lookup (const void *name, size_t len);

/*  protobuf-c descriptor of type's payload, or NULL when type is not a
    wire type.  */
const ProtobufCMessageDescriptor *bf_msg_type_descriptor (bf_msg_type_t type);

/*  --- decoding ---------------------------------------------------------- */

/*  The one decoding entry point; needs no ZeroMQ, so fuzzers call it
    directly. frames[i] / sizes[i] describe frame i (frames[i] may be NULL
    when sizes[i] is 0); when nframes is not 3, the arrays are not read.
    max_payload is the payload limit, 0 for BF_WIRE_MAX_PAYLOAD.
    out must be initialised (BF_WIRE_MSG_INIT, zeroed, or used before):
    decode frees whatever it held, so one out can serve a receive loop.
    On success fills out and returns 0; the caller resets it when done.
    On success err is "". On failure returns a negative bf_wire_rc_t,
    leaves out empty, and writes a one-line reason into err (when err is
    not NULL and errsize > 0). Never asserts or crashes on frame contents.  */
int bf_wire_decode (const uint8_t *const *frames, const size_t *sizes, size_t nframes,
                    size_t max_payload, bf_wire_msg_t *out, char *err, size_t errsize);

/*  Decodes a received message whose routing envelope the caller already
    popped. Always takes ownership of *msg_p: destroys it and sets it NULL,
    whatever the result. Returns and fills out as bf_wire_decode (a NULL
    msg_p or *msg_p is BF_WIRE_EARG). Rejections are logged at debug level
    only: the caller counts them (bf_wire_stats_count) and decides how loud
    to be.  */
int bf_wire_recv (zmsg_t **msg_p, size_t max_payload, bf_wire_msg_t *out, char *err,
                  size_t errsize);

/*  Frees the body and empties self. Safe to call twice, and on an empty
    (zeroed) message.  */
void bf_wire_msg_reset (bf_wire_msg_t *self);

/*  Typed views of a decoded body: NULL when self holds another type (or
    nothing). The pointer stays owned by self.  */
Billflow__BillSettled *bf_wire_bill_settled (const bf_wire_msg_t *self);
Billflow__RelayHeartbeat *bf_wire_relay_heartbeat (const bf_wire_msg_t *self);
Billflow__ReplayFetch *bf_wire_replay_fetch (const bf_wire_msg_t *self);
Billflow__ReplayBatch *bf_wire_replay_batch (const bf_wire_msg_t *self);
Billflow__Command *bf_wire_command (const bf_wire_msg_t *self);
Billflow__CommandReply *bf_wire_command_reply (const bf_wire_msg_t *self);
Billflow__ServiceRegister *bf_wire_service_register (const bf_wire_msg_t *self);
Billflow__ServiceHeartbeat *bf_wire_service_heartbeat (const bf_wire_msg_t *self);

/*  The content checks decode applies after unpacking, for a message
    already in memory: msg's descriptor must be type's; schema_version in
    1..BF_SCHEMA_VERSION; the id non-empty; BillSettled needs bill_id and
    subscriber_id non-zero and period "YYYY-MM" (month 01-12); every event
    of a ReplayBatch must be present, pass the BillSettled checks, and have a
    non-zero seq, strictly increasing. Other fields (verb, target, enum
    values, a ReplayFetch's from_seq and count ...) are the receiver's
    business, so that it can answer a bad request instead of dropping it.
    Returns 0 or a negative bf_wire_rc_t with a reason in err.  */
int bf_wire_validate (bf_msg_type_t type, const ProtobufCMessage *msg, char *err, size_t errsize);

/*  --- encoding ---------------------------------------------------------- */

/*  Sets msg's schema_version field to BF_SCHEMA_VERSION. Returns 0, or -1
    when msg is NULL or has no schema_version field. Nested messages (the
    events of a ReplayBatch) need their own call.  */
int bf_wire_set_schema (ProtobufCMessage *msg);

/*  Packs msg into a new three-frame message [type][seq][payload], owned by
    the caller. Returns NULL, after logging why, when type is not a wire
    type, msg's descriptor is not type's (a programmer error, reported
    rather than asserted), or msg fails bf_wire_validate. The payload size
    is not limited here: keep batches below the receivers' max_payload.  */
zmsg_t *bf_wire_encode (bf_msg_type_t type, uint64_t seq, const ProtobufCMessage *msg);

/*  Frames payload, an already packed protobuf of type's message (for
    example one stored in the outbox), exactly as bf_wire_encode frames a
    message it packs: [type name][seq big-endian][the len bytes, copied].
    The payload is neither unpacked nor validated: the caller vouches that
    it is a valid message of type. payload may be NULL when len is 0.
    Returns a new message owned by the caller, or NULL (logged) when type is
    not a wire type, payload is NULL with len > 0, or memory runs out.  */
zmsg_t *bf_wire_encode_raw (bf_msg_type_t type, uint64_t seq, const void *payload, size_t len);

/*  Encodes and sends on socket (a zsock_t * or raw libzmq socket) with
    zmsg_send, for sockets without a routing envelope (PUB, DEALER, PAIR,
    REQ). Returns 0, or -1 when encoding or sending fails (logged; the
    message is freed either way).  */
int bf_wire_send (void *socket, bf_msg_type_t type, uint64_t seq, const ProtobufCMessage *msg);

/*  Fills reply (a CommandReply the caller owns, on the stack) with the
    schema version and these fields; NULL result or error become "". The
    strings are referenced, not copied.  */
void bf_wire_reply_init (Billflow__CommandReply *reply, const char *command_id,
                         Billflow__CommandReply__Status status, const char *result,
                         const char *error, bool replayed, bool retryable);

/*  --- counters ---------------------------------------------------------- */

/*  Counts one decode result rc into stats: 0 as decoded, a negative code
    as rejected under that code (unknown codes as BF_WIRE_EARG).  */
void bf_wire_stats_count (bf_wire_stats_t *stats, int rc);

/*  Short stable name of a result code, for logs and metric labels:
    "ok", "frames", "type", "seq", "too_big", "protobuf", "schema_missing",
    "schema_newer", "no_id", "invalid", "bad_call"; "unknown" otherwise.  */
const char *bf_wire_rc_name (int rc);

#endif
