//! Test harness: the apps a three-party world can hold — HubSpot contacts, Zendesk users,
//! Salesforce Contacts and Stripe customers — each its simulator behind [`Party`].

use std::time::Duration;

use ferry::sim::hubspot::{HubSpotSim, SimConfig as HubSpotConfig};
use ferry::sim::salesforce::{SalesforceSim, SimConfig as SalesforceConfig};
use ferry::sim::stripe::{SimConfig as StripeConfig, StripeSim};
use ferry::sim::zendesk::{SimConfig as ZendeskConfig, ZendeskSim};
use serde_json::{json, Map, Value};

use super::{Party, Person};
use crate::harness::{hubspot_sim, obj, props, zendesk_sim, SECRET, TOKEN};

/// The `[[mappings]]` of `crm.people` for one app: its object and its names of the name and
/// phone fields.
fn people_mapping(connection: &str, object: &str, name: &str, email: &str, phone: &str) -> String {
    format!(
        r#"
        [[mappings]]
        connection = "{connection}"
        object = "{object}"
        table = "crm.people"
        match_key = "email"
        delete_fuse = {{ enabled = false }}
        fields = [
          {{ column = "email", property = "{email}", transform = "lowercase" }},
          {{ column = "name",  property = "{name}" }},
          {{ column = "phone", property = "{phone}" }},
        ]
        "#
    )
}

/// A JSON string field, None when missing or empty.
fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Records with their emails lowercased.
fn by_email(
    records: impl Iterator<Item = (Option<String>, Person, String)>,
) -> Vec<(String, Person, String)> {
    records
        .map(|(email, p, id)| (email.unwrap_or_default().to_lowercase(), p, id))
        .collect()
}

pub struct HubSpotParty(pub HubSpotSim);

impl HubSpotParty {
    pub async fn start() -> Box<dyn Party> {
        Box::new(HubSpotParty(
            hubspot_sim(HubSpotConfig {
                lost_response_rate: 0.01,
                ..HubSpotConfig::default()
            })
            .await,
        ))
    }
}

impl Party for HubSpotParty {
    fn calm(&self) {
        self.0.set_faults(0.0, 0.0, 0.0);
    }
    fn name(&self) -> &'static str {
        "hubspot"
    }
    fn config(&self) -> String {
        format!(
            r#"
            [connections.hubspot]
            kind = "hubspot"
            base_url = "{}"
            token_env = "TP_HUBSPOT_TOKEN"
            webhook_secret_env = "TP_HUBSPOT_SECRET"
            {}"#,
            self.0.base_url(),
            people_mapping("hubspot", "contacts", "firstname", "email", "phone")
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TP_HUBSPOT_TOKEN", TOKEN.to_string()),
            ("TP_HUBSPOT_SECRET", SECRET.to_string()),
        ]
    }
    fn set_webhook_url(&self, url: String) {
        self.0.set_webhook_url(Some(url));
    }
    fn list(&self) -> Vec<(String, Person, String)> {
        by_email(
            self.0
                .records("contacts")
                .into_iter()
                .filter(|r| !r.archived)
                .map(|r| {
                    let p = |k: &str| r.properties.get(k).filter(|v| !v.is_empty()).cloned();
                    (p("email"), (p("firstname"), p("phone")), r.id.clone())
                }),
        )
    }
    fn create(&self, email: &str, name: &str, phone: Option<&str>) {
        let mut p = props(&[("email", email), ("firstname", name)]);
        if let Some(phone) = phone {
            p.insert("phone".into(), json!(phone));
        }
        self.0.app_create("contacts", p).unwrap();
    }
    fn update(&self, id: &str, field: &str, value: &str) {
        let property = if field == "name" { "firstname" } else { field };
        let _ = self
            .0
            .app_update("contacts", id, props(&[(property, value)]));
    }
    fn delete(&self, id: &str) {
        let _ = self.0.app_archive("contacts", id);
    }
    fn writes(&self) -> u64 {
        self.0.stats().records_written
    }
    fn activity(&self) -> Vec<u64> {
        let s = self.0.stats();
        vec![s.requests, s.webhook_events]
    }
    fn describe(&self, id: &str) -> Option<String> {
        let r = self
            .0
            .records("contacts")
            .into_iter()
            .find(|r| r.id == id)?;
        Some(format!("{r:?}"))
    }
    fn shutdown(&self) {
        self.0.shutdown();
    }
}

pub struct ZendeskParty(pub ZendeskSim);

impl ZendeskParty {
    pub async fn start() -> Box<dyn Party> {
        Box::new(ZendeskParty(zendesk_sim(ZendeskConfig::default()).await))
    }
}

impl Party for ZendeskParty {
    fn calm(&self) {
        self.0.set_faults(0.0, 0.0, 0.0);
    }
    fn name(&self) -> &'static str {
        "zendesk"
    }
    fn config(&self) -> String {
        format!(
            r#"
            [connections.zendesk]
            kind = "zendesk"
            base_url = "{}"
            email = "{}"
            token_env = "TP_ZENDESK_TOKEN"
            webhook_secret_env = "TP_ZENDESK_SECRET"
            rate_limit = "700/60s"
            {}"#,
            self.0.base_url(),
            self.0.email(),
            people_mapping("zendesk", "users", "name", "email", "phone")
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TP_ZENDESK_TOKEN", self.0.token()),
            ("TP_ZENDESK_SECRET", self.0.webhook_secret()),
        ]
    }
    fn set_webhook_url(&self, url: String) {
        self.0.set_webhook_url(Some(url));
    }
    fn list(&self) -> Vec<(String, Person, String)> {
        by_email(self.0.records("users").into_iter().map(|r| {
            (
                text(&r.fields, "email"),
                (text(&r.fields, "name"), text(&r.fields, "phone")),
                r.id.to_string(),
            )
        }))
    }
    fn create(&self, email: &str, name: &str, phone: Option<&str>) {
        let mut f = obj(json!({"email": email, "name": name}));
        if let Some(phone) = phone {
            f.insert("phone".into(), json!(phone));
        }
        self.0.app_create("users", f).unwrap();
    }
    fn update(&self, id: &str, field: &str, value: &str) {
        let _ = self
            .0
            .app_update("users", id.parse().unwrap(), obj(json!({ field: value })));
    }
    fn delete(&self, id: &str) {
        let _ = self.0.app_delete("users", id.parse().unwrap());
    }
    fn writes(&self) -> u64 {
        self.0.stats().records_written
    }
    fn activity(&self) -> Vec<u64> {
        let s = self.0.stats();
        vec![s.requests, s.webhooks_delivered]
    }
    /// The account owner: Zendesk will not delete it.
    fn protected(&self) -> Option<String> {
        Some(self.0.email().to_lowercase())
    }
    /// Zendesk's export shows a change once its minute has passed.
    fn settle(&self) {
        self.0.clock().advance(Duration::from_secs(61));
    }
    fn describe(&self, id: &str) -> Option<String> {
        let r = self.0.get("users", id.parse().ok()?)?;
        Some(format!("{:?}", r.fields))
    }
    fn shutdown(&self) {
        self.0.shutdown();
    }
}

/// The environment variables of the Salesforce connection's secrets.
const SF_ENV: [&str; 3] = [
    "TP_SF_REFRESH_TOKEN",
    "TP_SF_CLIENT_ID",
    "TP_SF_CLIENT_SECRET",
];

pub struct SalesforceParty(pub SalesforceSim);

impl SalesforceParty {
    pub async fn start() -> Box<dyn Party> {
        let sim = SalesforceSim::start(
            SalesforceConfig {
                lost_response_rate: 0.01,
                ..SalesforceConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("salesforce simulator starts");
        Box::new(SalesforceParty(sim))
    }
}

impl Party for SalesforceParty {
    fn calm(&self) {
        self.0.set_faults(0.0, 0.0, 0.0);
    }
    fn name(&self) -> &'static str {
        "salesforce"
    }
    fn config(&self) -> String {
        let [token, id, secret] = SF_ENV;
        format!(
            r#"
            [connections.salesforce]
            kind = "salesforce"
            base_url = "{}"
            token_env = "{token}"
            client_id_env = "{id}"
            client_secret_env = "{secret}"
            {}"#,
            self.0.base_url(),
            people_mapping("salesforce", "Contact", "LastName", "Email", "Phone")
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        let c = self.0.config();
        SF_ENV
            .into_iter()
            .zip([
                c.refresh_token.clone(),
                c.client_id.clone(),
                c.client_secret.clone(),
            ])
            .collect()
    }
    /// Salesforce sends no webhooks: ferry polls it.
    fn set_webhook_url(&self, _url: String) {}
    fn list(&self) -> Vec<(String, Person, String)> {
        by_email(self.0.records("Contact").into_iter().map(|r| {
            (
                text(&r.fields, "Email"),
                (text(&r.fields, "LastName"), text(&r.fields, "Phone")),
                r.id,
            )
        }))
    }
    fn create(&self, email: &str, name: &str, phone: Option<&str>) {
        let mut f = obj(json!({"Email": email, "LastName": name}));
        if let Some(phone) = phone {
            f.insert("Phone".into(), json!(phone));
        }
        self.0.app_create("Contact", f).unwrap();
    }
    fn update(&self, id: &str, field: &str, value: &str) {
        let field = if field == "name" { "LastName" } else { "Phone" };
        let _ = self
            .0
            .app_update("Contact", id, obj(json!({ field: value })));
    }
    fn delete(&self, id: &str) {
        let _ = self.0.app_delete("Contact", id);
    }
    fn writes(&self) -> u64 {
        self.0.stats().records_written
    }
    fn activity(&self) -> Vec<u64> {
        vec![self.0.stats().requests]
    }
    /// getDeleted shows a deletion once its minute is over.
    fn settle(&self) {
        self.0.clock().advance(Duration::from_secs(61));
    }
    fn describe(&self, id: &str) -> Option<String> {
        Some(format!("{:?}", self.0.get("Contact", id)?.fields))
    }
    fn shutdown(&self) {
        self.0.shutdown();
    }
}

pub struct StripeParty(pub StripeSim);

impl StripeParty {
    pub async fn start() -> Box<dyn Party> {
        let sim = StripeSim::start(
            StripeConfig {
                // ferry writes one customer a call: the live budget keeps the test short
                sandbox_rate_limit: Some((100, Duration::from_secs(1))),
                lost_response_rate: 0.01,
                ..StripeConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("stripe simulator starts");
        Box::new(StripeParty(sim))
    }
}

impl Party for StripeParty {
    fn calm(&self) {
        self.0.set_faults(0.0, 0.0, 0.0);
    }
    fn name(&self) -> &'static str {
        "stripe"
    }
    fn config(&self) -> String {
        format!(
            r#"
            [connections.stripe]
            kind = "stripe"
            base_url = "{}"
            token_env = "TP_STRIPE_KEY"
            webhook_secret_env = "TP_STRIPE_SECRET"
            rate_limit = "100/1s"
            {}"#,
            self.0.base_url(),
            people_mapping("stripe", "customers", "name", "email", "phone")
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TP_STRIPE_KEY", self.0.test_key()),
            (
                "TP_STRIPE_SECRET",
                self.0
                    .webhook_secrets()
                    .first()
                    .cloned()
                    .unwrap_or_default(),
            ),
        ]
    }
    fn set_webhook_url(&self, url: String) {
        self.0.set_webhook_url(Some(url));
    }
    fn list(&self) -> Vec<(String, Person, String)> {
        by_email(self.0.records("customers").into_iter().map(|c| {
            let f = c.as_object().cloned().unwrap_or_default();
            (
                text(&f, "email"),
                (text(&f, "name"), text(&f, "phone")),
                text(&f, "id").unwrap_or_default(),
            )
        }))
    }
    fn create(&self, email: &str, name: &str, phone: Option<&str>) {
        let mut f = json!({"email": email, "name": name});
        if let Some(phone) = phone {
            f["phone"] = json!(phone);
        }
        self.0.app_create_customer(f).unwrap();
    }
    fn update(&self, id: &str, field: &str, value: &str) {
        let _ = self.0.app_update_customer(id, json!({ field: value }));
    }
    fn delete(&self, id: &str) {
        let _ = self.0.app_delete_customer(id);
    }
    fn writes(&self) -> u64 {
        self.0.stats().writes
    }
    fn activity(&self) -> Vec<u64> {
        let s = self.0.stats();
        vec![s.requests, s.webhooks_delivered]
    }
    fn describe(&self, id: &str) -> Option<String> {
        Some(self.0.get(id)?.to_string())
    }
    fn shutdown(&self) {
        self.0.shutdown();
    }
}
