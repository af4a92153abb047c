//! The `dsh` binary: parses the command line and hands each mode to the library.

use clap::{Args, Parser, Subcommand};
use dsh::app;
use dsh::load::{failover, Etcd, FailoverTarget};
use dsh::net::{self, Identity};
use dsh::proto::parse_node;
use dsh::script::StoryOptions;
use dsh::shell;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Nodes and load generators allocate for every request (frames, entries, replies); glibc's
/// allocator showed as about a tenth of a node's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "dsh", version, about = "A shell for showing distributed systems to people")]
struct Cli {
    #[command(flatten)]
    global: Global,
    /// Run these `;`-separated commands and exit.
    #[arg(short = 'c', value_name = "COMMANDS")]
    commands: Option<String>,
    /// With -c or piped input: run every line even after one fails.
    #[arg(long)]
    keep_going: bool,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Args, Clone)]
struct Global {
    /// A TOML file naming the nodes and certificates (default: the local cluster).
    #[arg(long, global = true, value_name = "FILE")]
    cluster: Option<PathBuf>,
    /// Use a throwaway local cluster that dies with this process.
    #[arg(long, global = true)]
    ephemeral: bool,
    /// One JSON object per result line.
    #[arg(long, global = true)]
    json: bool,
    /// No colours (also when NO_COLOR is set).
    #[arg(long, global = true)]
    no_color: bool,
    /// Less output.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More logging (repeat for more; RUST_LOG also works).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// How long one request may take.
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    timeout: Duration,
}

#[derive(Subcommand)]
enum Mode {
    /// Run a story written in Rhai.
    Run {
        file: PathBuf,
        /// Do not wait at `pause` (rehearsal, CI).
        #[arg(long)]
        no_pause: bool,
        /// Seed for rand_int / rand_choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Divide sleeps and durations by this.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Show speaker notes.
        #[arg(long)]
        notes: bool,
        /// Record the screen to an asciicast v2 file (markers at steps, pauses and faults).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Run without pauses, time each step and compare with the last rehearsal
        /// (kept beside the story as FILE.rehearsal.json).
        #[arg(long)]
        rehearse: bool,
        /// End each step with the line `-- step N done: TITLE`, for tools that drive dsh.
        #[arg(long)]
        marks: bool,
    },
    /// The presenter's notes: follows the story running under this DSH_HOME (q leaves).
    Notes,
    /// Run one node in the foreground.
    Node {
        #[arg(long)]
        id: String,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        listen: SocketAddr,
        /// Address of a member to join through (repeatable); for adding a node to a running cluster.
        #[arg(long)]
        join: Vec<String>,
        /// Form a new cluster with these founding members: `n1=ADDR,n2=ADDR,…` (give it to one node).
        #[arg(long, value_delimiter = ',')]
        bootstrap: Vec<String>,
        /// Directory with ca.pem and this node's certificate (default: DATA/../certs).
        #[arg(long)]
        certs: Option<PathBuf>,
        /// Address other nodes and clients dial (default: --listen).
        #[arg(long)]
        advertise: Option<String>,
        /// Run under a supervisor that listens here for crash/restart/pause/resume from admin
        /// clients (for nodes on other machines; the local cluster manages its own processes).
        #[arg(long)]
        supervisor: Option<SocketAddr>,
        /// Refuse values larger than this (bytes, or with K/KiB or M/MiB; at most 4 MiB).
        #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = bytes)]
        max_value: usize,
    },
    /// Manage the local cluster.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Cluster CA and certificates for nodes on several machines.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Benchmarks that need more than a workload (see scripts/bench.sh).
    #[command(subcommand, hide = true)]
    Bench(BenchCmd),
    /// Any shell command, run as `-c` runs it: `dsh status`, `dsh put a 1`, `dsh verify`.
    #[command(external_subcommand)]
    Shell(Vec<String>),
}

#[derive(Subcommand)]
enum BenchCmd {
    /// SIGKILL the leader while writing; time until a write succeeds again.
    Failover {
        /// Measure etcd at these endpoints instead.
        #[arg(long, value_delimiter = ',')]
        etcd: Vec<String>,
        /// The etcd members' pids, in endpoint order.
        #[arg(long, value_delimiter = ',')]
        etcd_pids: Vec<u32>,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Start the local cluster (create it if needed).
    Up {
        #[arg(short, default_value_t = 3)]
        n: usize,
        /// Keep node data here instead of under DSH_HOME.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Stop every node of the local cluster (data is kept).
    Down,
    /// Processes and Raft state of the local cluster.
    Status,
    /// Wipe the local cluster's data and start it fresh (same addresses and certificates).
    Reset,
}

#[derive(Subcommand)]
enum CertCmd {
    /// Create a cluster CA in DIR.
    Init { dir: PathBuf },
    /// Issue a node, client or admin certificate signed by the CA in DIR.
    #[command(group(clap::ArgGroup::new("role").required(true).args(["node", "client", "admin"])))]
    Issue {
        dir: PathBuf,
        /// A node: speaks Raft with its peers, and may do what an admin may.
        #[arg(long)]
        node: Option<String>,
        /// Host name or IP the node is dialled at (repeatable).
        #[arg(long, requires = "node")]
        host: Vec<String>,
        /// A user who reads and writes data, but cannot set faults, corrupt, repair, join
        /// nodes or act on node processes.
        #[arg(long)]
        client: Option<String>,
        /// A user who may also set faults, corrupt, repair, join nodes and crash, restart,
        /// pause or resume them through their supervisors.
        #[arg(long)]
        admin: Option<String>,
        /// Days until the certificate expires.
        #[arg(long, default_value_t = net::DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..=36500))]
        days: u32,
    },
}

fn duration(s: &str) -> Result<Duration, String> {
    shell::spec::parse_duration(s).map_err(|e| e.message)
}

/// A size such as `1048576`, `512KiB` or `4M` (binary units), within the value caps' range.
fn bytes(s: &str) -> Result<usize, String> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        _ => return Err(format!("`{s}`: say bytes, or a number with K/KiB or M/MiB")),
    };
    let n: usize = n.parse().map_err(|_| format!("`{s}` is not a size"))?;
    dsh::proto::limits::check_cap(n.saturating_mul(scale)).map_err(|e| e.message)
}

fn main() {
    let cli = Cli::parse();
    if cli.global.no_color {
        // One switch for every view that honours the convention (the prompt, the dashboard,
        // and anything dsh starts), set while this process has a single thread.
        std::env::set_var("NO_COLOR", "1");
    }
    init_tracing(&cli);
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = e.downcast_ref::<dsh::Error>().map_or(1, |e| e.kind.exit_code());
            eprintln!("error: {e:#}");
            code
        }
    };
    std::process::exit(code);
}

fn init_tracing(cli: &Cli) {
    let default = match (&cli.mode, cli.global.verbose) {
        (_, 2..) => "debug",
        (_, 1) => "dsh=debug,info",
        (Some(Mode::Node { .. }), 0) => "dsh=info,openraft=warn",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// This process's own arguments without `--supervisor ADDR`: how the supervisor starts its node.
fn unsupervised_args() -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--supervisor") => drop(args.next()),
            Some(s) if s.starts_with("--supervisor=") => {}
            _ => out.push(a),
        }
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    let session = app::Session {
        cluster: g.cluster.clone(),
        ephemeral: g.ephemeral,
        json: g.json,
        quiet: g.quiet,
        timeout: g.timeout,
    };
    match cli.mode {
        Some(Mode::Node { id, data, listen, join, bootstrap, certs, advertise, supervisor, max_value }) => {
            let id = parse_node(&id)?;
            let certs = certs.unwrap_or_else(|| data.parent().unwrap_or(&data).join("certs"));
            if let Some(admin) = supervisor {
                let opts = dsh::cluster::SupervisorOptions { id, listen: admin, certs, node_args: unsupervised_args() };
                return Ok(app::until_signal(|rx| dsh::cluster::supervise(opts, rx)).map(|_| 0)?);
            }
            let bootstrap = bootstrap
                .iter()
                .map(|m| {
                    let (n, a) = m
                        .split_once('=')
                        .ok_or_else(|| dsh::Error::usage(format!("--bootstrap: `{m}` is not ID=ADDR")))?;
                    Ok((parse_node(n)?, a.to_string()))
                })
                .collect::<dsh::Result<Vec<_>>>()?;
            let opts = dsh::node::NodeOptions { id, data, listen, advertise, join, bootstrap, certs, max_value };
            Ok(app::until_signal(|rx| dsh::node::run(opts, rx)).map(|_| 0)?)
        }
        Some(Mode::Cert(cmd)) => cert(cmd),
        Some(Mode::Bench(BenchCmd::Failover { etcd, etcd_pids })) => {
            let json = session.json;
            let report = move |r: dsh::load::FailoverResult| {
                let ms = r.failover.as_secs_f64() * 1000.0;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"failover_ms": ms, "killed": r.killed, "pid": r.pid, "errors": r.errors})
                    );
                } else {
                    println!(
                        "killed {} (pid {}); first write {ms:.0} ms later ({} failed writes)",
                        r.killed, r.pid, r.errors
                    );
                }
            };
            if etcd.is_empty() {
                Ok(app::with_cluster(&session, move |ctx, handle| {
                    report(handle.block_on(failover(FailoverTarget::Dsh(ctx.client.clone())))?);
                    Ok(0)
                })?)
            } else {
                // etcd alone: no dsh cluster is needed or started.
                let target = FailoverTarget::Etcd(Arc::new(Etcd::new(etcd)?), etcd_pids);
                report(app::runtime()?.block_on(failover(target))?);
                Ok(0)
            }
        }
        Some(Mode::Cluster(ClusterCmd::Up { n, data })) => Ok(app::cluster_up(&session, n, data.as_deref())?),
        Some(Mode::Cluster(ClusterCmd::Down)) => Ok(app::cluster_down()?),
        Some(Mode::Cluster(ClusterCmd::Status)) => Ok(app::cluster_status(&session)?),
        Some(Mode::Cluster(ClusterCmd::Reset)) => Ok(app::cluster_reset(&session)?),
        Some(Mode::Run { file, no_pause, seed, speed, notes, record, rehearse, marks }) => {
            let opts = StoryOptions { no_pause, seed, speed, notes, rehearse, marks, board: None };
            Ok(app::story(&session, file, opts, record)?)
        }
        Some(Mode::Notes) => Ok(app::notes()?),
        Some(Mode::Shell(words)) => {
            // The words were split by the caller's shell already: quote each so that the
            // command line splits back into exactly them.
            let line = words.iter().map(|w| format!("'{}'", w.replace('\'', "'\\''"))).collect::<Vec<_>>().join(" ");
            Ok(app::lines(&session, std::iter::once(line), false)?)
        }
        None => {
            // Piped lines run as they arrive, so another program can converse with dsh.
            let lines: Box<dyn Iterator<Item = String> + Send> = match cli.commands {
                Some(c) => Box::new(std::iter::once(c)),
                None if !std::io::stdin().is_terminal() => Box::new(std::iter::from_fn(|| {
                    let mut line = String::new();
                    (std::io::stdin().read_line(&mut line).ok()? > 0)
                        .then(|| line.trim_end_matches(['\n', '\r']).to_string())
                })),
                None => {
                    let color = std::env::var_os("NO_COLOR").is_none();
                    return Ok(app::prompt(&session, color)?);
                }
            };
            Ok(app::lines(&session, lines, cli.keep_going)?)
        }
    }
}

fn cert(cmd: CertCmd) -> anyhow::Result<i32> {
    match cmd {
        CertCmd::Init { dir } => {
            net::init_ca(&dir)?;
            println!("CA created in {}", dir.display());
        }
        CertCmd::Issue { dir, node, host, client, admin, days } => {
            let who = match (node, client, admin) {
                (Some(name), _, _) => {
                    let name = dsh::proto::node_name(parse_node(&name)?);
                    let hosts = if host.is_empty() { vec!["127.0.0.1".into(), "localhost".into()] } else { host };
                    Identity::Node { name, hosts }
                }
                (None, Some(name), _) => Identity::Client { name },
                (None, None, Some(name)) => Identity::Admin { name },
                (None, None, None) => anyhow::bail!(dsh::Error::usage("say --node ID, --client NAME or --admin NAME")),
            };
            let paths = net::issue_for(&dir, &who, net::Validity::days(days))?;
            println!(
                "wrote {} and {} ({} certificate of `{}`, valid {days} days)",
                paths.cert.display(),
                paths.key.display(),
                who.role(),
                who.name()
            );
        }
    }
    Ok(0)
}
