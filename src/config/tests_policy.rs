//! Configuration tests for the admission policy's layers: a trunk or number holds only its
//! overrides, and merging global → trunk → number gives the effective policy.

use super::tests::ok;
use super::*;

#[test]
fn policy_layers_merge() {
    let c = ok(concat!(
        "[policy]\nmax_concurrent = 100\nallowed_prefixes = [\"+48\"]\nhours = \"08:00-20:00 UTC\"\n",
        "[[trunk]]\nname = \"carrier\"\npolicy = { max_concurrent = 30, max_calls_per_hour = 500 }\n",
        "[[number]]\ndid = \"+48123456789\"\nagent = { url = \"wss://a\" }\n",
        "policy = { max_calls_per_hour = 60, hours = \"\" }\n",
    ));
    let (trunk, number) = (&c.trunks[0], &c.numbers[0]);
    assert_eq!(trunk.policy.max_concurrent, Some(30));
    assert_eq!(
        trunk.policy.allowed_prefixes, None,
        "a layer holds only its overrides"
    );
    let eff = c.policy.merged(&trunk.policy).merged(&number.policy);
    assert_eq!(eff.max_concurrent, Some(30), "trunk overrides global");
    assert_eq!(eff.max_calls_per_hour, Some(60), "number overrides trunk");
    assert_eq!(eff.hours, Some(None), "number clears global hours");
    assert_eq!(
        eff.allowed_prefixes, c.policy.allowed_prefixes,
        "global inherited"
    );
    assert_eq!(
        eff.flood_per_source,
        Some(Flood {
            burst: 50,
            per_second: 20
        }),
        "default inherited"
    );
    let trunk_only = c.policy.merged(&trunk.policy);
    assert!(matches!(
        trunk_only.hours,
        Some(Some(Hours {
            start_min: 480,
            end_min: 1200,
            ..
        }))
    ));
}
