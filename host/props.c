/* props.c — see props.h. */
#define _GNU_SOURCE
#include "props.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void props_add(struct props *ps, const char *key, char *value)
{
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = realloc(ps->v, ps->cap * sizeof(*ps->v));
        if (!ps->v) abort();
    }
    ps->v[ps->n].key = strdup(key);
    if (!ps->v[ps->n].key) abort();
    ps->v[ps->n].value = value;
    ps->n++;
}

const char *props_get(const struct props *ps, const char *key)
{
    size_t i, len;
    if (!key || !ps) return NULL;
    len = strlen(key);
    if (len == 0) return NULL;
    for (i = 0; i < ps->n; i++)
        if (strlen(ps->v[i].key) == len && strncasecmp(ps->v[i].key, key, len) == 0)
            return ps->v[i].value;
    return NULL;
}

void props_free(struct props *ps)
{
    size_t i;
    for (i = 0; i < ps->n; i++) {
        free(ps->v[i].key);
        free(ps->v[i].value);
    }
    free(ps->v);
    ps->v = NULL;
    ps->n = ps->cap = 0;
}
