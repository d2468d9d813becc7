"""Which LiteLLM provider prefixes of ``litellm_params.model`` ledgergate can serve, and where they live.

Every deployment is reached over the OpenAI wire format (``{api_base}/chat/completions``, bearer key), plus
Anthropic's own ``/v1/messages``. A prefix whose provider only speaks its own API (Azure's deployment paths and
``api-key`` header, Bedrock's SigV4, Vertex's ``generateContent``) is recognised but refused until it is supported
natively: sending it OpenAI requests would fail on every call, or worse, go to api.openai.com with its key.
An unknown prefix is refused for the same reason (a typo like ``opneai/gpt-4o`` must not reach OpenAI as the
model ``opneai/gpt-4o``).
"""

from __future__ import annotations

from ledgergate.config_values import ConfigError

DEFAULT_PROVIDER = "openai"  # a bare model name (``gpt-4o``) is an OpenAI model, as in LiteLLM
# OpenAI-compatible providers with a public endpoint to default to. Anthropic and Gemini publish
# OpenAI-compatible chat endpoints at these bases (Anthropic's native /v1/messages is served too).
DEFAULT_API_BASES: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "together_ai": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "xai": "https://api.x.ai/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "perplexity": "https://api.perplexity.ai",
    "cerebras": "https://api.cerebras.ai/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai",
    "ollama": "http://localhost:11434/v1",
}
# OpenAI-compatible servers you run yourself: the config must give their api_base.
SELF_HOSTED_PROVIDERS = frozenset({"hosted_vllm", "vllm", "lm_studio", "litellm_proxy", "databricks"})
SERVED_PROVIDERS = frozenset(DEFAULT_API_BASES) | SELF_HOSTED_PROVIDERS
# Recognised LiteLLM prefixes whose native API ledgergate does not speak yet.
NATIVE_ONLY_PROVIDERS = frozenset(
    {"azure", "azure_ai", "bedrock", "vertex_ai", "cohere", "huggingface", "sagemaker", "watsonx"}
)
KNOWN_PROVIDERS = SERVED_PROVIDERS | NATIVE_ONLY_PROVIDERS


def split_known_prefix(model_ref: str) -> tuple[str, str] | None:
    """``("anthropic", "claude-x")`` for ``"anthropic/claude-x"``; None without a known prefix."""
    prefix, separator, rest = model_ref.partition("/")
    return (prefix.lower(), rest) if separator and rest and prefix.lower() in KNOWN_PROVIDERS else None


def split_provider(litellm_model: str) -> tuple[str, str]:
    """``"anthropic/claude-x"`` -> ``("anthropic", "claude-x")``; a name without a known prefix is OpenAI's."""
    return split_known_prefix(litellm_model) or (DEFAULT_PROVIDER, litellm_model)


def served_provider(litellm_model: str) -> tuple[str, str]:
    """The (provider, upstream model) a deployment is sent to, or a ``ConfigError`` saying why it cannot be."""
    prefix, separator, rest = litellm_model.partition("/")
    if not separator:
        return DEFAULT_PROVIDER, litellm_model
    provider = prefix.lower()
    if provider not in KNOWN_PROVIDERS:
        raise ConfigError(
            f"unknown provider prefix {prefix!r} in {litellm_model!r}; known: {', '.join(sorted(SERVED_PROVIDERS))}. "
            f"For another OpenAI-compatible server write openai/{litellm_model} and set api_base"
        )
    if not rest:
        raise ConfigError(f"{litellm_model!r} names no model after the provider prefix (e.g. {provider}/<model>)")
    if provider in NATIVE_ONLY_PROVIDERS:
        raise ConfigError(
            f"provider {provider!r} needs native support (coming): use an OpenAI-compatible endpoint via "
            "openai/ + api_base"
        )
    return provider, rest
