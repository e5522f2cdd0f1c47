//! The command line: clap types only, no logic.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Voice phone lines as code: plan and apply numbers, SIP trunks and dispatch rules across
/// Telnyx, LiveKit and Twilio.
#[derive(Debug, Parser)]
#[command(name = "cwa", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The declaration of every line.
    #[arg(long, global = true, default_value = "lines.toml", value_name = "PATH")]
    pub config: PathBuf,

    /// The directory holding cwa's state (state.json, lock, journal, audit log).
    #[arg(
        long = "state",
        global = true,
        default_value = "state",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,

    /// Never color output (NO_COLOR is honored too).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// More log output (-v info, -vv debug, -vvv trace), on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Run against the embedded local sandbox (world in .cwa/sandbox or CWA_SANDBOX_DIR)
    /// instead of the real services. No keys, no money.
    #[arg(long, global = true)]
    pub sandbox: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check lines.toml without touching the network.
    Validate,
    /// Print the desired resource graph.
    Graph(GraphArgs),
    /// Compare lines.toml with what is live and print the changes apply would make.
    Plan(PlanArgs),
    /// Carry out a plan: in dependency order, journaled, verified.
    Apply(ApplyArgs),
    /// Inspect and maintain state/.
    #[command(subcommand)]
    State(StateCommand),
    /// Read the live account and write a lines.toml and state that match it.
    Import(ImportArgs),
    /// Report what is live but differs from lines.toml and state (exit 2 on drift).
    Drift(DriftArgs),
    /// Run the runbooks' certification checks on the live world.
    Check(CheckArgs),
    /// Export data generated from lines.toml.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Run or reset the local emulator of Telnyx, LiveKit and Twilio.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

/// How a plan (or drift report) is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
    Markdown,
    Dot,
}

#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct FormatArgs {
    /// Print the plan as versioned JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the plan as a pull-request comment.
    #[arg(long)]
    pub markdown: bool,
    /// Print the change graph as Graphviz dot.
    #[arg(long)]
    pub dot: bool,
}

impl FormatArgs {
    pub fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else if self.markdown {
            OutputFormat::Markdown
        } else if self.dot {
            OutputFormat::Dot
        } else {
            OutputFormat::Human
        }
    }
}

/// Options shared by plan and apply.
#[derive(Debug, Clone, Args)]
pub struct PlanningArgs {
    /// Read the live services (default). `--refresh=false` plans against state/ alone, with no
    /// credentials.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,

    /// Limit the plan to these addresses and what they depend on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,

    /// Allow deleting or replacing more than the policy's share of owned objects.
    #[arg(long)]
    pub allow_mass_change: bool,

    /// Allow releasing numbers that lines.toml no longer declares (irreversible).
    #[arg(long)]
    pub release_numbers: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub planning: PlanningArgs,

    #[command(flatten)]
    pub format: FormatArgs,

    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Save the plan, with fingerprints of everything it read, for `cwa apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `cwa plan --out`; applied exactly, or refused if the world moved.
    pub plan_file: Option<PathBuf>,

    #[command(flatten)]
    pub planning: PlanningArgs,

    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,

    /// How many provider calls may run at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub parallelism: usize,

    /// Delete configuration objects this run created if the run fails (never numbers).
    #[arg(long)]
    pub rollback_on_failure: bool,

    /// Seconds to wait for another apply's lock before giving up.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List every resource cwa owns.
    List,
    /// Show one owned resource.
    Show {
        /// The address, e.g. livekit_inbound_trunk.medhanialem
        address: String,
    },
    /// Remove a lock left by a process that died. Refuses while the holder is alive unless
    /// --force.
    Unlock {
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Where to write the imported declaration (merged into it if it exists).
    #[arg(long, default_value = "lines.toml", value_name = "PATH")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Place a test call to this number and report each hop.
    #[arg(long, value_name = "NUMBER")]
    pub ring: Option<String>,

    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistryFormat {
    Json,
    Python,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The number -> church id map the voice agent routes calls with.
    Registry {
        #[arg(long, value_enum, default_value_t = RegistryFormat::Json)]
        format: RegistryFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve the sandbox on loopback for other programs (SDKs, curl).
    Serve(SandboxServeArgs),
    /// Throw the embedded sandbox's world away and start again.
    Reset {
        /// runbook, empty, or synthetic:N
        #[arg(long, default_value = "runbook")]
        world: String,
    },
}

#[derive(Debug, Args)]
pub struct SandboxServeArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// runbook, empty, or synthetic:N (used only when DIR holds no world yet).
    #[arg(long, default_value = "runbook")]
    pub world: String,
    /// Where the world and the request log live.
    #[arg(long, default_value = ".cwa/sandbox")]
    pub dir: PathBuf,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests answered with 500/503 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Requests per second per provider above which 429 with Retry-After is returned.
    #[arg(long)]
    pub rate_limit: Option<f64>,
}
