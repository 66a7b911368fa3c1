//! Outbox and inbox claims (`ferry.claim_marks`, `ferry.claim_events`): a claim is a session
//! advisory lock of the claiming connection — other connections skip the mark or event, it
//! lapses when that connection goes away, and only due ones (of active mappings) are claimed.

mod harness;

use ferry::hub::{migrate, schema, Hub};
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> (Client, tokio::task::JoinHandle<()>) {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (client, task)
}

/// The first column of what `sql` claims on this connection, sorted.
async fn claimed<T: for<'a> tokio_postgres::types::FromSql<'a> + Ord>(
    c: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<T> {
    let mut out: Vec<T> = c
        .query(sql, params)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    out.sort_unstable();
    out
}

/// Row keys this connection claims, up to `n`, from the start of the (only) mapping's marks.
async fn claim(c: &Client, n: i32) -> Vec<i64> {
    claimed(
        c,
        "select row_key from ferry.claim_marks($1, (select min(id) from ferry.mappings), $2)",
        &[&n, &i64::MIN],
    )
    .await
}

/// Remote ids of the webhook events this connection claims, up to `n`.
async fn claim_events(c: &Client, n: i32) -> Vec<String> {
    claimed(c, "select remote_id from ferry.claim_events($1)", &[&n]).await
}

#[tokio::test]
async fn a_claim_excludes_other_connections_and_lapses_with_its_own() {
    let (db, url) = harness::fresh_db().await;
    let hub = Hub::connect(&url).await.unwrap();
    migrate::migrate(&hub).await.unwrap();
    schema::apply(&hub, &harness::config("http://127.0.0.1:9", &db))
        .await
        .unwrap();
    let admin = hub.client().await.unwrap();
    let mapping: i32 = admin
        .query_one("select id from ferry.mappings", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .execute("insert into ferry.outbox (mapping_id, row_key) select $1, g from generate_series(1, 10) g", &[&mapping])
        .await
        .unwrap();
    // not due yet: never claimed
    admin
        .execute("update ferry.outbox set next_attempt_at = now() + interval '1 hour' where row_key = 10", &[])
        .await
        .unwrap();

    let (a, a_task) = connect(&url).await;
    let (b, _b_task) = connect(&url).await;
    assert_eq!(
        claim(&a, 4).await,
        vec![1, 2, 3, 4],
        "the first four due marks, in key order"
    );
    assert_eq!(
        claim(&b, 100).await,
        vec![5, 6, 7, 8, 9],
        "marks held by another connection are skipped"
    );
    assert_eq!(
        claim(&b, 100).await,
        vec![5, 6, 7, 8, 9],
        "a connection's own claims are still its own"
    );
    b.execute("select pg_advisory_unlock_all()", &[])
        .await
        .unwrap();

    // a mark removed by its holder is gone for everyone once the holder lets go
    a.execute("delete from ferry.outbox where row_key = 1", &[])
        .await
        .unwrap();
    a.execute("select pg_advisory_unlock_all()", &[])
        .await
        .unwrap();
    assert_eq!(claim(&b, 2).await, vec![2, 3]);
    b.execute("select pg_advisory_unlock_all()", &[])
        .await
        .unwrap();

    // a connection that goes away (a killed process) lets go of its claims at once
    assert_eq!(claim(&a, 3).await, vec![2, 3, 4]);
    drop(a);
    let _ = a_task.await;
    harness::eventually(
        "claims of a closed connection lapse",
        std::time::Duration::from_secs(10),
        || async {
            let keys = claim(&b, 100).await;
            b.execute("select pg_advisory_unlock_all()", &[])
                .await
                .unwrap();
            (keys == vec![2, 3, 4, 5, 6, 7, 8, 9]).then_some(())
        },
    )
    .await;

    // a paused mapping's marks wait
    admin
        .execute("update ferry.mappings set state = 'paused'", &[])
        .await
        .unwrap();
    assert_eq!(claim(&b, 100).await, Vec::<i64>::new());
    let held: Vec<String> = b
        .query("select classid::text || ':' || objid::text from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(held.is_empty(), "an empty claim holds nothing: {held:?}");
}

#[tokio::test]
async fn an_inbox_claim_excludes_other_connections_and_lapses_with_its_own() {
    let (_db, url) = harness::fresh_db().await;
    let hub = Hub::connect(&url).await.unwrap();
    migrate::migrate(&hub).await.unwrap();
    let admin = hub.client().await.unwrap();
    admin
        .execute(
            "insert into ferry.inbox (connection, remote_object, remote_id, kind, payload, next_attempt_at)
             select 'hubspot', 'contacts', g::text, 'changed', '{}', case when g = 6 then now() + interval '1 hour' else now() end
               from generate_series(1, 6) g",
            &[],
        )
        .await
        .unwrap();
    let (a, a_task) = connect(&url).await;
    let (b, _b_task) = connect(&url).await;
    assert_eq!(
        claim_events(&a, 2).await,
        vec!["1", "2"],
        "the oldest due events"
    );
    assert_eq!(
        claim_events(&b, 100).await,
        vec!["3", "4", "5"],
        "events held by another connection are skipped, events not due wait"
    );
    b.execute("select pg_advisory_unlock_all()", &[])
        .await
        .unwrap();
    drop(a);
    let _ = a_task.await;
    harness::eventually(
        "inbox claims of a closed connection lapse",
        std::time::Duration::from_secs(10),
        || async {
            let ids = claim_events(&b, 100).await;
            b.execute("select pg_advisory_unlock_all()", &[])
                .await
                .unwrap();
            (ids == vec!["1", "2", "3", "4", "5"]).then_some(())
        },
    )
    .await;
}
