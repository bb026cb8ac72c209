/*  fuzz_wire — fuzz target for bf_wire_decode, for libFuzzer
    (clang -fsanitize=fuzzer) or the standalone driver in fuzz_main.c.

    Input format (the seed corpus in corpus/wire/ uses it too):

        byte 0      header: bits 0-3 = number of frames (0..15);
                    bit 7 set = payload limit of 64 bytes instead of
                    BF_WIRE_MAX_PAYLOAD, so small inputs reach the
                    oversize path; bits 4-6 are ignored
        per frame   2-byte big-endian length, then that many bytes

    A frame that runs past the end of the input is cut there; frames with
    no bytes left are empty; bytes after the last frame are ignored. Each
    frame gets its own exactly-sized heap copy so ASan sees over-reads.

    Besides "no crash, no leak", the target checks the decoder's contract:
    a rejected input leaves the message empty with a reason; an accepted
    one re-encodes (bf_wire_encode applies the same checks), decodes again
    to the same type and seq, and packs to the same bytes both times.
    A broken contract abort()s.  */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf_wire.h"

#define S_MAX_FRAMES  15
#define S_SMALL_LIMIT 64

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_require (bool condition)
{
    if (!condition)
        abort ();
}

//  Packs a decoded body into a fresh buffer (caller frees).
static uint8_t *
s_pack (const ProtobufCMessage *body, size_t *size)
{
    *size = protobuf_c_message_get_packed_size (body);
    uint8_t *bytes = malloc (*size ? *size : 1);
    s_require (bytes != NULL);
    s_require (protobuf_c_message_pack (body, bytes) == *size);
    return bytes;
}

//  An accepted message must survive encode -> decode unchanged.
static void
s_check_roundtrip (const bf_wire_msg_t *first)
{
    zmsg_t *wire = bf_wire_encode (first->type, first->seq, first->body);
    s_require (wire != NULL);
    s_require (zmsg_size (wire) == BF_WIRE_FRAMES);
    const uint8_t *frames[BF_WIRE_FRAMES];
    size_t sizes[BF_WIRE_FRAMES];
    zframe_t *frame = zmsg_first (wire);
    for (int i = 0; i < BF_WIRE_FRAMES; i++, frame = zmsg_next (wire)) {
        frames[i] = zframe_data (frame);
        sizes[i] = zframe_size (frame);
    }
    //  No limit this time: re-packing may grow the payload (a negative enum
    //  sent as a 5-byte varint is written back canonically in 10 bytes).
    bf_wire_msg_t second = BF_WIRE_MSG_INIT;
    char err[256];
    s_require (bf_wire_decode (frames, sizes, BF_WIRE_FRAMES, SIZE_MAX, &second, err, sizeof err)
               == BF_WIRE_OK);
    s_require (second.type == first->type);
    s_require (second.seq == first->seq);

    size_t packed_size;
    uint8_t *packed = s_pack (second.body, &packed_size);
    s_require (packed_size == sizes[2]);
    s_require (packed_size == 0 || memcmp (packed, frames[2], packed_size) == 0);
    free (packed);
    bf_wire_msg_reset (&second);
    zmsg_destroy (&wire);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t nframes = data[0] & 0x0f;
    size_t limit = (data[0] & 0x80) ? S_SMALL_LIMIT : BF_WIRE_MAX_PAYLOAD;
    size_t at = 1;

    uint8_t *copies[S_MAX_FRAMES] = { NULL };
    size_t sizes[S_MAX_FRAMES] = { 0 };
    for (size_t i = 0; i < nframes; i++) {
        size_t len = 0;
        if (at + 2 <= size) {
            len = ((size_t)data[at] << 8) | data[at + 1];
            at += 2;
        } else
            at = size;
        if (len > size - at)
            len = size - at;
        copies[i] = malloc (len ? len : 1);
        s_require (copies[i] != NULL);
        if (len)
            memcpy (copies[i], data + at, len);
        sizes[i] = len;
        at += len;
    }

    bf_wire_msg_t msg = BF_WIRE_MSG_INIT;
    bf_wire_stats_t stats = { 0 };
    char err[256];
    int rc = bf_wire_decode ((const uint8_t *const *)copies, sizes, nframes, limit, &msg, err,
                             sizeof err);
    bf_wire_stats_count (&stats, rc);
    s_require (strcmp (bf_wire_rc_name (rc), "unknown") != 0);
    if (rc == BF_WIRE_OK) {
        s_require (stats.decoded == 1);
        s_require (msg.body != NULL);
        s_require (msg.body->descriptor == bf_msg_type_descriptor (msg.type));
        s_require (err[0] == '\0');
        s_check_roundtrip (&msg);
    } else {
        s_require (rc < 0 && rc > BF_WIRE_EARG); //  no bad calls here
        s_require (stats.rejected == 1);
        s_require (msg.body == NULL && msg.type == BF_MSG_NONE);
        s_require (err[0] != '\0' && strlen (err) < sizeof err);
    }
    bf_wire_msg_reset (&msg);
    bf_wire_msg_reset (&msg);

    for (size_t i = 0; i < nframes; i++)
        free (copies[i]);
    return 0;
}
