//! `npm-registry-operator`: runs the controller (default) or prints the CRD.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::{Parser, Subcommand};
use kube::Client;
use kube::api::{Api, ListParams};
use kube_lease_manager::LeaseManagerBuilder;
use operator::controller;
use operator::crd::NpmRegistry;
use operator::telemetry::{self, Health};
use tracing::{error, info};

/// How long before expiry the leader renews the Lease.
const LEASE_GRACE_SECONDS: u64 = 5;

#[derive(Parser)]
#[command(
    name = "npm-registry-operator",
    version,
    about = "Runs npm registries described by NpmRegistry resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default).
    Run,
    /// Print the CustomResourceDefinition YAML.
    Crd,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE", global = true)]
    namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080", global = true)]
    metrics_addr: SocketAddr,
    /// Run without leader election (only when a single replica runs).
    #[arg(long, global = true)]
    no_leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, default_value = "npm-registry-operator", global = true)]
    lease_name: String,
    /// Lease duration in seconds: the leader renews it every duration minus 5 s, and a standby
    /// checks it when the current lease would expire, so a standby takes over at most this long
    /// after the leader stops.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(10..=300), global = true)]
    lease_duration: u64,
    /// Namespace of the Lease (default: the operator's namespace, `POD_NAMESPACE`, or the client's).
    #[arg(long, env = "POD_NAMESPACE", global = true)]
    lease_namespace: Option<String>,
    /// Log filter when `RUST_LOG` is unset.
    #[arg(long, default_value = "info", global = true)]
    log_level: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => {
            print!("{}", operator::crd::crd_yaml());
            ExitCode::SUCCESS
        }
        Some(Command::Run) | None => {
            telemetry::init_logs(&cli.run.log_level);
            match run(cli.run).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    error!("{message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
    // First, so that a taken port stops the process at once, naming the address.
    let addr = args.metrics_addr;
    let listener = telemetry::bind(addr).await?;
    let health = Health::default();
    let server = telemetry::serve(listener, health.clone());
    tokio::select! {
        result = server => Err(match result {
            Ok(()) => format!("the metrics server on {addr} stopped"),
            Err(e) => format!("the metrics server on {addr} failed: {e}"),
        }),
        result = operate(args, health.clone()) => result,
    }
}

/// Connects, waits for leadership (unless told not to) and runs the controller.
async fn operate(args: RunArgs, health: Health) -> Result<(), String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no Kubernetes client configuration: {e}"))?;
    check_crd(&client, args.namespace.as_deref()).await?;
    info!(addr = %args.metrics_addr, namespace = ?args.namespace, "starting");

    let controller = controller::run(client.clone(), args.namespace.clone(), health.metrics.clone());
    if args.no_leader_election {
        health.ready.store(true, Ordering::Relaxed);
        controller.await;
        return Ok(());
    }

    let lease_namespace = args
        .lease_namespace
        .unwrap_or_else(|| client.default_namespace().to_string());
    let mut builder = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&lease_namespace)
        .with_duration(args.lease_duration)
        .with_grace(LEASE_GRACE_SECONDS);
    if let Ok(identity) = std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME")) {
        builder = builder.with_identity(identity);
    }
    let manager = builder
        .build()
        .await
        .map_err(|e| format!("leader election on Lease {}: {e}", args.lease_name))?;
    let (mut leading, lease_task) = manager.watch().await;
    info!(lease = %args.lease_name, namespace = %lease_namespace, "waiting for leadership");
    while !*leading.borrow_and_update() {
        leading
            .changed()
            .await
            .map_err(|_| "leader election stopped".to_string())?;
    }
    info!("leading: starting the controller");
    health.ready.store(true, Ordering::Relaxed);

    let result = tokio::select! {
        () = controller => Ok(()),
        // Losing the lease means another replica may already reconcile: stop at once and let the
        // pod restart as a follower.
        _ = lost(&mut leading) => Err("lost leadership".to_string()),
    };
    // Dropping the receiver releases the Lease. A standby sleeps until the lease it saw would
    // expire, so it takes over within one lease duration (`--lease-duration`), not at once.
    drop(leading);
    let _ = lease_task.await;
    result
}

async fn lost(leading: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if leading.changed().await.is_err() || !*leading.borrow_and_update() {
            return;
        }
    }
}

/// Fails early with an install hint when the CRD is missing.
async fn check_crd(client: &Client, namespace: Option<&str>) -> Result<(), String> {
    let api: Api<NpmRegistry> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    api.list_metadata(&ListParams::default().limit(1))
        .await
        .map(drop)
        .map_err(|e| {
            format!(
                "cannot list NpmRegistries ({e}): install the CRD with `npm-registry-operator crd | kubectl apply -f -`"
            )
        })
}
