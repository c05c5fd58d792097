/*
 * flbhost — a small test host that loads a Fluent Bit Go output plugin (.so)
 * and drives it the way Fluent Bit v5.1's Go proxy does (SPEC.md §7).
 *
 * Build:  cc -O2 -Wall -Wextra -o build/flbhost host/flbhost.c -ldl -lpthread
 *
 * Usage:
 *   flbhost -so FILE [options] [-p key=value ...] [-next -p key=value ...] ...
 *     -so FILE            the plugin .so (required)
 *     -conf FILE          a Fluent Bit classic config: every [OUTPUT] section whose Name is
 *                         flatstore becomes an instance (before any -p instances); its keys are
 *                         the instance's properties except the keys Fluent Bit keeps for itself
 *                         (name, match, match_regex, alias, log_level, retry_limit, workers, host,
 *                         port, tls*, net.*, storage.*). `Workers N` sets the worker count.
 *                         Supports `@INCLUDE file` (relative to the including file's dir, globs
 *                         allowed), `@SET k=v` and `${VAR}` (from @SET, then the environment;
 *                         unknown variables expand to "").
 *     -p key=value        a property of the current instance (repeatable; a repeated key replaces
 *                         the earlier value); -next starts a new instance
 *     -in FILE|-          raw msgpack stream (concatenated records), split into chunks of -chunk
 *                         records; bytes that do not parse are appended to the last chunk
 *     -in-chunks FILE|-   framed chunks: repeated [u32 big-endian length][bytes]; each frame is
 *                         sent as one chunk exactly as is (empty frames are skipped)
 *     -chunk N            records per chunk for -in (default 1000)
 *     -tag TAG            tag of every chunk (default "flatstore.test")
 *     -workers N          flush threads per instance (default 0 = serial on the main thread);
 *                         `Workers N` in -conf or `-p workers=N` overrides it per instance and is
 *                         not passed to the plugin
 *     -retry-max N        resends of a chunk answered RETRY (default 50); then it is dropped
 *     -retry-wait-ms N    wait before a resend (default 20)
 *     -chunk-delay-us N   sleep this long after each flush (to stretch a run)
 *     -exit-after-ms N    after N ms (per generation) stop: no new flush starts, the flushes in
 *                         flight finish, then ExitCtx runs for every instance (as Fluent Bit
 *                         joins worker threads before the exit callback); chunks never taken
 *                         are reported as "unsent" (not an error); a chunk whose resend is cut
 *                         off is dropped (an error)
 *     -reload N           after the run, N times: ExitCtx all, Unregister, PreRegister(1),
 *                         Register, Init every instance again, send the whole input again
 *     -hold-ms N          after all input is flushed, wait N ms before exiting
 *     -q                  no summary
 *
 * Every chunk goes to every instance. Output (unless -q), one JSON line on stdout:
 *   {"instances":[{"name":"flatstore.0","chunks":N,"records":N,"ok_chunks":N,"ok_records":N,
 *     "retries":N,"errors":N,"dropped_chunks":N,"dropped_records":N,"unsent_chunks":N}],
 *    "wall_s":F,"flush_wall_s":F,"cpu_user_s":F,"cpu_sys_s":F,"max_rss_kb":N}
 * flush_wall_s is the time spent flushing (all generations), without loading the input.
 * chunks = ok_chunks + errors + dropped_chunks (chunks whose first flush started); retries counts
 * RETRY answers; sums over all generations.
 *
 * Exit code: 0 every Init succeeded and every chunk ended OK; 1 start-up failed (dlopen,
 * Register or an Init); 2 some chunk ended ERROR or was dropped; 64 usage or input error.
 *
 * The strings the plugin puts into the registration (name, description) belong to the plugin
 * (fluent-bit-go frees them in FLBPluginUnregister). A Go library is never dlclose'd.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2
#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG 11

#define EXIT_INIT 1
#define EXIT_CHUNK 2
#define EXIT_USAGE 64

/* ---- the structures Fluent Bit shares with a Go plugin ---- */

struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    void *config_map;
};

struct flb_api {
    char *(*output_get_property)(char *key, void *o_ins);
    void *reserved[15]; /* other slots of Fluent Bit's table; never called here */
};

struct flb_plugin_proxy_context {
    void *remote_context;
    void *proxy;
};

struct flbgo_output_plugin {
    char *name;
    void *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
};

typedef int (*fn_preregister)(int);
typedef int (*fn_register)(void *);
typedef int (*fn_init)(void *);
typedef int (*fn_flush)(void *, int, char *);
typedef int (*fn_flush_ctx)(void *, void *, int, char *);
typedef int (*fn_exit_ctx)(void *);
typedef int (*fn_exit)(void);
typedef void (*fn_unregister)(void *);

/* ---- small helpers ---- */

static void die_oom(void)
{
    fputs("flbhost: out of memory\n", stderr);
    exit(70);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die_oom();
    return p;
}

static void *xcalloc(size_t n, size_t s)
{
    void *p = calloc(n ? n : 1, s ? s : 1);
    if (!p) die_oom();
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) die_oom();
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(long long us)
{
    struct timespec ts;
    if (us <= 0) return;
    ts.tv_sec = (time_t)(us / 1000000);
    ts.tv_nsec = (long)(us % 1000000) * 1000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- msgpack skipper: bounds-checked and iterative ---- */

static int be_len(const uint8_t *b, size_t len, size_t off, int width, uint64_t *out)
{
    uint64_t v = 0;
    int i;
    if (off > len || len - off < (size_t)width) return -1;
    for (i = 0; i < width; i++) v = (v << 8) | b[off + i];
    *out = v;
    return 0;
}

/*
 * mp_skip advances *off past one complete msgpack object. It returns 0, or -1 when the
 * bytes are truncated or invalid; *off is then left unchanged. Nested containers are
 * handled with a counter of objects still to skip, never by recursion, and no claimed
 * length is trusted beyond the buffer.
 */
static int mp_skip(const uint8_t *b, size_t len, size_t *off)
{
    size_t p = *off;
    uint64_t remaining = 1;
    while (remaining > 0) {
        uint8_t t;
        uint64_t n = 0;
        uint64_t skip = 0; /* payload bytes after the header */
        if (p >= len) return -1;
        /* every object takes at least one byte */
        if (remaining > (uint64_t)(len - p)) return -1;
        t = b[p++];
        remaining--;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            skip = 0;
        } else if (t >= 0x80 && t <= 0x8f) {
            remaining += 2u * (uint64_t)(t & 0x0f);
        } else if (t >= 0x90 && t <= 0x9f) {
            remaining += (uint64_t)(t & 0x0f);
        } else if (t >= 0xa0 && t <= 0xbf) {
            skip = t & 0x1f;
        } else {
            switch (t) {
            case 0xc4: case 0xd9:
                if (be_len(b, len, p, 1, &n)) return -1;
                p += 1; skip = n; break;
            case 0xc5: case 0xda:
                if (be_len(b, len, p, 2, &n)) return -1;
                p += 2; skip = n; break;
            case 0xc6: case 0xdb:
                if (be_len(b, len, p, 4, &n)) return -1;
                p += 4; skip = n; break;
            case 0xc7:
                if (be_len(b, len, p, 1, &n)) return -1;
                p += 1; skip = n + 1; break;
            case 0xc8:
                if (be_len(b, len, p, 2, &n)) return -1;
                p += 2; skip = n + 1; break;
            case 0xc9:
                if (be_len(b, len, p, 4, &n)) return -1;
                p += 4; skip = n + 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc:
                if (be_len(b, len, p, 2, &n)) return -1;
                p += 2; remaining += n; break;
            case 0xdd:
                if (be_len(b, len, p, 4, &n)) return -1;
                p += 4; remaining += n; break;
            case 0xde:
                if (be_len(b, len, p, 2, &n)) return -1;
                p += 2; remaining += 2 * n; break;
            case 0xdf:
                if (be_len(b, len, p, 4, &n)) return -1;
                p += 4; remaining += 2 * n; break;
            default: /* 0xc1 is never used */
                return -1;
            }
        }
        if (skip > (uint64_t)(len - p)) return -1;
        p += (size_t)skip;
    }
    *off = p;
    return 0;
}

/* count_records counts the complete top-level objects at the start of b. */
static size_t count_records(const uint8_t *b, size_t len)
{
    size_t off = 0, n = 0;
    while (off < len && mp_skip(b, len, &off) == 0) n++;
    return n;
}

/* ---- properties and instances ---- */

struct prop {
    char *key;
    char *value;
};

struct props {
    struct prop *v;
    size_t n, cap;
};

static void props_set(struct props *ps, const char *key, const char *value)
{
    size_t i;
    for (i = 0; i < ps->n; i++) {
        if (strcasecmp(ps->v[i].key, key) == 0) {
            free(ps->v[i].value);
            ps->v[i].value = xstrdup(value);
            return;
        }
    }
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = xrealloc(ps->v, ps->cap * sizeof(*ps->v));
    }
    ps->v[ps->n].key = xstrdup(key);
    ps->v[ps->n].value = xstrdup(value);
    ps->n++;
}

static void props_free(struct props *ps)
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

/* get_property is the first slot of struct flb_api: case-insensitive, exact-length key
 * match; NULL when the key is absent or its value is empty. */
static char *get_property(char *key, void *o_ins)
{
    struct props *ps = o_ins;
    size_t i;
    if (!key || !ps) return NULL;
    for (i = 0; i < ps->n; i++) {
        if (strcasecmp(ps->v[i].key, key) == 0) {
            if (ps->v[i].value[0] == '\0') return NULL;
            return ps->v[i].value;
        }
    }
    return NULL;
}

struct stats {
    unsigned long long chunks, records, ok_chunks, ok_records, retries, errors, dropped_chunks,
        dropped_records, unsent_chunks;
};

struct chunk {
    const uint8_t *data;
    size_t len;
    size_t records;
};

struct host;

struct instance {
    char name[32];
    struct props props;
    int workers; /* -1: the global -workers */
    struct flb_plugin_proxy_context ctx;
    int exited;

    /* queue: chunks [q_next, q_avail) wait; guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* workers wait for chunks */
    pthread_cond_t done_cv; /* the main thread waits for completion */
    size_t q_next, q_avail, done;
    int inflight; /* flushes running now */
    int q_closed, stopping;
    pthread_t *threads;
    int nthreads;

    struct stats st;
    struct host *h;
};

struct host {
    double flush_wall; /* seconds spent in run_generation, summed */
    /* options */
    const char *so_path;
    const char *conf_path;
    const char *in_path;
    const char *in_chunks_path;
    long long chunk_records;
    const char *tag;
    long long workers;
    long long retry_max;
    long long retry_wait_ms;
    long long chunk_delay_us;
    long long exit_after_ms;
    long long reload;
    long long hold_ms;
    int quiet;

    /* plugin */
    void *dl;
    fn_preregister f_preregister;
    fn_register f_register;
    fn_init f_init;
    fn_flush f_flush;
    fn_flush_ctx f_flush_ctx;
    fn_exit_ctx f_exit_ctx;
    fn_exit f_exit;
    fn_unregister f_unregister;
    struct flb_plugin_proxy_def *def;
    struct flbgo_output_plugin plugin;
    struct flb_api api;

    /* instances and input */
    struct instance **inst;
    size_t ninst;
    uint8_t *input;
    size_t input_len;
    struct chunk *chunks;
    size_t nchunks;

    /* stop state of the current generation (main thread only) */
    double deadline; /* 0: none */
    int stop_started;
};

static struct instance *instance_new(struct host *h)
{
    struct instance *in = xcalloc(1, sizeof(*in));
    in->workers = -1;
    in->h = h;
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    pthread_cond_init(&in->done_cv, NULL);
    h->inst = xrealloc(h->inst, (h->ninst + 1) * sizeof(*h->inst));
    h->inst[h->ninst] = in;
    snprintf(in->name, sizeof(in->name), "flatstore.%zu", h->ninst);
    h->ninst++;
    return in;
}

static void instance_free(struct instance *in)
{
    props_free(&in->props);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    pthread_cond_destroy(&in->done_cv);
    free(in->threads);
    free(in);
}

static int parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;
    if (!s || !*s) return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* ---- classic config ---- */

struct conf_state {
    struct props vars; /* @SET */
    struct host *h;
    int in_output;       /* inside an [OUTPUT] section */
    char *sec_name;      /* its Name, or NULL */
    struct props sec;    /* its plugin properties */
    int sec_workers;     /* its Workers, or -1 */
    int depth;
};

/* section_end turns a finished [OUTPUT] whose Name is flatstore into an instance. */
static void section_end(struct conf_state *cs)
{
    if (cs->in_output && cs->sec_name && strcasecmp(cs->sec_name, "flatstore") == 0) {
        struct instance *in = instance_new(cs->h);
        in->props = cs->sec;
        in->workers = cs->sec_workers;
        memset(&cs->sec, 0, sizeof(cs->sec));
    }
    props_free(&cs->sec);
    free(cs->sec_name);
    cs->sec_name = NULL;
    cs->sec_workers = -1;
    cs->in_output = 0;
}

static int is_reserved_key(const char *k)
{
    static const char *exact[] = {"name", "match", "match_regex", "alias", "log_level",
                                  "retry_limit", "workers", "host", "port", NULL};
    int i;
    for (i = 0; exact[i]; i++)
        if (strcasecmp(k, exact[i]) == 0) return 1;
    if (strncasecmp(k, "tls", 3) == 0) return 1;
    if (strncasecmp(k, "net.", 4) == 0) return 1;
    if (strncasecmp(k, "storage.", 8) == 0) return 1;
    return 0;
}

/* expand_vars returns a malloc'd copy of s with ${VAR} replaced. */
static char *expand_vars(struct conf_state *cs, const char *s)
{
    size_t cap = strlen(s) + 64, n = 0;
    char *out = xmalloc(cap);
    while (*s) {
        const char *val = NULL;
        size_t vlen = 0, adv = 1;
        if (s[0] == '$' && s[1] == '{') {
            const char *close = strchr(s + 2, '}');
            if (close) {
                char *name = xstrndup(s + 2, (size_t)(close - (s + 2)));
                size_t i;
                val = "";
                for (i = 0; i < cs->vars.n; i++)
                    if (strcmp(cs->vars.v[i].key, name) == 0) {
                        val = cs->vars.v[i].value;
                        break;
                    }
                if (i == cs->vars.n) {
                    const char *e = getenv(name);
                    if (e) val = e;
                }
                free(name);
                vlen = strlen(val);
                adv = (size_t)(close - s) + 1;
            }
        }
        if (!val) {
            val = s;
            vlen = 1;
        }
        if (n + vlen + 1 > cap) {
            cap = (n + vlen + 1) * 2;
            out = xrealloc(out, cap);
        }
        memcpy(out + n, val, vlen);
        n += vlen;
        s += adv;
    }
    out[n] = '\0';
    return out;
}

static char *trim(char *s)
{
    char *e;
    while (*s && isspace((unsigned char)*s)) s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int conf_file(struct conf_state *cs, const char *path);

static int conf_include(struct conf_state *cs, const char *from, const char *pattern)
{
    char *full;
    glob_t g;
    size_t i;
    int rc = 0, grc;
    if (pattern[0] == '/') {
        full = xstrdup(pattern);
    } else {
        const char *slash = strrchr(from, '/');
        size_t dl = slash ? (size_t)(slash - from) + 1 : 0;
        full = xmalloc(dl + strlen(pattern) + 1);
        memcpy(full, from, dl);
        strcpy(full + dl, pattern);
    }
    memset(&g, 0, sizeof(g));
    grc = glob(full, 0, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        fprintf(stderr, "flbhost: %s: @INCLUDE %s: no such file\n", from, pattern);
        rc = -1;
    } else if (grc != 0) {
        fprintf(stderr, "flbhost: %s: @INCLUDE %s: glob failed\n", from, pattern);
        rc = -1;
    } else {
        for (i = 0; i < g.gl_pathc && rc == 0; i++) rc = conf_file(cs, g.gl_pathv[i]);
    }
    globfree(&g);
    free(full);
    return rc;
}

static int conf_line(struct conf_state *cs, const char *path, int lineno, char *raw)
{
    char *line = trim(raw), *exp, *s, *k, *v;
    int rc = 0;
    if (*line == '\0' || *line == '#') return 0;
    exp = expand_vars(cs, line);
    s = trim(exp);
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close) {
            fprintf(stderr, "flbhost: %s:%d: bad section header\n", path, lineno);
            rc = -1;
        } else {
            *close = '\0';
            section_end(cs);
            cs->in_output = strcasecmp(trim(s + 1), "OUTPUT") == 0;
        }
        free(exp);
        return rc;
    }
    if (strncasecmp(s, "@SET", 4) == 0 && isspace((unsigned char)s[4])) {
        char *kv = trim(s + 4), *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "flbhost: %s:%d: @SET needs key=value\n", path, lineno);
            rc = -1;
        } else {
            *eq = '\0';
            props_set(&cs->vars, trim(kv), trim(eq + 1));
        }
        free(exp);
        return rc;
    }
    if (strncasecmp(s, "@INCLUDE", 8) == 0 && isspace((unsigned char)s[8])) {
        if (cs->depth >= 16) {
            fprintf(stderr, "flbhost: %s:%d: @INCLUDE nested too deep\n", path, lineno);
            rc = -1;
        } else {
            rc = conf_include(cs, path, trim(s + 8));
        }
        free(exp);
        return rc;
    }
    /* Key Value */
    k = s;
    v = s;
    while (*v && !isspace((unsigned char)*v)) v++;
    if (*v) *v++ = '\0';
    v = trim(v);
    if (!cs->in_output) {
        free(exp);
        return 0;
    }
    if (*v == '\0') {
        fprintf(stderr, "flbhost: %s:%d: key %s has no value\n", path, lineno, k);
        rc = -1;
    } else if (strcasecmp(k, "name") == 0) {
        free(cs->sec_name);
        cs->sec_name = xstrdup(v);
    } else if (strcasecmp(k, "workers") == 0) {
        long long w;
        if (parse_int(v, 0, 256, &w)) {
            fprintf(stderr, "flbhost: %s:%d: Workers %s: not 0..256\n", path, lineno, v);
            rc = -1;
        } else {
            cs->sec_workers = (int)w;
        }
    } else if (!is_reserved_key(k)) {
        props_set(&cs->sec, k, v);
    }
    free(exp);
    return rc;
}

static int conf_file(struct conf_state *cs, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    if (!f) {
        fprintf(stderr, "flbhost: %s: %s\n", path, strerror(errno));
        return -1;
    }
    cs->depth++;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        rc = conf_line(cs, path, lineno, line);
    }
    cs->depth--;
    free(line);
    fclose(f);
    return rc;
}

/* ---- input ---- */

static int read_all(const char *path, uint8_t **out, size_t *outlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f) {
        fprintf(stderr, "flbhost: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t r;
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 65536;
            buf = xrealloc(buf, cap);
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        fprintf(stderr, "flbhost: %s: read error\n", path);
        if (f != stdin) fclose(f);
        free(buf);
        return -1;
    }
    if (f != stdin) fclose(f);
    *out = buf;
    *outlen = n;
    return 0;
}

static void add_chunk(struct host *h, const uint8_t *d, size_t len, size_t recs)
{
    h->chunks = xrealloc(h->chunks, (h->nchunks + 1) * sizeof(*h->chunks));
    h->chunks[h->nchunks].data = d;
    h->chunks[h->nchunks].len = len;
    h->chunks[h->nchunks].records = recs;
    h->nchunks++;
}

static int load_input(struct host *h)
{
    const char *path = h->in_path ? h->in_path : h->in_chunks_path;
    if (!path) return 0;
    if (read_all(path, &h->input, &h->input_len)) return -1;
    if (h->in_path) {
        size_t off = 0, start = 0, recs = 0;
        while (off < h->input_len) {
            if (mp_skip(h->input, h->input_len, &off) != 0) {
                /* the rest does not parse: it rides with the last chunk */
                fprintf(stderr, "flbhost: %s: bytes at offset %zu do not parse as msgpack\n",
                        path, off);
                off = h->input_len;
                break;
            }
            recs++;
            if ((long long)recs == h->chunk_records) {
                add_chunk(h, h->input + start, off - start, recs);
                start = off;
                recs = 0;
            }
        }
        if (off > start) add_chunk(h, h->input + start, off - start, recs);
    } else {
        size_t off = 0;
        while (off < h->input_len) {
            uint64_t n;
            if (be_len(h->input, h->input_len, off, 4, &n) || n > h->input_len - off - 4) {
                fprintf(stderr, "flbhost: %s: truncated frame at offset %zu\n", path, off);
                return -1;
            }
            off += 4;
            if (n > 0) add_chunk(h, h->input + off, (size_t)n, count_records(h->input + off, (size_t)n));
            off += (size_t)n;
        }
    }
    for (size_t i = 0; i < h->nchunks; i++) {
        if (h->chunks[i].len > INT_MAX) {
            fprintf(stderr, "flbhost: %s: chunk %zu is larger than 2 GiB\n", path, i);
            return -1;
        }
    }
    return 0;
}

/* ---- driving the plugin ---- */

static void call_exit(struct host *h, struct instance *in)
{
    if (in->exited) return;
    in->exited = 1;
    if (h->f_exit_ctx) h->f_exit_ctx(in->ctx.remote_context);
    else if (h->f_exit) h->f_exit();
}

/* begin_stop: no flush starts from now on; the flushes in flight finish; then every
 * instance's ExitCtx runs (Fluent Bit joins an output's worker threads before calling its
 * exit callback). Main thread only. */
static void begin_stop(struct host *h)
{
    size_t i;
    if (h->stop_started) return;
    h->stop_started = 1;
    for (i = 0; i < h->ninst; i++) {
        struct instance *in = h->inst[i];
        pthread_mutex_lock(&in->mu);
        in->stopping = 1;
        pthread_cond_broadcast(&in->cv);
        pthread_mutex_unlock(&in->mu);
    }
    for (i = 0; i < h->ninst; i++) {
        struct instance *in = h->inst[i];
        pthread_mutex_lock(&in->mu);
        while (in->inflight > 0) pthread_cond_wait(&in->done_cv, &in->mu);
        pthread_mutex_unlock(&in->mu);
    }
    for (i = 0; i < h->ninst; i++) call_exit(h, h->inst[i]);
}

/* try_begin reports whether a new flush may start on in and, if so, counts it in flight.
 * For a serial instance it also checks the deadline (the main thread is the one flushing). */
static int try_begin(struct host *h, struct instance *in)
{
    int ok;
    if (in->nthreads == 0 && h->deadline > 0 && now_s() >= h->deadline) begin_stop(h);
    pthread_mutex_lock(&in->mu);
    ok = !in->stopping;
    if (ok) in->inflight++;
    pthread_mutex_unlock(&in->mu);
    return ok;
}

static void end_flush(struct instance *in)
{
    pthread_mutex_lock(&in->mu);
    in->inflight--;
    pthread_cond_broadcast(&in->done_cv);
    pthread_mutex_unlock(&in->mu);
}

/* Each flushing thread hands the plugin a copy of the chunk in a buffer of its own, reused
 * from flush to flush (as Fluent Bit hands a chunk's buffer that it reuses after the call),
 * and overwritten by the next chunk: a plugin that kept the pointer would see other bytes.
 * A malloc'd copy per call would cost an mmap and its page faults per chunk, which the
 * kernel serialises across threads and which would be charged to the plugin in benchmarks. */
static __thread unsigned char *flush_buf;
static __thread size_t flush_cap;

static void free_flush_buf(void)
{
    free(flush_buf);
    flush_buf = NULL;
    flush_cap = 0;
}

static int flush_once(struct host *h, struct instance *in, const struct chunk *c)
{
    char *tag = xstrdup(h->tag);
    int rc;
    if (c->len > flush_cap) {
        free(flush_buf);
        flush_cap = c->len + c->len / 4;
        flush_buf = xmalloc(flush_cap);
    }
    memcpy(flush_buf, c->data, c->len);
    if (h->f_flush_ctx) rc = h->f_flush_ctx(in->ctx.remote_context, flush_buf, (int)c->len, tag);
    else rc = h->f_flush(flush_buf, (int)c->len, tag);
    free(tag);
    return rc;
}

static void deliver(struct host *h, struct instance *in, const struct chunk *c)
{
    long long attempt;
    enum { RES_OK, RES_ERROR, RES_DROPPED } result = RES_DROPPED;
    int retries = 0;
    for (attempt = 0;; attempt++) {
        int rc;
        /* the first attempt was counted in flight by the caller */
        if (attempt > 0) {
            sleep_us(h->retry_wait_ms * 1000);
            if (!try_begin(h, in)) {
                result = RES_DROPPED;
                break;
            }
        }
        rc = flush_once(h, in, c);
        end_flush(in);
        sleep_us(h->chunk_delay_us);
        if (rc == FLB_OK) {
            result = RES_OK;
            break;
        }
        if (rc == FLB_RETRY) {
            retries++;
            if (attempt >= h->retry_max) {
                result = RES_DROPPED;
                break;
            }
            continue;
        }
        result = RES_ERROR;
        break;
    }
    pthread_mutex_lock(&in->mu);
    in->st.chunks++;
    in->st.records += c->records;
    in->st.retries += (unsigned long long)retries;
    if (result == RES_OK) {
        in->st.ok_chunks++;
        in->st.ok_records += c->records;
    } else if (result == RES_ERROR) {
        in->st.errors++;
    } else {
        in->st.dropped_chunks++;
        in->st.dropped_records += c->records;
    }
    in->done++;
    pthread_cond_broadcast(&in->done_cv);
    pthread_mutex_unlock(&in->mu);
}

static void *worker_main(void *arg)
{
    struct instance *in = arg;
    struct host *h = in->h;
    for (;;) {
        size_t idx;
        pthread_mutex_lock(&in->mu);
        while (in->q_next >= in->q_avail && !in->q_closed && !in->stopping)
            pthread_cond_wait(&in->cv, &in->mu);
        if (in->stopping || in->q_next >= in->q_avail) {
            pthread_mutex_unlock(&in->mu);
            break;
        }
        idx = in->q_next++;
        in->inflight++;
        pthread_mutex_unlock(&in->mu);
        deliver(h, in, &h->chunks[idx]);
    }
    free_flush_buf();
    return NULL;
}

static void start_workers(struct host *h, struct instance *in)
{
    int w = in->workers >= 0 ? in->workers : (int)h->workers, i;
    in->q_next = in->q_avail = in->done = 0;
    in->q_closed = in->stopping = 0;
    in->inflight = 0;
    in->nthreads = 0;
    if (w <= 0) return;
    in->threads = xrealloc(in->threads, (size_t)w * sizeof(pthread_t));
    for (i = 0; i < w; i++) {
        int err = pthread_create(&in->threads[i], NULL, worker_main, in);
        if (err) {
            fprintf(stderr, "flbhost: pthread_create: %s\n", strerror(err));
            exit(70);
        }
        in->nthreads++;
    }
}

static void wait_workers(struct host *h, struct instance *in)
{
    pthread_mutex_lock(&in->mu);
    while (in->done < in->q_avail && !in->stopping) {
        if (h->deadline > 0) {
            struct timespec ts;
            double left = h->deadline - now_s();
            if (left <= 0) {
                pthread_mutex_unlock(&in->mu);
                begin_stop(h);
                pthread_mutex_lock(&in->mu);
                break;
            }
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (time_t)left;
            ts.tv_nsec += (long)((left - (double)(long long)left) * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&in->done_cv, &in->mu, &ts);
        } else {
            pthread_cond_wait(&in->done_cv, &in->mu);
        }
    }
    pthread_mutex_unlock(&in->mu);
}

static void run_generation(struct host *h)
{
    size_t i, c;
    double started = now_s();
    h->stop_started = 0;
    h->deadline = h->exit_after_ms > 0 ? now_s() + (double)h->exit_after_ms / 1000.0 : 0;
    for (i = 0; i < h->ninst; i++) start_workers(h, h->inst[i]);
    for (c = 0; c < h->nchunks && !h->stop_started; c++) {
        for (i = 0; i < h->ninst && !h->stop_started; i++) {
            struct instance *in = h->inst[i];
            if (in->nthreads > 0) {
                pthread_mutex_lock(&in->mu);
                in->q_avail++;
                pthread_cond_signal(&in->cv);
                pthread_mutex_unlock(&in->mu);
            } else if (try_begin(h, in)) {
                deliver(h, in, &h->chunks[c]);
            }
        }
        if (h->deadline > 0 && now_s() >= h->deadline) begin_stop(h);
    }
    for (i = 0; i < h->ninst; i++) {
        struct instance *in = h->inst[i];
        pthread_mutex_lock(&in->mu);
        in->q_closed = 1;
        pthread_cond_broadcast(&in->cv);
        pthread_mutex_unlock(&in->mu);
    }
    for (i = 0; i < h->ninst; i++)
        if (h->inst[i]->nthreads > 0) wait_workers(h, h->inst[i]);
    for (i = 0; i < h->ninst; i++) {
        struct instance *in = h->inst[i];
        int t;
        for (t = 0; t < in->nthreads; t++) pthread_join(in->threads[t], NULL);
        in->nthreads = 0;
        /* chunks this instance never saw in this generation */
        in->st.unsent_chunks += (unsigned long long)(h->nchunks - in->done);
    }
    h->flush_wall += now_s() - started;
}

static void *need_sym(struct host *h, const char *name)
{
    void *p = dlsym(h->dl, name);
    if (!p) fprintf(stderr, "flbhost: %s: symbol %s not found\n", h->so_path, name);
    return p;
}

static int load_plugin(struct host *h)
{
    const char *base = strrchr(h->so_path, '/');
    base = base ? base + 1 : h->so_path;
    if (strncmp(base, "flb-", 4) == 0)
        fprintf(stderr, "flbhost: warning: Fluent Bit takes %s for a C plugin (flb-*.so)\n", base);
    h->dl = dlopen(h->so_path, RTLD_LAZY);
    if (!h->dl) {
        fprintf(stderr, "flbhost: dlopen: %s\n", dlerror());
        return -1;
    }
    h->f_preregister = (fn_preregister)dlsym(h->dl, "FLBPluginPreRegister");
    h->f_register = (fn_register)need_sym(h, "FLBPluginRegister");
    h->f_init = (fn_init)need_sym(h, "FLBPluginInit");
    h->f_flush_ctx = (fn_flush_ctx)dlsym(h->dl, "FLBPluginFlushCtx");
    h->f_flush = (fn_flush)dlsym(h->dl, "FLBPluginFlush");
    h->f_exit_ctx = (fn_exit_ctx)dlsym(h->dl, "FLBPluginExitCtx");
    h->f_exit = (fn_exit)dlsym(h->dl, "FLBPluginExit");
    h->f_unregister = (fn_unregister)dlsym(h->dl, "FLBPluginUnregister");
    if (!h->f_register || !h->f_init) return -1;
    if (!h->f_flush_ctx && !h->f_flush) {
        fprintf(stderr, "flbhost: %s: exports neither FLBPluginFlushCtx nor FLBPluginFlush\n",
                h->so_path);
        return -1;
    }
    return 0;
}

static void unregister(struct host *h)
{
    if (!h->def) return;
    if (h->f_unregister) h->f_unregister(h->def);
    free(h->def);
    h->def = NULL;
}

/* start_generation registers the plugin and initialises every instance. */
static int start_generation(struct host *h, int hot_reload)
{
    size_t i;
    int rc;
    if (h->f_preregister) h->f_preregister(hot_reload);
    h->def = xcalloc(1, sizeof(*h->def));
    rc = h->f_register(h->def);
    if (rc == -1) {
        fprintf(stderr, "flbhost: FLBPluginRegister failed\n");
        return -1;
    }
    if (h->def->type != FLB_PROXY_OUTPUT_PLUGIN || h->def->proxy != FLB_PROXY_GOLANG ||
        h->def->name == NULL) {
        fprintf(stderr, "flbhost: FLBPluginRegister: bad definition (type=%d proxy=%d name=%s)\n",
                h->def->type, h->def->proxy, h->def->name ? h->def->name : "(null)");
        return -1;
    }
    free(h->plugin.name);
    h->plugin.name = xstrdup(h->def->name);
    h->plugin.api = &h->api;
    for (i = 0; i < h->ninst; i++) {
        struct instance *in = h->inst[i];
        memset(&in->ctx, 0, sizeof(in->ctx));
        in->exited = 0;
        h->plugin.o_ins = &in->props;
        h->plugin.context = &in->ctx;
        rc = h->f_init(&h->plugin);
        h->plugin.o_ins = NULL;
        h->plugin.context = NULL;
        if (rc <= 0) {
            fprintf(stderr, "flbhost: FLBPluginInit failed for instance %s (returned %d)\n",
                    in->name, rc);
            return -1;
        }
    }
    return 0;
}

static void exit_all(struct host *h)
{
    size_t i;
    for (i = 0; i < h->ninst; i++) call_exit(h, h->inst[i]);
}

/* Peak resident memory of this process image, in KiB. VmHWM belongs to the
 * address space, so it starts afresh at exec; getrusage's ru_maxrss does not
 * (Linux carries it over exec, so a host started by a large parent through
 * vfork would report the parent's memory). */
static long peak_rss_kb(const struct rusage *ru)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
        fclose(f);
    }
    return kb >= 0 ? kb : ru->ru_maxrss;
}

static void print_summary(struct host *h, double wall)
{
    struct rusage ru;
    size_t i;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"instances\":[");
    for (i = 0; i < h->ninst; i++) {
        struct stats *s = &h->inst[i]->st;
        printf("%s{\"name\":\"%s\",\"chunks\":%llu,\"records\":%llu,\"ok_chunks\":%llu,"
               "\"ok_records\":%llu,\"retries\":%llu,\"errors\":%llu,\"dropped_chunks\":%llu,"
               "\"dropped_records\":%llu,\"unsent_chunks\":%llu}",
               i ? "," : "", h->inst[i]->name, s->chunks, s->records, s->ok_chunks, s->ok_records,
               s->retries, s->errors, s->dropped_chunks, s->dropped_records, s->unsent_chunks);
    }
    printf("],\"wall_s\":%.6f,\"flush_wall_s\":%.6f,\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,\"max_rss_kb\":%ld}\n",
           wall, h->flush_wall,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, peak_rss_kb(&ru));
    fflush(stdout);
}

static void host_free(struct host *h)
{
    size_t i;
    for (i = 0; i < h->ninst; i++) instance_free(h->inst[i]);
    free(h->inst);
    free(h->chunks);
    free(h->input);
    free(h->plugin.name);
    free(h->def);
    /* the plugin is not dlclose'd: a Go runtime cannot be unloaded */
}

static void usage(const char *msg)
{
    if (msg) fprintf(stderr, "flbhost: %s\n", msg);
    fputs("usage: flbhost -so FILE [options] [-p key=value ...] [-next -p key=value ...] ...\n"
          "  -so FILE  -conf FILE  -p key=value  -next  -in FILE|-  -in-chunks FILE|-\n"
          "  -chunk N (1000)  -tag TAG (flatstore.test)  -workers N (0)  -retry-max N (50)\n"
          "  -retry-wait-ms N (20)  -chunk-delay-us N  -exit-after-ms N  -reload N  -hold-ms N  -q\n",
          stderr);
}

/* the command-line instances, before they are appended after the -conf ones */
struct cli_inst {
    struct props props;
    int workers;
    int used;
};

int main(int argc, char **argv)
{
    struct host h;
    struct cli_inst *cli = NULL;
    size_t ncli = 0, i;
    int a, rc = 0, failed_init = 0;
    double t0 = now_s();
    long long v;

    memset(&h, 0, sizeof(h));
    h.chunk_records = 1000;
    h.tag = "flatstore.test";
    h.retry_max = 50;
    h.retry_wait_ms = 20;
    h.api.output_get_property = get_property;

    cli = xcalloc(1, sizeof(*cli));
    cli[0].workers = -1;
    ncli = 1;

#define NEED_ARG()                                                                                 \
    do {                                                                                           \
        if (a + 1 >= argc) {                                                                       \
            fprintf(stderr, "flbhost: %s needs a value\n", argv[a]);                               \
            usage(NULL);                                                                           \
            rc = EXIT_USAGE;                                                                       \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
#define NUM_ARG(dst, min, max)                                                                     \
    do {                                                                                           \
        NEED_ARG();                                                                                \
        if (parse_int(argv[a + 1], (min), (max), &v)) {                                            \
            fprintf(stderr, "flbhost: %s %s: not a number in %lld..%lld\n", argv[a], argv[a + 1], \
                    (long long)(min), (long long)(max));                                           \
            usage(NULL);                                                                           \
            rc = EXIT_USAGE;                                                                       \
            goto out;                                                                              \
        }                                                                                          \
        (dst) = v;                                                                                 \
        a++;                                                                                       \
    } while (0)

    for (a = 1; a < argc; a++) {
        const char *o = argv[a];
        if (strcmp(o, "-so") == 0) {
            NEED_ARG();
            h.so_path = argv[++a];
        } else if (strcmp(o, "-conf") == 0) {
            NEED_ARG();
            h.conf_path = argv[++a];
        } else if (strcmp(o, "-p") == 0) {
            char *kv, *eq;
            NEED_ARG();
            kv = argv[++a];
            eq = strchr(kv, '=');
            if (!eq || eq == kv) {
                fprintf(stderr, "flbhost: -p %s: want key=value\n", kv);
                usage(NULL);
                rc = EXIT_USAGE;
                goto out;
            }
            {
                char *k = xstrndup(kv, (size_t)(eq - kv));
                struct cli_inst *ci = &cli[ncli - 1];
                ci->used = 1;
                if (strcasecmp(k, "workers") == 0) {
                    if (parse_int(eq + 1, 0, 256, &v)) {
                        fprintf(stderr, "flbhost: -p %s: workers must be 0..256\n", kv);
                        free(k);
                        usage(NULL);
                        rc = EXIT_USAGE;
                        goto out;
                    }
                    ci->workers = (int)v;
                } else {
                    props_set(&ci->props, k, eq + 1);
                }
                free(k);
            }
        } else if (strcmp(o, "-next") == 0) {
            cli = xrealloc(cli, (ncli + 1) * sizeof(*cli));
            memset(&cli[ncli], 0, sizeof(*cli));
            cli[ncli].workers = -1;
            ncli++;
        } else if (strcmp(o, "-in") == 0) {
            NEED_ARG();
            h.in_path = argv[++a];
        } else if (strcmp(o, "-in-chunks") == 0) {
            NEED_ARG();
            h.in_chunks_path = argv[++a];
        } else if (strcmp(o, "-chunk") == 0) {
            NUM_ARG(h.chunk_records, 1, 100000000);
        } else if (strcmp(o, "-tag") == 0) {
            NEED_ARG();
            h.tag = argv[++a];
        } else if (strcmp(o, "-workers") == 0) {
            NUM_ARG(h.workers, 0, 256);
        } else if (strcmp(o, "-retry-max") == 0) {
            NUM_ARG(h.retry_max, 0, 1000000);
        } else if (strcmp(o, "-retry-wait-ms") == 0) {
            NUM_ARG(h.retry_wait_ms, 0, 3600000);
        } else if (strcmp(o, "-chunk-delay-us") == 0) {
            NUM_ARG(h.chunk_delay_us, 0, 3600000000LL);
        } else if (strcmp(o, "-exit-after-ms") == 0) {
            NUM_ARG(h.exit_after_ms, 0, 86400000);
        } else if (strcmp(o, "-reload") == 0) {
            NUM_ARG(h.reload, 0, 1000);
        } else if (strcmp(o, "-hold-ms") == 0) {
            NUM_ARG(h.hold_ms, 0, 86400000);
        } else if (strcmp(o, "-q") == 0) {
            h.quiet = 1;
        } else {
            fprintf(stderr, "flbhost: unknown option %s\n", o);
            usage(NULL);
            rc = EXIT_USAGE;
            goto out;
        }
    }
    if (!h.so_path) {
        usage("-so is required");
        rc = EXIT_USAGE;
        goto out;
    }
    if (h.in_path && h.in_chunks_path) {
        usage("-in and -in-chunks exclude each other");
        rc = EXIT_USAGE;
        goto out;
    }

    if (h.conf_path) {
        struct conf_state cs;
        memset(&cs, 0, sizeof(cs));
        cs.h = &h;
        cs.sec_workers = -1;
        a = conf_file(&cs, h.conf_path);
        section_end(&cs);
        props_free(&cs.vars);
        if (a != 0) {
            rc = EXIT_USAGE;
            goto out;
        }
    }
    /* command-line instances follow the -conf ones; without -conf there is always one */
    for (i = 0; i < ncli; i++) {
        struct instance *in;
        if (h.conf_path && !cli[i].used) continue;
        in = instance_new(&h);
        in->props = cli[i].props;
        in->workers = cli[i].workers;
        memset(&cli[i].props, 0, sizeof(cli[i].props));
    }
    if (h.ninst == 0) {
        fprintf(stderr, "flbhost: no instance (no [OUTPUT] with Name flatstore in %s)\n",
                h.conf_path);
        rc = EXIT_USAGE;
        goto out;
    }
    if (load_input(&h)) {
        rc = EXIT_USAGE;
        goto out;
    }
    if (load_plugin(&h)) {
        rc = EXIT_INIT;
        goto out;
    }

    for (v = 0; v <= h.reload; v++) {
        if (v > 0) {
            exit_all(&h);
            unregister(&h);
        }
        if (start_generation(&h, v > 0)) {
            unregister(&h);
            failed_init = 1;
            rc = EXIT_INIT;
            break;
        }
        run_generation(&h);
    }
    if (!failed_init) {
        if (h.hold_ms > 0) sleep_us(h.hold_ms * 1000);
        exit_all(&h);
        unregister(&h);
        for (i = 0; i < h.ninst; i++) {
            struct stats *s = &h.inst[i]->st;
            if (s->errors || s->dropped_chunks) rc = EXIT_CHUNK;
        }
    }
    if (!h.quiet) print_summary(&h, now_s() - t0);

out:
    for (i = 0; i < ncli; i++) props_free(&cli[i].props);
    free(cli);
    host_free(&h);
    free_flush_buf();
    return rc;
}
