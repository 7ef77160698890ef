//! `[routes]`: the kernel routing table where the members' prefixes are
//! exported, for a routing daemon (BIRD, FRR) to announce them.
//!
//! ```toml
//! [routes]
//! table = 100    # 1..=4294967295, except 253 (default), 254 (main), 255 (local)
//! ```
//!
//! Without the section nothing is exported. The routes themselves are
//! planned by [`crate::export`].
use serde::{Deserialize, Deserializer, Serialize};

/// Tables the kernel reserves: `[routes] table` may not be one of them.
pub const RESERVED_TABLES: [(u32, &str); 3] = [(253, "default"), (254, "main"), (255, "local")];

/// `[routes]`: where the member routes go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesConfig {
    /// The kernel routing table that holds one route per member prefix.
    /// Nothing forwards through it (no `ip rule` points at it).
    #[serde(deserialize_with = "table_number")]
    pub table: u32,
}

/// What `table` may be, as the errors say it.
const ALLOWED: &str = "allowed are 1..=4294967295 except 253 (default), 254 (main) and 255 (local)";

/// Why `table` is refused, if it is (`Config::validate` says it with the
/// field).
pub(super) fn check_table(table: i64) -> Result<u32, String> {
    if let Some((_, name)) = RESERVED_TABLES.iter().find(|(t, _)| i64::from(*t) == table) {
        return Err(format!(
            "{table} is the kernel's {name} table, which forwards or is reserved; \
             choose a table of its own ({ALLOWED})"
        ));
    }
    match u32::try_from(table) {
        Ok(0) => Err(format!("0 means no table to the kernel; {ALLOWED}")),
        Ok(t) => Ok(t),
        Err(_) => Err(format!("{table} is out of range; {ALLOWED}")),
    }
}

/// `table` as the file writes it: any integer, refused with the reason
/// (the TOML error then gives its line).
fn table_number<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = i64::deserialize(d)?;
    check_table(n).map_err(|why| serde::de::Error::custom(format!("[routes] table: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    const BASE: &str = "[[uplink]]\ninterface = \"core0\"\n\n[[access]]\ninterface = \"acc0\"\n";

    fn parse(routes: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!("{BASE}\n[routes]\n{routes}\n"))
    }

    #[test]
    fn accepts_every_table_but_the_reserved_ones() {
        for t in [1u32, 100, 252, 256, 1000, u32::MAX] {
            let c = parse(&format!("table = {t}")).unwrap();
            assert_eq!(c.routes, Some(RoutesConfig { table: t }));
        }
        let c = Config::parse(BASE).unwrap();
        assert_eq!(c.routes, None, "no [routes]: nothing is exported");
    }

    #[test]
    fn refuses_reserved_and_out_of_range_tables_naming_them() {
        for (t, words) in [
            ("0", "0 means no table"),
            ("253", "253 is the kernel's default table"),
            ("254", "254 is the kernel's main table"),
            ("255", "255 is the kernel's local table"),
            ("-1", "-1 is out of range"),
            ("4294967296", "4294967296 is out of range"),
        ] {
            let e = parse(&format!("table = {t}")).unwrap_err().to_string();
            assert!(e.contains("[routes] table"), "{t}: {e}");
            assert!(e.contains(words), "{t}: {e}");
            assert!(e.contains("allowed are 1..=4294967295"), "{t}: {e}");
        }
    }

    #[test]
    fn refuses_a_missing_table_a_wrong_type_and_unknown_fields() {
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("missing field `table`"), "{e}");
        let e = parse("table = \"main\"").unwrap_err().to_string();
        assert!(e.contains("invalid type"), "{e}");
        let e = parse("table = 100\nproto = 4").unwrap_err().to_string();
        assert!(e.contains("unknown field `proto`"), "{e}");
    }

    #[test]
    fn validate_checks_a_configuration_built_in_code() {
        let mut c = Config::parse(BASE).unwrap();
        c.routes = Some(RoutesConfig { table: 254 });
        let e = c.validate().unwrap_err();
        assert!(
            matches!(e, ConfigError::BadRoutes { field: "table", .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("[routes] table: 254 is the kernel's main table")
        );
        c.routes = Some(RoutesConfig { table: 42 });
        c.validate().unwrap();
    }
}
