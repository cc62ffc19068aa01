//! Running one PostgreSQL client program: on the host (the harness image's
//! own build, copied out), or through the docker CLI in the server's own
//! container (`docker exec`) or in a throw-away one
//! (`docker run --rm --network host`).
//!
//! Connection settings travel as `PG*` environment variables, so no password
//! ever appears in an argument list: the docker CLI takes their values from
//! its own environment (`-e NAME` without `=value`); a program on the host
//! gets them as its own, and none of this process's `PG*` variables, as in a
//! container. The password never enters a throw-away container's
//! environment (where `docker inspect` would show it): it is written to a
//! `.pgpass`-style file (mode 0600) in a private temporary folder, mounted
//! read-only at [`PASS_DIR`] and named by `PGPASSFILE`; the folder is removed
//! when the program ends. For a harness server (tests and rehearsal copies)
//! `PGPASSWORD` is set on the program's process alone, on the host or exec'd.
//! TLS settings travel the same way (`PGSSLMODE`, …); a throw-away container
//! also gets the target's certificate files mounted read-only, with
//! `PGSSLROOTCERT` & co. pointing at them (see
//! [`crate::pg::tls::TlsSettings`]). The harness server is reached over the
//! container's loopback (`docker exec`) or its own bridge address (from the
//! host), where libpq's default (`prefer`) applies and no certificate files
//! are needed. Failures become [`Error::Tool`] with the program's last stderr
//! lines, scrubbed of passwords, and a hint where the cause is known.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;

use super::PgTools;
use super::passfile::{PASS_DIR, password_file};
use crate::pg::target::{Target, redact_url};
use crate::pg::tls::ContainerSettings;
use crate::{Error, Result};

/// How many stderr lines a failure quotes.
const STDERR_LINES: usize = 15;

/// Label on every throw-away tools container, with the tool's name (`docker ps --filter label=…`).
pub const TOOLS_LABEL: &str = "phantom-sync.tool";

/// What the program reads on stdin.
pub(crate) enum Input {
    Null,
    /// These parts, one after the other.
    Parts(Vec<Part>),
}

/// A piece of stdin.
pub(crate) enum Part {
    Bytes(Vec<u8>),
    /// The whole file, streamed.
    File(PathBuf),
}

/// Where the program's stdout goes.
pub(crate) enum Sink {
    Capture,
    /// Written to this file (created with mode 0600, replaced if present).
    File(PathBuf),
}

/// One program run.
pub(crate) struct Call<'a> {
    /// The name errors use (`pg_dump`), which may differ from `program` (`sh`).
    pub tool: &'static str,
    pub program: &'static str,
    pub args: Vec<String>,
    /// The database the program connects to, if any.
    pub target: Option<&'a Target>,
    pub input: Input,
    pub sink: Sink,
    /// What we were doing, for errors ("dumping postgres://…").
    pub doing: String,
}

/// A successful run: captured stdout, or the size and SHA-256 of the file written.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    pub stdout: Vec<u8>,
    pub bytes: u64,
    pub sha256: String,
}

/// Runs `call` to completion.
pub(crate) async fn run(tools: &PgTools, call: Call<'_>) -> Result<Finished> {
    let (mut env, mut mounts) = match call.target {
        Some(target) => connection_env(tools, target)?,
        None => Default::default(),
    };
    let password = call.target.and_then(Target::password);
    // Kept until the program has ended: the container reads the file.
    let pass_dir = match (tools, password) {
        (PgTools::Run { .. }, Some(password)) => {
            let (dir, mount) = password_file(password)?;
            env.push(("PGPASSFILE", format!("{PASS_DIR}/pgpass")));
            mounts.push(mount);
            Some(dir)
        }
        _ => None,
    };
    let stdin_used = !matches!(call.input, Input::Null);
    let (program, args) = command_line(tools, &call, &env, &mounts, stdin_used);
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let PgTools::Host { bin, .. } = tools {
        host_environment(&mut cmd, bin, std::env::vars_os());
    }
    cmd.stdin(if stdin_used {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    for (name, value) in &env {
        cmd.env(name, value);
    }
    if let (PgTools::Exec { .. } | PgTools::Host { .. }, Some(password)) = (tools, password) {
        cmd.env("PGPASSWORD", password);
    }
    let mut child = cmd.spawn().map_err(|e| Error::Tool {
        tool: call.tool.into(),
        detail: match tools {
            PgTools::Host { bin, .. } => format!(
                "{}: cannot run {} with {} first on PATH: {e} (hint: PHANTOM_CLIENTS=container runs the tools in the server's container)",
                call.doing,
                call.program,
                bin.display()
            ),
            _ => format!(
                "{}: cannot run the docker CLI: {e} (hint: install Docker and put `docker` on PATH)",
                call.doing
            ),
        },
    })?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (fed, drained, errors) = tokio::join!(
        feed(stdin, &call.input),
        drain(stdout, &call.sink),
        read_all(stderr)
    );
    let status = child.wait().await.map_err(|e| Error::Tool {
        tool: call.tool.into(),
        detail: format!("{}: {e}", call.doing),
    })?;
    drop(pass_dir);
    let stderr = String::from_utf8_lossy(&errors.unwrap_or_default()).into_owned();
    // Our own side failing (an unreadable input, an unwritable output) is the
    // cause of whatever the program then complains about: report it first.
    let io_error = |e: std::io::Error| Error::Tool {
        tool: call.tool.into(),
        detail: scrub(&format!("{}: {e}", call.doing), password),
    };
    fed.map_err(io_error)?;
    let drained = drained.map_err(io_error)?;
    if !status.success() {
        return Err(failure(&call, &status.to_string(), &stderr, password));
    }
    Ok(drained)
}

/// A program run on the host: the image's programs first on `PATH` (the
/// scripts call `pg_restore` and `psql` by name), and none of the `PG*`
/// variables it would inherit (`inherited`: this process's environment), so
/// the program sees exactly the connection settings a container would.
fn host_environment(
    cmd: &mut Command,
    bin: &Path,
    inherited: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) {
    let mut path = std::ffi::OsString::from(bin.as_os_str());
    for (name, value) in inherited {
        if name == "PATH" {
            path.push(":");
            path.push(value);
        } else if name.to_string_lossy().starts_with("PG") {
            cmd.env_remove(name);
        }
    }
    cmd.env("PATH", path);
}

/// What to start: on the host, the program itself (a client program by its
/// path in the image's build, a shell by name) with its arguments; otherwise
/// the docker CLI with `exec`/`run`, the variables to pass on, the read-only
/// mounts (`run` only), the program and its arguments.
fn command_line(
    tools: &PgTools,
    call: &Call<'_>,
    env: &[(&'static str, String)],
    mounts: &[String],
    stdin_used: bool,
) -> (std::ffi::OsString, Vec<String>) {
    if let PgTools::Host { bin, .. } = tools {
        let program = match call.program {
            "sh" => "sh".into(),
            client => bin.join(client).into_os_string(),
        };
        return (program, call.args.clone());
    }
    let mut args: Vec<String> = Vec::new();
    let interactive = if stdin_used {
        vec!["-i".to_string()]
    } else {
        Vec::new()
    };
    let exec_password = matches!(tools, PgTools::Exec { .. })
        && call.target.is_some_and(|t| t.password().is_some());
    let pass_on = env
        .iter()
        .map(|(name, _)| *name)
        .chain(exec_password.then_some("PGPASSWORD"))
        .flat_map(|name| ["-e".to_string(), name.to_string()]);
    match tools {
        PgTools::Exec { container_id, .. } => {
            args.push("exec".into());
            args.extend(interactive);
            args.extend(pass_on);
            args.push(container_id.clone());
            args.push(call.program.into());
        }
        PgTools::Host { .. } => {}
        PgTools::Run { image, .. } => {
            args.extend(
                ["run", "--rm", "--log-driver", "none", "--network", "host"].map(String::from),
            );
            args.extend([
                "--label".to_string(),
                format!("{TOOLS_LABEL}={}", call.tool),
            ]);
            args.extend(interactive);
            args.extend(pass_on);
            args.extend(mounts.iter().flat_map(|m| ["-v".to_string(), m.clone()]));
            args.extend([
                "--entrypoint".to_string(),
                call.program.to_string(),
                image.clone(),
            ]);
        }
    }
    args.extend(call.args.iter().cloned());
    ("docker".into(), args)
}

/// `PG*` settings (all but the password) for a connection to `target` and,
/// for a throw-away container, the `docker run -v` mounts of its certificate files.
fn connection_env(tools: &PgTools, target: &Target) -> Result<ContainerSettings> {
    let options = target.options();
    let (host, port) = match tools {
        PgTools::Exec { .. } => ("127.0.0.1".to_string(), "5432".to_string()),
        PgTools::Host { direct, .. } => {
            let (host, port) = (options.get_host(), options.get_port());
            match direct {
                Some((published, address))
                    if port == *published && matches!(host, "127.0.0.1" | "localhost") =>
                {
                    (address.clone(), "5432".to_string())
                }
                _ => (host.to_string(), port.to_string()),
            }
        }
        PgTools::Run { .. } => {
            let host = options.get_host();
            if options.get_socket().is_some() || host.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "{target}: a Unix socket cannot be reached from a tools container (hint: connect through TCP, e.g. host=127.0.0.1)"
                )));
            }
            (host.to_string(), options.get_port().to_string())
        }
    };
    let mut env = vec![
        ("PGHOST", host),
        ("PGPORT", port),
        ("PGUSER", options.get_username().to_string()),
        ("PGDATABASE", target.database().to_string()),
        ("PGAPPNAME", "phantom-sync".to_string()),
        ("PGCONNECT_TIMEOUT", "15".to_string()),
    ];
    let mut mounts = Vec::new();
    if matches!(tools, PgTools::Run { .. }) {
        let (tls_env, tls_mounts) = target.tls().container_settings()?;
        env.extend(tls_env);
        mounts = tls_mounts;
    }
    Ok((env, mounts))
}

/// Writes the input, then closes stdin. A program that stops reading early
/// (`pg_restore -l` only needs the archive's head) is not an error here: its
/// exit status tells.
async fn feed(stdin: Option<impl AsyncWrite + Unpin>, input: &Input) -> std::io::Result<()> {
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    let written = async {
        let parts: &[Part] = match input {
            Input::Null => &[],
            Input::Parts(parts) => parts,
        };
        for part in parts {
            match part {
                Part::Bytes(bytes) => stdin.write_all(bytes).await?,
                Part::File(path) => {
                    let named = |e: std::io::Error| {
                        std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display()))
                    };
                    let mut source = tokio::fs::File::open(path).await.map_err(named)?;
                    tokio::io::copy(&mut source, &mut stdin).await?;
                }
            }
        }
        stdin.shutdown().await
    };
    match written.await {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Collects stdout, or streams it into a file while hashing it.
async fn drain(stdout: Option<impl AsyncRead + Unpin>, sink: &Sink) -> std::io::Result<Finished> {
    let Some(mut stdout) = stdout else {
        return Ok(Finished::default());
    };
    match sink {
        Sink::Capture => {
            let mut captured = Vec::new();
            stdout.read_to_end(&mut captured).await?;
            Ok(Finished {
                bytes: captured.len() as u64,
                stdout: captured,
                sha256: String::new(),
            })
        }
        Sink::File(path) => {
            let named = |e: std::io::Error| {
                std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display()))
            };
            let mut file = private_file(path).await.map_err(named)?;
            let mut hasher = Sha256::new();
            let mut bytes = 0u64;
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let n = stdout.read(&mut buffer).await?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
                file.write_all(&buffer[..n]).await?;
                bytes += n as u64;
            }
            file.sync_all().await?;
            Ok(Finished {
                stdout: Vec::new(),
                bytes,
                sha256: format!("{:x}", hasher.finalize()),
            })
        }
    }
}

/// Creates (or truncates) a file only its owner can read: dumps hold data.
pub(crate) async fn private_file(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

async fn read_all(stderr: Option<impl AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(mut stderr) = stderr {
        stderr.read_to_end(&mut out).await?;
    }
    Ok(out)
}

/// The error for a program that exited unsuccessfully.
fn failure(call: &Call<'_>, status: &str, stderr: &str, password: Option<&str>) -> Error {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
    let hint = hint(call.tool, stderr)
        .map(|h| format!("\n(hint: {h})"))
        .unwrap_or_default();
    let detail = format!("{} ({status}):\n{tail}{hint}", call.doing);
    Error::Tool {
        tool: call.tool.into(),
        detail: scrub(&detail, password),
    }
}

/// Removes passwords: URL userinfo and `password=` pairs, and the literal
/// password when it is long enough not to mangle ordinary words.
pub(crate) fn scrub(text: &str, password: Option<&str>) -> String {
    let redacted = redact_url(text);
    match password {
        Some(p) if p.len() >= 4 => redacted.replace(p, "***"),
        _ => redacted,
    }
}

/// A known cause for a failure, from the program's stderr.
fn hint(tool: &str, stderr: &str) -> Option<String> {
    let text = stderr.to_lowercase();
    let has = |needle: &str| text.contains(needle);
    let hint = if has("server version mismatch") {
        format!(
            "this {tool} is older than the server; run the tools of the server's major \
             (PgTools::for_major with the major that `SHOW server_version_num` reports)"
        )
    } else if has("password authentication failed") || has("no password supplied") {
        "check the user and password of the connection URL".to_string()
    } else if has("permission denied") || has("must be owner of") || has("must be member of role") {
        format!(
            "the role lacks privileges for this {tool} run; use a role that can read every table and own every \
             object in scope, e.g. the project's postgres role"
        )
    } else if has("violates foreign key constraint")
        || (has("foreign key constraint") && has("is not present"))
    {
        "rows the backup references were deleted outside the restored scope (e.g. from auth.users); \
         bring those back first — nothing was changed"
            .to_string()
    } else if has("unsupported version") && has("file header") {
        format!(
            "the archive was written by a newer pg_dump than this {tool}; use the tools of the archive's major"
        )
    } else if has("role") && has("does not exist") {
        "the backup names a role this server lacks; roles are cluster-wide and not part of a database backup — \
         create it first"
            .to_string()
    } else if has("already exists") {
        "an object the backup recreates already exists; nothing was changed".to_string()
    } else if has("certificate verify failed") {
        format!(
            "{tool} could not verify the server's certificate with the CA in sslrootcert (mounted read-only into its \
             container); check sslrootcert, or use sslmode=require to encrypt without verifying"
        )
    } else if has("does not match host name") {
        "the server's certificate does not name the host of the URL (libpq before PostgreSQL 15 — the tools of a \
         14 server — matches host names only, never an IP address in the certificate); connect with a host name \
         it names, or use sslmode=verify-ca to check only the CA"
            .to_string()
    } else if has("server does not support ssl") {
        "the server does not accept TLS (ssl = off); use sslmode=prefer, or turn ssl on at the server".to_string()
    } else if has("no encryption") {
        "the server accepts only encrypted connections; use sslmode=require, or verify-full with sslrootcert"
            .to_string()
    } else if has("could not connect")
        || has("connection refused")
        || has("could not translate host name")
        || has("timeout expired")
    {
        "the tools run in a container on the host network; check that host and port are reachable from this machine".to_string()
    } else if has("no such container") {
        "the harness container that served this database is gone; start a new one".to_string()
    } else if has("unable to find image") || has("no such image") || has("pull access denied") {
        "the PostgreSQL image is not on this machine; phantom-sync resolves it with pg::sandbox::image::resolve, which builds one locally (`phantom-sync images`)".to_string()
    } else if has("cannot connect to the docker daemon") {
        "start the Docker daemon, or set DOCKER_HOST to where it listens".to_string()
    } else if has("executable file not found") || has("not found in $path") {
        format!("the image has no {tool} on its PATH; use an image of the official postgres layout")
    } else if has("no space left on device") {
        "free disk space where the backup is written, and inside Docker's storage".to_string()
    } else {
        return None;
    };
    Some(hint)
}

#[cfg(test)]
mod tests;
