//! MyOperator's settings (issue 15, item 4): the account the notifications API's messages go
//! out from — four values from the environment or Settings → Integrations (fields in
//! [`crate::integrations::FIELDS`]), resolved with the rest of the integrations.

use crate::error::InputError;
use crate::integrations::Effective;

pub const MYOPERATOR_API_KEY: &str = "MYOPERATOR_API_KEY";
pub const MYOPERATOR_COMPANY_ID: &str = "MYOPERATOR_COMPANY_ID";
pub const MYOPERATOR_PHONE_NUMBER_ID: &str = "MYOPERATOR_PHONE_NUMBER_ID";
pub const MYOPERATOR_WABA_ID: &str = "MYOPERATOR_WABA_ID";
pub const MYOPERATOR_API_BASE: &str = "MYOPERATOR_API_BASE";

/// The MyOperator account the notifications API's messages go out from.
#[derive(Clone, PartialEq, Eq)]
pub struct MyOperatorSettings {
    pub api_key: String,
    pub company_id: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub api_base: String,
}

impl std::fmt::Debug for MyOperatorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MyOperator")
            .field("api_key", &"[set]")
            .field("company_id", &self.company_id)
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("api_base", &self.api_base)
            .finish()
    }
}

impl Effective {
    /// MyOperator, if these settings configure it: all four values; off while the company,
    /// number and account are all unset (a stored key alone is kept for later, not used).
    pub fn myoperator(&self) -> Result<Option<MyOperatorSettings>, InputError> {
        let names = [MYOPERATOR_API_KEY, MYOPERATOR_COMPANY_ID, MYOPERATOR_PHONE_NUMBER_ID, MYOPERATOR_WABA_ID];
        let values: Vec<Option<&str>> = names.iter().map(|n| self.get(n).map(str::trim).filter(|v| !v.is_empty())).collect();
        if values[1..].iter().all(Option::is_none) {
            return Ok(None);
        }
        let missing: Vec<&str> = names.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
        if !missing.is_empty() {
            return Err(InputError::new(
                "missing_setting",
                format!("MyOperator needs {} too (or none of its settings)", missing.join(", ")),
            ));
        }
        let base = self.get(MYOPERATOR_API_BASE).unwrap_or("https://publicapi.myoperator.co");
        crate::webhooks::check_url(base, true)
            .map_err(|e| InputError::new("invalid_setting", format!("{MYOPERATOR_API_BASE}: {}", e.message)))?;
        let v = |i: usize| values[i].unwrap_or_default().to_string();
        Ok(Some(MyOperatorSettings {
            api_key: v(0),
            company_id: v(1),
            phone_number_id: v(2),
            waba_id: v(3),
            api_base: base.trim_end_matches('/').to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::integrations::{Effective, ProviderEnv, StoredSettings};

    fn effective(pairs: &[(&'static str, &str)]) -> Effective {
        let env = ProviderEnv::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_string())));
        Effective::resolve(&env, &StoredSettings::default()).unwrap()
    }

    #[test]
    fn all_four_turn_it_on_none_or_a_lone_key_leave_it_off_and_a_partial_set_names_what_is_missing() {
        assert_eq!(effective(&[]).myoperator().unwrap(), None);
        assert_eq!(effective(&[("MYOPERATOR_API_KEY", "k")]).myoperator().unwrap(), None, "a stored key alone");
        let e = effective(&[("MYOPERATOR_COMPANY_ID", "c")]).myoperator().unwrap_err();
        assert_eq!(
            e.message,
            "MyOperator needs MYOPERATOR_API_KEY, MYOPERATOR_PHONE_NUMBER_ID, MYOPERATOR_WABA_ID too (or none of its settings)"
        );
        let on = effective(&[
            ("MYOPERATOR_API_KEY", "k"),
            ("MYOPERATOR_COMPANY_ID", "c"),
            ("MYOPERATOR_PHONE_NUMBER_ID", "p"),
            ("MYOPERATOR_WABA_ID", "w"),
        ])
        .myoperator()
        .unwrap()
        .unwrap();
        assert_eq!((on.company_id.as_str(), on.api_base.as_str()), ("c", "https://publicapi.myoperator.co"));
        assert!(!format!("{on:?}").contains("\"k\""), "the key is never in a log line");
    }
}
