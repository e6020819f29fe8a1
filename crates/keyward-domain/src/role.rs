//! Roles and the permission table.
//!
//! [`authorize`] is the single place that decides whether a role may perform an
//! [`Action`] on an entry with a given [`Owner`]. It is a table, and the tests below read
//! it as one. Further rules that depend on an entry's state (for example that the
//! platform role may only *stage* versions) live in [`crate::entry`].

use std::fmt;
use std::str::FromStr;

use crate::Owner;
use crate::error::DomainError;

/// A caller's role, from its bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads entries and downloads public material.
    Viewer,
    /// Owns flows; for the keystore, the same rights as a viewer.
    Developer,
    /// The tenant administrator: everything, including private-key export.
    Admin,
    /// The platform operator: stages new versions of platform-owned entries.
    Platform,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Developer, Role::Admin, Role::Platform];

    /// The role's name as used on the command line, in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
            Role::Platform => "platform",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; expected viewer, developer, admin or platform"))
    }
}

/// Who is acting: a token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's name, recorded in the audit log and in `created_by`.
    pub name: String,
    /// The token's role.
    pub role: Role,
}

impl Actor {
    /// An actor with a name and a role.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self { name: name.into(), role }
    }
}

/// Something a caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List entries, show one, show its history.
    Read,
    /// Download certificates and chains.
    DownloadPublic,
    /// Export a private key (PKCS#12).
    ExportPrivateKey,
    /// Use a private key without changing anything (a certificate signing request).
    CreateRequest,
    /// Create an entry or add a version to one (generate, import, CA response).
    AddVersion,
    /// Make a staged version active.
    Activate,
    /// Move a retired version back to staged.
    Restore,
    /// Delete an entry with all its versions.
    Delete,
    /// Create API tokens.
    ManageTokens,
    /// Read and verify the audit log.
    ReadAudit,
    /// Sign a message with a key pair's active version.
    Sign,
    /// Decrypt a message with any valid key.
    Decrypt,
    /// Verify a signed message.
    Verify,
    /// Encrypt a message to certificates.
    Encrypt,
    /// Change keystore-wide settings (the retention of retired keys).
    Configure,
    /// Deploy, undeploy, stop, start and restart integration flows.
    ManageFlows,
    /// Declare and change partners.
    ManagePartners,
    /// Start, abort and schedule renewals (steps are confirmed by their actor's role).
    ManageRenewals,
}

impl Action {
    /// The action in words, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Read => "read entries",
            Action::DownloadPublic => "download public material",
            Action::ExportPrivateKey => "export private keys",
            Action::CreateRequest => "create certificate signing requests",
            Action::AddVersion => "add versions",
            Action::Activate => "activate versions",
            Action::Restore => "restore versions",
            Action::Delete => "delete entries",
            Action::ManageTokens => "manage tokens",
            Action::ReadAudit => "read the audit log",
            Action::Sign => "sign messages",
            Action::Decrypt => "decrypt messages",
            Action::Verify => "verify messages",
            Action::Encrypt => "encrypt messages",
            Action::Configure => "change keystore settings",
            Action::ManageFlows => "deploy and operate flows",
            Action::ManagePartners => "declare and change partners",
            Action::ManageRenewals => "start, abort and schedule renewals",
        }
    }
}

/// Decides whether `role` may perform `action` on an entry owned by `owner`.
///
/// `owner` is `None` for actions not tied to an existing entry (creating a new entry,
/// managing tokens, reading the audit log).
///
/// # Errors
/// [`DomainError::Forbidden`] with the reason.
pub fn authorize(role: Role, action: Action, owner: Option<Owner>) -> Result<(), DomainError> {
    use Action::*;
    let forbid = |reason: &'static str| {
        Err(DomainError::Forbidden { role, action: action.describe(), reason })
    };
    match (role, action) {
        (_, Read | DownloadPublic | Verify | Encrypt) => Ok(()),
        (Role::Developer, Sign | Decrypt | ManageFlows) => Ok(()),
        (Role::Admin, AddVersion | Delete) if owner == Some(Owner::Platform) => {
            forbid("a tenant role cannot change a platform-owned entry's material")
        }
        (Role::Admin, _) => Ok(()),
        (Role::Platform, AddVersion | CreateRequest) if owner != Some(Owner::Tenant) => Ok(()),
        (Role::Platform, AddVersion | CreateRequest) => {
            forbid("the platform role may only work on platform-owned entries")
        }
        (Role::Platform, Activate | Restore) => {
            forbid("only the tenant administrator activates; the platform role stages versions")
        }
        (Role::Platform, _) => forbid("the platform role may only stage versions of platform-owned entries"),
        (Role::Viewer | Role::Developer, _) => {
            forbid("this role may only read entries, download public material, verify and encrypt (developers also sign, decrypt and operate flows)")
        }
    }
}

/// Decides whether a caller with role `creator` may issue (or revoke) a token with role
/// `new_role`.
///
/// A tenant administrator issues viewer, developer and admin tokens, but not platform
/// tokens: with one, a tenant could change platform-owned material after all. Platform
/// tokens are issued by the platform operator: by a platform token, or on the server with
/// `keyward token issue`.
///
/// # Errors
/// [`DomainError::Forbidden`] with the reason.
pub fn authorize_token(creator: Role, new_role: Role) -> Result<(), DomainError> {
    let forbid = |reason: &'static str| {
        Err(DomainError::Forbidden { role: creator, action: Action::ManageTokens.describe(), reason })
    };
    match (creator, new_role) {
        (Role::Admin, Role::Platform) => forbid(
            "a tenant administrator cannot issue or revoke platform tokens; the platform operator does \
             (keyward token issue on the server)",
        ),
        (Role::Admin, _) | (Role::Platform, Role::Platform) => Ok(()),
        (Role::Platform, _) => forbid("the platform role issues only platform tokens"),
        (Role::Viewer | Role::Developer, _) => forbid("only administrators issue tokens"),
    }
}

/// Checks that `role` may perform `action` on at least one kind of entry.
///
/// Called before an entry is read, so that a role that may never do something is refused
/// without learning whether the entry exists; [`authorize`] with the entry's owner follows.
///
/// # Errors
/// [`DomainError::Forbidden`] with the reason for the owner-independent refusal.
pub fn authorize_some_owner(role: Role, action: Action) -> Result<(), DomainError> {
    [Some(Owner::Tenant), Some(Owner::Platform), None]
        .into_iter()
        .map(|owner| authorize(role, action, owner))
        .find(Result::is_ok)
        .unwrap_or_else(|| authorize(role, action, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    const ACTIONS: [Action; 18] = [
        Read, DownloadPublic, ExportPrivateKey, CreateRequest, AddVersion, Activate, Restore,
        Delete, ManageTokens, ReadAudit, Sign, Decrypt, Verify, Encrypt, Configure, ManageFlows,
        ManagePartners, ManageRenewals,
    ];

    /// Expected outcome per (role, action) for a tenant-owned entry, for a platform-owned
    /// entry and for no entry: `T`, `P`, `N` mark where it is allowed.
    fn expected(role: Role, action: Action) -> &'static str {
        match (role, action) {
            (_, Read | DownloadPublic | Verify | Encrypt) => "TPN",
            (Role::Developer, Sign | Decrypt | ManageFlows) => "TPN",
            (Role::Admin, AddVersion | Delete) => "TN",
            (Role::Admin, _) => "TPN",
            (Role::Platform, AddVersion | CreateRequest) => "PN",
            _ => "",
        }
    }

    #[test]
    fn permission_table() {
        for role in Role::ALL {
            for action in ACTIONS {
                let allowed = expected(role, action);
                for (mark, owner) in [('T', Some(Owner::Tenant)), ('P', Some(Owner::Platform)), ('N', None)] {
                    let got = authorize(role, action, owner).is_ok();
                    assert_eq!(
                        got,
                        allowed.contains(mark),
                        "{role} {action:?} owner {owner:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        let err = authorize(Role::Admin, AddVersion, Some(Owner::Platform)).unwrap_err();
        assert!(err.to_string().contains("platform-owned"), "{err}");
        let err = authorize(Role::Platform, Activate, Some(Owner::Platform)).unwrap_err();
        assert!(err.to_string().contains("only the tenant administrator activates"), "{err}");
        let err = authorize(Role::Viewer, ExportPrivateKey, Some(Owner::Tenant)).unwrap_err();
        assert!(err.to_string().starts_with("role viewer may not export private keys"), "{err}");
    }

    #[test]
    fn some_owner_means_any_column_of_the_table() {
        for role in Role::ALL {
            for action in ACTIONS {
                assert_eq!(
                    authorize_some_owner(role, action).is_ok(),
                    !expected(role, action).is_empty(),
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn token_issuing_table() {
        use Role::*;
        // (creator, new role, allowed)
        let cases = [
            (Admin, Viewer, true),
            (Admin, Developer, true),
            (Admin, Admin, true),
            (Admin, Platform, false),
            (Platform, Platform, true),
            (Platform, Admin, false),
            (Platform, Viewer, false),
            (Viewer, Viewer, false),
            (Developer, Developer, false),
            (Developer, Admin, false),
        ];
        for (creator, new_role, allowed) in cases {
            assert_eq!(authorize_token(creator, new_role).is_ok(), allowed, "{creator} issuing {new_role}");
        }
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
