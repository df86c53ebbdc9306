//! The README's "Deploy on EKS" section, followed line by line: every JSON and YAML block equals a
//! shipped file, every command that needs no cluster runs, the others name files that exist.

use std::collections::BTreeSet;
use std::process::Command;

use e2e::repo_root;
use serde_json::Value;

use super::support::*;

/// The README's "Deploy on EKS" section.
fn eks_section() -> String {
    let readme = read("README.md");
    let start = readme
        .find("\n## Deploy on EKS\n")
        .expect("README.md has a `## Deploy on EKS` section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    rest[..end].to_string()
}

/// The fenced code blocks of `markdown`: (info string, body).
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    blocks
}

/// Shell words of `line` (single and double quotes; no expansions).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quotes in `{line}`");
    words.extend(word);
    words
}

/// The commands of a shell block, continuation lines joined, comments dropped.
fn commands(body: &str) -> Vec<String> {
    let joined = body.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Files under config/ that the README's manifests must equal, parsed.
fn shipped_manifests() -> Vec<(String, Vec<Value>)> {
    let mut files = Vec::new();
    for dir in ["config/iam", "config/eks"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let rel = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = if rel.ends_with(".json") {
                vec![serde_json::from_str(&text).unwrap()]
            } else {
                documents(&text)
            };
            files.push((rel, docs));
        }
    }
    files
}

/// Checks that every repository path a command names exists.
fn check_paths(words: &[String], line: &str) {
    for word in words {
        let path = word.strip_prefix("file://").unwrap_or(word);
        let path = path.split_once('=').map_or(path, |(_, p)| p);
        if ["config/", "charts/", "crds/", "operator/", "e2e/", "registry-server/"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            assert!(
                repo_root().join(path).exists(),
                "`{line}` names {path}, which does not exist"
            );
        }
    }
}

/// Runs (or, when it needs a cluster or AWS, checks) one command of the README's EKS section.
/// Returns what kind of step it was.
fn follow(line: &str) -> &'static str {
    let words = shell_words(line);
    let program = words[0].as_str();
    let sub = words.get(1).map(String::as_str).unwrap_or("");
    check_paths(&words, line);
    match (program, sub) {
        ("helm", "template") => {
            let mut cmd = helm();
            cmd.args(&words[1..]);
            validate(&run(cmd, line), line);
            "helm template"
        }
        ("helm", "lint") => {
            let mut cmd = helm();
            cmd.args(&words[1..]);
            run(cmd, line);
            "helm lint"
        }
        ("helm", "install" | "upgrade") => {
            let chart = words.iter().skip(2).filter(|w| !w.starts_with('-')).nth(1);
            let local = chart.is_some_and(|c| repo_root().join(c).is_dir());
            assert!(local, "`{line}`: only the repository's own chart can be followed");
            let mut cmd = helm();
            cmd.args(&words[1..]).arg("--dry-run=client");
            let out = run(cmd, line);
            assert!(out.contains("kind: Deployment"), "{line}: nothing rendered");
            if let Some(repository) = words.iter().find_map(|w| w.strip_prefix("image.repository=")) {
                let image = format!("image: \"{repository}:{}\"", app_version());
                assert!(out.contains(&image), "{line}: the operator runs {image}");
            }
            "helm install"
        }
        ("docker", "buildx") => {
            // Needs Docker and the registry: check that it builds both architectures of an image
            // this repository ships, and pushes it.
            let value = |flag: &str| {
                let i = words
                    .iter()
                    .position(|w| w == flag)
                    .unwrap_or_else(|| panic!("`{line}`: no {flag}"));
                words[i + 1].clone()
            };
            assert_eq!(value("--platform"), "linux/amd64,linux/arm64", "`{line}`");
            assert!(
                words.iter().any(|w| w == "--push") && words.last().unwrap() == ".",
                "`{line}`"
            );
            let dockerfile = value("-f");
            let tag = value("-t");
            let image = dockerfile
                .replace("registry-server/Dockerfile", "npm-registry-server")
                .replace("operator/Dockerfile", "npm-registry-operator");
            assert!(
                tag.contains(&format!("/{image}:{}", app_version())),
                "`{line}`: {tag} names {image} at the chart's appVersion"
            );
            "docker buildx"
        }
        ("kubectl", "kustomize") => {
            let mut cmd = kubectl();
            cmd.args(&words[1..]);
            validate(&run(cmd, line), line);
            "kubectl kustomize"
        }
        ("npm", "config") => {
            let userconfig = tools().scratch.join("npmrc");
            let mut cmd = Command::new("npm");
            cmd.args(&words[1..])
                .current_dir(&tools().scratch)
                .env("npm_config_userconfig", &userconfig);
            run(cmd, line);
            let npmrc = std::fs::read_to_string(&userconfig).unwrap();
            let registry = words.last().unwrap();
            assert!(npmrc.contains(&format!("registry={registry}")), "{npmrc}");
            assert!(
                registry.starts_with("https://") && registry.ends_with('/'),
                "{registry}"
            );
            "npm config"
        }
        ("openssl", _) => {
            // Makes the signing key in the scratch folder: a PKCS#8 PEM, as `signing.keySecret` wants.
            let mut cmd = Command::new("openssl");
            cmd.args(&words[1..]).current_dir(&tools().scratch);
            run(cmd, line);
            if sub == "pkcs8" {
                let out = &words[words.iter().position(|w| w == "-out").unwrap() + 1];
                let pem = std::fs::read_to_string(tools().scratch.join(out)).unwrap();
                assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "`{line}`: not PKCS#8");
            }
            "openssl"
        }
        // These need the cluster, AWS or the running registry: their files were checked above.
        ("kubectl", _)
        | ("aws", _)
        | ("eksctl", _)
        | ("docker", "login")
        | ("helm", "test" | "status")
        | ("npm", "login" | "whoami") => "checked only",
        _ => panic!("`{line}`: the test does not know how to follow this command; teach follow()"),
    }
}

#[test]
fn readme_eks_section_is_followed_line_by_line() {
    let section = eks_section();
    let shipped = shipped_manifests();
    let mut steps = Vec::new();
    let mut matched = BTreeSet::new();
    for (info, body) in code_blocks(&section) {
        match info.as_str() {
            "json" | "yaml" => {
                let docs = if info == "json" {
                    vec![serde_json::from_str(&body).unwrap_or_else(|e| panic!("README JSON ({e}):\n{body}"))]
                } else {
                    documents(&body)
                };
                if docs.iter().any(|d| d.get("kind").is_some()) {
                    validate(&body, "a manifest in README's EKS section");
                }
                let (file, _) = shipped
                    .iter()
                    .find(|(_, file_docs)| *file_docs == docs)
                    .unwrap_or_else(|| {
                        panic!(
                            "a {info} block of README's EKS section equals no file in config/iam or config/eks:\n{body}"
                        )
                    });
                matched.insert(file.clone());
            }
            "sh" => {
                for line in commands(&body) {
                    let step = follow(&line);
                    println!("{step:>16}: {line}");
                    steps.push((step, line));
                }
            }
            other => panic!("a code block of README's EKS section has the unknown language `{other}`"),
        }
    }
    for file in [
        "config/iam/npm-registry-s3-policy.json",
        "config/iam/npm-registry-irsa-trust-policy.json",
    ] {
        assert!(matched.contains(file), "the section must show {file}");
    }
    let has = |pred: &dyn Fn(&str, &str) -> bool| steps.iter().any(|(kind, line)| pred(kind, line));
    assert!(
        has(&|k, _| k == "helm install"),
        "the section must `helm install` the chart"
    );
    assert!(
        has(&|k, _| k == "npm config"),
        "the section must `npm config set registry`"
    );
    // Until a release exists: both images built and pushed, and the chart pointed at the operator's.
    for dockerfile in ["registry-server/Dockerfile", "operator/Dockerfile"] {
        assert!(
            has(&|k, l| k == "docker buildx" && l.contains(dockerfile)),
            "the section must build and push the image of {dockerfile}"
        );
    }
    let pushed = |image: &str| {
        steps
            .iter()
            .filter(|(k, _)| *k == "docker buildx")
            .find_map(|(_, l)| {
                let words = shell_words(l);
                let tag = &words[words.iter().position(|w| w == "-t")? + 1];
                tag.contains(&format!("/{image}:"))
                    .then(|| tag.split(':').next().unwrap().to_string())
            })
            .unwrap_or_else(|| panic!("no push of {image}"))
    };
    let operator_image = pushed("npm-registry-operator");
    assert!(
        has(&|k, l| k == "helm install" && l.contains(&format!("image.repository={operator_image}"))),
        "the chart must be installed with the pushed operator image {operator_image}"
    );
    let words = section.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!("spec.image: {}", pushed("npm-registry-server"))),
        "the section must point spec.image at the pushed server image"
    );
    for sample in [
        "config/samples/npmregistry-eks-s3.yaml",
        "config/samples/npmregistry-eks-efs.yaml",
    ] {
        assert!(section.contains(sample), "the section must name {sample}");
    }
    assert!(
        has(&|_, l| l.contains("kubectl") && l.contains(" apply -f config/samples/")),
        "the section must `kubectl apply -f` a sample"
    );
    for word in ["AWS Load Balancer Controller", "EFS CSI driver", "IRSA", "S3"] {
        assert!(section.contains(word), "the prerequisites must name {word}");
    }
}

/// `kubectl create secret generic NAME --from-file=[KEY=]PATH | --from-literal=KEY=VALUE...`:
/// (name, keys), when `line` is one.
fn created_secret(line: &str) -> Option<(String, BTreeSet<String>)> {
    let words = shell_words(line);
    let at = words.windows(3).position(|w| w == ["create", "secret", "generic"])?;
    let name = words.get(at + 3)?.clone();
    let keys = words[at + 4..]
        .iter()
        .filter_map(|w| {
            if let Some(file) = w.strip_prefix("--from-file=") {
                let key = match file.split_once('=') {
                    Some((key, _)) => key,
                    None => file.rsplit('/').next().unwrap(),
                };
                Some(key.to_string())
            } else {
                let literal = w.strip_prefix("--from-literal=")?;
                Some(literal.split_once('=')?.0.to_string())
            }
        })
        .collect();
    Some((name, keys))
}

/// The (Secret, key) pairs a sample's pods mount or read, from the Deployment the operator builds.
fn mounted_secrets(sample: &str) -> BTreeSet<(String, String)> {
    use k8s_openapi::api::apps::v1::Deployment;
    let mut doc = documents(&read(sample)).remove(0);
    doc["metadata"]["namespace"] = "npm".into();
    doc["metadata"]["uid"] = "5a3c1d8e-0000-4000-8000-000000000001".into();
    let registry: operator::crd::NpmRegistry = serde_json::from_value(doc).unwrap();
    let deployment: Deployment = operator::resources::build(&registry).unwrap().deployment;
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let mut refs = BTreeSet::new();
    for volume in pod.volumes.iter().flatten() {
        let projected = volume.projected.iter().flat_map(|p| p.sources.iter().flatten());
        for secret in projected.filter_map(|s| s.secret.as_ref()) {
            for item in secret.items.iter().flatten() {
                refs.insert((secret.name.clone(), item.key.clone()));
            }
        }
        if let Some(secret) = &volume.secret {
            for item in secret.items.iter().flatten() {
                refs.insert((secret.secret_name.clone().unwrap_or_default(), item.key.clone()));
            }
        }
    }
    for container in &pod.containers {
        for env in container.env.iter().flatten() {
            if let Some(r) = env.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()) {
                refs.insert((r.name.clone(), r.key.clone()));
            }
        }
    }
    refs
}

#[test]
fn the_guide_creates_every_secret_the_eks_samples_mount() {
    let section = eks_section();
    let mut created: BTreeSet<(String, String)> = BTreeSet::new();
    for (_, body) in code_blocks(&section).into_iter().filter(|(info, _)| info == "sh") {
        for line in commands(&body) {
            if let Some((name, keys)) = created_secret(&line) {
                created.extend(keys.into_iter().map(|k| (name.clone(), k)));
            }
        }
    }
    for sample in [
        "config/samples/npmregistry-eks-s3.yaml",
        "config/samples/npmregistry-eks-efs.yaml",
    ] {
        let mounted = mounted_secrets(sample);
        assert!(!mounted.is_empty(), "{sample} mounts no Secret?");
        let missing: Vec<_> = mounted.difference(&created).collect();
        assert!(
            missing.is_empty(),
            "README's EKS guide never creates the Secret keys {missing:?} that {sample} mounts (it creates {created:?})"
        );
    }
}
