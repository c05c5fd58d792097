/*
 * configmap.c — see configmap.h. The property check follows src/flb_config_map.c
 * (flb_config_map_properties_check and helper_map_options), the help text
 * src/fluent-bit.c (help_format_text, help_print_property, help_plugin_description) over
 * the document src/flb_help.c builds (flb_help_output, pack_config_map_entry).
 */
#define _GNU_SOURCE
#include "configmap.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "env.h"
#include "../plugin/flb_abi.h"
#include "log.h"

/*
 * Fluent Bit accepts "_debug.http.*" keys only when built with FLB_HTTP_CLIENT_DEBUG,
 * which release builds (and the official images) are not; the host behaves as those.
 */
#define HTTP_CLIENT_DEBUG 0

static char *dup_or_null(const char *s)
{
    char *d;
    if (!s) return NULL;
    d = strdup(s);
    if (!d) abort();
    return d;
}

void cmap_read(struct cmap *m, const void *config_map)
{
    const struct flb_abi_config_map *e = config_map;
    size_t n = 0, i;
    memset(m, 0, sizeof(*m));
    if (!e) return;
    m->present = 1;
    while (e[n].name) n++;
    m->v = calloc(n ? n : 1, sizeof(*m->v));
    if (!m->v) abort();
    for (i = 0; i < n; i++) {
        m->v[i].type = e[i].type;
        m->v[i].name = dup_or_null(e[i].name);
        m->v[i].def_value = dup_or_null(e[i].def_value);
        m->v[i].flags = e[i].flags;
        m->v[i].desc = dup_or_null(e[i].desc);
    }
    m->n = n;
}

void cmap_free(struct cmap *m)
{
    size_t i;
    for (i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].def_value);
        free(m->v[i].desc);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}

/* helper_map_options: "The following properties are allowed: a, b, and c." */
static char *allowed(const struct cmap *m)
{
    static const char head[] = "The following properties are allowed: ";
    size_t cap = sizeof head + 16, i;
    char *s;
    for (i = 0; i < m->n; i++) cap += strlen(m->v[i].name) + 6;
    s = malloc(cap);
    if (!s) abort();
    strcpy(s, head);
    for (i = 0; i < m->n; i++) {
        if (i + 1 < m->n) {
            strcat(s, m->v[i].name);
            strcat(s, ", ");
        } else {
            if (m->n > 1) strcat(s, "and ");
            strcat(s, m->v[i].name);
            strcat(s, ".");
        }
    }
    return s;
}

/* flb_utils_bool: 1, 0, or -1 for a word it does not take ("1" and "0" among them). */
static int utils_bool(const char *v)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcasecmp(v, "yes")) return 1;
    if (!strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcasecmp(v, "no")) return 0;
    return -1;
}

int cmap_defaults(const struct cmap *m)
{
    size_t i;
    for (i = 0; i < m->n; i++) {
        const struct cmap_entry *e = &m->v[i];
        char *def;
        int bad = 0;
        if (!e->def_value) continue;
        /* flb_config_map_create: a default is expanded quietly unless dynamic */
        def = e->flags & FLB_CONFIG_MAP_DYNAMIC_ENV ? strdup(e->def_value)
                                                     : env_translate_quiet(e->def_value);
        if (!def) abort();
        /* translate_default_value: INT, DOUBLE, SIZE and TIME go through atoi, atof,
         * flb_utils_size_to_bytes and flb_utils_time_to_seconds, which refuse nothing;
         * a list is split, which fails only without memory */
        if (e->type == FLB_CONFIG_MAP_STR && (e->flags & FLB_CONFIG_MAP_DYNAMIC_ENV)) {
            free(env_translate(def)); /* warns about an unset variable */
        } else if (e->type == FLB_CONFIG_MAP_STR_PREFIX) {
            hostlog_engine(FLB_LOG_ERROR, "[config map] invalid default value for prefixed string '%s'",
                           e->name);
            bad = 1;
        } else if (e->type == FLB_CONFIG_MAP_BOOL && utils_bool(def) < 0) {
            hostlog_engine(FLB_LOG_ERROR, "[config map] invalid default value for boolean '%s=%s'",
                           e->name, def);
            bad = 1;
        }
        free(def);
        if (bad) return -1;
    }
    return 0;
}

/* property_count: keys of the same length equal byte for byte (case matters here). */
static int count_key(const struct props *ps, const char *key)
{
    size_t i, len = strlen(key);
    int n = 0;
    for (i = 0; i < ps->n; i++)
        if (strlen(ps->v[i].key) == len && strncmp(ps->v[i].key, key, len) == 0) n++;
    return n;
}

int cmap_check(const struct cmap *m, const char *plugin, const struct props *ps)
{
    size_t i, j;
    for (i = 0; i < ps->n; i++) {
        const char *key = ps->v[i].key;
        const struct cmap_entry *found = NULL;
        if (HTTP_CLIENT_DEBUG && strncmp(key, "_debug.http.", 12) == 0) continue;
        if (strcasecmp(key, "active") == 0 || strcasecmp(key, "condition") == 0) continue;
        for (j = 0; j < m->n; j++) {
            const struct cmap_entry *e = &m->v[j];
            size_t len = strlen(e->name);
            if (e->type != FLB_CONFIG_MAP_STR_PREFIX && len != strlen(key)) continue;
            if (strncasecmp(key, e->name, len) == 0) {
                if (e->type == FLB_CONFIG_MAP_STR_PREFIX && strlen(key) <= len) {
                    hostlog_engine(FLB_LOG_ERROR, "[config] incomplete prefixed key '%s'", key);
                    break;
                }
                if (e->type == FLB_CONFIG_MAP_DEPRECATED)
                    hostlog_engine(FLB_LOG_WARN, "[config] %s: '%s' is deprecated", plugin, key);
                found = e;
                break;
            }
        }
        if (!found) {
            char *h = allowed(m);
            hostlog_engine(FLB_LOG_ERROR, "[config] %s: unknown configuration property '%s'. %s",
                           plugin, key, h);
            free(h);
            return -1;
        }
        if (!(found->flags & FLB_CONFIG_MAP_MULT)) {
            int n = count_key(ps, key);
            if (n > 1) {
                hostlog_engine(FLB_LOG_ERROR, "[config] %s: configuration property '%s' is set %i times",
                               plugin, key, n);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- help ---- */

/* The engine's own options of every output (output_global_properties in src/flb_output.c,
 * as a Linux build with regex support has them). */
static const struct cmap_entry global_options[] = {
    {FLB_CONFIG_MAP_STR, "match", NULL, 0,
     "Set a tag pattern to match the records that this output should process. "
     "Supports exact matches or wildcards (e.g., '*')."},
    {FLB_CONFIG_MAP_STR, "match_regex", NULL, 0,
     "Set a regular expression to match tags for output routing. This allows more flexible "
     "matching compared to simple wildcards."},
    {FLB_CONFIG_MAP_STR, "alias", NULL, 0,
     "Sets an alias for the output instance. This is useful when using multiple instances of "
     "the same output plugin. If no alias is set, the instance will be named using the plugin "
     "name and a sequence number."},
    {FLB_CONFIG_MAP_STR, "log_level", "info", 0,
     "Specifies the log level for this output plugin. If not set, the plugin will use the "
     "global log level defined in the 'service' section. If the global log level is also not "
     "specified, it defaults to 'info'."},
    {FLB_CONFIG_MAP_TIME, "log_suppress_interval", "0", 0,
     "Allows suppression of repetitive log messages from the output plugin that appear similar "
     "within a specified time interval. Defaults to 0, meaning no suppression."},
    {FLB_CONFIG_MAP_STR, "retry_limit", "1", 0,
     "Set the retry limit for the output plugin when delivery fails. Accepted values: a "
     "positive integer, 'no_limits', 'false', or 'off' to disable retry limits, or "
     "'no_retries' to disable retries entirely."},
    {FLB_CONFIG_MAP_STR, "tls.windows.certstore_name", NULL, 0,
     "Sets the certstore name on an output (Windows)"},
    {FLB_CONFIG_MAP_STR, "tls.windows.use_enterprise_store", NULL, 0,
     "Sets whether using enterprise certstore or not on an output (Windows)"},
    {FLB_CONFIG_MAP_STR, "tls.windows.client_thumbprints", NULL, 0,
     "Comma-separated list of certificate thumbprints (SHA1/SHA256) to trust from the Windows "
     "store (Windows)"},
};

#define BOLD "\033[1m"
#define RESET "\033[0m"

/* pack_config_map_entry's type words; NULL for a type the engine refuses. */
static const char *type_word(int type, char *buf, size_t size)
{
    int n = -1;
    switch (type) {
    case FLB_CONFIG_MAP_STR: return "string";
    case FLB_CONFIG_MAP_DEPRECATED: return "deprecated";
    case FLB_CONFIG_MAP_INT: return "integer";
    case FLB_CONFIG_MAP_BOOL: return "boolean";
    case FLB_CONFIG_MAP_DOUBLE: return "double";
    case FLB_CONFIG_MAP_SIZE: return "size";
    case FLB_CONFIG_MAP_TIME: return "time";
    case FLB_CONFIG_MAP_VARIANT: return "variant";
    case FLB_CONFIG_MAP_STR_PREFIX: return "prefixed string";
    }
    if (type >= FLB_CONFIG_MAP_CLIST && type <= FLB_CONFIG_MAP_CLIST_4) {
        if (type > FLB_CONFIG_MAP_CLIST) n = type - FLB_CONFIG_MAP_CLIST;
        if (n < 0) return "multiple comma delimited strings";
        snprintf(buf, size, "comma delimited strings (minimum %i)", n);
        return buf;
    }
    if (type >= FLB_CONFIG_MAP_SLIST && type <= FLB_CONFIG_MAP_SLIST_4) {
        if (type > FLB_CONFIG_MAP_SLIST) n = type - FLB_CONFIG_MAP_SLIST;
        if (n < 0) return "multiple space delimited strings";
        snprintf(buf, size, "space delimited strings (minimum %i)", n);
        return buf;
    }
    return NULL;
}

/* help_plugin_description: a description longer than 90 columns less the padding is cut
 * at the last space that fits, the following lines padded. */
static void describe(FILE *out, int pad, const char *s)
{
    int max = 90 - pad, line = 0;
    const char *p = s, *end = s + strlen(s);
    if ((long)strlen(s) <= max) {
        fprintf(out, "%s\n", s);
        return;
    }
    while (p < end) {
        const char *c;
        long n;
        if (p + max > end) {
            c = end;
        } else {
            c = p + max;
            while (*c != ' ' && c > p) c--;
        }
        n = c == p ? end - p : c - p;
        if (line == 0) fprintf(out, "%*s%.*s\n", 0, "", (int)n, p);
        else fprintf(out, "%*s%.*s\n", pad, " ", (int)n, p);
        line++;
        p += n + 1;
    }
}

static int section(FILE *out, const char *title, const struct cmap_entry *v, size_t n, int max,
                   int translate)
{
    size_t i;
    fprintf(out, BOLD "\n%s\n" RESET, title);
    for (i = 0; i < n; i++) {
        char buf[64];
        const char *type = type_word(v[i].type, buf, sizeof buf);
        char *def = NULL;
        /* The engine's help reads each entry back from msgpack; a missing default is a
         * nil, which its reader leaves holding the string before it, the key "default". */
        const char *shown = "default";
        if (!type) return -1;
        if (v[i].def_value) {
            def = translate && !(v[i].flags & FLB_CONFIG_MAP_DYNAMIC_ENV)
                      ? env_translate_quiet(v[i].def_value)
                      : strdup(v[i].def_value);
            shown = def;
        }
        fprintf(out, "%-*s", max, v[i].name);
        describe(out, max, v[i].desc ? v[i].desc : "");
        fprintf(out, "%*s> default: %s, type: ", max, " ", shown);
        fprintf(out, "%s", type);
        fprintf(out, "\n\n");
        free(def);
    }
    return 0;
}

int cmap_help(const struct cmap *m, const char *name, const char *desc, FILE *out)
{
    size_t i, nglobal = sizeof global_options / sizeof global_options[0];
    int max = 0;
    char buf[64];
    /* the engine builds the whole document before printing: a bad type prints nothing */
    for (i = 0; i < m->n; i++) {
        if (!type_word(m->v[i].type, buf, sizeof buf)) {
            fprintf(stderr, "[help] invalid config map type %i\n", m->v[i].type);
            return -1;
        }
    }
    fprintf(out, "%sHELP%s\n%s %s plugin\n", BOLD, RESET, name, "output");
    fprintf(out, BOLD "\nDESCRIPTION\n" RESET "%s\n", desc ? desc : "");
    for (i = 0; i < nglobal; i++)
        if ((int)strlen(global_options[i].name) > max) max = (int)strlen(global_options[i].name);
    for (i = 0; i < m->n; i++)
        if ((int)strlen(m->v[i].name) > max) max = (int)strlen(m->v[i].name);
    max += 2;
    if (section(out, "GLOBAL_OPTIONS", global_options, nglobal, max, 0)) return -1;
    if (m->present && section(out, "OPTIONS", m->v, m->n, max, 1)) return -1;
    fflush(out);
    return 0;
}
