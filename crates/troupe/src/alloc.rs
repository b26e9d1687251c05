//! The process's allocator, and the two places troupe tells it when to give memory back.
//!
//! Parsing, the writer's state and the scans allocate many small, short-lived values; glibc's
//! allocator showed in the profiles (malloc/free/consolidate ~15% of ingestion and queries), so
//! the binary runs on mimalloc. mimalloc keeps freed pages for a while before returning them to
//! the operating system ("purging"): that is what makes repeated questions fast (their buffers
//! are reused instead of faulted in again), and also what sets the peak memory while a 10M-event
//! project is served (docs/benchmarks.md, session 10).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long freed pages are kept before they are purged. mimalloc's default of a second let
/// the buffers of several questions in a row pile up (10M events: a peak of ~1040 MiB for the
/// benchmark's six questions). 250 ms gave 881–902 MiB in most runs but 990–1017 in others;
/// 100 ms gave 844–869 in every run, for questions up to ~10% slower (the funnel by users up to
/// ~20%). Purging at once (0) measured 10–25% slower questions and slower ingestion.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3); the Rust bindings do not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Set troupe's allocator options, unless the operator set them through mimalloc's own
/// environment variable (read by mimalloc when the process loads).
#[allow(unsafe_code)]
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` takes no pointers and may be called at any time; a valid
        // option index only changes when mimalloc next purges.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

/// Hand the memory the calling thread's heap holds freed back to the operating system now.
/// Called after a project's columns load, which frees about as much as it keeps: without it,
/// that memory would still be held while the first question allocates its own.
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time; it
    // only frees what mimalloc already holds unused.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
