//! Enums whose every variant has one explicit code, written once. The code is what is stored,
//! published, hashed into ids and used as a metric label, and it is the enum's serde form: a
//! renamed variant changes nothing downstream, and `Debug` is never a format. Spellings an
//! older build stored are accepted on reading only (`also`).

/// Define an enum with a code per variant: `code()`, `from_code()`, `ALL`, `Display` and serde
/// as the code. A variant may list older spellings after `also`, read but never written.
macro_rules! coded {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $code:literal $(also $($old:literal),+)?
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($code),+].len()] = [$($name::$variant),+];

            /// The variant's code.
            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }

            /// The variant with this code (or an older spelling of it).
            pub fn from_code(code: &str) -> Option<Self> {
                match code {
                    $($code $($(| $old)+)? => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::from_code(&code).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{} must be one of {}",
                        stringify!($name),
                        $name::ALL.iter().map(|v| v.code()).collect::<Vec<_>>().join(", ")
                    ))
                })
            }
        }
    };
}

pub(crate) use coded;

#[cfg(test)]
mod tests {
    coded! {
        /// A test enum.
        pub enum Colour {
            /// Red.
            Red = "RED" also "red",
            /// Dark blue.
            DarkBlue = "DARK_BLUE",
        }
    }

    #[test]
    fn codes_are_the_serde_form_and_old_spellings_still_read() {
        assert_eq!(Colour::DarkBlue.code(), "DARK_BLUE");
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"DARK_BLUE\""
        );
        assert_eq!(
            serde_json::from_str::<Colour>("\"red\"").unwrap(),
            Colour::Red
        );
        let e = serde_json::from_str::<Colour>("\"Red\"").unwrap_err();
        assert!(e.to_string().contains("RED, DARK_BLUE"), "{e}");
        assert_eq!(Colour::ALL.len(), 2);
    }
}
