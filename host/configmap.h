/*
 * configmap.h — a Go plugin's config map, read from FLBPluginRegister's definition, and what
 * Fluent Bit v5.1.1 does with it: check an instance's properties at start-up and in
 * --dry-run, and print it for `-o NAME -h`.
 */
#ifndef FLBHOST_CONFIGMAP_H
#define FLBHOST_CONFIGMAP_H

#include <stdio.h>

#include "props.h"

struct cmap_entry {
    int type;
    char *name;
    char *def_value; /* NULL: no default */
    int flags;
    char *desc;      /* NULL: none */
};

struct cmap {
    int present; /* the plugin registered a map (even an empty one) */
    struct cmap_entry *v;
    size_t n;
};

/* cmap_read copies the entries of a struct flb_config_map[] (NULL: no map). */
void cmap_read(struct cmap *m, const void *config_map);
void cmap_free(struct cmap *m);

/*
 * cmap_defaults is what flb_config_map_create does with the map's defaults for each instance,
 * before any property is looked at: the only place where Fluent Bit v5.1.1 judges a value by
 * its type for a Go output (the values a user sets are checked by name only, at start-up
 * and in --dry-run; flb_config_map_set, which parses them, is never called for a proxy). A
 * boolean default must be one of flb_utils_bool's words (true, on, yes, false, off, no, in
 * any case; not 1 or 0) and a prefixed string may have none; a dynamic string default is
 * expanded, warning about an unset variable. It prints the engine's messages and returns 0,
 * or -1 at the first bad default.
 */
int cmap_defaults(const struct cmap *m);

/*
 * cmap_check is flb_config_map_properties_check for one instance of plugin: every
 * property must name an entry (ignoring case; the whole key, or more than the name of a
 * prefixed entry), and one without the multiple flag may be set once. It prints the
 * engine's messages and returns 0, or -1 at the first bad property.
 */
int cmap_check(const struct cmap *m, const char *plugin, const struct props *ps);

/* cmap_help prints to out what `fluent-bit -o NAME -h` prints on stdout (src/fluent-bit.c
 * help_format_text over src/flb_help.c flb_help_output) for a plugin without the network
 * or TLS flags. It returns -1 for an entry type the engine refuses ("[help] invalid config
 * map type N" on stderr), else 0. */
int cmap_help(const struct cmap *m, const char *name, const char *desc, FILE *out);

#endif
