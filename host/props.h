/*
 * props.h — an instance's properties as the engine keeps them (struct flb_kv in a list):
 * in the order set, a repeated key kept twice, the value NULL when it expanded to "".
 */
#ifndef FLBHOST_PROPS_H
#define FLBHOST_PROPS_H

#include <stddef.h>

struct prop {
    char *key;
    char *value; /* NULL: empty */
};

struct props {
    struct prop *v;
    size_t n, cap;
};

/* props_add appends key (copied) with value (taken over; may be NULL). */
void props_add(struct props *ps, const char *key, char *value);

/* props_get is flb_kv_get_key_value: the first key equal to key ignoring case and of the
 * same length; its value, which is NULL when empty; NULL when absent. */
const char *props_get(const struct props *ps, const char *key);

void props_free(struct props *ps);

#endif
