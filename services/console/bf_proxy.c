/*  bf_proxy — trusted proxies and X-Forwarded-For (bf_proxy.h).  */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bf_log.h"
#include "bf_proxy.h"

#define S_ENTRY_MAX 64 /* longest X-Forwarded-For entry or list item */

static const uint8_t s_v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/*  Parses the len bytes of text as a plain IPv4 or IPv6 address into
 *family and addr (an IPv4-mapped IPv6 address as IPv4). 0, or -1.  */
static int
s_plain (const char *text, size_t len, int *family, uint8_t addr[16])
{
    char copy[S_ENTRY_MAX + 1];
    if (len == 0 || len > S_ENTRY_MAX)
        return -1;
    memcpy (copy, text, len);
    copy[len] = 0;
    if (inet_pton (AF_INET, copy, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton (AF_INET6, copy, addr) == 1) {
        *family = AF_INET6;
        if (!memcmp (addr, s_v4_mapped, sizeof s_v4_mapped)) {
            memmove (addr, addr + 12, 4);
            *family = AF_INET;
        }
        return 0;
    }
    return -1;
}

/*  An X-Forwarded-For entry: a plain address, "[v6]", "[v6]:port" or
    "v4:port". 0, or -1.  */
static int
s_entry (const char *text, size_t len, int *family, uint8_t addr[16])
{
    if (len > 0 && text[0] == '[') {
        const char *close = memchr (text, ']', len);
        if (!close)
            return -1;
        size_t rest = len - (size_t)(close - text) - 1;
        if (rest > 0) {
            if (close[1] != ':' || rest < 2 || rest > 6)
                return -1;
            for (size_t i = 2; i < rest + 1; i++)
                if (close[i] < '0' || close[i] > '9')
                    return -1;
        }
        if (s_plain (text + 1, (size_t)(close - text) - 1, family, addr) != 0)
            return -1;
        return 0;
    }
    if (s_plain (text, len, family, addr) == 0)
        return 0;
    /*  "a.b.c.d:port": one colon, digits after it.  */
    const char *colon = memchr (text, ':', len);
    if (!colon || memchr (colon + 1, ':', len - (size_t)(colon - text) - 1))
        return -1;
    size_t port = len - (size_t)(colon - text) - 1;
    if (port < 1 || port > 5)
        return -1;
    for (size_t i = 1; i <= port; i++)
        if (colon[i] < '0' || colon[i] > '9')
            return -1;
    if (s_plain (text, (size_t)(colon - text), family, addr) != 0 || *family != AF_INET)
        return -1;
    return 0;
}

static bool
s_in (const bf_proxy_net_t *net, int family, const uint8_t addr[16])
{
    if (net->family != family)
        return false;
    int full = net->bits / 8, rest = net->bits % 8;
    if (memcmp (net->addr, addr, (size_t)full))
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (addr[full] & mask);
}

static bool
s_trusted (const bf_proxies_t *self, int family, const uint8_t addr[16])
{
    for (size_t i = 0; i < self->count; i++)
        if (s_in (&self->nets[i], family, addr))
            return true;
    return false;
}

/*  One list item "ADDRESS" or "ADDRESS/BITS" into net.  */
static int
s_net (const char *text, size_t len, bf_proxy_net_t *net, char *err, size_t errsize)
{
    char shown[S_ENTRY_MAX + 1];
    snprintf (shown, sizeof shown, "%.*s", (int)(len < S_ENTRY_MAX ? len : S_ENTRY_MAX), text);
    const char *slash = memchr (text, '/', len);
    size_t addr_len = slash ? (size_t)(slash - text) : len;
    memset (net, 0, sizeof *net);
    if (len > S_ENTRY_MAX || s_plain (text, addr_len, &net->family, net->addr) != 0)
        return bf_err_set (
            err, errsize, "console.trusted_proxies: '%s' is not an address or ADDRESS/BITS", shown);
    bool v6_text = memchr (text, ':', addr_len) != NULL;
    int max = v6_text ? 128 : 32;
    net->bits = net->family == AF_INET ? 32 : 128;
    if (slash) {
        size_t digits = len - addr_len - 1;
        int bits = 0;
        bool ok = digits >= 1 && digits <= 3;
        for (size_t i = 0; ok && i < digits; i++) {
            char c = slash[1 + i];
            ok = c >= '0' && c <= '9';
            bits = bits * 10 + (c - '0');
        }
        if (!ok || bits > max)
            return bf_err_set (err, errsize,
                               "console.trusted_proxies: '%s': the prefix length must be 0-%d",
                               shown, max);
        /*  An IPv4-mapped network ("::ffff:10.0.0.0/104") is its IPv4 one.  */
        if (net->family == AF_INET && v6_text)
            bits = bits >= 96 ? bits - 96 : -1;
        if (bits < 0)
            return bf_err_set (err, errsize,
                               "console.trusted_proxies: '%s': the prefix length must be 0-%d",
                               shown, max);
        net->bits = bits;
    }
    /*  Host bits set ("10.0.0.1/8") is most likely a typing error.  */
    bf_proxy_net_t bare = *net;
    int full = net->bits / 8, rest = net->bits % 8;
    if (rest)
        bare.addr[full] &= (uint8_t)(0xff << (8 - rest));
    for (int i = full + (rest ? 1 : 0); i < 16; i++)
        bare.addr[i] = 0;
    if (memcmp (bare.addr, net->addr, net->family == AF_INET ? 4 : 16))
        return bf_err_set (err, errsize,
                           "console.trusted_proxies: '%s' has bits set past its prefix", shown);
    return 0;
}

int
bf_proxies_parse (bf_proxies_t *self, const char *text, char *err, size_t errsize)
{
    memset (self, 0, sizeof *self);
    if (!text)
        return 0;
    const char *p = text;
    while (*p) {
        p += strspn (p, ", \t");
        size_t len = strcspn (p, ", \t");
        if (len == 0)
            continue;
        int rc = self->count == BF_PROXY_MAX
                     ? bf_err_set (err, errsize, "console.trusted_proxies: more than %d entries",
                                   BF_PROXY_MAX)
                     : s_net (p, len, &self->nets[self->count], err, errsize);
        if (rc != 0) {
            memset (self, 0, sizeof *self);
            return -1;
        }
        self->count++;
        p += len;
    }
    return 0;
}

bool
bf_proxies_trusted (const bf_proxies_t *self, const char *address)
{
    int family;
    uint8_t addr[16];
    return address && s_plain (address, strlen (address), &family, addr) == 0
           && s_trusted (self, family, addr);
}

static void
s_text (int family, const uint8_t addr[16], char *out, size_t outsize)
{
    char text[INET6_ADDRSTRLEN] = "unknown";
    inet_ntop (family, addr, text, sizeof text);
    snprintf (out, outsize, "%s", text);
}

void
bf_proxies_client (const bf_proxies_t *self, const char *peer, const char *forwarded_for, char *out,
                   size_t outsize)
{
    int family;
    uint8_t addr[16];
    if (!peer || s_plain (peer, strlen (peer), &family, addr) != 0) {
        snprintf (out, outsize, "%s", peer ? peer : "unknown");
        return;
    }
    s_text (family, addr, out, outsize);
    if (!forwarded_for || !s_trusted (self, family, addr))
        return;
    size_t pos = strlen (forwarded_for);
    for (int hop = 0; hop < BF_PROXY_HOPS && pos > 0; hop++) {
        size_t end = pos;
        while (end > 0 && (forwarded_for[end - 1] == ' ' || forwarded_for[end - 1] == '\t'))
            end--;
        size_t start = end;
        while (start > 0 && forwarded_for[start - 1] != ',' && end - start <= S_ENTRY_MAX)
            start--;
        if (end - start > S_ENTRY_MAX)
            return; /* an entry too long to be an address */
        pos = start > 0 ? start - 1 : 0;
        while (start < end && (forwarded_for[start] == ' ' || forwarded_for[start] == '\t'))
            start++;
        if (s_entry (forwarded_for + start, end - start, &family, addr) != 0)
            return; /* garbage: nothing left of it is believed */
        s_text (family, addr, out, outsize);
        if (!s_trusted (self, family, addr))
            return;
    }
}
