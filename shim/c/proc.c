/* lodge-shim's and lodge-exec's reading of /proc (proc.h). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

uint64_t start_time(int pid)
{
	char p[64], b[4096];
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = 0;
	char *s = strrchr(b, ')');
	if (!s)
		return 0;
	s++;
	char *f[24];
	int k = 0;
	for (char *tok = strtok(s, " \n"); tok && k < 24; tok = strtok(NULL, " \n"))
		f[k++] = tok;
	if (k < 20 || f[0][0] == 'Z' || f[0][0] == 'X')
		return 0;
	return strtoull(f[19], NULL, 10);
}
