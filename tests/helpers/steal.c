/* steal SIZE N SECONDS: grab up to N hugepages of SIZE bytes from memfds, touching each, for at most SECONDS;
 * print "grabbed K" as each is taken; hold them until killed or the time is up. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    unsigned long size = strtoul(argv[1], 0, 0);
    int max = atoi(argv[2]), secs = atoi(argv[3]), got = 0;
    int flags = MFD_HUGETLB | (__builtin_ctzl(size) << 26 /* MFD_HUGE_SHIFT */);
    int fd = memfd_create("hugerace-steal", flags);
    if (fd < 0 || ftruncate(fd, size * max) < 0) { perror("memfd"); return 1; }
    time_t end = time(0) + secs;
    unsigned long tries = 0;
    while (got < max && time(0) < end) {
        tries++;
        char *p = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, size * got);
        if (p == MAP_FAILED) continue;
        *(volatile char *)p = 1;
        got++;
        printf("grabbed %d after %lu tries\n", got, tries);
        fflush(stdout);
    }
    while (time(0) < end) sleep(1);
    return 0;
}
