//! The client commands: each one is a call of the API through [`Client`], printed by
//! [`crate::output`].

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use keyward_http::client::{Client, ListParams};
use keyward_http::wire::GenerateRequest;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_http::wire::{
    AbortRequest, ConfirmRequest, DowntimeRequest, EncryptRequest, PartnerJson, PartnerUpdate, RenewalStart, SignerJson,
    TlsTestRequest,
};

use crate::cli::{
    AuditCommand, Command, FlowTarget, FlowsCommand, Global, KeysCommand, NodesCommand, Output, PartnersCommand,
    RenewCommand, SignArgs, TestCommand, TokenCommand, VerifyArgs,
};
use crate::output;

pub async fn run(global: &Global, command: Command) -> anyhow::Result<ExitCode> {
    let client = Client::new(&global.server, global.token.clone())?;
    let out = global.output;
    match command {
        Command::Serve(_) | Command::Node(_) | Command::Token(TokenCommand::Issue { .. }) => {
            unreachable!("server-side commands are handled in main")
        }
        Command::Token(TokenCommand::Create { role, name }) => {
            let created = client.create_token(&name, &role).await?;
            output::token(out, &created);
        }
        Command::Token(TokenCommand::List) => output::tokens(out, &client.list_tokens().await?),
        Command::Token(TokenCommand::Revoke { name }) => {
            client.revoke_token(&name).await?;
            if out == Output::Table {
                println!("revoked token {name:?}");
            }
        }
        Command::Keys(command) => keys(&client, out, command).await?,
        Command::Audit(AuditCommand::List { limit, before }) => {
            let records = client.audit_list(Some(limit), before).await?;
            output::audit(out, &records);
        }
        Command::Sign(args) => sign(&client, args).await?,
        Command::Verify(args) => {
            if !verify(&client, out, args).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Encrypt(args) => {
            let payload = std::fs::read(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
            let request = EncryptRequest {
                recipients: args.recipients,
                data: STANDARD.encode(payload),
                key_transport: Some(args.key_transport),
                content_encryption: Some(args.content_encryption),
            };
            write_output(Some(&args.out), &client.encrypt(&request).await?, true)?;
        }
        Command::Decrypt(args) => {
            let raw = std::fs::read(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
            let decrypted = client.decrypt(&decode_if_base64(raw)).await?;
            let content = STANDARD.decode(&decrypted.content).context("the server sent undecodable content")?;
            write_private_file(&args.out, &content)?;
            eprintln!("decrypted with {} version {} ({})", decrypted.alias, decrypted.version, decrypted.state);
        }
        Command::Retention(args) => {
            let retention = match args.set {
                Some(days) => client.set_retention(days, args.reason).await?,
                None => client.retention().await?,
            };
            println!("retired key pairs decrypt for {} days after retirement", retention.days);
        }
        Command::Test(TestCommand::Tls(args)) => {
            let request = TlsTestRequest {
                url: args.url,
                alias: args.alias,
                version: args.version,
                trust: args.trust,
                timeout_ms: Some(args.timeout_ms),
            };
            let report = client.tls_test(&request).await?;
            output::tls_test(out, &report);
            if !report.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Flows(command) => flows(&client, out, command).await?,
        Command::Nodes(NodesCommand::List) => output::nodes(out, &client.nodes().await?),
        Command::Usage { alias } => output::usage(out, &client.usage(&alias).await?),
        Command::Partners(command) => partners(&client, out, command).await?,
        Command::Renew(command) => renew(&client, out, command).await?,
        Command::Audit(AuditCommand::Verify) => {
            let verification = client.audit_verify().await?;
            output::audit_verify(out, &verification);
            if !verification.intact {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn flows(client: &Client, out: Output, command: FlowsCommand) -> anyhow::Result<()> {
    match command {
        FlowsCommand::Deploy { file } => {
            let source = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let flow = client.deploy_flow(&source).await?;
            output::flow_changed(out, &flow, "deployed");
        }
        FlowsCommand::List => output::flows(out, &client.flows().await?),
        FlowsCommand::Show { name } => output::flow(out, &client.flow(&name).await?),
        FlowsCommand::Stop(target) => change_flow(client, out, &target, "stop", "stopped").await?,
        FlowsCommand::Start(target) => change_flow(client, out, &target, "start", "started").await?,
        FlowsCommand::Restart(target) => change_flow(client, out, &target, "restart", "restarted").await?,
        FlowsCommand::Undeploy { name } => {
            client.undeploy_flow(&name).await?;
            if out == Output::Table {
                println!("undeployed {name} from every node");
            }
        }
    }
    Ok(())
}

async fn partners(client: &Client, out: Output, command: PartnersCommand) -> anyhow::Result<()> {
    let split = |list: Option<String>| {
        list.map(|l| l.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty() && c != "none").collect::<Vec<_>>())
    };
    match command {
        PartnersCommand::Add(args) => {
            let partner = PartnerJson {
                name: args.name,
                url: args.url,
                capabilities: split(args.capabilities).unwrap_or_default(),
                description: args.description,
            };
            output::partner(out, &client.add_partner(&partner).await?);
        }
        PartnersCommand::Update(args) => {
            let update = PartnerUpdate { url: args.url, capabilities: split(args.capabilities), description: args.description };
            output::partner(out, &client.update_partner(&args.name, &update).await?);
        }
        PartnersCommand::List => output::partners(out, &client.partners().await?),
        PartnersCommand::Show { name } => output::partner(out, &client.partner(&name).await?),
    }
    Ok(())
}

/// A time for `renew schedule-downtime`: RFC 3339, `now`, or `+MINUTES` from now.
fn when(input: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let now = i64::try_from(now.as_millis()).context("the system clock is out of range")?;
    let at = if input == "now" {
        now
    } else if let Some(minutes) = input.strip_prefix('+') {
        let minutes: f64 = minutes.parse().with_context(|| format!("{input:?}: expected +MINUTES"))?;
        // Whole milliseconds are enough for a downtime window.
        now + (minutes * 60_000.0) as i64
    } else {
        return Ok(input.to_owned());
    };
    Ok(keyward_domain::Timestamp::from_millis(at).to_rfc3339())
}

async fn renew(client: &Client, out: Output, command: RenewCommand) -> anyhow::Result<()> {
    match command {
        RenewCommand::Plan(select) => {
            let plan = client.renewal_plan(&select.alias, select.procedure.as_deref(), select.variant.as_deref()).await?;
            output::plan(out, &plan);
        }
        RenewCommand::Start(select) => {
            let request = RenewalStart { alias: select.alias, procedure: select.procedure, variant: select.variant };
            output::renewal(out, &client.renewal_start(&request).await?);
        }
        RenewCommand::Show { id } => output::renewal(out, &client.renewal(id).await?),
        RenewCommand::List => output::renewals(out, &client.renewals().await?),
        RenewCommand::Tasks { role, partner } => {
            output::renewal_tasks(out, &client.renewal_tasks(role.as_deref(), partner.as_deref()).await?);
        }
        RenewCommand::Confirm { id, step, partner, note, file, override_probe } => {
            let data = file
                .map(|f| std::fs::read(&f).with_context(|| format!("cannot read {}", f.display())))
                .transpose()?
                .map(|bytes| STANDARD.encode(bytes));
            let request = ConfirmRequest { partner, note, data, override_probe };
            output::renewal(out, &client.renewal_confirm(id, &step, &request).await?);
        }
        RenewCommand::Abort { id, reason } => {
            output::renewal(out, &client.renewal_abort(id, &AbortRequest { reason }).await?);
        }
        RenewCommand::ScheduleDowntime { id, from, to } => {
            let request = DowntimeRequest { from: when(&from)?, to: when(&to)? };
            output::renewal(out, &client.renewal_downtime(id, &request).await?);
        }
    }
    Ok(())
}

async fn change_flow(client: &Client, out: Output, target: &FlowTarget, operation: &str, done: &str) -> anyhow::Result<()> {
    let flow = client.change_flow(&target.name, operation, target.node.as_deref()).await?;
    match &target.node {
        Some(node) => output::flow_changed_on(out, &flow, done, node),
        None => output::flow_changed(out, &flow, done),
    }
    Ok(())
}

async fn keys(client: &Client, out: Output, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { expiring_within, owner, kind } => {
            let entries = client.list(&ListParams { expiring_within, owner, kind }).await?;
            output::entries(out, &entries);
        }
        KeysCommand::Show { alias } => output::entry(out, &client.show(&alias).await?),
        KeysCommand::History { alias } => output::history(out, &alias, &client.history(&alias).await?),
        KeysCommand::Create { alias, algorithm, subject, days, staged } => {
            let created = client
                .generate(&alias, &GenerateRequest { algorithm, subject, days: Some(days), staged })
                .await?;
            output::created(out, &created, staged);
        }
        KeysCommand::Import { alias, file, password, staged } => {
            let bytes = read_inputs(&file)?;
            let created = client.import(&alias, &bytes, password, staged).await?;
            output::created(out, &created, staged);
        }
        KeysCommand::ImportResponse { alias, file, staged } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let created = client.import_response(&alias, &bytes, staged).await?;
            let version = client.history(&alias).await?.into_iter().find(|v| v.version == created.version);
            output::created(out, &created, version.is_some_and(|v| v.state == "staged"));
        }
        KeysCommand::Csr { alias, version, out: path } => {
            let pem = client.certificate_request(&alias, version).await?;
            write_output(path.as_deref(), pem.as_bytes(), false)?;
        }
        KeysCommand::Export { alias, format, version, password, out: path } => {
            if format == "p12" || format == "pkcs12" {
                let Some(password) = password else {
                    bail!("a p12 export needs --password (or KEYWARD_EXPORT_PASSWORD) to protect the private key");
                };
                let Some(path) = path else {
                    bail!("a p12 export holds a private key; write it to a file with --out FILE");
                };
                let bytes = client.export_pkcs12(&alias, &password, version).await?;
                write_private_file(&path, &bytes)?;
            } else {
                let binary = matches!(format.as_str(), "der" | "p7b" | "root-der");
                write_output(path.as_deref(), &client.export(&alias, &format, version).await?, binary)?;
            }
        }
        KeysCommand::Activate { alias, version } => {
            output::transitions(out, &client.activate(&alias, version).await?);
        }
        KeysCommand::Restore { alias, version } => {
            output::transitions(out, &client.restore(&alias, version).await?);
        }
        KeysCommand::Delete { alias, force, reason } => {
            client.delete(&alias, force, reason.as_deref()).await?;
            if out == Output::Table {
                println!("deleted {alias}");
            }
        }
    }
    Ok(())
}

async fn sign(client: &Client, args: SignArgs) -> anyhow::Result<()> {
    let payload = std::fs::read(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
    let (digest, scheme) = match args.algorithm.as_deref() {
        None => (None, None),
        Some(algorithm) => match algorithm.strip_suffix("-pss") {
            Some(digest) => (Some(digest.to_owned()), Some("rsa-pss".to_owned())),
            None => (Some(algorithm.to_owned()), None),
        },
    };
    let signers = args
        .aliases
        .iter()
        .map(|alias| SignerJson {
            alias: alias.clone(),
            digest: digest.clone(),
            scheme: scheme.clone(),
            certs: Some(args.certs.clone()),
            signing_time: !args.no_signing_time,
        })
        .collect();
    let signed = client.sign(signers, &payload, args.detached).await?;
    let bytes = if args.base64 { format!("{}\n", STANDARD.encode(&signed)).into_bytes() } else { signed };
    write_output(Some(&args.out), &bytes, !args.base64)
}

/// Returns whether the message verified.
async fn verify(client: &Client, out: Output, args: VerifyArgs) -> anyhow::Result<bool> {
    let raw = std::fs::read(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
    let message = decode_if_base64(raw);
    let content = match &args.content {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    let result = client.verify(&message, content.as_deref(), args.trust.clone(), Some(args.require.clone())).await?;
    crate::output::verification(out, &result);
    if let (Some(path), Some(content)) = (&args.out, &result.content) {
        let bytes = STANDARD.decode(content).context("the server sent undecodable content")?;
        write_output(Some(path), &bytes, true)?;
    }
    Ok(result.verified)
}

/// A file of base64 text (without PEM armour) is decoded; anything else goes as it is.
fn decode_if_base64(raw: Vec<u8>) -> Vec<u8> {
    let text: Vec<u8> = raw.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let looks_base64 = !text.is_empty()
        && text.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    match looks_base64.then(|| STANDARD.decode(&text)) {
        Some(Ok(decoded)) => decoded,
        _ => raw,
    }
}

/// Reads the input files; several files are joined, which only makes sense for PEM. A single
/// file goes as it is (DER and PKCS#12 must not gain a newline).
fn read_inputs(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<u8>> {
    let read = |file: &std::path::PathBuf| std::fs::read(file).with_context(|| format!("cannot read {}", file.display()));
    if let [single] = files {
        return read(single);
    }
    let mut joined = Vec::new();
    for file in files {
        let bytes = read(file)?;
        if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            bail!("{} is not PEM; only PEM files can be combined with several --file options", file.display());
        }
        joined.extend_from_slice(&bytes);
        if !joined.ends_with(b"\n") {
            joined.push(b'\n');
        }
    }
    Ok(joined)
}

/// Writes a file only its owner can read (a PKCS#12 export holds a private key).
fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode on open; narrow it before the key goes in.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    eprintln!("wrote {} ({} bytes, readable only by you)", path.display(), bytes.len());
    Ok(())
}

fn write_output(path: Option<&Path>, bytes: &[u8], binary: bool) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            if binary && stdout.is_terminal() {
                bail!("this format is binary; write it to a file with --out FILE");
            }
            stdout.write_all(bytes)?;
            stdout.flush()?;
        }
    }
    Ok(())
}
