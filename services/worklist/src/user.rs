//! Who is signed in: the claims of an HMPPS Auth-style token (`user_name`, `name`,
//! `auth_source`, `authorities`, and the organisation claim), turned into a user with one role
//! and one organisation, and what that role may see. A token that gives no role here, or a
//! role from the wrong kind of account, signs nobody in.

use continuity_domain::{LocalAuthorityCode, OrganisationCode};
use serde::{Deserialize, Serialize};

/// The claims the worklist reads from a verified token.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Claims {
    /// The user's log-in name (unique at the issuer).
    pub user_name: String,
    /// The user's display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Which kind of account: `delius` (probation staff), `external`, `azuread`, `nomis`.
    pub auth_source: String,
    /// Roles, `ROLE_*`.
    #[serde(default)]
    pub authorities: Vec<String>,
    /// The user's organisation: a probation service, a treatment provider's code, or, for a
    /// commissioner, the local authority's GSS code.
    #[serde(default)]
    pub organisation: Option<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
}

/// What a user does here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Probation practitioner: their probation service's cases, named by CRN.
    ProbationPractitioner,
    /// Community treatment keyworker: their provider's cases, named by NOMS and NHS number.
    TreatmentKeyworker,
    /// Commissioner: counts for their area, no person-level data.
    Commissioner,
    /// Operator: no personal data at all.
    Operator,
}

/// The role each authority grants, with the account kinds that may hold it. Probation
/// practitioners sign in with nDelius accounts (every Delius user holds `ROLE_PROBATION`).
const ROLES: &[(&str, Role, &[&str])] = &[
    ("ROLE_PROBATION", Role::ProbationPractitioner, &["delius"]),
    (
        "ROLE_CONTINUITY_KEYWORKER",
        Role::TreatmentKeyworker,
        &["external", "azuread"],
    ),
    (
        "ROLE_CONTINUITY_COMMISSIONER",
        Role::Commissioner,
        &["external", "azuread"],
    ),
    (
        "ROLE_CONTINUITY_OPERATOR",
        Role::Operator,
        &["azuread", "external"],
    ),
];

impl Role {
    /// The code written to the audit trail.
    pub fn code(self) -> &'static str {
        match self {
            Role::ProbationPractitioner => "PROBATION_PRACTITIONER",
            Role::TreatmentKeyworker => "TREATMENT_KEYWORKER",
            Role::Commissioner => "COMMISSIONER",
            Role::Operator => "OPERATOR",
        }
    }

    /// How the role reads on a page.
    pub fn label(self) -> &'static str {
        match self {
            Role::ProbationPractitioner => "Probation practitioner",
            Role::TreatmentKeyworker => "Treatment keyworker",
            Role::Commissioner => "Commissioner",
            Role::Operator => "Operator",
        }
    }
}

/// Why a verified token signs nobody in (shown to the user; no claim values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    /// No authority this service knows.
    #[error("your account has no role in this service: ask your service desk for access to the continuity worklist")]
    NoRole,
    /// A role held by the wrong kind of account.
    #[error(
        "your account type cannot use this role here: sign in with your organisation's account"
    )]
    WrongAccount,
    /// No organisation, or one that is not a valid code.
    #[error("your account names no organisation: ask your service desk to set it")]
    NoOrganisation,
}

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Log-in name (written to the audit trail).
    pub user_name: String,
    /// Display name.
    pub name: String,
    /// The role.
    pub role: Role,
    /// The organisation.
    pub organisation: OrganisationCode,
    /// When the token that signed them in expires (seconds since the epoch): the session ends
    /// then.
    pub expires_at: i64,
}

impl User {
    /// The user `claims` describe, if they may use the service.
    pub fn from_claims(claims: &Claims) -> Result<User, NotAllowed> {
        let granted: Vec<&(&str, Role, &[&str])> = ROLES
            .iter()
            .filter(|(authority, _, _)| claims.authorities.iter().any(|a| a == authority))
            .collect();
        if granted.is_empty() {
            return Err(NotAllowed::NoRole);
        }
        let role = granted
            .iter()
            .find(|(_, _, sources)| sources.contains(&claims.auth_source.as_str()))
            .map(|(_, role, _)| *role)
            .ok_or(NotAllowed::WrongAccount)?;
        let organisation = claims
            .organisation
            .as_deref()
            .and_then(|o| OrganisationCode::parse(o).ok())
            .ok_or(NotAllowed::NoOrganisation)?;
        if role == Role::Commissioner && LocalAuthorityCode::parse(organisation.as_str()).is_err() {
            return Err(NotAllowed::NoOrganisation);
        }
        Ok(User {
            user_name: claims.user_name.clone(),
            name: claims
                .name
                .clone()
                .unwrap_or_else(|| claims.user_name.clone()),
            role,
            organisation,
            expires_at: claims.exp,
        })
    }

    /// The cases this user may see person by person; `None` for commissioners and operators.
    pub fn scope(&self) -> Option<Scope> {
        match self.role {
            Role::ProbationPractitioner => Some(Scope::Probation(self.organisation.clone())),
            Role::TreatmentKeyworker => Some(Scope::Provider(self.organisation.clone())),
            Role::Commissioner | Role::Operator => None,
        }
    }

    /// The commissioner's area.
    pub fn area(&self) -> Option<LocalAuthorityCode> {
        (self.role == Role::Commissioner)
            .then(|| LocalAuthorityCode::parse(self.organisation.as_str()).ok())
            .flatten()
    }
}

/// The cases of one organisation: every person-level query is filtered by it in its SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Cases whose treatment provider is this organisation.
    Provider(OrganisationCode),
    /// Cases whose probation service is this organisation.
    Probation(OrganisationCode),
}

impl Scope {
    /// The `cases` column that names the organisation (chosen here, never from input).
    fn column(&self) -> &'static str {
        match self {
            Scope::Provider(_) => "c.provider",
            Scope::Probation(_) => "c.probation_service",
        }
    }

    /// The one predicate of what a user may see, on `cases c`: the organisation's cases
    /// ($1, [`Scope::organisation`]) less those the user ($2, their user name) is restricted
    /// from. Every person-level statement includes it.
    pub fn visible(&self) -> String {
        format!(
            "{} = $1 and not exists (select 1 from case_restrictions x where x.case_id = c.case_id and x.user_name = $2)",
            self.column()
        )
    }

    /// The organisation's code.
    pub fn organisation(&self) -> &str {
        match self {
            Scope::Provider(o) | Scope::Probation(o) => o.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(authorities: &[&str], source: &str, org: Option<&str>) -> Claims {
        Claims {
            user_name: "U1".into(),
            name: None,
            auth_source: source.into(),
            authorities: authorities.iter().map(|a| a.to_string()).collect(),
            organisation: org.map(str::to_owned),
            exp: 0,
        }
    }

    #[test]
    fn roles_come_from_authorities_held_by_the_right_kind_of_account() {
        let u = User::from_claims(&claims(&["ROLE_PROBATION"], "delius", Some("N07"))).unwrap();
        assert_eq!(u.role, Role::ProbationPractitioner);
        assert_eq!(u.scope(), Some(Scope::Probation(u.organisation.clone())));
        assert_eq!(
            User::from_claims(&claims(&["ROLE_PROBATION"], "nomis", Some("N07"))),
            Err(NotAllowed::WrongAccount)
        );
        assert_eq!(
            User::from_claims(&claims(&["ROLE_OTHER"], "delius", Some("N07"))),
            Err(NotAllowed::NoRole)
        );
        assert_eq!(
            User::from_claims(&claims(&["ROLE_CONTINUITY_KEYWORKER"], "external", None)),
            Err(NotAllowed::NoOrganisation)
        );
        assert_eq!(
            User::from_claims(&claims(
                &["ROLE_CONTINUITY_COMMISSIONER"],
                "external",
                Some("PRV001")
            )),
            Err(NotAllowed::NoOrganisation),
            "a commissioner's organisation is their area"
        );
        let c = User::from_claims(&claims(
            &["ROLE_CONTINUITY_COMMISSIONER"],
            "azuread",
            Some("E10000025"),
        ))
        .unwrap();
        assert_eq!(c.scope(), None);
        assert_eq!(c.area().unwrap().as_str(), "E10000025");
    }
}
