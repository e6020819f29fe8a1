//! The renewal procedures, as data: one table of steps per procedure variant, each table
//! next to the seed document it comes from.
//!
//! A [`VariantDef`] lists its [`StepDef`]s in order. Each step has an actor (the tenant
//! administrator, the integration developer, or the administrator of every affected
//! partner) and a kind:
//! - [`StepKind::Task`]: keyward does it (create a key pair, activate, stop flows, …);
//! - [`StepKind::Notify`]: one of the seeds' "informs" steps, recorded as a notification
//!   to the next actor;
//! - [`StepKind::Confirm`]: someone with the actor's role says it is done;
//! - [`StepKind::Input`]: a confirmation that brings a file keyward imports (a CA's
//!   response, a partner's new certificate);
//! - [`StepKind::Probe`]: keyward checks it against the partner (a TLS handshake with the
//!   staged key, or a test message signed with the new key or encrypted to it, posted to
//!   the partner's declared URL), and stops the renewal when the check fails;
//! - [`StepKind::Window`]: the downtime window, set with `renew schedule-downtime`.
//!
//! Steps marked `in_window` wait until the downtime window opens. The engine that runs
//! these tables (in the runtime crate) is generic: nothing here names a flow or a key.
//!
//! keyward departs from the seeds where they describe what keyward does by itself: nodes
//! pick up a new key without a restart, so "restart the flow on every node" is a task
//! keyward performs (it drains pooled connections) rather than a request to a developer,
//! and each partner update that a TLS handshake can check is checked before activation.

use std::fmt;
use std::str::FromStr;

use crate::partner::{Capabilities, Capability};

/// A renewal procedure: what is renewed and where it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Procedure {
    /// Seed 001: the tenant's client certificate, renewed with a new key pair signed by a
    /// new CA.
    ClientCertificate,
    /// Seed 002: a key pair that signs outbound CMS/PKCS#7 messages.
    CmsSigner,
    /// Seed 003: a partner's certificate that outbound messages are encrypted to; the
    /// partner renews its key.
    PartnerEncryption,
    /// Seed 004: a key pair that signs the responses to a sender's requests.
    ResponseSigning,
    /// Seed 000: a platform-provisioned key waiting for activation.
    PlatformKey,
}

impl Procedure {
    /// Every procedure, in a stable order.
    pub const ALL: [Procedure; 5] = [
        Procedure::ClientCertificate,
        Procedure::CmsSigner,
        Procedure::PartnerEncryption,
        Procedure::ResponseSigning,
        Procedure::PlatformKey,
    ];

    /// The name used on the command line, in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Procedure::ClientCertificate => "client-certificate",
            Procedure::CmsSigner => "cms-signer",
            Procedure::PartnerEncryption => "partner-encryption",
            Procedure::ResponseSigning => "response-signing",
            Procedure::PlatformKey => "platform-key",
        }
    }

    /// The procedure in words.
    pub fn title(self) -> &'static str {
        match self {
            Procedure::ClientCertificate => "tenant client certificate with a new CA",
            Procedure::CmsSigner => "CMS/PKCS#7 outbound signer",
            Procedure::PartnerEncryption => "outbound encryption, partner renews its key",
            Procedure::ResponseSigning => "inbound response signing",
            Procedure::PlatformKey => "platform-key activation",
        }
    }

    /// The variants, from the least to the most restrictive: the first whose
    /// requirements every affected partner meets applies.
    pub fn variants(self) -> &'static [VariantDef] {
        match self {
            Procedure::ClientCertificate => CLIENT_CERTIFICATE,
            Procedure::CmsSigner => CMS_SIGNER,
            Procedure::PartnerEncryption => PARTNER_ENCRYPTION,
            Procedure::ResponseSigning => RESPONSE_SIGNING,
            Procedure::PlatformKey => PLATFORM_KEY,
        }
    }

    /// The variant named `name`.
    ///
    /// # Errors
    /// An unknown name, with the names there are.
    pub fn variant(self, name: &str) -> Result<&'static VariantDef, String> {
        self.variants().iter().find(|v| v.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.variants().iter().map(|v| v.name).collect();
            format!("procedure {self} has no variant {name:?}; it has {}", names.join(", "))
        })
    }
}

impl fmt::Display for Procedure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Procedure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Procedure::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Procedure::ALL.iter().map(|p| p.as_str()).collect();
            format!("unknown procedure {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// Who performs a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepActor {
    /// The tenant administrator (role `admin`).
    Admin,
    /// The integration developer (role `developer`; administrators may act too).
    Developer,
    /// The administrator of each affected partner: the step is repeated per partner.
    Partner,
}

impl StepActor {
    /// The actor's name in listings and `renew tasks --role`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepActor::Admin => "admin",
            StepActor::Developer => "developer",
            StepActor::Partner => "partner",
        }
    }
}

impl fmt::Display for StepActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What keyward does in an automated step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Generate a new key pair as a staged version of the alias (same algorithm and
    /// subject), with a certificate signing request for the new CA.
    StageKeyPair,
    /// Activate the staged version: the active one retires.
    Activate,
    /// Generate a key pair under a temporary second alias (`ALIAS.next`).
    CreateTemporaryAlias,
    /// Add the temporary alias to every signer step that signs with the alias (same
    /// parameters), on every node.
    AddTemporarySigner,
    /// Make the temporary alias's key the alias's active version.
    AdoptTemporaryKey,
    /// Remove the temporary alias from the signer steps again.
    RemoveTemporarySigner,
    /// Delete the temporary alias entry (its key lives on as the alias's active version).
    DeleteTemporaryAlias,
    /// Generate a key pair under the signer step's second alias, which has no key yet:
    /// from then on messages carry two signatures.
    CreateSecondAliasKey,
    /// Retire the alias's active version without a successor: the second alias signs
    /// alone.
    RetireAlias,
    /// Stop the affected flows on every node (senders get 503 with Retry-After).
    StopFlows,
    /// Start the affected flows again on every node.
    StartFlows,
    /// Restart the affected flows on every node: pooled connections drain.
    RestartFlows,
    /// Undeploy the affected flows; their definitions are kept with the renewal.
    UndeployFlows,
    /// Deploy the kept definitions again.
    RedeployFlows,
    /// Check that no message signed with the old key waits anywhere in keyward.
    DrainCheck,
    /// Schedule the removal of the old key no earlier than 90 days after the exchange.
    ScheduleOldKeyRemoval,
}

impl Task {
    /// What the task does, in words, for listings.
    pub fn describe(self) -> &'static str {
        match self {
            Task::StageKeyPair => "generate a new key pair as a staged version, with a CSR",
            Task::Activate => "activate the staged version (the active one retires)",
            Task::CreateTemporaryAlias => "generate the new key pair under a temporary alias",
            Task::AddTemporarySigner => "add the temporary alias to the signer steps on all nodes",
            Task::AdoptTemporaryKey => "make the temporary alias's key the alias's active version",
            Task::RemoveTemporarySigner => "remove the temporary alias from the signer steps",
            Task::DeleteTemporaryAlias => "delete the temporary alias",
            Task::CreateSecondAliasKey => "generate the new key pair under the signer step's second alias",
            Task::RetireAlias => "retire the old key: the second alias signs alone",
            Task::StopFlows => "stop the affected flows on all nodes",
            Task::StartFlows => "start the affected flows on all nodes",
            Task::RestartFlows => "restart the affected flows on all nodes",
            Task::UndeployFlows => "undeploy the affected flows (definitions kept)",
            Task::RedeployFlows => "redeploy the affected flows",
            Task::DrainCheck => "check that no message signed with the old key is waiting",
            Task::ScheduleOldKeyRemoval => "schedule removal of the old key (not before 90 days)",
        }
    }
}

/// What a step with an input brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// The CA's response to the staged key's certificate signing request.
    CaResponse,
    /// The partner's new certificate, staged under the alias.
    PartnerCertificate,
}

/// What a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// A TLS handshake with the staged version of the alias against every affected
    /// channel: the partner must accept it.
    TlsStaged,
    /// A TLS handshake with the active version against every affected channel.
    TlsActive,
    /// A test message protected with the new version (signed with it, or encrypted to it)
    /// posted to every affected partner's declared URL: the partner must accept it.
    MessageStaged,
}

/// The kind of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// keyward does it.
    Task(Task),
    /// A recorded notification to the given actor.
    Notify(StepActor),
    /// Someone with the step's actor role confirms it is done.
    Confirm,
    /// A confirmation that brings a file for keyward to import.
    Input(Input),
    /// keyward checks it against the partners.
    Probe(Probe),
    /// The downtime window: done when it is scheduled.
    Window,
}

impl StepKind {
    /// `task`, `notify`, `confirm`, `input`, `probe` or `window`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Task(_) => "task",
            StepKind::Notify(_) => "notify",
            StepKind::Confirm => "confirm",
            StepKind::Input(_) => "input",
            StepKind::Probe(_) => "probe",
            StepKind::Window => "window",
        }
    }

    /// Whether keyward completes the step by itself.
    pub fn automated(self) -> bool {
        matches!(self, StepKind::Task(_) | StepKind::Notify(_) | StepKind::Probe(_))
    }
}

/// One step of a procedure variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDef {
    /// A short name, unique within the variant (`renew confirm ID KEY`).
    pub key: &'static str,
    /// Who performs it.
    pub actor: StepActor,
    /// What kind of step it is.
    pub kind: StepKind,
    /// What happens, in words.
    pub text: &'static str,
    /// Whether it waits for the downtime window to open.
    pub in_window: bool,
    /// The seed's step numbers this step implements.
    pub seed_steps: &'static str,
}

/// One variant of a procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantDef {
    /// The name (`renew start --variant`).
    pub name: &'static str,
    /// The seed's heading, in short.
    pub title: &'static str,
    /// What every affected partner must be able to do for this variant to apply.
    pub requires: &'static [Capability],
    /// Whether the flow's sign step must already carry a second alias with no key.
    pub requires_second_alias: bool,
    /// Whether messages can fail (inside the downtime window).
    pub downtime: bool,
    /// The steps, in order.
    pub steps: &'static [StepDef],
}

impl VariantDef {
    /// Whether a partner with `capabilities` allows this variant.
    pub fn allowed_by(&self, capabilities: &Capabilities) -> bool {
        self.requires.iter().all(|c| capabilities.contains(c))
    }
}

const fn step(
    key: &'static str,
    actor: StepActor,
    kind: StepKind,
    text: &'static str,
    seed_steps: &'static str,
) -> StepDef {
    StepDef { key, actor, kind, text, in_window: false, seed_steps }
}

const fn in_window(def: StepDef) -> StepDef {
    StepDef { in_window: true, ..def }
}

use Capability as C;
use StepActor::{Admin, Developer, Partner};
use StepKind as K;

// ----- seed 001: tenant client certificate with a new CA -----------------------------------

/// Seed 001, "Receiver Accepts Different Certificates at the same Time".
const CLIENT_CERTIFICATE_BOTH: &[StepDef] = &[
    step("stage-key", Admin, K::Task(Task::StageKeyPair), "new key pair (staged) and CSR for the new CA", "1"),
    step("import-response", Admin, K::Input(Input::CaResponse), "import the new CA's response to the CSR", "1"),
    step("provide-certificate", Admin, K::Notify(Partner), "new client certificate and root CA to the partner", "2"),
    step("partner-accepts-both", Partner, K::Confirm, "partner accepts the old and the new client certificate and trusts the new root", "3-4"),
    step("probe-staged", Admin, K::Probe(Probe::TlsStaged), "TLS handshake with the staged key against every affected channel", "-"),
    step("activate", Admin, K::Task(Task::Activate), "exchange: the new key becomes active under the same alias", "5"),
    step("restart-flows", Developer, K::Task(Task::RestartFlows), "restart the affected flows on all nodes", "6-7"),
    step("inform-partner", Admin, K::Notify(Partner), "the new client certificate is now used", "8"),
    step("partner-removes-old", Partner, K::Confirm, "partner removes the old client certificate and root", "9"),
];

/// Seed 001, "Receiver does not Accept Different Certificates at the same Time".
const CLIENT_CERTIFICATE_DOWNTIME: &[StepDef] = &[
    step("stage-key", Admin, K::Task(Task::StageKeyPair), "new key pair (staged) and CSR for the new CA", "1"),
    step("import-response", Admin, K::Input(Input::CaResponse), "import the new CA's response to the CSR", "1"),
    step("agree-downtime", Admin, K::Window, "agree a downtime window with the partner", "2"),
    in_window(step("stop-flows", Developer, K::Task(Task::StopFlows), "stop the affected flows on all nodes", "3-5")),
    in_window(step("activate", Admin, K::Task(Task::Activate), "exchange the key pair, keeping the alias", "6")),
    in_window(step("provide-certificate", Admin, K::Notify(Partner), "new certificate and root CA; the client is stopped", "7")),
    in_window(step("partner-exchanges", Partner, K::Confirm, "partner exchanges the certificate and imports the new root", "8-9")),
    in_window(step("probe-active", Admin, K::Probe(Probe::TlsActive), "TLS handshake with the new key against every affected channel", "-")),
    in_window(step("start-flows", Developer, K::Task(Task::StartFlows), "start the affected flows on all nodes", "10-11")),
];

const CLIENT_CERTIFICATE: &[VariantDef] = &[
    VariantDef {
        name: "accepts-both",
        title: "partner accepts the old and the new client certificate at once",
        requires: &[C::TwoClientCertificates, C::TwoCas],
        requires_second_alias: false,
        downtime: false,
        steps: CLIENT_CERTIFICATE_BOTH,
    },
    VariantDef {
        name: "downtime",
        title: "partner accepts one client certificate at a time",
        requires: &[],
        requires_second_alias: false,
        downtime: true,
        steps: CLIENT_CERTIFICATE_DOWNTIME,
    },
];

// ----- seed 002: CMS/PKCS#7 outbound signer ------------------------------------------------

/// Seed 002, "Receiver is able to Verify Payloads Signed by the old Key and … the new Key".
const SIGNER_BOTH: &[StepDef] = &[
    step("stage-key", Admin, K::Task(Task::StageKeyPair), "new key pair (staged)", "1"),
    step("provide-certificate", Admin, K::Notify(Partner), "the new certificate to the partner", "2"),
    step("partner-verifies-both", Partner, K::Confirm, "partner verifies signatures of the old and the new key", "3-4"),
    step("probe-message", Admin, K::Probe(Probe::MessageStaged), "a test message signed with the new key, which every partner must accept", "-"),
    step("activate", Admin, K::Task(Task::Activate), "exchange: messages are signed with the new key", "5"),
    step("inform-partner", Admin, K::Notify(Partner), "the key pair has been exchanged", "6"),
    step("partner-removes-old", Partner, K::Confirm, "partner removes the old certificate", "7"),
];

/// Seed 002, "Receiver is only able to Verify Payloads Signed by the Same Key at one Point
/// in Time" (a temporary second alias in the signer step).
const SIGNER_TEMPORARY_ALIAS: &[StepDef] = &[
    step("create-temporary", Admin, K::Task(Task::CreateTemporaryAlias), "new key pair under a temporary alias", "1-2"),
    step("inform-developer", Admin, K::Notify(Developer), "the signer steps get the temporary alias", "3"),
    step("add-signer", Developer, K::Task(Task::AddTemporarySigner), "add the temporary alias to the signer steps: two signatures", "4"),
    step("provide-certificate", Admin, K::Notify(Partner), "the new certificate; messages now carry two signatures", "5"),
    step("partner-switches", Partner, K::Confirm, "partner verifies the signature of the new key", "6-7"),
    step("adopt-key", Admin, K::Task(Task::AdoptTemporaryKey), "the new key becomes the alias's active version", "-"),
    step("remove-signer", Developer, K::Task(Task::RemoveTemporarySigner), "remove the temporary alias from the signer steps: one signature", "8-10"),
    step("delete-temporary", Admin, K::Task(Task::DeleteTemporaryAlias), "delete the temporary alias", "11"),
];

/// Seed 002, "… Accepts PKCS7/CMS Data with two Signatures" (the signer step already names
/// a second alias, which has no key).
const SIGNER_SECOND_ALIAS: &[StepDef] = &[
    step("create-second-key", Admin, K::Task(Task::CreateSecondAliasKey), "new key pair under the signer step's second alias: two signatures", "1-2"),
    step("provide-certificate", Admin, K::Notify(Partner), "the new certificate to the partner", "3"),
    step("partner-exchanges", Partner, K::Confirm, "partner exchanges the old certificate for the new one", "4-5"),
    step("retire-old", Admin, K::Task(Task::RetireAlias), "retire the old key: one signature, by the new key", "6"),
];

/// Seed 002, "… Accepts only PKCS/CMS Data with Exactly one Signature" (downtime).
const SIGNER_ONE_SIGNATURE: &[StepDef] = &[
    step("stage-key", Admin, K::Task(Task::StageKeyPair), "new key pair (staged)", "1"),
    step("agree-downtime", Admin, K::Window, "agree a downtime window with the partner", "2"),
    step("provide-certificate", Admin, K::Notify(Partner), "the new certificate to the partner", "3"),
    in_window(step("activate", Admin, K::Task(Task::Activate), "exchange the key pair, keeping the alias", "4.1")),
    in_window(step("partner-exchanges", Partner, K::Confirm, "partner exchanges the certificate", "4.2")),
];

const CMS_SIGNER: &[VariantDef] = &[
    VariantDef {
        name: "verifies-both",
        title: "partner verifies signatures of the old and the new key at once",
        requires: &[C::TwoSigningKeys],
        requires_second_alias: false,
        downtime: false,
        steps: SIGNER_BOTH,
    },
    VariantDef {
        name: "second-alias",
        title: "partner verifies one key; the signer step already has a second alias",
        requires: &[C::TwoSignatures],
        requires_second_alias: true,
        downtime: false,
        steps: SIGNER_SECOND_ALIAS,
    },
    VariantDef {
        name: "temporary-alias",
        title: "partner verifies one key at a time but accepts two signatures",
        requires: &[C::TwoSignatures],
        requires_second_alias: false,
        downtime: false,
        steps: SIGNER_TEMPORARY_ALIAS,
    },
    VariantDef {
        name: "one-signature",
        title: "partner accepts exactly one signature",
        requires: &[],
        requires_second_alias: false,
        downtime: true,
        steps: SIGNER_ONE_SIGNATURE,
    },
];

// ----- seed 003: outbound encryption, the partner renews its key ---------------------------

/// Seed 003, "Receiver is Able to … Payloads Encrypted by the Old Key and … the New Key".
const ENCRYPTION_BOTH: &[StepDef] = &[
    step("partner-new-key", Partner, K::Confirm, "partner creates a new key pair and decrypts with old and new", "1-2"),
    step("import-certificate", Admin, K::Input(Input::PartnerCertificate), "import the partner's new certificate (staged)", "3"),
    step("probe-message", Admin, K::Probe(Probe::MessageStaged), "a test message encrypted to the new certificate, which the partner must accept", "-"),
    step("activate", Admin, K::Task(Task::Activate), "exchange: messages are encrypted to the new certificate", "4"),
    step("inform-partner", Admin, K::Notify(Partner), "the certificate has been exchanged", "5"),
    step("partner-removes-old", Partner, K::Confirm, "partner removes its old key", "6"),
];

/// Seed 003, "Receiver is Only Able to … Payloads Encrypted by the Same Key at One Time".
const ENCRYPTION_UNDEPLOY: &[StepDef] = &[
    step("partner-new-key", Partner, K::Confirm, "partner creates a new key pair", "1"),
    step("import-certificate", Admin, K::Input(Input::PartnerCertificate), "import the partner's new certificate (staged)", "2"),
    step("agree-downtime", Admin, K::Window, "agree a downtime window with the partner", "3"),
    in_window(step("undeploy-flows", Developer, K::Task(Task::UndeployFlows), "undeploy the encrypting flows", "4-6")),
    in_window(step("activate", Admin, K::Task(Task::Activate), "exchange the certificate, keeping the alias", "7")),
    in_window(step("inform-partner", Admin, K::Notify(Partner), "no encrypted messages are being sent", "8")),
    in_window(step("partner-exchanges", Partner, K::Confirm, "partner exchanges its key pair and expects the new key", "9-10")),
    in_window(step("redeploy-flows", Developer, K::Task(Task::RedeployFlows), "redeploy the encrypting flows", "11-12")),
];

const PARTNER_ENCRYPTION: &[VariantDef] = &[
    VariantDef {
        name: "decrypts-both",
        title: "partner decrypts with the old and the new key at once",
        requires: &[C::TwoDecryptionKeys],
        requires_second_alias: false,
        downtime: false,
        steps: ENCRYPTION_BOTH,
    },
    VariantDef {
        name: "undeploy",
        title: "partner decrypts with one key at a time",
        requires: &[],
        requires_second_alias: false,
        downtime: true,
        steps: ENCRYPTION_UNDEPLOY,
    },
];

// ----- seed 004: inbound response signing --------------------------------------------------

/// Seed 004, "Sender is Able to Verify Payloads Signed by the Old Key and … the New Key".
const RESPONSE_BOTH: &[StepDef] = &[
    step("stage-key", Admin, K::Task(Task::StageKeyPair), "new key pair (staged)", "1"),
    step("provide-certificate", Admin, K::Notify(Partner), "the new certificate to the sender", "2"),
    step("sender-verifies-both", Partner, K::Confirm, "sender verifies responses of the old and the new key", "3-4"),
    step("activate", Admin, K::Task(Task::Activate), "exchange: responses are signed with the new key", "5"),
    step("inform-sender", Admin, K::Notify(Partner), "the key pair has been exchanged", "6"),
    step("sender-removes-old", Partner, K::Confirm, "sender removes the old certificate", "7"),
    step("schedule-removal", Admin, K::Task(Task::ScheduleOldKeyRemoval), "keep the old key at least 90 days", "note"),
];

/// Seed 004, "Sender is Only Able to Verify Payloads Signed by the Same Key at One Time".
const RESPONSE_DOWNTIME: &[StepDef] = &[
    step("stage-key", Admin, K::Task(Task::StageKeyPair), "new key pair (staged)", "1"),
    step("provide-certificate", Admin, K::Notify(Partner), "the new certificate to the sender", "2"),
    step("agree-downtime", Admin, K::Window, "agree a downtime window with the sender", "3"),
    in_window(step("sender-stops", Partner, K::Confirm, "sender stops sending and exchanges the certificate", "4-6")),
    in_window(step("drain", Admin, K::Task(Task::DrainCheck), "no message signed with the old key is waiting", "7")),
    in_window(step("activate", Admin, K::Task(Task::Activate), "exchange the key pair, keeping the alias", "8")),
    in_window(step("inform-sender", Admin, K::Notify(Partner), "the key pair has been exchanged", "9")),
    in_window(step("sender-starts", Partner, K::Confirm, "sender starts sending again", "10")),
    step("schedule-removal", Admin, K::Task(Task::ScheduleOldKeyRemoval), "keep the old key at least 90 days", "note"),
];

const RESPONSE_SIGNING: &[VariantDef] = &[
    VariantDef {
        name: "verifies-both",
        title: "sender verifies responses of the old and the new key at once",
        requires: &[C::TwoResponseKeys],
        requires_second_alias: false,
        downtime: false,
        steps: RESPONSE_BOTH,
    },
    VariantDef {
        name: "downtime",
        title: "sender verifies one key at a time",
        requires: &[],
        requires_second_alias: false,
        downtime: true,
        steps: RESPONSE_DOWNTIME,
    },
];

// ----- seed 000: platform-key activation ---------------------------------------------------

/// Seed 000: prepare, partners update, activate, restart, test; revert is `renew abort`.
const PLATFORM: &[StepDef] = &[
    step("announce", Admin, K::Notify(Admin), "new platform key waiting: download its certificate and chain", "check for new keys"),
    step("provide-certificate", Admin, K::Notify(Partner), "the new certificate and root to every affected partner", "download certificates"),
    step("agree-downtime", Admin, K::Window, "agree a downtime window with the partners", "agree on downtime"),
    step("partner-imports", Partner, K::Confirm, "partner imports the new certificate and root", "import certificate into backend"),
    step("probe-staged", Admin, K::Probe(Probe::TlsStaged), "TLS handshake with the new key against every affected channel", "connectivity test"),
    in_window(step("activate", Admin, K::Task(Task::Activate), "activate the new platform key (the old one goes to history)", "activate")),
    in_window(step("restart-flows", Developer, K::Task(Task::RestartFlows), "restart the affected flows on all nodes", "restart the integration flows")),
    in_window(step("probe-active", Admin, K::Probe(Probe::TlsActive), "test every affected channel with the active key", "testing")),
];

const PLATFORM_KEY: &[VariantDef] = &[VariantDef {
    name: "activate",
    title: "activate a platform-provisioned key",
    requires: &[],
    requires_second_alias: false,
    downtime: true,
    steps: PLATFORM,
}];

/// Chooses the variant of `procedure` for partners with these capabilities: the first
/// (least restrictive) variant that every partner allows — the most restrictive partner
/// decides. `second_alias` says whether the signer steps already carry a second alias.
pub fn choose_variant<'a>(
    procedure: Procedure,
    partners: impl IntoIterator<Item = &'a Capabilities> + Clone,
    second_alias: bool,
) -> &'static VariantDef {
    let variants = procedure.variants();
    variants
        .iter()
        .find(|v| {
            (!v.requires_second_alias || second_alias) && partners.clone().into_iter().all(|caps| v.allowed_by(caps))
        })
        // The last variant of every procedure requires nothing.
        .unwrap_or(&variants[variants.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::parse_capabilities;

    #[test]
    fn every_table_is_well_formed() {
        let mut count = 0;
        for procedure in Procedure::ALL {
            let last = procedure.variants().last().unwrap();
            assert!(last.requires.is_empty() && !last.requires_second_alias, "{procedure}: last variant must always apply");
            for variant in procedure.variants() {
                count += 1;
                let mut keys: Vec<&str> = variant.steps.iter().map(|s| s.key).collect();
                keys.sort_unstable();
                keys.dedup();
                assert_eq!(keys.len(), variant.steps.len(), "{procedure}/{}: duplicate step keys", variant.name);
                let window = variant.steps.iter().position(|s| s.kind == StepKind::Window);
                let first_in_window = variant.steps.iter().position(|s| s.in_window);
                match (window, first_in_window) {
                    (Some(w), Some(f)) => assert!(w < f, "{procedure}/{}: window before its steps", variant.name),
                    (None, None) => assert!(!variant.downtime, "{procedure}/{}", variant.name),
                    _ => panic!("{procedure}/{}: window step and in-window steps go together", variant.name),
                }
            }
        }
        assert_eq!(count, 11, "the seeds have 11 variants (10 renewal variants and the platform key)");
    }

    #[test]
    fn the_most_restrictive_partner_decides() {
        let both = parse_capabilities("two-client-certificates,two-cas").unwrap();
        let one = parse_capabilities("two-cas").unwrap();
        let p = Procedure::ClientCertificate;
        assert_eq!(choose_variant(p, [&both], false).name, "accepts-both");
        assert_eq!(choose_variant(p, [&both, &one], false).name, "downtime");
        assert_eq!(choose_variant(p, std::iter::empty::<&Capabilities>(), false).name, "accepts-both");

        let sigs = parse_capabilities("two-signatures").unwrap();
        let s = Procedure::CmsSigner;
        assert_eq!(choose_variant(s, [&sigs], false).name, "temporary-alias");
        assert_eq!(choose_variant(s, [&sigs], true).name, "second-alias");
        assert_eq!(choose_variant(s, [&Capabilities::new()], true).name, "one-signature");
        let all: Capabilities = Capability::ALL.into_iter().collect();
        assert_eq!(choose_variant(s, [&all], true).name, "verifies-both");
    }

    #[test]
    fn names_round_trip() {
        for p in Procedure::ALL {
            assert_eq!(p.as_str().parse::<Procedure>(), Ok(p));
            for v in p.variants() {
                assert_eq!(p.variant(v.name).unwrap().name, v.name);
            }
        }
        assert!(Procedure::CmsSigner.variant("nope").unwrap_err().contains("one-signature"));
    }
}
