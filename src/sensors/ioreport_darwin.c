/*
 * ioreport_darwin.c — Apple Silicon energy through IOReport (macOS only).
 *
 * The thin CoreFoundation layer over ioreport_map.c: subscribe to the
 * "Energy Model" group, hand its channel names and units to the plan once,
 * then on each read take one sample and let the plan sum the counted
 * channels into exact nanojoules per rail. One sensor per rail
 * ("ioreport:cpu", "ioreport:gpu", "ioreport:ane", "ioreport:dram"), all
 * JB_SENSOR_ENERGY with joules_per_unit 1e-9. No root is needed.
 *
 * IOReport is a private framework without a public header: the functions
 * below are declared as the library exports them. Window totals come from
 * cumulative samples taken at the window's edges, so the delta helper
 * (IOReportCreateSamplesDelta) is not needed.
 *
 * The sensors of one probe share the subscription; a read within 1 ms of
 * the previous one reuses its sample, so the meter's sweep over the four
 * sensors costs one IOReport sample. Ownership as in sensor.h: close()
 * frees a sensor, the last one frees the shared context.
 */
#ifdef __APPLE__

#include "sensors/ioreport.h"

#include <CoreFoundation/CoreFoundation.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysctl.h>

#include "common/err.h"
#include "common/str.h"
#include "sensors/ioreport_map.h"

struct IOReportSubscriptionCF;
typedef struct IOReportSubscriptionCF *IOReportSubscriptionRef; /* opaque handle */

extern CFDictionaryRef IOReportCopyChannelsInGroup(CFStringRef group, CFStringRef subgroup,
                                                   uint64_t a, uint64_t b, uint64_t c);
extern IOReportSubscriptionRef IOReportCreateSubscription(const void *a,
                                                          CFMutableDictionaryRef desired,
                                                          CFMutableDictionaryRef *subscribed,
                                                          uint64_t channel_id, CFTypeRef b);
extern CFDictionaryRef IOReportCreateSamples(IOReportSubscriptionRef sub,
                                             CFMutableDictionaryRef channels, CFTypeRef a);
extern CFStringRef IOReportChannelGetChannelName(CFDictionaryRef channel);
extern CFStringRef IOReportChannelGetUnitLabel(CFDictionaryRef channel);
extern int64_t IOReportSimpleGetIntegerValue(CFDictionaryRef channel, int32_t index);

#define IOREPORT_REUSE_S 0.001

struct ioreport_ctx {
    int refs;
    IOReportSubscriptionRef sub;
    CFMutableDictionaryRef desired;    /* the channels asked for, and sampled */
    CFMutableDictionaryRef subscribed; /* IOReport's answer; not ours to release */
    struct ioreport_plan *plan;
    CFStringRef *names; /* per channel; retained only where counted */
    int64_t *values;    /* per channel, scratch for one sample */
    double last_t_s;
    uint64_t last_nj[IOREPORT_MAX_RAILS];
    unsigned char last_valid[IOREPORT_MAX_RAILS];
    char last_error[JB_TEXT_LEN];
};

struct ioreport_sensor {
    struct sensor base;
    struct ioreport_ctx *ctx;
    int rail;
};

static void ctx_release(struct ioreport_ctx *c)
{
    if (!c || --c->refs > 0)
        return;
    if (c->names) {
        for (size_t i = 0; i < c->plan->n_channels; i++)
            if (c->names[i])
                CFRelease(c->names[i]);
        free(c->names);
    }
    if (c->sub)
        CFRelease((CFTypeRef)c->sub);
    /* c->subscribed is left alone: whether the caller owns it is not
     * documented anywhere, and an extra release would crash. */
    if (c->desired)
        CFRelease(c->desired);
    free(c->values);
    free(c->plan);
    free(c);
}

static CFArrayRef sample_channels(CFDictionaryRef sample)
{
    if (!sample)
        return NULL;
    const void *v = CFDictionaryGetValue(sample, CFSTR("IOReportChannels"));
    if (!v || CFGetTypeID(v) != CFArrayGetTypeID())
        return NULL;
    return (CFArrayRef)v;
}

static void cf_to_c(CFStringRef s, char *dst, size_t size)
{
    if (!s || !CFStringGetCString(s, dst, (CFIndex)size, kCFStringEncodingUTF8))
        dst[0] = '\0';
}

/* One sample into c->last_nj. Fails if the sample does not have the
 * subscription's channels in the subscription's order. */
static int ctx_sample(struct ioreport_ctx *c)
{
    CFDictionaryRef sample = IOReportCreateSamples(c->sub, c->desired, NULL);
    CFArrayRef arr = sample_channels(sample);
    int rc = 0;
    size_t n = arr ? (size_t)CFArrayGetCount(arr) : 0;
    if (!arr || n != c->plan->n_channels) {
        snprintf(c->last_error, sizeof c->last_error,
                 "IOReport sample has %zu Energy Model channels, the subscription %zu", n,
                 c->plan->n_channels);
        rc = JB_ERR_FORMAT;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        c->values[i] = 0;
        if (c->plan->rail_of[i] < 0)
            continue;
        CFDictionaryRef item = (CFDictionaryRef)CFArrayGetValueAtIndex(arr, (CFIndex)i);
        CFStringRef name = IOReportChannelGetChannelName(item);
        if (!name || CFStringCompare(name, c->names[i], 0) != kCFCompareEqualTo) {
            snprintf(c->last_error, sizeof c->last_error,
                     "IOReport Energy Model channel %zu changed its name", i);
            rc = JB_ERR_FORMAT;
            goto out;
        }
        c->values[i] = IOReportSimpleGetIntegerValue(item, 0);
    }
    ioreport_plan_sum(c->plan, c->values, n, c->last_nj, c->last_valid);
out:
    if (sample)
        CFRelease(sample);
    return rc;
}

static void chip_name(char *dst, size_t size)
{
    size_t len = size;
    if (sysctlbyname("machdep.cpu.brand_string", dst, &len, NULL, 0) != 0 || len == 0)
        str_lcpy(dst, "Apple Silicon", size);
    dst[size - 1] = '\0';
}

/* Subscribes to the Energy Model group and learns its channels from a
 * first sample (names and units in sample order). */
static int ctx_open(struct ioreport_ctx **out, char *why)
{
    struct ioreport_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return JB_ERR_NOMEM;
    c->refs = 1;
    c->plan = calloc(1, sizeof *c->plan);
    if (!c->plan) {
        free(c);
        return JB_ERR_NOMEM;
    }
    int rc = 0;
    CFDictionaryRef group = IOReportCopyChannelsInGroup(CFSTR("Energy Model"), NULL, 0, 0, 0);
    if (!group) {
        str_lcpy(why,
                 "no IOReport \"Energy Model\" group (this Mac has no Apple Silicon energy "
                 "counters)",
                 JB_TEXT_LEN);
        rc = JB_ERR_NOTFOUND;
        goto fail;
    }
    c->desired =
        CFDictionaryCreateMutableCopy(kCFAllocatorDefault, CFDictionaryGetCount(group), group);
    CFRelease(group);
    if (!c->desired) {
        rc = JB_ERR_NOMEM;
        goto fail;
    }
    c->sub = IOReportCreateSubscription(NULL, c->desired, &c->subscribed, 0, NULL);
    if (!c->sub) {
        str_lcpy(why, "IOReport refused a subscription to the \"Energy Model\" group", JB_TEXT_LEN);
        rc = JB_ERR_IO;
        goto fail;
    }

    CFDictionaryRef sample = IOReportCreateSamples(c->sub, c->desired, NULL);
    CFArrayRef arr = sample_channels(sample);
    size_t n = arr ? (size_t)CFArrayGetCount(arr) : 0;
    struct ioreport_channel_desc *desc = calloc(n ? n : 1, sizeof *desc);
    char(*names)[128] = calloc(n ? n : 1, sizeof *names);
    char(*units)[16] = calloc(n ? n : 1, sizeof *units);
    c->names = calloc(n ? n : 1, sizeof *c->names);
    c->values = calloc(n ? n : 1, sizeof *c->values);
    if (!desc || !names || !units || !c->names || !c->values) {
        rc = JB_ERR_NOMEM;
    } else {
        for (size_t i = 0; i < n; i++) {
            CFDictionaryRef item = (CFDictionaryRef)CFArrayGetValueAtIndex(arr, (CFIndex)i);
            cf_to_c(IOReportChannelGetChannelName(item), names[i], sizeof names[i]);
            cf_to_c(IOReportChannelGetUnitLabel(item), units[i], sizeof units[i]);
            desc[i].name = names[i];
            desc[i].unit = str_trim(units[i]);
        }
        char err[ERR_LEN];
        rc = ioreport_plan_build(desc, n, c->plan, err);
        if (rc)
            str_lcpy(why, err, JB_TEXT_LEN);
        for (size_t i = 0; !rc && i < n; i++) {
            if (c->plan->rail_of[i] < 0)
                continue;
            CFDictionaryRef item = (CFDictionaryRef)CFArrayGetValueAtIndex(arr, (CFIndex)i);
            CFStringRef name = IOReportChannelGetChannelName(item);
            c->names[i] = name ? (CFStringRef)CFRetain(name) : NULL;
            if (!c->names[i]) {
                str_lcpy(why, "an IOReport channel has no name", JB_TEXT_LEN);
                rc = JB_ERR_FORMAT;
            }
        }
    }
    free(desc);
    free(names);
    free(units);
    if (sample)
        CFRelease(sample);
    if (rc)
        goto fail;
    if (c->plan->n_rails == 0) {
        str_lcpy(why, "the IOReport \"Energy Model\" group has no CPU, GPU, ANE or DRAM channel",
                 JB_TEXT_LEN);
        rc = JB_ERR_NOTFOUND;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    ctx_release(c);
    return rc;
}

static int ioreport_probe(const struct sensor_env *env, struct sensor_set *set)
{
    (void)env;
    char why[JB_TEXT_LEN] = "";
    struct ioreport_ctx *c = NULL;
    int rc = ctx_open(&c, why);
    if (rc == JB_ERR_NOMEM)
        return rc;
    if (rc) {
        sensor_set_note(set, "ioreport: %s", why);
        return 0;
    }
    char chip[128];
    chip_name(chip, sizeof chip);
    int out = 0;
    for (size_t r = 0; r < c->plan->n_rails; r++) {
        const struct ioreport_rail *rail = &c->plan->rails[r];
        struct ioreport_sensor *s = calloc(1, sizeof *s);
        if (!s) {
            out = JB_ERR_NOMEM;
            break;
        }
        struct jb_sensor_info *info = &s->base.info;
        s->base.backend = &sensor_ioreport;
        s->ctx = c;
        s->rail = (int)r;
        snprintf(info->name, sizeof info->name, "ioreport:%s", rail->name);
        str_lcpy(info->backend, "ioreport", sizeof info->backend);
        const char *w = rail->domain == JB_DOMAIN_CPU   ? "CPU"
                        : rail->domain == JB_DOMAIN_GPU ? "GPU"
                        : rail->domain == JB_DOMAIN_ANE ? "Neural Engine"
                                                        : "DRAM";
        if (rail->domain == JB_DOMAIN_CPU && c->plan->n_detail)
            snprintf(info->label, sizeof info->label,
                     "Apple %s (IOReport %s; %zu cluster and core channels inside it, not added)",
                     w, rail->channels, c->plan->n_detail);
        else
            snprintf(info->label, sizeof info->label, "Apple %s (IOReport %s)", w, rail->channels);
        str_lcpy(info->device, chip, sizeof info->device);
        info->domain = rail->domain;
        info->kind = JB_SENSOR_ENERGY;
        info->parent = -1;
        info->update_period_s = rail->update_period_s;
        s->base.joules_per_unit = 1e-9;
        s->base.raw_range = 0;
        if (!rail->usable)
            str_lcpy(info->reason, rail->reason, sizeof info->reason);
        c->refs++; /* the sensor's; released by close(), also when the set is full */
        sensor_set_add_or_drop(set, &s->base);
    }
    ctx_release(c);
    return out;
}

static int ioreport_read(struct sensor *s, struct sensor_reading *r)
{
    struct ioreport_sensor *is = (struct ioreport_sensor *)s;
    struct ioreport_ctx *c = is->ctx;
    double now = jb_clock_s();
    if (now - c->last_t_s > IOREPORT_REUSE_S || c->last_t_s == 0) {
        int rc = ctx_sample(c);
        if (rc) {
            str_lcpy(s->error, c->last_error, sizeof s->error);
            return rc;
        }
        c->last_t_s = 0.5 * (now + jb_clock_s());
    }
    r->t_s = c->last_t_s;
    r->raw = c->last_nj[is->rail];
    r->power_w = 0;
    if (!c->last_valid[is->rail]) {
        snprintf(s->error, sizeof s->error, "%s: IOReport gave a negative or overflowing count",
                 s->info.name);
        return JB_ERR_FORMAT;
    }
    return 0;
}

static int ioreport_open(struct sensor *s)
{
    struct ioreport_sensor *is = (struct ioreport_sensor *)s;
    s->info.readable = 0;
    if (!is->ctx->plan->rails[is->rail].usable)
        return JB_ERR_UNSUPPORTED; /* reason set by probe */
    struct sensor_reading r;
    int rc = ioreport_read(s, &r);
    if (rc) {
        str_lcpy(s->info.reason, s->error, sizeof s->info.reason);
        return rc;
    }
    s->info.readable = 1;
    return 0;
}

static void ioreport_close(struct sensor *s)
{
    struct ioreport_sensor *is = (struct ioreport_sensor *)s;
    if (!is)
        return;
    ctx_release(is->ctx);
    free(is);
}

static const char *ioreport_last_error(const struct sensor *s)
{
    return s->error;
}

const struct sensor_backend sensor_ioreport = {
    .name = "ioreport",
    .probe = ioreport_probe,
    .open = ioreport_open,
    .read = ioreport_read,
    .close = ioreport_close,
    .last_error = ioreport_last_error,
};

#endif /* __APPLE__ */
