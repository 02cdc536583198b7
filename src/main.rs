//! The `trunkgate` command: run the daemon, check a config file, or run the demo.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use trunkgate::app::{notify::notify, Gateway};
use trunkgate::config::{self, Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "trunkgate",
    version,
    about = "SIP/RTP gateway bridging phone calls to AI voice agents"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, default_value = "/etc/trunkgate/trunkgate.toml")]
    config: PathBuf,
    /// Validate FILE and exit 0 (valid) or 1 (errors printed).
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// How long running calls may go on after SIGTERM before they are hung up.
    #[arg(long, default_value = "30")]
    drain_seconds: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway on its embedded demo config, answered by the built-in echo agent.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.check_config {
        return match config::load(path) {
            Ok(c) => {
                let problems = trunkgate::app::check::referenced_files(&c);
                if problems.is_empty() {
                    println!("{}: OK", path.display());
                    return ExitCode::SUCCESS;
                }
                for p in problems {
                    eprintln!("{}: {p}", path.display());
                }
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let (config, demo) = match cli.command {
        Some(Command::Demo) => (Config::demo(), true),
        None => match config::load(&cli.config) {
            Ok(c) => (c, false),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let drain = Duration::from_secs(cli.drain_seconds);
    runtime.block_on(serve(config, demo, (!demo).then_some(cli.config), drain))
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config, demo: bool, path: Option<PathBuf>, drain: Duration) -> ExitCode {
    let gateway = match Gateway::start(config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if demo {
        for addr in &gateway.udp_addrs {
            println!("trunkgate demo: call sip:echo@{addr} (UDP) — your audio is echoed, DTMF digits are played back as tones");
        }
        for addr in &gateway.tcp_addrs {
            println!("trunkgate demo: call sip:echo@{addr};transport=tcp (TCP)");
        }
        if let Some(addr) = gateway.api_addr {
            println!("trunkgate demo: health http://{addr}/healthz, metrics http://{addr}/metrics, calls http://{addr}/v1/calls");
        }
    }
    tracing::info!(udp = ?gateway.udp_addrs, tcp = ?gateway.tcp_addrs, "trunkgate started");
    notify("READY=1");
    let (Ok(mut term), Ok(mut hup)) = (
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()),
    ) else {
        eprintln!("cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => {
                notify("RELOADING=1");
                match path.as_deref().map(config::load) {
                    Some(Ok(new)) => {
                        gateway.reload(new).await;
                        tracing::info!("configuration reloaded");
                    }
                    Some(Err(e)) => tracing::error!(error = %e, "reload rejected; keeping the running configuration"),
                    None => tracing::info!("demo mode: nothing to reload"),
                }
                notify("READY=1");
            }
        }
    }
    notify("STOPPING=1");
    tracing::info!(grace = ?drain, "draining");
    gateway.shutdown(drain).await;
    ExitCode::SUCCESS
}
