//! The physical limit a scan is held to: this machine's memory bandwidth, measured in the same
//! run, and the time it puts on reading the columns a question needs.

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::{json, Value};

/// 256 MiB: far beyond any cache, so the sum streams from memory.
const WORDS: usize = 32 << 20;

/// Bytes per second that one core and every core (rayon's pool) stream out of memory: the best
/// of five sums over a buffer much larger than the caches.
pub fn memory_bandwidth() -> (f64, f64) {
    let buffer: Vec<u64> = (0..WORDS as u64).collect();
    let bytes = (WORDS * 8) as f64;
    let best = |sum: &dyn Fn() -> u64| {
        (0..5)
            .map(|_| {
                let started = Instant::now();
                black_box(sum());
                started.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let one = best(&|| buffer.iter().fold(0u64, |a, &x| a.wrapping_add(x)));
    let all = best(&|| buffer.par_chunks(1 << 16).map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x))).sum());
    (bytes / one, bytes / all)
}

/// The unique-companies trend reads, per event of its range, its time (8 bytes) and its
/// company id (4): the least any engine reads, at the bandwidth of every core.
pub fn trend_limit(events_in_range: f64, (one_core, all_cores): (f64, f64), troupe_ms: Option<f64>) -> Value {
    let bytes = events_in_range * 12.0;
    let limit_ms = bytes / all_cores * 1e3;
    let ratio = troupe_ms.map(|t| t / limit_ms);
    println!(
        "memory bandwidth: {:.1} GB/s on one core, {:.1} GB/s on every core; the trend reads {:.0} MB \
         (time and company id of {events_in_range:.0} events): {limit_ms:.1} ms at best{}",
        one_core / 1e9,
        all_cores / 1e9,
        bytes / 1e6,
        ratio.map_or(String::new(), |r| format!(", troupe {:.1} ms = {r:.1}× that", troupe_ms.unwrap_or_default()))
    );
    json!({
        "one_core_bytes_per_second": one_core, "all_cores_bytes_per_second": all_cores,
        "trend_bytes": bytes, "trend_limit_ms": limit_ms, "troupe_trend_warm_ms": troupe_ms,
        "ratio_troupe_to_limit": ratio,
    })
}
