//! Names the framework keeps for itself, spelled once. The runtime crate
//! takes [`DESCRIBE_METHOD`] from here too (through `__describe_method!`),
//! so the name the attribute refuses is the name servers answer.

/// The method every server answers itself (`redisrpc::describe::DESCRIBE_METHOD`).
pub(crate) const DESCRIBE_METHOD: &str = "rpc.describe";

/// Wire names under this prefix are kept for the framework's own methods.
pub(crate) const RESERVED_PREFIX: &str = "rpc.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_describe_method_is_under_the_reserved_prefix() {
        assert!(DESCRIBE_METHOD.starts_with(RESERVED_PREFIX));
    }
}
