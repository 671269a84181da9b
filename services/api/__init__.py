"""api: consumes purchases from Kafka, stores them in MongoDB exactly once, serves history reads."""
