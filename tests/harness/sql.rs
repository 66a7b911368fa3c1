//! Test harness: SQL on a test's hub — a statement's row count, a query's single value,
//! optional value, pair of values or first column — for every test context that holds a hub.
//! Each failure panics naming the SQL.

use ferry::hub::Hub;
use tokio_postgres::types::FromSql;

/// Queries on the hub of a test context (bring the trait into scope to call them).
pub trait Sql {
    /// The hub the queries run on.
    fn hub(&self) -> &Hub;

    /// Runs a statement; the rows it touched.
    async fn exec(&self, sql: &str) -> u64 {
        self.hub()
            .client()
            .await
            .unwrap()
            .execute(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The single value of a query.
    async fn one<T: for<'a> FromSql<'a>>(&self, sql: &str) -> T {
        self.hub()
            .client()
            .await
            .unwrap()
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    /// The single value of a query that may return no row.
    async fn opt<T: for<'a> FromSql<'a>>(&self, sql: &str) -> Option<T> {
        self.hub()
            .client()
            .await
            .unwrap()
            .query_opt(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .map(|r| r.get(0))
    }

    /// The two values of a one-row query.
    async fn pair<A, B>(&self, sql: &str) -> (A, B)
    where
        A: for<'a> FromSql<'a>,
        B: for<'a> FromSql<'a>,
    {
        let r = self
            .hub()
            .client()
            .await
            .unwrap()
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        (r.get(0), r.get(1))
    }

    /// The first column of every row `sql` returns.
    async fn column<T: for<'a> FromSql<'a>>(&self, sql: &str) -> Vec<T> {
        super::column(&self.hub().client().await.unwrap(), sql).await
    }
}

impl Sql for Hub {
    fn hub(&self) -> &Hub {
        self
    }
}
