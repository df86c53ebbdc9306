//! The server pod the operator renders, run in a real container (podman): an image built from the
//! release binary with buildah (no base image is pulled: the binary, the shared libraries `ldd`
//! lists, CA certificates and a passwd file naming the non-root user), and the rendered pod spec
//! translated field by field into `podman run` (same command, args, env, user and groups,
//! read-only root, dropped capabilities, memory and CPU limits, volumes with the kubelet's
//! ownership and modes).
//!
//! A pod spec field the translation does not know makes it panic, so the pod in the container
//! can never silently differ from the pod the operator asks for.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Volume};
use operator::resources::SERVER_BINARY;

/// How the tests find what they need: the release binary and podman, buildah and runc.
pub struct Tools {
    pub server_binary: PathBuf,
    podman: PathBuf,
    buildah: PathBuf,
    runtime: Option<PathBuf>,
    /// A containers.conf with `default_ulimits = []` (these machines refuse setrlimit).
    conf: PathBuf,
}

/// The tools, or `None` after printing why the test is skipped. In CI (`CI` set) a missing tool
/// fails the test instead: CI must run it.
pub fn tools() -> Option<Tools> {
    let missing = |what: String| -> Option<Tools> {
        let hint =
            "`bash e2e/test.sh` builds the release binary and installs podman, buildah and runc (Debian, as root)";
        if std::env::var_os("CI").is_some() {
            panic!("{what}: the container test must run in CI ({hint})");
        }
        println!("skipped: {what} ({hint})");
        None
    };
    let Some(server_binary) = std::env::var_os("NPM_REGISTRY_SERVER_BIN").map(PathBuf::from) else {
        return missing("NPM_REGISTRY_SERVER_BIN is not set (the release build of registry-server)".into());
    };
    if !server_binary.is_file() {
        return missing(format!(
            "NPM_REGISTRY_SERVER_BIN={} does not exist",
            server_binary.display()
        ));
    }
    let (Some(podman), Some(buildah)) = (which("podman"), which("buildah")) else {
        return missing("podman or buildah is not installed".into());
    };
    let conf = std::env::temp_dir().join(format!("npmreg-containers-{}.conf", std::process::id()));
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
    Some(Tools {
        server_binary,
        podman,
        buildah,
        // crun fails on these machines (hybrid cgroups); runc works.
        runtime: which("runc"),
        conf,
    })
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

impl Tools {
    pub fn podman(&self) -> Command {
        let mut cmd = Command::new(&self.podman);
        cmd.env("CONTAINERS_CONF", &self.conf).stdin(Stdio::null());
        if let Some(runtime) = &self.runtime {
            cmd.arg("--runtime").arg(runtime);
        }
        cmd.args(["--cgroup-manager", "cgroupfs"]);
        cmd
    }

    fn buildah(&self) -> Command {
        let mut cmd = Command::new(&self.buildah);
        cmd.env("CONTAINERS_CONF", &self.conf).stdin(Stdio::null());
        cmd
    }

    /// Builds `tag` from scratch: the layout registry-server/Dockerfile's runtime stage has (the
    /// binary at [`SERVER_BINARY`], uid/gid [`IMAGE_USER`], `/var/lib/npm-registry` owned by it,
    /// CA certificates), with the shared libraries the distroless base would bring.
    pub fn build_server_image(&self, tag: &str) {
        let work = run(self.buildah().args(["from", "scratch"]), "buildah from scratch");
        let container = work.trim().to_string();
        let copy = |src: &Path, dest: &str| {
            let mut cmd = self.buildah();
            cmd.args(["copy", &container]).arg(src).arg(dest);
            run(&mut cmd, &format!("buildah copy {} {dest}", src.display()));
        };
        copy(&self.server_binary, SERVER_BINARY);
        let ldd = run(Command::new("ldd").arg(&self.server_binary), "ldd");
        for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
            copy(Path::new(lib), lib);
        }
        // The very files registry-server/Dockerfile copies.
        for file in IMAGE_FILES {
            copy(&crate::repo_root().join(file.source), file.dest);
        }
        let (uid, gid) = IMAGE_USER;
        copy(Path::new(CA_CERTIFICATES), CA_CERTIFICATES);
        let scratch = tempfile::tempdir().unwrap();
        let home = scratch.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let mut cmd = self.buildah();
        cmd.args(["copy", "--chown", &format!("{uid}:{gid}"), &container])
            .arg(&home)
            .arg("/var/lib/npm-registry");
        run(&mut cmd, "buildah copy /var/lib/npm-registry");
        let mut cmd = self.buildah();
        cmd.args(["config", "--user", &format!("{uid}:{gid}")])
            .args(["--env", "PATH=/usr/local/bin:/usr/bin:/bin"])
            .args(["--entrypoint", &format!("[\"{SERVER_BINARY}\"]")])
            .arg(&container);
        run(&mut cmd, "buildah config");
        run(
            self.buildah().args(["commit", "--quiet", "--rm", &container, tag]),
            "buildah commit",
        );
    }
}

/// The user the image runs as by default (the Dockerfiles' `USER`).
pub const IMAGE_USER: (i64, i64) = (10001, 10001);

/// A file of the repository that the image holds.
pub struct ImageFile {
    pub source: &'static str,
    pub dest: &'static str,
}

/// The files both Dockerfiles copy into their runtime stage, and so does the test image.
pub const IMAGE_FILES: [ImageFile; 2] = [
    ImageFile {
        source: "registry-server/image/passwd",
        dest: "/etc/passwd",
    },
    ImageFile {
        source: "registry-server/image/group",
        dest: "/etc/group",
    },
];
/// Where Debian (and distroless) keep the CA bundle.
pub const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Runs `cmd`; its stdout, or a panic with both outputs.
pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = output(cmd, what);
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output(cmd: &mut Command, what: &str) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"))
}

/// A Secret's data as the test provides it: name → key → value.
pub type Secrets = BTreeMap<String, BTreeMap<String, String>>;

/// A rendered pod, translated into `podman run` arguments and the host folders behind its volumes.
pub struct PodRun {
    pub args: Vec<String>,
    /// The container port of each named port.
    pub ports: BTreeMap<String, i32>,
    pub container: Container,
    volumes: tempfile::TempDir,
}

impl PodRun {
    /// Translates the Deployment's pod (one container) with the ConfigMap it mounts and the
    /// Secrets it references; `extra_env` stands for what a cluster injects on its own (IRSA's
    /// webhook injects the AWS credentials variables).
    pub fn new(
        deployment: &Deployment,
        config_map: &ConfigMap,
        secrets: &Secrets,
        extra_env: &[(&str, String)],
    ) -> Self {
        let pod: &PodSpec = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert_eq!(pod.containers.len(), 1, "one container");
        assert!(pod.init_containers.is_none() && pod.ephemeral_containers.is_none());
        let container = pod.containers[0].clone();
        let pod_security = pod.security_context.clone().unwrap_or_default();
        let security = container.security_context.clone().unwrap_or_default();
        let uid = security.run_as_user.or(pod_security.run_as_user).expect("runAsUser");
        let gid = security.run_as_group.or(pod_security.run_as_group).expect("runAsGroup");
        if security.run_as_non_root.or(pod_security.run_as_non_root) == Some(true) {
            assert_ne!(uid, 0, "runAsNonRoot with uid 0 would not start");
        }
        let fs_group = pod_security.fs_group;
        let mut args: Vec<String> = vec!["--user".into(), format!("{uid}:{gid}")];
        if let Some(group) = fs_group {
            args.extend(["--group-add".into(), group.to_string()]);
        }
        if security.read_only_root_filesystem == Some(true) {
            // Only the pod's own volumes are writable: no tmpfs of podman's own on /tmp or /run.
            args.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
        }
        if security.allow_privilege_escalation == Some(false) {
            args.extend(["--security-opt".into(), "no-new-privileges".into()]);
        }
        let capabilities = security.capabilities.clone().unwrap_or_default();
        for cap in capabilities.drop.iter().flatten() {
            args.extend(["--cap-drop".into(), cap.clone()]);
        }
        assert!(capabilities.add.is_none(), "no capability is added");
        if let Some(profile) = pod_security.seccomp_profile.as_ref() {
            // podman's default seccomp profile is the runtime default.
            assert_eq!(profile.type_, "RuntimeDefault");
        }

        // Limits are what the kernel enforces (requests only schedule).
        let limits = container
            .resources
            .as_ref()
            .and_then(|r| r.limits.clone())
            .unwrap_or_default();
        for (resource, quantity) in &limits {
            match resource.as_str() {
                "memory" => {
                    let bytes = operator::quantity::bytes(quantity).expect("a memory quantity");
                    args.extend(["--memory".into(), bytes.to_string()]);
                }
                "cpu" => {
                    let nanos = operator::quantity::nanos(&quantity.0).expect("a CPU quantity");
                    args.extend(["--cpus".into(), format!("{}", nanos as f64 / 1e9)]);
                }
                other => panic!("limit {other} is not translated"),
            }
        }

        let volumes = tempfile::tempdir().unwrap();
        let mut hosts: BTreeMap<String, PathBuf> = BTreeMap::new();
        for volume in pod.volumes.iter().flatten() {
            let dir = volumes.path().join(&volume.name);
            std::fs::create_dir(&dir).unwrap();
            materialize(volume, &dir, config_map, secrets, fs_group);
            hosts.insert(volume.name.clone(), dir);
        }
        for mount in container.volume_mounts.iter().flatten() {
            let host = &hosts[&mount.name];
            assert!(mount.sub_path.is_none() && mount.sub_path_expr.is_none());
            let mode = if mount.read_only == Some(true) { "ro" } else { "rw" };
            args.extend([
                "--volume".into(),
                format!("{}:{}:{mode}", host.display(), mount.mount_path),
            ]);
        }
        for env in container.env.iter().flatten() {
            let value = match (&env.value, &env.value_from) {
                (Some(value), None) => value.clone(),
                (None, Some(from)) => {
                    let secret = from.secret_key_ref.as_ref().expect("env only from Secrets");
                    secrets
                        .get(&secret.name)
                        .and_then(|s| s.get(&secret.key))
                        .unwrap_or_else(|| panic!("the test provides Secret {} key {}", secret.name, secret.key))
                        .clone()
                }
                other => panic!("env {}: {other:?}", env.name),
            };
            args.extend(["--env".into(), format!("{}={value}", env.name)]);
        }
        for (name, value) in extra_env {
            args.extend(["--env".into(), format!("{name}={value}")]);
        }
        assert!(container.env_from.is_none(), "no envFrom");
        let command = container.command.clone().expect("the pod names the command");
        args.extend(["--entrypoint".into(), serde_json::to_string(&command).unwrap()]);
        let ports = container
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.container_port))
            .collect();
        PodRun {
            args,
            ports,
            container,
            volumes,
        }
    }

    /// The host folder behind the pod volume `name`.
    pub fn volume(&self, name: &str) -> PathBuf {
        self.volumes.path().join(name)
    }
}

/// Lays out a volume's files as the kubelet would: projected ConfigMap/Secret files owned by root
/// and the fsGroup with the volume's mode; an emptyDir world-writable; a claim's root owned by the
/// fsGroup, group-writable and setgid.
fn materialize(volume: &Volume, dir: &Path, config_map: &ConfigMap, secrets: &Secrets, fs_group: Option<i64>) {
    let group = fs_group.map(|g| g as u32);
    if let Some(projected) = &volume.projected {
        let mode = projected.default_mode.unwrap_or(0o644) as u32;
        for source in projected.sources.iter().flatten() {
            let (items, data): (_, BTreeMap<String, String>) = match (&source.config_map, &source.secret) {
                (Some(cm), None) => {
                    assert_eq!(
                        Some(&cm.name),
                        config_map.metadata.name.as_ref(),
                        "the rendered ConfigMap"
                    );
                    (cm.items.clone(), config_map.data.clone().unwrap_or_default())
                }
                (None, Some(secret)) => (
                    secret.items.clone(),
                    secrets
                        .get(&secret.name)
                        .cloned()
                        .unwrap_or_else(|| panic!("the test provides Secret {}", secret.name)),
                ),
                other => panic!("projected source {other:?}"),
            };
            for item in items.expect("projected items are listed") {
                let path = dir.join(&item.path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &data[&item.key]).unwrap();
                let mode = item.mode.map_or(mode, |m| m as u32);
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
                chown(&path, Some(0), group).unwrap();
            }
        }
        set_mode(dir, 0o755);
    } else if volume.empty_dir.is_some() {
        set_mode(dir, 0o777);
    } else if volume.persistent_volume_claim.is_some() {
        chown(dir, Some(0), group).unwrap();
        set_mode(dir, 0o2775);
    } else {
        panic!("volume {} of an unknown kind", volume.name);
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
