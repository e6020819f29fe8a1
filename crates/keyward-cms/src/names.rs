//! Names of the CMS option enums: one table per enum gives its `Display` and `FromStr`, so
//! the API, the CLI and error messages use the same words.

/// Implements `Display` (the first name of each variant) and `FromStr` (any of its names,
/// after `normalize`) for an enum, with an error that lists the first names.
macro_rules! names {
    ($ty:ty, $what:literal, normalize = $normalize:expr, [$($value:expr => $name:literal $(| $alias:literal)*),+ $(,)?]) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                $(if *self == $value { return f.write_str($name); })+
                Ok(())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::CmsError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let normalize: fn(&str) -> String = $normalize;
                let wanted = normalize(s);
                $(if wanted == $name $(|| wanted == $alias)* { return Ok($value); })+
                let names: &[&str] = &[$($name),+];
                let list = match names.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                };
                Err($crate::CmsError::InvalidParameter(format!("unknown {} {s:?}; use {list}", $what)))
            }
        }
    };
}

/// The usual normalisation: surrounding space removed, lower case.
pub(crate) fn lower(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}
