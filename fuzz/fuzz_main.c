/* libFuzzer's entry point for one target: JB_FUZZ_TARGET names its
 * function (fuzz/CMakeLists.txt builds one executable per target). */
#include "fuzz.h"

#ifndef JB_FUZZ_TARGET
#error JB_FUZZ_TARGET must name the target function
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)JB_FUZZ_TARGET(data, size);
    return 0;
}
