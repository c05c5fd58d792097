/*
 * cmt.h — the host's stand-in for the engine's cmetrics contexts: each output instance owns
 * one (struct flb_api's output_get_cmt_instance hands it to the plugin), and the host exports
 * cmt_counter_create, cmt_counter_add, cmt_counter_set, cmt_gauge_create and cmt_gauge_set
 * with the engine's signatures (lib/cmetrics/include/cmetrics/cmt_counter.h, cmt_gauge.h),
 * so that a plugin finds them with dlsym(RTLD_DEFAULT) as it finds the engine's (the host is
 * linked with -rdynamic).
 */
#ifndef FLBHOST_CMT_H
#define FLBHOST_CMT_H

#include <stdint.h>
#include <stdio.h>

struct cmt;

struct cmt *host_cmt_new(void);
void host_cmt_free(struct cmt *cmt);
/* host_cmt_open marks whether the plugin's Init is running (series are expected then). */
void host_cmt_open(struct cmt *cmt, int init);
/* host_cmt_write prints the contexts as the engine's /api/v2/metrics/prometheus does: each
 * metric once (# HELP, # TYPE), the series of every context under it; a series two contexts
 * both hold is printed once, with the later context's value (as cmt_cat merges them). */
void host_cmt_write(struct cmt **cmts, int n, FILE *out);

#endif
