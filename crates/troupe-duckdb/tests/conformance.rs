//! The store conformance suite on the embedded backend, in memory and on disk.

use troupe_duckdb::{DuckStore, EmbeddedConfig};

async fn in_memory() -> (DuckStore, ()) {
    (DuckStore::open(EmbeddedConfig::default()).expect("opens"), ())
}

troupe_store::store_conformance_suite!(in_memory);

mod on_disk {
    use super::*;

    async fn on_disk() -> (DuckStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
        (DuckStore::open(config).expect("opens"), dir)
    }

    troupe_store::store_conformance_suite!(on_disk);
}
