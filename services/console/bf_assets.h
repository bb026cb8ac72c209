/*  bf_assets — the console's web files, embedded in the binary at build
    time (services/console/web/meson.build lists them; tools/embed writes
    the table), and Debian's Chart.js module beside them.

    Names are relative to /static/ ("app.js", "chart.esm.js",
    "chunks/helpers.segment.js"); "index.html" is also what / serves.  */

#ifndef BF_ASSETS_H_INCLUDED
#define BF_ASSETS_H_INCLUDED

#include <stddef.h>

typedef struct {
    const char *name;          /* "app.js" */
    const unsigned char *data; /* the file's bytes (NUL-terminated; size excludes it) */
    size_t size;
} bf_asset_t;

extern const bf_asset_t bf_assets[];
extern const size_t bf_assets_count;

/*  The embedded file called name, or NULL. Names with "..", a leading
    '/', a backslash or a control character match nothing.  */
const bf_asset_t *bf_assets_find (const char *name);

/*  The Content-Type for a file name by its extension (html, css, js, mjs,
    svg, png, ico, json, txt; else application/octet-stream).  */
const char *bf_assets_type (const char *name);

#endif
