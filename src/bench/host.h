/*
 * host.h — what machine a run ran on, for run.json: hostname, OS, kernel,
 * architecture, CPU model and count, memory. GPUs are added by the runner
 * from the sensors (NVML names and UUIDs).
 */
#ifndef JB_BENCH_HOST_H
#define JB_BENCH_HOST_H

#include <jansson.h>

/* A new JSON object (caller owns it); fields that cannot be read are null. */
json_t *host_describe(void);

#endif
