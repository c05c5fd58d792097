/*
 * cmt.c — a tiny in-host store behind the cmetrics functions the engine exports (cmt.h).
 * It keeps what the plugin creates — metrics by name with their label keys, series by
 * label values — and does what cmetrics does with it: a value on an unknown combination of
 * labels creates that series, a counter refuses to be set lower ("attempting to reset
 * unresetable counter", in the engine's log), a counter_add is atomic. One lock serialises
 * every call (the engine's adds are atomic; the host's flush threads call in at once).
 *
 * One check the engine cannot make: the engine reads a context from its own thread
 * (cmt_cat, for the metrics endpoint) while flushes run in workers, so a series created
 * after the plugin's Init grows a list the engine may be walking. The host says so on
 * stderr ("flbhost: cmetrics: ... created outside Init").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cmt.h"
#include "log.h"
#include "../plugin/flb_abi.h"

struct series {
    char **vals;
    double v;
};

struct metric {
    struct cmt *cmt;
    int gauge;
    char *fqname, *help;
    int nkeys;
    char **keys;
    struct series *s;
    int ns;
};

struct cmt {
    struct metric **m;
    int nm;
    int init; /* the plugin's Init is running */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *xalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fputs("flbhost: out of memory\n", stderr);
        exit(70);
    }
    return p;
}

static char *xdup(const char *s) { return strcpy(xalloc(strlen(s) + 1), s ? s : ""); }

struct cmt *host_cmt_new(void) { return xalloc(sizeof(struct cmt)); }

void host_cmt_free(struct cmt *cmt)
{
    int i, j, k;
    if (!cmt) return;
    for (i = 0; i < cmt->nm; i++) {
        struct metric *m = cmt->m[i];
        for (j = 0; j < m->ns; j++) {
            for (k = 0; k < m->nkeys; k++) free(m->s[j].vals[k]);
            free(m->s[j].vals);
        }
        for (k = 0; k < m->nkeys; k++) free(m->keys[k]);
        free(m->keys);
        free(m->s);
        free(m->fqname);
        free(m->help);
        free(m);
    }
    free(cmt->m);
    free(cmt);
}

void host_cmt_open(struct cmt *cmt, int init)
{
    pthread_mutex_lock(&mu);
    if (cmt) cmt->init = init;
    pthread_mutex_unlock(&mu);
}

/* cmt_opts_init's name: ns_subsystem_name, each part and its '_' only when not empty. */
static char *fqname(const char *ns, const char *sub, const char *name)
{
    size_t n = strlen(ns ? ns : "") + strlen(sub ? sub : "") + strlen(name) + 3;
    char *s = xalloc(n);
    if (ns && *ns) {
        strcat(s, ns);
        strcat(s, "_");
    }
    if (sub && *sub) {
        strcat(s, sub);
        strcat(s, "_");
    }
    strcat(s, name);
    return s;
}

static void *create(struct cmt *cmt, int gauge, char *ns, char *sub, char *name, char *help, int nkeys,
                    char **keys)
{
    struct metric *m;
    int i;
    if (!cmt || !name || !help || nkeys < 0) return NULL;
    m = xalloc(sizeof(*m));
    m->cmt = cmt;
    m->gauge = gauge;
    m->fqname = fqname(ns, sub, name);
    m->help = xdup(help);
    m->nkeys = nkeys;
    m->keys = xalloc(sizeof(char *) * (size_t)nkeys);
    for (i = 0; i < nkeys; i++) m->keys[i] = xdup(keys[i]);
    pthread_mutex_lock(&mu);
    cmt->m = realloc(cmt->m, sizeof(*cmt->m) * (size_t)(cmt->nm + 1));
    if (!cmt->m) {
        fputs("flbhost: out of memory\n", stderr);
        exit(70);
    }
    cmt->m[cmt->nm++] = m;
    pthread_mutex_unlock(&mu);
    return m;
}

void *cmt_counter_create(struct cmt *cmt, char *ns, char *subsystem, char *name, char *help, int label_count,
                         char **label_keys)
{
    return create(cmt, 0, ns, subsystem, name, help, label_count, label_keys);
}

void *cmt_gauge_create(struct cmt *cmt, char *ns, char *subsystem, char *name, char *help, int label_count,
                       char **label_keys)
{
    return create(cmt, 1, ns, subsystem, name, help, label_count, label_keys);
}

/* series_of finds the series of m with the label values, creating it; under mu. */
static struct series *series_of(struct metric *m, int n, char **vals)
{
    int i, k;
    struct series *s;
    if (n != m->nkeys) return NULL;
    for (i = 0; i < m->ns; i++) {
        for (k = 0; k < n && strcmp(m->s[i].vals[k], vals[k]) == 0; k++) {
        }
        if (k == n) return &m->s[i];
    }
    if (!m->cmt->init) {
        fprintf(stderr, "flbhost: cmetrics: a series of %s created outside Init (the engine reads the "
                        "context from its own thread while the flushes run)\n", m->fqname);
    }
    m->s = realloc(m->s, sizeof(*m->s) * (size_t)(m->ns + 1));
    if (!m->s) {
        fputs("flbhost: out of memory\n", stderr);
        exit(70);
    }
    s = &m->s[m->ns++];
    s->v = 0;
    s->vals = xalloc(sizeof(char *) * (size_t)n);
    for (k = 0; k < n; k++) s->vals[k] = xdup(vals[k]);
    return s;
}

static int value(void *metric, int add, double val, int n, char **vals)
{
    struct metric *m = metric;
    struct series *s;
    int rc = 0;
    if (!m) return -1;
    pthread_mutex_lock(&mu);
    s = series_of(m, n, vals);
    if (!s) {
        rc = -1;
    } else if (add) {
        s->v += val;
    } else if (!m->gauge && val < s->v) {
        rc = -1;
    } else {
        s->v = val;
    }
    pthread_mutex_unlock(&mu);
    if (rc && s) hostlog_engine(FLB_LOG_ERROR, "[cmetrics] attempting to reset unresetable counter: %s", m->fqname);
    return rc;
}

int cmt_counter_add(void *counter, uint64_t ts, double val, int labels_count, char **label_vals)
{
    (void)ts;
    return value(counter, 1, val, labels_count, label_vals);
}

int cmt_counter_set(void *counter, uint64_t ts, double val, int labels_count, char **label_vals)
{
    (void)ts;
    return value(counter, 0, val, labels_count, label_vals);
}

int cmt_gauge_set(void *gauge, uint64_t ts, double val, int labels_count, char **label_vals)
{
    (void)ts;
    return value(gauge, 0, val, labels_count, label_vals);
}

static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') fputc('\\', out);
        if (*s == '\n') {
            fputs("\\n", out);
            continue;
        }
        fputc(*s, out);
    }
}

/* same_series: the two series name the same labels with the same values. */
static int same_series(struct metric *a, struct series *x, struct metric *b, struct series *y)
{
    int k;
    if (a->nkeys != b->nkeys) return 0;
    for (k = 0; k < a->nkeys; k++) {
        if (strcmp(a->keys[k], b->keys[k]) != 0 || strcmp(x->vals[k], y->vals[k]) != 0) return 0;
    }
    return 1;
}

void host_cmt_write(struct cmt **cmts, int n, FILE *out)
{
    int c, i, c2, i2, j, j2, k;
    pthread_mutex_lock(&mu);
    for (c = 0; c < n; c++) {
        if (!cmts[c]) continue;
        for (i = 0; i < cmts[c]->nm; i++) {
            struct metric *m = cmts[c]->m[i];
            int first = 1;
            /* printed already, with an earlier context's metric of that name? */
            for (c2 = 0; c2 <= c && first; c2++) {
                if (!cmts[c2]) continue;
                for (i2 = 0; i2 < (c2 == c ? i : cmts[c2]->nm); i2++) {
                    if (strcmp(cmts[c2]->m[i2]->fqname, m->fqname) == 0) {
                        first = 0;
                        break;
                    }
                }
            }
            if (!first) continue;
            fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", m->fqname, m->help, m->fqname,
                    m->gauge ? "gauge" : "counter");
            for (c2 = c; c2 < n; c2++) {
                if (!cmts[c2]) continue;
                for (i2 = 0; i2 < cmts[c2]->nm; i2++) {
                    struct metric *m2 = cmts[c2]->m[i2];
                    if (strcmp(m2->fqname, m->fqname) != 0) continue;
                    for (j = 0; j < m2->ns; j++) {
                        struct series *s = &m2->s[j];
                        int later = 0, c3, i3;
                        /* a later context holds the same series: it is printed there */
                        for (c3 = c2; c3 < n && !later; c3++) {
                            if (!cmts[c3]) continue;
                            for (i3 = (c3 == c2 ? i2 + 1 : 0); i3 < cmts[c3]->nm && !later; i3++) {
                                struct metric *m3 = cmts[c3]->m[i3];
                                if (strcmp(m3->fqname, m->fqname) != 0) continue;
                                for (j2 = 0; j2 < m3->ns && !later; j2++) later = same_series(m2, s, m3, &m3->s[j2]);
                            }
                        }
                        if (later) continue;
                        fputs(m->fqname, out);
                        if (m2->nkeys > 0) {
                            fputc('{', out);
                            for (k = 0; k < m2->nkeys; k++) {
                                fprintf(out, "%s%s=\"", k ? "," : "", m2->keys[k]);
                                put_escaped(out, s->vals[k]);
                                fputc('"', out);
                            }
                            fputc('}', out);
                        }
                        fprintf(out, " %.17g\n", s->v);
                    }
                }
            }
        }
    }
    pthread_mutex_unlock(&mu);
}
