//! What every validated text newtype (organisation codes, person identifiers) has in common:
//! its text by `as_str`, `Display` of it, and `FromStr` through its own `parse`. Each kind adds
//! what differs (serde for codes; a `Debug` that hides the value for identifiers).

/// The common impls of the newtype `$name(String)` whose `parse` fails with `$error`.
macro_rules! text_newtype {
    ($name:ident, $error:ty) => {
        impl $name {
            /// The text, in its canonical form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

pub(crate) use text_newtype;
