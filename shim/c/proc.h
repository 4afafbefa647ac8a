/* What lodge-shim and lodge-exec read of a process from /proc. */
#ifndef LODGE_SHIM_PROC_H
#define LODGE_SHIM_PROC_H

#include <stdint.h>

/* start_time is /proc/PID/stat's starttime; 0 when the process is gone
 * or a zombie (shim.StartTime): what pins a pid to one process. */
uint64_t start_time(int pid);

#endif
