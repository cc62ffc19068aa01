use rustls::CertificateError;

use super::test_files::{CERT, Files, KEY};
use super::*;

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

fn resolve(pairs: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<TlsSettings, String> {
    TlsSettings::resolve(&query(pairs), env(vars), None)
}

#[test]
fn libpq_defaults_to_prefer_without_files() {
    let tls = resolve(&[], &[]).unwrap();
    assert_eq!(tls.mode(), SslMode::Prefer);
    assert_eq!(tls.root_cert(), None);
    assert_eq!(tls.client_cert(), None);
    assert_eq!(tls.attempts(false), [Attempt::Negotiate, Attempt::Plain]);
    assert_eq!(
        tls.attempts(true),
        [Attempt::Plain],
        "sockets ignore sslmode"
    );
    assert_eq!(tls, TlsSettings::default());
}

#[test]
fn every_mode_parses_and_maps_to_libpq_attempts() {
    for mode in SslMode::ALL {
        assert_eq!(SslMode::parse(mode.as_str()), Some(mode));
    }
    let files = Files::new("modes");
    let ca = files.ca.display().to_string();
    let attempts = |mode: &str, root: bool| {
        let mut pairs = vec![("sslmode", mode)];
        if root {
            pairs.push(("sslrootcert", &ca));
        }
        resolve(&pairs, &[]).unwrap().attempts(false)
    };
    use Attempt::*;
    assert_eq!(attempts("disable", false), [Plain]);
    assert_eq!(attempts("allow", false), [Plain, Tls(Verify::Nothing)]);
    assert_eq!(attempts("prefer", false), [Negotiate, Plain]);
    assert_eq!(attempts("require", false), [Tls(Verify::Nothing)]);
    // A root CA makes libpq check the chain in every mode that uses TLS.
    assert_eq!(attempts("allow", true), [Plain, Tls(Verify::Ca)]);
    assert_eq!(attempts("prefer", true), [Tls(Verify::Ca), Plain]);
    assert_eq!(attempts("require", true), [Tls(Verify::Ca)]);
    assert_eq!(attempts("verify-ca", true), [Tls(Verify::Ca)]);
    assert_eq!(attempts("verify-full", true), [Tls(Verify::CaAndHost)]);
}

#[test]
fn the_url_wins_over_the_environment() {
    let files = Files::new("env");
    let ca = files.ca.display().to_string();
    let other = files.dir.join("other.crt");
    std::fs::write(&other, CERT).unwrap();
    let other = other.display().to_string();

    let tls = resolve(&[], &[("PGSSLMODE", "require")]).unwrap();
    assert_eq!(tls.mode(), SslMode::Require);
    let tls = resolve(&[("sslmode", "disable")], &[("PGSSLMODE", "verify-full")]).unwrap();
    assert_eq!(tls.mode(), SslMode::Disable);

    let tls = resolve(&[], &[("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", &ca)]).unwrap();
    assert_eq!(tls.mode(), SslMode::VerifyCa);
    assert_eq!(tls.root_cert(), Some(&RootCert::File(files.ca.clone())));
    let tls = resolve(&[("sslrootcert", &other)], &[("PGSSLROOTCERT", &ca)]).unwrap();
    assert_eq!(tls.root_cert(), Some(&RootCert::File(other.clone().into())));
    // An empty value means "not given", as in libpq.
    let tls = resolve(&[("sslrootcert", "")], &[("PGSSLROOTCERT", &ca)]).unwrap();
    assert_eq!(tls.root_cert(), Some(&RootCert::File(files.ca.clone())));

    let (cert, key) = (
        files.cert.display().to_string(),
        files.key.display().to_string(),
    );
    let tls = resolve(&[("sslcert", &cert)], &[("PGSSLKEY", &key)]).unwrap();
    assert_eq!(
        tls.client_cert(),
        Some(&ClientCert {
            cert: files.cert.clone(),
            key: files.key.clone()
        })
    );
    // sqlx's spellings are accepted too; the last occurrence wins.
    let tls = resolve(
        &[
            ("ssl-mode", "require"),
            ("sslmode", "verify-ca"),
            ("ssl-ca", &ca),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(tls.mode(), SslMode::VerifyCa);
}

#[test]
fn libpqs_default_files_under_home_are_used_when_present() {
    let files = Files::new("home");
    let home = files.dir.join("home");
    let dot = home.join(".postgresql");
    std::fs::create_dir_all(&dot).unwrap();
    let no_root =
        TlsSettings::resolve(&query(&[("sslmode", "verify-full")]), |_| None, Some(&home))
            .unwrap_err();
    assert!(
        no_root.contains(&dot.join("root.crt").display().to_string()),
        "{no_root}"
    );

    std::fs::write(dot.join("root.crt"), CERT).unwrap();
    std::fs::write(dot.join("postgresql.crt"), CERT).unwrap();
    let tls = TlsSettings::resolve(&[], |_| None, Some(&home));
    let err = tls.unwrap_err();
    assert!(err.contains("needs its key"), "{err}");

    std::fs::copy(&files.key, dot.join("postgresql.key")).unwrap();
    let tls = TlsSettings::resolve(&[], |_| None, Some(&home)).unwrap();
    assert_eq!(tls.mode(), SslMode::Prefer);
    assert_eq!(tls.root_cert(), Some(&RootCert::File(dot.join("root.crt"))));
    assert_eq!(
        tls.client_cert().map(|c| c.key.clone()),
        Some(dot.join("postgresql.key"))
    );
    assert_eq!(
        tls.attempts(false),
        [Attempt::Tls(Verify::Ca), Attempt::Plain]
    );
}

#[test]
fn bad_settings_are_named_with_their_source_and_a_hint() {
    let files = Files::new("bad");
    let ca = files.ca.display().to_string();
    let err = resolve(&[("sslmode", "bogus")], &[]).unwrap_err();
    assert!(err.starts_with("sslmode=bogus: not an sslmode"), "{err}");
    let err = resolve(&[], &[("PGSSLMODE", "Verify")]).unwrap_err();
    assert!(err.starts_with("PGSSLMODE=Verify"), "{err}");

    let err = resolve(&[("sslmode", "verify-full")], &[]).unwrap_err();
    assert!(
        err.contains("sslrootcert=/path/to/ca.crt") && err.contains("sslmode=require"),
        "{err}"
    );

    let err = resolve(
        &[
            ("sslmode", "require"),
            ("sslrootcert", "/nonexistent/ca.crt"),
        ],
        &[],
    )
    .unwrap_err();
    assert!(
        err.starts_with("sslrootcert=/nonexistent/ca.crt: cannot read it"),
        "{err}"
    );
    let err = resolve(&[], &[("PGSSLROOTCERT", "/nonexistent/ca.crt")]).unwrap_err();
    assert!(
        err.starts_with("PGSSLROOTCERT=/nonexistent/ca.crt"),
        "{err}"
    );

    std::fs::write(files.dir.join("der.crt"), [0x30, 0x82, 0x01]).unwrap();
    let der = files.dir.join("der.crt").display().to_string();
    let err = resolve(&[("sslrootcert", &der)], &[]).unwrap_err();
    assert!(
        err.contains("not a PEM file") && err.contains("openssl x509"),
        "{err}"
    );

    let key = files.key.display().to_string();
    let err = resolve(&[("sslkey", &key)], &[]).unwrap_err();
    assert!(err.contains("needs its certificate"), "{err}");
    let cert = files.cert.display().to_string();
    let err = resolve(&[("sslcert", &cert)], &[]).unwrap_err();
    assert!(
        err.contains("needs its key") && err.contains("sslkey="),
        "{err}"
    );

    #[cfg(unix)]
    {
        files.write_key(KEY, 0o644);
        let err = resolve(&[("sslcert", &cert), ("sslkey", &key)], &[]).unwrap_err();
        assert!(
            err.contains("group or world access") && err.contains("chmod 600"),
            "{err}"
        );
    }
    files.write_key(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----\n",
        0o600,
    );
    let err = resolve(&[("sslcert", &cert), ("sslkey", &key)], &[]).unwrap_err();
    assert!(
        err.contains("encrypted") && err.contains("openssl pkey"),
        "{err}"
    );

    let err = resolve(&[("sslrootcert", &ca), ("sslpassword", "k3y-secret")], &[]).unwrap_err();
    assert!(
        err.starts_with("sslpassword=***: encrypted client keys are not supported"),
        "{err}"
    );
    assert!(!err.contains("k3y-secret"), "{err}");

    let err = resolve(&[], &[("PGSSLCRL", "/etc/crl.pem")]).unwrap_err();
    assert!(err.contains("revocation lists are not supported"), "{err}");

    // disable reads no file at all.
    let tls = resolve(
        &[("sslmode", "disable"), ("sslrootcert", "/nonexistent")],
        &[],
    )
    .unwrap();
    assert_eq!(tls.root_cert(), None);
}

#[test]
fn sslrootcert_system_means_the_public_cas_and_verify_full() {
    let tls = resolve(&[("sslrootcert", "system")], &[]).unwrap();
    assert_eq!(tls.mode(), SslMode::VerifyFull);
    assert_eq!(tls.root_cert(), Some(&RootCert::System));
    let err = resolve(&[("sslrootcert", "system"), ("sslmode", "require")], &[]).unwrap_err();
    assert!(err.contains("use sslmode=verify-full"), "{err}");
}

#[test]
fn sqlx_options_carry_each_attempts_mode_and_the_files() {
    let files = Files::new("options");
    let tls = files.settings("prefer", true);
    let base = PgConnectOptions::new_without_pgpass().host("db.example.com");
    for (attempt, expected) in [
        (Attempt::Plain, "Disable"),
        (Attempt::Negotiate, "Prefer"),
        (Attempt::Tls(Verify::Nothing), "Require"),
        (Attempt::Tls(Verify::Ca), "VerifyCa"),
        (Attempt::Tls(Verify::CaAndHost), "VerifyFull"),
    ] {
        let options = tls.options(&base, attempt);
        assert_eq!(format!("{:?}", options.get_ssl_mode()), expected);
        assert_eq!(options.get_host(), "db.example.com");
    }
    let rendered = format!("{:?}", tls.options(&base, Attempt::Tls(Verify::Ca)));
    assert!(
        rendered.contains(&files.ca.display().to_string()),
        "{rendered}"
    );
    assert!(
        rendered.contains(&files.key.display().to_string()),
        "{rendered}"
    );
}

#[test]
fn container_settings_mount_files_read_only() {
    let files = Files::new("container");
    let (env, mounts) = files
        .settings("verify-ca", false)
        .container_settings()
        .unwrap();
    assert_eq!(
        env,
        [
            ("PGSSLMODE", "verify-ca".to_string()),
            ("PGSSLROOTCERT", format!("{CONTAINER_DIR}/root.crt")),
        ]
    );
    assert_eq!(
        mounts,
        [format!(
            "{}:{CONTAINER_DIR}/root.crt:ro",
            files.ca.display()
        )]
    );

    let (env, mounts) = TlsSettings::default().container_settings().unwrap();
    assert_eq!(env, [("PGSSLMODE", "prefer".to_string())]);
    assert!(mounts.is_empty());

    let colon = files.dir.join("a:b.crt");
    std::fs::write(&colon, CERT).unwrap();
    let colon = colon.display().to_string();
    let err = resolve(&[("sslmode", "verify-ca"), ("sslrootcert", &colon)], &[])
        .unwrap()
        .container_settings()
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be mounted"), "{err}");
}

#[test]
fn tls_failures_get_hints_and_decide_the_fallback() {
    let files = Files::new("hints");
    let tls = files.settings("verify-full", false);
    let unknown = sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
    ));
    let (reason, hint) = tls.explain("db.example.com", &unknown);
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    let hint = hint.unwrap();
    assert!(
        hint.contains(&format!(
            "not signed by the CA in sslrootcert={}",
            files.ca.display()
        )) && hint.contains("sslmode=require"),
        "{hint}"
    );
    let wrong_host = sqlx::Error::Tls(Box::new(rustls::Error::InvalidCertificate(
        CertificateError::NotValidForName,
    )));
    let hint = tls.hint("db.example.com", &wrong_host).unwrap();
    assert!(
        hint.contains("not issued for the host db.example.com") && hint.contains("verify-ca"),
        "{hint}"
    );
    let plain_only = sqlx::Error::Tls("server does not support TLS".into());
    let hint = tls.hint("h", &plain_only).unwrap();
    assert!(
        hint.contains("ssl = off") && hint.contains("sslmode=verify-full"),
        "{hint}"
    );
    assert_eq!(tls.hint("h", &sqlx::Error::PoolTimedOut), None);

    for error in [&unknown, &wrong_host, &plain_only] {
        assert!(tls.falls_back(Attempt::Tls(Verify::Ca), error));
        assert!(!tls.falls_back(Attempt::Plain, error));
    }
    let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
    assert!(!tls.falls_back(Attempt::Negotiate, &refused));
    assert!(!tls.falls_back(Attempt::Plain, &refused));
}

#[test]
fn query_pairs_are_percent_decoded() {
    assert_eq!(
        query_pairs("postgres://u:p@h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20x.crt#frag"),
        query(&[("sslmode", "verify-full"), ("sslrootcert", "/tmp/ca x.crt")])
    );
    assert!(query_pairs("postgres://h/db").is_empty());
}
