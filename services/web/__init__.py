"""web: the customer-facing service. Accepts purchases, publishes them to Kafka, serves history via api."""
