//! TLS end to end, on every major in PHANTOM_PG_VERSIONS: a harness server
//! with `ssl = on` and a certificate signed by a CA made here (rcgen) is
//! reached with each `sslmode`; a wrong CA, a wrong host name and a server
//! without TLS fail with a clear `Error::Connect`; pg_dump and psql in their
//! tools container verify the server with the mounted CA and present a client
//! certificate. Every container is removed, pass or fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phantom_sync::Error;
use phantom_sync::pg::sandbox::{PgServer, ServerOptions, ServerTls, versions_from_env};
use phantom_sync::pg::target::Target;
use phantom_sync::pg::tools::{DumpScope, PgTools};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sqlx::Connection;

type TestResult = anyhow::Result<()>;

/// The harness servers' password; it must never show in an error.
const PASSWORD: &str = "postgres";

/// A CA, a server certificate it signed (for 127.0.0.1 and localhost), a
/// client certificate for the postgres role, and an unrelated CA, as files.
struct Pki {
    dir: PathBuf,
    server: ServerTls,
}

impl Pki {
    fn new(name: &str) -> anyhow::Result<Pki> {
        let dir = std::env::temp_dir().join(format!("phantom-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (ca_pem, ca) = new_ca("phantom-sync test CA")?;
        let (wrong_pem, _) = new_ca("some other CA")?;

        let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &ca)?;

        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client
            .distinguished_name
            .push(DnType::CommonName, "postgres");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &ca)?;

        std::fs::write(dir.join("ca.crt"), &ca_pem)?;
        std::fs::write(dir.join("wrong-ca.crt"), wrong_pem)?;
        std::fs::write(dir.join("client.crt"), client_cert.pem())?;
        write_private(&dir.join("client.key"), &client_key.serialize_pem())?;
        Ok(Pki {
            dir,
            server: ServerTls {
                cert_pem: server_cert.pem(),
                key_pem: server_key.serialize_pem(),
                client_ca_pem: Some(ca_pem),
            },
        })
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_ca(name: &str) -> anyhow::Result<(String, Issuer<'static, KeyPair>)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Runs `check` on its own task, so that the server is stopped even when an
/// assertion panics; then reports the check's outcome.
async fn with_server<F, Fut>(major: u8, options: ServerOptions, check: F) -> TestResult
where
    F: FnOnce(PgServer) -> Fut,
    Fut: Future<Output = TestResult> + Send + 'static,
{
    let server = PgServer::start(major, options).await?;
    let outcome = tokio::spawn(check(server.clone())).await;
    server.stop().await?;
    match outcome {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(e.into()),
    }
}

/// A target for `database` on `server` through `host`, with these URL parameters.
fn target(server: &PgServer, host: &str, params: &str) -> anyhow::Result<Target> {
    let url = format!(
        "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{params}",
        server.port
    );
    Ok(Target::parse(&url)?)
}

/// Whether the connection `target` opens is encrypted, by the server's own account.
async fn encrypted(target: &Target) -> anyhow::Result<bool> {
    let mut conn = target.connect().await?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(ssl)
}

/// The connection error for `target`, checked to name it without its password.
async fn connect_error(target: &Target) -> String {
    let err = match target.connect().await {
        Ok(_) => panic!("{target}: connected, but should not have"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(
        text.starts_with(&format!("cannot connect to {}", target.redacted())),
        "{text}"
    );
    assert!(!text.contains(&format!(":{PASSWORD}@")), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_and_tools() -> TestResult {
    for major in versions_from_env()? {
        let pki = Arc::new(Pki::new(&major.to_string())?);
        let options = ServerOptions {
            tls: Some(pki.server.clone()),
            ..ServerOptions::default()
        };
        let checked = Arc::clone(&pki);
        with_server(major, options, move |server| async move {
            connections(&server, &checked).await?;
            tools(&server, &checked, major).await
        })
        .await?;
    }
    Ok(())
}

async fn connections(server: &PgServer, pki: &Pki) -> TestResult {
    let (ca, wrong) = (pki.file("ca.crt"), pki.file("wrong-ca.crt"));

    let full = target(
        server,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    )?;
    assert!(encrypted(&full).await?, "verify-full with the right CA");

    let wrong_ca = target(
        server,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={wrong}"),
    )?;
    let text = connect_error(&wrong_ca).await;
    assert!(
        text.contains(&format!("not signed by the CA in sslrootcert={wrong}"))
            && text.contains("sslmode=require"),
        "{text}"
    );

    // 127.0.0.2 reaches the same port, but the certificate does not name it.
    let other_host = target(
        server,
        "127.0.0.2",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    )?;
    let text = connect_error(&other_host).await;
    assert!(text.contains("not issued for the host 127.0.0.2"), "{text}");
    let ca_only = target(
        server,
        "127.0.0.2",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    )?;
    assert!(encrypted(&ca_only).await?, "verify-ca skips the host name");

    let require = target(server, "127.0.0.1", "sslmode=require")?;
    assert!(encrypted(&require).await?, "require encrypts without a CA");
    let prefer = target(server, "127.0.0.1", "sslmode=prefer")?;
    assert!(
        encrypted(&prefer).await?,
        "prefer takes the TLS the server offers"
    );
    let disable = target(server, "127.0.0.1", "sslmode=disable")?;
    assert!(!encrypted(&disable).await?, "disable stays unencrypted");

    // A client certificate reaches the server.
    let client = target(
        server,
        "127.0.0.1",
        &format!(
            "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
            pki.file("client.crt"),
            pki.file("client.key")
        ),
    )?;
    let mut conn = client.connect().await?;
    let dn: Option<String> =
        sqlx::query_scalar("SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
    conn.close().await?;
    assert!(
        dn.is_some_and(|dn| dn.contains("CN=postgres")),
        "client certificate not seen"
    );
    Ok(())
}

async fn tools(server: &PgServer, pki: &Pki, major: u8) -> TestResult {
    let ca = pki.file("ca.crt");
    let tools = PgTools::for_major(major).await?;
    // libpq learnt to match an IP address in a certificate in PostgreSQL 15;
    // the tools of a 14 server must name the host as the certificate does.
    let host = if major < 15 {
        let by_ip = target(
            server,
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )?;
        let err = tools
            .psql_script(&by_ip, "SELECT 1;")
            .await
            .expect_err("libpq 14 does not match IP addresses in certificates");
        assert!(err.to_string().contains("before PostgreSQL 15"), "{err}");
        "localhost"
    } else {
        "127.0.0.1"
    };
    let client = target(
        server,
        host,
        &format!(
            "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
            pki.file("client.crt"),
            pki.file("client.key")
        ),
    )?;
    let seen = tools
        .psql_script(
            &client,
            "SELECT 'ssl=' || ssl || ' dn=' || coalesce(client_dn, '-') FROM pg_stat_ssl WHERE pid = pg_backend_pid();",
        )
        .await?;
    assert!(
        seen.contains("ssl=true dn=") && seen.contains("CN=postgres"),
        "{seen}"
    );

    let full = target(
        server,
        host,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    )?;
    tools
        .psql_script(
            &full,
            "CREATE TABLE tls_probe (id int); INSERT INTO tls_probe VALUES (1);",
        )
        .await?;
    let out = pki.dir.join("dump.pgc");
    let dump = tools.dump(&full, &out, &DumpScope::default()).await?;
    assert!(dump.bytes > 0 && out.is_file(), "{dump:?}");
    let listing = std::fs::read(&out)?;
    assert!(
        listing.windows(9).any(|w| w == b"tls_probe"),
        "the dump holds the table"
    );

    let wrong = target(
        server,
        host,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            pki.file("wrong-ca.crt")
        ),
    )?;
    let err = tools
        .dump(&wrong, &pki.dir.join("wrong.pgc"), &DumpScope::default())
        .await
        .expect_err("pg_dump must refuse a server its CA did not sign");
    let text = err.to_string();
    assert!(
        text.contains("certificate verify failed")
            && text.contains("could not verify the server's certificate"),
        "{text}"
    );
    assert!(!text.contains(&format!(":{PASSWORD}@")), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls() -> TestResult {
    for major in versions_from_env()? {
        with_server(major, ServerOptions::default(), |server| async move {
            let require = target(&server, "127.0.0.1", "sslmode=require")?;
            let text = connect_error(&require).await;
            assert!(
                text.contains("does not accept TLS") && text.contains("sslmode=prefer"),
                "{text}"
            );
            let prefer = target(&server, "127.0.0.1", "sslmode=prefer")?;
            assert!(!encrypted(&prefer).await?, "prefer falls back to plain");
            let allow = target(&server, "127.0.0.1", "sslmode=allow")?;
            assert!(!encrypted(&allow).await?, "allow starts plain");
            Ok(())
        })
        .await?;
    }
    Ok(())
}
