//! The docker command lines a tools run makes: variable names, never
//! values; mounts read-only; failures quoted without passwords.

use super::*;
use crate::pg::tls::TlsSettings;
use crate::pg::tls::test_files::Files;

#[test]
fn tls_files_are_mounted_read_only_and_named_by_variables() {
    let files = Files::new("run-mounts");
    let target = Target::parse("postgres://app:hunter22@db.example.com:6543/prod")
        .unwrap()
        .with_tls(files.settings("verify-full", true));
    let tools = PgTools::Run {
        image: "phantom-sync/postgres:17".into(),
        major: 17,
    };
    let call = Call {
        tool: "pg_dump",
        program: "pg_dump",
        args: vec!["--format=custom".into()],
        target: Some(&target),
        input: Input::Null,
        sink: Sink::Capture,
        doing: "dumping".into(),
    };
    let (env, mounts) = connection_env(&tools, &target).unwrap();
    let args = command_line(&tools, &call, &env, &mounts, false).1;
    let joined = args.join(" ");
    let ca = files.ca.display();
    let (cert, key) = (files.cert.display(), files.key.display());
    assert!(
        joined.contains(&format!(
            "-e PGSSLMODE -e PGSSLROOTCERT -e PGSSLCERT -e PGSSLKEY \
             -v {ca}:/run/phantom-sync/tls/root.crt:ro \
             -v {cert}:/run/phantom-sync/tls/client.crt:ro \
             -v {key}:/run/phantom-sync/tls/client.key:ro \
             --entrypoint pg_dump"
        )),
        "{joined}"
    );
    assert!(!joined.contains("hunter22"), "{joined}");
    for (name, value) in [
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", "/run/phantom-sync/tls/root.crt"),
        ("PGSSLCERT", "/run/phantom-sync/tls/client.crt"),
        ("PGSSLKEY", "/run/phantom-sync/tls/client.key"),
    ] {
        assert!(env.contains(&(name, value.to_string())), "{name}: {env:?}");
    }

    // In the server's own container: loopback, no files, libpq's default.
    let exec = PgTools::Exec {
        container_id: "abc123".into(),
        major: 17,
    };
    let (env, mounts) = connection_env(&exec, &target).unwrap();
    assert!(mounts.is_empty());
    assert!(
        !env.iter().any(|(name, _)| name.starts_with("PGSSL")),
        "{env:?}"
    );
    let joined = command_line(&exec, &call, &env, &mounts, false).1.join(" ");
    assert!(!joined.contains(" -v "), "{joined}");
}

#[test]
fn arguments_carry_variable_names_but_never_values() {
    // Default TLS settings, whatever this machine's PGSSL* and ~/.postgresql hold.
    let target = Target::parse("postgres://app:hunter22@db.example.com:6543/prod")
        .unwrap()
        .with_tls(TlsSettings::default());
    let tools = PgTools::Run {
        image: "phantom-sync/postgres:17".into(),
        major: 17,
    };
    let call = Call {
        tool: "pg_dump",
        program: "pg_dump",
        args: vec!["--format=custom".into()],
        target: Some(&target),
        input: Input::Null,
        sink: Sink::Capture,
        doing: "dumping".into(),
    };
    let (env, mounts) = connection_env(&tools, &target).unwrap();
    assert!(mounts.is_empty(), "{mounts:?}");
    let args = command_line(&tools, &call, &env, &mounts, false).1;
    let joined = args.join(" ");
    assert!(!joined.contains("hunter22"), "{joined}");
    assert!(
        joined.starts_with(
            "run --rm --log-driver none --network host --label phantom-sync.tool=pg_dump -e PGHOST -e PGPORT"
        ),
        "{joined}"
    );
    assert!(
        joined.ends_with("--entrypoint pg_dump phantom-sync/postgres:17 --format=custom"),
        "{joined}"
    );
    assert!(!joined.contains("PGPASSWORD"), "{joined}");
    let (dir, mount) = password_file("a:b\\c d").unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pgpass")).unwrap(),
        "*:*:*:*:a\\:b\\\\c d\n"
    );
    assert!(mount.ends_with(":/run/phantom-sync/pass:ro"), "{mount}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("pgpass"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(env.contains(&("PGHOST", "db.example.com".to_string())));
    assert!(env.contains(&("PGPORT", "6543".to_string())));
    assert!(env.contains(&("PGDATABASE", "prod".to_string())));
    assert!(env.contains(&("PGSSLMODE", "prefer".to_string())));

    let exec = PgTools::Exec {
        container_id: "abc123".into(),
        major: 17,
    };
    let (env, mounts) = connection_env(&exec, &target).unwrap();
    assert!(
        env.contains(&("PGHOST", "127.0.0.1".to_string()))
            && env.contains(&("PGPORT", "5432".to_string()))
    );
    let args = command_line(&exec, &call, &env, &mounts, true).1;
    assert_eq!(&args[..2], ["exec", "-i"]);
    assert_eq!(
        args[args.len() - 3..],
        ["abc123", "pg_dump", "--format=custom"]
    );
}

#[test]
fn failures_quote_stderr_without_passwords_and_give_hints() {
    let call = Call {
        tool: "pg_dump",
        program: "pg_dump",
        args: Vec::new(),
        target: None,
        input: Input::Null,
        sink: Sink::Capture,
        doing: "dumping postgres://u:***@h:5432/db".into(),
    };
    let stderr = (1..=20).map(|i| format!("line {i}\n")).collect::<String>()
        + "pg_dump: error: aborting because of server version mismatch\n\
           pg_dump: detail: server version: 18.1; pg_dump version: 17.6 postgres://u:sekrit-pw@h/db\n";
    let Error::Tool { tool, detail } = failure(&call, "exit status: 1", &stderr, Some("sekrit-pw"))
    else {
        panic!("not a tool error")
    };
    assert_eq!(tool, "pg_dump");
    assert!(!detail.contains("sekrit-pw"), "{detail}");
    assert!(
        !detail.contains("line 7\n"),
        "only the last {STDERR_LINES} lines: {detail}"
    );
    assert!(detail.contains("line 8\n"), "{detail}");
    assert!(detail.contains("older than the server"), "{detail}");
    assert_eq!(
        hint("pg_dump", "ERROR: permission denied for table secrets")
            .map(|h| h.contains("postgres role")),
        Some(true)
    );
    assert_eq!(hint("psql", "something odd"), None);
    let tls = "pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: SSL error: certificate verify failed";
    assert_eq!(
        hint("pg_dump", tls).map(|h| h.contains("sslrootcert") && h.contains("sslmode=require")),
        Some(true)
    );
    assert_eq!(
        scrub("pw is abc", Some("abc")),
        "pw is abc",
        "short passwords are not replaced blindly"
    );
}

#[test]
fn host_programs_start_themselves_and_reach_the_harness_server_past_the_port_proxy() {
    let tools = PgTools::Host {
        bin: PathBuf::from("/cache/clients/17.10.0-abc/bin"),
        major: 17,
        direct: Some((49153, "172.17.0.5".into())),
    };
    let published = Target::parse("postgres://postgres:hunter22@127.0.0.1:49153/s_db_1").unwrap();
    let call = Call {
        tool: "pg_dump",
        program: "pg_dump",
        args: vec!["--format=custom".into(), "--schema-only".into()],
        target: Some(&published),
        input: Input::Null,
        sink: Sink::Capture,
        doing: "dumping".into(),
    };
    let (env, mounts) = connection_env(&tools, &published).unwrap();
    let (program, args) = command_line(&tools, &call, &env, &mounts, false);
    assert_eq!(
        (program, args),
        (
            "/cache/clients/17.10.0-abc/bin/pg_dump".into(),
            vec!["--format=custom".to_string(), "--schema-only".into()]
        )
    );
    let script = Call {
        program: "sh",
        args: vec!["-c".into(), "pg_restore --list".into()],
        ..call
    };
    assert_eq!(command_line(&tools, &script, &env, &mounts, true).0, "sh");
    assert!(mounts.is_empty());
    for (name, value) in [
        ("PGHOST", "172.17.0.5"),
        ("PGPORT", "5432"),
        ("PGDATABASE", "s_db_1"),
    ] {
        assert!(env.contains(&(name, value.to_string())), "{name}: {env:?}");
    }
    assert!(!format!("{env:?}").contains("hunter22"), "{env:?}");
    assert!(
        !env.iter().any(|(name, _)| name.starts_with("PGSSL")),
        "{env:?}"
    );

    // Any other server is reached where its URL says.
    for url in [
        "postgres://app:pw@127.0.0.1:6543/prod",
        "postgres://app:pw@db.example.com:49153/prod",
    ] {
        let other = Target::parse(url).unwrap();
        let (env, _) = connection_env(&tools, &other).unwrap();
        let options = other.options();
        assert!(
            env.contains(&("PGHOST", options.get_host().to_string())),
            "{url}: {env:?}"
        );
        assert!(
            env.contains(&("PGPORT", options.get_port().to_string())),
            "{url}: {env:?}"
        );
    }
}

#[test]
fn a_host_program_finds_the_images_build_first_and_none_of_our_pg_variables() {
    let mut cmd = Command::new("env");
    let ours = [
        ("PATH", "/usr/bin:/bin"),
        ("PGSERVICE", "elsewhere"),
        ("PGSSLMODE", "disable"),
        ("HOME", "/root"),
    ]
    .map(|(name, value)| (name.into(), value.into()));
    host_environment(&mut cmd, Path::new("/cache/clients/17.10.0-abc/bin"), ours);
    let std = cmd.as_std();
    let path = std
        .get_envs()
        .find(|(name, _)| *name == "PATH")
        .and_then(|(_, value)| value)
        .map(|value| value.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert_eq!(path, "/cache/clients/17.10.0-abc/bin:/usr/bin:/bin");
    assert!(
        !std.get_envs().any(|(name, _)| name == "HOME"),
        "the rest is inherited untouched"
    );
    for name in ["PGSERVICE", "PGSSLMODE"] {
        assert!(
            std.get_envs()
                .any(|(n, value)| n == name && value.is_none()),
            "{name} is removed from the program's environment"
        );
    }
}
