/* A run directory read back by the report layer: the input is run.json,
 * requests.jsonl and timeline.csv separated by NUL bytes (a missing part
 * is a missing file: one part is run.json alone with an empty
 * requests.jsonl, two parts leave timeline.csv out). report_load() has no
 * pure form (it reads a folder), so the parts are written to a private
 * temporary folder and read from there, then everything the report
 * computes and writes from them (summary.md, metrics.csv, responses.csv,
 * the summary JSON) is built in memory; fuzz_report_charts also draws the
 * charts. A run directory may come from an older or newer joulebench, or
 * be torn by a crash: none of that may crash the report. */
#include "fuzz.h"

#include <dirent.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "report/rundata.h"
#include "report/writers.h"

static char dir[FS_PATH_MAX];

/* Removes the folder and what the target wrote (files only, in two
 * levels: the parts, and out/ with the charts). */
static void rm_files(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    char p[FS_PATH_MAX + 300];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (unlink(p) != 0) {
            rm_files(p);
            rmdir(p);
        }
    }
    closedir(d);
}

static void drop_dir(void)
{
    rm_files(dir);
    rmdir(dir);
}

/* A folder of this process's own: in /dev/shm when there is one, so the
 * files stay in memory. */
static const char *run_dir(void)
{
    if (dir[0])
        return dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : fs_env_or("TMPDIR", "/tmp");
    snprintf(dir, sizeof dir, "%s/jb-fuzz-report-XXXXXX", base);
    if (!mkdtemp(dir))
        fuzz_fail("mkdtemp %s failed", dir);
    atexit(drop_dir);
    return dir;
}

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[FS_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!p) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        fuzz_fail("cannot write %s", path);
}

/* Both report targets: charts 1 also draws the charts. */
static int report_run(const uint8_t *data, size_t size, int charts)
{
    run_dir();
    const uint8_t *part[3] = {data, NULL, NULL};
    size_t len[3] = {size, 0, 0};
    for (int k = 0; k < 2; k++) {
        const uint8_t *z = part[k] ? memchr(part[k], 0, len[k]) : NULL;
        if (!z)
            break;
        part[k + 1] = z + 1;
        len[k + 1] = len[k] - (size_t)(z + 1 - part[k]);
        len[k] = (size_t)(z - part[k]);
    }
    if (!part[1]) {
        part[1] = (const uint8_t *)"";
        len[1] = 0;
    }
    put("run.json", part[0], len[0]);
    put("requests.jsonl", part[1], len[1]);
    put("timeline.csv", part[2], len[2]);

    struct report_run run;
    char err[ERR_LEN] = "";
    int rc = report_load(dir, 1, &run, err);
    if (rc) {
        if (!err[0])
            fuzz_fail("report_load: %d without a message", rc);
        report_run_free(&run);
        return rc;
    }
    struct report_summary s;
    rc = report_compute(&run, &s, err);
    if (rc) {
        report_run_free(&run);
        return rc;
    }
    struct buf md = {0}, metrics = {0}, responses = {0};
    if (report_write_summary_md(&run, &s, &md, NULL) ||
        report_write_metrics_csv(&run, &s, &metrics) ||
        report_write_responses_csv(&run, &responses))
        fuzz_fail("a report writer failed");
    json_t *j = report_json(&run, &s);
    if (!j)
        fuzz_fail("report_json gave NULL");
    char *text = json_dumps(j, JSON_ALLOW_NUL);
    if (!text)
        fuzz_fail("the summary JSON does not serialise");
    free(text);
    json_decref(j);
    if (charts) {
        char out[FS_PATH_MAX + 8];
        snprintf(out, sizeof out, "%s/out", dir);
        if (fs_mkdir_p(out, err) == 0) {
            rc = report_write_charts(&run, &s, out, err);
            if (!fuzz_rc_known(rc))
                fuzz_fail("report_write_charts: %d", rc);
        }
    }
    buf_free(&md);
    buf_free(&metrics);
    buf_free(&responses);
    report_summary_free(&s);
    report_run_free(&run);
    return rc;
}

int fuzz_report_load(const uint8_t *data, size_t size)
{
    return report_run(data, size, 0);
}

/* Slower than the rest (eight files drawn by cairo), so a target of its
 * own. */
int fuzz_report_charts(const uint8_t *data, size_t size)
{
    return report_run(data, size, 1);
}
