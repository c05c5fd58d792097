/*
 * env.h — ${VAR} in property values, as Fluent Bit v5.1.1 expands them (src/flb_env.c).
 */
#ifndef FLBHOST_ENV_H
#define FLBHOST_ENV_H

/* env_set defines a variable as the classic format's @SET does; a later one replaces it. */
void env_set(const char *key, const char *value);

/*
 * env_translate returns a malloc'd copy of value with every ${NAME} and ${NAME:-default}
 * replaced, exactly as flb_env_var_translate does (quirks included). A name is looked up
 * among the env_set variables, then in the environment, where an empty value counts as
 * unset. An unset name without a default expands to "" and warns (once per use).
 */
char *env_translate(const char *value);

/* env_translate_quiet is env_translate without the warning (the engine silences it while
 * it expands config map defaults). */
char *env_translate_quiet(const char *value);

void env_free(void);

#endif
