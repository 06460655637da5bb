//! `crm export`: records as CSV or JSON lines, page by page (keyset), never all in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use crm_core::access::FieldRule;
use crm_core::{Deleted, Entity, EntityKind, EntityVisitor, Filter, ListQuery, Op, Tenant};
use serde_json::Value;

use crate::connect::acting;
use crate::entity::{COMMON, Work, cell_of, entity_parser};
use crate::spreadsheet;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Comma-separated values with a header row; custom fields as `custom_fields.<key>` columns.
    Csv,
    /// One JSON object per line, as the API returns records.
    Jsonl,
}

/// Arguments of `crm export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// What to export.
    #[arg(value_parser = entity_parser())]
    entity: EntityKind,
    /// Organization slug or id.
    #[arg(long)]
    org: String,
    /// Export as this user (email or id): only the records they reach, without the fields
    /// hidden from them. By default the export acts as the system and holds everything.
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// A filter `FIELD:OP:VALUE` (repeatable; all must hold), e.g. `email:contains:acme` or
    /// `custom_fields.score:gt:10`. Ops: eq ne lt lte gt gte in contains starts_with is_null.
    #[arg(long = "filter", value_name = "FIELD:OP:VALUE")]
    filters: Vec<String>,
    /// Include records in the trash.
    #[arg(long)]
    include_deleted: bool,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// CSV: write text exactly as stored, also text a spreadsheet would run as a formula. By
    /// default a text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
    /// leading `'` (spreadsheets then show it as text; `crm import` takes it off again). Numbers
    /// are written as numbers either way.
    #[arg(long)]
    raw: bool,
}

pub(crate) async fn run(crm: &crm_core::Crm, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let t = acting(crm, &args.org, args.as_user.as_deref()).await?;
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::new(sink);
    args.entity
        .visit(Export {
            t: &t,
            args: &args,
            out: &mut sink,
        })
        .await?;
    sink.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn filter(text: &str) -> anyhow::Result<Filter> {
    let mut parts = text.splitn(3, ':');
    let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("bad filter `{text}`: expected FIELD:OP:VALUE");
    };
    let op: Op = serde_json::from_value(Value::String(op.to_owned()))
        .with_context(|| format!("unknown operator `{op}`"))?;
    // Numbers, booleans and lists are JSON; anything else is a string.
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok(Filter {
        field: field.to_owned(),
        op,
        value,
    })
}

/// Runs [`export`] for the entity type of a kind.
struct Export<'a, W> {
    t: &'a Tenant,
    args: &'a ExportArgs,
    out: &'a mut W,
}

impl<'a, W: Write> EntityVisitor for Export<'a, W> {
    type Output = Work<'a, ()>;
    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(export::<E>(self.t, self.args, self.out))
    }
}

async fn export<E: Entity>(
    t: &Tenant,
    args: &ExportArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let query = ListQuery {
        filters: args
            .filters
            .iter()
            .map(|f| filter(f))
            .collect::<anyhow::Result<_>>()?,
        limit: Some(100),
        deleted: if args.include_deleted {
            Deleted::Include
        } else {
            Deleted::Exclude
        },
        ..Default::default()
    };
    // A field hidden from the caller has no column: its values are not theirs to see.
    let grants = t.grants().await?;
    let shown = |name: &str| grants.field_rule(E::TABLE, name) != Some(FieldRule::Hidden);
    let keys: Vec<String> = t
        .custom_fields()
        .list(E::KIND)
        .await?
        .into_iter()
        .map(|d| d.key)
        .filter(|k| shown(k))
        .collect();
    let columns: Vec<String> = COMMON
        .iter()
        .map(|c| (*c).to_owned())
        .chain(
            E::COLUMNS
                .iter()
                .filter(|c| shown(c.name))
                .map(|c| c.name.to_owned()),
        )
        .chain(keys.iter().map(|k| format!("custom_fields.{k}")))
        .collect();
    match args.format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&columns)?;
            // Text is what a web form or an import brought in: anyone's. Numbers, booleans and
            // JSON (lists, money) cannot start a formula.
            let cell = |value: Option<&Value>| match value {
                Some(Value::String(text)) if !args.raw => spreadsheet::neutralize(text),
                other => cell_of(other),
            };
            each_record::<E>(t, query, |value| {
                let cells = columns
                    .iter()
                    .map(|c| match c.strip_prefix("custom_fields.") {
                        Some(k) => cell(value["custom_fields"].get(k)),
                        None => cell(value.get(c)),
                    });
                Ok(w.write_record(cells)?)
            })
            .await?;
            w.flush()?;
        }
        Format::Jsonl => {
            each_record::<E>(t, query, |value| {
                serde_json::to_writer(&mut *out, value)?;
                Ok(out.write_all(b"\n")?)
            })
            .await?;
        }
    }
    Ok(())
}

/// Calls `sink` with every record the query finds, serialized, page by page.
async fn each_record<E: Entity>(
    t: &Tenant,
    mut query: ListQuery,
    mut sink: impl FnMut(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        let page = t.records::<E>().list(&query).await?;
        for record in &page.data {
            sink(&serde_json::to_value(record)?)?;
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return Ok(()),
        }
    }
}
