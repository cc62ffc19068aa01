//! Which PostgreSQL image a major version runs on, and getting it onto this
//! machine. Resolution order: the configured image is already present → use
//! it; else `docker pull` it; else (for the default `postgres` image) build
//! `phantom-sync/postgres:<major>` locally with the recipe in `image/`, which
//! needs no image registry ([`build_with`]). The recipe is embedded in the
//! binary, so an installed `phantom-sync` can build images outside this
//! repository too.

mod recipe;

use std::process::Stdio;

use tokio::process::Command;
use tracing::Instrument;

use crate::{Error, Result};

pub(crate) use recipe::tail;
pub use recipe::{
    BASE_REPOSITORY, BuildOutcome, BuildSettings, BuiltImage, LOCAL_REPOSITORY, build, build_with,
    cache_dir, write_recipe,
};

/// PostgreSQL majors phantom-sync supports.
pub const SUPPORTED_MAJORS: [u8; 5] = [14, 15, 16, 17, 18];

/// The default image name; its tags are major versions.
pub const DEFAULT_IMAGE: &str = "postgres";

/// Where an image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageOrigin {
    /// It was already on this machine.
    Present,
    /// `docker pull` fetched it.
    Pulled,
    /// Built here from the embedded recipe.
    Built,
}

/// A resolved image: `name:tag`, ready to run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageRef {
    pub name: String,
    pub tag: String,
    pub origin: ImageOrigin,
}

impl ImageRef {
    /// `name:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

/// Checks that `major` is one phantom-sync supports.
pub fn check_major(major: u8) -> Result<()> {
    if SUPPORTED_MAJORS.contains(&major) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "PostgreSQL {major} is not supported (hint: phantom-sync supports majors 14, 15, 16, 17 and 18)"
        )))
    }
}

/// The majors to run, from `PHANTOM_PG_VERSIONS` (e.g. `14,15,16,17,18`); default 17.
pub fn versions_from_env() -> Result<Vec<u8>> {
    match std::env::var("PHANTOM_PG_VERSIONS") {
        Ok(text) if !text.trim().is_empty() => parse_versions(&text, "PHANTOM_PG_VERSIONS"),
        _ => Ok(vec![17]),
    }
}

/// Parses a comma-separated list of majors; `all` means every supported one.
/// `source` names where the text came from (`--versions`, an environment
/// variable) for the error message.
pub fn parse_versions(text: &str, source: &str) -> Result<Vec<u8>> {
    if text.trim() == "all" {
        return Ok(SUPPORTED_MAJORS.to_vec());
    }
    let mut majors = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let major: u8 = part.parse().map_err(|_| {
            Error::Invalid(format!(
                "{source}: '{part}' is not a PostgreSQL major (hint: a comma-separated list such as 14,15,16,17,18, or all)"
            ))
        })?;
        check_major(major)?;
        if !majors.contains(&major) {
            majors.push(major);
        }
    }
    Ok(majors)
}

/// The configured image (`PHANTOM_PG_IMAGE`) for `major`. A value with a tag
/// (`supabase/postgres:15.8.1.060`) is used as is; otherwise the tag is the major.
fn configured(major: u8) -> (String, String) {
    let setting = std::env::var("PHANTOM_PG_IMAGE").unwrap_or_default();
    let setting = if setting.trim().is_empty() {
        DEFAULT_IMAGE.to_string()
    } else {
        setting
    };
    match setting.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), tag.to_string()),
        _ => (setting, major.to_string()),
    }
}

/// Finds, pulls or builds the image for `major`.
pub async fn resolve(major: u8) -> Result<ImageRef> {
    check_major(major)?;
    ensure_docker().await?;
    let (name, tag) = configured(major);
    let reference = format!("{name}:{tag}");
    if image_present(&reference).await? {
        return Ok(ImageRef {
            name,
            tag,
            origin: ImageOrigin::Present,
        });
    }
    if docker(&["pull", "--quiet", &reference]).await.is_ok() {
        return Ok(ImageRef {
            name,
            tag,
            origin: ImageOrigin::Pulled,
        });
    }
    if name != DEFAULT_IMAGE {
        return Err(Error::Environment(format!(
            "image {reference} is not on this machine and `docker pull {reference}` failed \
             (hint: pull or load it first, or unset PHANTOM_PG_IMAGE to use a locally built image)"
        )));
    }
    let settings = BuildSettings::from_env();
    let built = build_with(&settings, &[major])
        .instrument(tracing::info_span!(
            target: "phantom_sync::progress",
            "image",
            task = %format!(
                "preparing the local image {} (built without a registry the first time: a few minutes)",
                settings.reference(major)
            )
        ))
        .await?;
    if built.iter().any(|b| b.outcome == BuildOutcome::Built) {
        tracing::info!(
            target: "phantom_sync::progress",
            "image: {} is ready; later runs reuse it",
            settings.reference(major)
        );
    }
    Ok(ImageRef {
        name: settings.repository,
        tag: major.to_string(),
        origin: ImageOrigin::Built,
    })
}

async fn image_present(reference: &str) -> Result<bool> {
    Ok(
        docker(&["image", "inspect", "--format", "{{.Id}}", reference])
            .await
            .is_ok(),
    )
}

/// Fails with an actionable message when no Docker engine answers.
pub async fn ensure_docker() -> Result<()> {
    match docker(&["version", "--format", "{{.Server.Version}}"]).await {
        Ok(_) => Ok(()),
        Err(detail) => {
            let host = std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock (default)".into());
            Err(Error::Environment(format!(
                "no Docker engine answered at {host}: {} (hint: start the Docker daemon, or set DOCKER_HOST to where it listens)",
                tail(&detail, 3)
            )))
        }
    }
}

/// Runs `docker <args>`; Ok(stdout) or Err(stderr).
pub(crate) async fn docker(args: &[&str]) -> std::result::Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run the docker CLI: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_reject_unsupported_majors() {
        assert_eq!(
            parse_versions("14, 15,18", "--versions").unwrap(),
            vec![14, 15, 18]
        );
        assert_eq!(
            parse_versions("all", "--versions").unwrap(),
            SUPPORTED_MAJORS.to_vec()
        );
        assert_eq!(parse_versions("17,17", "--versions").unwrap(), vec![17]);
        let err = parse_versions("13", "--versions").unwrap_err().to_string();
        assert!(err.contains("PostgreSQL 13 is not supported"), "{err}");
        let err = parse_versions("seventeen", "--versions")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--versions: 'seventeen'"), "{err}");
    }
}
