/*
 * null_output.c — the smallest output plugin Fluent Bit's Go proxy can load: it takes
 * every chunk and does nothing. cmd/flatstore-bench runs it through the same host over
 * the same input as flatstore: the baseline the end-to-end figures are measured above,
 * as Fluent Bit's own figures are measured above its null output.
 */
#include <stdlib.h>
struct def { int type; int proxy; int flags; char *name; char *description; int event_type; void *config_map; };
struct ctx { void *remote_context; void *proxy; };
struct plugin { char *name; void *api; void *o_ins; struct ctx *context; };
static int token;
int FLBPluginRegister(void *d) {
    struct def *p = d;
    p->type = 2; p->proxy = 11; p->flags = 0; p->name = "null"; p->description = "null";
    return 0;
}
int FLBPluginInit(void *plugin) { ((struct plugin *) plugin)->context->remote_context = &token; return 1; }
int FLBPluginFlushCtx(void *ctx, void *data, int size, char *tag) { (void) ctx; (void) data; (void) size; (void) tag; return 1; }
int FLBPluginExitCtx(void *ctx) { (void) ctx; return 1; }
void FLBPluginUnregister(void *d) { (void) d; }
