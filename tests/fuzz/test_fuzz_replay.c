/* Replays the fuzz targets' inputs through the same functions libFuzzer
 * calls (fuzz/fuzz_*.c): every seed in fuzz/corpus/<target>/ and every
 * input that once crashed or hung a parser, kept in
 * tests/data/fuzz-regressions/<target>/. Each must give 0 or a JB_ERR_*
 * code without crashing, leaking or breaking a checked promise (the
 * targets abort on those; ASan and UBSan watch the ASan build). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "fuzz.h"

struct target {
    const char *name;
    int (*fn)(const uint8_t *data, size_t size);
};

static const struct target targets[] = {
    {"gguf", fuzz_gguf},
    {"tokenizer_load", fuzz_tokenizer_load},
    {"tokenizer_encode", fuzz_tokenizer_encode},
    {"ndjson", fuzz_ndjson},
    {"sse", fuzz_sse},
    {"sensors_parse", fuzz_sensors_parse},
    {"manifest", fuzz_manifest},
    {"csv", fuzz_csv},
    {"grade_extract", fuzz_grade_extract},
    {"ioreport", fuzz_ioreport},
    {"report_load", fuzz_report_load},
    {"report_charts", fuzz_report_charts},
    {"suite", fuzz_suite},
};
#define N_TARGETS (sizeof targets / sizeof targets[0])

/* The file being replayed, for fuzz_replay_fail(). */
static char current[FS_PATH_MAX];

_Noreturn void fuzz_replay_fail(const char *file, int line, const char *msg)
{
    print_error("%s:%d: %s\n  replaying %s\n", file, line, msg, current);
    _fail(file, line);
    abort(); /* _fail does not return */
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every file of dir through t; returns how many there were (0 when
 * the folder does not exist). Files go in name order so a failure is
 * reproducible. */
static size_t replay_dir(const struct target *t, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        assert_non_null(names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char *path = current, err[ERR_LEN];
        snprintf(current, sizeof current, "%s/%s", dir, names[i]);
        struct buf b = {0};
        assert_int_equal(fs_read_file(path, 4u << 20, &b, err), 0);
        /* An exact-size copy: a read past the end is caught by ASan, as
         * under libFuzzer. */
        uint8_t *data = malloc(b.len ? b.len : 1);
        assert_non_null(data);
        if (b.len)
            memcpy(data, b.data, b.len);
        int rc = t->fn(data, b.len);
        if (!fuzz_rc_known(rc))
            fail_msg("%s: fuzz_%s gave %d", path, t->name, rc);
        free(data);
        buf_free(&b);
        free(names[i]);
    }
    free(names);
    return n;
}

static void test_target(void **state)
{
    const struct target *t = *state;
    char dir[FS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/corpus/%s", JB_FUZZ_DIR, t->name);
    size_t seeds = replay_dir(t, dir);
    if (seeds == 0)
        fail_msg("%s: no seeds (each target needs at least one)", dir);
    snprintf(dir, sizeof dir, "%s/fuzz-regressions/%s", JB_TEST_DATA, t->name);
    size_t kept = replay_dir(t, dir);
    printf("fuzz_%s: %zu seeds, %zu kept crashes replayed\n", t->name, seeds, kept);
}

/* Every folder of kept crashes belongs to a target (a misspelt one would
 * never be replayed). */
static void test_regression_folders(void **state)
{
    (void)state;
    char dir[FS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/fuzz-regressions", JB_TEST_DATA);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t i = 0;
        while (i < N_TARGETS && strcmp(targets[i].name, e->d_name) != 0)
            i++;
        if (i == N_TARGETS)
            fail_msg("%s/%s: no fuzz target of that name", dir, e->d_name);
        n++;
    }
    closedir(d);
    assert_true(n > 0);
}

int main(void)
{
    struct CMUnitTest tests[N_TARGETS + 1];
    for (size_t i = 0; i < N_TARGETS; i++) {
        struct CMUnitTest u = {targets[i].name, test_target, NULL, NULL, (void *)&targets[i]};
        tests[i] = u;
    }
    struct CMUnitTest r = cmocka_unit_test(test_regression_folders);
    tests[N_TARGETS] = r;
    return _cmocka_run_group_tests("fuzz_replay", tests, N_TARGETS + 1, NULL, NULL);
}
