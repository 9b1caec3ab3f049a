//! How a command prints the API's answer: `-o json` (the body exactly as the API answered),
//! `-o table` (a header row, then one row per resource) or `-o id` (one id per line, for
//! scripts).

use serde_json::Value;

/// `-o/--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// A table with a header row.
    #[default]
    Table,
    /// The API's JSON answer, unchanged.
    Json,
    /// The id of each resource, one per line.
    Id,
}

/// Where a command's resources are in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Items {
    /// An array under this key (`{"vpcs": [...]}`; `a.b` for one nested deeper).
    List(&'static str),
    /// One object under this key (`{"vpc": {...}}`).
    One(&'static str),
    /// The answer itself is the resource.
    Root,
    /// No body is expected (deletes, actions answering 204).
    Nothing,
}

/// How to show an answer: where the resources are, which columns a table has and which field
/// is the id. A column `a.b` reads field `b` of `a` (of each element when `a` is an array);
/// `.` is the resource itself (arrays of strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Where the resources are.
    pub items: Items,
    /// Table columns.
    pub columns: &'static [&'static str],
    /// The id column.
    pub id: &'static str,
}

impl View {
    /// A view of the resources at `items` with `columns`, the id in `id`.
    pub const fn new(items: Items, columns: &'static [&'static str]) -> Self {
        View {
            items,
            columns,
            id: "id",
        }
    }

    /// The same view with another id column.
    pub const fn id(self, id: &'static str) -> Self {
        View { id, ..self }
    }

    /// No body expected: prints nothing (`-o id`: `ids`).
    pub const NOTHING: View = View::new(Items::Nothing, &[]);
}

/// The resources of an answer.
fn resources(items: Items, body: &Value) -> Vec<&Value> {
    match items {
        Items::List(key) => key
            .split('.')
            .fold(body, |v, k| &v[k])
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Items::One(key) => match &body[key] {
            Value::Null => vec![],
            v => vec![v],
        },
        Items::Root => match body {
            Value::Null => vec![],
            v => vec![v],
        },
        Items::Nothing => vec![],
    }
}

/// The value at a column path (`a.b`, `.`).
fn lookup(v: &Value, path: &str) -> Value {
    if path == "." {
        return v.clone();
    }
    let mut current = vec![v];
    let mut array = false;
    for part in path.split('.') {
        let mut next = Vec::new();
        for c in current {
            match &c[part] {
                Value::Array(a) if !a.iter().any(Value::is_array) => {
                    array = true;
                    next.extend(a.iter());
                }
                Value::Null => {}
                x => next.push(x),
            }
        }
        current = next;
    }
    if array || current.len() > 1 {
        Value::Array(current.into_iter().cloned().collect())
    } else {
        current.first().map(|v| (*v).clone()).unwrap_or(Value::Null)
    }
}

/// A cell: strings as they are, port mappings as `client:server`, tags as `key=value`,
/// arrays joined with `,`, other objects as compact JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(o) => match (
            o.get("client_port"),
            o.get("server_port"),
            o.get("key"),
            o.get("ip_address"),
        ) {
            (Some(c), Some(s), _, _) => format!("{}:{}", cell(c), cell(s)),
            (_, _, Some(k), _) => match o.get("value").or(o.get("values")) {
                Some(v) => format!("{}={}", cell(k), cell(v)),
                None => cell(k),
            },
            (_, _, _, Some(ip)) => cell(ip),
            _ => v.to_string(),
        },
        other => other.to_string(),
    }
}

/// `text` safe for a terminal: control characters (an ANSI escape a tenant put in a
/// description, a newline that would forge a table row) are shown escaped (`\u{1b}`).
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What to print for an answer (`body` as received; `ids` are what `-o id` prints when the
/// answer has no body, e.g. the id a delete was given). Empty for nothing.
pub fn render(output: Output, view: &View, body: &[u8], ids: &[String]) -> String {
    if output == Output::Json {
        let text = String::from_utf8_lossy(body);
        return if text.is_empty() {
            String::new()
        } else {
            format!("{}\n", text.trim_end())
        };
    }
    let value: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    };
    let items = resources(view.items, &value);
    match output {
        Output::Id => {
            let mut out: Vec<String> = items
                .iter()
                .map(|r| printable(&cell(&lookup(r, view.id))))
                .collect();
            if view.items == Items::Nothing {
                out = ids.to_vec();
            }
            out.iter().map(|l| format!("{l}\n")).collect()
        }
        Output::Table => {
            if view.items == Items::Nothing {
                return String::new();
            }
            let mut table = comfy_table::Table::new();
            table.load_style(comfy_table::presets::NOTHING);
            // A list of strings is headed by its key, singular (`permissions`: PERMISSION).
            let item = match view.items {
                Items::List(key) => key.rsplit('.').next().unwrap_or(key).trim_end_matches('s'),
                _ => "value",
            };
            table.set_header(view.columns.iter().map(|c| {
                let name = if *c == "." { item } else { c };
                name.replace('.', "_").to_uppercase()
            }));
            for r in &items {
                table.add_row(view.columns.iter().map(|c| printable(&cell(&lookup(r, c)))));
            }
            let text = table.to_string();
            // The preset pads each line with a leading space; keep tables flush left.
            let lines: Vec<&str> = text
                .lines()
                .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
                .collect();
            format!("{}\n", lines.join("\n"))
        }
        Output::Json => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SERVICES: View = View::new(
        Items::List("endpoint_services"),
        &["id", "service_name", "ports", "tags"],
    );

    #[test]
    fn tables_have_a_header_and_one_row_per_resource() {
        let body = json!({"endpoint_services": [
            {"id": "a", "service_name": "r.web.a", "ports": [{"client_port": 80, "server_port": 8080, "protocol": "TCP"}], "tags": [{"key": "k", "value": "v"}]},
            {"id": "b", "service_name": "r.db.b", "ports": [], "tags": []}
        ], "total_count": 2})
        .to_string();
        let t = render(Output::Table, &SERVICES, body.as_bytes(), &[]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("ID"), "{t}");
        assert!(lines[0].contains("SERVICE_NAME"), "{t}");
        assert!(
            lines[1].contains("80:8080") && lines[1].contains("k=v"),
            "{t}"
        );
        assert_eq!(
            render(Output::Id, &SERVICES, body.as_bytes(), &[]),
            "a\nb\n"
        );
        assert_eq!(
            render(Output::Json, &SERVICES, body.as_bytes(), &[]),
            format!("{body}\n")
        );
    }

    /// What another account wrote (an endpoint's description in the owner's connection list)
    /// cannot drive the reader's terminal or forge rows.
    #[test]
    fn control_characters_from_the_api_are_shown_escaped() {
        let view = View::new(Items::List("connections"), &["id", "description"]).id("description");
        let body = serde_json::to_vec(&json!({"connections": [
            {"id": "e", "description": "\u{1b}[2J\u{1b}]0;owned\u{7}\nfake-row  accepted"}
        ]}))
        .unwrap();
        for output in [Output::Table, Output::Id] {
            let text = render(output, &view, &body, &[]);
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{7}'),
                "{text}"
            );
            assert!(text.contains("\\u{1b}[2J"), "{text}");
        }
        assert_eq!(render(Output::Table, &view, &body, &[]).lines().count(), 2);
        // JSON stays exactly the answer (its strings escape control characters).
        let json = render(Output::Json, &view, &body, &[]);
        assert!(!json.contains('\u{1b}'), "{json}");
    }

    #[test]
    fn nested_columns_and_empty_answers() {
        let ports = View::new(Items::One("port"), &["id", "fixed_ips.ip_address"]);
        let body = br#"{"port": {"id": "p", "fixed_ips": [{"ip_address": "127.30.0.5", "subnet_id": "s"}]}}"#;
        assert!(render(Output::Table, &ports, body, &[]).contains("127.30.0.5"));
        let ids = vec!["x".to_string()];
        assert_eq!(render(Output::Table, &View::NOTHING, b"", &ids), "");
        assert_eq!(render(Output::Json, &View::NOTHING, b"", &ids), "");
        assert_eq!(render(Output::Id, &View::NOTHING, b"", &ids), "x\n");
        let strings = View::new(Items::List("permissions"), &["."]).id(".");
        assert_eq!(
            render(
                Output::Id,
                &strings,
                br#"{"permissions": ["*", "iam:domain::d"]}"#,
                &[]
            ),
            "*\niam:domain::d\n"
        );
    }
}
