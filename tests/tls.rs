//! TLS to the hub: a private cluster with `ssl = on` and only `hostssl` lines in pg_hba.conf,
//! its certificate signed by a CA this test makes. ferry syncs both ways over it with
//! sslmode=require and with verify-full; a wrong CA or host name, and sslmode=disable, are
//! refused in one sentence; a client certificate authenticates the pool and the walsender alike.

mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry::hub::Hub;
use harness::{eventually, Ctx, PrivateCluster};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// The test's CA files, and a client certificate for the role `postgres` signed by the CA.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn new_ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn chown_to_postgres(path: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let ok = std::process::Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown {}", path.display());
    }
}

/// A cluster that takes TLS only, with `dbs` created before the switch.
async fn tls_cluster(tag: &str, dbs: &[&str]) -> (PrivateCluster, Pki) {
    let pg = harness::new_cluster(tag);
    for db in dbs {
        pg.ensure_database(db).await.unwrap();
    }
    let pgdata = pg.dir.join("pg");
    let pki_dir = pg.dir.join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let (ca_params, ca_key, ca_pem) = new_ca("ferry test CA");
    let (_, _, other_pem) = new_ca("some other CA");
    let server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_pem = server_params
        .signed_by(&server_key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap()
        .pem();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "postgres");
    let client_key = KeyPair::generate().unwrap();
    let client_pem = client_params
        .signed_by(&client_key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap()
        .pem();
    let pki = Pki {
        ca: pki_dir.join("ca.pem"),
        other_ca: pki_dir.join("other-ca.pem"),
        client_cert: pki_dir.join("client.crt"),
        client_key: pki_dir.join("client.key"),
    };
    std::fs::write(&pki.client_cert, client_pem).unwrap();
    std::fs::write(&pki.client_key, client_key.serialize_pem()).unwrap();
    std::fs::write(&pki.ca, &ca_pem).unwrap();
    // the server checks client certificates against the same CA
    std::fs::write(pgdata.join("root.crt"), &ca_pem).unwrap();
    std::fs::write(&pki.other_ca, other_pem).unwrap();
    std::fs::write(pgdata.join("server.crt"), server_pem).unwrap();
    let key_path = pgdata.join("server.key");
    std::fs::write(&key_path, server_key.serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown_to_postgres(&key_path);
    chown_to_postgres(&pgdata.join("server.crt"));
    let conf = pgdata.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(
        "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'root.crt'\n",
    );
    std::fs::write(&conf, text).unwrap();
    std::fs::write(
        pgdata.join("pg_hba.conf"),
        "hostssl by_cert all 127.0.0.1/32 cert\nhostssl by_cert all ::1/128 cert\n\
         hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
    )
    .unwrap();
    let (client, conn) = tokio_postgres::connect(&pg.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute("select pg_reload_conf()", &[])
        .await
        .unwrap();
    drop(client);
    // the reload is asynchronous: wait until a plain connection is turned away
    let plain = pg.url("postgres");
    eventually("the server takes TLS only", Duration::from_secs(10), || {
        let plain = plain.clone();
        async move {
            tokio_postgres::connect(&plain, tokio_postgres::NoTls)
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;
    (pg, pki)
}

/// Whether this session and every walsender of the database are encrypted.
async fn all_encrypted(ctx: &Ctx) -> bool {
    let own: bool = ctx
        .one("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .await;
    let (walsenders, encrypted): (i64, i64) = ctx
        .pair(
            "select count(*), count(*) filter (where s.ssl) from pg_stat_replication r \
             join pg_stat_ssl s using (pid)",
        )
        .await;
    own && walsenders > 0 && walsenders == encrypted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_both_ways_over_tls_with_require_and_verify_full() {
    let (pg, pki) = tls_cluster("tls-sync", &["over_require", "over_verify_full"]).await;

    let url = format!(
        "postgres://postgres@127.0.0.1:{}/over_require?sslmode=require",
        pg.port
    );
    let ctx = Ctx::start_on("over_require".into(), url, 20, "", "", "", "").await;
    ctx.round_trip().await;
    assert!(all_encrypted(&ctx).await, "pool and walsender in TLS");
    ctx.stop().await;

    let url = format!(
        "postgres://postgres@localhost:{}/over_verify_full?sslmode=verify-full&sslrootcert={}",
        pg.port,
        pki.ca.display()
    );
    let ctx = Ctx::start_on("over_verify_full".into(), url, 20, "", "", "", "").await;
    ctx.round_trip().await;
    assert!(all_encrypted(&ctx).await, "pool and walsender in TLS");
    ctx.stop().await;
}

async fn refusal(url: String) -> String {
    match Hub::connect(&url).await {
        Ok(_) => panic!("{url} was accepted"),
        Err(e) => {
            println!("{e}");
            e.to_string()
        }
    }
}

fn one_sentence(text: &str, expect: &str) {
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(text.contains(expect), "expected `{expect}` in: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_host_or_plain_connections_are_refused() {
    let (pg, pki) = tls_cluster("tls-refusals", &["refusals"]).await;
    let at = |host: &str, query: String| {
        format!("postgres://postgres@{host}:{}/refusals?{query}", pg.port)
    };

    let text = refusal(at(
        "localhost",
        format!("sslmode=verify-full&sslrootcert={}", pki.other_ca.display()),
    ))
    .await;
    one_sentence(
        &text,
        &format!(
            "the server's certificate is not signed by a CA in sslrootcert={} (sslmode=verify-full)",
            pki.other_ca.display()
        ),
    );

    let text = refusal(at(
        "127.0.0.1",
        format!("sslmode=verify-full&sslrootcert={}", pki.ca.display()),
    ))
    .await;
    one_sentence(
        &text,
        "the server's certificate does not name the host 127.0.0.1 (sslmode=verify-full)",
    );

    let text = refusal(at("127.0.0.1", "sslmode=disable".into())).await;
    // the server's own reason, and what to do about it
    one_sentence(&text, "no pg_hba.conf entry for host \"127.0.0.1\"");
    one_sentence(
        &text,
        "the server accepts only TLS connections (sslmode=disable)",
    );

    // verify-ca checks the chain, not the name
    Hub::connect(&at(
        "127.0.0.1",
        format!("sslmode=verify-ca&sslrootcert={}", pki.ca.display()),
    ))
    .await
    .expect("verify-ca with the right CA connects by address");
    // and the default, prefer, encrypts when the server offers it
    let hub = Hub::connect(&at("127.0.0.1", String::new())).await.unwrap();
    let tls: bool = hub
        .client()
        .await
        .unwrap()
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(tls, "prefer encrypts when the server can");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_authenticates_every_connection() {
    let (pg, pki) = tls_cluster("tls-cert", &["by_cert"]).await;
    let base = format!(
        "postgres://postgres@localhost:{}/by_cert?sslmode=verify-full&sslrootcert={}",
        pg.port,
        pki.ca.display()
    );
    // the database takes only certificate authentication
    let text = refusal(base.clone()).await;
    one_sentence(&text, "certificate");
    let url = format!(
        "{base}&sslcert={}&sslkey={}",
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let ctx = Ctx::start_on("by_cert".into(), url, 10, "", "", "", "").await;
    ctx.round_trip().await;
    assert!(all_encrypted(&ctx).await, "pool and walsender in TLS");
    let clients: i64 = ctx
        .one("select count(*) from pg_stat_ssl where client_dn = '/CN=postgres'")
        .await;
    assert!(
        clients >= 2,
        "the pool and the walsender showed the certificate"
    );
    ctx.stop().await;
}
