"""The LLM port (`ModelClient`), its provider adapters, and what a campaign needs around them: the
plan of models per role, its preflight check, and the price of every call. The provider adapters
(`anthropic_messages`, `openai_chat`) are imported by `client_for` when a client is made."""

from shared.llm.clients import base_url_for, client_for, key_variable
from shared.llm.config import DEFAULT_MODELS, ROLES, load_llm_config, parse_llm_spec, plan
from shared.llm.errors import LlmError
from shared.llm.port import (
    Block,
    Image,
    Message,
    ModelClient,
    Reply,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from shared.llm.preflight import preflight
from shared.llm.pricing import DEFAULT_PRICES, price_for, usd
from shared.llm.retry import RetryPolicy

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_PRICES",
    "ROLES",
    "Block",
    "Image",
    "LlmError",
    "Message",
    "ModelClient",
    "Reply",
    "RetryPolicy",
    "Text",
    "Thinking",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "Usage",
    "base_url_for",
    "client_for",
    "key_variable",
    "load_llm_config",
    "parse_llm_spec",
    "plan",
    "preflight",
    "price_for",
    "usd",
]
