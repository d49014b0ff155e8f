#include "bench/plan.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"

int plan_build(size_t n_models, size_t n_prompts, int reps, int sequential, struct plan_item **out,
               size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!n_models || !n_prompts || reps < 1)
        return JB_ERR_USAGE;
    if (n_models > SIZE_MAX / n_prompts / (size_t)reps / sizeof(struct plan_item))
        return JB_ERR_NOMEM;
    size_t total = n_models * n_prompts * (size_t)reps;
    struct plan_item *items = malloc(total * sizeof *items);
    if (!items)
        return JB_ERR_NOMEM;
    size_t k = 0;
    if (sequential) {
        for (size_t m = 0; m < n_models; m++)
            for (int r = 0; r < reps; r++)
                for (size_t p = 0; p < n_prompts; p++)
                    items[k++] = (struct plan_item){m, p, r};
    } else {
        for (int r = 0; r < reps; r++)
            for (size_t p = 0; p < n_prompts; p++)
                for (size_t j = 0; j < n_models; j++)
                    items[k++] = (struct plan_item){(j + (size_t)r + p) % n_models, p, r};
    }
    *out = items;
    *n = total;
    return 0;
}
