/*
 * ioreport.h — Apple Silicon energy through IOReport (macOS only; the
 * channel mapping it relies on is ioreport_map.h and builds everywhere).
 *
 * One JB_SENSOR_ENERGY sensor per rail of the "Energy Model" group:
 * "ioreport:cpu", "ioreport:gpu", "ioreport:ane", "ioreport:dram", with the
 * chip name ("Apple M4 Max") in info.device. No sudo is needed.
 *
 * The backend, sensor_ioreport, is declared in sensor.h (macOS only).
 *
 * Ownership: probe() allocates the sensors; sensor_ioreport.close() frees
 * one. They share one IOReport subscription, released with the last of
 * them; close() must not race another sensor's close().
 */
#ifndef JB_SENSORS_IOREPORT_H
#define JB_SENSORS_IOREPORT_H

#include "sensors/sensor.h"

#endif
