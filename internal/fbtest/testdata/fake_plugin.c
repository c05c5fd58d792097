/*
 * fake_plugin.c — a tiny output plugin in C that speaks the Go proxy ABI of Fluent Bit
 * v5.1.1, so the host's tests can watch what the host does without the real plugin. It logs
 * each call to the file named by $FAKE_LOG, one event a line:
 *
 *   preregister hot=H
 *   register zeroed=Z pid=P                (Z: 1 when the host passed a zeroed definition)
 *   init name=N ctx_null=B id=ID pid=P     then one "prop id=ID KEY=VALUE" (or =(null)) for
 *                                          each key listed in the property "query", and
 *   oins id=ID name=NAME alias=ALIAS oid=N level=L event_type=E suppress=S
 *                                          what it reads in o_ins at the engine's offsets
 *   init-fail id=ID                        (property fail=1; Init returns 0)
 *   flush-start id=ID / flush-end id=ID result=R records=N len=L tag=T
 *   flush-noctx ...                        (the variant without FlushCtx)
 *   exitctx id=ID calls=C records=R bytes=B sum=S maxinflight=M
 *   exit                                   (the variant without ExitCtx)
 *   unregister name=N
 *
 * Properties: id, query, fail=1, result=N (answer N to every flush), retry_first=1 (RETRY on
 * the first call of each distinct chunk), sleep_us=N, scribble=1 (overwrite the data after
 * reading it, to prove the host resends its own copy), log=LEVEL:TEXT[;LEVEL:TEXT...] (log
 * each TEXT at Init through the api, as flb_plg_<level> does: checked with output_log_check,
 * prefixed "[output:flatstore:<alias or name>] "), log_thread=TEXT (log TEXT at info from a
 * thread of the plugin's own), log_long=N (log N 'x' at info). Counters (calls, records,
 * bytes, sum of FNV-1a hashes of the chunks answered OK) are per context, under a mutex.
 *
 * It registers a config map (unless built with -DNO_CONFIG_MAP) holding the keys above and
 * some of every kind the host must handle: a prefixed key, a key allowed several times, a
 * deprecated key, one expanded at run time, one with a long description, one of each type.
 * -DBAD_REGISTER registers type 1, -DNO_CTX leaves out the *Ctx callbacks, -DBAD_MAP_TYPE
 * registers an entry of a type the engine's help refuses.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct flb_plugin_proxy_def { int type; int proxy; int flags; char *name; char *description;
                              int event_type; void *config_map; };

/* include/fluent-bit/flb_api.h */
struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
    const char *(*custom_get_property)(const char *, void *);
    int (*custom_log_check)(void *, int);
};
struct proxy_ctx { void *remote_context; void *proxy; };
struct plugin { char *name; struct flb_api *api; void *o_ins; struct proxy_ctx *context; };

/* the head of struct flb_output_instance (include/fluent-bit/flb_output.h), with lib/monkey's
 * struct mk_event and struct mk_list as Linux builds them */
struct mk_list { struct mk_list *prev, *next; };
struct mk_event { int fd; int type; uint32_t mask; uint8_t status; void *data;
                  int (*handler)(void *data); struct mk_list _head; struct mk_list _priority_head;
                  char priority; };
struct output_instance { struct mk_event event; void *processor; int event_type; int id;
                         int log_level; int log_suppress_interval; char name[32]; char *alias; };

/* include/fluent-bit/flb_config_map.h */
struct config_map_val {
    union { int i_num; int boolean; double d_num; size_t s_num; char *str; void *list;
            void *variant; } val;
    char *raw;
    struct mk_list *mult;
    struct mk_list _head;
};
struct config_map { int type; char *name; char *def_value; int flags; int set_property;
                    uintptr_t offset; char *desc; struct config_map_val value;
                    struct mk_list _head; };

#define STR 0
#define PREFIX 1
#define INT 2
#define BOOL 3
#define DOUBLE 4
#define SIZE 5
#define TIME 6
#define DEPRECATED 7
#define CLIST 30
#define SLIST_2 42
#define MULT 1
#define DYNAMIC_ENV 2

#ifndef NO_CONFIG_MAP
static struct config_map fake_map[] = {
    {STR, "id", NULL, 0, 0, 0, "Names the instance in the fake's log.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {STR, "query", NULL, 0, 0, 0, "Comma-separated keys to look up at Init.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {BOOL, "fail", "false", 0, 0, 0, "Fail Init.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {INT, "result", NULL, 0, 0, 0, NULL, {{0}, 0, 0, {0, 0}}, {0, 0}},
    {BOOL, "retry_first", "off", 0, 0, 0, "", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {INT, "sleep_us", "0", 0, 0, 0, "Sleep in each flush.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {BOOL, "scribble", "off", 0, 0, 0, "Overwrite the chunk after reading it.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {STR, "log", NULL, 0, 0, 0, "Messages to log at Init.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {STR, "log_thread", NULL, 0, 0, 0, "A message to log from a thread of the plugin.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {INT, "log_long", "0", 0, 0, 0, "Log this many characters.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {STR, "path", "/tmp/${FAKE_DEFAULT_DIR}/x.log", 0, 0, 0,
     "A path, whose default names a variable: the help shows it expanded. This description is "
     "long enough to be wrapped over several lines by the help, at the last space that fits "
     "in ninety columns less the padding.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {STR, "empty", NULL, 0, 0, 0, NULL, {{0}, 0, 0, {0, 0}}, {0, 0}},
    {STR, "missing", NULL, 0, 0, 0, NULL, {{0}, 0, 0, {0, 0}}, {0, 0}},
    {STR, "delimiter", ",", 0, 0, 0, NULL, {{0}, 0, 0, {0, 0}}, {0, 0}},
    {PREFIX, "label.", NULL, 0, 0, 0, "Any key that starts with label.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {CLIST, "multi", NULL, MULT, 0, 0, "May be set several times.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {DEPRECATED, "old_key", NULL, 0, 0, 0, "Deprecated.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {STR, "dyn", "${FAKE_DYN_DEFAULT}", DYNAMIC_ENV, 0, 0, "Expanded at run time by the plugin.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {SIZE, "buffer_size", "1M", 0, 0, 0, "A size.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {TIME, "interval", "5s", 0, 0, 0, "A time.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {DOUBLE, "ratio", "0.5", 0, 0, 0, "A double.", {{0}, 0, 0, {0, 0}}, {0, 0}},
    {SLIST_2, "pair", NULL, 0, 0, 0, "Two words.", {{0}, 0, 0, {0, 0}}, {0, 0}},
#ifdef BAD_BOOL_DEFAULT
    {BOOL, "bad_bool", "1", 0, 0, 0, "flatstore takes 1 for true; the engine does not.", {{0}, 0, 0, {0, 0}}, {0, 0}},
#endif
#ifdef BAD_MAP_TYPE
    {35, "bad_type", NULL, 0, 0, 0, "A type no engine knows.", {{0}, 0, 0, {0, 0}}, {0, 0}},
#endif
    {0, NULL, NULL, 0, 0, 0, NULL, {{0}, 0, 0, {0, 0}}, {0, 0}},
};
#endif

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *logf;

static void logline(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&log_mu);
    if (!logf) {
        const char *p = getenv("FAKE_LOG");
        logf = fopen(p ? p : "/dev/null", "a");
    }
    va_start(ap, fmt);
    vfprintf(logf, fmt, ap);
    va_end(ap);
    fputc('\n', logf);
    fflush(logf);
    pthread_mutex_unlock(&log_mu);
}

struct fctx {
    char id[64];
    int result, retry_first, sleep_us, scribble;
    pthread_mutex_t mu;
    long calls, records, bytes;
    uint64_t sum;
    int inflight, maxinflight;
    uint64_t *seen;
    size_t nseen, cap;
};

static struct fctx *last_ctx; /* for the variant without FlushCtx */

static int skip(const unsigned char *b, size_t n, size_t *o, int depth)
{
    unsigned char t;
    uint64_t len = 0, items = 0, i;
    int w = 0;
    if (depth > 64 || *o >= n) return -1;
    t = b[(*o)++];
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return 0;
    if ((t & 0xf0) == 0x80) { items = 2 * (t & 0x0f); goto container; }
    if ((t & 0xf0) == 0x90) { items = t & 0x0f; goto container; }
    if ((t & 0xe0) == 0xa0) { len = t & 0x1f; goto payload; }
    switch (t) {
    case 0xc4: case 0xd9: w = 1; break;
    case 0xc5: case 0xda: w = 2; break;
    case 0xc6: case 0xdb: w = 4; break;
    case 0xc7: w = 1; len = 1; break;
    case 0xc8: w = 2; len = 1; break;
    case 0xc9: w = 4; len = 1; break;
    case 0xca: len = 4; goto payload;
    case 0xcb: len = 8; goto payload;
    case 0xcc: case 0xd0: len = 1; goto payload;
    case 0xcd: case 0xd1: len = 2; goto payload;
    case 0xce: case 0xd2: len = 4; goto payload;
    case 0xcf: case 0xd3: len = 8; goto payload;
    case 0xd4: len = 2; goto payload;
    case 0xd5: len = 3; goto payload;
    case 0xd6: len = 5; goto payload;
    case 0xd7: len = 9; goto payload;
    case 0xd8: len = 17; goto payload;
    case 0xdc: case 0xdd: case 0xde: case 0xdf: {
        int cw = (t == 0xdc || t == 0xde) ? 2 : 4;
        if (n - *o < (size_t)cw) return -1;
        for (i = 0; i < (uint64_t)cw; i++) items = (items << 8) | b[(*o)++];
        if (t >= 0xde) items *= 2;
        goto container;
    }
    default: return -1;
    }
    {
        uint64_t l = 0;
        if (n - *o < (size_t)w) return -1;
        for (i = 0; i < (uint64_t)w; i++) l = (l << 8) | b[(*o)++];
        len += l;
    }
payload:
    if (n - *o < len) return -1;
    *o += len;
    return 0;
container:
    for (i = 0; i < items; i++)
        if (skip(b, n, o, depth + 1)) return -1;
    return 0;
}

int FLBPluginPreRegister(int hot) { logline("preregister hot=%d", hot); return 0; }

int FLBPluginRegister(void *d)
{
    struct flb_plugin_proxy_def *def = d;
    int zeroed = def->type == 0 && def->proxy == 0 && def->flags == 0 && def->name == NULL &&
                 def->description == NULL && def->event_type == 0 && def->config_map == NULL;
    logline("register zeroed=%d pid=%ld", zeroed, (long)getpid());
#ifdef BAD_REGISTER
    def->type = 1;
#else
    def->type = 2;
#endif
    def->proxy = 11;
    def->name = strdup("flatstore");
    def->description = strdup("fake plugin");
#ifndef NO_CONFIG_MAP
    def->config_map = fake_map;
#endif
    return 0;
}

static const char *prop(struct plugin *p, const char *key)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", key);
    return p->api->output_get_property(buf, p->o_ins);
}

/* plg_log logs as flb_plg_<level> does: the instance's level checked, the prefix added. */
static void plg_log(struct plugin *p, int level, const char *text)
{
    struct output_instance *o = p->o_ins;
    if (!p->api->output_log_check(p->o_ins, level)) return;
    p->api->log_print(level, NULL, 0, "[output:%s:%s] %s", p->name, o->alias ? o->alias : o->name,
                      text);
}

static struct flb_api *thread_api;
static void *thread_log(void *arg)
{
    thread_api->log_print(3, NULL, 0, "%s", (char *)arg);
    return NULL;
}

static void do_logs(struct plugin *p)
{
    static const char *words[] = {"off", "error", "warn", "info", "debug", "trace"};
    const char *v = prop(p, "log");
    if (v) {
        char *dup = strdup(v), *save = NULL, *m;
        for (m = strtok_r(dup, ";", &save); m; m = strtok_r(NULL, ";", &save)) {
            char *colon = strchr(m, ':');
            int level;
            if (!colon) continue;
            *colon = '\0';
            for (level = 0; level < 6; level++)
                if (strcasecmp(m, words[level]) == 0) break;
            plg_log(p, level, colon + 1);
        }
        free(dup);
    }
    v = prop(p, "log_long");
    if (v && atoi(v) > 0) {
        size_t n = (size_t)atoi(v);
        char *s = malloc(n + 1);
        memset(s, 'x', n);
        s[n] = '\0';
        p->api->log_print(3, NULL, 0, "%s", s);
        free(s);
    }
    v = prop(p, "log_thread");
    if (v) {
        pthread_t t;
        char *text = strdup(v);
        thread_api = p->api;
        pthread_create(&t, NULL, thread_log, text);
        pthread_join(t, NULL);
        free(text);
    }
}

int FLBPluginInit(void *pv)
{
    struct plugin *p = pv;
    const char *id = prop(p, "id"), *q = prop(p, "query"), *v;
    struct fctx *c;
    if (!id) id = "?";
    logline("init name=%s ctx_null=%d id=%s pid=%ld", p->name, p->context->remote_context == NULL,
            id, (long)getpid());
    {
        struct output_instance *o = p->o_ins;
        char name[33];
        memcpy(name, o->name, 32);
        name[32] = '\0';
        logline("oins id=%s name=%s alias=%s oid=%d level=%d event_type=%d suppress=%d", id, name,
                o->alias ? o->alias : "(null)", o->id, o->log_level, o->event_type,
                o->log_suppress_interval);
    }
    do_logs(p);
    if (q) {
        char *dup = strdup(q), *save = NULL, *k;
        for (k = strtok_r(dup, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            const char *val = p->api->output_get_property(k, p->o_ins);
            logline("prop id=%s %s=%s", id, k, val ? val : "(null)");
        }
        free(dup);
    }
    v = prop(p, "fail");
    if (v && strcmp(v, "1") == 0) {
        logline("init-fail id=%s", id);
        return 0;
    }
    c = calloc(1, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    v = prop(p, "result");
    c->result = v ? atoi(v) : -1;
    v = prop(p, "retry_first");
    c->retry_first = v && strcmp(v, "1") == 0;
    v = prop(p, "sleep_us");
    c->sleep_us = v ? atoi(v) : 0;
    v = prop(p, "scribble");
    c->scribble = v && strcmp(v, "1") == 0;
    pthread_mutex_init(&c->mu, NULL);
    p->context->remote_context = c;
    last_ctx = c;
    return 1;
}

static int do_flush(struct fctx *c, void *data, int len, char *tag, const char *what)
{
    const unsigned char *b = data;
    size_t off = 0, i;
    long recs = 0;
    uint64_t h = 14695981039346656037ULL;
    int r, seen = 0;
    if (!c) { logline("%s null-ctx", what); return 0; }
    logline("%s-start id=%s", what, c->id);
    pthread_mutex_lock(&c->mu);
    c->inflight++;
    if (c->inflight > c->maxinflight) c->maxinflight = c->inflight;
    pthread_mutex_unlock(&c->mu);
    if (c->sleep_us) usleep((useconds_t)c->sleep_us);
    for (i = 0; i < (size_t)len; i++) { h ^= b[i]; h *= 1099511628211ULL; }
    while (off < (size_t)len && skip(b, (size_t)len, &off, 0) == 0) recs++;
    if (c->scribble) memset(data, 0xAA, (size_t)len);
    pthread_mutex_lock(&c->mu);
    if (c->result >= 0) {
        r = c->result;
    } else if (c->retry_first) {
        for (i = 0; i < c->nseen; i++) if (c->seen[i] == h) seen = 1;
        if (!seen) {
            if (c->nseen == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 16;
                c->seen = realloc(c->seen, c->cap * sizeof *c->seen);
            }
            c->seen[c->nseen++] = h;
        }
        r = seen ? 1 : 2;
    } else {
        r = 1;
    }
    if (r == 1) { c->calls++; c->records += recs; c->bytes += len; c->sum += h; }
    c->inflight--;
    pthread_mutex_unlock(&c->mu);
    logline("%s-end id=%s result=%d records=%ld len=%d tag=%s", what, c->id, r, recs, len, tag);
    return r;
}

#ifndef NO_CTX
int FLBPluginFlushCtx(void *ctx, void *data, int len, char *tag)
{
    return do_flush(ctx, data, len, tag, "flush");
}
#endif

int FLBPluginFlush(void *data, int len, char *tag)
{
    return do_flush(last_ctx, data, len, tag, "flush-noctx");
}

static void ctx_exit(struct fctx *c, const char *what)
{
    if (!c) { logline("%s null-ctx", what); return; }
    logline("%s id=%s calls=%ld records=%ld bytes=%ld sum=%llu maxinflight=%d", what, c->id,
            c->calls, c->records, c->bytes, (unsigned long long)c->sum, c->maxinflight);
}

#ifndef NO_CTX
int FLBPluginExitCtx(void *ctx)
{
    struct fctx *c = ctx;
    ctx_exit(c, "exitctx");
    if (c) { pthread_mutex_destroy(&c->mu); free(c->seen); free(c); }
    return 1;
}
#endif

int FLBPluginExit(void)
{
    ctx_exit(last_ctx, "exit");
    return 1;
}

void FLBPluginUnregister(void *d)
{
    struct flb_plugin_proxy_def *def = d;
    logline("unregister name=%s", def->name);
    free(def->name);
    free(def->description);
    def->name = def->description = NULL;
}
