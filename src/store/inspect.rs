//! `infoutil inspect`: a readable summary of any file the tool wrote.

use std::fmt::Write;
use std::path::Path;

use super::schema::attr;
use super::{err, open, read_attr};
use crate::error::Result;

/// Root attributes (the config pretty-printed), then every group and dataset with its shape,
/// type, layout and description.
pub fn summary(path: &Path) -> Result<String> {
    let file = open(path)?;
    let mut out = String::new();
    let _ = writeln!(out, "{}", path.display());
    let mut names = file.attr_names().map_err(|e| err(path, e))?;
    names.sort();
    for name in names {
        let value = read_attr(&file, &name).unwrap_or_else(|_| "<not a string>".into());
        if name == attr::CONFIG {
            let pretty = serde_json::from_str::<serde_json::Value>(&value)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or(value);
            let _ = writeln!(out, "  @{name}:\n    {}", pretty.replace('\n', "\n    "));
        } else {
            let _ = writeln!(out, "  @{name}: {value}");
        }
    }
    walk(&file, 1, &mut out).map_err(|e| err(path, e))?;
    Ok(out)
}

/// Groups already printed, by their address in the file: a hard link back to one of them (a
/// cycle, or an object linked twice) is named instead of walked again.
type Seen = Vec<hdf5::LocationToken>;

fn walk(group: &hdf5::Group, depth: usize, out: &mut String) -> hdf5::Result<()> {
    let mut seen = vec![group.loc_info()?.token];
    walk_group(group, depth, &mut seen, out)
}

fn walk_group(
    group: &hdf5::Group,
    depth: usize,
    seen: &mut Seen,
    out: &mut String,
) -> hdf5::Result<()> {
    let pad = "  ".repeat(depth);
    let mut links = Vec::new();
    group.iter_visit_default(|name, info| {
        links.push((name.to_owned(), info.link_type));
        Ok(())
    })?;
    links.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in links {
        // Soft and external links are printed, never followed: they may point anywhere, into
        // another file or back up the tree.
        match kind {
            hdf5::LinkType::Soft => {
                let _ = writeln!(out, "{pad}{name}  (soft link, not followed)");
                continue;
            }
            hdf5::LinkType::External => {
                let _ = writeln!(
                    out,
                    "{pad}{name}  (external link to another file, not followed)"
                );
                continue;
            }
            hdf5::LinkType::Hard => {}
        }
        if let Ok(ds) = group.dataset(&name) {
            dataset_line(&ds, &name, &pad, out)?;
        } else if let Ok(sub) = group.group(&name) {
            let token = sub.loc_info()?.token;
            if seen.contains(&token) {
                let _ = writeln!(out, "{pad}{name}/  (hard link to a group shown above)");
                continue;
            }
            seen.push(token);
            let _ = writeln!(out, "{pad}{name}/");
            let mut attrs = sub.attr_names()?;
            attrs.sort();
            for a in attrs {
                let v = read_attr(&sub, &a).unwrap_or_else(|_| "<not a string>".into());
                let _ = writeln!(out, "{pad}  @{a}: {v}");
            }
            walk_group(&sub, depth + 1, seen, out)?;
        }
    }
    Ok(())
}

fn dataset_line(ds: &hdf5::Dataset, name: &str, pad: &str, out: &mut String) -> hdf5::Result<()> {
    let dtype = ds
        .dtype()?
        .to_descriptor()
        .map(|d| d.to_string())
        .unwrap_or_else(|_| "?".into());
    let layout = read_attr(ds, attr::LAYOUT).unwrap_or_default();
    let desc = read_attr(ds, attr::DESCRIPTION).unwrap_or_default();
    let _ = writeln!(
        out,
        "{pad}{name}  {dtype} {:?} [{layout}]  {desc}",
        ds.shape()
    );
    Ok(())
}
