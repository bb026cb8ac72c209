/*  bf_proxy — the client address of a request that came through trusted
    proxies (an ingress controller): `console.trusted_proxies` parsed, and
    `X-Forwarded-For` read only when the peer is one of them.

    Only a peer in the list is believed. From such a peer the header is
    walked from its right end (the entry the nearest proxy appended) to
    the left: trusted entries are passed over, and the first entry that is
    not trusted is the client. An entry that is not an address (garbage,
    "unknown", a host name) stops the walk: what is left of it was written
    by someone not trusted, so the last address passed (or the peer) is
    the client. At most BF_PROXY_HOPS entries are looked at, and an entry
    over 64 bytes is garbage, so a huge or hostile header costs a bounded
    walk. Entries are IPv4 or IPv6, optionally "[v6]", "[v6]:port" or
    "v4:port"; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as its
    IPv4 address. Pure functions: no socket, no clock.  */

#ifndef BF_PROXY_H_INCLUDED
#define BF_PROXY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_PROXY_MAX  32 /* networks in the list at most */
#define BF_PROXY_HOPS 32 /* X-Forwarded-For entries looked at, from the right */

typedef struct {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; 4 bytes for AF_INET */
    int bits;         /* prefix length */
} bf_proxy_net_t;

typedef struct {
    size_t count;
    bf_proxy_net_t nets[BF_PROXY_MAX];
} bf_proxies_t;

/*  Parses text, a list of addresses or CIDRs ("10.0.0.0/8, fd00::/8,
    192.0.2.7") separated by commas and/or spaces; empty (or NULL): no
    trusted proxy. Returns 0, or -1 with the reason in err (an entry
    that is not an address, a prefix out of range, host bits set, more
    than BF_PROXY_MAX entries).  */
int bf_proxies_parse (bf_proxies_t *self, const char *text, char *err, size_t errsize);

/*  True when address (text) is in one of the networks.  */
bool bf_proxies_trusted (const bf_proxies_t *self, const char *address);

/*  The client address into out (the canonical text of an address, at
    most 46 bytes with the NUL): peer itself when it is not trusted or
    forwarded_for is NULL or empty, else as the file comment says.
    forwarded_for is every X-Forwarded-For line joined with ",".  */
void bf_proxies_client (const bf_proxies_t *self, const char *peer, const char *forwarded_for,
                        char *out, size_t outsize);

#endif
