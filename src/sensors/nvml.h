/*
 * nvml.h — NVIDIA GPUs through NVML (libnvidia-ml), opened with dlopen.
 *
 * One sensor per GPU, domain gpu, named "nvml:gpu<index>" in NVML's device
 * order. Volta and newer GPUs expose a cumulative energy counter
 * (nvmlDeviceGetTotalEnergyConsumption, millijoules since the driver was
 * loaded): the sensor is JB_SENSOR_ENERGY with joules_per_unit 1e-3. Older
 * GPUs answer NVML_ERROR_NOT_SUPPORTED there; the sensor then reads
 * nvmlDeviceGetPowerUsage (milliwatts) as JB_SENSOR_POWER and the meter
 * integrates it. The GPU's name, UUID and the driver version go into
 * info.device so run.json can name the hardware.
 *
 * The library is $JOULEBENCH_NVML_LIB (sensor_env.nvml_lib) when given,
 * otherwise libnvidia-ml.so.1, then libnvidia-ml.so. No library means no
 * NVIDIA driver: probe() leaves a note, never an error.
 *
 * Ownership: probe() allocates the sensors; sensor_nvml.close() frees one.
 * The sensors of one probe share the opened library, which is shut down
 * (nvmlShutdown, dlclose) when the last of them is closed. close() must not
 * race another sensor's close() (the meter closes from one thread).
 */
#ifndef JB_SENSORS_NVML_H
#define JB_SENSORS_NVML_H

#include "sensors/sensor.h"

/* NVML refreshes the energy counter and the power reading roughly every
 * 100 ms (tens of ms on recent GPUs); windows shorter than this are flagged
 * by the meter (JB_ENERGY_SHORT). */
#define NVML_UPDATE_PERIOD_S 0.1

#endif
