//! `--config streams.toml`: a `[server]` table and one `[[stream]]` table per stream, read into the
//! very command lines the flags are, so that a key means exactly what its flag means and is
//! checked by the same parser.
//!
//! ```toml
//! [server]
//! bind = "127.0.0.1:5000"
//! out_dir = "video"
//! cors_origin = ["https://example.org"]
//!
//! [[stream]]
//! name = "yard"
//! input = "rtsp://192.0.2.7/stream1"
//! low_latency = false
//! ```
//!
//! A key is a flag's long name with `_` for `-` (`hls_time` is `--hls-time`). Its value is what
//! the flag takes: a string, an integer or a float (written as TOML writes it), an array for a
//! flag given more than once (`cors_origin`), a boolean for a switch: `transcode = true` is
//! `--transcode`, `low_latency = false` is `--no-low-latency` (the switch that turns a default
//! off is named after the default), and the other value of either is the default, no flag.
//!
//! Every error names the file, the line and the key: a key no flag has, a value of the wrong
//! type, a value the flag's parser refuses (checked one key at a time, with nothing else set),
//! a table where none belongs, two streams of the same name (compared without case, since file
//! names carry it and some file systems fold case). Nothing is read but the text.

use std::collections::HashMap;
use std::path::Path;

use clap::builder::ValueRange;
use clap::{ArgAction, Command};
use toml::de::{DeTable, DeValue};

use crate::error::{Error, ErrorKind};

/// One table of the file as a command line (`argv[0]` is the file's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableArgs {
    /// The command line the table says.
    pub argv: Vec<String>,
    /// The line of the table's header (`[server]`, `[[stream]]`); 0 for a `[server]` table the
    /// file leaves out.
    pub line: usize,
    /// `(long flag, key, line)` of each key, to name a refused value's line.
    keys: Vec<(String, String, usize)>,
}

impl TableArgs {
    /// The line of the key whose flag a parser error names (`--fps <FPS>`), or of the table.
    pub fn line_of_flag(&self, flag: &str) -> Option<(&str, usize)> {
        self.keys
            .iter()
            .find(|(long, _, _)| long == flag)
            .map(|(_, key, line)| (key.as_str(), *line))
    }

    /// `file:line: ` before `msg`, where the line is that of the key a clap error names, else the
    /// table's header.
    pub fn locate(&self, file: &Path, err: &clap::Error) -> Error {
        let flag = err.context().find_map(|(kind, value)| match (kind, value) {
            (clap::error::ContextKind::InvalidArg, clap::error::ContextValue::String(arg)) => Some(
                arg.trim_start_matches('-')
                    .split([' ', '='])
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            ),
            _ => None,
        });
        let detail = err.kind().as_str().unwrap_or("invalid value");
        let rendered = err.render().to_string();
        let first = rendered
            .lines()
            .next()
            .unwrap_or(detail)
            .trim_start_matches("error: ");
        match flag.as_deref().and_then(|f| self.line_of_flag(f)) {
            Some((key, line)) => located(file, line, format!("key `{key}`: {first}")),
            None => located(file, self.line, first.to_owned()),
        }
    }
}

/// The file read into command lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileArgs {
    pub server: TableArgs,
    /// In the file's order.
    pub streams: Vec<TableArgs>,
}

fn located(file: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    if line == 0 {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{}: {msg}", file.display()),
        )
    } else {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{}:{line}: {msg}", file.display()),
        )
    }
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// How a key's value becomes arguments.
enum Shape {
    /// `--flag VALUE` (repeated for an array when the flag may be given more than once).
    Value { multiple: bool },
    /// A switch: `true` gives `--flag`.
    On,
    /// A switch named `--no-KEY`: `false` gives it.
    Off,
}

/// The keys `cmd` takes: each long flag but help and version, as `key -> (long, shape)`.
fn keys_of(cmd: &Command) -> HashMap<String, (String, Shape)> {
    let mut keys = HashMap::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let shape = match arg.get_action() {
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version => {
                continue
            }
            ArgAction::SetTrue => {
                if let Some(rest) = long.strip_prefix("no-") {
                    keys.insert(rest.replace('-', "_"), (long.to_owned(), Shape::Off));
                    continue;
                }
                Shape::On
            }
            ArgAction::Append => Shape::Value { multiple: true },
            _ => Shape::Value {
                multiple: arg
                    .get_num_args()
                    .is_some_and(|r: ValueRange| r.max_values() > 1),
            },
        };
        keys.insert(long.replace('-', "_"), (long.to_owned(), shape));
    }
    keys
}

/// A scalar as the flag's text.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => Some(i.as_str().replace('_', "")),
        DeValue::Float(f) => Some(f.as_str().replace('_', "")),
        _ => None,
    }
}

/// One table into a command line for `cmd`; `what` names the table in messages.
fn table_args(
    file: &Path,
    text: &str,
    what: &str,
    header_line: usize,
    table: &DeTable<'_>,
    cmd: &Command,
) -> Result<TableArgs, Error> {
    let keys = keys_of(cmd);
    let mut out = TableArgs {
        argv: vec![file.display().to_string()],
        line: header_line,
        keys: Vec::new(),
    };
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in entries {
        let line = line_of(text, key.span().start);
        let name: &str = key.get_ref();
        let Some((long, shape)) = keys.get(name) else {
            let mut known: Vec<&str> = keys.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(located(
                file,
                line,
                format!(
                    "unknown key `{name}` in {what} (the keys are: {})",
                    known.join(", ")
                ),
            ));
        };
        let flag = format!("--{long}");
        let wrong = |want: &str| {
            located(
                file,
                line,
                format!(
                    "key `{name}` wants {want}, not {}",
                    value.get_ref().type_str()
                ),
            )
        };
        match (shape, value.get_ref()) {
            (Shape::On, DeValue::Boolean(on)) => {
                if *on {
                    out.argv.push(flag);
                }
            }
            (Shape::Off, DeValue::Boolean(on)) => {
                if !*on {
                    out.argv.push(flag);
                }
            }
            (Shape::On | Shape::Off, _) => return Err(wrong("true or false")),
            (Shape::Value { multiple: true }, DeValue::Array(items)) => {
                for item in items.iter() {
                    let v = scalar(item.get_ref()).ok_or_else(|| wrong("an array of strings"))?;
                    out.argv.push(format!("{flag}={v}"));
                }
            }
            (Shape::Value { .. }, v) => {
                let v = scalar(v).ok_or_else(|| wrong("a string or a number"))?;
                out.argv.push(format!("{flag}={v}"));
            }
        }
        out.keys.push((long.clone(), name.to_owned(), line));
    }
    // Each key alone through the flag's own parser, so that a refused value names its line
    // even when the whole command line would fail first elsewhere.
    for (i, (long, _, _)) in out.keys.iter().enumerate() {
        let one = out
            .argv
            .iter()
            .skip(1)
            .filter(|a| {
                a.strip_prefix("--")
                    .is_some_and(|a| a.split('=').next() == Some(long.as_str()))
            })
            .cloned();
        let argv = std::iter::once(out.argv[0].clone()).chain(one);
        if let Err(e) = cmd.clone().try_get_matches_from(argv) {
            if e.kind() != clap::error::ErrorKind::MissingRequiredArgument {
                let (_, key, line) = &out.keys[i];
                return Err(located(
                    file,
                    *line,
                    format!(
                        "key `{key}`: {}",
                        e.render()
                            .to_string()
                            .lines()
                            .next()
                            .unwrap_or("invalid value")
                            .trim_start_matches("error: ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Reads `text`, the contents of `file`, into the server's and each stream's command line.
/// `server` and `stream` are the commands whose flags the two kinds of table take; `name_key`
/// is the stream key whose value must differ between streams (the stream's name) and
/// `default_name` its value when a table leaves it out (only one such table can then exist).
pub fn read(
    file: &Path,
    text: &str,
    server: &Command,
    stream: &Command,
    default_name: &str,
) -> Result<FileArgs, Error> {
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        located(file, line, e.message().trim_end())
    })?;
    let mut server_args = None;
    let mut streams = Vec::new();
    let mut entries: Vec<_> = doc.get_ref().iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in entries {
        let line = line_of(text, key.span().start);
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("server", DeValue::Table(t)) => {
                server_args = Some(table_args(file, text, "[server]", line, t, server)?);
            }
            ("stream", DeValue::Array(tables)) => {
                for t in tables.iter() {
                    let at = line_of(text, t.span().start);
                    let DeValue::Table(t) = t.get_ref() else {
                        return Err(located(file, at, "`stream` must be [[stream]] tables"));
                    };
                    // The header `[[stream]]` is the last one before the table's first key.
                    let first_key = t.iter().map(|(k, _)| k.span().start).min();
                    let header = text[..first_key.unwrap_or(at).min(text.len())]
                        .rfind("[[")
                        .map_or(at, |i| line_of(text, i));
                    streams.push(table_args(file, text, "[[stream]]", header, t, stream)?);
                }
            }
            ("server", _) => return Err(located(file, line, "`server` must be a [server] table")),
            ("stream", _) => {
                return Err(located(file, line, "`stream` must be [[stream]] tables"));
            }
            (other, _) => {
                return Err(located(
                    file,
                    line,
                    format!(
                        "unknown key `{other}` (the file holds a [server] table and [[stream]] tables)"
                    ),
                ));
            }
        }
    }
    if streams.is_empty() {
        return Err(located(
            file,
            0,
            "no [[stream]] table: name at least one stream",
        ));
    }
    let server = server_args.unwrap_or_else(|| TableArgs {
        argv: vec![file.display().to_string()],
        line: 0,
        keys: Vec::new(),
    });
    check_names(file, &streams, default_name)?;
    Ok(FileArgs { server, streams })
}

/// Two streams of one name would write the same files.
fn check_names(file: &Path, streams: &[TableArgs], default_name: &str) -> Result<(), Error> {
    let mut seen: HashMap<String, (usize, String)> = HashMap::new();
    for s in streams {
        let (name, line) = s
            .argv
            .iter()
            .find_map(|a| a.strip_prefix("--name="))
            .map(|n| {
                (
                    n.to_owned(),
                    s.line_of_flag("name").map_or(s.line, |(_, l)| l),
                )
            })
            .unwrap_or_else(|| (default_name.to_owned(), s.line));
        if let Some((first, first_name)) =
            seen.insert(name.to_ascii_lowercase(), (line, name.clone()))
        {
            return Err(located(
                file,
                line,
                format!(
                    "key `name`: stream {name:?} would write the same files as stream \
                     {first_name:?} (line {first}): give every stream its own name"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn server() -> Command {
        Command::new("s")
            .arg(
                Arg::new("bind")
                    .long("bind")
                    .value_parser(clap::value_parser!(std::net::SocketAddr)),
            )
            .arg(Arg::new("out_dir").long("out-dir"))
            .arg(
                Arg::new("cors")
                    .long("cors-origin")
                    .action(ArgAction::Append),
            )
    }

    fn stream() -> Command {
        Command::new("t")
            .arg(Arg::new("name").long("name"))
            .arg(Arg::new("input").long("input"))
            .arg(
                Arg::new("fps")
                    .long("fps")
                    .value_parser(clap::value_parser!(u32)),
            )
            .arg(
                Arg::new("hls_time")
                    .long("hls-time")
                    .value_parser(clap::value_parser!(f64)),
            )
            .arg(
                Arg::new("ll")
                    .long("no-low-latency")
                    .action(ArgAction::SetTrue),
            )
            .arg(
                Arg::new("transcode")
                    .long("transcode")
                    .action(ArgAction::SetTrue),
            )
    }

    fn read_str(text: &str) -> Result<FileArgs, Error> {
        read(
            Path::new("streams.toml"),
            text,
            &server(),
            &stream(),
            "chessboard",
        )
    }

    fn err(text: &str) -> String {
        let e = read_str(text).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "exit 2: {e}");
        e.to_string()
    }

    #[test]
    fn tables_become_the_flags_command_lines() {
        let f = read_str(
            "[server]\nbind = \"127.0.0.1:5001\"\ncors_origin = [\"https://a.example\", \"https://b.example\"]\n\n\
             [[stream]]\nname = \"yard\"\ninput = \"rtsp://192.0.2.7/s\"\nlow_latency = false\ntranscode = true\nhls_time = 2.5\n\n\
             [[stream]]\nname = \"board\"\nfps = 25\nlow_latency = true\ntranscode = false\n",
        )
        .unwrap();
        assert_eq!(
            f.server.argv[1..],
            [
                "--bind=127.0.0.1:5001",
                "--cors-origin=https://a.example",
                "--cors-origin=https://b.example"
            ]
        );
        assert_eq!(
            f.streams[0].argv[1..],
            [
                "--name=yard",
                "--input=rtsp://192.0.2.7/s",
                "--no-low-latency",
                "--transcode",
                "--hls-time=2.5"
            ]
        );
        assert_eq!(f.streams[0].line, 5);
        assert_eq!(f.streams[1].argv[1..], ["--name=board", "--fps=25"]);
        assert_eq!(f.streams[1].line, 12);
        // And the commands take them.
        for s in &f.streams {
            stream().try_get_matches_from(&s.argv).unwrap();
        }
        server().try_get_matches_from(&f.server.argv).unwrap();
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        assert!(
            err("[[stream]]\nname = \"a\"\nfsp = 30\n").starts_with(
                "streams.toml:3: unknown key `fsp` in [[stream]] (the keys are: fps, hls_time, input, low_latency, name, transcode)"
            ),
            "{}",
            err("[[stream]]\nname = \"a\"\nfsp = 30\n")
        );
        let e = err("[[stream]]\nname = \"a\"\nfps = \"fast\"\n");
        assert!(
            e.starts_with("streams.toml:3: key `fps`: invalid value 'fast'"),
            "{e}"
        );
        let e = err("[[stream]]\nname = \"a\"\ntranscode = \"yes\"\n");
        assert_eq!(
            e,
            "streams.toml:3: key `transcode` wants true or false, not string"
        );
        let e = err("[server]\nbind = \"nowhere\"\n[[stream]]\nname = \"a\"\n");
        assert!(
            e.starts_with("streams.toml:2: key `bind`: invalid value 'nowhere'"),
            "{e}"
        );
        let e = err("[server]\nport = 5000\n[[stream]]\n");
        assert!(
            e.starts_with("streams.toml:2: unknown key `port` in [server]"),
            "{e}"
        );
        let e = err("[[stream]]\nname = \"a\"\n[[streams]]\nname = \"b\"\n");
        assert!(
            e.starts_with("streams.toml:3: unknown key `streams`"),
            "{e}"
        );
        let e = err("[[stream]]\nname = \"a\"\nname = \"b\"\n");
        assert!(e.starts_with("streams.toml:3: "), "a TOML error: {e}");
        assert_eq!(
            err("[server]\nbind = \"127.0.0.1:1\"\n"),
            "streams.toml: no [[stream]] table: name at least one stream"
        );
        assert_eq!(
            err("stream = 3\n"),
            "streams.toml:1: `stream` must be [[stream]] tables"
        );
    }

    #[test]
    fn two_streams_of_one_name_are_refused_whatever_the_case() {
        let e = err("[[stream]]\nname = \"yard\"\n\n[[stream]]\ninput = \"-\"\nname = \"Yard\"\n");
        assert_eq!(
            e,
            "streams.toml:6: key `name`: stream \"Yard\" would write the same files as stream \
             \"yard\" (line 2): give every stream its own name"
        );
        // Two tables without a name both take the default.
        let e = err("[[stream]]\nfps = 30\n[[stream]]\nfps = 25\n");
        assert!(
            e.starts_with("streams.toml:3: key `name`: stream \"chessboard\""),
            "{e}"
        );
    }

    #[test]
    fn a_located_clap_error_names_the_key_of_the_flag() {
        let f = read_str("[[stream]]\nname = \"a\"\nfps = 30\n").unwrap();
        let e = stream()
            .try_get_matches_from(["t", "--fps=x"])
            .expect_err("refused");
        let located = f.streams[0].locate(Path::new("s.toml"), &e);
        assert!(
            located.to_string().starts_with("s.toml:3: key `fps`: "),
            "{located}"
        );
    }
}
