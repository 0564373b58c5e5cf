#ifndef VFIOKIT_FUZZER_DRIVER_H
#define VFIOKIT_FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer's driver (LLVMFuzzerRunDriver) on `test`: a fuzz target's main. `test`
/// gets each input through LLVMFuzzerTestOneInput, which this driver defines, with a non-null
/// pointer.
int vfiokit_fuzzer_main(int argc, char **argv, int (*test)(const uint8_t *data, size_t size));

#endif
