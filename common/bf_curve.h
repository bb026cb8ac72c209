/*  bf_curve — CURVE keys, the allowed-keys list, and control's ZAP handler
    (design.md "control"; issue: only listed public keys, each with a name).

    Key files are CZMQ certificates (zcert): `NAME.key` holds the public key
    (Z85, 40 characters) and metadata `name`; `NAME.key_secret` holds both
    keys and must be readable by its owner only (mode 0600 or stricter),
    like the PII key. A program that needs its own key pair is given the
    path of the secret file.

    The allowed-keys list (control.allowed_keys) is a text file:

        # name       role      public key (Z85)
        ops-kim      operator  rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
        dashboard    viewer    ...
        settle-1     service   ...   settle:settle-*
        notify-1     service   ...   notify
        console-1    console   ...

    one entry per line, fields separated by white space, '#' comments and
    blank lines ignored. name: 1-64 of [A-Za-z0-9._-]; role: operator,
    viewer, service (bf_verbs.h) or console (the web console, which acts on
    behalf of its people: bf_behalf.h); key: 40 Z85 characters that decode to 32
    bytes. A service key may carry a fourth field, its binding: the service
    it may register as (1-15 of [a-z0-9_-]) and, after a ':', an fnmatch(3)
    glob its instance names must match (1-127 printable characters). A
    service key without a binding still parses (old lists keep loading) but
    control lets it register as nothing (docs/control.md). Duplicate names
    or keys, unknown roles, bad keys or bindings, a binding on a key that is
    not a service's, and extra fields are errors naming file:line.

    The ZAP handler (an actor; exactly one per process, bound to
    inproc://zeromq.zap.01 before any CURVE server socket binds) accepts a
    CURVE client whose key is in the list: the ZAP reply's user id is the
    entry's name and its metadata carries "X-Role" = role, so control reads
    zframe_meta (frame, "User-Id") and zframe_meta (frame, "X-Role") on
    every received frame; for a bound service key also "X-Service" and,
    when it has one, "X-Instance" (the glob). When bf_zap_args_t.roles is
    set, a listed key whose role is not among them is refused too (settle's
    event stream lets in `service` keys only). Any other key, and any mechanism but CURVE, is
    refused (ZAP 400): the peer's handshake fails and it gets nothing. The
    list file is read again when its modification time or size changes (at
    most once a second), so an operator adds or revokes a key without a
    restart; a file that no longer parses keeps the previous list and logs
    why.

    Actor pipe protocol (besides the zactor contract):
      "STATS"  -> allowed, refused, reloads (decimal strings) and the
                  number of entries.
      The actor also sends, unasked, "REFUSED" <z85 key or "-"> <peer
      address> <mechanism> for every refusal, at most one per key per 60 s,
      so its owner can write the audit log.  */

#ifndef BF_CURVE_H_INCLUDED
#define BF_CURVE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_CURVE_KEY_TXT 41 /* 40 Z85 characters and the NUL */

/*  Writes dir/NAME.key and dir/NAME.key_secret (0600) for a new key pair,
    refusing to overwrite existing files, and copies the public key's Z85
    text into public_txt. name as in the allowed list. Returns 0, or -1
    with a reason in err.  */
int bf_curve_keygen (const char *dir, const char *name, char public_txt[BF_CURVE_KEY_TXT],
                     char *err, size_t errsize);

/*  True when name is 1-64 of [A-Za-z0-9._-]: a key name, and the name of
    a person a console key acts for (bf_behalf.h).  */
bool bf_curve_name_valid (const char *name);

/*  Loads a key pair from a secret key file (checks its mode: group/other
    access is refused). Returns a new zcert, or NULL with a reason in err.  */
zcert_t *bf_curve_load_secret (const char *path, char *err, size_t errsize);

/*  True when text is 40 Z85 characters decoding to a 32-byte key; the key
    goes to out when out is not NULL.  */
bool bf_curve_key_parse (const char *text, uint8_t out[32]);

/*  Makes sock a CURVE client of the server whose public key is server_txt,
    with the key pair cert. Call before connecting. Returns 0, or -1 with a
    reason in err (bad server key).  */
int bf_curve_client (zsock_t *sock, zcert_t *cert, const char *server_txt, char *err,
                     size_t errsize);

/*  Makes sock a CURVE server with the key pair cert and the ZAP domain
    "billflow". Call before binding, after the ZAP actor started.  */
void bf_curve_server (zsock_t *sock, zcert_t *cert);

/*  --- the allowed-keys list --------------------------------------------- */

typedef struct {
    char name[65];
    char role[16];
    char key_txt[BF_CURVE_KEY_TXT];
    uint8_t key[32];
    char service[16];           /* a service key's binding; "" when unbound */
    char instance_pattern[128]; /* fnmatch glob for its instances; "": any */
} bf_keyring_entry_t;

/*  Frame metadata the ZAP handler sets for a bound service key.  */
#define BF_CURVE_SERVICE_PROPERTY  "X-Service"
#define BF_CURVE_INSTANCE_PROPERTY "X-Instance"

typedef struct bf_keyring_t bf_keyring_t;

/*  Parses the list at path. NULL with "file:line: reason" in err.  */
bf_keyring_t *bf_keyring_load (const char *path, char *err, size_t errsize);
void bf_keyring_destroy (bf_keyring_t **self_p);
size_t bf_keyring_size (const bf_keyring_t *self);

/*  The entry holding key (32 bytes), or NULL.  */
const bf_keyring_entry_t *bf_keyring_find (const bf_keyring_t *self, const uint8_t key[32]);

/*  --- the ZAP handler ----------------------------------------------------- */

typedef struct {
    const char *allowed_keys; /* path of the list; copied */
    /*  Comma-separated roles a listed key must have to be let in (settle's
        event stream: "service"); NULL or empty: any role. Copied.  */
    const char *roles;
    /*  Comma-separated services a key must be bound to (its fourth field in
        the list) to be let in (settle's event stream: "notify"); NULL or
        empty: any key, bound or not. Copied.  */
    const char *services;
} bf_zap_args_t;

/*  zactor body: signals 0 once bound and the list loaded, -1 (and ends)
    when the list cannot be read or the ZAP endpoint is taken.  */
void bf_zap_actor (zsock_t *pipe, void *args);

#endif
