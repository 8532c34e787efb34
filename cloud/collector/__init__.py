"""`careeredge-cloud collect`: prediction logs and OTA reports from the fleet into storage."""
