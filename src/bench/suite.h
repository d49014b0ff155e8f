/*
 * suite.h — prompt suites: the JSON files of docs/suites.md, given by path
 * or by the name of a built-in suite (the JSON files in suites/, compiled into the
 * binary). The parser is a pure function of the bytes; a malformed suite is
 * rejected with the file, line and column (syntax) or the prompt's index
 * and id (content).
 *
 * Ownership: suite_parse()/suite_load() allocate the suite; suite_free()
 * releases it and every string and JSON value in it.
 */
#ifndef JB_BENCH_SUITE_H
#define JB_BENCH_SUITE_H

#include <jansson.h>
#include <stddef.h>

#define SUITE_MAX_PROMPTS 10000
#define SUITE_MAX_BYTES (16u << 20)

struct suite_prompt {
    const char *id; /* unique in the suite; "p1", "p2"... when not given */
    const char *prompt;
    const char *system; /* NULL: the suite default, or none */
    json_t *tags;       /* array of strings (never NULL) */
    int max_tokens;     /* 0: the run's default */
    json_t *grader;     /* object, or NULL when ungraded */
};

struct suite {
    const char *name;
    const char *description;
    const char *source; /* the path, or "built-in:<name>" */
    struct suite_prompt *prompts;
    size_t n_prompts;
    json_t *root; /* owns every string above */
};

int suite_parse(const char *buf, size_t len, const char *source, struct suite **out, char *err);
/* name_or_path: a file path (contains '/' or ends in .json) or a built-in
 * name. */
int suite_load(const char *name_or_path, struct suite **out, char *err);
/* A suite of the given prompt texts (the --prompt option). */
int suite_from_texts(const char *const *texts, size_t n, const char *system, struct suite **out,
                     char *err);
void suite_free(struct suite *s);
/* Names of the built-in suites, NULL-terminated. */
const char *const *suite_builtin_names(void);

#endif
