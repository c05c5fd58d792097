/*
 * flb_abi.h — the memory Fluent Bit v5.1.1 shares with a Go output plugin, written out
 * field by field: the one declaration of the engine's ABI in this tree. The plugin
 * (engine.h) reads and writes it as the engine lays it out, and the host (host/) hands a
 * plugin exactly the bytes the engine hands it. Each structure names the engine header it
 * follows; the static assertions pin the x86_64 (LP64) offsets the tests rely on. It lives
 * beside the plugin's Go package so that the go command rebuilds the plugin when it
 * changes; the host includes it from here (Makefile: $(HOST) depends on it).
 */
#ifndef FLB_ABI_H
#define FLB_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Return codes of a flush (include/fluent-bit/flb_output.h). */
#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2

/* flb_plugin_proxy_def.type and .proxy (flb_plugin_proxy.h). */
#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG 11

/* struct flb_output_instance.event_type when the plugin leaves it 0. */
#define FLB_OUTPUT_LOGS 1

/* Log levels and message types (flb_log.h). */
#define FLB_LOG_OFF 0
#define FLB_LOG_ERROR 1
#define FLB_LOG_WARN 2
#define FLB_LOG_INFO 3
#define FLB_LOG_DEBUG 4
#define FLB_LOG_TRACE 5
#define FLB_LOG_HELP 6
#define FLB_LOG_IDEBUG 10

/* Config map entry types and flags (flb_config_map.h). */
#define FLB_CONFIG_MAP_STR 0
#define FLB_CONFIG_MAP_STR_PREFIX 1
#define FLB_CONFIG_MAP_INT 2
#define FLB_CONFIG_MAP_BOOL 3
#define FLB_CONFIG_MAP_DOUBLE 4
#define FLB_CONFIG_MAP_SIZE 5
#define FLB_CONFIG_MAP_TIME 6
#define FLB_CONFIG_MAP_DEPRECATED 7
#define FLB_CONFIG_MAP_CLIST 30
#define FLB_CONFIG_MAP_CLIST_4 34
#define FLB_CONFIG_MAP_SLIST 40
#define FLB_CONFIG_MAP_SLIST_4 44
#define FLB_CONFIG_MAP_VARIANT 50
#define FLB_CONFIG_MAP_MULT 1
#define FLB_CONFIG_MAP_DYNAMIC_ENV 2

/* What FLBPluginRegister fills in (flb_plugin_proxy.h); the engine hands it calloc'd. */
struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    void *config_map; /* struct flb_config_map[], ended by an entry whose name is NULL */
};

/* lib/monkey's struct mk_list. */
struct flb_abi_mk_list {
    struct flb_abi_mk_list *prev, *next;
};

/* lib/monkey's struct mk_event as built on Linux (one definition for every backend). */
struct flb_abi_mk_event {
    int fd;
    int type;
    uint32_t mask;
    uint8_t status;
    void *data;
    int (*handler)(void *data);
    struct flb_abi_mk_list _head;
    struct flb_abi_mk_list _priority_head;
    char priority;
};

/*
 * The first fields of the engine's struct flb_output_instance, up to and including alias,
 * in its order. The host appends its own state after them: a plugin that reads past alias
 * reads host memory, as it would read other engine fields.
 */
struct flb_abi_output_instance_head {
    struct flb_abi_mk_event event;
    void *processor;           /* struct flb_processor *; NULL here */
    int event_type;            /* FLB_OUTPUT_LOGS unless the plugin registered another */
    int id;                    /* instances in order from 0 */
    int log_level;             /* -1 until start-up, then the service level unless set */
    int log_suppress_interval; /* -1 unless set (seconds) */
    char name[32];             /* "flatstore.0", NUL padded */
    char *alias;               /* the alias property, NULL when absent */
};

/* struct flb_config_map_val (flb_config_map.h). */
struct flb_abi_config_map_val {
    union {
        int i_num;
        int boolean;
        double d_num;
        size_t s_num;
        char *str;
        struct flb_abi_mk_list *list;
        void *variant;
    } val;
    char *raw;
    struct flb_abi_mk_list *mult;
    struct flb_abi_mk_list _head;
};

/* struct flb_config_map (flb_config_map.h): the whole entry, so the array's stride is right. */
struct flb_abi_config_map {
    int type;
    char *name;
    char *def_value;
    int flags;
    int set_property;
    uintptr_t offset;
    char *desc;
    struct flb_abi_config_map_val value;
    struct flb_abi_mk_list _head;
};

/* struct flb_api (include/fluent-bit/flb_api.h), every slot in the engine's order. The
 * instance arguments are struct flb_output_instance * and friends in the engine. */
struct flb_api {
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

/* proxy/go/go.h and flb_plugin_proxy.h */
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

#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct flb_abi_mk_event) == 72, "mk_event is 72 bytes on LP64");
_Static_assert(offsetof(struct flb_abi_output_instance_head, name) == 96, "name at 96");
_Static_assert(offsetof(struct flb_abi_output_instance_head, alias) == 128, "alias at 128");
_Static_assert(sizeof(struct flb_abi_config_map) == 104, "config map entries are 104 bytes");
_Static_assert(sizeof(struct flb_api) == 9 * sizeof(void *), "nine slots");
#endif

#endif
