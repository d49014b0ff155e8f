/*
 * plan.h — the order in which a run's requests go out. Interleaved (the
 * default) runs every model on a prompt before the next prompt, and rotates
 * which model goes first with each repetition, so slow drift (heat, a
 * background job, a battery) spreads over all models instead of landing on
 * the last one. Sequential runs one model's whole share at a time, for
 * servers that can hold only one model in memory.
 */
#ifndef JB_BENCH_PLAN_H
#define JB_BENCH_PLAN_H

#include <stddef.h>

struct plan_item {
    size_t model;
    size_t prompt;
    int rep;
};

/* *out is a heap array of n_models * n_prompts * reps items (caller frees). */
int plan_build(size_t n_models, size_t n_prompts, int reps, int sequential, struct plan_item **out,
               size_t *n);

#endif
