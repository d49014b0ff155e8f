/*
 * cmd_sensors.c — `joulebench sensors [--json]`: every energy sensor found,
 * its domain, measured or estimated, readable or not, why, and the fix.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/fs.h"
#include "common/log.h"

static void help(FILE *f)
{
    fprintf(f, "usage: joulebench sensors [--json] [--cpu-watts W]\n\n"
               "Lists the energy sensors of this machine: RAPL through perf and powercap,\n"
               "hwmon (AMD and Intel GPUs, amd_energy), and the CPU-time estimate. For each:\n"
               "its domain (cpu, cores, uncore, dram, gpu, ane, soc, system), whether it is\n"
               "measured or estimated, readable, used in totals, and if not, why and the fix.\n\n"
               "  --json          one JSON object on stdout\n"
               "  --cpu-watts W   full-load CPU power for the CPU-time estimate\n"
               "  -h, --help      this text\n\n"
               "Paths: $JOULEBENCH_SYSFS_ROOT (default /sys), $JOULEBENCH_PROCFS_ROOT (/proc).\n");
}

static const char *status_of(const struct jb_sensor_info *s)
{
    if (s->used)
        return "used";
    return s->readable ? "not used" : "unreadable";
}

static void print_text(struct jb_meter *m)
{
    size_t n = jb_meter_sensor_count(m);
    printf("Energy sensors (sysfs %s, procfs %s)\n\n", fs_env_or("JOULEBENCH_SYSFS_ROOT", "/sys"),
           fs_env_or("JOULEBENCH_PROCFS_ROOT", "/proc"));
    if (n == 0)
        printf("  none found\n");
    else
        printf("  %-28s %-7s %-9s %-10s %s\n", "NAME", "DOMAIN", "KIND", "STATUS", "WHAT");
    unsigned measured = 0, estimated = 0;
    for (size_t i = 0; i < n; i++) {
        const struct jb_sensor_info *s = jb_meter_sensor(m, i);
        char kind[16];
        snprintf(kind, sizeof kind, "%s", s->estimated ? "estimate" : "measured");
        printf("  %-28s %-7s %-9s %-10s %s\n", s->name, jb_domain_name(s->domain), kind,
               status_of(s), s->label);
        if (s->parent >= 0)
            printf("  %-28s %-7s %-9s %-10s inside %s\n", "", "", "", "",
                   jb_meter_sensor(m, (size_t)s->parent)->name);
        if (s->reason[0])
            printf("  %-28s %-7s %-9s %-10s why: %s\n", "", "", "", "", s->reason);
        if (s->fix[0])
            printf("  %-28s %-7s %-9s %-10s fix: %s\n", "", "", "", "", s->fix);
        /* A read dearer than 2 % of the default 20 ms tick: the sampler
         * paces it, and what it costs is worth knowing. */
        if (s->used && s->read_cost_s > 0.0004)
            printf("  %-28s %-7s %-9s %-10s one read costs %.2f ms of CPU: the sampler reads it "
                   "every %.0f ms, window edges every time\n",
                   "", "", "", "", s->read_cost_s * 1e3, s->read_interval_s * 1e3);
        if (s->used && s->parent < 0 && s->domain != JB_DOMAIN_CORES &&
            s->domain != JB_DOMAIN_UNCORE) {
            if (s->estimated)
                estimated |= 1u << s->domain;
            else
                measured |= 1u << s->domain;
        }
    }
    size_t nn = jb_meter_note_count(m);
    if (nn) {
        printf("\nnotes:\n");
        for (size_t i = 0; i < nn; i++)
            printf("  %s\n", jb_meter_note(m, i));
    }
    printf("\n");
    if (!measured && !estimated) {
        printf("No sensor can be read: energy figures will be missing.\n");
        return;
    }
    unsigned all = measured | estimated, sys = 1u << JB_DOMAIN_SYSTEM;
    unsigned counted = jb_domains_in_total(all);
    printf("Totals will count:");
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (counted & (1u << d))
            printf(" %s%s", jb_domain_name((enum jb_domain)d),
                   (estimated & (1u << d)) ? " (estimated)" : "");
    printf("\n");
    if ((all & sys) && !(counted & sys))
        printf("system (the whole platform) is reported beside the total, not added to it.\n");
    if (estimated)
        printf("Estimated figures come from a model, not a sensor: see the fixes above to "
               "measure instead.\n");
}

static json_t *sensor_json(struct jb_meter *m, const struct jb_sensor_info *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "backend", json_string(s->backend));
    json_object_set_new(o, "domain", json_string(jb_domain_name(s->domain)));
    json_object_set_new(o, "kind", json_string(s->kind == JB_SENSOR_POWER ? "power" : "energy"));
    json_object_set_new(o, "estimated", json_boolean(s->estimated));
    json_object_set_new(o, "readable", json_boolean(s->readable));
    json_object_set_new(o, "used", json_boolean(s->used));
    json_object_set_new(o, "parent",
                        s->parent >= 0 ? json_string(jb_meter_sensor(m, (size_t)s->parent)->name)
                                       : json_null());
    json_object_set_new(o, "label", json_string(s->label));
    json_object_set_new(o, "device", json_string(s->device));
    json_object_set_new(o, "reason", json_string(s->reason));
    json_object_set_new(o, "fix", json_string(s->fix));
    json_object_set_new(o, "update_period_s",
                        s->update_period_s > 0 ? json_real(s->update_period_s) : json_null());
    json_object_set_new(o, "max_range_j",
                        s->max_range_j > 0 ? json_real(s->max_range_j) : json_null());
    json_object_set_new(o, "read_cost_s",
                        s->read_cost_s > 0 ? json_real(s->read_cost_s) : json_null());
    json_object_set_new(o, "read_interval_s",
                        s->read_interval_s > 0 ? json_real(s->read_interval_s) : json_null());
    return o;
}

static int print_json(struct jb_meter *m)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < jb_meter_sensor_count(m); i++)
        json_array_append_new(arr, sensor_json(m, jb_meter_sensor(m, i)));
    json_object_set_new(root, "sensors", arr);
    json_t *notes = json_array();
    for (size_t i = 0; i < jb_meter_note_count(m); i++)
        json_array_append_new(notes, json_string(jb_meter_note(m, i)));
    json_object_set_new(root, "notes", notes);
    json_object_set_new(root, "estimated", json_boolean(jb_meter_any_estimated(m)));
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(root);
    return rc ? 1 : 0;
}

int cmd_sensors(int argc, char **argv)
{
    int as_json = 0;
    double cpu_watts = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            as_json = 1;
        } else if (strcmp(a, "--cpu-watts") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("sensors", "--cpu-watts needs a number of watts");
            if (cli_double("sensors", "--cpu-watts", argv[++i], 0.1, 100000, &cpu_watts))
                return 2;
        } else if (strncmp(a, "--cpu-watts=", 12) == 0) {
            if (cli_double("sensors", "--cpu-watts", a + 12, 0.1, 100000, &cpu_watts))
                return 2;
        } else {
            return cli_usage_error("sensors", "unknown argument '%s'", a);
        }
    }
    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    /* The default interval, so that each sensor's pace is what a run would
     * use; a listing never starts the sampler. */
    opt.interval_ms = 0;
    opt.cpu_watts = cpu_watts;
    struct jb_meter *m;
    char err[ERR_LEN];
    int rc = jb_meter_open(&m, &opt, err, sizeof err);
    if (rc) {
        log_error("%s", err);
        return err_exit_code(rc);
    }
    if (cli_drop_root()) {
        jb_meter_close(m);
        return 1;
    }
    int status = 0;
    if (as_json)
        status = print_json(m);
    else
        print_text(m);
    jb_meter_close(m);
    return status;
}
