package fbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakePluginC is a tiny output plugin in C that speaks the Go proxy ABI. It
// logs what the host does to the file named by $FAKE_LOG, one event a line:
//
//	preregister hot=H
//	register zeroed=Z                     (1 when the host passed a zeroed def)
//	init name=N ctx_null=B id=ID          then one "prop id=ID KEY=VALUE" (or =(null))
//	                                      for each key listed in the property "query"
//	init-fail id=ID                       (property fail=1; Init returns 0)
//	flush-start id=ID / flush-end id=ID result=R records=N len=L tag=T
//	flush-noctx ...                       (the variant without FlushCtx)
//	exitctx id=ID calls=C records=R bytes=B sum=S maxinflight=M
//	exit                                  (the variant without ExitCtx)
//	unregister name=N
//
// Properties: id, query, fail=1, result=N (answer N to every flush),
// retry_first=1 (RETRY on the first call of each distinct chunk), sleep_us=N,
// scribble=1 (overwrite the data after reading it, to prove the host resends
// its own copy). Counters (calls, records, bytes, sum of FNV-1a hashes of the
// chunks answered OK) are per context and guarded by a mutex.
const fakePluginC = `
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct flb_plugin_proxy_def { int type; int proxy; int flags; char *name; char *description;
                              int event_type; void *config_map; };
struct flb_api { char *(*get)(char *, void *); };
struct proxy_ctx { void *remote_context; void *proxy; };
struct plugin { char *name; struct flb_api *api; void *o_ins; struct proxy_ctx *context; };

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
    logline("register zeroed=%d", zeroed);
#ifdef BAD_REGISTER
    def->type = 1;
#else
    def->type = 2;
#endif
    def->proxy = 11;
    def->name = strdup("flatstore");
    def->description = strdup("fake plugin");
    return 0;
}

static const char *prop(struct plugin *p, const char *key)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", key);
    return p->api->get(buf, p->o_ins);
}

int FLBPluginInit(void *pv)
{
    struct plugin *p = pv;
    const char *id = prop(p, "id"), *q = prop(p, "query"), *v;
    struct fctx *c;
    if (!id) id = "?";
    logline("init name=%s ctx_null=%d id=%s", p->name, p->context->remote_context == NULL, id);
    if (q) {
        char *dup = strdup(q), *save = NULL, *k;
        for (k = strtok_r(dup, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            const char *val = p->api->get(k, p->o_ins);
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
`

var (
	fakeMu   sync.Mutex
	fakeDir  string
	fakeSOs  = map[string]string{}
	fakeOnce sync.Once
)

// fakeSO compiles the fake plugin with the given -D flags (once per flag set).
func fakeSO(t *testing.T, defines ...string) string {
	t.Helper()
	fakeMu.Lock()
	defer fakeMu.Unlock()
	key := strings.Join(defines, " ")
	if p, ok := fakeSOs[key]; ok {
		return p
	}
	fakeOnce.Do(func() {
		d, err := buildDir()
		if err != nil {
			t.Fatal(err)
		}
		fakeDir = d
	})
	src := filepath.Join(fakeDir, "fake_plugin.c")
	if err := os.WriteFile(src, []byte(fakePluginC), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fakeDir, "fake"+strconv.Itoa(len(fakeSOs))+".so")
	args := []string{"-shared", "-fPIC", "-O2", "-Wall", "-o", out, src, "-lpthread"}
	for _, d := range defines {
		args = append(args, "-D"+d)
	}
	if msg, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
		t.Fatalf("cc fake plugin: %v\n%s", err, msg)
	}
	fakeSOs[key] = out
	return out
}

// fakeLog is the parsed log of one fake-plugin run.
type fakeLog struct {
	lines []string
}

func readFakeLog(t *testing.T, path string) fakeLog {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	AssertLinesTerminated(t, data)
	lines, _ := SplitLines(data)
	return fakeLog{lines: lines}
}

// with returns the lines that start with prefix.
func (l fakeLog) with(prefix string) []string {
	var out []string
	for _, s := range l.lines {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// index returns the position of the first line starting with prefix, or -1.
func (l fakeLog) index(prefix string) int {
	for i, s := range l.lines {
		if strings.HasPrefix(s, prefix) {
			return i
		}
	}
	return -1
}

// fields parses "word k=v k=v" into a map.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line)[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}
