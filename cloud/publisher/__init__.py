"""`careeredge-cloud publish`: pack, sign and publish a model bundle to a channel over MQTT."""
