//! `npm-registry-server`: an npm registry that reads Verdaccio's config.yaml.

use anyhow::Context;
use clap::Parser;
use registry_server::config::{Config, LogFormat, Store, listen};
use registry_server::serve::drain::Drain;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "npm-registry-server", version, about)]
struct Cli {
    /// Verdaccio-style config.yaml; without it the embedded default runs (127.0.0.1:4873, ./storage,
    /// proxying the registry the local npm is configured with).
    #[arg(long, short, env = "NPM_REGISTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding the config's `listen`; the same forms as the key
    /// (`4873`, `localhost:4873`, `0.0.0.0:4873`, `http://0.0.0.0:4873`, `[::]:4873`).
    #[arg(long, env = "NPM_REGISTRY_LISTEN", value_parser = listen::parse)]
    listen: Option<SocketAddr>,
    /// Storage folder, overriding the config's `storage` (unused with `store: aws-s3-storage`).
    #[arg(long)]
    storage: Option<PathBuf>,
    /// Without a config file: the registry to proxy public packages from, instead of the one
    /// `npm config get registry` names.
    #[arg(long, value_name = "URL", conflicts_with_all = ["config", "no_uplink"])]
    uplink: Option<String>,
    /// Without a config file: proxy no registry (only packages published here are served).
    #[arg(long, conflicts_with = "config")]
    no_uplink: bool,
}

/// How long `npm config get registry` may take before the server starts without an uplink.
const NPM_CONFIG_TIMEOUT: Duration = Duration::from_secs(10);

/// The registry the local npm is configured with, if npm answers in time with an http(s) URL.
async fn npm_registry() -> Result<String, String> {
    let run = tokio::process::Command::new("npm")
        .args(["config", "get", "registry"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(NPM_CONFIG_TIMEOUT, run).await {
        Err(_) => {
            return Err(format!(
                "`npm config get registry` did not answer within {NPM_CONFIG_TIMEOUT:?}"
            ));
        }
        Ok(Err(e)) => return Err(format!("npm could not be run ({e})")),
        Ok(Ok(out)) => out,
    };
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`npm config get registry` answered {url:?}"));
    }
    Ok(url)
}

/// Without a config file, public packages install through the server as with Verdaccio's default
/// config: the uplink is `--uplink`, else the local npm's registry; `None` says why there is none.
async fn default_uplink(cli: &Cli) -> Result<Option<String>, String> {
    if cli.no_uplink {
        return Err("--no-uplink".to_owned());
    }
    match &cli.uplink {
        Some(url) => Ok(Some(url.clone())),
        None => npm_registry().await.map(Some),
    }
}

fn init_tracing(format: LogFormat, level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("{level},tower_http=info")));
    // Colours only for a person at a terminal, never into a log file or a pipe.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}

fn main() -> anyhow::Result<()> {
    registry_server::allocator::configure();
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
    if let Some(s) = &cli.storage {
        config.storage = s.clone();
    }
    init_tracing(config.log.format, &config.log.level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if cli.config.is_none() {
        match default_uplink(&cli).await {
            Ok(Some(url)) => config = config.with_default_uplink(&url)?,
            Ok(None) => {}
            Err(why) => tracing::warn!("no config file and no uplink ({why}): only packages published here are served"),
        }
    }
    let uplinks: Vec<&str> = config.uplinks.values().map(|u| u.url.as_str()).collect();
    let uplink = if uplinks.is_empty() {
        "none".to_owned()
    } else {
        uplinks.join(" ")
    };
    raise_file_limit(config.connections.max_connections);
    tokio::spawn(registry_server::allocator::return_freed());
    let app = registry_server::app::build(&config)
        .await
        .context("cannot start the registry")?;
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
        uplink = %uplink,
        "npm registry listening on http://{}/",
        listener.local_addr()?
    );
    let drain = Drain::new(config.shutdown);
    let app = drain.layer(app);
    let served = registry_server::serve::run(
        listener,
        app,
        &config.connections,
        &config.trusted_proxies,
        config.max_body_size,
        drain.clone().until_stopped(),
    );
    if let Some(done) = drain.bounded(served).await {
        done?;
    }
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
