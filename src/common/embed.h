/*
 * embed.h — data files compiled into the binary by cmake/Embed.cmake (the
 * built-in suites). Tables end with a {0} entry; data is NUL-terminated
 * (size does not count the NUL).
 */
#ifndef JB_COMMON_EMBED_H
#define JB_COMMON_EMBED_H

#include <stddef.h>

struct embedded_file {
    const char *name;
    const unsigned char *data;
    size_t size;
};

const struct embedded_file *embed_find(const struct embedded_file *table, const char *name);

#endif
