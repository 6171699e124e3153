//! Pure builders of the conflict-safe patches the controller sends. Each touches only the
//! fields bare-ccm owns and carries a resourceVersion precondition.

use serde_json::Value;

use crate::node_view::NodeView;
use crate::resolve::Resolution;

/// The merge patch for `nodes/status` that replaces `status.addresses` whole, or `None`
/// when the node already has exactly these addresses or the desired list is empty.
pub fn status_addresses_patch(_node: &NodeView, _res: &Resolution) -> Option<Value> {
    todo!()
}

/// The merge patch for the node itself: uninitialized taints removed, providerID set when
/// empty, labels added. `None` when there is nothing to write.
pub fn init_patch(_node: &NodeView, _res: &Resolution) -> Option<Value> {
    todo!()
}
