//! `infoutil inspect`: a readable summary of any file the tool wrote.

use std::fmt::Write;
use std::path::Path;

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
        if name == "config" {
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

fn walk(group: &hdf5::Group, depth: usize, out: &mut String) -> hdf5::Result<()> {
    let pad = "  ".repeat(depth);
    let mut names = group.member_names()?;
    names.sort();
    for name in names {
        if let Ok(ds) = group.dataset(&name) {
            let dtype = ds
                .dtype()?
                .to_descriptor()
                .map(|d| d.to_string())
                .unwrap_or_else(|_| "?".into());
            let layout = read_attr(&ds, "layout").unwrap_or_default();
            let desc = read_attr(&ds, "description").unwrap_or_default();
            let _ = writeln!(
                out,
                "{pad}{name}  {dtype} {:?} [{layout}]  {desc}",
                ds.shape()
            );
        } else if let Ok(sub) = group.group(&name) {
            let _ = writeln!(out, "{pad}{name}/");
            let mut attrs = sub.attr_names()?;
            attrs.sort();
            for a in attrs {
                let v = read_attr(&sub, &a).unwrap_or_else(|_| "<not a string>".into());
                let _ = writeln!(out, "{pad}  @{a}: {v}");
            }
            walk(&sub, depth + 1, out)?;
        }
    }
    Ok(())
}
