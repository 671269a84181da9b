"""The control plane's own error: what the cluster, its node, KEDA, the release or the monitoring could not do."""

from __future__ import annotations

from scripts.stack.errors import StackError


class ClusterError(StackError):
    """A StackError (the supervisors that stop what they started catch those) raised by scripts/controlplane."""
