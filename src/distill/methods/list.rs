//! The list of methods. It lives apart from the [`Proposal`] trait so that the methods, which
//! import the trait, do not import the list that imports them.

use super::infoutil::InfoUtil;
use super::random::RandomImages;
use super::rded::Rded;
use super::Proposal;
use crate::distill::config::Method;

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
