//! The Dockerfiles of the two images.

use super::support::*;

#[test]
fn dockerfiles_build_non_root_multi_arch_images() {
    for (file, binary) in [
        ("registry-server/Dockerfile", "npm-registry-server"),
        ("operator/Dockerfile", "npm-registry-operator"),
    ] {
        let text = read(file);
        let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert!(froms.len() >= 2, "{file}: a multi-stage build");
        assert!(
            froms[0].contains("--platform=$BUILDPLATFORM"),
            "{file}: build on the host's arch"
        );
        for arg in ["ARG TARGETARCH", "ARG BUILDPLATFORM"] {
            assert!(text.contains(arg), "{file}: {arg}");
        }
        assert!(text.contains("cargo build --release"), "{file}");
        assert!(text.contains(&format!("--bin {binary}")), "{file}: builds {binary}");
        let runtime = &text[text.rfind("\nFROM ").unwrap()..];
        assert!(runtime.contains("USER 10001"), "{file}: runs as uid 10001");
        assert!(runtime.contains(binary), "{file}: ships {binary}");
    }
    let ignore = read(".dockerignore");
    for entry in ["target", ".git", "e2e/peers"] {
        assert!(
            ignore.lines().any(|l| l.trim_start_matches('/').starts_with(entry)),
            ".dockerignore: {entry}"
        );
    }
}

/// The runtime stage of a Dockerfile: its `COPY` destinations and its `USER`.
fn runtime_stage(file: &str) -> (Vec<(String, String)>, String) {
    let text = read(file);
    let runtime = &text[text.rfind("\nFROM ").unwrap()..];
    let mut copies = Vec::new();
    let mut user = String::new();
    for line in runtime.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first() {
            Some(&"COPY") => {
                let paths: Vec<&str> = words[1..].iter().copied().filter(|w| !w.starts_with("--")).collect();
                let [source, dest] = paths[..] else {
                    panic!("{file}: COPY with one source: {line}")
                };
                copies.push((source.to_string(), dest.to_string()));
            }
            Some(&"USER") => user = words[1].to_string(),
            _ => {}
        }
    }
    (copies, user)
}

/// The shipped images and the container test's image have one layout: the server binary where
/// the Deployment runs it, the same user (by the same passwd and group files) and the storage
/// folder under the image's home.
#[test]
fn dockerfiles_produce_the_layout_the_pod_and_the_container_test_use() {
    use e2e::container::{IMAGE_FILES, IMAGE_USER};
    use operator::resources::{SERVER_BINARY, STORAGE_PATH};
    let (uid, gid) = IMAGE_USER;
    for (file, binary) in [
        ("registry-server/Dockerfile", SERVER_BINARY),
        ("operator/Dockerfile", "/usr/local/bin/npm-registry-operator"),
    ] {
        let (copies, user) = runtime_stage(file);
        assert_eq!(user, format!("{uid}:{gid}"), "{file}");
        assert!(
            copies.iter().any(|(_, dest)| dest == binary),
            "{file}: {binary} in {copies:?}"
        );
        for image_file in IMAGE_FILES {
            assert!(
                copies.contains(&(image_file.source.to_string(), image_file.dest.to_string())),
                "{file}: COPY {} {}",
                image_file.source,
                image_file.dest
            );
        }
        let entrypoint = read(file)
            .lines()
            .find(|l| l.starts_with("ENTRYPOINT"))
            .unwrap()
            .to_string();
        assert!(entrypoint.contains(&format!("\"{binary}\"")), "{file}: {entrypoint}");
        assert!(
            read(file).contains("FROM gcr.io/distroless/cc-debian12"),
            "{file}: glibc and CA certificates"
        );
    }
    let passwd = read("registry-server/image/passwd");
    let entry = passwd
        .lines()
        .find(|l| l.split(':').nth(2) == Some(&uid.to_string()))
        .expect("the image user in passwd");
    let home = entry.split(':').nth(5).unwrap();
    assert!(
        STORAGE_PATH.starts_with(&format!("{home}/")),
        "{STORAGE_PATH} under the user's home {home}"
    );
    let (copies, _) = runtime_stage("registry-server/Dockerfile");
    assert!(
        copies.iter().any(|(_, dest)| dest == home),
        "the server image creates {home}"
    );
    // The images' sources are in the build context.
    let ignore = read(".dockerignore");
    let excluded = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|l| "registry-server/image/passwd".starts_with(l.trim_end_matches('/')));
    assert!(
        !excluded,
        ".dockerignore leaves registry-server/image out of the build context"
    );
}
