//! The locally built image keeps the official image's interface: the
//! unmodified testcontainers-modules `Postgres` image drives it, with the
//! default credentials (baked cluster) and with others (initdb + init scripts).

mod common;

use phantom_sync::pg::sandbox::{image, server};
use sqlx::Connection;
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::ImageExt;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

type TestResult = anyhow::Result<()>;

async fn connect(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    Ok(sqlx::PgConnection::connect(url).await?)
}

#[tokio::test]
async fn unmodified_postgres_module_runs_the_local_image() -> TestResult {
    let major = *image::versions_from_env()?.last().unwrap_or(&17);
    image::build(&[major]).await?;
    common::serves_major_with_the_unmodified_module(
        &image::BuildSettings::from_env().repository,
        major,
    )
    .await
}

#[tokio::test]
async fn other_credentials_and_init_scripts_are_honoured() -> TestResult {
    let major = *image::versions_from_env()?.first().unwrap_or(&17);
    image::build(&[major]).await?;
    let container = Postgres::default()
        .with_user("app")
        .with_password("other-secret")
        .with_db_name("appdb")
        .with_init_sql(
            b"CREATE TABLE from_init (id int); INSERT INTO from_init VALUES (42);".to_vec(),
        )
        .with_name(image::BuildSettings::from_env().repository)
        .with_tag(major.to_string())
        // So that `make test`'s sweep finds it should this test die before `rm`.
        .with_label(server::OWNER_LABEL, std::process::id().to_string())
        .start()
        .await?;
    let port = container.get_host_port_ipv4(5432).await?;
    let mut conn = connect(&format!(
        "postgres://app:other-secret@127.0.0.1:{port}/appdb"
    ))
    .await?;
    let id: i32 = sqlx::query_scalar("SELECT id FROM from_init")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(id, 42);
    let wrong = connect(&format!("postgres://app:wrong@127.0.0.1:{port}/appdb")).await;
    assert!(wrong.is_err(), "a wrong password must be refused");
    conn.close().await?;
    container.rm().await?;
    Ok(())
}
