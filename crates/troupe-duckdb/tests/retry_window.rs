//! The retry window is kept with the data: a client resending after the store was closed (or
//! killed: the writes are committed before they are answered) is recognised.

use troupe_duckdb::{DuckStore, EmbeddedConfig};
use troupe_store::conformance::{project, resent_writes_were_applied_once, writes_a_client_resends};
use troupe_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_writes_after_a_restart_are_applied_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let store = DuckStore::open(config.clone()).expect("opens");
    let p = project(&store, "p").await;
    let first = store.apply(p, writes_a_client_resends()).await.expect("applies");
    assert!(first.iter().all(|r| matches!(r, Ok(o) if *o != troupe_core::Outcome::Duplicate)), "{first:?}");
    drop(store);

    let store = DuckStore::open(config).expect("reopens");
    let again = store.apply(p, writes_a_client_resends()).await.expect("applies");
    assert!(again.iter().all(|r| matches!(r, Ok(troupe_core::Outcome::Duplicate))), "{again:?}");
    resent_writes_were_applied_once(&store, p).await;
}

/// How each membership set was written (set_group or add_group) is stored with it: a merge after
/// a restart still keeps the user's set_group whole and unites the sets built by adds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_after_a_restart_weighs_memberships_by_how_they_were_written() {
    use troupe_store::conformance::{a_merge_weighs_the_memberships, memberships_a_merge_weighs};
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let store = DuckStore::open(config.clone()).expect("opens");
    let p = project(&store, "p").await;
    memberships_a_merge_weighs(&store, p).await;
    drop(store);

    let store = DuckStore::open(config).expect("reopens");
    a_merge_weighs_the_memberships(&store, p).await;
}
