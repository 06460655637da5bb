//! `crm import`: CSV files into records, through the same checks as the API.
//!
//! The file is streamed in batches, never loaded whole. By default an import is all or
//! nothing: a first pass checks every row without writing (a rejected row stops the import,
//! with its line and reasons); a second pass writes every batch in one transaction
//! ([`Tenant::transaction`]), so a failure in a late batch leaves nothing behind. With
//! `--skip-invalid`, valid rows are written batch by batch and rejected ones reported.
//! `--dry-run` only checks. Cells may be quoted and span lines (RFC 4180); a UTF-8 byte order
//! mark before the header is ignored; a row with more or fewer cells than the header is rejected
//! with its line.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use crm_core::record::Fields;
use crm_core::{
    CustomFieldDefinition, DuplicatePolicy, Entity, EntityKind, EntityVisitor, Error, Tenant,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::Output;
use crate::connect::acting;
use crate::entity::{COMMON, Work, cell_for_column, cell_for_custom, editable, entity_parser};
use crate::spreadsheet;

/// Arguments of `crm import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// What the rows are.
    #[arg(value_parser = entity_parser())]
    entity: EntityKind,
    /// The CSV file (with a header row).
    file: PathBuf,
    /// Organization slug or id.
    #[arg(long)]
    org: String,
    /// Import as this user (email or id): rows are written with their access (what they may
    /// create, the fields they may write) and name them as creator. By default the import acts
    /// as the system.
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
    /// Map a CSV header to a field, `HEADER=FIELD` (repeatable); `HEADER=` ignores a column.
    /// Custom fields are `custom_fields.<key>`.
    #[arg(long = "map", value_name = "HEADER=FIELD")]
    map: Vec<String>,
    /// A file of `HEADER=FIELD` lines, as for --map.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Check every row and report; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the valid rows and report the rejected ones (default: all or nothing).
    #[arg(long)]
    skip_invalid: bool,
    /// Likely duplicates (same email, domain or normalized name as a live record, or as an
    /// earlier row): `warn` (import them and list them), `reject` (import nothing) or `ignore`.
    #[arg(long, default_value = "warn", value_parser = ["warn", "reject", "ignore"])]
    duplicates: String,
    /// Rows per batch (and per transaction).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=5000))]
    batch: u16,
}

/// A rejected row.
#[derive(Debug, Serialize)]
struct Rejected {
    line: u64,
    reasons: Vec<String>,
}

/// A row that looks like a record already there (or like an earlier row).
#[derive(Debug, Serialize)]
struct Likely {
    line: u64,
    rule: crm_core::MatchRule,
    id: uuid::Uuid,
}

/// What an import did.
#[derive(Debug, Serialize)]
struct Report {
    rows: u64,
    imported: u64,
    rejected: Vec<Rejected>,
    duplicates: Vec<Likely>,
    dry_run: bool,
}

impl ImportArgs {
    fn policy(&self) -> DuplicatePolicy {
        match self.duplicates.as_str() {
            "reject" => DuplicatePolicy::Reject,
            "ignore" => DuplicatePolicy::Ignore,
            _ => DuplicatePolicy::Warn,
        }
    }
}

/// The likely duplicates of a batch whose rows are on `lines`.
fn likely(lines: &[u64], duplicates: &[crm_core::Duplicate]) -> impl Iterator<Item = Likely> {
    duplicates.iter().map(|d| Likely {
        line: lines.get(d.index).copied().unwrap_or(0),
        rule: d.rule,
        id: d.id,
    })
}

/// One line per likely duplicate of a refused import.
fn refused(lines: &[u64], e: &Error) -> Option<String> {
    match e {
        Error::Duplicates { matches, .. } => Some(
            likely(lines, matches)
                .map(|l| format!("line {}: same {} as {}", l.line, l.rule, l.id))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
}

/// What a CSV column feeds.
enum Target {
    Column(&'static crm_core::record::Column),
    Custom(Box<CustomFieldDefinition>),
    Ignore,
}

pub(crate) async fn run(
    crm: &crm_core::Crm,
    args: ImportArgs,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let t = acting(crm, &args.org, args.as_user.as_deref()).await?;
    args.entity
        .visit(Import {
            t: &t,
            args: &args,
            out,
        })
        .await
}

fn mappings(args: &ImportArgs) -> anyhow::Result<HashMap<String, String>> {
    let mut lines = args.map.clone();
    if let Some(path) = &args.mapping {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        lines.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    lines
        .iter()
        .map(|l| match l.split_once('=') {
            Some((h, f)) => Ok((h.trim().to_owned(), f.trim().to_owned())),
            None => bail!("bad mapping `{l}`: expected HEADER=FIELD"),
        })
        .collect()
}

fn plan<E: Entity>(
    headers: &csv::StringRecord,
    map: &HashMap<String, String>,
    defs: &[CustomFieldDefinition],
) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    let mut unknown = Vec::new();
    for h in headers {
        let field = map.get(h).map(String::as_str).unwrap_or(h);
        let target = if field.is_empty() || COMMON.contains(&field) {
            Target::Ignore
        } else if let Some(key) = field.strip_prefix("custom_fields.") {
            match defs.iter().find(|d| d.key == key) {
                Some(d) => Target::Custom(Box::new(d.clone())),
                None => {
                    unknown.push(format!("`{h}` (custom field `{key}` is not defined)"));
                    Target::Ignore
                }
            }
        } else {
            match E::COLUMNS.iter().find(|c| c.name == field) {
                Some(c) if c.readonly => Target::Ignore,
                Some(c) => Target::Column(c),
                None => {
                    unknown.push(format!("`{h}`"));
                    Target::Ignore
                }
            }
        };
        targets.push(target);
    }
    if !unknown.is_empty() {
        let fields: Vec<_> = editable(E::COLUMNS).map(|c| c.name).collect();
        bail!(
            "unknown columns {}; map them with --map HEADER=FIELD (or HEADER= to ignore). Fields of {}: {}, custom_fields.<key>",
            unknown.join(", "),
            E::NAME,
            fields.join(", ")
        );
    }
    Ok(targets)
}

/// One row as the entity's create input, or the reasons it cannot be one.
fn row<E: Entity>(
    targets: &[Target],
    record: &csv::StringRecord,
) -> Result<<E as Fields>::New, Vec<String>> {
    if record.len() != targets.len() {
        return Err(vec![format!(
            "{} cells where the header has {}",
            record.len(),
            targets.len()
        )]);
    }
    let mut fields = Map::new();
    let mut custom = Map::new();
    let mut reasons = Vec::new();
    for (target, cell) in targets.iter().zip(record) {
        // A cell `crm export` escaped (`'=…`) stands for the text without its `'`.
        let cell = spreadsheet::restore(cell).trim();
        if cell.is_empty() {
            continue;
        }
        match target {
            Target::Ignore => {}
            Target::Column(c) => match cell_for_column(c.kind, cell) {
                Ok(v) => {
                    fields.insert(c.name.to_owned(), v);
                }
                Err(expected) => reasons.push(format!("{}: must be {expected}", c.name)),
            },
            Target::Custom(d) => match cell_for_custom(d, cell) {
                Ok(v) => {
                    custom.insert(d.key.clone(), v);
                }
                Err(expected) => {
                    reasons.push(format!("custom_fields.{}: must be {expected}", d.key))
                }
            },
        }
    }
    if !reasons.is_empty() {
        return Err(reasons);
    }
    fields.insert("custom_fields".into(), Value::Object(custom));
    serde_json::from_value(Value::Object(fields)).map_err(|e| vec![e.to_string()])
}

fn reasons(e: &Error) -> Vec<String> {
    match e {
        Error::Validation(errors) => errors
            .iter()
            .map(|f| {
                let field = f
                    .field
                    .split_once("].")
                    .map(|(_, rest)| rest)
                    .unwrap_or(&f.field);
                format!("{field}: {}", f.message)
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

fn open(path: &Path) -> anyhow::Result<(csv::Reader<File>, ProgressBar)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(size);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} {bytes}/{total_bytes} {wide_bar} {msg}",
    )?);
    Ok((
        // Flexible: a row of the wrong width is rejected by `row`, with its line, like any other.
        csv::ReaderBuilder::new().flexible(true).from_reader(file),
        bar,
    ))
}

/// Runs [`import`] for the entity type of a kind.
struct Import<'a> {
    t: &'a Tenant,
    args: &'a ImportArgs,
    out: Output,
}

impl<'a> EntityVisitor for Import<'a> {
    type Output = Work<'a, ExitCode>;
    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(import::<E>(self.t, self.args, self.out))
    }
}

async fn import<E: Entity>(t: &Tenant, args: &ImportArgs, out: Output) -> anyhow::Result<ExitCode> {
    let defs = t.custom_fields().list(E::KIND).await?;
    let map = mappings(args)?;
    let batch = usize::from(args.batch);
    let mut report = Report {
        rows: 0,
        imported: 0,
        rejected: Vec::new(),
        duplicates: Vec::new(),
        dry_run: args.dry_run,
    };
    let policy = args.policy();

    // Pass 1 checks (and, with --skip-invalid, writes the valid rows of each batch).
    let write_now = args.skip_invalid && !args.dry_run;
    let (mut reader, bar) = open(&args.file)?;
    let targets = plan::<E>(
        reader.headers().context("reading the header row")?,
        &map,
        &defs,
    )?;
    let mut records = reader.records();
    loop {
        let mut rows = Vec::with_capacity(batch);
        for record in records.by_ref().take(batch) {
            let record = record.context("reading the CSV file")?;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            report.rows += 1;
            match row::<E>(&targets, &record) {
                Ok(new) => rows.push((line, new)),
                Err(reasons) => report.rejected.push(Rejected { line, reasons }),
            }
        }
        if rows.is_empty() && records.reader().is_done() {
            break;
        }
        let (lines, news): (Vec<u64>, Vec<_>) = rows.into_iter().unzip();
        // With --skip-invalid, a clean batch is written at once; only a batch that fails is
        // checked row by row to set its bad rows aside.
        if write_now && !news.is_empty() {
            match t.records::<E>().import_with(news.clone(), policy).await {
                Ok(created) => {
                    report.imported += created.ids.len() as u64;
                    report
                        .duplicates
                        .extend(likely(&lines, &created.duplicates));
                    bar.set_position(records.reader().position().byte());
                    continue;
                }
                Err(Error::Validation(_) | Error::NotFound { .. }) => {}
                Err(e) => match refused(&lines, &e) {
                    Some(text) => bail!("likely duplicates; this batch was not imported:\n{text}"),
                    None => return Err(e.into()),
                },
            }
        }
        let problems = t.records::<E>().validate_many(news.clone()).await?;
        let mut valid = Vec::new();
        let mut valid_lines = Vec::new();
        for (i, new) in news.into_iter().enumerate() {
            match problems.iter().find(|(p, _)| *p == i) {
                Some((_, e)) => report.rejected.push(Rejected {
                    line: lines[i],
                    reasons: reasons(e),
                }),
                None => {
                    valid.push(new);
                    valid_lines.push(lines[i]);
                }
            }
        }
        if write_now && !valid.is_empty() {
            match t.records::<E>().import_with(valid, policy).await {
                Ok(created) => {
                    report.imported += created.ids.len() as u64;
                    report
                        .duplicates
                        .extend(likely(&valid_lines, &created.duplicates));
                }
                Err(e) => match refused(&valid_lines, &e) {
                    Some(text) => bail!("likely duplicates; this batch was not imported:\n{text}"),
                    None => return Err(e.into()),
                },
            }
        }
        bar.set_position(records.reader().position().byte());
    }
    bar.finish_and_clear();

    // Pass 2 writes an all-or-nothing import once every row passed: every batch in one
    // transaction, committed after the last.
    if !args.skip_invalid && !args.dry_run && report.rejected.is_empty() {
        let (mut reader, bar) = open(&args.file)?;
        reader.headers()?;
        // Why a row that passed pass 1 no longer does: the file changed in between.
        let mut changed: Option<String> = None;
        let changed_ref = &mut changed;
        let mut found = Vec::new();
        let found_ref = &mut found;
        let mut refusal: Option<String> = None;
        let refusal_ref = &mut refusal;
        let (targets, bar_ref) = (&targets, &bar);
        let written = t
            .transaction(|t| async move {
                let mut imported = 0;
                let mut records = reader.records();
                loop {
                    let mut news = Vec::with_capacity(batch);
                    let mut lines = Vec::with_capacity(batch);
                    for record in records.by_ref().take(batch) {
                        let new = record.map_err(|e| vec![e.to_string()]).and_then(|record| {
                            lines.push(record.position().map(|p| p.line()).unwrap_or(0));
                            row::<E>(targets, &record)
                        });
                        match new {
                            Ok(new) => news.push(new),
                            Err(reasons) => {
                                *changed_ref = Some(reasons.join("; "));
                                return Err(Error::conflict("file_changed", "the file changed"));
                            }
                        }
                    }
                    if news.is_empty() {
                        return Ok(imported);
                    }
                    let created = match t.records::<E>().import_with(news, policy).await {
                        Ok(created) => created,
                        Err(e) => {
                            *refusal_ref = refused(&lines, &e);
                            return Err(e);
                        }
                    };
                    imported += created.ids.len() as u64;
                    found_ref.extend(likely(&lines, &created.duplicates));
                    bar_ref.set_position(records.reader().position().byte());
                }
            })
            .await;
        bar.finish_and_clear();
        report.duplicates.extend(found);
        if let Some(text) = refusal {
            bail!("likely duplicates; nothing was imported:\n{text}");
        }
        report.imported = match (written, changed) {
            (Ok(n), _) => n,
            (Err(_), Some(reason)) => {
                bail!("the file changed during the import ({reason}); nothing was imported")
            }
            (Err(e), None) => {
                return Err(anyhow::Error::from(e).context("nothing was imported"));
            }
        };
    }

    let failed = !report.rejected.is_empty() && !args.skip_invalid;
    out.show(&report, || {
        let mut text: Vec<String> = report
            .rejected
            .iter()
            .map(|r| format!("line {}: {}", r.line, r.reasons.join("; ")))
            .collect();
        text.extend(report.duplicates.iter().map(|d| {
            format!("line {}: warning: same {} as {} {}", d.line, d.rule, args.entity, d.id)
        }));
        let verdict = match (args.dry_run, failed) {
            (true, _) => format!("dry run: {} rows, {} would be rejected; nothing written", report.rows, report.rejected.len()),
            (false, true) => format!("{} rows, {} rejected; nothing imported (use --skip-invalid to import the valid rows)", report.rows, report.rejected.len()),
            (false, false) => format!("{} rows: {} imported, {} rejected", report.rows, report.imported, report.rejected.len()),
        };
        text.push(verdict);
        text.join("\n")
    })?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
