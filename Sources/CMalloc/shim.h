#ifndef CMalloc_SHIM_H
#define CMalloc_SHIM_H
/// glibc's malloc tuning (mallopt, malloc_trim), which the Glibc module does not import: the daemons
/// cap their arenas and give freed heap back while idle (Sources/hocvu/ProcessMemory.swift).
#include <malloc.h>
#endif
