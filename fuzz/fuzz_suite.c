/* Prompt suites (docs/suites.md): suite_parse() over any bytes. What it
 * accepts must be usable as it promises: every prompt with a non-empty
 * text and an id unique in the suite, tags an array. Graders are checked
 * by the runner before the run starts (grade_spec_check(), as runner.c
 * does), not by the parser: that check runs here on every grader too. */
#include "fuzz.h"

#include <jansson.h>

#include "bench/suite.h"
#include "common/err.h"
#include "grade/grade.h"

int fuzz_suite(const uint8_t *data, size_t size)
{
    struct suite *s = NULL;
    char err[ERR_LEN] = "";
    int rc = suite_parse((const char *)data, size, "fuzz.json", &s, err);
    if (rc) {
        if (s)
            fuzz_fail("suite_parse failed (%d) but gave a suite", rc);
        if (!err[0])
            fuzz_fail("suite_parse: %d without a message", rc);
        return rc;
    }
    if (s->n_prompts == 0 || s->n_prompts > SUITE_MAX_PROMPTS)
        fuzz_fail("a suite of %zu prompts", s->n_prompts);
    for (size_t i = 0; i < s->n_prompts; i++) {
        const struct suite_prompt *p = &s->prompts[i];
        if (!p->id || !p->id[0] || !p->prompt || !p->prompt[0])
            fuzz_fail("prompt %zu: no id or no text", i);
        if (!json_is_array(p->tags))
            fuzz_fail("prompt %zu: tags is not an array", i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(s->prompts[k].id, p->id) == 0)
                fuzz_fail("prompts %zu and %zu share the id \"%s\"", k, i, p->id);
        if (p->grader) {
            int grc = grade_spec_check(p->grader, err);
            if (!fuzz_rc_known(grc) || (grc && !err[0]))
                fuzz_fail("prompt %zu: grade_spec_check gave %d (\"%s\")", i, grc, err);
        }
    }
    suite_free(s);
    return 0;
}
