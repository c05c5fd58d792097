/*
 * engine.h — the memory Fluent Bit v5.1.1 shares with a Go output plugin, as far as
 * flatstore reads or writes it, and the C helpers package main calls.
 */
#ifndef FLATSTORE_ENGINE_H
#define FLATSTORE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* include/fluent-bit/flb_plugin_proxy.h: what FLBPluginRegister fills in. */
struct flatstore_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    void *config_map;
};

/* include/fluent-bit/flb_plugin_proxy.h and proxy/go/go.h */
struct flatstore_proxy_context {
    void *remote_context;
    void *proxy;
};

struct flatstore_go_plugin {
    char *name;
    void *api;
    void *o_ins;
    struct flatstore_proxy_context *context;
};

/* include/fluent-bit/flb_api.h, every slot in the engine's order. */
struct flatstore_api {
    const char *(*output_get_property)(const char *key, void *o_ins);
    const char *(*input_get_property)(const char *key, void *i_ins);
    void *(*output_get_cmt_instance)(void *o_ins);
    void *(*input_get_cmt_instance)(void *i_ins);
    void (*log_print)(int type, const char *file, int line, const char *fmt, ...);
    int (*input_log_check)(void *i_ins, int level);
    int (*output_log_check)(void *o_ins, int level);
    const char *(*custom_get_property)(const char *key, void *c_ins);
    int (*custom_log_check)(void *c_ins, int level);
};

/* include/fluent-bit/flb_config_map.h: one whole entry (the engine walks the array
 * with this stride until an entry whose name is NULL). value and _head are the
 * engine's own and stay zero. */
struct flatstore_config_map {
    int type;
    char *name;
    char *def_value;
    int flags;
    int set_property;
    uintptr_t offset;
    char *desc;
    unsigned char value[40]; /* struct flb_config_map_val */
    unsigned char head[16];  /* struct mk_list */
};

/* The layouts the engine reads, checked where they are declared (LP64). */
_Static_assert(sizeof(struct flatstore_config_map) == 104, "config map entries are 104 bytes");
_Static_assert(sizeof(struct flatstore_api) == 9 * sizeof(void *), "flb_api has nine slots");

/* Config map types (flb_config_map.h). */
#define FLATSTORE_MAP_STR 0
#define FLATSTORE_MAP_INT 2
#define FLATSTORE_MAP_BOOL 3
#define FLATSTORE_MAP_CLIST 30

/* Log types (flb_log.h). */
#define FLATSTORE_LOG_ERROR 1

void flatstore_set_context(void *plugin, void *ctx);
void flatstore_set_config_map(void *def, void *map);
void *flatstore_plugin_api(void *plugin);
void *flatstore_plugin_ins(void *plugin);
int flatstore_has_logger(void *api);
void flatstore_log(void *api, int level, const char *msg);
int flatstore_log_check(void *api, void *ins, int level);
int flatstore_instance_name(void *ins, char *name, int name_cap, char *alias, int alias_cap);

#endif
