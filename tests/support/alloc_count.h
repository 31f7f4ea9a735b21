// Test support: count the allocations nabla makes through its pluggable allocator, for the
// "a steady-state step allocates nothing" tests.
#ifndef NABLA_TEST_ALLOC_COUNT_H
#define NABLA_TEST_ALLOC_COUNT_H

// Installs counting malloc/realloc (free stays free) with nb_set_allocator.
void tc_count_allocs_start(void);
// Allocations (malloc and realloc calls) since the first tc_count_allocs_start.
long tc_allocs(void);
// Restores the default allocator.
void tc_count_allocs_stop(void);

#endif
