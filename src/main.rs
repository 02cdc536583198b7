//! The `trunkgate` command: run the daemon, check a config file, run the demo, or print its own
//! man page and shell completions (what scripts/deb.sh puts in the Debian package).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use clap_mangen::roff::{bold, italic, roman, Roff};
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
    /// Print the man page (roff) to stdout.
    Man,
    /// Print the shell completion script for SHELL to stdout.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
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
        Some(Command::Man) => return print(man_page()),
        Some(Command::Completions { shell }) => return print(completions(shell)),
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

/// Writes generated text to stdout; a closed pipe or full disk is an error, not a panic.
fn print(text: std::io::Result<Vec<u8>>) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match text.and_then(|t| out.write_all(&t).and_then(|()| out.flush())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The FILES section of trunkgate(1).
const MAN_FILES: &[(&str, &str)] = &[
    (
        "/etc/trunkgate/trunkgate.toml",
        "The configuration (every key, its default and what it does); checked with \
         --check-config, re-read on SIGHUP.",
    ),
    (
        "/etc/trunkgate/api.token",
        "Bearer token of the control API (api.token_file); the Debian package creates a random \
         one.",
    ),
    (
        "/var/lib/trunkgate",
        "State: the callback spool and call journal, CDRs, recordings (StateDirectory of the \
         unit).",
    ),
    (
        "/usr/lib/systemd/system/trunkgate.service",
        "The Type=notify unit, running as the trunkgate system user.",
    ),
];

/// The SIGNALS section of trunkgate(1).
const MAN_SIGNALS: &[(&str, &str)] = &[
    (
        "SIGHUP",
        "Re-read the configuration; an invalid file is rejected and the running configuration \
         kept (systemctl reload trunkgate).",
    ),
    (
        "SIGTERM",
        "New calls get 503, running calls may finish for --drain-seconds, then are hung up \
         (systemctl stop trunkgate).",
    ),
];

/// trunkgate(1): clap_mangen's sections from the CLI, plus the files, signals and metrics an
/// operator looks for.
fn man_page() -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(Cli::command()).manual("trunkgate manual");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    let mut roff = Roff::new();
    for (heading, entries) in [("FILES", MAN_FILES), ("SIGNALS", MAN_SIGNALS)] {
        roff.control("SH", [heading]);
        for (tag, text) in entries {
            roff.control("TP", std::iter::empty())
                .text([bold(*tag)])
                .text([roman(*text)]);
        }
    }
    roff.control("SH", ["METRICS"]);
    roff.text([
        roman(
            "GET /metrics on the control API (api.listen) serves the Prometheus counters; the \
             dashboard ",
        ),
        italic("/usr/share/trunkgate/grafana/trunkgate.json"),
        roman(" charts them."),
    ]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("systemctl(1), journalctl(1)")]);
    roff.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    // Every render repeats roff's two-line preamble (the apostrophe string); keep the first.
    let text = String::from_utf8_lossy(&out);
    let mut seen = Vec::new();
    let mut page = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
            if seen.contains(&line) {
                continue;
            }
            seen.push(line);
        }
        page.push_str(line);
        page.push('\n');
    }
    Ok(page.into_bytes())
}

/// The completion script for `shell`, rendered into memory (clap_complete panics on a failed
/// write; a Vec never fails).
fn completions(shell: Shell) -> std::io::Result<Vec<u8>> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "trunkgate", &mut out);
    Ok(out)
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
