/*
 * err.h — how errors travel inside joulebench.
 *
 * Functions return 0 or a negative JB_ERR_* code (include/joulebench). The
 * message for people goes into a caller-owned `char err[ERR_LEN]`: it names
 * the thing (file and offset, URL, line and column) and the fix. Only main()
 * turns a code into an exit status (err_exit_code()).
 */
#ifndef JB_COMMON_ERR_H
#define JB_COMMON_ERR_H

#include <stddef.h>
#include "joulebench/joulebench.h"

#define ERR_LEN 512

#if defined(__GNUC__)
#define JB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define JB_PRINTF(f, a)
#endif

/* Writes the message into err (ERR_LEN bytes; NULL is allowed) and returns
 * code, so that `return err_setf(err, JB_ERR_IO, "...", ...);` reads well. */
int err_setf(char *err, int code, const char *fmt, ...) JB_PRINTF(3, 4);
/* Puts "prefix: " in front of the message already in err. */
void err_prefix(char *err, const char *fmt, ...) JB_PRINTF(2, 3);
/* Exit status for a code: 0 ok, 2 bad usage or input, 1 anything else. */
int err_exit_code(int code);

#endif
