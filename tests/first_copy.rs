//! The first copy: rows that exist before ferry streams a table reach the app — rows present
//! when the slot is created (its exported snapshot), and rows of an existing user table mapped
//! later — and nothing made after is missed.

mod harness;

use std::time::Duration;

use ferry::config::Config;
use ferry::engine::Engine;
use ferry::hub::{migrate, schema, Hub};
use ferry::sim::hubspot::{HubSpotSim, SimConfig};
use harness::{eventually, workload, SECRET, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_present_before_the_slot_and_in_newly_mapped_tables_are_synced() {
    let (db, url) = harness::fresh_db().await;
    let hub = Hub::connect(&url).await.unwrap();
    let sim = HubSpotSim::start(
        SimConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    // the table exists and has rows before any slot does
    let config = harness::config(&sim.base_url(), &db);
    migrate::migrate(&hub).await.unwrap();
    schema::apply(&hub, &config).await.unwrap();
    let c = hub.client().await.unwrap();
    c.batch_execute(
        "insert into hubspot.contacts (email, firstname) select 'pre' || n || '@example.com', 'Pre' || n from generate_series(1, 25) n",
    )
    .await
    .unwrap();

    let engine = Engine::start(hub.clone(), &config, &harness::secrets())
        .await
        .unwrap();
    sim.set_webhook_url(Some(engine.webhook_url("hubspot")));
    workload::assert_converges(&url, &sim, Duration::from_secs(20)).await;
    assert_eq!(sim.records("contacts").len(), 25);
    engine.shutdown().await;

    // an existing user table, mapped later, with its own key column and rows
    c.batch_execute(
        "create schema crm;
         create table crm.companies (company_key bigint generated always as identity primary key, name text, domain text);
         insert into crm.companies (name, domain) select 'Firm ' || n, 'firm' || n || '.example' from generate_series(1, 7) n;",
    )
    .await
    .unwrap();
    let grown = Config::parse(
        &format!(
            "{}\n[[mappings]]\nconnection = \"hubspot\"\nobject = \"companies\"\ntable = \"crm.companies\"\n\
             fields = [{{ column = \"name\", property = \"name\" }}, {{ column = \"domain\", property = \"domain\" }}]\n",
            harness::config_text(&sim.base_url(), &db, "127.0.0.1:0", ("A", "B"), "")
        ),
        "grown",
    )
    .unwrap();
    let engine = Engine::start(hub.clone(), &grown, &harness::secrets())
        .await
        .unwrap();
    sim.set_webhook_url(Some(engine.webhook_url("hubspot")));
    eventually(
        "existing companies created in the app",
        Duration::from_secs(20),
        || async {
            let linked: i64 = c
                .query_one("select count(hubspot_id) from crm.companies", &[])
                .await
                .ok()?
                .get(0);
            (linked == 7 && sim.records("companies").len() == 7).then_some(())
        },
    )
    .await;
    let name: String = c
        .query_one("select name from crm.companies where company_key = 3", &[])
        .await
        .unwrap()
        .get(0);
    let remote: String = c
        .query_one(
            "select hubspot_id from crm.companies where company_key = 3",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        sim.get("companies", &remote)
            .unwrap()
            .properties
            .get("name"),
        Some(&name)
    );
    // and the stream carries changes to it from now on
    c.execute(
        "update crm.companies set domain = 'renamed.example' where company_key = 3",
        &[],
    )
    .await
    .unwrap();
    eventually(
        "update of a user-table row",
        Duration::from_secs(10),
        || async {
            (sim.get("companies", &remote)?
                .properties
                .get("domain")?
                .as_str()
                == "renamed.example")
                .then_some(())
        },
    )
    .await;
    engine.shutdown().await;
    sim.shutdown();
}
