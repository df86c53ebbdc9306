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

