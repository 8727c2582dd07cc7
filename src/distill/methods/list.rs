//! The list of methods. It lives apart from the [`Proposal`] trait so that the methods, which
//! import the trait, do not import the list that imports them.

use super::infoutil::InfoUtil;
use super::random::RandomImages;
use super::rded::Rded;
use super::Proposal;
use crate::base::valid::Check;
use crate::distill::config::{DistillConfig, Method};
use crate::error::{Error, Result};

impl Method {
    /// The registry.
    pub(in crate::distill) fn proposal(self) -> &'static dyn Proposal {
        match self {
            Method::Infoutil => &InfoUtil,
            Method::Rded => &Rded,
            Method::Random => &RandomImages,
        }
    }
}

/// Options checked once, where they are made: a run takes only checked ones
/// ([`crate::base::valid::Valid`]). Here, beside the list, because the method has its say.
impl Check for DistillConfig {
    type Error = Error;

    /// Every option's limits and their combinations, the method's own included, before any image
    /// is read.
    fn check(&self) -> Result<()> {
        self.limits()?;
        let method = self.method.proposal();
        if self.only_recognised && !method.filters_recognised() {
            return Err(Error::Config(
                "`only_recognised` filters InfoUtil's crops: use it with `method` infoutil".into(),
            ));
        }
        method.check(self)
    }
}
