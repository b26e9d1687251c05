//! The insight conformance suite on the embedded backend.

use troupe_duckdb::{DuckStore, EmbeddedConfig};

async fn in_memory() -> (DuckStore, ()) {
    (DuckStore::open(EmbeddedConfig::default()).expect("opens"), ())
}

troupe_query::insight_conformance_suite!(in_memory);
