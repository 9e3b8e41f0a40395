/* The program behind valgrind-dhat.json (see make_fixtures.sh): known
 * allocations, so that the reader's totals can be checked exactly.
 * At the global peak: three 1000-byte blocks (leaked), eight 4096-byte
 * buffers and one 16 x 64-byte table; at the end: the three leaked blocks. */
#include <stdlib.h>
#include <string.h>

static void *leaked[3];

static void *buffer(size_t n)
{
    void *p = malloc(n);
    memset(p, 1, n);
    return p;
}

static void build_peak(void)
{
    void *blocks[8];
    for (int i = 0; i < 8; i++)
        blocks[i] = buffer(4096);
    void *table = calloc(16, 64);
    free(table);
    for (int i = 0; i < 8; i++)
        free(blocks[i]);
}

static void leak(void)
{
    for (int i = 0; i < 3; i++)
        leaked[i] = buffer(1000);
}

int main(void)
{
    leak();
    build_peak();
    /* Short-lived: only in the run's totals, never live at a point. */
    char *s = malloc(10);
    s = realloc(s, 100);
    free(s);
    return leaked[0] == NULL;
}
