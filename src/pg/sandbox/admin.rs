//! The superuser statements that make and drop harness databases
//! (`CREATE DATABASE … TEMPLATE`, `DROP DATABASE`), run over connections to
//! each server's `postgres` database that stay open for the whole process.
//!
//! Why: opening a connection (TCP, SCRAM, a new backend) costs more than the
//! clone it is opened for — about 12 ms against 8 ms on this project's
//! machine — and every scenario, drill and replay makes and drops databases.
//! How: a connection belongs to the Tokio runtime that opened it, and each
//! test runs a runtime of its own, so the connections live on a small runtime
//! of their own on one thread; callers on any runtime send it a statement and
//! await the answer. Statements for one server run concurrently, each on an
//! idle connection or a new one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::postgres::PgConnection;
use tokio::sync::{mpsc, oneshot};

use crate::pg::target::Target;

/// One statement for the admin thread, and where its answer goes.
struct Request {
    /// Which server's connections (its container id).
    server: String,
    /// How to open one more.
    target: Target,
    sql: String,
    reply: oneshot::Sender<Result<(), AdminError>>,
}

/// Why a statement did not run.
#[derive(Debug)]
pub(crate) enum AdminError {
    /// No connection could be opened.
    Connect(crate::Error),
    /// The server refused the statement (or the connection broke while it ran).
    Statement(sqlx::Error),
}

/// Idle connections by server.
type Idle = Arc<Mutex<BTreeMap<String, Vec<PgConnection>>>>;

/// Runs `sql` as the superuser on `target`'s server (`server`: its container
/// id), on a kept connection when one is idle.
pub(crate) async fn execute(server: &str, target: &Target, sql: String) -> Result<(), AdminError> {
    let (reply, answer) = oneshot::channel();
    let request = Request {
        server: server.to_string(),
        target: target.clone(),
        sql,
        reply,
    };
    let gone = || {
        AdminError::Connect(crate::Error::Environment(
            "the harness's admin thread is gone (hint: the process is shutting down)".into(),
        ))
    };
    sender().send(request).map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

/// The admin thread's inbox; the thread starts on first use.
fn sender() -> &'static mpsc::UnboundedSender<Request> {
    static SENDER: OnceLock<mpsc::UnboundedSender<Request>> = OnceLock::new();
    SENDER.get_or_init(|| {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let idle: Idle = Arc::default();
        std::thread::Builder::new()
            .name("phantom-sync-admin".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return; // callers see the thread gone
                };
                runtime.block_on(async move {
                    while let Some(request) = rx.recv().await {
                        tokio::spawn(serve(request, idle.clone()));
                    }
                });
            })
            .expect("the harness's admin thread starts");
        tx
    })
}

/// Runs one request: on an idle connection first, and once more on a new
/// one if that connection turned out to be broken.
async fn serve(request: Request, idle: Idle) {
    let Request {
        server,
        target,
        sql,
        reply,
    } = request;
    let kept = take_idle(&idle, &server);
    let reused = kept.is_some();
    let mut result = run(kept, &target, &sql).await;
    if reused && matches!(&result, Err((AdminError::Statement(e), None)) if broken(e)) {
        result = run(None, &target, &sql).await;
    }
    let answer = match result {
        Ok(conn) => {
            give_back(&idle, &server, conn);
            Ok(())
        }
        Err((error, conn)) => {
            if let Some(conn) = conn {
                give_back(&idle, &server, conn);
            }
            Err(error)
        }
    };
    let _ = reply.send(answer);
}

/// Runs `sql` on `conn` (or a new connection); gives the connection back
/// unless it broke.
async fn run(
    conn: Option<PgConnection>,
    target: &Target,
    sql: &str,
) -> Result<PgConnection, (AdminError, Option<PgConnection>)> {
    let mut conn = match conn {
        Some(conn) => conn,
        None => target
            .connect()
            .await
            .map_err(|e| (AdminError::Connect(e), None))?,
    };
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
    {
        Ok(_) => Ok(conn),
        Err(e) if broken(&e) => Err((AdminError::Statement(e), None)),
        Err(e) => Err((AdminError::Statement(e), Some(conn))),
    }
}

/// An error of the connection rather than of the statement.
fn broken(e: &sqlx::Error) -> bool {
    !matches!(e, sqlx::Error::Database(_))
}

fn take_idle(idle: &Idle, server: &str) -> Option<PgConnection> {
    idle.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(server)
        .and_then(Vec::pop)
}

fn give_back(idle: &Idle, server: &str, conn: PgConnection) {
    idle.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(server.to_string())
        .or_default()
        .push(conn);
}
