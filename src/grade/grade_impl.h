/*
 * grade_impl.h — what the grader files share inside src/grade/. Each grader
 * fills a grade_result the caller initialised; specs were checked first.
 */
#ifndef JB_GRADE_IMPL_H
#define JB_GRADE_IMPL_H

#include <jansson.h>

#include "grade/grade.h"

/* Text graders (grade_text.c). */
void grade_exact(const json_t *spec, const char *answer, struct grade_result *r);
void grade_regex(const json_t *spec, const char *answer, struct grade_result *r);
void grade_contains(const json_t *spec, const char *answer, struct grade_result *r);
void grade_numeric(const json_t *spec, const char *answer, struct grade_result *r);
void grade_json(const json_t *spec, const char *answer, struct grade_result *r);
/* Compiles every pattern of a regex spec; err names the field and column. */
int grade_regex_check(const json_t *spec, char *err);

/* Sandboxed tests (grade_code.c). */
void grade_code(const json_t *spec, const char *answer, const struct grade_options *opt,
                struct grade_result *r);

/* LLM judge (judge.c). */
void grade_judge(const json_t *spec, const char *prompt, const char *answer,
                 const struct grade_options *opt, struct grade_result *r);

/* Sets passed/total, graded and score = 10 x passed / total. */
void grade_set_score(struct grade_result *r, int passed, int total);
/* Leaves r ungraded with the reason. */
void grade_skip(struct grade_result *r, const char *fmt, ...) JB_PRINTF(2, 3);
/* Appends to r->detail ("; " between parts), cutting at its size. */
void grade_detail_add(struct grade_result *r, const char *fmt, ...) JB_PRINTF(2, 3);
/* r->extra, created on first use (NULL only when out of memory). */
json_t *grade_extra(struct grade_result *r);
/* A JSON string of s; bytes that are not UTF-8 become '?' (program output
 * and model text may hold anything). */
json_t *grade_json_text(const char *s);
/* A copy of at most max bytes of s, cut at a UTF-8 boundary, with "..." if cut
 * (heap). */
char *grade_clip(const char *s, size_t max);

#endif
