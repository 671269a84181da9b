"""Reading the topic's state from a metadata answer (pure; the live probe runs in the fault tests)."""

from services.web.kafka_probe import topic_state


def partition(index: int, leader: int) -> dict:
    return {"partition_index": index, "leader_id": leader, "error_code": 0}


def test_every_partition_with_a_leader_can_take_purchases():
    state = topic_state([{"name": "other", "partitions": []},
                         {"name": "purchases", "error_code": 0, "partitions": [partition(0, 1), partition(1, 2)]}],
                        "purchases")
    assert state.reachable and state.can_take_purchases


def test_a_partition_without_leader_is_named_and_not_ready():
    state = topic_state([{"name": "purchases", "error_code": 0, "partitions": [partition(0, 1), partition(1, -1)]}],
                        "purchases")
    assert state.reachable and not state.can_take_purchases
    assert state.to_json() == {"reachable": True, "partitions_without_leader": [1]}


def test_a_missing_topic_or_a_topic_error_is_not_ready():
    assert not topic_state([], "purchases").can_take_purchases
    assert "error code 3" in topic_state([{"name": "purchases", "error_code": 3, "partitions": []}],
                                         "purchases").error
