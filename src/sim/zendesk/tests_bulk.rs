//! Zendesk simulator: bulk job tests — queued job_status answers, per-item results in input
//! order with lone failures, create_or_update_many retries that do not duplicate,
//! update_many in both forms, destroy_many, size limits and job retention.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{start, until, Client};
use super::{SimConfig, ZendeskSim};

const U: &str = "/api/v2/users";
const O: &str = "/api/v2/organizations";

/// Polls the job until it completes (5 s deadline); returns its final status.
async fn wait_job(c: &Client, job: &Value) -> Value {
    let id = job["job_status"]["id"]
        .as_str()
        .expect("job id")
        .to_string();
    let path = format!("/api/v2/job_statuses/{id}.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = c.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        if body["job_status"]["status"] == "completed" {
            return body["job_status"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job never completed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn quick_sim() -> ZendeskSim {
    start(SimConfig {
        job_delay: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await
}

fn statuses(job: &Value) -> Vec<String> {
    job["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test]
async fn create_many_runs_later_and_fails_items_alone() {
    let sim = quick_sim().await;
    let c = Client::new(&sim);
    let (status, job) = c
        .call(
            Method::POST,
            &format!("{U}/create_many.json"),
            Some(json!({"users": [
                {"name": "A", "email": "a@x.com"},
                {"name": "B", "email": "b@x.com"},
                {"name": "A again", "email": "A@x.com"},
                {"name": "", "email": "c@x.com"},
                "not an object",
                {"name": "D", "email": "bad-email"},
                {"name": "E", "email": "e@x.com", "organization_id": 5},
                {"name": "F"}
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    let js = &job["job_status"];
    assert_eq!(js["status"], "queued");
    assert_eq!(
        (js["total"].clone(), js["progress"].clone()),
        (json!(8), Value::Null)
    );
    assert!(js["url"].as_str().is_some_and(|u| u.ends_with(".json")));
    assert!(
        sim.records("users").len() == 1,
        "nothing written before the job runs"
    );

    let done = wait_job(&c, &job).await;
    assert_eq!(done["progress"], 8);
    assert!(done["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Completed at ")));
    assert_eq!(
        statuses(&done),
        ["Created", "Created", "Failed", "Failed", "Failed", "Failed", "Failed", "Created"]
    );
    let r = done["results"].as_array().expect("results");
    for (i, item) in r.iter().enumerate() {
        assert_eq!(item["index"], i, "results keep input order");
    }
    assert!(r[0]["id"].as_u64().is_some());
    assert_eq!(r[2]["error"], "DuplicateValue");
    assert_eq!(
        r[2]["details"],
        "Email: a@x.com is already being used by another user"
    );
    assert_eq!(r[3]["error"], "BlankValue");
    assert_eq!(r[5]["error"], "InvalidFormat");
    assert_eq!(r[6]["error"], "InvalidValue");
    assert!(r[2].get("id").is_none());
    assert_eq!(sim.records("users").len(), 4);
    let s = sim.stats();
    assert_eq!((s.jobs_completed, s.records_written), (1, 3));
    sim.shutdown();
}

#[tokio::test]
async fn create_or_update_many_retry_does_not_duplicate() {
    let sim = quick_sim().await;
    let c = Client::new(&sim);
    let batch = json!({"users": [
        {"name": "A", "email": "a@x.com"},
        {"name": "B", "email": "b@x.com", "external_id": "crm-b"},
    ]});
    let (_, job) = c
        .call(
            Method::POST,
            &format!("{U}/create_or_update_many"),
            Some(batch.clone()),
        )
        .await;
    let first = wait_job(&c, &job).await;
    assert_eq!(statuses(&first), ["Created", "Created"]);
    // the same batch again (a client retrying after a lost answer), with one change
    let mut again = batch.clone();
    again["users"][0]["email"] = json!("A@X.com");
    again["users"][1] = json!({"name": "B2", "external_id": "CRM-B"});
    let (_, job) = c
        .call(
            Method::POST,
            &format!("{U}/create_or_update_many"),
            Some(again),
        )
        .await;
    let second = wait_job(&c, &job).await;
    assert_eq!(statuses(&second), ["Updated", "Updated"]);
    for i in 0..2 {
        assert_eq!(first["results"][i]["id"], second["results"][i]["id"]);
    }
    assert_eq!(second["results"][1]["action"], "update");
    assert_eq!(sim.records("users").len(), 3);
    let b = second["results"][1]["id"].as_u64().expect("id");
    assert_eq!(
        sim.get("users", b).map(|r| r.fields["name"].clone()),
        Some(json!("B2"))
    );
    sim.shutdown();
}

#[tokio::test]
async fn update_many_both_forms_and_destroy_many() {
    let sim = start(SimConfig {
        seed_users: 4,
        job_delay: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let ids: Vec<u64> = sim.records("users").iter().skip(1).map(|r| r.id).collect();
    let (_, job) = c
        .call(
            Method::PUT,
            &format!("{U}/update_many.json?ids={},{}", ids[0], ids[1]),
            Some(json!({"user": {"tags": ["batch"]}})),
        )
        .await;
    let done = wait_job(&c, &job).await;
    assert_eq!(statuses(&done), ["Updated", "Updated"]);
    assert_eq!(
        sim.get("users", ids[1]).map(|r| r.fields["tags"].clone()),
        Some(json!(["batch"]))
    );

    let (_, job) = c
        .call(
            Method::PUT,
            &format!("{U}/update_many"),
            Some(json!({"users": [
                {"id": ids[2], "name": "Renamed"},
                {"name": "no id"},
                {"id": 12345, "name": "missing"},
                {"id": ids[3], "email": "user1@example.com"},
            ]})),
        )
        .await;
    let done = wait_job(&c, &job).await;
    assert_eq!(statuses(&done), ["Updated", "Failed", "Failed", "Failed"]);
    assert_eq!(done["results"][2]["error"], "RecordNotFound");
    assert_eq!(done["results"][3]["error"], "DuplicateValue");
    assert_eq!(done["results"][3]["id"], ids[3]);

    sim.app_update(
        "users",
        ids[3],
        super::tests_api::map(json!({"external_id": "ext-4"})),
    )
    .expect("ext");
    let (status, job) = c
        .call(
            Method::DELETE,
            &format!("{U}/destroy_many?ids={},999", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let done = wait_job(&c, &job).await;
    assert_eq!(statuses(&done), ["Deleted", "Failed"]);
    let (_, job) = c
        .call(
            Method::DELETE,
            &format!("{U}/destroy_many.json?external_ids=EXT-4"),
            None,
        )
        .await;
    assert_eq!(statuses(&wait_job(&c, &job).await), ["Deleted"]);
    assert!(sim.get("users", ids[0]).is_some_and(|r| r.deleted));
    assert!(sim.get("users", ids[3]).is_some_and(|r| r.deleted));
    assert_eq!(sim.records("users").len(), 3);
    sim.shutdown();
}

#[tokio::test]
async fn bulk_limits_and_bad_requests() {
    let sim = quick_sim().await;
    let c = Client::new(&sim);
    let users: Vec<Value> = (0..101).map(|n| json!({"name": format!("U{n}")})).collect();
    let ids: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
    for (method, path, body) in [
        (
            Method::POST,
            format!("{U}/create_many"),
            Some(json!({ "users": users })),
        ),
        (
            Method::POST,
            format!("{U}/create_or_update_many"),
            Some(json!({ "users": users })),
        ),
        (
            Method::PUT,
            format!("{U}/update_many"),
            Some(json!({ "users": users })),
        ),
        (
            Method::PUT,
            format!("{U}/update_many?ids={}", ids.join(",")),
            Some(json!({"user": {}})),
        ),
        (
            Method::DELETE,
            format!("{U}/destroy_many?ids={}", ids.join(",")),
            None,
        ),
        (Method::DELETE, format!("{U}/destroy_many"), None),
        (
            Method::POST,
            format!("{U}/create_many"),
            Some(json!({"user": {"name": "x"}})),
        ),
        (
            Method::POST,
            format!("{O}/create_many"),
            Some(json!({ "organizations": users })),
        ),
        (
            Method::PUT,
            format!("{U}/update_many?ids=1"),
            Some(json!({"users": []})),
        ),
    ] {
        let (status, body) = c.call(method, &path, body).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].is_string());
    }
    let (status, body) = c
        .call(
            Method::GET,
            "/api/v2/job_statuses/0123456789abcdef0123456789abcdef",
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("RecordNotFound"))
    );
    sim.shutdown();
}

#[tokio::test]
async fn organization_bulk_jobs() {
    let sim = quick_sim().await;
    let c = Client::new(&sim);
    let (_, job) = c
        .call(
            Method::POST,
            &format!("{O}/create_many"),
            Some(json!({"organizations": [
                {"name": "One", "external_id": "o1"}, {"name": "Two"}, {"name": "one"}
            ]})),
        )
        .await;
    let done = wait_job(&c, &job).await;
    assert_eq!(statuses(&done), ["Created", "Created", "Failed"]);
    let one = done["results"][0]["id"].as_u64().expect("id");
    let two = done["results"][1]["id"].as_u64().expect("id");
    let (_, job) = c
        .call(
            Method::PUT,
            &format!("{O}/update_many?external_ids=O1"),
            Some(json!({"organization": {"notes": "first"}})),
        )
        .await;
    assert_eq!(statuses(&wait_job(&c, &job).await), ["Updated"]);
    assert_eq!(
        sim.get("organizations", one)
            .map(|r| r.fields["notes"].clone()),
        Some(json!("first"))
    );
    let (_, job) = c
        .call(
            Method::PUT,
            &format!("{O}/update_many"),
            Some(json!({"organizations": [{"id": two, "name": "ONE"}]})),
        )
        .await;
    let done = wait_job(&c, &job).await;
    assert_eq!(done["results"][0]["error"], "DuplicateValue");
    let (_, job) = c
        .call(
            Method::DELETE,
            &format!("{O}/destroy_many?ids={one},{two}"),
            None,
        )
        .await;
    assert_eq!(statuses(&wait_job(&c, &job).await), ["Deleted", "Deleted"]);
    assert!(sim.records("organizations").is_empty());
    sim.shutdown();
}

#[tokio::test]
async fn only_the_latest_hundred_jobs_are_kept() {
    let sim = start(SimConfig {
        job_delay: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let mut first = None;
    for n in 0..101 {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let (status, job) = loop {
            let (status, job) = c
                .call(
                    Method::POST,
                    &format!("{O}/create_many"),
                    Some(json!({"organizations": [{"name": format!("Org {n}")}]})),
                )
                .await;
            // 30 jobs may be queued or running at once
            if status != 429 || std::time::Instant::now() > deadline {
                break (status, job);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(status, 200);
        first.get_or_insert(job["job_status"]["id"].as_str().expect("id").to_string());
    }
    until("101 jobs ran", || sim.stats().jobs_completed == 101).await;
    let first = first.expect("first job");
    let (status, _) = c
        .call(Method::GET, &format!("/api/v2/job_statuses/{first}"), None)
        .await;
    assert_eq!(status, 404, "the oldest job status is gone");
    assert_eq!(sim.records("organizations").len(), 101);
    sim.shutdown();
}

#[tokio::test]
async fn thirty_jobs_may_wait_at_once_and_show_many_reports_several() {
    let sim = start(SimConfig {
        job_delay: Duration::from_millis(1500),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let mut ids = vec![];
    for n in 0..30 {
        let (status, job) = c
            .call(
                Method::POST,
                &format!("{O}/create_many"),
                Some(json!({"organizations": [{"name": format!("Org {n}")}]})),
            )
            .await;
        assert_eq!(status, 200, "{job}");
        ids.push(job["job_status"]["id"].as_str().expect("id").to_string());
    }
    let (status, body) = c
        .call(
            Method::POST,
            &format!("{O}/create_many"),
            Some(json!({"organizations": [{"name": "one too many"}]})),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "TooManyJobs", "{body}");
    let path = format!(
        "/api/v2/job_statuses/show_many.json?ids={},{},0123456789abcdef0123456789abcdef",
        ids[0], ids[29]
    );
    let (status, body) = c.call(Method::GET, &path, None).await;
    assert_eq!(status, 200);
    let shown: Vec<(&str, &str)> = body["job_statuses"]
        .as_array()
        .expect("job_statuses")
        .iter()
        .map(|j| {
            (
                j["id"].as_str().unwrap_or(""),
                j["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [(ids[0].as_str(), "queued"), (ids[29].as_str(), "queued")]
    );
    // they all run together once their delay is over: well before 30 x 1.5 s
    until("30 jobs ran", || sim.stats().jobs_completed == 30).await;
    let (_, body) = c.call(Method::GET, &path, None).await;
    let statuses: Vec<&str> = body["job_statuses"]
        .as_array()
        .expect("job_statuses")
        .iter()
        .map(|j| j["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["completed", "completed"]);
    assert_eq!(sim.records("organizations").len(), 30);
    let (status, body) = c
        .call(Method::GET, "/api/v2/job_statuses/show_many", None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidValue"))
    );
    sim.shutdown();
}
