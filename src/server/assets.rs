//! The player page and its assets, compiled into the binary so it runs from any working directory
//! and with no network (no CDN: hls.js is vendored under `static/vendor/` with its licence).
//!
//! Each asset is served with a strong validator (an `ETag` hashed from its bytes at first use)
//! and `Cache-Control: no-cache`: a browser keeps its copy but revalidates it, which costs a
//! `304` and never serves a stale player after the binary is upgraded (RFC 9111 §5.2.2.4).

use std::sync::OnceLock;

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    /// Path under `/static/` (the page itself is also served at `/`).
    pub(crate) path: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) body: &'static [u8],
}

/// `Content-Type` of a script; ES modules are only run when it is a JavaScript MIME type.
const JS: &str = "text/javascript; charset=utf-8";

/// Every embedded file, in no particular order. The page's ES modules are under `js/`
/// (`js/main.js` imports the others; a test checks that every import is embedded).
pub(crate) static ASSETS: &[Asset] = &[
    Asset {
        path: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../static/index.html"),
    },
    Asset {
        path: "js/main.js",
        content_type: JS,
        body: include_bytes!("../../static/js/main.js"),
    },
    Asset {
        path: "js/clock.js",
        content_type: JS,
        body: include_bytes!("../../static/js/clock.js"),
    },
    Asset {
        path: "js/markers.js",
        content_type: JS,
        body: include_bytes!("../../static/js/markers.js"),
    },
    Asset {
        path: "js/seekbar.js",
        content_type: JS,
        body: include_bytes!("../../static/js/seekbar.js"),
    },
    Asset {
        path: "js/table.js",
        content_type: JS,
        body: include_bytes!("../../static/js/table.js"),
    },
    Asset {
        path: "js/livekeep.js",
        content_type: JS,
        body: include_bytes!("../../static/js/livekeep.js"),
    },
    Asset {
        path: "tiles.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../static/tiles.html"),
    },
    Asset {
        path: "js/tiles.js",
        content_type: JS,
        body: include_bytes!("../../static/js/tiles.js"),
    },
    Asset {
        path: "player.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/player.css"),
    },
    Asset {
        path: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../static/favicon.svg"),
    },
    Asset {
        path: "vendor/hls.min.js",
        content_type: JS,
        body: include_bytes!("../../static/vendor/hls.min.js"),
    },
    Asset {
        path: "vendor/hls.js.LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../../static/vendor/hls.js.LICENSE.txt"),
    },
];

/// The player page, served at `/`.
pub(crate) const INDEX: &str = "index.html";

/// The page of every stream as a tile, served at `/` when there are several.
pub(crate) const TILES: &str = "tiles.html";

/// Looks an asset up by its path under `/static/`.
pub(crate) fn find(path: &str) -> Option<(&'static Asset, &'static str)> {
    let i = ASSETS.iter().position(|a| a.path == path)?;
    Some((&ASSETS[i], etags()[i].as_str()))
}

/// Quoted strong entity tags, one per entry of [`ASSETS`], computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| ASSETS.iter().map(|a| etag_of(a.body)).collect())
}

/// A quoted strong entity tag for `bytes`.
pub(crate) fn etag_of(bytes: &[u8]) -> String {
    format!("\"{:016x}\"", fnv1a64(bytes))
}

/// Placeholder in `index.html` replaced by the stream name (always `[A-Za-z0-9_-]+`, so it needs
/// no escaping in HTML or in a URL path).
pub(crate) const NAME_PLACEHOLDER: &str = "__STREAM_NAME__";

/// The routes a player page reads its stream from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PageRoutes {
    pub(crate) stream: String,
    pub(crate) markers: String,
    pub(crate) health: String,
}

impl PageRoutes {
    /// A one-stream server's: `/stream`, `/markers`, `/healthz`.
    pub(crate) fn single() -> PageRoutes {
        PageRoutes {
            stream: "/stream".to_owned(),
            markers: "/markers".to_owned(),
            health: "/healthz".to_owned(),
        }
    }

    /// Stream `name`'s on a server of several: `/streams/NAME`, `/streams/NAME/markers`,
    /// `/streams/NAME/healthz`.
    pub(crate) fn of(name: &str) -> PageRoutes {
        PageRoutes {
            stream: format!("/streams/{name}"),
            markers: format!("/streams/{name}/markers"),
            health: format!("/streams/{name}/healthz"),
        }
    }
}

/// The player page for stream `name` reading its routes from `routes`, and its entity tag.
/// A name is `[A-Za-z0-9_-]+`, so neither it nor the routes need escaping.
pub(crate) fn render_index(name: &str, routes: &PageRoutes) -> (String, String) {
    let (page, _) = find(INDEX).expect("the page is embedded");
    let page = std::str::from_utf8(page.body).expect("index.html is UTF-8");
    let html = page
        .replace(NAME_PLACEHOLDER, name)
        .replace("__STREAM_URL__", &routes.stream)
        .replace("__MARKERS_URL__", &routes.markers)
        .replace("__HEALTH_URL__", &routes.health);
    let etag = etag_of(html.as_bytes());
    (html, etag)
}

/// FNV-1a, 64 bit: a validator needs to change when the bytes change, not to resist forgery.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison, RFC 9110 §13.1.2).
pub(crate) fn if_none_match_hits(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_with_a_distinct_etag() {
        let mut seen = std::collections::HashSet::new();
        for a in ASSETS {
            let (found, etag) = find(a.path).expect("listed asset is found");
            assert_eq!(found.path, a.path);
            assert!(!found.body.is_empty(), "{} is empty", a.path);
            assert!(etag.starts_with('"') && etag.ends_with('"'));
            assert!(
                seen.insert(etag.to_owned()),
                "duplicate etag for {}",
                a.path
            );
        }
        assert!(find("nope.js").is_none());
        assert!(find("../Cargo.toml").is_none());
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn if_none_match_parsing() {
        assert!(if_none_match_hits("\"ab\"", "\"ab\""));
        assert!(if_none_match_hits("\"x\", W/\"ab\"", "\"ab\""));
        assert!(if_none_match_hits("*", "\"ab\""));
        assert!(!if_none_match_hits("\"abc\"", "\"ab\""));
        assert!(!if_none_match_hits("", "\"ab\""));
    }

    #[test]
    fn vendored_player_is_hls_js_with_its_licence() {
        let (js, _) = find("vendor/hls.min.js").expect("vendored hls.js");
        let text = std::str::from_utf8(js.body).expect("utf-8");
        assert!(
            text.len() > 100_000,
            "minified hls.js is a few hundred kilobytes"
        );
        assert!(text.contains("Hls"), "exports the Hls global");
        let (lic, _) = find("vendor/hls.js.LICENSE.txt").expect("licence");
        assert!(std::str::from_utf8(lic.body)
            .expect("utf-8")
            .contains("Apache License"));
        let (named, _) = render_index("cam-1", &PageRoutes::of("cam-1"));
        for meta in [
            r#"name="hls-stream" content="/streams/cam-1""#,
            r#"name="hls-markers" content="/streams/cam-1/markers""#,
            r#"name="hls-health" content="/streams/cam-1/healthz""#,
        ] {
            assert!(named.contains(meta), "{meta}");
        }
        let (page, _) = render_index("cam-1", &PageRoutes::single());
        assert!(page.contains(r#"name="hls-stream" content="/stream""#));
        assert!(
            !page.contains("__") && !named.contains("__"),
            "every placeholder filled"
        );
        assert!(page.contains("/static/vendor/hls.min.js"));
        assert!(
            page.contains(r#"content="/video/cam-1.m3u8""#),
            "page names the playlist"
        );
        assert!(!page.contains(NAME_PLACEHOLDER));
        assert!(
            !page.contains("//cdn") && !page.contains("https://"),
            "no CDN, no network"
        );
    }

    /// The relative module specifiers (`from './x.js'`) of a script.
    fn imports(js: &str) -> Vec<&str> {
        js.split("from '")
            .skip(1)
            .filter_map(|rest| rest.split_once('\''))
            .map(|(spec, _)| spec)
            .filter(|spec| spec.starts_with("./") || spec.starts_with("../"))
            .collect()
    }

    #[test]
    fn the_page_loads_its_modules_and_every_import_is_embedded() {
        let (page, _) = render_index("cam-1", &PageRoutes::single());
        assert!(
            page.contains(r#"<script type="module" src="/static/js/main.js"></script>"#),
            "the page loads its entry module"
        );
        let mut seen = std::collections::BTreeSet::new();
        // The two pages' entry modules: the player's and the tile page's.
        let mut todo = vec!["js/main.js".to_owned(), "js/tiles.js".to_owned()];
        while let Some(path) = todo.pop() {
            if !seen.insert(path.clone()) {
                continue;
            }
            let (asset, _) =
                find(&path).unwrap_or_else(|| panic!("{path} is imported, not embedded"));
            assert_eq!(
                asset.content_type, JS,
                "{path}: modules need a JavaScript type"
            );
            let text = std::str::from_utf8(asset.body).expect("utf-8");
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for spec in imports(text) {
                let spec = spec
                    .strip_prefix("./")
                    .expect("imports stay in their folder");
                todo.push(format!("{dir}/{spec}"));
            }
        }
        let modules: Vec<_> = ASSETS
            .iter()
            .filter(|a| a.path.starts_with("js/"))
            .map(|a| a.path.to_owned())
            .collect();
        assert_eq!(
            seen,
            modules.into_iter().collect(),
            "every embedded module is reachable from main.js or tiles.js"
        );
        assert!(seen.len() >= 5, "{seen:?}");
    }

    #[test]
    fn every_file_of_the_static_folder_is_embedded() {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("static dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    let rel = p.strip_prefix(root).expect("under root");
                    out.push(rel.to_str().expect("utf-8 name").to_owned());
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        let mut files = Vec::new();
        walk(&root, &root, &mut files);
        files.sort();
        let mut listed: Vec<_> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        listed.sort();
        assert_eq!(files, listed, "static/ and ASSETS differ");
    }
}
