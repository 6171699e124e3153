//! The YAML layer: the parser's options, a tree of values that keeps each value's line, and
//! finding the `config.yaml` of bare-ccm's ConfigMap inside a manifest.

use std::fmt;

use serde::Deserialize;

/// The YAML reading rules: only YAML 1.2 booleans (`true`/`false`, not `yes`/`on`), so a
/// plain `yes` is a string; duplicate keys reach the schema walk, which reports them.
pub(super) fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    }
}

/// True when the text holds no YAML content (only blanks, comments, document markers).
pub(super) fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// A value and the 1-based line where it starts (when the parser knew it).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Spanned<T> {
    pub(super) value: T,
    pub(super) line: Option<u64>,
}

/// A YAML value as written, before the schema is applied: a scalar keeps what YAML made of
/// it, so a number or boolean where text is wanted can be refused ("quote it") rather
/// than converted, and a map keeps every entry, duplicates included, in file order.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Yaml {
    Null,
    /// A string scalar (quoted, or plain text YAML reads as no other type).
    Text(String),
    Bool(bool),
    /// A number, as it reads back.
    Number(String),
    Seq(Vec<Spanned<Yaml>>),
    Map(Vec<(Spanned<Yaml>, Spanned<Yaml>)>),
}

impl<'de> Deserialize<'de> for Spanned<Yaml> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<Yaml>::deserialize(d)?;
        Ok(Spanned {
            line: Some(s.referenced.line()).filter(|l| *l > 0),
            value: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Yaml;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Yaml, E> {
                Ok(Yaml::Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Yaml, E> {
                Ok(Yaml::Bool(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Yaml, E> {
                Ok(Yaml::Number(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Yaml, E> {
                Ok(Yaml::Number(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Yaml, E> {
                Ok(Yaml::Number(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
                Yaml::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Yaml, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element::<Spanned<Yaml>>()? {
                    items.push(item);
                }
                Ok(Yaml::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Yaml, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = a.next_key::<Spanned<Yaml>>()? {
                    entries.push((key, a.next_value::<Spanned<Yaml>>()?));
                }
                Ok(Yaml::Map(entries))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Yaml {
    /// What a message calls this kind of value.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Yaml::Null => "nothing",
            Yaml::Text(_) => "a string",
            Yaml::Bool(_) => "a boolean",
            Yaml::Number(_) => "a number",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a map",
        }
    }

    /// A scalar as written back (for keys and messages).
    pub(super) fn scalar_text(&self) -> Option<String> {
        match self {
            Yaml::Text(s) | Yaml::Number(s) => Some(s.clone()),
            Yaml::Bool(b) => Some(b.to_string()),
            Yaml::Null => Some("null".into()),
            Yaml::Seq(_) | Yaml::Map(_) => None,
        }
    }
}

/// The YAML of a config as a tree; `None` for a document without content.
pub(super) fn parse_tree(text: &str) -> Result<Option<Spanned<Yaml>>, serde_saphyr::Error> {
    if is_blank_yaml(text) {
        return Ok(None);
    }
    let root: Spanned<Yaml> = serde_saphyr::from_str_with_options(text, parse_options())?;
    Ok((root.value != Yaml::Null).then_some(root))
}

/// Where `check-config` found the config text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The config YAML itself.
    pub text: String,
    /// Lines of the input before the config's first line (0 for a config file).
    pub line_offset: u64,
    /// `None` for a config file, else `ConfigMap NAMESPACE/NAME` (the key is [`CONFIG_KEY`]).
    pub config_map: Option<String>,
}

/// The ConfigMap that holds bare-ccm's config in the shipped manifests.
pub const CONFIG_MAP: &str = "bare-ccm-config";
/// Its key that holds the config file (mounted as `/etc/bare-ccm/config.yaml`).
pub const CONFIG_KEY: &str = "config.yaml";

/// Finds the config in `text`: a config file as it is; a ConfigMap document (its
/// [`CONFIG_KEY`]); or, in a manifest of several documents, the ConfigMap [`CONFIG_MAP`].
/// Lines of an embedded config are counted from the input's first line, so a problem's line
/// points into the manifest. YAML that does not parse is treated as a config file (its
/// parse error is then reported); `Err` says why no config was found.
pub fn locate_config(text: &str) -> Result<Located, String> {
    let as_file = Located {
        text: text.to_string(),
        line_offset: 0,
        config_map: None,
    };
    let Ok(docs) = serde_saphyr::from_multiple_with_options::<Spanned<Yaml>>(text, parse_options())
    else {
        return Ok(as_file);
    };
    let docs: Vec<&Spanned<Yaml>> = docs.iter().filter(|d| d.value != Yaml::Null).collect();
    let field = |doc: &Spanned<Yaml>, name: &str| -> Option<Spanned<Yaml>> {
        let Yaml::Map(entries) = &doc.value else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| k.value == Yaml::Text(name.to_string()))
            .map(|(_, v)| v.clone())
    };
    let text_of = |v: Option<Spanned<Yaml>>| match v.map(|v| v.value) {
        Some(Yaml::Text(s)) => Some(s),
        _ => None,
    };
    let kind = |doc: &Spanned<Yaml>| text_of(field(doc, "kind"));
    let is_object = |doc: &Spanned<Yaml>| kind(doc).is_some() && field(doc, "apiVersion").is_some();
    if docs.len() <= 1 && !docs.iter().any(|d| is_object(d)) {
        return Ok(as_file);
    }
    let config_maps: Vec<&Spanned<Yaml>> = docs
        .iter()
        .copied()
        .filter(|d| kind(d).as_deref() == Some("ConfigMap"))
        .collect();
    let name_of = |doc: &Spanned<Yaml>| {
        let meta = field(doc, "metadata");
        let name = meta.as_ref().and_then(|m| text_of(field(m, "name")));
        let namespace = meta.as_ref().and_then(|m| text_of(field(m, "namespace")));
        (
            name.unwrap_or_default(),
            namespace.unwrap_or_else(|| "default".into()),
        )
    };
    let chosen = match config_maps.as_slice() {
        [only] if docs.len() == 1 => *only,
        _ => config_maps
            .iter()
            .copied()
            .find(|d| name_of(d).0 == CONFIG_MAP)
            .ok_or_else(|| {
                if docs.len() == 1 {
                    format!(
                        "it holds a {}, not a bare-ccm config or its ConfigMap",
                        kind(docs[0]).unwrap_or_default()
                    )
                } else {
                    format!(
                        "no ConfigMap {CONFIG_MAP} among its {} documents",
                        docs.len()
                    )
                }
            })?,
    };
    let (name, namespace) = name_of(chosen);
    let described = format!("ConfigMap {namespace}/{name}");
    let value = field(chosen, "data")
        .and_then(|data| field(&data, CONFIG_KEY))
        .ok_or_else(|| format!("{described} has no data key {CONFIG_KEY}"))?;
    let Yaml::Text(config) = &value.value else {
        return Err(format!("{described}: data.{CONFIG_KEY} is not a string"));
    };
    // A block scalar (`config.yaml: |`) starts on the line after its indicator and keeps
    // its lines; a scalar on the key's own line starts on that line.
    let line = value.line.unwrap_or(1);
    let indicator = text
        .lines()
        .nth(usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX))
        .map(|l| l.split(" #").next().unwrap_or(l).trim_end())
        .is_some_and(|l| {
            l.rsplit_once(':').is_some_and(|(_, rest)| {
                let rest = rest.trim();
                rest.starts_with('|') || rest.starts_with('>')
            })
        });
    Ok(Located {
        text: config.clone(),
        line_offset: if indicator {
            line
        } else {
            line.saturating_sub(1)
        },
        config_map: Some(described),
    })
}

/// The line of a spanned value, when the parser knew it.
pub(super) fn line_of<T>(s: &Spanned<T>) -> Option<u64> {
    s.line
}
