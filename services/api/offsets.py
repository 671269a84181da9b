"""What the api's consumer may commit, per partition: the offset after its last stored record, under this hold.

A partition is *held* from the rebalance that gives it to this consumer to the one that takes it away; across a
rebalance that gives it back at once the hold goes on (kafka-python keeps its position then). Written for the
eager rebalance protocol, which the consumer's assignors use. Offsets are
recorded only for a partition held without a break since its records were polled, and forgotten when the hold
ends. Otherwise a consumer that stored records of a partition, lost it to another consumer that read and committed
further, and then got it back, committed its older offset: the group's position went backwards, the records
after it were read again, and with nothing new to read the partition showed lag for ever. (KEDA's scale-down after
a burst did exactly that: the last pod, holding every partition again, committed its old offsets on shutdown.)

No I/O here: the consumer calls in from its thread; kafka-python calls the rebalance and commit callbacks from
its own, hence the lock.
"""

from __future__ import annotations

import threading

from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

Offsets = dict[TopicPartition, OffsetAndMetadata]


class CommitLedger(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assignments = 0  # rebalances that gave this consumer partitions: each starts new holds
        self._held_since: dict[TopicPartition, int] = {}
        self._revoking: set[TopicPartition] = set()
        self._stored: Offsets = {}  # after the last stored record, per partition held
        self._unconfirmed: Offsets = {}  # stored, and no commit of it confirmed yet
        self._commit_in_flight = False

    # -- the consumer's side ------------------------------------------------------------------------------

    def now(self) -> int:
        """The assignment records polled at this moment belong to; pass it back to `stored()`."""
        with self._lock:
            return self._assignments

    def stored(self, offsets: Offsets, polled_at: int) -> Offsets:
        """Every record before `offsets` is stored: record them for the partitions held since `polled_at`.
        Returns what was recorded; a partition left out is read again by whoever holds it now."""
        with self._lock:
            held = {tp: offset for tp, offset in offsets.items()
                    if tp in self._held_since and self._held_since[tp] <= polled_at}
            self._stored.update(held)
            self._unconfirmed.update(held)
            return held

    def next_commit(self, assigned: set[TopicPartition]) -> Offsets:
        """Everything stored and not yet confirmed for the partitions `assigned` now, to be sent at once;
        nothing while a commit is on its way."""
        with self._lock:
            offsets = {tp: offset for tp, offset in self._unconfirmed.items() if tp in assigned}
            if self._commit_in_flight or not offsets:
                return {}
            self._commit_in_flight = True
            return offsets

    def commit_done(self, offsets: Offsets, confirmed: bool) -> None:
        """A commit from `next_commit()` was answered (or could not be sent): what it confirmed is done; what
        it did not goes with the next one."""
        with self._lock:
            self._commit_in_flight = False
            if confirmed:
                for tp, offset in offsets.items():
                    if self._unconfirmed.get(tp) == offset:
                        del self._unconfirmed[tp]

    def final_commit(self, assigned: set[TopicPartition]) -> Offsets:
        """On shutdown: everything stored for the partitions `assigned` now, to be committed and waited for."""
        with self._lock:
            return {tp: offset for tp, offset in self._stored.items() if tp in assigned}

    # -- kafka-python's side (ConsumerRebalanceListener) ----------------------------------------------------

    def on_partitions_revoked(self, revoked) -> None:
        # The eager protocol (the consumer's assignors): all of them, before every rebalance, and the assignment
        # that ends the rebalance lists all this consumer holds next: those in both stay held.
        with self._lock:
            self._revoking.update(revoked)

    def on_partitions_assigned(self, assigned) -> None:
        with self._lock:
            self._forget(self._revoking - set(assigned))
            self._revoking.clear()
            self._assignments += 1
            for tp in assigned:
                self._held_since.setdefault(tp, self._assignments)

    def on_partitions_lost(self, lost) -> None:
        """Evicted from the group: kafka-python drops the positions, so every hold ends here."""
        with self._lock:
            self._forget(set(lost))

    def _forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._held_since.pop(tp, None)
            self._stored.pop(tp, None)
            self._unconfirmed.pop(tp, None)
