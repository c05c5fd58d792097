/*
 * engine.h — the C helpers package main calls. The memory Fluent Bit v5.1.1 shares with a
 * Go output plugin is declared once, in flb_abi.h, which the host includes too.
 */
#ifndef FLATSTORE_ENGINE_H
#define FLATSTORE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "flb_abi.h"

/* The layouts the plugin reads and writes, checked where it uses them (LP64). */
_Static_assert(sizeof(struct flb_abi_config_map) == 104, "config map entries are 104 bytes");
_Static_assert(sizeof(struct flb_api) == 9 * sizeof(void *), "flb_api has nine slots");

void flatstore_set_context(void *plugin, void *ctx);
void flatstore_set_config_map(void *def, void *map);
void *flatstore_plugin_api(void *plugin);
void *flatstore_plugin_ins(void *plugin);
int flatstore_has_logger(void *api);
void flatstore_log(void *api, int level, const char *msg);
int flatstore_log_check(void *api, void *ins, int level);
int flatstore_cmt_resolve(void);
void *flatstore_cmt_context(void *api, void *ins);
void *flatstore_cmt_metric(void *cmt, int gauge, const char *name, const char *help, int nkeys, char **keys);
void *flatstore_cmt_series(void *metric, int gauge, int nvals, char **vals);
void flatstore_cmt_add(void *series, double v);
void flatstore_cmt_set(void *series, double v);
void flatstore_cmt_free(void *series);
int flatstore_instance_name(void *ins, char *name, int name_cap, char *alias, int alias_cap);

#endif
