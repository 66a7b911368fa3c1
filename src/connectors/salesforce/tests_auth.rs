//! Salesforce connector against the simulator, sign-in: both OAuth grants, a session that
//! expires mid-run (signed in again once, the refused call sent again exactly once, however
//! many callers saw it expire), and refused credentials as `Auth`.

use std::sync::Arc;

use serde_json::json;

use super::tests_reads::{connector, paths, sim};
use super::tests_writes::props;
use super::{Grant, Options, Salesforce};
use crate::connectors::{Connector, ConnectorError};
use crate::sim::salesforce::SimConfig;

const TOKEN: &str = "POST /services/oauth2/token";

#[tokio::test]
async fn refresh_token_grant_signs_in_once_and_reuses_the_session() {
    let sim = sim(SimConfig {
        seed_contacts: 3,
        ..SimConfig::default()
    })
    .await;
    let sf = connector(&sim);
    for _ in 0..3 {
        let page = sf
            .list("Contact", &paths(&["LastName"]), None)
            .await
            .unwrap();
        assert_eq!(page.records.len(), 3);
    }
    let stats = sim.stats();
    assert_eq!(stats.route(TOKEN), 1, "one sign-in for three calls");
    assert_eq!(stats.route("GET /query"), 3);
    assert_eq!(stats.unauthorized, 0);
}

#[tokio::test]
async fn client_credentials_grant_signs_in() {
    let sim = sim(SimConfig {
        seed_contacts: 2,
        ..SimConfig::default()
    })
    .await;
    let c = sim.config().clone();
    let sf = Salesforce::new(
        "salesforce",
        &sim.base_url(),
        Grant::ClientCredentials {
            client_id: c.client_id,
            client_secret: c.client_secret,
        },
        Options::default(),
    );
    let page = sf.list("Contact", &[], None).await.unwrap();
    assert_eq!(page.records.len(), 2);
    assert_eq!(sim.stats().route(TOKEN), 1);
}

#[tokio::test]
async fn refused_credentials_are_an_auth_failure() {
    let sim = sim(SimConfig::default()).await;
    let c = sim.config().clone();
    let sf = Salesforce::new(
        "salesforce",
        &sim.base_url(),
        Grant::RefreshToken {
            client_id: c.client_id,
            client_secret: c.client_secret,
            refresh_token: "revoked".into(),
        },
        Options::default(),
    );
    match sf.list("Contact", &[], None).await {
        Err(ConnectorError::Auth(m)) => assert_eq!(
            m,
            "Salesforce refused the refresh_token sign-in (HTTP 400): invalid_grant expired access/refresh token"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.stats().route("GET /query"), 0);
}

#[tokio::test]
async fn an_expired_session_is_refreshed_and_the_write_sent_again_exactly_once() {
    let sim = sim(SimConfig::default()).await;
    let sf = connector(&sim);
    sf.list("Contact", &[], None).await.unwrap();
    sim.expire_sessions();
    sim.reset_stats();
    let out = sf
        .create("Contact", &[props(json!({"LastName": "Ng"}))])
        .await;
    let id = out[0].as_ref().expect("created").id.clone();
    let stats = sim.stats();
    assert_eq!(stats.route(TOKEN), 1, "signed in again once");
    assert_eq!(stats.unauthorized, 1, "the refused call");
    assert_eq!(
        stats.route("POST /composite/sobjects"),
        2,
        "the refused call and its one repeat"
    );
    let all = sim.records("Contact");
    assert_eq!(all.len(), 1, "one record");
    assert_eq!(all[0].id, id);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let sim = sim(SimConfig {
        seed_contacts: 4,
        ..SimConfig::default()
    })
    .await;
    let sf = Arc::new(connector(&sim));
    sf.list("Contact", &[], None).await.unwrap();
    sim.expire_sessions();
    sim.reset_stats();
    let calls = (0..8).map(|_| {
        let sf = sf.clone();
        tokio::spawn(async move { sf.list("Contact", &[], None).await })
    });
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().records.len(), 4);
    }
    let stats = sim.stats();
    assert_eq!(
        stats.route(TOKEN),
        1,
        "one sign-in for eight refused callers"
    );
    assert_eq!(
        stats.route("GET /query"),
        8 + stats.unauthorized,
        "each refused call repeated once"
    );
    assert!(stats.unauthorized >= 1);
    // a session refused twice in a row is the operator's problem, not a loop
    sim.expire_sessions();
    let c = sim.config().clone();
    let bad = Salesforce::new(
        "salesforce",
        &sim.base_url(),
        Grant::RefreshToken {
            client_id: c.client_id,
            client_secret: "wrong".into(),
            refresh_token: c.refresh_token,
        },
        Options::default(),
    );
    let e = bad.list("Contact", &[], None).await.unwrap_err();
    assert!(matches!(e, ConnectorError::Auth(_)), "{e:?}");
}

#[test]
fn configuration_keys_parse_and_missing_secrets_are_one_sentence() {
    use crate::config::Config;
    let conn = |extra: &str| {
        format!(
            r#"
            [connections.sf]
            kind = "salesforce"
            base_url = "http://127.0.0.1:1"
            client_id_env = "FERRY_TEST_SF_UNSET_ID"
            client_secret_env = "FERRY_TEST_SF_UNSET_SECRET"
            {extra}
            "#
        )
    };
    let c = Config::parse(
        &conn(
            r#"oauth = "client_credentials"
                 api_version = "61.0"
                 external_id_field = "Ext_Id__c"
                 daily_share = 0.5"#,
        ),
        "t",
    )
    .unwrap();
    let sf = &c.connections["sf"];
    assert!(sf.client_credentials());
    assert_eq!(sf.daily_share, Some(0.5));
    // no token_env needed with client credentials; the consumer key's variable is
    let secrets = sf.secrets("sf").unwrap();
    let e = crate::connectors::build("sf", sf, &secrets).err().unwrap();
    assert_eq!(
        e,
        "connection `sf`: environment variable FERRY_TEST_SF_UNSET_ID (client_id_env) is not set"
    );
    let err = |extra: &str| Config::parse(&conn(extra), "t").unwrap_err().to_string();
    assert_eq!(
        err(""),
        "connection `sf`: token_env (the environment variable holding the API token) is required"
    );
    assert_eq!(
        err(r#"token_env = "X"
               oauth = "password""#),
        "connection `sf`: oauth = `password` is not a grant ferry knows (known: refresh_token, client_credentials)"
    );
    assert_eq!(
        err(r#"token_env = "X"
               daily_share = 1.5"#),
        "connection `sf`: daily_share = 1.5 must be more than 0 and at most 1"
    );
}
