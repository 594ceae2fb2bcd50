//! `dropcheck backup DIR` during writes (issue 15, item 5): while eight contractors send a
//! drop number and eleven photos each to a running server (SQLite), the real binary's
//! `backup` command copies it; a second server started on the copy alone
//! (`DROPCHECK_DATA_DIR=DIR`, no `DATABASE_URL`) serves every drop the copy holds, and every
//! photo of them is in the copy with its SHA-256.

use super::{contractor_webhook, drop_of, free_port, mock_list, mock_media, mock_send, wait_healthy, Sent, Server, PHOTOS, PUBLIC, TOKEN};
use axum::routing::post;
use axum::Router;
use dropcheck_core::domain::DEFAULT_DROP_PATTERN;
use dropcheck_core::providers::twilio_signature;
use dropcheck_core::store::Store;
use dropcheck_core::testing::TestDb;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SENDERS: usize = 8;
const KEY: &str = "backup-test-bridge-key-0123456789";

fn restored_server(data: &std::path::Path, port: u16) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_dropcheck"))
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env("DROPCHECK_DATA_DIR", data)
            .env("DROPCHECK_PUBLIC_URL", PUBLIC)
            .env("BRIDGE_API_KEY", KEY)
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("LEPTOS_SITE_ROOT", data)
            .env("LEPTOS_OUTPUT_NAME", "dropcheck")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the dropcheck binary starts"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_during_writes_restores_to_a_working_server_with_every_drop_and_photo() {
    let db = TestDb::sqlite().await;
    let store: &Store = &db.store;
    store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    let sent: Arc<Mutex<Sent>> = Arc::default();
    let photos: Arc<HashMap<usize, Vec<u8>>> = Arc::new(
        (0..SENDERS)
            .flat_map(|c| (1..=PHOTOS).map(move |k| (c, k)))
            .map(|(c, k)| (c * 100 + k, dropcheck_core::media::demo_photo(&drop_of(c), k as i64, "backup test", (c * 100 + k) as u32)))
            .collect(),
    );
    let provider = Router::new().route("/2010-04-01/Accounts/{sid}/Messages.json", post(mock_send).get(mock_list)).with_state(sent);
    let media = Router::new().route("/media/{n}", axum::routing::get(mock_media)).with_state(photos);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, provider.merge(media)).await.unwrap() });

    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let server = Server(super::start_server(&db.url, data.path(), port, &mock));
    wait_healthy(&client, &base).await;

    // The contractors send, a message every 120 ms each.
    let phones: Vec<_> = (0..SENDERS)
        .map(|c| {
            let (client, base, mock) = (client.clone(), base.clone(), mock.clone());
            tokio::spawn(async move {
                for k in 0..=PHOTOS {
                    let params = contractor_webhook(c, k, &mock);
                    let sig = twilio_signature(TOKEN, &format!("{PUBLIC}/webhooks/twilio"), &params);
                    let r = client.post(format!("{base}/webhooks/twilio")).header("X-Twilio-Signature", &sig).form(&params).send().await;
                    assert!(r.is_ok_and(|r| r.status().is_success()));
                    tokio::time::sleep(Duration::from_millis(120)).await;
                }
            })
        })
        .collect();

    // Once photos are being filed, the backup — with the server's own settings.
    let t0 = Instant::now();
    while store.contents().await.unwrap().photos < 20 {
        assert!(t0.elapsed() < Duration::from_secs(30), "photos are filed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = store.contents().await.unwrap();
    let target = tempfile::tempdir().unwrap();
    let copy_dir = target.path().join("backup");
    let out = tokio::task::spawn_blocking({
        let (url, data, copy_dir) = (db.url.clone(), data.path().to_path_buf(), copy_dir.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_dropcheck"))
                .arg("backup")
                .arg(&copy_dir)
                .env("DATABASE_URL", url)
                .env("DROPCHECK_DATA_DIR", data)
                .env("DROPCHECK_PUBLIC_URL", PUBLIC)
                .env("LEPTOS_OUTPUT_NAME", "dropcheck")
                .env("RUST_LOG", "warn")
                .output()
                .expect("dropcheck backup runs")
        }
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "backup: {said} {}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("every stored file checked present") && said.contains("Restore:"), "{said}");
    for p in phones {
        p.await.unwrap();
    }
    let t0 = Instant::now();
    while store.event_counts().await.unwrap().0 > 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the inbox settles");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = store.contents().await.unwrap();
    drop(server);

    // What the copy holds: at least what was there when the backup began, at most the end.
    let copy = Store::connect(&dropcheck_core::store::database_url(None, &copy_dir)).await.unwrap();
    let held = copy.contents().await.unwrap();
    copy.close().await;
    assert!(held.photos >= before.photos && held.photos <= after.photos, "before {before:?}, copy {held:?}, after {after:?}");
    assert!(held.drops >= before.drops && held.drops >= 1);
    assert!(!copy_dir.join("thumbs").exists() && copy_dir.join("secret.key").exists());

    // A server on the copy alone: every drop it holds, and each photo's file with its digest.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _restored = restored_server(&copy_dir, port);
    wait_healthy(&client, &base).await;
    let list: serde_json::Value =
        client.get(format!("{base}/api/v1/drops?limit=200")).header("X-API-Key", KEY).send().await.unwrap().json().await.unwrap();
    let drops = list["drops"].as_array().unwrap();
    assert_eq!(drops.len() as i64, held.drops, "every drop in the copy is served");
    let mut checked = 0;
    for d in drops {
        let n = d["drop_number"].as_str().unwrap();
        let detail: serde_json::Value =
            client.get(format!("{base}/api/v1/drops/{n}")).header("X-API-Key", KEY).send().await.unwrap().json().await.unwrap();
        for step in detail["steps"].as_array().unwrap() {
            for p in step["photos"].as_array().unwrap() {
                let sha = p["sha256"].as_str().unwrap();
                let bytes = std::fs::read(copy_dir.join("media").join(&sha[..2]).join(sha)).expect("the photo's file is in the copy");
                assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, held.photos, "every photo of the copy, through the restored server");
    eprintln!(
        "photos when the backup began {}, in the copy {}, at the end {}; drops in the copy {}",
        before.photos, held.photos, after.photos, held.drops
    );
    db.cleanup().await;
}
