//! The list of methods. It lives apart from the [`Proposal`] trait so that the methods, which
//! import the trait, do not import the list that imports them.

use super::infoutil::InfoUtil;
use super::random::RandomImages;
use super::rded::Rded;
use std::collections::BTreeSet;

use super::Proposal;
use crate::base::valid::Check;
use crate::distill::config::{value_name, DistillConfig, Method, Opt};
use crate::error::{Error, Result};
use crate::informativeness::Attribution;

impl Method {
    /// The registry.
    pub(in crate::distill) fn proposal(self) -> &'static dyn Proposal {
        match self {
            Method::Infoutil => &InfoUtil,
            Method::Rded => &Rded,
            Method::Random => &RandomImages,
        }
    }

    /// The options this method reads with `attribution`, as the method declares them.
    pub fn reads(self, attribution: Attribution) -> Vec<Opt> {
        self.proposal().reads(attribution)
    }
}

impl DistillConfig {
    /// Refuses the options of `given` that the method's declaration ([`Method::reads`]) lacks,
    /// naming each with its value, what does not read it and what would: runs that differ only
    /// in such an option would have the same bytes but another run identity (`run_identity`),
    /// and so would not merge or resume, and a user who gave it expects it to do something.
    pub(in crate::distill) fn refuse_unread(&self, given: &BTreeSet<Opt>) -> Result<()> {
        let reads = self.method.reads(self.attribution);
        let unread: Vec<Opt> = given
            .iter()
            .copied()
            .filter(|o| !reads.contains(o))
            .collect();
        if unread.is_empty() {
            return Ok(());
        }
        // InfoUtil reads every option but the Shapley ones Grad-CAM lacks.
        let (what, by) = match self.method {
            Method::Infoutil => (
                format!("`attribution` {}", self.attribution.name()),
                "`attribution` shapley".to_string(),
            ),
            m => (format!("`method` {}", value_name(m)), readers(&unread)),
        };
        let shown: Vec<String> = unread.iter().map(|o| o.shown(self)).collect();
        let (it, n) = match unread.len() {
            1 => ("it", "an option"),
            _ => ("them", "options"),
        };
        Err(Error::Config(format!(
            "{}: {what} does not use {it} (used by {by}): leave {it} out, since runs that \
             differ only in {n} that changes nothing would not merge or resume",
            shown.join(", ")
        )))
    }
}

/// "`method` infoutil or rded": the methods that read any of `options`.
fn readers(options: &[Opt]) -> String {
    let names: Vec<String> = Method::ALL
        .into_iter()
        .filter(|m| {
            let reads = m.reads(Attribution::Shapley);
            options.iter().any(|o| reads.contains(o))
        })
        .map(value_name)
        .collect();
    format!("`method` {}", names.join(" or "))
}

/// Options checked once, where they are made: a run takes only checked ones
/// ([`crate::base::valid::Valid`]). Here, beside the list, because the method has its say.
impl Check for DistillConfig {
    type Error = Error;

    /// Every option's limits and their combinations, the method's own included, before any image
    /// is read.
    fn check(&self) -> Result<()> {
        self.limits()?;
        self.refuse_unread(&self.given())?;
        self.method.proposal().check(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::base::valid::Valid;
    use crate::informativeness::attribute::Shapley;
    use crate::informativeness::CropRule;
    use crate::utility::Score;
    use proptest::prelude::*;

    const METHODS: [Method; 3] = Method::ALL;
    const ATTRIBUTIONS: [Attribution; 2] = [Attribution::Shapley, Attribution::GradCam];

    /// Every option at its default, `given` marked as the user gave it.
    fn config(method: Method, attribution: Attribution, given: BTreeSet<Opt>) -> DistillConfig {
        DistillConfig {
            method,
            ipc: 1,
            factor: 1,
            candidates: 300,
            attribution,
            shapley: Shapley::default(),
            crops: CropRule::default(),
            score: Score::GradNorm,
            only_recognised: false,
            seed: 0,
            skip_bad: false,
            classes: None,
            given,
        }
    }

    /// What does not read an option, as the refusal names it.
    fn reader(method: Method, attribution: Attribution) -> String {
        match method {
            Method::Infoutil => format!("`attribution` {}", attribution.name()),
            m => format!("`method` {}", value_name(m)),
        }
    }

    #[test]
    fn each_method_refuses_every_given_option_it_does_not_read_naming_both() {
        let mut refused = 0;
        for (method, attribution) in METHODS.iter().flat_map(|m| ATTRIBUTIONS.map(|a| (*m, a))) {
            let reads = method.reads(attribution);
            for opt in Opt::ALL {
                let cfg = config(method, attribution, BTreeSet::from([opt]));
                let got = Valid::new(cfg);
                if reads.contains(&opt) {
                    assert!(
                        got.is_ok(),
                        "{method:?}/{attribution:?} reads {opt:?}: {got:?}"
                    );
                    continue;
                }
                refused += 1;
                let e = got.expect_err("unread").to_string();
                let want = [format!("`{}`", opt.field()), reader(method, attribution)];
                assert!(want.iter().all(|w| e.contains(w)), "{opt:?}: {e}");
            }
        }
        // Random reads none of the 13 (twice, one per attribution), RDED 2, InfoUtil with
        // Grad-CAM all but 4 Shapley options.
        assert_eq!(refused, 2 * 13 + 2 * 11 + 4);
    }

    #[test]
    fn infoutil_reads_every_option_and_each_option_is_read_by_some_method() {
        let all: BTreeSet<Opt> = Opt::ALL.into_iter().collect();
        let paper: BTreeSet<Opt> = Method::Infoutil
            .reads(Attribution::Shapley)
            .into_iter()
            .collect();
        assert_eq!(
            paper, all,
            "an option no method reads should not be an option"
        );
        let fields: BTreeSet<&str> = Opt::ALL.iter().map(|o| o.field()).collect();
        assert_eq!(fields.len(), Opt::ALL.len(), "two options name one field");
    }

    #[test]
    fn a_flag_that_is_on_is_given_and_a_config_from_a_file_gives_nothing_else() {
        let mut cfg = config(Method::Rded, Attribution::Shapley, BTreeSet::new());
        assert!(Valid::new(cfg.clone()).is_ok());
        cfg.only_recognised = true;
        let e = Valid::new(cfg.clone()).expect_err("a flag on").to_string();
        assert!(
            e.contains("`only_recognised`: `method` rded does not use it"),
            "{e}"
        );
        // Values read back from a file are not "given": old files with any value still load.
        cfg.only_recognised = false;
        cfg.candidates = 7;
        cfg.crops.alpha = 0.5;
        let back: Valid<DistillConfig> =
            serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
        assert!(back.given().is_empty() && back.candidates == 7);
    }

    proptest! {
        /// Over any set of given options: a config is refused exactly when the set holds an
        /// option the method's declaration lacks, and the refusal names those and only those.
        #[test]
        fn refusal_is_exactly_the_given_options_outside_the_declaration(
            mask in 0u16..(1 << 13),
            m in 0usize..3,
            a in 0usize..2,
        ) {
            let (method, attribution) = (METHODS[m], ATTRIBUTIONS[a]);
            let given: BTreeSet<Opt> =
                Opt::ALL.into_iter().enumerate().filter(|(k, _)| mask & (1 << k) != 0).map(|(_, o)| o).collect();
            let reads = method.reads(attribution);
            let unread: Vec<Opt> = given.iter().copied().filter(|o| !reads.contains(o)).collect();
            let got = Valid::new(config(method, attribution, given.clone()));
            prop_assert_eq!(got.is_ok(), unread.is_empty());
            if let Err(e) = got {
                let e = e.to_string();
                let named = e.split(": ").next().unwrap_or_default();
                for o in Opt::ALL {
                    let said = named.contains(&format!("`{}`", o.field()));
                    prop_assert_eq!(said, unread.contains(&o), "{:?} in {}", o, e);
                }
            }
        }
    }
}
