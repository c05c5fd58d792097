/*
 * log.h — the engine's logger as a plugin and the host see it (src/flb_log.c in v5.1.1).
 */
#ifndef FLBHOST_LOG_H
#define FLBHOST_LOG_H

#include "../plugin/flb_abi.h"

/* The service log level (-log-level, -quiet); FLB_LOG_INFO until set. */
void hostlog_set_level(int level);
int hostlog_level(void);

/* Level names as flb_log_get_level_str reads them; -1 when unknown. */
int hostlog_parse_level(const char *s);

/*
 * hostlog_start is the engine's flb_log_create at engine start: it opens the log file (when
 * path is not NULL; on failure it says so and keeps stderr, as the engine does) and makes
 * the calling thread an engine thread.
 */
void hostlog_start(const char *path);

/* hostlog_engine_thread marks the calling thread as one of the engine's (a flush worker). */
void hostlog_engine_thread(void);

/* The api's log_print slot: flb_log_print. */
void hostlog_print(int type, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * hostlog_engine is the engine's own flb_error/flb_warn/flb_info/flb_debug (flb_log_check):
 * on an engine thread the service level decides; on any other thread (the main thread
 * before the engine starts) error, warn and info are always printed and debug never.
 * FLB_LOG_HELP is always printed (flb_helper).
 */
void hostlog_engine(int type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
