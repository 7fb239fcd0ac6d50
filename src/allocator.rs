//! The process's allocator: mimalloc instead of glibc's malloc.

/// mimalloc instead of glibc's malloc: allocation and freeing were a tenth of the server's samples under
/// ingestion (per-request buffers, freed on the writer thread that did not make them), and consented
/// ingestion gained about a seventh with it (BENCHMARKS.md). Declared in the library so that the binary, the
/// benchmark and the tests run on the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc 2's `mi_option_purge_delay` (its place in `mi_option_e`; libmimalloc-sys names no constant for
/// it). A test checks that the option at this place has that option's default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Has the allocator return freed pages to the system at once rather than 10 ms later: mimalloc purges
/// late only on a thread's next allocation, so an idle server kept what its start-up freed (36 MB resident
/// instead of 17). Call first thing in `main`.
pub fn tune() {
    // SAFETY: sets an integer option; mimalloc reads options atomically whenever it purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_where_tune_sets_it() {
        // mimalloc's documented default for purge_delay is 10 (ms); the options beside it default to 1
        // (eager_commit_delay) and 0 (use_numa_nodes), so a wrong place reads another value.
        // SAFETY: reads an integer option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, 10);
    }
}
