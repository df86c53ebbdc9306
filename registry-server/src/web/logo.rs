//! `web.logo`: a file or an http(s) URL, read once at start and served by us (browsers never
//! fetch it from elsewhere). Only images we recognise by their first bytes are taken.

use super::assets::{Kind, SVG};
use crate::config::Logo;
use bytes::Bytes;
use std::time::Duration;

const MAX_LOGO: u64 = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The image type of `bytes`, from its signature.
pub fn sniff(bytes: &[u8]) -> Option<Kind> {
    let kind = |content_type, extension| {
        Some(Kind {
            content_type,
            extension,
        })
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        kind("image/png", "png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        kind("image/jpeg", "jpg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        kind("image/gif", "gif")
    } else if bytes.len() > 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        kind("image/webp", "webp")
    } else if bytes.starts_with(&[0, 0, 1, 0]) {
        kind("image/x-icon", "ico")
    } else {
        let text = std::str::from_utf8(&bytes[..bytes.len().min(1024)]).ok()?;
        let text = text.trim_start_matches('\u{feff}').trim_start();
        (text.starts_with('<') && text.contains("<svg")).then_some(SVG)
    }
}

async fn read(source: &Logo) -> Result<Bytes, String> {
    match source {
        Logo::File(path) => {
            let meta = tokio::fs::metadata(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if meta.len() > MAX_LOGO {
                return Err(format!("{} is larger than {MAX_LOGO} bytes", path.display()));
            }
            tokio::fs::read(path)
                .await
                .map(Bytes::from)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        Logo::Url(url) => {
            let client = reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())?;
            let mut res = client
                .get(url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("cannot fetch {url}: {e}"))?;
            let mut body = Vec::new();
            while let Some(chunk) = res.chunk().await.map_err(|e| format!("cannot fetch {url}: {e}"))? {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > MAX_LOGO {
                    return Err(format!("{url} is larger than {MAX_LOGO} bytes"));
                }
            }
            Ok(Bytes::from(body))
        }
    }
}

pub async fn load(source: &Logo) -> Result<(Bytes, Kind), String> {
    let bytes = read(source).await?;
    let kind = sniff(&bytes).ok_or_else(|| format!("{source:?} is not a PNG, JPEG, GIF, WebP, ICO or SVG image"))?;
    Ok((bytes, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_images_only() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n....").unwrap().extension, "png");
        assert_eq!(
            sniff(b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<svg xmlns=\"\"/>"),
            Some(SVG)
        );
        assert_eq!(sniff(b"<html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"plain text"), None);
    }

    #[tokio::test]
    async fn reads_a_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logo.svg");
        std::fs::write(&path, "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
        let (bytes, kind) = load(&Logo::File(path)).await.unwrap();
        assert_eq!(kind, SVG);
        assert!(bytes.starts_with(b"<svg"));
        let e = load(&Logo::File(dir.path().join("missing.png"))).await.unwrap_err();
        assert!(e.contains("missing.png"), "{e}");
    }
}
