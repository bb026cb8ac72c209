/*  bf_assets — looking up the embedded web files (bf_assets.h).  */

#include <string.h>

#include "bf_assets.h"

const bf_asset_t *
bf_assets_find (const char *name)
{
    if (!name || !*name || name[0] == '/' || strstr (name, "..") || strchr (name, '\\'))
        return NULL;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            return NULL;
    for (size_t i = 0; i < bf_assets_count; i++)
        if (!strcmp (bf_assets[i].name, name))
            return &bf_assets[i];
    return NULL;
}

const char *
bf_assets_type (const char *name)
{
    static const struct {
        const char *ext, *type;
    } s_types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" },
        { ".json", "application/json" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".ico", "image/x-icon" },
        { ".txt", "text/plain; charset=utf-8" },
    };
    const char *dot = name ? strrchr (name, '.') : NULL;
    if (dot)
        for (size_t i = 0; i < sizeof s_types / sizeof s_types[0]; i++)
            if (!strcmp (dot, s_types[i].ext))
                return s_types[i].type;
    return "application/octet-stream";
}
