//! The command line's arguments (clap). Every option says what it is for;
//! values are parsed here into the library's types where clap can do it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The top-level help's opening.
const ABOUT: &str = "Diagnose, plan, rehearse and repair a Supabase migration ledger that lists migrations the database never received (\"phantom migrations\").

Start here: phantom-sync rehearse
  (the built-in incident; add --db-url URL to rehearse your own database, read-only)";

#[derive(Parser)]
#[command(name = "phantom-sync", version, about = ABOUT, after_help = super::exit::help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Show the SQL being run and the engine's notes, besides the progress.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// No progress on stderr (only the result and errors).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl Command {
    /// True when the command prints JSON (progress would only get in the way).
    pub fn json(&self) -> bool {
        match self {
            Command::Rehearse(a) => a.json,
            Command::List(c) | Command::Diagnose(c) => c.json,
            Command::Plan { common, .. }
            | Command::Repair { common, .. }
            | Command::Verify { common, .. }
            | Command::Rollback { common, .. }
            | Command::RestoreFile { common, .. } => common.json,
            // Their results go to stdout; what they are doing shows on stderr.
            Command::Bench { .. } | Command::Matrix { .. } | Command::Images { .. } => false,
            Command::JsonSchema => true,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Rehearse the whole procedure on an ephemeral copy and write the runbook (start here).
    Rehearse(RehearseArgs),
    /// The `supabase migration list` table with one status per migration.
    List(Common),
    /// Every migration's status with the evidence behind it, grouped by object.
    Diagnose(Common),
    /// The repair plan; --dry-run prints every SQL statement.
    Plan {
        #[command(flatten)]
        common: Common,
        /// Write the plan file here (for `repair --plan`).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print every statement the plan would run.
        #[arg(long)]
        dry_run: bool,
        /// Delete ledger rows that have no local file instead of refusing.
        #[arg(long)]
        revert_remote_only: bool,
        /// Proceed although the target has pre-existing drift no step touches (it is kept as it is).
        #[arg(long)]
        accept_existing_drift: bool,
    },
    /// Back up, repair the ledger, re-apply, verify.
    Repair {
        #[command(flatten)]
        common: Common,
        /// Execute this rehearsed plan; refused if the database changed since.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Required for a database not on this machine: its name, repeated.
        #[arg(long, value_name = "DBNAME")]
        confirm: Option<String>,
        /// The folder under which this run creates its own backup folder,
        /// `<UTC time>-<short fingerprint>/` (backup and journal; never an existing one).
        #[arg(long, value_name = "DIR", default_value = phantom_sync::engine::backup::DEFAULT_PARENT)]
        backup_dir: PathBuf,
        /// Run even though the plan drops, truncates or deletes rows the database holds.
        #[arg(long)]
        allow_data_loss: bool,
        /// Print the plan's SQL and stop (touches nothing; needs no --confirm).
        #[arg(long)]
        dry_run: bool,
        /// Delete ledger rows that have no local file instead of refusing.
        #[arg(long)]
        revert_remote_only: bool,
        /// A table the application keeps writing to during the repair (may gain rows, never lose any).
        #[arg(long = "live-table", value_name = "SCHEMA.TABLE")]
        live_tables: Vec<String>,
        /// Proceed although the target has pre-existing drift no step touches (verification proves it unchanged).
        #[arg(long)]
        accept_existing_drift: bool,
    },
    /// The success checklist against a database (with --backup-dir: data preservation too).
    Verify {
        #[command(flatten)]
        common: Common,
        /// A repair's backup folder, or a parent of backups (the newest of this database is used): its row counts and checksums must still hold.
        #[arg(long, value_name = "DIR")]
        backup_dir: Option<PathBuf>,
        /// Pre-existing drift no step touches is reported, not failed.
        #[arg(long)]
        accept_existing_drift: bool,
    },
    /// Write a migration file from what the ledger recorded for VERSION (for review).
    RestoreFile {
        #[command(flatten)]
        common: Common,
        /// The ledger version to restore.
        version: String,
        /// Where the file goes.
        #[arg(long, value_name = "DIR", default_value = phantom_sync::engine::restore_file::DEFAULT_OUT)]
        out: PathBuf,
        /// Replace a file of the same name in --out.
        #[arg(long)]
        force: bool,
    },
    /// One of the plan's three rollback procedures, from a backup folder.
    Rollback {
        #[command(flatten)]
        common: Common,
        /// A backup folder a repair wrote (it holds manifest.json), or a folder
        /// of them [default: the newest complete backup of this database under .phantom/backups].
        #[arg(long, value_name = "DIR")]
        backup_dir: Option<PathBuf>,
        /// Which procedure.
        #[arg(long, value_enum)]
        procedure: ProcedureArg,
        /// For dropped-tables: which tables (schema.table); default every table that is gone.
        #[arg(long, value_delimiter = ',', value_name = "SCHEMA.TABLE,...")]
        tables: Vec<String>,
        /// Required for a database not on this machine: its name, repeated.
        #[arg(long, value_name = "DBNAME")]
        confirm: Option<String>,
    },
    /// Benchmarks that print figures (`make bench`).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Every scenario on every major, with wall times (`make matrix`).
    Matrix {
        /// PostgreSQL majors, comma-separated, or `all`.
        #[arg(long, default_value = "17", value_name = "MAJORS")]
        versions: String,
        /// The folder of scenario files.
        #[arg(long, default_value = "scenarios", value_name = "DIR")]
        scenarios: PathBuf,
        /// Scenarios run at the same time on a major. Three keep two cores
        /// busy while scenarios wait on locks, sleeps and containers.
        #[arg(long, default_value_t = 3)]
        parallel: usize,
    },
    /// Print the JSON Schema of every `--json` document (schema_version and kind included).
    #[command(hide = true)]
    JsonSchema,
    /// Build the offline PostgreSQL images (no registry needed; what `make
    /// images` runs and what the first use of a major does by itself).
    /// PHANTOM_IMAGE_REPO, PHANTOM_BASE_REPO and PHANTOM_CACHE_DIR name the
    /// images and the cache.
    Images {
        /// PostgreSQL majors, comma-separated, or `all`.
        #[arg(long, default_value = "14,15,16,17,18", value_name = "MAJORS")]
        versions: String,
    },
}

/// The plan's three rollback procedures.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProcedureArg {
    /// Rollback 1: restore ledger and database from Phase 1's backup.
    FailedMigration,
    /// Rollback 2: recreate dropped tables from the dump.
    DroppedTables,
    /// Rollback 3: restore the ledger from its export.
    Ledger,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Container start, template clone, shim from scratch.
    Provision {
        /// PostgreSQL majors, comma-separated, or `all`.
        #[arg(long, default_value = "17", value_name = "MAJORS")]
        versions: String,
        /// Measurements per figure.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// `diagnose` on synthetic projects of growing size: cold (--no-cache) and warm cache, growth exponent.
    Diagnose {
        /// PostgreSQL majors, comma-separated, or `all`.
        #[arg(long, default_value = "17", value_name = "MAJORS")]
        versions: String,
        /// Project sizes (migrations), comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "100,300,1000",
            value_name = "N,..."
        )]
        migrations: Vec<usize>,
        /// The phantom-sync binary to time (default: this one) — another
        /// build, to compare two builds on the same machine and hour. It
        /// must take `diagnose --json --no-cache` and read `PHANTOM_DB_URL`
        /// and `PHANTOM_CACHE_DIR`.
        #[arg(long, value_name = "PATH")]
        exe: Option<std::path::PathBuf>,
    },
    /// The rehearsal's wall time by phase, on the built-in incident and with many rows.
    Rehearsal {
        /// PostgreSQL majors, comma-separated, or `all`.
        #[arg(long, default_value = "17", value_name = "MAJORS")]
        versions: String,
        /// Rows in `collections` for the large run.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
}

/// What every command that reads a database takes.
#[derive(Args)]
pub struct Common {
    /// The database, e.g. postgres://postgres:PASSWORD@db.example.supabase.co:5432/postgres
    #[arg(
        long,
        env = "PHANTOM_DB_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub db_url: String,
    /// The migrations folder.
    #[arg(long, default_value = phantom_sync::rehearse::DEFAULT_MIGRATIONS, value_name = "DIR")]
    pub migrations: PathBuf,
    /// Machine-readable output (JSON).
    #[arg(long)]
    pub json: bool,
    /// Replay the migrations even if their effects are cached (and cache nothing).
    #[arg(long)]
    pub no_cache: bool,
}

/// `phantom-sync rehearse`.
#[derive(Debug, Clone, Args)]
pub struct RehearseArgs {
    /// Capture this database (read-only) instead of the built-in incident
    /// [default: $PHANTOM_DB_URL unless --dump is given].
    #[arg(long, conflicts_with = "dump", value_name = "URL")]
    pub db_url: Option<String>,
    /// Rehearse from a pg_dump file (custom format, `pg_dump -Fc`) instead.
    #[arg(long, value_name = "FILE")]
    pub dump: Option<PathBuf>,
    /// Major of the server the dump was made from (with --dump).
    #[arg(long, default_value_t = 17, requires = "dump")]
    pub major: u8,
    /// The migrations folder [default: supabase/migrations; the built-in incident brings its own].
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// Capture the schema only (no data).
    #[arg(long)]
    pub schema_only: bool,
    /// Rehearse the repair although the target has pre-existing drift no step touches.
    #[arg(long)]
    pub accept_existing_drift: bool,
    /// Where the runbook, plan and journals go.
    #[arg(long, default_value = phantom_sync::rehearse::DEFAULT_OUT, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the rehearsal as JSON.
    #[arg(long)]
    pub json: bool,
    /// Replay the migrations even if their effects are cached (and cache nothing).
    #[arg(long)]
    pub no_cache: bool,
}
