#ifndef CSQLite_SHIM_H
#define CSQLite_SHIM_H
#include <sqlite3.h>
/// SQLITE_TRANSIENT is a cast macro Swift cannot import.
static inline void (*CSQLite_TRANSIENT(void))(void *) { return SQLITE_TRANSIENT; }
/// sqlite3_config is variadic, which Swift cannot call. Turns off SQLite's memory statistics, so
/// that an allocation does not take a process-wide mutex (SQLITE_CONFIG_MEMSTATUS; about a tenth of
/// the merge's CPU, BENCHMARKS.md). Only effective before SQLite initializes (the first open);
/// returns SQLITE_MISUSE, and changes nothing, after.
static inline int CSQLite_disableMemoryStatistics(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
#endif
