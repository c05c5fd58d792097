/*
 * engine.c — the C side of flatstore's glue to Fluent Bit.
 *
 * The symbols Fluent Bit's Go proxy looks up (FLBPluginRegister, FLBPluginInit,
 * FLBPluginFlushCtx, FLBPluginExitCtx…) are defined here, not in Go: each first checks
 * whether the process forked after the library was loaded (Daemon On) and only then
 * enters Go. The Go runtime does not survive fork(): its threads stay in the parent, so
 * Go code in the child can wait forever for one of them. In a forked child the entry
 * points say so once, loudly, through the engine's logger, refuse to start, and return
 * at once on exit.
 *
 * It also reads the engine's memory that fluent-bit-go does not: the logger and metrics
 * slots of struct flb_api and the instance's name and alias; it calls the engine's
 * cmetrics functions (looked up, never linked); and it gives a Go output with
 * Workers the one worker pool that Fluent Bit 5.1.1 fails to give it (below).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "_cgo_export.h"

/* ---- fork detection ---- */

static volatile sig_atomic_t forked;
static volatile sig_atomic_t said;
static void *last_api; /* for messages that have no instance at hand */

static void on_fork_child(void) { forked = 1; }

__attribute__((constructor)) static void flatstore_loaded(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static void say_forked(void *api)
{
    static const char msg[] =
        "[output:flatstore] the process forked after the plugin was loaded (Daemon On?): "
        "the Go runtime does not survive fork(), so flatstore refuses to run here; "
        "run Fluent Bit in the foreground (Daemon Off, as containers and systemd do)";
    struct flb_api *a = api ? api : last_api;
    if (said) return;
    said = 1;
    if (a && a->log_print) {
        a->log_print(FLB_LOG_ERROR, NULL, 0, "%s", msg);
    } else {
        ssize_t r = write(2, msg, sizeof msg - 1);
        r = write(2, "\n", 1);
        (void)r;
    }
}

/* ---- one worker pool per output, not two (Fluent Bit 5.1.1, hot reload) ----
 *
 * For a Go output with Workers N, Fluent Bit 5.1.1 creates the worker pool twice:
 * flb_proxy_output_cb_init (src/flb_plugin_proxy.c:588) calls
 * flb_output_enable_multi_threading after the plugin's Init, and flb_output_init_all
 * (src/flb_output.c:1809) calls it again for every output. flb_output_thread_pool_create
 * overwrites ins->tp (src/flb_output_thread.c:476), so the first pool's N threads are
 * never stopped nor joined: flb_output_exit destroys only ins->tp. After a hot reload
 * frees the instance, their 1.5 s scheduler timer (cb_thread_sched_timer) reads it, and
 * the engine dies with SIGSEGV in flb_upstream_conn_timeouts, at the second or third
 * reload. Native outputs get one pool (their cb_init does not call it).
 *
 * The cure: once Init succeeded, flatstore sets the instance's tp_workers to 0, so that
 * both calls create nothing, and FLBPluginOutputPreRun — which the engine calls after
 * flb_output_init_all and before the first flush (src/flb_engine.c) — creates and
 * starts the one pool with the N workers, the pool flb_output_exit stops and joins. It
 * applies only when the instance is laid out as 5.1.1's struct flb_output_instance
 * (LP64: the name at 96, tp_workers at 872, tp at 880, is_threaded at 888, the empty
 * upstreams list at 896, config at 960, each checked: the name is this plugin's, no
 * pool yet, the list empty and self-linked) and the engine exports the two pool
 * functions; anywhere else (another engine version, the project's host) nothing is
 * changed. An engine that fixes its double call still gets exactly one pool. */
#define INS_NAME 96
#define INS_TP_WORKERS 872
#define INS_TP 880
#define INS_IS_THREADED 888
#define INS_UPSTREAMS 896
#define INS_CONFIG 960
#define INS_SIZE 968
#define MAX_DEFERRED 256

static int readable(const void *p, void *out, size_t n);

static pthread_mutex_t defer_mu = PTHREAD_MUTEX_INITIALIZER;
static char *deferred_ins[MAX_DEFERRED];
static int deferred_n[MAX_DEFERRED];
static int ndeferred;

static int (*pool_create)(void *config, void *ins);
static int (*pool_start)(void *ins);

/* defer_workers takes over the worker pool of the instance Init just set up. */
static void defer_workers(void *plugin)
{
    char *b = plugin ? ((struct flbgo_output_plugin *)plugin)->o_ins : NULL;
    unsigned char mem[INS_SIZE];
    void *ups_prev, *ups_next, *tp, *config;
    int workers, threaded;
    if (!b || !readable(b, mem, sizeof mem)) return;
    if (memcmp(mem + INS_NAME, "flatstore.", 10) != 0) return;
    memcpy(&workers, mem + INS_TP_WORKERS, sizeof workers);
    memcpy(&tp, mem + INS_TP, sizeof tp);
    memcpy(&threaded, mem + INS_IS_THREADED, sizeof threaded);
    memcpy(&ups_prev, mem + INS_UPSTREAMS, sizeof ups_prev);
    memcpy(&ups_next, mem + INS_UPSTREAMS + sizeof(void *), sizeof ups_next);
    memcpy(&config, mem + INS_CONFIG, sizeof config);
    if (workers <= 0 || workers > 1024 || tp != NULL || threaded != 0 || config == NULL ||
        ups_prev != (void *)(b + INS_UPSTREAMS) || ups_next != (void *)(b + INS_UPSTREAMS)) {
        return;
    }
    if (!pool_create) pool_create = (int (*)(void *, void *))dlsym(RTLD_DEFAULT, "flb_output_thread_pool_create");
    if (!pool_start) pool_start = (int (*)(void *))dlsym(RTLD_DEFAULT, "flb_output_thread_pool_start");
    if (!pool_create || !pool_start) return;
    pthread_mutex_lock(&defer_mu);
    if (ndeferred < MAX_DEFERRED) {
        *(int *)(b + INS_TP_WORKERS) = 0;
        deferred_ins[ndeferred] = b;
        deferred_n[ndeferred++] = workers;
    }
    pthread_mutex_unlock(&defer_mu);
}

/* start_deferred gives each deferred instance its one pool. */
static void start_deferred(void)
{
    int i;
    pthread_mutex_lock(&defer_mu);
    for (i = 0; i < ndeferred; i++) {
        char *b = deferred_ins[i];
        *(int *)(b + INS_TP_WORKERS) = deferred_n[i];
        if (pool_create(*(void **)(b + INS_CONFIG), b) == 0) {
            pool_start(b);
        } else {
            *(int *)(b + INS_TP_WORKERS) = 0; /* the flushes run in the engine's thread */
        }
    }
    ndeferred = 0;
    pthread_mutex_unlock(&defer_mu);
}

/* forget_deferred drops what a generation that never reached PreRun deferred (a reload
 * whose configuration failed): its instances are freed with it. */
static void forget_deferred(void)
{
    pthread_mutex_lock(&defer_mu);
    ndeferred = 0;
    pthread_mutex_unlock(&defer_mu);
}

/* ---- the entry points Fluent Bit calls ---- */

int FLBPluginPreRegister(int hot_reload)
{
    if (forked) return 0;
    return flatstoreGoPreRegister(hot_reload);
}

int FLBPluginRegister(void *def)
{
    if (forked) {
        say_forked(NULL);
        return -1;
    }
    return flatstoreGoRegister(def);
}

int FLBPluginInit(void *plugin)
{
    void *api = plugin ? ((struct flbgo_output_plugin *)plugin)->api : NULL;
    if (api) last_api = api;
    if (forked) {
        say_forked(api);
        return 0;
    }
    {
        int ret = flatstoreGoInit(plugin);
        if (ret == FLB_OK) defer_workers(plugin);
        return ret;
    }
}

int FLBPluginOutputPreRun(int hot_reload)
{
    (void)hot_reload;
    if (forked) return 0;
    start_deferred();
    return 0;
}

int FLBPluginFlushCtx(void *ctx, void *data, size_t size, char *tag)
{
    if (forked) {
        say_forked(NULL);
        return 0; /* FLB_ERROR */
    }
    return flatstoreGoFlushCtx(ctx, data, size, tag);
}

int FLBPluginFlush(void *data, size_t size, char *tag)
{
    if (forked) {
        say_forked(NULL);
        return 0;
    }
    return flatstoreGoFlush(data, size, tag);
}

int FLBPluginExitCtx(void *ctx)
{
    if (forked) return 1; /* FLB_OK: nothing a broken runtime could do */
    return flatstoreGoExitCtx(ctx);
}

int FLBPluginExit(void)
{
    if (forked) return 1;
    return flatstoreGoExit();
}

void FLBPluginUnregister(void *def)
{
    forget_deferred();
    if (forked) return;
    flatstoreGoUnregister(def);
}

/* ---- small accessors ---- */

void flatstore_set_context(void *plugin, void *ctx)
{
    ((struct flbgo_output_plugin *)plugin)->context->remote_context = ctx;
}

void flatstore_set_config_map(void *def, void *map)
{
    ((struct flb_plugin_proxy_def *)def)->config_map = map;
}

void *flatstore_plugin_api(void *plugin) { return ((struct flbgo_output_plugin *)plugin)->api; }

void *flatstore_plugin_ins(void *plugin) { return ((struct flbgo_output_plugin *)plugin)->o_ins; }

/* ---- the engine's logger ---- */

int flatstore_has_logger(void *api)
{
    struct flb_api *a = api;
    return a && a->log_print;
}

/* log_print is variadic: Go cannot call it, so the message goes through "%s". */
void flatstore_log(void *api, int level, const char *msg)
{
    struct flb_api *a = api;
    if (a && a->log_print) a->log_print(level, NULL, 0, "%s", msg);
}

int flatstore_log_check(void *api, void *ins, int level)
{
    struct flb_api *a = api;
    if (!a || !a->output_log_check || !ins) return 1;
    return a->output_log_check(ins, level);
}

/* ---- the instance's name and alias ---- */

/* readable copies n bytes at p into out when the memory is readable, without risking a
 * fault: the kernel reads it for a write(2) into a pipe (EFAULT otherwise). */
static int readable(const void *p, void *out, size_t n)
{
    int fds[2];
    int ok = 0;
    if (pipe(fds) != 0) return 0;
    if (write(fds[1], p, n) == (ssize_t)n && read(fds[0], out, n) == (ssize_t)n) ok = 1;
    close(fds[0]);
    close(fds[1]);
    return ok;
}

/*
 * flatstore_instance_name finds the engine's name for this instance ("flatstore.<id>",
 * as flb_output_new writes it into char name[32]) and the alias pointer that follows it
 * in struct flb_output_instance. Their offset differs between Fluent Bit versions, so no
 * offset is trusted: the first 256 bytes are searched, 4 by 4, for the name padded with
 * NULs, and the pointer at the next pointer-aligned offset is read only through a
 * kernel-checked copy and taken only when it holds a short printable string. Returns 1
 * when the name was found (alias is "" when there is none), 0 otherwise.
 */
int flatstore_instance_name(void *ins, char *name, int name_cap, char *alias, int alias_cap)
{
    static const char prefix[] = "flatstore.";
    const size_t plen = sizeof prefix - 1, span = 256, field = 32;
    unsigned char mem[256 + 32 + sizeof(void *)];
    size_t off;
    name[0] = alias[0] = '\0';
    if (!ins || !readable(ins, mem, sizeof mem)) return 0;
    for (off = 0; off + field <= span; off += 4) {
        size_t i = plen, a;
        char *ptr;
        char buf[256];
        if (memcmp(mem + off, prefix, plen) != 0) continue;
        while (i < field && mem[off + i] >= '0' && mem[off + i] <= '9') i++;
        if (i == plen || i >= field) continue;
        for (a = i; a < field && mem[off + a] == 0; a++) {
        }
        if (a != field || (int)i >= name_cap) continue;
        memcpy(name, mem + off, i);
        name[i] = '\0';
        a = (off + field + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
        memcpy(&ptr, mem + a, sizeof ptr);
        if (ptr) {
            /* page by page, never reading past a readable page */
            size_t n = 0, page = (size_t)sysconf(_SC_PAGESIZE), end = 0;
            int found = 0;
            while (n < sizeof buf - 1 && !found) {
                size_t chunk = page - ((uintptr_t)(ptr + n) % page);
                if (chunk > sizeof buf - 1 - n) chunk = sizeof buf - 1 - n;
                if (!readable(ptr + n, buf + n, chunk)) break;
                for (end = n; end < n + chunk; end++) {
                    if (buf[end] == '\0') {
                        found = 1;
                        break;
                    }
                }
                n += chunk;
            }
            if (found && end > 0 && (int)end < alias_cap) {
                size_t k;
                for (k = 0; k < end && (unsigned char)buf[k] >= 0x20 && (unsigned char)buf[k] != 0x7f; k++) {
                }
                if (k == end) {
                    memcpy(alias, buf, end);
                    alias[end] = '\0';
                }
            }
        }
        return 1;
    }
    return 0;
}

/* ---- the engine's metrics context (cmetrics) ----
 *
 * struct flb_api's output_get_cmt_instance hands the plugin its output instance's cmetrics
 * context (ins->cmt, made before the plugin's Init), which the engine's HTTP server serves
 * at /api/v2/metrics/prometheus with the engine's own fluentbit_output_* series. The
 * cmetrics functions are the engine's, exported from its executable: they are looked up
 * once with dlsym(RTLD_DEFAULT), never linked, so the plugin loads in an engine that does
 * not export them (then it has no series there, and says so). The project's host exports
 * functions of the same names and signatures (host/cmt.c). A series is created at Init
 * only: the engine walks the context's lists from its own thread while flushes run. */
typedef void *(*cmt_create_fn)(void *cmt, char *ns, char *subsystem, char *name, char *help,
                               int label_count, char **label_keys);
typedef int (*cmt_value_fn)(void *metric, uint64_t ts, double val, int labels_count,
                            char **label_vals);

static struct {
    cmt_create_fn counter_create, gauge_create;
    cmt_value_fn counter_add, counter_set, gauge_set;
    int ok;
} cmtf;
static pthread_once_t cmt_once = PTHREAD_ONCE_INIT;

static void cmt_lookup(void)
{
    cmtf.counter_create = (cmt_create_fn)dlsym(RTLD_DEFAULT, "cmt_counter_create");
    cmtf.gauge_create = (cmt_create_fn)dlsym(RTLD_DEFAULT, "cmt_gauge_create");
    cmtf.counter_add = (cmt_value_fn)dlsym(RTLD_DEFAULT, "cmt_counter_add");
    cmtf.counter_set = (cmt_value_fn)dlsym(RTLD_DEFAULT, "cmt_counter_set");
    cmtf.gauge_set = (cmt_value_fn)dlsym(RTLD_DEFAULT, "cmt_gauge_set");
    cmtf.ok = cmtf.counter_create && cmtf.gauge_create && cmtf.counter_add && cmtf.counter_set &&
              cmtf.gauge_set;
}

/* flatstore_cmt_resolve reports whether the process exports the five cmetrics functions. */
int flatstore_cmt_resolve(void)
{
    pthread_once(&cmt_once, cmt_lookup);
    return cmtf.ok;
}

/* flatstore_cmt_context returns the instance's metrics context, or NULL. */
void *flatstore_cmt_context(void *api, void *ins)
{
    struct flb_api *a = api;
    if (!a || !ins || !a->output_get_cmt_instance) return NULL;
    return a->output_get_cmt_instance(ins);
}

/* flatstore_cmt_metric creates flatstore_<name> in cmt (the engine copies every string). */
void *flatstore_cmt_metric(void *cmt, int gauge, const char *name, const char *help, int nkeys, char **keys)
{
    cmt_create_fn create;
    if (!cmt || !flatstore_cmt_resolve()) return NULL;
    create = gauge ? cmtf.gauge_create : cmtf.counter_create;
    return create(cmt, "flatstore", "", (char *)name, (char *)help, nkeys, keys);
}

/* One series: the metric and its label values, copied, so that an add or a set is one call
 * with nothing to convert. */
struct flatstore_series {
    void *metric;
    int gauge;
    int n;
    char *vals[];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* flatstore_cmt_series creates the series of metric with the label values, at 0. */
void *flatstore_cmt_series(void *metric, int gauge, int nvals, char **vals)
{
    struct flatstore_series *s;
    int i;
    if (!metric || nvals < 0 || !flatstore_cmt_resolve()) return NULL;
    s = calloc(1, sizeof *s + (size_t)nvals * sizeof(char *));
    if (!s) return NULL;
    s->metric = metric;
    s->gauge = gauge;
    s->n = nvals;
    for (i = 0; i < nvals; i++) {
        if (!(s->vals[i] = strdup(vals[i]))) {
            flatstore_cmt_free(s);
            return NULL;
        }
    }
    if ((gauge ? cmtf.gauge_set : cmtf.counter_set)(metric, now_ns(), 0, s->n, s->vals) != 0) {
        flatstore_cmt_free(s);
        return NULL;
    }
    return s;
}

/* flatstore_cmt_add adds v to a counter's series (cmetrics adds atomically). */
void flatstore_cmt_add(void *series, double v)
{
    struct flatstore_series *s = series;
    if (s && !s->gauge) cmtf.counter_add(s->metric, now_ns(), v, s->n, s->vals);
}

/* flatstore_cmt_set sets a series to v. */
void flatstore_cmt_set(void *series, double v)
{
    struct flatstore_series *s = series;
    if (s) (s->gauge ? cmtf.gauge_set : cmtf.counter_set)(s->metric, now_ns(), v, s->n, s->vals);
}

void flatstore_cmt_free(void *series)
{
    struct flatstore_series *s = series;
    int i;
    if (!s) return;
    for (i = 0; i < s->n; i++) free(s->vals[i]);
    free(s);
}
