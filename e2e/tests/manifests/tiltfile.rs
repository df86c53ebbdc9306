//! The Tiltfile (inner-loop development on a local cluster).

use super::support::*;

#[test]
fn tiltfile_builds_both_images_and_installs_the_chart() {
    let tilt = read("Tiltfile");
    for want in [
        "docker_build(",
        OPERATOR_IMAGE,
        "ghcr.io/npmregistry-dev/npm-registry-server",
        "helm(",
        CHART,
        "config/samples/npmregistry-volume.yaml",
        "port_forwards",
        "live_update",
    ] {
        assert!(tilt.contains(want), "Tiltfile: {want}");
    }
}
