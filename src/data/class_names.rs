//! The one rule for datasets that carry class names beside numbered labels (HDF5 `class_names`,
//! CIFAR's `batches.meta.txt` / `fine_label_names.txt`): the names must agree with the teacher's
//! classes of the same numbers, compared as image folders are compared
//! ([`super::folder::match_folders`]: no case, no punctuation). A label is a number, so a file
//! whose names put the classes in another order would train on wrong labels without a word: the
//! run stops instead, naming the first label whose name disagrees.

use std::path::Path;

use crate::error::{Error, Result};

/// The `(name, class)` mapping to record, when every stored name is the teacher's class of the
/// same number; else an error naming the file, the label and both names.
pub fn agree(path: &Path, names: &[String], teacher: &[String]) -> Result<Vec<(String, usize)>> {
    if names.len() > teacher.len() {
        return Err(Error::data(
            path,
            None,
            format!(
                "names {} classes but the teacher has {}: {}",
                names.len(),
                teacher.len(),
                relabel_help()
            ),
        ));
    }
    let found = super::folder::match_folders(names, teacher)
        .map_err(|m| Error::data(path, None, format!("class names: {m}")))?;
    if let Some(label) = (0..names.len()).find(|&l| found[l] != l) {
        return Err(Error::data(
            path,
            None,
            format!(
                "label {label} is named {:?} in the file but the teacher's class {label} is {:?} \
                 ({:?} is its class {}): {}",
                names[label],
                teacher[label],
                names[label],
                found[label],
                relabel_help()
            ),
        ));
    }
    Ok(names.iter().cloned().zip(0..).collect())
}

fn relabel_help() -> &'static str {
    "labels are stored by number, so they would mean other classes; relabel the data in the \
     teacher's order or use a teacher trained on these classes"
}
