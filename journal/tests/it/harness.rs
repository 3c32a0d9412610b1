//! What every scenario uses: a database per test (a SQLite file, or a PostgreSQL schema of its
//! own), the sandbox, requests per provider, facade clients, and child processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use refunds::{
    AfterPayConfig, ByProvider, MerchantReference, Provider, RefundRequest, Refunds, RetryPolicy,
};
use refunds_journal::{Database, EventKind, Journal, JournalConfig};
use sandbox::credentials::AFTERPAY_API_KEY;
use sandbox::{ProviderHandle, Sandbox, SandboxConfig};
use test_support::{ClientSettings, TIMEOUT};

/// The environment variable with the PostgreSQL URL of the PostgreSQL half of the suite.
pub const PG_URL: &str = "REFUNDS_JOURNAL_PG_URL";

/// Which backend a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of one test's own: a SQLite file in a temporary directory, or a fresh schema in
/// the PostgreSQL database of [`PG_URL`].
#[derive(Clone)]
pub struct TestDb {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Sqlite {
        path: PathBuf,
        _dir: Arc<tempfile::TempDir>,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

/// The PostgreSQL URL, or a failure that says how to get one.
pub fn pg_url() -> String {
    match std::env::var(PG_URL) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "\n\n{PG_URL} is not set, so the PostgreSQL half of the refund journal's suite cannot \
             run (it never passes without a server).\nStart a throwaway PostgreSQL 15 on a \
             loopback port, from the workspace root:\n\n    eval \"$(scripts/pg-throwaway start)\"\n    \
             cargo test -p refunds-journal\n    scripts/pg-throwaway stop\n\n(PostgreSQL's \
             server binaries: apt-get install -y postgresql.) To run the SQLite half alone: \
             cargo test -p refunds-journal sqlite::\n\n"
        ),
    }
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                TestDb {
                    target: Target::Sqlite {
                        path: dir.path().join("journal.db"),
                        _dir: Arc::new(dir),
                    },
                }
            }
            Backend::Postgres => TestDb {
                target: Target::Postgres {
                    url: pg_url(),
                    schema: format!("it_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
                },
            },
        }
    }

    /// The database as a journal opens it.
    pub fn database(&self) -> Database {
        match &self.target {
            Target::Sqlite { path, .. } => Database::sqlite(path),
            Target::Postgres { url, schema } => Database::postgres(url).schema(schema),
        }
    }

    /// This test's PostgreSQL schema on the database of `url` (the same server, reached another
    /// way: a proxy).
    pub fn database_at(&self, url: &str) -> Database {
        match &self.target {
            Target::Postgres { schema, .. } => Database::postgres(url).schema(schema),
            Target::Sqlite { .. } => panic!("a PostgreSQL test database"),
        }
    }

    /// Takes the write lock of the journal's entries on a connection of the test's own (as
    /// another process, or a long transaction, would): SQLite `BEGIN EXCLUSIVE` on the file,
    /// PostgreSQL `LOCK TABLE refund_journal_entries IN EXCLUSIVE MODE` (reads go on, writes
    /// wait). Held until [`WriteLock::release`].
    pub async fn hold_write_lock(&self) -> WriteLock {
        use sqlx::Connection;
        match &self.target {
            Target::Sqlite { path, .. } => {
                let mut conn = sqlx::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .expect("connect to the test's SQLite file");
                sqlx::raw_sql("BEGIN EXCLUSIVE")
                    .execute(&mut conn)
                    .await
                    .expect("take the write lock");
                WriteLock::Sqlite(conn)
            }
            Target::Postgres { url, schema } => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .expect("the PostgreSQL URL")
                    .options([("search_path", schema.as_str())]);
                let mut conn = sqlx::PgConnection::connect_with(&options)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::raw_sql("BEGIN; LOCK TABLE refund_journal_entries IN EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .expect("take the write lock");
                WriteLock::Postgres(conn)
            }
        }
    }

    /// A new journal instance on this database (as another process or replica would open).
    pub async fn open(&self, config: JournalConfig) -> Journal {
        Journal::open_with(self.database(), config)
            .await
            .unwrap_or_else(|e| panic!("opening the journal: {e}"))
    }

    /// A new journal instance with [`config`].
    pub async fn journal(&self) -> Journal {
        self.open(config()).await
    }

    /// How a child process finds this database.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match &self.target {
            Target::Sqlite { path, .. } => vec![
                ("JOURNAL_IT_DB", "sqlite".to_owned()),
                ("JOURNAL_IT_DB_PATH", path.display().to_string()),
            ],
            Target::Postgres { url, schema } => vec![
                ("JOURNAL_IT_DB", "postgres".to_owned()),
                ("JOURNAL_IT_DB_URL", url.clone()),
                ("JOURNAL_IT_DB_SCHEMA", schema.clone()),
            ],
        }
    }

    /// The database a parent described with [`TestDb::env`].
    pub fn database_from_env() -> Database {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        match var("JOURNAL_IT_DB").as_str() {
            "sqlite" => Database::sqlite(var("JOURNAL_IT_DB_PATH")),
            "postgres" => {
                Database::postgres(var("JOURNAL_IT_DB_URL")).schema(var("JOURNAL_IT_DB_SCHEMA"))
            }
            other => panic!("JOURNAL_IT_DB={other}"),
        }
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        match &self.target {
            Target::Sqlite { .. } => Backend::Sqlite,
            Target::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Runs `sql` (one or more statements in this backend's dialect) on this test's database,
    /// through a connection of the test's own (not the journal's), as an operator or another
    /// program would.
    pub async fn execute(&self, sql: &str) {
        if let Err(e) = self.try_execute(sql).await {
            panic!("{sql}: {e}");
        }
    }

    /// [`TestDb::execute`], with the database's refusal as an error.
    pub async fn try_execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        match &self.target {
            Target::Sqlite { path, .. } => {
                let pool = sqlx::SqlitePool::connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .expect("connect to the test's SQLite file");
                let result = sqlx::raw_sql(sql).execute(&pool).await.map(drop);
                pool.close().await;
                result
            }
            Target::Postgres { url, schema } => {
                let pool = pg_schema_pool(url, schema).await;
                let result = sqlx::raw_sql(sql).execute(&pool).await.map(drop);
                pool.close().await;
                result
            }
        }
    }

    /// Creates this test's database as the journal's migrations up to `version` leave it (as
    /// an earlier version of the journal did), with sqlx's migrator over the journal's own
    /// migration files: a later open applies the rest.
    pub async fn migrate_to(&self, version: i64) {
        let backend = match self.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let dir = tempfile::tempdir().expect("a temporary directory");
        for file in std::fs::read_dir(&source).expect("the migrations") {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            let file_version: i64 = name.split('_').next().unwrap().parse().unwrap();
            if file_version <= version {
                std::fs::copy(source.join(&name), dir.path().join(&name)).unwrap();
            }
        }
        let migrator = sqlx::migrate::Migrator::new(dir.path())
            .await
            .expect("the migrations up to the version");
        match &self.target {
            Target::Sqlite { path, .. } => {
                let pool = sqlx::SqlitePool::connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .create_if_missing(true),
                )
                .await
                .expect("create the test's SQLite file");
                migrator.run(&pool).await.expect("migrate");
                pool.close().await;
            }
            Target::Postgres { url, schema } => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
                    .execute(&pool)
                    .await
                    .expect("create the test schema");
                pool.close().await;
                let pool = pg_schema_pool(url, schema).await;
                migrator.run(&pool).await.expect("migrate");
                pool.close().await;
            }
        }
    }

    /// The text a `SELECT` of one column and one row finds, as stored (no decoding).
    pub async fn stored_text(&self, sql: &str) -> Option<String> {
        match &self.target {
            Target::Sqlite { path, .. } => {
                let pool = sqlx::SqlitePool::connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .expect("connect to the test's SQLite file");
                let text = sqlx::query_scalar::<_, Option<String>>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                pool.close().await;
                text
            }
            Target::Postgres { url, schema } => {
                let pool = pg_schema_pool(url, schema).await;
                let text = sqlx::query_scalar::<_, Option<String>>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                pool.close().await;
                text
            }
        }
    }

    /// Drops a PostgreSQL test schema (a SQLite file goes with its directory).
    pub async fn cleanup(self) {
        if let Target::Postgres { url, schema } = &self.target {
            let pool = sqlx::PgPool::connect(url)
                .await
                .expect("connect for cleanup");
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&pool)
                .await
                .expect("drop the test schema");
            pool.close().await;
        }
    }
}

/// A write lock held by [`TestDb::hold_write_lock`].
pub enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    /// Rolls the holding transaction back and closes its connection.
    pub async fn release(self) {
        use sqlx::Connection;
        match self {
            WriteLock::Sqlite(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            WriteLock::Postgres(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// A pool of one connection on `url` whose search path is the test's schema.
async fn pg_schema_pool(url: &str, schema: &str) -> sqlx::PgPool {
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .expect("the PostgreSQL URL")
        .options([("search_path", schema)]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("connect to PostgreSQL")
}

/// The journal configuration of the tests: retries without real waits, a lease long enough
/// for any attempt on a loaded machine.
pub fn config() -> JournalConfig {
    JournalConfig {
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        lease: Duration::from_secs(60),
        ..JournalConfig::default()
    }
}

/// [`config`] with another lease.
pub fn config_with_lease(lease: Duration) -> JournalConfig {
    JournalConfig { lease, ..config() }
}

/// [`config`] with another AfterPay settling delay.
pub fn config_with_settling_delay(settling_delay: Duration) -> JournalConfig {
    JournalConfig {
        settling_delay,
        ..config()
    }
}

pub use test_support::{duplicate_key, reference, request};

/// The environment variable naming the sandbox's base URLs for a child process: a JSON object
/// from each provider's name to its URL.
const URLS_VAR: &str = "JOURNAL_IT_URLS";

/// The sandbox's base URLs, as a child process receives them ([`URLS_VAR`]).
pub struct Urls(ByProvider<String>);

impl Urls {
    pub fn from_env() -> Urls {
        let json = std::env::var(URLS_VAR).unwrap_or_else(|_| panic!("{URLS_VAR} is not set"));
        let mut urls: BTreeMap<String, String> =
            serde_json::from_str(&json).expect("the sandbox's URLs");
        Urls(ByProvider::from_fn(|provider| {
            urls.remove(provider.as_str())
                .unwrap_or_else(|| panic!("{URLS_VAR} names no URL for {provider}"))
        }))
    }

    /// A new facade client (no replay memory shared with any other) on these URLs.
    pub fn refunds(&self) -> Refunds {
        test_support::client_at(&self.0, &ClientSettings::default())
    }
}

/// A running sandbox.
pub struct Env {
    pub sb: Sandbox,
}

impl Env {
    pub async fn start() -> Env {
        Env::with_config(SandboxConfig::default()).await
    }

    /// AfterPay without the sandbox's replay of a repeated `transactionReference`: a second
    /// send is a second refund, as Riverty documents no duplicate rule.
    pub async fn without_afterpay_replay() -> Env {
        Env::with_config(SandboxConfig {
            afterpay: sandbox::afterpay::Settings {
                replay_transaction_reference: false,
                ..Default::default()
            },
            ..SandboxConfig::default()
        })
        .await
    }

    pub async fn with_config(config: SandboxConfig) -> Env {
        let sb = test_support::start_sandbox_with(config).await;
        Env { sb }
    }

    pub fn urls(&self) -> Urls {
        Urls(test_support::base_urls(&self.sb))
    }

    /// A new facade client, as a new process would have: no replay memory of earlier calls.
    pub fn refunds(&self) -> Refunds {
        self.urls().refunds()
    }

    pub fn handle(&self, provider: Provider) -> &ProviderHandle {
        test_support::handle(&self.sb, provider)
    }

    /// Seeds an order capturing `captured` in the provider's currency.
    pub fn seed_amount(&self, provider: Provider, order_id: &str, captured: &str) {
        test_support::seed_amount(&self.sb, provider, order_id, captured);
    }

    /// Seeds an order capturing 100.00.
    pub fn seed(&self, provider: Provider, order_id: &str) {
        test_support::seed(&self.sb, provider, order_id);
    }

    /// Seeds an order capturing 100.00 whose new refunds the provider records as pending
    /// (Optty `PENDING`, Moyasar `initiated`) until settled through the admin API.
    pub fn seed_pending(&self, provider: Provider, order_id: &str) {
        self.handle(provider).seed_order(
            test_support::order_seed(provider, order_id, test_support::dec("100.00"))
                .refund_status(sandbox::RefundStatus::Pending),
        );
    }

    /// The sandbox's id of the refund recorded under the request's duplicate key (Optty
    /// `bnplRefundId`, AfterPay refund number, Moyasar transaction id).
    pub fn refund_id(&self, request: &RefundRequest) -> String {
        let recorded = self
            .handle(request.provider)
            .refunds_with_reference(&duplicate_key(
                request.provider,
                &request.merchant_reference,
            ));
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        recorded[0].id.clone()
    }

    /// The refunds the sandbox recorded on `order_id`.
    pub fn refunds_on(&self, provider: Provider, order_id: &str) -> Vec<sandbox::LedgerEntry> {
        self.handle(provider).ledger(&sandbox::LedgerFilter {
            order: Some(order_id.to_owned()),
            ..sandbox::LedgerFilter::default()
        })
    }

    /// The refunds the sandbox recorded under the request's duplicate key.
    pub fn recorded(&self, request: &RefundRequest) -> usize {
        self.handle(request.provider)
            .refunds_with_reference(&duplicate_key(
                request.provider,
                &request.merchant_reference,
            ))
            .len()
    }

    /// The child-process environment naming the sandbox's URLs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let urls = self.urls();
        let by_name: BTreeMap<&str, &String> = Provider::ALL
            .into_iter()
            .map(|provider| (provider.as_str(), urls.0.get(provider)))
            .collect();
        let json = serde_json::to_string(&by_name).expect("URLs as JSON");
        vec![(URLS_VAR, json)]
    }
}

/// Polls `condition` (every 5 ms) until it holds; fails after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The kinds of an entry's history, in order.
pub async fn history_kinds(
    journal: &Journal,
    provider: Provider,
    reference: &MerchantReference,
) -> Vec<EventKind> {
    journal
        .history(provider, reference)
        .await
        .expect("history")
        .iter()
        .map(|event| event.kind)
        .collect()
}

/// This test binary again, running only the child entry point (`child::entry`) in `role`.
pub fn child(role: &str, vars: &[(&'static str, String)]) -> tokio::process::Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = tokio::process::Command::new(exe);
    command
        .args([
            "child::entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env("JOURNAL_IT_ROLE", role)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The lines a child printed for its parent (`JOURNAL-IT ...`), without the prefix.
pub fn child_lines(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("JOURNAL-IT "))
        .map(str::to_owned)
        .collect()
}

/// One canned answer of a [`Canned`] server.
#[derive(Debug, Clone)]
pub struct CannedAnswer {
    /// Answers requests whose request line contains this (a path fragment: an order id).
    pub path_contains: &'static str,
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: Vec<u8>,
}

impl CannedAnswer {
    pub fn new(path_contains: &'static str, status: u16, body: impl Into<Vec<u8>>) -> Self {
        CannedAnswer {
            path_contains,
            status,
            headers: vec![("content-type", "application/json")],
            body: body.into(),
        }
    }

    pub fn with_headers(mut self, headers: Vec<(&'static str, &'static str)>) -> Self {
        self.headers = headers;
        self
    }
}

/// A loopback HTTP/1.1 server that plays a provider answering exactly the bytes it is given:
/// each request gets the answer of the first [`CannedAnswer`] whose fragment its request line
/// contains (an empty 404 otherwise), then the connection closes. For answers no sandbox
/// fault produces (a NUL in a text, a compressed body nobody decoded).
pub struct Canned {
    base_url: String,
    received: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Canned {
    pub async fn start(answers: Vec<CannedAnswer>) -> Canned {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let answers = Arc::new(answers);
        let received = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let received = Arc::clone(&received);
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (answers, received) = (Arc::clone(&answers), Arc::clone(&received));
                    tokio::spawn(async move {
                        let _ = serve_canned(stream, &answers, &received).await;
                    });
                }
            }
        });
        Canned {
            base_url,
            received,
            task,
        }
    }

    /// Requests answered so far.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    /// A facade client whose AfterPay is this server.
    pub fn afterpay(&self) -> Refunds {
        Refunds::builder()
            .afterpay(AfterPayConfig::new(&self.base_url, AFTERPAY_API_KEY).with_timeout(TIMEOUT))
            .build()
            .unwrap_or_else(|e| panic!("building the facade client: {e}"))
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_canned(
    mut stream: tokio::net::TcpStream,
    answers: &[CannedAnswer],
    received: &AtomicUsize,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    received.fetch_add(1, Ordering::SeqCst);
    let request_line = head.lines().next().unwrap_or_default();
    let answer = answers
        .iter()
        .find(|answer| request_line.contains(answer.path_contains));
    let (status, headers, body) = match answer {
        Some(answer) => (
            answer.status,
            answer.headers.as_slice(),
            answer.body.as_slice(),
        ),
        None => (404, &[][..], &[][..]),
    };
    let mut out = format!("HTTP/1.1 {status} Canned\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    stream.write_all(&out).await?;
    stream.shutdown().await
}
