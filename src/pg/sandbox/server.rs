//! One ephemeral PostgreSQL server in a container, started through
//! Testcontainers with the unmodified `testcontainers_modules` `Postgres`
//! image. [`PgServer::shared`] keeps one server per major for the whole
//! process; every container gets a watcher that removes it when this process
//! exits — however it exits — because a container held in a `static` is never
//! dropped.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::core::Mount;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::testcontainers::{CopyDataSource, CopyTargetOptions};
use tokio::sync::OnceCell;
use tracing::Instrument;

use super::image::{self, ImageRef, docker, tail};
use crate::pg::target::Target;
use crate::{Error, Result};

/// Superuser credentials of every harness server (throw-away containers).
pub(crate) const USER: &str = "postgres";
pub(crate) const PASSWORD: &str = "postgres";

/// Where the data directory lives inside the container (a tmpfs).
const PGDATA: &str = "/var/lib/postgresql/data";

/// Label put on every container this harness starts, with the owner's pid.
pub const OWNER_LABEL: &str = "phantom-sync.owner-pid";

/// Server settings for throw-away databases: durability off, room for parallel tests.
const SERVER_FLAGS: &[&str] = &[
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
    "-c",
    "max_connections=300",
    "-c",
    "checkpoint_timeout=1h",
    "-c",
    "max_wal_size=4GB",
];

/// A running PostgreSQL container.
#[derive(Debug, Clone)]
pub struct PgServer {
    pub major: u8,
    pub image: ImageRef,
    pub container_id: String,
    pub host: String,
    pub port: u16,
    /// The container's own address on Docker's bridge network, when this
    /// process reaches it: the harness's own connections go there rather
    /// than through the published port, whose proxy doubles each round trip
    /// and spends CPU on every byte (0.22 against 0.12 ms per `SELECT 1`, and
    /// 0.1 ms of the proxy's CPU each, on this project's machine kind).
    /// `None`: the published port (Docker Desktop on macOS, for one, does
    /// not route to the bridge).
    pub direct: Option<String>,
    /// The folder of the image's own client programs copied out to this
    /// host, or `None`: they run in the container (`docker exec`).
    pub clients: Option<std::path::PathBuf>,
}

/// Options for starting a server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Keep the data directory on a tmpfs (default for tests; off for rehearsals of big captures).
    pub disk_data: bool,
    /// Serve TLS (`ssl = on`) with this certificate; plain connections stay allowed.
    pub tls: Option<ServerTls>,
}

/// A server's TLS identity, as PEM text (tests make one with a CA of their own).
#[derive(Clone)]
pub struct ServerTls {
    /// The server's certificate (`ssl_cert_file`), followed by any intermediates.
    pub cert_pem: String,
    /// Its private key (`ssl_key_file`), unencrypted.
    pub key_pem: String,
    /// The CA client certificates are checked against (`ssl_ca_file`), if any.
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"***")
            .field("client_ca_pem", &self.client_ca_pem.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Where a TLS server's files are copied in (root-owned) …
const TLS_INBOX: &str = "/etc/phantom-sync/tls-in";
/// … and where the server reads them (owned by postgres, mode 0600, as it demands of a key).
const TLS_DIR: &str = "/etc/phantom-sync/tls";

/// Runtime that owns every container's Testcontainers handle, so handles
/// outlive the (per-test) runtimes that asked for them.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("phantom-harness")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the harness runtime: {e}"))
    })
}

/// Handles of shared containers; never dropped, removed by their watchers.
static KEPT: Mutex<Vec<ContainerAsync<Postgres>>> = Mutex::new(Vec::new());

impl PgServer {
    /// The process-wide server for `major`, started on first use.
    pub async fn shared(major: u8) -> Result<&'static PgServer> {
        static SERVERS: OnceLock<Mutex<BTreeMap<u8, &'static OnceCell<PgServer>>>> =
            OnceLock::new();
        image::check_major(major)?;
        let cell: &'static OnceCell<PgServer> = {
            let mut map = SERVERS
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            map.entry(major)
                .or_insert_with(|| Box::leak(Box::new(OnceCell::new())))
        };
        cell.get_or_try_init(|| async {
            let starting = tracing::info_span!(
                target: "phantom_sync::progress",
                "server",
                task = %format!("starting a scratch PostgreSQL {major} container")
            );
            let (server, handle) = PgServer::launch(major, ServerOptions::default())
                .instrument(starting)
                .await?;
            KEPT.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
            Ok(server)
        })
        .await
    }

    /// Starts a server of its own; remove it with [`PgServer::stop`] (or let
    /// the watcher do it when the process exits).
    pub async fn start(major: u8, options: ServerOptions) -> Result<PgServer> {
        let (server, handle) = PgServer::launch(major, options).await?;
        KEPT.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
        Ok(server)
    }

    async fn launch(
        major: u8,
        options: ServerOptions,
    ) -> Result<(PgServer, ContainerAsync<Postgres>)> {
        let image = image::resolve(major).await?;
        sweep_orphans().await;
        let session = format!("{}-{}", std::process::id(), unique());
        let started = {
            let image = image.clone();
            let session = session.clone();
            runtime().spawn(async move { start_container(&image, &session, options).await })
        };
        let handle = match started.await {
            Ok(Ok(handle)) => handle,
            Ok(Err(message)) => return Err(not_ready(major, &image, &session, &message).await),
            Err(e) => {
                return Err(Error::Environment(format!(
                    "starting PostgreSQL {major}: {e}"
                )));
            }
        };
        let container_id = handle.id().to_string();
        watch(&container_id);
        let port = runtime()
            .spawn({
                let id = container_id.clone();
                async move { host_port(&id).await }
            })
            .await
            .map_err(|e| Error::Environment(e.to_string()))??;
        let direct = runtime()
            .spawn({
                let id = container_id.clone();
                async move { direct_address(&id).await }
            })
            .await
            .ok()
            .flatten();
        let clients = super::clients::on_host(&image).await;
        let server = PgServer {
            major,
            image,
            container_id,
            host: "127.0.0.1".into(),
            port,
            direct,
            clients,
        };
        Ok((server, handle))
    }

    /// Connection options for `database` as the superuser. The mode is
    /// pinned to `prefer` (TLS when the server has it, unverified), whatever
    /// `PGSSLMODE` says: the harness's own connections go to loopback.
    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .ssl_mode(PgSslMode::Prefer)
            .host(&self.host)
            .port(self.port)
            .username(USER)
            .password(PASSWORD)
            .database(database)
    }

    /// A [`Target`] for `database` on this server.
    pub fn target(&self, database: &str) -> Target {
        Target::from_options(self.options(database)).with_password(Some(PASSWORD.to_string()))
    }

    /// [`PgServer::target`] through the container's own address when this
    /// process reaches it (see [`PgServer::direct`]): for the harness's own
    /// connections only — what is printed, recorded or handed to a child
    /// process names the published port.
    pub fn connect_target(&self, database: &str) -> Target {
        let options = match &self.direct {
            Some(address) => self.options(database).host(address).port(5432),
            None => self.options(database),
        };
        Target::from_options(options).with_password(Some(PASSWORD.to_string()))
    }

    /// The URL of `database` on this server, password included (for child
    /// processes only: never print it; print [`Target::redacted`]).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@{}:{}/{database}",
            self.host, self.port
        )
    }

    /// Removes the container now.
    pub async fn stop(self) -> Result<()> {
        docker(&["rm", "-f", "-v", &self.container_id])
            .await
            .map(|_| ())
            .map_err(|detail| Error::Tool {
                tool: "docker rm".into(),
                detail,
            })
    }
}

async fn start_container(
    image: &ImageRef,
    session: &str,
    options: ServerOptions,
) -> std::result::Result<ContainerAsync<Postgres>, String> {
    let mut request = Postgres::default()
        .with_name(image.name.clone())
        .with_tag(image.tag.clone())
        .with_env_var("PGDATA", PGDATA)
        .with_cmd(server_command(options.tls.is_some()))
        .with_label(OWNER_LABEL, std::process::id().to_string())
        .with_label("phantom-sync.session", session)
        .with_startup_timeout(Duration::from_secs(90));
    if !options.disk_data {
        request = request.with_mount(Mount::tmpfs_mount(PGDATA));
    }
    if let Some(tls) = options.tls {
        let files = [
            ("server.crt", Some(tls.cert_pem)),
            ("server.key", Some(tls.key_pem)),
            ("ca.crt", tls.client_ca_pem),
        ];
        for (name, pem) in files {
            if let Some(pem) = pem {
                request = request.with_copy_to(
                    CopyTargetOptions::new(format!("{TLS_INBOX}/{name}")).with_mode(0o600),
                    CopyDataSource::Data(pem.into_bytes()),
                );
            }
        }
    }
    request.start().await.map_err(|e| e.to_string())
}

/// The container's command: the server flags, and for TLS a root step that
/// hands the copied files to the postgres user (the server refuses a key that
/// others can read) before the image's own entry point carries on.
fn server_command(tls: bool) -> Vec<String> {
    let mut flags: Vec<String> = SERVER_FLAGS.iter().map(|f| f.to_string()).collect();
    if !tls {
        return flags;
    }
    flags.extend(
        [
            "ssl=on".to_string(),
            format!("ssl_cert_file={TLS_DIR}/server.crt"),
            format!("ssl_key_file={TLS_DIR}/server.key"),
        ]
        .into_iter()
        .flat_map(|setting| ["-c".to_string(), setting]),
    );
    let script = format!(
        "set -e; install -d -o postgres -g postgres -m 0700 {TLS_DIR}; \
         for f in {TLS_INBOX}/*; do install -o postgres -g postgres -m 0600 \"$f\" {TLS_DIR}/; done; \
         if [ -f {TLS_DIR}/ca.crt ]; then set -- \"$@\" -c ssl_ca_file={TLS_DIR}/ca.crt; fi; \
         exec docker-entrypoint.sh \"$@\""
    );
    let mut command = vec![
        "sh".to_string(),
        "-c".to_string(),
        script,
        "phantom-sync-tls".to_string(),
        "postgres".to_string(),
    ];
    command.extend(flags);
    command
}

/// The container's address on its first network, if a TCP connection to its
/// port 5432 opens within 300 ms.
async fn direct_address(container_id: &str) -> Option<String> {
    let addresses = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        container_id,
    ])
    .await
    .ok()?;
    let address: std::net::IpAddr = addresses.split_whitespace().next()?.parse().ok()?;
    let connecting = tokio::net::TcpStream::connect((address, 5432));
    match tokio::time::timeout(Duration::from_millis(300), connecting).await {
        Ok(Ok(_)) => Some(address.to_string()),
        _ => None,
    }
}

async fn host_port(container_id: &str) -> Result<u16> {
    let mapping = docker(&["port", container_id, "5432/tcp"])
        .await
        .map_err(|detail| Error::Tool {
            tool: "docker port".into(),
            detail,
        })?;
    mapping
        .lines()
        .filter_map(|l| l.rsplit(':').next())
        .find_map(|p| p.trim().parse().ok())
        .ok_or_else(|| {
            Error::Environment(format!(
                "container {container_id} publishes no port for 5432: {mapping}"
            ))
        })
}

/// A start that failed: say why, with the container's last log lines, and remove it.
async fn not_ready(major: u8, image: &ImageRef, session: &str, message: &str) -> Error {
    let filter = format!("label=phantom-sync.session={session}");
    let ids = docker(&["ps", "-aq", "--filter", &filter])
        .await
        .unwrap_or_default();
    let mut logs = String::new();
    for id in ids.lines() {
        let out = tokio::process::Command::new("docker")
            .args(["logs", "--tail", "15", id])
            .output()
            .await;
        if let Ok(out) = out {
            logs.push_str(&String::from_utf8_lossy(&out.stdout));
            logs.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        let _ = docker(&["rm", "-f", "-v", id]).await;
    }
    Error::Environment(format!(
        "PostgreSQL {major} ({}) did not become ready: {message}\nlast log lines:\n{}",
        image.reference(),
        tail(&logs, 15)
    ))
}

/// Starts a detached watcher that removes the container once this process is gone.
fn watch(container_id: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; docker rm -f -v {container_id} >/dev/null 2>&1",
        pid = std::process::id()
    );
    let spawned = std::process::Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .or_else(|_| {
            std::process::Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the cleanup watcher for container {container_id}: {e}");
    }
}

/// Removes containers left by harness processes that no longer exist.
async fn sweep_orphans() {
    let filter = format!("label={OWNER_LABEL}");
    let Ok(list) = docker(&[
        "ps",
        "-a",
        "--filter",
        &filter,
        "--format",
        &format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}"),
    ])
    .await
    else {
        return;
    };
    for line in list.lines() {
        let mut parts = line.split_whitespace();
        let (Some(id), Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = docker(&["rm", "-f", "-v", id]).await;
        }
    }
}

/// A process-unique number (for names).
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
