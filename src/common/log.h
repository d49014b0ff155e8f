/*
 * log.h — messages for people, on stderr. Colour only on a terminal and
 * never when NO_COLOR is set (https://no-color.org). Progress lines redraw in
 * place on a terminal and are dropped elsewhere, so logs stay clean.
 */
#ifndef JB_COMMON_LOG_H
#define JB_COMMON_LOG_H

#include "common/err.h"

enum log_level { LOG_QUIET = 0, LOG_NORMAL = 1, LOG_VERBOSE = 2 };

void log_set_level(enum log_level level);
int log_stderr_is_tty(void);
int log_color_enabled(void);

void log_error(const char *fmt, ...) JB_PRINTF(1, 2);   /* "joulebench: error: ..." */
void log_warn(const char *fmt, ...) JB_PRINTF(1, 2);    /* "joulebench: warning: ..." */
void log_info(const char *fmt, ...) JB_PRINTF(1, 2);    /* plain line, unless quiet */
void log_verbose(const char *fmt, ...) JB_PRINTF(1, 2); /* only with LOG_VERBOSE */
/* One redrawn status line on a TTY (nothing otherwise); log_progress_done()
 * clears it. The other log functions clear it first. */
void log_progress(const char *fmt, ...) JB_PRINTF(1, 2);
void log_progress_done(void);

#endif
