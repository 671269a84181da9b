"""The api as `python -m services.api` runs it, but with its purchase-to-stored histogram
(purchase_accepted_to_stored_seconds) observing nothing: the api before that histogram, for the `metrics` phase."""

import runpy

from services.api import consumer

consumer.ACCEPTED_TO_STORED.observe = lambda amount, exemplar=None: None

if __name__ == "__main__":
    runpy.run_module("services.api", run_name="__main__", alter_sys=True)
