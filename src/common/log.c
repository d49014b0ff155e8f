#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static enum log_level level = LOG_NORMAL;
static int progress_shown;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(enum log_level l)
{
    level = l;
}

int log_stderr_is_tty(void)
{
    return isatty(STDERR_FILENO);
}

int log_color_enabled(void)
{
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc)
        return 0;
    return log_stderr_is_tty();
}

static void clear_progress(void)
{
    if (progress_shown) {
        fputs("\r\033[K", stderr);
        progress_shown = 0;
    }
}

static void emit(const char *color, const char *tag, const char *fmt, va_list ap) JB_PRINTF(3, 0);
static void emit(const char *color, const char *tag, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&lock);
    clear_progress();
    if (tag) {
        if (log_color_enabled())
            fprintf(stderr, "joulebench: %s%s\033[0m: ", color, tag);
        else
            fprintf(stderr, "joulebench: %s: ", tag);
    }
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&lock);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("\033[1;31m", "error", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    if (level == LOG_QUIET)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit("\033[1;33m", "warning", fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    if (level == LOG_QUIET)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit("", NULL, fmt, ap);
    va_end(ap);
}

void log_verbose(const char *fmt, ...)
{
    if (level < LOG_VERBOSE)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit("", NULL, fmt, ap);
    va_end(ap);
}

void log_progress(const char *fmt, ...)
{
    if (level == LOG_QUIET || !log_stderr_is_tty())
        return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&lock);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    fflush(stderr);
    progress_shown = 1;
    pthread_mutex_unlock(&lock);
    va_end(ap);
}

void log_progress_done(void)
{
    pthread_mutex_lock(&lock);
    clear_progress();
    fflush(stderr);
    pthread_mutex_unlock(&lock);
}
