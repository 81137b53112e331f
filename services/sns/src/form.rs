//! A query-protocol form as SNS's operations read it: scalars by name, maps as
//! `Name.entry.N.key` / `Name.entry.N.value`, lists as `Name.member.N`, and message
//! attributes as `MessageAttributes.entry.N.Name` / `.Value.DataType` /
//! `.Value.StringValue` / `.Value.BinaryValue`.

use std::collections::BTreeMap;

use base64::Engine;
use protocol::ApiError;

use crate::invalid;

/// Form pairs a request may carry.
const PAIRS_MAX: usize = 4_096;
/// List and map entries a form may number (`.N`), at most.
const INDEX_MAX: usize = 1_000;

pub struct Form {
    pairs: BTreeMap<String, String>,
}

/// A message attribute as Publish takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttribute {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, ApiError> {
        let pairs = protocol::query::form_pairs(body)
            .ok_or_else(|| invalid("the request body is not a form"))?;
        if pairs.len() > PAIRS_MAX {
            return Err(invalid(format!(
                "a request carries at most {PAIRS_MAX} parameters"
            )));
        }
        Ok(Form {
            pairs: pairs.into_iter().collect(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.get(name).map(String::as_str)
    }

    /// A required parameter; SNS's words when it is missing.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| invalid(format!("{name} Reason: cannot be empty")))
    }

    /// The entries `prefix.1`, `prefix.2`, ... until the first missing one, each
    /// as the prefix of its members.
    fn numbered(&self, prefix: &str) -> Vec<String> {
        (1..=INDEX_MAX)
            .map(|i| format!("{prefix}.{i}"))
            .take_while(|p| {
                self.pairs
                    .range(format!("{p}.")..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&format!("{p}.")))
                    || self.pairs.contains_key(p)
            })
            .collect()
    }

    /// `Name.entry.N.key/value` as a map.
    pub fn map(&self, name: &str) -> BTreeMap<String, String> {
        self.numbered(&format!("{name}.entry"))
            .into_iter()
            .filter_map(|p| {
                Some((
                    self.get(&format!("{p}.key"))?.to_string(),
                    self.get(&format!("{p}.value"))
                        .unwrap_or_default()
                        .to_string(),
                ))
            })
            .collect()
    }

    /// `Name.member.N` as a list.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.numbered(&format!("{name}.member"))
            .into_iter()
            .filter_map(|p| self.get(&p).map(str::to_string))
            .collect()
    }

    /// `Tags.member.N.Key/Value` as pairs.
    pub fn tags(&self, name: &str) -> Vec<(String, String)> {
        self.numbered(&format!("{name}.member"))
            .into_iter()
            .filter_map(|p| {
                Some((
                    self.get(&format!("{p}.Key"))?.to_string(),
                    self.get(&format!("{p}.Value"))
                        .unwrap_or_default()
                        .to_string(),
                ))
            })
            .collect()
    }

    /// The message attributes under `prefix` (`MessageAttributes`, or a batch entry's).
    pub fn message_attributes(
        &self,
        prefix: &str,
    ) -> Result<BTreeMap<String, MessageAttribute>, ApiError> {
        let mut out = BTreeMap::new();
        for p in self.numbered(&format!("{prefix}.entry")) {
            let name = self
                .get(&format!("{p}.Name"))
                .ok_or_else(|| invalid("MessageAttributes Reason: an entry has no Name"))?;
            let data_type = self.get(&format!("{p}.Value.DataType")).ok_or_else(|| {
                invalid(format!(
                    "The message attribute '{name}' must contain non-empty message attribute type."
                ))
            })?;
            let binary_value = match self.get(&format!("{p}.Value.BinaryValue")) {
                Some(b64) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|_| {
                            invalid(format!(
                                "The message attribute '{name}' has a BinaryValue that is not base64."
                            ))
                        })?,
                ),
                None => None,
            };
            out.insert(
                name.to_string(),
                MessageAttribute {
                    data_type: data_type.to_string(),
                    string_value: self
                        .get(&format!("{p}.Value.StringValue"))
                        .map(str::to_string),
                    binary_value,
                },
            );
        }
        Ok(out)
    }

    /// The batch entries `prefix.member.N` as the prefixes of their members.
    pub fn entries(&self, prefix: &str) -> Vec<String> {
        self.numbered(&format!("{prefix}.member"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lists_tags_and_message_attributes_are_read() {
        let form = Form::parse(
            b"Action=CreateTopic&Name=t&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=Orders\
&Attributes.entry.2.key=FifoTopic&Attributes.entry.2.value=false\
&Tags.member.1.Key=team&Tags.member.1.Value=data&TagKeys.member.1=a&TagKeys.member.2=b\
&MessageAttributes.entry.1.Name=color&MessageAttributes.entry.1.Value.DataType=String\
&MessageAttributes.entry.1.Value.StringValue=red\
&MessageAttributes.entry.2.Name=blob&MessageAttributes.entry.2.Value.DataType=Binary\
&MessageAttributes.entry.2.Value.BinaryValue=AAE%3D",
        )
        .unwrap();
        assert_eq!(form.required("Name").unwrap(), "t");
        assert!(form.required("Missing").is_err());
        let attrs = form.map("Attributes");
        assert_eq!(attrs["DisplayName"], "Orders");
        assert_eq!(attrs["FifoTopic"], "false");
        assert_eq!(form.tags("Tags"), vec![("team".into(), "data".into())]);
        assert_eq!(form.list("TagKeys"), vec!["a", "b"]);
        let m = form.message_attributes("MessageAttributes").unwrap();
        assert_eq!(m["color"].string_value.as_deref(), Some("red"));
        assert_eq!(m["blob"].binary_value.as_deref(), Some(&[0u8, 1][..]));
    }
}
