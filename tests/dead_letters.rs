//! Failure handling: a validation error becomes a dead letter carrying the API's own message,
//! only the failing rows of a batch fail (HubSpot 207), other rows are not blocked, and a dead
//! letter is retryable from SQL.

mod harness;

use std::time::Duration;

use harness::{eventually, Ctx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_dead_letter_only_the_bad_rows() {
    let ctx = Ctx::start(30).await;
    ctx.quiesce().await;
    // one statement, ten rows, one of them invalid for the app: one batch call, 207 partial
    ctx.exec(
        "update hubspot.contacts
            set company = 'Batch Co', email = case when id = 4 then 'not-an-email' else email end
          where id between 1 and 10",
    )
    .await;
    let error: String = eventually("dead letter", Duration::from_secs(10), || async {
        ctx.opt::<String>(
            "select error from ferry.dead_letters where row_key = 4 and direction = 'outbound'",
        )
        .await
    })
    .await;
    assert!(
        error.to_lowercase().contains("email"),
        "the API's own message is kept: {error}"
    );
    ctx.quiesce().await;
    for id in 1..=10 {
        let remote: String = ctx
            .one(&format!(
                "select hubspot_id from hubspot.contacts where id = {id}"
            ))
            .await;
        let company = ctx.remote(&remote, "company");
        if id == 4 {
            assert_ne!(
                company.as_deref(),
                Some("Batch Co"),
                "the failed row was not written"
            );
        } else {
            assert_eq!(
                company.as_deref(),
                Some("Batch Co"),
                "row {id} was not blocked by row 4"
            );
        }
    }
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 1);
    let state: String = ctx
        .one("select state from ferry.row_sync where row_key = 4")
        .await;
    assert_eq!(state, "failed");
    let status_dead: i64 = ctx.one("select dead_letters from ferry.status").await;
    assert_eq!(status_dead, 1);

    // fix the row and retry from SQL: the change goes out, the dead letter is closed
    ctx.exec("update hubspot.contacts set email = 'fixed4@example.com' where id = 4")
        .await;
    let retried: bool = ctx
        .one("select ferry.retry(id) from ferry.dead_letters where row_key = 4")
        .await;
    assert!(retried);
    let remote: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 4")
        .await;
    eventually("fixed row synced", Duration::from_secs(10), || async {
        (ctx.remote(&remote, "email").as_deref() == Some("fixed4@example.com")
            && ctx.remote(&remote, "company").as_deref() == Some("Batch Co"))
        .then_some(())
    })
    .await;
    eventually("row 4 reported synced", Duration::from_secs(5), || async {
        (ctx.one::<String>("select state from ferry.row_sync where row_key = 4")
            .await
            == "synced")
            .then_some(())
    })
    .await;
    let again: bool = ctx
        .one("select ferry.retry(id) from ferry.dead_letters where row_key = 4")
        .await;
    assert!(!again, "a dead letter is retried once");
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_create_is_a_dead_letter_and_holds_nothing_back() {
    let ctx = Ctx::start(3).await;
    ctx.quiesce().await;
    // a duplicate email is refused by the app (409)
    let taken: String = ctx
        .one("select email from hubspot.contacts where id = 1")
        .await;
    ctx.exec(&format!(
        "insert into hubspot.contacts (email, firstname) values ('{taken}', 'Dup')"
    ))
    .await;
    ctx.exec("insert into hubspot.contacts (email, firstname) values ('fine@example.com', 'Fine')")
        .await;
    eventually("good insert created", Duration::from_secs(10), || async {
        ctx.opt::<Option<String>>(
            "select hubspot_id from hubspot.contacts where email = 'fine@example.com'",
        )
        .await
        .flatten()
    })
    .await;
    let error: String = eventually(
        "dead letter for the duplicate",
        Duration::from_secs(10),
        || async {
            ctx.opt::<String>("select error from ferry.dead_letters where operation = 'create'")
                .await
        },
    )
    .await;
    assert!(error.contains("already exists"), "{error}");
    let intents: i64 = ctx
        .one("select count(*) from ferry.links where remote_id is null")
        .await;
    assert_eq!(intents, 0, "a refused create leaves no intent behind");
    ctx.stop().await;
}
