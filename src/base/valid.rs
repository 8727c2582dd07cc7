//! Options checked once, where they are made. A [`Valid`] holds options that passed their
//! [`Check`], and can be had no other way (reading one from a file checks it too), so whatever
//! takes one trusts it instead of checking again: the builder style of ripgrep's searchers, where
//! a configuration is validated when it is built, not at each use.

use std::ops::Deref;

/// Options with limits of their own.
pub trait Check {
    type Error;
    /// Why the options cannot be used, if they cannot.
    fn check(&self) -> Result<(), Self::Error>;
}

/// Options that passed their [`Check`].
#[derive(Debug, Clone, PartialEq)]
pub struct Valid<T>(T);

impl<T: Check> Valid<T> {
    /// `options`, checked.
    pub fn new(options: T) -> Result<Self, T::Error> {
        options.check()?;
        Ok(Valid(options))
    }
}

impl<T> Valid<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Valid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Check + Default> Default for Valid<T>
where
    T::Error: std::fmt::Debug,
{
    fn default() -> Self {
        Valid::new(T::default()).expect("the defaults pass their own check")
    }
}

/// Written as the options themselves: a file cannot tell a checked value from another.
impl<T: serde::Serialize> serde::Serialize for Valid<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Read back, then checked: options a file records are refused like options given.
impl<'de, T> serde::Deserialize<'de> for Valid<T>
where
    T: serde::Deserialize<'de> + Check,
    T::Error: std::fmt::Display,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Valid::new(T::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
    struct Positive(i32);

    impl Check for Positive {
        type Error = String;
        fn check(&self) -> Result<(), String> {
            match self.0 >= 0 {
                true => Ok(()),
                false => Err(format!("{} is negative", self.0)),
            }
        }
    }

    #[test]
    fn only_checked_options_are_valid_and_files_are_checked_on_reading() {
        assert_eq!(*Valid::new(Positive(3)).unwrap(), Positive(3));
        assert_eq!(Valid::new(Positive(-1)).unwrap_err(), "-1 is negative");
        let v = Valid::new(Positive(2)).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "2");
        assert!(serde_json::from_str::<Valid<Positive>>("5").is_ok());
        let e = serde_json::from_str::<Valid<Positive>>("-5").unwrap_err();
        assert!(e.to_string().contains("-5 is negative"), "{e}");
    }
}
