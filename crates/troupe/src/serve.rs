//! `troupe serve`: open the store, make sure the `default` project exists, optionally fill it
//! with demo data, and serve HTTP until SIGINT/SIGTERM.

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;
use troupe_store::{EventQuery, Project, Store};

use crate::config::{LogFormat, ServeArgs};
use crate::{demo, project};

pub const DEFAULT_PROJECT: &str = "default";

pub async fn run(args: ServeArgs) -> Result<()> {
    let filter = EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("--log-level '{}' is not a valid log filter", args.log_level))?;
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        // One object a line; `span` carries the request's id while a request is served.
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }

    let stop_requested = shutdown_signal()?;
    let limits = args.store.embedded().limits;
    let store = args.store.open_to_serve().await?;
    let default = default_project(store.as_ref(), &args).await?;

    if args.demo {
        let empty = store.events(default.id, EventQuery { limit: 1, ..EventQuery::default() }).await?.is_empty();
        if empty {
            let summary = demo::fill(store.as_ref(), default.id, &demo::DemoSpec::default()).await?;
            println!("demo data: {summary}");
        }
    }

    let settings = troupe_server::ServerSettings {
        limits,
        segment_group_type: args.segment_group_type.clone(),
        mixpanel_group_keys: args.mixpanel_group_keys.clone(),
        internal_secret: args.store.accepted_internal_secret(),
        rate_limits: args.rate_limits.settings(),
        setup_token: (args.require_setup_token || !args.addr.ip().is_loopback())
            .then(|| troupe_server::auth::generate_key("setup_")),
        retention_sweep_every: Some(troupe_server::retention::SWEEP_EVERY),
        metrics_key: args.metrics_key.clone().filter(|k| !k.is_empty()),
        control_token: matches!(args.store.backend()?, crate::store::Backend::Embedded)
            .then(|| troupe_server::auth::generate_key("ctl_")),
    };
    let control_token = settings.control_token.clone();
    if let Some(token) = &settings.setup_token {
        // Printed even once setup is done: harmless then (setup is refused), and the operator
        // of a fresh install finds it without knowing whether anyone came first.
        println!("first-run setup token (the dashboard asks for it on {}): {token}", args.addr);
    }
    let state = troupe_server::AppState::new(store.clone(), settings).await?;
    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let current_key = state.projects.ring(default.id).await.and_then(|r| r.current_ingestion_key().map(String::from));
    println!("troupe listening on http://{addr} ({})", args.store.describe());
    println!("project '{}': ingestion key {}", default.name, current_key.as_deref().unwrap_or(&default.ingestion_key));
    println!("dashboard: http://{addr}/ (the first visit creates the administrator account)");
    let control_file = match &control_token {
        Some(token) => Some(
            troupe_server::operator::write_control_file(&args.store.data_dir, &control_url(addr), token)
                .context("cannot write the control file for `troupe user|key|backup`")?,
        ),
        None => None,
    };
    // Connect info gives handlers the peer address (OpenPanel's anonymous device ids).
    let app = troupe_server::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let signalled = std::sync::Arc::new(tokio::sync::Notify::new());
    let on_signal = signalled.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop_requested.await;
        on_signal.notify_one();
    });
    // Stopping: no new connections; requests under way (a batch being written) finish, up to
    // the deadline. Whatever was acknowledged is committed either way.
    let deadline = std::time::Duration::from_secs(args.shutdown_timeout_secs);
    tokio::select! {
        served = std::future::IntoFuture::into_future(server) => served?,
        () = async { signalled.notified().await; tokio::time::sleep(deadline).await } => {
            tracing::warn!(seconds = args.shutdown_timeout_secs, "requests still under way at the shutdown deadline; stopping anyway");
        }
    }
    if let Some(file) = control_file {
        let _ = std::fs::remove_file(file);
    }
    store.close().await;
    println!("troupe stopped");
    Ok(())
}

/// Where the CLI on this machine reaches the server: its own address, or loopback when it
/// listens on every interface.
fn control_url(addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
}

/// The `default` project, created on first start (printing its keys).
async fn default_project(store: &dyn Store, args: &ServeArgs) -> Result<Project> {
    if let Some(existing) = store.projects().await?.into_iter().find(|p| p.name == DEFAULT_PROJECT) {
        if args.project_key.as_ref().is_some_and(|k| *k != existing.ingestion_key) {
            tracing::warn!(
                "TROUPE_DEFAULT_PROJECT_KEY differs from the existing default project's key; keeping the existing key"
            );
        }
        return Ok(existing);
    }
    let created =
        project::create_with_keys(store, DEFAULT_PROJECT, args.project_key.clone(), args.secret_key.clone()).await?;
    project::print_keys(&created);
    Ok(created.project)
}

/// SIGTERM or SIGINT (Ctrl-C). The listeners exist from this call on, before the server says it
/// listens: a signal sent right after that line is not lost (one listened for only once the
/// server runs could miss a signal sent in between, leaving a server that ignores it).
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
