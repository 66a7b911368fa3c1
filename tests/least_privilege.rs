//! Least privilege: ferry runs as a role that is not a superuser with only the README's grants
//! (REPLICATION, CREATE on its database); the console's group roles let a reader read every
//! console view and not operate, and an operator operate; an Amazon RDS-style grant
//! (membership in rds_replication) is accepted and its absence refused with RDS's fix.

mod harness;

use ferry::hub::Hub;
use harness::Ctx;

/// `url` with another user.
fn as_user(url: &str, user: &str) -> String {
    url.replacen("postgres@", &format!("{user}@"), 1)
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_with_only_the_documented_grants_runs_a_round_trip() {
    let (db, url) = harness::fresh_db().await;
    let role = format!("{db}_app");
    let admin = connect(&url).await;
    // the README's grants, word for word but for the names
    admin
        .batch_execute(&format!(
            "create role {role} login replication;
             grant create on database {db} to {role};"
        ))
        .await
        .unwrap();
    let ctx = Ctx::start_on(db.clone(), as_user(&url, &role), 20, "", "", "", "").await;
    let (user, superuser): (String, bool) = ctx
        .pair("select current_user::text, rolsuper from pg_roles where rolname = current_user")
        .await;
    assert_eq!(user, role);
    assert!(!superuser);
    ctx.round_trip().await;
    // the slot is ferry's, made by that role
    let slots: i64 = ctx
        .one(&format!(
            "select count(*) from pg_replication_slots where slot_name = '{db}' and active"
        ))
        .await;
    assert_eq!(slots, 1);
    ctx.stop().await;
}

/// The console as its two groups see it.
const CONSOLE: &[&str] = &[
    "select * from ferry.status",
    "select * from ferry.row_sync",
    "select * from ferry.history",
    "select * from ferry.row_history('hubspot.contacts', 1)",
    "select * from ferry.pending",
    "select * from ferry.dead_letters",
    "select * from ferry.conflicts",
    "select * from ferry.open_conflicts",
    "select * from ferry.held_deletes",
    "select * from ferry.writable_columns",
    "select * from ferry.outbox",
    "select * from ferry.inbox",
];

const CONTROLS: &[&str] = &[
    "select ferry.pause('hubspot.contacts')",
    "select ferry.resume('hubspot.contacts')",
    "select ferry.resync('hubspot.contacts')",
    "select ferry.retry(1)",
    "select ferry.retry_all('hubspot.contacts')",
    "select ferry.release_deletes('hubspot.contacts')",
    "select ferry.discard_deletes('hubspot.contacts')",
    "select ferry.prune_history()",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_reads_the_console_and_the_operator_operates_it() {
    let ctx = Ctx::start(5).await;
    // a queued row, so ferry.pending has something to compute
    ctx.exec("select ferry.pause('hubspot.contacts')").await;
    ctx.exec("update hubspot.contacts set phone = '+15550177' where id = 2")
        .await;
    let alice = format!("{}_alice", ctx.db);
    let bob = format!("{}_bob", ctx.db);
    ctx.exec(&format!("create role {alice} login in role ferry_reader"))
        .await;
    ctx.exec(&format!("create role {bob} login in role ferry_operator"))
        .await;
    let reader = connect(&as_user(&ctx.url, &alice)).await;
    let operator = connect(&as_user(&ctx.url, &bob)).await;

    for sql in CONSOLE {
        reader
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("the reader runs {sql}: {e}"));
    }
    let pending: i64 = reader
        .query_one("select count(*) from ferry.pending where row_key = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert!(pending > 0, "the reader sees the queued write");
    for sql in CONTROLS {
        let err = reader
            .simple_query(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("the reader ran {sql}"));
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {err}"
        );
    }
    // nor write ferry's tables, nor read the mirror's rows
    for sql in [
        "update ferry.mappings set state = 'paused'",
        "delete from ferry.outbox",
        "select * from hubspot.contacts",
    ] {
        assert!(
            reader.simple_query(sql).await.is_err(),
            "the reader ran {sql}"
        );
    }

    // the operator reads, and operates
    for sql in CONSOLE {
        operator
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("the operator runs {sql}: {e}"));
    }
    operator
        .simple_query("select ferry.resume('hubspot.contacts')")
        .await
        .unwrap();
    harness::eventually(
        "the operator's resume drains the queue",
        std::time::Duration::from_secs(10),
        || async {
            (ctx.remote(
                &ctx.one::<String>("select hubspot_id from hubspot.contacts where id = 2")
                    .await,
                "phone",
            )
            .as_deref()
                == Some("+15550177"))
            .then_some(())
        },
    )
    .await;
    operator
        .simple_query("select ferry.pause('hubspot.contacts')")
        .await
        .unwrap();
    let state: String = ctx
        .one("select state from ferry.status where mapping = 'hubspot.contacts'")
        .await;
    assert_eq!(state, "paused");
    for sql in [
        "select ferry.resync('hubspot.contacts')",
        "select ferry.prune_history()",
    ] {
        operator
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("the operator runs {sql}: {e}"));
    }
    assert!(
        operator
            .simple_query("delete from ferry.outbox")
            .await
            .is_err(),
        "the operator changes ferry's tables only through the functions"
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_replication_membership_counts_and_its_absence_names_rds_fix() {
    // a cluster of its own, made to look like Amazon RDS by the roles RDS has
    let pg = harness::new_cluster("rds");
    pg.ensure_database("app").await.unwrap();
    let admin = connect(&pg.url("app")).await;
    admin
        .batch_execute(
            "create role rds_superuser nologin;
             create role rds_replication nologin;
             create role ferry_rds login;
             grant create on database app to ferry_rds;",
        )
        .await
        .unwrap();
    let url = as_user(&pg.url("app"), "ferry_rds");
    let err = match Hub::connect(&url).await {
        Ok(_) => panic!("a role that may not replicate was accepted"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        "role ferry_rds may not replicate: on Amazon RDS / Aurora run GRANT rds_replication TO ferry_rds; as the master user"
    );
    admin
        .batch_execute("grant rds_replication to ferry_rds")
        .await
        .unwrap();
    Hub::connect(&url)
        .await
        .expect("membership in rds_replication is RDS's right to replicate");
    // a role without CREATE on the database is told the grant
    admin
        .batch_execute("revoke create on database app from ferry_rds")
        .await
        .unwrap();
    let err = match Hub::connect(&url).await {
        Ok(_) => panic!("a role that may not create schemas was accepted"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        "role ferry_rds may not create schemas in database app: run GRANT CREATE ON DATABASE app TO ferry_rds; as the database's owner"
    );
}
