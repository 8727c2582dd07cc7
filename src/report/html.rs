//! The pieces every page is made of: escaping, the page frame with its style sheet, tables.
//! Plain HTML and CSS: a page opens from disk in any browser, with no script and no server.

use std::fmt::Write;

use serde_json::Value;

/// `text` safe inside an element or a quoted attribute: every string read from a file (class
/// names, paths, options) goes through here before it reaches a page.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:15px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;background:#fafafa}
header,main,footer{padding:0 24px}
header{background:#263238;color:#fff;padding:12px 24px}
header a{color:#b3e5fc}
h1{font-size:22px;margin:4px 0}
h2{font-size:19px;margin:28px 0 6px;border-bottom:2px solid #263238}
h3{font-size:15px;margin:14px 0 4px;color:#444}
nav.pages{margin:10px 0}
nav.pages a{margin-right:8px}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#eceff1}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:6px 10px;margin:8px 0}
.legend span{display:inline-block;padding:0 6px;margin-right:6px;border-radius:3px}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start;margin:10px 0;padding:10px;background:#fff;border:1px solid #ddd;border-radius:6px}
figure{margin:0;display:inline-block;vertical-align:top}
figure.distilled{border-right:2px solid #cfd8dc;padding-right:14px}
figure.distilled img{outline:3px solid #263238}
figcaption{font-size:13px;max-width:300px}
.tile{display:flex;gap:6px;align-items:flex-start}
.tile dl{font-size:13px;margin:0;max-width:200px}
.tile dt{font-weight:600;float:left;clear:left;margin-right:4px}
.tile dd{margin:0}

img{image-rendering:pixelated}
.kept{color:#1b5e20;font-weight:600}
.cls{font-weight:600}
.index{display:flex;flex-wrap:wrap;gap:8px}
.index a{display:inline-flex;flex-direction:column;align-items:center;width:96px;font-size:12px;text-decoration:none;color:#222;text-align:center;word-break:break-word}
.index img{width:72px;height:72px;object-fit:contain;background:#000}
.cm td{text-align:right;padding:1px 4px;font-size:12px}
";

/// A whole page: `title` (escaped here), an optional navigation line, then `body` (already
/// HTML).
pub fn page(title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"generator\" content=\"{GENERATOR}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>{STYLE}</style></head>\n<body><header><h1>{t}</h1>{nav}</header>\n\
         <main>\n{body}\n</main><footer><p>Written by {GENERATOR} {}.</p></footer></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        t = esc(title),
    )
}

/// The `generator` of every page: how a folder is recognised as a report to replace.
pub const GENERATOR: &str = "infoutil report";

/// A two-column table of (name, value) pairs, both escaped.
pub fn pairs<K: AsRef<str>, V: AsRef<str>>(rows: &[(K, V)]) -> String {
    let mut out = String::from("<table>");
    for (k, v) in rows {
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(k.as_ref()),
            esc(v.as_ref())
        );
    }
    out.push_str("</table>");
    out
}

/// An `<img>` of a picture written into the report folder (`src` a generated relative name).
pub fn img(src: &str, (w, h): (u32, u32), class: &str, alt: &str) -> String {
    format!(
        "<img src=\"{}\" width=\"{w}\" height=\"{h}\" class=\"{class}\" alt=\"{}\">",
        esc(src),
        esc(alt)
    )
}

/// A number for people: 4 significant figures.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        let digits = (3 - v.abs().log10().floor().max(0.0) as i32).max(0) as usize;
        format!("{v:.digits$}")
    }
}

pub fn page_name(p: usize) -> String {
    format!("page-{:04}.html", p + 1)
}

/// The name of class `c`, or `class c` where the file names none.
pub fn class_name(names: &[String], c: usize) -> String {
    names
        .get(c)
        .cloned()
        .unwrap_or_else(|| format!("class {c}"))
}

/// The `k` most probable classes of `p` as "name 0.91, …".
pub fn top_classes(p: &[f64], names: &[String], k: usize) -> String {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    order
        .iter()
        .take(k)
        .map(|&c| format!("{} {:.2}", class_name(names, c), p[c]))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn nav(current: usize, pages: usize) -> String {
    let mut out = String::from("<nav class=\"pages\"><a href=\"index.html\">index</a>");
    if current != usize::MAX {
        if current > 0 {
            let _ = write!(out, "<a href=\"{}\">← previous</a>", page_name(current - 1));
        }
        if current + 1 < pages {
            let _ = write!(out, "<a href=\"{}\">next →</a>", page_name(current + 1));
        }
        let _ = write!(out, "page {} of {pages}", current + 1);
    } else if pages > 0 {
        let _ = write!(
            out,
            "<a href=\"{}\">first page →</a> {pages} pages",
            page_name(0)
        );
    }
    out.push_str("</nav>");
    out
}

/// Config entries as (dotted name, value) pairs, objects flattened.
pub fn flatten(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &key, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_strings_is_escaped() {
        assert_eq!(
            esc("<img src=x onerror='a'>&\"b\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;b&quot;"
        );
        let p = page("<b>", "", "");
        assert!(p.contains("<title>&lt;b&gt;</title>") && !p.contains("<title><b>"));
    }

    #[test]
    fn numbers_keep_four_significant_figures() {
        assert_eq!(num(1.23456), "1.235");
        assert_eq!(num(123.456), "123.5");
        assert_eq!(num(0.0), "0.000");
        assert_eq!(num(2.5e-5), "2.500e-5");
    }
}
