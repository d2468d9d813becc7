"""Lua scripts run atomically inside Redis by ``ledgergate.storage.redis_counters``."""
