//! How client commands print: aligned tables for people, the API's JSON for scripts.

use keyward_http::wire::{
    PartnerJson, PlanJson, RenewalJson, RenewalTaskJson,
    AuditRecordJson, AuditVerifyJson, EntryJson, FlowJson, NodeJson, UsageJson, EntrySummaryJson, TlsTestResponse, TokenCreated, TokenJson, TransitionsJson,
    VerifyResponse,
    VersionCreated, VersionJson, to_pretty_json,
};

use crate::cli::Output;

/// Prints rows as columns separated by two spaces, each as wide as its widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn date(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.get(..10).unwrap_or(v).to_owned())
}

pub fn entries(out: Output, entries: &[EntrySummaryJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&entries));
        return;
    }
    let waiting: Vec<String> = entries
        .iter()
        .filter(|e| !e.staged_versions.is_empty())
        .map(|e| format!("{} (version {})", e.alias, join(&e.staged_versions)))
        .collect();
    if !waiting.is_empty() {
        println!("New keys waiting for activation: {}\n", waiting.join(", "));
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let status = if e.expired {
                "EXPIRED".to_owned()
            } else if e.expiry_state.as_deref() == Some("critical") {
                "CRITICAL".to_owned()
            } else if e.expiring_soon {
                "expires within 30 days".to_owned()
            } else {
                "valid".to_owned()
            };
            vec![
                e.alias.clone(),
                e.kind.clone(),
                e.owner.clone(),
                e.active_version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                if e.staged_versions.is_empty() { "-".to_owned() } else { format!("new: {}", join(&e.staged_versions)) },
                date(e.not_after.as_deref()),
                status,
            ]
        })
        .collect();
    table(&["ALIAS", "KIND", "OWNER", "ACTIVE", "STAGED", "NOT AFTER", "STATUS"], &rows);
}

fn join(versions: &[u32]) -> String {
    versions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

pub fn entry(out: Output, entry: &EntryJson) {
    if out == Output::Json {
        println!("{}", to_pretty_json(entry));
        return;
    }
    println!("alias:        {}", entry.alias);
    println!("kind:         {}", entry.kind);
    println!("owner:        {}", entry.owner);
    println!("created:      {} by {}", entry.created_at, entry.created_by);
    println!("modified:     {} by {}", entry.modified_at, entry.modified_by);
    for version in entry.versions.iter().rev() {
        println!();
        println!("version {} ({})", version.version, version.state);
        if let Some(at) = &version.activated_at {
            println!("  activated at:   {at}");
        }
        if let Some(until) = &version.active_until {
            println!("  active until:   {until}");
        }
        println!("  created:        {} by {}", version.created_at, version.created_by);
        if let Some(key) = &version.key_algorithm {
            println!("  private key:    {key}");
        }
        for (position, cert) in version.chain.iter().enumerate() {
            let label = if position == 0 { "certificate" } else { "issued by" };
            println!("  {label}:");
            println!("    subject:        {}", cert.subject);
            println!("    issuer:         {}", cert.issuer);
            println!("    serial:         {}", cert.serial);
            println!("    valid:          {} .. {}", cert.not_before, cert.not_after);
            println!("    signature:      {}", cert.signature_algorithm);
            let curve = cert.curve.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
            println!("    public key:     {} {} bits{curve}", cert.key_algorithm, cert.key_size);
            println!("    SHA-1:          {}", cert.sha1_fingerprint);
            println!("    SHA-256:        {}", cert.sha256_fingerprint);
        }
    }
}

pub fn history(out: Output, alias: &str, versions: &[VersionJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&versions));
        return;
    }
    println!("history of {alias}");
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            let subject = v.chain.first().map(|c| c.subject.clone()).unwrap_or_default();
            let not_after = v.chain.first().map(|c| c.not_after.clone());
            vec![
                v.version.to_string(),
                v.state.clone(),
                v.created_at.clone(),
                v.activated_at.clone().unwrap_or_else(|| "-".into()),
                v.active_until.clone().unwrap_or_else(|| "-".into()),
                date(not_after.as_deref()),
                subject,
            ]
        })
        .collect();
    table(&["VERSION", "STATE", "CREATED", "ACTIVATED", "ACTIVE UNTIL", "NOT AFTER", "SUBJECT"], &rows);
}

pub fn created(out: Output, created: &VersionCreated, staged: bool) {
    if out == Output::Json {
        println!("{}", to_pretty_json(created));
    } else if staged {
        println!("{} version {} staged; activate it with `keyward keys activate {} --version {}`", created.alias, created.version, created.alias, created.version);
    } else {
        println!("{} version {} is active", created.alias, created.version);
    }
}

pub fn transitions(out: Output, result: &TransitionsJson) {
    if out == Output::Json {
        println!("{}", to_pretty_json(result));
        return;
    }
    for t in &result.transitions {
        println!("{} version {}: {} -> {} at {}", result.alias, t.version, t.from, t.to, t.at);
    }
}

pub fn token(out: Output, token: &TokenCreated) {
    if out == Output::Json {
        println!("{}", to_pretty_json(token));
    } else {
        println!("token {:?} with role {} (shown only now; keyward stores only its hash):", token.name, token.role);
        println!("{}", token.token);
    }
}

pub fn tokens(out: Output, tokens: &[TokenJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&tokens));
        return;
    }
    let rows: Vec<Vec<String>> =
        tokens.iter().map(|t| vec![t.name.clone(), t.role.clone(), t.created_at.clone()]).collect();
    table(&["NAME", "ROLE", "CREATED"], &rows);
}

pub fn audit(out: Output, records: &[AuditRecordJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&records));
        return;
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                r.at.clone(),
                format!("{} ({})", r.actor, r.role),
                r.action.clone(),
                r.alias.clone().unwrap_or_else(|| "-".into()),
                r.version.map_or_else(|| "-".into(), |v| v.to_string()),
                r.detail.clone(),
            ]
        })
        .collect();
    table(&["SEQ", "AT", "WHO", "ACTION", "ALIAS", "VERSION", "DETAIL"], &rows);
}

pub fn audit_verify(out: Output, verification: &AuditVerifyJson) {
    if out == Output::Json {
        println!("{}", to_pretty_json(verification));
    } else if verification.intact {
        println!("audit log intact: {} records, hash chain verified", verification.records);
    } else {
        println!(
            "audit log BROKEN after checking {} records: {}",
            verification.records,
            verification.problem.as_deref().unwrap_or("unknown problem")
        );
    }
}

pub fn verification(out: Output, result: &VerifyResponse) {
    if out == Output::Json {
        println!("{}", to_pretty_json(result));
        return;
    }
    for (position, signer) in result.signers.iter().enumerate() {
        let verdict = if signer.valid { "valid".to_owned() } else { format!("INVALID: {}", signer.problem.as_deref().unwrap_or("unknown")) };
        println!("signature {}: {verdict}", position + 1);
        println!("  signer:     {} (issuer {}, serial {})", signer.subject, signer.issuer, signer.serial);
        println!("  algorithm:  {} / {}", signer.digest, signer.signature_algorithm);
        if let Some(at) = &signer.signing_time {
            println!("  signed at:  {at}");
        }
    }
    let requirement = if result.require == "any" { "at least one valid signature" } else { "every signature valid" };
    println!("{} ({requirement})", if result.verified { "verified" } else { "NOT verified" });
}

/// A TLS connectivity test's report.
pub fn tls_test(out: Output, report: &TlsTestResponse) {
    if out == Output::Json {
        println!("{}", to_pretty_json(report));
        return;
    }
    match (&report.failure, &report.cause) {
        (Some(failure), Some(cause)) => println!("FAILED ({cause}): {failure}"),
        _ => println!("ok: {} answered {}", report.url, report.http_status.as_deref().unwrap_or("-")),
    }
    if let (Some(protocol), Some(cipher)) = (&report.protocol, &report.cipher_suite) {
        println!("protocol:      {protocol}, {cipher}");
    }
    if !report.server_chain.is_empty() {
        let trust = match report.server_trusted {
            Some(true) => "trusted",
            Some(false) => "NOT trusted",
            None => "not checked",
        };
        println!("server chain:  ({trust})");
        for certificate in &report.server_chain {
            let validity = if certificate.valid_now { "valid" } else { "NOT valid now" };
            println!("  {} (issuer {}; {} .. {}, {validity})", certificate.subject, certificate.issuer, certificate.not_before, certificate.not_after);
        }
    }
    match &report.acceptable_client_cas {
        None => println!("client certificate: not requested by the server"),
        Some(cas) if cas.is_empty() => println!("client certificate: requested, any CA"),
        Some(cas) => {
            println!("client certificate: requested from these CAs:");
            for ca in cas {
                println!("  {ca}");
            }
        }
    }
    if let Some(presented) = &report.presented {
        println!("presented:     {} version {} ({})", presented.alias, presented.version, presented.subject);
    }
    println!("took {} ms", report.elapsed_ms);
}

/// A flow after a change.
pub fn flow_changed(out: Output, flow: &FlowJson, what: &str) {
    if out == Output::Json {
        println!("{}", to_pretty_json(flow));
        return;
    }
    println!("{what} {} (generation {}, {}); every node follows within a second", flow.name, flow.generation, flow.state);
}

/// A flow after a change on one node.
pub fn flow_changed_on(out: Output, flow: &FlowJson, what: &str, node: &str) {
    if out == Output::Json {
        println!("{}", to_pretty_json(flow));
        return;
    }
    println!("{what} {} on node {node} only; on the other nodes it stays {}", flow.name, flow.state);
}

/// The deployed flows.
pub fn flows(out: Output, flows: &[FlowJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&flows));
        return;
    }
    println!("{:<32} {:<8} {:>10}  {:<25} BY", "NAME", "STATE", "GENERATION", "UPDATED");
    for flow in flows {
        println!("{:<32} {:<8} {:>10}  {:<25} {}", flow.name, flow.state, flow.generation, flow.updated_at, flow.updated_by);
    }
}

/// One flow with its file.
pub fn flow(out: Output, flow: &FlowJson) {
    if out == Output::Json {
        println!("{}", to_pretty_json(flow));
        return;
    }
    println!("flow:        {}", flow.name);
    println!("state:       {} (generation {})", flow.state, flow.generation);
    println!("deployed:    {} by {}", flow.deployed_at, flow.deployed_by);
    println!("updated:     {} by {}", flow.updated_at, flow.updated_by);
    for node in &flow.nodes {
        println!("on node {}: {} ({} restart(s) there alone)", node.node, node.state, node.restarts);
    }
    println!("senders post to /flows/{} on any node", flow.name);
    println!();
    print!("{}", flow.source);
}

/// The runtime nodes.
pub fn nodes(out: Output, nodes: &[NodeJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&nodes));
        return;
    }
    println!("{:<20} {:<26} {:>10} {:>9} {:<8} FLOWS", "NODE", "ADDRESS", "HEARTBEAT", "APPLIED", "IN SYNC");
    for node in nodes {
        println!(
            "{:<20} {:<26} {:>9}s {:>9} {:<8} {}",
            node.id,
            node.address,
            node.seconds_since_heartbeat,
            node.applied_marker,
            if node.in_sync { "yes" } else { "no" },
            node.flows
        );
    }
}

/// Where an alias is used.
pub fn usage(out: Output, usage: &UsageJson) {
    if out == Output::Json {
        println!("{}", to_pretty_json(usage));
        return;
    }
    println!("{} is named in {} place(s) of deployed flows:", usage.alias, usage.declared.iter().filter(|d| !d.any_valid_key).count());
    for d in usage.declared.iter().filter(|d| !d.any_valid_key) {
        let step = d.step.map(|s| format!("step {s} ")).unwrap_or_default();
        println!("  {:<28} {step}{:<34} partner {}", d.flow, d.place, d.partner);
    }
    let any: Vec<_> = usage.declared.iter().filter(|d| d.any_valid_key).collect();
    if !any.is_empty() {
        println!("flows that use any valid key (may use {} too):", usage.alias);
        for d in any {
            let step = d.step.map(|s| format!("step {s} ")).unwrap_or_default();
            println!("  {:<28} {step}{:<34} partner {}", d.flow, d.place, d.partner);
        }
    }
    println!("observed by the nodes:");
    if usage.observed.is_empty() {
        println!("  nothing yet");
    }
    for o in &usage.observed {
        println!("  {:<28} version {:<4} {:>8} message(s), last {}  partner {}", o.flow, o.version, o.count, o.last_used, o.partner);
    }
}

/// The partners.
pub fn partners(out: Output, partners: &[PartnerJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&partners));
        return;
    }
    let rows: Vec<Vec<String>> = partners
        .iter()
        .map(|p| {
            let caps = if p.capabilities.is_empty() { "none".to_owned() } else { p.capabilities.join(",") };
            vec![p.name.clone(), p.url.clone().unwrap_or_else(|| "-".to_owned()), caps]
        })
        .collect();
    table(&["NAME", "URL", "CAPABILITIES"], &rows);
}

/// One partner.
pub fn partner(out: Output, partner: &PartnerJson) {
    if out == Output::Json {
        println!("{}", to_pretty_json(partner));
        return;
    }
    println!("partner:      {}", partner.name);
    println!("url:          {}", partner.url.as_deref().unwrap_or("-"));
    println!("capabilities: {}", if partner.capabilities.is_empty() { "none".to_owned() } else { partner.capabilities.join(", ") });
    if let Some(d) = &partner.description {
        println!("description:  {d}");
    }
}

fn renewal_body(r: &RenewalJson) {
    println!("procedure: {} ({})", r.procedure, r.procedure_title);
    println!("variant:   {} ({}){}", r.variant, r.variant_title, if r.downtime { ", needs downtime" } else { "" });
    println!("flows:     {}", if r.flows.is_empty() { "-".to_owned() } else { r.flows.join(", ") });
    println!("partners:  {}", if r.partners.is_empty() { "-".to_owned() } else { r.partners.join(", ") });
    if let Some(second) = &r.second_alias {
        println!("second alias: {second}");
    }
    if let (Some(from), Some(to)) = (&r.window_from, &r.window_to) {
        println!("downtime:  {from} to {to}");
    }
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|s| {
            let actor = match &s.partner {
                Some(p) => format!("partner {p}"),
                None => s.actor.clone(),
            };
            let mut what = s.text.clone();
            if s.in_window {
                what.push_str(" [in window]");
            }
            let result = match (&s.by, &s.note) {
                (Some(by), Some(note)) => format!("{by}: {note}"),
                (Some(by), None) => by.clone(),
                (None, Some(note)) => note.clone(),
                (None, None) => String::new(),
            };
            vec![s.position.to_string(), s.key.clone(), actor, s.kind.clone(), s.seed_steps.clone(), s.state.clone(), what, result]
        })
        .collect();
    table(&["#", "STEP", "ACTOR", "KIND", "SEED", "STATE", "WHAT", "RESULT"], &rows);
}

/// A plan.
pub fn plan(out: Output, plan: &PlanJson) {
    if out == Output::Json {
        println!("{}", to_pretty_json(plan));
        return;
    }
    println!("renewal of {} (nothing has changed)", plan.renewal.alias);
    println!("why:       {}", plan.reason);
    for u in &plan.uses {
        println!("used in:   {} {} (partner {}, {})", u.flow, u.place, u.partner, u.url);
    }
    if !plan.undeclared_partners.is_empty() {
        println!(
            "undeclared partners (assumed to handle one key at a time; declare them with keyward partners add): {}",
            plan.undeclared_partners.join(", ")
        );
    }
    renewal_body(&plan.renewal);
}

/// One renewal.
pub fn renewal(out: Output, r: &RenewalJson) {
    if out == Output::Json {
        println!("{}", to_pretty_json(r));
        return;
    }
    println!("renewal {} of {}: {} (started {} by {})", r.id, r.alias, r.state, r.created_at, r.created_by);
    renewal_body(r);
}

/// The renewals.
pub fn renewals(out: Output, renewals: &[RenewalJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&renewals));
        return;
    }
    let rows: Vec<Vec<String>> = renewals
        .iter()
        .map(|r| {
            let next = r
                .steps
                .iter()
                .find(|s| !matches!(s.state.as_str(), "done" | "overridden" | "skipped" | "scheduled"))
                .map_or_else(|| "-".to_owned(), |s| format!("{} {} ({})", s.position, s.key, s.state));
            vec![r.id.to_string(), r.alias.clone(), r.procedure.clone(), r.variant.clone(), r.state.clone(), next, r.created_at.clone()]
        })
        .collect();
    table(&["ID", "ALIAS", "PROCEDURE", "VARIANT", "STATE", "NEXT STEP", "STARTED"], &rows);
}

/// What is waiting for whom.
pub fn renewal_tasks(out: Output, tasks: &[RenewalTaskJson]) {
    if out == Output::Json {
        println!("{}", to_pretty_json(&tasks));
        return;
    }
    if tasks.is_empty() {
        println!("nothing is waiting");
        return;
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let who = match &t.partner {
                Some(p) => format!("partner {p}"),
                None => t.actor.clone(),
            };
            vec![t.renewal.to_string(), t.alias.clone(), format!("{} {}", t.position, t.key), who, t.state.clone(), t.text.clone()]
        })
        .collect();
    table(&["RENEWAL", "ALIAS", "STEP", "WAITS FOR", "STATE", "WHAT"], &rows);
}
