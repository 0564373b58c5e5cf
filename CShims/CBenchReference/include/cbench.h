/* Plain C baselines that VFIOKit's benchmarks compare against. */
#ifndef CBENCH_H
#define CBENCH_H
#endif
