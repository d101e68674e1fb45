"""The provider adapters, retries, preflight, config and pricing: the real SDKs against WireServer."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.events.catalogue import LlmPlan, ModelChoice, Price
from shared.llm import (
    Image,
    LlmError,
    Message,
    RetryPolicy,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
    client_for,
    load_llm_config,
    parse_llm_spec,
    plan,
    preflight,
    price_for,
    usd,
)
from shared.llm.retry import Failure, retry_after_s
from tests.llm.wire import Answer, Call, Fault, Request, WireServer, in_order

KEY = "sk-test-0123456789abcdef"
PROVIDERS = ["anthropic", "openai", "openai-compatible"]
READ = ToolSpec("read", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}})
PNG = b"\x89PNG\r\n\x1a\nfake"
FAST = RetryPolicy(base_s=0.01)


def _environ(server: WireServer, key: str = KEY) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": key,
        "OPENAI_API_KEY": key,
        "LOCAL_KEY": key,
        "ANTHROPIC_BASE_URL": server.url,
        "OPENAI_BASE_URL": server.url + "/v1",
    }


def _choice(provider: str, **fields: object) -> ModelChoice:
    key_env = {"api_key_env": "LOCAL_KEY"} if provider == "openai-compatible" else {}
    return ModelChoice.model_validate({"provider": provider, "model": "test-model", **key_env, **fields})


def _client(provider: str, server: WireServer, *, key: str = KEY, **fields: object):
    return client_for(_choice(provider, **fields), _environ(server, key), timeout_s=5, retry=FAST)


def _read_then_finish(request: Request) -> Answer:
    """Call `read` once; once its result is back, say what it returned."""
    if "read" not in request.results:
        return Answer(
            text="Let me look.", calls=(Call("read", {"path": "notes.txt"}),), thinking="Read it first."
        )
    result = request.results["read"]
    return Answer(text=f"The file says {result.text!r} with {result.images} image(s).")


async def _two_turns(client, image: bool = False):
    """One tool call, its result sent back (with an image if asked), and the model's final reply."""
    messages = [Message.user("What is in notes.txt?")]
    first = await client.complete("You read files.", messages, [READ], max_tokens=256)
    call = first.tool_calls[0]
    result = ToolResult(call.id, "hello", images=(Image("image/png", PNG),) if image else ())
    messages += [Message("assistant", first.content), Message("user", (result,))]
    return first, await client.complete("You read files.", messages, [READ], max_tokens=256)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


# --- completions -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_call_and_result_round_trip(provider: str) -> None:
    """A tool call comes back as a ToolCall, and its result reaches the model as that call's result."""
    with WireServer(_read_then_finish, api_key=KEY) as server:
        first, final = await _two_turns(_client(provider, server))
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("read", {"path": "notes.txt"})]
    assert first.stop_reason in ("tool_use", "tool_calls")
    assert final.text == "The file says 'hello' with 0 image(s)."
    assert final.request_id.startswith("req_") and final.retries == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_image_in_tool_result_reaches_the_model(provider: str) -> None:
    """An image in a tool result travels as a base64 image block (Anthropic) or a data URL (OpenAI)."""
    with WireServer(_read_then_finish, api_key=KEY) as server:
        _, final = await _two_turns(_client(provider, server), image=True)
    assert final.text.endswith("with 1 image(s).")
    encoded = base64.b64encode(PNG).decode()
    wire = server.requests[-1].body.decode()
    assert f'"data":"{encoded}"' in wire or f'"url":"data:image/png;base64,{encoded}"' in wire


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("anthropic", Usage(input_tokens=1000, output_tokens=20, cached_tokens=600, cache_write_tokens=100)),
        ("openai", Usage(input_tokens=1000, output_tokens=20, cached_tokens=600)),
    ],
)
async def test_usage_counts_cached_tokens(provider: str, expected: Usage) -> None:
    """Usage counts every prompt token as input, with cache reads (and Anthropic's writes) apart."""
    answer = Answer(text="ok", input_tokens=1000, cached_tokens=600, cache_write_tokens=100)
    with WireServer(in_order(answer), api_key=KEY) as server:
        reply = await _client(provider, server).complete("", [Message.user("hi")], [], max_tokens=64)
    assert reply.usage == expected


async def test_compatible_server_without_cache_details() -> None:
    """A compatible server that sends no prompt_tokens_details gives zero cached tokens."""
    with WireServer(in_order(Answer(text="ok", input_tokens=50)), api_key=KEY) as server:
        reply = await _client("openai-compatible", server).complete(
            "", [Message.user("hi")], [], max_tokens=64
        )
    assert reply.usage == Usage(input_tokens=50, output_tokens=20)
    assert "max_tokens" in server.posted("/v1/chat/completions")[0]


async def test_thinking_is_sent_back_unchanged() -> None:
    """With a thinking budget, the thinking block and its signature return with the tool result."""
    with WireServer(_read_then_finish, api_key=KEY) as server:
        first, final = await _two_turns(_client("anthropic", server, thinking_tokens=2048))
    assert isinstance(first.content[0], Thinking) and first.content[0].signature
    sent = server.posted("/v1/messages")
    assert sent[0]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent[0]["max_tokens"] == 256 + 2048
    assert sent[1]["messages"][1]["content"][0]["thinking"] == "Read it first."
    assert final.text.startswith("The file says")


async def test_anthropic_marks_cache_breakpoints() -> None:
    """The system prompt, the last tool and the latest message's last block carry cache_control."""
    with WireServer(_read_then_finish, api_key=KEY) as server:
        await _two_turns(_client("anthropic", server))
    body = server.posted("/v1/messages")[1]
    ephemeral = {"type": "ephemeral"}
    assert body["system"][-1]["cache_control"] == ephemeral
    assert body["tools"][-1]["cache_control"] == ephemeral
    assert body["messages"][-1]["content"][-1]["cache_control"] == ephemeral
    assert "cache_control" not in body["messages"][0]["content"][-1]
    assert server.requests[-1].body.count(b"cache_control") == 3


async def test_malformed_tool_arguments_become_an_error() -> None:
    """Arguments that are not a JSON object give ToolCall.error, with the raw text kept."""
    calls = (Call("read", '{"path": "notes'), Call("read", "[1, 2]"))
    with WireServer(in_order(Answer(calls=calls)), api_key=KEY) as server:
        reply = await _client("openai", server).complete("", [Message.user("hi")], [READ], max_tokens=64)
    broken, listed = reply.tool_calls
    assert broken.arguments is None and broken.raw_arguments == '{"path": "notes'
    assert "not valid JSON" in broken.error and "call it again" in broken.error
    assert listed.arguments is None and "JSON array, not an object" in listed.error


async def test_wire_server_refuses_what_the_api_would() -> None:
    """Altered thinking (Anthropic) and an unanswered tool call (OpenAI) get the provider's 400."""
    forged = Message("assistant", (Thinking("plan", signature="forged"), ToolCall("t1", "read", {})))
    answered = Message("user", (ToolResult("t1", "hello"),))
    unanswered = Message("assistant", (ToolCall("c1", "read", {}),))
    with WireServer(in_order(), api_key=KEY) as server:
        thinking = _client("anthropic", server, thinking_tokens=1024)
        with pytest.raises(LlmError, match="HTTP 400: invalid_request_error: .*Invalid `signature`"):
            await thinking.complete("", [Message.user("hi"), forged, answered], [READ], max_tokens=64)
        with pytest.raises(LlmError, match="HTTP 400: .*did not have response messages: c1"):
            await _client("openai", server).complete(
                "", [Message.user("hi"), unanswered], [READ], max_tokens=64
            )


# --- retries and failures ----------------------------------------------------------------------


async def test_rate_limit_waits_for_retry_after() -> None:
    """A 429 with retry-after: 1 is retried after at least a second, and the reply counts the retry."""
    script = in_order(Fault(429, retry_after=1), Answer(text="ok"))
    with WireServer(script, api_key=KEY) as server:
        started = time.monotonic()
        reply = await _client("anthropic", server).complete("", [Message.user("hi")], [], max_tokens=64)
    assert time.monotonic() - started >= 1.0
    assert (reply.text, reply.retries) == ("ok", 1)
    assert reply.seconds >= 1.0


@pytest.mark.parametrize(("provider", "status"), [("anthropic", 529), ("openai", 503)])
async def test_overload_is_retried(provider: str, status: int) -> None:
    """Anthropic's 529 and OpenAI's 503 are retried with backoff until the call succeeds."""
    with WireServer(in_order(Fault(status), Fault(status), Answer(text="ok")), api_key=KEY) as server:
        reply = await _client(provider, server).complete("", [Message.user("hi")], [], max_tokens=64)
    assert (reply.text, reply.retries) == ("ok", 2)


async def test_retries_run_out() -> None:
    """After the last attempt the error says the status, the model and how many attempts were made."""
    with WireServer(lambda request: Fault(503, message="busy"), api_key=KEY) as server:
        client = client_for(_choice("openai"), _environ(server), retry=RetryPolicy(attempts=2, base_s=0.01))
        with pytest.raises(LlmError) as caught:
            await client.complete("", [Message.user("hi")], [], max_tokens=64)
    assert str(caught.value) == "openai:test-model: HTTP 503 after 2 attempts: server_error: busy"
    assert caught.value.retryable and len(server.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_bad_key_fails_at_once_without_the_key(provider: str) -> None:
    """A 401 is not retried, and its one-line message never holds the key."""
    planted = "sk-planted-secret-9876"
    with WireServer(in_order(), api_key=KEY) as server, pytest.raises(LlmError) as caught:
        await _client(provider, server, key=planted).complete("", [Message.user("hi")], [], max_tokens=64)
    message = str(caught.value)
    assert caught.value.status == 401 and not caught.value.retryable
    assert len(server.requests) == 1
    assert "\n" not in message and planted not in message and "HTTP 401" in message


def test_retry_after_forms() -> None:
    """retry-after-ms wins over retry-after, which may be seconds or an HTTP date."""
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"Retry-After": "3"}) == 3.0
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_s({}) is None


def test_backoff_grows_and_is_capped() -> None:
    """Without retry-after, waits double from the base up to the cap; a long retry-after is capped too."""
    policy = RetryPolicy(base_s=1.0, cap_s=30.0)
    failure = Failure(503, "busy")
    assert 0.75 <= policy.wait_s(failure, 1) <= 1.0
    assert 3.0 <= policy.wait_s(failure, 3) <= 4.0
    assert policy.wait_s(failure, 10) <= 30.0
    assert policy.wait_s(Failure(429, "", {"retry-after": "600"}), 1) == 60.0


# --- preflight ---------------------------------------------------------------------------------


async def test_preflight_passes_a_good_plan() -> None:
    """Every model known and every key accepted: no problems."""
    roles = {"strategist": _choice("anthropic"), "worker": _choice("openai-compatible")}
    with WireServer(in_order(), api_key=KEY, models={"test-model"}) as server:
        assert await preflight(LlmPlan(roles=roles), _environ(server)) == []


async def test_preflight_names_missing_key_and_unknown_model() -> None:
    """A missing key names its variable; an unknown model is refused by the provider's 404."""
    roles = {"strategist": _choice("anthropic", model="claude-nope"), "worker": _choice("openai")}
    with WireServer(in_order(), api_key=KEY, models={"test-model"}) as server:
        environ = {k: v for k, v in _environ(server).items() if k != "OPENAI_API_KEY"}
        problems = await preflight(LlmPlan(roles=roles), environ)
    assert len(problems) == 2
    assert problems[0].startswith("strategist: anthropic:claude-nope: HTTP 404")
    assert "does not serve a model named 'claude-nope'" in problems[0]
    assert problems[1].startswith("worker: openai:test-model: OPENAI_API_KEY is not set")


async def test_preflight_asks_for_one_token_where_the_server_has_no_models_route() -> None:
    """A proxy that serves completions only: a one-token request says whether it serves the model."""
    roles = {"strategist": _choice("anthropic"), "worker": _choice("openai", model="gpt-nope")}
    ping = Answer(text="pong", input_tokens=5, output_tokens=1)
    with WireServer(lambda request: ping, api_key=KEY, models={"test-model"}, models_route=False) as server:
        problems = await preflight(LlmPlan(roles=roles), _environ(server))
        pinged = server.posted("/v1/messages")
    assert len(pinged) == 1 and pinged[0]["max_tokens"] <= 16
    assert len(problems) == 1 and problems[0].startswith("worker: openai:gpt-nope: HTTP 404")


async def test_preflight_names_bad_key() -> None:
    """A refused key says which variable holds it."""
    with WireServer(in_order(), api_key=KEY) as server:
        roles = {"strategist": _choice("openai")}
        problems = await preflight(LlmPlan(roles=roles), _environ(server, key="sk-wrong-1234"))
    assert problems == [
        "strategist: openai:test-model: HTTP 401: invalid_api_key: Incorrect API key provided: "
        "sk-********1234.; check the key in OPENAI_API_KEY"
    ]


async def test_preflight_names_unreachable_urls(closed_port: int, black_hole: str) -> None:
    """A refused connection and a silent server both name their URL, within the timeout."""
    refused = f"http://127.0.0.1:{closed_port}"
    roles = {
        "strategist": _choice("anthropic", base_url=refused),
        "worker": _choice("openai-compatible", base_url=black_hole + "/v1"),
    }
    started = time.monotonic()
    problems = await preflight(
        LlmPlan(roles=roles), {"ANTHROPIC_API_KEY": KEY, "LOCAL_KEY": KEY}, timeout_s=0.5
    )
    assert time.monotonic() - started < 3
    assert f"cannot reach {refused}" in problems[0]
    assert f"no answer from {black_hole}/v1" in problems[1]


# --- config ------------------------------------------------------------------------------------


def test_parse_llm_spec() -> None:
    """Roles map to provider:model, with an optional base URL after @ and colons kept in the model."""
    roles = parse_llm_spec(
        "strategist=anthropic:claude-opus-4-6, worker=openai-compatible:qwen:7b@http://h:8000/v1"
    )
    assert roles["strategist"] == ModelChoice(provider="anthropic", model="claude-opus-4-6")
    assert roles["worker"] == ModelChoice(
        provider="openai-compatible", model="qwen:7b", base_url="http://h:8000/v1"
    )


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("critic=openai:gpt-5.2", "unknown role 'critic'; the roles are strategist, worker"),
        ("worker=mistral:large", "'mistral:large' does not start with a provider"),
        ("worker", "is not role=provider:model"),
    ],
)
def test_parse_llm_spec_refuses(spec: str, complaint: str) -> None:
    """A bad --llm names what is wrong in it."""
    with pytest.raises(ConfigError, match="^--llm") as caught:
        parse_llm_spec(spec)
    assert complaint in str(caught.value)


def test_config_file_and_flag_merge(tmp_path: Path) -> None:
    """The file's roles and prices load; the flag replaces a role; defaults fill the rest."""
    path = tmp_path / "campaign.toml"
    path.write_text(
        '[roles.worker]\nmodel = "openai-compatible:qwen2.5-coder"\nbase_url = "http://localhost:8000/v1"\n'
        'api_key_env = "LOCAL_LLM_KEY"\n'
        '[prices."openai-compatible:qwen2.5-coder"]\ninput = 0.0\noutput = 0.0\n'
    )
    loaded = load_llm_config(path)
    assert loaded.roles["worker"].api_key_env == "LOCAL_LLM_KEY"
    merged = plan(None, path)
    assert merged.roles["strategist"].label == "anthropic:claude-opus-4-6"
    assert merged.roles["worker"].base_url == "http://localhost:8000/v1"
    assert merged.prices == {"openai-compatible:qwen2.5-coder": Price(input=0.0, output=0.0)}
    assert plan("worker=openai:gpt-5.2", path).roles["worker"] == ModelChoice(
        provider="openai", model="gpt-5.2"
    )


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[roles.strategist]\nthinking_tokens = 4096\n", "roles.strategist.model: missing"),
        (
            '[roles.strategist]\nmodel = "anthropic:x"\nthinking_tokens = 10\n',
            "roles.strategist.thinking_tokens",
        ),
        ('[roles.worker]\nmodel = "openai:x"\ntemperature = 1\n', "roles.worker.temperature: unknown key"),
        ('[roles.critic]\nmodel = "openai:x"\n', "unknown role 'critic'"),
        ('[prices."openai:x"]\ninput = -1\noutput = 1\n', "prices.'openai:x'.input"),
        ("[roles\n", "not valid TOML"),
    ],
)
def test_config_file_errors_name_file_and_field(tmp_path: Path, text: str, complaint: str) -> None:
    """A bad campaign file's error names the file and the field."""
    path = tmp_path / "campaign.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_llm_config(path)
    assert str(caught.value).startswith(str(path)) and complaint in str(caught.value)


def test_plan_needs_every_role() -> None:
    """Without defaults, a role no one gave a model is refused by name."""
    with pytest.raises(ConfigError, match="no model for worker"):
        plan("strategist=openai:gpt-5.2", None, defaults={})


def test_client_for_needs_a_key_and_a_compatible_url() -> None:
    """A missing key names its variable; a compatible model without any base URL is refused."""
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        client_for(ModelChoice(provider="openai", model="gpt-5", api_key_env="MY_KEY"), {})
    with pytest.raises(ConfigError, match="needs a base URL"):
        client_for(ModelChoice(provider="openai-compatible", model="qwen"), {})


# --- pricing -----------------------------------------------------------------------------------


def test_usd_bills_each_kind_of_token_at_its_rate() -> None:
    """Uncached input, cache reads, cache writes and output are each billed at their own rate."""
    price = Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    usage = Usage(
        input_tokens=1_000_000, output_tokens=100_000, cached_tokens=500_000, cache_write_tokens=200_000
    )
    assert usd(price, usage) == pytest.approx(0.3 * 3.0 + 0.5 * 0.3 + 0.2 * 3.75 + 0.1 * 15.0)
    assert usd(Price(input=2.0, output=8.0), Usage(input_tokens=1000, cached_tokens=1000)) == pytest.approx(
        0.002
    )


def test_price_for_looks_up_overrides_table_and_snapshots() -> None:
    """Overrides win; dated snapshots cost what their alias does; self-hosted is free; unknown is None."""
    sonnet = ModelChoice(provider="anthropic", model="claude-sonnet-4-5-20250929")
    assert price_for(sonnet, {}) == Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    override = Price(input=1.0, output=1.0)
    assert price_for(sonnet, {"anthropic:claude-sonnet-4-5-20250929": override}) == override
    assert price_for(ModelChoice(provider="openai-compatible", model="qwen"), {}) == Price(input=0, output=0)
    assert price_for(ModelChoice(provider="openai", model="gpt-9"), {}) is None


async def test_empty_text_blocks_are_not_sent() -> None:
    """An empty text block, which the Messages API refuses, is left out of the request."""
    with WireServer(in_order(Answer(text="ok")), api_key=KEY) as server:
        message = Message("user", (Text(""), Text("hi")))
        reply = await _client("anthropic", server).complete("", [message], [], max_tokens=64)
    assert reply.text == "ok"
