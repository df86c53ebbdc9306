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

fn main() -> anyhow::Result<()> {
    registry_server::memory::configure();
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
    tokio::spawn(registry_server::memory::return_freed());
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
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
