#include "sensors/sensor.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/err.h"

int sensor_set_add(struct sensor_set *set, struct sensor *s)
{
    if (set->n >= JB_MAX_SENSORS)
        return JB_ERR_NOMEM;
    set->items[set->n++] = s;
    return 0;
}

void sensor_set_note(struct sensor_set *set, const char *fmt, ...)
{
    if (set->n_notes >= sizeof set->notes / sizeof set->notes[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(set->notes[set->n_notes++], JB_TEXT_LEN, fmt, ap);
    va_end(ap);
}

void sensor_set_clear(struct sensor_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        set->items[i]->backend->close(set->items[i]);
    set->n = 0;
    set->n_notes = 0;
}
