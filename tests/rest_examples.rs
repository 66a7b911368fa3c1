//! The REST connector's example configurations (`examples/rest/<api>/ferry.toml`) for GitHub
//! Issues, Strapi 5 and Directus, each run end to end against its simulator profile
//! (`examples/rest/<api>/profile.toml`), both files as shipped: the backfill (two pages); an
//! edit made in the app and announced by the simulator's own webhook, shaped and signed as
//! that API's; a delivery written here as the API documents it, read the same way; a hub edit
//! written to the app; a hub insert created there with its id written back; no dead letters,
//! every simulator webhook accepted. The profiles list what the simulator does not reproduce.

mod harness;

use ferry::config::Config;
use ferry::sim::rest::hmac_signature;
use ferry::sim::rest::profile::{Algorithm, Encoding};
use ferry::sim::rest::Profile;
use harness::examples::Example;
use harness::Sql;
use serde_json::json;

const GITHUB_PROFILE: &str = include_str!("../examples/rest/github/profile.toml");
const GITHUB_CONFIG: &str = include_str!("../examples/rest/github/ferry.toml");
const STRAPI_PROFILE: &str = include_str!("../examples/rest/strapi/profile.toml");
const STRAPI_CONFIG: &str = include_str!("../examples/rest/strapi/ferry.toml");
const DIRECTUS_PROFILE: &str = include_str!("../examples/rest/directus/profile.toml");
const DIRECTUS_CONFIG: &str = include_str!("../examples/rest/directus/ferry.toml");
/// Records made beside the three named ones: more than one page of 100.
const MORE: i64 = 100;

/// Every example loads as shipped: the profile, and the configuration with all its checks.
#[test]
fn the_examples_load_as_shipped() {
    for (name, profile, config) in [
        ("github", GITHUB_PROFILE, GITHUB_CONFIG),
        ("strapi", STRAPI_PROFILE, STRAPI_CONFIG),
        ("directus", DIRECTUS_PROFILE, DIRECTUS_CONFIG),
    ] {
        Profile::parse(profile).unwrap_or_else(|e| panic!("{name} profile: {e}"));
        let c = Config::parse(config, name).unwrap_or_else(|e| panic!("{name} ferry.toml: {e}"));
        assert_eq!(c.mappings.len(), 1, "{name}");
        assert_eq!(c.connections[name].resources.len(), 1, "{name}");
    }
}

/// The line-by-line walkthrough of docs/rest.md, its TOML blocks put together, is the Strapi
/// example as shipped (but for `base_url`: the walkthrough's is Strapi's own).
#[test]
fn the_docs_walkthrough_is_the_strapi_example() {
    let doc = include_str!("../docs/rest.md");
    let start = doc
        .find("## A complete example, line by line")
        .expect("the walkthrough");
    let end = start + doc[start..].find("## Signing in").expect("its end");
    let blocks: Vec<&str> = doc[start..end]
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(blocks.len() >= 10, "{} blocks", blocks.len());
    let walkthrough =
        Config::parse(&blocks.concat(), "docs/rest.md").expect("the walkthrough parses");
    let shipped = Config::parse(STRAPI_CONFIG, "strapi").expect("the example parses");
    let mut doc_connection = walkthrough.connections["strapi"].clone();
    doc_connection.base_url = shipped.connections["strapi"].base_url.clone();
    assert_eq!(
        format!("{doc_connection:?}"),
        format!("{:?}", shipped.connections["strapi"])
    );
    assert_eq!(
        format!("{:?}", walkthrough.mappings),
        format!("{:?}", shipped.mappings)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_issues_sync_both_ways() {
    let ex = Example::start("github", GITHUB_PROFILE, GITHUB_CONFIG, |sim| {
        let named = [
            ("Crash on start", "open"),
            ("Typo in README", "closed"),
            ("Dark mode", "open"),
        ];
        let chores = (1..=MORE).map(|i| (format!("Chore {i}"), "open"));
        let all = named.iter().map(|(t, s)| (t.to_string(), *s)).chain(chores);
        for (number, (title, state)) in (1..).zip(all) {
            let labels = json!([{"id": 208045946, "name": "bug", "color": "f29513"}]);
            let url = format!("https://github.com/octo-org/hello-world/issues/{number}");
            sim.insert(
                "issues",
                json!({"title": title, "body": "Seen on 2.1", "state": state,
                       "labels": labels, "html_url": url}),
            );
        }
    })
    .await;
    let rows: i64 = ex.one("select count(*) from work.issues").await;
    assert_eq!(rows, 3 + MORE, "every issue, the closed one too");
    ex.quiesce().await;

    // closed in GitHub: the simulator's `issues` delivery (action `edited`, the issue at
    // `/issue`, X-GitHub-Event and X-GitHub-Delivery, signed) brings it
    let number = ex.id_of("issues", "title", "Crash on start");
    let fetch = "GET /repos/octo-org/hello-world/issues/{id}";
    let fetches = ex.calls(fetch);
    ex.sim
        .edit("issues", &number, json!({"state": "closed"}))
        .expect("edited");
    let sql = "select state from work.issues where title = 'Crash on start'";
    ex.hub_shows("the closing in the hub", sql, "closed").await;
    ex.called_since(fetch, fetches).await;
    ex.quiesce().await;

    // GitHub's documented `issues` delivery (action `closed`), written here, read alike
    let now = ex.sim.get("issues", &number).unwrap();
    let body = serde_json::to_vec(&json!({
        "action": "closed",
        "issue": {"id": 1_000_000 + number.as_i64().expect("a number"), "number": number,
                  "title": now["title"], "state": "closed", "updated_at": now["updated_at"]},
        "repository": {"full_name": "octo-org/hello-world"},
        "sender": {"login": "octocat"},
    }))
    .unwrap();
    let secret = ex.webhook_secret.as_bytes();
    let signature = hmac_signature(Algorithm::Sha256, Encoding::Hex, secret, &body);
    let headers = [
        ("X-GitHub-Event", "issues"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-Hub-Signature-256", &format!("sha256={signature}")),
    ];
    let fetches = ex.calls(fetch);
    assert_eq!(ex.deliver(&headers, &body).await, 204, "verified, stored");
    ex.called_since(fetch, fetches).await;
    ex.quiesce().await;

    // a hub edit: a PATCH of the changed fields
    ex.exec("update work.issues set body = 'Follow the system theme', labels = '[\"enhancement\"]' where title = 'Dark mode'")
        .await;
    let dark = ex.id_of("issues", "title", "Dark mode");
    ex.until("the hub's edit in GitHub", || async {
        let i = ex.sim.get("issues", &dark)?;
        (i["body"] == "Follow the system theme" && i["labels"] == json!(["enhancement"]))
            .then_some(())
    })
    .await;
    assert_eq!(ex.sim.get("issues", &dark).unwrap()["state"], "open");

    // a hub insert: POSTed, its number written back
    ex.exec("insert into work.issues (title, body, state) values ('Export to CSV', 'As a user…', 'open')")
        .await;
    let made = ex
        .created_and_linked("issues", "work.issues", "title", "Export to CSV")
        .await;
    assert_eq!(made["body"], "As a user…");

    // a hub delete leaves the issue alone (on_hub_delete = "ignore": GitHub cannot delete)
    ex.exec("delete from work.issues where title = 'Typo in README'")
        .await;
    ex.quiesce().await;
    let deletes = ex.calls("DELETE /repos/octo-org/hello-world/issues/{id}");
    assert_eq!(deletes, 0, "no DELETE sent");
    assert!(ex.record("issues", "title", "Typo in README").is_some());
    ex.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strapi_articles_sync_both_ways() {
    let ex = Example::start("strapi", STRAPI_PROFILE, STRAPI_CONFIG, |sim| {
        let named = [
            ("Hello world", "hello-world"),
            ("Release notes 5.0", "release-notes-5-0"),
            ("Roadmap", "roadmap"),
        ];
        let notes = (1..=MORE).map(|i| (format!("Note {i}"), format!("note-{i}")));
        let all = named.iter().map(|(t, s)| (t.to_string(), s.to_string()));
        for (title, slug) in all.chain(notes) {
            sim.insert(
                "article",
                json!({"title": title, "slug": slug, "summary": "Draft",
                       "publishedAt": "2024-03-06T13:42:05.103Z"}),
            );
        }
    })
    .await;
    let rows: i64 = ex.one("select count(*) from cms.articles").await;
    assert_eq!(rows, 3 + MORE, "every article, page by page");
    ex.quiesce().await;

    // edited in Strapi: the simulator's `entry.update` delivery (`model`, `entry`, the
    // project's `Authorization: Bearer <secret>`) brings it
    let document_id = ex.id_of("article", "slug", "hello-world");
    assert!(document_id.is_string(), "a string documentId");
    let fetch = "GET /api/articles/{id}";
    let fetches = ex.calls(fetch);
    ex.sim
        .edit(
            "article",
            &document_id,
            json!({"summary": "Our first post"}),
        )
        .expect("edited");
    let sql = "select summary from cms.articles where slug = 'hello-world'";
    ex.hub_shows("the Strapi edit in the hub", sql, "Our first post")
        .await;
    ex.called_since(fetch, fetches).await;
    ex.quiesce().await;

    // Strapi's documented delivery, written here, read alike; refused without the secret
    let now = ex.sim.get("article", &document_id).unwrap();
    let body = serde_json::to_vec(&json!({
        "event": "entry.update",
        "createdAt": now["updatedAt"],
        "model": "article",
        "uid": "api::article.article",
        "entry": {"id": now["id"], "documentId": document_id, "title": now["title"],
                  "slug": now["slug"], "summary": now["summary"],
                  "createdAt": now["createdAt"], "updatedAt": now["updatedAt"]},
    }))
    .unwrap();
    let bearer = format!("Bearer {}", ex.webhook_secret);
    let event = ("X-Strapi-Event", "entry.update");
    let fetches = ex.calls(fetch);
    let status = ex
        .deliver(&[("Authorization", &bearer), event], &body)
        .await;
    assert_eq!(status, 204, "verified, stored");
    ex.called_since(fetch, fetches).await;
    let refused = ex.deliver(&[event], &body).await;
    assert_eq!(refused, 401, "a delivery without the secret");
    ex.quiesce().await;

    // a hub edit: a PUT of {"data": {...}} with the changed field, the others kept
    ex.exec("update cms.articles set title = 'Roadmap 2025' where slug = 'roadmap'")
        .await;
    ex.until("the hub's edit in Strapi", || async {
        ex.record("article", "title", "Roadmap 2025")
    })
    .await;
    let roadmap = ex.record("article", "slug", "roadmap").unwrap();
    assert_eq!(roadmap["summary"], "Draft");

    // a hub insert: POST {"data": {...}}, its documentId written back
    ex.exec("insert into cms.articles (title, slug, summary) values ('Meet the team', 'meet-the-team', 'Who we are')")
        .await;
    let made = ex
        .created_and_linked("article", "cms.articles", "slug", "meet-the-team")
        .await;
    assert_eq!(made["summary"], "Who we are");
    ex.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directus_tickets_sync_both_ways() {
    let ex = Example::start("directus", DIRECTUS_PROFILE, DIRECTUS_CONFIG, |sim| {
        let named = [
            ("OPS-1", "Disk full on db-2"),
            ("OPS-2", "Renew TLS certificate"),
            ("OPS-3", "Rotate API keys"),
        ];
        let checks = (1..=MORE).map(|i| (format!("OPS-{}", 100 + i), "Routine check"));
        let all = named.iter().map(|(k, s)| (k.to_string(), *s));
        for (key, subject) in all.chain(checks) {
            sim.insert(
                "tickets",
                json!({"ticket_key": key, "subject": subject, "status": "open", "priority": 2}),
            );
        }
    })
    .await;
    let rows: i64 = ex.one("select count(*) from ops.tickets").await;
    assert_eq!(rows, 3 + MORE, "every item, page by page");
    assert!(
        ex.calls("POST /auth/login") >= 1,
        "signed in at /auth/login"
    );
    ex.quiesce().await;

    // edited in Directus: the simulator's delivery of the Flow's `$trigger` (items.update,
    // `keys`, `collection`, the X-Webhook-Secret header) brings it
    let id = ex.id_of("tickets", "ticket_key", "OPS-1");
    let fetch = "GET /items/tickets/{id}";
    let fetches = ex.calls(fetch);
    ex.sim
        .edit("tickets", &id, json!({"status": "pending"}))
        .expect("edited");
    let sql = "select status from ops.tickets where ticket_key = 'OPS-1'";
    ex.hub_shows("the Directus edit in the hub", sql, "pending")
        .await;
    ex.called_since(fetch, fetches).await;
    ex.quiesce().await;

    // the Flow's documented delivery, written here, read alike
    let body = serde_json::to_vec(&json!({
        "event": "tickets.items.update",
        "payload": {"status": "pending"},
        "keys": [id],
        "collection": "tickets",
    }))
    .unwrap();
    let fetches = ex.calls(fetch);
    let headers = [("X-Webhook-Secret", ex.webhook_secret.as_str())];
    assert_eq!(ex.deliver(&headers, &body).await, 204, "verified, stored");
    ex.called_since(fetch, fetches).await;

    // created in Directus (date_updated still null): its items.create names it in `key`,
    // which the example skips; the poll brings it
    ex.sim.insert(
        "tickets",
        json!({"ticket_key": "OPS-4", "subject": "Upgrade Postgres", "status": "open"}),
    );
    let sql = "select subject from ops.tickets where ticket_key = 'OPS-4'";
    ex.hub_shows("the new item in the hub", sql, "Upgrade Postgres")
        .await;
    ex.quiesce().await;

    // a hub edit: a PATCH of the changed fields
    ex.exec("update ops.tickets set status = 'closed', priority = 1 where ticket_key = 'OPS-2'")
        .await;
    ex.until("the hub's edit in Directus", || async {
        let t = ex.record("tickets", "ticket_key", "OPS-2")?;
        (t["status"] == "closed" && t["priority"] == 1).then_some(())
    })
    .await;
    let t = ex.record("tickets", "ticket_key", "OPS-2").unwrap();
    assert_eq!(t["subject"], "Renew TLS certificate");
    assert!(!t["date_updated"].is_null(), "stamped by the update");

    // a hub insert: a POST of the bare item, its integer key written back
    ex.exec("insert into ops.tickets (ticket_key, subject, status, priority) values ('OPS-5', 'Add a replica', 'open', 2)")
        .await;
    let made = ex
        .created_and_linked("tickets", "ops.tickets", "ticket_key", "OPS-5")
        .await;
    assert_eq!(made["subject"], "Add a replica");
    ex.finish().await;
}
