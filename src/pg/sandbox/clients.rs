//! The sandbox image's own client programs (pg_dump, pg_restore, psql) on
//! the host. Run through `docker exec`, each call cost 70–120 ms of the docker
//! CLI and the runtime before the program even started, and one scenario
//! catalogue makes about 250 of them. An image phantom-sync built carries its
//! exact PostgreSQL build (label `phantom-sync.recipe`, relocatable: its
//! programs find their libraries through `$ORIGIN/../lib`), so that build is
//! copied out of the image once, into `<cache>/clients/<recipe>/`, and the
//! programs run as plain processes: the same binaries as the server's, of its
//! major by construction. They are used only once pg_dump, pg_restore and
//! psql have each run `--version` on this host and printed the image's
//! version. Any other image, a copy that fails, or a program that will not
//! start here (a library the host lacks) leaves the tools in the container,
//! as before; so does `PHANTOM_CLIENTS=container`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::image::{ImageRef, cache_dir, docker};

/// Where the image keeps its PostgreSQL build (see the recipe's Dockerfile).
const IN_IMAGE: &str = "/usr/local/pgsql";

/// The folder of the image's client programs on the host, copied out on first
/// use; `None` when they must run in the container (see the module's note).
/// Decided once per image and process.
pub(crate) async fn on_host(image: &ImageRef) -> Option<PathBuf> {
    static DECIDED: OnceLock<Mutex<BTreeMap<String, Option<PathBuf>>>> = OnceLock::new();
    if !wanted(std::env::var("PHANTOM_CLIENTS").ok().as_deref()) {
        return None;
    }
    let reference = image.reference();
    let decided = DECIDED.get_or_init(Default::default);
    if let Some(known) = decided
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&reference)
    {
        return known.clone();
    }
    let bin = match copy_out(&reference).await {
        Ok(bin) => Some(bin),
        Err(why) => {
            tracing::debug!("{reference}: client programs stay in the container: {why}");
            None
        }
    };
    decided
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(reference, bin.clone());
    bin
}

/// False when `PHANTOM_CLIENTS` says `container`.
fn wanted(setting: Option<&str>) -> bool {
    setting.is_none_or(|v| v.trim() != "container")
}

/// The image's build on the host (copied out unless already there), checked to run.
async fn copy_out(reference: &str) -> Result<PathBuf, String> {
    let labels = docker(&[
        "image",
        "inspect",
        "--format",
        r#"{{index .Config.Labels "phantom-sync.recipe"}} {{index .Config.Labels "phantom-sync.pg-version"}}"#,
        reference,
    ])
    .await?;
    let (recipe, version) = recipe_and_version(&labels)
        .ok_or_else(|| format!("not an image phantom-sync built (labels: {labels:?})"))?;
    let parent = cache_dir().join("clients");
    let dir = parent.join(recipe);
    if !dir.join("bin").join("pg_dump").is_file() {
        std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        // Copied into a private folder, then renamed into place: a reader
        // never sees half a copy, and of two processes copying at once the
        // second finds the folder there and drops its own.
        let partial = tempfile::Builder::new()
            .prefix(".copying-")
            .tempdir_in(&parent)
            .map_err(|e| format!("{}: {e}", parent.display()))?;
        copy_from_image(reference, partial.path()).await?;
        let copied = partial.keep();
        if std::fs::rename(&copied, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&copied);
        }
    }
    let bin = dir.join("bin");
    check_runs(&bin, version).await?;
    Ok(bin)
}

/// `17.10.0-1a2b…` and `17.10.0` from the two labels; `None` when either is
/// missing or the recipe could not name a folder.
fn recipe_and_version(labels: &str) -> Option<(&str, &str)> {
    let (recipe, version) = labels.trim().split_once(' ')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s != "<no value>"
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !s.starts_with('.')
    };
    (plain(recipe) && plain(version)).then_some((recipe, version))
}

/// `docker cp` of the image's build into `into`, through a container that
/// is created (never started) and removed again.
async fn copy_from_image(reference: &str, into: &Path) -> Result<(), String> {
    let pid = std::process::id();
    let name = format!("phantom-sync-clients-{pid}-{}", super::server::unique());
    // Labelled like the harness's servers, so that the sweep removes it if
    // this process dies before it does.
    let owner = format!("{}={pid}", super::server::OWNER_LABEL);
    docker(&["create", "--label", &owner, "--name", &name, reference]).await?;
    let source = format!("{name}:{IN_IMAGE}/.");
    let copied = docker(&["cp", &source, &into.display().to_string()]).await;
    let removed = docker(&["rm", "--force", &name]).await;
    copied?;
    removed.map(|_| ())
}

/// The programs the tools run — pg_dump, pg_restore and psql — must each
/// start from `bin` and print `version`'s major.minor.
async fn check_runs(bin: &Path, version: &str) -> Result<(), String> {
    let wanted = version.rsplitn(2, '.').last().unwrap_or(version);
    for name in PROGRAMS {
        let program = bin.join(name);
        let output = tokio::process::Command::new(&program)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let printed = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !printed.split_whitespace().any(|word| word == wanted) {
            return Err(format!(
                "{} --version printed {:?} {:?}, not {wanted}",
                program.display(),
                printed.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// The client programs the tools run.
const PROGRAMS: [&str; 3] = ["pg_dump", "pg_restore", "psql"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantom_clients_container_keeps_the_programs_in_the_container() {
        assert!(!wanted(Some("container")));
        assert!(!wanted(Some(" container\n")));
        for setting in [None, Some(""), Some("host")] {
            assert!(wanted(setting), "{setting:?}");
        }
    }

    #[test]
    fn the_labels_name_a_recipe_folder_and_a_version_or_nothing() {
        assert_eq!(
            recipe_and_version("17.10.0-387c330fe73c0b4f 17.10.0\n"),
            Some(("17.10.0-387c330fe73c0b4f", "17.10.0"))
        );
        for labels in [
            "<no value> <no value>",
            " 17.10.0",
            "17.10.0-abc",
            "../etc 17.10.0",
            "a/b 17.10.0",
            "..x 17.1",
        ] {
            assert_eq!(recipe_and_version(labels), None, "{labels:?}");
        }
    }
}
