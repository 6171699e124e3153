//! How each list field merges, from the `patchStrategy`/`patchMergeKey` struct tags of
//! `staging/src/k8s.io/api/core/v1/types.go` and `apimachinery/pkg/apis/meta/v1/types.go`
//! for the kinds the emulator serves.

/// How a list field merges, from its struct tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListStrategy {
    /// No `patchStrategy`: the patch's list replaces the original.
    Atomic,
    /// `patchStrategy:"merge"` on scalars: union, `$deleteFromPrimitiveList` removes.
    MergeScalars,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"` on structs: merged element-wise by key.
    MergeByKey(&'static str),
}

/// The list strategy of the field at `path` (object keys from the root) in `kind`, from
/// `staging/src/k8s.io/api/core/v1/types.go` and `apimachinery/pkg/apis/meta/v1/types.go`.
/// Every list not named here has no patch strategy (ConfigMap, Lease and Event have none).
pub(super) fn list_strategy(kind: &str, path: &[String]) -> ListStrategy {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (kind, p.as_slice()) {
        // ObjectMeta: `Finalizers ... patchStrategy:"merge"`,
        // `OwnerReferences ... patchStrategy:"merge" patchMergeKey:"uid"`
        (_, ["metadata", "finalizers"]) => ListStrategy::MergeScalars,
        (_, ["metadata", "ownerReferences"]) => ListStrategy::MergeByKey("uid"),
        // NodeSpec: `PodCIDRs ... patchStrategy:"merge"`; `Taints` has no strategy (atomic)
        ("Node", ["spec", "podCIDRs"]) => ListStrategy::MergeScalars,
        // NodeStatus: `Addresses` and `Conditions ... patchStrategy:"merge" patchMergeKey:"type"`
        ("Node", ["status", "addresses"]) => ListStrategy::MergeByKey("type"),
        ("Node", ["status", "conditions"]) => ListStrategy::MergeByKey("type"),
        // NamespaceStatus: `Conditions ... patchStrategy:"merge" patchMergeKey:"type"`
        ("Namespace", ["status", "conditions"]) => ListStrategy::MergeByKey("type"),
        _ => ListStrategy::Atomic,
    }
}
