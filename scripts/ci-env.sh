# Sourced by .ci/run (and by developers who want CI's caches): build caches outside the clone.
#
# DuckDB's bundled C++ takes ~35 min cold on 2 cores (measured 2026-12-06, empty caches), and cargo rebuilds it whenever the fingerprint
# of libduckdb-sys changes (its build script's dependencies, e.g. serde, can gain features when
# the workspace's dependency graph changes). ccache turns such rebuilds into cache hits.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/troupe-target}"
if ! command -v ccache >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq ccache) >/dev/null 2>&1 || true
fi
if command -v ccache >/dev/null 2>&1; then
    export CC="ccache gcc" CXX="ccache g++"
    export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/troupe-ccache}" CCACHE_BASEDIR="$CARGO_TARGET_DIR" CCACHE_MAXSIZE=4G
fi
