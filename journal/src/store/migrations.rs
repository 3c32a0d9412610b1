//! The journal's migrations, embedded in the binary, one file per version for each backend.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::error::JournalError;

/// The journal's migrations, embedded: `migrations/<backend>/<version>_<name>.sql`. A new
/// migration is a new file for each backend and a line here (a test checks that every file is
/// listed).
pub(super) const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "refund journal",
        include_str!("../../migrations/sqlite/0001_refund_journal.sql"),
        include_str!("../../migrations/postgres/0001_refund_journal.sql"),
    ),
    (
        2,
        "escaped text",
        include_str!("../../migrations/sqlite/0002_escaped_text.sql"),
        include_str!("../../migrations/postgres/0002_escaped_text.sql"),
    ),
    (
        3,
        "reads and order lease",
        include_str!("../../migrations/sqlite/0003_reads_and_order_lease.sql"),
        include_str!("../../migrations/postgres/0003_reads_and_order_lease.sql"),
    ),
    (
        4,
        "fewer index writes",
        include_str!("../../migrations/sqlite/0004_fewer_index_writes.sql"),
        include_str!("../../migrations/postgres/0004_fewer_index_writes.sql"),
    ),
    (
        5,
        "generic plans",
        include_str!("../../migrations/sqlite/0005_generic_plans.sql"),
        include_str!("../../migrations/postgres/0005_generic_plans.sql"),
    ),
    (
        6,
        "checks without lists",
        include_str!("../../migrations/sqlite/0006_checks_without_lists.sql"),
        include_str!("../../migrations/postgres/0006_checks_without_lists.sql"),
    ),
    (
        7,
        "checks as domains",
        include_str!("../../migrations/sqlite/0007_checks_as_domains.sql"),
        include_str!("../../migrations/postgres/0007_checks_as_domains.sql"),
    ),
];

#[derive(Debug, Clone, Copy)]
pub(super) struct Embedded {
    pub(super) postgres: bool,
}

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> futures_core::future::BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sqlite, postgres)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(if self.postgres { postgres } else { sqlite }),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Runs `migrator` on `conn`. The boxed future names its lifetimes, which spares callers
/// sqlx's "implementation of `Acquire` is not general enough" when the journal is opened on a
/// spawned task.
pub(super) fn run_migrations<'c, C>(
    migrator: &'c Migrator,
    conn: &'c mut C,
) -> futures_core::future::BoxFuture<'c, Result<(), sqlx::migrate::MigrateError>>
where
    C: std::ops::DerefMut + Send,
    C::Target: sqlx::migrate::Migrate + Send,
    &'c mut C::Target: sqlx::Acquire<'c>,
    <&'c mut C::Target as sqlx::Acquire<'c>>::Connection: std::ops::DerefMut<Target = C::Target>,
{
    Box::pin(migrator.run(&mut **conn))
}

pub(super) async fn migrator(postgres: bool) -> Result<Migrator, JournalError> {
    Ok(Migrator::new(Embedded { postgres }).await?)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every migration file is embedded, for both backends, in the same versions.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for backend in ["sqlite", "postgres"] {
            let mut files: Vec<String> = std::fs::read_dir(dir.join(backend))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            let versions: Vec<i64> = files
                .iter()
                .map(|name| name.split('_').next().unwrap().parse().unwrap())
                .collect();
            let embedded: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
            assert_eq!(versions, embedded, "{backend}: {files:?}");
        }
    }
}
