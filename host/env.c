/*
 * env.c — flb_env_var_translate and flb_env_get of Fluent Bit v5.1.1, rewritten.
 *
 * The engine's expansion has corners this keeps, because a value means what the engine
 * makes of it: the closing brace searched is the first '}' after the position reached, even
 * one before the next "${"; the text between two variables is kept only when a variable
 * follows it; a "${" without a closing brace ends the expansion and drops the rest; a value
 * that expands to nothing is "" (and the caller then treats the property as empty).
 */
#define _GNU_SOURCE
#include "env.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct var {
    char *key, *value;
};

static struct var *vars;
static int quiet;
static size_t nvars;

void env_set(const char *key, const char *value)
{
    size_t i;
    for (i = 0; i < nvars; i++) {
        if (strcmp(vars[i].key, key) == 0) {
            free(vars[i].value);
            vars[i].value = strdup(value);
            return;
        }
    }
    vars = realloc(vars, (nvars + 1) * sizeof(*vars));
    if (!vars) abort();
    vars[nvars].key = strdup(key);
    vars[nvars].value = strdup(value);
    nvars++;
}

void env_free(void)
{
    size_t i;
    for (i = 0; i < nvars; i++) {
        free(vars[i].key);
        free(vars[i].value);
    }
    free(vars);
    vars = NULL;
    nvars = 0;
}

static const char *env_get(const char *key)
{
    size_t i;
    const char *v;
    for (i = 0; i < nvars; i++)
        if (strcmp(vars[i].key, key) == 0) return vars[i].value;
    v = getenv(key);
    if (!v || !*v) return NULL;
    return v;
}

struct buf {
    char *p;
    size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

char *env_translate(const char *value)
{
    size_t len = strlen(value), i;
    struct buf b = {0};
    const char *v_start = NULL, *v_end = NULL;
    int have_var = 0;
    char tmp[4096];
    put(&b, "", 0);
    for (i = 0; i < len; i++) {
        const char *def = NULL, *got;
        char *sep;
        long v_len, pre;
        v_start = strstr(value + i, "${");
        if (!v_start) break;
        v_end = strstr(value + i, "}");
        if (!v_end) break;
        v_start += 2;
        v_len = v_end - v_start;
        if (v_len <= 0 || v_len >= (long)sizeof tmp) break;
        memcpy(tmp, v_start, (size_t)v_len);
        tmp[v_len] = '\0';
        have_var = 1;
        sep = strchr(tmp, ':');
        if (sep && sep[1] == '-') {
            def = sep + 2;
            *sep = '\0';
        }
        pre = (v_start - 2) - (value + i);
        if (pre > 0) put(&b, value + i, (size_t)pre);
        got = env_get(tmp);
        if (got && !(def && *got == '\0')) put(&b, got, strlen(got));
        else if (def) put(&b, def, strlen(def));
        else if (!quiet) hostlog_engine(FLB_LOG_WARN, "[env] variable ${%s} is used but not set", tmp);
        i += (size_t)(v_start - (value + i)) + (size_t)v_len;
    }
    if (v_end && have_var && (value + len) - (v_end + 1) > 0)
        put(&b, v_end + 1, (size_t)((value + len) - (v_end + 1)));
    if (b.n == 0 && !have_var) put(&b, value, len);
    return b.p;
}

char *env_translate_quiet(const char *value)
{
    char *r;
    quiet = 1;
    r = env_translate(value);
    quiet = 0;
    return r;
}
