//! `npm-registry-server`: an npm registry that reads Verdaccio's config.yaml.

use anyhow::Context;
use clap::Parser;
use registry_server::config::{Config, LogFormat, Store};
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "npm-registry-server", version, about)]
struct Cli {
    /// Verdaccio-style config.yaml; without it the embedded default runs (127.0.0.1:4873, ./storage).
    #[arg(long, short, env = "NPM_REGISTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding the config's `listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Storage folder, overriding the config's `storage` (unused with `store: aws-s3-storage`).
    #[arg(long)]
    storage: Option<PathBuf>,
}

fn init_tracing(format: LogFormat, level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("{level},tower_http=info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// glibc gives every thread that allocates an arena of its own (up to eight per core) and keeps
/// freed memory in each: tarball reads spread over the blocking pool then triple the peak RSS.
/// Two arenas keep it near the live set at no throughput cost we could measure (e2e/bench).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let loaded = Config::load(cli.config.as_deref())?;
    let mut config = loaded.config;
    if let Some(l) = cli.listen {
        config.listen = l;
    }
    if let Some(s) = cli.storage {
        config.storage = s;
    }
    init_tracing(config.log.format, &config.log.level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    raise_file_limit(config.connections.max_connections);
    let app = registry_server::app::build(&config)
        .await
        .context("cannot open storage")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let storage = match &config.store {
        Store::Filesystem => config.storage.display().to_string(),
        Store::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.key_prefix),
    };
    tracing::info!(
        address = %listener.local_addr()?,
        storage = %storage,
        "npm registry listening on http://{}/",
        listener.local_addr()?
    );
    registry_server::serve::run(
        listener,
        app,
        &config.connections,
        config.max_body_size,
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// Lets the process open as many files as its hard limit allows (the soft limit is often 1024):
/// each connection is a file descriptor, and storage needs its own. Warns when even the hard
/// limit leaves too little room for `server.maxConnections`.
fn raise_file_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
        }
        // Room for storage files, the listener and the uplinks' connections.
        const RESERVE: u64 = 256;
        if (max_connections as u64).saturating_add(RESERVE) > lim.rlim_cur {
            tracing::warn!(
                max_connections,
                open_files = lim.rlim_cur,
                "server.maxConnections is close to the open-file limit; new connections may fail"
            );
        }
    }
}
