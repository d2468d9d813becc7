"""ledgergate: an OpenAI-compatible LLM gateway that charges exactly and enforces budgets before spending."""

__version__ = "0.1.0"
