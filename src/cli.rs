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

impl Cli {
    /// Parses the process's arguments. An empty `CWA_STATE_URL` counts as unset (GitHub Actions
    /// gives an empty string for a secret that is not defined, and a fork's pull request sees
    /// every secret empty): cwa then uses the state directory and says so, instead of failing
    /// with a usage error that names a flag the user never typed.
    pub fn from_process() -> Result<Cli, clap::Error> {
        if std::env::var_os(STATE_URL_VAR).is_some_and(|v| v.to_string_lossy().trim().is_empty()) {
            std::env::remove_var(STATE_URL_VAR);
            crate::errln!("note: {STATE_URL_VAR} is set but empty; it is ignored (the state is the directory given by --state, `state` by default)");
        }
        Cli::try_parse()
    }
}

/// The environment variable that names the state's location (after `--state`).
pub const STATE_URL_VAR: &str = "CWA_STATE_URL";

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Run as if cwa was started in DIR (before --config and --state are read), like
    /// `git -C` and `terraform -chdir`.
    #[arg(short = 'C', long = "chdir", global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// The declaration of every line.
    #[arg(long, global = true, default_value = "lines.toml", value_name = "PATH")]
    pub config: PathBuf,

    /// Where cwa's state is: a directory (state.json, lock, journal, audit log), or a
    /// PostgreSQL database, postgres://USER@HOST/DB?workspace=NAME (see the README). The flag
    /// wins over CWA_STATE_URL, which wins over the default directory.
    #[arg(
        long = "state",
        global = true,
        default_value = "state",
        env = "CWA_STATE_URL",
        hide_env_values = true,
        value_name = "DIR|URL"
    )]
    pub state_dir: PathBuf,

    /// The workspace of a PostgreSQL state (several independent states share one database);
    /// wins over the URL's ?workspace=. Default: `default`.
    #[arg(long, global = true, value_name = "NAME")]
    pub workspace: Option<String>,

    /// Never color output (NO_COLOR is honored too).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// More log output on stderr: -v what each step did, -vv one line per provider request
    /// (method, path, status, duration), -vvv the sizes and rate-limit headers too. CWA_LOG
    /// (a tracing filter such as `cwa::http=debug`) overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Run against the embedded local sandbox instead of the real services: no keys, no
    /// money. Its world lives in .cwa/sandbox beside lines.toml (or CWA_SANDBOX_DIR).
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
    /// Render a saved plan file exactly as it will be applied (for the approver).
    Show(ShowArgs),
    /// Rewrite lines.toml in canonical form (comments kept); --check only reports.
    Fmt(FmtArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print cwa's version and the formats it reads and writes.
    Version,
    /// Declare a new church in lines.toml (validated, every other byte kept) and show its plan.
    #[command(subcommand)]
    Add(AddCommand),
    /// Take a church out of lines.toml, its numbers declared kept, and show the plan.
    #[command(subcommand)]
    Remove(RemoveCommand),
}

/// `cwa add …` (issue 23: provisioning on purchase).
#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// A `[church.KEY]` block after the last church: its number bought at apply.
    Church(AddChurchArgs),
}

/// Which provider a new church's number comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NumberProviderArg {
    Telnyx,
    Livekit,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which_number").required(true).args(["area_code", "number"])))]
pub struct AddChurchArgs {
    /// The church's key in lines.toml (`[church.KEY]`): lower-case letters, digits, `_`, `-`.
    pub key: String,
    /// The church's UUID (church_voice_agents.church_id), carried in the dispatch metadata.
    #[arg(long, value_name = "UUID")]
    pub id: String,
    /// The church's name; it names its trunk and dispatch rule.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Buy a number in this area code at apply (`number = "auto"`).
    #[arg(long, value_name = "NNN")]
    pub area_code: Option<String>,
    /// Exactly this number (E.164, +1…).
    #[arg(long, value_name = "+1…")]
    pub number: Option<String>,
    /// Reserve a number of --area-code at Telnyx now (about 30 minutes) and write exactly it.
    #[arg(long, requires = "area_code")]
    pub reserve: bool,
    /// The agent its dispatch rule names ([defaults] agent otherwise).
    #[arg(long, value_name = "AGENT")]
    pub agent: Option<String>,
    /// Put the number on this existing inbound trunk instead of its own.
    #[arg(long, value_name = "ADDR")]
    pub trunk: Option<String>,
    /// Where the number is bought: telnyx, or livekit (not built yet: issue 20).
    #[arg(long, value_enum, default_value_t = NumberProviderArg::Telnyx)]
    pub provider: NumberProviderArg,
    /// The E911 address (not built yet: issue 21).
    #[arg(long, value_name = "ADDRESS")]
    pub emergency_address: Option<String>,
    /// Read the live services for the plan (default); `--refresh=false` plans against state.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// Print the church's plan as versioned JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cwa remove …`.
#[derive(Debug, Subcommand)]
pub enum RemoveCommand {
    /// Remove `[church.KEY]`; its numbers stay ours, declared under [kept].
    Church(RemoveChurchArgs),
}

#[derive(Debug, Args)]
pub struct RemoveChurchArgs {
    /// The church's key in lines.toml.
    pub key: String,
    /// Do not declare its numbers kept: `cwa apply --release-numbers` then releases them.
    #[arg(long)]
    pub release_number: bool,
    /// Read the live services for the plan (default); `--refresh=false` plans against state.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// Print the church's plan as versioned JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// text (creation order), dot (Graphviz) or mermaid.
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

    /// How many calls to one provider may run at once (each provider has its own limit).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub parallelism: usize,

    /// Delete configuration objects this run created if the run fails (never numbers).
    #[arg(long)]
    pub rollback_on_failure: bool,

    /// Seconds to wait for another apply's lock before giving up.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_timeout: u64,

    /// Print what was done as versioned JSON on stdout (ids created, numbers bought, what
    /// failed or did not start), for machines; the plan and progress go to stderr.
    #[arg(long)]
    pub json: bool,

    /// Carry out the plan's `unprotect` entry for this id (repeatable): the id leaves the
    /// hard lock for the plans after this one.
    #[arg(long = "unprotect", value_name = "ID")]
    pub unprotect: Vec<String>,
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
    /// Stop managing an address without deleting it live (audited). Refused for anything
    /// protected, declared or remembered.
    Rm {
        /// The address, e.g. livekit_dispatch_rule.medhanialem
        address: String,
    },
    /// Remove state/lock.json, which an apply holds while it runs, when the apply that took
    /// it is gone (killed, or its machine lost). Refused while the holder's process is alive.
    /// For a PostgreSQL state: end the lease, refused while it is unexpired; either way the
    /// generation is bumped, so its holder can write nothing more.
    Unlock {
        /// Remove the lock even though its holder looks alive (only when you know it is not
        /// running, e.g. it ran on another machine); end an unexpired lease.
        #[arg(long)]
        force: bool,
    },
    /// Copy state (resources, protections, lineage, audit log) to another backend: a
    /// directory or a postgres:// URL. Verified by reading it back; the source is kept.
    Migrate {
        /// Where to: a directory, or postgres://USER@HOST/DB?workspace=NAME.
        #[arg(long, value_name = "DIR|URL")]
        to: PathBuf,
        /// The workspace at the destination (a URL's ?workspace= otherwise).
        #[arg(long = "to-workspace", value_name = "NAME")]
        to_workspace: Option<String>,
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

    /// List only the checks that failed (and the counts).
    #[arg(long)]
    pub failures_only: bool,
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
        /// json, or a Python module the agent imports.
        #[arg(long, value_enum, default_value_t = RegistryFormat::Json)]
        format: RegistryFormat,
        /// Set each church's number in a table of this PostgreSQL database instead of
        /// printing (one transaction; the diff is shown first).
        #[arg(long, value_name = "URL")]
        to: Option<PathBuf>,
        /// The table, keyed by church id (`schema.table` allowed).
        #[arg(long, default_value = "church_voice_agents", value_name = "NAME")]
        table: String,
        /// The column holding the church id.
        #[arg(long, default_value = "church_id", value_name = "NAME")]
        church_column: String,
        /// The column holding the number.
        #[arg(long, default_value = "twilio_phone_number", value_name = "NAME")]
        number_column: String,
        /// Show the diff and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// `[policy] auto_add` (pr or apply): what the provisioning workflow does after an add.
    AutoAdd,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve the sandbox on loopback for other programs (SDKs, curl).
    Serve(SandboxServeArgs),
    /// Throw the embedded sandbox's world away and start again.
    Reset {
        /// The world to seed in its place: runbook, empty, or synthetic:N.
        #[arg(long, default_value = "runbook")]
        world: String,
    },
}

#[derive(Debug, Args)]
pub struct SandboxServeArgs {
    /// The loopback address to listen on (port 0: any free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The world to seed: runbook, empty, or synthetic:N. Seeded only when DIR holds no
    /// world yet; an existing world is kept (say so with `cwa sandbox reset --world`).
    #[arg(long, default_value = "runbook")]
    pub world: String,
    /// Where the world and the request log live (default: the embedded sandbox's, .cwa/sandbox
    /// beside lines.toml, or CWA_SANDBOX_DIR).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
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

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved by `cwa plan --out FILE`.
    pub plan_file: PathBuf,

    #[command(flatten)]
    pub format: ShowFormatArgs,
}

/// `show` prints a plan as text, JSON or Markdown (no graph: `cwa plan --dot` has it).
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct ShowFormatArgs {
    /// Print the plan file as versioned JSON (normalized, as apply reads it).
    #[arg(long)]
    pub json: bool,
    /// Print the plan as a pull-request comment.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Change nothing; exit 1 (and show the difference) when lines.toml is not canonical.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
