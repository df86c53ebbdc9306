//! Several server processes sharing one storage folder (EFS with several replicas) never lose an
//! update.

mod common;

use common::*;

#[test]
fn two_processes_forty_concurrent_publishes() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let a = Server::start_default(&storage);
    let b = Server::start_default(&storage);
    let urls = [a.url(), b.url()];
    let token = login(&a.url(), "publisher", "secret-pass").unwrap();

    let threads: Vec<_> = (0..40)
        .map(|i| {
            let url = format!("{}shared-pkg", urls[i % 2]);
            let auth = format!("Bearer {token}");
            std::thread::spawn(move || {
                let version = format!("1.0.{i}");
                let body = publish_body("shared-pkg", &version, format!("tarball {i}").as_bytes());
                let r = http()
                    .request(reqwest::Method::PUT, &url)
                    .header("authorization", &auth)
                    .json(&body)
                    .send()
                    .unwrap();
                assert_eq!(r.status, 201, "publish of {version}: {}", r.text());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    // The file on disk is valid JSON with all 40 versions, and both processes agree.
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(storage.join("shared-pkg/package.json")).unwrap()).unwrap();
    let mut versions: Vec<String> = stored["versions"].as_object().unwrap().keys().cloned().collect();
    versions.sort();
    let mut expected: Vec<String> = (0..40).map(|i| format!("1.0.{i}")).collect();
    expected.sort();
    assert_eq!(versions, expected);
    assert!(stored["dist-tags"]["latest"].as_str().is_some());
    let http = http();
    for url in &urls {
        let doc = http.get(&format!("{url}shared-pkg")).send().unwrap().json();
        assert_eq!(doc["versions"].as_object().unwrap().len(), 40);
        for i in [0, 17, 39] {
            let r = http
                .get(&format!("{url}shared-pkg/-/shared-pkg-1.0.{i}.tgz"))
                .send()
                .unwrap();
            assert_eq!(r.body, format!("tarball {i}").as_bytes());
        }
    }
    let list = std::fs::read_to_string(storage.join(".verdaccio-db.json")).unwrap();
    assert_eq!(list.matches("shared-pkg").count(), 1, "{list}");
}
