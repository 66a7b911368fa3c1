//! Config → hub: mirror tables, columns, comments, publication; applying twice changes nothing,
//! adding a field adds a column.

mod harness;

use ferry::config::Config;
use ferry::hub::{migrate, schema, Hub};

async fn snapshot(hub: &Hub) -> Vec<String> {
    let client = hub.client().await.unwrap();
    let rows = client
        .query(
            "select format('%s.%s %s %s', table_schema, table_name, column_name, data_type) from information_schema.columns
              where table_schema in ('hubspot', 'ferry') order by 1",
            &[],
        )
        .await
        .unwrap();
    let mut out: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for sql in [
        "select m::text from ferry.mappings m order by id",
        "select f::text from ferry.fields f order by mapping_id, position",
        "select c::text from ferry.connections c order by name",
        "select pubname || ' ' || schemaname || '.' || tablename from pg_publication_tables order by 1",
    ] {
        out.extend(client.query(sql, &[]).await.unwrap().iter().map(|r| r.get::<_, String>(0)));
    }
    out
}

#[tokio::test]
async fn apply_is_idempotent_and_grows_columns() {
    let (db, url) = harness::fresh_db().await;
    let hub = Hub::connect(&url).await.unwrap();
    migrate::migrate(&hub).await.unwrap();
    migrate::migrate(&hub)
        .await
        .expect("migrating twice is harmless");
    let config = harness::config("http://127.0.0.1:9", &db);

    let first = schema::apply(&hub, &config).await.unwrap();
    assert_eq!(first.tables_created, vec!["hubspot.contacts".to_string()]);
    assert_eq!(
        first.publication_added,
        vec!["hubspot.contacts".to_string()]
    );
    let before = snapshot(&hub).await;
    let second = schema::apply(&hub, &config).await.unwrap();
    assert!(
        second.is_empty(),
        "second apply changed something: {second}"
    );
    assert_eq!(
        before,
        snapshot(&hub).await,
        "second apply left the hub as it was"
    );

    // typed columns, surrogate key, remote id column, comments
    let client = hub.client().await.unwrap();
    let cols: Vec<(String, String)> = client
        .query(
            "select column_name::text, data_type::text from information_schema.columns
              where table_schema = 'hubspot' and table_name = 'contacts' order by ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(cols[0], ("id".into(), "bigint".into()));
    assert_eq!(cols[1], ("hubspot_id".into(), "text".into()));
    assert!(cols.contains(&("email".into(), "text".into())));
    let uncommented: i64 = client
        .query_one(
            "select count(*) from pg_attribute a where a.attrelid = 'hubspot.contacts'::regclass and a.attnum > 0
                and not a.attisdropped and col_description(a.attrelid, a.attnum) is null",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(uncommented, 0, "every column has a comment");

    // a new typed field becomes a column; nothing else changes
    let text = harness::config_text(
        "http://127.0.0.1:9",
        &db,
        "127.0.0.1:0",
        ("UNUSED_IN_TESTS", "UNUSED_IN_TESTS_SECRET"),
        r#"{ column = "employees", property = "numemployees", type = "integer", direction = "inbound" },"#,
    );
    let grown = Config::parse(&text, "grown").unwrap();
    let third = schema::apply(&hub, &grown).await.unwrap();
    assert_eq!(
        third.columns_added,
        vec!["hubspot.contacts.employees".to_string()]
    );
    assert!(third.tables_created.is_empty());
    let ty: String = client
        .query_one(
            "select data_type::text from information_schema.columns where table_schema = 'hubspot' and table_name = 'contacts' and column_name = 'employees'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ty, "integer");
    assert!(schema::apply(&hub, &grown).await.unwrap().is_empty());
}

#[tokio::test]
async fn identifiers_from_config_are_quoted() {
    let (db, url) = harness::fresh_db().await;
    let hub = Hub::connect(&url).await.unwrap();
    migrate::migrate(&hub).await.unwrap();
    let text = format!(
        r#"
        [engine]
        slot = "{db}"
        publication = "ferry"
        [connections.hubspot]
        kind = "hubspot"
        base_url = "http://127.0.0.1:9"
        token_env = "X"
        [[mappings]]
        connection = "hubspot"
        object = "contacts"
        table = "Odd Schema.contacts; drop table x"
        fields = [{{ column = "E-mail \"addr\"", property = "email" }}]
        "#
    );
    let config = Config::parse(&text, "odd").unwrap();
    schema::apply(&hub, &config)
        .await
        .expect("odd identifiers are quoted, not interpreted");
    let n: i64 = hub
        .client()
        .await
        .unwrap()
        .query_one("select count(*) from \"Odd Schema\".\"contacts; drop table x\" where \"E-mail \"\"addr\"\"\" is null", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

/// links, outbox, reconcile_seen and tombstones carry no foreign key (V7); deleting a mapping
/// from psql still removes its per-record state, and leaves other mappings' alone.
#[tokio::test]
async fn deleting_a_mapping_removes_its_per_record_state() {
    let (hub, _) = harness::applied_hub().await;
    let client = hub.client().await.unwrap();
    client
        .batch_execute(
            "insert into ferry.mappings (name, connection, remote_object, hub_schema, hub_table, id_column)
             select 'other', connection, remote_object, hub_schema, hub_table, id_column from ferry.mappings limit 1;
             insert into ferry.links (mapping_id, row_key, remote_id) select id, 1, 'r1' from ferry.mappings;
             insert into ferry.outbox (mapping_id, row_key) select id, 1 from ferry.mappings;
             insert into ferry.reconcile_seen (mapping_id, remote_id) select id, 'r1' from ferry.mappings;
             insert into ferry.tombstones (mapping_id, remote_id, deleted_at) select id, 'r2', now() from ferry.mappings;
             delete from ferry.mappings where name <> 'other';",
        )
        .await
        .unwrap();
    for table in ["links", "outbox", "reconcile_seen", "tombstones"] {
        let left: Vec<String> = client
            .query(&format!("select m.name from ferry.{table} t left join ferry.mappings m on m.id = t.mapping_id"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, Option<String>>(0).unwrap_or_else(|| "(deleted mapping)".into()))
            .collect();
        assert_eq!(left, vec!["other".to_string()], "ferry.{table}");
    }
}

/// First-sync matching probes unlinked rows only: the match key's index is partial (rows
/// without a remote id), and a hub from before it loses the full index it had.
#[tokio::test]
async fn the_match_index_holds_unlinked_rows_only() {
    let (hub, config) = harness::applied_hub().await;
    let client = hub.client().await.unwrap();
    let indexes = || {
        harness::column::<String>(
            &client,
            "select indexdef from pg_indexes where schemaname = 'hubspot' and indexdef like '%lower(%' order by 1",
        )
    };
    assert_eq!(
        indexes().await,
        vec!["CREATE INDEX contacts_email_ferry_unlinked ON hubspot.contacts USING btree (lower(email)) WHERE (hubspot_id IS NULL)".to_string()]
    );
    // a hub whose table still has the full index of earlier versions
    client
        .batch_execute("drop index hubspot.contacts_email_ferry_unlinked; create index contacts_email_ferry_match on hubspot.contacts (lower(email::text))")
        .await
        .unwrap();
    let report = schema::apply(&hub, &config).await.unwrap();
    assert_eq!(
        report.upgraded,
        ["hubspot.contacts (its match index holds unlinked rows only)"]
    );
    let after = indexes().await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(
        after[0].starts_with("CREATE INDEX contacts_email_ferry_unlinked"),
        "{after:?}"
    );
}

/// The listener reads the row key of a change and nothing else: the publication carries that
/// column only, also for a table an earlier version published whole.
#[tokio::test]
async fn the_publication_carries_the_row_key_only() {
    let (hub, config) = harness::applied_hub().await;
    let client = hub.client().await.unwrap();
    let published = "select attnames::text[] from pg_publication_tables where pubname = 'ferry' and tablename = 'contacts'";
    let cols: Vec<String> = client.query_one(published, &[]).await.unwrap().get(0);
    assert_eq!(cols, ["id"]);
    client
        .batch_execute("alter publication ferry drop table hubspot.contacts; alter publication ferry add table hubspot.contacts")
        .await
        .unwrap();
    let cols: Vec<String> = client.query_one(published, &[]).await.unwrap().get(0);
    assert!(cols.len() > 1, "published whole: {cols:?}");
    let report = schema::apply(&hub, &config).await.unwrap();
    assert_eq!(
        report.upgraded,
        ["hubspot.contacts (published by its row key only)"]
    );
    assert!(
        report.to_string().contains("upgraded: hubspot.contacts"),
        "{report}"
    );
    let cols: Vec<String> = client.query_one(published, &[]).await.unwrap().get(0);
    assert_eq!(cols, ["id"]);
}
