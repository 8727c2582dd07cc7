//! The library names an option by its field, in backticks (`` `budget` 1: between 2 and … ``);
//! the command line by its flag. This is the one place that maps the one to the other, for every
//! message of the library the command prints.

/// Each library field a message may name, and the flag that sets it.
const FLAGS: &[(&str, &str)] = &[
    ("allow_missing_classes", "--allow-missing-classes"),
    ("alpha", "--alpha"),
    ("attribution", "--attribution"),
    ("backend", "--backend"),
    ("baseline", "--baseline"),
    ("budget", "--budget"),
    ("candidates", "--candidates"),
    ("classes", "--classes"),
    ("cuda_device", "--cuda-device"),
    ("cuda_memory_limit", "--cuda-memory-limit"),
    ("device", "--device"),
    ("estimator", "--estimator"),
    ("factor", "--factor"),
    ("grid", "--grid"),
    ("ipc", "--ipc"),
    ("label_teacher", "--label-teacher"),
    ("maps_from", "--maps-from"),
    ("method", "--method"),
    ("only_recognised", "--only-recognised"),
    ("ort_sessions", "--ort-sessions"),
    ("per_image", "--crops-per-image"),
    ("resume", "--resume"),
    ("score", "--score"),
    ("span", "--crop-span"),
    ("value", "--value"),
];

/// The flag that sets `field`, if the command line has one.
pub fn flag(field: &str) -> Option<&'static str> {
    FLAGS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|&(_, flag)| flag)
}

/// `message` with every field it names as the flag that sets it.
pub fn in_message(message: &str) -> String {
    let mut out = message.to_string();
    for (field, flag) in FLAGS {
        out = out.replace(&format!("`{field}`"), flag);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_mapped_flag_is_a_flag_of_the_command() {
        fn flags(cmd: &clap::Command, out: &mut Vec<String>) {
            out.extend(
                cmd.get_arguments()
                    .filter_map(|a| a.get_long())
                    .map(|l| format!("--{l}")),
            );
            cmd.get_subcommands().for_each(|s| flags(s, out));
        }
        let mut known = Vec::new();
        flags(&super::super::Cli::command(), &mut known);
        for (_, flag) in FLAGS {
            assert!(
                known.iter().any(|k| k == flag),
                "{flag} is no flag of infoutil"
            );
        }
    }

    #[test]
    fn fields_become_flags_and_the_rest_is_kept() {
        assert_eq!(
            in_message("`per_image` 0: between 1 and 64; `ipc` × `factor`² needs `other`"),
            "--crops-per-image 0: between 1 and 64; --ipc × --factor² needs `other`"
        );
    }
}
