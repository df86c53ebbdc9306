//! The byte views against the tree-of-values oracle (`client_view`, `abbreviated_view`,
//! `merge`, `VersionFilter::apply`): the same documents, whatever the sources' spelling.

use super::*;
use crate::package::merge::{self, VersionFilter};
use crate::package::range::NameRange;
use bytes::Bytes;
use chrono::Duration as Days;
use serde_json::json;
use std::sync::Arc;

const BASE: &str = "https://reg.example/npm/";

fn source(doc: &Value, pretty: bool) -> Arc<Source> {
    let bytes = if pretty {
        serde_json::to_vec_pretty(doc).unwrap()
    } else {
        serde_json::to_vec(doc).unwrap()
    };
    Arc::new(Source::parse(Bytes::from(bytes)).unwrap())
}

fn parse(t: &Template) -> Value {
    serde_json::from_slice(&t.render(BASE.as_bytes())).unwrap()
}

fn upstream(now: DateTime<Utc>) -> Value {
    let day = Days::days(1);
    let mut versions = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    for (i, v) in ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1"].iter().enumerate() {
        versions.insert(
            v.to_string(),
            json!({"name": "lib", "version": v, "description": format!("v{v}"), "main": "i.js",
                   "scripts": if i == 1 { json!({"install": "x"}) } else { json!({"test": "t"}) },
                   "dependencies": {"dep": "^1"}, "repository": {"url": "git+u"}, "homepage": "h",
                   "dist": {"shasum": format!("s{i}"), "integrity": format!("sha512-{i}"),
                            "tarball": format!("https://up.example/lib/-/lib-{v}.tgz")}}),
        );
        time.insert(v.to_string(), json!((now - day * (40 - i as i32 * 13)).to_rfc3339()));
    }
    time.insert("created".into(), json!((now - day * 50).to_rfc3339()));
    json!({"_id": "lib", "name": "lib", "dist-tags": {"latest": "1.2.0", "next": "2.0.0-rc.1"},
           "versions": versions, "time": time, "readme": "# lib", "_attachments": {"x": 1}})
}

fn local() -> Value {
    json!({"_id": "lib", "name": "lib", "_rev": "3-a", "dist-tags": {"latest": "9.0.0"},
           "versions": {"1.0.0": {"name": "lib", "version": "1.0.0", "mine": true, "dist": {"shasum": "m", "tarball": "http://old-host/lib/-/lib-1.0.0.tgz"}},
                        "9.0.0": {"name": "lib", "version": "9.0.0", "dist": {}, "hasInstallScript": true}},
           "time": {"9.0.0": "2024-05-01T00:00:00.000Z", "modified": "2024-05-02T00:00:00.000Z"},
           "_uplinks": {"up": {}}, "_distfiles": {}, "custom": [1, 2]})
}

/// What the tree-of-values code makes of the same inputs (time entries of hidden versions
/// dropped, as the byte views do).
fn oracle(
    name: &PackageName,
    local: Option<&Value>,
    upstream: Option<&Value>,
    filter: &VersionFilter,
    now: DateTime<Utc>,
) -> Value {
    let filtered = upstream.map(|u| {
        let mut doc = u.clone();
        filter.apply(name.as_str(), &mut doc, now);
        let kept: Vec<String> = doc["versions"].as_object().unwrap().keys().cloned().collect();
        if let Some(t) = doc.get_mut("time").and_then(Value::as_object_mut) {
            let all: Vec<String> = u["versions"].as_object().unwrap().keys().cloned().collect();
            t.retain(|k, _| !all.contains(k) || kept.contains(k));
        }
        doc
    });
    let merged = merge::merge(local, filtered).unwrap();
    client_view(&merged, name, BASE)
}

fn build(
    name: &PackageName,
    local: Option<&Value>,
    upstream: Option<&Value>,
    filter: &VersionFilter,
    now: DateTime<Utc>,
) -> Packument {
    Packument::build(
        Inputs {
            name,
            local: local.map(|l| source(l, true)),
            upstream: upstream.map(|u| source(u, false)),
            filter,
            now,
            sign: None,
        },
        true,
    )
    .unwrap()
}

#[test]
fn full_and_abbreviated_match_the_oracle() {
    let name = PackageName::parse("lib").unwrap();
    let now = Utc::now();
    let filters = [
        VersionFilter::default(),
        VersionFilter {
            min_age: Some(std::time::Duration::from_secs(20 * 86400)),
            block: vec![],
        },
        VersionFilter {
            min_age: None,
            block: vec![NameRange::parse("lib@>=1.1.0 <2.0.0-0").unwrap()],
        },
    ];
    let (l, u) = (local(), upstream(now));
    for filter in &filters {
        for (local, upstream) in [(Some(&l), None), (None, Some(&u)), (Some(&l), Some(&u))] {
            let p = build(&name, local, upstream, filter, now);
            let want = oracle(&name, local, upstream, filter, now);
            let full = parse(&p.full.as_ref().unwrap().template);
            assert_eq!(
                full,
                want,
                "filter {filter:?}, local {}, upstream {}",
                local.is_some(),
                upstream.is_some()
            );
            let mut abbreviated = abbreviated_view(&want);
            let a = abbreviated.as_object_mut().unwrap();
            a.insert("time".into(), want["time"].clone());
            if !a.contains_key("modified") {
                let m = p
                    .modified()
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                a.insert("modified".into(), json!(m));
            }
            assert_eq!(parse(&p.abbreviated), abbreviated);
            for spec in ["1.0.0", "latest", "next", "9.0.0", "nope"] {
                assert_eq!(p.version(spec).map(|t| parse(&t)), version_view(&want, spec), "{spec}");
            }
        }
    }
}

#[test]
fn the_abbreviated_form_keeps_install_fields_modified_and_time() {
    let name = PackageName::parse("lib").unwrap();
    let p = build(&name, Some(&local()), None, &VersionFilter::default(), Utc::now());
    let a = parse(&p.abbreviated);
    let keys: Vec<_> = a.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["name", "dist-tags", "modified", "time", "versions"]);
    assert_eq!(a["modified"], "2024-05-02T00:00:00.000Z");
    assert_eq!(a["versions"]["9.0.0"]["hasInstallScript"], true);
    assert_eq!(
        a["versions"]["9.0.0"]["dist"]["tarball"],
        format!("{BASE}lib/-/lib-9.0.0.tgz")
    );
    assert!(a["versions"]["1.0.0"].get("mine").is_none());
    // Without time.modified, the latest time stands in.
    let up = upstream(Utc::now());
    let p = build(&name, None, Some(&up), &VersionFilter::default(), Utc::now());
    let latest = up["time"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|t| t.as_str())
        .max()
        .unwrap()
        .to_owned();
    assert_eq!(p.modified().unwrap(), DateTime::parse_from_rfc3339(&latest).unwrap());
}

#[test]
fn upstream_documents_are_sliced_not_copied() {
    let name = PackageName::parse("lib").unwrap();
    let up = upstream(Utc::now());
    let p = build(&name, None, Some(&up), &VersionFilter::default(), Utc::now());
    // One slice per version and the top, a hole per version, and the few generated pieces
    // (the hoisted fields).
    let t = &p.full.as_ref().unwrap().template;
    assert!(t.parts().len() <= 2 * 4 + 10, "{:?}", t.parts());
    assert!(t.heap_bytes() < 1000);
    let t = p.upstream_tarball("lib-1.1.0.tgz").unwrap();
    assert_eq!(t.url, "https://up.example/lib/-/lib-1.1.0.tgz");
    assert_eq!(
        (t.integrity.as_deref(), t.shasum.as_deref()),
        (Some("sha512-1"), Some("s1"))
    );
    let q = VersionFilter {
        min_age: None,
        block: vec![NameRange::parse("lib@1.1.0").unwrap()],
    };
    let p = build(&name, Some(&local()), Some(&up), &q, Utc::now());
    assert!(p.upstream_tarball("lib-1.1.0.tgz").is_none(), "hidden");
    assert!(p.upstream_tarball("lib-1.0.0.tgz").is_none(), "local");
    assert!(p.upstream_tarball("lib-1.2.0.tgz").is_some());
}

#[test]
fn odd_documents_still_give_valid_json() {
    let name = PackageName::parse("p").unwrap();
    for doc in [
        json!({"versions": {"1.0.0": null, "2.0.0": {"dist": {"tarball": null}}, "3.0.0": {"dist": "x"}}}),
        json!({"name": "p", "versions": {"1.0.0": {"dist": {"tarball": "http://x/a b/bad name.tgz"}}}, "dist-tags": {"latest": "1.0.0"}}),
        json!({"name": "p", "versions": {"1.0.0": {"dist": {"tarball": "http://x/p/-/p-1.0.0.tgz"}}}, "dist-tags": {"latest": "1.0.0", "n": 1}}),
        json!({"name": "p"}),
    ] {
        let p = build(&name, Some(&doc), None, &VersionFilter::default(), Utc::now());
        let want = oracle(&name, Some(&doc), None, &VersionFilter::default(), Utc::now());
        let mut full = parse(&p.full.as_ref().unwrap().template);
        // The byte view always writes `versions` and the string tags.
        if want.get("versions").is_none() {
            full.as_object_mut().unwrap().remove("versions");
        }
        if want["dist-tags"].get("n").is_some() {
            full["dist-tags"]["n"] = json!(1);
        }
        if want.get("dist-tags").is_none() {
            full.as_object_mut().unwrap().remove("dist-tags");
        }
        assert_eq!(full, want);
        parse(&p.abbreviated);
    }
}

#[test]
fn a_build_for_installs_keeps_no_source() {
    let name = PackageName::parse("lib").unwrap();
    let up = upstream(Utc::now());
    let filter = VersionFilter::default();
    let inputs = || Inputs {
        name: &name,
        local: Some(source(&local(), true)),
        upstream: Some(source(&up, false)),
        filter: &filter,
        now: Utc::now(),
        sign: None,
    };
    let slim = Packument::build(inputs(), false).unwrap();
    let full = Packument::build(inputs(), true).unwrap();
    assert!(slim.full.is_none() && slim.version("1.0.0").is_none());
    assert!(slim.sources().0.is_none() && slim.sources().1.is_none());
    assert_eq!(parse(&slim.abbreviated), parse(&full.abbreviated));
    assert_eq!(
        slim.upstream_tarball("lib-1.2.0.tgz"),
        full.upstream_tarball("lib-1.2.0.tgz")
    );
    assert!(
        slim.heap_bytes() * 2 < full.heap_bytes(),
        "{} {}",
        slim.heap_bytes(),
        full.heap_bytes()
    );
}

/// A stand-in signer: the payload itself, so that a test sees what was signed.
fn fake_sign(name: &str, version: &str, integrity: &str) -> Value {
    json!([{"keyid": "SHA256:ours", "sig": format!("{name}@{version}:{integrity}")}])
}

#[test]
fn local_versions_carry_our_signatures_and_upstream_ones_keep_theirs() {
    let name = PackageName::parse("lib").unwrap();
    let now = Utc::now();
    let theirs = json!([{"keyid": "SHA256:upstream", "sig": "up"}]);
    let mut up = upstream(now);
    for (_, v) in up["versions"].as_object_mut().unwrap() {
        v["dist"]["signatures"] = theirs.clone();
    }
    // Stored dist shapes: signatures first, in the middle, alone, none; no integrity; no tarball.
    let stale = json!([{"keyid": "SHA256:old", "sig": "old"}]);
    let local = json!({"name": "lib", "dist-tags": {"latest": "9.0.0"},
        "versions": {
            "1.0.0": {"name": "lib", "version": "1.0.0", "dist": {"signatures": stale, "integrity": "sha512-a", "tarball": "http://old/lib/-/lib-1.0.0.tgz"}},
            "5.0.0": {"name": "lib", "version": "5.0.0", "dist": {"integrity": "sha512-b", "signatures": stale, "tarball": "http://old/lib/-/lib-5.0.0.tgz", "shasum": "x"}},
            "6.0.0": {"name": "lib", "version": "6.0.0", "dist": {"signatures": stale}},
            "7.0.0": {"name": "lib", "version": "7.0.0", "dist": {"shasum": "m", "tarball": "http://old/lib/-/lib-7.0.0.tgz"}},
            "8.0.0": {"name": "lib", "version": "8.0.0", "dist": {"integrity": "sha512-c"}},
            "9.0.0": {"name": "lib", "version": "9.0.0", "dist": {"tarball": "http://old/lib/-/lib-9.0.0.tgz", "integrity": "sha512-d"}}},
        "time": {"modified": "2024-05-02T00:00:00.000Z"}});
    let mut want = oracle(&name, Some(&local), Some(&up), &VersionFilter::default(), now);
    for (v, m) in want["versions"].as_object_mut().unwrap() {
        let dist = m["dist"].as_object_mut().unwrap();
        if local["versions"].get(v).is_none() {
            assert_eq!(dist["signatures"], theirs);
            continue;
        }
        match dist.get("integrity").and_then(Value::as_str) {
            Some(i) => {
                dist.insert("signatures".into(), fake_sign("lib", v, i));
            }
            // Nothing to sign: no signatures, not even stored ones.
            None => {
                dist.remove("signatures");
            }
        }
    }
    for pretty in [false, true] {
        let p = Packument::build(
            Inputs {
                name: &name,
                local: Some(source(&local, pretty)),
                upstream: Some(source(&up, false)),
                filter: &VersionFilter::default(),
                now,
                sign: Some(&fake_sign),
            },
            true,
        )
        .unwrap();
        let full_bytes = p.full.as_ref().unwrap().template.render(BASE.as_bytes());
        assert_eq!(parse(&p.full.as_ref().unwrap().template), want, "pretty {pretty}");
        // No key twice: one `signatures` per version that has any (3 upstream, 4 local).
        let text = std::str::from_utf8(&full_bytes).unwrap();
        assert_eq!(text.matches("\"signatures\"").count(), 3 + 4, "{text}");
        let a = parse(&p.abbreviated);
        for (v, m) in want["versions"].as_object().unwrap() {
            assert_eq!(a["versions"][v]["dist"], m["dist"], "abbreviated {v}");
            assert_eq!(parse(&p.version(v).unwrap()), *m, "version {v}");
        }
        assert!(a["versions"]["7.0.0"]["dist"].get("signatures").is_none());
        assert!(a["versions"]["6.0.0"]["dist"].get("signatures").is_none());
        assert_eq!(
            a["versions"]["1.0.0"]["dist"]["signatures"][0]["sig"],
            "lib@1.0.0:sha512-a"
        );
        assert_eq!(a["versions"]["1.2.0"]["dist"]["signatures"], theirs);
    }
}

#[test]
fn signatures_count_in_the_weight() {
    let name = PackageName::parse("lib").unwrap();
    let mut doc = local();
    doc["versions"]["1.0.0"]["dist"]["integrity"] = json!("sha512-x");
    let build = |sign: Option<&Sign>| {
        Packument::build(
            Inputs {
                name: &name,
                local: Some(source(&doc, false)),
                upstream: None,
                filter: &VersionFilter::default(),
                now: Utc::now(),
                sign,
            },
            true,
        )
        .unwrap()
    };
    let (plain, signed) = (build(None), build(Some(&fake_sign)));
    assert!(signed.heap_bytes() > plain.heap_bytes());
    assert!(signed.abbreviated.len(b"") > plain.abbreviated.len(b""));
}
