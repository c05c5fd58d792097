/*
 * log.c — what Fluent Bit v5.1.1's flb_log_print writes, written anew.
 *
 * A line is "[YYYY/MM/DD hh:mm:ss.mmm] [LEVEL] message\n": local time with milliseconds,
 * the level word right-aligned in five columns ("error", " warn", " info", "debug",
 * "trace", " help"), the file and line arguments ignored. Colours (bold brackets, a colour
 * per level) only when stderr is a terminal, whatever the destination. The whole line is
 * held in one 4096-byte message as the engine's (a size_t and 4088 characters), so a long
 * message is cut where the engine cuts it.
 *
 * Where a line goes follows the engine too: a thread of the engine (here the main thread
 * once the engine has started, and the flush workers) writes to the log file when one is
 * open, else to stderr; any other thread — one the plugin started, such as a Go runtime
 * thread — has no engine context and writes to stderr even when a log file is open.
 */
#define _GNU_SOURCE
#include "log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MSG_SIZE (4096 - sizeof(size_t)) /* struct log_message's msg */

static int service_level = FLB_LOG_INFO;
static int log_fd = -1;
static __thread int engine_thread;

void hostlog_set_level(int level) { service_level = level; }

int hostlog_level(void) { return service_level; }

/* flb_log_get_level_str */
int hostlog_parse_level(const char *s)
{
    if (strcasecmp(s, "off") == 0) return FLB_LOG_OFF;
    if (strcasecmp(s, "error") == 0) return FLB_LOG_ERROR;
    if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0) return FLB_LOG_WARN;
    if (strcasecmp(s, "info") == 0) return FLB_LOG_INFO;
    if (strcasecmp(s, "debug") == 0) return FLB_LOG_DEBUG;
    if (strcasecmp(s, "trace") == 0) return FLB_LOG_TRACE;
    return -1;
}

void hostlog_start(const char *path)
{
    engine_thread = 1;
    if (path && log_fd < 0) {
        log_fd = open(path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0666);
        if (log_fd < 0) fprintf(stderr, "[log] error opening log file %s. Using stderr.\n", path);
    }
}

void hostlog_engine_thread(void) { engine_thread = 1; }

static const char *type_word(int type)
{
    switch (type) {
    case FLB_LOG_HELP: return "help";
    case FLB_LOG_INFO: return "info";
    case FLB_LOG_WARN: return "warn";
    case FLB_LOG_ERROR: return "error";
    case FLB_LOG_DEBUG: return "debug";
    case FLB_LOG_IDEBUG: return "debug";
    case FLB_LOG_TRACE: return "trace";
    }
    return NULL;
}

static const char *type_colour(int type)
{
    switch (type) {
    case FLB_LOG_HELP: return "\033[96m";
    case FLB_LOG_INFO: return "\033[92m";
    case FLB_LOG_WARN: return "\033[93m";
    case FLB_LOG_ERROR: return "\033[91m";
    case FLB_LOG_DEBUG: return "\033[93m";
    case FLB_LOG_IDEBUG: return "\033[96m";
    case FLB_LOG_TRACE: return "\033[94m";
    }
    return NULL;
}

/* header writes the prefix into buf and returns its length, or -1. */
static int header(char *buf, size_t size, int type, const struct timespec *ts)
{
    const char *colour = type_colour(type), *bold = "\033[1m", *reset = "\033[0m";
    const char *word = type_word(type);
    struct tm tm;
    if (!isatty(STDERR_FILENO)) colour = bold = reset = "";
    if (!localtime_r(&ts->tv_sec, &tm)) return -1;
    /* the engine formats a NULL word with %5s; glibc prints "(null)" */
    return snprintf(buf, size, "%s[%s%i/%02i/%02i %02i:%02i:%02i.%03ld%s]%s [%s%5s%s] ", bold,
                    reset, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec, (long)(ts->tv_nsec / 1000000), bold, reset, colour ? colour : "",
                    word ? word : "(null)", reset);
}

static void vprint(int type, const char *fmt, va_list ap)
{
    char body[MSG_SIZE], msg[MSG_SIZE];
    struct timespec ts;
    int hl;
    size_t room, n;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* the message alone, with the room the engine leaves it after the header */
    hl = header(body, sizeof body, type, &ts);
    if (hl < 0 || (size_t)hl >= sizeof body - 1) return;
    if (vsnprintf(body, (sizeof body - 2) - (size_t)hl, fmt, ap) < 0) return;
    /* then header, message and a newline in one buffer */
    hl = header(msg, sizeof msg - 1, type, &ts);
    if (hl < 0 || (size_t)hl >= sizeof msg - 1) return;
    room = (sizeof msg - 2) - (size_t)hl;
    n = strlen(body);
    if (n > room) n = room;
    memcpy(msg + hl, body, n);
    msg[(size_t)hl + n] = '\n';
    n += (size_t)hl + 1;
    if (engine_thread && log_fd >= 0) {
        if (write(log_fd, msg, n) < 0) {
        }
    } else {
        fwrite(msg, 1, n, stderr);
    }
}

void hostlog_print(int type, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    (void)file;
    (void)line;
    va_start(ap, fmt);
    vprint(type, fmt, ap);
    va_end(ap);
}

void hostlog_engine(int type, const char *fmt, ...)
{
    va_list ap;
    if (type != FLB_LOG_HELP) {
        if (engine_thread ? service_level < type : type > FLB_LOG_INFO) return;
    }
    va_start(ap, fmt);
    vprint(type, fmt, ap);
    va_end(ap);
}
