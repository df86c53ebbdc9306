use super::request_body as body;
use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-05-05T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn first_publish_creates_the_document() {
    let name = PackageName::parse("@s/pkg").unwrap();
    let mut b = body("@s/pkg", "1.0.0", b"tgz");
    b["versions"]["1.0.0"]["readme"] = json!("# hello");
    let p = parse(&name, &b).unwrap();
    assert_eq!(p.versions[0].filename, "pkg-1.0.0.tgz");
    let doc = merge(&name, None, &p, "http://reg/", now(), Some("alice".into())).unwrap();
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert_eq!(
        doc["versions"]["1.0.0"]["dist"]["tarball"],
        "http://reg/@s/pkg/-/pkg-1.0.0.tgz"
    );
    assert_eq!(doc["versions"]["1.0.0"]["_id"], "@s/pkg@1.0.0");
    assert_eq!(doc["versions"]["1.0.0"]["_npmUser"]["name"], "alice");
    assert_eq!(doc["maintainers"], json!([{"name": "alice"}]));
    assert_eq!(doc["versions"]["1.0.0"]["maintainers"], json!([{"name": "alice"}]));
    assert!(doc["versions"]["1.0.0"].get("readme").is_none());
    assert_eq!(doc["readme"], "# hello");
    assert_eq!(doc["time"]["1.0.0"], "2025-05-05T10:00:00.000Z");
    assert_eq!(doc["time"]["created"], "2025-05-05T10:00:00.000Z");
    assert_eq!(doc["_attachments"]["pkg-1.0.0.tgz"]["version"], "1.0.0");
}

#[test]
fn second_version_merges_and_republish_is_refused() {
    let name = PackageName::parse("pkg").unwrap();
    let one = merge(
        &name,
        None,
        &parse(&name, &body("pkg", "1.0.0", b"a")).unwrap(),
        "http://r/",
        now(),
        None,
    )
    .unwrap();
    let mut b = body("pkg", "1.1.0-beta.1", b"b");
    b["dist-tags"] = json!({"beta": "1.1.0-beta.1"});
    let two = merge(
        &name,
        Some(one.clone()),
        &parse(&name, &b).unwrap(),
        "http://r/",
        now(),
        None,
    )
    .unwrap();
    assert_eq!(two["dist-tags"], json!({"latest": "1.0.0", "beta": "1.1.0-beta.1"}));
    assert_eq!(two["versions"].as_object().unwrap().len(), 2);
    let again = merge(
        &name,
        Some(two),
        &parse(&name, &body("pkg", "1.0.0", b"a")).unwrap(),
        "http://r/",
        now(),
        None,
    );
    assert_eq!(again, Err(PackageError::VersionExists("1.0.0".into())));
}

#[test]
fn bad_bodies_are_refused() {
    let name = PackageName::parse("pkg").unwrap();
    let mut tampered = body("pkg", "1.0.0", b"good");
    tampered["_attachments"]["pkg-1.0.0.tgz"]["data"] = json!(STANDARD.encode(b"evil"));
    tampered["_attachments"]["pkg-1.0.0.tgz"]["length"] = json!(4);
    assert!(matches!(parse(&name, &tampered), Err(PackageError::Integrity { .. })));

    let mut no_att = body("pkg", "1.0.0", b"x");
    no_att["_attachments"] = json!({});
    assert!(matches!(
        parse(&name, &no_att),
        Err(PackageError::BadRequest(_)) | Err(PackageError::MissingAttachment(_))
    ));

    let mut wrong_att = body("pkg", "1.0.0", b"x");
    wrong_att["versions"]["1.0.1"] = wrong_att["versions"]["1.0.0"].clone();
    wrong_att["versions"]["1.0.1"]["version"] = json!("1.0.1");
    assert!(matches!(
        parse(&name, &wrong_att),
        Err(PackageError::MissingAttachment(_))
    ));

    assert_eq!(
        parse(&name, &body("pkg", "1.0", b"x")).err(),
        Some(PackageError::InvalidVersion("1.0".into()))
    );
    assert!(matches!(
        parse(&name, &body("other", "1.0.0", b"x")),
        Err(PackageError::BadRequest(_))
    ));
    let mut bad_b64 = body("pkg", "1.0.0", b"x");
    bad_b64["_attachments"]["pkg-1.0.0.tgz"]["data"] = json!("***");
    assert!(matches!(parse(&name, &bad_b64), Err(PackageError::BadRequest(_))));
    let mut bad_tag = body("pkg", "1.0.0", b"x");
    bad_tag["dist-tags"] = json!({"1.x": "1.0.0"});
    assert!(matches!(parse(&name, &bad_tag), Err(PackageError::InvalidTag(_))));
}

#[test]
fn scoped_attachment_keys_are_accepted() {
    let name = PackageName::parse("@s/pkg").unwrap();
    let mut b = body("@s/pkg", "2.0.0", b"x");
    let att = b["_attachments"]["@s/pkg-2.0.0.tgz"].take();
    b["_attachments"] = json!({ "@s/pkg-2.0.0.tgz": att });
    let p = parse(&name, &b).unwrap();
    assert_eq!(p.versions[0].filename, "pkg-2.0.0.tgz");
}

#[test]
fn versions_differing_only_in_build_metadata_are_one_version() {
    let name = PackageName::parse("pkg").unwrap();
    let one = merge(
        &name,
        None,
        &parse(&name, &body("pkg", "1.0.0+build.1", b"a")).unwrap(),
        "http://reg/",
        now(),
        None,
    )
    .unwrap();
    for again in ["1.0.0+build.2", "1.0.0"] {
        let p = parse(&name, &body("pkg", again, b"b")).unwrap();
        assert_eq!(
            merge(&name, Some(one.clone()), &p, "http://reg/", now(), None),
            Err(PackageError::VersionExists("1.0.0+build.1".into())),
            "{again}"
        );
    }
    let p = parse(&name, &body("pkg", "1.0.1+build.1", b"c")).unwrap();
    assert!(merge(&name, Some(one), &p, "http://reg/", now(), None).is_ok());
}

#[test]
fn a_tarball_name_that_cannot_be_a_file_name_is_refused() {
    let long = "a".repeat(214);
    let name = PackageName::parse(&long).unwrap();
    assert!(parse(&name, &body(&long, "1.0.0", b"a")).is_ok());
    let version = format!("1.0.0-{}", "b".repeat(40));
    let err = parse(&name, &body(&long, &version, b"a")).unwrap_err();
    assert!(
        matches!(&err, PackageError::BadRequest(m) if m.contains("limit is 255")),
        "{err}"
    );
}

#[test]
fn a_provenance_bundle_is_checked_and_recorded_in_dist() {
    use crate::package::provenance::tests::bundle;
    use sha2::{Digest, Sha512};
    let name = PackageName::parse("@s/pkg").unwrap();
    let statement = |sha512: String| {
        json!({"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1",
               "subject": [{"name": "pkg:npm/%40s/pkg@2.0.0", "digest": {"sha512": sha512}}], "predicate": {}})
    };
    let with = |bundle_text: String, file: &str| {
        let mut b = body("@s/pkg", "2.0.0", b"x");
        b["versions"]["2.0.0"]["dist"]["signatures"] = json!([{"keyid": "forged", "sig": "forged"}]);
        b["_attachments"][file] =
            json!({"content_type": "application/vnd.dev.sigstore.bundle.v0.3+json", "data": bundle_text});
        b
    };
    let good = bundle(&statement(hex::encode(Sha512::digest(b"x")))).to_string();
    let p = parse(&name, &with(good.clone(), "@s/pkg-2.0.0.sigstore")).unwrap();
    let a = p.versions[0].provenance.as_ref().unwrap();
    assert_eq!(a.predicate_type, "https://slsa.dev/provenance/v1");
    let doc = merge(&name, None, &p, "http://reg/", now(), None).unwrap();
    let dist = &doc["versions"]["2.0.0"]["dist"];
    assert_eq!(
        dist["attestations"],
        json!({"url": "http://reg/-/npm/v1/attestations/@s%2fpkg@2.0.0", "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}})
    );
    assert!(dist.get("signatures").is_none(), "a client's signatures are never kept");

    let other = bundle(&statement(hex::encode(Sha512::digest(b"other")))).to_string();
    let e = parse(&name, &with(other, "@s/pkg-2.0.0.sigstore")).unwrap_err();
    assert!(matches!(e, PackageError::Provenance(_)), "{e}");
    assert!(e.to_string().contains("does not match the tarball's sha512"), "{e}");
    let e = parse(&name, &with("{}".into(), "@s/pkg-2.0.0.sigstore")).unwrap_err();
    assert!(matches!(e, PackageError::Provenance(_)), "{e}");
    let e = parse(&name, &with(good, "@s/pkg-9.9.9.sigstore")).unwrap_err();
    assert!(e.to_string().contains("provenance of no version"), "{e}");
}
