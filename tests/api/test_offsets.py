"""CommitLedger, the consumer's record of what it may commit, driven as kafka-python drives it (eager rebalances).
Pure code: no servers. The real-Kafka version of the first test is in test_consumer.py."""

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from services.api.offsets import CommitLedger

pytestmark = pytest.mark.unit  # make check: no server, no build

P0, P1 = TopicPartition("purchases", 0), TopicPartition("purchases", 1)


def at(offset: int) -> OffsetAndMetadata:
    return OffsetAndMetadata(offset, "", -1)


def rebalance(ledger: CommitLedger, held: set, assigned: set) -> None:
    """An eager rebalance: everything held is revoked, then the new assignment arrives."""
    ledger.on_partitions_revoked(held)
    ledger.on_partitions_assigned(assigned)


def committed(ledger: CommitLedger, assigned: set) -> dict:
    offsets = ledger.next_commit(assigned)
    ledger.commit_done(offsets, confirmed=True)
    return offsets


def test_a_partition_lost_and_given_back_never_commits_what_was_stored_before_it_was_lost():
    ledger = CommitLedger()
    ledger.on_partitions_assigned({P0, P1})
    ledger.stored({P0: at(100), P1: at(100)}, ledger.now())
    assert committed(ledger, {P0, P1}) == {P0: at(100), P1: at(100)}

    rebalance(ledger, {P0, P1}, {P0})  # another consumer takes P1 and commits it further
    rebalance(ledger, {P0}, {P0, P1})  # P1 comes back, with nothing new to read
    assert ledger.next_commit({P0, P1}) == {}
    assert ledger.final_commit({P0, P1}) == {P0: at(100)}


def test_a_partition_kept_through_a_rebalance_keeps_what_it_stored_for_the_next_commit():
    ledger = CommitLedger()
    ledger.on_partitions_assigned({P0, P1})
    ledger.stored({P0: at(40), P1: at(70)}, ledger.now())
    rebalance(ledger, {P0, P1}, {P0})
    # kafka-python keeps P0's position: if its stored offset were forgotten, nothing would ever commit it
    assert committed(ledger, {P0}) == {P0: at(40)}
    assert ledger.final_commit({P0}) == {P0: at(40)}


def test_a_batch_polled_before_its_partition_changed_hands_is_not_recorded_for_it():
    ledger = CommitLedger()
    ledger.on_partitions_assigned({P0, P1})
    polled_at = ledger.now()
    rebalance(ledger, {P0, P1}, {P0})  # while the batch was being stored
    rebalance(ledger, {P0}, {P0, P1})
    assert ledger.stored({P0: at(10), P1: at(20)}, polled_at) == {P0: at(10)}
    assert ledger.next_commit({P0, P1}) == {P0: at(10)}


def test_an_evicted_consumer_forgets_every_partition():
    ledger = CommitLedger()
    ledger.on_partitions_assigned({P0})
    ledger.stored({P0: at(5)}, ledger.now())
    ledger.on_partitions_lost({P0})
    ledger.on_partitions_assigned({P0})
    assert ledger.next_commit({P0}) == {} and ledger.final_commit({P0}) == {}


def test_one_commit_at_a_time_and_a_failed_one_goes_again_with_what_was_stored_since():
    ledger = CommitLedger()
    ledger.on_partitions_assigned({P0, P1})
    ledger.stored({P0: at(10)}, ledger.now())
    first = ledger.next_commit({P0, P1})
    assert first == {P0: at(10)}
    ledger.stored({P1: at(3)}, ledger.now())
    assert ledger.next_commit({P0, P1}) == {}, "a second commit while the first is on its way"

    ledger.commit_done(first, confirmed=False)
    assert committed(ledger, {P0, P1}) == {P0: at(10), P1: at(3)}
    assert ledger.next_commit({P0, P1}) == {}, "everything was confirmed"


def test_a_confirmation_of_an_older_offset_leaves_the_newer_one_to_commit():
    ledger = CommitLedger()
    ledger.on_partitions_assigned({P0})
    ledger.stored({P0: at(10)}, ledger.now())
    sent = ledger.next_commit({P0})
    ledger.stored({P0: at(25)}, ledger.now())
    ledger.commit_done(sent, confirmed=True)
    assert ledger.next_commit({P0}) == {P0: at(25)}


def test_nothing_is_committed_for_a_partition_not_assigned_now():
    ledger = CommitLedger()
    ledger.on_partitions_assigned({P0, P1})
    ledger.stored({P0: at(1), P1: at(2)}, ledger.now())
    assert ledger.next_commit({P0}) == {P0: at(1)}
    assert ledger.final_commit({P1}) == {P1: at(2)}
