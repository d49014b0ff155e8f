/*
 * grade.h — a Technical Score (0–10) for a model's answer, from the grader
 * spec of its suite prompt (docs/suites.md):
 *
 *   exact, regex, contains, numeric, json   checks on the text; score = the
 *                                           fraction of checks passed x 10
 *   code     the answer's code run against the prompt's tests in a sandbox
 *            (sandbox.h); score = the fraction of tests passed x 10
 *   judge    an LLM through the engine layer asked for one 1–10 number,
 *            judge.reps times; score = their mean, spread reported
 *
 * A grader that cannot run here (no python3, no judge, the judge's replies
 * are not a number) leaves the answer ungraded with the reason, never 0.
 *
 *     struct grade_result r;
 *     grade_result_init(&r);
 *     rc = grade_answer(spec, prompt, answer, &opt, &r, err);
 *     json_t *g = grade_result_json(&r);   // the record's "grade" object
 *     grade_result_free(&r);
 *
 * Ownership: every struct here is the caller's. grade_result.extra is owned
 * by the result (grade_result_free() releases it); grade_result_json() and
 * grade_judge_identity() return new references the caller decrefs. The judge's
 * engine is borrowed: the caller opens and closes it. Strings passed in are
 * borrowed for the call.
 */
#ifndef JB_GRADE_GRADE_H
#define JB_GRADE_GRADE_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"

struct engine;

/* An LLM judge: an engine and a model on it. */
struct grade_judge {
    struct engine *engine; /* borrowed, already open */
    char model[128];
    char digest[80];    /* from the engine's model_info where it tells, else "" */
    int reps;           /* asks per answer, >= 1 */
    double temperature; /* NAN: 0 for one rep, 0.7 for several (so they can differ) */
    int max_tokens;     /* per reply; 0: 1024 (reasoning models think first) */
};

struct grade_options {
    const struct grade_judge *judge; /* NULL: judge prompts stay ungraded ("no judge") */
    double code_timeout_s;           /* per program run (compile, each test); 0: 10 */
    const char *runner_path;         /* where to look for python3 and cc, colon-separated;
                                        NULL: $PATH, then /usr/local/bin:/usr/bin:/bin */
    unsigned sandbox_disable;        /* SANDBOX_P_* bits not to attempt (tests) */
};

struct grade_result {
    int graded;        /* 1: score is a number; 0: not graded, skipped says why */
    double score;      /* 0..10, NAN when not graded */
    char grader[16];   /* the spec's type */
    int passed, total; /* checks or tests passed / total; judge: replies read / asked */
    char skipped[192]; /* "no python3", "no judge", ... ("" when graded) */
    char detail[1024]; /* for people: the first failure, the judge's verdict */
    json_t *extra;     /* owned; an object with "tests", "sandbox", "judge"..., or NULL */
};

void grade_result_init(struct grade_result *r);
void grade_result_free(struct grade_result *r);

/* Checks a grader object ({"type": ..., ...}) before any run: unknown type,
 * missing or mistyped fields, a regex that does not compile, a code grader
 * without tests. err names the field and the fix. */
int grade_spec_check(const json_t *spec, char *err);

/* Grades answer (the model's text) to prompt under spec. Returns 0 when out
 * holds a result (graded or skipped with a reason), or an error for a spec
 * that grade_spec_check() rejects. */
int grade_answer(const json_t *spec, const char *prompt, const char *answer,
                 const struct grade_options *opt, struct grade_result *out, char *err);

/* The requests.jsonl "grade" object (docs/results.md):
 * {"score", "grader", "passed", "total", "detail", "skipped", "judge", ...}. */
json_t *grade_result_json(const struct grade_result *r);

/* Fills j for a model on an open engine, and asks the engine for the
 * model's digest (left "" when it cannot tell). */
int grade_judge_init(struct grade_judge *j, struct engine *e, const char *model, int reps,
                     char *err);
/* {"engine", "url", "model", "digest"}: recorded with every judge score. */
json_t *grade_judge_identity(const struct grade_judge *j);

/* ---- the pieces, for tests and for other layers ---------------------- */

/* The number an answer gives (docs/suites.md, "numeric"): the last \boxed{}
 * if any, else the first number after the last "answer:" / "answer is",
 * else the last number in the text. how says which rule applied (may be
 * NULL). JB_ERR_NOTFOUND when there is none. */
int grade_extract_number(const char *text, double *value, char *how, size_t how_size);

/* The code in an answer (docs/suites.md, "code"): fenced blocks, preferring
 * those tagged with language; with entry names, the first such block that
 * defines them all; else the longest; with no fence, the whole answer.
 * Returns a heap string (caller frees), NULL when out of memory. */
char *grade_extract_code(const char *answer, const char *language, const json_t *entry);

/* Reads a judge's reply as a score: "8", "Score: 8/10", "**8**", "8.5",
 * "I'd give it 8 out of 10". Returns 0 and the score in [0, 10], or
 * JB_ERR_FORMAT with why (no number, several different ones, out of range). */
int grade_parse_judge_reply(const char *reply, double *score, char *why, size_t why_size);

/* The judge's prompt for one answer (heap, caller frees). */
char *grade_judge_prompt(const json_t *spec, const char *prompt, const char *answer);

/* ---- grading a run directory ----------------------------------------- */

struct grade_run_summary {
    int records;   /* request records read (warm-ups included) */
    int graded;    /* records that got a score */
    int skipped;   /* records with a grader that stayed ungraded */
    int kept;      /* records whose grading failed this time (a judge that did not
                    * answer) and that keep the score they had */
    int bad_lines; /* lines that were not JSON (kept, or the torn last one dropped) */
};

/* Grades every non-warm-up record of dir/requests.jsonl that has a grader
 * (with only_ungraded, only those without a score yet) and rewrites the file
 * atomically. Refuses a run whose run.json says it is still running unless
 * force. Progress goes to stderr. */
int grade_run_dir(const char *dir, const struct grade_options *opt, int only_ungraded, int force,
                  struct grade_run_summary *sum, char *err);

#endif
