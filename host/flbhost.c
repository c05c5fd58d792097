/*
 * flbhost — a small test host that loads a Fluent Bit Go output plugin (.so) and drives it
 * the way Fluent Bit v5.1.1's Go proxy does: the same structures (flb_abi.h), the same
 * order of calls, the engine's property handling, logger, config map checks and messages.
 *
 * Build:  cc -O2 -Wall -Wextra -o build/flbhost host/flbhost.c host/log.c host/env.c \
 *             host/props.c host/configmap.c host/cmt.c -rdynamic -ldl -lpthread
 *         (make build does this)
 *
 * Usage:
 *   flbhost -so FILE [options] [-p key=value ...] [-next -p key=value ...] ...
 *     -so FILE            the plugin .so (required)
 *     -p key=value        a property of the current instance (repeatable); -next starts a new
 *                         instance. As the engine's -p: key and value are trimmed, the key
 *                         lower-cased, a repeated key is kept twice (the lookup finds the first;
 *                         a config map refuses it), and ${VAR} / ${VAR:-default} in the value
 *                         are expanded (from -set, then the environment; an unset one warns
 *                         and expands to ""). A value that expands to "" is absent for the
 *                         plugin. Keys the engine keeps for itself are handled here and never
 *                         reach the plugin's lookup (flb_output_set_property): name, routes,
 *                         match, match_regex, alias, log_level, log_suppress_interval, host,
 *                         port, ipv6, retry_limit, workers, net.*, oauth2*, tls and the tls.*
 *                         keys Fluent Bit knows, storage.total_limit_size. match_regex, alias,
 *                         log_level, log_suppress_interval, ipv6, tls*, workers and
 *                         storage.total_limit_size with an empty value are plain properties, as
 *                         in the engine. alias sets the instance's alias; log_level (off, error,
 *                         warn, info, debug, trace) its level; workers N its flush threads;
 *                         retry_limit (N, no_limits, false, off, no_retries) its resend limit;
 *                         an invalid log_level, or tls on, fails start-up.
 *     -set KEY=VALUE      a variable for ${KEY}, as the classic format's @SET (repeatable)
 *     -in FILE|-          raw msgpack stream (concatenated records), split into chunks of -chunk
 *                         records; bytes that do not parse are appended to the last chunk
 *     -in-chunks FILE|-   framed chunks: repeated [u32 big-endian length][bytes]; each frame is
 *                         sent as one chunk exactly as is (empty frames are skipped)
 *     -chunk N            records per chunk for -in (default 1000)
 *     -tag TAG            tag of every chunk (default "flatstore.test")
 *     -workers N          flush threads per instance (default 0 = serial on the main thread);
 *                         `-p workers=N` overrides it per instance
 *     -retry-max N        resends of a chunk answered RETRY (default 50; `-p retry_limit`
 *                         overrides it per instance); then it is dropped
 *     -retry-wait-ms N    wait before a resend (default 20)
 *     -chunk-delay-us N   sleep this long after each flush (to stretch a run)
 *     -gate FILE          gates in the input, for a test that must act between chunks without
 *                         racing the host: before the first flush of a gated chunk, print
 *                         "flbhost: at the gate of chunk N" on stderr and wait until FILE holds
 *                         at least n bytes, n being the gate's number from 1 (at most 120 s);
 *                         the test appends one byte for each gate it opens
 *     -gate-chunk K       the first gated chunk (0-based, in input order; default 1)
 *     -gate-every M       and every M-th chunk after it (default 0: only K)
 *     -exit-after-ms N    after N ms (per generation) stop: no new flush starts, the flushes in
 *                         flight finish, then ExitCtx runs for every instance (as Fluent Bit
 *                         joins worker threads before the exit callback); chunks never taken
 *                         are reported as "unsent" (not an error); a chunk whose resend is cut
 *                         off is dropped (an error)
 *     -reload N           after the run, N times: ExitCtx all, Unregister, PreRegister(1),
 *                         Register, Init every instance again, send the whole input again
 *     -hold-ms N          after all input is flushed, wait N ms before exiting, or until a
 *                         SIGUSR1 comes (at any time from the start; a test sends it when it has
 *                         done what needed the process, so that a generous N costs nothing)
 *     -metrics FILE       append the instances' metrics contexts (what the plugin registered
 *                         through output_get_cmt_instance, cmt.c) to FILE in the Prometheus
 *                         text format of the engine's /api/v2/metrics/prometheus: once after
 *                         each generation's start-up, before its first chunk, under the line
 *                         "# flbhost: start-up", and once before the exit (after -hold-ms)
 *                         under "# flbhost: exit"
 *     -no-cmt             output_get_cmt_instance hands NULL, as an engine built without
 *                         metrics (FLB_HAVE_METRICS off) does
 *     -log-level LEVEL    the service log level: off, error, warn, info (default), debug, trace
 *     -quiet              Fluent Bit's -q: the service log level off (a later -log-level wins)
 *     -log-file FILE      the engine's log file (service Log_File): opened at engine start; the
 *                         engine's threads log there, other threads (the plugin's own) to stderr
 *     -dry-run            Fluent Bit's --dry-run: after Register, check every instance's
 *                         properties against the plugin's config map; print "configuration test
 *                         is successful" and exit 0, or the engine's errors and exit 1
 *     -help-plugin        print the plugin's help as `fluent-bit -o NAME -h` does and exit 0
 *                         (nothing when the plugin registered no config map)
 *     -daemon             Fluent Bit's `Daemon On`: fork after Register and before the
 *                         instances' Init, where the engine forks. The child goes on (umask 0,
 *                         new session, working directory /, as the engine; unlike the engine it
 *                         keeps stdout and stderr); the parent waits for it and exits with its
 *                         exit code (128+signal when a signal ended it)
 *     -q                  no summary
 *     -storage DIR        the stand-in for Fluent Bit's filesystem storage (storage.type
 *                         filesystem), for crash tests. One instance and no -reload. Before a
 *                         chunk of the input is first handed to the plugin it is written to
 *                         DIR/NNNNNNNNNN.chunk (NNNNNNNNNN: its index in the input, from 0),
 *                         fsync'd and renamed into place, and DIR/input.pos (how many input
 *                         chunks were taken) is updated the same way. The chunk's file is
 *                         deleted only when the plugin answered FLB_OK, or ERROR, or the retry
 *                         limit gave the chunk up; a chunk cut off by a stop keeps its file. At
 *                         start the chunk files in DIR are replayed first, in index order, then
 *                         the input goes on after max(input.pos, last chunk file + 1): the
 *                         input must be the same file at every start (as tail's DB assumes),
 *                         and the input side never hands a chunk twice. So a SIGKILL between
 *                         the plugin's write and the deletion replays the chunk, as the engine
 *                         does. With -storage, SIGTERM stops the host as -exit-after-ms does
 *                         (no new flush, the ones in flight finish, ExitCtx), as the engine's
 *                         graceful shutdown; the chunks left keep their files
 *     -retry-defer        a chunk answered RETRY goes to the back of the queue and the chunks
 *                         after it are flushed before its resend (as the engine's scheduler
 *                         retries later and flushes other chunks meanwhile), instead of being
 *                         resent at once; -retry-wait-ms is the least wait before the resend.
 *                         Serial instances only (-workers 0)
 *
 * Start-up, as the engine: Register once (the plugin's config map read from its definition),
 * properties set on every instance; then per instance in order: its log level (the service
 * level unless set), the property check against the config map when there is one (an unknown
 * or repeated key: the engine's messages, no Init, start-up fails), then FLBPluginInit.
 * Engine messages are printed as the engine prints them (see log.c): flbhost's own messages
 * start with "flbhost:".
 *
 * The plugin gets o_ins = the instance, laid out as the engine's struct flb_output_instance up
 * to alias (flb_abi.h): on x86_64 name ("flatstore.<id>", NUL padded) at offset 96 and the
 * alias pointer at 128; id counts the instances from 0. The api table is struct flb_api with
 * output_get_property, output_get_cmt_instance, log_print and output_log_check set and the
 * other slots NULL. Each instance has its own metrics context, made before its Init at each
 * start-up, and the host exports the engine's cmt_counter_create, cmt_counter_add,
 * cmt_counter_set, cmt_gauge_create and cmt_gauge_set (cmt.c; linked with -rdynamic).
 *
 * Every chunk goes to every instance (Match is kept, not applied). Output (unless -q), one
 * JSON line on stdout:
 *   {"instances":[{"name":"flatstore.0","chunks":N,"records":N,"ok_chunks":N,"ok_records":N,
 *     "retries":N,"errors":N,"dropped_chunks":N,"dropped_records":N,"unsent_chunks":N}],
 *    "wall_s":F,"flush_wall_s":F,"flush_cpu_s":F,"cpu_user_s":F,"cpu_sys_s":F,"max_rss_kb":N}
 * flush_wall_s is the time spent flushing (all generations), without loading the input;
 * flush_cpu_s the whole process's CPU time (every thread) over those same spans.
 * chunks = ok_chunks + errors + dropped_chunks (chunks whose first flush started); retries counts
 * RETRY answers; sums over all generations.
 *
 * Exit code: 0 every Init succeeded and every chunk ended OK (-dry-run, -help-plugin: the
 * check passed); 1 start-up failed (dlopen, Register, a property, the config map check or an
 * Init); 2 some chunk ended ERROR or was dropped; 64 usage or input error.
 *
 * The strings the plugin puts into the registration (name, description, config map) belong
 * to the plugin (fluent-bit-go frees them in FLBPluginUnregister). A Go library is never
 * dlclose'd.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmt.h"
#include "configmap.h"
#include "env.h"
#include "../plugin/flb_abi.h"
#include "log.h"
#include "props.h"

#define EXIT_INIT 1
#define EXIT_CHUNK 2
#define EXIT_USAGE 64

typedef int (*fn_preregister)(int);
typedef int (*fn_register)(void *);
typedef int (*fn_init)(void *);
/* As the engine's Go proxy calls them (src/proxy/go/go.h: cb_flush, cb_flush_ctx). */
typedef int (*fn_flush)(const void *, size_t, const char *);
typedef int (*fn_flush_ctx)(void *, const void *, size_t, char *);
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

/* cpu_s is the CPU time of the whole process so far (user and system). */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
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


/* ---- instances ---- */

struct stats {
    unsigned long long chunks, records, ok_chunks, ok_records, retries, errors, dropped_chunks,
        dropped_records, unsent_chunks;
};

struct chunk {
    const uint8_t *data;
    size_t len;
    size_t records;
    long long input_idx; /* its index in the input; -1: replayed from -storage */
    long long stored;    /* -storage: the index in its chunk file's name; -1: not stored */
    uint8_t *owned;      /* data read from a chunk file, freed with the host */
};

struct host;

/* A -p key=value as given, set on the instance at each start-up. */
struct raw_prop {
    char *key, *value;
};

struct instance {
    /* What the plugin sees through o_ins: the engine's layout up to alias. Must be first. */
    struct flb_abi_output_instance_head head;

    struct raw_prop *raw; /* the -p options of this instance, in order */
    size_t nraw;

    /* set from the properties at each start-up */
    struct props props; /* what output_get_property sees */
    int workers;        /* -1: the global -workers */
    long long retry_limit; /* resends allowed; -1 unlimited */
    char *match, *match_regex;

    struct flb_plugin_proxy_context ctx;
    int exited;
    struct cmt *cmt; /* its metrics context (cmt.c): a new one at each start-up, as the engine's */

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
    double flush_cpu;  /* the process's CPU seconds in run_generation, summed */
    /* options */
    const char *program; /* argv[0], for the engine's "try the command" hint */
    const char *so_path;
    const char *in_path;
    const char *in_chunks_path;
    const char *log_file;
    const char *metrics_path; /* -metrics FILE */
    int no_cmt;               /* -no-cmt */
    long long chunk_records;
    const char *tag;
    long long workers;
    long long retry_max;
    long long retry_wait_ms;
    long long chunk_delay_us;
    const char *gate_file; /* -gate FILE */
    long long gate_chunk;  /* -gate-chunk K */
    long long gate_every;  /* -gate-every M */
    long long exit_after_ms;
    long long reload;
    long long hold_ms;
    int quiet, dry_run, help_plugin, daemon;
    const char *storage; /* -storage DIR */
    int retry_defer;

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
    struct cmap cmap; /* the config map of the current registration */
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
    /* instance_id() and flb_output_new: ids in order from 0, name "<plugin>.<id>" */
    in->head.id = (int)h->ninst;
    h->ninst++;
    return in;
}

static void instance_reset(struct instance *in)
{
    props_free(&in->props);
    free(in->head.alias);
    free(in->match);
    free(in->match_regex);
    in->head.alias = in->match = in->match_regex = NULL;
}

static void instance_free(struct instance *in)
{
    size_t i;
    instance_reset(in);
    for (i = 0; i < in->nraw; i++) {
        free(in->raw[i].key);
        free(in->raw[i].value);
    }
    free(in->raw);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    pthread_cond_destroy(&in->done_cv);
    free(in->threads);
    host_cmt_free(in->cmt);
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

/* The api's output_get_property: flb_output_get_property over the instance's properties. */
static const char *get_property(const char *key, void *o_ins)
{
    struct instance *in = o_ins;
    if (!in) return NULL;
    return props_get(&in->props, key);
}

/* The api's output_log_check: flb_output_log_check. */
/* flb_output_get_cmt_instance */
static void *output_get_cmt_instance(void *o_ins)
{
    struct instance *in = o_ins;
    return in ? in->cmt : NULL;
}

/* write_metrics appends the instances' metrics to -metrics FILE under a line naming when. */
static void write_metrics(struct host *h, const char *when)
{
    struct cmt **cmts;
    FILE *f;
    size_t i;
    if (!h->metrics_path) return;
    f = fopen(h->metrics_path, "a");
    if (!f) {
        fprintf(stderr, "flbhost: -metrics %s: %s\n", h->metrics_path, strerror(errno));
        return;
    }
    cmts = xcalloc(h->ninst ? h->ninst : 1, sizeof(*cmts));
    for (i = 0; i < h->ninst; i++) cmts[i] = h->inst[i]->cmt;
    fprintf(f, "# flbhost: %s\n", when);
    host_cmt_write(cmts, (int)h->ninst, f);
    free(cmts);
    fclose(f);
}

static int output_log_check(void *o_ins, int level)
{
    struct instance *in = o_ins;
    return in && in->head.log_level >= level;
}

/* flb_utils_bool */
static int flb_bool(const char *v)
{
    if (strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0)
        return 1;
    if (strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0)
        return 0;
    return -1;
}

/* flb_utils_time_to_seconds: atoi, then a d, h or m suffix multiplies. */
static int time_to_seconds(const char *t)
{
    size_t len = strlen(t);
    int v;
    if (len == 0) return 0;
    v = atoi(t);
    if (t[len - 1] == 'D' || t[len - 1] == 'd') v *= 86400;
    if (t[len - 1] == 'H' || t[len - 1] == 'h') v *= 3600;
    else if (t[len - 1] == 'M' || t[len - 1] == 'm') v *= 60;
    return v;
}

static int key_is(const char *key, const char *name) { return strcasecmp(key, name) == 0; }

/* The tls.* keys flb_output_set_property knows (a Linux build with TLS). */
static int known_tls_key(const char *k)
{
    static const char *keys[] = {"tls.verify", "tls.verify_hostname", "tls.debug", "tls.vhost",
                                 "tls.ca_path", "tls.ca_file", "tls.crt_file", "tls.key_file",
                                 "tls.key_passwd", "tls.min_version", "tls.max_version",
                                 "tls.ciphers", "tls.proxy.verify", "tls.proxy.verify_hostname",
                                 "tls.proxy.ca_path", "tls.proxy.ca_file", NULL};
    int i;
    for (i = 0; keys[i]; i++)
        if (key_is(k, keys[i])) return 1;
    return 0;
}

/*
 * set_property is flb_output_set_property: the value's ${VAR} expanded (kept raw for a
 * config map entry marked for dynamic expansion), "" taken as absent, the engine's own keys
 * taken here, every other key appended to the plugin's properties. -1: a value the engine
 * refuses (its message printed).
 */
static int set_property(struct host *h, struct instance *in, const char *k, const char *v)
{
    char *tmp = env_translate(v);
    size_t i;
    if (tmp[0] == '\0') {
        free(tmp);
        tmp = NULL;
    }
    if (key_is(k, "match")) {
        free(in->match);
        in->match = tmp;
    } else if (key_is(k, "match_regex") && tmp) {
        free(in->match_regex);
        in->match_regex = tmp;
    } else if (key_is(k, "alias") && tmp) {
        free(in->head.alias);
        in->head.alias = tmp;
    } else if (key_is(k, "log_level") && tmp) {
        int l = hostlog_parse_level(tmp);
        free(tmp);
        if (l < 0) return -1;
        in->head.log_level = l;
    } else if (key_is(k, "log_suppress_interval") && tmp) {
        in->head.log_suppress_interval = time_to_seconds(tmp);
        free(tmp);
    } else if (key_is(k, "host") || key_is(k, "port") || (key_is(k, "ipv6") && tmp)) {
        free(tmp);
    } else if (key_is(k, "retry_limit")) {
        if (!tmp) {
            in->retry_limit = 1;
        } else if (key_is(tmp, "no_limits") || key_is(tmp, "false") || key_is(tmp, "off")) {
            in->retry_limit = -1;
        } else if (key_is(tmp, "no_retries")) {
            in->retry_limit = 0;
        } else {
            in->retry_limit = atoi(tmp);
            if (in->retry_limit <= 0) {
                hostlog_engine(FLB_LOG_WARN, "[config] invalid retry_limit. set default.");
                in->retry_limit = 1;
            }
        }
        free(tmp);
    } else if ((strncasecmp(k, "net.", 4) == 0 || strncasecmp(k, "oauth2", 6) == 0) && tmp) {
        free(tmp);
    } else if (key_is(k, "tls") && tmp) {
        int on = flb_bool(tmp) == 1;
        free(tmp);
        if (on) { /* a Go plugin registers without FLB_IO_TLS */
            hostlog_engine(FLB_LOG_ERROR, "[config] %s does not support TLS", in->head.name);
            return -1;
        }
    } else if (known_tls_key(k) && (tmp || (!key_is(k, "tls.verify") && !key_is(k, "tls.debug") &&
                                            !key_is(k, "tls.verify_hostname") &&
                                            !key_is(k, "tls.proxy.verify") &&
                                            !key_is(k, "tls.proxy.verify_hostname")))) {
        free(tmp);
    } else if (key_is(k, "storage.total_limit_size") && tmp) {
        free(tmp);
    } else if (key_is(k, "workers") && tmp) {
        in->workers = atoi(tmp);
        if (in->workers < 0) in->workers = 0;
        free(tmp);
        if (in->workers > 256) {
            fprintf(stderr, "flbhost: %s: workers %d: the host runs at most 256\n", in->head.name,
                    in->workers);
            exit(EXIT_USAGE);
        }
    } else {
        for (i = 0; i < h->cmap.n; i++) {
            if (strcasecmp(h->cmap.v[i].name, k) == 0) {
                if (h->cmap.v[i].flags & FLB_CONFIG_MAP_DYNAMIC_ENV) {
                    free(tmp);
                    tmp = xstrdup(v);
                }
                break;
            }
        }
        props_add(&in->props, k, tmp);
    }
    return 0;
}

/* configure sets every instance's properties anew, as the engine does when it reads its
 * configuration (at start and at each reload). -1 when one is refused. */
static int configure(struct host *h)
{
    size_t i, j;
    for (i = 0; i < h->ninst; i++) {
        struct instance *in = h->inst[i];
        instance_reset(in);
        snprintf(in->head.name, sizeof(in->head.name) - 1, "%s.%i", h->def->name, in->head.id);
        in->head.event_type = h->def->event_type ? h->def->event_type : FLB_OUTPUT_LOGS;
        in->head.log_level = -1;
        in->head.log_suppress_interval = -1;
        in->workers = -1;
        in->retry_limit = h->retry_max;
        for (j = 0; j < in->nraw; j++) {
            const char *k = in->raw[j].key;
            /* src/flb_config.c: a section's name picks the plugin; routes is not a property */
            if (key_is(k, "name") || key_is(k, "routes")) continue;
            if (set_property(h, in, k, in->raw[j].value) != 0) {
                hostlog_engine(FLB_LOG_ERROR,
                               "[config] could not configure property '%s' on output plugin "
                               "with section name '%s'",
                               k, h->def->name);
                return -1;
            }
        }
    }
    return 0;
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
    h->chunks[h->nchunks].input_idx = (long long)h->nchunks;
    h->chunks[h->nchunks].stored = -1;
    h->chunks[h->nchunks].owned = NULL;
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
    return 0;
}


/* ---- -storage: chunk files, as Fluent Bit's filesystem storage keeps them ---- */

/* SIGTERM with -storage: stop as at -exit-after-ms (checked where the deadline is). */
static volatile sig_atomic_t term_requested;

static void on_term(int sig)
{
    (void)sig;
    term_requested = 1;
}

/* SIGUSR1: end -hold-ms now (handled from the start: its default would kill).
 * The signal may reach any thread (the plugin's own among them), so the
 * handler wakes the hold through a pipe rather than by interrupting it;
 * the hold sleeps in poll, without waking on its own. */
static volatile sig_atomic_t hold_released;
static int release_pipe[2] = {-1, -1};

static void on_release(int sig)
{
    int saved = errno;
    (void)sig;
    hold_released = 1;
    if (release_pipe[1] >= 0 && write(release_pipe[1], "r", 1) < 0) {
        /* full: the hold is woken already */
    }
    errno = saved;
}

/* hold waits up to ms, or until SIGUSR1 (at once if one came earlier). */
static void hold(long long ms)
{
    double end = now_s() + (double)ms / 1000.0;
    while (!hold_released) {
        double left = end - now_s();
        struct pollfd pfd = {.fd = release_pipe[0], .events = POLLIN};
        if (left <= 0) break;
        if (release_pipe[0] < 0) {
            sleep_us((long long)(left * 1e6));
            break;
        }
        (void)poll(&pfd, 1, (int)(left * 1000.0) + 1);
    }
}

static int stop_due(struct host *h)
{
    return term_requested || (h->deadline > 0 && now_s() >= h->deadline);
}

static void storage_path(const struct host *h, char *buf, size_t n, long long idx)
{
    if (idx < 0) snprintf(buf, n, "%s/input.pos", h->storage);
    else snprintf(buf, n, "%s/%010lld.chunk", h->storage, idx);
}

static void storage_fail(const char *what, const char *path)
{
    fprintf(stderr, "flbhost: -storage: %s %s: %s\n", what, path, strerror(errno));
    exit(70);
}

static void fsync_storage_dir(const struct host *h)
{
    int fd = open(h->storage, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) storage_fail("fsync", h->storage);
    close(fd);
}

/* storage_put writes data to the file of idx (-1: input.pos) durably: a temporary file,
 * fsync, rename into place, fsync of the directory. */
static void storage_put(const struct host *h, long long idx, const void *data, size_t len)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    const uint8_t *p = data;
    int fd;
    storage_path(h, path, sizeof path, idx);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) storage_fail("open", tmp);
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) storage_fail("write", tmp);
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0) storage_fail("fsync", tmp);
    close(fd);
    if (rename(tmp, path) != 0) storage_fail("rename", tmp);
    fsync_storage_dir(h);
}

/* storage_take persists an input chunk before its first flush, then input.pos past it. */
static void storage_take(struct host *h, struct chunk *c)
{
    char pos[32];
    int n;
    if (!h->storage || c->stored >= 0 || c->input_idx < 0) return;
    storage_put(h, c->input_idx, c->data, c->len);
    c->stored = c->input_idx;
    n = snprintf(pos, sizeof pos, "%lld\n", c->input_idx + 1);
    storage_put(h, -1, pos, (size_t)n);
}

/* storage_done deletes the file of a chunk the engine is done with. */
static void storage_done(const struct host *h, const struct chunk *c)
{
    char path[PATH_MAX];
    if (!h->storage || c->stored < 0) return;
    storage_path(h, path, sizeof path, c->stored);
    if (unlink(path) != 0 && errno != ENOENT) storage_fail("unlink", path);
    fsync_storage_dir(h);
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* storage_load puts the chunk files of an earlier run first, in index order, and drops the
 * input chunks an earlier run took already. */
static int storage_load(struct host *h)
{
    DIR *d;
    struct dirent *e;
    long long *idx = NULL, next = 0, v;
    size_t n = 0, i, keep;
    struct chunk *input = h->chunks;
    size_t ninput = h->nchunks;
    char path[PATH_MAX];
    uint8_t *pos;
    size_t poslen;

    if (mkdir(h->storage, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "flbhost: -storage %s: %s\n", h->storage, strerror(errno));
        return -1;
    }
    d = opendir(h->storage);
    if (!d) {
        fprintf(stderr, "flbhost: -storage %s: %s\n", h->storage, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strlen(e->d_name) != 16 || strcmp(e->d_name + 10, ".chunk") != 0) continue;
        errno = 0;
        v = strtoll(e->d_name, &end, 10);
        if (errno || end != e->d_name + 10 || v < 0) continue;
        idx = xrealloc(idx, (n + 1) * sizeof(*idx));
        idx[n++] = v;
    }
    closedir(d);
    qsort(idx, n, sizeof(*idx), cmp_ll);
    storage_path(h, path, sizeof path, -1);
    if (access(path, F_OK) == 0) {
        if (read_all(path, &pos, &poslen)) return -1;
        pos = xrealloc(pos, poslen + 1);
        pos[poslen] = '\0';
        next = atoll((const char *)pos);
        free(pos);
    }
    if (n > 0 && idx[n - 1] + 1 > next) next = idx[n - 1] + 1;

    h->chunks = NULL;
    h->nchunks = 0;
    for (i = 0; i < n; i++) {
        uint8_t *data;
        size_t len;
        storage_path(h, path, sizeof path, idx[i]);
        if (read_all(path, &data, &len)) return -1;
        add_chunk(h, data, len, count_records(data, len));
        h->chunks[h->nchunks - 1].input_idx = -1;
        h->chunks[h->nchunks - 1].stored = idx[i];
        h->chunks[h->nchunks - 1].owned = data;
    }
    if (n > 0 && idx[n - 1] + 1 == next) {
        /* the last chunk file was written but input.pos not yet moved past it: move it now,
         * or once that chunk's file is deleted the next start would take it from the input
         * again */
        char buf[32];
        int k = snprintf(buf, sizeof buf, "%lld\n", next);
        storage_put(h, -1, buf, (size_t)k);
    }
    keep = h->nchunks;
    for (i = (size_t)(next < (long long)ninput ? next : (long long)ninput); i < ninput; i++) {
        add_chunk(h, input[i].data, input[i].len, input[i].records);
        h->chunks[h->nchunks - 1].input_idx = input[i].input_idx;
    }
    fprintf(stderr, "flbhost: -storage %s: %zu chunk(s) to replay, input from chunk %lld of %zu\n",
            h->storage, keep, next, ninput);
    free(input);
    free(idx);
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
    if (in->nthreads == 0 && stop_due(h)) begin_stop(h);
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

/* gate is -gate: before the first flush of a gated chunk, wait for FILE to hold as many bytes
 * as the gate's number. Flush threads wait in turn: none passes a gate not yet opened. */
static void gate(struct host *h, const struct chunk *c)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static long long opened; /* gates passed */
    long long k = c - h->chunks, n;
    double end;
    struct stat st;
    if (!h->gate_file || k < h->gate_chunk) return;
    if (h->gate_every > 0) {
        if ((k - h->gate_chunk) % h->gate_every != 0) return;
        n = (k - h->gate_chunk) / h->gate_every + 1;
    } else {
        if (k != h->gate_chunk) return;
        n = 1;
    }
    pthread_mutex_lock(&mu);
    if (n > opened) {
        fprintf(stderr, "flbhost: at the gate of chunk %lld\n", k);
        end = now_s() + 120;
        while ((stat(h->gate_file, &st) != 0 || st.st_size < n) && now_s() < end) sleep_us(5000);
        opened = n;
    }
    pthread_mutex_unlock(&mu);
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
    gate(h, c);
    if (h->f_flush_ctx) rc = h->f_flush_ctx(in->ctx.remote_context, flush_buf, c->len, tag);
    else rc = h->f_flush(flush_buf, c->len, tag);
    free(tag);
    return rc;
}

enum result { RES_OK, RES_ERROR, RES_DROPPED };

/* finish_chunk counts a chunk's end; with -storage its file goes unless a stop cut it off. */
static void finish_chunk(struct host *h, struct instance *in, const struct chunk *c,
                         enum result result, int retries, int cut)
{
    if (!cut) storage_done(h, c);
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

static void deliver(struct host *h, struct instance *in, const struct chunk *c)
{
    long long attempt;
    enum result result = RES_DROPPED;
    int retries = 0, cut = 0;
    for (attempt = 0;; attempt++) {
        int rc;
        /* the first attempt was counted in flight by the caller */
        if (attempt > 0) {
            sleep_us(h->retry_wait_ms * 1000);
            if (!try_begin(h, in)) {
                result = RES_DROPPED;
                cut = 1;
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
            if (in->retry_limit >= 0 && attempt >= in->retry_limit) {
                result = RES_DROPPED;
                break;
            }
            continue;
        }
        result = RES_ERROR;
        break;
    }
    finish_chunk(h, in, c, result, retries, cut);
}

/* run_deferred is -retry-defer for a serial instance: a FIFO of chunks where a chunk answered
 * RETRY goes to the back, to be resent after the chunks queued behind it had their turn. */
static void run_deferred(struct host *h, struct instance *in)
{
    struct pend {
        size_t idx;
        long long attempt;
        int retries;
        double not_before;
    } *q;
    size_t n = h->nchunks, head = 0, len = n, i;
    q = xcalloc(n, sizeof(*q));
    for (i = 0; i < n; i++) q[i].idx = i;
    while (len > 0) {
        struct pend p = q[head];
        struct chunk *c = &h->chunks[p.idx];
        double wait = p.not_before - now_s();
        int rc;
        if (wait > 0) sleep_us((long long)(wait * 1e6));
        if (!try_begin(h, in)) break;
        head = (head + 1) % n;
        len--;
        if (p.attempt == 0) storage_take(h, c);
        rc = flush_once(h, in, c);
        end_flush(in);
        sleep_us(h->chunk_delay_us);
        if (rc == FLB_OK) {
            finish_chunk(h, in, c, RES_OK, p.retries, 0);
        } else if (rc == FLB_RETRY) {
            p.retries++;
            if (in->retry_limit >= 0 && p.attempt >= in->retry_limit) {
                finish_chunk(h, in, c, RES_DROPPED, p.retries, 0);
                continue;
            }
            p.attempt++;
            p.not_before = now_s() + (double)h->retry_wait_ms / 1000.0;
            q[(head + len) % n] = p;
            len++;
        } else {
            finish_chunk(h, in, c, RES_ERROR, p.retries, 0);
        }
    }
    /* cut off by a stop: a chunk already tried is dropped (its file kept), the rest unsent */
    for (; len > 0; len--, head = (head + 1) % n)
        if (q[head].attempt > 0)
            finish_chunk(h, in, &h->chunks[q[head].idx], RES_DROPPED, q[head].retries, 1);
    free(q);
}

static void *worker_main(void *arg)
{
    struct instance *in = arg;
    struct host *h = in->h;
    hostlog_engine_thread(); /* an output worker thread of the engine */
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
        if (h->deadline > 0 || h->storage) {
            struct timespec ts;
            double left = h->deadline > 0 ? h->deadline - now_s() : 0.05;
            if (h->storage && left > 0.05) left = 0.05; /* look for SIGTERM */
            if (left <= 0 || term_requested) {
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
    double started = now_s(), cpu_started = cpu_s();
    h->stop_started = 0;
    h->deadline = h->exit_after_ms > 0 ? now_s() + (double)h->exit_after_ms / 1000.0 : 0;
    for (i = 0; i < h->ninst; i++) start_workers(h, h->inst[i]);
    if (h->retry_defer) {
        for (i = 0; i < h->ninst; i++)
            if (h->inst[i]->nthreads == 0) run_deferred(h, h->inst[i]);
    }
    for (c = 0; c < h->nchunks && !h->stop_started; c++) {
        for (i = 0; i < h->ninst && !h->stop_started; i++) {
            struct instance *in = h->inst[i];
            if (h->retry_defer && in->nthreads == 0) continue;
            storage_take(h, &h->chunks[c]);
            if (in->nthreads > 0) {
                pthread_mutex_lock(&in->mu);
                in->q_avail++;
                pthread_cond_signal(&in->cv);
                pthread_mutex_unlock(&in->mu);
            } else if (try_begin(h, in)) {
                deliver(h, in, &h->chunks[c]);
            }
        }
        if (stop_due(h)) begin_stop(h);
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
    h->flush_cpu += cpu_s() - cpu_started;
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
    cmap_free(&h->cmap);
    if (h->f_unregister) h->f_unregister(h->def);
    free(h->def);
    h->def = NULL;
}

/* register_plugin is flb_plugin_proxy_register: PreRegister, Register into a calloc'd
 * definition, then the host keeps a copy of the config map it names. */
static int register_plugin(struct host *h, int hot_reload)
{
    int rc;
    if (h->f_preregister && h->f_preregister(hot_reload) == -1) {
        fprintf(stderr, "flbhost: FLBPluginPreRegister failed\n");
        return -1;
    }
    h->def = xcalloc(1, sizeof(*h->def));
    rc = h->f_register(h->def);
    if (rc == -1) {
        fprintf(stderr, "flbhost: FLBPluginRegister failed\n");
        free(h->def);
        h->def = NULL;
        return -1;
    }
    if (h->def->type != FLB_PROXY_OUTPUT_PLUGIN || h->def->proxy != FLB_PROXY_GOLANG ||
        h->def->name == NULL) {
        fprintf(stderr, "flbhost: FLBPluginRegister: bad definition (type=%d proxy=%d name=%s)\n",
                h->def->type, h->def->proxy, h->def->name ? h->def->name : "(null)");
        return -1;
    }
    cmap_read(&h->cmap, h->def->config_map);
    free(h->plugin.name);
    h->plugin.name = xstrdup(h->def->name);
    h->plugin.api = &h->api;
    return 0;
}

/* check_properties is flb_output_plugin_property_check for one instance: its own copy of
 * the config map (flb_config_map_create, which judges the defaults), then the properties. */
static int check_properties(struct host *h, struct instance *in)
{
    if (!h->cmap.present) return 0;
    if (cmap_defaults(&h->cmap)) {
        hostlog_engine(FLB_LOG_ERROR, "[output] error loading config map for '%s' plugin", h->def->name);
        return -1;
    }
    if (cmap_check(&h->cmap, h->def->name, &in->props) == 0) return 0;
    hostlog_engine(FLB_LOG_HELP, "try the command: %s -o %s -h\n", h->program, h->def->name);
    return -1;
}

/* init_instances is flb_output_init_all: per instance in order its level, the property
 * check, then FLBPluginInit with o_ins and context set on the one plugin struct. */
static int init_instances(struct host *h)
{
    size_t i;
    int rc;
    for (i = 0; i < h->ninst; i++) {
        struct instance *in = h->inst[i];
        if (in->head.log_level == -1) in->head.log_level = hostlog_level();
        if (check_properties(h, in)) {
            hostlog_engine(FLB_LOG_ERROR, "[engine] output initialization failed");
            return -1;
        }
        memset(&in->ctx, 0, sizeof(in->ctx));
        in->exited = 0;
        /* flb_output_init_all makes ins->cmt before cb_init; the previous generation's was
         * freed with its instance */
        host_cmt_free(in->cmt);
        in->cmt = h->no_cmt ? NULL : host_cmt_new();
        host_cmt_open(in->cmt, 1);
        h->plugin.o_ins = in;
        h->plugin.context = &in->ctx;
        rc = h->f_init(&h->plugin);
        h->plugin.o_ins = NULL;
        h->plugin.context = NULL;
        host_cmt_open(in->cmt, 0);
        if (rc <= 0) {
            fprintf(stderr, "flbhost: FLBPluginInit failed for instance %s (returned %d)\n",
                    in->head.name, rc);
            hostlog_engine(FLB_LOG_ERROR, "[go proxy]: plugin '%s' failed to initialize",
                           h->plugin.name);
            hostlog_engine(FLB_LOG_ERROR, "[output] could not initialize '%s' plugin", h->def->name);
            hostlog_engine(FLB_LOG_ERROR, "[output] failed to initialize '%s' plugin", h->def->name);
            hostlog_engine(FLB_LOG_ERROR, "[engine] output initialization failed");
            return -1;
        }
    }
    return 0;
}

/* dry_run is what fluent-bit --dry-run does after reading its configuration
 * (flb_reload_property_check_all for outputs). */
static int dry_run(struct host *h)
{
    size_t i;
    for (i = 0; i < h->ninst; i++) {
        if (check_properties(h, h->inst[i])) {
            hostlog_engine(FLB_LOG_ERROR, "[reload] check properties for output plugins is failed");
            return EXIT_INIT;
        }
    }
    fprintf(stderr, "configuration test is successful\n");
    return 0;
}

/*
 * daemonize is flb_utils_set_daemon, where fluent-bit's main calls it: after the
 * configuration is read and the plugins registered, before the engine starts (and so before
 * any FLBPluginInit). Unlike the engine's, the parent waits and passes the child's exit code
 * on, and the child keeps stdout and stderr, so that a test can read both.
 */
static void daemonize(void)
{
    pid_t pid;
    int status;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        hostlog_engine(FLB_LOG_ERROR, "Failed creating to switch to daemon mode (fork failed)");
        exit(EXIT_FAILURE);
    }
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                perror("flbhost: waitpid");
                _exit(70);
            }
        }
        if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
        _exit(WEXITSTATUS(status));
    }
    umask(0);
    setsid();
    if (chdir("/") < 0) {
        hostlog_engine(FLB_LOG_ERROR, "Unable to unmount the inherited filesystem");
        exit(EXIT_FAILURE);
    }
    hostlog_engine(FLB_LOG_INFO, "switching to background mode (PID=%ld)", (long)getpid());
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
               i ? "," : "", h->inst[i]->head.name, s->chunks, s->records, s->ok_chunks, s->ok_records,
               s->retries, s->errors, s->dropped_chunks, s->dropped_records, s->unsent_chunks);
    }
    printf("],\"wall_s\":%.6f,\"flush_wall_s\":%.6f,\"flush_cpu_s\":%.6f,\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,\"max_rss_kb\":%ld}\n",
           wall, h->flush_wall, h->flush_cpu,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, peak_rss_kb(&ru));
    fflush(stdout);
}


static void host_free(struct host *h)
{
    size_t i;
    for (i = 0; i < h->ninst; i++) instance_free(h->inst[i]);
    free(h->inst);
    for (i = 0; i < h->nchunks; i++) free(h->chunks[i].owned);
    free(h->chunks);
    free(h->input);
    free(h->plugin.name);
    cmap_free(&h->cmap);
    free(h->def);
    env_free();
    /* the plugin is not dlclose'd: a Go runtime cannot be unloaded */
}

static void usage(const char *msg)
{
    if (msg) fprintf(stderr, "flbhost: %s\n", msg);
    fputs("usage: flbhost -so FILE [options] [-p key=value ...] [-next -p key=value ...] ...\n"
          "  -so FILE  -p key=value  -next  -set KEY=VALUE  -in FILE|-  -in-chunks FILE|-\n"
          "  -chunk N (1000)  -tag TAG (flatstore.test)  -workers N (0)  -retry-max N (50)\n"
          "  -retry-wait-ms N (20)  -chunk-delay-us N  -gate FILE  -gate-chunk K (1)  -gate-every M\n"
          "  -exit-after-ms N  -reload N  -hold-ms N\n"
          "  -log-level off|error|warn|info|debug|trace (info)  -quiet  -log-file FILE\n"
          "  -dry-run  -help-plugin  -daemon  -q  -storage DIR  -retry-defer  -metrics FILE  -no-cmt\n",
          stderr);
}

/* add_raw records a -p key=value as the engine's -p reads it (set_property in
 * src/fluent-bit.c, flb_cf_section_property_add): key and value trimmed, the key lower-cased. */
static void add_raw(struct instance *in, const char *kv, size_t klen)
{
    const char *v = kv + klen + 1, *ve = v + strlen(v);
    char *k;
    size_t i, ks = 0, ke = klen;
    while (ks < ke && isspace((unsigned char)kv[ks])) ks++;
    while (ke > ks && isspace((unsigned char)kv[ke - 1])) ke--;
    while (*v && isspace((unsigned char)*v)) v++;
    while (ve > v && isspace((unsigned char)ve[-1])) ve--;
    k = xstrndup(kv + ks, ke - ks);
    for (i = 0; k[i]; i++) k[i] = (char)tolower((unsigned char)k[i]);
    in->raw = xrealloc(in->raw, (in->nraw + 1) * sizeof(*in->raw));
    in->raw[in->nraw].key = k;
    in->raw[in->nraw].value = xstrndup(v, (size_t)(ve - v));
    in->nraw++;
}

int main(int argc, char **argv)
{
    struct host h;
    struct instance *cur;
    size_t i;
    int a, rc = 0, failed_init = 0, lvl;
    double t0 = now_s();
    long long v;

    memset(&h, 0, sizeof(h));
    h.program = argv[0];
    h.chunk_records = 1000;
    h.tag = "flatstore.test";
    h.retry_max = 50;
    h.gate_chunk = 1;
    h.retry_wait_ms = 20;
    h.api.output_get_property = get_property;
    h.api.log_print = hostlog_print;
    h.api.output_log_check = output_log_check;
    h.api.output_get_cmt_instance = output_get_cmt_instance;
    cur = instance_new(&h);

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
        } else if (strcmp(o, "-p") == 0 || strcmp(o, "-set") == 0) {
            const char *kv, *eq;
            NEED_ARG();
            kv = argv[++a];
            eq = strchr(kv, '=');
            if (!eq || eq == kv) {
                fprintf(stderr, "flbhost: %s %s: want key=value\n", o, kv);
                usage(NULL);
                rc = EXIT_USAGE;
                goto out;
            }
            if (o[1] == 'p') {
                add_raw(cur, kv, (size_t)(eq - kv));
            } else {
                /* meta_cmd_set: split at the first '=', nothing trimmed */
                char *k = xstrndup(kv, (size_t)(eq - kv));
                env_set(k, eq + 1);
                free(k);
            }
        } else if (strcmp(o, "-next") == 0) {
            cur = instance_new(&h);
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
        } else if (strcmp(o, "-gate") == 0) {
            NEED_ARG();
            h.gate_file = argv[++a];
        } else if (strcmp(o, "-gate-chunk") == 0) {
            NUM_ARG(h.gate_chunk, 0, 1000000000);
        } else if (strcmp(o, "-gate-every") == 0) {
            NUM_ARG(h.gate_every, 0, 1000000000);
        } else if (strcmp(o, "-exit-after-ms") == 0) {
            NUM_ARG(h.exit_after_ms, 0, 86400000);
        } else if (strcmp(o, "-reload") == 0) {
            NUM_ARG(h.reload, 0, 1000);
        } else if (strcmp(o, "-no-cmt") == 0) {
            h.no_cmt = 1;
        } else if (strcmp(o, "-metrics") == 0) {
            NEED_ARG();
            h.metrics_path = argv[++a];
        } else if (strcmp(o, "-hold-ms") == 0) {
            NUM_ARG(h.hold_ms, 0, 86400000);
        } else if (strcmp(o, "-log-level") == 0) {
            NEED_ARG();
            lvl = hostlog_parse_level(argv[a + 1]);
            if (lvl < 0) {
                fprintf(stderr, "flbhost: -log-level %s: want off, error, warn, info, debug or trace\n",
                        argv[a + 1]);
                usage(NULL);
                rc = EXIT_USAGE;
                goto out;
            }
            hostlog_set_level(lvl);
            a++;
        } else if (strcmp(o, "-quiet") == 0) {
            hostlog_set_level(FLB_LOG_OFF);
        } else if (strcmp(o, "-log-file") == 0) {
            NEED_ARG();
            h.log_file = argv[++a];
        } else if (strcmp(o, "-dry-run") == 0) {
            h.dry_run = 1;
        } else if (strcmp(o, "-help-plugin") == 0) {
            h.help_plugin = 1;
        } else if (strcmp(o, "-daemon") == 0) {
            h.daemon = 1;
        } else if (strcmp(o, "-q") == 0) {
            h.quiet = 1;
        } else if (strcmp(o, "-storage") == 0) {
            NEED_ARG();
            h.storage = argv[++a];
        } else if (strcmp(o, "-retry-defer") == 0) {
            h.retry_defer = 1;
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
    if (h.storage && (h.ninst != 1 || h.reload > 0)) {
        usage("-storage takes one instance and no -reload");
        rc = EXIT_USAGE;
        goto out;
    }
    if (load_input(&h) || (h.storage && storage_load(&h))) {
        rc = EXIT_USAGE;
        goto out;
    }
    if (load_plugin(&h)) {
        rc = EXIT_INIT;
        goto out;
    }

    /* fluent-bit's main: the plugin registers as it is loaded (-e or plugins file) */
    if (register_plugin(&h, 0)) {
        unregister(&h);
        rc = EXIT_INIT;
        goto out;
    }
    if (h.help_plugin) {
        if (h.cmap.present && cmap_help(&h.cmap, h.def->name, h.def->description, stdout))
            rc = EXIT_INIT;
        goto out; /* the engine exits from its help without unregistering */
    }
    /* the configuration is read: every instance's properties */
    if (configure(&h)) {
        unregister(&h);
        rc = EXIT_INIT;
        goto out;
    }
    if (h.daemon) daemonize();
    if (h.dry_run) {
        rc = dry_run(&h);
        unregister(&h);
        goto out;
    }

    /* the engine starts: its logger, then the outputs */
    hostlog_start(h.log_file);
    if (pipe2(release_pipe, O_CLOEXEC | O_NONBLOCK) != 0) release_pipe[0] = release_pipe[1] = -1;
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_release;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
    }
    if (h.storage) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_term;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
    }
    for (v = 0; v <= h.reload; v++) {
        if (v > 0) {
            exit_all(&h);
            unregister(&h);
            if (register_plugin(&h, 1) || configure(&h)) {
                unregister(&h);
                failed_init = 1;
                rc = EXIT_INIT;
                break;
            }
        }
        if (init_instances(&h)) {
            unregister(&h);
            failed_init = 1;
            rc = EXIT_INIT;
            break;
        }
        write_metrics(&h, "start-up");
        run_generation(&h);
    }
    if (!failed_init) {
        if (h.hold_ms > 0) hold(h.hold_ms);
        write_metrics(&h, "exit");
        exit_all(&h);
        unregister(&h);
        for (i = 0; i < h.ninst; i++) {
            struct stats *s = &h.inst[i]->st;
            if (s->errors || s->dropped_chunks) rc = EXIT_CHUNK;
        }
    }
    if (!h.quiet) print_summary(&h, now_s() - t0);

out:
    host_free(&h);
    free_flush_buf();
    return rc;
}
