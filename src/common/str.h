/*
 * str.h — strict string helpers. Numbers from outside (sysfs files, command
 * lines, headers) are parsed with these and never with atoi: a value with
 * trailing junk, a sign where none belongs, or an overflow is an error.
 */
#ifndef JB_COMMON_STR_H
#define JB_COMMON_STR_H

#include <stddef.h>
#include <stdint.h>

/* Decimal unsigned integer. Leading and trailing ASCII white space (sysfs
 * files end in '\n') is allowed; anything else is JB_ERR_FORMAT. len may be
 * (size_t)-1 for a NUL-terminated s. */
int str_to_u64(const char *s, size_t len, uint64_t *out);
int str_to_i64(const char *s, size_t len, int64_t *out);
/* A finite decimal or exponent number ("2.3e-10"); NaN and inf are errors. */
int str_to_double(const char *s, size_t len, double *out);
/* An int within [min, max], for command-line options. */
int str_to_int_range(const char *s, int min, int max, int *out);

/* strlcpy: copies at most size-1 bytes, always terminates; returns strlen(src). */
size_t str_lcpy(char *dst, const char *src, size_t size);
/* Appends like strlcat; returns the length it tried to create. */
size_t str_lcat(char *dst, const char *src, size_t size);
/* Trims ASCII white space at both ends, in place; returns s. */
char *str_trim(char *s);
int str_has_prefix(const char *s, const char *prefix);
int str_has_suffix(const char *s, const char *suffix);
/* malloc'd copy, NULL on out of memory; str_ndup stops at n bytes. */
char *str_dup(const char *s);
char *str_ndup(const char *s, size_t n);
/* 1 if s is valid UTF-8 of length len. */
int str_utf8_valid(const char *s, size_t len);
/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid/truncated. */
size_t str_utf8_seq_len(const char *s, size_t len);
/* Appends s to out with every invalid or truncated UTF-8 sequence replaced
 * by U+FFFD, so text from outside can go into JSON. */
struct buf;
int str_utf8_sanitize(const char *s, size_t len, struct buf *out);

/* Hashes for tables whose keys come from files: FNV-1a from a seed, then
 * a 64-bit finaliser, so every bit of the state reaches the slot bits. A
 * table seeds itself with str_hash_seed(its own address), which a file
 * cannot know, so it cannot pick keys that collide. */
uint64_t str_hash(uint64_t seed, const void *p, size_t n);
uint64_t str_hash_u64(uint64_t seed, uint64_t x);
uint64_t str_hash_seed(const void *where);

#endif
