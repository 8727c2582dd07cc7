//! The hidden `infoutil options-json`: every subcommand's options as JSON, read from clap's own
//! definition. The Python wrappers (`infoutil.distill(...)` and the others) are generated from
//! it at run time, so the CLI stays the one list of options and the two cannot drift apart.

use clap::{Arg, ArgAction, Command};
use serde_json::{json, Value};

/// `{"distill": {...}, "teacher eval": {...}, ...}`: each leaf subcommand by its words.
pub fn all(root: &Command) -> Value {
    let mut out = serde_json::Map::new();
    collect(root, &mut Vec::new(), &mut out);
    Value::Object(out)
}

fn collect(cmd: &Command, words: &mut Vec<String>, out: &mut serde_json::Map<String, Value>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        words.push(sub.get_name().to_string());
        if sub.has_subcommands() {
            collect(sub, words, out);
        } else {
            let args: Vec<Value> = sub
                .get_arguments()
                .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
                .map(arg)
                .collect();
            let about = sub.get_about().map(|s| s.to_string());
            out.insert(words.join(" "), json!({"about": about, "args": args}));
        }
        words.pop();
    }
}

fn arg(a: &Arg) -> Value {
    let kind = match a.get_action() {
        ArgAction::SetTrue => "flag",
        ArgAction::Append => "list",
        _ if a.get_num_args().is_some_and(|n| n.max_values() > 1) => "list",
        _ => "value",
    };
    let strings = |v: &[clap::builder::OsStr]| -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    };
    json!({
        "name": a.get_id().as_str(),
        "long": a.get_long(),
        "positional": a.is_positional(),
        "required": a.is_required_set(),
        "kind": kind,
        "default": strings(a.get_default_values()),
        "choices": a.get_possible_values().iter().map(|p| p.get_name().to_string()).collect::<Vec<_>>(),
        "help": a.get_help().map(|s| s.to_string()),
    })
}
