//! The IAM policies in `config/iam/`: least S3 and KMS access, IRSA trust of one ServiceAccount.

use std::collections::BTreeSet;

use serde_json::Value;

use super::support::*;

fn json_file(path: &str) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn statements(policy: &Value) -> &Vec<Value> {
    assert_eq!(policy["Version"], "2012-10-17");
    policy["Statement"].as_array().unwrap()
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        other => panic!("Action {other}"),
    }
}

#[test]
fn iam_policy_grants_the_least_s3_and_kms_access() {
    let policy = json_file("config/iam/npm-registry-s3-policy.json");
    let sample = documents(&read("config/samples/npmregistry-eks-s3.yaml")).remove(0);
    let s3 = &sample["spec"]["storage"]["s3"];
    let bucket = s3["bucket"].as_str().unwrap();
    let prefix = s3["keyPrefix"].as_str().unwrap();
    let all: BTreeSet<String> = statements(&policy).iter().flat_map(actions).collect();
    let want: BTreeSet<String> = [
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    ]
    .map(String::from)
    .into();
    assert_eq!(all, want, "exactly the calls the server makes");
    for statement in statements(&policy) {
        assert_eq!(statement["Effect"], "Allow");
        let actions = actions(statement);
        if actions == ["s3:ListBucket"] {
            assert_eq!(statement["Resource"], format!("arn:aws:s3:::{bucket}"));
            let prefixes = &statement["Condition"]["StringLike"]["s3:prefix"];
            assert!(
                prefixes
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p.as_str().unwrap().starts_with(prefix))),
                "ListBucket limited to the prefix {prefix}: {prefixes}"
            );
        } else if actions.iter().all(|a| a.starts_with("s3:")) {
            assert_eq!(statement["Resource"], format!("arn:aws:s3:::{bucket}/{prefix}*"));
        } else {
            assert_eq!(statement["Resource"], s3["kmsKeyId"], "the sample's KMS key");
        }
    }
}

#[test]
fn irsa_trust_policy_admits_only_the_registry_service_account() {
    let policy = json_file("config/iam/npm-registry-irsa-trust-policy.json");
    let sample = documents(&read("config/samples/npmregistry-eks-s3.yaml")).remove(0);
    let [statement] = statements(&policy).as_slice() else {
        panic!("one statement")
    };
    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
    let provider = statement["Principal"]["Federated"].as_str().unwrap();
    let (_, issuer) = provider.split_once(":oidc-provider/").expect("an OIDC provider ARN");
    let conditions = statement["Condition"]["StringEquals"].as_object().unwrap();
    assert_eq!(conditions[&format!("{issuer}:aud")], "sts.amazonaws.com");
    // The operator names the ServiceAccount after the NpmRegistry.
    let sub = conditions[&format!("{issuer}:sub")].as_str().unwrap();
    let name = sample["metadata"]["name"].as_str().unwrap();
    assert!(
        sub.starts_with("system:serviceaccount:") && sub.ends_with(&format!(":{name}")),
        "{sub}"
    );
}
