#include "fuzzer_driver.h"

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*test)(const uint8_t *data, size_t size));

/// The target's test, set once by vfiokit_fuzzer_main before libFuzzer runs.
static int (*target_test)(const uint8_t *data, size_t size);

/// libFuzzer's entry for each input, defined here once for every target: the target's test
/// never sees a null pointer (an empty input comes as a zero-length buffer).
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t empty[1];
    return target_test(data ? data : empty, data ? size : 0);
}

int vfiokit_fuzzer_main(int argc, char **argv, int (*test)(const uint8_t *data, size_t size)) {
    target_test = test;
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
