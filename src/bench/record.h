/*
 * record.h — one request as a requests.jsonl object (docs/results.md), and
 * the line printed for it. Used by `run` and `chat`.
 *
 * Ownership: record_build() returns a new JSON object the caller decrefs;
 * every input is borrowed.
 */
#ifndef JB_BENCH_RECORD_H
#define JB_BENCH_RECORD_H

#include <jansson.h>
#include <stdio.h>

#include "engines/engine.h"
#include "joulebench/joulebench.h"

#define RECORD_SCHEMA 1

struct record_input {
    const char *id;
    const char *model;
    const char *engine;
    const char *prompt_id;
    json_t *tags; /* array or NULL */
    int rep;
    int warmup;
    int load;         /* this request included loading the model */
    double t_run0_s;  /* run start (jb_clock_s), for t_start_s */
    double t_start_s; /* when the window began */
    const char *system;
    const char *prompt;
    const struct engine_result *res;
    struct jb_meter *meter;          /* sensor names */
    const struct jb_energy *total;   /* the request's window; NULL if the meter failed */
    const struct jb_energy *prefill; /* NULL where not measured */
    const struct jb_energy *decode;
    const struct jb_energy *load_e;
    const struct jb_power *baseline; /* NULL without a baseline */
    json_t *grader;                  /* borrowed: the suite's grader spec */
    json_t *grade;                   /* borrowed: the grade object, or NULL */
    double grid_gco2_kwh;            /* NAN: not given */
    double price_kwh;                /* NAN: not given */
};

json_t *record_build(const struct record_input *in);
/* Domains of a measurement as {"cpu": J, ...}: valid, top-level (cores and
 * uncore are inside cpu), in domain order. */
json_t *record_domains_json(const double *domain_v, unsigned valid_mask);
/* Names of the estimated domains among the valid ones, as an array. */
json_t *record_estimated_json(unsigned valid_mask, unsigned estimated_mask);
/* Appends the record and a newline with one write() and flushes it to the
 * kernel, so a crash loses at most the request in flight. */
int record_append(int fd, json_t *rec, char *err);
/* One line for people: tokens, time, TTFT, tokens/s, joules per domain,
 * J/token, with estimated figures marked and a window shorter than a
 * sensor's update period (flag short_window) said to be coarse. */
void record_print(FILE *f, json_t *rec);
/* 1 when the record carries the flag short_window. */
int record_short_window(json_t *rec);
#define RECORD_SHORT_NOTE "(shorter than a sensor's update period: joules coarse)"

#endif
