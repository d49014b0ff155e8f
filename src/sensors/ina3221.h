/*
 * ina3221.h — NVIDIA Jetson power rails: TI INA3221 monitors through hwmon.
 *
 * The mainline ina3221 driver exposes, per monitor, a hwmon folder whose
 * `name` is "ina3221", with three channels: in<N>_label ("VDD_IN",
 * "VDD_CPU_GPU_CV", "VDD_SOC", ...), in<N>_input (bus voltage, mV) and
 * curr<N>_input (current, mA); in<N>_enable is 0 for a channel without a
 * shunt. Each labelled, enabled channel becomes a JB_SENSOR_POWER sensor,
 * power_w = mV × mA / 1e6, which the meter integrates. "NC" (not
 * connected) channels are skipped.
 *
 * Domains: VDD_IN (also 5V_IN, POM_5V_IN) is the whole module, domain
 * system; the other rails are inside it (parent_name). Boards without such
 * a rail (AGX Orin, AGX Xavier) have rails that add up to the module:
 * CPU rails cpu, GPU rails gpu, memory rails dram, combined or other rails
 * (VDD_CPU_GPU_CV, VDD_GPU_SOC, VDD_SOC, VIN_SYS_5V0) soc.
 *
 * Paths resolve under sensor_env.sysfs_root (class/hwmon/hwmon*). The
 * rails are world-readable on Jetson Linux: no root needed.
 *
 * Ownership: probe() allocates the sensors; sensor_ina3221.close() frees
 * one (and closes its files).
 */
#ifndef JB_SENSORS_INA3221_H
#define JB_SENSORS_INA3221_H

#include "sensors/sensor.h"

/* The domain of a rail label, and whether it is the whole module (1) or a
 * part of it (0). Pure, for tests. */
enum jb_domain ina3221_domain(const char *label, int *whole_module);

#endif
