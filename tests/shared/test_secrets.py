"""What the CLI prints of a NATS URL never holds its password."""

from __future__ import annotations

import pytest

from shared.secrets import shown_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://cli:s3cret-pass@10.0.0.1:4222", "nats://cli:***@10.0.0.1:4222"),
        ("nats://operator:p%40ss@nats.lab:4222", "nats://operator:***@nats.lab:4222"),
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://s3cret-token@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),
    ],
)
def test_a_password_in_a_url_is_not_shown(url: str, shown: str) -> None:
    assert shown_url(url) == shown
