"""The api's history index when MongoDB is down at start: retried in the background until it exists."""

import re

import requests

from scripts.stack.ferretdb import FerretDB
from scripts.stack.process import free_port
from scripts.stack.waiting import until

from ..support import System


def test_the_api_started_with_the_database_down_creates_the_history_index_once_it_is_up(kafka, tmp_path):
    database = FerretDB(tmp_path / "late-ferretdb", port=free_port())  # not started yet
    system = System("index-retry", kafka, database, tmp_path)
    try:
        system.start_api(wait_ready=False)
        until(lambda: system.log("api").count("could not ensure the history index yet") >= 2, 60,
              "two failed attempts at the index, each said in the log")
        database.start()
        until(lambda: "userId_timestamp" in system.collection.index_information(), 60,
              "the history index to exist")
        keys = system.collection.index_information()["userId_timestamp"]["key"]
        assert [(field, int(order)) for field, order in keys] == [("userId", 1), ("timestamp", -1)]
        metrics = requests.get(system.api.metrics_url, timeout=5).text
        assert re.search(r"^history_index_ready 1\.0$", metrics, re.M)
        retries = float(re.search(r"^history_index_retries_total (\S+)$", metrics, re.M).group(1))
        assert retries >= 2
        assert '"history index ready"' in system.log("api")
    finally:
        system.stop()
        database.stop()
