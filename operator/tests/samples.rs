//! Every sample in config/samples is accepted by the CRD's schema and CEL rules and builds a
//! complete set of children; the deliberately invalid fixtures are refused.

mod common;

use common::{repo_root, validation_errors, yaml_documents};
use operator::crd::NpmRegistry;
use serde_json::Value;

fn samples() -> Vec<(String, Value)> {
    let dir = repo_root().join("config/samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("config/samples exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .flat_map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            yaml_documents(&std::fs::read_to_string(&path).unwrap())
                .into_iter()
                .map(move |doc| (name.clone(), doc))
        })
        .collect()
}

#[test]
fn samples_include_volume_and_s3_storage() {
    let samples = samples();
    let storage = |kind: &str| {
        samples
            .iter()
            .any(|(_, doc)| doc["spec"]["storage"].get(kind).is_some())
    };
    assert!(
        storage("volume") && storage("s3"),
        "config/samples needs a volume and an S3 sample"
    );
}

#[test]
fn every_sample_is_valid_against_the_crd() {
    for (file, doc) in samples() {
        assert_eq!(doc["kind"], "NpmRegistry", "{file}");
        assert_eq!(doc["apiVersion"], "npmregistry.dev/v1alpha1", "{file}");
        let errors = validation_errors(&doc);
        assert!(errors.is_empty(), "{file} is refused: {errors:?}");
    }
}

#[test]
fn every_sample_builds_its_children() {
    for (file, mut doc) in samples() {
        doc["metadata"]["namespace"] = "default".into();
        doc["metadata"]["uid"] = "5a3c1d8e-0000-4000-8000-000000000001".into();
        let registry: NpmRegistry = serde_json::from_value(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
        let desired = operator::resources::build(&registry).unwrap_or_else(|e| panic!("{file}: {e}"));
        let config = &desired.config_map.data.as_ref().unwrap()["config.yaml"];
        assert!(config.contains("listen: 0.0.0.0:4873"), "{file}");
    }
}

#[test]
fn sample_uplinks_use_placeholder_hosts() {
    for (file, doc) in samples() {
        for uplink in doc["spec"]["uplinks"].as_array().into_iter().flatten() {
            let url = uplink["url"].as_str().unwrap();
            assert!(
                url.contains(".example.com"),
                "{file}: uplink URL {url} must be a placeholder"
            );
        }
    }
}

#[test]
fn every_invalid_fixture_is_refused_for_its_reason() {
    let path = repo_root().join("operator/tests/fixtures/invalid-npmregistry.yaml");
    let docs = yaml_documents(&std::fs::read_to_string(path).unwrap());
    assert_eq!(docs.len(), 5);
    for doc in docs {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let expected = match name.as_str() {
            "invalid-two-storage-kinds" => "mutually exclusive",
            "invalid-replicas-on-rwo" => "ReadWriteOnce volume allows one replica",
            "invalid-tls-without-host" => "ingress.tls requires ingress.host",
            "invalid-no-storage" => "one of storage.volume or storage.s3 is required",
            "invalid-types" => "/spec/replicas",
            other => panic!("unexpected fixture {other}"),
        };
        let errors = validation_errors(&doc);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{name}: expected {expected:?} in {errors:?}"
        );
    }
}

#[test]
fn unknown_fields_are_reported() {
    let mut doc = samples().remove(0).1;
    doc["spec"]["storage"]["volume"]["sise"] = "1Gi".into();
    let errors = validation_errors(&doc);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/spec/storage/volume/sise: unknown field")),
        "{errors:?}"
    );
}
