"""Room history: store of record (SQLite), Redis cache-aside, circuit breaker."""
